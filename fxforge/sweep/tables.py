"""The results: one row per trial (from its run's summary.json and its trial.json), written as
results.csv and results.md and printed as a table."""
from __future__ import annotations

import csv
import io
import json
import os
from typing import Any

from ..runs import atomic_write_bytes, read_summary, runs_in
from .plan import fmt, value_of
from .schema import Plan
from .state import same_config, trial_meta, trial_state


COLUMNS = ["val_esr", "val_esr_pre", "test_esr", "test_esr_pre", "epochs", "train_seconds", "wall_seconds"]
HEADERS = {"val_esr": "val ESR", "val_esr_pre": "val pre", "test_esr": "test ESR", "test_esr_pre": "test pre",
           "epochs": "epochs", "train_seconds": "train s", "wall_seconds": "wall s"}


def collect(plan: Plan) -> list[dict]:
    """One row per trial, from its run's summary.json and its trial.json."""
    rows = []
    for t in plan.trials:
        run = t.run
        if run is None or not run.is_dir():
            state, run, _ = trial_state(t, plan.dir)
            if run is None:
                runs = [r for r in runs_in(plan.dir / t.id) if same_config(r, t.cfg)]
                run = runs[0] if runs else None
        summary = read_summary(run) if run else {}
        meta = trial_meta(plan.dir / t.id).get("runs", {}).get(run.name if run else "-", {})
        row = {"trial": t.id, **{k: value_of(t, k) for k in plan.keys}, "seed": t.seed,
               "status": summary.get("status") or meta.get("status") or "not run"}
        for key in COLUMNS:
            row[key] = summary.get(key)
        row["wall_seconds"] = meta.get("wall_seconds")
        row["run"] = str(run.relative_to(plan.dir)) if run else ""
        row["error"] = meta.get("error", "") if row["status"] != "finished" else ""
        rows.append(row)
    return rows


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key in ("val_esr", "val_esr_pre", "test_esr", "test_esr_pre"):
        return f"{value:.4g}"
    if key in ("train_seconds", "wall_seconds"):
        return f"{value:.1f}"
    return fmt(value)


def table_rows(plan: Plan, rows: list[dict], with_id: bool = True) -> tuple[list[str], list[list[str]]]:
    cols = (["trial"] if with_id else []) + plan.keys + ["seed", "status"] + COLUMNS
    head = (["trial"] if with_id else []) + [plan.labels[k] for k in plan.keys] + ["seed", "status"] \
        + [HEADERS[c] for c in COLUMNS]
    return head, [[_cell(c, r[c]) for c in cols] for r in rows]


def write_results(plan: Plan, rows: list[dict]) -> None:
    plan.dir.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    cols = ["trial"] + plan.keys + ["seed", "status"] + COLUMNS + ["run", "error"]
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow(["" if r[c] is None else (fmt(r[c]) if c in plan.keys else r[c]) for c in cols])
    atomic_write_bytes(plan.dir / "results.csv", buf.getvalue().encode())
    head, body = table_rows(plan, rows)
    lines = [f"# sweep {plan.name}", ""]
    if plan.description:
        lines += [plan.description, ""]
    fixed = [f"`{k} = {fmt(v)}`" for k, v in plan.common.items()] + [f"`--set {s}`" for s in plan.sets]
    lines += [f"Base: `{os.path.normpath(plan.base)}`" + (f"; for every trial: {', '.join(fixed)}" if fixed else "") + ".", ""]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join("---" if i < len(plan.keys) + 3 else "---:" for i in range(len(head))) + "|")
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
    atomic_write_bytes(plan.dir / "results.md", ("\n".join(lines) + "\n").encode())
    (plan.dir / "sweep.json").write_text(json.dumps({
        "name": plan.name, "file": str(plan.file), "base": str(plan.base), "set": plan.sets, "keys": plan.keys,
        "trials": [{"id": t.id, "overrides": t.overrides, "seed": t.seed} for t in plan.trials]},
        indent=2, default=str) + "\n")


def print_table(plan: Plan, rows: list[dict], console) -> None:
    from rich.table import Table

    from rich import box

    with_id = not plan.keys  # the overrides and the seed name a trial; its id is in results.csv
    head, body = table_rows(plan, rows, with_id)
    fixed = len(plan.keys) + 2 + with_id
    if all(r["status"] == "finished" for r in rows):  # the status column only when it says something
        status = fixed - 1
        head, body = head[:status] + head[status + 1:], [b[:status] + b[status + 1:] for b in body]
        fixed -= 1
    table = Table(title=f"sweep '{plan.name}': best validation ESR, test ESR (plain, pre-emphasised)",
                  title_justify="left", box=box.SIMPLE_HEAD)
    for i, h in enumerate(head):
        table.add_column(h, justify="right" if i >= fixed else "left", overflow="fold")
    for row in body:
        table.add_row(*row)
    console.print(table)
    for r in rows:
        if r["error"]:
            console.print(f"{r['trial']}: {r['error']}", markup=False, highlight=False, soft_wrap=True)
    failed = sum(r["status"] not in ("finished",) for r in rows)
    tail = f"; {failed} not finished (rerun the sweep to retry)" if failed else ""
    console.print(f"results: {plan.dir / 'results.csv'}, results.md, plots/{tail}", highlight=False)
