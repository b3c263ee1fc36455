"""The stress check: a trained model under what a guitar and a boost pedal can send.

Each probe runs through the model twice, in float32 (as a plugin runs it) and in
float64. Where the two part, the model is chaotic on that input: its output then
depends on rounding and sounds like noise. Each probe also reports the output's
peak against the target's observed peak, and, for probes that stop, how long the
output takes to decay below -80 dBFS (a silent pedal must fall silent).
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np
import torch

from .model import contract
from .stream import map_state, run_blocks

SINE_HZ = (40, 82, 200, 1000, 5000)
SINE_PEAKS = (0.1, 0.3, 0.6, 1.0)
DI_GAINS_DB = (0, 6, 12)
DI_SECONDS = 3.0
PROBE_SECONDS = 0.5      # each sine, the burst, DC and noise; the silence after is longer
TAIL_SECONDS = 1.0
CHAOS = 1e-3             # float32 vs float64 beyond this: the model is chaotic there
LOUD = 1.5               # output peaks beyond this times the target's peak are too loud
SILENT_DB = -80.0
DECAY_MS = 200.0         # silence must fall below SILENT_DB within this


@dataclass
class Probe:
    name: str
    input_peak: float
    output_peak: float = 0.0
    f32_vs_f64: float = 0.0
    decay_ms: Optional[float] = None  # None: the probe does not stop, or its tail never fell silent
    never_silent: bool = False        # still above -80 dBFS at the end of the tail
    ok: bool = True


def _probe_signals(sample_rate: int, di: Optional[np.ndarray]) -> list[tuple[str, float, np.ndarray, Optional[int]]]:
    """(name, input peak, signal, index where the input stops or None)."""
    n = int(PROBE_SECONDS * sample_rate)
    tail = int(TAIL_SECONDS * sample_rate)
    t = np.arange(n) / sample_rate
    fade = np.minimum(1.0, t / 0.01)  # 10 ms fade-in: a note, not a click
    out = []
    if di is not None and di.size:
        di = di[: int(DI_SECONDS * sample_rate)].astype(np.float64)
        for db in DI_GAINS_DB:
            x = di * 10 ** (db / 20)
            out.append((f"test DI +{db} dB", float(np.max(np.abs(x))), x, None))
    for hz in SINE_HZ:
        for peak in SINE_PEAKS:
            out.append((f"sine {hz} Hz", peak, peak * fade * np.sin(2 * np.pi * hz * t), None))
    burst = 0.5 * fade * np.sin(2 * np.pi * 110 * t)
    out.append(("110 Hz burst, then silence", 0.5, np.concatenate([burst, np.zeros(tail)]), n))
    out.append(("DC 0.5, then silence", 0.5, np.concatenate([0.5 * fade, np.zeros(tail)]), n))
    noise = np.random.default_rng(0).uniform(-1, 1, n)
    out.append(("full-scale noise, then silence", 1.0, np.concatenate([noise, np.zeros(tail)]), n))
    return out


def _run(model, signals: list[np.ndarray], dtype) -> list[np.ndarray]:
    """The signals as one zero-padded batch (each probe starts from the initial state)."""
    longest = max(len(s) for s in signals)
    batch = torch.zeros(len(signals), longest, 1, dtype=dtype)
    for i, s in enumerate(signals):
        batch[i, : len(s), 0] = torch.from_numpy(s)
    state = map_state(model.initial_state(len(signals), torch.device("cpu")),
                      lambda t: t.to(dtype) if t.is_floating_point() else t)
    y, _ = run_blocks(model, batch, block=None, state=state)
    return [y[i, : len(s), 0].double().numpy() for i, s in enumerate(signals)]


def stress(model: torch.nn.Module, sample_rate: int, target_peak: float, di: Optional[np.ndarray] = None) -> dict:
    """Run every probe; returns {'probes': [...], 'stable_up_to': input peak, 'target_peak': ...}."""
    model32 = copy.deepcopy(model).cpu().float().eval()
    model64 = copy.deepcopy(model).cpu().double().eval()
    latency = contract(model).latency
    specs = _probe_signals(sample_rate, di)
    groups: dict[int, list[int]] = {}
    for i, (_, _, x, _) in enumerate(specs):  # batch probes of one length together
        groups.setdefault(len(x), []).append(i)
    outputs: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    with torch.no_grad():
        for idx in groups.values():
            xs = [specs[i][2] for i in idx]
            y32 = _run(model32, [x.astype(np.float32).astype(np.float64) for x in xs], torch.float32)
            y64 = _run(model64, [x.astype(np.float32).astype(np.float64) for x in xs], torch.float64)
            for i, a, b in zip(idx, y32, y64):
                outputs[i] = (a, b)
    probes = []
    for i, (name, peak, x, stop) in enumerate(specs):
        y32, y64 = outputs[i]
        p = Probe(name, round(peak, 4), float(np.max(np.abs(y64))), float(np.max(np.abs(y32 - y64))))
        if stop is not None:
            after = np.abs(y64[stop + latency :])
            loud = np.flatnonzero(after >= 10 ** (SILENT_DB / 20))
            p.never_silent = bool(loud.size and loud[-1] >= len(after) - 1)
            p.decay_ms = None if p.never_silent else 1000 * (int(loud[-1]) + 1) / sample_rate if loud.size else 0.0
        p.ok = bool(p.f32_vs_f64 <= CHAOS and p.output_peak <= LOUD * target_peak and not p.never_silent
                    and (p.decay_ms is None or p.decay_ms <= DECAY_MS))
        probes.append(p)
    # The input level up to which no probe is chaotic.
    levels = sorted({p.input_peak for p in probes})
    stable = 0.0
    for level in levels:
        if any(q.f32_vs_f64 > CHAOS for q in probes if q.input_peak <= level):
            break
        stable = level
    return {"probes": [asdict(p) for p in probes], "stable_up_to": stable, "target_peak": target_peak,
            "chaos_threshold": CHAOS, "passed": all(p.ok for p in probes)}


def warning(result: dict, input_peak: float) -> Optional[str]:
    """A one-line warning where the model is chaotic inside its own training range."""
    if result["stable_up_to"] < input_peak:
        return (f"the model is numerically unstable (chaotic) at input peaks from {result['stable_up_to']:.2f} "
                f"up, inside its training range (the DI peaks at {input_peak:.2f}); see `fxforge check`")
    return None
