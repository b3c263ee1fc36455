"""`fxforge run` and `fxforge train`: a run file, or a pair with the default capture recipe."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..errors import FxforgeError
from .app import _registry, _verbose, app, console


@app.command()
def run(config: Optional[Path] = typer.Argument(None, help="run file (TOML)"),
        set_: List[str] = typer.Option([], "--set", help="override a field: section.key=value (TOML value)"),
        resume: Optional[Path] = typer.Option(None, "--resume", help="continue an interrupted run directory"),
        checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="start from these weights"),
        runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="where run directories go")):
    """Train a model as a run file describes; print test ESR and where the run went."""
    from ..config import load_config
    from ..progress import TrainingDisplay
    from ..train.loop import train

    _registry()
    if (config is None) == (resume is None):
        raise FxforgeError("give a run file, or --resume RUN_DIR (not both)")
    if resume is not None and set_:
        raise FxforgeError("--set cannot change a run being resumed; start a new run instead")
    cfg = load_config(config, set_) if config is not None else None
    with TrainingDisplay(console, enabled=_verbose["level"] >= 0) as display:
        summary = train(cfg, runs_dir=runs_dir, resume=resume, checkpoint=checkpoint, on_event=display.event)
    display.print_summary(summary)


@app.command("train")
def train_pair(input: Path = typer.Argument(..., help="the dry recording (the DI, or the reamp file you played)"),
               target: Path = typer.Argument(..., help="the recorded output of the gear"),
               budget: str = typer.Option("5m", "--budget", help="wall-clock time: '5m', '300s', '1h'"),
               name: Optional[str] = typer.Option(None, "--name", help="run name (default: the target's file name)"),
               set_: List[str] = typer.Option([], "--set", help="override the recipe: section.key=value"),
               runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="where run directories go")):
    """Train the default capture recipe on a pair: a pedal, an amp or a full rig with its cabinet."""
    from ..config import RECIPES

    recipe = RECIPES / "capture.toml"
    run_name = name or "".join(c if c.isalnum() or c in "._-" else "-" for c in target.stem)[:64] or "capture"
    sets = [f"data.input={_toml_string(input)}", f"data.target={_toml_string(target)}",
            f"train.time_budget={_toml_string(budget)}", f"name={_toml_string(run_name)}", *set_]
    run(config=recipe, set_=sets, resume=None, checkpoint=None, runs_dir=runs_dir)


def _toml_string(value) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
