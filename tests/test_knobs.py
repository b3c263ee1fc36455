"""Knob capture (#19): a conditioned model trained on a captures manifest, end to end through
the CLI: it trains on every setting but the held-out one, renders any setting with
`process --knob` exactly as the model does in PyTorch, scores each setting with `eval`
(held-out ones marked), resumes exactly, and refuses bad knobs and holdouts in one line."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy import signal

from conftest import SR, TINY, dry, interrupt_run, run_cli, write_config

SETTINGS = (0.2, 0.5, 0.8)  # 0.5 is held out: two settings train

KNOBS = TINY.replace('''input = "di.wav"
target = "amp.wav"''', '''captures = "captures.toml"
holdout = [{drive = 0.5}]''').replace('name = "tiny"', 'name = "knobs"').replace(
    "hidden_size = 8", 'hidden_size = 8\nconditioning = "film"')


def drive_pedal(x: np.ndarray, drive: float) -> np.ndarray:
    """A drive knob: the gain into the soft clip, then a tone low-pass."""
    b, a = signal.butter(1, 3000, fs=SR)
    return (0.5 * signal.lfilter(b, a, np.tanh((2 + 10 * drive) * x))).astype(np.float32)


def write_captures(folder, settings=SETTINGS, seconds=6.0):
    x = dry(seconds)
    sf.write(folder / "dry.wav", x, SR, subtype="PCM_24")
    lines = ["version = 1", 'input = "dry.wav"', "", "[knobs.drive]", "min = 0.0", "max = 1.0", "default = 0.5", ""]
    for d in settings:
        sf.write(folder / f"drive_{d}.wav", drive_pedal(x, d), SR, subtype="PCM_24")
        lines += ["[[targets]]", f'file = "drive_{d}.wav"', f"knobs = {{ drive = {d} }}", "latency = 0", ""]
    (folder / "captures.toml").write_text("\n".join(lines))


@pytest.fixture
def knobdir(tmp_path):
    write_captures(tmp_path)
    write_config(tmp_path, KNOBS)
    return tmp_path


def train_knob_run(folder, config: str = KNOBS):
    """A captures run trained through the CLI in folder: (its run folder, what it printed)."""
    write_captures(folder)
    write_config(folder, config)
    out = run_cli("run", "run.toml", cwd=folder)
    assert out.returncode == 0, out.stderr
    (run_dir,) = (folder / "runs" / "knobs").iterdir()
    return run_dir, out.stdout


@pytest.fixture(scope="module")
def knob_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("knobs")
    run_dir, stdout = train_knob_run(folder)
    return folder, run_dir, stdout


def test_trains_on_every_setting_but_the_held_out_one_and_reports_each(knob_run):
    folder, run_dir, stdout = knob_run
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["knobs"]["knobs"] == [{"name": "drive", "min": 0.0, "max": 1.0, "default": 0.5}]
    rows = {r["knobs"]["drive"]: r for r in s["settings"]}
    assert sorted(rows) == list(SETTINGS)
    assert [rows[d]["held_out"] for d in SETTINGS] == [False, True, False]
    assert all(np.isfinite(r["esr"]) and np.isfinite(r["esr_pre"]) for r in rows.values())
    assert "test ESR at drive = 0.5" in stdout and "held out" in stdout
    assert "knobs = 1" in (run_dir / "config.toml").read_text()  # the core filled it in


def test_process_renders_each_knob_value_as_the_model_does(knob_run):
    from fxforge import load_run

    folder, run_dir, _ = knob_run
    x = sf.read(folder / "dry.wav", dtype="float32")[0][: SR // 2]
    sf.write(folder / "clip.wav", x, SR, subtype="FLOAT")
    model = load_run(run_dir).model
    outs = {}
    for arg, drive in (("drive=0.2", 0.2), ("drive=0.9", 0.9), (None, 0.5)):
        name = f"out_{drive}.wav"
        out = run_cli("process", run_dir, "clip.wav", name, *(["--knob", arg] if arg else []), cwd=folder)
        assert out.returncode == 0, out.stderr
        assert f"drive = {drive:g}" in out.stdout
        outs[drive] = sf.read(folder / name, dtype="float32")[0]
        inp = torch.stack([torch.from_numpy(x), torch.full((len(x),), drive)], dim=-1).unsqueeze(0)
        with torch.no_grad():
            want = model(inp, model.initial_state(1))[0].reshape(-1).numpy()
        assert np.max(np.abs(outs[drive] - want)) < 1e-5
    assert np.max(np.abs(outs[0.2] - outs[0.9])) > 1e-3  # the knob does something


def test_eval_scores_every_setting_marking_the_held_out_one(knob_run):
    folder, run_dir, _ = knob_run
    out = run_cli("eval", run_dir, "--captures", "captures.toml", "--json", cwd=folder)
    assert out.returncode == 0, out.stderr
    rows = {r["knobs"]["drive"]: r for r in json.loads(out.stdout)}
    assert [rows[d]["role"] for d in SETTINGS] == ["trained", "held out", "trained"]
    table = run_cli("eval", run_dir, "--captures", "captures.toml", cwd=folder).stdout
    assert "held out" in next(line for line in table.splitlines() if "drive = 0.5" in line)
    one = run_cli("eval", run_dir, "--input", "dry.wav", "--target", "drive_0.8.wav", "--knob", "drive=0.8", "--json",
                  cwd=folder)
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout)["esr"] == pytest.approx(rows[0.8]["esr"], rel=1e-6)


@pytest.mark.parametrize("args,message", [
    (["--knob", "tone=0.3"], "has no knob 'tone' (its knobs: drive)"),
    (["--knob", "drive=1.5"], "--knob drive=1.5: outside the knob's range 0..1"),
    (["--knob", "drive"], "expected name=value"),
])
def test_a_bad_knob_is_one_line(knob_run, args, message):
    folder, run_dir, _ = knob_run
    out = run_cli("process", run_dir, "dry.wav", "o.wav", *args, cwd=folder)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and message in out.stderr and "Traceback" not in out.stderr
    assert not (folder / "o.wav").exists()


def test_knob_on_a_run_without_knobs_is_one_line(trained_run, tmp_path):
    sf.write(tmp_path / "x.wav", dry(0.5), SR)
    out = run_cli("process", trained_run, tmp_path / "x.wav", tmp_path / "o.wav", "--knob", "drive=0.5")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "was trained on one setting and has no knobs" in out.stderr


@pytest.mark.parametrize("holdout,message", [
    ("[{drive = 0.3}]", "run.toml: data.holdout[0]: no setting drive = 0.3 in captures.toml (its settings: "
                        "drive = 0.2; drive = 0.5; drive = 0.8)"),
    ("[{tone = 0.5}]", "run.toml: data.holdout[0]: captures.toml has no knob 'tone' (its knobs: drive)"),
    ("[{drive = 0.2}, {drive = 0.5}, {drive = 0.8}]", "holds out every setting of captures.toml"),
])
def test_a_bad_holdout_is_refused_before_the_run_starts(knobdir, holdout, message):
    out = run_cli("run", "run.toml", "--set", f"data.holdout={holdout}", cwd=knobdir)
    assert out.returncode == 2
    assert message in out.stderr and out.stderr.count("\n") == 1, out.stderr
    assert not (knobdir / "runs").exists()


def test_a_model_without_knob_inputs_is_refused(knobdir):
    out = run_cli("run", "run.toml", "--set", 'model={name = "stft-lstm", hidden_size = 8, n_fft = 64}', cwd=knobdir)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "model 'stft-lstm' takes no knob inputs" in out.stderr


def test_holdout_without_captures_is_refused(workdir):
    out = run_cli("run", "run.toml", "--set", "data.holdout=[{drive = 0.5}]", cwd=workdir)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "holdout names settings of data.captures" in out.stderr


def test_interrupted_conditioned_run_resumes_to_the_same_weights(knobdir):
    sets = ["--set", "train.epochs=5"]
    assert run_cli("run", "run.toml", *sets, "--runs-dir", "whole", cwd=knobdir).returncode == 0
    cut, _ = interrupt_run(knobdir, *sets)
    out = run_cli("run", "--resume", cut.relative_to(knobdir), cwd=knobdir)
    assert out.returncode == 0, out.stderr
    (whole,) = (knobdir / "whole" / "knobs").iterdir()
    a = torch.load(whole / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(cut / "checkpoints" / "last.pt", weights_only=True)
    assert a["progress"]["step"] == b["progress"]["step"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    sa, sb = (json.loads((p / "summary.json").read_text())["settings"] for p in (whole, cut))
    assert sa == sb


def _rtneural_lstm(doc: dict, x: np.ndarray) -> np.ndarray:
    """AIDA-X's conditioned model from its JSON alone (Keras layout, gates i, f, c, o), as
    RTNeural runs it: the in_shape inputs per sample, Dense, in_skip adding the audio."""
    (kernel, recurrent, bias), (dense_w, dense_b) = (np.array(w, dtype=object) for w in
                                                     (doc["layers"][0]["weights"], doc["layers"][1]["weights"]))
    kernel, recurrent, bias = (np.asarray(w, np.float64) for w in (kernel, recurrent, bias))
    dense_w, dense_b = np.asarray(dense_w, np.float64), np.asarray(dense_b, np.float64)
    hidden = recurrent.shape[0]
    h, c, out = np.zeros(hidden), np.zeros(hidden), []
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    for row in x.astype(np.float64):
        g = row @ kernel + h @ recurrent + bias
        i, f, cc, o = (g[k * hidden:(k + 1) * hidden] for k in range(4))
        c = sig(f) * c + sig(i) * np.tanh(cc)
        h = sig(o) * np.tanh(c)
        out.append(float(h @ dense_w[:, 0] + dense_b[0]) + (row[0] if doc["in_skip"] else 0.0))
    return np.array(out)


@pytest.fixture(scope="module")
def concat_run(tmp_path_factory):
    """(folder, run) of a 1-epoch concat-conditioned LSTM on the drive grid."""
    folder = tmp_path_factory.mktemp("concat")
    write_captures(folder)
    write_config(folder, KNOBS)
    out = run_cli("run", "run.toml", "--set", 'model.conditioning="concat"', "--set", "train.epochs=1", cwd=folder)
    assert out.returncode == 0, out.stderr
    (run_dir,) = (folder / "runs" / "knobs").iterdir()
    return folder, run_dir


def test_aidax_exports_a_concat_run_in_its_two_input_layout_and_refuses_film(knob_run, concat_run):
    from fxforge import load_run

    knobdir, run_dir = concat_run
    exported = run_cli("export", "aidax", run_dir, "-o", knobdir / "m.json", cwd=knobdir)
    assert exported.returncode == 0, exported.stderr
    doc = json.loads((knobdir / "m.json").read_text())
    assert doc["in_shape"] == [None, None, 2] and doc["in_skip"] == 1
    assert doc["metadata"]["knobs"] == [{"name": "drive", "min": 0.0, "max": 1.0, "default": 0.5}]
    model = load_run(run_dir).model
    audio = dry(0.05, seed=3)
    knob = np.linspace(0.1, 0.9, len(audio), dtype=np.float32)  # the knob moving while it plays
    x = np.stack([audio, knob], axis=-1)
    with torch.no_grad():
        ours = model(torch.from_numpy(x).unsqueeze(0), model.initial_state(1))[0].reshape(-1).numpy()
    assert np.max(np.abs(_rtneural_lstm(doc, x) - ours)) < 1e-5

    _, film_run, _ = knob_run
    refused = run_cli("export", "aidax", film_run, "-o", knobdir / "f.json", cwd=knobdir)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert 'conditioning is film; train with --set model.conditioning="concat"' in refused.stderr
    assert not (knobdir / "f.json").exists()


def _rtneural_dir():
    import os
    from pathlib import Path

    for cand in (os.environ.get("FXFORGE_RTNEURAL_DIR"), "/work/ext/RTNeural"):
        if cand and Path(cand, "RTNeural", "RTNeural.h").is_file() and Path(cand, "modules", "Eigen").is_dir():
            return cand
    return None


@pytest.mark.skipif(_rtneural_dir() is None, reason="needs an RTNeural checkout (FXFORGE_RTNEURAL_DIR; git clone "
                    "https://github.com/jatinchowdhury18/RTNeural) and a C++ compiler")
def test_aidax_verify_plays_a_concat_run_through_rtneural_at_knob_positions_and_moving(concat_run):
    folder, run_dir = concat_run
    out = run_cli("export", "aidax", run_dir, "-o", folder / "v.json", "--verify", cwd=folder,
                  env={"FXFORGE_RTNEURAL_DIR": _rtneural_dir()}, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "verify ok" in out.stderr, out.stderr
    for label in ("knobs at default", "knobs at minimum", "knobs at maximum", "drive moving min -> max"):
        assert out.stderr.count(label) == 2, out.stderr  # from reset and after AIDA-X's pre-roll


def test_check_and_report_of_a_captures_run_play_its_primary_setting(knob_run):
    folder, run_dir, _ = knob_run
    out = run_cli("check", run_dir, "--json", cwd=folder)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["probes"]
    out = run_cli("report", run_dir, cwd=folder)
    assert out.returncode == 0, out.stderr
    assert (run_dir / "report.html").is_file()


def _settings_of(folder, lines, sets=()):
    from fxforge.train.conditioned import Settings
    from fxforge.config import load_config
    from fxforge.knobs import read_captures

    (folder / "captures.toml").write_text("\n".join(lines))
    write_config(folder, KNOBS.replace("holdout = [{drive = 0.5}]", ""))
    cfg = load_config(folder / "run.toml", [f'data.captures="{folder / "captures.toml"}"', *sets])
    return Settings(read_captures(cfg.data, cfg.source), cfg.data, loss=cfg.train.loss)


def test_automatically_aligned_settings_share_the_clearest_settings_latency(tmp_path):
    """One input through one rig: every setting measured by data.latency = "auto" is aligned by
    the latency of the one whose response stands clearest out of the noise (here the clean one;
    the noisy one measures its own delay, 6 samples later); a setting naming its own keeps it."""
    x = dry(6.0)
    sf.write(tmp_path / "dry.wav", x, SR, subtype="FLOAT")
    delay = lambda v, n: np.concatenate([np.zeros(n, np.float32), v[:-n]])  # noqa: E731
    rng = np.random.default_rng(1)
    sf.write(tmp_path / "clean.wav", delay(drive_pedal(x, 0.0), 40), SR, subtype="FLOAT")
    noisy = delay(drive_pedal(x, 1.0), 46)
    sf.write(tmp_path / "noisy.wav", noisy + 0.3 * noisy.std() * rng.standard_normal(len(x)).astype(np.float32),
             SR, subtype="FLOAT")
    sf.write(tmp_path / "own.wav", delay(drive_pedal(x, 0.5), 40), SR, subtype="FLOAT")
    lines = ["version = 1", 'input = "dry.wav"', "", "[knobs.drive]", "min = 0.0", "max = 1.0", ""]
    for d, f, own in ((0.0, "clean", None), (1.0, "noisy", None), (0.5, "own", 7)):
        lines += ["[[targets]]", f'file = "{f}.wav"', f"knobs = {{ drive = {d} }}",
                  *([f"latency = {own}"] if own is not None else []), ""]
    settings = _settings_of(tmp_path, lines)
    by = {ls.setting.knobs["drive"]: ls.pair for ls in settings.loaded}
    lag = by[0.0].latency  # the clean setting's own measurement (a few samples early at most)
    assert 34 <= lag <= 40 and by[1.0].latency == lag and by[0.5].latency == 7
    assert by[1.0].alignment["measured_latency"] > lag and by[1.0].alignment["shared_from"] == "drive = 0"
    assert any("as measured on drive = 0" in n for n in by[1.0].notes)


def _two_levels(folder, sets=()):
    """Two settings of one pedal, the second 8x louder (the energy weights differ by 8)."""
    x = dry(6.0)
    sf.write(folder / "dry.wav", x, SR, subtype="FLOAT")
    quiet = drive_pedal(x, 0.3)
    sf.write(folder / "quiet.wav", quiet, SR, subtype="FLOAT")
    sf.write(folder / "loud.wav", 8 * quiet, SR, subtype="FLOAT")
    lines = ["version = 1", 'input = "dry.wav"', "", "[knobs.level]", "min = 0.0", "max = 1.0", ""]
    for d, f in ((0.0, "quiet"), (1.0, "loud")):
        lines += ["[[targets]]", f'file = "{f}.wav"', f"knobs = {{ level = {d} }}", "latency = 0", ""]
    return _settings_of(folder, lines, sets)


def test_each_setting_weighs_the_same_in_the_loss(tmp_path):
    """A setting 8x louder than another gets 1/8 the weight: weighted, their energies match."""
    settings = _two_levels(tmp_path)
    xb = torch.zeros(3, 10, 2)
    xb[1, :, 1] = 1.0
    w = settings.example_weights(xb).reshape(-1)
    assert w[0] == pytest.approx(w[2]) and w[0] / w[1] == pytest.approx(8.0, rel=1e-4)
    energy = [float((ls.split["train"][1].double() ** 2).mean()) for ls in settings.trained]
    assert energy[0] * float(w[0]) ** 2 == pytest.approx(energy[1] * float(w[1]) ** 2, rel=1e-4)


@pytest.mark.parametrize("balance", ["geometric", "arithmetic"])
def test_a_setting_the_model_fits_worse_weighs_less_under_geometric_balance(tmp_path, balance):
    """data.balance = "geometric": a setting whose running ESR is 4x another's gets half the weight
    (against their geometric mean: the loss is quadratic in it, so a quarter of the pull), and the
    settings' mean log ESR falls; no setting's pull leaves 4x (or 1/4) what its energy gives it;
    "arithmetic" keeps the energy weights."""
    settings = _two_levels(tmp_path, [f'data.balance="{balance}"', "train.loss.esr=1.0", "train.loss.esr_pre=0.0"])
    xb = torch.zeros(2, 10, 2)
    xb[1, :, 1] = 1.0
    which = settings.example_settings(xb)
    assert which.tolist() == [0, 1]
    energy = settings.example_weights(xb, which).reshape(-1)
    y = torch.randn(1, 64, 1).expand(2, -1, -1).clone()
    err = torch.randn(64, 1)
    y_hat = y.clone()
    y_hat[0] += 0.2 * err  # setting 0 fitted 4x worse (in ESR) than setting 1
    y_hat[1] += 0.1 * err
    for _ in range(50):
        settings.observe(which, y_hat, y)
    w = settings.example_weights(xb, which).reshape(-1)
    if balance == "arithmetic":
        assert torch.equal(w, energy)
        return
    esr = settings.running_esr()
    assert float(esr[0] / esr[1]) == pytest.approx(4.0, rel=1e-4)
    ratio = (w / energy).tolist()
    assert ratio[0] == pytest.approx(float((esr[0] / esr[1]) ** -0.25), rel=1e-4)  # against the geometric mean
    assert ratio[1] == pytest.approx(float((esr[1] / esr[0]) ** -0.25), rel=1e-4)
    y_hat[0] = y[0] + 50.0 * torch.randn(64, 1)  # far worse: the pull clamped at 1/4 and 4x (weights 1/2, 2)
    for _ in range(500):
        settings.observe(which, y_hat, y)
    ratio = (settings.example_weights(xb, which).reshape(-1) / energy).tolist()
    assert ratio == pytest.approx([0.5, 2.0], rel=1e-4)
    y_hat[0] = float("nan")  # a diverging step leaves the running ESR alone
    before = settings.running_esr().clone()
    settings.observe(which, y_hat, y)
    assert torch.equal(settings.running_esr(), before)
