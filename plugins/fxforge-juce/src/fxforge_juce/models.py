"""Map a trained PyTorch module to RTNeural's compile-time layers.

Adding a model to the exporter means adding one function here, decorated with
``@mapper("model-name")``, that turns the module into an :class:`RTModel`: the
C++ members of the generated ``fxforge::Model`` class, the statements that load
them from the embedded state-dict JSON, the statements of ``process`` (which
turn ``float x`` into ``float y``; or, for a block-wise model such as the
WaveNet, the statements that turn ``n`` samples of ``in`` into ``out``), and the
tensors to embed. Everything that reaches C++ is built from integers and fixed
strings, never from user text.

A family's wiring belongs in C++, as a class template in the project template's
``Source/`` (``fxforge_juce/template/Source``), and its mapper writes only the type's
parameters and the weights: the recurrent models are RTNeural's ``ModelT<...>`` with their
knobs through ``fxforge::ConcatKnobs<K>`` or ``fxforge::FilmKnobs<K, W, F, H, bias>``
(``FxforgeGlue.h``), the WaveNet is ``fxforge::wavenet::Net<C, residual, Layer<C, K, D,
gated>...>`` (``FxforgeWaveNet.h``). Those lines land in ``Source/FxforgeModel.h.in`` and
the ``fragments/*.in`` around it (``generate.py``).

A model whose package ships a ``ModelSpec.exports["juce"]`` facet is mapped by it
instead (see :func:`from_facet`): a third party's model needs no function here, and
the exporter reads none of its attributes. A model wrapped in stages
(``fxforge.nn.model.Stage``, ``[model.<stage>]``) maps its inner model as usual and
appends each stage's fragment, which the stage's package ships as its
``StageSpec.exports["juce"]`` facet (see :func:`append`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn


class Unsupported(Exception):
    """The module cannot be expressed with RTNeural layers (one-line reason)."""


@dataclass
class RTModel:
    members: list[str]
    loaders: list[str]
    body: list[str]  # statements of process(): from `float x` to `float y`
    weights: dict[str, torch.Tensor]
    residual: bool  # y includes + x (reported in the project's metadata)
    architecture: str
    resets: list[str] = field(default_factory=list)
    # Block-wise models: statements of processChunk(), from `const float* in` to `float* out`
    # over `n` samples (n <= wavenet::kMaxBlock). Empty: the block API loops `body` per sample.
    block: list[str] = field(default_factory=list)
    # C++ declarations (classes, functions) a model's or stage's facet ships, each placed once
    # inside namespace fxforge before the generated Model class.
    code: list[str] = field(default_factory=list)
    # A conditioned model's knob inputs (0..1 each, normalised as fxforge.knobs does): how many,
    # and the statements of ``setKnobs (const float* k)``, which the plugin calls before each
    # sample with the smoothed values (they update what ``body`` reads). 0: no knobs.
    knobs: int = 0
    knob_update: list[str] = field(default_factory=list)
    # A block-wise conditioned model: the expression (const float*, sample-major over a chunk) of
    # the knob values setKnobs holds, which ``block`` reads as ``knobs`` when none come per sample.
    held_knobs: str = ""


MAPPERS: dict[str, Callable[[nn.Module], RTModel]] = {}


def mapper(name: str):
    def register(fn):
        MAPPERS[name] = fn
        return fn

    return register


def supported_models() -> list[str]:
    return sorted(MAPPERS)


def _tensor(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu", torch.float32).contiguous()


def _embedded(module: nn.Module, prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    return {k: _tensor(v) for k, v in module.state_dict().items() if k.startswith(prefixes)}


# ---------------------------------------------------------------- recurrent


def _film_network(module: nn.Module, knobs: int, hidden: int) -> tuple[int, int]:
    """(generator width, features) of the FiLM network ``module.film`` (Linear(K, W), Tanh,
    Linear(W, F), Tanh) and ``module.film_head`` (Linear(F, 2H): gamma, then beta)."""
    film, film_head = getattr(module, "film", None), getattr(module, "film_head", None)
    layers = list(film) if isinstance(film, nn.Sequential) else []
    if not (len(layers) == 4 and isinstance(layers[0], nn.Linear) and isinstance(layers[1], nn.Tanh)
            and isinstance(layers[2], nn.Linear) and isinstance(layers[3], nn.Tanh)
            and layers[0].in_features == knobs and layers[2].in_features == layers[0].out_features
            and layers[0].bias is not None and layers[2].bias is not None):
        raise Unsupported(f"FiLM conditioning: expected module.film = Sequential(Linear({knobs}, W), Tanh, "
                          "Linear(W, F), Tanh) with biases")
    features = layers[2].out_features
    if not (isinstance(film_head, nn.Linear) and film_head.in_features == features
            and film_head.out_features == 2 * hidden and film_head.bias is not None):
        raise Unsupported(f"FiLM conditioning: expected module.film_head = Linear({features}, {2 * hidden})")
    return layers[0].out_features, features


def _knob_gain(module: nn.Module, knobs: int) -> None:
    """``module.knob_gain`` must be the KnobGain the mapping computes: log_min, log_max and taper,
    one value per knob."""
    gain = getattr(module, "knob_gain", None)
    names = ("log_min", "log_max", "taper")
    params = [getattr(gain, n, None) for n in names]
    if gain is None or not all(isinstance(v, torch.Tensor) and v.shape == (knobs,) for v in params):
        raise Unsupported(f"gain conditioning: expected module.knob_gain with {', '.join(names)} of {knobs} "
                          f"value{'s' * (knobs > 1)} each")


def _recurrent_model(module: nn.Module, attr: str, cpp_layer: str, loader: str, kind: str) -> RTModel:
    """The recurrent model, unconditioned or with knobs (``module.knobs`` > 0):

    * concat: the first layer reads [x, k] (1 + K inputs), as in PyTorch;
    * film: phi = tanh(L2 tanh(L1 k)) (F features), the first layer reads [x, x * phi, phi]
      (1 + 2F inputs) and the last layer's output h is h * (1 + gamma) + beta before the head,
      (gamma, beta) = film_head(phi). phi, gamma and beta are recomputed in ``setKnobs`` only
      when a knob value changes (while the plugin's smoothing ramps, every sample).
    * gain: as concat, the audio scaled first by the knobs' gain (``module.knob_gain``, a
      KnobGain: per knob a + (b - a) c k / (c + 1 - k), a = exp(log_min), b = exp(log_max),
      c = softplus(taper); their product), recomputed in ``setKnobs``.
    """
    rnn = getattr(module, attr, None)
    expected = nn.LSTM if kind == "LSTM" else nn.GRU
    if not isinstance(rnn, expected):
        raise Unsupported(f"expected module.{attr} to be nn.{kind}")
    knobs = int(getattr(module, "knobs", 0) or 0)
    conditioning = str(getattr(module, "conditioning", "concat")) if knobs else ""
    if conditioning not in ("", "concat", "film", "gain"):
        raise Unsupported(f"conditioning '{conditioning[:40]}' has no JUCE mapping (concat, film and gain do)")
    if conditioning == "gain":
        _knob_gain(module, knobs)
    h = rnn.hidden_size
    film = _film_network(module, knobs, h) if conditioning == "film" else None
    inputs = 1 + (2 * film[1] if film else knobs)
    if rnn.input_size != inputs:
        if not knobs:
            raise Unsupported(f"{kind} input_size is {rnn.input_size}; the plugin feeds one sample (input_size=1)")
        raise Unsupported(f"{kind} input_size is {rnn.input_size}; {conditioning} conditioning on {knobs} knobs "
                          f"feeds {inputs}")
    if rnn.bidirectional:
        raise Unsupported(f"a bidirectional {kind} is not causal and cannot run in real time")
    if not rnn.batch_first:
        raise Unsupported(f"the {kind} must be batch_first")
    if getattr(rnn, "proj_size", 0):
        raise Unsupported(f"{kind} proj_size is not supported by RTNeural")
    head = getattr(module, "head", None)
    if not isinstance(head, nn.Linear) or head.in_features != h or head.out_features != 1:
        raise Unsupported(f"the output head must be nn.Linear({h}, 1)")
    if knobs and not isinstance(getattr(module, "knob_defaults", None), torch.Tensor):
        raise Unsupported("a conditioned model must carry its knob_defaults buffer")

    layers, loaders = [], []
    bias = "true" if rnn.bias else "false"
    for k in range(rnn.num_layers):
        layers.append(f"RTNeural::{cpp_layer}<float, {inputs if k == 0 else h}, {h}>")
        loaders.append(f'RTNeural::torch_helpers::{loader}<float> (json, "{attr}.", net.get<{k}>(), {bias}, {k});')
    head_bias = "true" if head.bias is not None else "false"
    if film is None:
        layers.append(f"RTNeural::DenseT<float, {h}, 1, {head_bias}>")
        loaders.append(f'RTNeural::torch_helpers::loadDense<float> (json, "head.", net.get<{rnn.num_layers}>(), {head_bias});')

    residual = bool(getattr(module, "residual", False))
    out_size = h if film else 1
    net_type = f"RTNeural::ModelT<float, {inputs}, {out_size},\n        " + ",\n        ".join(layers) + ">"
    arch = f"{kind} {rnn.num_layers}x{h} -> Dense {h}x1" + (" + input (residual)" if residual else "")
    prefixes = (f"{attr}.", "head.") + (("knob_defaults", "film.", "film_head.", "knob_gain.") if knobs else ())
    weights = _embedded(module, prefixes)
    members, resets = [f"{net_type} net;"], ["net.reset();"]
    knob_update: list[str] = []
    # The knob wiring is a C++ class template (FxforgeGlue.h: ConcatKnobs, GainKnobs, FilmKnobs); only its
    # type parameters here. It loads knob_defaults (and the FiLM network and the head) itself.
    if not knobs:
        body = ["float in[1] = { x };", "float y = net.forward (in);"]
    elif conditioning == "gain":
        arch += f", {knobs} knob{'s' * (knobs > 1)} concatenated to the input, which they scale (a pot-law gain)"
        members.append(f"GainKnobs<{knobs}> gain; // [g (knobs) x, knobs (0..1)]")
        loaders.append("gain.load (json);")
        knob_update = ["gain.set (k);"]
        body = ["float y = net.forward (gain.input (x));"]
    elif film is None:
        arch += f", {knobs} knob{'s' * (knobs > 1)} concatenated to the input"
        members.append(f"ConcatKnobs<{knobs}> concat; // [x, knobs (0..1)]")
        loaders.append("concat.load (json);")
        knob_update = ["concat.set (k);"]
        body = ["float y = net.forward (concat.input (x));"]
    else:
        width, features = film
        arch += f", FiLM of {knobs} knob{'s' * (knobs > 1)} ({knobs}-{width}-{features} tanh)"
        members.append(f"FilmKnobs<{knobs}, {width}, {features}, {h}, {head_bias}> film; // [x, x * phi, phi], the head")
        loaders.append("film.load (json);")
        knob_update = ["film.set (k);"]
        body = ["net.forward (film.input (x));", "float y = film.output (net.getOutputs());"]
    return RTModel(
        members=members,
        loaders=loaders,
        body=body + (["y += x;"] if residual else []),
        weights=weights,
        residual=residual,
        architecture=arch,
        resets=resets,
        knobs=knobs,
        knob_update=knob_update,
    )


@mapper("wave-lstm")
def wave_lstm(module: nn.Module) -> RTModel:
    """``module.lstm`` (nn.LSTM, batch_first, input 1, or with knobs: see _recurrent_model) ->
    ``module.head`` (Linear(H, 1)) [+ x]."""
    return _recurrent_model(module, "lstm", "LSTMLayerT", "loadLSTM", "LSTM")


@mapper("gru")
def gru(module: nn.Module) -> RTModel:
    """``module.rnn`` (nn.GRU, batch_first, input 1, or with knobs: see _recurrent_model) ->
    ``module.head`` (Linear(H, 1)) [+ x]."""
    return _recurrent_model(module, "rnn", "GRULayerT", "loadGRU", "GRU")


# ---------------------------------------------------------------- wavenet


def _pointwise(conv: nn.Module, n_in: int, n_out: int, what: str) -> None:
    if not (isinstance(conv, nn.Conv1d) and conv.kernel_size == (1,) and conv.in_channels == n_in
            and conv.out_channels == n_out and conv.groups == 1 and conv.bias is not None):
        raise Unsupported(f"{what} must be nn.Conv1d({n_in}, {n_out}, 1) with a bias")


@mapper("wavenet")
def wavenet(module: nn.Module) -> RTModel:
    """``rechannel`` 1x1 -> layers (dilated ``conv``, gate, 1x1 ``mix`` back into the stack, the
    activation summed into the skip path) -> 1x1 ``head`` of the skip sum [+ x].

    Block-wise: the C++ class template ``fxforge::wavenet::Net<C, InputResidual, Layer...>``
    (``FxforgeWaveNet.h``) is the whole family's wiring; this writes only its type parameters
    (channels, and per layer ``wavenet::Layer<C, kernel, dilation, gated>``) and the weights,
    which it reads by their state-dict names. Each layer holds its past inputs; per block
    every conv tap, the gate, the mix and the head are matrix products over all the block's
    samples (channels x samples), which is what makes it fast. The last layer's ``mix``
    feeds nothing and is skipped.
    """
    knobs = int(getattr(module, "knobs", 0) or 0)
    if knobs and not isinstance(getattr(module, "knob_defaults", None), torch.Tensor):
        raise Unsupported("a conditioned model must carry its knob_defaults buffer")
    layers = getattr(module, "layers", None)
    rechannel, head = getattr(module, "rechannel", None), getattr(module, "head", None)
    if not isinstance(layers, nn.ModuleList) or not len(layers) or not isinstance(rechannel, nn.Conv1d):
        raise Unsupported("expected module.rechannel (Conv1d) and module.layers (a non-empty ModuleList)")
    c = rechannel.out_channels
    _pointwise(rechannel, 1, c, "rechannel")
    _pointwise(head, c, 1, "head")

    weights = {
        "rechannel.weight": _tensor(rechannel.weight[:, :, 0]),
        "rechannel.bias": _tensor(rechannel.bias),
        "head.weight": _tensor(head.weight[:, :, 0]),
        "head.bias": _tensor(head.bias),
    }
    kinds, dilations = [], []
    for i, layer in enumerate(layers):
        conv, mix, gated = getattr(layer, "conv", None), getattr(layer, "mix", None), bool(getattr(layer, "gated", False))
        width = 2 * c if gated else c
        if not (isinstance(conv, nn.Conv1d) and conv.in_channels == c and conv.out_channels == width
                and conv.groups == 1 and conv.stride == (1,) and conv.padding == (0,) and conv.bias is not None):
            raise Unsupported(f"layers.{i}.conv must be a causal nn.Conv1d({c}, {width}, k, dilation=d) with a bias")
        k, d = int(conv.kernel_size[0]), int(conv.dilation[0])
        last = i + 1 == len(layers)
        if not last:
            _pointwise(mix, c, c, f"layers.{i}.mix")
        dilations.append(d)
        kinds.append(f"wavenet::Layer<{c}, {k}, {d}, {'true' if gated else 'false'}" + (f", {knobs}>" if knobs else ">"))
        if knobs:  # global conditioning: a 1x1 conv of the knobs (K -> width, no bias) into the pre-activation
            cond = getattr(layer, "cond", None)
            if not (isinstance(cond, nn.Conv1d) and cond.in_channels == knobs and cond.out_channels == width
                    and cond.kernel_size == (1,) and cond.groups == 1 and cond.bias is None):
                raise Unsupported(f"layers.{i}.cond must be nn.Conv1d({knobs}, {width}, 1) without a bias")
            weights[f"layers.{i}.cond.weight"] = _tensor(cond.weight[:, :, 0])
        weights[f"layers.{i}.conv.weight"] = _tensor(conv.weight)
        weights[f"layers.{i}.conv.bias"] = _tensor(conv.bias)
        if not last:  # the last layer's mix feeds nothing (wavenet::Net loads none)
            weights[f"layers.{i}.mix.weight"] = _tensor(mix.weight[:, :, 0])
            weights[f"layers.{i}.mix.bias"] = _tensor(mix.bias)
    residual = bool(getattr(module, "input_residual", False))
    # The wiring is the C++ class template wavenet::Net (FxforgeWaveNet.h): only its type parameters here.
    net = (f"wavenet::Net<{c}, {'true' if residual else 'false'},\n        "
           + ",\n        ".join(kinds) + "> net;")
    gate = "gated" if getattr(layers[0], "gated", False) else "tanh"
    arch = (f"WaveNet {len(layers)} layers x {c} ch ({gate}, kernel {layers[0].conv.kernel_size[0]}, "
            f"dilations {min(dilations)}..{max(dilations)})" + (" + input (residual)" if residual else ""))
    if not knobs:
        return RTModel(members=[net], loaders=["net.load (json);"], body=[], weights=weights, residual=residual,
                       architecture=arch, resets=["net.reset();"], block=["net.process (in, out, n);"])
    weights["knob_defaults"] = _tensor(module.knob_defaults)
    arch += f", {knobs} knob{'s' * (knobs > 1)} conditioning every layer"
    return RTModel(members=[net, f"wavenet::HeldKnobs<{knobs}> held; // what process (in, out, n) plays"],
                   loaders=["net.load (json);", "held.load (json);"], body=[], weights=weights, residual=residual,
                   architecture=arch, resets=["net.reset();"], block=["net.process (in, out, n, knobs);"],
                   knobs=knobs, knob_update=["held.set (k);"], held_knobs="held.values()")


# ---------------------------------------------------------------- facets
#
# What a model's or a stage's "juce" facet returns: plain data (lists of C++ lines, tensors,
# strings), so its package needs nothing of this one's. All of it lands in the generated
# Source/FxforgeModel.h, in ``namespace fxforge``:
#
#   code          C++ declarations placed once before ``class Model``: your DSP class (the
#                 cabinet's is fxforge::Fir<N> in the template's FxforgeGlue.h). By convention
#                 it has ``load(...)`` (taking what the loaders read), ``reset()`` and
#                 ``process(float)`` and/or ``process(const float* in, float* out, int n)``
#                 (in may equal out), allocates nothing after load, and is named after your
#                 package so two packages cannot clash. RTNeural, Eigen, nlohmann::json and
#                 <array>, <vector>, <cstring>, <algorithm> are already included.
#   members       members of ``fxforge::Model`` (an instance of your class)
#   loaders       statements of ``Model::load (const nlohmann::json& json)``, reading ``weights``
#                 by name: ``json.at ("tone.gain").get<std::vector<float>>()``
#   resets        statements of ``Model::reset()`` (state back to initial_state)
#   body          per sample: a model's statements from ``float x`` to a declared ``float y``;
#                 a stage's statements that update ``y`` (after a one-sample-at-a-time model)
#   block         per block: a model's statements from ``const float* in`` to ``float* out``
#                 over ``n`` samples (n <= wavenet::kMaxBlock; in may equal out); a stage's
#                 statements that update ``out[0..n)`` (after a block-wise model). A model
#                 gives ``body`` or ``block``; a stage gives both to follow any model.
#   weights       name -> tensor, embedded in Resources/model_weights.json (float32, in the
#                 tensor's row-major order); prefix the names with your model's or stage's name
#   architecture  one line for the metadata and the plugin's about box; a stage's follows " -> "
#   residual      (a model's only, optional) whether y includes + x, for the metadata
#
# A facet that cannot map the module it is given raises ValueError with a one-line reason:
# the exporter refuses the run with it.
#
# Everything a facet writes reaches a C++ compiler: build it from integers, floats written
# with repr and fixed strings, never from user text (a run's name, a file path).

#: Keys of a stage's fragment.
FRAGMENT_KEYS = ("code", "members", "loaders", "body", "block", "weights", "architecture", "resets")
#: Keys of a model's facet.
FACET_KEYS = FRAGMENT_KEYS + ("residual",)


def _lines(value, key: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise Unsupported(f"its juce facet's {key} must be a list of C++ lines")
    return list(value)


def _weights(rt_weights: dict, new: dict) -> dict[str, torch.Tensor]:
    clash = sorted(set(rt_weights) & set(new))
    if clash:
        raise Unsupported(f"its juce facet's weights reuse the names {', '.join(clash)}")
    return {**rt_weights, **{str(k): _tensor(torch.as_tensor(v)) for k, v in new.items()}}


def from_facet(facet: dict) -> RTModel:
    """A model's ``ModelSpec.exports["juce"]`` result as an :class:`RTModel` (keys above)."""
    if not isinstance(facet, dict):
        raise Unsupported("its juce facet must return a dict (see fxforge_juce.models)")
    unknown = set(facet) - set(FACET_KEYS)
    if unknown:
        raise Unsupported(f"its juce facet has unknown keys: {', '.join(sorted(unknown))}")
    body, block = _lines(facet.get("body", []), "body"), _lines(facet.get("block", []), "block")
    if bool(body) == bool(block):
        raise Unsupported("its juce facet must give exactly one of body (per sample) and block")
    return RTModel(
        members=_lines(facet.get("members", []), "members"),
        loaders=_lines(facet.get("loaders", []), "loaders"),
        body=body,
        weights=_weights({}, dict(facet.get("weights", {}))),
        residual=bool(facet.get("residual", False)),
        architecture=str(facet.get("architecture", "") or "model"),
        resets=_lines(facet.get("resets", []), "resets"),
        block=block,
        code=_lines(facet.get("code", []), "code"),
    )


