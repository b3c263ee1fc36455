"""The rich progress bar and summary table shown by `fxforge run`."""
from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table


class TrainingDisplay:
    def __init__(self, console: Console, enabled: bool = True):
        self.console = console
        self.enabled = enabled
        self.progress = Progress(TextColumn("[bold]training"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                                 TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                 console=console, disable=not enabled, transient=False)
        self.task = None
        self.budget = None
        self.total = 1
        self.val = ""

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)

    def event(self, kind: str, info: dict) -> None:
        if kind == "start":
            self.total = max(1, info["total_steps"])
            self.budget = info["time_budget"]
            self.task = self.progress.add_task("train", total=1.0, info="")
        elif kind == "batch" and self.task is not None:
            done = info["step"] / self.total
            if self.budget:
                done = max(done, info["elapsed"] / self.budget)
            self.progress.update(self.task, completed=min(1.0, done),
                                 info=f"epoch {info['epoch'] + 1} loss {info['loss']:.4f} lr {info['lr']:.2e}{self.val}")
        elif kind == "validation":
            self.val = f" | val ESR {info['val_esr']:.4f} pre {info['val_esr_pre']:.4f}"

    def print_summary(self, s: dict) -> None:
        table = Table(title=f"run '{s['name']}' ({s['model']}) finished", show_header=False)
        table.add_column(style="bold")
        table.add_column()
        rows = [
            ("test ESR", f"{s['test_esr']:.5f}"),
            ("test ESR, pre-emphasised", f"{s['test_esr_pre']:.5f}"),
            ("validation ESR (best)", f"{s['val_esr']:.5f} / {s['val_esr_pre']:.5f} pre" if s.get("val_esr") is not None else "-"),
            ("parameters", f"{s['parameters']:,}"),
            ("epochs / steps", f"{s['epochs']} / {s['steps']}"),
            ("training time", f"{s['train_seconds']:.1f} s ({s['samples_per_second'] or 0:,} samples/s on {s['device']})"),
            ("wall time", f"{s['wall_seconds']:.1f} s, validating every {s['validate_every_epochs']} epoch(s)"
             if s.get("wall_seconds") is not None else "-"),
            ("latency corrected", f"{s['latency_samples']} samples"),
            ("run directory", s["run_dir"]),
        ]
        if s.get("rollbacks"):
            rows.append(("diverged, rolled back", f"{s['rollbacks']} time(s), learning rate halved each time"))
        for k, v in rows:
            table.add_row(k, v)
        self.console.print(table)
