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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from fxforge import FxforgeError

LINUX_APT = ("libx11-dev libxext-dev libxrandr-dev libxinerama-dev libxcursor-dev "
             "libfreetype-dev libasound2-dev")
#: The JUCE-free renderer of a generated project's model over raw float32 audio (a parity check
#: in seconds; the tests compile it with the project's Source/ on the include path).
RENDER_SOURCE = Path(__file__).resolve().parent / "check" / "fxforge_render.cpp"
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
HEADROOM_DB = 3.0        # the verify DI peaks this far above the run's training input peak
SILENT_DB = -80.0


def test_signal(sample_rate: int, seconds: float = 1.0, input_peak: float | None = None) -> np.ndarray:
    """Two different channels (so that per-channel state is checked) of fxforge's guitar-like DI,
    each peaking HEADROOM_DB above the run's training input peak (0.5 when unknown)."""
    from fxforge import synth_di

    peak = input_peak if isinstance(input_peak, (int, float)) and 0 < input_peak <= 4 else 0.5
    peak *= 10 ** (HEADROOM_DB / 20)
    out = []
    for seed in (3, 4):
        x = synth_di(seconds, seed).astype(np.float64)
        if sample_rate != 48_000:  # the DI generator plays at 48 kHz; the model's rate is what counts here
            x = np.interp(np.arange(int(seconds * sample_rate)) * 48_000 / sample_rate, np.arange(len(x)), x)
        out.append(peak * x / max(1e-9, np.max(np.abs(x))))
    return np.stack(out).astype(np.float32)


def probe_signals(sample_rate: int, level: float) -> list[tuple[str, np.ndarray, int]]:
    """(name, mono signal, index where the input stops): what makes a plugin ring or blow up."""
    from fxforge import pluck

    n, tail = int(0.5 * sample_rate), int(1.0 * sample_rate)
    t = np.arange(n) / sample_rate
    burst = level * np.minimum(1.0, t / 0.01) * np.sin(2 * np.pi * 110 * t)
    low = pluck(82.41, 1.0, 1.0, 0.998, np.random.default_rng(0))  # low E, picked hard
    low = min(1.0, 2 * level) * low / max(1e-9, np.max(np.abs(low)))
    return [("110 Hz burst, then silence", np.concatenate([burst, np.zeros(tail)]).astype(np.float32), n),
            ("loud low E (+6 dB), then silence", np.concatenate([low, np.zeros(tail)]).astype(np.float32), len(low))]


@dataclass
class VerifyResult:
    errors: dict[int, float]             # block size -> max abs error, where the model itself is trustworthy
    f32_vs_f64: float                    # the model's own float32 vs float64 over the test signal
    sensitive_from_dbfs: float | None    # input level where float32 and float64 part (None: they never do)
    compared_seconds: float              # how much of the signal the errors cover
    probes: list[dict] = field(default_factory=list)
    lv2: dict | None = None

    def passed(self, tolerance: float) -> bool:
        return max(self.errors.values()) <= tolerance and all(p["finite"] for p in self.probes) \
            and (self.lv2 is None or self.lv2.get("error", 0.0) <= tolerance)


def _reference64(model, x: np.ndarray) -> np.ndarray:
    """The model in float64 (as fxforge.nn.stress runs its probes), 1-D in and out, latency compensated."""
    import copy

    import torch
    from fxforge import map_state, run_blocks

    m64 = copy.deepcopy(model).cpu().double().eval()
    latency = int(getattr(model, "latency", 0))
    xt = torch.from_numpy(np.concatenate([x.astype(np.float64), np.zeros(latency)])).reshape(1, -1, 1)
    state = map_state(m64.initial_state(1, torch.device("cpu")),
                      lambda t: t.double() if t.is_floating_point() else t)
    with torch.no_grad():
        y, _ = run_blocks(m64, xt, None, state)
    return y.reshape(-1)[latency : latency + len(x)].numpy()


def _trusted(y32: np.ndarray, y64: np.ndarray, tolerance: float) -> int:
    """Samples before the model's own float32 and float64 outputs part by more than ``tolerance``."""
    bad = np.flatnonzero(np.abs(y32.astype(np.float64) - y64) > tolerance)
    return int(bad[0]) if bad.size else len(y32)


def _decay_ms(y: np.ndarray, stop: int, sample_rate: int) -> float | None:
    after = np.abs(y[stop:].astype(np.float64))
    loud = np.flatnonzero(after >= 10 ** (SILENT_DB / 20))
    if loud.size and loud[-1] >= len(after) - 1:
        return None  # never fell below -80 dBFS
    return 1000.0 * (int(loud[-1]) + 1) / sample_rate if loud.size else 0.0


def _db(v: float) -> str:
    return f"{20 * np.log10(v):.1f} dBFS" if v > 0 else "-inf dBFS"


