"""Reamp signals: the file a user plays through the gear and records.

A known layout makes alignment exact: the target's latency is the onset of its
response to calibration blips at known positions (the first sample above the
background level, as NAM's trainer does), not a correlation peak; and the two
copies of a validation segment show whether the rig stayed the same between takes.

Two families are recognised: fxforge's own ``fxforge capture-signal`` file (by its
blips and silences), and NAM's standard input files v1-v3 (by the MD5 of the file,
as NAM's trainer does, or by the same layout where the file was re-encoded).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

BLIP_AMPLITUDE = 0.5
QUIET = 1e-4                 # the input is silent around a blip: below -80 dBFS
LOOKAHEAD, LOOKBACK = 1000, 10000  # samples scanned before and after each blip (NAM's)
ABS_THRESHOLD, REL_THRESHOLD = 3e-4, 1e-3  # trigger above the background (NAM's)
REPLICATE_ESR_WARNING = 0.01  # NAM warns above this: the rig changed, is noisy or time-based


@dataclass(frozen=True)
class Layout:
    """Where a reamp file keeps its calibration parts, in samples (negative: from the end)."""

    name: str
    sample_rate: int
    blips: tuple[int, ...]
    noise: tuple[int, int]                      # a silent span before the blips: the background level
    replicates: Optional[tuple[tuple[int, int], tuple[int, int]]] = None  # two spans of the same audio
    md5: tuple[str, ...] = ()                   # files known by their bytes



def _span(a: int, b: int, n: int) -> slice:
    """Samples a..b of n, where a negative a and a b <= 0 count from the end."""
    return slice(a if a >= 0 else n + a, b if b > 0 else n + b)


# NAM's standard inputs, as `nam/train/core.py` (0.13) lays them out and hashes them.
NAM_LAYOUTS = (
    Layout("NAM input v3.0.0", 48_000, (504_000, 552_000), (492_000, 498_000),
           ((0, 432_000), (-432_000, 0)), ("36cd1af62985c2fac3e654333e36431e",)),
    Layout("NAM input v2.0.0", 48_000, (24_000, 72_000), (12_000, 18_000),
           ((-960_000, -528_000), (-528_000, -96_000)), ("ede3b9d82135ce10c7ace3bb27469422",)),
    Layout("NAM input v1.1.1", 48_000, (12_000, 36_000), (0, 6_000), None,
           ("7c3b6119c74465f79d96c761a0e27370", "4d54a958861bf720ec4637f43d44a7ef")),
)

# fxforge's capture signal, in seconds; its replicate is the last VALIDATION_S of the file.
SILENCE_S = 0.5
BLIPS_S = (0.5, 0.75, 1.0, 1.25)
SWEEPS_S = (2.0, 5.0)
NOISE_S = (5.0, 7.0)
VALIDATION_AT_S = 7.5
VALIDATION_S = 9.0
MIN_SECONDS = 40.0


def fxforge_layout(sample_rate: int) -> Layout:
    s = lambda t: int(round(t * sample_rate))  # noqa: E731
    v = s(VALIDATION_S)
    return Layout("fxforge capture signal v1", sample_rate, tuple(s(t) for t in BLIPS_S),
                  (s(0.05), s(SILENCE_S - 0.05)), ((s(VALIDATION_AT_S), s(VALIDATION_AT_S) + v), (-v, 0)))


def _laid_out(x: np.ndarray, layout: Layout) -> bool:
    """The input holds the layout's blips, each after silence, and silence where the noise is measured."""
    n = len(x)
    if n < max(layout.blips) + LOOKBACK or layout.replicates and n < 2 * (layout.replicates[0][1] - layout.replicates[0][0]):
        return False
    if np.max(np.abs(x[layout.noise[0] : layout.noise[1]])) >= QUIET:
        return False
    return all(abs(x[b]) >= 0.1 and np.max(np.abs(x[b - 200 : b])) < QUIET for b in layout.blips)


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def recognise(x: np.ndarray, sample_rate: int, path: Optional[Path] = None) -> Optional[Layout]:
    """The reamp layout the input file follows, or None for any other recording."""
    ours = fxforge_layout(sample_rate)
    if _laid_out(x, ours):
        return ours
    for layout in NAM_LAYOUTS:
        if layout.sample_rate != sample_rate:
            continue
        if path is not None and Path(path).stat().st_size < 64 << 20 and _md5(Path(path)) in layout.md5:
            return layout
        if _laid_out(x, layout):
            return layout
    return None


