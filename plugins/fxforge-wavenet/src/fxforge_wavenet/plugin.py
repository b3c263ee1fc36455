"""A WaveNet of causal dilated convolutions, as NAM, WaveNet and micro-TCN use.

Each layer: a dilated conv (kernel k), a gated tanh*sigmoid (or plain tanh)
activation, a 1x1 residual back into the stack and the activation summed into
the skip path; a 1x1 head maps the skip sum to the output. Streaming keeps, per
layer, the last dilation*(k-1) inputs that layer needs: exact for any block
size, and no work is repeated between blocks.
"""
from __future__ import annotations

from typing import Optional

import torch
from pydantic import Field, model_validator
from torch import nn

from fxforge import ModelConfig, ModelSpec, hookimpl

# name: (channels, stacks, gated); each stack is dilations 1, 2, ..., 512.
PRESETS = {
    "nano": (4, 1, True),
    "lite": (8, 1, True),
    "standard": (16, 1, True),
    "large": (16, 2, True),
}


class WaveNetConfig(ModelConfig):
    preset: Optional[str] = Field("lite", description="nano | lite | standard | large; explicit keys override it")
    channels: Optional[int] = Field(None, gt=0, le=64, description="channels in the stack")
    stacks: Optional[int] = Field(None, gt=0, le=4, description="repeats of dilations 1..max_dilation")
    max_dilation: int = Field(512, description="a power of two, 1..2048")
    kernel_size: int = Field(3, ge=2, le=8)
    gated: Optional[bool] = Field(None, description="tanh*sigmoid gates (else tanh)")
    input_residual: bool = Field(True, description="predict only the change: y = x + net(x)")

    @model_validator(mode="after")
    def _resolve(self):
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r} (one of: {', '.join(PRESETS)})")
        if self.max_dilation < 1 or self.max_dilation > 2048 or self.max_dilation & (self.max_dilation - 1):
            raise ValueError(f"max_dilation must be a power of two from 1 to 2048 (got {self.max_dilation})")
        base = PRESETS[self.preset or "lite"]
        for key, value in zip(("channels", "stacks", "gated"), base):
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)
        return self


class Layer(nn.Module):
    def __init__(self, channels: int, kernel: int, dilation: int, gated: bool):
        super().__init__()
        self.gated = gated
        self.context = dilation * (kernel - 1)
        self.conv = nn.Conv1d(channels, 2 * channels if gated else channels, kernel, dilation=dilation)
        self.mix = nn.Conv1d(channels, channels, 1)

    def forward(self, x, past):
        full = torch.cat([past, x], dim=2)
        h = self.conv(full)
        z = torch.tanh(h[:, : h.shape[1] // 2]) * torch.sigmoid(h[:, h.shape[1] // 2 :]) if self.gated else torch.tanh(h)
        return x + self.mix(z), z, full[:, :, full.shape[2] - self.context :]


class WaveNet(nn.Module):
    """(batch, time, 1) -> (batch, time, 1); state: per-layer input tails."""

    def __init__(self, channels=8, stacks=1, max_dilation=512, kernel_size=3, gated=True, input_residual=True):
        super().__init__()
        dilations = [2**i for i in range(max_dilation.bit_length())] * stacks
        self.rechannel = nn.Conv1d(1, channels, 1)
        self.layers = nn.ModuleList(Layer(channels, kernel_size, d, gated) for d in dilations)
        self.head = nn.Conv1d(channels, 1, 1)
        self.input_residual = input_residual
        self.channels = channels
        self.receptive_field = 1 + sum(layer.context for layer in self.layers)

    def initial_state(self, batch: int, device=None):
        return [torch.zeros(batch, self.channels, layer.context, device=device) for layer in self.layers]

    def forward(self, x, state):
        h = self.rechannel(x.transpose(1, 2))
        skip = 0
        new_state = []
        for layer, past in zip(self.layers, state):
            h, z, tail = layer(h, past)
            skip = skip + z
            new_state.append(tail)
        y = self.head(skip).transpose(1, 2)
        return (y + x if self.input_residual else y), new_state


def build(cfg: WaveNetConfig, sample_rate: int) -> WaveNet:
    return WaveNet(cfg.channels, cfg.stacks, cfg.max_dilation, cfg.kernel_size, cfg.gated, cfg.input_residual)


@hookimpl
def fxforge_register_models(register):
    register(ModelSpec("wavenet", "Causal dilated convolutions (gated, residual + skip), streamed with per-layer buffers",
                       WaveNetConfig, build, provider="segments"))
