"""fxforge-cabinet: the learned cabinet FIR stage (``[model.cabinet]``).

``config`` (the keys, pure pydantic), ``fir`` (the module), ``solver`` (least squares),
``gauge`` (the gauge penalty), ``juce`` (its JUCE export fragment), ``plugin`` (the
registration). Names that need torch load on first use, so registering costs nothing.
"""
from __future__ import annotations

import importlib

from .config import MAX_TAPS, MIN_TAPS, CabinetConfig

_LAZY = {"CabinetFIR": ".fir", "dc_block": ".fir", "dc_pole": ".fir", "read_ir": ".fir",
         "fit_fir": ".solver", "gauge_penalty": ".gauge"}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fxforge_cabinet' has no attribute {name!r}")


__all__ = ["CabinetConfig", "CabinetFIR", "MAX_TAPS", "MIN_TAPS", "dc_block", "dc_pole", "fit_fir",
           "gauge_penalty", "read_ir"]
