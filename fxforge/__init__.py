"""fxforge: learn audio effects from paired recordings; ship them as plugins.

The public API for plugin authors is what this module exports. Names that need torch
(``cut_segments``, ``Run``, ``load_run``, ``StreamingModel``) load on first use, so ``import fxforge`` and
the registry stay light: ``fxforge list devices`` does not pay for torch and torchaudio.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

from .config import RunConfig, load_config  # noqa: E402
from .errors import FxforgeError  # noqa: E402
from .hookspecs import hookimpl  # noqa: E402
from .schema import DataConfig  # noqa: E402
from .specs import (  # noqa: E402
    CommandSpec,
    ComponentConfig,
    DeviceSpec,
    ExporterSpec,
    KnobsConfig,
    ModelConfig,
    ModelSpec,
    ProviderSpec,
    SchedulerSpec,
    StageSpec,
)

_LAZY = {"Knob": ".knobs", "cut_segments": ".batching", "Run": ".runs", "load_run": ".runs", "StreamingModel": ".model", "Stage": ".model"}

if TYPE_CHECKING:
    from .batching import cut_segments
    from .knobs import Knob
    from .model import Stage, StreamingModel
    from .runs import Run, load_run


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fxforge' has no attribute {name!r}")


__all__ = [
    "CommandSpec", "ComponentConfig", "DataConfig", "DeviceSpec", "ExporterSpec", "FxforgeError", "Knob", "KnobsConfig", "ModelConfig", "ModelSpec",
    "ProviderSpec", "Run", "RunConfig", "SchedulerSpec", "Stage", "StageSpec", "StreamingModel", "cut_segments", "hookimpl", "load_config", "load_run",
]
