"""A WaveNet of causal dilated convolutions, as NAM, WaveNet and micro-TCN use.

Each layer: a dilated conv (kernel k), a gated tanh*sigmoid (or plain tanh)
activation, a 1x1 residual back into the stack and the activation summed into
the skip path; a 1x1 head maps the skip sum to the output. Streaming keeps, per
layer, the last dilation*(k-1) inputs that layer needs: exact for any block
size, and no work is repeated between blocks.

``layout = "nam"`` (preset ``nam-wavenet``: NAM's standard WaveNet) is NAM's
WaveNet layout instead, term for term, so that ``fxforge export nam`` writes it
exactly: one or more layer arrays, each an unbiased 1x1 rechannel, layers whose
pre-activation is conv(h) + input_mixer(x) (the raw input mixed into every
layer, unbiased), a biased 1x1 back into the residual stream, the activations
summed into the head path, and a 1x1 head rechannel whose output starts the next
array's head sum; the output is ``head_scale`` times the last one, with no input
residual. Its streaming state starts where NAM's does: at the network's response
to silence (NAM pads the start with zeros; its plugin pre-warms on zeros).

Trained on a captures manifest (``data.captures``), the fxforge layout takes the knobs as
WaveNet's global conditioning: every layer's pre-activation adds a 1x1 projection of the
knob values, conv(h) + V k, so each layer's gain and bias follow the setting.
"""
from __future__ import annotations

from typing import Literal, Optional

import torch
from pydantic import Field, model_validator
from torch import nn

from fxforge import KnobsConfig, ModelConfig, ModelSpec, StreamingModel, hookimpl

from ..knob_input import split_knobs
from . import exports

# name: (channels, stacks, gated); each stack is dilations 1, 2, ..., 512.
PRESETS = {
    "nano": (4, 1, True),
    "lite": (8, 1, True),
    "standard": (16, 1, True),
    "large": (16, 2, True),
}

# NAM layout: name -> (channels of each layer array, stacks, gated, head_scale).
# "nam-wavenet" is NAM's standard WaveNet: arrays of 16 and 8 channels, kernel 3,
# dilations 1..512 each, tanh, not gated, head sizes 8 and 1 (only the last
# biased), head_scale 0.02.
NAM_PRESETS = {
    "nam-wavenet": ([16, 8], 1, False, 0.02),
}


class WaveNetConfig(ModelConfig, KnobsConfig):
    preset: Optional[str] = Field("lite", description="nano | lite | standard | large | nam-wavenet (NAM's standard WaveNet, layout nam); explicit keys override it")
    layout: Optional[Literal["fxforge", "nam"]] = Field(None, description="fxforge (one stack, biased rechannel, y = x + net) or nam (NAM's WaveNet layer arrays; exports exactly to .nam); default: the preset's")
    channels: Optional[int] = Field(None, gt=0, le=64, description="channels in the stack (layout fxforge)")
    arrays: Optional[list[int]] = Field(None, description="layout nam: channels of each layer array, e.g. [16, 8]; array i's head has the next array's width (the last: 1, biased)")
    stacks: Optional[int] = Field(None, gt=0, le=4, description="repeats of dilations 1..max_dilation (per layer array in layout nam)")
    max_dilation: int = Field(512, description="a power of two, 1..2048")
    kernel_size: int = Field(3, ge=2, le=8)
    gated: Optional[bool] = Field(None, description="tanh*sigmoid gates (else tanh)")
    input_residual: Optional[bool] = Field(None, description="predict only the change: y = x + net(x) (layout fxforge; default true there; layout nam has none)")
    head_scale: Optional[float] = Field(None, description="layout nam: the output is head_scale times the last head (default: the preset's, 0.02)")

    @model_validator(mode="after")
    def _resolve(self):
        if self.preset is not None and self.preset not in PRESETS and self.preset not in NAM_PRESETS:
            raise ValueError(f"unknown preset {self.preset!r} (one of: {', '.join([*PRESETS, *NAM_PRESETS])})")
        if self.max_dilation < 1 or self.max_dilation > 2048 or self.max_dilation & (self.max_dilation - 1):
            raise ValueError(f"max_dilation must be a power of two from 1 to 2048 (got {self.max_dilation})")
        preset = self.preset or "lite"
        if self.layout is None:
            object.__setattr__(self, "layout", "nam" if preset in NAM_PRESETS else "fxforge")
        set_ = lambda key, value: object.__setattr__(self, key, value)  # noqa: E731
        if self.layout == "nam":
            if self.knobs:
                raise ValueError("knob conditioning needs layout fxforge (NAM's WaveNet and its .nam file take the "
                                 "audio alone); set layout = \"fxforge\" or a preset such as lite")
            if self.channels is not None:
                raise ValueError("channels is for layout fxforge; layout nam takes arrays = [16, 8] (one width per layer array)")
            if self.input_residual:
                raise ValueError("layout nam has no input residual (NAM's WaveNet does not add x to its output); "
                                 "set input_residual = false or layout = \"fxforge\"")
            arrays, stacks, gated, head_scale = NAM_PRESETS.get(preset, NAM_PRESETS["nam-wavenet"])
            for key, value in (("arrays", list(arrays)), ("stacks", stacks), ("gated", gated), ("head_scale", head_scale)):
                if getattr(self, key) is None:
                    set_(key, value)
            if not 1 <= len(self.arrays) <= 4 or any(not 0 < c <= 64 for c in self.arrays):
                raise ValueError(f"arrays must list 1 to 4 widths from 1 to 64 (got {self.arrays})")
            set_("input_residual", False)
        else:
            if self.arrays is not None:
                raise ValueError("arrays is for layout nam; layout fxforge takes channels")
            if self.head_scale is not None:
                raise ValueError("head_scale is for layout nam")
            if preset in NAM_PRESETS:
                raise ValueError(f"preset {preset!r} has layout nam")
            for key, value in zip(("channels", "stacks", "gated"), PRESETS[preset]):
                if getattr(self, key) is None:
                    set_(key, value)
            if self.input_residual is None:
                set_("input_residual", True)
        return self


