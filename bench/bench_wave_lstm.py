"""Waveform LSTM on the built-in demo capture: training throughput, test ESR
after a fixed time budget, and streaming real-time factor at blocks 64/256/1024.

    .venv/bin/python bench/bench_wave_lstm.py [--budget 4m] [--set model.hidden_size=16 ...]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import streaming_rtf, train_config, write_results

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=str(ROOT / "configs" / "wave_lstm.toml"))
    ap.add_argument("--budget", default="4m")
    ap.add_argument("--set", action="append", default=[], dest="sets")
    ap.add_argument("--name", default="wave_lstm")
    args = ap.parse_args()

    from fxforge import load_run

    with tempfile.TemporaryDirectory() as tmp:
        summary = train_config(args.config, [f"train.time_budget={args.budget}", *args.sets], Path(tmp))
        run = load_run(summary["run_dir"])
        rtf = {str(b): round(streaming_rtf(run.model, run.sample_rate, b), 1) for b in (64, 256, 1024)}
    figures = {
        "config": Path(args.config).name, "overrides": args.sets, "time_budget": args.budget,
        "parameters": summary["parameters"], "train_seconds": summary["train_seconds"],
        "samples_per_second": summary["samples_per_second"], "epochs": summary["epochs"],
        "test_esr": summary["test_esr"], "test_esr_pre": summary["test_esr_pre"],
        "streaming_realtime_factor": rtf,
    }
    for k, v in figures.items():
        print(f"{k:>26}: {v}")
    write_results(args.name, figures)


if __name__ == "__main__":
    main()
