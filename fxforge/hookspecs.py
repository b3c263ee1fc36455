"""The hooks a plugin package implements. Their docstrings are the reference.

A plugin package declares an entry point in the ``fxforge`` group that points
at a module (or object) with functions decorated ``@fxforge.hookimpl``::

    [project.entry-points.fxforge]
    my-models = "my_models.plugin"

Each hook is handed ``register``; call it once per component. One package may
implement any number of hooks and register any number of components.
"""
import pluggy

hookspec = pluggy.HookspecMarker("fxforge")
hookimpl = pluggy.HookimplMarker("fxforge")


@hookspec
def fxforge_register_models(register):
    """Register models: ``register(ModelSpec(name, summary, Config, build, provider="segments"))``.

    ``Config`` subclasses ``fxforge.ComponentConfig`` (its ``name`` field is
    the model's name; add your hyper-parameters). ``build(config, sample_rate)``
    returns an ``nn.Module`` with ``initial_state(batch, device)`` and
    ``forward(x, state) -> (y, state)`` on (batch, time, 1) tensors. It may
    set ``latency`` (samples of algorithmic delay, default 0). ``exports``
    holds a facet per exporter name (``{"juce": mapping}``), called with the
    built module, so an exporter maps the model without knowing its attributes.
    """


@hookspec
def fxforge_register_providers(register):
    """Register data providers: ``register(ProviderSpec(name, summary, Config, build))``.

    ``Config`` subclasses ``fxforge.DataConfig`` and adds the provider's keys.
    ``build(data_config, model_config)`` returns an object with
    ``batches(x, y, batch_size, generator)`` yielding (batch, time, 1) pairs.
    """


@hookspec
def fxforge_register_schedulers(register):
    """Register LR schedulers: ``register(SchedulerSpec(name, summary, Config, build))``.

    ``build(config, base_lr)`` returns ``lr_at(progress)`` for progress in [0, 1].
    """


@hookspec
def fxforge_register_devices(register):
    """Register compute devices: ``register(DeviceSpec(name, summary, is_available, torch_device, priority))``."""


@hookspec
def fxforge_register_exporters(register):
    """Register exporters: ``register(ExporterSpec(name, summary, Config, export, refuses))``.

    ``export(run, config)`` receives a ``fxforge.Run`` (config, model, sample
    rate, summary) and the validated Config built from the CLI's options.
    An exporter with ``out_name`` also runs in ``fxforge export all`` (the
    name ``all`` is the CLI's and cannot be registered).
    """


@hookspec
def fxforge_register_stages(register):
    """Register stages: ``register(StageSpec(name, summary, Config, build, reload, exports))``.

    A stage wraps any waveform model's output; a run file selects it with a
    ``[model.<name>]`` table, validated by ``Config``. ``build(inner, config,
    sample_rate)`` returns a ``fxforge.nn.model.Stage`` (set its ``stage_name`` to
    ``name``) whose ``StreamingModel`` hooks train it. ``exports`` holds a facet
    per exporter name (``{"juce": fragment}``), called with the built module.
    """


@hookspec
def fxforge_register_commands(register):
    """Register CLI commands: ``register(CommandSpec(name, summary, command))``.

    ``command`` is a function with Typer parameters (as ``@app.command()`` takes
    it), a ``typer.Typer`` app or a click ``Command``; it becomes ``fxforge NAME``,
    listed in ``fxforge --help``, its usage errors one line as every command's.
    A command raises ``fxforge.FxforgeError`` for a one-line error (exit 2).
    """


HOOK_KINDS = {
    "fxforge_register_models": "model",
    "fxforge_register_providers": "provider",
    "fxforge_register_schedulers": "scheduler",
    "fxforge_register_devices": "device",
    "fxforge_register_exporters": "exporter",
    "fxforge_register_stages": "stage",
    "fxforge_register_commands": "command",
}
