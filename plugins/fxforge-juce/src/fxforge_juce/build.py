"""Configure, build and verify a generated plugin project."""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from typing import Callable

import numpy as np

from fxforge import FxforgeError

LINUX_APT = ("libx11-dev libxext-dev libxrandr-dev libxinerama-dev libxcursor-dev "
             "libfreetype-dev libasound2-dev")
JUCE_PREFIXES = ["/usr/lib/cmake", "/usr/lib/*/cmake", "/usr/local/lib/cmake", "/usr/local/lib/*/cmake",
                 "/usr/share", "/opt/homebrew/lib/cmake", "/opt/local/lib/cmake"]


# ---------------------------------------------------------------- prerequisites


def find_cmake() -> str:
    cmake = shutil.which("cmake")
    if not cmake:
        raise FxforgeError("cmake not found: install CMake >= 3.22 (apt-get install cmake, or pip install cmake)")
    out = subprocess.run([cmake, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"(\d+)\.(\d+)", out)
    if m and (int(m[1]), int(m[2])) < (3, 22):
        raise FxforgeError(f"cmake {m[0]} is too old: JUCE needs CMake >= 3.22 (pip install cmake)")
    return cmake


def find_compiler() -> str:
    for cand in [os.environ.get("CXX"), "c++", "g++", "clang++"]:
        if cand and shutil.which(cand):
            return shutil.which(cand)
    raise FxforgeError("no C++ compiler found: install one (apt-get install g++, or Xcode / Visual Studio)")


def find_juce_package() -> Path | None:
    roots = [p for p in os.environ.get("CMAKE_PREFIX_PATH", "").split(os.pathsep) if p]
    if os.environ.get("JUCE_DIR"):
        roots.insert(0, os.environ["JUCE_DIR"])
    patterns = []
    for r in roots:
        patterns += [f"{r}/JUCEConfig.cmake", f"{r}/lib/cmake/JUCE*/JUCEConfig.cmake", f"{r}/lib/*/cmake/JUCE*/JUCEConfig.cmake"]
    patterns += [f"{p}/JUCE*/JUCEConfig.cmake" for p in JUCE_PREFIXES]
    for pat in patterns:
        hits = sorted(glob.glob(pat))
        if hits:
            return Path(hits[-1])
    return None


def check_rtneural(path: Path) -> Path:
    path = Path(path).expanduser().resolve()
    if not (path / "RTNeural" / "RTNeural.h").is_file():
        raise FxforgeError(f"--rtneural-dir {path} is not an RTNeural checkout (git clone https://github.com/jatinchowdhury18/RTNeural)")
    if not (path / "modules" / "Eigen" / "Eigen").is_dir():
        raise FxforgeError(f"--rtneural-dir {path} lacks modules/Eigen (use a full RTNeural checkout)")
    return path


def check_juce_dir(path: Path) -> Path:
    path = Path(path).expanduser().resolve()
    if not (path / "CMakeLists.txt").is_file() or not (path / "modules" / "juce_core").is_dir():
        raise FxforgeError(f"--juce-dir {path} is not a JUCE checkout (git clone https://github.com/juce-framework/JUCE)")
    return path


def check_linux_libraries(formats: list[str]) -> None:
    if not sys.platform.startswith("linux"):
        return
    needed = ["x11", "xext", "xrandr", "xinerama", "freetype2"] + (["alsa"] if "Standalone" in formats else [])
    missing = []
    if shutil.which("pkg-config"):
        missing = [m for m in needed if subprocess.run(["pkg-config", "--exists", m]).returncode != 0]
    else:
        headers = {"x11": "X11/Xlib.h", "xext": "X11/extensions/XShm.h", "xrandr": "X11/extensions/Xrandr.h",
                   "xinerama": "X11/extensions/Xinerama.h", "freetype2": "freetype2/ft2build.h", "alsa": "alsa/asoundlib.h"}
        missing = [m for m in needed if not any(Path(d, headers[m]).exists() for d in ("/usr/include", "/usr/local/include"))]
    if missing:
        raise FxforgeError(f"missing Linux libraries for JUCE ({', '.join(missing)}): apt-get install {LINUX_APT}")


# ---------------------------------------------------------------- configure + build


def _cached_generator(build_dir: Path) -> str | None:
    cache = build_dir / "CMakeCache.txt"
    if cache.is_file():
        m = re.search(r"^CMAKE_GENERATOR:INTERNAL=(.*)$", cache.read_text(errors="replace"), re.M)
        if m:
            return m[1].strip()
    return None


def configure_command(project: Path, build_dir: Path, config, cmake: str) -> list[str]:
    cmd = [cmake, "-S", str(project), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release", "-DFETCHCONTENT_QUIET=ON"]
    generator = _cached_generator(build_dir) or ("Ninja" if shutil.which("ninja") else None)
    if generator:
        cmd += ["-G", generator]
    if config.rtneural_dir:
        cmd.append(f"-DFETCHCONTENT_SOURCE_DIR_RTNEURAL={check_rtneural(config.rtneural_dir)}")
    if config.juce_dir:
        cmd.append(f"-DFXFORGE_JUCE_DIR={check_juce_dir(config.juce_dir)}")
    cmd.append(f"-DFXFORGE_AVX2={'OFF' if config.portable else 'ON'}")
    cmd.append("-DFXFORGE_FORMATS=" + ";".join(config.formats))
    return cmd


def _explain_configure_failure(log: str, log_path: Path) -> str:
    for line in log.splitlines():
        m = re.search(r"fxforge: ((JUCE|RTNeural) not found.*)", line)
        if m:
            return m[1].strip()
    if "fetching RTNeural from GitHub" in log and re.search(r"(?i)(rtneural.*(fail|error))|(could not resolve|unable to access)", log):
        return "could not download RTNeural from GitHub: pass --rtneural-dir DIR (a checkout of https://github.com/jatinchowdhury18/RTNeural) or set FXFORGE_RTNEURAL_DIR"
    if "fetching JUCE" in log:
        return "could not download JUCE from GitHub: apt-get install juce-modules-source, or pass --juce-dir DIR"
    first = next((l.strip() for l in log.splitlines() if "CMake Error" in l or "error:" in l.lower()), "")
    return f"cmake configure failed ({first[:160]}); full log: {log_path}"


def _run_logged(cmd: list[str], log_path: Path, on_line: Callable[[str], None]) -> tuple[int, str]:
    tail: deque[str] = deque(maxlen=400)
    with open(log_path, "a", encoding="utf-8", buffering=1) as log:  # line-buffered: tail -f works
        log.write("$ " + " ".join(cmd) + "\n")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            tail.append(line)
            on_line(line.rstrip("\n"))
        rc = proc.wait()
    return rc, "".join(tail)


_NINJA = re.compile(r"^\[(\d+)/(\d+)\]\s*(.*)")
_MAKE = re.compile(r"^\[\s*(\d+)%\]\s*(.*)")


def build_project(project: Path, config, console=None, extra_cmake_args: list[str] | None = None) -> dict[str, Path]:
    """Configure + build (Release, all cores) with live progress; returns {format: artifact path}.

    Also writes build/fxforge-build-times.json (configure and build seconds)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = console or Console(stderr=True)
    project = Path(project).resolve()
    cmake = find_cmake()
    find_compiler()
    if config.juce_dir is None and find_juce_package() is None:
        check_linux_libraries(config.formats)
        console.print("[yellow]no installed JUCE found: it will be downloaded from GitHub "
                      "(apt-get install juce-modules-source, or pass --juce-dir, to avoid this)[/yellow]")
    else:
        check_linux_libraries(config.formats)
    if config.rtneural_dir is None:
        console.print("[yellow]RTNeural will be downloaded from GitHub (pass --rtneural-dir or set FXFORGE_RTNEURAL_DIR to use a checkout)[/yellow]")

    build_dir = project / "build"
    build_dir.mkdir(parents=True, exist_ok=True)
    log_path = build_dir / "fxforge-build.log"
    log_path.write_text("")
    jobs = config.jobs or os.cpu_count() or 1

    t0 = time.monotonic()
    with console.status("configuring (cmake)..."):
        cmd = configure_command(project, build_dir, config, cmake) + list(extra_cmake_args or [])
        rc, log = _run_logged(cmd, log_path, lambda _l: None)
    if rc != 0:
        raise FxforgeError(_explain_configure_failure(log_path.read_text(errors="replace"), log_path))
    t_conf = time.monotonic() - t0

    cmd = [cmake, "--build", str(build_dir), "--config", "Release", "-j", str(jobs)]
    with Progress(TextColumn("[bold]building[/bold]"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeElapsedColumn(), TextColumn("[dim]{task.fields[step]}"), console=console, transient=False) as progress:
        task = progress.add_task("build", total=100, step="")

        def on_line(line: str):
            m = _NINJA.match(line)
            if m:
                done, total = int(m[1]), int(m[2])
                progress.update(task, completed=100.0 * done / max(total, 1), step=_short(m[3]))
                return
            m = _MAKE.match(line)
            if m:
                progress.update(task, completed=float(m[1]), step=_short(m[2]))

        rc, log = _run_logged(cmd, log_path, on_line)
        if rc == 0:
            progress.update(task, completed=100, step="done")
    if rc != 0:
        first = next((l.strip() for l in log.splitlines() if re.search(r"(error:|Error \d|FAILED)", l)), "")
        raise FxforgeError(f"build failed ({first[:200]}); full log: {log_path}")
    t_build = time.monotonic() - t0 - t_conf

    artifacts = find_artifacts(build_dir)
    console.print(f"built in {t_build:.0f} s (configure {t_conf:.0f} s), {jobs} jobs; log: {log_path}")
    for fmt, path in artifacts.items():
        console.print(f"  {fmt:<10} {path}  [dim]({_size(path) / 1e6:.1f} MB)[/dim]")
    if "VST3" in config.formats and "VST3" not in artifacts:
        raise FxforgeError(f"build finished but no VST3 was found under {build_dir}")
    (build_dir / "fxforge-build-times.json").write_text(
        '{"configure_s": %.2f, "build_s": %.2f, "jobs": %d}\n' % (t_conf, t_build, jobs))
    return artifacts


def _short(step: str) -> str:
    step = step.strip()
    return step if len(step) <= 60 else "..." + step[-57:]


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def find_artifacts(build_dir: Path) -> dict[str, Path]:
    base = Path(build_dir) / "FxforgePlugin_artefacts"
    found: dict[str, Path] = {}
    for cfg in ("Release", ""):
        root = base / cfg if cfg else base
        for fmt, pattern in (("VST3", "VST3/*.vst3"), ("LV2", "LV2/*.lv2"), ("AU", "AU/*.component"),
                             ("AAX", "AAX/*.aaxplugin"), ("Standalone", "Standalone/*")):
            hits = sorted(root.glob(pattern))
            if hits and fmt not in found:
                found[fmt] = hits[0]
    return found


def vst3_binary(bundle: Path) -> Path:
    """The shared library inside a .vst3 bundle (or the bundle itself when it is a file)."""
    if bundle.is_file():
        return bundle
    libs = sorted(p for p in bundle.rglob("*") if p.suffix in (".so", ".dll", ".vst3") and p.is_file())
    return libs[0] if libs else bundle


# ---------------------------------------------------------------- verify

VERIFY_BLOCKS = (1, 17, 64, 512, 4096)


def test_signal(sample_rate: int, seconds: float = 0.5, seed: int = 0) -> np.ndarray:
    """Two different channels (so that per-channel state is checked): a log sweep and noise bursts."""
    n = int(sample_rate * seconds)
    t = np.arange(n) / sample_rate
    f0, f1 = 40.0, min(12000.0, 0.45 * sample_rate)
    k = np.log(f1 / f0) / seconds
    sweep = 0.6 * np.sin(2 * np.pi * f0 * (np.exp(k * t) - 1) / k)
    rng = np.random.default_rng(seed)
    env = np.repeat(rng.uniform(0.05, 0.9, size=n // 2400 + 1), 2400)[:n]
    bursts = env * rng.standard_normal(n) * 0.5
    return np.stack([sweep, bursts]).astype(np.float32)


def verify_plugin(vst3: Path, reference: Callable, sample_rate: int, blocks=VERIFY_BLOCKS,
                  console=None, seconds: float = 0.5) -> dict[int, float]:
    """Process a test signal with the built VST3 (pedalboard) and with ``reference(x, block)``.

    Returns {block size: max abs error over both channels}. The plugin is reset
    before each block size, as the reference starts from a zero state.
    """
    import pedalboard
    import torch
    from rich.console import Console
    from rich.table import Table

    console = console or Console(stderr=True)
    plugin = pedalboard.load_plugin(str(vst3))
    x = test_signal(sample_rate, seconds)
    errors: dict[int, float] = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny per-block ops: threads only add overhead
    try:
        errors = _compare(plugin, x, reference, sample_rate, blocks)
    finally:
        torch.set_num_threads(threads)
    table = Table(title=f"plugin vs PyTorch, {x.shape[1]} samples x {x.shape[0]} channels at {sample_rate} Hz")
    table.add_column("block", justify="right")
    table.add_column("max abs error", justify="right")
    for block, err in errors.items():
        table.add_row(str(block), f"{err:.3g}")
    console.print(table)
    return errors


def _compare(plugin, x, reference, sample_rate, blocks) -> dict[int, float]:
    import torch

    errors: dict[int, float] = {}
    for block in blocks:
        y = plugin.process(x, float(sample_rate), buffer_size=int(block), reset=True)
        err = 0.0
        for ch in range(x.shape[0]):
            with torch.no_grad():
                ref = reference(torch.from_numpy(x[ch].copy()), int(block))
            ref = ref.detach().cpu().numpy().reshape(-1).astype(np.float64)
            err = max(err, float(np.max(np.abs(y[ch].astype(np.float64) - ref))))
        errors[int(block)] = err
    return errors
