"""The gauge penalty: pins the two directions the model and the FIR share that the loss
cannot see.

The DC blocker in front of the FIR hides the model's DC, and a gain a on the model is
undone by 1/a on the (re-solved) FIR. Left free, the model drifts along them until its
units saturate and the fit degrades (docs/recipe_measurements.md). A penalty that depends
only on those directions fixes them at no cost to the fit.
"""
from __future__ import annotations

import torch

GAUGE_DC = 1.0     # weight of (mean of the model's output)^2 / the input's running power
GAUGE_GAIN = 0.01  # weight of log(power of the model's output / power of the input)^2
GAUGE_FLOOR = 0.1  # of the running power, added to both powers: a near-silent chunk (a DI's
                   # digital silence under the amp's hiss) must not make the ratio explode


def gauge_penalty(h: torch.Tensor, input_power: float, running_power: float) -> torch.Tensor:
    """Pins the model's output ``h`` to DC 0 and a level near the input's, over the batch and
    chunk; ``input_power``: the chunk input's mean square, ``running_power``: its running mean."""
    scale = running_power + 1e-12
    floor = GAUGE_FLOOR * scale
    penalty = h.new_zeros(())
    if GAUGE_DC:
        penalty = penalty + GAUGE_DC * h.mean() ** 2 / scale
    if GAUGE_GAIN:
        ratio = ((h**2).mean() + floor) / (input_power + floor)
        penalty = penalty + GAUGE_GAIN * torch.log(ratio) ** 2
    return penalty
