"""Sweeps: a grid of run-file overrides, one ordinary run directory per trial.

A sweep file names a base run file and what to vary::

    name = "learning-rate"           # the sweep's folder: sweeps/<name>/ (default: the file's stem)
    base = "../wave_lstm.toml"       # relative to the sweep file
    repeats = 2                      # seeds: the base's seed, seed + 1, ... (or seeds = [0, 7])

    [set]                            # overrides for every trial, as --set would give them
    train.time_budget = "90s"

    [grid]                           # every combination of these
    optim.lr = [0.01, 0.001, 0.004]

    [[points]]                       # and/or listed points, each crossed with the grid
    data.fraction = 0.25

Everything is validated before the first trial starts: the sweep file itself,
then every trial's resolved run config. On disk::

    sweeps/<name>/
        sweep.json                   the trials: id, overrides, seed
        <trial id>/trial.json        its runs and their wall time
        <trial id>/<stamp>/          an ordinary run directory (config.toml, summary.json, ...)
        results.csv, results.md      one row per trial
        plots/validation_esr.png     validation ESR against training time, every trial
        plots/test_esr_vs_<key>.png  test ESR against each swept key (mean, min-max over seeds)

A rerun skips trials whose run finished with the same resolved config, resumes
interrupted ones from their checkpoint, and starts the rest afresh.
"""
from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import logging
import os
import re
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .config import RUN_NAME, RunConfig, apply_sets, config_from_dict, load_config, parse_set, read_toml, set_path, validate
from .errors import FxforgeError
from .runs import atomic_write_bytes, read_summary, runs_in
from .train import Interrupted

log = logging.getLogger("fxforge")

RAY_HINT = "pip install 'fxforge[ray]'"


class SweepFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Optional[str] = Field(None, description="the sweep's folder name (default: the file's stem)")
    description: str = Field("", description="free text, copied into results.md")
    base: Path = Field(..., description="the base run file, relative to the sweep file")
    repeats: int = Field(1, gt=0, le=1000, description="seeds per point: the base's seed, seed + 1, ...")
    seeds: Optional[list[int]] = Field(None, min_length=1, description="explicit seeds (instead of repeats)")
    set: dict = Field(default_factory=dict, description="overrides applied to every trial")
    grid: dict = Field(default_factory=dict, description="dotted key -> list of values; every combination")
    points: list[dict] = Field(default_factory=list, description="listed points, each crossed with the grid")

    @field_validator("name")
    @classmethod
    def _name(cls, v):
        if v is not None and (not RUN_NAME.match(v) or ".." in v):
            raise ValueError(f"must be letters, digits, '.', '_' or '-', at most 64 characters (got {v!r})")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v):
        if v is not None and len(set(v)) != len(v):
            raise ValueError("seeds must be different")
        return v


@dataclass
class Trial:
    id: str
    overrides: dict[str, Any]     # dotted key -> value (seed not included)
    seed: int
    doc: dict                     # the resolved run document handed to config_from_dict
    cfg: RunConfig
    state: str = "new"            # new | done | resume
    run: Optional[Path] = None    # the run directory to skip or resume
    note: str = ""

    def resources(self, cluster: dict | None = None) -> dict:
        """What a Ray task for this trial asks for: CPUs = train.threads, one GPU for CUDA."""
        device = self.cfg.train.device
        gpu = device.split(":")[0] == "cuda" or (device == "auto" and bool((cluster or {}).get("GPU", 0)))
        return {"num_cpus": self.cfg.train.threads or 1, "num_gpus": 1 if gpu else 0}


@dataclass
class Plan:
    name: str
    file: Path
    dir: Path
    base: Path
    keys: list[str]
    labels: dict[str, str]
    trials: list[Trial]
    description: str = ""
    sets: list[str] = field(default_factory=list)
    common: dict = field(default_factory=dict)

    def counts(self) -> Counter:
        return Counter(t.state for t in self.trials)


# -- reading a sweep file --------------------------------------------------------

