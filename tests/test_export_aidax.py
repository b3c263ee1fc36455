"""`fxforge export aidax RUN -o model.json`: the AIDA-X / RTNeural model JSON, and `fxforge export all`.

The JSON is checked against `fxforge process` by a numpy re-implementation of RTNeural's
Keras-layout LSTM, GRU and Dense plus AIDA-X's in_skip and gains (written here from RTNeural's
and AIDA-X's sources, independent of the exporter). The check with RTNeural's own C++ parser
runs when an RTNeural checkout (FXFORGE_RTNEURAL_DIR) and a C++ compiler are here.
"""
from __future__ import annotations

import json
import os
import shutil
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import SR, TINY, write_config, write_pair
from conftest import run_cli as _run_cli

pytest.importorskip("fxforge_aidax", reason="pip install -e plugins/fxforge-aidax")

from fxforge_cabinet import CabinetConfig, CabinetFIR  # noqa: E402
from fxforge.data.demo import synth_di  # noqa: E402
from fxforge_aidax.plugin import refuses  # noqa: E402
from fxforge.builtins.wave_lstm.plugin import WaveGRU, WaveLSTM  # noqa: E402

def run_cli(*args, env=None, **kw):
    """The CLI on one torch thread: these are tiny models, and on a loaded machine threads only wait on each other."""
    return _run_cli(*args, env={"OMP_NUM_THREADS": "1", **(env or {})}, **kw)


SIZES = "8, 12, 16, 20, 24, 32, 40, 64, 80"
HINT = f"wave-lstm or gru with num_layers = 1 and hidden_size one of {SIZES}"


def _rtneural() -> str | None:
    for cand in (os.environ.get("FXFORGE_RTNEURAL_DIR"), "/work/ext/RTNeural"):
        if cand and Path(cand, "RTNeural", "RTNeural.h").is_file():
            return cand
    return None


# ---------------------------------------------------------------- RTNeural + AIDA-X in numpy


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def aidax_render(doc: dict, x: np.ndarray) -> np.ndarray:
    """What AIDA-X plays: in_gain, the recurrent layer, Dense, in_skip, out_gain (float64)."""
    rnn, dense = doc["layers"]
    assert doc["in_shape"][-1] == 1 and dense["type"] == "dense" and dense["shape"][-1] == 1
    h_size = rnn["shape"][-1]
    kernel, recurrent, bias = (np.array(w, dtype=np.float64) for w in rnn["weights"])
    d_kernel, d_bias = (np.array(w, dtype=np.float64) for w in dense["weights"])
    db = lambda g: 10 ** (g / 20) if g > -90 else 0.0  # noqa: E731  AIDA-X's DB_CO
    xs = x.astype(np.float64) * db(doc.get("in_gain", 0.0))
    h, c = np.zeros(h_size), np.zeros(h_size)
    y = np.empty_like(xs)
    for t, v in enumerate(xs):
        if rnn["type"] == "lstm":  # Keras gates i, f, c, o
            g = v * kernel[0] + h @ recurrent + bias
            i, f, cc, o = np.split(g, 4)
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(cc)
            h = _sigmoid(o) * np.tanh(c)
        else:  # Keras gates z, r, h, reset_after (bias rows: input, recurrent)
            a = v * kernel[0] + bias[0]
            b = h @ recurrent + bias[1]
            z = _sigmoid(a[:h_size] + b[:h_size])
            r = _sigmoid(a[h_size:2 * h_size] + b[h_size:2 * h_size])
            n = np.tanh(a[2 * h_size:] + r * b[2 * h_size:])
            h = (1 - z) * n + z * h
        y[t] = h @ d_kernel[:, 0] + d_bias[0]
    if doc.get("in_skip", 0):
        y = y + xs
    return y * db(doc.get("out_gain", 0.0))


# ---------------------------------------------------------------- runs


def _train(folder: Path, text: str) -> Path:
    write_pair(folder, seconds=4.0)
    write_config(folder, text)
    out = run_cli("run", "run.toml", "--set", "train.epochs=1", cwd=folder)
    assert out.returncode == 0, out.stderr
    (run_dir,) = (folder / "runs" / "tiny").iterdir()
    return run_dir


