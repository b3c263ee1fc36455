import pytest
import torch

from fxforge.nn.stream import process
from fxforge.builtins.wavenet.plugin import PRESETS, WaveNetConfig, build


@pytest.mark.parametrize("preset", ["nano", "lite"])
@pytest.mark.parametrize("block", [1, 7, 64, 1000])
def test_block_streaming_equals_whole_file(preset, block):
    torch.manual_seed(0)
    model = build(WaveNetConfig(name="wavenet", preset=preset), 48000).eval()
    x = torch.randn(4000) * 0.3
    with torch.no_grad():
        whole, _ = model(x.reshape(1, -1, 1), model.initial_state(1))
    assert torch.max(torch.abs(process(model, x, block) - whole.reshape(-1))) < 1e-5


def test_is_causal_with_the_stated_receptive_field():
    torch.manual_seed(0)
    model = build(WaveNetConfig(name="wavenet", preset="nano", input_residual=False), 48000).eval()
    x = torch.zeros(1, 6000, 1)
    x[0, 3000] = 1.0
    with torch.no_grad():
        base, _ = model(torch.zeros_like(x), model.initial_state(1))
        y, _ = model(x, model.initial_state(1))
    changed = torch.nonzero((y - base).abs().reshape(-1) > 0).reshape(-1)
    assert changed.min() == 3000  # nothing before the impulse
    # and nothing past the receptive field, which it does reach
    assert 3000 + model.receptive_field // 2 < changed.max() <= 3000 + model.receptive_field - 1


def test_presets_have_the_documented_sizes():
    sizes = {p: sum(t.numel() for t in build(WaveNetConfig(name="wavenet", preset=p), 48000).parameters()) for p in PRESETS}
    assert sizes == {"nano": 1253, "lite": 4745, "standard": 18449, "large": 36849}


def test_explicit_keys_override_the_preset():
    cfg = WaveNetConfig(name="wavenet", preset="standard", channels=6, gated=False)
    assert (cfg.channels, cfg.stacks, cfg.gated) == (6, 1, False)


@pytest.mark.parametrize("bad", [{"preset": "huge"}, {"max_dilation": 300}, {"channels": 0}])
def test_bad_sizes_are_refused(bad):
    with pytest.raises(ValueError):
        WaveNetConfig(name="wavenet", **bad)


@pytest.mark.parametrize("block", [1, 7, 1000])
def test_nam_layout_streams_exactly(block):
    torch.manual_seed(0)
    model = build(WaveNetConfig(name="wavenet", preset="nam-wavenet", arrays=[4, 2], max_dilation=64, gated=True), 48000).eval()
    x = torch.randn(3000) * 0.3
    with torch.no_grad():
        whole, _ = model(x.reshape(1, -1, 1), model.initial_state(1))
    assert torch.max(torch.abs(process(model, x, block) - whole.reshape(-1))) < 1e-5


def test_nam_layout_starts_at_its_response_to_silence():
    torch.manual_seed(0)
    model = build(WaveNetConfig(name="wavenet", preset="nam-wavenet", arrays=[4, 2], max_dilation=16), 48000).eval()
    with torch.no_grad():
        y, _ = model(torch.zeros(1, 200, 1), model.initial_state(1))
    assert torch.max(torch.abs(y - y[0, -1])) < 1e-7  # silence in: constant out from the first sample


def test_nam_wavenet_preset_is_nams_standard_wavenet():
    cfg = WaveNetConfig(name="wavenet", preset="nam-wavenet")
    assert (cfg.layout, cfg.arrays, cfg.stacks, cfg.max_dilation, cfg.kernel_size, cfg.gated, cfg.input_residual,
            cfg.head_scale) == ("nam", [16, 8], 1, 512, 3, False, False, 0.02)
    model = build(cfg, 48000)
    assert sum(t.numel() for t in model.parameters()) + 1 == 13802  # NAM's standard: 13,802 weights with head_scale
    assert model.receptive_field == 4093


@pytest.mark.parametrize("bad", [{"preset": "nam-wavenet", "input_residual": True}, {"preset": "nam-wavenet", "channels": 8},
                                 {"preset": "lite", "arrays": [8]}, {"preset": "nam-wavenet", "arrays": [0]},
                                 {"preset": "nam-wavenet", "layout": "fxforge"}])
def test_nam_layout_bad_keys_are_refused(bad):
    with pytest.raises(ValueError):
        WaveNetConfig(name="wavenet", **bad)
