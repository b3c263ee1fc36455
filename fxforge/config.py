"""The run file: a TOML envelope whose component sections are validated by
the Config each component's plugin declares.

Errors are one line naming the file and the dotted field::

    configs/x.toml: model.hidden_size: Input should be greater than 0 (got -3)
"""
from __future__ import annotations

import difflib
import re
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import FxforgeError

# The built-in captures (fxforge.demo): a driven amp, a high-gain lead channel, either with a cabinet.
DEMO_KINDS = ("amp", "cab", "lead", "lead-cab")

# Run files shipped inside the package (`fxforge train` uses capture.toml).
RECIPES = Path(__file__).resolve().parent / "recipes"

RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class Section(BaseModel):
    # inf/nan are never meant: refused here rather than as an overflow or a diverged run later
    model_config = ConfigDict(extra="forbid", protected_namespaces=(), allow_inf_nan=False)


class DataConfig(Section):
    """Where the paired audio comes from and how it is split. Providers subclass
    this to add their own keys (segment length, frame size, ...)."""

    provider: Optional[str] = Field(None, description="data provider; default: the model's own")
    demo: Optional[str] = Field(None, description="built-in capture: 'amp' or 'cab'")
    demo_seconds: float = Field(180.0, gt=0, description="length of the built-in capture")
    input: Optional[Path] = Field(None, description="dry recording (WAV/FLAC)")
    target: Optional[Path] = Field(None, description="processed recording, same length")
    channel: Optional[int] = Field(None, ge=0, description="channel to use from multi-channel files")
    resample: bool = Field(True, description="resample the target to the input's rate if they differ")
    length_tolerance: float = Field(0.05, ge=0, description="seconds the two files may differ in length")
    latency: str | int = Field("auto", description="'auto': measure, and correct lags of 16 samples or more; or a fixed delay in samples")
    max_latency_ms: float = Field(50.0, gt=0, description="latency search window")
    split: tuple[float, float, float] = Field((0.7, 0.15, 0.15), description="train/validation/test fractions, in time order")
    fraction: float = Field(1.0, gt=0, le=1, description="fraction of the training split to use")

    @field_validator("latency")
    @classmethod
    def _latency(cls, v):
        if isinstance(v, int):
            if v < 0:
                raise ValueError("must be 'auto' or a delay >= 0 in samples")
            return v
        if v != "auto":
            raise ValueError("must be 'auto' or a delay >= 0 in samples")
        return v

    @field_validator("split")
    @classmethod
    def _split(cls, v):
        if any(f <= 0 for f in v) or abs(sum(v) - 1) > 1e-6:
            raise ValueError("must be three positive fractions that add up to 1")
        return v

    @model_validator(mode="after")
    def _source(self):
        if self.demo is not None:
            if self.input is not None or self.target is not None:
                raise ValueError("give either demo or input and target, not both")
            if self.demo not in DEMO_KINDS:
                raise ValueError(f"demo must be one of {', '.join(map(repr, DEMO_KINDS))} (got {self.demo!r})")
        elif self.input is None or self.target is None:
            raise ValueError("give input and target recordings, or demo = \"amp\"")
        return self


class LossConfig(Section):
    """Weights of the loss terms (each computed on the time-domain output)."""

    esr_pre: float = Field(1.0, ge=0, description="ESR after pre-emphasis")
    esr: float = Field(0.0, ge=0, description="plain ESR")
    dc: float = Field(1.0, ge=0, description="DC error")
    stft: float = Field(0.0, ge=0, description="multi-resolution STFT distance")
    pre_emphasis: float = Field(0.95, ge=0, lt=1, description="coefficient of 1 - a z^-1")
    normalise: Literal["split", "batch"] = Field(
        "split", description="divide each ESR term by the target's energy over the whole training split "
                             "(a constant) or over each batch (the textbook ESR, which explodes on quiet batches)")

    @model_validator(mode="after")
    def _some(self):
        if self.esr_pre + self.esr + self.dc + self.stft <= 0:
            raise ValueError("at least one loss weight must be > 0")
        return self


