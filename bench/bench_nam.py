"""fxforge's models beside Neural Amp Modeler 0.13's trainer: same capture, same
training-time budget, same held-out test audio, same metric, on this CPU.

    .venv/bin/python bench/bench_nam.py [--budget 300] [--seconds 180] [--captures amp,cab]
        [--models wave_lstm,nam-lstm,nam-wavenet,nam-wavenet@2] [--context 48000]

Skips (exit 0) when `nam` (PyPI `neural-amp-modeler`) is not importable.

Data: the built-in demo capture (`fxforge.demo.demo_capture(kind, seconds)`), split
by time 70/15/15 as fxforge does. NAM gets the same train and validation spans
(its `Dataset` with start/stop sample indices); both are scored on the same test
span, run as one piece after `--context` samples of the audio before it (state /
receptive field), with `fxforge.losses.metrics`: ESR plain and after 1 - 0.95 z^-1.

Models (`--models`, comma separated, `NAME@THREADS` sets torch threads, default 1):
  * ours: the stem of any configs/*.toml whose model is registered (wave_lstm, ...),
    trained with `--set train.time_budget=<budget> data.demo=<capture>`; a variant adds
    overrides after a colon, separated by semicolons: `wavenet:model.preset=standard`.
  * nam-lstm: NAM's LSTM recipe as its trainer (`nam.train.core`, <=0.12, the
    last with an LSTM choice) configured it, at hidden 32: 1 layer, burn-in 4096,
    truncate 512, MSE + pre-emphasised MSE (0.85) + 2e-4 pre-emphasised MRSTFT,
    Adam lr 0.01, ExponentialLR 0.995/epoch, batch 16, ny 8192.
  * nam-wavenet: NAM 0.13's default (`core.train`): the PackedWaveNet of
    `nam/train/_resources/config_model_packed.json` (3- and 8-channel submodels
    trained jointly; the 8-channel one, 12k parameters, is what a .nam plays at
    full quality), MSE + 5e-4 MRSTFT, Adam lr 0.004, ExponentialLR 0.994/epoch,
    batch 16, ny 8192, output normalised to -18 dBFS RMS. Both submodels are scored.
NAM's own loop runs (PyTorch Lightning, its LightningModule); a callback stops
it when the time spent in training steps reaches the budget (validation time
excluded, as in fxforge) and keeps the best weights by NAM's validation loss.
"""
from __future__ import annotations

import argparse
import copy
import logging
import os
import sys
import tempfile
import time
import tomllib
import warnings
from pathlib import Path

import numpy as np
import torch

from common import train_config, write_results

ROOT = Path(__file__).resolve().parent.parent
NY = 8192  # nam.train.core._NY_DEFAULT
BATCH = 16  # nam.train.core.train(batch_size=16)

NAM_LSTM_RECIPE = {
    "net": {"name": "LSTM", "config": {"num_layers": 1, "hidden_size": 32, "train_burn_in": 4096,
                                       "train_truncate": 512}},
    "loss": {"val_loss": "mse", "mask_first": 4096, "pre_emph_weight": 1.0, "pre_emph_coef": 0.85,
             "pre_emph_mrstft_weight": 2e-4, "pre_emph_mrstft_coef": 0.85},
    "optimizer": {"lr": 0.01},
    "lr_scheduler": {"class": "ExponentialLR", "kwargs": {"gamma": 0.995}},
}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", type=float, default=300.0, help="seconds of training per model")
    ap.add_argument("--seconds", type=float, default=180.0, help="length of the demo capture")
    ap.add_argument("--captures", default="amp,cab")
    ap.add_argument("--models", default=None,
                    help="default: every config in configs/ with a registered model, nam-lstm, nam-wavenet, nam-wavenet@2")
    ap.add_argument("--context", type=int, default=48000, help="samples before the test span run first")
    ap.add_argument("--set", action="append", default=[], dest="sets", help="extra override for our configs")
    ap.add_argument("--name", default="nam_compare")
    return ap.parse_args()


def load() -> tuple[float, float, float]:
    return tuple(round(v, 2) for v in os.getloadavg())


# -- our side ------------------------------------------------------------------

def our_configs() -> dict[str, Path]:
    """stem -> path for configs/*.toml whose model is registered."""
    from fxforge.plugins import get_registry

    reg = get_registry()
    found = {}
    for path in sorted((ROOT / "configs").glob("*.toml")):
        name = tomllib.loads(path.read_text()).get("model", {}).get("name")
        try:
            reg.get("model", name)
        except Exception:
            continue
        found[path.stem] = path
    return found


