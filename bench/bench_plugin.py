"""Benchmark the exported JUCE plugin: build time, binary size, real-time factors.

    python bench/bench_plugin.py [--run RUN_DIR] [--hidden 32] [--jobs N] [--no-clean]

Real-time factor = seconds of 48 kHz mono audio processed per second of CPU
time on one core, at block sizes 64 and 512, measured three ways:

- ``cpp``: bench/fxforge_bench.cpp, a JUCE-free host compiled against the generated model
  header with the flags of the plugin's build (AVX2/FMA or not, as its CMake cache says):
  the model's block API as processBlock calls it, no host overhead.
- ``plugin``: the built VST3 driven by pedalboard (processBlock + host glue).
- ``torch``: ``fxforge.nn.stream.process`` with one thread, the same blocks.

Without a run it exports a seeded, untrained wave-lstm of --hidden units (the
speed does not depend on the weights). Needs JUCE, CMake, a C++ compiler and
FXFORGE_RTNEURAL_DIR; otherwise it prints why and writes {"skipped": ...}.
Results: stdout and bench/results/plugin.json. Never asserted by the tests.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "plugin.json"
SR = 48_000
BLOCKS = (64, 512)


def write(result: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"wrote {RESULTS}")


def prerequisites() -> str | None:
    try:
        import fxforge_juce  # noqa: F401
        import pedalboard  # noqa: F401
    except ImportError as e:
        return f"{e.name} is not installed (pip install -e plugins/fxforge-juce)"
    from fxforge_juce.build import find_juce_package

    rt = os.environ.get("FXFORGE_RTNEURAL_DIR")
    if not rt or not Path(rt, "RTNeural", "RTNeural.h").is_file():
        return "set FXFORGE_RTNEURAL_DIR to an RTNeural checkout (git clone https://github.com/jatinchowdhury18/RTNeural)"
    if not shutil.which("cmake"):
        return "cmake not found (apt-get install cmake)"
    if not (os.environ.get("FXFORGE_JUCE_DIR") or find_juce_package()):
        return "JUCE not found (apt-get install juce-modules-source, or set FXFORGE_JUCE_DIR)"
    return None


def seeded_run(hidden: int):
    import torch
    from fxforge.builtins.wave_lstm.plugin import WaveLSTM

    torch.manual_seed(0)
    model = WaveLSTM(hidden, 1, True).eval()
    return SimpleNamespace(path=Path("(seeded)"), model=model, sample_rate=SR,
                           config=SimpleNamespace(name=f"bench-lstm-{hidden}", model=SimpleNamespace(name="wave-lstm")),
                           summary={})


def signal(seconds: float):
    import numpy as np

    rng = np.random.default_rng(0)
    t = np.arange(int(SR * seconds)) / SR
    return (0.4 * np.sin(2 * np.pi * 220 * t) + 0.1 * rng.standard_normal(t.size)).astype(np.float32)


def one_core(cmd: list[str]) -> list[str]:
    return (["taskset", "-c", "0"] + cmd) if shutil.which("taskset") else cmd


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, help="a trained run directory (default: a seeded wave-lstm)")
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "bench-plugin")
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--seconds", type=float, default=10.0, help="audio per RTF measurement")
    ap.add_argument("--no-clean", action="store_true", help="reuse an existing build (build time then incremental)")
    ap.add_argument("--portable", action="store_true", help="build without AVX2/FMA")
    ap.add_argument("--name", help="plugin name (with --no-clean: the one the existing build used)")
    ap.add_argument("--formats", default="VST3", help="with --no-clean: the formats the existing build used")
    args = ap.parse_args()

    why = prerequisites()
    if why:
        print(f"skipped: {why}")
        write({"skipped": why})
        return 0

    import pedalboard
    import torch
    from rich.console import Console

    from fxforge_juce.build import build_project, vst3_binary
    from fxforge_juce.plugin import JuceConfig, generate

    console = Console(stderr=True)
    if args.run:
        from fxforge import load_run

        run = load_run(args.run)
    else:
        run = seeded_run(args.hidden)
    if not args.no_clean:
        shutil.rmtree(args.out / "build", ignore_errors=True)
    config = JuceConfig(out=args.out, name=args.name, formats=args.formats, jobs=args.jobs, portable=args.portable)
    project = generate(run, config)
    t0 = time.monotonic()
    artifacts = build_project(project.dir, config, console=console)
    wall = time.monotonic() - t0
    times = json.loads((project.dir / "build" / "fxforge-build-times.json").read_text())
    vst3 = artifacts["VST3"]
    binary = vst3_binary(vst3)
    stripped = None
    if shutil.which("strip"):
        tmp = project.dir / "build" / "stripped.so"
        subprocess.run(["strip", "-o", str(tmp), str(binary)], check=False)
        stripped = tmp.stat().st_size if tmp.exists() else None
    cache = (project.dir / "build" / "CMakeCache.txt").read_text(errors="replace")
    avx = "RTNEURAL_USE_AVX:BOOL=ON" in cache

    # C++ host: the processBlock loop without JUCE or a host, with the flags of the plugin's build.
    from bench_plugin_models import BENCH_SOURCE, OUR_FLAGS, compile_cmd, find_cxx

    rt = Path(os.environ["FXFORGE_RTNEURAL_DIR"])
    bench_exe = project.dir / "build" / "fxforge_bench"
    compile_cmd(find_cxx(None), OUR_FLAGS["avx2" if avx else "portable"], [str(BENCH_SOURCE)],
                [project.dir / "Source", rt, rt / "RTNeural", rt / "modules" / "Eigen", rt / "modules" / "json"],
                bench_exe)
    out = subprocess.run(one_core([str(bench_exe), str(project.dir / "Resources" / "model_weights.json"), str(SR),
                                   str(args.seconds), *map(str, BLOCKS)]), capture_output=True, text=True, check=True)
    cpp = {int(k): v for k, v in json.loads(out.stdout)["rtf"].items()}

    # The VST3 through pedalboard (one thread: pedalboard processes on the calling thread).
    plugin = pedalboard.load_plugin(str(vst3))
    x = signal(args.seconds)[None, :]
    vst = {}
    for block in BLOCKS:
        plugin.process(x[:, : SR // 10], SR, buffer_size=block, reset=True)  # warm-up
        c0 = time.process_time()
        plugin.process(x, SR, buffer_size=block, reset=True)
        vst[block] = round(args.seconds / (time.process_time() - c0), 2)

    # PyTorch streaming on one thread.
    from fxforge.nn.stream import process

    torch.set_num_threads(1)
    secs = min(args.seconds, 2.0)
    xt = torch.from_numpy(signal(secs))
    tor = {}
    for block in BLOCKS:
        process(run.model, xt[:SR // 20], block)
        c0 = time.process_time()
        process(run.model, xt, block)
        tor[block] = round(secs / (time.process_time() - c0), 2)

    result = {
        "model": run.config.model.name,
        "architecture": project.rt.architecture,
        "sample_rate": SR,
        "avx2_fma": avx,
        "build": {"configure_s": times["configure_s"], "build_s": times["build_s"], "jobs": times["jobs"],
                  "wall_s": round(wall, 1), "clean": not args.no_clean, "formats": config.formats},
        "binary": {"path": str(binary), "bytes": binary.stat().st_size, "stripped_bytes": stripped},
        "rtf": {
            "cpp_model_loop": cpp,
            "plugin_pedalboard": vst,
            "torch_stream": tor,
        },
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version(), "torch": torch.__version__,
                    "pedalboard": pedalboard.__version__},
        "goal": ">= 100x real time for LSTM-32 at block 64",
    }
    write(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
