"""The recurrent models' export facets (``ModelSpec.exports``): what the ``nam`` and
``aidax`` exporters need of a trained WaveLSTM or WaveGRU, as plain data (tensors,
integers, strings), so those exporters read none of this package's attributes.

Each facet is called with the built module (inside any stages) and returns the
description its exporter documents (``fxforge_nam.mapping``, ``fxforge_aidax.mapping``),
or raises ValueError with a one-line reason when that format cannot hold the model.
"""
from __future__ import annotations

import torch

# The model that exports to NAM exactly, named in a refusal (the wavenet package's preset).
NAM_PRESET_HINT = 'the wavenet with preset = "nam-wavenet" (--set model.preset=nam-wavenet), NAM\'s standard WaveNet'


def _layers(rnn) -> list[dict]:
    """Each layer's weights in PyTorch's own layout and gate order."""
    return [{key: getattr(rnn, f"{key}_l{k}").detach() for key in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
            for k in range(rnn.num_layers)]


def _head(module) -> dict:
    return {"weight": module.head.weight.detach(), "bias": module.head.bias.detach()}


def nam_lstm(module) -> dict:
    """The ``nam`` facet of ``wave-lstm``: NAM's LSTM is Linear(h_t) over an LSTM, without
    the input residual; the initial state (zeros) is written as NAM's."""
    if module.residual:
        raise ValueError("NAM's LSTM has no input residual (this run is y = x + Linear(h_t)); train with "
                         "--set model.residual=false (exactly NAM's LSTM), or " + NAM_PRESET_HINT)
    h0, c0 = module.initial_state(1, torch.device("cpu"))
    layers = _layers(module.lstm)
    for k, layer in enumerate(layers):
        layer["h0"], layer["c0"] = h0[k, 0], c0[k, 0]
    return {"architecture": "LSTM", "layers": layers, "head": _head(module)}


def nam_gru(module) -> dict:
    """The ``nam`` facet of ``gru``: NAM has no GRU, so it refuses, naming what exports."""
    raise ValueError("NAM has no GRU; train wave-lstm with --set model.residual=false (exactly NAM's LSTM), "
                     "or " + NAM_PRESET_HINT)


def _aidax(module, rnn, cell: str) -> dict:
    state = module.initial_state(1, torch.device("cpu"))
    return {
        "cell": cell,
        "layers": _layers(rnn),
        "head": _head(module),
        "residual": bool(module.residual),
        "knobs": int(module.knobs),
        "conditioning": str(module.conditioning),
        "initial_state": list(state) if isinstance(state, (tuple, list)) else [state],
    }


def aidax_lstm(module) -> dict:
    """The ``aidax`` facet of ``wave-lstm``."""
    return _aidax(module, module.lstm, "lstm")


def aidax_gru(module) -> dict:
    """The ``aidax`` facet of ``gru``."""
    return _aidax(module, module.rnn, "gru")
