"""The STFT LSTM: an LSTM that steps once per STFT frame (every ``hop``
samples) instead of once per sample, and changes the input's spectrum.

Signal path, per frame of ``n_fft`` samples taken every ``hop`` samples::

    x ──► window·FFT ──► X (n_fft/2+1 bins) ──► features ──► LSTM ──► head
                         │                                           │
                         └──────── Y = X · gain  (magnitude) ◄───────┘
                                   Y = X · (1 + m) + r  (complex)
    Y ──► inverse FFT · synthesis window ──► overlap-add ──► y

``predict = "magnitude"``: the head gives a log-gain per bin; the output keeps
the input's phase. ``predict = "complex"``: the head gives a complex mask m
and a complex residual r per bin (both start at zero, so an untrained model
is the identity), and the features also carry the input's phase.

``shaper = K`` (an addition to the study's model): K learned memoryless
curves s_k = tanh(a_k x + b_k) run on the samples before the STFT, and the
head also gives a mask per bin for each of their spectra, added to Y (real
gains in magnitude mode, complex masks in complex mode). A spectral mask
can only rescale and rotate what is already in a bin; distortion creates
harmonics, whose phases follow the input's. The curves create them in the
time domain with the right phase, and the LSTM decides per frame and bin
how much of each to let through (a time-varying filter on a Hammerstein
basis). Memoryless, so it needs no state: it is recomputed on the buffered
input.

Streaming. ``forward(x, state)`` takes any number of samples (one included).
The state carries the input not yet part of a complete frame, the LSTM's
(h, c), the overlap-add tail, and the finished output not yet handed out.
Every complete frame of a call is computed at once (one FFT, one LSTM call,
one overlap-add via ``fold``), so a long training chunk is vectorised and the
LSTM runs ``hop`` times fewer steps than a waveform LSTM.

The frame that ends at input sample t covers [t - n_fft + 1, t]; its first
``hop`` output samples are final once it is added, the rest wait for later
frames. Handing out one sample per input sample therefore delays the output
by ``latency = n_fft - 1`` samples, which the core compensates (``process``,
``predict_clips`` and the trainer's target alignment).

Transforms. Analysis is ``torchaudio.transforms.Spectrogram(center=False,
power=None)`` over the buffered input. Synthesis is ``torch.fft.irfft`` plus
our own overlap-add rather than ``InverseSpectrogram``: ``torch.istft``
(which it wraps) normalises by the window envelope of the *whole* call and
cannot carry an overlap-add tail from one block to the next, so a stream cut
into blocks would not add up to the whole-file result (and with
``center=False`` it refuses the zero envelope at the edges). The synthesis
window here is the weighted-overlap-add dual of the analysis window, so an
untrained model reproduces its input exactly, ``latency`` samples late.
"""
from __future__ import annotations

import logging
import math
from typing import Literal

import torch
import torch.nn.functional as F
import torchaudio
from pydantic import Field, model_validator
from torch import nn

from fxforge import ComponentConfig, DataConfig, ModelSpec, ProviderSpec, StreamingModel, cut_segments, hookimpl

log = logging.getLogger("fxforge")

WINDOWS = ("hann", "sqrt-hann", "hamming", "blackman")


def analysis_window(name: str, n_fft: int) -> torch.Tensor:
    if name == "hann":
        return torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
    if name == "sqrt-hann":
        return torch.hann_window(n_fft, periodic=True, dtype=torch.float64).sqrt()
    if name == "hamming":
        return torch.hamming_window(n_fft, periodic=True, dtype=torch.float64)
    if name == "blackman":
        return torch.blackman_window(n_fft, periodic=True, dtype=torch.float64)
    raise ValueError(f"unknown window {name!r} (choose from {', '.join(WINDOWS)})")


def synthesis_window(window: torch.Tensor, hop: int) -> torch.Tensor:
    """The dual window ws = w / sum_k w(n + k hop)^2: analysis then synthesis
    with overlap-add is the identity (weighted overlap-add)."""
    n = window.numel()
    sq = F.pad(window**2, (0, (-n) % hop)).reshape(-1, hop).sum(0)
    envelope = sq.repeat(math.ceil(n / hop))[:n]
    return window / envelope


def envelope_ok(name: str, n_fft: int, hop: int) -> bool:
    w = analysis_window(name, n_fft)
    sq = F.pad(w**2, (0, (-n_fft) % hop)).reshape(-1, hop).sum(0)
    return bool(sq.min() > 1e-3 * sq.max())


