"""report.html: written by every run, rewritten by `fxforge report`, and working in a real
browser (headless Chromium: every player loads its clip, the A/B/X widget answers a click)."""
from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from conftest import run_cli, write_config, write_pair

MAX_PAGE_BYTES = 5_000_000


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """One tiny run, with what it printed to a non-terminal."""
    folder = tmp_path_factory.mktemp("report")
    write_pair(folder)
    write_config(folder)
    out = run_cli("run", "run.toml", "--set", "train.report=true", cwd=folder)
    assert out.returncode == 0, out.stderr
    (run_dir,) = (folder / "runs" / "tiny").iterdir()
    return run_dir, out


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no headless Chromium (apt-get install -y chromium; .ci/run installs it where it can)")


CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio",
                "--autoplay-policy=no-user-gesture-required", "--no-first-run", "--disable-extensions"]


def _browser(*args, timeout=90) -> subprocess.CompletedProcess:
    return subprocess.run([_chromium(), *CHROME_FLAGS, *args], capture_output=True, text=True, timeout=timeout)


def test_run_writes_a_self_contained_page(tiny):
    run_dir, out = tiny
    page = run_dir / "report.html"
    assert page.is_file()
    assert out.stdout.rstrip().splitlines()[-1] == f"report: {page.relative_to(run_dir.parents[2])}"
    text = page.read_text()
    assert page.stat().st_size < MAX_PAGE_BYTES
    # no network: nothing fetched from anywhere, all media inline
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text)
    assert "<link" not in text and "<script src" not in text
    assert text.count('<audio class="clip"') == 4 and text.count("data:audio/") == 4
    for needle in ("test ESR", "Blind test (A/B/X)", "Verdict scale", "Learning curves", "Resolved config",
                   "Spectrogram of the difference", "Not exported yet"):
        assert needle in text, needle


def test_progress_plain_lines_on_a_non_terminal(tiny):
    _, out = tiny
    lines = out.stdout.splitlines()
    for phase in ("loading...", "aligning...", "training...", "testing...", "writing the report..."):
        assert phase in lines, phase
    validated = [line for line in lines if line.startswith("validated: ")]
    assert len(validated) == 2 and "val ESR" in validated[-1] and "best" in validated[-1]
    assert "\x1b[" not in out.stdout  # no cursor control for a pipe


def test_progress_quiet_and_live():
    from fxforge.progress import TrainingDisplay, phase

    def feed(display):
        with display:
            phase("loading")
            display.event("start", {"total_steps": 10, "step": 0, "time_budget": 240.0})
            for step in range(1, 4):
                display.event("batch", {"step": step, "loss": 0.5, "epoch": 0, "samples": 1000 * step,
                                        "elapsed": 61.0 + step, "lr": 1e-3})
            phase("validating")
            display.event("validation", {"val_esr": 0.02, "val_esr_pre": 0.03, "best": True})
            phase("testing")

    quiet = io.StringIO()
    feed(TrainingDisplay(Console(file=quiet, force_terminal=False), enabled=False))
    assert quiet.getvalue() == ""
    live = io.StringIO()
    feed(TrainingDisplay(Console(file=live, force_terminal=True, width=200), enabled=True))
    text = live.getvalue()
    assert "testing" in text and "1:04 / 4:00" in text and "val ESR 0.02" in text and "best 0.02" in text
    phase("after the display")  # no listener left behind


def test_report_command_rewrites_and_refuses(tiny, tmp_path):
    run_dir, _ = tiny
    page = run_dir / "report.html"
    page.unlink()
    # from another folder: the relative recordings are found beside runs/
    out = run_cli("report", run_dir.resolve(), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert page.is_file() and page.stat().st_size < MAX_PAGE_BYTES
    assert out.stdout.startswith(f"report: {page.resolve()}")
    for target in (tmp_path, tmp_path / "missing"):
        out = run_cli("report", target, cwd=tmp_path)
        assert out.returncode == 2
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {target}: "), out.stderr
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.toml").write_text((run_dir / "config.toml").read_text())
    (tmp_path / "half" / "summary.json").write_text(json.dumps({"status": "running", "sample_rate": 48000}))
    out = run_cli("report", tmp_path / "half", cwd=tmp_path)
    assert out.returncode == 2 and "not 'finished'" in out.stderr and "Traceback" not in out.stderr


def _ink(png: Path) -> float:
    """Share of pixels that differ from the page's background."""
    from PIL import Image

    a = np.asarray(Image.open(png).convert("RGB")).astype(int)
    background = np.median(a.reshape(-1, 3), axis=0)
    return float(np.mean(np.abs(a - background).sum(axis=-1) > 30))


def test_page_in_headless_chromium(tiny, tmp_path):
    run_dir, _ = tiny
    page = (run_dir / "report.html").resolve()
    out = _browser("--virtual-time-budget=30000", "--dump-dom", page.as_uri() + "#selftest")
    found = re.search(r'<pre id="selftest"[^>]*>(.*?)</pre>', out.stdout, re.S)
    assert found and found.group(1), f"no self-test result in the DOM (stderr: {out.stderr[-400:]})"
    import html

    result = json.loads(html.unescape(found.group(1)))
    assert len(result["clips"]) == 4
    for clip in result["clips"]:
        assert clip["error"] is None, clip
        assert clip["readyState"] >= 3, clip  # HAVE_FUTURE_DATA: playable
        assert abs(clip["duration"] - clip["expected"]) < 0.05, clip
    assert result["abx"]["before"] == "0 of 0 right"
    assert re.match(r"[01] of 1 right", result["abx"]["after"]), result["abx"]
    assert result["abx"]["last"].startswith("X was ")

    blank = tmp_path / "blank.html"
    blank.write_text("<!doctype html><html><body></body></html>")
    shots = {}
    for name, uri in (("report", page.as_uri()), ("blank", blank.as_uri())):
        shots[name] = tmp_path / f"{name}.png"
        _browser("--window-size=1280,900", f"--screenshot={shots[name]}", uri)
        assert shots[name].is_file(), name
    assert _ink(shots["blank"]) < 0.001
    assert _ink(shots["report"]) > 0.03  # text, cards and the players above the fold


def test_sweep_page(tiny, tmp_path):
    """A sweep folder as fxforge sweep lays it out (sweep.json, <trial>/<stamp>/), from the tiny run."""
    run_dir, _ = tiny
    sweep = tmp_path / "sweeps" / "s"
    for trial, esr in (("lr-0.01", None), ("lr-0.1", 0.9)):
        copy = sweep / trial / run_dir.name
        shutil.copytree(run_dir, copy)
        if esr is not None:  # a worse trial: it sorts below
            summary = json.loads((copy / "summary.json").read_text())
            summary["test_esr"] = esr
            (copy / "summary.json").write_text(json.dumps(summary))
    (sweep / "sweep.json").write_text(json.dumps({"name": "s", "keys": ["optim.lr"], "trials": [
        {"id": "lr-0.1", "overrides": {"optim.lr": 0.1}, "seed": 0},
        {"id": "lr-0.01", "overrides": {"optim.lr": 0.01}, "seed": 0},
        {"id": "lr-1", "overrides": {"optim.lr": 1}, "seed": 0}]}))
    out = run_cli("report", sweep, cwd=run_dir.parents[2])
    assert out.returncode == 0, out.stderr
    text = (sweep / "report.html").read_text()
    assert text.index("<td>lr-0.01</td>") < text.index("<td>lr-0.1</td>") < text.index("<td>lr-1</td>")
    assert "not run" in text and 'href="lr-0.01/' in text
    assert text.count('<audio class="clip"') == 6 and text.count('class="abx"') == 2
