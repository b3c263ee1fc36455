"""Recurrent waveform models: an LSTM (or GRU) over raw samples predicting
only the change, y = x + Linear(h_t), with its state carried from block to
block; and the `segments` provider that cuts the training audio for
truncated BPTT. Either can end in the core's learned cabinet FIR
(``[model.cabinet] taps = 256``)."""
import torch
from pydantic import Field
from torch import nn

from fxforge import DataConfig, ModelConfig, ModelSpec, ProviderSpec, StreamingModel, cut_segments, hookimpl


class WaveLSTMConfig(ModelConfig):
    hidden_size: int = Field(32, gt=0, le=1024, description="LSTM units per layer")
    num_layers: int = Field(1, gt=0, le=8, description="stacked LSTM layers")
    residual: bool = Field(True, description="predict only the change: y = x + head(h)")


class WaveLSTM(StreamingModel):
    """(batch, time, 1) -> (batch, time, 1); state is the LSTM's (h, c)."""

    def __init__(self, hidden_size: int = 32, num_layers: int = 1, residual: bool = True):
        super().__init__()
        self.lstm = nn.LSTM(1, hidden_size, num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)
        self.residual = residual

    def initial_state(self, batch: int, device=None):
        shape = (self.lstm.num_layers, batch, self.lstm.hidden_size)
        return torch.zeros(shape, device=device), torch.zeros(shape, device=device)

    def forward(self, x, state):
        h, state = self.lstm(x, state)
        y = self.head(h)
        return (y + x if self.residual else y), state


class GRUConfig(WaveLSTMConfig):
    hidden_size: int = Field(32, gt=0, le=1024, description="GRU units per layer")
    num_layers: int = Field(1, gt=0, le=8, description="stacked GRU layers")


class WaveGRU(StreamingModel):
    """As WaveLSTM with GRU cells (cheaper per sample in RTNeural); state is h."""

    def __init__(self, hidden_size: int = 32, num_layers: int = 1, residual: bool = True):
        super().__init__()
        self.rnn = nn.GRU(1, hidden_size, num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)
        self.residual = residual

    def initial_state(self, batch: int, device=None):
        return torch.zeros(self.rnn.num_layers, batch, self.rnn.hidden_size, device=device)

    def forward(self, x, state):
        h, state = self.rnn(x, state)
        y = self.head(h)
        return (y + x if self.residual else y), state


class SegmentsConfig(DataConfig):
    segment: int = Field(9216, gt=0, description="samples per training example (warm-up + TBPTT chunks)")


class Segments:
    """Cuts the training split into equal segments at a random offset each
    epoch (so boundaries move), shuffled, in batches."""

    def __init__(self, cfg: SegmentsConfig):
        self.segment = cfg.segment

    def batches(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, generator: torch.Generator):
        return cut_segments(x, y, self.segment, batch_size, generator)


@hookimpl
def fxforge_register_models(register):
    register(ModelSpec(
        "wave-lstm", "LSTM over raw samples, y = x + Linear(h_t), state carried between blocks",
        WaveLSTMConfig, lambda cfg, sr: WaveLSTM(cfg.hidden_size, cfg.num_layers, cfg.residual),
        provider="segments"))
    register(ModelSpec(
        "gru", "GRU over raw samples, y = x + Linear(h_t), state carried between blocks",
        GRUConfig, lambda cfg, sr: WaveGRU(cfg.hidden_size, cfg.num_layers, cfg.residual),
        provider="segments"))


@hookimpl
def fxforge_register_providers(register):
    register(ProviderSpec("segments", "Equal segments of the training split for truncated BPTT",
                          SegmentsConfig, lambda cfg, model_cfg: Segments(cfg)))