class STFTLSTMConfig(ComponentConfig):
    n_fft: int = Field(128, ge=16, le=8192, description="frame length in samples (the latency is n_fft - 1)")
    hop: int = Field(32, gt=0, description="samples between frames; the LSTM steps once per hop")
    window: str = Field("hann", description=f"analysis window: {', '.join(WINDOWS)} (synthesis: its WOLA dual)")
    hidden_size: int = Field(64, gt=0, le=2048, description="LSTM units per layer")
    num_layers: int = Field(1, gt=0, le=8, description="stacked LSTM layers")
    predict: Literal["magnitude", "complex"] = Field(
        "complex", description="'magnitude': log-gain per bin, input phase kept; "
                               "'complex': complex mask and residual per bin")
    shaper: int = Field(0, ge=0, le=16, description="learned waveshaper channels: per-sample tanh curves of the input "
                                                    "whose spectra the LSTM mixes in, per bin (0: none)")

    @model_validator(mode="after")
    def _frames(self):
        if self.window not in WINDOWS:
            raise ValueError(f"window must be one of {', '.join(WINDOWS)} (got {self.window!r})")
        if self.hop > self.n_fft:
            raise ValueError(f"hop ({self.hop}) must not exceed n_fft ({self.n_fft})")
        if not envelope_ok(self.window, self.n_fft, self.hop):
            raise ValueError(f"a {self.window} window of {self.n_fft} with hop {self.hop} does not overlap "
                             "enough to reconstruct the signal; use a smaller hop")
        return self


class STFTLSTM(StreamingModel):
    """(batch, time, 1) -> (batch, time, 1), ``latency = n_fft - 1`` samples late."""

    def __init__(self, n_fft: int = 128, hop: int = 32, window: str = "hann", hidden_size: int = 64,
                 num_layers: int = 1, predict: str = "complex", shaper: int = 0):
        super().__init__()
        if predict not in ("magnitude", "complex"):
            raise ValueError(f"predict must be 'magnitude' or 'complex' (got {predict!r})")
        self.n_fft, self.hop, self.predict = n_fft, hop, predict
        self.bins = n_fft // 2 + 1
        self.latency = n_fft - 1
        w = analysis_window(window, n_fft)
        self.spectrogram = torchaudio.transforms.Spectrogram(
            n_fft=n_fft, hop_length=hop, center=False, power=None,
            window_fn=lambda n, **_: w.to(torch.float32))
        self.register_buffer("synthesis", synthesis_window(w, hop).to(torch.float32), persistent=False)
        # A full-scale sine of amplitude A peaks at A * sum(w) / 2 in its bin:
        # dividing by this puts spectra on the scale of the waveform.
        self.scale = float(w.sum()) / 2
        features = self.bins * (3 if predict == "complex" else 1)
        self.lstm = nn.LSTM(features, hidden_size, num_layers, batch_first=True)
        self.shaper = shaper
        if shaper:  # channel k: tanh(a_k x + b_k), drives spread from 1 to 16
            self.drive = nn.Parameter(torch.logspace(0, math.log10(16), shaper))
            self.offset = nn.Parameter(torch.zeros(shaper))
        per_channel = 2 if predict == "complex" else 1
        self.head = nn.Linear(hidden_size, self.bins * (per_channel * (2 + shaper) if predict == "complex" else 1 + shaper))
        nn.init.zeros_(self.head.weight)  # start as the identity (delayed by the latency)
        nn.init.zeros_(self.head.bias)

    # -- streaming face ------------------------------------------------------
    def initial_state(self, batch: int, device=None):
        """(pending input, overlap-add tail, finished output queue, h, c)."""
        z = lambda n: torch.zeros(batch, n, device=device)  # noqa: E731
        shape = (self.lstm.num_layers, batch, self.lstm.hidden_size)
        # The queue starts with hop - 1 zeros: the first frame completes at
        # input sample hop - 1 and its first output belongs to that call.
        return (z(self.n_fft - self.hop), z(self.n_fft - self.hop), z(self.hop - 1),
                torch.zeros(shape, device=device), torch.zeros(shape, device=device))

    def forward(self, x: torch.Tensor, state):
        pending, tail, queue, h, c = state
        buf = torch.cat([pending, x[..., 0].to(pending.dtype)], dim=1)
        n_frames = (buf.shape[1] - (self.n_fft - self.hop)) // self.hop
        if n_frames > 0:
            used = n_frames * self.hop
            frames_in = buf[:, : used + self.n_fft - self.hop]
            if self.shaper:  # memoryless, so it is recomputed on the buffered input: no state of its own
                shaped = torch.tanh(frames_in.unsqueeze(1) * self.drive[:, None] + self.offset[:, None])
                frames_in = torch.cat([frames_in.unsqueeze(1), shaped], dim=1)
            spec = self.spectrogram(frames_in).transpose(-1, -2)  # (B, [1 + shaper,] F, bins)
            out_spec, (h, c) = self.frames(spec, (h, c))
            frames = torch.fft.irfft(out_spec, n=self.n_fft) * self.synthesis  # (B, F, n_fft)
            ola = F.fold(frames.transpose(1, 2), output_size=(1, used + self.n_fft - self.hop),
                         kernel_size=(1, self.n_fft), stride=(1, self.hop)).reshape(buf.shape[0], -1)
            ola = ola + F.pad(tail, (0, used))
            queue = torch.cat([queue, ola[:, :used]], dim=1)
            tail = ola[:, used:]
            pending = buf[:, used:]
        else:
            pending = buf
        t = x.shape[1]
        return queue[:, :t].unsqueeze(-1), (pending, tail, queue[:, t:], h, c)

    # -- the per-frame network -------------------------------------------------
    def frames(self, spec: torch.Tensor, hc):
        """Complex spectra (B, F, bins), or (B, 1 + shaper, F, bins) -> output
        spectra (B, F, bins), all frames at once."""
        shaped = None
        if self.shaper:
            spec, shaped = spec[:, 0], spec[:, 1:]
        xs = spec / self.scale
        mag = xs.abs()
        feats = (torch.log(mag + 1e-4) + 4.0) / 4.0
        if self.predict == "complex":
            compressed = xs * (mag + 1e-8).pow(-0.7)  # |.|^0.3, phase kept
            feats = torch.cat([feats, compressed.real, compressed.imag], dim=-1)
        hidden, hc = self.lstm(feats, hc)
        out = self.head(hidden)
        if self.predict == "magnitude":
            gain = torch.exp(8.0 * torch.tanh(out[..., : self.bins] / 8.0))  # within about +-70 dB
            y = spec * gain
            if shaped is not None:  # real gains: each channel keeps its own phase
                g = out[..., self.bins :].unflatten(-1, (self.shaper, self.bins)).transpose(1, 2)
                y = y + (shaped * g).sum(1)
            return y, hc
        parts = out.unflatten(-1, (-1, self.bins))  # (B, F, 2 * (2 + shaper), bins)
        mask = torch.complex(1.0 + parts[..., 0, :], parts[..., 1, :])
        residual = torch.complex(parts[..., 2, :], parts[..., 3, :]) * self.scale
        y = spec * mask + residual
        if shaped is not None:  # complex masks on the shaped channels
            m = torch.complex(parts[..., 4::2, :], parts[..., 5::2, :]).transpose(1, 2)  # (B, shaper, F, bins)
            y = y + (shaped * m).sum(1)
        return y, hc