def verify_plugin(vst3: Path, model, sample_rate: int, blocks=VERIFY_BLOCKS, console=None, seconds: float = 1.0,
                  input_peak: float | None = None, tolerance: float = 1e-4, lv2: Path | None = None) -> VerifyResult:
    """The built VST3 (hosted by pedalboard) against the run's model on a guitar-like DI at the
    training level, at several block sizes, each from a reset.

    Where the model's own float32 and float64 outputs already part by more than ``tolerance``,
    no implementation can match it sample for sample: the plugin is compared up to there, and the
    level where that starts is reported (an export bug shows before it, a touchy model after it).
    Burst-then-silence and a loud low note are run through the plugin for its peak and decay.
    With ``lv2`` (a built bundle) the LV2 is rendered in a real host too: jalv on a JACK dummy
    server where jalv and jackd are installed, else lv2file.
    """
    import pedalboard
    import torch
    from rich.console import Console
    from rich.table import Table

    from fxforge import stream_process as process

    console = console or Console(stderr=True)
    plugin = pedalboard.load_plugin(str(vst3))
    x = test_signal(sample_rate, seconds, input_peak)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny per-block ops: threads only add overhead
    try:
        refs = {}
        for block in blocks:
            refs[int(block)] = [process(model, torch.from_numpy(x[ch].copy()), int(block)).numpy()
                                for ch in range(x.shape[0])]
        whole = [process(model, torch.from_numpy(x[ch].copy())).numpy() for ch in range(x.shape[0])]
        ref64 = [_reference64(model, x[ch]) for ch in range(x.shape[0])]
        trust = min(_trusted(whole[ch], ref64[ch], tolerance) for ch in range(x.shape[0]))
        f32_vs_f64 = max(float(np.max(np.abs(whole[ch].astype(np.float64) - ref64[ch]))) for ch in range(x.shape[0]))
        errors = {}
        for block in blocks:
            y = plugin.process(x, float(sample_rate), buffer_size=int(block), reset=True)
            errors[int(block)] = max(float(np.max(np.abs(y[ch, :trust].astype(np.float64) - refs[int(block)][ch][:trust]),
                                                  initial=0.0)) for ch in range(x.shape[0]))
        probes = []
        for name, p, stop in probe_signals(sample_rate, float(np.max(np.abs(x)))):
            y = plugin.process(np.stack([p, p]), float(sample_rate), buffer_size=512, reset=True)[0]
            finite = bool(np.isfinite(y).all())
            probes.append({"name": name, "input_peak": float(np.max(np.abs(p))), "finite": finite,
                           "output_peak": float(np.max(np.abs(y))) if finite else float("nan"),
                           "decay_ms": _decay_ms(y, stop, sample_rate) if finite else None})
        lv2_result = _verify_lv2(lv2, x, whole, trust, sample_rate, model) if lv2 is not None else None
    finally:
        torch.set_num_threads(threads)
    sensitive = None
    if trust < x.shape[1]:
        sensitive = 20 * np.log10(max(1e-9, float(np.max(np.abs(x[:, : trust + 1])))))
    result = VerifyResult(errors, f32_vs_f64, sensitive, trust / sample_rate, probes, lv2_result)

    level = _db(float(np.max(np.abs(x))))
    table = Table(title=f"plugin vs PyTorch: guitar-like DI peaking at {level} (training level + {HEADROOM_DB:g} dB), "
                        f"{x.shape[1]} samples x {x.shape[0]} channels at {sample_rate} Hz")
    table.add_column("block", justify="right")
    table.add_column("max abs error", justify="right")
    for block, err in errors.items():
        table.add_row(str(block), f"{err:.3g}")
    console.print(table)
    if sensitive is not None:
        console.print(f"[yellow]the model is numerically sensitive on this input (from {sensitive:.1f} dBFS): its own "
                      f"float32 and float64 outputs part by up to {f32_vs_f64:.3g}, so the plugin is compared over the "
                      f"first {result.compared_seconds:.3f} s only; that is the model, not the export "
                      f"(see `fxforge check RUN`)[/yellow]")
    else:
        console.print(f"the model's own float32 vs float64: {f32_vs_f64:.3g} (not sensitive on this input)")
    for p in probes:
        decay = "never below -80 dBFS" if p["decay_ms"] is None else f"{p['decay_ms']:.0f} ms to -80 dBFS"
        out = _db(p["output_peak"]) if p["finite"] else "NaN/Inf"
        console.print(f"  probe {p['name']}: input {_db(p['input_peak'])}, output peak {out}, "
                      f"{decay if p['finite'] else 'non-finite output'}")
    if lv2_result is not None:
        console.print(f"  LV2 in {lv2_result['host']}: " + (
            f"max abs error {lv2_result['error']:.3g}" if "error" in lv2_result else lv2_result["skipped"]))
    return result


# ---------------------------------------------------------------- LV2


