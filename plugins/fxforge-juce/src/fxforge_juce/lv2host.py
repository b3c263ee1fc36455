"""Render audio through a built LV2 in jalv, Debian's reference LV2 host, on a private JACK
server with the dummy backend (no sound card).

JUCE's LV2 requires urid:map, options and bufsize:boundedBlockLength; jalv offers them, where
lv2file fails to instantiate it and lv2apply has no atom ports. jalv has no file I/O, so
``check/jack_render.c`` (compiled once, cached under ``$XDG_CACHE_HOME/fxforge``) plays the
signal into jalv's inputs and records its outputs, aligned to the sample.
Every process started here is ended here, by its own handle.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

SOURCE = Path(__file__).resolve().parent / "check" / "jack_render.c"
PREROLL = 24_000  # silence sent once connected, so the plugin's state is that of silence, as the reference's
PERIOD = 256


class HostMissing(Exception):
    """What this machine lacks to run the LV2 in jalv (one line)."""


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "fxforge"


def _compiler() -> str | None:
    for cand in (os.environ.get("CC"), "gcc", "clang", "cc"):
        if cand and shutil.which(cand):
            return shutil.which(cand)
    return None


def tools() -> dict:
    """The jalv, jackd and jack_lsp executables; HostMissing naming what is not installed."""
    found = {name: shutil.which(name) for name in ("jalv", "jackd", "jack_lsp")}
    absent = [name for name, path in found.items() if not path]
    if absent:
        raise HostMissing(f"{', '.join(absent)} not installed (apt-get install jalv jackd2)")
    return found


def build_render() -> Path:
    cc = _compiler()
    if cc is None:
        raise HostMissing("no C compiler for the JACK player (gcc or clang)")
    key = hashlib.sha256(SOURCE.read_bytes() + cc.encode()).hexdigest()[:16]
    exe = _cache_dir() / f"jack_render-{key}"
    if exe.is_file() and os.access(exe, os.X_OK):
        return exe
    exe.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=exe.parent, prefix=f".{exe.name}.")
    os.close(fd)
    out = subprocess.run([cc, "-O2", "-std=c11", str(SOURCE), "-ljack", "-o", tmp], capture_output=True, text=True)
    if out.returncode != 0:
        os.unlink(tmp)
        if "jack/jack.h" in out.stderr or "-ljack" in out.stderr:
            raise HostMissing("JACK's headers are missing for the JACK player (apt-get install libjack-jackd2-dev)")
        raise HostMissing(f"{SOURCE.name} did not compile ({out.stderr.strip().splitlines()[0][:160]})")
    os.chmod(tmp, 0o755)
    os.replace(tmp, exe)
    return exe


def _wait_for(what, env, seconds: float, lsp: str) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        out = subprocess.run([lsp], capture_output=True, text=True, env=env, timeout=30)
        if out.returncode == 0 and what(out.stdout):
            return True
        time.sleep(0.1)
    return False


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def render(bundle: Path, uri: str, x: np.ndarray, sample_rate: int, attempts: int = 3) -> tuple[np.ndarray, dict]:
    """``x`` (channels, frames) float32 through the LV2 at ``uri`` hosted by jalv, after PREROLL
    samples of silence; (channels, frames) back, and what the player reported."""
    exes = tools()
    player = build_render()
    server = f"fxforge-{os.getpid()}-{time.monotonic_ns() % 100000}"
    env = {**os.environ, "JACK_DEFAULT_SERVER": server, "JACK_NO_AUDIO_RESERVATION": "1",
           "LV2_PATH": str(Path(bundle).resolve().parent)}
    channels, frames = x.shape
    jackd = jalv = None
    with tempfile.TemporaryDirectory(prefix="fxforge-jalv-") as tmp:
        src, dst = Path(tmp, "in.f32"), Path(tmp, "out.f32")
        np.ascontiguousarray(x.T, dtype=np.float32).tofile(src)
        try:
            # -r: no realtime scheduling (a container or CI user has no rtprio); -S: each cycle waits
            # for the graph to finish, so player, host and recorder share it; the dummy backend runs
            # the graph on a clock, with no sound card.
            jackd = subprocess.Popen([exes["jackd"], "-r", "-S", "-n", server, "-d", "dummy", "-r", str(int(sample_rate)),
                                      "-p", str(PERIOD)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
            if not _wait_for(lambda s: "system:" in s, env, 20, exes["jack_lsp"]):
                err = jackd.stderr.read().decode(errors="replace") if jackd.poll() is not None else ""
                raise HostMissing(f"the JACK dummy server did not start ({' '.join(err.split())[-160:]})")
            name = "fxforge-lv2"
            # jalv quits at the end of its stdin: a pipe kept open holds it up until we are done.
            jalv = subprocess.Popen([exes["jalv"], "-n", name, "-x", uri], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
            if not _wait_for(lambda s: s.count(f"{name}:audio_out") >= channels, env, 60, exes["jack_lsp"]):
                _stop(jalv)
                said = " ".join(jalv.stdout.read().decode(errors="replace").split())[-200:]
                raise RuntimeError(f"jalv did not run the plugin ({said})")
            why = ""
            for _ in range(attempts):  # a cycle the loaded machine skipped is a retry, not a verdict
                out = subprocess.run([str(player), name, str(channels), str(PREROLL), str(src), str(dst)],
                                     capture_output=True, text=True, env=env, timeout=120 + 20 * frames / sample_rate)
                if out.returncode == 0:
                    y = np.fromfile(dst, dtype=np.float32).reshape(frames, channels).T
                    return y, json.loads(out.stdout.strip().splitlines()[-1])
                why = " ".join(out.stderr.split())[:200]
            raise RuntimeError(f"recording jalv's output failed ({why})")
        finally:
            _stop(jalv)
            _stop(jackd)