@pytest.fixture(scope="module")
def gru_run(tmp_path_factory) -> Path:
    """A tiny GRU without the residual (in_skip 0), trained through the CLI."""
    text = TINY.replace('name = "wave-lstm"\nhidden_size = 8', 'name = "gru"\nhidden_size = 8\nresidual = false')
    return _train(tmp_path_factory.mktemp("gru"), text)


def make_run_dir(root: Path, model, model_toml: str, name: str = "tiny") -> Path:
    """A run directory as `fxforge run` leaves it, without training (for shapes training would only slow)."""
    run = root / "runs" / name / "20260101-000000"
    run.mkdir(parents=True)
    (run / "config.toml").write_text(textwrap.dedent(f"""\
        name = "{name}"
        seed = 0
        [data]
        demo = "amp"
        [model]
        """) + model_toml + "\n")
    (run / "summary.json").write_text(json.dumps({"sample_rate": SR, "status": "finished", "test_esr": 0.01}))
    torch.save(model.state_dict(), run / "model.pt")
    return run


def _processed(run_dir: Path, x: np.ndarray, tmp_path: Path) -> np.ndarray:
    sf.write(tmp_path / "in.wav", x, SR, subtype="FLOAT")
    r = run_cli("process", run_dir, tmp_path / "in.wav", tmp_path / "out.wav", "--block", 512)
    assert r.returncode == 0, r.stderr
    return sf.read(tmp_path / "out.wav", dtype="float32")[0]


def _export(run_dir: Path, out: Path, *args, env=None) -> dict:
    r = run_cli("export", "aidax", run_dir, "-o", out, *args, env=env)
    assert r.returncode == 0, r.stderr
    assert f"wrote {out}" in r.stderr
    return json.loads(out.read_text())


# ---------------------------------------------------------------- the file plays as the run


@pytest.mark.parametrize("which", ["lstm", "gru"])
def test_json_plays_as_fxforge_process(which, trained_run, gru_run, tmp_path):
    run_dir = trained_run if which == "lstm" else gru_run
    doc = _export(run_dir, tmp_path / "m.json", "--name", "Tiny", "--author", "tests", "--based", "Acme Drive")
    rnn = doc["layers"][0]
    assert (rnn["type"], rnn["shape"], doc["in_skip"]) == (which, [None, None, 8], 1 if which == "lstm" else 0)
    assert (doc["in_gain"], doc["out_gain"]) == (0.0, 0.0)
    meta = doc["metadata"]
    assert (meta["name"], meta["author"], meta["based"], meta["samplerate"]) == ("Tiny", "tests", "Acme Drive", str(SR))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert meta["esr"] == summary["test_esr"] and meta["training"]["model"] == ("wave-lstm" if which == "lstm" else "gru")
    x = synth_di(1.0, 5)
    ours = _processed(run_dir, x, tmp_path)
    theirs = aidax_render(doc, x)
    assert np.max(np.abs(ours)) > 0.05  # a model that does something
    assert np.max(np.abs(ours - theirs)) < 1e-5


def test_gains_are_applied_as_aidax_does(trained_run, tmp_path):
    """in_gain before the model (and before in_skip adds the input), out_gain after both."""
    doc = _export(trained_run, tmp_path / "g.json", "--in-gain", "6", "--out-gain", "-3")
    assert (doc["in_gain"], doc["out_gain"]) == (6.0, -3.0)
    x = synth_di(0.5, 6)
    gained = _processed(trained_run, (x * 10 ** (6 / 20)).astype(np.float32), tmp_path) * 10 ** (-3 / 20)
    assert np.max(np.abs(gained - aidax_render(doc, x))) < 1e-5


@pytest.mark.skipif(_rtneural() is None or not (shutil.which("g++") or shutil.which("clang++")),
                    reason="needs an RTNeural checkout (FXFORGE_RTNEURAL_DIR; git clone "
                           "https://github.com/jatinchowdhury18/RTNeural) and a C++ compiler")
