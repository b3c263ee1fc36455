"""The training loop: truncated BPTT, validation, best checkpoint, exact resume.

Resume is exact because everything random is derived from (seed, epoch): the
batch order of an epoch is the same however often the run was interrupted,
and a checkpoint records the epoch and the batch within it.
"""
from __future__ import annotations

import copy
import json
import logging
import math
import signal
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..data.audio import check_not_silent, load_pair
from ..config import RunConfig
from .devices import resolve_device
from ..errors import FxforgeError, Interrupted  # noqa: F401  (fxforge.train.loop.Interrupted, as before)
from ..nn.losses import Loss, metrics
from ..nn.model import contract
from ..registry import get_registry
from ..runs import RunDir, atomic_save, atomic_write_bytes, build_model, load_weights, safe_load
from ..progress import phase
from ..nn.stream import detach_state, predict_clips

log = logging.getLogger("fxforge")


# Validation may take at most this share of the wall clock; beyond it, it runs less often.
VALIDATION_SHARE = 0.1
MIN_PACED_VALIDATION = 1.0  # seconds: a validation quicker than this is never thinned
MAX_ROLLBACKS = 5  # roll-backs from a diverged step before the run gives up


class _Diverged(Exception):
    """A non-finite loss: the loop rolls back to the last good state."""


@dataclass
class Progress:
    epoch: int = 0          # epochs completed
    batch: int = 0          # batches completed within the current epoch
    step: int = 0           # optimizer updates
    samples: int = 0        # training samples seen (with gradient)
    elapsed: float = 0.0    # wall seconds against the budget (setup, training, validation), summed over resumes
    train_time: float = 0.0  # of which in training steps (samples/s is counted on these)
    val_seconds: float = 0.0  # the last validation's wall time
    val_every: int = 1      # validate every this many epochs (more when validation is expensive)
    lr_factor: float = 1.0  # halved at each roll-back from a diverged step
    rollbacks: int = 0
    best: float = math.inf  # best validation loss
    best_epoch: int = -1
    since_best: int = 0
    done: bool = False


@contextmanager
def _catch_sigint():
    """Turn Ctrl-C into a flag the loop checks between batches."""
    flag = {"hit": False}

    def handler(signum, frame):
        flag["hit"] = True

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def param_groups(model: torch.nn.Module) -> list[dict]:
    """The model's Adam groups (StreamingModel.param_groups), each with its learning-rate scale."""
    return contract(model).param_groups()