def _flatten(node: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(_flatten(value, dotted))
        else:
            out[dotted] = value
    return out


def _get(doc: dict, dotted: str) -> Any:
    """A dotted key's value in a run document (None when the base leaves it to the default)."""
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _value(trial: "Trial", dotted: str) -> Any:
    """What a trial uses for a swept key: its override, else the base's value, else the default."""
    if dotted in trial.overrides:
        return trial.overrides[dotted]
    value = _get(trial.doc, dotted)
    if value is None:
        node: Any = trial.cfg
        for part in dotted.split("."):
            node = getattr(node, part, None)
        value = node if isinstance(node, (int, float, str, bool)) else None
    return value


def _check_key(key: str, where: str) -> None:
    if key == "name":
        raise FxforgeError(f"{where}: name: a trial's run name is its id; name the sweep with the top-level 'name'")
    if key == "seed":
        raise FxforgeError(f"{where}: seed: give seeds with 'repeats' or 'seeds' at the top level")


def _fmt(value: Any) -> str:
    """A value as it appears in a trial id or a table cell."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "-".join(_fmt(v) for v in value)
    if isinstance(value, dict):
        return "-".join(f"{k}{_fmt(v)}" for k, v in value.items())
    return str(value)


def _labels(keys: list[str]) -> dict[str, str]:
    """Short, unambiguous names: optim.lr -> lr, scheduler.name -> scheduler."""
    def short(k: str) -> str:
        parts = k.split(".")
        return parts[-2] if parts[-1] == "name" and len(parts) > 1 else parts[-1]

    counts = Counter(short(k) for k in keys)
    return {k: short(k) if counts[short(k)] == 1 and short(k) != "seed" else k for k in keys}


def trial_id(overrides: dict, seed: int, labels: dict[str, str]) -> str:
    """Stable and readable: 'lr-0.01_seed-0'; hashed when it would pass 64 characters."""
    parts = [f"{labels[k]}-{_fmt(v)}" for k, v in overrides.items()] + [f"seed-{seed}"]
    tid = re.sub(r"[^A-Za-z0-9._-]", "-", "_".join(parts))
    if len(tid) > 64:
        digest = hashlib.sha1(json.dumps([overrides, seed], sort_keys=True, default=str).encode()).hexdigest()[:8]
        tid = f"{tid[:55]}-{digest}"
    return tid


def _retag(exc: FxforgeError, validated_at: str, where: str, section: str = "", suffix: str = "") -> FxforgeError:
    """A fault in a trial's resolved run document, named where the user wrote it:
    ``where`` (the sweep file, or --set) and its ``section`` ("grid.", "set.").
    Only errors config_from_dict raised at ``validated_at`` with a field are
    re-framed; any other keeps its own line."""
    if exc.where == validated_at and exc.field:
        return exc.reframed(where, section, suffix)
    return exc.reframed(exc.where, "", suffix) if suffix else exc


def _validate_doc(doc: dict, validated_at: str, where: str, section: str = "", registry=None) -> RunConfig:
    try:
        return config_from_dict(doc, validated_at, registry)
    except FxforgeError as exc:
        raise _retag(exc, validated_at, where, section) from None


def _section_for(field_: str | None, keys: list[str]) -> bool:
    return bool(field_) and any(field_ == k or field_.startswith(k + ".") or k.startswith(field_ + ".") for k in keys)


# section -> (component kind, the key naming it)
_COMPONENTS = {"model": ("model", "name"), "scheduler": ("scheduler", "name"), "data": ("provider", "provider")}


def _drop_foreign(doc: dict, overrides: dict, registry=None) -> None:
    """A trial that switches a component (scheduler.name = "constant" on a cosine
    base) drops the keys the base gave the old one that the new one does not
    take (cosine's floor); the trial's own overrides are always kept."""
    from .registry import get_registry

    reg = registry or get_registry()
    for section, (kind, key) in _COMPONENTS.items():
        name, node = overrides.get(f"{section}.{key}"), doc.get(section)
        if name is None or not isinstance(node, dict):
            continue
        try:
            allowed = set(reg.get(kind, str(name)).Config.model_fields)
        except FxforgeError:
            continue  # an unknown component: validation names it
        for k in list(node):
            if k not in allowed and k != key and not any(o == f"{section}.{k}" or o.startswith(f"{section}.{k}.")
                                                         for o in overrides):
                log.debug("%s.%s does not apply to %s '%s'; dropped for this trial", section, k, kind, name)
                del node[k]


def _absolute_paths(cfg: RunConfig, doc: dict) -> bool:
    """Make relative data paths absolute (relative to where the sweep runs, as for
    `fxforge run`), so a trial means the same on a Ray worker with another cwd."""
    changed = False
    for key in type(cfg.data).model_fields:
        value = getattr(cfg.data, key)
        if isinstance(value, Path) and not value.is_absolute():
            doc.setdefault("data", {})[key] = os.path.abspath(value)
            changed = True
    return changed


def _check_pair(data, resolved, checked: set[str], prefix: str, suffix: str) -> None:
    """Load a trial's recordings as `fxforge run` would (readable audio, channels, rates,
    lengths, alignment), once per distinct pair, so a bad file is refused before any
    trial starts. The built-in demo capture needs no check."""
    from .audio import load_pair

    if data.demo is not None:
        return
    fields = ("input", "target", "channel", "resample", "length_tolerance", "latency", "max_latency_ms")
    key = json.dumps([str(getattr(resolved, f)) for f in fields])
    if key in checked:
        return
    try:
        load_pair(data)
    except FxforgeError as exc:
        raise FxforgeError(f"{prefix}{exc}{suffix}") from None
    checked.add(key)


def plan_sweep(file: Path | str, sets: list[str] | None = None, repeats: int | None = None,
               sweeps_dir: Path | str = Path("sweeps"), registry=None) -> Plan:
    """Read and validate a sweep file and every trial it makes; nothing is run."""
    file = Path(file)
    where = str(file)
    sweep = validate(SweepFile, read_toml(file), where)
    sets = list(sets or [])
    if sweep.seeds is not None and "repeats" in sweep.model_fields_set:
        raise FxforgeError(f"{where}: repeats: give either repeats or seeds, not both")
    if repeats is not None and sweep.seeds is not None:
        raise FxforgeError(f"--repeats {repeats}: {where} lists its seeds; change 'seeds' there instead")
    base_path = sweep.base if sweep.base.is_absolute() else file.parent / sweep.base
    if not base_path.exists():
        raise FxforgeError(f"{where}: base: no such file ({base_path})")
    if base_path.is_dir():
        raise FxforgeError(f"{where}: base: {base_path} is a directory, expected a TOML run file")
    base_doc = read_toml(base_path)
    config_from_dict(base_doc, str(base_path), registry)

    common = _flatten(sweep.set)
    doc = json.loads(json.dumps(base_doc, default=str))
    for key, value in common.items():
        if key == "name":
            _check_key(key, f"{where}: set")
        set_path(doc, key, value, f"{where}: set")
    _drop_foreign(doc, common, registry)
    _validate_doc(doc, where, where, "set.", registry)

    grid = _flatten(sweep.grid)
    for key, values in grid.items():
        _check_key(key, f"{where}: grid")
        if not isinstance(values, list) or not values:
            raise FxforgeError(f"{where}: grid.{key}: expected a non-empty list of values, "
                               f"e.g. [0.01, 0.001] (got {values!r})")
        seen = [json.dumps(v, sort_keys=True, default=str) for v in values]
        if len(set(seen)) != len(seen):
            dup = next(v for v, s in zip(values, seen) if seen.count(s) > 1)
            raise FxforgeError(f"{where}: grid.{key}: the value {dup!r} is listed twice")
    points = [_flatten(p) for p in sweep.points] or [{}]
    for i, point in enumerate(points if sweep.points else []):
        for key in point:  # an empty point, {}, is the base as it is
            _check_key(key, f"{where}: points[{i}]")
            if key in grid:
                raise FxforgeError(f"{where}: points[{i}].{key}: also in [grid]; vary a key in one place")

    swept = list(dict.fromkeys(list(grid) + [k for p in points for k in p]))
    for item in sets:  # --set changes the base; a key every trial overrides would change nothing
        key = item.partition("=")[0].strip()
        if key in grid or (sweep.points and all(key in p for p in points)):
            raise FxforgeError(f"--set {item}: {key} is swept by {where}; it cannot also be fixed")
    doc = apply_sets(doc, sets)
    _drop_foreign(doc, {".".join(parse_set(item)[0]): parse_set(item)[1] for item in sets}, registry)
    base_cfg = _validate_doc(doc, where, "--set", "", registry)

    seeds = sweep.seeds or [base_cfg.seed + i for i in range(repeats or sweep.repeats)]
    labels = _labels(swept)
    name = sweep.name or re.sub(r"[^A-Za-z0-9._-]", "-", file.stem)
    trials: list[Trial] = []
    ids: dict[str, int] = {}
    checked: set[str] = set()
    for i, point in enumerate(points):
        for combo in itertools.product(*grid.values()):
            overrides = {**point, **dict(zip(grid, combo))}
            overrides = {k: overrides[k] for k in swept if k in overrides}
            for seed in seeds:
                tid = trial_id(overrides, seed, labels)
                if tid in ids:
                    digest = hashlib.sha1(json.dumps([overrides, seed], sort_keys=True, default=str).encode()).hexdigest()[:8]
                    tid = f"{tid[:55]}-{digest}"
                ids[tid] = 1
                tdoc = json.loads(json.dumps(doc, default=str))
                tdoc["name"], tdoc["seed"] = tid, seed
                for key, value in overrides.items():
                    set_path(tdoc, key, value, f"{where}: grid.{key}")
                _drop_foreign(tdoc, overrides, registry)
                try:
                    cfg = config_from_dict(tdoc, where, registry)
                except FxforgeError as exc:
                    section = "grid." if _section_for(exc.field, list(grid)) \
                        else (f"points[{i}]." if sweep.points else "")
                    raise _retag(exc, where, where, section, f" (trial {tid})") from None
                data = cfg.data  # its paths as given, relative to here: as `fxforge run` names them
                if _absolute_paths(cfg, tdoc):
                    cfg = config_from_dict(tdoc, where, registry)
                for key in ("input", "target"):
                    path = getattr(cfg.data, key, None)
                    if isinstance(path, Path) and not path.is_file():
                        raise FxforgeError(f"{where}: data.{key}: no such file ({path}) (trial {tid})")
                _check_pair(data, cfg.data, checked, f"{where}: ", f" (trial {tid})")
                cfg.source = f"{where} (trial {tid})"
                trials.append(Trial(tid, overrides, seed, tdoc, cfg))
    plan = Plan(name, file, Path(sweeps_dir) / name, base_path, swept, labels, trials, sweep.description, sets, common)
    for t in trials:
        t.state, t.run, t.note = trial_state(t, plan.dir)
    return plan


# -- state on disk -----------------------------------------------------------------

def _same_config(run: Path, cfg: RunConfig) -> bool:
    try:
        return load_config(run / "config.toml").to_dict() == cfg.to_dict()
    except FxforgeError:
        return False


def trial_state(trial: Trial, sweep_dir: Path) -> tuple[str, Optional[Path], str]:
    """('done', run) when a run with this exact config finished; ('resume', run) when
    one stopped with a checkpoint; else ('new', None)."""
    runs = runs_in(sweep_dir / trial.id)
    for run in runs:
        if not _same_config(run, trial.cfg):
            continue
        status = read_summary(run).get("status")
        if status == "finished":
            return "done", run, ""
        if status in ("running", "interrupted") and (run / "checkpoints" / "last.pt").is_file():
            return "resume", run, f"resuming {run.name}"
        return "new", None, f"its last run {status or 'stopped'}; starting afresh"
    return "new", None, ("the config changed since its last run; starting afresh" if runs else "")


def _trial_meta(trial_dir: Path) -> dict:
    try:
        return json.loads((trial_dir / "trial.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _record(plan: Plan, trial: Trial, result: dict, resumed: Optional[Path], before: set) -> None:
    """Write trial.json: which run is this trial's, its status and wall time."""
    tdir = plan.dir / trial.id
    tdir.mkdir(parents=True, exist_ok=True)
    meta = _trial_meta(tdir)
    made = [r for r in runs_in(tdir) if r not in before]
    run = resumed or (made[0] if made else None)
    entry = meta.setdefault("runs", {}).setdefault(run.name if run else "-", {"wall_seconds": 0.0})
    entry["wall_seconds"] = round(entry.get("wall_seconds", 0.0) + result.get("wall_seconds", 0.0), 2)
    entry["status"] = result["status"]
    if result.get("error"):
        entry["error"] = result["error"]
    else:
        entry.pop("error", None)
    meta.update({"id": trial.id, "overrides": trial.overrides, "seed": trial.seed})
    atomic_write_bytes(tdir / "trial.json", (json.dumps(meta, indent=2, default=str) + "\n").encode())
    trial.run = run
    trial.state = "done" if result["status"] == "finished" else "failed"
    trial.note = result.get("error", "")


# -- running one trial (locally or as a Ray task) ------------------------------------

def execute_trial(task: dict, on_event: Callable | None = None) -> dict:
    """Train one trial; never raises except for Ctrl-C (Interrupted)."""
    from .train import train

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


def _run_local(plan: Plan, todo: list[Trial], console, verbose: int, ray: Optional[str]) -> None:
    from .progress import TrainingDisplay

    for n, trial in enumerate(todo, 1):
        resumed = trial.run if trial.state == "resume" else None
        before = set(runs_in(plan.dir / trial.id))
        console.print(f"[bold]trial {n}/{len(todo)}[/] {trial.id}" + (f" ({trial.note})" if trial.note else ""),
                      highlight=False)
        started = time.time()
        try:
            with TrainingDisplay(console, enabled=verbose >= 0) as display:
                result = execute_trial(_task(plan, trial), on_event=display.event)
        except Interrupted:
            _record(plan, trial, {"status": "interrupted", "wall_seconds": time.time() - started}, resumed, before)
            raise SweepInterrupted(plan, _command(plan, ray)) from None
        if verbose > 0 and result.get("traceback"):
            console.print(result["traceback"], markup=False, highlight=False)
        _record(plan, trial, result, resumed, before)
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


def _ray_init(address: str, verbose: int):
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


def _run_ray(plan: Plan, todo: list[Trial], console, verbose: int, address: str) -> None:
    ray = _ray_init(address, verbose)
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
                _record(plan, trial, result, resumed, before)
                _report(console, done, len(todo), trial, result)
    except KeyboardInterrupt:
        for ref in refs:
            ray.cancel(ref)  # its run keeps the checkpoint of its last validation: the rerun resumes it
        raise SweepInterrupted(plan, _command(plan, address)) from None


# -- results -------------------------------------------------------------------------

COLUMNS = ["val_esr", "val_esr_pre", "test_esr", "test_esr_pre", "epochs", "train_seconds", "wall_seconds"]
HEADERS = {"val_esr": "val ESR", "val_esr_pre": "val pre", "test_esr": "test ESR", "test_esr_pre": "test pre",
           "epochs": "epochs", "train_seconds": "train s", "wall_seconds": "wall s"}


def collect(plan: Plan) -> list[dict]:
    """One row per trial, from its run's summary.json and its trial.json."""
    rows = []
    for t in plan.trials:
        run = t.run
        if run is None or not run.is_dir():
            state, run, _ = trial_state(t, plan.dir)
            if run is None:
                runs = [r for r in runs_in(plan.dir / t.id) if _same_config(r, t.cfg)]
                run = runs[0] if runs else None
        summary = read_summary(run) if run else {}
        meta = _trial_meta(plan.dir / t.id).get("runs", {}).get(run.name if run else "-", {})
        row = {"trial": t.id, **{k: _value(t, k) for k in plan.keys}, "seed": t.seed,
               "status": summary.get("status") or meta.get("status") or "not run"}
        for key in COLUMNS:
            row[key] = summary.get(key)
        row["wall_seconds"] = meta.get("wall_seconds")
        row["run"] = str(run.relative_to(plan.dir)) if run else ""
        row["error"] = meta.get("error", "") if row["status"] != "finished" else ""
        rows.append(row)
    return rows


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key in ("val_esr", "val_esr_pre", "test_esr", "test_esr_pre"):
        return f"{value:.4g}"
    if key in ("train_seconds", "wall_seconds"):
        return f"{value:.1f}"
    return _fmt(value)


def table_rows(plan: Plan, rows: list[dict], with_id: bool = True) -> tuple[list[str], list[list[str]]]:
    cols = (["trial"] if with_id else []) + plan.keys + ["seed", "status"] + COLUMNS
    head = (["trial"] if with_id else []) + [plan.labels[k] for k in plan.keys] + ["seed", "status"] \
        + [HEADERS[c] for c in COLUMNS]
    return head, [[_cell(c, r[c]) for c in cols] for r in rows]


def write_results(plan: Plan, rows: list[dict]) -> None:
    plan.dir.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    cols = ["trial"] + plan.keys + ["seed", "status"] + COLUMNS + ["run", "error"]
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow(["" if r[c] is None else (_fmt(r[c]) if c in plan.keys else r[c]) for c in cols])
    atomic_write_bytes(plan.dir / "results.csv", buf.getvalue().encode())
    head, body = table_rows(plan, rows)
    lines = [f"# sweep {plan.name}", ""]
    if plan.description:
        lines += [plan.description, ""]
    fixed = [f"`{k} = {_fmt(v)}`" for k, v in plan.common.items()] + [f"`--set {s}`" for s in plan.sets]
    lines += [f"Base: `{os.path.normpath(plan.base)}`" + (f"; for every trial: {', '.join(fixed)}" if fixed else "") + ".", ""]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join("---" if i < len(plan.keys) + 3 else "---:" for i in range(len(head))) + "|")
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
    atomic_write_bytes(plan.dir / "results.md", ("\n".join(lines) + "\n").encode())
    (plan.dir / "sweep.json").write_text(json.dumps({
        "name": plan.name, "file": str(plan.file), "base": str(plan.base), "set": plan.sets, "keys": plan.keys,
        "trials": [{"id": t.id, "overrides": t.overrides, "seed": t.seed} for t in plan.trials]},
        indent=2, default=str) + "\n")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def write_plots(plan: Plan, rows: list[dict]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = plan.dir / "plots"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    # Validation ESR against training time, every trial.
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    drawn = 0
    for r in rows:
        if not r["run"]:
            continue
        metrics = []
        for line in (plan.dir / r["run"] / "metrics.jsonl").read_text().splitlines() \
                if (plan.dir / r["run"] / "metrics.jsonl").is_file() else []:
            try:
                metrics.append(json.loads(line))
            except json.JSONDecodeError:
                pass
        if not metrics:
            continue
        t = [m["time"] for m in metrics]
        for ax, key in zip(axes, ("val_esr", "val_esr_pre")):
            ax.plot(t, [max(m[key], 1e-12) for m in metrics], marker=".", label=r["trial"])
        drawn += 1
    if drawn:
        for ax, title in zip(axes, ("validation ESR", "validation ESR (pre-emphasised)")):
            ax.set_yscale("log")
            ax.set_xlabel("training time (s)")
            ax.set_title(title)
            ax.grid(alpha=0.3, which="both")
        axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
        fig.suptitle(f"sweep {plan.name}")
        fig.tight_layout()
        fig.savefig(out / "validation_esr.png", dpi=100)
        written.append(out / "validation_esr.png")
    plt.close(fig)
    # Final test ESR against each swept key; one line per combination of the other keys.
    done = [r for r in rows if r["status"] == "finished" and r["test_esr"] is not None]
    for key in plan.keys:
        values = list(dict.fromkeys(json.dumps(r[key], default=str) for r in rows if r[key] is not None))
        values = [json.loads(v) for v in values]
        if not values:
            continue
        numeric = all(_is_number(v) for v in values)
        others = [k for k in plan.keys if k != key]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        groups: dict[str, list[dict]] = {}
        for r in done:
            if r[key] is None:
                continue
            label = ", ".join(f"{plan.labels[k]}={_fmt(r[k])}" for k in others if r[k] is not None)
            groups.setdefault(label, []).append(r)
        for gi, (label, members) in enumerate(groups.items()):
            xs, means, lo, hi = [], [], [], []
            for vi, v in enumerate(values):
                ys = [m for m in members if m[key] == v]
                if not ys:
                    continue
                xs.append(v if numeric else vi)
                means.append(ys)
            for ax, metric in zip(axes, ("test_esr", "test_esr_pre")):
                ms = [sum(m[metric] for m in ys) / len(ys) for ys in means]
                lo = [m - min(y[metric] for y in ys) for m, ys in zip(ms, means)]
                hi = [max(y[metric] for y in ys) - m for m, ys in zip(ms, means)]
                shift = xs if numeric else [x + (gi - (len(groups) - 1) / 2) * 0.06 for x in xs]
                ax.errorbar(shift, ms, yerr=[lo, hi], marker="o", capsize=4, label=label or None)
        for ax, title in zip(axes, ("test ESR", "test ESR (pre-emphasised)")):
            if numeric and min(values) > 0 and max(values) / min(values) >= 8:
                ax.set_xscale("log")
            if numeric:
                ax.set_xticks(values)
                ax.set_xticklabels([_fmt(v) for v in values])
                ax.minorticks_off()
            else:
                ax.set_xticks(range(len(values)))
                ax.set_xticklabels([_fmt(v) for v in values])
            ax.set_yscale("log")
            ax.set_xlabel(key)
            ax.set_title(f"{title}: mean, min-max over seeds")
            ax.grid(alpha=0.3, which="both")
        if any(groups):
            axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
        fig.tight_layout()
        path = out / f"test_esr_vs_{re.sub(r'[^A-Za-z0-9._-]', '-', plan.labels[key])}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


# -- the whole sweep --------------------------------------------------------------------

def run_sweep(file: Path | str, sets: list[str] | None = None, sweeps_dir: Path | str = Path("sweeps"),
              ray: Optional[str] = None, repeats: Optional[int] = None, dry_run: bool = False,
              console=None, verbose: int = 0) -> tuple[Plan, list[dict]]:
    """Plan (validating every trial), run what is not finished, write the results."""
    from rich.console import Console

    console = console or Console()
    plan = plan_sweep(file, sets, repeats, sweeps_dir)
    if ray is not None:  # fail before any work when Ray is asked for but missing
        try:
            import ray as _  # noqa: F401
        except ImportError:
            raise FxforgeError(f"--ray needs Ray, which is not installed: {RAY_HINT}") from None
    counts = plan.counts()
    todo = [t for t in plan.trials if t.state != "done"]
    console.print(f"sweep '{plan.name}': {len(plan.trials)} trials: {counts['done']} finished earlier (skipped), "
                  f"{counts['resume']} to resume, {counts['new']} to run -> {plan.dir}", highlight=False)
    if dry_run:
        for t in plan.trials:
            console.print(f"  {t.id}: {t.state}" + (f" ({t.note})" if t.note else ""), highlight=False)
        return plan, collect(plan)
    if todo:
        if ray is not None:
            _ray_init(ray, verbose)  # an unreachable cluster is an error before anything is written
        plan.dir.mkdir(parents=True, exist_ok=True)
        if ray is None:
            _run_local(plan, todo, console, verbose, ray)
        else:
            _run_ray(plan, todo, console, verbose, ray)
    rows = collect(plan)
    write_results(plan, rows)
    try:
        write_plots(plan, rows)
    except Exception as exc:  # plots are a convenience; never lose the table over them
        log.warning("could not draw the sweep's plots: %s", exc)
    return plan, rows


def print_table(plan: Plan, rows: list[dict], console) -> None:
    from rich.table import Table

    from rich import box

    with_id = not plan.keys  # the overrides and the seed name a trial; its id is in results.csv
    head, body = table_rows(plan, rows, with_id)
    fixed = len(plan.keys) + 2 + with_id
    if all(r["status"] == "finished" for r in rows):  # the status column only when it says something
        status = fixed - 1
        head, body = head[:status] + head[status + 1:], [b[:status] + b[status + 1:] for b in body]
        fixed -= 1
    table = Table(title=f"sweep '{plan.name}': best validation ESR, test ESR (plain, pre-emphasised)",
                  title_justify="left", box=box.SIMPLE_HEAD)
    for i, h in enumerate(head):
        table.add_column(h, justify="right" if i >= fixed else "left", overflow="fold")
    for row in body:
        table.add_row(*row)
    console.print(table)
    for r in rows:
        if r["error"]:
            console.print(f"{r['trial']}: {r['error']}", markup=False, highlight=False, soft_wrap=True)
    failed = sum(r["status"] not in ("finished",) for r in rows)
    tail = f"; {failed} not finished (rerun the sweep to retry)" if failed else ""
    console.print(f"results: {plan.dir / 'results.csv'}, results.md, plots/{tail}", highlight=False)