def lv2_uris(bundle: Path) -> list[str]:
    """Every <...> IRI in the bundle's Turtle files that is not absolute (lilv refuses such a plugin or UI)."""
    bad = []
    for ttl in sorted(Path(bundle).glob("*.ttl")):
        for iri in re.findall(r"<([^<>\s]*)>", ttl.read_text(errors="replace")):
            if iri and not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", iri) and not iri.endswith((".so", ".ttl", ".dll", ".dylib")):
                bad.append(f"{ttl.name}: <{iri}>")
    return bad


def _lv2_plugin_uri(bundle: Path) -> str | None:
    manifest = Path(bundle) / "manifest.ttl"
    if not manifest.is_file():
        return None
    m = re.search(r"<(https?://[^>]+)>\s*a\s+lv2:Plugin", manifest.read_text(errors="replace"))
    return m[1] if m else None


def _lilv_finds(uri: str, env: dict) -> bool:
    info = shutil.which("lv2info")
    if not info:
        return False
    out = subprocess.run([info, uri], capture_output=True, text=True, env=env, timeout=60)
    return out.returncode == 0 and uri in out.stdout


def _verify_lv2_jalv(bundle: Path, uri: str, x: np.ndarray, trust: int, sample_rate: int, model) -> dict:
    """The LV2 hosted by jalv against the model run on the same silence, then the signal."""
    import torch

    from fxforge import stream_process as process

    from .lv2host import PREROLL, render

    host = "jalv (JACK dummy backend)"
    try:
        y, info = render(bundle, uri, x, sample_rate)
    except RuntimeError as e:
        return {"host": host, "uri": uri, "error": float("inf"), "skipped": str(e)}
    err = 0.0
    for ch in range(x.shape[0]):
        padded = np.concatenate([np.zeros(PREROLL, np.float32), x[ch]])
        ref = process(model, torch.from_numpy(padded)).numpy()[PREROLL:]
        err = max(err, float(np.max(np.abs(y[ch, :trust].astype(np.float64) - ref[:trust]), initial=0.0)))
    return {"host": f"{host}, {info.get('period')}-sample periods, after {PREROLL} samples of silence",
            "uri": uri, "error": err}


def _verify_lv2(bundle: Path, x: np.ndarray, refs: list[np.ndarray], trust: int, sample_rate: int,
                model=None) -> dict:
    """The LV2 rendered by a real LV2 host (jalv where it is installed, else lv2file; both
    through lilv) against the model."""
    import soundfile as sf

    from .lv2host import HostMissing, tools

    no_jalv = "no model to compare with"
    if model is not None:
        try:
            tools()
            bad, uri = lv2_uris(bundle), _lv2_plugin_uri(bundle)
            if not bad and uri:
                return _verify_lv2_jalv(bundle, uri, x, trust, sample_rate, model)
        except HostMissing as e:
            no_jalv = str(e)
    host = shutil.which("lv2file")
    if not host:
        return {"host": "lv2file", "skipped": f"skipped: jalv: {no_jalv}; lv2file is not installed (apt-get install lv2file)"}
    bad = lv2_uris(bundle)
    if bad:
        return {"host": "lv2file", "error": float("inf"), "skipped": f"relative IRIs: {', '.join(bad[:3])}"}
    uri = _lv2_plugin_uri(bundle)
    if not uri:
        return {"host": "lv2file", "error": float("inf"), "skipped": f"no lv2:Plugin in {bundle}/manifest.ttl"}
    import tempfile

    with tempfile.TemporaryDirectory(prefix="fxforge-lv2-") as tmp:
        src, dst = Path(tmp, "in.wav"), Path(tmp, "out.wav")
        sf.write(src, x.T, sample_rate, subtype="FLOAT")
        env = {**os.environ, "LV2_PATH": str(Path(bundle).resolve().parent)}
        out = subprocess.run([host, "-i", str(src), "-o", str(dst), uri], capture_output=True, text=True, env=env,
                             timeout=300)
        if out.returncode != 0 or not dst.is_file():
            msg = " ".join((out.stderr + out.stdout).split())[:200]
            if "Failed to instantiate" in msg and _lilv_finds(uri, env):
                # JUCE's LV2 requires urid:map, options and bufsize:boundedBlockLength (its dsp.ttl);
                # Debian's lv2file does not instantiate it, though lilv reads the bundle: not an export fault.
                return {"host": "lv2file", "uri": uri,
                        "skipped": "not rendered: this lv2file could not instantiate it (JUCE's LV2 requires "
                                   "urid:map, options and bufsize:boundedBlockLength); lilv (lv2info) reads it at its "
                                   f"URI; jalv, which can: {no_jalv}"}
            return {"host": "lv2file", "error": float("inf"), "skipped": f"lv2file failed ({msg})"}
        y, _ = sf.read(dst, dtype="float32", always_2d=True)
    err = 0.0
    for ch in range(min(y.shape[1], len(refs))):
        err = max(err, float(np.max(np.abs(y[:trust, ch].astype(np.float64) - refs[ch][:trust]), initial=0.0)))
    return {"host": "lv2file", "uri": uri, "error": err}
