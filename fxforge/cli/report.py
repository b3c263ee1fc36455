"""`fxforge report`: a run's or a sweep's report.html."""
from __future__ import annotations

from pathlib import Path

import typer

from .app import _registry, app, console


@app.command()
def report(path: Path = typer.Argument(..., help="a finished run directory, or a sweep directory"),
           threads: int = typer.Option(1, "--threads", min=1, help="CPU threads")):
    """Write report.html: players for the test audio, a blind A/B/X test, figures; for a sweep,
    a table of trials and players for the best ones."""
    from ..report import report_kind

    report_kind(path)
    import torch

    # One thread, as for process: the model runs over the whole test split.
    torch.set_num_threads(threads)
    from ..report import write_report

    _registry()
    out = write_report(path)
    console.print(f"report: {out} ({out.stat().st_size / 1e6:.1f} MB)", markup=False, highlight=False, soft_wrap=True)
