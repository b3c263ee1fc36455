"""Map a trained fxforge module to the AIDA-X / RTNeural model JSON, or say in
one line why AIDA-X cannot play it exactly.

AIDA-X (``src/model_variant.hpp``) compiles a fixed list of models: one
``LSTMLayerT`` or ``GRULayerT`` of hidden size 8, 12, 16, 20, 24, 32, 40, 64 or
80 over 1 to 3 inputs, then ``DenseT<H, 1>``. It picks the model from
``layers[0].type``, ``layers[0].shape[-1]`` and ``in_shape[-1]``, and loads the
weights with RTNeural's Keras-layout loaders (``json_parser``'s ``loadLSTM``,
``loadGRU``, ``loadDense``). Around the model it applies ``in_gain`` (dB) to the
input, adds the (gained) input back when ``in_skip`` is 1, and applies
``out_gain`` (dB) to the output.

The exporter knows no model: a model's package describes its model through its spec's
``aidax`` export facet, ``ModelSpec.exports["aidax"]``, called with the built module
(inside any stages; a run with a stage is refused). The facet returns a plain dict:

* ``cell``: ``"lstm"`` or ``"gru"``, a unidirectional, biased ``nn.LSTM`` / ``nn.GRU``
  (no projection) whose last layer feeds ``head``;
* ``layers``: one dict per layer, in PyTorch's layout and gate order: ``weight_ih``
  (G*H, in), ``weight_hh`` (G*H, H), ``bias_ih`` and ``bias_hh`` (G*H), G = 4 (LSTM) or
  3 (GRU); ``in`` of the first is 1 + knobs;
* ``head``: ``weight`` (1, H) and ``bias`` (1), the Linear after the recurrent layer;
* ``residual``: whether y = x + head(h) (AIDA-X's ``in_skip = 1``);
* ``knobs``: knob channels after the audio (0 for none), and ``conditioning``, how they
  enter: ``"concat"`` (appended to the input, AIDA-X's layout) or any other name
  (refused);
* ``initial_state``: the tensors of the model's initial state (RTNeural starts from zeros).

Tensors are ``torch.Tensor`` (or what ``torch.as_tensor`` takes). This module refuses
what AIDA-X does not compile (more layers or inputs, another hidden size) in one line,
naming what to train instead; a facet refuses a module it cannot describe with a
one-line ValueError, and a model without an ``aidax`` facet is refused in one line.
fxforge's ``wave-lstm`` and ``gru`` (``fxforge.builtins.wave_lstm.exports``) with one layer of
such a size are exactly that model: ``residual = true`` (y = x + Linear(h_t)) is
``in_skip = 1``.

Weight layout (Keras, as RTNeural reads it):

* LSTM: ``kernel`` (in, 4H), ``recurrent_kernel`` (H, 4H), ``bias`` (4H); the
  gate blocks are i, f, c, o, which is PyTorch's i, f, g, o, so the kernels are
  PyTorch's matrices transposed and the bias is ``b_ih + b_hh``.
* GRU: Keras gate order z, r, h against PyTorch's r, z, n, so the first two
  blocks swap. RTNeural's GRU is Keras' ``reset_after = True`` form (the reset
  gate multiplies ``U_h h + b_h[1]``), which is PyTorch's ``n = tanh(W_in x +
  b_in + r * (W_hn h + b_hn))``; the bias is two rows (input, recurrent).
* Dense: ``kernel`` (H, 1) = ``head.weight`` transposed, ``bias`` (1).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from fxforge.exports import facet_tensor

# AIDA-X's compiled input sizes (model_variant.hpp's MAX_INPUT_SIZE): the audio and up to two knobs.
MAX_INPUTS = 3
# AIDA-X's compiled hidden sizes (model_variant.hpp), the same for LSTM and GRU.
HIDDEN_SIZES = (8, 12, 16, 20, 24, 32, 40, 64, 80)
SIZES_TEXT = ", ".join(map(str, HIDDEN_SIZES))


class Unsupported(Exception):
    """AIDA-X cannot play this module exactly (a one-line reason)."""


@dataclass
class AidaxModel:
    kind: str            # "lstm" or "gru"
    hidden: int
    in_skip: int         # 1: y = x + f(x)
    layers: list[dict]
    description: str
    inputs: int = 1      # in_shape[-1]: the audio, then the knobs (AIDA-X's 2- and 3-input models)


def _matrix(t: torch.Tensor) -> list:
    return t.detach().to("cpu", torch.float32).tolist()


def closest_size(h: int) -> int:
    return min(HIDDEN_SIZES, key=lambda s: (abs(s - h), -s))


def _swap_rz(t: torch.Tensor, h: int) -> torch.Tensor:
    """PyTorch's GRU blocks r, z, n (along dim 0) as Keras' z, r, h."""
    return torch.cat([t[h:2 * h], t[:h], t[2 * h:]], dim=0)


def _tensor(value, name: str) -> torch.Tensor:
    return facet_tensor(value, name, facet="aidax", error=Unsupported)


def _check(value, name: str, shape: tuple) -> torch.Tensor:
    return facet_tensor(value, name, shape, facet="aidax", error=Unsupported)


def _layers(kind: str, layer: dict, head: dict, h: int, inputs: int) -> list[dict]:
    g = 4 if kind == "lstm" else 3
    w_ih = _check(layer.get("weight_ih"), "weight_ih", (g * h, inputs)).float()
    w_hh = _check(layer.get("weight_hh"), "weight_hh", (g * h, h)).float()
    b_ih = _check(layer.get("bias_ih"), "bias_ih", (g * h,)).float()
    b_hh = _check(layer.get("bias_hh"), "bias_hh", (g * h,)).float()
    if kind == "lstm":
        weights = [_matrix(w_ih.T), _matrix(w_hh.T), _matrix(b_ih + b_hh)]
    else:
        weights = [_matrix(_swap_rz(w_ih, h).T), _matrix(_swap_rz(w_hh, h).T),
                   [_matrix(_swap_rz(b_ih, h)), _matrix(_swap_rz(b_hh, h))]]
    dense = [_matrix(_tensor(head["weight"], "head weight").float().T), _matrix(_tensor(head["bias"], "head bias").float())]
    return [
        {"type": kind, "activation": "", "shape": [None, None, h], "weights": weights},
        {"type": "dense", "activation": "", "shape": [None, None, 1], "weights": dense},
    ]


def _recurrent(desc: dict) -> AidaxModel:
    kind, layers, head = desc.get("cell"), desc.get("layers"), desc.get("head")
    if kind not in ("lstm", "gru"):
        raise Unsupported(f"its aidax facet's cell must be \"lstm\" or \"gru\" (got {str(kind)[:40]!r})")
    name = "LSTM" if kind == "lstm" else "GRU"
    if not isinstance(layers, (list, tuple)) or not layers or not all(isinstance(l, dict) for l in layers):
        raise Unsupported("its aidax facet's layers must be a non-empty list of dicts")
    knobs = desc.get("knobs", 0) or 0
    if not isinstance(knobs, int) or isinstance(knobs, bool) or knobs < 0:
        raise Unsupported(f"its aidax facet's knobs must be a count (got {knobs!r})")
    conditioning = str(desc.get("conditioning", "concat"))
    if knobs and conditioning != "concat":
        raise Unsupported(f"AIDA-X takes knobs concatenated to the input, and this run's conditioning is "
                          f"{conditioning}; train with --set model.conditioning=\"concat\" for AIDA-X, "
                          f"or export it as a plugin with `fxforge export juce`")
    if knobs > MAX_INPUTS - 1:
        raise Unsupported(f"AIDA-X compiles models of up to {MAX_INPUTS} inputs (the audio and {MAX_INPUTS - 1} knobs) "
                          f"and this run has {knobs} knobs")
    w_ih, w_hh = _tensor(layers[0].get("weight_ih"), "weight_ih"), _tensor(layers[0].get("weight_hh"), "weight_hh")
    if w_ih.dim() != 2 or w_ih.shape[1] != 1 + knobs or w_hh.dim() != 2:
        raise Unsupported(f"AIDA-X's {name} is unidirectional, biased, input_size 1 (plus its knobs), without projection")
    h, n = int(w_hh.shape[1]), len(layers)
    if n != 1:
        raise Unsupported(f"AIDA-X compiles one {name} layer and this run has {n}; train with "
                          f"--set model.num_layers=1 (and hidden_size up to 80 for the capacity), "
                          f"or export it as a plugin with `fxforge export juce`")
    if h not in HIDDEN_SIZES:
        raise Unsupported(f"AIDA-X compiles {name} hidden sizes {SIZES_TEXT} and this run has {h}; train with "
                          f"--set model.hidden_size={closest_size(h)} (the closest), "
                          f"or export it as a plugin with `fxforge export juce`")
    if not isinstance(head, dict) or head.get("bias") is None or \
            tuple(_tensor(head.get("weight"), "head weight").shape) != (1, h) or \
            tuple(_tensor(head.get("bias"), "head bias").shape) != (1,):
        raise Unsupported(f"the head must be nn.Linear({h}, 1) with a bias, as AIDA-X's Dense")
    state = desc.get("initial_state") or ()
    if any(torch.count_nonzero(_tensor(t, "initial_state")) for t in state):
        raise Unsupported("the model starts from a non-zero state and RTNeural's reset() sets it to zero")
    residual = bool(desc.get("residual", False))
    return AidaxModel(kind, h, int(residual), _layers(kind, layers[0], head, h, 1 + knobs),
                      f"{name} 1x{h} -> Dense({h}, 1)" + (f", {1 + knobs} inputs (audio, {knobs} knob{'s' * (knobs > 1)})"
                                                          if knobs else "")
                      + (", in_skip (y = x + f(x))" if residual else ""), 1 + knobs)


def _facet(model_name: str):
    """The registered model's "aidax" facet, or None (no such model installed, or no facet)."""
    from fxforge import FxforgeError
    from fxforge.registry import get_registry

    try:
        return dict(get_registry().get("model", model_name).exports).get("aidax")
    except FxforgeError:
        return None


