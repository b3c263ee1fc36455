"""What a plugin registers: one small, frozen record per component.

Each spec carries its own pydantic ``Config``; the matching TOML section is
validated by it, so a plugin owns the keys of its section.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_serializer, model_validator


class ComponentConfig(BaseModel):
    """Base for every component's Config: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    name: str


class ModelConfig(ComponentConfig):
    """Base for a waveform model's Config: any registered stage may follow such a model.

    A ``[model.<stage>]`` table (``[model.cabinet] taps = 512``) names the stage and holds
    its keys; ``fxforge.config`` validates it with that stage's Config and keeps it in
    ``stages`` (name -> config, in the file's order), outside the model's own fields, so a
    model's Config never lists the stages. Dumping the config writes the tables back."""

    _stages: dict = PrivateAttr(default_factory=dict)

    @property
    def stages(self) -> dict[str, BaseModel]:
        return self._stages

    @model_serializer(mode="wrap")
    def _dump_with_stages(self, handler, info):
        out = handler(self)
        for name, cfg in self._stages.items():
            out[name] = cfg.model_dump(mode=info.mode)
        return out


class KnobsConfig(BaseModel):
    """Mixin for a model that takes knob conditioning: its input is (batch, time, 1 + knobs),
    channel 0 the audio and channels 1.. the knobs normalised to 0..1 (constant over a clip,
    or moving when a knob is automated). The core fills both keys in from ``data.captures``
    (the manifest's knobs, in its order), so a run file never writes them; a model given the
    audio channel alone plays ``knob_defaults`` (the core's stress probes and report do)."""

    knobs: int = Field(0, ge=0, le=16, description="knob channels after the audio; set by the core from data.captures")
    knob_defaults: list[float] = Field(default_factory=list, description="the setting played on audio-only input "
                                       "(normalised 0..1, one per knob); set by the core from data.captures")

    @model_validator(mode="after")
    def _defaults(self):
        if self.knob_defaults and len(self.knob_defaults) != self.knobs:
            raise ValueError(f"knob_defaults has {len(self.knob_defaults)} values for {self.knobs} knobs")
        if any(not 0.0 <= v <= 1.0 for v in self.knob_defaults):
            raise ValueError("knob_defaults are normalised: each within 0..1")
        return self


class EmptyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class ModelSpec:
    """A trainable model.

    ``build(config, sample_rate)`` returns an ``nn.Module`` with the streaming
    face ``initial_state(batch, device)`` and ``forward(x, state) -> (y, state)``
    on tensors shaped (batch, time, 1). ``provider`` names the data provider
    that cuts the time-split audio into training examples for it.

    ``exports`` maps an exporter's name to its facet for this model, ``facet(module)``
    (called with the built module inside any stages), whose result that exporter
    documents (``"juce"``: fxforge_juce.models, FACET_KEYS), so an exporter needs
    nothing of the model's attributes.
    """

    name: str
    summary: str
    Config: type[ComponentConfig]
    build: Callable[[Any, int], Any]
    provider: str = "segments"
    exports: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    kind = "model"


@dataclass(frozen=True)
class ProviderSpec:
    """Turns the training split into batches.

    ``Config`` must subclass ``fxforge.DataConfig`` (it validates the whole
    ``[data]`` section). ``build(config, model_config)`` returns an object with
    ``batches(x, y, batch_size, generator) -> iterator of (x, y)`` where x and
    y are (batch, time, 1) tensors, and ``len_batches(n_samples, batch_size)``.
    """

    name: str
    summary: str
    Config: type[BaseModel]
    build: Callable[[Any, Any], Any]
    kind = "provider"


@dataclass(frozen=True)
class SchedulerSpec:
    """A learning-rate schedule: ``build(config, base_lr)`` returns
    ``f(progress) -> lr`` with progress in [0, 1] (the larger of steps done and
    time budget spent), so a schedule needs no state of its own to resume."""

    name: str
    summary: str
    Config: type[ComponentConfig]
    build: Callable[[Any, float], Callable[[float], float]]
    kind = "scheduler"


@dataclass(frozen=True)
class DeviceSpec:
    """A compute backend. ``auto`` picks the available one with the highest
    ``priority``. ``torch_device(index)`` returns the ``torch.device``."""

    name: str
    summary: str
    is_available: Callable[[], bool]
    torch_device: Callable[[Optional[int]], Any]
    priority: int = 0
    describe: Callable[[], str] = lambda: ""
    Config: type[BaseModel] = EmptyConfig
    kind = "device"


@dataclass(frozen=True)
class StageSpec:
    """A module that wraps a model's output, selected by a ``[model.<name>]`` table.

    ``Config`` (a pydantic model) validates that table. ``build(inner, config,
    sample_rate)`` returns a ``fxforge.nn.model.Stage`` wrapping ``inner`` with the same
    streaming face; its contract hooks (param_groups, fit_start, penalty, after_step,
    optional_state) are how it trains. ``reload(config)`` gives the config to rebuild
    it with before a trained run's weights are loaded into it (default: unchanged).
    ``exports`` maps an exporter's name to its facet for this stage, ``facet(module)``,
    whose result that exporter documents; an exporter refuses a stage it has no facet for.
    """

    name: str
    summary: str
    Config: type[BaseModel]
    build: Callable[[Any, Any, int], Any]
    reload: Callable[[Any], Any] = lambda config: config
    exports: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    kind = "stage"


@dataclass(frozen=True)
class ExporterSpec:
    """Turns a trained run into something else (a plugin project, a file).

    ``export(run, config)`` does the work; ``refuses(run)`` returns a one-line
    reason when it cannot export that run's model, else None. ``fxforge export NAME``
    is a command whose options are ``Config``'s fields (``--field-name``, ``-o`` for ``out``,
    bools as flags, each field's description its help); the values given are laid over
    the run's ``[export.NAME]`` table and validated by ``Config``.

    ``out_name`` takes part in ``fxforge export all RUN --out DIR``: the name of
    this exporter's output inside DIR (a file or a folder; ``{name}`` is the
    run's name), handed to ``Config`` as ``out``, with ``force`` and ``verify``
    when ``Config`` has them. None (the default) leaves it out of ``export all``."""

    name: str
    summary: str
    Config: type[BaseModel]
    export: Callable[[Any, Any], Any]
    refuses: Callable[[Any], Optional[str]] = lambda run: None
    out_name: Optional[str] = None
    kind = "exporter"


@dataclass(frozen=True)
class CommandSpec:
    """A command of the ``fxforge`` CLI, ``fxforge NAME ...``.

    ``command`` is a function whose parameters are Typer's (``typer.Argument``,
    ``typer.Option``), as ``@app.command()`` takes it, a ``typer.Typer`` app (its
    commands become ``fxforge NAME SUB ...``), or a click ``Command``. It is built
    only when ``fxforge`` lists its commands or runs this one, so importing the
    plugin module must stay light: import heavy things inside the function. The
    global ``-v``/``-q`` are in the root context's ``params`` (``verbose``, ``quiet``).
    A name the core's own commands use (``run``, ``export``, ...) is refused."""

    name: str
    summary: str
    command: Any
    Config: type[BaseModel] = EmptyConfig
    kind = "command"


SPEC_TYPES = {
    "model": ModelSpec,
    "provider": ProviderSpec,
    "scheduler": SchedulerSpec,
    "device": DeviceSpec,
    "exporter": ExporterSpec,
    "stage": StageSpec,
    "command": CommandSpec,
}
