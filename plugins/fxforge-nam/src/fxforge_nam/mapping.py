"""Map a trained fxforge module to NAM's ``architecture``, ``config`` and flat
``weights``, term for term, or say in one line why NAM cannot represent it.

The exporter knows no model: a model's package says what its model is in NAM's terms
through its spec's ``nam`` export facet, ``ModelSpec.exports["nam"]``, called with the
built module (inside any stages; a run with a stage is refused, NAM has none). The
facet returns a plain description, one of the two below, and this module checks every
shape it relies on and writes the weights in NAM's order, so a description that does
not fit is refused instead of written wrongly. Tensors are ``torch.Tensor`` (or
anything ``torch.as_tensor`` takes); the exporter copies them as float32.

``{"architecture": "LSTM", "layers": [...], "head": {...}}``: NAM's LSTM, a
unidirectional, biased ``nn.LSTM`` of input size 1 (no projection) and ``Linear(h_t)``
on its last layer, with no input residual. ``layers`` holds one dict per layer, in
PyTorch's layout and gate order (i, f, g, o): ``weight_ih`` (4H, in), ``weight_hh``
(4H, H), ``bias_ih`` and ``bias_hh`` (4H), and ``h0``, ``c0`` (H), the state the model
starts from (written as NAM's initial hidden and cell state, so NAM starts where
``fxforge process`` does). ``head``: ``weight`` (1, H) and ``bias`` (1).

``{"architecture": "WaveNet", "layer_arrays": [...], "head_scale": float}``: NAM's
WaveNet, module for module. Each layer array: ``rechannel`` (C, in, 1), an unbiased
1x1 conv (in is 1 for the first array, the previous array's C after);
``layers``, each ``conv`` (M, C, k) with ``conv_bias`` (M) and ``dilation`` (an int),
``input_mixer`` (M, 1, 1) (unbiased), ``layer1x1`` (C, C, 1) with ``layer1x1_bias``
(C), and ``gated`` (M is 2C when gated: tanh * sigmoid, else C: tanh);
``head_rechannel`` (out, C, 1) with ``head_rechannel_bias`` (out) or None, ``out``
the next array's C (the last array's 1). Every conv is plain: stride 1, no padding,
one group. The output is ``head_scale`` times the last head.

A facet refuses a module NAM cannot hold with a ValueError whose message is one line
(what NAM lacks, and what to train instead): the exporter refuses the run with it.
A model without a ``nam`` facet is refused in one line too.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from fxforge.exports import facet_tensor

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


def _tensor(value, name: str) -> torch.Tensor:
    return facet_tensor(value, name, facet="nam", error=Unsupported)


def _check(value, name: str, shape: tuple) -> torch.Tensor:
    return facet_tensor(value, name, shape, facet="nam", error=Unsupported)


def _off_film() -> dict:
    return {"active": False, "shift": True, "groups": 1}


def map_nam_wavenet(desc: dict) -> NamModel:
    arrays = desc.get("layer_arrays")
    if not isinstance(arrays, (list, tuple)) or not arrays:
        raise Unsupported("its nam facet's layer_arrays must be a non-empty list")
    layers_config, weights = [], []
    input_size, head_width = 1, None
    for a, arr in enumerate(arrays):
        layers = arr.get("layers") if isinstance(arr, dict) else None
        if not isinstance(layers, (list, tuple)) or not layers:
            raise Unsupported(f"layer array {a} has no layers")
        rechannel = _tensor(arr.get("rechannel"), f"layer array {a}: rechannel")
        c = int(rechannel.shape[0]) if rechannel.dim() == 3 else 0
        rechannel = _check(rechannel, f"layer array {a}: rechannel", (c, input_size, 1))
        if head_width is not None and head_width != c:
            raise Unsupported(f"layer array {a - 1}'s head has {head_width} channels, array {a} has {c}")
        last = a == len(arrays) - 1
        head = _tensor(arr.get("head_rechannel"), f"layer array {a}: head_rechannel")
        out = int(head.shape[0]) if head.dim() == 3 else 0
        head = _check(head, f"layer array {a}: head_rechannel", (out, c, 1))
        head_bias = arr.get("head_rechannel_bias")
        head_bias = None if head_bias is None else _check(head_bias, f"layer array {a}: head_rechannel bias", (out,))
        if last and out != 1:
            raise Unsupported(f"the last head has {out} outputs, not 1")
        gated = [bool(layer.get("gated", False)) for layer in layers]
        kernels, dilations = [], []
        weights += _flat(rechannel)
        for i, layer in enumerate(layers):
            where = f"layer array {a}, layer {i}"
            mid = 2 * c if gated[i] else c
            conv = _tensor(layer.get("conv"), f"{where}: conv")
            k = int(conv.shape[-1]) if conv.dim() == 3 else 0
            d = layer.get("dilation")
            if not isinstance(d, int) or isinstance(d, bool) or d < 1:
                raise Unsupported(f"{where}: dilation must be a positive integer (got {d!r})")
            conv = _check(conv, f"{where}: conv", (mid, c, k))
            conv_bias = _check(layer.get("conv_bias"), f"{where}: conv bias", (mid,))
            mixer = _check(layer.get("input_mixer"), f"{where}: input_mixer", (mid, 1, 1))
            l1 = _check(layer.get("layer1x1"), f"{where}: layer1x1", (c, c, 1))
            l1_bias = _check(layer.get("layer1x1_bias"), f"{where}: layer1x1 bias", (c,))
            kernels.append(k)
            dilations.append(d)
            weights += _flat(conv, conv_bias, mixer, l1, l1_bias)
        weights += _flat(head) + (_flat(head_bias) if head_bias is not None else [])
        layers_config.append({
            "input_size": input_size,
            "condition_size": 1,
            "head": {"out_channels": out, "kernel_size": 1, "bias": head_bias is not None},
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
        input_size, head_width = c, out
    head_scale = desc.get("head_scale")
    if not isinstance(head_scale, float):
        raise Unsupported("its nam facet's head_scale must be a float")
    weights.append(head_scale)
    rf = 1 + sum((k - 1) * d for lc in layers_config for k, d in zip(lc["kernel_sizes"], lc["dilations"]))
    widths = " / ".join(str(lc["channels"]) for lc in layers_config)
    return NamModel("WaveNet", {"layers": layers_config, "head": None, "head_scale": head_scale}, weights, rf,
                    f"WaveNet, {len(layers_config)} layer array(s) of {widths} channels, receptive field {rf}")


def map_lstm(desc: dict) -> NamModel:
    layers, head = desc.get("layers"), desc.get("head")
    if not isinstance(layers, (list, tuple)) or not layers or not all(isinstance(l, dict) for l in layers):
        raise Unsupported("its nam facet's layers must be a non-empty list of dicts")
    if not isinstance(head, dict):
        raise Unsupported("its nam facet's head must be a dict (weight, bias)")
    w_hh0 = _tensor(layers[0].get("weight_hh"), "layer 0: weight_hh")
    h = int(w_hh0.shape[-1]) if w_hh0.dim() == 2 else 0
    n = len(layers)
    w_ih0 = _tensor(layers[0].get("weight_ih"), "layer 0: weight_ih")
    if w_ih0.dim() != 2 or w_ih0.shape[1] != 1:
        raise Unsupported("NAM's LSTM is unidirectional, biased, input_size 1, without projection")
    head_w, head_b = head.get("weight"), head.get("bias")
    if head_b is None or tuple(_tensor(head_w, "head weight").shape) != (1, h):
        raise Unsupported(f"the head must be nn.Linear({h}, 1) with a bias, as NAM's")
    weights: list[float] = []
    for k, layer in enumerate(layers):
        cin = 1 if k == 0 else h
        w = torch.cat([_check(layer.get("weight_ih"), f"layer {k}: weight_ih", (4 * h, cin)),
                       _check(layer.get("weight_hh"), f"layer {k}: weight_hh", (4 * h, h))], dim=1)
        b = _check(layer.get("bias_ih"), f"layer {k}: bias_ih", (4 * h,)) + \
            _check(layer.get("bias_hh"), f"layer {k}: bias_hh", (4 * h,))
        weights += _flat(w, b, _check(layer.get("h0"), f"layer {k}: h0", (h,)),
                         _check(layer.get("c0"), f"layer {k}: c0", (h,)))
    weights += _flat(_tensor(head_w, "head weight"), _check(head_b, "head bias", (1,)))
    return NamModel("LSTM", {"input_size": 1, "hidden_size": h, "num_layers": n}, weights, 1,
                    f"LSTM {n}x{h} -> Linear({h}, 1)")


ARCHITECTURES = {"LSTM": map_lstm, "WaveNet": map_nam_wavenet}


def _facet(model_name: str):
    """The registered model's "nam" facet, or None (no such model installed, or no facet)."""
    from fxforge import FxforgeError
    from fxforge.registry import get_registry

    try:
        return dict(get_registry().get("model", model_name).exports).get("nam")
    except FxforgeError:
        return None


def map_run(model_name: str, module, cabinet: bool) -> NamModel:
    """The NAM form of a run's model, or :class:`Unsupported` naming what NAM lacks
    and the closest model that exports exactly."""
    if cabinet or hasattr(module, "inner"):
        raise Unsupported("NAM has no FIR stage for [model.cabinet]; train without the cabinet, e.g. "
                          f"{NAM_PRESET_HINT} (its 4093-sample receptive field holds a short cabinet response)")
    facet = _facet(model_name)
    if facet is None:
        raise Unsupported(f"a .nam holds NAM's WaveNet, LSTM or Linear, and model '{model_name[:60]}' is none of them; "
                          f"train {NAM_PRESET_HINT}, or wave-lstm with residual = false")
    try:
        desc = facet(module)
    except ValueError as e:  # the facet refuses a module NAM cannot hold
        raise Unsupported(" ".join(str(e).split())) from None
    if not isinstance(desc, dict) or desc.get("architecture") not in ARCHITECTURES:
        raise Unsupported("its nam facet must return a dict whose architecture is "
                          f"{' or '.join(ARCHITECTURES)} (see fxforge_nam.mapping)")
    return ARCHITECTURES[desc["architecture"]](desc)