class Trainer:
    def __init__(self, cfg: RunConfig, audio, on_event: Callable[[str, dict], None] | None = None, settings=None):
        reg = get_registry()
        self.cfg, self.audio = cfg, audio
        self.setup_seconds = 0.0  # wall time before fit(), set by train(): the budget counts it
        # data.captures: every setting (fxforge.train.conditioned.Settings); ``audio`` is then its primary
        # setting, which the audio-only machinery (stability, plots, report, stress) plays.
        self.settings = settings
        self.setting_results: list[dict] = []
        self.run: RunDir | None = None
        self.on_event = on_event or (lambda kind, info: None)
        self.device = resolve_device(cfg.train.device, f"{cfg.source}: train.device")
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        torch.manual_seed(cfg.seed)
        self.model = build_model(cfg, audio.sample_rate).to(self.device)
        self.provider = reg.get("provider", cfg.data.provider).build(cfg.data, cfg.model)
        self.lr_at = reg.get("scheduler", cfg.scheduler.name).build(cfg.scheduler, cfg.optim.lr)
        self.optimizer = torch.optim.Adam(param_groups(self.model), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
        self.loss_fn = Loss(cfg.train.loss).to(self.device)
        splits = audio.splits(cfg.data.split, cfg.data.fraction)
        self.split = {k: (torch.from_numpy(x.copy()), torch.from_numpy(y.copy())) for k, (x, y) in splits.items()}
        self.loss_fn.normalise_by(settings.train_target() if settings else self.split["train"][1])
        self.hooks = contract(self.model)
        self.hooks.fit_start(*splits["train"], audio.sample_rate)  # resumed or loaded weights replace its fit
        self.progress = Progress()
        self.rollback_messages: list[str] = []
        self.sr = audio.sample_rate
        self.stability = None
        if cfg.train.stability.enabled:
            from ..nn.stability import StabilityPenalty

            stability = StabilityPenalty(self.model, cfg.train.stability, splits["train"][0], self.split["train"][1],
                                         self.sr, cfg.seed, self.device)
            self.stability = stability if stability.active else None

    # -- state -------------------------------------------------------------
    def state_dict(self) -> dict:
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "progress": asdict(self.progress), "format": 1}
        if self.stability is not None:
            state["stability"] = self.stability.state_dict()
        if self.settings is not None:
            state["settings"] = self.settings.state_dict()
        return state

    def load_state(self, path: Path) -> None:
        ckpt = safe_load(path)
        if not isinstance(ckpt, dict) or "model" not in ckpt or "progress" not in ckpt:
            raise FxforgeError(f"{path}: not a training checkpoint")
        load_weights(self.model, ckpt["model"], path)
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.progress = Progress(**ckpt["progress"])
        if self.stability is not None and "stability" in ckpt:
            self.stability.load_state_dict(ckpt["stability"])
        if self.settings is not None and "settings" in ckpt:
            self.settings.load_state_dict(ckpt["settings"])

    def save_last(self) -> None:
        atomic_save(self.state_dict(), self.run.last_path)

    # -- the loop ----------------------------------------------------------
    def epoch_batches(self, epoch: int) -> list:
        gen = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch)
        if self.settings is not None:
            return self.settings.batches(self.provider, self.cfg.train.batch_size, gen)
        x, y = self.split["train"]
        return list(self.provider.batches(x, y, self.cfg.train.batch_size, gen))

    def updates_in(self, batch_len: int) -> int:
        t = self.cfg.train
        return max(1, -(-(batch_len - t.warmup) // t.tbptt))

    def fit(self) -> Progress:
        t = self.cfg.train
        p = self.progress
        first = self.epoch_batches(p.epoch) if p.epoch < t.epochs else []
        per_epoch = sum(self.updates_in(xb.shape[1]) for xb, _ in first) or 1
        total_steps = per_epoch * t.epochs
        self.on_event("start", {"total_steps": total_steps, "step": p.step, "time_budget": t.time_budget})
        # The budget is wall clock: what came before training (loading, aligning, a stage's fit)
        # counts, and so does everything between steps; a resumed run goes on from its clock.
        clock_started = time.perf_counter()
        clock_base = p.elapsed + (self.setup_seconds if p.step == 0 else 0.0)
        if t.time_budget and not p.val_seconds:
            p.val_seconds = self._estimate_validation()
        good = self._snapshot()
        loss = math.nan
        with _catch_sigint() as sigint:
            while p.epoch < t.epochs and not p.done:
                batches = first if first is not None else self.epoch_batches(p.epoch)
                first = None
                epoch_started = time.perf_counter()
                for xb, yb in batches[p.batch :]:
                    started = time.perf_counter()
                    try:
                        loss = self.train_batch(xb, yb, total_steps)
                    except _Diverged as exc:
                        self._roll_back(good, str(exc))
                        p.batch = len(batches)  # the rest of this epoch is skipped: its order led here
                        break
                    finally:
                        p.train_time += time.perf_counter() - started
                        p.elapsed = clock_base + time.perf_counter() - clock_started
                    p.batch += 1
                    self.on_event("batch", {"step": p.step, "loss": loss, "epoch": p.epoch, "samples": p.samples,
                                            "elapsed": p.elapsed, "lr": self.optimizer.param_groups[0]["lr"]})
                    if sigint["hit"]:
                        self.save_last()
                        raise Interrupted(self.run.path)
                    # Wall clock: stop early enough for the last validation and the test (as long as it).
                    if t.time_budget and p.elapsed + 2 * p.val_seconds >= t.time_budget:
                        p.done = True
                        break
                if not p.done:
                    p.epoch += 1
                    p.batch = 0
                last = p.done or p.epoch >= t.epochs
                if last or p.epoch % p.val_every == 0:
                    started = time.perf_counter()
                    self.validate(loss)
                    p.val_seconds = time.perf_counter() - started
                    p.elapsed = clock_base + time.perf_counter() - clock_started
                    self._pace_validation(time.perf_counter() - epoch_started - p.val_seconds)
                    good = self._snapshot()
                    if t.patience and p.since_best >= t.patience:
                        p.done = True
                    self.save_last()
        return p

    def _estimate_validation(self) -> float:
        """Seconds a validation will take, from one clip of it: until the first one is timed, the
        wall-clock budget still keeps room for the last validation and the test."""
        x, _ = self.split["validation"]
        clip = int(self.cfg.train.val_clip_seconds * self.sr)
        head = x[: max(1, min(x.numel(), clip))].to(self.device)
        started = time.perf_counter()
        self.model.eval()
        with torch.no_grad():
            predict_clips(self.model, head, clip, context=max(self.cfg.train.warmup, 2048))
        return (time.perf_counter() - started) * max(1.0, x.numel() / head.numel())

    def _snapshot(self) -> dict:
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}
        if self.settings is not None:  # the settings' running ESR, as the good state weighed them
            state["settings"] = self.settings.state_dict()
        return copy.deepcopy(state)

    def _roll_back(self, good: dict, why: str) -> None:
        """Back to the last good state with half the learning rate, and say so."""
        p = self.progress
        if p.rollbacks >= MAX_ROLLBACKS:
            raise FxforgeError(f"{self.cfg.source}: {why}, after {p.rollbacks} roll-backs with the learning rate "
                               f"halved each time; the last good checkpoint is kept in {self.run.last_path} "
                               f"(try a lower optim.lr)")
        self.model.load_state_dict(good["model"])
        self.optimizer.load_state_dict(good["optimizer"])
        if self.settings is not None and "settings" in good:
            self.settings.load_state_dict(copy.deepcopy(good["settings"]))
        if self.stability is not None:  # its stream may have diverged with the model
            self.stability.reset(self.model)
        p.rollbacks += 1
        p.lr_factor *= 0.5
        message = (f"{why}: rolled back to the last good state (epoch {p.epoch}) with the learning rate "
                   f"halved (x{p.lr_factor:g})")
        log.warning("%s", message)
        self.on_event("rollback", {"message": message, "epoch": p.epoch, "step": p.step})
        self.rollback_messages.append(message)

    def _pace_validation(self, epoch_seconds: float) -> None:
        """Validate less often where a validation costs more than VALIDATION_SHARE of an epoch."""
        p = self.progress
        if epoch_seconds <= 0 or p.val_seconds < MIN_PACED_VALIDATION:
            return
        every = max(1, math.ceil(p.val_seconds / (VALIDATION_SHARE * epoch_seconds)))
        if every > p.val_every:
            p.val_every = every
            log.info("validation takes %.1f s (%.0f%% of an epoch): validating every %d epochs",
                     p.val_seconds, 100 * p.val_seconds / epoch_seconds, every)

    def train_batch(self, xb: torch.Tensor, yb: torch.Tensor, total_steps: int) -> float:
        t, p = self.cfg.train, self.progress
        xb, yb = xb.to(self.device), yb.to(self.device)
        latency = self.hooks.latency
        if latency:  # a model with algorithmic delay is scored against the target delayed as much
            yb = torch.cat([yb.new_zeros(yb.shape[0], latency, 1), yb[:, :-latency]], dim=1)
        self.model.train()
        state = self.model.initial_state(xb.shape[0], self.device)
        if t.warmup:
            with torch.no_grad():
                _, state = self.model(xb[:, : t.warmup], state)
        losses = []
        # data.captures: each example weighted by its setting (Settings.example_weights)
        which = self.settings.example_settings(xb) if self.settings is not None else None
        for start in range(t.warmup, xb.shape[1], t.tbptt):
            stop = min(start + t.tbptt, xb.shape[1])
            frac = p.step / total_steps
            if t.time_budget:
                frac = max(frac, p.elapsed / t.time_budget)
            lr = self.lr_at(min(1.0, frac)) * p.lr_factor
            for group in self.optimizer.param_groups:
                group["lr"] = lr * group["lr_scale"]
            y_hat, state = self.model(xb[:, start:stop], state)
            if which is None:
                loss = self.loss_fn(y_hat, yb[:, start:stop])
            else:  # the weights follow the settings' running ESR (data.balance), so step by step
                weights = self.settings.example_weights(xb, which)
                loss = self.loss_fn(y_hat * weights, yb[:, start:stop] * weights)
                self.settings.observe(which, y_hat, yb[:, start:stop])
            if (penalty := self.hooks.penalty()) is not None:
                loss = loss + penalty
            total = loss
            if self.stability is not None and p.step % t.stability.every == 0 and frac >= t.stability.start:
                total = loss + self.stability(self.model, stop - start)
            if not torch.isfinite(total.detach()):
                raise _Diverged(f"training diverged (loss is {total.item()}) at epoch {p.epoch + 1}, step {p.step}")
            self.optimizer.zero_grad(set_to_none=True)
            total.backward()
            if self.cfg.optim.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
            self.optimizer.step()
            self.hooks.after_step(yb[:, start:stop], self.loss_fn.quadratic_terms())
            state = detach_state(state)
            p.step += 1
            p.samples += xb.shape[0] * (stop - start)
            losses.append(loss.item())
        return sum(losses) / len(losses)

    def evaluate(self, split: str) -> dict[str, float]:
        x, y = self.split[split]
        self.model.eval()
        clip = int(self.cfg.train.val_clip_seconds * self.sr)
        if self.settings is not None:  # the trained settings together; each setting's row kept
            pooled, self.setting_results = self.settings.evaluate(
                self.model, split, clip, max(self.cfg.train.warmup, 2048), self.cfg.train.loss.pre_emphasis, self.device,
                held_out=split == "test")
            return pooled
        y_hat = predict_clips(self.model, x.to(self.device), clip, context=max(self.cfg.train.warmup, 2048))
        return metrics(y_hat.cpu().reshape(1, -1, 1), y.reshape(1, -1, 1), self.cfg.train.loss.pre_emphasis)

    def validate(self, train_loss: float) -> None:
        phase("validating")
        p = self.progress
        m = self.evaluate("validation")
        # Select on the figure the run is judged by: the same mix as the loss.
        c = self.cfg.train.loss
        score = m["esr_pre"] * c.esr_pre + m["esr"] * (c.esr or (0 if c.esr_pre else 1))
        improved = score < p.best
        if improved:
            p.best, p.best_epoch, p.since_best = score, p.epoch, 0
            atomic_save(self.model.state_dict(), self.run.model_path)
        else:
            p.since_best += 1
        row = {"epoch": p.epoch, "step": p.step, "time": round(p.elapsed, 3), "train_loss": train_loss,
               "val_esr": m["esr"], "val_esr_pre": m["esr_pre"], "lr": self.optimizer.param_groups[0]["lr"],
               "best": improved}
        self.run.append_metrics(row)
        self.on_event("validation", row)

    def test(self) -> dict[str, float]:
        state = safe_load(self.run.model_path)
        load_weights(self.model, state, self.run.model_path)
        return self.evaluate("test")

    def predictions(self, split: str = "test") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y = self.split[split]
        clip = int(self.cfg.train.val_clip_seconds * self.sr)
        with torch.no_grad():
            y_hat = predict_clips(self.model.eval(), x.to(self.device), clip, context=max(self.cfg.train.warmup, 2048)).cpu()
        return x, y, y_hat


def check_splits(trainer: Trainer, where: str) -> None:
    for name, (x, y) in trainer.split.items():
        if name != "train" and x.numel() < trainer.sr // 10:
            raise FxforgeError(f"{where}: the {name} split is shorter than 0.1 s; give more audio or change data.split")
        check_not_silent(y.numpy(), f"{where}: {name} split of the target")
    x, y = trainer.split["train"]
    check_not_silent(y.numpy(), f"{where}: train split of the target")
    need = trainer.cfg.train.warmup + 1
    if x.numel() < need:
        raise FxforgeError(f"{where}: the train split ({x.numel()} samples) is shorter than train.warmup + 1")
    first = next(iter(trainer.provider.batches(x, y, 1, torch.Generator().manual_seed(0))), None)
    if first is not None and first[0].shape[1] < need:  # all warm-up: no update, nothing learned
        hint = "raise data.segment or lower" if "segment" in type(trainer.cfg.data).model_fields else "lower"
        raise FxforgeError(f"{where}: training examples are {first[0].shape[1]} samples long, not longer than "
                           f"train.warmup = {trainer.cfg.train.warmup}; {hint} train.warmup")


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def train(cfg: RunConfig | None = None, runs_dir: Path = Path("runs"), resume: Path | None = None,
          checkpoint: Path | None = None, on_event=None) -> dict:
    """Train a new run (or resume one) and return its summary.

    Everything that can be wrong with the input is checked before the run
    directory is created, so a refused run leaves nothing behind."""
    from .. import __version__
    from ..config import load_config
    from ..runs import open_run

    wall_started = time.perf_counter()

    if resume is not None:
        run = open_run(resume)
        cfg = load_config(run.config_path)
        summary = run.read_summary()
        if summary.get("status") == "finished":
            raise FxforgeError(f"{run.path}: this run has finished; start a new one, or use --checkpoint {run.model_path}")
        if not run.last_path.exists():
            raise FxforgeError(f"{run.path}: has no checkpoint to resume from (it stopped before its first validation)")
    start_weights = None
    if checkpoint is not None:  # refuse a bad checkpoint before any other work
        start_weights = safe_load(checkpoint)
        if isinstance(start_weights, dict) and "progress" in start_weights:  # a last.pt: take its model
            start_weights = start_weights["model"]
    phase("loading")
    settings = None
    if cfg.data.captures is not None:
        from .conditioned import load_settings

        settings, cfg = load_settings(cfg)
        audio = settings.primary.pair
    else:
        audio = load_pair(cfg.data)
    phase("building the model")
    trainer = Trainer(cfg, audio, on_event, settings)
    check_splits(trainer, cfg.source)
    if start_weights is not None:
        load_weights(trainer.model, start_weights, checkpoint)
    if resume is not None:
        trainer.run = run
        trainer.load_state(run.last_path)
        run.truncate_metrics(trainer.progress.step)
    else:
        run = trainer.run = RunDir.create(runs_dir, cfg.name)
        run.write_config(cfg)
        summary = {"name": cfg.name, "model": cfg.model.name, "status": "running", "sample_rate": audio.sample_rate,
                   "parameters": parameter_count(trainer.model), "fxforge": __version__,
                   "checkpoint": str(checkpoint) if checkpoint else None}
        run.write_summary(summary)
    summary.update({"device": str(trainer.device), "latency_samples": audio.latency, "alignment": audio.alignment,
                    "notes": audio.notes})
    if settings is not None:  # the knobs' names, ranges and defaults: process, eval and exporters read them
        summary["knobs"] = settings.captures.info()
    try:
        phase("training")
        trainer.setup_seconds = time.perf_counter() - wall_started
        progress = trainer.fit()
    except Interrupted:
        summary["status"] = "interrupted"
        run.write_summary(summary)
        raise
    except FxforgeError:
        summary["status"] = "failed"
        run.write_summary(summary)
        raise
    if not run.model_path.exists():
        raise FxforgeError(f"{run.path}: no validation finished, so there are no weights to test")
    phase("testing")
    test = trainer.test()
    # The last improvement is the best (a budget's final validation may repeat an epoch number).
    best = next((r for r in reversed(run.read_metrics()) if r.get("best")), {})
    summary.update({
        "status": "finished", "run_dir": str(run.path), "epochs": progress.epoch, "steps": progress.step,
        "train_seconds": round(progress.train_time, 2), "wall_seconds": round(time.perf_counter() - wall_started, 2),
        "samples_per_second": round(progress.samples / progress.train_time) if progress.train_time else None,
        "validate_every_epochs": progress.val_every, "rollbacks": progress.rollbacks,
        "rollback_notes": trainer.rollback_messages,
        "best_epoch": progress.best_epoch, "val_esr": best.get("val_esr"), "val_esr_pre": best.get("val_esr_pre"),
        "test_esr": test["esr"], "test_esr_pre": test["esr_pre"],
    })
    if settings is not None:  # ESR per setting on its test span, the held-out settings marked
        summary["settings"] = trainer.setting_results
    summary["input_peak"] = float(np.max(np.abs(audio.x)))
    summary["target_peak"] = float(np.max(np.abs(audio.y)))
    if cfg.train.stress:
        phase("stress check")
        summary["stress"] = stress_check(run, trainer.model, audio.sample_rate, summary, trainer.split["test"][0].numpy())
    run.write_summary(summary)
    if cfg.train.report:
        write_figures(run, trainer, summary)
    return summary


def write_figures(run: RunDir, trainer: Trainer, summary: dict) -> None:
    """plots/*.png and report.html of a finished run."""
    try:
        from ..report.plots import write_plots  # matplotlib: seconds to import, so not before a run can be refused

        write_plots(run, trainer)
    except Exception as exc:  # plots are a convenience; never lose a finished run over them
        log.warning("could not draw plots: %s", exc)
    from ..report import report_at_end  # never raises: a page that fails is one warning

    report_at_end(run, trainer, summary)


def stress_check(run: RunDir, model, sample_rate: int, summary: dict, di) -> dict:
    """The stress probes (fxforge.nn.stress) on the trained model: the table to stress.json, the
    headline to the summary, and a warning where the model is chaotic inside its training range."""
    from ..nn.stress import stress, warning

    result = stress(model, sample_rate, summary["target_peak"], di)
    atomic_write_bytes(run.path / "stress.json", (json.dumps(result, indent=2) + "\n").encode())
    problem = warning(result, summary["input_peak"])
    if problem:
        log.warning("%s", problem)
    return {"stable_up_to": result["stable_up_to"], "passed": result["passed"], "warning": problem,
            "failed": [p["name"] + f" at {p['input_peak']:g}" for p in result["probes"] if not p["ok"]]}
