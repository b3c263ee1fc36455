"""The FIR's least-squares solutions: the closed-form start (``fit_fir``) and the running
normal equations the taps are re-solved from while the model trains.

Variable projection: the FIR enters the loss linearly, so its optimum for the model's
current output is one Toeplitz solve, and the model's gradient at that optimum is the
gradient with the FIR held fixed. Adam instead moves every tap by about the learning rate
per step, uncorrelated across taps; with the low end of a cabinet (taps strongly
correlated through the guitar's spectrum) that converged slowly.
"""
from __future__ import annotations

import numpy as np
import torch

FIT_SECONDS = 30.0  # of training audio: plenty for a 2048-tap estimate, a few seconds of work

# Solving from the first chunks, or from a short memory, fits the noise of too few samples (a FIR
# of 2048 taps needs ~10^6) and throws the model off; so ~200 chunks of memory and the first solve
# after 300 (docs/recipe_measurements.md).
DECAY = 0.995      # per training chunk
FIRST_SOLVE = 300  # chunks of statistics before the first solve (the FIR keeps its start until then)
SOLVE_EVERY = 8    # chunks between solves: a solve costs more than a chunk's step
# Diagonal loading, relative to the model's output power: it bounds the FIR's gain where that
# output is weak, which fixes the split of gain between model and FIR (otherwise free: h -> a h,
# FIR -> FIR / a, band by band). Too little loading lets the pair drift and diverge late; this much
# converged steadily (docs/recipe_measurements.md).
LOADING = 0.1


def fit_fir(x: np.ndarray, y: np.ndarray, taps: int, sample_rate: int) -> np.ndarray:
    """The FIR h minimising |y - h * x|^2 (Wiener-Hopf: Toeplitz(r_xx) h = r_yx).

    Exact for a linear chain (a cabinet alone, a clean amp); for a driven amp
    it is the best *linear* stand-in, which measured as a worse start than the
    identity (docs/recipe_measurements.md).
    """
    from scipy.linalg import solve_toeplitz

    n = min(len(x), len(y), int(FIT_SECONDS * sample_rate))
    x64, y64 = x[:n].astype(np.float64), y[:n].astype(np.float64)
    nfft = 1 << int(np.ceil(np.log2(n + taps)))
    xf = np.fft.rfft(x64, nfft)
    r_xx = np.fft.irfft(xf * np.conj(xf), nfft)[:taps]
    r_yx = np.fft.irfft(np.fft.rfft(y64, nfft) * np.conj(xf), nfft)[:taps]
    if r_xx[0] <= 0:
        return np.eye(1, taps, dtype=np.float32)[0]  # silent input: nothing to fit
    r_xx[0] *= 1 + 1e-4  # a little diagonal loading keeps band-limited input well conditioned
    return solve_toeplitz(r_xx, r_yx).astype(np.float32)


def precise(t: torch.Tensor) -> torch.dtype:
    """float64 where the device has it (Apple's MPS has no float64)."""
    return torch.float32 if t.device.type == "mps" else torch.float64


def correlations(full: torch.Tensor, y: torch.Tensor, taps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed over the batch and the chunk's outputs t, for lags k = 0..taps-1: the model's
    output against itself, sum h[t] h[t-k], and the target against it, sum y[t] h[t-k].
    ``full`` is h with the taps-1 samples before the chunk in front, so every lag is in
    reach. One FFT of each signal; the batch is summed before the inverse (it is linear)."""
    nfft = 1 << (full.shape[1] - 1).bit_length()
    spectrum = torch.fft.rfft(full, nfft)
    h = torch.fft.rfft(full[:, taps - 1:], nfft).conj()
    t = torch.fft.rfft(y, nfft).conj()
    both = torch.stack([(h * spectrum).sum(0), (t * spectrum).sum(0)])
    auto, cross = torch.fft.irfft(both, nfft)[:, :taps].flip(1)
    return auto, cross


def solve(auto: np.ndarray, cross: np.ndarray) -> np.ndarray:
    """The taps from the running normal equations, with LOADING on the diagonal; the
    identity while the model's output has been silent."""
    from scipy.linalg import solve_toeplitz

    if auto[0] <= 0:
        out = np.zeros(len(auto), np.float32)
        out[0] = 1.0
        return out
    auto = auto.copy()
    auto[0] *= 1 + LOADING
    return solve_toeplitz(auto, cross).astype(np.float32)
