"""Recurrent waveform models: an LSTM (or GRU) over raw samples predicting
only the change, y = x + Linear(h_t), with its state carried from block to
block, optionally conditioned on knobs (concatenated to the input, or FiLM), trained on
the `segments` provider's cuts (truncated BPTT). Either can end in a stage such as the
cabinet FIR (``[model.cabinet] taps = 256``, the fxforge-cabinet package)."""
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from fxforge import KnobsConfig, ModelConfig, ModelSpec, StreamingModel, hookimpl

from ..knob_input import split_knobs
from . import exports


CONDITIONING = ("concat", "film", "gain")
FILM_FEATURES = 8  # knob features the FiLM generator gives the recurrent layer and the head


class KnobGain(nn.Module):
    """An input gain set by the knobs through a learned pot law (the ``gain`` conditioning).

    Per knob j: g_j(k) = a_j + (b_j - a_j) t_j(k), a_j = exp(log_min), b_j = exp(log_max) the
    gains at the knob's minimum and maximum, and t_j(k) = c k / (c + 1 - k) (c = softplus(taper)
    > 0) a monotone taper with t(0) = 0, t(1) = 1: linear as c grows, and for small c most of
    the change near the maximum, as a drive pot in series with a resistor in a gain stage's
    feedback path gives (gain ~ 1 / (R0 + R (1 - k)): c = R0 / R). The gain is the product over
    the knobs; a knob that sets no gain keeps a_j = b_j (t_j then does nothing). It starts at 1
    (a = b = 1) and c = 1 (t(0.5) = 1/3).
    """

    def __init__(self, knobs: int):
        super().__init__()
        self.log_min = nn.Parameter(torch.zeros(knobs))
        self.log_max = nn.Parameter(torch.zeros(knobs))
        self.taper = nn.Parameter(torch.full((knobs,), 0.5413))  # softplus(0.5413) = 1

    def shape(self, k):
        """t(k) per knob: the taper (knob values clamped to 0..1)."""
        c = nn.functional.softplus(self.taper)
        k = k.clamp(0.0, 1.0)
        return c * k / (c + 1.0 - k)

    def forward(self, k):
        """(..., K) knob values -> (..., 1) gain."""
        a, b = self.log_min.exp(), self.log_max.exp()
        return (a + (b - a) * self.shape(k)).prod(dim=-1, keepdim=True)


class WaveLSTMConfig(ModelConfig, KnobsConfig):
    hidden_size: int = Field(32, gt=0, le=1024, description="LSTM units per layer")
    num_layers: int = Field(1, gt=0, le=8, description="stacked LSTM layers")
    residual: bool = Field(True, description="predict only the change: y = x + head(h)")
    # concat is the default: at an unseen setting of a real plugin's knob grid it scored with gain
    # and FiLM (bench/bench_knobs.py; the figures are in docs/recipe_measurements.md), and it is the
    # layout AIDA-X runs (export aidax refuses gain and film).
    conditioning: Literal["concat", "film", "gain"] = Field(
        "concat", description="how the knobs (data.captures) enter: concat, appended to the input (AIDA-X's layout, "
                              "exports to aidax and juce); film, a small network of the knobs scaling and shifting "
                              "the input projection and the hidden state (a per-unit gain; juce); or gain, concat "
                              "with the input audio first scaled by a gain the knobs set through a learned pot-law "
                              "taper, g = a + (b - a) c k / (c + 1 - k) (a drive knob; it starts flat, as concat; "
                              "juce, not aidax)")


