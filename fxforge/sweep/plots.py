"""The sweep's plots: validation ESR against training time for every trial, and test ESR
against each swept key (mean, min-max over seeds)."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..runs import RunDir
from .plan import fmt
from .schema import Plan


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def write_plots(plan: Plan, rows: list[dict]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = plan.dir / "plots"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    # Validation ESR against training time, every trial.
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    drawn = 0
    for r in rows:
        if not r["run"]:
            continue
        metrics = RunDir(plan.dir / r["run"]).read_metrics()
        if not metrics:
            continue
        t = [m["time"] for m in metrics]
        for ax, key in zip(axes, ("val_esr", "val_esr_pre")):
            ax.plot(t, [max(m[key], 1e-12) for m in metrics], marker=".", label=r["trial"])
        drawn += 1
    if drawn:
        for ax, title in zip(axes, ("validation ESR", "validation ESR (pre-emphasised)")):
            ax.set_yscale("log")
            ax.set_xlabel("training time (s)")
            ax.set_title(title)
            ax.grid(alpha=0.3, which="both")
        axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
        fig.suptitle(f"sweep {plan.name}")
        fig.tight_layout()
        fig.savefig(out / "validation_esr.png", dpi=100)
        written.append(out / "validation_esr.png")
    plt.close(fig)
    # Final test ESR against each swept key; one line per combination of the other keys.
    done = [r for r in rows if r["status"] == "finished" and r["test_esr"] is not None]
    for key in plan.keys:
        values = list(dict.fromkeys(json.dumps(r[key], default=str) for r in rows if r[key] is not None))
        values = [json.loads(v) for v in values]
        if not values:
            continue
        numeric = all(_is_number(v) for v in values)
        others = [k for k in plan.keys if k != key]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        groups: dict[str, list[dict]] = {}
        for r in done:
            if r[key] is None:
                continue
            label = ", ".join(f"{plan.labels[k]}={fmt(r[k])}" for k in others if r[k] is not None)
            groups.setdefault(label, []).append(r)
        for gi, (label, members) in enumerate(groups.items()):
            xs, means, lo, hi = [], [], [], []
            for vi, v in enumerate(values):
                ys = [m for m in members if m[key] == v]
                if not ys:
                    continue
                xs.append(v if numeric else vi)
                means.append(ys)
            for ax, metric in zip(axes, ("test_esr", "test_esr_pre")):
                ms = [sum(m[metric] for m in ys) / len(ys) for ys in means]
                lo = [m - min(y[metric] for y in ys) for m, ys in zip(ms, means)]
                hi = [max(y[metric] for y in ys) - m for m, ys in zip(ms, means)]
                shift = xs if numeric else [x + (gi - (len(groups) - 1) / 2) * 0.06 for x in xs]
                ax.errorbar(shift, ms, yerr=[lo, hi], marker="o", capsize=4, label=label or None)
        for ax, title in zip(axes, ("test ESR", "test ESR (pre-emphasised)")):
            if numeric and min(values) > 0 and max(values) / min(values) >= 8:
                ax.set_xscale("log")
            if numeric:
                ax.set_xticks(values)
                ax.set_xticklabels([fmt(v) for v in values])
                ax.minorticks_off()
            else:
                ax.set_xticks(range(len(values)))
                ax.set_xticklabels([fmt(v) for v in values])
            ax.set_yscale("log")
            ax.set_xlabel(key)
            ax.set_title(f"{title}: mean, min-max over seeds")
            ax.grid(alpha=0.3, which="both")
        if any(groups):
            axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
        fig.tight_layout()
        path = out / f"test_esr_vs_{re.sub(r'[^A-Za-z0-9._-]', '-', plan.labels[key])}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written
