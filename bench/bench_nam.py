"""fxforge's models beside Neural Amp Modeler 0.13's trainer: same capture, same
wall-clock budget, same held-out test audio, same metric, on this CPU.

    .venv/bin/python bench/bench_nam.py [--budget 300] [--seconds 180] [--captures amp,cab]
        [--pairs DIR --targets metal_amp:0,ds1_head:25,muff:20]
        [--models wave_lstm,nam-lstm,nam-wavenet,nam-wavenet@1] [--context 48000]

Skips (exit 0) when `nam` (PyPI `neural-amp-modeler`) is not importable.

Data:
  * `--captures`: built-in demo captures (`fxforge.data.demo.demo_capture(kind, seconds)`),
    comma separated; default `amp,cab`, or none when `--pairs` is given (name them to
    run both).
  * `--pairs DIR --targets NAME:LATENCY,...`: your recordings, DIR/dry.wav (`--dry` names
    another file) against each DIR/NAME.wav, the target trailing the input by LATENCY
    samples (fixed, never measured: the target is advanced by it and both are cut to
    the shorter length, as fxforge does with `data.latency = N`). `--targets FILE.toml`
    reads the same from a table, `metal_amp = 0` per line (top level or under
    `[latency]`). Our configs get `data.input`, `data.target` and `data.latency`; the
    aligned pair is loaded once by `fxforge.data.audio.load_pair`, so both tools see the same
    samples. The capture is labelled NAME in the table.
Each pair is split by time 70/15/15 as fxforge does. NAM gets the same train and
validation spans (its `Dataset` with start/stop sample indices); both are scored on
the same test span, run as one piece after `--context` samples of the audio before it
(state / receptive field), with `fxforge.nn.losses.metrics`: ESR plain and after
1 - 0.95 z^-1.

Models (`--models`, comma separated, `NAME@THREADS` sets torch threads):
  * ours: the stem of any configs/*.toml whose model is registered (wave_lstm, ...),
    trained with `--set train.time_budget=<budget>` and the data above; a variant adds
    overrides after a colon, separated by semicolons: `wavenet:model.preset=standard`.
    Threads: the config's own `train.threads` unless `@THREADS` is given.
  * nam-lstm (1 thread by default): NAM's LSTM recipe as its trainer (`nam.train.core`,
    <=0.12, the last with an LSTM choice) configured it, at hidden 32: 1 layer, burn-in
    4096, truncate 512, MSE + pre-emphasised MSE (0.85) + 2e-4 pre-emphasised MRSTFT,
    Adam lr 0.01, ExponentialLR 0.995/epoch, batch 16, ny 8192.
  * nam-wavenet (2 threads by default; `nam-wavenet@1` for one): NAM 0.13's default
    (`core.train`): the PackedWaveNet of `nam/train/_resources/config_model_packed.json`
    (3- and 8-channel submodels trained jointly; the 8-channel one, 12k parameters, is
    what a .nam plays at full quality), MSE + 5e-4 MRSTFT, Adam lr 0.004,
    ExponentialLR 0.994/epoch, batch 16, ny 8192, output normalised to -18 dBFS RMS.
    Both submodels are scored.
NAM's own loop runs (PyTorch Lightning, its LightningModule). The budget is wall
clock for both tools, validation included: NAM's `max_time` semantics (Lightning's
Timer: seconds since the start of training, checked after every batch), except that
the callback stops one validation's length early, because Lightning validates once
more when stopped mid-epoch (fxforge's own budget, which counts training and
validation, likewise leaves room for its last validation and test). NAM keeps the best
weights by its validation loss, fxforge by its validation ESR.

Columns: `wall s` is the training loop's wall clock (NAM: `Trainer.fit`; ours: the
`wall_seconds` of fxforge's summary, load and final test included); `train s` the part
in training steps; `samples/s` the samples carrying gradient per second of training
steps. `last/best` is the last validation figure over the best one (plain ESR): well
above 1 means the run got worse late (best-by-validation hides it; the curve is in the
JSON as `val_curve`: [seconds, val ESR, val ESR pre-emph.]).
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
    ap.add_argument("--captures", default=None,
                    help="built-in demo captures; default amp,cab, or none when --pairs is given")
    ap.add_argument("--pairs", type=Path, default=None, help="folder of your recordings: DRY and NAME.wav per target")
    ap.add_argument("--dry", default="dry.wav", help="the input file in --pairs")
    ap.add_argument("--targets", default=None,
                    help="NAME:LATENCY,... (target DIR/NAME.wav trails the input by LATENCY samples), or a .toml")
    ap.add_argument("--models", default=None,
                    help="default: every config in configs/ with a registered model, nam-lstm, nam-wavenet")
    ap.add_argument("--context", type=int, default=48000, help="samples before the test span run first")
    ap.add_argument("--set", action="append", default=[], dest="sets", help="extra override for our configs")
    ap.add_argument("--name", default="nam_compare")
    return ap.parse_args()


def load() -> tuple[float, float, float]:
    return tuple(round(v, 2) for v in os.getloadavg())


# -- our side ------------------------------------------------------------------

def our_configs() -> dict[str, Path]:
    """stem -> path for configs/*.toml whose model is registered."""
    from fxforge.registry import get_registry

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


def run_ours(config: Path, capture: dict, args, threads: int | None, x: np.ndarray, y: np.ndarray, spans,
             variant: list[str] = ()) -> dict:
    from fxforge import load_run
    from fxforge.runs import open_run
    from fxforge.nn.stream import process

    sets = [f"train.time_budget={args.budget}", *capture["sets"], "train.device=cpu", "train.stress=false",
            *([f"train.threads={threads}"] if threads else []), *args.sets, *variant]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = train_config(config, sets, Path(tmp))
        call = time.perf_counter() - start
        run = load_run(summary["run_dir"])
        rows = [r for r in open_run(summary["run_dir"]).read_metrics() if "val_esr" in r]
        b, c = spans["test"][0], min(args.context, spans["test"][0])
        y_hat = process(run.model, torch.from_numpy(x[b - c:].copy())).numpy()[c:]
        used_threads = run.config.train.threads
    scored = score(y_hat, y[b:])
    curve = [[r.get("time"), r["val_esr"], r["val_esr_pre"]] for r in rows]
    return {
        "parameters": summary["parameters"], **scored,
        "own_test_esr": summary["test_esr"], "own_test_esr_pre": summary["test_esr_pre"],
        "samples_per_second": summary["samples_per_second"], "train_seconds": summary["train_seconds"],
        "wall_seconds": summary.get("wall_seconds", round(call, 1)), "call_seconds": round(call, 1),
        "epochs": summary["epochs"], "steps": summary["steps"], "rollbacks": summary.get("rollbacks"),
        "best_epoch": summary["best_epoch"], "val_esr": summary["val_esr"], "val_esr_pre": summary["val_esr_pre"],
        "last_over_best": last_over_best(curve), "val_curve": curve, "threads": used_threads, "overrides": sets,
    }


def last_over_best(curve: list) -> float | None:
    """The last validation ESR (plain) over the best one: > 1 when the run got worse late."""
    vals = [v for _, v, _ in curve if v is not None and np.isfinite(v)]
    if not vals:
        return None
    return round(float(curve[-1][1]) / min(vals), 3) if min(vals) > 0 else None


# -- scoring -------------------------------------------------------------------

def score(y_hat: np.ndarray, y: np.ndarray) -> dict:
    from fxforge.nn.losses import metrics

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
            "loop_seconds": round(budget.loop_seconds, 1), "validations": budget.validations,
            "val_curve": budget.curve[i], "last_over_best": last_over_best(budget.curve[i]),
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
    """Stop once the wall clock since the start of training (validation included,
    as Lightning's `max_time`), plus one validation's length for the validation
    Lightning runs on stopping, reaches the budget; count the time in training
    steps and the samples that carry gradient; keep the best weights by each
    validation key and the validation curve."""

    def __init__(self, budget: float, grad_len: int, keys: list[str], esr_keys: list[str]):
        self.budget, self.grad_len, self.keys, self.esr_keys = budget, grad_len, keys, esr_keys
        self.seconds, self.samples, self.batches = 0.0, 0, 0
        self.started, self.loop_seconds, self.val_seconds, self.validations = None, 0.0, 0.0, 0
        self.best = {k: float("inf") for k in keys}
        self.best_state, self.best_epoch, self.best_esr = {}, {}, {}
        self.curve = [[] for _ in keys]

    def on_train_start(self, trainer, pl_module):
        self.started = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        self.loop_seconds = time.perf_counter() - self.started

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        now = time.perf_counter()
        self.seconds += now - self._t0
        self.batches += 1
        self.samples += batch[-1].shape[0] * self.grad_len
        if now - self.started + self.val_seconds >= self.budget:
            trainer.should_stop = True

    def on_validation_start(self, trainer, pl_module):
        self._v0 = time.perf_counter()

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        self.val_seconds = time.perf_counter() - self._v0
        self.validations += 1
        elapsed = round(time.perf_counter() - self.started, 2)
        m = trainer.callback_metrics
        for i, (key, esr_key) in enumerate(zip(self.keys, self.esr_keys)):
            v = float(m[key])
            self.curve[i].append([elapsed, float(m[esr_key]), None])
            if v < self.best[key]:
                self.best[key] = v
                self.best_state[key] = copy.deepcopy(pl_module.net.state_dict())
                self.best_epoch[key] = int(trainer.current_epoch)
                self.best_esr[key] = float(m[esr_key])


# -- the table -----------------------------------------------------------------

def print_table(rows: list[dict], title: str) -> None:
    cols = [("capture", "capture"), ("model", "model"), ("threads", "thr"), ("parameters", "params"),
            ("test_esr", "test ESR"), ("test_esr_pre", "ESR pre-emph"), ("samples_per_second", "samples/s"),
            ("train_seconds", "train s"), ("wall_seconds", "wall s"), ("epochs", "epochs"),
            ("last_over_best", "last/best")]

    def fmt(k, v):
        if v is None:
            return "-"
        if k in ("test_esr", "test_esr_pre", "last_over_best"):
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
        "budget_seconds": args.budget, "budget": "wall clock of the training loop, validation included, both tools",
        "capture_seconds": args.seconds, "captures": [c["label"] for c in capture_specs(args)],
        "pairs": str(args.pairs) if args.pairs else None, "targets": args.targets,
        "split": [0.7, 0.15, 0.15], "test_context_samples": args.context, "cpus": os.cpu_count(),
        "nam_version": version("neural-amp-modeler"), "lightning": version("pytorch-lightning"),
        "threads": "per row (torch.set_num_threads; ours via train.threads)",
        "samples_per_second": "samples carrying gradient per second of training steps (validation excluded); "
                              "NAM LSTM: ny - burn-in per datum, NAM WaveNet: ny outputs per datum",
        "test_esr": "fxforge.nn.losses.metrics over the whole test span, run after `test_context_samples` of "
                    "the audio before it; own_test_esr = fxforge's own clip-wise test figure",
        "load_log": load_log, "command": " ".join(sys.argv),
    }


def parse_targets(text: str) -> dict[str, int]:
    """NAME:LATENCY,... or a TOML file (top level or [latency]) -> {name: latency}."""
    if text.endswith(".toml"):
        table = tomllib.loads(Path(text).read_text())
        table = table.get("latency", table)
        items = list(table.items())
    else:
        items = [tok.strip().partition(":")[::2] for tok in text.split(",") if tok.strip()]
    out = {}
    for name, lat in items:
        if lat in ("", None):
            raise SystemExit(f"error: --targets {name!r}: give its latency in samples, NAME:LATENCY")
        out[str(name).removesuffix(".wav")] = int(lat)
    return out


def capture_specs(args) -> list[dict]:
    """What to bench on, without loading audio: built-in captures, then --pairs targets."""
    names = args.captures if args.captures is not None else ("" if args.pairs else "amp,cab")
    specs = [{"label": c, "demo": c, "sets": [f"data.demo={c}", f"data.demo_seconds={args.seconds}"]}
             for c in names.split(",") if c.strip() and c.strip() != "none"]
    if args.pairs is not None:
        if not args.targets:
            raise SystemExit("error: --pairs needs --targets NAME:LATENCY,... (or a .toml)")
        dry = (args.pairs / args.dry).resolve()
        for name, lat in parse_targets(args.targets).items():
            target = (args.pairs / f"{name}.wav").resolve()
            for f in (dry, target):
                if not f.exists():
                    raise SystemExit(f"error: {f}: no such file")
            specs.append({"label": name, "input": str(dry), "target": str(target), "latency": lat,
                          "sets": [f'data.input="{dry}"', f'data.target="{target}"', f"data.latency={lat}"]})
    elif args.targets:
        raise SystemExit("error: --targets needs --pairs DIR")
    return specs


def load_capture(spec: dict, args) -> tuple[np.ndarray, np.ndarray]:
    """The aligned pair, as fxforge's training will see it."""
    if "demo" in spec:
        from fxforge.data.demo import demo_capture

        pair = demo_capture(spec["demo"], args.seconds)
    else:
        from fxforge.data.audio import load_pair
        from fxforge.config import load_config

        cfg = load_config(ROOT / "configs" / "wave_lstm.toml", spec["sets"])
        pair = load_pair(cfg.data)
        assert pair.latency == spec["latency"], (pair.latency, spec)
    return pair.x.astype(np.float32), pair.y.astype(np.float32)


NAM_THREADS = {"nam-lstm": 1, "nam-wavenet": 2}


def main() -> int:
    args = parse_args()
    specs = capture_specs(args)
    try:
        import nam  # noqa: F401
        import pytorch_lightning  # noqa: F401
    except ImportError as exc:
        print(f"skipped: Neural Amp Modeler is not importable ({exc}); `pip install neural-amp-modeler` to run this")
        return 0
    ours = our_configs()
    default = [*ours, "nam-lstm", "nam-wavenet"]
    wanted = args.models.split(",") if args.models else default
    plan = []
    for token in wanted:
        label, _, thr = token.strip().partition("@")
        threads = int(thr) if thr else None  # None: the config's own (ours), NAM_THREADS (NAM's)
        stem, _, variant = label.partition(":")
        stem = stem.replace("-", "_") if stem not in ("nam-lstm", "nam-wavenet") else stem
        if stem in ("nam-lstm", "nam-wavenet"):
            plan.append((stem, threads or NAM_THREADS[stem], None, []))
        elif stem in ours:
            plan.append((label.replace("-", "_", 1) if not variant else label, threads, ours[stem],
                         [v for v in variant.split(";") if v]))
        else:
            print(f"error: unknown model {token!r}; choose from {', '.join([*ours, 'nam-lstm', 'nam-wavenet'])}")
            return 2
    from fxforge.registry import get_registry

    with_config = {tomllib.loads(p.read_text())["model"]["name"] for p in ours.values()}
    for name in get_registry().names("model"):
        if name not in with_config:
            print(f"note: model {name!r} is registered but has no config in configs/; not benched")

    results, load_log = [], []
    print(f"budget {args.budget:g} s wall clock per model, captures {', '.join(c['label'] for c in specs)}, "
          f"cpus {os.cpu_count()}, load {load()}")
    for spec in specs:
        capture = spec["label"]
        x, y = load_capture(spec, args)
        n = len(x)
        a, b = int(n * 0.7), int(n * 0.85)  # fxforge.data.audio.PairedAudio.splits((0.7, 0.15, 0.15))
        spans = {"train": (0, a), "validation": (a, b), "test": (b, n)}
        for name, threads, config, variant in plan:
            before = load()
            print(f"[{capture}] {name} ({threads or 'config'} thread(s)) ... load {before}", flush=True)
            if config is None:
                rows = [{**r, "threads": threads} for r in run_nam(name, threads, args, x, y, spans)]
            else:
                rows = [{"model": name, **run_ours(config, spec, args, threads, x, y, spans, variant)}]
            after = load()
            for r in rows:
                r.update({"capture": capture, "load_before": before, "load_after": after})
                if "latency" in spec:
                    r["latency"] = spec["latency"]
                results.append(r)
                print(f"    {r['model']}: test ESR {r['test_esr']:.4g} / pre-emph {r['test_esr_pre']:.4g}, "
                      f"{r['samples_per_second']} samples/s, {r['train_seconds']} s train, {r['wall_seconds']} s wall, "
                      f"last/best {r['last_over_best']}, shift {r['best_shift']}", flush=True)
            load_log.append({"capture": capture, "model": name, "before": before, "after": after})
            write_results(args.name, {"settings": settings(args, load_log), "results": results})  # as it goes
    title = f"test ESR after {args.budget:g} s wall clock of training (70/15/15 split)"
    print_table(results, title)
    write_results(args.name, {"settings": settings(args, load_log), "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
