import pytest
import torch

from fxforge.nn.stream import predict_clips, process
from fxforge.builtins.segments import Segments, SegmentsConfig
from fxforge.builtins.wave_lstm.plugin import KnobGain, WaveLSTM


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


# -- knob conditioning ----------------------------------------------------------

from fxforge.testing import check_model  # noqa: E402
from fxforge.builtins.wave_lstm.plugin import WaveGRU  # noqa: E402


@pytest.mark.parametrize("cls", [WaveLSTM, WaveGRU])
@pytest.mark.parametrize("conditioning", ["concat", "film", "gain"])
@pytest.mark.parametrize("knobs", [1, 2])
def test_conditioned_models_conform_with_moving_knobs(cls, conditioning, knobs):
    torch.manual_seed(0)
    model = cls(8, 1, True, knobs, [0.5] * knobs, conditioning)
    if model.film_head is not None:  # a fresh FiLM head is zero: give it something to get wrong
        torch.nn.init.normal_(model.film_head.weight, std=0.3)
    if model.knob_gain is not None:  # a fresh knob gain is 1 throughout
        torch.nn.init.normal_(model.knob_gain.log_max, std=1.0)
    check_model(model, 48000, knobs=knobs)


@pytest.mark.parametrize("conditioning", ["concat", "film", "gain"])
def test_knob_changes_the_output_and_audio_alone_plays_the_defaults(conditioning):
    torch.manual_seed(0)
    model = WaveLSTM(8, 1, True, 1, [0.25], conditioning).eval()
    if model.film_head is not None:
        torch.nn.init.normal_(model.film_head.weight, std=0.3)
    if model.knob_gain is not None:
        torch.nn.init.constant_(model.knob_gain.log_max, 2.0)
    audio = torch.randn(1, 500, 1) * 0.3
    at = lambda v: model(torch.cat([audio, torch.full_like(audio, v)], -1), model.initial_state(1))[0]  # noqa: E731
    with torch.no_grad():
        assert torch.max(torch.abs(at(0.0) - at(1.0))) > 1e-3
        assert torch.equal(model(audio, model.initial_state(1))[0], at(0.25))
    with pytest.raises(ValueError, match="1 \\+ 1 input channels"):
        model(torch.randn(1, 10, 3), model.initial_state(1))


def test_knob_gain_is_a_monotone_pot_law_from_the_minimum_gain_to_the_maximum():
    gain = KnobGain(1)
    with torch.no_grad():
        gain.log_min.fill_(-1.0)
        gain.log_max.fill_(3.0)
        k = torch.linspace(0, 1, 101).reshape(-1, 1)
        for c in (0.04, 1.0, 20.0):  # a drive pot in series with a small resistor .. nearly linear
            gain.taper.fill_(float(torch.log(torch.expm1(torch.tensor(c)))))  # softplus(taper) = c
            t = gain.shape(k).reshape(-1)
            assert t[0] == 0 and t[-1] == pytest.approx(1.0)
            assert torch.all(torch.diff(t) > 0)
            g = gain(k).reshape(-1)
            assert g[0] == pytest.approx(torch.e ** -1) and g[-1] == pytest.approx(torch.e ** 3, rel=1e-5)
            assert torch.all(torch.diff(g) > 0)
            assert gain(torch.tensor([[-0.5], [1.5]])).reshape(-1).tolist() == pytest.approx([g[0].item(), g[-1].item()])
        # small c: most of the change near the maximum, as 1 / (c + 1 - k); large: nearly linear
        half = {}
        for c in (0.04, 20.0):
            gain.taper.fill_(float(torch.log(torch.expm1(torch.tensor(c)))))
            half[c] = gain.shape(torch.tensor([[0.5]])).item()
        assert half[0.04] < 0.05 and half[20.0] > 0.45
    assert torch.allclose(KnobGain(2)(torch.rand(5, 2)), torch.ones(5, 1))  # a fresh one is 1


def test_gain_conditioning_scales_the_input_by_the_knob_gain():
    torch.manual_seed(0)
    model = WaveLSTM(8, 1, True, 1, [0.5], "gain").eval()
    with torch.no_grad():
        model.knob_gain.log_max.fill_(2.0)
        audio = torch.randn(1, 300, 1) * 0.1
        k = torch.full_like(audio, 0.7)
        g = model.knob_gain(k[0, :1]).item()
        # the layer sees [g x, k]: the same as a concat model fed g x (the residual adds x itself)
        concat = WaveLSTM(8, 1, True, 1, [0.5], "concat").eval()
        concat.load_state_dict({n: v for n, v in model.state_dict().items() if not n.startswith("knob_gain.")})
        out = model(torch.cat([audio, k], -1), model.initial_state(1))[0]
        ref = concat(torch.cat([g * audio, k], -1), concat.initial_state(1))[0] - g * audio + audio
    assert torch.allclose(out, ref, atol=1e-6)


def test_unconditioned_state_dict_is_unchanged():
    # runs trained before knobs existed must still load
    assert list(WaveLSTM(8).state_dict()) == ["lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0",
                                              "lstm.bias_hh_l0", "head.weight", "head.bias"]