def blip_latency(y: np.ndarray, layout: Layout) -> Optional[int]:
    """Samples from each blip to the target's response: the first sample of the averaged
    responses above the background level. None where no response rises above it."""
    n = len(y)
    background = float(np.max(np.abs(y[layout.noise[0] : layout.noise[1]])))
    threshold = max(background + ABS_THRESHOLD, (1 + REL_THRESHOLD) * background)
    scans = [y[b - LOOKAHEAD : b + LOOKBACK] for b in layout.blips if b + LOOKBACK <= n]
    if not scans:
        return None
    # Averaged with their signs: a response and its inversion would cancel, so take each
    # scan's magnitude (an inverting rig must still trigger).
    average = np.mean(np.abs(np.stack(scans)), axis=0)
    triggered = np.flatnonzero(average > threshold)
    return int(triggered[0]) - LOOKAHEAD if triggered.size else None


def replicate_esr(y: np.ndarray, layout: Layout) -> Optional[float]:
    """ESR of the second copy of the validation segment against the first, in the target."""
    if layout.replicates is None:
        return None
    n = len(y)
    (a0, a1), (b0, b1) = layout.replicates
    first, second = y[_span(a0, a1, n)], y[_span(b0, b1, n)]
    m = min(len(first), len(second))
    if m == 0:
        return None
    first, second = np.asarray(first[:m], np.float64), np.asarray(second[:m], np.float64)
    energy = float(np.sum(first**2))
    return float(np.sum((second - first) ** 2) / energy) if energy > 0 else None


def capture_signal(seconds: float = 180.0, sample_rate: int = 48_000, seed: int = 0) -> np.ndarray:
    """The reamp signal: silence, calibration blips, two sine sweeps, rising noise, a
    validation segment, guitar-like playing over the whole level range a guitar reaches
    (peaks from -18 to 0 dBFS), and the validation segment again at the end."""
    from .demo import SAMPLE_RATE, synth_di

    if seconds < MIN_SECONDS:
        raise ValueError(f"a capture signal needs at least {MIN_SECONDS:g} s")
    rng = np.random.default_rng(seed)
    s = lambda t: int(round(t * SAMPLE_RATE))  # noqa: E731
    out = np.zeros(s(seconds), np.float64)
    for t in BLIPS_S:
        out[s(t)] = BLIP_AMPLITUDE
    # Two logarithmic sweeps, 30 Hz to 18 kHz, at two levels.
    a, b = SWEEPS_S
    half = (b - a) / 2
    t = np.arange(s(half) - s(0.05)) / SAMPLE_RATE
    k = np.log(18_000 / 30)
    sweep = np.sin(2 * np.pi * 30 * half / k * (np.exp(t / half * k) - 1)) * np.hanning(len(t)) ** 0.1
    out[s(a) : s(a) + len(t)] = 0.25 * sweep
    out[s(a + half) : s(a + half) + len(t)] = 0.7 * sweep
    # White noise rising from -40 to -6 dBFS RMS.
    a, b = NOISE_S
    noise = rng.standard_normal(s(b - a) - s(0.1))
    out[s(a) : s(a) + len(noise)] = noise * np.logspace(-2, np.log10(0.5), len(noise)) / 3
    validation = synth_di(VALIDATION_S, seed + 1).astype(np.float64)
    v0 = s(VALIDATION_AT_S)
    out[v0 : v0 + len(validation)] = validation
    # The playing: phrases of 4 s at levels drawn over the range, scaled from the DI's -6 dBFS peak.
    p0, p1 = v0 + len(validation) + s(0.5), len(out) - len(validation) - s(0.5)
    playing = synth_di((p1 - p0) / SAMPLE_RATE + 1, seed + 2).astype(np.float64)[: p1 - p0]
    block = s(4.0)
    gains = 10 ** (rng.uniform(-12, 6, -(-len(playing) // block)) / 20)
    envelope = np.interp(np.arange(len(playing)), np.arange(len(gains)) * block + block / 2, gains)
    out[p0:p1] = np.clip(playing * envelope, -1.0, 1.0)
    out[len(out) - len(validation):] = validation
    if sample_rate != SAMPLE_RATE:  # the blips stay single samples at their positions
        from .dsp import resample

        blips = [s(t) for t in BLIPS_S]
        out[blips] = 0.0
        out = resample(out.astype(np.float32), SAMPLE_RATE, sample_rate).astype(np.float64)
        layout = fxforge_layout(sample_rate)
        out[: layout.blips[-1] + 200] = 0.0
        out[list(layout.blips)] = BLIP_AMPLITUDE
        v = len(out) - layout.replicates[0][1] + layout.replicates[0][0]
        out[v:] = out[layout.replicates[0][0] : layout.replicates[0][1]][: len(out) - v]
    return out.astype(np.float32)
