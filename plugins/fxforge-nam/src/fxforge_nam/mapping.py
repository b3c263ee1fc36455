"""Map a trained fxforge module to NAM's ``architecture``, ``config`` and flat
``weights``, term for term, or say in one line why NAM cannot represent it.

Only two fxforge models are NAM models exactly:

* ``wavenet`` with ``layout = "nam"`` (preset ``nam-wavenet``): the plugin's
  :class:`fxforge_wavenet.plugin.NamWaveNet` is NAM's WaveNet module for module
  (unbiased rechannel, conv + unbiased input mixer, biased layer 1x1, head
  rechannel, ``head_scale``), so its weights are copied in NAM's order;
* ``wave-lstm`` with ``residual = false``: ``Linear(h_t)`` over an ``nn.LSTM``
  is NAM's LSTM; its initial state (fxforge's, zeros) is written as NAM's
  initial hidden and cell state, so NAM starts where ``fxforge process`` does.

The mapping reads only the public structure the model plugins document
(``layer_arrays``, ``rechannel``, ``layers``, ``conv``, ``input_mixer``,
``layer1x1``, ``head_rechannel``, ``head_scale``; ``lstm``, ``head``,
``residual``, ``initial_state``) and checks every shape and bias it relies on,
so a module that does not fit is refused instead of written wrongly.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

NAM_PRESET_HINT = 'the wavenet with preset = "nam-wavenet" (--set model.preset=nam-wavenet), NAM\'s standard WaveNet'
FILM_KEYS = ("conv_pre_film", "conv_post_film", "input_mixin_pre_film", "input_mixin_post_film",
             "activation_pre_film", "activation_post_film", "layer1x1_post_film", "head1x1_post_film")


class Unsupported(Exception):
    """NAM cannot represent this module exactly (a one-line reason)."""


@dataclass
class NamModel:
    architecture: str
    config: dict
    weights: list[float]
    receptive_field: int
    description: str


def _flat(*tensors: torch.Tensor) -> list[float]:
    out: list[float] = []
    for t in tensors:
        out.extend(t.detach().to("cpu", torch.float32).reshape(-1).tolist())
    return out


def _check_conv(conv, name: str, cin: int, cout: int, kernel: int, bias: bool, dilation: int = 1) -> None:
    if not isinstance(conv, nn.Conv1d):
        raise Unsupported(f"{name} is not a Conv1d")
    if (conv.in_channels, conv.out_channels, conv.kernel_size[0], conv.dilation[0]) != (cin, cout, kernel, dilation) \
            or conv.groups != 1 or conv.stride != (1,) or conv.padding != (0,) or (conv.bias is not None) != bias:
        raise Unsupported(f"{name} is Conv1d({conv.in_channels}, {conv.out_channels}, {conv.kernel_size[0]}, "
                          f"dilation={conv.dilation[0]}, bias={conv.bias is not None}), not what NAM's WaveNet has there")


def _off_film() -> dict:
    return {"active": False, "shift": True, "groups": 1}


def map_nam_wavenet(module) -> NamModel:
    arrays = getattr(module, "layer_arrays", None)
    if not isinstance(arrays, nn.ModuleList) or not len(arrays):
        raise Unsupported("expected module.layer_arrays (a non-empty ModuleList)")
    layers_config, weights = [], []
    input_size, head_width = 1, None
    for a, arr in enumerate(arrays):
        rechannel, layers, head = (getattr(arr, k, None) for k in ("rechannel", "layers", "head_rechannel"))
        if not isinstance(layers, nn.ModuleList) or not len(layers):
            raise Unsupported(f"layer array {a} has no layers")
        c = rechannel.out_channels if isinstance(rechannel, nn.Conv1d) else 0
        _check_conv(rechannel, f"layer array {a}: rechannel", input_size, c, 1, bias=False)
        if head_width is not None and head_width != c:
            raise Unsupported(f"layer array {a - 1}'s head has {head_width} channels, array {a} has {c}")
        last = a == len(arrays) - 1
        if not isinstance(head, nn.Conv1d):
            raise Unsupported(f"layer array {a}: head_rechannel is not a Conv1d")
        _check_conv(head, f"layer array {a}: head_rechannel", c, head.out_channels, 1, bias=head.bias is not None)
        if last and head.out_channels != 1:
            raise Unsupported(f"the last head has {head.out_channels} outputs, not 1")
        gated = [bool(getattr(layer, "gated", False)) for layer in layers]
        kernels, dilations = [], []
        weights += _flat(rechannel.weight)
        for i, layer in enumerate(layers):
            conv, mixer, l1 = (getattr(layer, k, None) for k in ("conv", "input_mixer", "layer1x1"))
            if not isinstance(conv, nn.Conv1d):
                raise Unsupported(f"layer array {a}, layer {i}: conv is not a Conv1d")
            mid = 2 * c if gated[i] else c
            k, d = conv.kernel_size[0], conv.dilation[0]
            _check_conv(conv, f"layer array {a}, layer {i}: conv", c, mid, k, bias=True, dilation=d)
            _check_conv(mixer, f"layer array {a}, layer {i}: input_mixer", 1, mid, 1, bias=False)
            _check_conv(l1, f"layer array {a}, layer {i}: layer1x1", c, c, 1, bias=True)
            kernels.append(k)
            dilations.append(d)
            weights += _flat(conv.weight, conv.bias, mixer.weight, l1.weight, l1.bias)
        weights += _flat(head.weight) + (_flat(head.bias) if head.bias is not None else [])
        layers_config.append({
            "input_size": input_size,
            "condition_size": 1,
            "head": {"out_channels": head.out_channels, "kernel_size": 1, "bias": head.bias is not None},
            "channels": c,
            "kernel_sizes": kernels,
            "dilations": dilations,
            "activation": [{"type": "Tanh"} for _ in layers],
            "bottleneck": c,
            "head1x1": {"active": False, "out_channels": 1, "groups": 1},
            "layer1x1": {"active": True, "groups": 1},
            "groups_input": 1,
            "groups_input_mixin": 1,
            **{key: _off_film() for key in FILM_KEYS},
            "gating_mode": ["gated" if g else "none" for g in gated],
            "secondary_activation": [{"type": "Sigmoid"} if g else None for g in gated],
            "slimmable": None,
        })
        input_size, head_width = c, head.out_channels
    head_scale = getattr(module, "head_scale", None)
    if not isinstance(head_scale, float):
        raise Unsupported("expected module.head_scale (a float)")
    weights.append(head_scale)
    rf = 1 + sum((k - 1) * d for lc in layers_config for k, d in zip(lc["kernel_sizes"], lc["dilations"]))
    widths = " / ".join(str(lc["channels"]) for lc in layers_config)
    return NamModel("WaveNet", {"layers": layers_config, "head": None, "head_scale": head_scale}, weights, rf,
                    f"WaveNet, {len(layers_config)} layer array(s) of {widths} channels, receptive field {rf}")


def map_lstm(module) -> NamModel:
    lstm, head = getattr(module, "lstm", None), getattr(module, "head", None)
    if not isinstance(lstm, nn.LSTM):
        raise Unsupported("expected module.lstm (an nn.LSTM)")
    if lstm.input_size != 1 or not lstm.batch_first or lstm.bidirectional or lstm.proj_size or not lstm.bias:
        raise Unsupported("NAM's LSTM is unidirectional, biased, input_size 1, without projection")
    h, n = lstm.hidden_size, lstm.num_layers
    if not isinstance(head, nn.Linear) or (head.in_features, head.out_features) != (h, 1) or head.bias is None:
        raise Unsupported(f"the head must be nn.Linear({h}, 1) with a bias, as NAM's")
    h0, c0 = module.initial_state(1, torch.device("cpu"))
    weights: list[float] = []
    for k in range(n):
        w = torch.cat([getattr(lstm, f"weight_ih_l{k}"), getattr(lstm, f"weight_hh_l{k}")], dim=1)
        b = getattr(lstm, f"bias_ih_l{k}") + getattr(lstm, f"bias_hh_l{k}")
        weights += _flat(w, b, h0[k, 0], c0[k, 0])
    weights += _flat(head.weight, head.bias)
    return NamModel("LSTM", {"input_size": 1, "hidden_size": h, "num_layers": n}, weights, 1,
                    f"LSTM {n}x{h} -> Linear({h}, 1)")


def map_run(model_name: str, module, cabinet: bool) -> NamModel:
    """The NAM form of a run's model, or :class:`Unsupported` naming what NAM lacks
    and the closest model that exports exactly."""
    from fxforge_wave_lstm.plugin import WaveGRU, WaveLSTM
    from fxforge_wavenet.plugin import NamWaveNet, WaveNet

    if cabinet or hasattr(module, "inner"):
        raise Unsupported("NAM has no FIR stage for [model.cabinet]; train without the cabinet, e.g. "
                          f"{NAM_PRESET_HINT} (its 4093-sample receptive field holds a short cabinet response)")
    if isinstance(module, NamWaveNet):
        return map_nam_wavenet(module)
    if isinstance(module, WaveNet):
        what = "a biased input rechannel, no input mixer, layer buffers that start at zero"
        if getattr(module, "input_residual", False):
            what += ", y = x + net(x)"
        raise Unsupported(f"fxforge's wavenet layout is not NAM's ({what}); train {NAM_PRESET_HINT}, which exports exactly")
    if isinstance(module, WaveLSTM):
        if module.residual:
            raise Unsupported("NAM's LSTM has no input residual (this run is y = x + Linear(h_t)); train with "
                              "--set model.residual=false (exactly NAM's LSTM), or " + NAM_PRESET_HINT)
        return map_lstm(module)
    if isinstance(module, WaveGRU):
        raise Unsupported("NAM has no GRU; train wave-lstm with --set model.residual=false (exactly NAM's LSTM), "
                          "or " + NAM_PRESET_HINT)
    raise Unsupported(f"a .nam holds NAM's WaveNet, LSTM or Linear, and model '{model_name[:60]}' is none of them; "
                      f"train {NAM_PRESET_HINT}, or wave-lstm with residual = false")
