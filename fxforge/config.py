"""The run file: a TOML envelope whose component sections are validated by
the Config each component's plugin declares.

Errors are one line naming the file and the dotted field::

    configs/x.toml: model.hidden_size: Input should be greater than 0 (got -3)
"""
from __future__ import annotations

import difflib
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import FxforgeError
from .schema import (  # noqa: F401  (the schema's names, as fxforge.config has always offered them)
    DEMO_KINDS, RUN_NAME, DataConfig, Envelope, LossConfig, OptimConfig, Section, StabilityConfig, TrainConfig,
    parse_duration,
)

# Run files shipped inside the package (`fxforge train` uses capture.toml).
RECIPES = Path(__file__).resolve().parent / "recipes"

@dataclass
class RunConfig:
    """A fully validated run file."""

    name: str
    seed: int
    data: DataConfig
    model: Any
    optim: OptimConfig
    scheduler: Any
    train: TrainConfig
    export: dict = field(default_factory=dict)
    source: str = ""

    def to_dict(self) -> dict:
        out = {"name": self.name, "seed": self.seed}
        for key in ("data", "model", "optim", "scheduler", "train"):
            out[key] = _drop_none(getattr(self, key).model_dump(mode="json"))
        if self.export:
            out["export"] = self.export
        return out


def _drop_none(d):
    if isinstance(d, dict):
        return {k: _drop_none(v) for k, v in d.items() if v is not None}
    return d


# -- parsing -------------------------------------------------------------------

