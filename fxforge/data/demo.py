"""The built-in demo capture: a seeded, synthesized dry guitar DI run through
a reference effect chain built with pedalboard, so `make demo` needs no download.

The DI is plucked strings (Karplus-Strong): single-note runs, strummed chords,
palm mutes, varied dynamics and silences. The chains (``DEMO_KINDS``): ``amp``, a
driven amp without cabinet (one clipping stage between filters); ``lead``, a
high-gain lead channel closer to a real amp (two cascaded gain stages, the first
asymmetric with a coupling capacitor after it, so its bias shifts with the playing;
a tone stack; a power stage that sags); and ``cab``/``lead-cab``, either into a
cabinet-like impulse response.
"""
from __future__ import annotations

import numpy as np
import pedalboard as pb

from .pair import PairedAudio
from ..schema import DEMO_KINDS

SAMPLE_RATE = 48_000
# Open strings of a guitar in standard tuning, as MIDI notes.
OPEN_STRINGS = (40, 45, 50, 55, 59, 64)


def _hz(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def pluck(freq: float, seconds: float, velocity: float, damping: float, rng: np.random.Generator) -> np.ndarray:
    """One plucked string (Karplus-Strong), computed a period at a time."""
    period = max(2, int(round(SAMPLE_RATE / freq)))
    n = int(seconds * SAMPLE_RATE)
    out = np.zeros(n + period + 1, dtype=np.float64)
    burst = rng.uniform(-1, 1, period)
    # Softer picking has fewer highs: smooth the excitation more.
    smooth = int(1 + (1 - velocity) * 6)
    burst = np.convolve(burst, np.ones(smooth) / smooth, mode="same")
    out[1 : period + 1] = velocity * (burst - burst.mean())
    rho = damping * 0.5
    for start in range(period + 1, n + period + 1, period):
        stop = min(start + period, n + period + 1)
        k = stop - start
        out[start:stop] = rho * (out[start - period : start - period + k] + out[start - period - 1 : start - period - 1 + k])
    return out[1 : n + 1]


def synth_di(seconds: float, seed: int = 0) -> np.ndarray:
    """A seeded guitar-like DI at 48 kHz, peak about -6 dBFS."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    out = np.zeros(n + SAMPLE_RATE * 4)
    t = 0.0
    while t < seconds:
        phrase = rng.choice(["notes", "chords", "mutes", "silence"], p=[0.4, 0.35, 0.15, 0.1])
        level = rng.uniform(0.15, 1.0)  # the phrase's dynamic
        if phrase == "silence":
            t += rng.uniform(0.3, 1.5)
            continue
        for _ in range(int(rng.integers(3, 9))):
            if t >= seconds:
                break
            start = int(t * SAMPLE_RATE)
            if phrase == "notes":
                string = rng.integers(0, 6)
                midi = OPEN_STRINGS[string] + rng.integers(0, 15)
                dur = rng.uniform(0.2, 1.2)
                note = pluck(_hz(midi), dur + 0.5, level * rng.uniform(0.6, 1.0), rng.uniform(0.994, 0.999), rng)
                note[int(dur * SAMPLE_RATE):] *= np.linspace(1, 0, len(note) - int(dur * SAMPLE_RATE))
                out[start : start + len(note)] += note
                t += dur
            else:
                fret = rng.integers(0, 10)
                shape = rng.choice([(0, 2, 2, 1, 0, 0), (0, 2, 2, 0, 0, 0), (0, 0, 2, 2, 2, 0), (0, 2, 2, 0, 0, -99)])
                dur = rng.uniform(0.15, 0.35) if phrase == "mutes" else rng.uniform(0.4, 2.0)
                damping = 0.97 if phrase == "mutes" else rng.uniform(0.995, 0.999)
                down = rng.random() < 0.6
                strings = range(6) if down else range(5, -1, -1)
                for j, s in enumerate(strings):
                    if shape[s] < 0:
                        continue
                    midi = OPEN_STRINGS[s] + fret + shape[s]
                    offset = start + int(j * rng.uniform(0.004, 0.015) * SAMPLE_RATE)  # strum spread
                    note = pluck(_hz(midi), dur + 0.3, level * rng.uniform(0.5, 0.9), damping, rng)
                    note[int(dur * SAMPLE_RATE):] *= np.linspace(1, 0, len(note) - int(dur * SAMPLE_RATE))
                    out[offset : offset + len(note)] += note
                t += dur
    out = out[:n]
    out *= 0.5 / max(1e-9, np.max(np.abs(out)))
    return out.astype(np.float32)


def cabinet_ir(seed: int = 1, taps: int = 2048) -> np.ndarray:
    """A cabinet-like impulse response: band-limited, resonant, ~40 ms long."""
    rng = np.random.default_rng(seed)
    t = np.arange(taps) / SAMPLE_RATE
    ir = rng.normal(0, 1, taps) * np.exp(-t / 0.004)
    for f, q in ((110.0, 0.02), (2200.0, 0.004), (3400.0, 0.003)):  # body and cone resonances
        ir += 0.8 * np.sin(2 * np.pi * f * t) * np.exp(-t / q)
    board = pb.Pedalboard([pb.HighpassFilter(70), pb.LowpassFilter(5000), pb.LowpassFilter(6000)])
    ir = board(ir.astype(np.float32)[None], SAMPLE_RATE)[0]
    return (ir / np.sqrt(np.sum(ir**2))).astype(np.float32)


def amp_chain() -> pb.Pedalboard:
    """A driven amp without cabinet: input filter, mid push, drive, tone, level."""
    return pb.Pedalboard([
        pb.HighpassFilter(cutoff_frequency_hz=90),
        pb.PeakFilter(cutoff_frequency_hz=800, gain_db=6, q=0.8),
        pb.Gain(gain_db=12),
        pb.Distortion(drive_db=20),
        pb.LowpassFilter(cutoff_frequency_hz=4500),
        pb.LowShelfFilter(cutoff_frequency_hz=200, gain_db=3),
        pb.Gain(gain_db=-12),
    ])


def lead_amp(x: np.ndarray) -> np.ndarray:
    """A high-gain lead channel: what a single static clipper between filters lacks.

    Stage 1 clips asymmetrically (even harmonics), and the coupling capacitor after
    it turns that asymmetry into a bias that moves with the playing (memory, ~20 ms);
    stage 2 clips again; a scooped tone stack; a power stage whose compressor stands
    in for supply sag (80 ms release), then soft saturation and the output transformer.
    """
    sr = SAMPLE_RATE
    run = lambda board, s: board(s[None].astype(np.float32), sr, reset=True)[0].astype(np.float64)  # noqa: E731
    s = run(pb.Pedalboard([pb.HighpassFilter(120), pb.PeakFilter(700, 4, 0.7), pb.Gain(20)]), x)
    s = np.tanh(s + 0.4) - np.tanh(0.4)
    s = run(pb.Pedalboard([pb.HighpassFilter(8), pb.LowpassFilter(7000), pb.Gain(12)]), s)
    s = np.tanh(s)
    s = run(pb.Pedalboard([pb.LowShelfFilter(100, 4), pb.PeakFilter(500, -6, 0.6), pb.HighShelfFilter(3000, 3),
                           pb.Compressor(threshold_db=-14, ratio=3, attack_ms=5, release_ms=80), pb.Gain(6)]), s)
    s = np.tanh(1.5 * s) / 1.5
    return run(pb.Pedalboard([pb.HighpassFilter(60), pb.LowpassFilter(6500), pb.Gain(-6)]), s).astype(np.float32)


def demo_capture(kind: str = "amp", seconds: float = 180.0, seed: int = 0) -> PairedAudio:
    """The dry DI and its processed target; ``kind`` is one of ``DEMO_KINDS``."""
    if kind not in DEMO_KINDS:
        raise ValueError(f"unknown demo capture {kind!r}")
    x = synth_di(seconds, seed)
    y = lead_amp(x) if kind.startswith("lead") else amp_chain()(x[None], SAMPLE_RATE, reset=True)[0]
    if kind.endswith("cab"):
        board = pb.Pedalboard([pb.Convolution(cabinet_ir(), sample_rate=SAMPLE_RATE), pb.Gain(gain_db=6)])
        y = board(y[None].astype(np.float32), SAMPLE_RATE, reset=True)[0]
    return PairedAudio(x, y.astype(np.float32), SAMPLE_RATE, 0,
                       [f"built-in demo capture '{kind}' ({seconds:g} s, seed {seed})"])
