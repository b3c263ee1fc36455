"""Training end to end through the CLI on seconds of generated audio."""
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import SR, TINY, dry, effect, interrupt_run, run_cli, write_config


def esr(y_hat, y):
    return float(np.sum((y - y_hat) ** 2) / np.sum(y**2))


def test_run_writes_directory_and_summary(trained_run):
    for name in ("config.toml", "summary.json", "metrics.jsonl", "model.pt", "checkpoints/last.pt",
                 "plots/loss.png", "plots/waveform.png", "plots/spectrum.png"):
        assert (trained_run / name).is_file(), name
    s = json.loads((trained_run / "summary.json").read_text())
    assert s["status"] == "finished" and s["model"] == "wave-lstm" and s["sample_rate"] == SR
    assert s["parameters"] == 4 * (8 * 1 + 8 * 8 + 2 * 8) + 8 + 1
    # The model must beat doing nothing (output = input) on held-out audio.
    x, _ = sf.read(trained_run.parent.parent.parent / "di.wav", dtype="float32")
    y = effect(x)
    test = slice(int(len(x) * 0.85), None)
    assert s["test_esr"] < 0.5 * esr(x[test], y[test])
    rows = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]


def test_resolved_config_reruns(trained_run, tmp_path):
    """config.toml holds every default written out, and is itself a valid run file."""
    text = (trained_run / "config.toml").read_text()
    assert "hidden_size = 8" in text and "tbptt = 1024" in text and "pre_emphasis = 0.95" in text
    from fxforge import load_config

    cfg = load_config(trained_run / "config.toml")
    assert cfg.model.hidden_size == 8 and cfg.train.epochs == 2


def test_a_demo_recipe_trains_on_your_recordings_from_the_command_line(workdir):
    """--set data.input/target replaces the recipe's demo capture (no file to edit)."""
    from pathlib import Path

    recipe = Path(__file__).resolve().parent.parent / "configs" / "wave_lstm.toml"
    out = run_cli("run", recipe, "--set", "data.input=di.wav", "--set", "data.target=amp.wav",
                  "--set", "train.epochs=1", "--set", "train.time_budget=5s", cwd=workdir)
    assert out.returncode == 0, out.stderr
    (run_dir,) = (workdir / "runs" / "wave-lstm-demo").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and not any("demo" in n for n in summary["notes"])
    assert "demo =" not in (run_dir / "config.toml").read_text()


def test_new_run_never_overwrites(workdir):
    for _ in range(2):
        assert run_cli("run", "run.toml", "--set", "train.epochs=1", cwd=workdir).returncode == 0
    assert len(list((workdir / "runs" / "tiny").iterdir())) == 2


@pytest.mark.parametrize("block", [1, 17, 256, 4096])
def test_process_blocks_equal_whole_file(trained_run, tmp_path, block):
    x = dry(1.0, seed=3)
    sf.write(tmp_path / "in.wav", x, SR, subtype="FLOAT")
    out = run_cli("process", trained_run, tmp_path / "in.wav", tmp_path / "out.wav", "--block", block)
    assert out.returncode == 0, out.stderr
    y_block, sr = sf.read(tmp_path / "out.wav", dtype="float32")
    from fxforge import load_run

    run = load_run(trained_run)
    with torch.no_grad():
        whole, _ = run.model(torch.from_numpy(x).reshape(1, -1, 1), run.model.initial_state(1))
    assert sr == SR and y_block.shape == x.shape
    assert np.max(np.abs(y_block - whole.reshape(-1).numpy())) < 1e-5


def test_eval_scores_another_pair(trained_run, tmp_path):
    x = dry(2.0, seed=5)
    sf.write(tmp_path / "a.wav", x, SR)
    sf.write(tmp_path / "b.wav", effect(x), SR)
    out = run_cli("eval", trained_run, "--input", tmp_path / "a.wav", "--target", tmp_path / "b.wav", "--json")
    assert out.returncode == 0, out.stderr
    m = json.loads(out.stdout)
    assert 0 < m["esr"] < esr(x, effect(x))


@pytest.mark.parametrize("cabinet", [False, True], ids=["lstm", "lstm+least-squares-cabinet"])
def test_interrupted_run_resumes_to_the_same_weights(workdir, cabinet):
    """Ctrl-C saves and exits 130; --resume then ends with exactly the weights of
    a run that was never interrupted (CPU, fixed seed). With the cabinet stage the
    running least-squares statistics resume too (short chunks: past its first solve)."""
    sets = ["--set", "train.epochs=6"]
    if cabinet:
        write_config(workdir, TINY.replace("hidden_size = 8", "hidden_size = 8\n[model.cabinet]\ntaps = 64"))
        sets += ["--set", "train.tbptt=256"]
    assert run_cli("run", "run.toml", *sets, "--runs-dir", "whole", cwd=workdir).returncode == 0
    cut, err = interrupt_run(workdir, *sets)
    assert f"Resume with: fxforge run --resume {cut.relative_to(workdir)}" in err
    assert json.loads((cut / "summary.json").read_text())["status"] == "interrupted"
    out = run_cli("run", "--resume", cut.relative_to(workdir), cwd=workdir)
    assert out.returncode == 0, out.stderr
    (whole,) = (workdir / "whole" / "tiny").iterdir()
    a = torch.load(whole / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(cut / "checkpoints" / "last.pt", weights_only=True)
    assert a["progress"]["step"] == b["progress"]["step"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    if cabinet:
        assert int(a["model"]["ls_steps"]) > 400  # the FIR was re-solved, many times
    assert (whole / "metrics.jsonl").read_text().count("\n") == (cut / "metrics.jsonl").read_text().count("\n")


def test_resume_of_a_finished_run_is_refused(trained_run):
    out = run_cli("run", "--resume", trained_run)
    assert out.returncode == 2
    assert out.stderr.strip() == (f"error: {trained_run}: this run has finished; start a new one, "
                                  f"or use --checkpoint {trained_run / 'model.pt'}")


def test_checkpoint_starts_from_saved_weights(trained_run, workdir):
    out = run_cli("run", "run.toml", "--checkpoint", trained_run / "model.pt", "--set", "train.epochs=1", cwd=workdir)
    assert out.returncode == 0, out.stderr
    (run_dir,) = (workdir / "runs" / "tiny").iterdir()
    first = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])
    fresh = json.loads((trained_run / "metrics.jsonl").read_text().splitlines()[0])
    assert first["val_esr"] < fresh["val_esr"]  # it starts where the trained run ended, not from scratch


def test_the_core_alone_trains_its_own_default_config(workdir):
    """With every optional package (plugins/: the STFT LSTM, the cabinet, the exporters)
    disabled, the built-ins alone resolve and train a wave-lstm run: the segments provider,
    the cosine scheduler and the auto device are the core's own default plugins."""
    import json

    optional = "fxforge-aidax,fxforge-cabinet,fxforge-juce,fxforge-nam,fxforge-stft-lstm"
    env = {"FXFORGE_DISABLE": optional}
    listed = run_cli("plugins", "--json", cwd=workdir, env=env)
    assert listed.returncode == 0, listed.stderr
    packages = {p["package"] for p in json.loads(listed.stdout)["plugins"]}
    assert not packages & set(optional.split(",")), packages
    out = run_cli("run", "run.toml", "--set", "train.epochs=1", cwd=workdir, env=env)
    assert out.returncode == 0, out.stderr
    assert "warning" not in out.stderr
    (summary,) = workdir.glob("runs/tiny/*/summary.json")
    assert json.loads(summary.read_text())["status"] == "finished"
