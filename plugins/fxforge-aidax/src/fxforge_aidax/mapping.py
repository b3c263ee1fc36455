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

fxforge's ``wave-lstm`` and ``gru`` with one layer of such a size are exactly
that model: ``residual = true`` (y = x + Linear(h_t)) is ``in_skip = 1``.

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
from torch import nn

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


def _layers(kind: str, rnn: nn.Module, head: nn.Linear) -> list[dict]:
    h = rnn.hidden_size
    w_ih, w_hh = rnn.weight_ih_l0.detach().float(), rnn.weight_hh_l0.detach().float()
    b_ih, b_hh = rnn.bias_ih_l0.detach().float(), rnn.bias_hh_l0.detach().float()
    if kind == "lstm":
        weights = [_matrix(w_ih.T), _matrix(w_hh.T), _matrix(b_ih + b_hh)]
    else:
        weights = [_matrix(_swap_rz(w_ih, h).T), _matrix(_swap_rz(w_hh, h).T),
                   [_matrix(_swap_rz(b_ih, h)), _matrix(_swap_rz(b_hh, h))]]
    dense = [_matrix(head.weight.detach().float().T), _matrix(head.bias.detach().float())]
    return [
        {"type": kind, "activation": "", "shape": [None, None, h], "weights": weights},
        {"type": "dense", "activation": "", "shape": [None, None, 1], "weights": dense},
    ]


def _recurrent(module, attr: str, kind: str) -> AidaxModel:
    rnn, head = getattr(module, attr, None), getattr(module, "head", None)
    cls = nn.LSTM if kind == "lstm" else nn.GRU
    name = "LSTM" if kind == "lstm" else "GRU"
    if not isinstance(rnn, cls):
        raise Unsupported(f"expected module.{attr} (an nn.{name})")
    knobs = int(getattr(module, "knobs", 0) or 0)
    if knobs and getattr(module, "conditioning", "concat") != "concat":
        raise Unsupported(f"AIDA-X takes knobs concatenated to the input, and this run's conditioning is "
                          f"{module.conditioning}; train with --set model.conditioning=\"concat\" for AIDA-X, "
                          f"or export it as a plugin with `fxforge export juce`")
    if knobs > MAX_INPUTS - 1:
        raise Unsupported(f"AIDA-X compiles models of up to {MAX_INPUTS} inputs (the audio and {MAX_INPUTS - 1} knobs) "
                          f"and this run has {knobs} knobs")
    if rnn.input_size != 1 + knobs or not rnn.batch_first or rnn.bidirectional or getattr(rnn, "proj_size", 0) or not rnn.bias:
        raise Unsupported(f"AIDA-X's {name} is unidirectional, biased, input_size 1 (plus its knobs), without projection")
    h, n = rnn.hidden_size, rnn.num_layers
    if n != 1:
        raise Unsupported(f"AIDA-X compiles one {name} layer and this run has {n}; train with "
                          f"--set model.num_layers=1 (and hidden_size up to 80 for the capacity), "
                          f"or export it as a plugin with `fxforge export juce`")
    if h not in HIDDEN_SIZES:
        raise Unsupported(f"AIDA-X compiles {name} hidden sizes {SIZES_TEXT} and this run has {h}; train with "
                          f"--set model.hidden_size={closest_size(h)} (the closest), "
                          f"or export it as a plugin with `fxforge export juce`")
    if not isinstance(head, nn.Linear) or (head.in_features, head.out_features) != (h, 1) or head.bias is None:
        raise Unsupported(f"the head must be nn.Linear({h}, 1) with a bias, as AIDA-X's Dense")
    state = module.initial_state(1, torch.device("cpu"))
    tensors = state if isinstance(state, (tuple, list)) else (state,)
    if any(torch.count_nonzero(t) for t in tensors):
        raise Unsupported("the model starts from a non-zero state and RTNeural's reset() sets it to zero")
    residual = bool(getattr(module, "residual", False))
    return AidaxModel(kind, h, int(residual), _layers(kind, rnn, head),
                      f"{name} 1x{h} -> Dense({h}, 1)" + (f", {1 + knobs} inputs (audio, {knobs} knob{'s' * (knobs > 1)})"
                                                          if knobs else "")
                      + (", in_skip (y = x + f(x))" if residual else ""), 1 + knobs)


def map_run(model_name: str, module, cabinet: bool) -> AidaxModel:
    """The AIDA-X form of a run's model, or :class:`Unsupported` naming what
    AIDA-X lacks and the closest model that exports exactly."""
    from fxforge_wave_lstm.plugin import WaveGRU, WaveLSTM

    hint = f"wave-lstm or gru with num_layers = 1 and hidden_size one of {SIZES_TEXT}"
    if cabinet or hasattr(module, "inner"):
        raise Unsupported("AIDA-X's model has no FIR stage for [model.cabinet] (AIDA-X loads the cabinet as a "
                          f"separate impulse response WAV); train {hint} without [model.cabinet], or export "
                          "this run as a plugin with `fxforge export juce`")
    if isinstance(module, WaveLSTM):
        return _recurrent(module, "lstm", "lstm")
    if isinstance(module, WaveGRU):
        return _recurrent(module, "rnn", "gru")
    other = " (a wavenet exports as a plugin with `fxforge export juce`)" if model_name == "wavenet" else ""
    raise Unsupported(f"AIDA-X plays one LSTM or GRU layer into Dense(H, 1) and model '{model_name[:60]}' is "
                      f"neither; train {hint}{other}")
