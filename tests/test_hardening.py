"""Crash safety and safe loading: nothing lost, nothing executed, no tracebacks."""
import errno
import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import TINY, run_cli, spawn_cli
from fxforge import FxforgeError


class Payload:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_malicious_checkpoint_is_refused_without_running_it(workdir):
    bad = workdir / "evil.pt"
    torch.save({"model": Payload()}, bad)
    for args in (["run", "run.toml", "--checkpoint", "evil.pt"], ["eval", "evil-run", "--input", "di.wav", "--target", "amp.wav"]):
        if args[0] == "eval":  # a shared run directory whose model.pt is the payload
            run = workdir / "evil-run"
            run.mkdir()
            (run / "config.toml").write_text(TINY)
            (run / "summary.json").write_text('{"sample_rate": 48000}')
            (run / "model.pt").write_bytes(bad.read_bytes())
        out = run_cli(*args, cwd=workdir)
        assert out.returncode == 2, out.stderr
        assert out.stderr.startswith("error: ") and "refused: holds more than plain weights" in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
    assert not (workdir / "pwned").exists()
    assert not (workdir / "runs").exists()


def test_checkpoint_of_another_architecture_names_the_tensors(trained_run, workdir):
    out = run_cli("run", "run.toml", "--set", "model.hidden_size=16", "--checkpoint", trained_run / "model.pt", cwd=workdir)
    assert out.returncode == 2
    assert out.stderr.strip() == (
        f"error: {trained_run / 'model.pt'}: does not fit this model (shape mismatch: "
        "lstm.weight_ih_l0 (32, 1) vs (64, 1), lstm.weight_hh_l0 (32, 8) vs (64, 16), "
        "lstm.bias_ih_l0 (32,) vs (64,), lstm.bias_hh_l0 (32,) vs (64,))")
    assert not (workdir / "runs").exists()


def test_kill_9_during_training_leaves_a_resumable_run(workdir):
    proc = spawn_cli("run", "run.toml", "--set", "train.epochs=50", cwd=workdir)
    try:
        deadline = time.time() + 300
        while not list(workdir.glob("runs/tiny/*/metrics.jsonl")) and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    (run_dir,) = (workdir / "runs" / "tiny").iterdir()
    assert torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["progress"]["epoch"] >= 1
    assert torch.load(run_dir / "model.pt", weights_only=True)
    # A crash mid-write leaves at most a stray temporary file, never a torn checkpoint.
    (run_dir / "checkpoints" / ".last.pt.crash.tmp").write_bytes(b"\x80half a pick")
    cfg = (run_dir / "config.toml").read_text().replace("epochs = 50", "epochs = 2")
    (run_dir / "config.toml").write_text(cfg)  # finish sooner: the test is about resuming, not length
    out = run_cli("run", "--resume", run_dir.relative_to(workdir), cwd=workdir)
    assert out.returncode == 0, out.stderr
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "finished"


def test_disk_full_is_a_clear_error_and_leaves_no_torn_file(workdir, monkeypatch):
    from fxforge import load_config
    from fxforge import atomic
    from fxforge.train.loop import train

    real = os.replace
    calls = {"n": 0}

    def replace(src, dst):
        calls["n"] += 1
        if str(dst).endswith("last.pt"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst)

    monkeypatch.chdir(workdir)
    monkeypatch.setattr(atomic.os, "replace", replace)  # runs writes through fxforge.atomic
    with pytest.raises(FxforgeError) as exc:
        train(load_config("run.toml"), runs_dir=Path("runs"))
    (run_dir,) = (workdir / "runs" / "tiny").iterdir()
    assert str(exc.value) == f"{Path('runs/tiny') / run_dir.name / 'checkpoints' / 'last.pt'}: could not write (No space left on device)"
    assert not list(run_dir.rglob("*.tmp"))
    torch.load(run_dir / "model.pt", weights_only=True)  # what was written is whole


