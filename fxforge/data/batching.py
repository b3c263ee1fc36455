"""Cutting a training split into equal, shuffled segments: shared by providers."""
from __future__ import annotations

import torch


def cut_segments(x: torch.Tensor, y: torch.Tensor, segment: int, batch_size: int, generator: torch.Generator):
    """Yield (batch, segment, 1) pairs of equal segments of the 1-D signals,
    starting at a random offset (so boundaries move from epoch to epoch),
    in shuffled order. Everything random comes from ``generator``."""
    seg = min(segment, x.numel())
    spare = x.numel() - seg
    offset = int(torch.randint(0, spare % seg + 1, (1,), generator=generator)) if spare else 0
    count = (x.numel() - offset) // seg
    xs = x[offset : offset + count * seg].reshape(count, seg, 1)
    ys = y[offset : offset + count * seg].reshape(count, seg, 1)
    order = torch.randperm(count, generator=generator)
    for i in range(0, count, batch_size):
        idx = order[i : i + batch_size]
        yield xs[idx], ys[idx]
