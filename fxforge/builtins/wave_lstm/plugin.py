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

from . import exports


CONDITIONING = ("concat", "film")
FILM_FEATURES = 8  # knob features the FiLM generator gives the recurrent layer and the head


class WaveLSTMConfig(ModelConfig, KnobsConfig):
    hidden_size: int = Field(32, gt=0, le=1024, description="LSTM units per layer")
    num_layers: int = Field(1, gt=0, le=8, description="stacked LSTM layers")
    residual: bool = Field(True, description="predict only the change: y = x + head(h)")
    # concat is the default: on bench/bench_knobs.py's unseen setting it scored better than film
    # within the same wall clock, and makes more updates per second (bench/results/knobs*.json).
    conditioning: Literal["concat", "film"] = Field(
        "concat", description="how the knobs (data.captures) enter: concat, appended to the input (AIDA-X's layout, "
                              "exports to aidax), or film, a small network of the knobs scaling and shifting the "
                              "input projection and the hidden state (a per-unit gain)")


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
    """

    def _init_knobs(self, knobs: int, defaults, conditioning: str, hidden: int) -> int:
        self.knobs, self.conditioning = int(knobs), conditioning
        self.film = self.film_head = None
        if not self.knobs:  # an unconditioned model keeps the state_dict older runs saved
            return 1
        default = torch.tensor(list(defaults) if defaults else [0.5] * self.knobs, dtype=torch.float32)
        self.register_buffer("knob_defaults", default)
        if conditioning == "concat":
            return 1 + self.knobs
        self.film = nn.Sequential(nn.Linear(self.knobs, 16), nn.Tanh(), nn.Linear(16, FILM_FEATURES), nn.Tanh())
        self.film_head = nn.Linear(FILM_FEATURES, 2 * hidden)
        nn.init.zeros_(self.film_head.weight)
        nn.init.zeros_(self.film_head.bias)
        return 1 + 2 * FILM_FEATURES

    def _split(self, x):
        """(audio (B, T, 1), knobs (B, T, K) or None) from the input."""
        audio = x[..., :1]
        if not self.knobs:
            return audio, None
        if x.shape[-1] == 1:
            return audio, self.knob_defaults.to(x.dtype).expand(x.shape[0], x.shape[1], self.knobs)
        if x.shape[-1] != 1 + self.knobs:
            raise ValueError(f"expected 1 + {self.knobs} input channels (audio, knobs), got {x.shape[-1]}")
        return audio, x[..., 1:]

    def _inputs(self, audio, knobs):
        if knobs is None:
            return audio, None
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

