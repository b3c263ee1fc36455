"""The cabinet's fragment for the JUCE exporter (``StageSpec.exports["juce"]``).

The exporter maps the model inside the stage, then appends what this returns: plain
data, so this package needs nothing from the exporter's. The C++ side is
``fxforge::Fir<N>`` in the JUCE template's FxforgeGlue.h, which runs the same DC blocker
and FIR sample by sample. Everything that reaches C++ is built from integers and fixed
strings.
"""
from __future__ import annotations


def juce_fragment(stage) -> dict:
    """C++ members, loaders, per-sample and per-block statements, resets and weights for
    ``y = fir(dc_block(y))`` after the inner model; see fxforge_juce.models.Fragment."""
    import torch

    taps = int(stage.ir.numel())
    return {
        "members": [f"Fir<{taps}> cabinet;"],
        "loaders": ['cabinet.load (json.at ("cabinet.ir").get<std::vector<float>>(), '
                    'json.at ("cabinet.dc_pole").get<std::vector<float>>().at (0));'],
        "body": ["y = cabinet.process (y);"],
        "block": ["for (int i = 0; i < n; ++i)", "    out[i] = cabinet.process (out[i]);"],
        "weights": {"cabinet.ir": stage.ir.detach().to("cpu", torch.float32).contiguous(),
                    "cabinet.dc_pole": torch.tensor([float(stage.dc_pole)])},
        "architecture": f"cabinet FIR {taps} taps",
        "resets": ["cabinet.reset();"],
    }
