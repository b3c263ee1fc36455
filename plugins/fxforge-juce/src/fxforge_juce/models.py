"""Map a trained PyTorch module to RTNeural's compile-time layers.

Adding a model to the exporter means adding one function here, decorated with
``@mapper("model-name")``, that turns the module into an :class:`RTModel`:
the C++ layer types in order, the C++ statements that load each layer from the
embedded state-dict JSON, the tensors to embed, and whether the input is added
to the output (residual). Everything in ``layers`` and ``loaders`` is built
from integers and fixed strings, never from user text.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn


class Unsupported(Exception):
    """The module cannot be expressed with RTNeural layers (one-line reason)."""


@dataclass
class RTModel:
    layers: list[str]
    loaders: list[str]
    weights: dict[str, torch.Tensor]
    residual: bool
    architecture: str


MAPPERS: dict[str, Callable[[nn.Module], RTModel]] = {}


def mapper(name: str):
    def register(fn):
        MAPPERS[name] = fn
        return fn

    return register


def supported_models() -> list[str]:
    return sorted(MAPPERS)


def _recurrent_layers(rnn: nn.RNNBase, prefix: str, cpp_layer: str, loader: str, kind: str):
    if rnn.input_size != 1:
        raise Unsupported(f"{kind} input_size is {rnn.input_size}; the plugin feeds one sample (input_size=1)")
    if rnn.bidirectional:
        raise Unsupported(f"a bidirectional {kind} is not causal and cannot run in real time")
    if not rnn.batch_first:
        raise Unsupported(f"the {kind} must be batch_first")
    if getattr(rnn, "proj_size", 0):
        raise Unsupported(f"{kind} proj_size is not supported by RTNeural")
    h = rnn.hidden_size
    layers, loaders = [], []
    for k in range(rnn.num_layers):
        n_in = 1 if k == 0 else h
        layers.append(f"RTNeural::{cpp_layer}<float, {n_in}, {h}>")
        bias = "true" if rnn.bias else "false"
        loaders.append(
            f"RTNeural::torch_helpers::{loader}<float>(json, \"{prefix}.\", model.get<{k}>(), {bias}, {k});"
        )
    return layers, loaders


def _head(head: nn.Module, index: int, hidden: int):
    if not isinstance(head, nn.Linear) or head.in_features != hidden or head.out_features != 1:
        raise Unsupported(f"the output head must be nn.Linear({hidden}, 1)")
    bias = "true" if head.bias is not None else "false"
    return (
        f"RTNeural::DenseT<float, {hidden}, 1, {bias}>",
        f"RTNeural::torch_helpers::loadDense<float>(json, \"head.\", model.get<{index}>(), {bias});",
    )


def _embedded(module: nn.Module, prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    return {
        k: v.detach().to("cpu", torch.float32).contiguous()
        for k, v in module.state_dict().items()
        if k.startswith(prefixes)
    }


def _recurrent_model(module: nn.Module, attr: str, cpp_layer: str, loader: str, kind: str) -> RTModel:
    rnn = getattr(module, attr, None)
    expected = nn.LSTM if kind == "LSTM" else nn.GRU
    if not isinstance(rnn, expected):
        raise Unsupported(f"expected module.{attr} to be nn.{kind}")
    layers, loaders = _recurrent_layers(rnn, attr, cpp_layer, loader, kind)
    dense, dense_loader = _head(getattr(module, "head", None), len(layers), rnn.hidden_size)
    layers.append(dense)
    loaders.append(dense_loader)
    residual = bool(getattr(module, "residual", False))
    arch = f"{kind} {rnn.num_layers}x{rnn.hidden_size} -> Dense {rnn.hidden_size}x1" + (
        " + input (residual)" if residual else ""
    )
    return RTModel(layers, loaders, _embedded(module, (f"{attr}.", "head.")), residual, arch)


@mapper("wave-lstm")
def wave_lstm(module: nn.Module) -> RTModel:
    """``module.lstm`` (nn.LSTM, batch_first, input 1) -> ``module.head`` (Linear(H, 1)) [+ x]."""
    return _recurrent_model(module, "lstm", "LSTMLayerT", "loadLSTM", "LSTM")


@mapper("gru")
def gru(module: nn.Module) -> RTModel:
    """``module.rnn`` (nn.GRU, batch_first, input 1) -> ``module.head`` (Linear(H, 1)) [+ x].

    Code generation is tested; no GRU model ships with the core yet, so the
    built plugin has not been verified against one.
    """
    return _recurrent_model(module, "rnn", "GRULayerT", "loadGRU", "GRU")


def map_model(name: str, module: nn.Module) -> RTModel:
    fn = MAPPERS.get(name)
    if hasattr(module, "inner") and hasattr(module, "taps"):  # fxforge.cabinet.CabinetFIR
        raise Unsupported("the learned cabinet stage ([model.cabinet]) has no plugin implementation yet; "
                          "export a run without it")
    if fn is None:
        raise Unsupported(f"no RTNeural mapping for it (the juce exporter supports: {', '.join(supported_models())})")
    return fn(module)