@pytest.mark.parametrize("which", ["lstm", "gru"])
def test_verify_with_rtneurals_parser(which, trained_run, gru_run, tmp_path):
    """--verify: RTNeural's parseJson (compiled once, then cached) renders the DI as AIDA-X does."""
    run_dir = trained_run if which == "lstm" else gru_run
    r = run_cli("export", "aidax", run_dir, "-o", tmp_path / "v.json", "--verify", "--in-gain", "2",
                env={"FXFORGE_RTNEURAL_DIR": _rtneural()}, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "from RTNeural's reset state: max abs error" in r.stderr
    assert "after AIDA-X's 2048-sample pre-roll: max abs error" in r.stderr
    assert "verify ok: RTNeural's parser matches the run within" in r.stderr


def test_verify_without_rtneural_says_why(trained_run, tmp_path):
    r = run_cli("export", "aidax", trained_run, "-o", tmp_path / "v.json", "--verify",
                env={"FXFORGE_RTNEURAL_DIR": str(tmp_path / "nowhere")})
    assert r.returncode == 0, r.stderr
    assert "verify skipped: it compiles RTNeural's parser and needs an RTNeural checkout" in r.stderr
    assert (tmp_path / "v.json").is_file()


# ---------------------------------------------------------------- options and refusals


def test_bad_options_are_one_line(trained_run, tmp_path):
    r = run_cli("export", "aidax", trained_run, "-o", tmp_path / "x.nam")
    assert r.returncode == 2 and r.stderr.startswith("error: fxforge export aidax: out: must end in .json (got "), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    (tmp_path / "y.json").write_text("{}")
    r = run_cli("export", "aidax", trained_run, "-o", tmp_path / "y.json")
    assert r.returncode == 2
    assert r.stderr.strip() == f"error: {tmp_path / 'y.json'}: already exists; not overwriting (--force to replace it)"
    assert (tmp_path / "y.json").read_text() == "{}"
    assert run_cli("export", "aidax", trained_run, "-o", tmp_path / "y.json", "--force").returncode == 0
    assert json.loads((tmp_path / "y.json").read_text())["layers"][0]["type"] == "lstm"


def test_cabinet_run_is_refused_in_one_line(tmp_path):
    torch.manual_seed(0)
    model = CabinetFIR(WaveLSTM(8), CabinetConfig(taps=64), SR)
    run_dir = make_run_dir(tmp_path, model, 'name = "wave-lstm"\nhidden_size = 8\n[model.cabinet]\ntaps = 64')
    r = run_cli("export", "aidax", run_dir, "-o", tmp_path / "m.json")
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == (
        f"error: {run_dir}: exporter 'aidax' cannot export model 'wave-lstm': AIDA-X's model has no FIR stage for "
        f"[model.cabinet] (AIDA-X loads the cabinet as a separate impulse response WAV); train {HINT} without "
        "[model.cabinet], or export this run as a plugin with `fxforge export juce`")
    assert not (tmp_path / "m.json").exists()


def _fake_run(model, name):
    return SimpleNamespace(model=model.eval(), sample_rate=SR, summary={},
                           config=SimpleNamespace(name="x", model=SimpleNamespace(name=name, cabinet=None)))


@pytest.mark.parametrize("name,model,reason", [
    ("wave-lstm", WaveLSTM(10),
     f"AIDA-X compiles LSTM hidden sizes {SIZES} and this run has 10; train with --set model.hidden_size=12 "
     "(the closest), or export it as a plugin with `fxforge export juce`"),
    ("gru", WaveGRU(100, residual=False),
     f"AIDA-X compiles GRU hidden sizes {SIZES} and this run has 100; train with --set model.hidden_size=80 "
     "(the closest), or export it as a plugin with `fxforge export juce`"),
    ("wave-lstm", WaveLSTM(16, num_layers=2),
     "AIDA-X compiles one LSTM layer and this run has 2; train with --set model.num_layers=1 (and hidden_size up "
     "to 80 for the capacity), or export it as a plugin with `fxforge export juce`"),
])
def test_shapes_aidax_does_not_compile_are_refused(name, model, reason):
    assert refuses(_fake_run(model, name)) == reason


def test_wavenet_is_refused():
    from fxforge.builtins.wavenet.plugin import WaveNetConfig, build

    reason = refuses(_fake_run(build(WaveNetConfig(name="wavenet", preset="nano"), SR), "wavenet"))
    assert reason == (f"AIDA-X plays one LSTM or GRU layer into Dense(H, 1) and model 'wavenet' is neither; "
                      f"train {HINT} (a wavenet exports as a plugin with `fxforge export juce`)")


@pytest.mark.parametrize("model", [WaveLSTM(8), WaveGRU(80, residual=False), WaveLSTM(64, residual=False)])
def test_every_aidax_shape_is_accepted(model):
    assert refuses(_fake_run(model, "gru" if isinstance(model, WaveGRU) else "wave-lstm")) is None


# ---------------------------------------------------------------- export all


def test_export_all_writes_each_exact_format_and_says_what_it_skipped(gru_run, tmp_path):
    out = tmp_path / "all"
    r = run_cli("export", "all", gru_run, "--out", out)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert f"aidax: wrote {out / 'tiny.json'}" in lines
    assert f"juce: wrote {out / 'tiny-juce'}" in lines
    nam = [line for line in lines if line.startswith("nam: ")]
    assert nam == ["nam: skipped: NAM has no GRU; train wave-lstm with --set model.residual=false (exactly NAM's "
                   "LSTM), or the wavenet with preset = \"nam-wavenet\" (--set model.preset=nam-wavenet), NAM's "
                   "standard WaveNet"]
    assert json.loads((out / "tiny.json").read_text())["layers"][0]["type"] == "gru"
    assert (out / "tiny-juce" / "CMakeLists.txt").is_file()
    assert not list(out.glob("*.nam"))

    before = (out / "tiny.json").read_bytes()
    r = run_cli("export", "all", gru_run, "--out", out)  # again: the existing file is kept
    assert r.returncode == 1, r.stderr
    assert f"aidax: failed: {out / 'tiny.json'}: already exists; not overwriting (--force to replace it)" in r.stderr
    assert (out / "tiny.json").read_bytes() == before
    assert run_cli("export", "all", gru_run, "--out", out, "--force").returncode == 0


def test_export_all_writes_nam_where_it_is_exact(tmp_path):
    pytest.importorskip("fxforge_nam")
    torch.manual_seed(0)
    run_dir = make_run_dir(tmp_path, WaveLSTM(12, residual=False),
                           'name = "wave-lstm"\nhidden_size = 12\nresidual = false', name="clean-amp")
    out = tmp_path / "all"
    r = run_cli("export", "all", run_dir, "--out", out)
    assert r.returncode == 0, r.stderr
    assert {p.name for p in out.iterdir()} == {"clean-amp.nam", "clean-amp.json", "clean-amp-juce"}
    assert json.loads((out / "clean-amp.nam").read_text())["architecture"] == "LSTM"
    assert not [line for line in r.stderr.splitlines() if ": skipped:" in line]


def test_export_all_skips_every_format_for_a_cabinet_run(tmp_path):
    torch.manual_seed(0)
    model = CabinetFIR(WaveLSTM(8), CabinetConfig(taps=64), SR)
    run_dir = make_run_dir(tmp_path, model, 'name = "wave-lstm"\nhidden_size = 8\n[model.cabinet]\ntaps = 64')
    r = run_cli("export", "all", run_dir, "--out", tmp_path / "all")
    assert r.returncode == 0, r.stderr
    assert "aidax: skipped: AIDA-X's model has no FIR stage for [model.cabinet]" in r.stderr
    assert f"juce: wrote {tmp_path / 'all' / 'tiny-juce'}" in r.stderr  # the plugin holds the FIR


def test_export_all_options_are_checked(trained_run, tmp_path):
    r = run_cli("export", "all", trained_run)
    assert r.returncode == 2 and r.stderr.strip() == "error: fxforge export all: --out DIR is required"
    r = run_cli("export", "all", trained_run, "--out", tmp_path, "--name", "x")
    assert r.returncode == 2 and r.stderr.strip() == (
        "error: fxforge export all: unknown option --name (it takes --out DIR, --force, --verify; "
        "run one exporter for its own options)")


def test_an_exporter_cannot_take_the_name_all():
    from fxforge import ExporterSpec, hookimpl
    from fxforge.registry import Registry
    from pydantic import BaseModel

    class Plugin:
        @hookimpl
        def fxforge_register_exporters(self, register):
            register(ExporterSpec("all", "x", BaseModel, lambda run, cfg: None))

    reg = Registry()
    reg.add_plugin(Plugin(), "evil")
    assert "all" not in reg.names("exporter")
    assert [str(p) for p in reg.problems] == [
        "plugin package 'evil': exporter name 'all' is taken by `fxforge export all`; skipped"]


# ---------------------------------------------------------------- knobs (in_shape 2 and 3)


@pytest.mark.skipif(_rtneural() is None or not (shutil.which("g++") or shutil.which("clang++")),
                    reason="RTNeural's parser check needs FXFORGE_RTNEURAL_DIR (an RTNeural checkout) and a C++ compiler")
@pytest.mark.parametrize("cls,name,knobs", [(WaveLSTM, "wave-lstm", 1), (WaveGRU, "gru", 2)])
def test_rtneurals_parser_plays_a_conditioned_export_with_moving_knobs(tmp_path, cls, name, knobs):
    """A concat run's AIDA-X JSON (in_shape 2 or 3) through RTNeural's own parser, fed
    [x, knob...] per sample as AIDA-X's applyModel() does, the knobs moving, against PyTorch."""
    from fxforge.nn.stream import process
    from fxforge_aidax.rtneural import AIDAX_PREBUFFER, build_check, find_compiler, render

    torch.manual_seed(0)
    model = cls(8, 1, knobs=knobs, knob_defaults=[0.3] * knobs, conditioning="concat")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    defaults = ", ".join(["0.3"] * knobs)
    run = make_run_dir(tmp_path, model.eval(), f'name = "{name}"\nhidden_size = 8\nknobs = {knobs}\n'
                                               f'knob_defaults = [{defaults}]\nconditioning = "concat"')
    summary = json.loads((run / "summary.json").read_text())
    summary["knobs"] = {"knobs": [{"name": f"k{j}", "min": 0.0, "max": 1.0, "default": 0.5} for j in range(knobs)]}
    (run / "summary.json").write_text(json.dumps(summary))
    from fxforge import load_run
    from fxforge_aidax.plugin import AidaxConfig, aidax_dict

    # The exporter's document, written in-process (the CLI path is test_knobs's aidax test).
    doc = aidax_dict(load_run(run), AidaxConfig(out=tmp_path / "m.json"))
    (tmp_path / "m.json").write_text(json.dumps(doc))
    assert doc["in_shape"][-1] == 1 + knobs
    exe = build_check(Path(_rtneural()), find_compiler())
    n = 6000
    x = (0.4 * synth_di(n / SR, 7)[:n] / max(1e-9, np.abs(synth_di(n / SR, 7)[:n]).max())).astype(np.float32)
    k = np.stack([np.linspace(0.0, 1.0, n), np.where(np.arange(n) < n // 2, 0.9, 0.2)][:knobs], axis=1).astype(np.float32)
    with torch.no_grad():
        ref = process(model, torch.from_numpy(np.concatenate([x.reshape(-1, 1), k], axis=1))).numpy()
        still = process(model, torch.from_numpy(np.concatenate([x.reshape(-1, 1), np.zeros_like(k)], axis=1))).numpy()
    assert np.abs(ref - still).max() > 1e-2  # the knobs change the sound
    theirs = render(exe, tmp_path / "m.json", x, 0, knobs=k)
    assert np.abs(theirs - ref).max() < 1e-4
    # AIDA-X's pre-roll (silence at the first sample's knobs), then the same audio.
    pre = np.concatenate([np.zeros((AIDAX_PREBUFFER, 1 + knobs), np.float32),
                          np.concatenate([x.reshape(-1, 1), k], axis=1)])
    pre[:AIDAX_PREBUFFER, 1:] = k[0]
    with torch.no_grad():
        ref_pre = process(model, torch.from_numpy(pre)).numpy()[AIDAX_PREBUFFER:]
    assert np.abs(render(exe, tmp_path / "m.json", x, AIDAX_PREBUFFER, knobs=k) - ref_pre).max() < 1e-4
    with pytest.raises(Exception, match="knob"):  # a conditioned model without its knob values
        render(exe, tmp_path / "m.json", x, 0)
