"""`fxforge export nam RUN -o model.nam`: NAM's .nam format, checked with NAM's own loaders.

The Python loader checks need neural-amp-modeler (the `test` extra installs it); the C++
checks need a NeuralAmpModelerCore checkout (FXFORGE_NAM_CORE_DIR), Eigen and a C++
compiler. Without them those tests skip and the refusal and metadata checks still run.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import SR, TINY, run_cli, write_config, write_pair

pytest.importorskip("fxforge_nam", reason="pip install -e plugins/fxforge-nam")

from fxforge.data.demo import synth_di  # noqa: E402
from fxforge_nam.plugin import NamConfig, nam_dict, refuses  # noqa: E402
from fxforge.builtins.wave_lstm.plugin import WaveGRU, WaveLSTM  # noqa: E402
from fxforge.builtins.wavenet.plugin import WaveNetConfig, build  # noqa: E402



def _has_nam() -> bool:
    try:
        return importlib.util.find_spec("nam") is not None
    except (ImportError, ValueError):
        return False


needs_nam = pytest.mark.skipif(
    not _has_nam(),
    reason="neural-amp-modeler is not installed (pip install -e '.[test]'): these tests load the .nam with NAM's own loader")

def _nam_core() -> Path | None:
    from fxforge_nam.core import find_compiler, missing

    for cand in (os.environ.get("FXFORGE_NAM_CORE_DIR"), "/work/ext/NeuralAmpModelerCore"):
        if cand and Path(cand, "NAM", "get_dsp.h").is_file():
            return Path(cand) if missing(Path(cand), find_compiler()) is None else None
    return None


needs_core = pytest.mark.skipif(
    _nam_core() is None,
    reason="needs a NeuralAmpModelerCore checkout (FXFORGE_NAM_CORE_DIR; git clone "
           "https://github.com/sdatkinson/NeuralAmpModelerCore) with Eigen (its submodule or libeigen3-dev) "
           "and a C++ compiler: these tests play the .nam in NAM's C++ loader")

NAM_WAVENET = TINY.replace('name = "wave-lstm"\nhidden_size = 8',
                           'name = "wavenet"\npreset = "nam-wavenet"\narrays = [4, 2]\nmax_dilation = 64')
NAM_LSTM = TINY.replace("hidden_size = 8", "hidden_size = 8\nresidual = false")
CABINET = TINY.replace("hidden_size = 8", "hidden_size = 8\n[model.cabinet]\ntaps = 64")
HINT = 'the wavenet with preset = "nam-wavenet" (--set model.preset=nam-wavenet), NAM\'s standard WaveNet'


def _train(folder: Path, text: str) -> Path:
    write_pair(folder, seconds=4.0)
    write_config(folder, text)
    out = run_cli("run", "run.toml", "--set", "train.epochs=1", cwd=folder)
    assert out.returncode == 0, out.stderr
    (run_dir,) = (folder / "runs" / "tiny").iterdir()
    return run_dir


@pytest.fixture(scope="module")
def nam_run(tmp_path_factory) -> Path:
    """A tiny NAM-layout WaveNet trained through the CLI."""
    return _train(tmp_path_factory.mktemp("namwn"), NAM_WAVENET)


@pytest.fixture(scope="module")
def lstm_run(tmp_path_factory) -> Path:
    """A tiny non-residual LSTM (exactly NAM's LSTM) trained through the CLI."""
    return _train(tmp_path_factory.mktemp("namlstm"), NAM_LSTM)


@pytest.fixture(scope="module")
def exported(nam_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("namfile") / "amp.nam"
    r = run_cli("export", "nam", nam_run, "-o", out, "--name", "Tiny Amp", "--modeled-by", "fxforge tests",
                "--gear-make", "Acme", "--gear-model", "Drive 1", "--gear-type", "pedal", "--tone-type", "overdrive",
                "--input-level-dbu", "12.5", "--output-level-dbu", "-3")
    assert r.returncode == 0, r.stderr
    assert f"wrote {out}" in r.stderr
    return out


def _nam_output(doc: dict, x: np.ndarray) -> np.ndarray:
    from nam.models import init_from_nam

    model = init_from_nam(doc).eval()
    with torch.no_grad():
        return model(torch.from_numpy(x.astype(np.float32))).numpy()


def _fake_run(model, name="wavenet", cabinet=None):
    return SimpleNamespace(path=Path("runs/x/0"), model=model.eval(), sample_rate=SR, summary={"test_esr": 0.5},
                           config=SimpleNamespace(name="x", model=SimpleNamespace(name=name, cabinet=cabinet),
                                                  data=SimpleNamespace(latency="auto")))


# ---------------------------------------------------------------- NAM's loader


@needs_nam
def test_nams_loader_matches_fxforge_process(nam_run, exported, tmp_path):
    doc = json.loads(exported.read_text())
    assert (doc["version"], doc["architecture"], doc["sample_rate"]) == ("0.7.0", "WaveNet", SR)
    x = synth_di(3.0, 7)
    sf.write(tmp_path / "in.wav", x, SR, subtype="FLOAT")
    r = run_cli("process", nam_run, tmp_path / "in.wav", tmp_path / "out.wav", "--block", 256)
    assert r.returncode == 0, r.stderr
    ours = sf.read(tmp_path / "out.wav", dtype="float32")[0]
    theirs = _nam_output(doc, x)
    assert ours.shape == theirs.shape
    assert np.max(np.abs(ours - theirs)) < 1e-5  # from the first sample: NAM pads with zeros, fxforge starts there


@needs_nam
def test_the_file_is_what_nam_itself_would_write(exported):
    """NAM's loader re-exports the same config and weights (the layout is NAM's, key for key)."""
    from nam.models import init_from_nam

    doc = json.loads(exported.read_text())
    again = init_from_nam(doc)._get_export_dict()
    assert again["config"] == doc["config"]
    assert np.max(np.abs(np.array(again["weights"]) - np.array(doc["weights"]))) < 1e-7
    assert abs(again["metadata"]["loudness"] - doc["metadata"]["loudness"]) < 1e-3  # computed as NAM does
    assert abs(again["metadata"]["gain"] - doc["metadata"]["gain"]) < 1e-4


@needs_nam
@pytest.mark.parametrize("gated", [False, True])
def test_full_nam_wavenet_preset_matches(gated):
    torch.manual_seed(0)
    model = build(WaveNetConfig(name="wavenet", preset="nam-wavenet", gated=gated), SR)
    for p in model.parameters():  # trained-looking weights, not the small initial ones
        p.data.normal_(0, 0.3)
    run = _fake_run(model)
    doc = nam_dict(run, NamConfig(out="m.nam"))
    assert len(doc["weights"]) == sum(p.numel() for p in model.parameters()) + 1 == (13802 if not gated else 23882)
    x = synth_di(1.0, 3)
    with torch.no_grad():
        ours, _ = model(torch.from_numpy(x).reshape(1, -1, 1), model.initial_state(1))
    assert np.max(np.abs(ours.reshape(-1).numpy() - _nam_output(doc, x))) < 1e-5


@needs_nam
@pytest.mark.parametrize("layers", [1, 2])
def test_non_residual_lstm_matches(layers):
    torch.manual_seed(1)
    model = WaveLSTM(hidden_size=12, num_layers=layers, residual=False)
    doc = nam_dict(_fake_run(model, "wave-lstm"), NamConfig(out="m.nam"))
    assert doc["architecture"] == "LSTM" and doc["config"] == {"input_size": 1, "hidden_size": 12, "num_layers": layers}
    x = synth_di(1.0, 4)
    with torch.no_grad():
        ours, _ = model.eval()(torch.from_numpy(x).reshape(1, -1, 1), model.initial_state(1))
    assert np.max(np.abs(ours.reshape(-1).numpy() - _nam_output(doc, x))) < 1e-5


@needs_nam
def test_verify_flag_without_nam_core_says_why(nam_run, tmp_path):
    nowhere = tmp_path / "nowhere"
    r = run_cli("export", "nam", nam_run, "-o", tmp_path / "v.nam", "--verify", env={"FXFORGE_NAM_CORE_DIR": str(nowhere)})
    assert r.returncode == 0, r.stderr
    assert re.search(r"NAM's loader \(nam.models.init_from_nam\) vs the run: max abs error \S+", r.stderr)
    assert (f"verify skipped for NeuralAmpModelerCore: it compiles NAM's C++ loader and needs "
            f"FXFORGE_NAM_CORE_DIR={nowhere} is not a NeuralAmpModelerCore checkout (no NAM/get_dsp.h)") in r.stderr
    assert "verify ok: NAM's loader matches the run within" in r.stderr
    assert (tmp_path / "v.nam").is_file()


def test_a_wrong_nam_core_dir_is_one_line_and_writes_nothing(nam_run, tmp_path):
    r = run_cli("export", "nam", nam_run, "-o", tmp_path / "v.nam", "--verify", "--nam-core-dir", tmp_path)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == (f"error: fxforge export nam: --nam-core-dir {tmp_path}: not a NeuralAmpModelerCore "
                                "checkout (no NAM/get_dsp.h; git clone https://github.com/sdatkinson/NeuralAmpModelerCore)")
    assert not (tmp_path / "v.nam").exists()


# ---------------------------------------------------------------- NAM's C++ core


def _core_exe():
    from fxforge_nam.core import build_check, find_compiler

    return build_check(_nam_core().resolve(), find_compiler())


@needs_core
@pytest.mark.parametrize("which", ["wavenet", "lstm"])
def test_nam_core_plays_the_file_as_fxforge_process(which, nam_run, lstm_run, tmp_path):
    """NeuralAmpModelerCore's get_dsp, block by block as a plugin calls it, against `fxforge process`:
    after the core's prewarm (its start in NAM's plugin), and for the LSTM also from the file's own
    initial state (the WaveNet's buffers start at zero there, which no host plays)."""
    from fxforge_nam.core import render

    run_dir = nam_run if which == "wavenet" else lstm_run
    r = run_cli("export", "nam", run_dir, "-o", tmp_path / "m.nam")
    assert r.returncode == 0, r.stderr
    x = synth_di(2.0, 9)
    silence = 24_000 if which == "lstm" else 0  # the LSTM's half-second prewarm, whole 64-sample blocks
    sf.write(tmp_path / "in.wav", np.concatenate([np.zeros(silence, np.float32), x]), SR, subtype="FLOAT")
    r = run_cli("process", run_dir, tmp_path / "in.wav", tmp_path / "out.wav", "--block", 256)
    assert r.returncode == 0, r.stderr
    ours = sf.read(tmp_path / "out.wav", dtype="float32")[0][silence:]
    assert np.max(np.abs(ours)) > 0.05  # a model that does something
    theirs, info = render(_core_exe(), tmp_path / "m.nam", x, block=64, prewarm=True)
    assert info["architecture"] == ("WaveNet" if which == "wavenet" else "LSTM")
    if which == "lstm":
        assert info["prewarm_samples"] == silence
    assert np.max(np.abs(theirs - ours)) < 1e-5
    if which == "lstm":
        cold, info = render(_core_exe(), tmp_path / "m.nam", x, block=64, prewarm=False)
        assert info["prewarm_samples"] == 0
        sf.write(tmp_path / "in.wav", x, SR, subtype="FLOAT")
        assert run_cli("process", run_dir, tmp_path / "in.wav", tmp_path / "cold.wav", "--block", 256).returncode == 0
        assert np.max(np.abs(cold - sf.read(tmp_path / "cold.wav", dtype="float32")[0])) < 1e-5


@needs_core
def test_nam_core_refuses_a_broken_file_in_one_line(exported, tmp_path):
    from fxforge import FxforgeError
    from fxforge_nam.core import render

    doc = json.loads(exported.read_text())
    doc["weights"] = doc["weights"] + [0.5] * 5  # what a layout that is not NAM's would leave over
    (tmp_path / "long.nam").write_text(json.dumps(doc))
    with pytest.raises(FxforgeError, match=r"long.nam: NeuralAmpModelerCore refused it: Weight mismatch"):
        render(_core_exe(), tmp_path / "long.nam", synth_di(0.1, 1))


@needs_core
@pytest.mark.parametrize("which", ["wavenet", "lstm"])
def test_verify_plays_the_file_in_nam_core(which, nam_run, lstm_run, tmp_path):
    run_dir = nam_run if which == "wavenet" else lstm_run
    r = run_cli("export", "nam", run_dir, "-o", tmp_path / "v.nam", "--verify",
                env={"FXFORGE_NAM_CORE_DIR": str(_nam_core())}, timeout=900)
    print(which, r.stderr)  # the figures, with -s
    assert r.returncode == 0, r.stderr
    lines = re.findall(r"NeuralAmpModelerCore's get_dsp vs the run, block (\d+), (after its prewarm|from the file's "
                       r"initial state).*: max abs error (\S+)", r.stderr)
    expected = [("17", "after its prewarm"), ("512", "after its prewarm")]
    if which == "lstm":
        expected.append(("64", "from the file's initial state"))
    assert [(b, how) for b, how, _ in lines] == expected, r.stderr
    assert all(float(err) < 1e-5 for *_, err in lines), r.stderr
    expected_ok = "NAM's loader and NeuralAmpModelerCore match" if _has_nam() else "NeuralAmpModelerCore matches"
    assert f"verify ok: {expected_ok} the run within" in r.stderr


# ---------------------------------------------------------------- metadata


def test_metadata_is_written(nam_run, exported, tmp_path):
    doc = json.loads(exported.read_text())
    summary = json.loads((nam_run / "summary.json").read_text())
    meta = doc["metadata"]
    assert {k: meta[k] for k in ("name", "modeled_by", "gear_make", "gear_model", "gear_type", "tone_type",
                                 "input_level_dbu", "output_level_dbu")} == {
        "name": "Tiny Amp", "modeled_by": "fxforge tests", "gear_make": "Acme", "gear_model": "Drive 1",
        "gear_type": "pedal", "tone_type": "overdrive", "input_level_dbu": 12.5, "output_level_dbu": -3.0}
    assert set(meta["date"]) == {"year", "month", "day", "hour", "minute", "second"}
    training = meta["training"]
    assert training["trainer"] == "fxforge" and training["model"] == "wavenet"
    assert training["latency"]["samples"] == summary["latency_samples"]
    assert training["test_esr"] == summary["test_esr"] and training["test_esr_pre"] == summary["test_esr_pre"]
    assert training["validation_esr"] == summary["val_esr"]

    bare = tmp_path / "bare.nam"
    r = run_cli("export", "nam", nam_run, "-o", bare)
    assert r.returncode == 0, r.stderr
    meta = json.loads(bare.read_text())["metadata"]
    assert meta["name"] == "tiny" and meta["gear_type"] is None
    assert "input_level_dbu" not in meta and "output_level_dbu" not in meta  # only when given


def test_bad_options_are_one_line(nam_run, tmp_path):
    for args, expected in [
        (["-o", tmp_path / "x.nam", "--gear-type", "tuba"], "error: fxforge export nam: gear_type: Input should be "),
        (["-o", tmp_path / "x.wav"], "error: fxforge export nam: out: must end in .nam (got "),
    ]:
        r = run_cli("export", "nam", nam_run, *args)
        assert r.returncode == 2 and r.stderr.startswith(expected), r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    (tmp_path / "y.nam").write_text("{}")
    r = run_cli("export", "nam", nam_run, "-o", tmp_path / "y.nam")
    assert r.returncode == 2 and r.stderr.strip() == f"error: {tmp_path / 'y.nam'}: already exists; not overwriting (--force to replace it)"


# ---------------------------------------------------------------- refusals


def _assert_refused(out, run_dir, model, reason):
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip() == f"error: {run_dir}: exporter 'nam' cannot export model '{model}': {reason}"
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_residual_lstm_is_refused(trained_run, tmp_path):
    out = run_cli("export", "nam", trained_run, "-o", tmp_path / "m.nam")
    _assert_refused(out, trained_run, "wave-lstm",
                    "NAM's LSTM has no input residual (this run is y = x + Linear(h_t)); train with "
                    f"--set model.residual=false (exactly NAM's LSTM), or {HINT}")
    assert not (tmp_path / "m.nam").exists()


def test_cabinet_run_is_refused(tmp_path):
    run_dir = _train(tmp_path, CABINET)
    out = run_cli("export", "nam", run_dir, "-o", tmp_path / "m.nam")
    _assert_refused(out, run_dir, "wave-lstm",
                    f"NAM has no FIR stage for [model.cabinet]; train without the cabinet, e.g. {HINT} "
                    "(its 4093-sample receptive field holds a short cabinet response)")


@pytest.mark.parametrize("name,model,reason", [
    ("gru", WaveGRU(8, residual=False),
     f"NAM has no GRU; train wave-lstm with --set model.residual=false (exactly NAM's LSTM), or {HINT}"),
    ("wavenet", build(WaveNetConfig(name="wavenet", preset="nano", input_residual=False), SR),
     "fxforge's wavenet layout is not NAM's (a biased input rechannel, no input mixer, layer buffers that start "
     f"at zero); train {HINT}, which exports exactly"),
    ("wavenet", build(WaveNetConfig(name="wavenet", preset="nano"), SR),
     "fxforge's wavenet layout is not NAM's (a biased input rechannel, no input mixer, layer buffers that start "
     f"at zero, y = x + net(x)); train {HINT}, which exports exactly"),
])
def test_other_models_are_refused(name, model, reason):
    assert refuses(_fake_run(model, name)) == reason


def test_exportable_models_are_not_refused():
    assert refuses(_fake_run(build(WaveNetConfig(name="wavenet", preset="nam-wavenet"), SR))) is None
    assert refuses(_fake_run(WaveLSTM(8, residual=False), "wave-lstm")) is None
