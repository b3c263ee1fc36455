"""Helpers shared by the benchmarks: train a config in-process, time streaming."""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def train_config(config: str | Path, sets: list[str], runs_dir: Path) -> dict:
    from fxforge.config import load_config
    from fxforge.train.loop import train

    return train(load_config(config, sets), runs_dir=runs_dir)


def streaming_rtf(model, sample_rate: int, block: int, seconds: float = 5.0) -> float:
    """Audio seconds processed per CPU second, batch 1, one thread, block by block."""
    torch.set_num_threads(1)
    x = torch.randn(1, int(sample_rate * seconds), 1) * 0.1
    state = model.initial_state(1, None)
    with torch.no_grad():
        model(x[:, :block], state)  # warm up
        start = time.process_time()
        for i in range(0, x.shape[1], block):
            _, state = model(x[:, i : i + block], state)
        cpu = time.process_time() - start
    return seconds / cpu


def write_results(name: str, data: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    data = {"machine": platform.processor() or platform.machine(), "torch": torch.__version__, **data}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {path}")
    return path
