"""Render audio through an exported AIDA-X JSON with RTNeural's own parser.

``check/aidax_check.cpp`` is compiled once per RTNeural checkout and compiler
(cached under ``$XDG_CACHE_HOME/fxforge``, else ``~/.cache/fxforge``) against
the header-only RTNeural with its vendored Eigen and nlohmann json.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

from fxforge import FxforgeError

SOURCE = Path(__file__).resolve().parent / "check" / "aidax_check.cpp"
AIDAX_PREBUFFER = 2048  # silence AIDA-X runs through a freshly loaded model (loadModelFromStream)


def _is_checkout(path) -> bool:
    return Path(path, "RTNeural", "RTNeural.h").is_file() and Path(path, "modules", "Eigen", "Eigen").is_dir()


def find_rtneural(explicit: Optional[Path] = None) -> Optional[Path]:
    """The RTNeural checkout to use: ``explicit``, else $FXFORGE_RTNEURAL_DIR (as the juce exporter); None if absent."""
    if explicit is not None:
        if not _is_checkout(explicit):
            raise FxforgeError(f"--rtneural-dir {explicit}: not an RTNeural checkout with modules/Eigen "
                               "(git clone https://github.com/jatinchowdhury18/RTNeural)")
        return Path(explicit).resolve()
    env = os.environ.get("FXFORGE_RTNEURAL_DIR")
    return Path(env).resolve() if env and _is_checkout(env) else None


def find_compiler() -> Optional[str]:
    for cand in (os.environ.get("CXX"), "g++", "clang++", "c++"):
        if cand and shutil.which(cand):
            return shutil.which(cand)
    return None


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "fxforge"


def build_check(rtneural: Path, compiler: str) -> Path:
    """The compiled check program (built on first use, then reused)."""
    key = hashlib.sha256(SOURCE.read_bytes() + str(rtneural).encode() + compiler.encode()).hexdigest()[:16]
    exe = _cache_dir() / f"aidax_check-{key}"
    if exe.is_file() and os.access(exe, os.X_OK):
        return exe
    exe.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=exe.parent, prefix=f".{exe.name}.")
    os.close(fd)
    # The STL-free Eigen backend RTNeural defaults to; -O1 keeps the one-off compile short.
    cmd = [compiler, "-O1", "-std=c++17", "-DRTNEURAL_USE_EIGEN=1", "-DRTNEURAL_DEFAULT_ALIGNMENT=16",
           f"-I{rtneural}", f"-I{rtneural / 'RTNeural'}", f"-I{rtneural / 'modules' / 'Eigen'}",
           f"-I{rtneural / 'modules' / 'json'}", str(SOURCE), "-o", tmp]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        os.unlink(tmp)
        first = next((line for line in out.stderr.splitlines() if "error" in line), out.stderr[:200])
        raise FxforgeError(f"{SOURCE.name}: compiling against {rtneural} failed ({first.strip()[:200]})")
    os.chmod(tmp, 0o755)
    os.replace(tmp, exe)
    return exe


def render(exe: Path, model_json: Path, x: np.ndarray, prebuffer: int = 0,
           knobs: Optional[np.ndarray] = None) -> np.ndarray:
    """``x`` (1-D float32) through the model as AIDA-X plays it. A model with knobs (in_shape
    2 or 3) takes ``knobs``: (len(x), in_shape - 1) values 0..1, knob j at sample i in
    ``knobs[i, j]`` (a 1-D array for one knob); the pre-roll holds the first row."""
    with tempfile.TemporaryDirectory(prefix="fxforge-aidax-") as tmp:
        src, dst, kf = Path(tmp, "in.f32"), Path(tmp, "out.f32"), Path(tmp, "knobs.f32")
        x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
        x.tofile(src)
        args = [str(exe), str(model_json), str(src), str(dst), str(int(prebuffer))]
        if knobs is not None:
            k = np.ascontiguousarray(knobs, dtype=np.float32).reshape(len(x), -1)
            k.tofile(kf)
            args.append(str(kf))
        out = subprocess.run(args, capture_output=True, text=True)
        if out.returncode != 0:
            raise FxforgeError(" ".join(out.stderr.split())[:300] or f"{exe.name} exited with {out.returncode}")
        return np.fromfile(dst, dtype=np.float32)
