"""The configuration schema: every config base, as pure pydantic (no torch, no registry).

A run file is an envelope (name, seed, the sections) whose component sections are
validated by the Config each component's plugin declares (``fxforge.specs``);
``fxforge.config`` reads the TOML, applies ``--set`` and resolves the sections against
the registry.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The built-in captures (fxforge.data.demo): a driven amp, a high-gain lead channel, either with a cabinet.
DEMO_KINDS = ("amp", "cab", "lead", "lead-cab")

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
    captures: Optional[Path] = Field(None, description="a captures manifest (captures.toml): train one conditioned "
                                                       "model on every knob setting it lists")
    holdout: Optional[list[dict[str, float]]] = Field(None, description="with captures: whole settings kept out "
                                            "of training and scored as unseen, e.g. [{drive = 0.6}]")
    balance: Literal["geometric", "arithmetic"] = Field(
        "geometric", description="with captures, how the settings weigh in the loss: geometric, each by the "
                                 "inverse of its running ESR, so that every setting's relative error counts the "
                                 "same (the settings' geometric mean falls; a hard setting does not rule); "
                                 "arithmetic, each setting's ESR the same (their mean falls)")
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
        if self.captures is not None:
            if self.demo is not None or self.input is not None or self.target is not None:
                raise ValueError("give captures, or input and target, or demo; not two of them")
            return self
        if self.holdout:
            raise ValueError("holdout names settings of data.captures; give captures = \"captures.toml\"")
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
    """Penalties that keep a stateful model stable beyond the capture's level (fxforge.nn.stability):
    on a stream of stress inputs (the training input up to ``gain_db`` louder, low sines up to full
    scale, silences) a nearby state must not drift away, the output must stay near the target's
    peak, and it must fall silent after the input stops. Zero on a model that already behaves."""

    enabled: bool = Field(True, description="run the stress stream beside training")
    every: int = Field(2, gt=0, description="add the penalty every this many updates")
    start: float = Field(0.5, ge=0, lt=1, description="from this fraction of the run on (its steps or its time "
                                                      "budget): a model turns unstable as it fits, not before")
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
    report: bool = Field(True, description="draw plots/*.png and write report.html when the run finishes "
                         "(fxforge report RUN writes the page later)")
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