class Layer(nn.Module):
    def __init__(self, channels: int, kernel: int, dilation: int, gated: bool, knobs: int = 0):
        super().__init__()
        self.gated = gated
        self.context = dilation * (kernel - 1)
        self.conv = nn.Conv1d(channels, 2 * channels if gated else channels, kernel, dilation=dilation)
        self.mix = nn.Conv1d(channels, channels, 1)
        # global conditioning: the knobs' own projection into this layer's pre-activation
        self.cond = nn.Conv1d(knobs, self.conv.out_channels, 1, bias=False) if knobs else None

    def forward(self, x, past, knobs=None):
        full = torch.cat([past, x], dim=2)
        h = self.conv(full)
        if self.cond is not None:
            h = h + self.cond(knobs)
        z = torch.tanh(h[:, : h.shape[1] // 2]) * torch.sigmoid(h[:, h.shape[1] // 2 :]) if self.gated else torch.tanh(h)
        return x + self.mix(z), z, full[:, :, full.shape[2] - self.context :]


class WaveNet(StreamingModel):
    """(batch, time, 1 [+ knobs]) -> (batch, time, 1); state: per-layer input tails.

    With knobs, channels 1.. of the input are the knob values (0..1); given the audio
    channel alone it plays ``knob_defaults`` (a buffer, so a run's weights carry it)."""

    def __init__(self, channels=8, stacks=1, max_dilation=512, kernel_size=3, gated=True, input_residual=True,
                 knobs=0, knob_defaults=None):
        super().__init__()
        dilations = [2**i for i in range(max_dilation.bit_length())] * stacks
        self.knobs = int(knobs)
        if self.knobs:  # an unconditioned model keeps the state_dict older runs saved
            default = list(knob_defaults) if knob_defaults else [0.5] * self.knobs
            self.register_buffer("knob_defaults", torch.tensor(default, dtype=torch.float32))
        self.rechannel = nn.Conv1d(1, channels, 1)
        self.layers = nn.ModuleList(Layer(channels, kernel_size, d, gated, self.knobs) for d in dilations)
        self.head = nn.Conv1d(channels, 1, 1)
        self.input_residual = input_residual
        self.channels = channels
        self.receptive_field = 1 + sum(layer.context for layer in self.layers)

    def initial_state(self, batch: int, device=None):
        return [torch.zeros(batch, self.channels, layer.context, device=device) for layer in self.layers]

    def forward(self, x, state):
        x, knobs = split_knobs(x, self.knobs, getattr(self, "knob_defaults", None))
        knobs = None if knobs is None else knobs.transpose(1, 2)  # (B, K, T), as the 1x1 convs read
        h = self.rechannel(x.transpose(1, 2))
        skip = 0
        new_state = []
        for layer, past in zip(self.layers, state):
            h, z, tail = layer(h, past, knobs)
            skip = skip + z
            new_state.append(tail)
        y = self.head(skip).transpose(1, 2)
        return (y + x if self.input_residual else y), new_state


class NamLayer(nn.Module):
    """One layer of NAM's WaveNet: z = conv(h) + input_mixer(x); a = act(z);
    h + layer1x1(a) to the next layer and a to the head sum."""

    def __init__(self, channels: int, kernel: int, dilation: int, gated: bool):
        super().__init__()
        mid = 2 * channels if gated else channels
        self.gated = gated
        self.dilation = dilation
        self.context = dilation * (kernel - 1)
        self.conv = nn.Conv1d(channels, mid, kernel, dilation=dilation)
        self.input_mixer = nn.Conv1d(1, mid, 1, bias=False)
        self.layer1x1 = nn.Conv1d(channels, channels, 1)

    def forward(self, h, x, past):
        full = torch.cat([past, h], dim=2)
        z = self.conv(full) + self.input_mixer(x)
        a = torch.tanh(z[:, : z.shape[1] // 2]) * torch.sigmoid(z[:, z.shape[1] // 2 :]) if self.gated else torch.tanh(z)
        return h + self.layer1x1(a), a, full[:, :, full.shape[2] - self.context :]


class NamLayerArray(nn.Module):
    def __init__(self, input_size: int, channels: int, head_size: int, head_bias: bool,
                 kernel: int, dilations: list[int], gated: bool):
        super().__init__()
        self.rechannel = nn.Conv1d(input_size, channels, 1, bias=False)
        self.layers = nn.ModuleList(NamLayer(channels, kernel, d, gated) for d in dilations)
        self.head_rechannel = nn.Conv1d(channels, head_size, 1, bias=head_bias)
        self.channels = channels

    def forward(self, inp, x, head, states):
        h = self.rechannel(inp)
        tails = []
        for layer, past in zip(self.layers, states):
            h, a, tail = layer(h, x, past)
            head = a if head is None else head + a
            tails.append(tail)
        return h, self.head_rechannel(head), tails


class NamWaveNet(StreamingModel):
    """NAM's WaveNet layout, (batch, time, 1) -> (batch, time, 1); state: per-layer
    input tails, starting at the response to silence (as NAM's padded start).

    Its ``nam`` export facet (``exports.nam``) reads ``layer_arrays``, each with
    ``rechannel``, ``layers`` (``conv``, ``input_mixer``, ``layer1x1``, ``gated``)
    and ``head_rechannel``; ``head_scale``."""

    def __init__(self, arrays=(16, 8), stacks=1, max_dilation=512, kernel_size=3, gated=False, head_scale=0.02):
        super().__init__()
        dilations = [2**i for i in range(max_dilation.bit_length())] * stacks
        arrays = list(arrays)
        heads = arrays[1:] + [1]
        inputs = [1] + arrays[:-1]
        self.layer_arrays = nn.ModuleList(
            NamLayerArray(i, c, hs, last, kernel_size, dilations, gated)
            for i, c, hs, last in zip(inputs, arrays, heads, [False] * (len(arrays) - 1) + [True]))
        self.head_scale = float(head_scale)
        self.gated = gated
        self.kernel_size = kernel_size
        self.input_residual = False
        self.receptive_field = 1 + sum(layer.context for arr in self.layer_arrays for layer in arr.layers)

    def initial_state(self, batch: int, device=None):
        """Each layer's history filled with its input's value in silence, which is
        what NAM's zero-padded start (and its plugin's pre-warm) gives."""
        p = next(self.parameters())
        x0 = p.new_zeros(1, 1, 1)
        inp, state = x0, []
        for arr in self.layer_arrays:
            h = arr.rechannel(inp)
            for layer in arr.layers:
                past = h.expand(1, h.shape[1], layer.context)
                state.append(past.expand(batch, -1, -1).contiguous())
                h, _, _ = layer(h, x0, past)
            inp = h
        return [s.to(device) for s in state] if device is not None else state

    def forward(self, x, state):
        xc = x.transpose(1, 2)
        inp, head, new_state, i = xc, None, [], 0
        for arr in self.layer_arrays:
            n = len(arr.layers)
            inp, head, tails = arr(inp, xc, head, state[i : i + n])
            new_state.extend(tails)
            i += n
        return (self.head_scale * head).transpose(1, 2), new_state


def build(cfg: WaveNetConfig, sample_rate: int):
    if cfg.layout == "nam":
        return NamWaveNet(cfg.arrays, cfg.stacks, cfg.max_dilation, cfg.kernel_size, cfg.gated, cfg.head_scale)
    return WaveNet(cfg.channels, cfg.stacks, cfg.max_dilation, cfg.kernel_size, cfg.gated, cfg.input_residual,
                   cfg.knobs, cfg.knob_defaults)


def _nam_facet(module) -> dict:
    if not isinstance(module, NamWaveNet):
        exports.refuse_layout(module)
    return exports.nam(module)


@hookimpl
def fxforge_register_models(register):
    register(ModelSpec("wavenet", "Causal dilated convolutions (gated, residual + skip), streamed with per-layer buffers",
                       WaveNetConfig, build, provider="segments", exports={"nam": _nam_facet}))