# -- the frames provider -------------------------------------------------------

class FramesConfig(DataConfig):
    segment: int = Field(9216, gt=0, description="samples per training example, rounded up to a multiple of "
                                                 "the model's hop (warm-up + TBPTT chunks)")


class Frames:
    """Equal segments of the training split whose length is a whole number of
    hops, at a random offset each epoch (so frame boundaries move), shuffled,
    in batches."""

    def __init__(self, cfg: FramesConfig, model_cfg=None):
        hop = int(getattr(model_cfg, "hop", 1) or 1)
        self.segment = max(hop, -(-cfg.segment // hop) * hop)
        self.hop = hop
        if self.segment != cfg.segment:
            log.info("data.segment %d rounded up to %d, a multiple of the hop (%d)", cfg.segment, self.segment, hop)

    def len_batches(self, n_samples: int, batch_size: int) -> int:
        count = max(1, n_samples // self.segment)
        return -(-count // batch_size)

    def batches(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, generator: torch.Generator):
        seg = min(self.segment, x.numel() // self.hop * self.hop or x.numel())
        return cut_segments(x, y, seg, batch_size, generator)


def build(cfg: STFTLSTMConfig, sample_rate: int) -> STFTLSTM:
    return STFTLSTM(cfg.n_fft, cfg.hop, cfg.window, cfg.hidden_size, cfg.num_layers, cfg.predict, cfg.shaper)


@hookimpl
def fxforge_register_models(register):
    register(ModelSpec(
        "stft-lstm", "LSTM over STFT frames changing the input spectrum (magnitude or complex); "
                     "streams with latency n_fft - 1",
        STFTLSTMConfig, build, provider="frames"))


@hookimpl
def fxforge_register_providers(register):
    register(ProviderSpec("frames", "Equal segments of the training split, a whole number of the model's hops",
                          FramesConfig, lambda cfg, model_cfg: Frames(cfg, model_cfg)))
