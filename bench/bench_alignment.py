"""The latency fxforge measures on the real-plugin dev captures, beside the truth: the onset
of each chain's response to an impulse rendered through the same guitarix plugins.

    bash ../shared/captures/make_dev_captures.sh DEV      # once: the captures (guitarix LV2 + lv2file)
    .venv/bin/python bench/bench_alignment.py DEV

The truth: three impulses (0.01, 0.05, 0.2) rendered through each chain with lv2file; the onset
is the first sample above 1 % (and 0.1 %) of the response's peak, and the peak's lag, for the
middle one. `late.wav` is `metal_amp.wav` 150 samples late. fxforge's figure is what
`fxforge run` corrects (`fxforge.data.audio.load_pair` with `data.latency = "auto"`).
Skips (exit 0) where lv2file or the captures are missing.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from common import write_results

G = "http://guitarix.sourceforge.net/plugins"
CHAINS = {  # as ../shared/captures/make_dev_captures.sh renders them
    "metal_amp": [f"{G}/gxmetal_amp#metal_amp"],
    "ds1_head": [f"{G}/gx_bossds1_#_bossds1_", f"{G}/gxmetal_head#metal_head"],
    "muff": [f"{G}/gx_muff_#_muff_"],
}
SR = 48_000


def impulse_onset(chain: list[str], work: Path) -> dict:
    x = np.zeros(2 * SR, np.float32)
    at = SR // 2
    x[at] = 0.05
    src = work / "impulse.wav"
    sf.write(src, x, SR, subtype="FLOAT")
    for i, uri in enumerate(chain):
        dst = work / f"out{i}.wav"
        subprocess.run(["lv2file", "-i", str(src), "-o", str(dst), uri], check=True, capture_output=True)
        src = dst
    y, _ = sf.read(src, dtype="float32", always_2d=True)
    a = np.abs(y[at - 50 : at + 4000, 0])
    peak = float(a.max())
    return {"onset_1pct": int(np.flatnonzero(a > 0.01 * peak)[0]) - 50,
            "onset_01pct": int(np.flatnonzero(a > 0.001 * peak)[0]) - 50, "peak_lag": int(a.argmax()) - 50}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dev", type=Path, help="the folder make_dev_captures.sh wrote")
    args = ap.parse_args()
    if shutil.which("lv2file") is None or not (args.dev / "dry.wav").exists():
        print("skipped: needs lv2file and the dev captures (bash ../shared/captures/make_dev_captures.sh DIR)")
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from fxforge.data.audio import load_pair
    from fxforge.config import DataConfig

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        truth = {name: impulse_onset(chain, Path(tmp)) for name, chain in CHAINS.items()}
    truth["late"] = {k: v + 150 for k, v in truth["metal_amp"].items()}
    for name, t in truth.items():
        started = time.perf_counter()
        pair = load_pair(DataConfig(input=args.dev / "dry.wav", target=args.dev / f"{name}.wav"))
        a = pair.alignment
        rows.append({"capture": name, **t, "fxforge_latency": pair.latency, "fxforge_onset": a.get("onset"),
                     "fxforge_peak_lag": a.get("peak_lag"), "peak_to_noise": a.get("peak_to_noise"),
                     "cuts_above_1pct": pair.latency > t["onset_1pct"],  # taps under -40 dB of the peak may go
                     "seconds": round(time.perf_counter() - started, 2),
                     "notes": [n for n in pair.notes if "latency" in n]})
    print(f"{'capture':10s} {'onset 0.1%':>10s} {'onset 1%':>9s} {'peak':>5s} | {'fxforge':>7s} {'onset':>6s} "
          f"{'peak/noise':>10s}  cuts a tap over 1% of the peak?")
    for r in rows:
        print(f"{r['capture']:10s} {r['onset_01pct']:10d} {r['onset_1pct']:9d} {r['peak_lag']:5d} | "
              f"{r['fxforge_latency']:7d} {r['fxforge_onset']:6d} {r['peak_to_noise']:10.0f}  "
              f"{'YES' if r['cuts_above_1pct'] else 'no'}")
    write_results("alignment", {"dev": str(args.dev), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
