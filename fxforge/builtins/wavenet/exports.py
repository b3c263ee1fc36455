"""The WaveNet's export facet for ``fxforge export nam`` (``ModelSpec.exports["nam"]``):
a ``layout = "nam"`` WaveNet as the plain description ``fxforge_nam.mapping`` documents
(each layer array's tensors, its dilations and gating, ``head_scale``), so the exporter
reads none of this package's attributes; a ``layout = "fxforge"`` WaveNet is refused in
one line (ValueError), naming the preset that exports exactly.
"""
from __future__ import annotations

NAM_PRESET_HINT = 'the wavenet with preset = "nam-wavenet" (--set model.preset=nam-wavenet), NAM\'s standard WaveNet'


def _bias(conv):
    return None if conv.bias is None else conv.bias.detach()


def refuse_layout(module) -> None:
    """fxforge's own WaveNet layout: not NAM's, refused in one line."""
    what = "a biased input rechannel, no input mixer, layer buffers that start at zero"
    if getattr(module, "input_residual", False):
        what += ", y = x + net(x)"
    raise ValueError(f"fxforge's wavenet layout is not NAM's ({what}); train {NAM_PRESET_HINT}, which exports exactly")


def nam(module) -> dict:
    """A NAM-layout WaveNet (``plugin.NamWaveNet``) as NAM's description."""
    return {
        "architecture": "WaveNet",
        "layer_arrays": [{
            "rechannel": arr.rechannel.weight.detach(),
            "layers": [{
                "conv": layer.conv.weight.detach(),
                "conv_bias": layer.conv.bias.detach(),
                "dilation": int(layer.conv.dilation[0]),
                "input_mixer": layer.input_mixer.weight.detach(),
                "layer1x1": layer.layer1x1.weight.detach(),
                "layer1x1_bias": layer.layer1x1.bias.detach(),
                "gated": bool(layer.gated),
            } for layer in arr.layers],
            "head_rechannel": arr.head_rechannel.weight.detach(),
            "head_rechannel_bias": _bias(arr.head_rechannel),
        } for arr in module.layer_arrays],
        "head_scale": float(module.head_scale),
    }