def run_ours(config: Path, capture: str, args, threads: int, x: np.ndarray, y: np.ndarray, spans,
             variant: list[str] = ()) -> dict:
    from fxforge import load_run
    from fxforge.stream import process

    sets = [f"train.time_budget={args.budget}", f"data.demo={capture}", f"data.demo_seconds={args.seconds}",
            f"train.threads={threads}", "train.device=cpu", *args.sets, *variant]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = train_config(config, sets, Path(tmp))
        wall = time.perf_counter() - start
        run = load_run(summary["run_dir"])
        b, c = spans["test"][0], min(args.context, spans["test"][0])
        y_hat = process(run.model, torch.from_numpy(x[b - c:].copy())).numpy()[c:]
    scored = score(y_hat, y[b:])
    return {
        "parameters": summary["parameters"], **scored,
        "own_test_esr": summary["test_esr"], "own_test_esr_pre": summary["test_esr_pre"],
        "samples_per_second": summary["samples_per_second"], "train_seconds": summary["train_seconds"],
        "wall_seconds": round(wall, 1), "epochs": summary["epochs"], "steps": summary["steps"],
        "best_epoch": summary["best_epoch"], "val_esr": summary["val_esr"], "val_esr_pre": summary["val_esr_pre"],
        "overrides": sets,
    }


# -- scoring -------------------------------------------------------------------

def score(y_hat: np.ndarray, y: np.ndarray) -> dict:
    from fxforge.losses import metrics

    assert y_hat.shape == y.shape, (y_hat.shape, y.shape)
    m = metrics(torch.from_numpy(np.asarray(y_hat, np.float32)).reshape(1, -1, 1),
                torch.from_numpy(np.asarray(y, np.float32)).reshape(1, -1, 1))
    # Alignment check: the ESR at small shifts must be worst-or-equal to the ESR at 0.
    shifts = {}
    for s in range(-3, 4):
        a, t = (y_hat[: len(y_hat) - s], y[s:]) if s >= 0 else (y_hat[-s:], y[: len(y) + s])
        shifts[s] = float(np.sum((t - a) ** 2) / np.sum(t**2))
    return {"test_esr": m["esr"], "test_esr_pre": m["esr_pre"], "best_shift": min(shifts, key=shifts.get)}


# -- NAM's side ----------------------------------------------------------------

