"""The waveform LSTM against the STFT LSTM, side by side on the demo capture.

    python bench/bench_stft_vs_wave.py [--budget 120] [--only wave-lstm,stft-complex] [--keep DIR]

Each model trains in-process from its run file (configs/wave_lstm.toml,
configs/stft_lstm.toml) for the same time budget on this CPU with one thread,
then is scored on the held-out test split of the same capture, streamed as
`fxforge eval` does (state from zero, latency compensated):

- ESR, plain and pre-emphasised (1 - 0.95 z^-1);
- multi-resolution STFT distance (``fxforge.nn.losses.MultiResolutionSTFT``,
  spectral convergence + log-magnitude over FFT sizes 2048..256);
- training samples/s (from the run's summary), parameters;
- streaming real-time factor: seconds of 48 kHz audio per second of CPU time,
  batch 1, one thread, block 256, through ``fxforge.nn.stream.process``;
  (also at block 4096, where per-call overhead matters less);
- algorithmic latency in ms (``model.latency``).

Figures depend on the machine and on what else runs on it (the load average
is recorded). Prints a table; writes bench/results/stft_vs_wave.json. Never
asserted by the tests.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from fxforge import load_run
from fxforge.data.audio import load_pair
from fxforge.config import load_config
from fxforge.nn.losses import MultiResolutionSTFT, metrics
from fxforge.nn.stream import process
from fxforge.train.loop import train

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "stft_vs_wave.json"

# name -> (run file, overrides)
CONTENDERS = {
    "wave-lstm": ("configs/wave_lstm.toml", []),
    # the purely spectral model, both prediction modes (the frames of the run file)
    "stft-magnitude": ("configs/stft_lstm.toml", ['model.predict="magnitude"', "model.shaper=0"]),
    "stft-complex": ("configs/stft_lstm.toml", ['model.predict="complex"', "model.shaper=0"]),
    # complex, with two learned waveshaper channels mixed in per bin
    "stft-complex+shaper": ("configs/stft_lstm.toml", ['model.predict="complex"', "model.shaper=2"]),
}


def real_time_factor(model, sample_rate: int, seconds: float = 10.0, block: int = 256) -> float:
    """Seconds of audio per second of CPU time, batch 1, one thread."""
    x = torch.randn(int(seconds * sample_rate)) * 0.2
    process(model, x[: sample_rate // 2], block)  # warm up
    start = time.process_time()
    process(model, x, block)
    return seconds / (time.process_time() - start)


def bench_one(label: str, budget: float, runs_dir: Path, extra: list[str]) -> dict:
    path, sets = CONTENDERS[label]
    cfg = load_config(ROOT / path, [f"train.time_budget={budget}", "train.threads=1", "train.device=\"cpu\"",
                                    f"name=bench-{label.replace('+', '-')}", *sets, *extra])
    print(f"[{label}] training {budget:g} s ({cfg.model.name}) ...", file=sys.stderr, flush=True)
    summary = train(cfg, runs_dir=runs_dir)
    run = load_run(summary["run_dir"])
    torch.set_num_threads(1)
    audio = load_pair(cfg.data)
    x, y = audio.splits(cfg.data.split, cfg.data.fraction)["test"]
    x, y = torch.from_numpy(x.copy()), torch.from_numpy(y.copy())
    y_hat = process(run.model, x, 4096)
    m = metrics(y_hat.reshape(1, -1, 1), y.reshape(1, -1, 1), cfg.train.loss.pre_emphasis)
    with torch.no_grad():
        mrstft = float(MultiResolutionSTFT()(y_hat.reshape(1, -1, 1), y.reshape(1, -1, 1)))
    latency = int(getattr(run.model, "latency", 0))
    return {
        "model": cfg.model.name, "config": path, "overrides": [*sets, *extra],
        "test_esr": m["esr"], "test_esr_pre": m["esr_pre"], "mrstft": mrstft,
        "test_esr_clips": summary["test_esr"], "test_esr_pre_clips": summary["test_esr_pre"],
        "samples_per_second": summary["samples_per_second"], "parameters": summary["parameters"],
        "epochs": summary["epochs"], "steps": summary["steps"], "train_seconds": summary["train_seconds"],
        "rtf_block256": real_time_factor(run.model, run.sample_rate),
        "rtf_block4096": real_time_factor(run.model, run.sample_rate, block=4096),
        "latency_samples": latency, "latency_ms": 1000 * latency / run.sample_rate,
        "run_dir": summary["run_dir"],
    }


def table(results: dict) -> str:
    cols = [("model", "{}", 20), ("ESR", "{:.4f}", 8), ("ESR pre", "{:.4f}", 8), ("MR-STFT", "{:.3f}", 8),
            ("train samp/s", "{:,.0f}", 13), ("params", "{:,}", 9), ("RTF@256", "{:.1f}", 8), ("RTF@4096", "{:.1f}", 8),
            ("latency ms", "{:.2f}", 10)]
    keys = [None, "test_esr", "test_esr_pre", "mrstft", "samples_per_second", "parameters", "rtf_block256", "rtf_block4096", "latency_ms"]
    lines = [" ".join(name.rjust(w) for name, _, w in cols)]
    for label, r in results.items():
        cells = [label.rjust(cols[0][2])]
        for (name, fmt, w), key in zip(cols[1:], keys[1:]):
            cells.append(fmt.format(r[key]).rjust(w))
        lines.append(" ".join(cells))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=120.0, help="training seconds per model (default 120)")
    ap.add_argument("--only", default=",".join(CONTENDERS), help=f"comma-separated from: {', '.join(CONTENDERS)}")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="extra override for the STFT runs")
    ap.add_argument("--keep", type=Path, help="keep the run directories here (default: a temporary folder)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    labels = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in labels if s not in CONTENDERS]
    if unknown:
        ap.error(f"unknown contender(s): {', '.join(unknown)}")
    torch.set_num_threads(1)
    results = {}
    report = {
        "budget_seconds": args.budget, "threads": 1, "block": 256, "data": 'demo = "amp"',
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "torch": torch.__version__, "python": platform.python_version()},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fxforge-bench-") as tmp:
        runs_dir = args.keep or Path(tmp)
        for label in labels:
            extra = args.sets if label.startswith("stft") else []
            started = time.time()
            results[label] = bench_one(label, args.budget, runs_dir, extra)
            # the machine may be shared: the load while this one ran
            results[label]["load_average_1m"] = os.getloadavg()[0]
            results[label]["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
            results[label]["wall_seconds"] = round(time.time() - started, 1)
            print(table({label: results[label]}).splitlines()[1], file=sys.stderr, flush=True)
            args.out.write_text(json.dumps(report, indent=2) + "\n")  # after each, so a crash keeps the rest
    print(table(results))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
