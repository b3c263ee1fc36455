"""Latency from the onset of the pair's estimated linear response.

A cross-correlation peaks at the effect's group delay, not where its response
starts: a cabinet peaks 2-3 ms after its onset (and may invert), so shifting the
target by that peak makes it non-causal and no causal model can fit it. Here the
latency is where the response *starts*: a least-squares FIR from input to target,
over negative lags too, and the first lag at which its energy rises out of the
estimate's own noise floor (measured on the negative lags, which a causal effect
leaves empty). Where that noise is too high to call, the latency is left at 0, and
so is a small onset in a noisy estimate: a response that rises slowly out of the
noise looks late by a few samples, and cutting into it is worse than leaving it.

numpy and scipy only: no torch, so it is cheap to import.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft as sp_fft
from scipy.linalg import solve_toeplitz

NEGATIVE_LAGS = 256      # the noise reference: a causal effect leaves these lags empty
RESPONSE_TAIL = 2048     # lags estimated past the search window (the response's body)
# Relative diagonal loading: a DI has little energy in the top octave, where a nonlinear
# target's residual would otherwise fill the estimate with noise. It smears a sharp onset,
# so it scales down with the residual: a linear pair gets an exact response.
RIDGE = 1e-4
RIDGE_RESIDUAL = 0.01    # the residual (fraction of the target unexplained) at which RIDGE is full
WINDOW_SECONDS = 30      # the response is estimated on stretches this long ...
WINDOWS = 4              # ... and at most this many of them
# Below this peak-to-noise ratio the onset cannot be told from the estimate's noise.
MIN_PEAK_TO_NOISE = 10.0
# In a noisy estimate (peak below CLEAN x the noise) a slowly rising response hides its
# first taps in the noise, so onsets under MIN_CORRECTED samples are the effect's own.
MIN_CORRECTED = 24
CLEAN = 1000.0
# ... and a noisy estimate's onset is taken this many samples early: under-correcting costs a
# model a few samples of delay to learn, over-correcting cuts into the response (NAM backs off 1).
SAFETY = 4
# The quiet before a response: this many taps whose RMS is within QUIET_RMS of the noise's.
QUIET_RUN = 32
QUIET_RMS = 1.5
EDGE_RUN, EDGE_LEVEL = 4, 2.0     # the last taps before the onset: each within 2x the quiet's RMS
# A clipper's output is far more linear in a clipped copy of its input than in the input
# (a Hammerstein view, y ~ h * tanh(g x)): its estimated response stands out of the noise,
# whose spread around lag 0 otherwise hides the onset. Gains in units of 1 / the input's RMS;
# tried only where the plain estimate is noisy.
SATURATIONS = (0.1, 0.3, 1.0)


def linear_response(x: np.ndarray, y: np.ndarray, negative: int, positive: int, ridge: float = RIDGE) -> np.ndarray:
    """Least-squares FIR h with y[n] ~ sum_k h[k] x[n - k] for k in [-negative, positive];
    returned as an array whose index i is lag i - negative."""
    n = min(len(x), len(y))
    size = sp_fft.next_fast_len(2 * n - 1, real=True)
    return _solve(_spectrum(x[:n], size), _spectrum(y[:n], size), size, negative, positive, ridge)


def _spectrum(signal: np.ndarray, size: int) -> np.ndarray:
    signal = np.asarray(signal, np.float64)
    return sp_fft.rfft(signal - np.mean(signal), size, workers=-1)


def _solve(fx: np.ndarray, fy: np.ndarray, size: int, negative: int, positive: int, ridge: float) -> np.ndarray:
    auto = sp_fft.irfft(fx * np.conj(fx), size, workers=-1)
    cross = sp_fft.irfft(fy * np.conj(fx), size, workers=-1)  # index k: sum_n y[n] x[n - k]
    taps = negative + positive + 1
    if auto[0] <= 0:
        return np.zeros(taps)
    rhs = np.concatenate([cross[size - negative:], cross[: positive + 1]]) if negative else cross[: positive + 1]
    column = auto[:taps].copy()
    column[0] *= 1 + ridge
    h = solve_toeplitz(column, rhs)
    energy = float(sp_fft.irfft(fy * np.conj(fy), size, workers=-1)[0])
    residual = max(0.0, 1 - float(h @ rhs) / max(energy, 1e-30))
    if residual < RIDGE_RESIDUAL:  # nearly linear: less loading, a sharper response
        column[0] = auto[0] * (1 + max(ridge * residual / RIDGE_RESIDUAL, 1e-10))
        h = solve_toeplitz(column, rhs)
    return h


@dataclass
class Onset:
    """Where the estimated response starts, and how sure that is."""

    lag: int              # first lag of the response (may be negative: then nothing is corrected)
    peak_lag: int         # lag of the largest tap (what a correlation peak would report)
    polarity: int         # sign of the largest tap
    peak_to_noise: float  # largest tap over the noise floor's RMS
    sure: bool
    reason: str = ""      # why not, in a few words, when not sure


def find_onset(h: np.ndarray, negative: int) -> Onset:
    """The onset of a response estimated by :func:`linear_response`."""
    a = np.abs(h)
    ipk = 16 + int(np.argmax(a[16 : len(h) - 16]))
    peak = float(a[ipk])
    # The extreme lags carry the solve's edge effects; the reference stops short of lag 0,
    # where a resampler's pre-ring may already begin.
    reference = h[16 : max(17, negative - 16)]
    noise = float(np.sqrt(np.mean(reference**2))) if reference.size else 0.0
    ratio = peak / noise if noise > 0 else np.inf
    polarity = 1 if h[ipk] >= 0 else -1
    if peak == 0:
        return Onset(0, 0, 1, 0.0, False, "the target holds nothing linear in the input")
    # The main arrival: the first tap clearly above the noise and a fair part of the peak.
    usable = slice(16, len(h) - 16)  # both ends carry the solve's edge effects
    arrivals = np.flatnonzero(a[usable] >= max(8 * noise, 0.2 * peak))
    if not arrivals.size:
        return Onset(0, ipk - negative, polarity, ratio, False,
                     f"the estimated response is buried in noise (peak {ratio:.1f}x the noise floor)")
    k1 = 16 + int(arrivals[0])
    start = max(0, negative - 16)  # lags before -16 are the noise reference
    # The onset: the last lag before the arrival with quiet before it: QUIET_RUN taps whose
    # RMS is at the noise floor (a zero crossing inside a ringing response is not that long),
    # the last few of them each within the noise too (a sharp rise is not averaged away).
    # Relative to the peak: -60 dB in a clean estimate, -40 dB in a noisy one, whose noise
    # also gathers near the response (a clipper's residual correlates with the input there).
    floor = max(QUIET_RMS * noise, (1e-3 if ratio >= CLEAN else 1e-2) * peak)
    energy = np.concatenate([[0.0], np.cumsum(h**2)])
    onset_index = start
    for i in range(k1, start - 1, -1):
        lo = max(0, i - QUIET_RUN)
        if (np.sqrt((energy[i] - energy[lo]) / max(1, i - lo)) <= floor
                and np.all(a[max(0, i - EDGE_RUN) : i] <= EDGE_LEVEL * floor)):
            onset_index = i
            break
    onset = Onset(onset_index - negative, ipk - negative, polarity, ratio, True)
    if ratio < MIN_PEAK_TO_NOISE:
        onset.sure, onset.reason = False, f"the estimated response is buried in noise (peak {ratio:.1f}x the noise floor)"
    elif k1 < start:
        onset.sure, onset.reason = False, "the estimated response starts before the input (target leads?)"
    return onset


def latency_to_correct(onset: Onset) -> tuple[int, str]:
    """The latency to take out of the target for this onset, and why it is not the onset
    (empty where it is)."""
    if not onset.sure:
        return 0, onset.reason
    lag = max(0, onset.lag)
    if onset.peak_to_noise >= CLEAN or lag == 0:
        return lag, ""
    if lag < MIN_CORRECTED:
        return 0, (f"an onset of {lag} samples is within a noisy estimate's uncertainty "
                   "(a response rising slowly out of the noise)")
    return lag - SAFETY, f"taken {SAFETY} samples early: the estimate is noisy (peak {onset.peak_to_noise:.0f}x the noise)"


@dataclass
class Response:
    """The estimated linear response of a pair and the onset found in it."""

    h: np.ndarray
    first_lag: int
    onset: Onset
    view: str = "the input"   # what the response was estimated from

    @property
    def lags(self) -> np.ndarray:
        return np.arange(len(self.h)) + self.first_lag

    def tail_energy(self, sample_rate: int, after_ms: float = 5.0) -> float:
        """Fraction of the response's energy later than ``after_ms`` past its onset: a
        cabinet rings for tens of ms, an amp without one is mostly over within a few."""
        i0 = self.onset.lag - self.first_lag
        body = self.h[max(0, i0):] ** 2
        total = float(body.sum())
        if total <= 0:
            return 0.0
        return float(body[int(sample_rate * after_ms / 1000):].sum() / total)


def estimate_response(x: np.ndarray, y: np.ndarray, sample_rate: int, max_lag: int) -> Response:
    """The linear response over lags -NEGATIVE_LAGS .. max_lag + RESPONSE_TAIL.

    It is estimated on up to WINDOWS stretches of WINDOW_SECONDS spread over the pair, from
    the input and, where that is noisy, from clipped copies of it (SATURATIONS): a fuzz's
    loudest passage is its least linear, a quieter one shows the response above the noise."""
    n = min(len(x), len(y))
    span = min(n, int(WINDOW_SECONDS * sample_rate))
    count = min(WINDOWS, -(-n // span))
    starts = np.linspace(0, n - span, count).astype(int) if count > 1 else [0]
    negative = min(NEGATIVE_LAGS, max(32, span // 64))
    size = sp_fft.next_fast_len(2 * span - 1, real=True)
    x = np.asarray(x, np.float64)
    rms = float(np.sqrt(np.mean(x[:n] ** 2)))
    # The clearest window of the input, then clipped views of that window where it is noisy;
    # across views, the latest onset of a clear estimate: a view in which the response is less
    # linear spreads it around lag 0 (an earlier onset), never later.
    plain, window = None, None
    for start in starts:
        xs, fy = x[start : start + span], _spectrum(y[start : start + span], size)
        h = _solve(_spectrum(xs, size), fy, size, negative, max_lag + RESPONSE_TAIL, RIDGE)
        candidate = Response(h, -negative, find_onset(h, negative))
        if plain is None or candidate.onset.peak_to_noise > plain.onset.peak_to_noise:
            plain, window = candidate, (xs, fy)
    if plain.onset.peak_to_noise >= CLEAN or rms == 0:
        return plain  # linear enough: a clipped view only blurs it
    xs, fy = window
    views = [plain]
    for gain in SATURATIONS:
        h = _solve(_spectrum(np.tanh(gain * xs / rms), size), fy, size, negative, max_lag + RESPONSE_TAIL, RIDGE)
        views.append(Response(h, -negative, find_onset(h, negative),
                              f"tanh({gain:g} x / rms), a clipped copy of the input"))
    clear = [r for r in views if r.onset.sure]
    return max(clear, key=lambda r: r.onset.lag) if clear else plain
