"""A sweep's state on disk: which trial's run finished with the same resolved config (skip),
stopped with a checkpoint (resume), or is new; each trial's trial.json. Run folders are
read through fxforge.runs."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from ..config import RunConfig, load_config
from ..errors import FxforgeError
from ..runs import RunDir, atomic_write_bytes, read_summary, runs_in
from .schema import Plan, Trial


def same_config(run: Path, cfg: RunConfig) -> bool:
    try:
        return load_config(RunDir(run).config_path).to_dict() == cfg.to_dict()
    except FxforgeError:
        return False


def trial_state(trial: Trial, sweep_dir: Path) -> tuple[str, Optional[Path], str]:
    """('done', run) when a run with this exact config finished; ('resume', run) when
    one stopped with a checkpoint; else ('new', None)."""
    runs = runs_in(sweep_dir / trial.id)
    for run in runs:
        if not same_config(run, trial.cfg):
            continue
        status = read_summary(run).get("status")
        if status == "finished":
            return "done", run, ""
        if status in ("running", "interrupted") and (run / "checkpoints" / "last.pt").is_file():
            return "resume", run, f"resuming {run.name}"
        return "new", None, f"its last run {status or 'stopped'}; starting afresh"
    return "new", None, ("the config changed since its last run; starting afresh" if runs else "")


def trial_meta(trial_dir: Path) -> dict:
    try:
        return json.loads((trial_dir / "trial.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def record(plan: Plan, trial: Trial, result: dict, resumed: Optional[Path], before: set) -> None:
    """Write trial.json: which run is this trial's, its status and wall time."""
    tdir = plan.dir / trial.id
    tdir.mkdir(parents=True, exist_ok=True)
    meta = trial_meta(tdir)
    made = [r for r in runs_in(tdir) if r not in before]
    run = resumed or (made[0] if made else None)
    entry = meta.setdefault("runs", {}).setdefault(run.name if run else "-", {"wall_seconds": 0.0})
    entry["wall_seconds"] = round(entry.get("wall_seconds", 0.0) + result.get("wall_seconds", 0.0), 2)
    entry["status"] = result["status"]
    if result.get("error"):
        entry["error"] = result["error"]
    else:
        entry.pop("error", None)
    meta.update({"id": trial.id, "overrides": trial.overrides, "seed": trial.seed})
    atomic_write_bytes(tdir / "trial.json", (json.dumps(meta, indent=2, default=str) + "\n").encode())
    trial.run = run
    trial.state = "done" if result["status"] == "finished" else "failed"
    trial.note = result.get("error", "")
