"""Sweeps: a grid of run-file overrides, one ordinary run directory per trial.

A sweep file names a base run file and what to vary::

    name = "learning-rate"           # the sweep's folder: sweeps/<name>/ (default: the file's stem)
    base = "../wave_lstm.toml"       # relative to the sweep file
    repeats = 2                      # seeds: the base's seed, seed + 1, ... (or seeds = [0, 7])

    [set]                            # overrides for every trial, as --set would give them
    train.time_budget = "90s"

    [grid]                           # every combination of these
    optim.lr = [0.01, 0.001, 0.004]

    [[points]]                       # and/or listed points, each crossed with the grid
    data.fraction = 0.25

Everything is validated before the first trial starts: the sweep file itself,
then every trial's resolved run config. On disk::

    sweeps/<name>/
        sweep.json                   the trials: id, overrides, seed
        <trial id>/trial.json        its runs and their wall time
        <trial id>/<stamp>/          an ordinary run directory (config.toml, summary.json, ...)
        results.csv, results.md      one row per trial
        plots/validation_esr.png     validation ESR against training time, every trial
        plots/test_esr_vs_<key>.png  test ESR against each swept key (mean, min-max over seeds)

A rerun skips trials whose run finished with the same resolved config, resumes
interrupted ones from their checkpoint, and starts the rest afresh.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from ..errors import FxforgeError
from .execute import RAY_HINT, SweepInterrupted, execute_trial, ray_init, run_local, run_ray
from .plan import plan_sweep, trial_id
from .plots import write_plots
from .schema import Plan, SweepFile, Trial
from .state import trial_state
from .tables import COLUMNS, HEADERS, collect, print_table, table_rows, write_results

log = logging.getLogger("fxforge")

__all__ = ["COLUMNS", "HEADERS", "RAY_HINT", "Plan", "SweepFile", "SweepInterrupted", "Trial", "collect",
           "execute_trial", "plan_sweep", "print_table", "run_sweep", "table_rows", "trial_id", "trial_state",
           "write_plots", "write_results"]


def run_sweep(file: Path | str, sets: list[str] | None = None, sweeps_dir: Path | str = Path("sweeps"),
              ray: Optional[str] = None, repeats: Optional[int] = None, dry_run: bool = False,
              console=None, verbose: int = 0) -> tuple[Plan, list[dict]]:
    """Plan (validating every trial), run what is not finished, write the results."""
    from rich.console import Console

    console = console or Console()
    plan = plan_sweep(file, sets, repeats, sweeps_dir)
    if ray is not None:  # fail before any work when Ray is asked for but missing
        try:
            import ray as _  # noqa: F401
        except ImportError:
            raise FxforgeError(f"--ray needs Ray, which is not installed: {RAY_HINT}") from None
    counts = plan.counts()
    todo = [t for t in plan.trials if t.state != "done"]
    console.print(f"sweep '{plan.name}': {len(plan.trials)} trials: {counts['done']} finished earlier (skipped), "
                  f"{counts['resume']} to resume, {counts['new']} to run -> {plan.dir}", highlight=False)
    if dry_run:
        for t in plan.trials:
            console.print(f"  {t.id}: {t.state}" + (f" ({t.note})" if t.note else ""), highlight=False)
        return plan, collect(plan)
    if todo:
        if ray is not None:
            ray_init(ray, verbose)  # an unreachable cluster is an error before anything is written
        plan.dir.mkdir(parents=True, exist_ok=True)
        if ray is None:
            run_local(plan, todo, console, verbose, ray)
        else:
            run_ray(plan, todo, console, verbose, ray)
    rows = collect(plan)
    write_results(plan, rows)
    try:
        write_plots(plan, rows)
    except Exception as exc:  # plots are a convenience; never lose the table over them
        log.warning("could not draw the sweep's plots: %s", exc)
    return plan, rows
