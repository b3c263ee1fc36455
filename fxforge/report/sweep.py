"""report.html for a sweep: a table of its trials, best first, and players for the best few."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..errors import FxforgeError
from . import REPORT_NAME, _e, _fmt_esr, abx_html, from_run_dir, players_html, render, verdict

BEST = 3                # trials with players
SWEEP_CLIP_SECONDS = 10.0  # shorter than a run's: three trials' clips share one page


def _trials(sweep_dir: Path) -> tuple[dict, list[dict]]:
    from ..runs import read_summary as _summary, runs_in as _runs_of

    try:
        meta = json.loads((sweep_dir / "sweep.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise FxforgeError(f"{sweep_dir / 'sweep.json'}: unreadable ({exc})") from None
    rows = []
    for t in meta.get("trials", []):
        runs = _runs_of(sweep_dir / str(t.get("id")))
        finished = [r for r in runs if _summary(r).get("status") == "finished"]
        run = finished[0] if finished else (runs[0] if runs else None)
        summary = _summary(run) if run else {}
        rows.append({"id": t.get("id"), "overrides": t.get("overrides") or {}, "seed": t.get("seed"),
                     "run": run, "summary": summary, "status": summary.get("status") or "not run"})
    return meta, rows


def write_sweep_report(sweep_dir: Path) -> Path:
    from ..runs import atomic_write_bytes
    from .audio import make_clips

    sweep_dir = Path(sweep_dir)
    meta, rows = _trials(sweep_dir)
    done = sorted((r for r in rows if r["status"] == "finished" and r["summary"].get("test_esr") is not None),
                  key=lambda r: r["summary"]["test_esr"])
    others = [r for r in rows if r not in done]
    keys = meta.get("keys") or sorted({k for r in rows for k in r["overrides"]})
    head = ["#", "trial", *keys, "seed", "status", "test ESR", "test pre", "val ESR", "verdict", "parameters",
            "train s", "page"]
    body = []
    for rank, r in enumerate(done + others, 1):
        s = r["summary"]
        link = ""
        if r["run"] is not None and (r["run"] / REPORT_NAME).is_file():
            href = os.path.relpath(r["run"] / REPORT_NAME, sweep_dir)
            link = f'<a href="{_e(href)}">report</a>'
        cells = [str(rank) if r in done else "-", _e(r["id"]), *[_e(r["overrides"].get(k, "")) for k in keys],
                 _e(r["seed"]), _e(r["status"]), _fmt_esr(s.get("test_esr")), _fmt_esr(s.get("test_esr_pre")),
                 _fmt_esr(s.get("val_esr")), _e(verdict(s.get("test_esr"))[0]) if s.get("test_esr") is not None else "-",
                 f"{s['parameters']:,}" if s.get("parameters") else "-",
                 f"{s['train_seconds']:.0f}" if s.get("train_seconds") is not None else "-", link]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    parts = [f'<h1>sweep {_e(meta.get("name", sweep_dir.name))}</h1>',
             f'<p class="sub">{len(rows)} trials, {len(done)} finished · <code>{_e(sweep_dir)}</code> · base '
             f'<code>{_e(meta.get("base", ""))}</code></p>',
             "<h2>Trials, best test ESR first</h2>",
             "<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>" + "".join(body) + "</table>"]
    for rank, r in enumerate(done[:BEST], 1):
        s = r["summary"]
        word, meaning, colour = verdict(s.get("test_esr"))
        parts.append(f'<h2>#{rank}: {_e(r["id"])} — {_e(word)}, test ESR {_fmt_esr(s.get("test_esr"))}</h2>')
        try:
            d = from_run_dir(r["run"])
        except FxforgeError as exc:
            parts.append(f'<p class="note">No players: {_e(exc)}</p>')
            continue
        clips, info = make_clips(d.x, d.y, d.y_hat, d.sample_rate, seconds=SWEEP_CLIP_SECONDS,
                                 keys=("target", "model", "difference"))
        prefix = f"t{rank}-"
        parts.append(f'<p class="note">{info["seconds"]:.1f} s of its test split from {info["start_seconds"]:.1f} s; '
                     f'target and model at one gain ({info["pair_gain_db"]:+.1f} dB), the difference a further '
                     f'{info["difference_above_pair_db"]:+.1f} dB.</p>')
        parts.append(players_html(clips, prefix))
        parts.append(abx_html(prefix))
    parts.append(f'<p class="note">Written {time.strftime("%Y-%m-%d %H:%M:%S")} by '
                 f'<code>fxforge report {_e(sweep_dir)}</code>.</p>')
    path = sweep_dir / REPORT_NAME
    atomic_write_bytes(path, render(f"sweep {meta.get('name', sweep_dir.name)} – fxforge report",
                                    "\n".join(parts)).encode("utf-8"))
    return path
