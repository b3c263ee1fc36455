"""A learned cabinet stage: a causal FIR after any waveform model.

A recurrent model cannot build a cabinet's long linear response; a FIR can.
It starts as the identity, a measured IR, or (``fit = true``) the least-squares
FIR from the model's initial output to the target, and trains jointly with the
model. Measured on the demo captures, the fitted start is exact for a linear
chain (a cabinet alone, a clean amp) but a poor start for a driven amp: the
model must then learn to pre-compensate the fitted filter (60 s, amp capture:
val ESR 0.35 fitted vs 0.043 from the identity), hence the identity default.
Its state is the last ``taps - 1`` samples of the model's output, so each
TBPTT chunk (and each streamed block) sees the previous one's tail, not zeros.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from .errors import FxforgeError

MIN_TAPS, MAX_TAPS = 64, 2048


class CabinetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    taps: int = Field(2048, ge=MIN_TAPS, le=MAX_TAPS, description="FIR length in samples (2048: 43 ms at 48 kHz, "
                                                                  "a cabinet's low resonances need it)")
    ir: Optional[Path] = Field(None, description="initialise from a measured IR (WAV/FLAC, mono, the model's rate)")
    lr_scale: float = Field(1.0, gt=0, le=1, description="its learning rate relative to the model's (Adam moves "
                                                         "each tap by about the learning rate per step)")
    fit: bool = Field(False, description="without `ir`: start from the least-squares FIR from the model's initial "
                                         "output to the target on the training audio (else the identity)")


def read_ir(path: Path, taps: int, sample_rate: int) -> np.ndarray:
    from .audio import read_audio

    ir, sr = read_audio(path)
    if sr != sample_rate:
        raise FxforgeError(f"{path}: cabinet IR is at {sr} Hz but the audio is at {sample_rate} Hz; resample it first")
    out = np.zeros(taps, np.float32)
    out[: min(taps, len(ir))] = ir[:taps]
    return out


FIT_SECONDS = 30.0  # of training audio: plenty for a 2048-tap estimate, a few seconds of work


def fit_fir(x: np.ndarray, y: np.ndarray, taps: int, sample_rate: int) -> np.ndarray:
    """The FIR h minimising |y - h * x|^2 (Wiener-Hopf: Toeplitz(r_xx) h = r_yx).

    Exact for a linear chain (a cabinet alone, a clean amp); for a driven amp
    it is the best *linear* stand-in, which measured as a worse start than the
    identity (see the module docstring).
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


class CabinetFIR(nn.Module):
    """Wraps ``inner`` as y = fir * inner(x); same streaming face as any model."""

    def __init__(self, inner: nn.Module, cfg: CabinetConfig, sample_rate: int):
        super().__init__()
        self.inner = inner
        self.taps = cfg.taps
        kernel = torch.zeros(cfg.taps)
        if cfg.ir is not None:
            kernel = torch.from_numpy(read_ir(cfg.ir, cfg.taps, sample_rate))
        else:
            kernel[0] = 1.0  # identity: the model's output passes unchanged
        # Stored newest-tap-first as an impulse response; conv1d wants it flipped.
        self.ir = nn.Parameter(kernel)
        self.ir.lr_scale = cfg.lr_scale  # read by fxforge.train.param_groups
        self.latency = int(getattr(inner, "latency", 0))
        self.wants_fit = cfg.fit and cfg.ir is None

    @torch.no_grad()
    def fit_to(self, x: np.ndarray, y: np.ndarray, sample_rate: int) -> None:
        """Start from the least-squares FIR from the inner model's initial output to the
        target (see :func:`fit_fir`); a residual model starts near the identity, so this
        is close to the fit from the input itself."""
        from .stream import predict_clips

        n = min(len(x), int(FIT_SECONDS * sample_rate))
        device = self.ir.device
        h = predict_clips(self.inner, torch.from_numpy(x[:n]).to(device), clip=sample_rate, context=2048)
        if self.latency:  # the output lags by the model's latency; fit what the FIR will see
            y = np.concatenate([np.zeros(self.latency, y.dtype), y[: len(y) - self.latency]])
        self.ir.copy_(torch.from_numpy(fit_fir(h.cpu().numpy(), y[:n], self.taps, sample_rate)).to(device))

    def initial_state(self, batch: int, device=None):
        return (self.inner.initial_state(batch, device), torch.zeros(batch, self.taps - 1, 1, device=device))

    def forward(self, x, state):
        inner_state, tail = state
        h, inner_state = self.inner(x, inner_state)
        full = torch.cat([tail, h], dim=1)
        if h.shape[1] >= FFT_MIN_BLOCK:
            y = _fft_fir(full[..., 0], self.ir).unsqueeze(-1)
        else:
            y = nn.functional.conv1d(full.transpose(1, 2), self.ir.flip(0).view(1, 1, -1)).transpose(1, 2)
        return y, (inner_state, full[:, full.shape[1] - (self.taps - 1):])


FFT_MIN_BLOCK = 32  # direct convolution below: cheaper for the tiny blocks of real-time streaming


def _fft_fir(full: torch.Tensor, ir: torch.Tensor) -> torch.Tensor:
    """The valid part of full * ir via FFT: ~100x faster than conv1d for 2048 taps, and
    what makes a long FIR affordable in training. No circular wrap reaches the valid
    outputs (indices taps-1 .. n-1) when nfft >= n."""
    n, taps = full.shape[1], ir.numel()
    nfft = 1 << (n - 1).bit_length()
    y = torch.fft.irfft(torch.fft.rfft(full, nfft) * torch.fft.rfft(ir, nfft), nfft)
    return y[:, taps - 1 : n]
