"""Plugins with real knobs (#19 item 3): the JUCE export of a conditioned run gets one smoothed
parameter per knob, named, ranged and defaulted as the run's captures manifest says.

Fast (always): the generated project's parameters (FxforgeKnobs.h, fxforge_export.json), the
refusals, the Python copy of JUCE's linear smoothing, and, with a compiler and
FXFORGE_RTNEURAL_DIR, the generated concat and FiLM models compiled without JUCE and fed a
moving knob against PyTorch (seconds).

Slow (FXFORGE_SLOW=1, JUCE and RTNeural here): a concat LSTM trained through the CLI on a
knob grid, exported with --build --verify, then hosted by pedalboard: its knobs, a knob moving
during the render, and the plugin's state keeping the knob.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

pytest.importorskip("fxforge_juce", reason="pip install -e plugins/fxforge-juce")

from conftest import SR, TINY, compile_render_tool, dry, run_cli, write_config  # noqa: E402
from fxforge.builtins.wave_lstm.plugin import WaveGRU, WaveLSTM  # noqa: E402
from test_export_juce import CPP_RENDER_SKIP, _build_prerequisites, _rtneural_dir, fake_run  # noqa: E402
from test_knobs import drive_pedal  # noqa: E402

from fxforge_juce.generate import PluginKnob  # noqa: E402
from fxforge_juce.knobcheck import held_value, smoothed  # noqa: E402
from fxforge_juce.plugin import JuceConfig, generate  # noqa: E402

# A knob in its own units (not 0..1), so the normalisation shows: the plugin displays 0..10,
# the model reads (gain - 0) / 10.
GAIN = {"name": "gain", "min": 0.0, "max": 10.0, "default": 4.0}
SETTINGS = (2.0, 5.0, 8.0)


def conditioned(cls=WaveLSTM, conditioning="concat", knobs=1, hidden=8, layers=1, seed=0):
    """A conditioned model with lively weights (mapping errors would show)."""
    torch.manual_seed(seed)
    model = cls(hidden, layers, knobs=knobs, knob_defaults=[0.3] * knobs, conditioning=conditioning)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model.eval()


def knob_run(model, model_name="wave-lstm", listed=(GAIN,)):
    run = fake_run(model_name=model_name, model=model)
    if listed is not None:
        run.summary["knobs"] = {"manifest": "captures.toml", "knobs": [dict(k) for k in listed]}
    return run


# ---------------------------------------------------------------- generation


def test_a_conditioned_run_gets_one_parameter_per_knob(tmp_path):
    tone = {"name": "tone", "min": -12.0, "max": 12.0, "default": 1.5}
    run = knob_run(conditioned(knobs=2), listed=(GAIN, tone))
    project = generate(run, JuceConfig(out=tmp_path / "p"))
    knobs = (project.dir / "Source/FxforgeKnobs.h").read_text()
    assert "kCount = 2;" in knobs
    assert 'Knob { "gain", "gain", 0.0f, 10.0f, 4.0f },' in knobs
    assert 'Knob { "tone", "tone", -12.0f, 12.0f, 1.5f },' in knobs
    exported = json.loads((project.dir / "fxforge_export.json").read_text())
    assert exported["knobs"] == [{"id": "gain", **GAIN}, {"id": "tone", **tone}]
    header = (project.dir / "Source/FxforgeModel.h").read_text()
    assert "RTNeural::ModelT<float, 3, 1," in header and "LSTMLayerT<float, 3, 8>" in header  # [x, gain, tone]
    assert "static constexpr int kKnobs = 2;" in header and "void setKnobs (const float* k) noexcept" in header
    assert "ConcatKnobs<2> concat;" in header and "net.forward (concat.input (x))" in header
    assert "2 knobs concatenated to the input" in exported["architecture"]
    # The processor makes the parameters from that table, smoothed, and the APVTS state keeps them.
    processor = (project.dir / "Source/PluginProcessor.cpp").read_text()
    assert "for (const auto& k : fxforge::knobs::kKnobs)" in processor and "AudioParameterFloat" in processor
    assert "knobSmoothers[(size_t) j].getNextValue()" in processor
    assert "SmoothedValue<float, juce::ValueSmoothingTypes::Linear>" in (project.dir / "Source/PluginProcessor.h").read_text()
    assert "state.copyState()" in processor
    # The project's README lists the knobs: name, parameter ID, range and default.
    readme = (project.dir / "README.md").read_text()
    assert "## Knobs" in readme
    assert "| gain | `gain` | 0 .. 10 | 4 |" in readme and "| tone | `tone` | -12 .. 12 | 1.5 |" in readme


def test_film_maps_the_knob_network(tmp_path):
    model = conditioned(WaveGRU, "film", knobs=1, hidden=6, layers=2)
    project = generate(knob_run(model, "gru"), JuceConfig(out=tmp_path / "p"))
    header = (project.dir / "Source/FxforgeModel.h").read_text()
    assert "RTNeural::ModelT<float, 17, 6," in header and "GRULayerT<float, 17, 6>" in header  # [x, x*phi, phi]
    # The FiLM wiring is the C++ class template fxforge::FilmKnobs: the export writes its type
    # parameters (knobs, generator width, features, hidden size, head bias); it loads film.*,
    # film_head.*, head.* and knob_defaults itself.
    width, features = model.film[0].out_features, model.film[2].out_features
    assert f"FilmKnobs<1, {width}, {features}, 6, true> film;" in header
    assert "film.load (json);" in header and "film.set (k);" in header
    glue = (project.dir / "Source/FxforgeGlue.h").read_text()
    for key in ("film.0.weight", "film.2.bias", "film_head.weight", "knob_defaults"):
        assert f'"{key}"' in glue, key
    assert "RTNeural::DenseT<float, H, 1, HeadBias> head;" in glue and "cwiseProduct (gain) + shift" in glue
    doc = json.loads((project.dir / "Resources/model_weights.json").read_text())
    assert torch.equal(torch.tensor(doc["film_head.weight"]), model.film_head.weight.detach())


def test_an_unconditioned_run_gets_no_knobs(tmp_path):
    project = generate(fake_run(hidden_size=8), JuceConfig(out=tmp_path / "p"))
    assert "kCount = 0;" in (project.dir / "Source/FxforgeKnobs.h").read_text()
    assert "kKnobs" not in (project.dir / "Source/FxforgeModel.h").read_text()
    assert json.loads((project.dir / "fxforge_export.json").read_text())["knobs"] == []
    assert "## Knobs" not in (project.dir / "README.md").read_text()


def test_knob_names_that_are_taken_or_odd_are_renamed(tmp_path):
    listed = ({"name": "mix", "min": 0.0, "max": 1.0, "default": 0.5},
              {"name": 'a"; system("x")', "min": 0.0, "max": 1.0, "default": 0.5})
    project = generate(knob_run(conditioned(knobs=2), listed=listed), JuceConfig(out=tmp_path / "p"))
    assert [(k.id, k.name) for k in project.knobs] == [("knob_mix", "mix knob"), ("a_system_x", "a_system_x")]
    text = (project.dir / "Source/FxforgeKnobs.h").read_text()
    assert "system(" not in text


def test_a_run_without_knob_records_gets_numbered_knobs_at_the_models_defaults(tmp_path):
    project = generate(knob_run(conditioned(knobs=2), listed=None), JuceConfig(out=tmp_path / "p"))
    assert [(k.id, k.min, k.max) for k in project.knobs] == [("knob_1", 0.0, 1.0), ("knob_2", 0.0, 1.0)]
    assert project.knobs[0].default == pytest.approx(0.3)


@pytest.mark.parametrize("listed,message", [
    ((GAIN, GAIN), "the model takes 1 knob inputs, but the run records 2 knobs"),
    (({"name": "gain", "min": 1.0, "max": 1.0, "default": 1.0},), "needs min < max"),
])
def test_knob_records_that_do_not_fit_are_refused(tmp_path, listed, message):
    from fxforge import FxforgeError

    with pytest.raises(FxforgeError, match=re.escape(message)):
        generate(knob_run(conditioned(), listed=listed), JuceConfig(out=tmp_path / "p"))


def test_smoothing_is_junces_linear_ramp():
    steps = int(0.02 * SR)  # 960 samples
    y = smoothed(0.2, {100: 0.8}, 3000, SR)
    assert np.all(y[:100] == np.float32(0.2))
    assert y[100] == pytest.approx(0.2 + 0.6 / steps, abs=1e-7)  # the first sample already moves
    assert y[100 + steps - 1] == np.float32(0.8) and np.all(y[100 + steps - 1:] == np.float32(0.8))
    assert np.allclose(np.diff(y[100:100 + steps - 1]), 0.6 / steps, atol=1e-6)
    # A new target mid-ramp ramps from where it is, over the whole ramp again.
    z = smoothed(0.0, {0: 1.0, 480: 0.0}, 2000, SR)
    assert z[479] == pytest.approx(0.5, abs=1e-5)
    assert z[480] == pytest.approx(z[479] - z[479] / steps, abs=1e-6) and z[480 + steps - 1] == 0.0
    assert np.all(smoothed(0.4, {7: 0.4}, 50, SR) == np.float32(0.4))  # an unchanged target: no ramp
    assert held_value(PluginKnob("g", 0.0, 10.0, 4.0, id="g"), 0.5) == np.float32(0.5)


def _render_with_knobs(tmp_path: Path, project_dir: Path, x: np.ndarray, knobs: np.ndarray,
                       blocks=(1, 17, 512)) -> np.ndarray:
    rt, cxx = _rtneural_dir(), shutil.which("g++") or shutil.which("clang++")
    if rt is None or cxx is None:
        pytest.skip(CPP_RENDER_SKIP)
    exe = tmp_path / "render"
    compile_render_tool(cxx, rt, project_dir, exe)
    x.astype(np.float32).tofile(tmp_path / "in.f32")
    knobs.astype(np.float32).tofile(tmp_path / "knobs.f32")
    subprocess.run([str(exe), str(project_dir / "Resources/model_weights.json"), str(tmp_path / "in.f32"),
                    str(tmp_path / "out.f32"), *map(str, blocks)], check=True,
                   env={**os.environ, "FXFORGE_RENDER_KNOBS": str(tmp_path / "knobs.f32")})
    return np.fromfile(tmp_path / "out.f32", np.float32)


def _assert_follows_moving_knobs(tmp_path, project, model, knobs: int, what: str, blocks=(1, 17, 512)) -> None:
    """The generated model rendered with its knobs moving (knob 0 ramps 0 -> 1 -> 0.4 through the
    plugin's smoothing, knob 1 steps) matches PyTorch fed the same knob channels within 1e-4,
    and the knobs change the sound."""
    from fxforge.nn.stream import process

    n = 9000
    torch.manual_seed(2)
    x = (0.5 * torch.sin(torch.arange(n) * 0.03) + 0.1 * torch.randn(n)).numpy()
    k = np.zeros((n, knobs), np.float32)
    k[:, 0] = smoothed(0.0, {500: 1.0, 3000: 0.4}, n, SR)
    if knobs > 1:
        k[:, 1] = np.where(np.arange(n) < 6000, 0.9, 0.1)
    y = _render_with_knobs(tmp_path, project.dir, x, k, blocks=blocks)
    with torch.no_grad():
        ref = process(model, torch.from_numpy(np.concatenate([x.reshape(-1, 1), k], axis=1))).numpy()
        still = process(model, torch.from_numpy(np.concatenate([x.reshape(-1, 1), np.zeros_like(k)], axis=1))).numpy()
    assert np.abs(ref - still).max() > 1e-2  # the knobs change the sound
    err = float(np.abs(y - ref).max())
    print(f"{what}: moving knobs, max abs error {err:.3g}")
    assert err < 1e-4


@pytest.mark.parametrize("cls,name,conditioning,knobs,layers", [
    (WaveLSTM, "wave-lstm", "concat", 1, 2),
    (WaveGRU, "gru", "concat", 2, 1),
    (WaveLSTM, "wave-lstm", "film", 2, 1),
    (WaveGRU, "gru", "film", 1, 2),
    (WaveLSTM, "wave-lstm", "gain", 1, 1),
    (WaveGRU, "gru", "gain", 2, 1),
])
def test_the_generated_model_follows_moving_knobs_as_pytorch_does(tmp_path, cls, name, conditioning, knobs, layers):
    """The model as the plugin runs it (processGuarded with per-sample knob values, the FiLM
    network re-evaluated as they move) against PyTorch fed the same knob channels."""

    model = conditioned(cls, conditioning, knobs=knobs, layers=layers)
    listed = [dict(GAIN, name=f"k{j}") for j in range(knobs)]
    project = generate(knob_run(model, name, listed), JuceConfig(out=tmp_path / "p"))
    _assert_follows_moving_knobs(tmp_path, project, model, knobs, f"{name} {conditioning} {knobs} knobs")


@pytest.mark.parametrize("gated,knobs", [(True, 1), (False, 2)])
def test_a_conditioned_wavenet_follows_moving_knobs_block_by_block_as_pytorch_does(tmp_path, gated, knobs):
    """The block-wise WaveNet with its knobs per sample (every layer's 1x1 projection of them),
    across chunk boundaries (blocks past wavenet::kMaxBlock), against PyTorch; a block played
    without per-sample values holds the model's own knob_defaults, as PyTorch plays audio alone."""
    from fxforge.builtins.wavenet.plugin import WaveNet

    torch.manual_seed(3)
    model = WaveNet(channels=4, max_dilation=32, kernel_size=3, gated=gated, knobs=knobs, knob_defaults=[0.3] * knobs)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    model.eval()
    listed = [dict(GAIN, name=f"k{j}") for j in range(knobs)]
    project = generate(knob_run(model, "wavenet", listed), JuceConfig(out=tmp_path / "p"))
    model_h = (project.dir / "Source" / "FxforgeModel.h").read_text()
    assert f"kKnobs = {knobs}" in model_h and f"wavenet::HeldKnobs<{knobs}>" in model_h
    _assert_follows_moving_knobs(tmp_path, project, model, knobs, f"wavenet gated={gated} {knobs} knobs",
                                 blocks=(1, 17, 512, 2500))


# ---------------------------------------------------------------- build + verify (slow)

CONFIG = TINY.replace('''input = "di.wav"
target = "amp.wav"''', '''captures = "captures.toml"''').replace('name = "tiny"', 'name = "knobamp"').replace(
    "hidden_size = 8", 'hidden_size = 8\nconditioning = "concat"')


def write_gain_captures(folder: Path, seconds: float = 4.0) -> None:
    """A gain knob over 0..10 (default 4): drive_pedal at gain / 10, three settings."""
    x = dry(seconds)
    sf.write(folder / "dry.wav", x, SR, subtype="PCM_24")
    lines = ["version = 1", 'input = "dry.wav"', "", "[knobs.gain]", "min = 0.0", "max = 10.0", "default = 4.0", ""]
    for g in SETTINGS:
        sf.write(folder / f"gain_{g:g}.wav", drive_pedal(x, g / 10), SR, subtype="PCM_24")
        lines += ["[[targets]]", f'file = "gain_{g:g}.wav"', f"knobs = {{ gain = {g} }}", "latency = 0", ""]
    (folder / "captures.toml").write_text("\n".join(lines))


def test_build_and_verify_a_plugin_with_knobs(tmp_path):
    """A concat LSTM trained on a gain grid through the CLI, exported with --build --verify;
    then, in pedalboard: the knob with the manifest's range and default, a knob moving
    during the render as PyTorch plays it (within 1e-4), and the state keeping the knob.
    Then the same for a FiLM LSTM, rebuilt in the same project."""
    why = _build_prerequisites()
    if why:
        pytest.skip(why)
    pytest.importorskip("pedalboard")

    write_gain_captures(tmp_path)
    write_config(tmp_path, CONFIG)
    out = run_cli("run", "run.toml", "--set", "train.epochs=1", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (run_dir,) = (tmp_path / "runs" / "knobamp").iterdir()
    assert json.loads((run_dir / "summary.json").read_text())["knobs"]["knobs"] == [GAIN]

    args = ["export", "juce", run_dir, "--out", tmp_path / "Plug", "--name", "Fxforge Knobs", "--formats", "VST3",
            "--verify", "--jobs", "2"]
    if os.environ.get("FXFORGE_JUCE_DIR"):
        args += ["--juce-dir", os.environ["FXFORGE_JUCE_DIR"]]
    r = run_cli(*args, cwd=tmp_path, timeout=1800)
    print(r.stdout[-4000:], r.stderr[-6000:])
    assert r.returncode == 0, r.stderr[-3000:]
    assert "verify ok" in r.stderr and "knob positions, a knob moving" in r.stderr
    rows = dict(re.findall(r"│ (gain[^│]*?|all at default[^│]*?)\s+│\s+(\S+) │", r.stderr))
    for label in ("gain = 0 (min)", "gain = 3 (interior)", "gain = 10 (max)", "all at default (gain = 4)"):
        assert label in rows and float(rows[label]) <= 1e-4, (label, rows)
    moving = [v for k, v in rows.items() if k.startswith("gain moving")]
    assert moving and float(moving[0]) <= 1e-4, rows
    assert "knob gain: pedalboard parameter 'gain', range 0..10, default 4" in r.stderr

    vst3 = next((tmp_path / "Plug" / "build").glob("FxforgePlugin_artefacts/Release/VST3/*.vst3"))
    hosted_knob_checks(vst3, run_dir)

    # FiLM on the same grid, exported into the same project (only the model's files rebuild).
    film = CONFIG.replace('conditioning = "concat"', 'conditioning = "film"').replace('"knobamp"', '"knobfilm"')
    write_config(tmp_path, film)
    out = run_cli("run", "run.toml", "--set", "train.epochs=1", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (film_dir,) = (tmp_path / "runs" / "knobfilm").iterdir()
    args[2] = film_dir
    r = run_cli(*args, cwd=tmp_path, timeout=1800)
    print(r.stderr[-3000:])
    assert r.returncode == 0 and "verify ok" in r.stderr and "knob positions, a knob moving" in r.stderr, r.stderr[-3000:]
    assert "FiLM of 1 knob" in r.stderr
    # In a fresh interpreter: this one has the concat build's library loaded at the same path,
    # and loading the bundle again would reuse it.
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); from pathlib import Path; "
            f"from test_juce_knobs import hosted_knob_checks; hosted_knob_checks(Path({str(vst3)!r}), Path({str(film_dir)!r}))")
    hosted = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert hosted.returncode == 0, hosted.stderr[-3000:]


def hosted_knob_checks(vst3: Path, run_dir: Path) -> None:
    """The built VST3 of a GAIN run in pedalboard: the knob, the knob moving, the state."""
    import pedalboard
    from fxforge import load_run
    from fxforge.nn.stream import process

    plugin = pedalboard.load_plugin(str(vst3))
    p = plugin.parameters["gain"]
    assert (p.min_value, p.max_value) == (0.0, 10.0) and float(plugin.gain) == pytest.approx(4.0)
    assert {"input_db", "output_db", "mix", "bypass"} <= set(plugin.parameters)

    # Moving the knob changes the output as the model does: 0.25 s at gain 4, then gain 9
    # (the plugin ramps over 20 ms from the next block on), against PyTorch on that ramp.
    model = load_run(run_dir).model
    x = np.stack([dry(0.5, seed=5), dry(0.5, seed=6)]).astype(np.float32)
    half = x.shape[1] // 2 // 512 * 512
    first = plugin.process(x[:, :half], SR, buffer_size=512, reset=True)
    plugin.gain = 9.0
    second = plugin.process(x[:, half:], SR, buffer_size=512, reset=False)
    y = np.concatenate([first, second], axis=1)
    turned = held_value(PluginKnob("gain", 0.0, 10.0, 4.0, id="gain"), plugin.parameters["gain"].raw_value)
    knob = smoothed(0.4, {half: turned}, x.shape[1], SR)
    for ch in range(2):
        with torch.no_grad():
            ref = process(model, torch.from_numpy(np.stack([x[ch], knob], axis=1))).numpy()
            still = process(model, torch.from_numpy(np.stack([x[ch], np.full_like(knob, 0.4)], axis=1))).numpy()
        assert np.abs(ref - still)[half:].max() > 1e-3  # turning the knob changes the sound
        assert np.abs(y[ch] - ref).max() < 1e-4

    # The host saves and restores the knob with the plugin's state.
    plugin.gain = 7.5
    saved = plugin.raw_state
    plugin.gain = 1.0
    plugin.raw_state = saved
    assert float(plugin.gain) == pytest.approx(7.5, abs=1e-4)
    again = pedalboard.load_plugin(str(vst3))
    again.raw_state = saved
    assert float(again.gain) == pytest.approx(7.5, abs=1e-4)
