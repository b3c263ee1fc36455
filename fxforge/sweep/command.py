"""``fxforge sweep``: registered through the commands hook (``fxforge_register_commands``),
as a third party's command is (fxforge.builtins.DEFAULT_PLUGINS lists it)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..hookspecs import hookimpl
from ..specs import CommandSpec


def _verbosity(ctx: typer.Context) -> int:
    """-1 quiet, else the count of -v, from the root command's global options."""
    params = ctx.find_root().params
    return -1 if params.get("quiet") else int(params.get("verbose") or 0)


def sweep(ctx: typer.Context,
          file: Path = typer.Argument(..., metavar="FILE", help="sweep file (TOML): a base run file and a grid of overrides"),
          set_: List[str] = typer.Option([], "--set", help="override the base run file for every trial: section.key=value"),
          ray: Optional[str] = typer.Option(None, "--ray", help="run trials as Ray tasks: 'auto', 'local' or a cluster address"),
          repeats: Optional[int] = typer.Option(None, "--repeats", min=1, help="seeds per point (instead of the file's)"),
          sweeps_dir: Path = typer.Option(Path("sweeps"), "--sweeps-dir", help="where sweep directories go"),
          dry_run: bool = typer.Option(False, "--dry-run", help="validate every trial and list them; run nothing")):
    """Run a grid of trials (one run each); skip finished ones; print and write a table and plots."""
    from rich.console import Console

    from . import print_table, run_sweep

    console, err_console = Console(), Console(stderr=True)
    plan, rows = run_sweep(file, set_, sweeps_dir=sweeps_dir, ray=ray, repeats=repeats, dry_run=dry_run,
                           console=console, verbose=_verbosity(ctx))
    if not dry_run:
        print_table(plan, rows, console)
        if rows and all(r["status"] != "finished" for r in rows):  # nothing to compare: not a success
            err_console.print(f"error: {file}: all {len(rows)} trials failed (their errors are above)",
                              markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(1)


@hookimpl
def fxforge_register_commands(register):
    register(CommandSpec("sweep", "grids of runs: one run per trial, skipped when finished, a table and plots", sweep))
