"""A learned cabinet stage: a causal FIR after any waveform model.

A recurrent model cannot build a cabinet's long linear response; a FIR can.
It starts as the identity (or a measured IR) and trains jointly with the model.
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

    taps: int = Field(256, ge=MIN_TAPS, le=MAX_TAPS, description="FIR length in samples")
    ir: Optional[Path] = Field(None, description="initialise from a measured IR (WAV/FLAC, mono, the model's rate)")


def read_ir(path: Path, taps: int, sample_rate: int) -> np.ndarray:
    from .audio import read_audio

    ir, sr = read_audio(path)
    if sr != sample_rate:
        raise FxforgeError(f"{path}: cabinet IR is at {sr} Hz but the audio is at {sample_rate} Hz; resample it first")
    out = np.zeros(taps, np.float32)
    out[: min(taps, len(ir))] = ir[:taps]
    return out


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
        self.latency = int(getattr(inner, "latency", 0))

    def initial_state(self, batch: int, device=None):
        return (self.inner.initial_state(batch, device), torch.zeros(batch, self.taps - 1, 1, device=device))

    def forward(self, x, state):
        inner_state, tail = state
        h, inner_state = self.inner(x, inner_state)
        full = torch.cat([tail, h], dim=1)
        y = nn.functional.conv1d(full.transpose(1, 2), self.ir.flip(0).view(1, 1, -1)).transpose(1, 2)
        return y, (inner_state, full[:, full.shape[1] - (self.taps - 1):])