def run_nam(kind: str, threads: int, args, x: np.ndarray, y: np.ndarray, spans) -> list[dict]:
    import pytorch_lightning as pl
    from nam.data import Dataset, NormalizeJointDatasetOutput
    from nam.train.core import _get_packed_model_config
    from nam.train.lightning_module import (LightningModule, PackedLightningModule,
                                            PackedMaskCallback)

    for logger in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(logger).setLevel(logging.ERROR)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    packed = kind == "nam-wavenet"
    recipe = _get_packed_model_config() if packed else copy.deepcopy(NAM_LSTM_RECIPE)
    module = (PackedLightningModule if packed else LightningModule).init_from_config(copy.deepcopy(recipe))
    net = module.net
    net.sample_rate = 48000.0
    rf = net.receptive_field
    xt, yt = torch.from_numpy(x.copy()), torch.from_numpy(y.copy())
    (a0, a1), (v0, v1) = spans["train"], spans["validation"]
    common = dict(nx=rf, sample_rate=48000.0, require_input_pre_silence=None)
    ds_train = Dataset(xt, yt, ny=NY, start_samples=a0, stop_samples=a1, **common)
    ds_val = Dataset(xt, yt, ny=None, start_samples=v0, stop_samples=v1, **common)
    gain = 1.0
    if packed:  # 0.13's data config: "joint": normalize_joint_dataset_output(level_rms_dbfs=-18)
        NormalizeJointDatasetOutput(-18.0).apply(ds_train, ds_val)
        gain = float(ds_train._y_scale)
    train_dl = torch.utils.data.DataLoader(ds_train, batch_size=BATCH, shuffle=True, drop_last=True, num_workers=0)
    val_dl = torch.utils.data.DataLoader(ds_val)
    burn_in = 0 if packed else recipe["net"]["config"]["train_burn_in"]
    keys = [f"val_loss_packed_{i}" for i in range(net.num_submodels)] if packed else ["val_loss"]
    esr_keys = [f"ESR_packed_{i}" for i in range(net.num_submodels)] if packed else ["ESR"]
    budget = BudgetCallback(args.budget, NY - burn_in, keys, esr_keys)
    callbacks = [budget] + ([PackedMaskCallback()] if packed else [])
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=1_000_000, callbacks=callbacks, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, default_root_dir=tempfile.gettempdir())
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, train_dl, val_dl)
    wall = time.perf_counter() - start

    b, c = spans["test"][0], min(args.context, spans["test"][0])
    assert c >= rf - 1
    x_ctx = xt[b - c:]
    rows = []
    for i, key in enumerate(keys):
        module.net.load_state_dict(budget.best_state[key])
        model = module.net.extract_submodel(i) if packed else module.net
        model.eval()
        with torch.no_grad():
            y_hat = model(x_ctx[None], pad_start=False).reshape(-1).numpy() / gain
            # Check our use of NAM's alignment: its validation ESR, recomputed here.
            vx = ds_val.x
            v_hat = model(vx[None], pad_start=False).reshape(-1)
            vy = ds_val.y[rf - 1:]
            val_esr = float(torch.sum((vy - v_hat) ** 2) / torch.sum(vy**2))
        n = len(y) - b
        scored = score(y_hat[-n:], y[b:])
        trained = sum(p.numel() for p in module.net.parameters())
        name = f"{kind}:{net.submodel_names[i]}" if packed else kind
        rows.append({
            "model": name, "parameters": sum(p.numel() for p in model.parameters()),
            "trained_parameters": trained, **scored,
            "samples_per_second": round(budget.samples / budget.seconds) if budget.seconds else None,
            "train_seconds": round(budget.seconds, 2), "wall_seconds": round(wall, 1),
            "epochs": round(budget.batches / max(1, len(train_dl)), 2), "steps": budget.batches,
            "best_epoch": budget.best_epoch[key], "val_esr_logged": budget.best_esr[key], "val_esr_recomputed": val_esr,
            "receptive_field": rf, "output_gain": gain, "recipe": recipe,
        })
    return rows


def BudgetCallback(*args):  # noqa: N802 (defined lazily: Lightning may be absent)
    import pytorch_lightning as pl

    class _Budget(_BudgetMethods, pl.Callback):
        pass

    return _Budget(*args)


