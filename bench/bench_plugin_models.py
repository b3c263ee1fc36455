"""Plugin CPU cost per model, beside Neural Amp Modeler's plugin core: real-time factor at block 64.

    python bench/bench_plugin_models.py [--nam-core DIR] [--models a,b] [--seconds 10] [--repeats 3]
        [--out /tmp/fxforge-bench-plugin-models] [--no-portable] [--pin CPU]

Real-time factor (RTF) = seconds of 48 kHz mono audio processed per CPU second
on one thread. Higher is better; 1 = just real time.

Ours: for each model `fxforge_juce.plugin.generate` writes the plugin project, and
`bench/fxforge_bench.cpp` (JUCE-free: the model's block API, called on each block of
64 as processBlock calls it) is compiled against its Source/ with the C++ compiler directly, twice:

  avx2:     -O3 -DNDEBUG -mavx2 -mfma -DRTNEURAL_USE_EIGEN=1 -DRTNEURAL_DEFAULT_ALIGNMENT=32
            -DRTNEURAL_AVX_ENABLED=1   (what the plugin's CMake Release build uses on x86-64)
  portable: -O3 -DNDEBUG -DRTNEURAL_USE_EIGEN=1 -DRTNEURAL_DEFAULT_ALIGNMENT=16  (--portable)

Weights are seeded and untrained: the speed does not depend on them.

NAM (with --nam-core DIR, a NeuralAmpModelerCore checkout whose Dependencies/eigen
holds Eigen *with* unsupported/Eigen/FFT, or --nam-eigen DIR): its tools/benchmodel_bufsize.cpp
and tools/benchmodel.cpp are compiled with the same two flag sets (plus -std=c++20
-DNAM_ENABLE_A2_FAST, as NAM's plugin builds) and run on .nam files written by
the installed `nam` package (PyPI neural-amp-modeler; without it, the four legacy
WaveNet sizes are written as .nam JSON directly, seeded weights, and A2/LSTM are left out):
  * nam-wavenet-{standard,lite,feather,nano}: the WaveNet sizes of NAM's trainer
    up to 0.12 (`nam.train.core.get_wavenet_config`; 0.13 dropped the choice),
  * nam-a2-full / nam-a2-lite: 0.13's default (the PackedWaveNet of
    nam/train/_resources/config_model_packed.json, exported as a slimmable
    container; its 8- and 3-channel submodels written as their own .nam),
  * nam-lstm-32: `nam.models.LSTM`, 1 layer, hidden 32,
  * nam-example-a1-standard: the core's trained example_models/wavenet_a1_standard.nam.
benchmodel_bufsize MODEL 64 N runs a 2 s warm-up then N x 2 s and prints its wall
time; the RTF here is from CPU time (the child's rusage of a run with N passes
minus one with 0, i.e. load + warm-up removed), as ours; the wall figure is kept
in the JSON, beside `benchmodel`'s own (block 64, 2 s, no warm-up).
NAM's shipped plugin is built without AVX (macOS x86_64: -O3 -msse -msse2 -msse3,
"//-mavx" commented out; Windows: /O2, default SSE2), so its "portable" column is
the like-for-like figure for NAM's plugin; NAM core's own CMake Release build of
benchmodel uses -Ofast, LTO and no -m flags.

Everything is built first (builds are cached under --out, keyed by flags and
sources), then measured in --repeats rounds, each running every (model, flag set)
once, so that the other load on the machine spreads over all rows; a figure is the
best of its runs, and os.getloadavg() is recorded before and after each run.

Skips (prints why, writes {"skipped": ...}, exit 0) when FXFORGE_RTNEURAL_DIR
(or --rtneural) is not an RTNeural checkout or no C++ compiler is found. Results: stdout and bench/results/plugin_models.json.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "plugin_models.json"
BENCH_SOURCE = ROOT / "bench" / "fxforge_bench.cpp"  # compiled against a generated project's Source/
SR = 48_000
BLOCK = 64

OUR_FLAGS = {
    "avx2": ["-O3", "-DNDEBUG", "-std=c++17", "-mavx2", "-mfma", "-DRTNEURAL_USE_EIGEN=1",
             "-DRTNEURAL_DEFAULT_ALIGNMENT=32", "-DRTNEURAL_AVX_ENABLED=1"],
    "portable": ["-O3", "-DNDEBUG", "-std=c++17", "-DRTNEURAL_USE_EIGEN=1", "-DRTNEURAL_DEFAULT_ALIGNMENT=16"],
}
NAM_FLAGS = {
    "avx2": ["-O3", "-DNDEBUG", "-std=c++20", "-mavx2", "-mfma", "-DNAM_ENABLE_A2_FAST"],
    "portable": ["-O3", "-DNDEBUG", "-std=c++20", "-DNAM_ENABLE_A2_FAST"],
}
GOAL = "our plugin >= 2x NAM's plugin RTF for a model of the same size (NAM standard WaveNet ~7x real time in a DAW)"


# -- helpers -------------------------------------------------------------------------------------

def load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def find_cxx(explicit: str | None) -> str | None:
    for name in filter(None, [explicit, os.environ.get("CXX"), "g++", "clang++", "c++"]):
        path = shutil.which(name)
        if path:
            return path
    return None


def pinned(cmd: list[str], cpu: int | None) -> list[str]:
    return (["taskset", "-c", str(cpu)] + cmd) if cpu is not None and shutil.which("taskset") else cmd


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def compile_cmd(cxx: str, flags: list[str], sources: list[str], includes: list[Path], out: Path,
                system: list[Path] = ()) -> float:
    cmd = [cxx, *flags, *(f"-I{p}" for p in includes)]
    for p in system:
        cmd += ["-isystem", str(p)]
    cmd += [*sources, "-o", str(out)]
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"compile failed: {' '.join(cmd)}\n{r.stderr[-6000:]}")
    return round(time.monotonic() - t0, 1)


def nparams(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))


# -- our models ----------------------------------------------------------------------------------

def our_models() -> dict:
    """name -> (exporter model name, constructor, note)."""
    from fxforge_cabinet import CabinetConfig, CabinetFIR
    from fxforge.builtins.wave_lstm.plugin import WaveGRU, WaveLSTM
    from fxforge.builtins.wavenet.plugin import PRESETS, WaveNet

    models = {
        "wave-lstm-32": ("wave-lstm", lambda: WaveLSTM(32), "LSTM 1x32 + dense, residual"),
        "gru-32": ("gru", lambda: WaveGRU(32), "GRU 1x32 + dense, residual"),
    }
    for taps in (512, 2048):
        models[f"wave-lstm-32+cab{taps}"] = (
            "wave-lstm", lambda taps=taps: CabinetFIR(WaveLSTM(32), CabinetConfig(taps=taps), SR),
            f"wave-lstm-32 then a {taps}-tap cabinet FIR")
    for preset, (ch, stacks, gated) in PRESETS.items():
        models[f"wavenet-{preset}"] = (
            "wavenet", lambda ch=ch, stacks=stacks, gated=gated: WaveNet(ch, stacks, 512, 3, gated, True),
            f"preset {preset}: {ch} ch, {stacks} x dilations 1..512, k3, {'gated' if gated else 'tanh'}")
    # Sized like NAM's standard WaveNet (two arrays of dilations 1..512, k3, plain tanh; 16 then 8 ch).
    models["wavenet-16x2-tanh"] = ("wavenet", lambda: WaveNet(16, 2, 512, 3, False, True),
                                   "NAM-standard layout: 20 layers 1..512 x2, k3, tanh, 16 ch (NAM: 16 then 8)")
    models["wavenet-13x2-tanh"] = ("wavenet", lambda: WaveNet(13, 2, 512, 3, False, True),
                                   "as 16x2-tanh at 13 ch: about NAM standard's parameter count")
    return models


def seeded(model):
    import torch

    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
        ir = getattr(model, "ir", None)
        if ir is not None:  # an untrained cabinet is all zeros: give it a decaying random IR
            n = ir.numel()
            ir.copy_(torch.randn(n) * torch.exp(-torch.arange(n) / (n / 6)) * 0.2)
    return model.eval()


def prepare_ours(name: str, spec, args, cxx: str, rt: Path) -> tuple[dict, dict]:
    """Generate the project, compile fxforge_bench per flag set (cached); return (row, {variant: measure})."""
    from fxforge_juce.plugin import JuceConfig, generate

    model_name, make, note = spec
    model = seeded(make())
    run = SimpleNamespace(path=Path("(seeded)"), model=model, sample_rate=SR,
                          config=SimpleNamespace(name="bench", model=SimpleNamespace(name=model_name)), summary={})
    out = args.out / "ours" / name
    project = generate(run, JuceConfig(out=out, force=True))
    row = {"model": name, "side": "fxforge", "exporter_model": model_name, "note": note,
           "params": nparams(model), "architecture": project.rt.architecture, "rtf64": {}, "compile_s": {}}
    weights = out / "Resources" / "model_weights.json"
    includes = [out / "Source", rt, rt / "RTNeural", rt / "modules" / "Eigen", rt / "modules" / "json"]
    sources = sorted((out / "Source").glob("*.h")) + [BENCH_SOURCE]
    measures = {}
    for variant in args.variants:
        key = hashlib.sha1(json.dumps([OUR_FLAGS[variant], cxx, str(rt)]).encode()
                           + b"".join(f.read_bytes() for f in sources)).hexdigest()[:12]
        exe = args.out / "ours-bin" / f"{name}-{variant}-{key}"
        exe.parent.mkdir(parents=True, exist_ok=True)
        try:
            row["compile_s"][variant] = None if exe.is_file() else compile_cmd(
                cxx, OUR_FLAGS[variant], [str(BENCH_SOURCE)], includes, exe)
        except RuntimeError as e:
            row["rtf64"][variant] = {"error": str(e)}
            print(f"  {name} [{variant}]: {str(e).splitlines()[0]}", file=sys.stderr)
            continue
        print(f"  {name} [{variant}]: compiled ({row['compile_s'][variant] or 'cached'} s)", file=sys.stderr)

        def measure(exe=exe) -> tuple[float, dict]:
            r = subprocess.run(pinned([str(exe), str(weights), str(SR), str(args.seconds), str(BLOCK)], args.pin),
                               capture_output=True, text=True, check=True)
            return float(json.loads(r.stdout)["rtf"][str(BLOCK)]), {}

        measures[variant] = measure
    return row, measures


# -- NAM -----------------------------------------------------------------------------------------

LEGACY_SIZES = {  # nam.train.core.get_wavenet_config, neural-amp-modeler <= 0.12: (ch1, head1, dil1, ch2, dil2)
    "standard": (16, 8, list(range(10)), 8, list(range(10))),
    "lite": (12, 6, list(range(7)), 6, [7, 8, 9] + list(range(10))),
    "feather": (8, 4, list(range(7)), 4, [7, 8, 9] + list(range(10))),
    "nano": (4, 2, list(range(7)), 2, [7, 8, 9] + list(range(10))),
}


def legacy_wavenet_config(size: str) -> dict:
    ch1, head1, d1, ch2, d2 = LEGACY_SIZES[size]

    def array(inp, ch, head, dil, bias):
        return {"input_size": inp, "condition_size": 1, "channels": ch, "kernel_size": 3,
                "dilations": [2**i for i in dil], "activation": "Tanh", "gated": False,
                "head": {"out_channels": head, "kernel_size": 1, "bias": bias}}  # 0.13 spelling of head_size/head_bias

    return {"layers_configs": [array(1, ch1, head1, d1, False), array(ch1, ch2, 1, d2, True)], "head_scale": 0.02}


def write_legacy_nam(path: Path, size: str) -> int:
    """A .nam (format 0.5) of a legacy WaveNet size with seeded weights; returns the weight count.

    The count follows NAM core's WaveNet loader, per layer array: rechannel (no bias), per layer
    the dilated conv (+ bias), the condition mixin (no bias) and the 1x1 (+ bias), then the head
    (bias as configured); one head_scale at the end (13802 for 'standard', as the core's example)."""
    import random

    old = legacy_wavenet_config(size)
    layers, count = [], 0
    for a in old["layers_configs"]:
        ch, k, head = a["channels"], a["kernel_size"], a["head"]["out_channels"]
        count += a["input_size"] * ch + len(a["dilations"]) * (ch * ch * k + ch + a["condition_size"] * ch + ch * ch + ch)
        count += ch * head + (head if a["head"]["bias"] else 0)
        layers.append({"input_size": a["input_size"], "condition_size": a["condition_size"], "head_size": head,
                       "channels": ch, "kernel_size": k, "dilations": a["dilations"], "activation": "Tanh",
                       "gated": False, "head_bias": a["head"]["bias"]})
    rng = random.Random(0)
    weights = [rng.gauss(0.0, 0.1) for _ in range(count)] + [old["head_scale"]]
    path.write_text(json.dumps({"version": "0.5.0", "architecture": "WaveNet", "sample_rate": SR,
                                "config": {"layers": layers, "head": None, "head_scale": old["head_scale"]},
                                "weights": weights}))
    return len(weights)


def write_nam_models(folder: Path, nam_core: Path) -> tuple[dict, str | None]:
    """name -> {path, params, note}; and why some are missing (or None)."""
    folder.mkdir(parents=True, exist_ok=True)
    models: dict = {}
    example = nam_core / "example_models" / "wavenet_a1_standard.nam"
    if example.is_file():
        d = json.loads(example.read_text())
        models["nam-example-a1-standard"] = {"path": example, "params": len(d["weights"]) - 1,
                                             "note": "the core's trained example (.nam 0.5 format)"}
    try:
        import torch
        from nam.models import LSTM, WaveNet
        from nam.train.core import _get_packed_model_config
    except ImportError as e:
        # The legacy WaveNet sizes are plain JSON: write them directly (random weights; speed does not depend on them).
        for size in LEGACY_SIZES:
            path = folder / f"nam-wavenet-{size}.nam"
            n = write_legacy_nam(path, size)
            models[f"nam-wavenet-{size}"] = {"path": path, "params": n - 1,
                                             "note": f"NAM <=0.12 '{size}' WaveNet (tanh, not gated), .nam written directly"}
        return models, f"{e.name} not importable: pip install neural-amp-modeler for NAM's A2 and LSTM model files"

    torch.manual_seed(0)
    for size in LEGACY_SIZES:
        net = WaveNet.init_from_config({**legacy_wavenet_config(size), "sample_rate": SR})
        net.export(folder, basename=f"nam-wavenet-{size}")
        models[f"nam-wavenet-{size}"] = {"path": folder / f"nam-wavenet-{size}.nam", "params": nparams(net),
                                         "note": f"NAM <=0.12 '{size}' WaveNet (tanh, not gated)"}
    packed = _get_packed_model_config()["net"]
    net = __import__("nam.models.factory", fromlist=["init"]).init(packed["name"], args=({**packed["config"], "sample_rate": SR},))
    net.export(folder, basename="nam-a2-container")
    container = json.loads((folder / "nam-a2-container.nam").read_text())
    for sub in container["config"]["submodels"]:
        ch = sub["model"]["config"]["layers"][0]["channels"]
        label = {8: "full", 3: "lite"}.get(ch, f"{ch}ch")
        path = folder / f"nam-a2-{label}.nam"
        path.write_text(json.dumps(sub["model"]))
        models[f"nam-a2-{label}"] = {"path": path, "params": len(sub["model"]["weights"]) - 1,
                                     "note": f"NAM 0.13 default (PackedWaveNet submodel, {ch} ch, LeakyReLU, A2 fast path)"}
    net = LSTM.init_from_config({"num_layers": 1, "hidden_size": 32, "sample_rate": SR})
    net.export(folder, basename="nam-lstm-32")
    models["nam-lstm-32"] = {"path": folder / "nam-lstm-32.nam", "params": nparams(net),
                             "note": "nam.models.LSTM 1x32 (+ learned initial state)"}
    return models, None


def build_nam(nam_core: Path, eigen: Path, variant: str, cxx: str, out: Path) -> dict:
    """Compile NAM/*.cpp once into objects, link benchmodel_bufsize and benchmodel (-j1)."""
    flags = NAM_FLAGS[variant]
    sources = sorted(nam_core.glob("NAM/*.cpp")) + sorted(nam_core.glob("NAM/*/*.cpp"))
    tools = [nam_core / "tools" / "benchmodel_bufsize.cpp", nam_core / "tools" / "benchmodel.cpp"]
    head = subprocess.run(["git", "-C", str(nam_core), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    key = hashlib.sha1(json.dumps([flags, cxx, head, str(eigen),
                                   [(str(s), s.stat().st_mtime) for s in sources + tools]]).encode()).hexdigest()[:12]
    folder = out / f"nam-{variant}-{key}"
    exes = {t.stem: folder / t.stem for t in tools}
    info = {"flags": flags, "commit": head or None, "eigen": str(eigen), "dir": str(folder)}
    if all(e.is_file() for e in exes.values()):
        return {**info, "exes": exes, "build_s": None, "cached": True}
    (folder / "obj").mkdir(parents=True, exist_ok=True)
    common = [*flags, f"-I{nam_core}", f"-I{nam_core / 'Dependencies' / 'nlohmann'}", "-isystem", str(eigen)]
    t0 = time.monotonic()
    objects = []
    for src in sources + tools:
        obj = folder / "obj" / f"{src.parent.name}_{src.stem}.o"
        r = subprocess.run([cxx, *common, "-c", str(src), "-o", str(obj)], capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"NAM core: {src.relative_to(nam_core)} failed to compile:\n{r.stderr[-4000:]}")
        objects.append(obj)
    lib = [str(o) for o in objects if not o.name.startswith("tools_")]
    for tool in tools:
        r = subprocess.run([cxx, *flags, *lib, str(folder / "obj" / f"tools_{tool.stem}.o"), "-o", str(exes[tool.stem])],
                           capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"NAM core: linking {tool.stem} failed:\n{r.stderr[-4000:]}")
    return {**info, "exes": exes, "build_s": round(time.monotonic() - t0, 1), "cached": False}


def nam_measure(exes: dict, model: Path, args):
    """One run: CPU-time RTF at block 64 from benchmodel_bufsize (2 s per pass), plus its wall figure,
    and (first run only) NAM's own benchmodel figure (block 64, 2 s, no warm-up, wall clock)."""
    passes = max(1, round(args.seconds / 2))
    first = [True]

    def bufsize(n: int) -> tuple[float, str]:
        c0 = child_cpu()
        r = subprocess.run(pinned([str(exes["benchmodel_bufsize"]), str(model), str(BLOCK), str(n)], args.pin),
                           capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"benchmodel_bufsize failed on {model.name}: {(r.stderr or r.stdout)[-2000:]}")
        return child_cpu() - c0, r.stdout.strip()

    def measure() -> tuple[float, dict]:
        base, _ = bufsize(0)  # load + 2 s warm-up
        full, line = bufsize(passes)
        extra = {"wall_rtf_bufsize": round(2.0e6 / float(line.split(",")[1]), 2)}
        if first[0] and "benchmodel" in exes:
            first[0] = False
            r = subprocess.run(pinned([str(exes["benchmodel"]), str(model)], args.pin), capture_output=True, text=True)
            ms = [float(l[:-2]) for l in r.stdout.splitlines() if l.endswith("ms") and "." in l]
            extra["wall_rtf_benchmodel"] = round(2000.0 / ms[0], 2) if r.returncode == 0 and ms else None
        return round(2.0 * passes / max(full - base, 1e-9), 2), extra

    return measure


def prepare_nam(args, cxx: str) -> tuple[list[tuple[dict, dict]], dict]:
    core = args.nam_core.resolve()
    eigen = (args.nam_eigen or core / "Dependencies" / "eigen").resolve()
    meta: dict = {"dir": str(core)}
    if not (core / "NAM" / "dsp.h").is_file() or not (core / "tools" / "benchmodel_bufsize.cpp").is_file():
        meta["skipped"] = f"{core} is not a NeuralAmpModelerCore checkout with tools/benchmodel_bufsize.cpp"
        return [], meta
    if not (eigen / "Eigen" / "Dense").is_file() or not (eigen / "unsupported" / "Eigen" / "FFT").is_file():
        meta["skipped"] = (f"no Eigen with unsupported/Eigen/FFT at {eigen} (NAM/linear.cpp needs it): "
                           "git submodule update --init Dependencies/eigen, or --nam-eigen DIR")
        return [], meta
    models, why = write_nam_models(args.out / "nam-models", core)
    if why:
        meta["models_missing"] = why
        print(f"NAM: {why}", file=sys.stderr)
    if args.nam_models:
        models = {k: v for k, v in models.items() if k in args.nam_models}
    builds = {}
    for variant in args.variants:
        print(f"building NAM core tools [{variant}] (-j1)...", file=sys.stderr)
        try:
            builds[variant] = build_nam(core, eigen, variant, cxx, args.out)
        except RuntimeError as e:
            builds[variant] = {"error": str(e)}
            print(str(e), file=sys.stderr)
    meta["builds"] = {v: {k: (str(x) if isinstance(x, Path) else x) for k, x in b.items() if k != "exes"}
                      for v, b in builds.items()}
    rows = []
    for name, m in models.items():
        row = {"model": name, "side": "nam", "note": m["note"], "params": m["params"], "file": str(m["path"]), "rtf64": {}}
        measures = {}
        for variant, b in builds.items():
            if "error" in b:
                row["rtf64"][variant] = {"error": "build failed"}
            else:
                measures[variant] = nam_measure(b["exes"], m["path"], args)
        rows.append((row, measures))
    return rows, meta


def measure_all(prepared: list[tuple[dict, dict]], args) -> None:
    """Round-robin: each round runs every (model, variant) once, so load changes spread over all rows."""
    for rnd in range(args.repeats):
        print(f"round {rnd + 1}/{args.repeats}", file=sys.stderr)
        for row, measures in prepared:
            for variant, measure in measures.items():
                res = row["rtf64"].setdefault(variant, {"runs": [], "load_before": [], "load_after": []})
                if "error" in res:
                    continue
                before = load()
                try:
                    value, extra = measure()
                except (RuntimeError, subprocess.CalledProcessError, ValueError) as e:
                    row["rtf64"][variant] = {"error": str(e)}
                    print(f"  {row['model']} [{variant}]: {e}", file=sys.stderr)
                    continue
                res["runs"].append(value)
                res["load_before"].append(before)
                res["load_after"].append(load())
                for k, v in extra.items():
                    res.setdefault(k, []).append(v)
                res["rtf"] = max(res["runs"])
                print(f"  {row['model']} [{variant}]: RTF@64 {value:.1f}  (load {before[0]})", file=sys.stderr)


# -- report --------------------------------------------------------------------------------------

def cell(row: dict, variant: str) -> str:
    r = row["rtf64"].get(variant)
    if r is None:
        return "-"
    if "error" in r:
        return "error"
    runs = sorted(r["runs"])
    return f"{r['rtf']:.1f} ({runs[len(runs) // 2]:.1f})"


def loads(row: dict) -> str:
    """1-min load average over a row's runs (before and after each), per variant: min-max."""
    out = []
    for r in row["rtf64"].values():
        vals = [l[0] for l in r.get("load_before", []) + r.get("load_after", [])]
        if vals:
            out.append(f"{min(vals):.1f}-{max(vals):.1f}")
    return "  ".join(out)


def comparisons(rows: list[dict], variants: list[str]) -> list[dict]:
    by = {r["model"]: r for r in rows}
    pairs = [("wavenet-13x2-tanh", "nam-wavenet-standard"), ("wavenet-16x2-tanh", "nam-wavenet-standard"),
             ("wavenet-standard", "nam-wavenet-standard"), ("wavenet-lite", "nam-wavenet-feather"),
             ("wavenet-nano", "nam-wavenet-nano"), ("wave-lstm-32", "nam-lstm-32"),
             ("wavenet-standard", "nam-a2-full")]
    out = []
    for ours, nam in pairs:
        if ours not in by or nam not in by:
            continue
        item = {"ours": ours, "nam": nam, "params": [by[ours]["params"], by[nam]["params"]]}
        for v in variants:
            a, b = by[ours]["rtf64"].get(v, {}), by[nam]["rtf64"].get(v, {})
            if "rtf" in a and "rtf" in b:
                item[v] = round(a["rtf"] / b["rtf"], 2)
        # NAM's shipped plugin is built without AVX (SSE2/SSE3): ours at AVX2 against it.
        a, b = by[ours]["rtf64"].get("avx2", {}), by[nam]["rtf64"].get("portable", {})
        if "rtf" in a and "rtf" in b:
            item["avx2_vs_nam_portable"] = round(a["rtf"] / b["rtf"], 2)
        out.append(item)
    return out


def print_table(rows: list[dict], variants: list[str], comps: list[dict]) -> None:
    heads = ["model", "params", *(f"RTF@64 {v} best (median)" for v in variants), "load 1-min min-max (per variant)"]
    body = [[r["model"] + (" (NAM)" if r["side"] == "nam" else ""), str(r["params"]), *(cell(r, v) for v in variants),
             loads(r)] for r in rows]
    try:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"Real-time factor at block {BLOCK}, {SR} Hz, one thread (CPU time; higher is better)")
        for i, h in enumerate(heads):
            table.add_column(h, justify="left" if i in (0, len(heads) - 1) else "right")
        for b in body:
            table.add_row(*b)
        Console(width=140).print(table)
    except ImportError:
        widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(heads)]
        print("  ".join(h.ljust(w) for h, w in zip(heads, widths)))
        for b in body:
            print("  ".join(c.ljust(w) for c, w in zip(b, widths)))
    for c in comps:
        parts = [f"{v} {c[v]}x" for v in variants if v in c]
        if "avx2_vs_nam_portable" in c:
            parts.append(f"ours avx2 / NAM portable {c['avx2_vs_nam_portable']}x")
        print(f"{c['ours']} ({c['params'][0]} params) vs {c['nam']} ({c['params'][1]}): " + ", ".join(parts))


def write(result: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {RESULTS}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rtneural", type=Path, default=os.environ.get("FXFORGE_RTNEURAL_DIR"),
                    help="RTNeural checkout (default: $FXFORGE_RTNEURAL_DIR)")
    ap.add_argument("--nam-core", type=Path, help="NeuralAmpModelerCore checkout: add NAM's figures")
    ap.add_argument("--nam-eigen", type=Path, help="Eigen for NAM (default: NAM_CORE/Dependencies/eigen)")
    ap.add_argument("--models", help="comma-separated subset of our models (default: all)")
    ap.add_argument("--nam-models", help="comma-separated subset of NAM's models (default: all)")
    ap.add_argument("--seconds", type=float, default=10.0, help="audio per measurement")
    ap.add_argument("--repeats", type=int, default=3, help="runs per measurement; the best is reported")
    ap.add_argument("--out", type=Path, default=Path("/tmp/fxforge-bench-plugin-models"), help="build folder")
    ap.add_argument("--cxx", help="C++ compiler (default: $CXX, g++, clang++)")
    ap.add_argument("--no-portable", action="store_true", help="only the AVX2/FMA builds")
    ap.add_argument("--pin", type=int, default=None, help="pin each run to this CPU (taskset)")
    args = ap.parse_args()
    args.variants = ["avx2"] if args.no_portable else ["avx2", "portable"]
    args.nam_models = set(args.nam_models.split(",")) if args.nam_models else None

    rt = args.rtneural
    cxx = find_cxx(args.cxx)
    why = None
    if not rt or not Path(rt, "RTNeural", "RTNeural.h").is_file():
        why = "set FXFORGE_RTNEURAL_DIR (or --rtneural) to an RTNeural checkout with modules/Eigen and modules/json"
    elif not cxx:
        why = "no C++ compiler found (apt-get install g++, or set CXX)"
    else:
        try:
            import fxforge_juce  # noqa: F401
        except ImportError:
            why = "fxforge_juce is not installed (pip install -e plugins/fxforge-juce)"
    if why:
        print(f"skipped: {why}")
        write({"skipped": why})
        return 0
    rt = Path(rt).resolve()
    if "avx2" in args.variants and platform.machine().lower() not in ("x86_64", "amd64"):
        args.variants = ["portable"]
    args.out.mkdir(parents=True, exist_ok=True)

    ours = our_models()
    wanted = args.models.split(",") if args.models else list(ours)
    unknown = [m for m in wanted if m not in ours]
    if unknown:
        ap.error(f"unknown models {unknown}; choose from {', '.join(ours)}")

    cxx_version = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    started = load()
    prepared = [prepare_ours(name, ours[name], args, cxx, rt) for name in wanted]
    nam_meta = None
    if args.nam_core:
        nam_prepared, nam_meta = prepare_nam(args, cxx)
        if "skipped" in nam_meta:
            print(f"NAM skipped: {nam_meta['skipped']}")
        prepared += nam_prepared
    measure_all(prepared, args)
    rows = [row for row, _ in prepared]
    comps = comparisons(rows, args.variants)
    print_table(rows, args.variants, comps)

    import torch

    write({
        "what": f"real-time factor at block {BLOCK}, {SR} Hz mono, one thread: audio seconds per CPU second, "
                f"best of {args.repeats} runs of {args.seconds} s",
        "goal": GOAL,
        "flags": {"ours": OUR_FLAGS, "nam": NAM_FLAGS},
        "compiler": cxx_version,
        "rtneural": str(rt),
        "load_start": started, "load_end": load(),
        "rows": rows,
        "comparisons": comps,
        "nam": nam_meta,
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version(), "torch": torch.__version__},
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
