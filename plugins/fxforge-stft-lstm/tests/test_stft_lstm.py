import pytest
import torch
from pydantic import ValidationError

from fxforge.nn.stream import predict_clips, process, run_blocks
from fxforge_stft_lstm.plugin import Frames, FramesConfig, STFTLSTM, STFTLSTMConfig


@pytest.fixture(autouse=True)
def one_thread():
    """Small tensors: one thread is faster, and the machine is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def trained_like(model: STFTLSTM, seed: int = 0) -> STFTLSTM:
    """Give the zero-initialised head random weights, so the model is not the identity."""
    torch.manual_seed(seed)
    torch.nn.init.normal_(model.head.weight, std=0.05)
    torch.nn.init.normal_(model.head.bias, std=0.05)
    return model.eval()


@pytest.mark.parametrize("predict,shaper", [("magnitude", 0), ("complex", 0), ("magnitude", 2), ("complex", 3)])
@pytest.mark.parametrize("block", [1, 7, 64, 100, 1000, 4096])
def test_block_streaming_equals_whole_file(predict, shaper, block):
    torch.manual_seed(1)
    model = trained_like(STFTLSTM(256, 64, "hann", 16, 2, predict, shaper))
    x = torch.randn(3000) * 0.3
    whole = process(model, x)
    assert whole.shape == x.shape and whole.abs().max() > 0.05
    assert torch.max(torch.abs(process(model, x, block) - whole)) < 1e-5


@pytest.mark.parametrize("n_fft,hop,window", [(200, 48, "sqrt-hann"), (128, 64, "sqrt-hann"), (96, 24, "blackman")])
@pytest.mark.parametrize("block", [1, 13, 333])
def test_odd_frame_sizes_stream_too(n_fft, hop, window, block):
    """hop need not divide n_fft, nor block sizes the hop; the raw stream (no
    latency flush) agrees sample for sample, and the state ends up the same."""
    model = trained_like(STFTLSTM(n_fft, hop, window, 8, 1, "complex"), seed=2)
    x = torch.randn(1, 2000, 1) * 0.3
    whole, s_whole = run_blocks(model, x)
    blocks, s_blocks = run_blocks(model, x, block)
    assert torch.max(torch.abs(blocks - whole)) < 1e-5
    for a, b in zip(s_whole, s_blocks):
        assert a.shape == b.shape and torch.max(torch.abs(a - b)) < 1e-5


@pytest.mark.parametrize("window", ["hann", "sqrt-hann", "hamming", "blackman"])
@pytest.mark.parametrize("predict,shaper", [("magnitude", 0), ("complex", 0), ("complex", 2)])
def test_untrained_model_is_the_identity_latency_late(window, predict, shaper):
    model = STFTLSTM(256, 64, window, 8, 1, predict, shaper).eval()
    assert model.latency == 255
    x = torch.randn(2000) * 0.3
    with torch.no_grad():
        raw, _ = model(x.reshape(1, -1, 1), model.initial_state(1))
    raw = raw.reshape(-1)
    assert torch.max(torch.abs(raw[255:] - x[:-255])) < 1e-5 and torch.all(raw[:255].abs() < 1e-5)
    # process() compensates the latency: the output lines up with the input.
    assert torch.max(torch.abs(process(model, x, 64) - x)) < 1e-5


def test_any_length_calls_including_empty_and_batches():
    model = trained_like(STFTLSTM(128, 32, "hann", 8, 1, "magnitude"))
    x = torch.randn(3, 700, 1) * 0.3
    whole, _ = run_blocks(model, x)
    state = model.initial_state(3)
    outs = []
    with torch.no_grad():
        for size in (0, 1, 31, 32, 33, 0, 200, 403):
            start = sum(o.shape[1] for o in outs)
            y, state = model(x[:, start : start + size], state)
            assert y.shape == (3, size, 1)
            outs.append(y)
    assert torch.max(torch.abs(torch.cat(outs, 1) - whole)) < 1e-5


def test_long_chunks_run_the_lstm_once_per_call():
    """All complete frames of a call go through the LSTM in one call, hop times shorter than the audio."""
    model = STFTLSTM(256, 64, "hann", 8, 1, "complex")
    lengths = []
    model.lstm.register_forward_hook(lambda mod, args, out: lengths.append(args[0].shape[1]))
    model(torch.zeros(2, 2048, 1), model.initial_state(2))
    assert lengths == [2048 // 64]


def test_clip_inference_matches_streaming_with_context():
    model = trained_like(STFTLSTM(256, 64, "hann", 16, 1, "complex"))
    x = torch.randn(12000) * 0.3
    whole = process(model, x)
    clipped = predict_clips(model, x, clip=47 * 64, context=2048)  # clips on the frame grid
    assert torch.max(torch.abs(clipped[3008:] - whole[3008:])) < 1e-4


def test_training_step_learns_a_gain():
    torch.manual_seed(0)
    model = STFTLSTM(128, 32, "hann", 8, 1, "magnitude")
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    x = torch.randn(2, 512, 1) * 0.3
    target = torch.cat([torch.zeros(2, model.latency, 1), 0.5 * x[:, : -model.latency]], 1)
    losses = []
    for _ in range(20):
        y, _ = model(x, model.initial_state(2))
        loss = ((y - target) ** 2)[:, model.latency :].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]


def test_config_rejects_frames_that_cannot_reconstruct():
    with pytest.raises(ValidationError, match="must not exceed"):
        STFTLSTMConfig(name="stft-lstm", n_fft=256, hop=512)
    with pytest.raises(ValidationError, match="smaller hop"):
        STFTLSTMConfig(name="stft-lstm", n_fft=256, hop=256, window="hann")
    with pytest.raises(ValidationError, match="window must be one of"):
        STFTLSTMConfig(name="stft-lstm", window="kaiser")
    with pytest.raises(ValidationError):
        STFTLSTMConfig(name="stft-lstm", predict="phase")


def test_frames_are_whole_hops_and_cover_the_split():
    cfg = FramesConfig(demo="amp", segment=1000)
    frames = Frames(cfg, STFTLSTMConfig(name="stft-lstm", n_fft=256, hop=64))
    assert frames.segment == 1024
    x = torch.arange(10_500, dtype=torch.float32)
    batches = list(frames.batches(x, -x, 4, torch.Generator().manual_seed(0)))
    seen = torch.cat([b[0] for b in batches]).reshape(-1, 1024)
    assert seen.shape[0] == 10 and all(torch.equal(b[1], -b[0]) for b in batches)
    assert torch.equal(seen[:, 1:] - seen[:, :-1], torch.ones(10, 1023))
    assert len({int(s) for s in seen[:, 0]}) == 10 and int(seen[:, 0].min()) <= 10_500 - 10 * 1024


def test_shaper_is_trained_through_the_spectra():
    model = trained_like(STFTLSTM(128, 32, "hann", 8, 1, "complex", shaper=2)).train()
    y, _ = model(torch.randn(2, 512, 1) * 0.3, model.initial_state(2))
    y.square().mean().backward()
    assert model.drive.grad.abs().min() > 0 and model.offset.grad.abs().min() > 0
