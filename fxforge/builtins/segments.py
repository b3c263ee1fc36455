"""The `segments` data provider: equal cuts of the training split for truncated BPTT, the
default provider of the recurrent models and WaveNet."""
from __future__ import annotations

import torch
from pydantic import Field

from fxforge import DataConfig, ProviderSpec, cut_segments, hookimpl


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
def fxforge_register_providers(register):
    register(ProviderSpec("segments", "Equal segments of the training split for truncated BPTT",
                          SegmentsConfig, lambda cfg, model_cfg: Segments(cfg)))
