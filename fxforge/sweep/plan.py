"""Planning: a sweep file and its base run file become trials, each a resolved, validated run
config; nothing runs, and a fault anywhere is one line naming the sweep file and its field."""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

from ..config import RunConfig, apply_sets, config_from_dict, parse_set, read_toml, set_path, validate
from ..errors import FxforgeError
from ..specs import ModelConfig
from .schema import Plan, SweepFile, Trial
from .state import trial_state

log = logging.getLogger("fxforge")


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


def value_of(trial: "Trial", dotted: str) -> Any:
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


def fmt(value: Any) -> str:
    """A value as it appears in a trial id or a table cell."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "-".join(fmt(v) for v in value)
    if isinstance(value, dict):
        return "-".join(f"{k}{fmt(v)}" for k, v in value.items())
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
    parts = [f"{labels[k]}-{fmt(v)}" for k, v in overrides.items()] + [f"seed-{seed}"]
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
    from ..registry import get_registry

    reg = registry or get_registry()
    for section, (kind, key) in _COMPONENTS.items():
        name, node = overrides.get(f"{section}.{key}"), doc.get(section)
        if name is None or not isinstance(node, dict):
            continue
        try:
            config = reg.get(kind, str(name)).Config
        except FxforgeError:
            continue  # an unknown component: validation names it
        allowed = set(config.model_fields)
        if section == "model" and issubclass(config, ModelConfig):
            allowed |= set(reg.names("stage"))  # [model.<stage>] tables follow any waveform model
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
    from ..data.audio import load_pair

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