def append(rt: RTModel, fragment: dict) -> RTModel:
    """``rt`` followed by a stage's fragment (per sample in ``body``, or per block for a
    block-wise model)."""
    unknown = set(fragment) - set(FRAGMENT_KEYS)
    if unknown:
        raise Unsupported(f"its juce fragment has unknown keys: {', '.join(sorted(unknown))}")
    code = [c for c in _lines(fragment.get("code", []), "code") if c not in rt.code]
    return RTModel(
        members=rt.members + list(fragment.get("members", [])),
        loaders=rt.loaders + list(fragment.get("loaders", [])),
        body=rt.body + list(fragment.get("body", [])) if rt.body else [],
        block=rt.block + list(fragment.get("block", [])) if rt.block else [],
        weights=_weights(rt.weights, dict(fragment.get("weights", {}))),
        residual=rt.residual,
        architecture=f"{rt.architecture} -> {fragment['architecture']}" if fragment.get("architecture")
        else rt.architecture,
        resets=rt.resets + list(fragment.get("resets", [])),
        code=rt.code + code,
        knobs=rt.knobs,
        knob_update=rt.knob_update,
        held_knobs=rt.held_knobs,
    )


def _stage_fragment(stage: nn.Module) -> dict:
    from fxforge import FxforgeError
    from fxforge.registry import get_registry

    name = getattr(stage, "stage_name", "") or type(stage).__name__
    try:
        facet = dict(get_registry().get("stage", name).exports).get("juce")
    except FxforgeError:  # a stage module whose package is not installed
        facet = None
    if facet is None:
        raise Unsupported(f"the stage '{name}' has no JUCE export (its package registers no 'juce' facet)")
    try:
        return facet(stage)
    except ValueError as e:
        raise Unsupported(str(e)) from None


def _model_facet(name: str):
    """The registered model's "juce" facet, or None (no such model installed, or no facet)."""
    from fxforge import FxforgeError
    from fxforge.registry import get_registry

    try:
        return dict(get_registry().get("model", name).exports).get("juce")
    except FxforgeError:
        return None


def map_model(name: str, module: nn.Module) -> RTModel:
    from fxforge import unwrap

    inner, stages = unwrap(module)
    facet = _model_facet(name)
    if facet is not None:
        try:  # a facet refuses a module it cannot map with a one-line ValueError
            rt = from_facet(facet(inner))
        except ValueError as e:
            raise Unsupported(str(e)) from None
    elif name in MAPPERS:
        rt = MAPPERS[name](inner)
    else:
        raise Unsupported(f"no RTNeural mapping for it (the juce exporter supports: {', '.join(supported_models())}, "
                          "and any model whose package registers a 'juce' export facet)")
    for stage in stages:
        rt = append(rt, _stage_fragment(stage))
    return rt
