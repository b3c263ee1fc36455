"""`fxforge train DI TARGET`: the default recipe for a user's own pair, no run file to write."""
import json
from pathlib import Path

from conftest import run_cli, write_pair

FAST = ["--set", "model.hidden_size=4", "--set", "model.cabinet.taps=64", "--set", "data.segment=4096",
        "--set", "train.warmup=256", "--set", "train.val_clip_seconds=0.5", "--set", "train.stress=false", "--set", "train.stability.enabled=false"]


def test_train_a_pair_with_the_default_recipe(tmp_path):
    write_pair(tmp_path, seconds=4)
    out = run_cli("train", "di.wav", "amp.wav", "--budget", "4s", *FAST, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (run_dir,) = (tmp_path / "runs" / "amp").iterdir()  # named after the target
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["model"] == "wave-lstm"
    assert "cabinet" in (run_dir / "config.toml").read_text()  # the recipe covers a full rig too
    assert summary["test_esr"] < 1.0 and summary["alignment"]["method"] == "response"


def test_the_recipe_refuses_to_run_without_a_pair(tmp_path):
    root = Path(__file__).resolve().parent.parent
    out = run_cli("run", root / "configs" / "capture.toml", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().endswith("data: give input and target recordings, or demo = \"amp\"")


def test_train_refuses_a_missing_file_in_one_line(tmp_path):
    write_pair(tmp_path, seconds=2)
    out = run_cli("train", "di.wav", "nope.wav", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.strip() == "error: nope.wav: no such file"
    assert not (tmp_path / "runs").exists()


KNOB_FAST = ["--set", "model.hidden_size=4", "--set", "data.segment=4096", "--set", "train.warmup=256",
             "--set", "train.val_clip_seconds=0.5", "--set", "train.stress=false",
             "--set", "train.stability.enabled=false", "--set", "train.report=false"]


def test_train_a_knob_grid_with_the_knobs_recipe(tmp_path):
    """`fxforge train captures.toml`: one conditioned model on every setting, no run file to write;
    the run is named after the manifest's folder and plays any setting."""
    from test_knobs import write_captures

    grid = tmp_path / "fuzz"
    grid.mkdir()
    write_captures(grid, seconds=4.0)
    out = run_cli("train", "fuzz/captures.toml", "--budget", "5s", *KNOB_FAST, "--set", "data.holdout=[{drive = 0.5}]",
                  cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (run_dir,) = (tmp_path / "runs" / "fuzz").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["model"] == "wave-lstm"
    assert [k["name"] for k in summary["knobs"]["knobs"]] == ["drive"]
    rows = {r["knobs"]["drive"]: r["held_out"] for r in summary["settings"]}
    assert rows[0.5] is True and rows[0.2] is False
    config = (run_dir / "config.toml").read_text()
    assert 'conditioning = "concat"' in config and "cabinet" not in config
    out = run_cli("process", run_dir, "fuzz/dry.wav", "out.wav", "--knob", "drive=0.7", cwd=tmp_path)
    assert out.returncode == 0, out.stderr


def test_train_with_one_recording_that_is_not_a_manifest_says_what_it_needs(tmp_path):
    write_pair(tmp_path, seconds=2)
    out = run_cli("train", "di.wav", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "di.wav: give the gear's recording after it" in out.stderr
    assert not (tmp_path / "runs").exists()
