import pytest
import torch

from fxforge.stream import predict_clips, process
from fxforge_wave_lstm.plugin import Segments, SegmentsConfig, WaveLSTM


@pytest.mark.parametrize("layers,residual", [(1, True), (2, False)])
@pytest.mark.parametrize("block", [1, 7, 64, 1000])
def test_block_streaming_equals_whole_file(layers, residual, block):
    torch.manual_seed(0)
    model = WaveLSTM(16, layers, residual).eval()
    x = torch.randn(3000) * 0.3
    with torch.no_grad():
        whole, _ = model(x.reshape(1, -1, 1), model.initial_state(1))
    assert torch.max(torch.abs(process(model, x, block) - whole.reshape(-1))) < 1e-5


def test_residual_predicts_only_the_change():
    model = WaveLSTM(8)
    torch.nn.init.zeros_(model.head.weight)
    torch.nn.init.zeros_(model.head.bias)
    x = torch.randn(1, 100, 1)
    y, _ = model(x, model.initial_state(1))
    assert torch.equal(y, x)


def test_clip_inference_matches_sequential_with_context():
    torch.manual_seed(0)
    model = WaveLSTM(16).eval()
    x = torch.randn(20000) * 0.3
    whole = process(model, x)
    clipped = predict_clips(model, x, clip=3000, context=2048)
    # Each clip after the first is preceded by 2048 samples of real audio, after
    # which the state has forgotten where it started. (The first clip's context
    # is silence, which a plugin also hears before playback starts.)
    assert torch.max(torch.abs(clipped[3000:] - whole[3000:])) < 1e-4


def test_segments_cover_the_split_in_equal_shuffled_pieces():
    cfg = SegmentsConfig(demo="amp", segment=100)
    x = torch.arange(1050, dtype=torch.float32)
    gen = torch.Generator().manual_seed(0)
    batches = list(Segments(cfg).batches(x, x, 4, gen))
    seen = torch.cat([b[0] for b in batches]).reshape(-1, 100)
    assert seen.shape[0] == 10 and sorted(seen[:, 0].tolist()) == seen[:, 0].sort().values.tolist()
    offset = int(seen[:, 0].min())
    assert 0 <= offset <= 50 and torch.equal(seen[:, 1] - seen[:, 0], torch.ones(10))