class _Conditioned(StreamingModel):
    """The recurrent models' shared knob handling.

    Input (batch, time, 1 + K): channel 0 the audio, the rest the knobs (0..1). With the audio
    channel alone the model plays ``knob_defaults`` (a buffer, so a run's weights carry it).

    * concat: the recurrent layer reads [x, k] (AIDA-X / RTNeural's layout).
    * film: phi = MLP(k) (FILM_FEATURES values). The recurrent layer reads [x, x * phi, phi], so
      its input projection is W x + (U phi) x + V phi: a per-unit gain gamma(k) = W + U phi(k) and
      shift beta(k) = V phi(k) of the input projection, with the generator's last linear layer
      living in the recurrent layer's input weights (cheap: 1 + 2 * FILM_FEATURES inputs, not a
      4H x 4H product). The hidden state is FiLMed before the head: h * (1 + G phi) + B phi, G and
      B starting at zero so a fresh model starts as the unconditioned one.
    * gain: the recurrent layer reads [g(k) x, k], g = KnobGain (a learned pot-law input gain):
      a drive knob scales the signal into the clipping the network models, which concat's
      additive knob inputs only approximate.
    """

    def _init_knobs(self, knobs: int, defaults, conditioning: str, hidden: int) -> int:
        self.knobs, self.conditioning = int(knobs), conditioning
        self.film = self.film_head = self.knob_gain = None
        if not self.knobs:  # an unconditioned model keeps the state_dict older runs saved
            return 1
        default = torch.tensor(list(defaults) if defaults else [0.5] * self.knobs, dtype=torch.float32)
        self.register_buffer("knob_defaults", default)
        if conditioning == "gain":
            self.knob_gain = KnobGain(self.knobs)
        if conditioning in ("concat", "gain"):
            return 1 + self.knobs
        self.film = nn.Sequential(nn.Linear(self.knobs, 16), nn.Tanh(), nn.Linear(16, FILM_FEATURES), nn.Tanh())
        self.film_head = nn.Linear(FILM_FEATURES, 2 * hidden)
        nn.init.zeros_(self.film_head.weight)
        nn.init.zeros_(self.film_head.bias)
        return 1 + 2 * FILM_FEATURES

    def _split(self, x):
        return split_knobs(x, self.knobs, getattr(self, "knob_defaults", None))

    def _inputs(self, audio, knobs):
        if knobs is None:
            return audio, None
        if self.knob_gain is not None:
            return torch.cat([audio * self.knob_gain(knobs), knobs], dim=-1), None
        if self.film is None:
            return torch.cat([audio, knobs], dim=-1), None
        phi = self.film(knobs)
        return torch.cat([audio, audio * phi, phi], dim=-1), phi

    def _out(self, h, phi, audio):
        if phi is not None:
            gamma, beta = self.film_head(phi).chunk(2, dim=-1)
            h = h * (1 + gamma) + beta
        y = self.head(h)
        return y + audio if self.residual else y


class WaveLSTM(_Conditioned):
    """(batch, time, 1 [+ knobs]) -> (batch, time, 1); state is the LSTM's (h, c)."""

    def __init__(self, hidden_size: int = 32, num_layers: int = 1, residual: bool = True, knobs: int = 0,
                 knob_defaults=(), conditioning: str = "concat"):
        super().__init__()
        inputs = self._init_knobs(knobs, knob_defaults, conditioning, hidden_size)
        self.lstm = nn.LSTM(inputs, hidden_size, num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)
        self.residual = residual

    def initial_state(self, batch: int, device=None):
        shape = (self.lstm.num_layers, batch, self.lstm.hidden_size)
        return torch.zeros(shape, device=device), torch.zeros(shape, device=device)

    def forward(self, x, state):
        audio, knobs = self._split(x)
        inp, phi = self._inputs(audio, knobs)
        h, state = self.lstm(inp, state)
        return self._out(h, phi, audio), state


class GRUConfig(WaveLSTMConfig):
    hidden_size: int = Field(32, gt=0, le=1024, description="GRU units per layer")
    num_layers: int = Field(1, gt=0, le=8, description="stacked GRU layers")


class WaveGRU(_Conditioned):
    """As WaveLSTM with GRU cells (cheaper per sample in RTNeural); state is h."""

    def __init__(self, hidden_size: int = 32, num_layers: int = 1, residual: bool = True, knobs: int = 0,
                 knob_defaults=(), conditioning: str = "concat"):
        super().__init__()
        inputs = self._init_knobs(knobs, knob_defaults, conditioning, hidden_size)
        self.rnn = nn.GRU(inputs, hidden_size, num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)
        self.residual = residual

    def initial_state(self, batch: int, device=None):
        return torch.zeros(self.rnn.num_layers, batch, self.rnn.hidden_size, device=device)

    def forward(self, x, state):
        audio, knobs = self._split(x)
        inp, phi = self._inputs(audio, knobs)
        h, state = self.rnn(inp, state)
        return self._out(h, phi, audio), state


def _build(cls):
    return lambda cfg, sr: cls(cfg.hidden_size, cfg.num_layers, cfg.residual, cfg.knobs, cfg.knob_defaults,
                               cfg.conditioning)


@hookimpl
def fxforge_register_models(register):
    register(ModelSpec(
        "wave-lstm", "LSTM over raw samples, y = x + Linear(h_t), state carried between blocks",
        WaveLSTMConfig, _build(WaveLSTM),
        provider="segments", exports={"nam": exports.nam_lstm, "aidax": exports.aidax_lstm}))
    register(ModelSpec(
        "gru", "GRU over raw samples, y = x + Linear(h_t), state carried between blocks",
        GRUConfig, _build(WaveGRU),
        provider="segments", exports={"nam": exports.nam_gru, "aidax": exports.aidax_gru}))

