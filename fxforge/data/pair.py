"""The aligned pair every model trains on, and its time splits."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

import numpy as np

if TYPE_CHECKING:
    from . import align


@dataclass
class PairedAudio:
    """Aligned mono input/target at one sample rate (float32 numpy arrays)."""

    x: np.ndarray
    y: np.ndarray
    sample_rate: int
    latency: int = 0
    notes: list[str] = field(default_factory=list)
    alignment: dict = field(default_factory=dict)   # how the latency was found, for the summary
    response: Optional["align.Response"] = None     # the estimated linear response, for the plots

    def splits(self, fractions, fraction: float = 1.0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Contiguous time splits, never shuffled across the boundaries.
        ``fraction`` keeps the first part of the training split only."""
        n = len(self.x)
        a = int(n * fractions[0])
        b = int(n * (fractions[0] + fractions[1]))
        train_end = max(1, int(a * fraction))
        return {
            "train": (self.x[:train_end], self.y[:train_end]),
            "validation": (self.x[a:b], self.y[a:b]),
            "test": (self.x[b:], self.y[b:]),
        }