def parse_set(item: str) -> tuple[list[str], Any]:
    """'train.time_budget=10s' -> (['train', 'time_budget'], '10s'); values are
    TOML values when they parse as one, else plain strings."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise FxforgeError(f"--set {item!r}: expected section.key=value")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.split("."), value


def set_path(doc: dict, dotted: str, value: Any, where: str) -> None:
    """doc['a']['b'] = value for 'a.b', creating sections on the way."""
    path = dotted.split(".")
    node = doc
    for i, part in enumerate(path[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise FxforgeError(f"{where}: '{'.'.join(path[:i + 1])}' is a value, not a section")
        node = child
    node[path[-1]] = value


def apply_sets(doc: dict, sets: list[str]) -> dict:
    parsed = [(".".join(path), value, item) for item in sets for path, value in [parse_set(item)]]
    # Setting a data source replaces the file's: a recipe written for the demo capture trains on
    # your recordings with --set data.input=di.wav --set data.target=amp.wav, and back.
    keys = {key for key, _, _ in parsed}
    data = doc.get("data")
    if isinstance(data, dict):
        if keys & {"data.input", "data.target", "data.captures"} and "data.demo" not in keys:
            data.pop("demo", None)
        if keys & {"data.demo", "data.captures"}:
            for key in ("input", "target"):
                if f"data.{key}" not in keys:
                    data.pop(key, None)
        if keys & {"data.input", "data.target", "data.demo"} and "data.captures" not in keys:
            data.pop("captures", None)
            data.pop("holdout", None)
    for key, value, item in parsed:
        set_path(doc, key, value, f"--set {item}")
    return doc


def read_toml(path: Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise FxforgeError(f"{path}: no such file")
    if path.is_dir():
        raise FxforgeError(f"{path}: is a directory, expected a TOML run file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise FxforgeError(f"{path}: not a text file") from None
    except tomllib.TOMLDecodeError as exc:
        raise FxforgeError(f"{path}: invalid TOML: {exc}") from None


def validation_message(exc: ValidationError, where: str, prefix: str, model: type[BaseModel]) -> str:
    """First pydantic error as 'FILE: dotted.field: message'."""
    return str(validation_error(exc, where, prefix, model))


def validation_error(exc: ValidationError, where: str, prefix: str, model: type[BaseModel],
                     also: tuple[str, ...] = ()) -> FxforgeError:
    """The first pydantic error as an FxforgeError with its file, dotted field and
    message. An unknown key comes first: it is usually a misspelling of the key
    another error says is missing. ``also``: keys valid beside the model's fields (the
    stages a [model] section may hold), offered as close matches too."""
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    err = errors[0]
    loc = [str(p) for p in err["loc"]]
    dotted = ".".join([p for p in [prefix] if p] + loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        parent = model
        for part in loc[:-1]:
            sub = parent.model_fields.get(part)
            ann = getattr(sub, "annotation", None) if sub else None
            # unwrap Optional[Section] and the like
            candidates = [ann, *typing.get_args(ann)]
            parent = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
            if parent is None:
                break
        valid = sorted({*parent.model_fields, *(also if parent is model else ())}) if parent else []
        close = difflib.get_close_matches(loc[-1], valid, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else (f" (valid: {', '.join(valid)})" if valid else "")
        what = "unknown section" if not prefix and len(loc) == 1 and model is Envelope else "unknown key"
        msg = f"{what}{hint}"
    else:
        msg = err["msg"].removeprefix("Value error, ")
        value = err.get("input")
        if err["type"] != "missing" and isinstance(value, (int, float, str, bool)) and "(got" not in msg:
            msg += f" (got {value!r})"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return FxforgeError(f"{msg}{more}", where=where, field=dotted)


def validate(model: type[BaseModel], data: Any, where: str, prefix: str = "", also: tuple[str, ...] = ()):
    if not isinstance(data, dict):
        raise FxforgeError(f"expected a table (section), got {type(data).__name__}", where=where,
                           field=prefix or "(top level)")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, where, prefix, model, also) from None


def load_config(path: Path | str, sets: list[str] | None = None, registry=None) -> RunConfig:
    """Read, override and validate a run file; raises FxforgeError on any fault."""
    path = Path(path)
    doc = apply_sets(read_toml(path), list(sets or []))
    return config_from_dict(doc, str(path), registry)


def _model_with_stages(model_spec, section: dict, where: str, reg):
    """Validate [model]: its own keys by the model's Config, each ``[model.<stage>]`` table
    by that registered stage's Config, kept in ``model_cfg.stages`` in the file's order.
    Only a waveform model (a ModelConfig) takes stages; a key the model itself declares
    stays the model's even where a stage shares its name."""
    from .specs import ModelConfig

    if not issubclass(model_spec.Config, ModelConfig):
        return validate(model_spec.Config, section, where, "model")
    names = tuple(n for n in reg.names("stage") if n not in model_spec.Config.model_fields)
    own = {k: v for k, v in section.items() if k not in names}
    model_cfg = validate(model_spec.Config, own, where, "model", also=names)
    for name in (k for k in section if k in names):
        model_cfg.stages[name] = validate(reg.get("stage", name).Config, section[name], where, f"model.{name}")
    return model_cfg


def config_from_dict(doc: dict, where: str, registry=None) -> RunConfig:
    from .registry import get_registry

    reg = registry or get_registry()
    env = validate(Envelope, doc, where)
    if "name" not in env.model:
        raise FxforgeError(f"Field required (installed: {', '.join(reg.names('model')) or 'none'})",
                           where=where, field="model.name")
    model_spec = reg.get("model", str(env.model["name"]), where=where, field="model.name")
    model_cfg = _model_with_stages(model_spec, env.model, where, reg)

    provider_name = env.data.get("provider") or model_spec.provider
    provider_spec = reg.get("provider", str(provider_name), where=where, field="data.provider")
    data_cfg = validate(provider_spec.Config, {**env.data, "provider": provider_spec.name}, where, "data")

    sched_doc = env.scheduler if "name" in env.scheduler else {"name": "constant", **env.scheduler}
    sched_spec = reg.get("scheduler", str(sched_doc["name"]), where=where, field="scheduler.name")
    sched_cfg = validate(sched_spec.Config, sched_doc, where, "scheduler")

    device = env.train.device
    if device != "auto":
        reg.get("device", device.split(":")[0], where=where, field="train.device")
    return RunConfig(env.name, env.seed, data_cfg, model_cfg, env.optim, sched_cfg, env.train,
                     env.export, where)
