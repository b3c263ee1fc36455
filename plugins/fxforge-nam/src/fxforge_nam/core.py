"""Render audio through an exported .nam with NeuralAmpModelerCore's own loader.

``check/nam_check.cpp`` is compiled with the core's sources (``NAM/*.cpp``,
``NAM/*/*.cpp``) once per core checkout, Eigen and compiler, and cached under
``$XDG_CACHE_HOME/fxforge`` (else ``~/.cache/fxforge``). The core needs Eigen
(its ``Dependencies/eigen`` submodule, else the system's ``eigen3``) and
nlohmann/json (its vendored ``Dependencies/nlohmann/json.hpp``, else the system's).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import numpy as np

from fxforge import FxforgeError

SOURCE = Path(__file__).resolve().parent / "check" / "nam_check.cpp"
CORE_URL = "https://github.com/sdatkinson/NeuralAmpModelerCore"
# As the core's own CMake build: C++20, and its A2 fast path on (the default there), so a model
# takes the same code path it takes in NAM's plugin. No -ffast-math: the check is about the
# file, not about the rounding a fast-math build adds.
FLAGS = ["-O2", "-std=c++20", "-DNAM_ENABLE_A2_FAST", "-w"]
EIGEN_CANDIDATES = ("/usr/include/eigen3", "/usr/local/include/eigen3")
JSON_CANDIDATES = ("/usr/include/nlohmann", "/usr/local/include/nlohmann")


def _is_core(path) -> bool:
    return Path(path, "NAM", "get_dsp.h").is_file() and Path(path, "NAM", "get_dsp.cpp").is_file()


def find_core(explicit: Optional[Path] = None) -> Optional[Path]:
    """The core checkout: ``explicit`` (an error when it is not one), else $FXFORGE_NAM_CORE_DIR; None if absent."""
    if explicit is not None:
        if not _is_core(explicit):
            raise FxforgeError(f"--nam-core-dir {explicit}: not a NeuralAmpModelerCore checkout (no NAM/get_dsp.h; "
                               f"git clone {CORE_URL})")
        return Path(explicit).resolve()
    env = os.environ.get("FXFORGE_NAM_CORE_DIR")
    return Path(env).resolve() if env and _is_core(env) else None


def why_no_core(explicit: Optional[Path] = None) -> str:
    """What is missing, for the 'skipped' line."""
    env = os.environ.get("FXFORGE_NAM_CORE_DIR")
    if env:
        return f"FXFORGE_NAM_CORE_DIR={env} is not a NeuralAmpModelerCore checkout (no NAM/get_dsp.h)"
    return f"a NeuralAmpModelerCore checkout (--nam-core-dir, or FXFORGE_NAM_CORE_DIR; git clone {CORE_URL})"


def find_eigen(core: Path) -> Optional[Path]:
    for cand in (core / "Dependencies" / "eigen", *map(Path, EIGEN_CANDIDATES)):
        if (cand / "Eigen" / "Dense").is_file():
            return cand.resolve()
    return None


def find_json(core: Path) -> Optional[Path]:
    """The folder holding json.hpp (the core includes it as "json.hpp")."""
    for cand in (core / "Dependencies" / "nlohmann", *map(Path, JSON_CANDIDATES)):
        if (cand / "json.hpp").is_file():
            return cand.resolve()
    return None


def find_compiler() -> Optional[str]:
    for cand in (os.environ.get("CXX"), "g++", "clang++", "c++"):
        if cand and shutil.which(cand):
            return shutil.which(cand)
    return None


def missing(core: Optional[Path], compiler: Optional[str]) -> Optional[str]:
    """None when the check can be built, else what it needs, for the 'skipped' line."""
    if core is None:
        return why_no_core()
    if compiler is None:
        return "a C++ compiler (g++ or clang++)"
    if find_eigen(core) is None:
        return (f"Eigen: {core}/Dependencies/eigen is empty and there is no system Eigen "
                "(git submodule update --init in the core, or apt-get install libeigen3-dev)")
    if find_json(core) is None:
        return "nlohmann/json (the core's Dependencies/nlohmann/json.hpp, or apt-get install nlohmann-json3-dev)"
    return None


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "fxforge"


def _sources(core: Path) -> list[Path]:
    return sorted(core.glob("NAM/*.cpp")) + sorted(core.glob("NAM/*/*.cpp"))


def build_check(core: Path, compiler: str, jobs: int = 2, announce=lambda line: None) -> Path:
    """The compiled check program (built on first use, then reused while the core's sources are unchanged)."""
    eigen, nl = find_eigen(core), find_json(core)
    h = hashlib.sha256(SOURCE.read_bytes())
    for part in (str(core), str(eigen), str(nl), compiler, " ".join(FLAGS)):
        h.update(part.encode() + b"\0")
    for path in _sources(core) + sorted(core.glob("NAM/**/*.h")):
        h.update(str(path.relative_to(core)).encode() + b"\0" + path.read_bytes())
    exe = _cache_dir() / f"nam_check-{h.hexdigest()[:16]}"
    if exe.is_file() and os.access(exe, os.X_OK):
        return exe
    exe.parent.mkdir(parents=True, exist_ok=True)
    announce(f"compiling NeuralAmpModelerCore's loader from {core} (once; cached as {exe})")
    include = [f"-I{core}", f"-I{nl}", "-isystem", str(eigen)]
    with tempfile.TemporaryDirectory(dir=exe.parent, prefix=".nam_check-") as tmp:
        units = [SOURCE, *_sources(core)]
        objects = [Path(tmp, f"{i:03d}_{src.stem}.o") for i, src in enumerate(units)]

        def compile_one(pair):
            src, obj = pair
            return src, subprocess.run([compiler, *FLAGS, *include, "-c", str(src), "-o", str(obj)],
                                       capture_output=True, text=True)

        # A few dozen translation units: two at a time, as the rest of fxforge builds (-j2).
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            for src, out in pool.map(compile_one, zip(units, objects)):
                if out.returncode != 0:
                    first = next((line for line in out.stderr.splitlines() if "error" in line), out.stderr[:200])
                    raise FxforgeError(f"{src}: compiling NeuralAmpModelerCore's loader failed ({first.strip()[:200]})")
        linked = Path(tmp, "nam_check")
        out = subprocess.run([compiler, *map(str, objects), "-o", str(linked)], capture_output=True, text=True)
        if out.returncode != 0:
            first = next((line for line in out.stderr.splitlines() if "error" in line or "undefined" in line),
                         out.stderr[:200])
            raise FxforgeError(f"{SOURCE.name}: linking against {core} failed ({first.strip()[:200]})")
        os.chmod(linked, 0o755)
        os.replace(linked, exe)
    return exe


def render(exe: Path, model_nam: Path, x: np.ndarray, block: int = 64, prewarm: bool = True) -> tuple[np.ndarray, dict]:
    """``x`` (1-D float32) through the file as the core plays it, and what the program reported
    (``architecture``, ``prewarm_samples``: the silence it ran first, ``sample_rate``)."""
    with tempfile.TemporaryDirectory(prefix="fxforge-nam-") as tmp:
        src, dst = Path(tmp, "in.f32"), Path(tmp, "out.f32")
        np.ascontiguousarray(x, dtype=np.float32).tofile(src)
        out = subprocess.run([str(exe), str(model_nam), str(src), str(dst), str(int(block)), str(int(bool(prewarm)))],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise FxforgeError(" ".join(out.stderr.split())[:300] or f"{exe.name} exited with {out.returncode}")
        return np.fromfile(dst, dtype=np.float32), json.loads(out.stdout.strip().splitlines()[-1])
