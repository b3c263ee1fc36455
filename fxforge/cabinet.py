"""A learned cabinet stage: a causal FIR after any waveform model.

A recurrent model cannot build a cabinet's long linear response; a FIR can.
It starts as the identity, a measured IR, or (``fit = true``) the least-squares
FIR from the model's initial output to the target. By default it then follows
the least-squares optimum for the model's current output (see ``after_step``), which
converges far better than Adam on the taps: Adam moves every tap by about the
learning rate per step whatever its scale (figures: docs/recipe_measurements.md). A 10 Hz DC blocker sits
in front of the FIR (see ``dc_block``), and a gauge penalty keeps the model's DC
and level where the loss cannot see them (see ``gauge_penalty``). Its state is the last ``taps - 1``
samples the FIR saw, so each TBPTT chunk (and each streamed block) sees the
previous one's tail, not zeros.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import FxforgeError
from .losses import pre_emphasis
from .model import StreamingModel, contract

from .schema import MAX_TAPS, MIN_TAPS, CabinetConfig  # noqa: F401  (the schema holds the config)


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


class CabinetFIR(StreamingModel):
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
        self.lr_scale = cfg.lr_scale
        self.latency = contract(inner).latency
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
        target (see :func:`fit_fir`); a residual model starts near the identity, so this
        is close to the fit from the input itself."""
        from .stream import predict_clips

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
            y = _fft_fir(full[..., 0], self.ir).unsqueeze(-1)
        else:
            y = nn.functional.conv1d(full.transpose(1, 2), self.ir.flip(0).view(1, 1, -1)).transpose(1, 2)
        if self.solves and self.training:
            self._seen = full.detach()  # for after_step(): what the FIR saw in this training chunk
        return y, (inner_state, full[:, full.shape[1] - (self.taps - 1):], dc)

    def penalty(self) -> torch.Tensor | None:
        """The last training chunk's gauge penalty (see ``gauge_penalty``), for the loss."""
        penalty, self._gauge = self._gauge, None
        return penalty

    @torch.no_grad()
    def after_step(self, y: torch.Tensor, terms: list[tuple[float, float, float | None]]) -> None:
        """After a training chunk's loss: fold the chunk into the running normal equations
        and, every SOLVE_EVERY chunks, re-solve the taps.

        Variable projection: the FIR enters the loss linearly, so its optimum for the
        model's current output is one Toeplitz solve, and the model's gradient at that
        optimum is the gradient with the FIR held fixed. Adam instead moves every tap by
        about the learning rate per step, uncorrelated across taps; with the low end of a
        cabinet (taps strongly correlated through the guitar's spectrum) that converged
        slowly. ``terms``: the loss's ESR terms (``Loss.quadratic_terms``).
        """
        if not self.solves or self._seen is None:
            return
        full, self._seen = self._seen[..., 0].to(_precise(y)), None
        y = y[..., 0].to(full.dtype)
        auto, cross = full.new_zeros(self.taps), full.new_zeros(self.taps)
        for weight, coeff, energy in terms:
            f, t = (pre_emphasis(full, coeff), pre_emphasis(y, coeff)) if coeff else (full, y)
            # as the loss: divided by the target's energy, the split's or this chunk's own
            scale = weight / (energy * t.numel() if energy is not None else float((t**2).sum()) + 1e-12)
            a, c = _correlations(f, t, self.taps)
            auto += scale * a
            cross += scale * c
        self.ls_auto.mul_(DECAY).add_(auto.float(), alpha=1 - DECAY)
        self.ls_cross.mul_(DECAY).add_(cross.float(), alpha=1 - DECAY)
        self.ls_steps += 1
        if int(self.ls_steps) >= FIRST_SOLVE and int(self.ls_steps) % SOLVE_EVERY == 0:
            auto, cross = (b.detach().cpu().double().numpy() for b in (self.ls_auto, self.ls_cross))
            self.ir.copy_(torch.from_numpy(_solve(auto, cross)))


DC_BLOCK_HZ = 10.0

# The model and the FIR share two free directions the loss cannot see: the DC blocker hides the
# model's DC, and a gain a on the model is undone by 1/a on the (re-solved) FIR. Left free, the
# model drifts along them until its units saturate and the fit degrades (docs/recipe_measurements.md).
# A penalty that depends only on those directions fixes them at no cost to the fit.
GAUGE_DC = 1.0     # weight of (mean of the model's output)^2 / the input's running power
GAUGE_GAIN = 0.01  # weight of log(power of the model's output / power of the input)^2
GAUGE_FLOOR = 0.1  # of the running power, added to both powers: a near-silent chunk (a DI's
                   # digital silence under the amp's hiss) must not make the ratio explode


def gauge_penalty(h: torch.Tensor, input_power: float, running_power: float) -> torch.Tensor:
    """Pins the model's output ``h`` to DC 0 and a level near the input's, over the batch and
    chunk; ``input_power``: the chunk input's mean square, ``running_power``: its running mean."""
    scale = running_power + 1e-12
    floor = GAUGE_FLOOR * scale
    penalty = h.new_zeros(())
    if GAUGE_DC:
        penalty = penalty + GAUGE_DC * h.mean() ** 2 / scale
    if GAUGE_GAIN:
        ratio = ((h**2).mean() + floor) / (input_power + floor)
        penalty = penalty + GAUGE_GAIN * torch.log(ratio) ** 2
    return penalty


def _precise(t: torch.Tensor) -> torch.dtype:
    """float64 where the device has it (Apple's MPS has no float64)."""
    return torch.float32 if t.device.type == "mps" else torch.float64


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
    u = h[..., 0].to(_precise(h))  # the pole is ~0.9987: float32 FFT error would reach 1e-5
    d = u - torch.cat([state[:, :1].to(u.dtype), u[:, :-1]], dim=1)
    powers = pole ** torch.arange(1, n + 1, device=h.device, dtype=u.dtype)
    kernel = torch.cat([powers.new_ones(1), powers[:-1]])
    nfft = 1 << (2 * n - 1).bit_length()
    y = torch.fft.irfft(torch.fft.rfft(d, nfft) * torch.fft.rfft(kernel, nfft), nfft)[:, :n]
    y = y + powers * state[:, 1:].to(u.dtype)
    return y.to(h.dtype).unsqueeze(-1), torch.stack([u[:, -1], y[:, -1]], dim=1).to(h.dtype)


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


def _correlations(full: torch.Tensor, y: torch.Tensor, taps: int) -> tuple[torch.Tensor, torch.Tensor]:
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


def _solve(auto: np.ndarray, cross: np.ndarray) -> np.ndarray:
    from scipy.linalg import solve_toeplitz

    if auto[0] <= 0:
        out = np.zeros(len(auto), np.float32)
        out[0] = 1.0
        return out
    auto = auto.copy()
    auto[0] *= 1 + LOADING
    return solve_toeplitz(auto, cross).astype(np.float32)


FFT_MIN_BLOCK = 32  # direct convolution below: cheaper for the tiny blocks of real-time streaming


def _fft_fir(full: torch.Tensor, ir: torch.Tensor) -> torch.Tensor:
    """The valid part of full * ir via FFT: ~100x faster than conv1d for 2048 taps, and
    what makes a long FIR affordable in training. No circular wrap reaches the valid
    outputs (indices taps-1 .. n-1) when nfft >= n."""
    n, taps = full.shape[1], ir.numel()
    nfft = 1 << (n - 1).bit_length()
    y = torch.fft.irfft(torch.fft.rfft(full, nfft) * torch.fft.rfft(ir, nfft), nfft)
    return y[:, taps - 1 : n]
