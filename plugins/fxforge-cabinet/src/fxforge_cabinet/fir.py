"""The cabinet stage's module: a causal FIR after any waveform model.

A recurrent model cannot build a cabinet's long linear response; a FIR can. It starts
as the identity, a measured IR, or (``fit = true``) the least-squares FIR from the
model's initial output to the target. By default it then follows the least-squares
optimum for the model's current output (``after_step``, :mod:`.solver`), which converges
far better than Adam on the taps (docs/recipe_measurements.md). A 10 Hz DC blocker sits
in front of the FIR (:func:`dc_block`), and a gauge penalty (:mod:`.gauge`) keeps the
model's DC and level where the loss cannot see them. Its state is the last ``taps - 1``
samples the FIR saw, so each TBPTT chunk (and each streamed block) sees the previous
one's tail, not zeros.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from fxforge import FxforgeError
from fxforge import pre_emphasis
from fxforge import Stage

from .config import CabinetConfig
from .gauge import gauge_penalty
from .solver import DECAY, FIRST_SOLVE, FIT_SECONDS, SOLVE_EVERY, correlations, fit_fir, precise, solve

DC_BLOCK_HZ = 10.0
FFT_MIN_BLOCK = 32  # direct convolution below: cheaper for the tiny blocks of real-time streaming


def read_ir(path: Path, taps: int, sample_rate: int) -> np.ndarray:
    from fxforge import read_audio

    ir, sr = read_audio(path)
    if sr != sample_rate:
        raise FxforgeError(f"{path}: cabinet IR is at {sr} Hz but the audio is at {sample_rate} Hz; resample it first")
    out = np.zeros(taps, np.float32)
    out[: min(taps, len(ir))] = ir[:taps]
    return out


class CabinetFIR(Stage):
    """Wraps ``inner`` as y = fir * inner(x); same streaming face as any model."""

    stage_name = "cabinet"

    def __init__(self, inner: nn.Module, cfg: CabinetConfig, sample_rate: int):
        super().__init__(inner)
        self.taps = cfg.taps
        kernel = torch.zeros(cfg.taps)
        if cfg.ir is not None:
            kernel = torch.from_numpy(read_ir(cfg.ir, cfg.taps, sample_rate))
        else:
            kernel[0] = 1.0  # identity: the model's output passes unchanged
        # Stored newest-tap-first as an impulse response; conv1d wants it flipped.
        self.ir = nn.Parameter(kernel)
        self.lr_scale = cfg.lr_scale
        self.wants_fit = cfg.fit and cfg.ir is None
        self.dc_pole = dc_pole(sample_rate)
        self.solves = cfg.update == "least-squares"
        if self.solves:
            # Running normal equations of the loss's quadratic terms: the autocorrelation of the
            # model's output and its cross-correlation with the target, lags 0..taps-1. Buffers,
            # so a checkpoint carries them and a resumed run solves exactly as an unbroken one.
            self.ir.requires_grad_(False)
            self.register_buffer("ls_auto", torch.zeros(cfg.taps))
            self.register_buffer("ls_cross", torch.zeros(cfg.taps))
            self.register_buffer("ls_steps", torch.zeros((), dtype=torch.int64))
        # The input's running power, for the gauge penalty's scale (a buffer: resume stays exact;
        # optional, as runs from before it existed lack it).
        self.register_buffer("input_power", torch.zeros((), dtype=torch.float64))
        self.optional_state = ("input_power",)
        self._seen: torch.Tensor | None = None
        self._gauge: torch.Tensor | None = None

    def param_groups(self) -> list[dict]:
        """The taps apart when they learn slower (Adam moves every tap by about the learning
        rate per step, which on 2048 taps of ~0.02 each would be noise, not learning)."""
        if self.lr_scale == 1.0:
            return super().param_groups()
        inner = [p for name, p in self.named_parameters() if name != "ir"]
        return [{"params": inner, "lr_scale": 1.0}, {"params": [self.ir], "lr_scale": self.lr_scale}]

    def fit_start(self, x: np.ndarray, y: np.ndarray, sample_rate: int) -> None:
        if self.wants_fit:
            self.fit_to(x, y, sample_rate)

    @torch.no_grad()
    def fit_to(self, x: np.ndarray, y: np.ndarray, sample_rate: int) -> None:
        """Start from the least-squares FIR from the inner model's initial output to the
        target (see :func:`.solver.fit_fir`); a residual model starts near the identity, so
        this is close to the fit from the input itself."""
        from fxforge import predict_clips

        n = min(len(x), int(FIT_SECONDS * sample_rate))
        device = self.ir.device
        h = predict_clips(self.inner, torch.from_numpy(x[:n]).to(device), clip=sample_rate, context=2048)
        h, _ = dc_block(h.view(1, -1, 1), h.new_zeros(1, 2), self.dc_pole)  # what the FIR sees
        h = h.view(-1)
        if self.latency:  # the output lags by the model's latency; fit what the FIR will see
            y = np.concatenate([np.zeros(self.latency, y.dtype), y[: len(y) - self.latency]])
        self.ir.copy_(torch.from_numpy(fit_fir(h.cpu().numpy(), y[:n], self.taps, sample_rate)).to(device))

    def initial_state(self, batch: int, device=None):
        return (self.inner.initial_state(batch, device), torch.zeros(batch, self.taps - 1, 1, device=device),
                torch.zeros(batch, 2, device=device))

    def forward(self, x, state):
        inner_state, tail, dc = state
        h, inner_state = self.inner(x, inner_state)
        if self.training:
            power = float((x.detach().double() ** 2).mean())
            seen = float(self.input_power)
            self.input_power.fill_(power if seen == 0 else DECAY * seen + (1 - DECAY) * power)
            self._gauge = gauge_penalty(h, power, float(self.input_power))
        h, dc = dc_block(h, dc, self.dc_pole)
        full = torch.cat([tail, h], dim=1)
        if h.shape[1] >= FFT_MIN_BLOCK:
            y = fft_fir(full[..., 0], self.ir).unsqueeze(-1)
        else:
            y = nn.functional.conv1d(full.transpose(1, 2), self.ir.flip(0).view(1, 1, -1)).transpose(1, 2)
        if self.solves and self.training:
            self._seen = full.detach()  # for after_step(): what the FIR saw in this training chunk
        return y, (inner_state, full[:, full.shape[1] - (self.taps - 1):], dc)

    def penalty(self) -> torch.Tensor | None:
        """The last training chunk's gauge penalty (:func:`.gauge.gauge_penalty`), for the loss."""
        penalty, self._gauge = self._gauge, None
        return penalty

    @torch.no_grad()
    def after_step(self, y: torch.Tensor, terms: list[tuple[float, float, float | None]]) -> None:
        """After a training chunk's loss: fold the chunk into the running normal equations
        and, every SOLVE_EVERY chunks, re-solve the taps (:mod:`.solver`). ``terms``: the
        loss's ESR terms (weight, pre-emphasis coefficient, energy)."""
        if not self.solves or self._seen is None:
            return
        full, self._seen = self._seen[..., 0].to(precise(y)), None
        y = y[..., 0].to(full.dtype)
        auto, cross = full.new_zeros(self.taps), full.new_zeros(self.taps)
        for weight, coeff, energy in terms:
            f, t = (pre_emphasis(full, coeff), pre_emphasis(y, coeff)) if coeff else (full, y)
            # as the loss: divided by the target's energy, the split's or this chunk's own
            scale = weight / (energy * t.numel() if energy is not None else float((t**2).sum()) + 1e-12)
            a, c = correlations(f, t, self.taps)
            auto += scale * a
            cross += scale * c
        self.ls_auto.mul_(DECAY).add_(auto.float(), alpha=1 - DECAY)
        self.ls_cross.mul_(DECAY).add_(cross.float(), alpha=1 - DECAY)
        self.ls_steps += 1
        if int(self.ls_steps) >= FIRST_SOLVE and int(self.ls_steps) % SOLVE_EVERY == 0:
            auto, cross = (b.detach().cpu().double().numpy() for b in (self.ls_auto, self.ls_cross))
            self.ir.copy_(torch.from_numpy(solve(auto, cross)))


