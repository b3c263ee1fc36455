"""Running the trials: one after another in this process, or as Ray tasks. A trial that fails
is recorded and the sweep goes on; Ctrl-C keeps finished trials and the running one's
checkpoint, and says how to continue."""
from __future__ import annotations

import logging
import time
import traceback
from pathlib import Path
from typing import Callable, Optional

from ..config import config_from_dict
from ..errors import FxforgeError, Interrupted
from ..runs import runs_in
from .schema import Plan, Trial
from .state import record

log = logging.getLogger("fxforge")


RAY_HINT = "pip install 'fxforge[ray]'"


def execute_trial(task: dict, on_event: Callable | None = None) -> dict:
    """Train one trial; never raises except for Ctrl-C (Interrupted)."""
    from ..train.loop import train

    started = time.time()
    try:
        if task.get("resume"):
            summary = train(resume=Path(task["resume"]), on_event=on_event)
        else:
            cfg = config_from_dict(task["doc"], task["where"])
            summary = train(cfg, runs_dir=Path(task["sweep_dir"]), on_event=on_event)
        result = {"status": "finished", "test_esr": summary.get("test_esr")}
    except Interrupted:
        raise
    except FxforgeError as exc:
        result = {"status": "failed", "error": str(exc)}
    except Exception as exc:  # one broken trial must not end the sweep
        result = {"status": "failed", "error": f"unexpected {type(exc).__name__}: {exc}",
                  "traceback": traceback.format_exc()}
    result["wall_seconds"] = round(time.time() - started, 2)
    return result


def _ray_task(task: dict) -> dict:
    return execute_trial(task)


def _task(plan: Plan, trial: Trial) -> dict:
    return {"doc": trial.doc, "where": trial.cfg.source, "sweep_dir": str(plan.dir.absolute()),
            "resume": str(trial.run.absolute()) if trial.state == "resume" else None, "id": trial.id}


class SweepInterrupted(Interrupted):
    def __init__(self, plan: Plan, command: str):
        Exception.__init__(self, f"interrupted; finished trials are kept and the one running saved a checkpoint. "
                                 f"Continue with: {command}")
        self.run_dir = plan.dir


def _command(plan: Plan, ray: Optional[str]) -> str:
    parts = ["fxforge sweep", str(plan.file)] + [f"--set {s}" for s in plan.sets]
    if ray:
        parts.append(f"--ray {ray}")
    return " ".join(parts)


def _report(console, done: int, total: int, trial: Trial, result: dict) -> None:
    if result["status"] == "finished":
        esr = result.get("test_esr")
        console.print(f"[{done}/{total}] {trial.id}: finished, test ESR {esr:.5f} ({result['wall_seconds']:.0f} s)"
                      if esr is not None else f"[{done}/{total}] {trial.id}: finished", highlight=False)
    else:
        console.print(f"[{done}/{total}] {trial.id}: failed: {result.get('error')}", highlight=False, markup=False)


def run_local(plan: Plan, todo: list[Trial], console, verbose: int, ray: Optional[str]) -> None:
    from ..progress import TrainingDisplay
    # fxforge.sweep's execute_trial, looked up when the sweep runs: whoever replaces it there
    # (a test's stand-in for training) replaces the one this loop calls.
    from . import execute_trial as run_trial

    for n, trial in enumerate(todo, 1):
        resumed = trial.run if trial.state == "resume" else None
        before = set(runs_in(plan.dir / trial.id))
        console.print(f"[bold]trial {n}/{len(todo)}[/] {trial.id}" + (f" ({trial.note})" if trial.note else ""),
                      highlight=False)
        started = time.time()
        try:
            with TrainingDisplay(console, enabled=verbose >= 0) as display:
                result = run_trial(_task(plan, trial), on_event=display.event)
        except Interrupted:
            record(plan, trial, {"status": "interrupted", "wall_seconds": time.time() - started}, resumed, before)
            raise SweepInterrupted(plan, _command(plan, ray)) from None
        if verbose > 0 and result.get("traceback"):
            console.print(result["traceback"], markup=False, highlight=False)
        record(plan, trial, result, resumed, before)
        _report(console, n, len(todo), trial, result)


def _probe(address: str, timeout: float = 5.0) -> None:
    """Ray retries an unreachable HOST:PORT for minutes; say so in seconds instead."""
    import socket

    host, sep, port = address.rpartition(":")
    if "://" in address or not sep or not port.isdigit():
        return  # ray://... (Ray Client) and other forms: Ray's own checks
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout).close()
    except OSError as exc:
        raise FxforgeError(f"--ray {address}: no Ray cluster answers there ({exc.strerror or exc}); "
                           f"start one with `ray start --head`, or use --ray auto") from None


def ray_init(address: str, verbose: int):
    try:
        import ray
    except ImportError:
        raise FxforgeError(f"--ray needs Ray, which is not installed: {RAY_HINT}") from None
    if ray.is_initialized():
        return ray
    kwargs = {"logging_level": logging.WARNING if verbose <= 0 else logging.INFO, "log_to_driver": verbose > 0}
    try:
        if address == "auto":   # a running cluster (RAY_ADDRESS, or the latest `ray start`), else a local one
            ray.init(**kwargs)
        elif address == "local":
            ray.init(address="local", include_dashboard=False, **kwargs)
        else:
            _probe(address)
            ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FxforgeError(f"--ray {address}: cannot connect to Ray ({first})") from None
    return ray


def run_ray(plan: Plan, todo: list[Trial], console, verbose: int, address: str) -> None:
    ray = ray_init(address, verbose)
    cluster = ray.cluster_resources()
    console.print(f"Ray: {cluster.get('CPU', 0):g} CPUs, {cluster.get('GPU', 0):g} GPUs; "
                  f"{len(todo)} trials as tasks", highlight=False)
    remote = ray.remote(_ray_task)
    refs = {}
    for trial in todo:
        res = trial.resources(cluster)
        for key, name in (("num_cpus", "CPU"), ("num_gpus", "GPU")):
            if res[key] > cluster.get(name, 0):
                log.warning("trial %s asks for %s %s, but the cluster has %g now; it waits until one joins",
                            trial.id, res[key], name, cluster.get(name, 0))
        ref = remote.options(name=f"fxforge-trial:{trial.id}", max_retries=0, **res).remote(_task(plan, trial))
        refs[ref] = (trial, trial.run if trial.state == "resume" else None, set(runs_in(plan.dir / trial.id)))
    done = 0
    try:
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            for ref in ready:
                trial, resumed, before = refs.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as exc:  # the worker died, or the task was cancelled
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    result = {"status": "failed", "error": f"Ray task failed: {type(exc).__name__}: {first}",
                              "wall_seconds": 0.0}
                done += 1
                if verbose > 0 and result.get("traceback"):
                    console.print(result["traceback"], markup=False, highlight=False)
                record(plan, trial, result, resumed, before)
                _report(console, done, len(todo), trial, result)
    except KeyboardInterrupt:
        for ref in refs:
            ray.cancel(ref)  # its run keeps the checkpoint of its last validation: the rerun resumes it
        raise SweepInterrupted(plan, _command(plan, address)) from None
