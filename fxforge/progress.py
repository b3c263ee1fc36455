"""What `fxforge run` shows while it works: the phase (loading, aligning, training, validating,
testing, stress check, writing the report), epoch and step, samples/s, the time budget as a
clock, validation ESR so far and the best. A terminal gets a live rich line, anything else
plain lines (one per phase and per validation), and -q nothing."""
from __future__ import annotations

import math
import time
from collections import deque
from pathlib import Path
from typing import Callable

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

_listeners: list[Callable[[str], None]] = []


def phase(name: str) -> None:
    """Say what the run is doing now; a no-op where no display listens (tests, Ray workers)."""
    for listener in list(_listeners):
        listener(name)


def clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def _rate(n: float) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.0f}k" if n >= 1e3 else f"{n:.0f}"


class TrainingDisplay:
    PLAIN_EVERY = 30.0  # seconds between plain progress lines while training

    def __init__(self, console: Console, enabled: bool = True):
        self.console = console
        self.enabled = enabled
        self.live = enabled and console.is_terminal
        self.progress = Progress(TextColumn("[bold]{task.fields[phase]:<17}"), BarColumn(bar_width=30),
                                 TextColumn("{task.percentage:>3.0f}%"), TextColumn("{task.fields[info]}"),
                                 TimeElapsedColumn(), console=console, disable=not self.live, transient=False)
        self.task = None
        self.budget = None
        self.total = 1
        self.epochs = None
        self.phase = "starting"
        self.status = ""       # epoch, step, samples/s, clock
        self.val = ""          # validation ESR so far and the best
        self.best = math.inf
        self.best_pre = math.inf
        self.window: deque = deque()
        self.last_plain = 0.0
        # Plain phase lines before training starts wait for it: a run refused while loading
        # prints its one-line error and nothing else.
        self.pending: list[str] | None = []

    def __enter__(self):
        if self.live:
            self.progress.__enter__()
            self.task = self.progress.add_task("run", total=1.0, phase=self.phase, info="")
        _listeners.append(self.set_phase)
        return self

    def __exit__(self, *exc):
        if self.set_phase in _listeners:
            _listeners.remove(self.set_phase)
        if self.live:
            self.progress.__exit__(*exc)

    # -- output --------------------------------------------------------------
    def _info(self) -> str:
        return " · ".join(p for p in (self.status, self.val) if p)

    def _refresh(self, completed: float | None = None) -> None:
        if self.live and self.task is not None:
            fields = {"phase": self.phase, "info": self._info()}
            if completed is not None:
                fields["completed"] = completed
            self.progress.update(self.task, **fields)

    def _plain(self, text: str) -> None:
        if self.enabled and not self.live:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def set_phase(self, name: str) -> None:
        if name == self.phase:
            return
        self.phase = name
        self._refresh(1.0 if name == "writing the report" else None)
        if name not in ("validating", "training") or self.status == "":
            if self.pending is not None:
                self.pending.append(f"{name}...")
            else:
                self._plain(f"{name}...")

    # -- the training loop's events --------------------------------------------
    def event(self, kind: str, info: dict) -> None:
        if kind == "start":
            self.total = max(1, info["total_steps"])
            self.budget = info["time_budget"]
            for line in self.pending or []:
                self._plain(line)
            self.pending = None
        elif kind == "batch":
            now = time.monotonic()
            self.window.append((now, info.get("samples", 0)))
            while len(self.window) > 2 and now - self.window[0][0] > 5.0:
                self.window.popleft()
            (t0, s0), (t1, s1) = self.window[0], self.window[-1]
            rate = (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0
            clock_text = clock(info["elapsed"]) + (f" / {clock(self.budget)}" if self.budget else "")
            self.status = (f"epoch {info['epoch'] + 1} · step {info['step']:,} · "
                           + (f"{_rate(rate)} samples/s · " if rate else "") + clock_text
                           + f" · loss {info['loss']:.4g}")
            done = info["step"] / self.total
            if self.budget:
                done = max(done, info["elapsed"] / self.budget)
            if self.phase != "training":
                self.phase = "training"
            self._refresh(min(1.0, done))
            if not self.live and now - self.last_plain >= self.PLAIN_EVERY:
                self.last_plain = now
                self._plain(f"training: {self._info()}")
        elif kind == "validation":
            self.best = min(self.best, info["val_esr"]) if info.get("best") else self.best
            self.best_pre = min(self.best_pre, info["val_esr_pre"]) if info.get("best") else self.best_pre
            self.val = (f"val ESR {info['val_esr']:.4g} (pre {info['val_esr_pre']:.4g})"
                        + (f", best {self.best:.4g}" if math.isfinite(self.best) else ""))
            self.phase = "training"
            self._refresh()
            self._plain(f"validated: {self._info()}")
        elif kind == "rollback":
            self._plain(f"rolled back: {info['message']}")

    def print_summary(self, s: dict) -> None:
        from .knobs import label as setting_label

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
        for row in s.get("settings") or ():  # a captures run: each setting's test span
            rows.append((f"test ESR at {setting_label(row['knobs'])}",
                         f"{row['esr']:.5f} / {row['esr_pre']:.5f} pre" + ("  (held out: never trained on)" if row["held_out"] else "")))
        if s.get("rollbacks"):
            rows.append(("diverged, rolled back", f"{s['rollbacks']} time(s), learning rate halved each time"))
        for k, v in rows:
            table.add_row(k, v)
        self.console.print(table)
        report = Path(s["run_dir"]) / "report.html"
        if report.is_file():  # last, so the final line of `make demo` is where to look and listen
            self.console.print(f"report: {report}", markup=False, highlight=False, soft_wrap=True)
