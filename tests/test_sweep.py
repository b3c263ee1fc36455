"""`fxforge sweep` through the real CLI on seconds of generated audio: locally, on a
local Ray instance (real Ray), interrupted and continued, and refused before any
trial starts when the sweep file is wrong."""
from __future__ import annotations

import csv
import json
import signal
import sys
import time
from pathlib import Path

import pytest

from conftest import TINY, run_cli, spawn_cli, write_config, write_pair

SWEEP = """
base = "run.toml"

[set]
train.epochs = 5

[grid]
optim.lr = [0.01, 0.002]
"""

TRIALS = ["lr-0.01_seed-0", "lr-0.002_seed-0"]
TIMES = {"train_seconds", "wall_seconds", "run"}


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def runs_of(trial_dir: Path) -> list[Path]:
    return sorted(p for p in trial_dir.iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A two-point sweep on a 3 s pair, run locally through the CLI: Ctrl-C during the
    second trial, then the same command again to finish it."""
    folder = tmp_path_factory.mktemp("sweep")
    write_pair(folder, seconds=3.0)
    write_config(folder)
    write_config(folder, SWEEP, "sweep.toml")
    sweep_dir = folder / "sweeps" / "sweep"
    proc = spawn_cli("sweep", "sweep.toml", cwd=folder, env={"COLUMNS": "200", "NO_COLOR": "1"}, timeout=600)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not proc.done():
            if any((sweep_dir / TRIALS[1]).glob("*/checkpoints/last.pt")):
                break  # the second trial has validated once: interrupt it mid-way
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
    finally:
        done = proc.wait()
    stderr = done.stderr
    assert done.returncode == 130, stderr
    (first,) = runs_of(sweep_dir / TRIALS[0])
    (second,) = runs_of(sweep_dir / TRIALS[1])
    interrupted = {"stderr": stderr, "status": json.loads((second / "summary.json").read_text())["status"],
                   "mtimes": {p: p.stat().st_mtime_ns for p in first.rglob("*")}, "first": first, "second": second}
    out = run_cli("sweep", "sweep.toml", cwd=folder)
    assert out.returncode == 0, out.stderr
    return folder, interrupted, out


def test_ctrl_c_then_rerun_finishes_without_redoing(swept):
    """Ctrl-C exits 130 with the command to continue; the rerun skips the finished
    trial (its files untouched) and resumes the other in its own run directory."""
    folder, interrupted, out = swept
    sweep_dir = folder / "sweeps" / "sweep"
    assert "Continue with: fxforge sweep sweep.toml" in interrupted["stderr"]
    assert interrupted["status"] == "interrupted"
    assert "2 trials: 1 finished earlier (skipped), 1 to resume, 0 to run" in out.stdout
    assert f"trial 1/1 {TRIALS[1]} (resuming" in out.stdout
    first, second = interrupted["first"], interrupted["second"]
    assert {p: p.stat().st_mtime_ns for p in first.rglob("*")} == interrupted["mtimes"]  # not redone
    assert runs_of(sweep_dir / TRIALS[1]) == [second]                                    # resumed, not restarted
    assert json.loads((second / "summary.json").read_text())["status"] == "finished"
    epochs = [json.loads(line)["epoch"] for line in (second / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3, 4, 5]


def test_sweep_writes_runs_table_and_plots(swept):
    folder, _, out = swept
    sweep_dir = folder / "sweeps" / "sweep"
    for trial in TRIALS:  # each trial is one ordinary run directory
        (run,) = runs_of(sweep_dir / trial)
        summary = json.loads((run / "summary.json").read_text())
        assert summary["status"] == "finished" and summary["name"] == trial
        assert (run / "config.toml").is_file() and (run / "model.pt").is_file()
    rows = read_csv(sweep_dir / "results.csv")
    assert [r["trial"] for r in rows] == TRIALS
    assert [r["optim.lr"] for r in rows] == ["0.01", "0.002"]
    for r in rows:
        assert r["status"] == "finished" and r["epochs"] == "5"
        assert 0 < float(r["test_esr"]) and 0 < float(r["test_esr_pre"]) and 0 < float(r["val_esr"])
        assert float(r["wall_seconds"]) > 0
    md = (sweep_dir / "results.md").read_text()
    assert "| lr |" in md and "| lr-0.002_seed-0 | 0.002 |" in md
    for png in ("validation_esr.png", "test_esr_vs_lr.png"):
        assert (sweep_dir / "plots" / png).stat().st_size > 1000
    assert "test ESR" in out.stdout and "0.002" in out.stdout


def test_ray_sweep_matches_local(swept):
    """The same sweep as Ray tasks on a local Ray instance: the same trial
    directories, and the same table (CPU training with a fixed seed is exact,
    and so is the local sweep's resumed trial)."""
    ray = pytest.importorskip("ray")
    folder, _, _ = swept
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        address = ray.get_runtime_context().gcs_address
        out = run_cli("sweep", "sweep.toml", "--ray", address, "--sweeps-dir", "ray-sweeps", cwd=folder)
    finally:
        ray.shutdown()
    assert out.returncode == 0, out.stderr
    assert "Ray: 2 CPUs" in out.stdout and "2 trials as tasks" in out.stdout
    local, remote = folder / "sweeps" / "sweep", folder / "ray-sweeps" / "sweep"
    for trial in TRIALS:
        assert len(runs_of(remote / trial)) == 1
    assert sorted(p.name for p in remote.iterdir()) == sorted(p.name for p in local.iterdir())
    a, b = read_csv(local / "results.csv"), read_csv(remote / "results.csv")
    assert [{k: v for k, v in r.items() if k not in TIMES} for r in a] == \
           [{k: v for k, v in r.items() if k not in TIMES} for r in b]


def test_bad_grid_key_is_one_line_before_any_trial(swept):
    folder, _, _ = swept
    write_config(folder, SWEEP.replace("optim.lr =", "optim.lrr ="), "bad.toml")
    out = run_cli("sweep", "bad.toml", cwd=folder)
    assert out.returncode == 2
    assert out.stderr.strip() == ("error: bad.toml: grid.optim.lrr: unknown key (did you mean 'lr'?) "
                                  "(trial lrr-0.01_seed-0)")
    assert not (folder / "sweeps" / "bad").exists()


def test_missing_ray_says_how_to_install(folder, monkeypatch):
    from fxforge import FxforgeError
    from fxforge.sweep import run_sweep

    write_config(folder, SWEEP, "s.toml")
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(FxforgeError, match=r"^--ray needs Ray, which is not installed: pip install 'fxforge\[ray\]'$"):
        run_sweep(folder / "s.toml", sweeps_dir=folder / "sweeps", ray="auto")
    assert not (folder / "sweeps").exists()


def test_unreachable_ray_address_is_quick_one_line(folder):
    pytest.importorskip("ray")
    from fxforge import FxforgeError
    from fxforge.sweep import run_sweep

    write_config(folder, SWEEP, "s.toml")
    with pytest.raises(FxforgeError, match=r"^--ray 127.0.0.1:1: no Ray cluster answers there"):
        run_sweep(folder / "s.toml", sweeps_dir=folder / "sweeps", ray="127.0.0.1:1")
    assert not (folder / "sweeps").exists()


# -- in-process: planning, ids and state, without training ----------------------------

def plan(folder: Path, text: str, sets=(), repeats=None):
    from fxforge.sweep import plan_sweep

    write_config(folder, text, "s.toml")
    return plan_sweep(folder / "s.toml", list(sets), repeats, folder / "sweeps")


@pytest.fixture
def folder(tmp_path):
    write_pair(tmp_path, seconds=1.0)
    write_config(tmp_path, TINY.replace('"di.wav"', f'"{tmp_path}/di.wav"')
                 .replace('"amp.wav"', f'"{tmp_path}/amp.wav"'))
    return tmp_path


def test_grid_points_and_seeds_make_stable_readable_ids(folder):
    p = plan(folder, """
        base = "run.toml"
        repeats = 2
        points = [{}, { train.time_budget = "none" }]
        [grid]
        data.fraction = [0.5, 1.0]
        scheduler.name = ["constant", "cosine"]
    """)
    ids = [t.id for t in p.trials]
    assert len(ids) == len(set(ids)) == 2 * 2 * 2 * 2
    assert ids[:4] == ["fraction-0.5_scheduler-constant_seed-0", "fraction-0.5_scheduler-constant_seed-1",
                       "fraction-0.5_scheduler-cosine_seed-0", "fraction-0.5_scheduler-cosine_seed-1"]
    assert ids[-1] == "fraction-1.0_scheduler-cosine_time_budget-none_seed-1"
    assert [t.seed for t in p.trials[:2]] == [0, 1]
    constant = p.trials[0]
    assert constant.cfg.scheduler.name == "constant" and constant.cfg.data.fraction == 0.5
    assert constant.cfg.name == constant.id
    assert p.trials[-1].cfg.train.time_budget is None
    assert plan(folder, "base = 'run.toml'\n[grid]\noptim.lr = [0.01]", repeats=3).trials[2].id == "lr-0.01_seed-2"
    # --set changes the base of the arm that does not override it
    p = plan(folder, 'base = "run.toml"\npoints = [{}, { train.time_budget = "none" }]', ["train.time_budget=30s"])
    assert [t.cfg.train.time_budget for t in p.trials] == [30.0, None]


@pytest.mark.parametrize("text, sets, message", [
    ("base = 'run.toml'\ngird = 1", [], "s.toml: gird: unknown key (did you mean 'grid'?)"),
    ("base = 'run.toml'\n[grid]\noptim.lr = 0.1", [], "s.toml: grid.optim.lr: expected a non-empty list"),
    ("base = 'run.toml'\n[grid]\noptim.lr = [0.1, -1.0]", [], "s.toml: grid.optim.lr: Input should be greater than 0 (got -1.0)"),
    ("base = 'run.toml'\n[grid]\nseed = [1, 2]", [], "s.toml: grid: seed: give seeds with 'repeats'"),
    ("base = 'run.toml'\n[set]\nmodel.hiden_size = 4", [], "s.toml: set.model.hiden_size: unknown key (did you mean 'hidden_size'?)"),
    ("base = 'run.toml'\n[grid]\noptim.lr = [0.1]", ["optim.lr=0.2"], "--set optim.lr=0.2: optim.lr is swept by"),
    ("base = 'run.toml'\n[grid]\noptim.lr = [0.1]", ["train.epoch=2"], "--set train.epoch: unknown key (did you mean 'epochs'?)"),
    ("base = 'missing.toml'", [], "s.toml: base: no such file ("),
])
def test_sweep_file_errors(folder, text, sets, message):
    from fxforge import FxforgeError

    with pytest.raises(FxforgeError) as exc:
        plan(folder, text, sets)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_state_skip_resume_or_start_afresh(folder):
    from fxforge.runs import RunDir

    text = "base = 'run.toml'\n[grid]\noptim.lr = [0.01, 0.02, 0.03, 0.04]"
    trials = plan(folder, text).trials
    for trial, status, ckpt in zip(trials, ["finished", "interrupted", "failed", "finished"], [1, 1, 1, 1]):
        run = RunDir.create(folder / "sweeps" / "s", trial.id)
        cfg = trial.cfg
        if trial.id.startswith("lr-0.04"):  # ran with another config: stale
            cfg = plan(folder, text, ["train.epochs=9"]).trials[3].cfg
        run.write_config(cfg)
        run.write_summary({"status": status})
        run.last_path.write_bytes(b"")
    states = [(t.state, t.run is not None) for t in plan(folder, text).trials]
    assert states == [("done", True), ("resume", True), ("new", False), ("new", False)]
    assert "config changed" in plan(folder, text).trials[3].note


@pytest.mark.parametrize("failing, code", [({"lr-0.01_seed-0", "lr-0.002_seed-0"}, 1), ({"lr-0.002_seed-0"}, 0)])
def test_a_sweep_whose_trials_all_fail_does_not_exit_0(folder, monkeypatch, capsys, failing, code):
    """Each trial's error is in the table; when none finished, the sweep ends with one
    more line and exit 1 (some finished: exit 0, the table says which did not)."""
    import fxforge.cli
    import fxforge.sweep

    def fake(task, on_event=None):
        if task["id"] in failing:
            return {"status": "failed", "error": "training diverged", "wall_seconds": 0.0}
        return {"status": "finished", "test_esr": 0.5, "wall_seconds": 0.0}

    write_config(folder, SWEEP, "s.toml")
    monkeypatch.chdir(folder)
    monkeypatch.setattr(fxforge.sweep, "execute_trial", fake)
    monkeypatch.setattr(sys, "argv", ["fxforge", "sweep", "s.toml", "--sweeps-dir", "sweeps"])
    exit_code = fxforge.cli.main()
    err = capsys.readouterr().err
    assert exit_code == code, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert errors == (["error: s.toml: all 2 trials failed (their errors are above)"] if code else [])
    assert (folder / "sweeps" / "s" / "results.csv").is_file()
