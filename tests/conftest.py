"""Shared fixtures: the real CLI (each call its own process, see cli_server), and small generated audio."""
from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

import cli_server

SR = 48_000


def run_cli(*args, cwd=None, env=None, timeout=600, fresh=False) -> subprocess.CompletedProcess:
    """`fxforge ARGS` exactly as a user runs it: its own process, forked from this worker's
    fork server (tests/cli_server.py), or a new `python -m fxforge` with fresh=True (after a
    pip install), when env changes what an interpreter reads at start-up (PYTHONPATH, ...),
    or under FXFORGE_TESTS_SUBPROCESS=1."""
    return cli_server.run(*args, cwd=cwd, env=env, timeout=timeout, fresh=fresh)


def spawn_cli(*args, cwd=None, env=None, timeout=600, fresh=False):
    """run_cli's call started and not waited for: .pid, .done(), .send_signal(sig), .wait()."""
    return cli_server.spawn(args, cwd=cwd, env=env, timeout=timeout, fresh=fresh)


def interrupt_run(workdir: Path, *args) -> tuple[Path, str]:
    """`fxforge run run.toml ARGS --runs-dir cut`, Ctrl-C'd once its first validation is
    written; asserts exit 130 and returns (the run folder, its stderr)."""
    import signal
    import time

    proc = spawn_cli("run", "run.toml", *args, "--runs-dir", "cut", cwd=workdir, timeout=900)
    try:
        deadline = time.time() + 300
        while not list(workdir.glob("cut/*/*/metrics.jsonl")) and time.time() < deadline and not proc.done():
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
    finally:
        out = proc.wait()
    assert out.returncode == 130, out.stderr
    (run_dir,) = (p for name in (workdir / "cut").iterdir() for p in name.iterdir())
    return run_dir, out.stderr


def effect(x: np.ndarray) -> np.ndarray:
    """A small drive pedal: gain, soft clip, tone low-pass."""
    b, a = signal.butter(1, 3000, fs=SR)
    return (0.5 * signal.lfilter(b, a, np.tanh(6 * x))).astype(np.float32)


def dry(seconds: float = 6.0, seed: int = 0) -> np.ndarray:
    from fxforge.data.demo import synth_di

    return synth_di(seconds, seed)


def write_pair(folder: Path, seconds: float = 6.0, seed: int = 0, subtype: str = "PCM_24") -> tuple[Path, Path]:
    x = dry(seconds, seed)
    folder.mkdir(parents=True, exist_ok=True)
    sf.write(folder / "di.wav", x, SR, subtype=subtype)
    sf.write(folder / "amp.wav", effect(x), SR, subtype=subtype)
    return folder / "di.wav", folder / "amp.wav"


TINY = """
name = "tiny"
seed = 0

[data]
input = "di.wav"
target = "amp.wav"
segment = 4096

[model]
name = "wave-lstm"
hidden_size = 8

[optim]
lr = 0.01

[scheduler]
name = "cosine"

[train]
epochs = 2
batch_size = 8
tbptt = 1024
warmup = 256
val_clip_seconds = 0.5
stress = false       # the stress probes cost seconds a run; tests/test_stress.py runs them
stability.enabled = false  # the stress stream slows training; tests/test_stability.py runs it
report = false       # plots and report.html cost more than the training; trained_run and tests/test_report.py draw them
"""


def write_config(folder: Path, text: str = TINY, name: str = "run.toml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def workdir(tmp_path) -> Path:
    """A folder holding a 6 s pair (di.wav, amp.wav) and a tiny run file."""
    write_pair(tmp_path)
    write_config(tmp_path)
    return tmp_path


def pytest_sessionfinish(session, exitstatus):
    cli_server.close()  # this worker's fork server


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """One finished tiny run, shared by tests that only read it."""
    folder = tmp_path_factory.mktemp("trained")
    write_pair(folder)
    write_config(folder)
    out = run_cli("run", "run.toml", "--set", "train.report=true", cwd=folder)
    assert out.returncode == 0, out.stderr
    (run_dir,) = (folder / "runs" / "tiny").iterdir()
    return run_dir


def compile_render_tool(cxx: str, rtneural: Path, project_dir: Path, exe: Path) -> None:
    """Compile fxforge-juce's JUCE-free render tool (fxforge_juce/check/fxforge_render.cpp) against
    an exported JUCE project's generated model and an RTNeural checkout, as the render tests run
    it; no allocation in the model."""
    from fxforge_juce.build import RENDER_SOURCE

    rt, project_dir = Path(rtneural), Path(project_dir)
    subprocess.run([cxx, "-O2", "-std=c++17", "-DEIGEN_RUNTIME_NO_MALLOC", "-DRTNEURAL_USE_EIGEN=1",
                    "-DRTNEURAL_DEFAULT_ALIGNMENT=16",
                    f"-I{project_dir / 'Source'}", f"-I{rt}", f"-I{rt / 'RTNeural'}", f"-I{rt / 'modules/Eigen'}",
                    f"-I{rt / 'modules/json'}", str(RENDER_SOURCE), "-o", str(exe)],
                   check=True)