class OptimConfig(Section):
    lr: float = Field(0.005, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: Optional[float] = Field(1.0, gt=0, description="max gradient norm; none to disable")


_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_duration(v: Any) -> Optional[float]:
    """'15m', '90s', '1h30m', a number of seconds, or 'none'."""
    if v is None or v == "none":
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if v <= 0:
            raise ValueError("must be > 0")
        return float(v)
    if isinstance(v, str):
        m = _DURATION.match(v.strip())
        if m and any(m.groups()):
            h, mi, s = (float(g) if g else 0.0 for g in m.groups())
            total = h * 3600 + mi * 60 + s
            if total > 0:
                return total
    raise ValueError(f"must be a duration like '90s', '15m', '1h30m' or 'none' (got {v!r})")


class StabilityConfig(Section):
    """Penalties that keep a stateful model stable beyond the capture's level (fxforge.stability):
    on a stream of stress inputs (the training input up to ``gain_db`` louder, low sines up to full
    scale, silences) a nearby state must not drift away, the output must stay near the target's
    peak, and it must fall silent after the input stops. Zero on a model that already behaves."""

    enabled: bool = Field(True, description="run the stress stream beside training")
    every: int = Field(2, gt=0, description="add the penalty every this many updates")
    rows: int = Field(4, gt=0, description="stress signals run in parallel")
    gain_db: float = Field(12.0, ge=0, description="the training input is replayed up to this much louder")
    contraction: float = Field(0.01, ge=0, description="weight of a nearby state's growth (log of the distance ratio)")
    level: float = Field(1.0, ge=0, description="weight of output beyond 1.2x the target's peak")
    silence: float = Field(0.01, ge=0, description="weight of output above -80 dBFS 0.1 s into silence (in decades)")


class TrainConfig(Section):
    epochs: int = Field(100, gt=0)
    batch_size: int = Field(32, gt=0)
    time_budget: Optional[float] = Field(None, description="stop cleanly after this long: '15m', '90s', 'none'")
    device: str = Field("auto", description="'auto' or a device name, optionally with ':index'")
    threads: Optional[int] = Field(1, gt=0, description="CPU threads for torch (1 is fastest for small recurrent models)")
    tbptt: int = Field(2048, gt=0, description="samples between updates (truncated BPTT)")
    warmup: int = Field(1024, ge=0, description="samples run without gradient to settle the state")
    val_clip_seconds: float = Field(2.0, gt=0, description="validation/test audio is run as clips this long, in parallel")
    patience: Optional[int] = Field(None, gt=0, description="stop after this many validations without improvement")
    stress: bool = Field(True, description="run the stress probes on the finished model (fxforge check)")
    stability: StabilityConfig = Field(default_factory=StabilityConfig)
    loss: LossConfig = Field(default_factory=LossConfig)

    @field_validator("time_budget", mode="before")
    @classmethod
    def _budget(cls, v):
        return parse_duration(v)


class Envelope(Section):
    name: str = "run"
    seed: int = 0
    data: dict = Field(default_factory=dict)
    model: dict
    optim: OptimConfig = Field(default_factory=OptimConfig)
    scheduler: dict = Field(default_factory=lambda: {"name": "constant"})
    train: TrainConfig = Field(default_factory=TrainConfig)
    export: dict = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, v):
        if not RUN_NAME.match(v) or ".." in v:
            raise ValueError("must be letters, digits, '.', '_' or '-' (no path separators or '..'), "
                             f"at most 64 characters (got {v!r})")
        return v


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
        if keys & {"data.input", "data.target"} and "data.demo" not in keys:
            data.pop("demo", None)
        if "data.demo" in keys:
            for key in ("input", "target"):
                if f"data.{key}" not in keys:
                    data.pop(key, None)
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
    """First pydantic error as 'FILE: dotted.field: message'. An unknown key comes
    first: it is usually a misspelling of the key another error says is missing."""
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
        valid = sorted(parent.model_fields) if parent else []
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
    return f"{where}: {dotted}: {msg}{more}"


def validate(model: type[BaseModel], data: Any, where: str, prefix: str = ""):
    if not isinstance(data, dict):
        raise FxforgeError(f"{where}: {prefix}: expected a table (section), got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise FxforgeError(validation_message(exc, where, prefix, model)) from None


def load_config(path: Path | str, sets: list[str] | None = None, registry=None) -> RunConfig:
    """Read, override and validate a run file; raises FxforgeError on any fault."""
    path = Path(path)
    doc = apply_sets(read_toml(path), list(sets or []))
    return config_from_dict(doc, str(path), registry)


def config_from_dict(doc: dict, where: str, registry=None) -> RunConfig:
    from .plugins import get_registry

    reg = registry or get_registry()
    env = validate(Envelope, doc, where)
    if "name" not in env.model:
        raise FxforgeError(f"{where}: model.name: Field required (installed: {', '.join(reg.names('model')) or 'none'})")
    model_spec = reg.get("model", str(env.model["name"]), where=f"{where}: model.name")
    model_cfg = validate(model_spec.Config, env.model, where, "model")

    provider_name = env.data.get("provider") or model_spec.provider
    provider_spec = reg.get("provider", str(provider_name), where=f"{where}: data.provider")
    data_cfg = validate(provider_spec.Config, {**env.data, "provider": provider_spec.name}, where, "data")

    sched_doc = env.scheduler if "name" in env.scheduler else {"name": "constant", **env.scheduler}
    sched_spec = reg.get("scheduler", str(sched_doc["name"]), where=f"{where}: scheduler.name")
    sched_cfg = validate(sched_spec.Config, sched_doc, where, "scheduler")

    device = env.train.device
    if device != "auto":
        reg.get("device", device.split(":")[0], where=f"{where}: train.device")
    return RunConfig(env.name, env.seed, data_cfg, model_cfg, env.optim, sched_cfg, env.train,
                     env.export, where)