def test_diverging_training_stops_with_the_last_good_checkpoint(workdir):
    out = run_cli("run", "run.toml", "--set", "optim.lr=1e30", "--set", "optim.grad_clip=1e30",
                  "--set", "train.epochs=8", cwd=workdir)
    assert out.returncode == 2, out.stdout + out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert "training diverged (loss is nan" in last or "training diverged (loss is inf" in last
    assert "after 5 roll-backs with the learning rate halved each time" in last and "(try a lower optim.lr)" in last
    assert out.stderr.count("rolled back to the last good state") == 5


def test_a_diverged_step_rolls_back_halves_the_lr_and_the_run_finishes(workdir, monkeypatch):
    import json

    from fxforge import load_config
    from fxforge.train import loop as train_mod

    real = train_mod.Loss.forward
    calls = {"n": 0}

    def once_nan(self, y_hat, y):  # the 5th step's loss is NaN, as a blown-up model's would be
        calls["n"] += 1
        loss = real(self, y_hat, y)
        return loss * float("nan") if calls["n"] == 5 else loss

    monkeypatch.setattr(train_mod.Loss, "forward", once_nan)
    monkeypatch.chdir(workdir)
    summary = train_mod.train(load_config("run.toml"), runs_dir=Path("runs"))
    assert summary["status"] == "finished" and summary["rollbacks"] == 1
    assert "training diverged (loss is nan) at epoch 1" in summary["rollback_notes"][0]
    assert "learning rate halved (x0.5)" in summary["rollback_notes"][0]
    saved = json.loads((Path(summary["run_dir"]) / "summary.json").read_text())
    assert saved["rollbacks"] == 1 and saved["test_esr"] < 10


def test_two_runs_with_one_name_at_once_get_different_directories(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from fxforge.runs import RunDir

    with ThreadPoolExecutor(8) as pool:
        dirs = list(pool.map(lambda _: RunDir.create(tmp_path, "same").path, range(8)))
    assert len(set(dirs)) == 8


SECTIONS = st.sampled_from(["", "data.", "model.", "optim.", "train.", "scheduler.", "train.loss.", "nope."])
KEYS = st.sampled_from(["name", "lr", "hidden_size", "epochs", "device", "input", "split", "time_budget", "x", ""])
VALUES = st.one_of(st.integers(-10**12, 10**12), st.floats(allow_nan=True), st.text(max_size=12),
                   st.booleans(), st.lists(st.integers(), max_size=3))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=st.text(max_size=200), sets=st.lists(st.text(max_size=30), max_size=3))
def test_random_toml_and_sets_never_raise_anything_but_a_clean_error(tmp_path, doc, sets):
    from fxforge.config import load_config

    path = tmp_path / "random.toml"
    path.write_text(doc, encoding="utf-8")
    try:
        load_config(path, sets)
    except FxforgeError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=200, deadline=None)
@given(section=SECTIONS, key=KEYS, value=VALUES)
def test_random_overrides_of_a_valid_file_never_raise_anything_but_a_clean_error(section, key, value):
    import tomllib

    from fxforge.config import apply_sets, config_from_dict

    doc = tomllib.loads(TINY)
    try:
        config_from_dict(apply_sets(doc, [f"{section}{key}={value!r}"]), "random.toml")
    except FxforgeError as exc:
        assert "\n" not in str(exc)


def test_the_time_budget_is_wall_clock_validation_included(workdir, monkeypatch):
    from fxforge import load_config
    from fxforge.train import loop as train_mod

    real = train_mod.Trainer.validate

    def slow_validate(self, train_loss):  # an expensive validation, as a large model's is
        time.sleep(0.5)
        return real(self, train_loss)

    monkeypatch.setattr(train_mod.Trainer, "validate", slow_validate)
    monkeypatch.chdir(workdir)
    cfg = load_config("run.toml", ["train.epochs=10000", "train.time_budget=3s"])
    summary = train_mod.train(cfg, runs_dir=Path("runs"))
    validations = len((Path(summary["run_dir"]) / "metrics.jsonl").read_text().splitlines())
    assert validations >= 2
    # The training steps get what the validations leave of the budget (plus the last step).
    assert summary["train_seconds"] + 0.5 * validations <= 3.0 + 0.5
