"""Resolve ``train.device`` through the registered device backends."""
from __future__ import annotations

import torch

from ..errors import FxforgeError
from ..registry import get_registry


def resolve_device(name: str, where: str = "train.device") -> torch.device:
    """'auto' picks the available backend with the highest priority;
    'cuda' or 'cuda:1' names one, which must be available here."""
    reg = get_registry()
    specs = [reg.components["device"][n].spec for n in reg.names("device")]
    if name == "auto":
        usable = [s for s in specs if s.is_available()]
        if not usable:
            return torch.device("cpu")  # torch always has a CPU, even with no device plugin installed
        return max(usable, key=lambda s: s.priority).torch_device(None)
    base, _, index = name.partition(":")
    spec = reg.get("device", base, where=where)
    if index and not index.isdigit():
        raise FxforgeError(f"{where}: device index must be a number (got {name!r})")
    if not spec.is_available():
        available = ", ".join(s.name for s in specs if s.is_available()) or "none"
        raise FxforgeError(f"{where}: device '{base}' is not available on this machine (available: {available})")
    return spec.torch_device(int(index) if index else None)
