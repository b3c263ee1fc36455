"""`fxforge run` and `fxforge train`: a run file, or a pair (or a knob grid) with its default recipe."""
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
def train_pair(input: Path = typer.Argument(..., help="the dry recording (the DI, or the reamp file you played), "
                                                     "or a knob grid's captures.toml"),
               target: Optional[Path] = typer.Argument(None, help="the recorded output of the gear (none for a "
                                                                   "captures.toml)"),
               budget: str = typer.Option("5m", "--budget", help="wall-clock time: '5m', '300s', '1h'"),
               name: Optional[str] = typer.Option(None, "--name", help="run name (default: the target's file name, "
                                                                       "or the manifest's folder)"),
               set_: List[str] = typer.Option([], "--set", help="override the recipe: section.key=value"),
               runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="where run directories go")):
    """Train the default recipe: on a pair (a pedal, an amp or a full rig with its cabinet), or on
    every setting of a knob grid's captures.toml (one model with the knobs)."""
    from ..config import RECIPES

    if target is None:
        if input.suffix.lower() != ".toml":
            raise FxforgeError(f"{input}: give the gear's recording after it (fxforge train DI TARGET), or a knob "
                               "grid's captures.toml alone")
        recipe, data = RECIPES / "knobs.toml", [f"data.captures={_toml_string(input)}"]
        stem = input.resolve().parent.name if input.stem == "captures" else input.stem
    else:
        recipe = RECIPES / "capture.toml"
        data = [f"data.input={_toml_string(input)}", f"data.target={_toml_string(target)}"]
        stem = target.stem
    run_name = name or "".join(c if c.isalnum() or c in "._-" else "-" for c in stem)[:64] or recipe.stem
    sets = [*data, f"train.time_budget={_toml_string(budget)}", f"name={_toml_string(run_name)}", *set_]
    run(config=recipe, set_=sets, resume=None, checkpoint=None, runs_dir=runs_dir)


def _toml_string(value) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