def map_run(model_name: str, module, cabinet: bool) -> AidaxModel:
    """The AIDA-X form of a run's model, or :class:`Unsupported` naming what
    AIDA-X lacks and the closest model that exports exactly."""
    hint = f"wave-lstm or gru with num_layers = 1 and hidden_size one of {SIZES_TEXT}"
    if cabinet or hasattr(module, "inner"):
        raise Unsupported("AIDA-X's model has no FIR stage for [model.cabinet] (AIDA-X loads the cabinet as a "
                          f"separate impulse response WAV); train {hint} without [model.cabinet], or export "
                          "this run as a plugin with `fxforge export juce`")
    facet = _facet(model_name)
    if facet is None:
        other = " (a wavenet exports as a plugin with `fxforge export juce`)" if model_name == "wavenet" else ""
        raise Unsupported(f"AIDA-X plays one LSTM or GRU layer into Dense(H, 1) and model '{model_name[:60]}' is "
                          f"neither; train {hint}{other}")
    try:
        desc = facet(module)
    except ValueError as e:  # the facet refuses a module it cannot describe
        raise Unsupported(" ".join(str(e).split())) from None
    if not isinstance(desc, dict):
        raise Unsupported("its aidax facet must return a dict (see fxforge_aidax.mapping)")
    return _recurrent(desc)
