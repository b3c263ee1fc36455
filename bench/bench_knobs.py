"""Unseen knob settings (#19): one conditioned model trained on a real plugin's knob grid,
against snapshot models, scored at a setting none of the grid holds.

The grid is ../shared/captures/make_dev_captures.sh's: the dry DI through guitarix's GxMXR
Distortion+ at DRIVE 0, 0.25, 0.5, 0.75, 1 (VOLUME 0.5). The held-out setting (DRIVE 0.6 by
default) is rendered here with the same lv2file command into a temporary folder. Every model
gets the same training wall clock (``--budget``, train.time_budget of each run), and each trains
with the recipe fxforge ships for its job: the conditioned ones with ``fxforge train
captures.toml``'s (fxforge/recipes/knobs.toml), the snapshots with configs/wave_lstm.toml:

* conditioned (gain, concat and FiLM): one model on the five grid settings, the held-out one in the
  manifest as ``holdout`` (never trained on);
* nearest grid: a snapshot model trained only on the grid setting nearest the held-out one;
* upper bound: a snapshot model trained on the held-out setting itself.

Each is scored at the held-out setting on its held-out time span (the test split, the last
15 %), aligned by the latency the run trained with: ESR plain and pre-emphasised. Goal: conditioned
below nearest-grid, and within 2x of the upper bound. Training these small models keeps one core
busy (seen: load 1.0 on 2 cores), so two processes (``--seeds 0`` and ``--seeds 1``) can run side
by side on two cores, each row with the other process training beside it. Each seed starts the
models at a different one (the machine's pace can drift through a bench).

    .venv/bin/python bench/bench_knobs.py --budget 5m --models concat,nearest,upper --seeds 0,1   # the figures
    .venv/bin/python bench/bench_knobs.py --budget 45s --models film,nearest   # a quick look
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import write_results

ROOT = Path(__file__).resolve().parent.parent
DEV = Path("/work/dev")
GRID = (0, 25, 50, 75, 100)
PLUGIN = "http://guitarix.sourceforge.net/plugins/gx_mxrdist_#_mxrdist_"
MODELS = ("film", "concat", "gain", "nearest", "upper")


def render(dry: Path, drive: float, out: Path) -> None:
    """The held-out setting through lv2file as make_dev_captures.sh renders the grid (sox pads
    and trims it to the dry file's length)."""
    if not shutil.which("lv2file") or not shutil.which("sox"):
        sys.exit("bench_knobs: needs lv2file and sox to render the held-out setting (apt-get install lv2file sox guitarix-lv2)")
    raw = out.with_suffix(".raw.wav")
    subprocess.run(["lv2file", "-i", str(dry), "-o", str(raw), "-p", "VOLUME:0.5", "-p", f"DRIVE:{drive:.2f}", PLUGIN],
                   check=True, capture_output=True)
    import soundfile as sf

    n = sf.info(str(dry)).frames
    subprocess.run(["sox", "-V1", str(raw), "-e", "floating-point", "-b", "32", str(out), "pad", "0", "1",
                    "trim", "0", f"{n}s"], check=True)
    raw.unlink()


def write_manifest(folder: Path, dry: Path, grid: dict[float, Path], held: tuple[float, Path]) -> Path:
    lines = ["version = 1", f'input = "{dry}"', "", "[knobs.drive]", "min = 0.0", "max = 1.0", "default = 0.5", ""]
    for value, path in [*grid.items(), held]:
        lines += ["[[targets]]", f'file = "{path}"', f"knobs = {{ drive = {value!r} }}", ""]
    path = folder / "captures.toml"
    path.write_text("\n".join(lines))
    return path


def score(run_dir: Path, dry: Path, target: Path, drive: float | None, split) -> dict:
    """ESR at the held-out setting on its test span, the way every model is scored."""
    import torch

    from fxforge import load_run
    from fxforge.data.audio import load_pair
    from fxforge.train.conditioned import with_knobs
    from fxforge.config import DataConfig
    from fxforge.nn.losses import metrics
    from fxforge.nn.stream import predict_clips

    import json

    r = load_run(run_dir)
    # aligned by the latency the run trained with (a conditioned run's settings share one: the
    # held-out setting is scored at the delay the model learned for the grid)
    latency = json.loads((run_dir / "summary.json").read_text())["latency_samples"]
    pair = load_pair(DataConfig(input=dry, target=target, split=split, latency=latency))
    x, y = pair.splits(split)["test"]
    x = torch.from_numpy(x.copy())
    if drive is not None:
        x = with_knobs(x, [drive])
    t = r.config.train
    with torch.no_grad():
        y_hat = predict_clips(r.model, x, int(t.val_clip_seconds * r.sample_rate), max(t.warmup, 2048))
    return metrics(y_hat.reshape(1, -1, 1), torch.from_numpy(y.copy()).reshape(1, -1, 1), t.loss.pre_emphasis)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", default="5m", help="training wall clock of every model (train.time_budget)")
    ap.add_argument("--held-out", type=float, default=0.6, help="the DRIVE setting none of the grid holds")
    ap.add_argument("--models", default=",".join(MODELS), help=f"which of {', '.join(MODELS)}")
    ap.add_argument("--config", default=str(ROOT / "configs" / "wave_lstm.toml"),
                    help="the recipe the snapshot models train with")
    ap.add_argument("--knob-config", default=str(ROOT / "fxforge" / "recipes" / "knobs.toml"),
                    help="the recipe the conditioned models train with (fxforge train captures.toml's)")
    ap.add_argument("--set", action="append", default=[], dest="sets", help="override the recipe for every model")
    ap.add_argument("--dev", default=str(DEV), help="folder of make_dev_captures.sh's output")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds: every model trains once per seed, and the "
                                                  "verdict compares the medians")
    ap.add_argument("--name", default="knobs", help="bench/results/NAME.json")
    args = ap.parse_args()
    models = [m for m in args.models.split(",") if m]
    bad = [m for m in models if m not in MODELS]
    if bad:
        sys.exit(f"bench_knobs: --models: unknown {', '.join(bad)} (one of {', '.join(MODELS)})")
    dev = Path(args.dev)
    dry = dev / "dry.wav"
    grid = {v / 100: dev / "knob" / f"mxr_dist_{v}.wav" for v in GRID}
    missing = [p for p in [dry, *grid.values()] if not p.is_file()]
    if missing:
        sys.exit(f"bench_knobs: {missing[0]}: missing; render the dev captures with "
                 f"bash ../shared/captures/make_dev_captures.sh {dev}")
    try:
        seeds = [int(v) for v in args.seeds.split(",") if v.strip()]
    except ValueError:
        sys.exit(f"bench_knobs: --seeds: {args.seeds!r} is not a comma-separated list of integers")
    held = args.held_out
    nearest = min(grid, key=lambda v: (abs(v - held), v))
    command = " ".join(["bench/bench_knobs.py", *sys.argv[1:]])
    print(f"command: .venv/bin/python {command}", flush=True)

    from fxforge.config import load_config
    from fxforge.train.loop import train

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_knobs.") as tmp:
        tmp = Path(tmp)
        held_wav = tmp / f"mxr_dist_{round(held * 100)}.wav"
        render(dry, held, held_wav)
        manifest = write_manifest(tmp, dry, grid, (held, held_wav))
        base = [f"train.time_budget={args.budget!r}".replace("'", '"'), "train.stress=false", *args.sets]
        plans = {
            "film": ("conditioned, FiLM", [f'data.captures="{manifest}"', f"data.holdout=[{{drive = {held!r}}}]",
                                           'model.conditioning="film"'], held),
            "concat": ("conditioned, concat", [f'data.captures="{manifest}"', f"data.holdout=[{{drive = {held!r}}}]",
                                               'model.conditioning="concat"'], held),
            "gain": ("conditioned, gain", [f'data.captures="{manifest}"', f"data.holdout=[{{drive = {held!r}}}]",
                                           'model.conditioning="gain"'], held),
            "nearest": (f"snapshot at the nearest grid setting ({nearest:g})",
                        [f'data.input="{dry}"', f'data.target="{grid[nearest]}"'], None),
            "upper": (f"snapshot at {held:g} itself (upper bound)", [f'data.input="{dry}"', f'data.target="{held_wav}"'], None),
        }
        # Each seed starts the models at a different one: a machine whose pace drifts through the
        # bench would otherwise always favour the model trained last.
        runs = [(seed, key) for seed in seeds for key in models[seed % len(models):] + models[:seed % len(models)]]
        for seed, key in runs:
            what, sets, drive = plans[key]
            recipe = args.config if drive is None else args.knob_config
            cfg = load_config(recipe, [*base, *sets, f"seed={seed}", f'name="knobs-{key}-{seed}"'])
            load = os.getloadavg()[0]
            started = time.perf_counter()
            summary = train(cfg, runs_dir=tmp / "runs")
            wall = time.perf_counter() - started
            m = score(Path(summary["run_dir"]), dry, held_wav, drive, cfg.data.split)
            row = {"model": key, "what": what, "seed": seed, "esr": m["esr"], "esr_pre": m["esr_pre"],
                   "load_average_at_start": round(load, 2),
                   "train_seconds": summary["train_seconds"], "wall_seconds": round(wall, 1),
                   "steps": summary["steps"], "parameters": summary["parameters"],
                   "samples_per_second": summary["samples_per_second"]}
            if summary.get("settings"):
                row["per_setting"] = summary["settings"]
            rows.append(row)
            print(f"{what:>42} (seed {seed}): ESR {m['esr']:.5f}  pre {m['esr_pre']:.5f}  "
                  f"train {summary['train_seconds']:.0f} s ({summary['steps']} steps)", flush=True)

    # Each model's median over the seeds (the row of that median plain ESR for its training time)
    by = {}
    for key in models:
        mine = [r for r in rows if r["model"] == key]
        by[key] = {"model": key, "what": mine[0]["what"], "seeds": len(mine),
                   **{k: statistics.median(r[k] for r in mine) for k in ("esr", "esr_pre", "train_seconds", "steps",
                                                                         "samples_per_second")}}
    verdict = {}
    for c in ("film", "concat", "gain"):
        if c in by and "nearest" in by:
            verdict[f"{c}_beats_nearest"] = {k: by[c][k] < by["nearest"][k] for k in ("esr", "esr_pre")}
        if c in by and "upper" in by:
            verdict[f"{c}_over_upper"] = {k: round(by[c][k] / by["upper"][k], 3) for k in ("esr", "esr_pre")}
    print()
    print(f"median over {len(seeds)} seed(s)")
    print(f"{'model':>42} {'ESR':>9} {'pre-emph.':>9} {'train s':>8} {'samples/s':>10}")
    for r in by.values():
        print(f"{r['what']:>42} {r['esr']:9.5f} {r['esr_pre']:9.5f} {r['train_seconds']:8.0f} "
              f"{r['samples_per_second']:10.0f}")
    for k, v in verdict.items():
        print(f"{k}: {v}")
    write_results(args.name, {"command": f".venv/bin/python {command}", "time_budget": args.budget,
                              "held_out_drive": held, "nearest_grid_drive": nearest, "grid": sorted(grid),
                              "config": Path(args.config).name, "knob_config": Path(args.knob_config).name,
                              "overrides": args.sets, "seeds": seeds,
                              "median": list(by.values()), "rows": rows,
                              "verdict": verdict})


if __name__ == "__main__":
    main()
