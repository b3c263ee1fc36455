"""fxforge: learn audio effects from paired recordings; ship them as plugins.

The public API for plugin authors is what this module exports.
"""
__version__ = "0.1.0"

from .batching import cut_segments  # noqa: E402
from .config import DataConfig, RunConfig, load_config  # noqa: E402
from .errors import FxforgeError  # noqa: E402
from .hookspecs import hookimpl  # noqa: E402
from .runs import Run, load_run  # noqa: E402
from .specs import (  # noqa: E402
    ComponentConfig,
    DeviceSpec,
    ExporterSpec,
    ModelConfig,
    ModelSpec,
    ProviderSpec,
    SchedulerSpec,
)

__all__ = [
    "ComponentConfig", "DataConfig", "DeviceSpec", "ExporterSpec", "FxforgeError", "ModelConfig", "ModelSpec",
    "ProviderSpec", "Run", "RunConfig", "SchedulerSpec", "cut_segments", "hookimpl", "load_config", "load_run",
]