class _BudgetMethods:
    """Stop once the time spent in training steps reaches the budget; count the
    samples that carry gradient; keep the best weights by each validation key."""

    def __init__(self, budget: float, grad_len: int, keys: list[str], esr_keys: list[str]):
        self.budget, self.grad_len, self.keys, self.esr_keys = budget, grad_len, keys, esr_keys
        self.seconds, self.samples, self.batches = 0.0, 0, 0
        self.best = {k: float("inf") for k in keys}
        self.best_state, self.best_epoch, self.best_esr = {}, {}, {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.seconds += time.perf_counter() - self._t0
        self.batches += 1
        self.samples += batch[-1].shape[0] * self.grad_len
        if self.seconds >= self.budget:
            trainer.should_stop = True

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        m = trainer.callback_metrics
        for key, esr_key in zip(self.keys, self.esr_keys):
            v = float(m[key])
            if v < self.best[key]:
                self.best[key] = v
                self.best_state[key] = copy.deepcopy(pl_module.net.state_dict())
                self.best_epoch[key] = int(trainer.current_epoch)
                self.best_esr[key] = float(m[esr_key])


# -- the table -----------------------------------------------------------------

def print_table(rows: list[dict], title: str) -> None:
    cols = [("capture", "capture"), ("model", "model"), ("threads", "thr"), ("parameters", "params"),
            ("test_esr", "test ESR"), ("test_esr_pre", "ESR pre-emph"), ("samples_per_second", "samples/s"),
            ("train_seconds", "train s"), ("wall_seconds", "wall s"), ("epochs", "epochs")]

    def fmt(k, v):
        if v is None:
            return "-"
        if k in ("test_esr", "test_esr_pre"):
            return f"{v:.4g}"
        if k == "samples_per_second":
            return f"{v / 1e3:.0f}k"
        return str(v)

    try:
        from rich.console import Console
        from rich.table import Table

        t = Table(title=title)
        for _, h in cols:
            t.add_column(h, justify="left" if h in ("capture", "model") else "right")
        for r in rows:
            t.add_row(*(fmt(k, r.get(k)) for k, _ in cols))
        Console(width=140).print(t)
    except ImportError:
        print(title)
        print(" | ".join(h for _, h in cols))
        for r in rows:
            print(" | ".join(fmt(k, r.get(k)) for k, _ in cols))


def settings(args, load_log: list) -> dict:
    from importlib.metadata import version

    return {
        "budget_seconds": args.budget, "capture_seconds": args.seconds, "captures": args.captures.split(","),
        "split": [0.7, 0.15, 0.15], "test_context_samples": args.context, "cpus": os.cpu_count(),
        "nam_version": version("neural-amp-modeler"), "lightning": version("pytorch-lightning"),
        "threads": "per row (torch.set_num_threads; ours via train.threads)",
        "samples_per_second": "samples carrying gradient per second of training steps (validation excluded); "
                              "NAM LSTM: ny - burn-in per datum, NAM WaveNet: ny outputs per datum",
        "test_esr": "fxforge.losses.metrics over the whole test span, run after `test_context_samples` of "
                    "the audio before it; own_test_esr = fxforge's own clip-wise test figure",
        "load_log": load_log, "command": " ".join(sys.argv),
    }


def main() -> int:
    args = parse_args()
    try:
        import nam  # noqa: F401
        import pytorch_lightning  # noqa: F401
    except ImportError as exc:
        print(f"skipped: Neural Amp Modeler is not importable ({exc}); `pip install neural-amp-modeler` to run this")
        return 0
    from fxforge.demo import demo_capture

    ours = our_configs()
    default = [*ours, "nam-lstm", "nam-wavenet", "nam-wavenet@2"]
    wanted = args.models.split(",") if args.models else default
    plan = []
    for token in wanted:
        label, _, thr = token.strip().partition("@")
        threads = int(thr or 1)
        stem, _, variant = label.partition(":")
        stem = stem.replace("-", "_") if stem not in ("nam-lstm", "nam-wavenet") else stem
        if stem in ("nam-lstm", "nam-wavenet"):
            plan.append((stem, threads, None, []))
        elif stem in ours:
            plan.append((label.replace("-", "_", 1) if not variant else label, threads, ours[stem],
                         [v for v in variant.split(";") if v]))
        else:
            print(f"error: unknown model {token!r}; choose from {', '.join([*ours, 'nam-lstm', 'nam-wavenet'])}")
            return 2
    from fxforge.plugins import get_registry

    with_config = {tomllib.loads(p.read_text())["model"]["name"] for p in ours.values()}
    for name in get_registry().names("model"):
        if name not in with_config:
            print(f"note: model {name!r} is registered but has no config in configs/; not benched")

    results, load_log = [], []
    print(f"budget {args.budget:g} s per model, capture {args.seconds:g} s, captures {args.captures}, "
          f"cpus {os.cpu_count()}, load {load()}")
    for capture in args.captures.split(","):
        pair = demo_capture(capture, args.seconds)
        x, y = pair.x.astype(np.float32), pair.y.astype(np.float32)
        n = len(x)
        a, b = int(n * 0.7), int(n * 0.85)  # fxforge.audio.PairedAudio.splits((0.7, 0.15, 0.15))
        spans = {"train": (0, a), "validation": (a, b), "test": (b, n)}
        for name, threads, config, variant in plan:
            before = load()
            print(f"[{capture}] {name} ({threads} thread{'s' * (threads > 1)}) ... load {before}", flush=True)
            if config is None:
                rows = run_nam(name, threads, args, x, y, spans)
            else:
                rows = [{"model": name, **run_ours(config, capture, args, threads, x, y, spans, variant)}]
            after = load()
            for r in rows:
                r.update({"capture": capture, "threads": threads, "load_before": before, "load_after": after})
                results.append(r)
                print(f"    {r['model']}: test ESR {r['test_esr']:.4g} / pre-emph {r['test_esr_pre']:.4g}, "
                      f"{r['samples_per_second']} samples/s, {r['train_seconds']} s train, shift {r['best_shift']}",
                      flush=True)
            load_log.append({"capture": capture, "model": name, "before": before, "after": after})
            write_results(args.name, {"settings": settings(args, load_log), "results": results})  # as it goes
    title = f"test ESR after {args.budget:g} s of training ({args.seconds:g} s capture, 70/15/15 split)"
    print_table(results, title)
    write_results(args.name, {"settings": settings(args, load_log), "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
