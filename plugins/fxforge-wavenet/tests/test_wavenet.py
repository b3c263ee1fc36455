import pytest
import torch

from fxforge.stream import process
from fxforge_wavenet.plugin import PRESETS, WaveNetConfig, build


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