def dc_pole(sample_rate: int) -> float:
    return float(np.exp(-2 * np.pi * DC_BLOCK_HZ / sample_rate))


def dc_block(h: torch.Tensor, state: torch.Tensor, pole: float) -> tuple[torch.Tensor, torch.Tensor]:
    """y[t] = p * y[t-1] + h[t] - h[t-1], a one-pole high-pass at ~10 Hz, on (batch, time, 1).

    Why: a cabinet passes no DC, so a FIR fitted to it has none either, and the model
    before it could then drift into DC and infrasound at no cost to the loss, until that
    drift swamps the signal and ruins the FIR's conditioning. AC
    coupling, as in the real amp, removes the freedom. ``state`` is (batch, 2): the last
    input and output. Computed exactly for any length as a causal convolution with p^k
    plus the decaying previous output (no truncation: only the chunk's own lags occur)."""
    n = h.shape[1]
    u = h[..., 0].to(precise(h))  # the pole is ~0.9987: float32 FFT error would reach 1e-5
    d = u - torch.cat([state[:, :1].to(u.dtype), u[:, :-1]], dim=1)
    powers = pole ** torch.arange(1, n + 1, device=h.device, dtype=u.dtype)
    kernel = torch.cat([powers.new_ones(1), powers[:-1]])
    nfft = 1 << (2 * n - 1).bit_length()
    y = torch.fft.irfft(torch.fft.rfft(d, nfft) * torch.fft.rfft(kernel, nfft), nfft)[:, :n]
    y = y + powers * state[:, 1:].to(u.dtype)
    return y.to(h.dtype).unsqueeze(-1), torch.stack([u[:, -1], y[:, -1]], dim=1).to(h.dtype)


def fft_fir(full: torch.Tensor, ir: torch.Tensor) -> torch.Tensor:
    """The valid part of full * ir via FFT: much faster than conv1d for 2048 taps, and
    what makes a long FIR affordable in training. No circular wrap reaches the valid
    outputs (indices taps-1 .. n-1) when nfft >= n."""
    n, taps = full.shape[1], ir.numel()
    nfft = 1 << (n - 1).bit_length()
    y = torch.fft.irfft(torch.fft.rfft(full, nfft) * torch.fft.rfft(ir, nfft), nfft)
    return y[:, taps - 1 : n]
