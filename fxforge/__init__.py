"""fxforge: learn audio effects from paired recordings; ship them as plugins.

The public API for plugin authors is what this module exports, with ``fxforge.exports``
(helpers every exporter shares), ``fxforge.testing`` (the conformance kit) and
``fxforge.registry.get_registry``. Names that need torch (``StreamingModel``, ``Run``,
``stream_process``, ...; ``_LAZY`` below) load on first use, so ``import fxforge`` and
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

# name -> (module, attribute): the public names that need torch, imported on first use.
_LAZY = {
    "Knob": (".knobs", "Knob"),
    "cut_segments": (".data.batching", "cut_segments"),
    "read_audio": (".data.audio", "read_audio"),
    "synth_di": (".data.demo", "synth_di"),
    "pluck": (".data.demo", "pluck"),
    "pre_emphasis": (".nn.losses", "pre_emphasis"),
    "StreamingModel": (".nn.model", "StreamingModel"),
    "Stage": (".nn.model", "Stage"),
    "unwrap": (".nn.model", "unwrap"),
    "stream_process": (".nn.stream", "process"),
    "predict_clips": (".nn.stream", "predict_clips"),
    "run_blocks": (".nn.stream", "run_blocks"),
    "map_state": (".nn.stream", "map_state"),
    "Run": (".runs", "Run"),
    "load_run": (".runs", "load_run"),
}

if TYPE_CHECKING:
    from .data.batching import cut_segments
    from .knobs import Knob
    from .nn.model import Stage, StreamingModel
    from .runs import Run, load_run


def __getattr__(name: str):
    if name in _LAZY:
        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module, __name__), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fxforge' has no attribute {name!r}")


__all__ = [
    "CommandSpec", "ComponentConfig", "DataConfig", "DeviceSpec", "ExporterSpec", "FxforgeError", "Knob", "KnobsConfig", "ModelConfig", "ModelSpec",
    "ProviderSpec", "Run", "RunConfig", "SchedulerSpec", "Stage", "StageSpec", "StreamingModel", "cut_segments", "hookimpl", "load_config", "load_run",
    "map_state", "pluck", "pre_emphasis", "predict_clips", "read_audio", "run_blocks", "stream_process", "synth_di", "unwrap",
]
