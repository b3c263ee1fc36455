"""The cabinet stage's registration: ``[model.cabinet]`` after any waveform model.

Nothing here loads torch: the module is built on first use."""
from __future__ import annotations

from fxforge import StageSpec, hookimpl

from .config import CabinetConfig, for_trained_weights


def build(inner, cfg: CabinetConfig, sample_rate: int):
    from .fir import CabinetFIR

    return CabinetFIR(inner, cfg, sample_rate)


def _juce(stage) -> dict:
    from .juce import juce_fragment

    return juce_fragment(stage)


@hookimpl
def fxforge_register_stages(register):
    register(StageSpec(
        name="cabinet",
        summary="a learned causal FIR (up to 2048 taps) after the model, re-solved by least squares as it trains",
        Config=CabinetConfig,
        build=build,
        reload=for_trained_weights,
        exports={"juce": _juce},
    ))
