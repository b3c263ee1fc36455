"""Compute backends. `auto` takes the available one with the highest priority."""
import torch

from fxforge import DeviceSpec, hookimpl


def _cuda_name() -> str:
    flavour = "ROCm" if getattr(torch.version, "hip", None) else "CUDA"
    return f"{flavour} {torch.cuda.get_device_name(0)} (x{torch.cuda.device_count()})"


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def _xpu_available() -> bool:
    xpu = getattr(torch, "xpu", None)
    return bool(xpu and xpu.is_available())


def _indexed(kind: str):
    return lambda index: torch.device(kind if index is None else f"{kind}:{index}")


@hookimpl
def fxforge_register_devices(register):
    register(DeviceSpec("cpu", "The CPU (always available)", lambda: True, lambda index: torch.device("cpu"),
                        priority=0, describe=lambda: f"{torch.get_num_threads()} threads"))
    register(DeviceSpec("cuda", "NVIDIA CUDA or AMD ROCm GPU", torch.cuda.is_available, _indexed("cuda"),
                        priority=100, describe=_cuda_name))
    register(DeviceSpec("mps", "Apple Metal GPU", _mps_available, lambda index: torch.device("mps"), priority=80))
    register(DeviceSpec("xpu", "Intel XPU GPU", _xpu_available, _indexed("xpu"), priority=90))
