"""The fxforge command line. Each command is a thin shell over a library call.

Exit codes: 0 ok; 2 usage, config or input error (one line, no traceback);
1 unexpected failure (traceback with -v or FXFORGE_TRACEBACK=1), or a sweep none of
whose trials finished; 130 Ctrl-C.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import List, Optional

import typer
from pydantic import BaseModel, Field
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from .errors import FxforgeError

TyperGroup, TyperCommand = typer.core.TyperGroup, typer.core.TyperCommand


class _Commands(TyperGroup):
    """fxforge's commands: the core's, then those plugins register (looked up only when a
    name is not the core's, or when the commands are listed)."""

    def get_command(self, ctx, cmd_name):
        cmd = super().get_command(ctx, cmd_name)
        return cmd if cmd is not None else _plugin_commands(set(self.commands)).get(cmd_name)

    def list_commands(self, ctx):
        return sorted({*super().list_commands(ctx), *_plugin_commands(set(self.commands))})


app = typer.Typer(cls=_Commands, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Learn audio effects from paired recordings and ship them as real-time plugins.")
console = Console()
err_console = Console(stderr=True)
_verbose = {"level": 0}

KIND_HELP = "models, providers, schedulers, devices or exporters"


@app.callback()
def _global(verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="more output; tracebacks"),
            quiet: bool = typer.Option(False, "--quiet", "-q", help="only warnings and errors")):
    _verbose["level"] = -1 if quiet else verbose
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(message)s", handlers=[RichHandler(console=err_console, show_time=False, show_path=False)], force=True)


def _registry():
    from .registry import get_registry

    reg = get_registry()
    if not getattr(reg, "problems_reported", False):  # once per registry
        for problem in reg.problems:
            err_console.print(f"[yellow]warning:[/] {problem}", markup=True, highlight=False, soft_wrap=True)
        reg.problems_reported = True
    return reg


def _kind(kind: str) -> str:
    from .registry import KINDS

    k = kind[:-1] if kind.endswith("s") else kind
    if k not in KINDS:
        raise FxforgeError(f"unknown kind '{kind}' (one of: {KIND_HELP})")
    return k


@app.command("list")
def list_components(kind: str = typer.Argument(..., help=KIND_HELP),
                    as_json: bool = typer.Option(False, "--json", help="machine-readable output")):
    """List the installed components of one kind."""
    k = _kind(kind)
    reg = _registry()
    rows = []
    for name in reg.names(k):
        entry = reg.components[k][name]
        row = {"name": name, "summary": entry.spec.summary, "package": entry.package, "version": entry.version}
        if k == "device":
            row["available"] = bool(entry.spec.is_available())
            row["priority"] = entry.spec.priority
            row["detail"] = entry.spec.describe() if row["available"] else ""
        if k == "model":
            row["provider"] = entry.spec.provider
        rows.append(row)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        console.print(f"No {k}s are installed. Install a plugin package that provides one, "
                      f"e.g. pip install -e plugins/fxforge-<name>.")
        return
    table = Table(title=f"{k}s")
    for col in rows[0]:
        table.add_column(col)
    for row in rows:
        table.add_row(*[("yes" if v else "no") if isinstance(v, bool) else str(v) for v in row.values()])
    console.print(table)


@app.command()
def show(kind: str = typer.Argument(..., help=KIND_HELP), name: str = typer.Argument(...)):
    """Show a component's config keys: type, default and meaning."""
    k = _kind(kind)
    spec = _registry().get(k, name)
    table = Table(title=f"{k} '{name}': {spec.summary}")
    for col in ("key", "type", "default", "description"):
        table.add_column(col)
    for key, field in spec.Config.model_fields.items():
        default = "(required)" if field.is_required() else repr(field.get_default(call_default_factory=True))
        ann = getattr(field.annotation, "__name__", None) or str(field.annotation).replace("typing.", "")
        table.add_row(key, ann, default, field.description or "")
    console.print(table)


@app.command()
def plugins(as_json: bool = typer.Option(False, "--json", help="machine-readable output")):
    """List installed plugin packages, the hooks each implements and what it registers."""
    reg = _registry()
    rows = [{"package": p.name, "version": p.version, "hooks": p.hooks, "components": p.components}
            for p in sorted(reg.packages.values(), key=lambda p: p.name)]
    if as_json:
        print(json.dumps({"plugins": rows, "problems": [str(p) for p in reg.problems]}, indent=2))
        return
    if not rows:
        console.print("No plugin packages are installed (pip install -e plugins/fxforge-<name>).")
        return
    table = Table(title="plugin packages")
    for col in ("package", "version", "hooks", "components"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["package"], r["version"], "\n".join(r["hooks"]), "\n".join(r["components"]))
    console.print(table)


@app.command()
def run(config: Optional[Path] = typer.Argument(None, help="run file (TOML)"),
        set_: List[str] = typer.Option([], "--set", help="override a field: section.key=value (TOML value)"),
        resume: Optional[Path] = typer.Option(None, "--resume", help="continue an interrupted run directory"),
        checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="start from these weights"),
        runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="where run directories go")):
    """Train a model as a run file describes; print test ESR and where the run went."""
    from .config import load_config
    from .progress import TrainingDisplay
    from .train import train

    _registry()
    if (config is None) == (resume is None):
        raise FxforgeError("give a run file, or --resume RUN_DIR (not both)")
    if resume is not None and set_:
        raise FxforgeError("--set cannot change a run being resumed; start a new run instead")
    cfg = load_config(config, set_) if config is not None else None
    with TrainingDisplay(console, enabled=_verbose["level"] >= 0) as display:
        summary = train(cfg, runs_dir=runs_dir, resume=resume, checkpoint=checkpoint, on_event=display.event)
    display.print_summary(summary)


@app.command("train")
def train_pair(input: Path = typer.Argument(..., help="the dry recording (the DI, or the reamp file you played)"),
               target: Path = typer.Argument(..., help="the recorded output of the gear"),
               budget: str = typer.Option("5m", "--budget", help="wall-clock time: '5m', '300s', '1h'"),
               name: Optional[str] = typer.Option(None, "--name", help="run name (default: the target's file name)"),
               set_: List[str] = typer.Option([], "--set", help="override the recipe: section.key=value"),
               runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="where run directories go")):
    """Train the default capture recipe on a pair: a pedal, an amp or a full rig with its cabinet."""
    from .config import RECIPES

    recipe = RECIPES / "capture.toml"
    run_name = name or "".join(c if c.isalnum() or c in "._-" else "-" for c in target.stem)[:64] or "capture"
    sets = [f"data.input={_toml_string(input)}", f"data.target={_toml_string(target)}",
            f"train.time_budget={_toml_string(budget)}", f"name={_toml_string(run_name)}", *set_]
    run(config=recipe, set_=sets, resume=None, checkpoint=None, runs_dir=runs_dir)


def _toml_string(value) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


@app.command()
def check(run_dir: Path = typer.Argument(..., help="a run directory"),
          as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
          threads: int = typer.Option(1, "--threads", min=1, help="CPU threads")):
    """Stress a trained model: loud DI, sines, a burst, DC and noise; float32 against float64."""
    import torch

    # One thread, as for process: a recurrent model steps sample by sample, and idle OpenMP
    # workers spinning on a busy machine made this minutes instead of seconds.
    torch.set_num_threads(threads)
    from .audio import load_pair
    from .runs import load_run
    from .stress import stress, warning

    r = load_run(run_dir)
    try:
        pair = load_pair(r.config.data)
        di, input_peak, target_peak = pair.splits(r.config.data.split)["test"][0], float(abs(pair.x).max()), float(abs(pair.y).max())
    except FxforgeError as exc:  # the recordings moved: the probes that need none still run
        if "target_peak" not in r.summary:
            raise
        err_console.print(f"warning: no test DI probes ({exc})", markup=False, highlight=False, soft_wrap=True)
        di, input_peak, target_peak = None, r.summary["input_peak"], r.summary["target_peak"]
    result = stress(r.model, r.sample_rate, target_peak, di)
    if as_json:
        print(json.dumps(result, indent=2))
        return
    table = Table(title=f"stress check of {run_dir} (target peak {result['target_peak']:.2f})")
    for col in ("probe", "input peak", "output peak", "f32 vs f64", "decay to -80 dBFS", ""):
        table.add_column(col)
    for p in result["probes"]:
        decay = "never" if p["never_silent"] else "-" if p["decay_ms"] is None else f"{p['decay_ms']:.0f} ms"
        table.add_row(p["name"], f"{p['input_peak']:.2f}", f"{p['output_peak']:.2f}", f"{p['f32_vs_f64']:.1e}",
                      decay, "ok" if p["ok"] else "FAIL")
    console.print(table)
    console.print(f"stable (float32 = float64 within {result['chaos_threshold']:g}) up to input peak "
                  f"{result['stable_up_to']:.2f}; the training DI peaks at {input_peak:.2f}")
    problem = warning(result, input_peak)
    if problem:
        err_console.print(f"warning: {problem}", markup=False, highlight=False, soft_wrap=True)


@app.command()
def process(run_dir: Path = typer.Argument(..., help="a run directory"),
            input: Path = typer.Argument(..., help="audio to process"),
            output: Path = typer.Argument(..., help="where to write the result"),
            block: int = typer.Option(256, "--block", min=1, help="block size, as a plugin host would use"),
            channel: Optional[int] = typer.Option(None, "--channel", min=0, help="channel of a multi-channel input"),
            knob: List[str] = typer.Option([], "--knob", help="a knob setting, name=value in the knob's range "
                                           "(a run trained on data.captures; the rest at their defaults)"),
            threads: int = typer.Option(1, "--threads", min=1, help="CPU threads")):
    """Run a trained model over a file block by block, state carried, as a plugin does."""
    import torch

    torch.set_num_threads(threads)
    from .audio import check_output, read_audio, resample, write_audio
    from .runs import load_run
    from .stream import process as stream_process

    r = load_run(run_dir)
    knobs, setting = _knob_setting(r, run_dir, knob)
    if output.exists() and output.resolve() == input.resolve():
        raise FxforgeError(f"{output}: would overwrite the input")
    check_output(output)
    x, sr = read_audio(input, channel, "--channel")
    if sr != r.sample_rate:
        logging.getLogger("fxforge").warning("%s: resampling from %d Hz to the model's %d Hz", input, sr, r.sample_rate)
        x = resample(x, sr, r.sample_rate)
    y = stream_process(r.model, _with_knobs(torch.from_numpy(x), knobs, setting), block).numpy()
    write_audio(output, y, r.sample_rate)
    at = f", {_setting_label(setting)}" if knobs else ""
    console.print(f"wrote {output} ({len(y) / r.sample_rate:.2f} s, block {block}{at})")


def _knob_setting(r, run_dir: Path, options: list[str]):
    """The run's knobs and the setting ``--knob`` options ask for (defaults for the rest)."""
    from .knobs import parse_knob_options, run_knobs

    knobs = run_knobs(r.summary)
    return knobs, parse_knob_options(options, knobs, str(run_dir))


def _with_knobs(x, knobs, setting):
    """The model's input: the audio, and for a conditioned run its knob channels (0..1)."""
    if not knobs:
        return x
    from .conditioned import with_knobs
    from .knobs import normalised

    return with_knobs(x, normalised(knobs, setting))


def _setting_label(setting: dict) -> str:
    from .knobs import label

    return label(setting)


@app.command("eval")
def evaluate(run_dir: Path = typer.Argument(..., help="a run directory"),
             input: Optional[Path] = typer.Option(None, "--input", help="dry recording"),
             target: Optional[Path] = typer.Option(None, "--target", help="processed recording"),
             captures: Optional[Path] = typer.Option(None, "--captures", help="a captures manifest: ESR at every "
                                                     "setting it lists (a run trained on data.captures)"),
             knob: List[str] = typer.Option([], "--knob", help="with --input/--target: the setting they were "
                                            "recorded at, name=value (the rest at their defaults)"),
             channel: Optional[int] = typer.Option(None, "--channel", min=0, help="channel of multi-channel recordings"),
             as_json: bool = typer.Option(False, "--json")):
    """Score a trained run on another pair of recordings (ESR, plain and pre-emphasised), or on
    every setting of a captures manifest, the settings it held out from training marked."""
    import torch

    torch.set_num_threads(1)
    from .audio import load_pair
    from .config import DataConfig
    from .losses import metrics
    from .runs import load_run
    from .stream import process as stream_process

    if captures is not None and (input is not None or target is not None or knob):
        raise FxforgeError("fxforge eval: give --captures, or --input and --target (with --knob), not both")
    if captures is None and input is not None and target is None:
        raise FxforgeError("fxforge eval: Missing option '--target'.")  # as a required option reads
    if captures is None and (input is None or target is None):
        raise FxforgeError("fxforge eval: give --input and --target, or --captures captures.toml")
    r = load_run(run_dir)
    knobs, setting = _knob_setting(r, run_dir, knob)

    def score(pair, values):
        if pair.sample_rate != r.sample_rate:
            raise FxforgeError(f"{pair_name}: sample rate {pair.sample_rate} Hz, but the model was trained at {r.sample_rate} Hz")
        y_hat = stream_process(r.model, _with_knobs(torch.from_numpy(pair.x), knobs, values), 4096)
        m = metrics(y_hat.reshape(1, -1, 1), torch.from_numpy(pair.y).reshape(1, -1, 1), r.config.train.loss.pre_emphasis)
        m["latency_samples"] = pair.latency
        return m

    if captures is None:
        pair_name = input
        pair = load_pair(DataConfig(input=input, target=target, channel=channel), channel_option="--channel")
        m = score(pair, setting)
        if knobs:
            m["knobs"] = setting
        if as_json:
            print(json.dumps(m))
        else:
            at = f"at {_setting_label(setting)}: " if knobs else ""
            console.print(f"{at}ESR {m['esr']:.5f}   pre-emphasised ESR {m['esr_pre']:.5f}   (latency corrected: {pair.latency} samples)")
        return
    from .knobs import SAME, read_captures

    if not knobs:
        raise FxforgeError(f"--captures {captures}: {run_dir} was trained on one setting and has no knobs")
    cs = read_captures(DataConfig(captures=captures, channel=channel))
    names, theirs = [k.name for k in knobs], [k.name for k in cs.knobs]
    if theirs != names:
        raise FxforgeError(f"{captures}: knobs {', '.join(theirs)}, but {run_dir} has {', '.join(names)}")
    held = [row["knobs"] for row in r.summary.get("settings") or () if row.get("held_out")]
    trained = [row["knobs"] for row in r.summary.get("settings") or () if not row.get("held_out")]
    same = lambda a, b: all(abs(a[k] - b.get(k, float("nan"))) <= SAME * max(1.0, abs(a[k])) for k in a)  # noqa: E731
    rows = []
    for s in cs.settings:
        pair_name = s.file
        m = score(load_pair(cs.data_for(DataConfig(captures=captures, channel=channel), s), channel_option="--channel"),
                  s.knobs)
        role = ("held out" if any(same(s.knobs, h) for h in held) else
                "trained" if any(same(s.knobs, t) for t in trained) else "new")
        rows.append({"knobs": s.knobs, "file": str(s.file), "role": role, **m})
    if as_json:
        print(json.dumps(rows))
        return
    table = Table(title=f"{run_dir} on {captures} (whole files)")
    for col in ("setting", "ESR", "pre-emph. ESR", "latency", ""):
        table.add_column(col)
    for row in rows:
        mark = {"held out": "held out (never trained on)", "trained": "trained", "new": "not in the run"}
        table.add_row(_setting_label(row["knobs"]), f"{row['esr']:.5f}", f"{row['esr_pre']:.5f}",
                      str(row["latency_samples"]), mark[row["role"]])
    console.print(table)


# ---------------------------------------------------------------- commands from plugins, exporters


def _plugin_commands(core: set) -> dict:
    """name -> click command of every registered CommandSpec (the commands hook), built
    once per registry; a name the core's own commands take is reported and skipped."""
    reg = _registry()
    built = getattr(reg, "cli_commands", None)
    if built is None:
        from .registry import Problem

        built = {}
        for name in reg.names("command"):
            entry = reg.components["command"][name]
            if name in core:
                reg.problems.append(Problem(entry.package, f"command '{name}' is one of the core's own; skipped"))
                err_console.print(f"[yellow]warning:[/] {reg.problems[-1]}", markup=True, highlight=False, soft_wrap=True)
                continue
            built[name] = _as_click(name, entry.spec)
        reg.cli_commands = built
    return built


def _as_click(name: str, spec):
    """A CommandSpec's command as a click command: a click Command as it is, a typer.Typer's
    group (or its one command), or a function with Typer parameters."""
    obj = spec.command
    if isinstance(obj, typer._click.Command):
        return obj
    if isinstance(obj, typer.Typer):
        return typer.main.get_command(obj)
    sub = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    sub.command(name, help=(obj.__doc__ or spec.summary))(obj)
    return typer.main.get_command(sub)


class _ExporterCommand(TyperCommand):
    """An exporter's command: a stray argument or an unknown option is one line, as the
    exporter's Config reads it (``fxforge export juce: outt: unknown key (did you mean 'out'?)``)."""

    exporter: str = ""

    def parse_args(self, ctx, args):
        from typer._click.exceptions import NoSuchOption

        try:
            rest = super().parse_args(ctx, list(args))
        except NoSuchOption:
            raise self._unknown(ctx, list(args)) from None
        if ctx.args:
            raise FxforgeError(f"unexpected argument {ctx.args[0]!r} (exporter options look like --key value)")
        return rest

    def _unknown(self, ctx, args: list[str]) -> Exception:
        opts = {o for p in self.params for o in [*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ())]}
        unknown, remaining, i = {}, [], 0
        while i < len(args):
            arg = args[i]
            flag, eq, value = arg.partition("=")
            if arg.startswith("-") and len(arg) > 1 and flag not in opts:
                key = flag.lstrip("-").replace("-", "_")
                if eq:
                    unknown[key] = value
                elif i + 1 < len(args) and not args[i + 1].startswith("-"):
                    unknown[key] = args[i + 1]
                    i += 1
                else:
                    unknown[key] = True
            else:
                remaining.append(arg)
            i += 1
        if self.exporter == "all":
            first = sorted(unknown)[0].replace("_", "-") if unknown else "?"
            return FxforgeError(f"fxforge export all: unknown option --{first} (it takes --out DIR, --force, "
                                f"--verify; run one exporter for its own options)")
        known = {}
        try:  # the options it knows, for the Config's own message
            sub = self.make_context(ctx.info_name, remaining, parent=ctx.parent, resilient_parsing=True)
            known = _given(sub)
        except Exception:
            pass
        from .config import validate

        spec = _registry().get("exporter", self.exporter)
        try:
            validate(spec.Config, {**known, **unknown}, f"fxforge export {self.exporter}", "")
        except FxforgeError as exc:
            return exc
        return FxforgeError(f"fxforge export {self.exporter}: unknown option --{sorted(unknown)[0].replace('_', '-')}")


def _given(ctx) -> dict:
    """The options given on the command line (so a run's [export.<name>] defaults hold for the rest)."""
    from typer._click.core import ParameterSource

    return {k: v for k, v in ctx.params.items()
            if k not in ("run_dir", "ctx") and ctx.get_parameter_source(k) == ParameterSource.COMMANDLINE}


def _option_type(annotation):
    """The click-facing type of a Config field: bool, int or float as themselves, anything
    else (paths, lists, Literals) a string the Config's validators read."""
    import typing

    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, getattr(__import__("types"), "UnionType", None)) and len(args) == 1:
        annotation = args[0]
    return annotation if annotation in (bool, int, float) else str


def _exporter_command(name: str, Config, summary: str, run):
    """A Typer command whose options are the fields of ``Config`` (a pydantic model):
    ``--field-name`` (``-o`` too for ``out``), the field's description as help, bools as flags."""
    import inspect

    params = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
              inspect.Parameter("run_dir", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Path,
                                default=typer.Argument(..., metavar="RUN_DIR", help="a run directory"))]
    for key, field in Config.model_fields.items():
        kind = _option_type(field.annotation)
        decls = [f"--{key.replace('_', '-')}"] + (["-o"] if key == "out" else [])
        help_ = field.description or ""
        if kind is bool:
            default = typer.Option(False, *decls, help=help_)
        else:
            default = typer.Option(None, *decls, help=help_, show_default=False)
        params.append(inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, default=default,
                                        annotation=bool if kind is bool else Optional[kind]))

    def command(ctx: typer.Context, **kwargs):
        run(kwargs["run_dir"], _given(ctx))

    command.__signature__ = inspect.Signature(params)
    command.__annotations__ = {p.name: p.annotation for p in params}
    sub = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    sub.command(name, cls=_ExporterCommand, help=summary, context_settings={"allow_extra_args": True})(command)
    cmd = typer.main.get_command(sub)
    cmd.exporter = name
    return cmd


class _AllConfig(BaseModel):
    out: Optional[str] = Field(None, description="the folder every format goes into (-o)")
    force: bool = Field(False, description="replace files already there")
    verify: bool = Field(False, description="each exporter's --verify, where it has one")


def _export_all(run_dir: Path, options: dict) -> None:
    from .exports import export_all
    from .runs import load_run

    r = load_run(run_dir)
    outcomes = export_all(r, _registry(), options, on_outcome=lambda o: err_console.print(
        o.line(), markup=False, highlight=False, soft_wrap=True))
    if any(o.status == "failed" for o in outcomes):
        raise typer.Exit(1)


def _export_one(exporter: str, run_dir: Path, options: dict) -> None:
    from .config import validate
    from .runs import load_run

    spec = _registry().get("exporter", exporter)
    r = load_run(run_dir)
    reason = spec.refuses(r)
    if reason:
        raise FxforgeError(f"{run_dir}: exporter '{exporter}' cannot export model '{r.config.model.name}': {reason}")
    defaults = r.config.export.get(exporter, {}) if isinstance(r.config.export, dict) else {}
    cfg = validate(spec.Config, {**defaults, **options}, f"fxforge export {exporter}", "")
    spec.export(r, cfg)
    _record_export(r.path, exporter, getattr(cfg, "out", None))


class _Exporters(TyperGroup):
    """``fxforge export NAME``: one command per registered exporter, its options from its
    Config, built from the registry only when export runs or lists them; and ``all``."""

    def list_commands(self, ctx):
        return ["all", *_registry().names("exporter")]

    def get_command(self, ctx, cmd_name):
        built = self.commands.get(cmd_name)
        if built is not None:
            return built
        if cmd_name == "all":
            cmd = _exporter_command("all", _AllConfig, "every exporter that takes part, each into --out DIR: one "
                                    "line per format, written or skipped and why", _export_all)
        else:
            spec = _registry().get("exporter", cmd_name)  # unknown: one line naming the installed ones
            cmd = _exporter_command(cmd_name, spec.Config, spec.summary,
                                    lambda run_dir, options, name=cmd_name: _export_one(name, run_dir, options))
        self.commands[cmd_name] = cmd
        return cmd


export_app = typer.Typer(cls=_Exporters, no_args_is_help=True, add_completion=False,
                         help="Export a trained run: fxforge export juce RUN --out DIR [--build] [--verify]; "
                              "fxforge export NAME --help lists an exporter's options.")
app.add_typer(export_app, name="export")

def _record_export(run_dir: Path, exporter: str, out) -> None:
    """exports.jsonl in the run: where its plugins went, for its report page."""
    import time

    try:
        with open(Path(run_dir) / "exports.jsonl", "a") as f:
            f.write(json.dumps({"exporter": exporter, "out": str(Path(out).resolve()) if out else None,
                                "time": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n")
    except OSError:  # a read-only run folder still exports
        pass


@app.command("demo-capture")
def demo_capture_cmd(out_dir: Path = typer.Argument(..., help="folder for input.wav and target.wav"),
                     kind: str = typer.Option("amp", "--kind", help="amp, cab, lead or lead-cab"),
                     seconds: float = typer.Option(180.0, "--seconds", min=1.0)):
    """Write the built-in demo capture as WAV files (to train other tools on it)."""
    from .audio import write_audio
    from .config import DEMO_KINDS
    from .demo import demo_capture

    if kind not in DEMO_KINDS:
        raise FxforgeError(f"--kind must be one of {', '.join(map(repr, DEMO_KINDS))} (got {kind!r})")
    out_dir.mkdir(parents=True, exist_ok=True)
    pair = demo_capture(kind, seconds)
    for name, sig in (("input.wav", pair.x), ("target.wav", pair.y)):
        if (out_dir / name).exists():
            raise FxforgeError(f"{out_dir / name}: already exists; not overwriting")
    write_audio(out_dir / "input.wav", pair.x, pair.sample_rate)
    write_audio(out_dir / "target.wav", pair.y, pair.sample_rate)
    console.print(f"wrote {out_dir}/input.wav and target.wav ({seconds:g} s at {pair.sample_rate} Hz)")


@app.command("capture-signal")
def capture_signal_cmd(output: Path = typer.Argument(..., help="the reamp file to write (.wav or .flac)"),
                       seconds: float = typer.Option(180.0, "--seconds", help="length; 40 s at least"),
                       sample_rate: int = typer.Option(48_000, "--sample-rate", min=8000, help="your interface's rate")):
    """Write the reamp signal: play it through your gear, record the output, train on the pair.

    It holds calibration blips (the latency is measured from them exactly), sweeps, noise,
    guitar-like playing over the whole level range, and a validation segment played twice
    (the two takes show whether the rig stayed the same)."""
    from .audio import check_output, write_audio
    from .reamp import MIN_SECONDS, capture_signal

    check_output(output)
    if seconds < MIN_SECONDS:
        raise FxforgeError(f"--seconds {seconds:g}: a capture signal needs at least {MIN_SECONDS:g} s")
    if output.exists():
        raise FxforgeError(f"{output}: already exists; not overwriting")
    write_audio(output, capture_signal(seconds, sample_rate), sample_rate)
    console.print(f"wrote {output} ({seconds:g} s at {sample_rate} Hz): play it through your gear, record the "
                  f"output at the same rate, then: fxforge train {output} recorded.wav")


@app.command("capture")
def capture_cmd(out_dir: Path = typer.Argument(..., help="folder for dry.wav, a WAV per setting and captures.toml"),
                knob: List[str] = typer.Option([], "--knob", help="drive=0:1:5 (min:max:count) or drive=0.1,0.5,0.9; repeat per knob"),
                range_: List[str] = typer.Option([], "--range", help="drive=0:1: the knob's range where --knob gives a list"),
                plan: str = typer.Option("grid", "--plan", help="grid (every combination) or lhs:N (N Latin-hypercube points)"),
                seed: int = typer.Option(0, "--seed", help="the Latin hypercube's seed"),
                vst3: Optional[Path] = typer.Option(None, "--vst3", help="a VST3 plugin; knobs are its parameters, in its units"),
                chain: Optional[Path] = typer.Option(None, "--chain", help="a chain of pedalboard effects (TOML)"),
                render: Optional[str] = typer.Option(None, "--render", help="a command with {input}, {output} and {KNOB} placeholders"),
                signal: Optional[Path] = typer.Option(None, "--signal", help="an existing capture signal (else generated)"),
                channel: Optional[int] = typer.Option(None, "--channel", min=0, help="the --signal file's channel"),
                seconds: float = typer.Option(180.0, "--seconds", help="the generated signal's length; 40 s at least"),
                sample_rate: int = typer.Option(48_000, "--sample-rate", min=8000, help="the generated signal's rate"),
                force: bool = typer.Option(False, "--force", help="replace a capture already in OUT_DIR")):
    """Render the capture signal through an effect at every knob setting of a plan: the pairs
    and a captures.toml to train one conditioned model on (data.captures)."""
    from .capture import CaptureDisplay, capture, load_signal, make_source, parse_knobs, plan_points, prepare

    knobs = parse_knobs(knob, range_)
    points = plan_points(knobs, plan, seed)
    source = make_source(vst3, chain, render)
    prepare(out_dir, knobs, points, source, force)  # refusals before the signal is made
    x, sr = load_signal(signal, seconds, sample_rate, channel)
    warn = lambda m: err_console.print(f"warning: {m}", markup=False, highlight=False, soft_wrap=True)  # noqa: E731
    with CaptureDisplay(console, enabled=_verbose["level"] >= 0) as display:
        manifest = capture(out_dir, x, sr, knobs, points, source, force=force, warn=warn, progress=display)
    if _verbose["level"] >= 0:
        console.print(f"wrote {out_dir / 'captures.toml'}: {len(manifest.targets)} settings of "
                      f"{', '.join(manifest.names)} from {source.describe}, {len(x) / sr:g} s at {sr} Hz; train on it "
                      f"with [data] captures = \"{out_dir / 'captures.toml'}\"", markup=False, highlight=False, soft_wrap=True)


@app.command()
def report(path: Path = typer.Argument(..., help="a finished run directory, or a sweep directory"),
           threads: int = typer.Option(1, "--threads", min=1, help="CPU threads")):
    """Write report.html: players for the test audio, a blind A/B/X test, figures; for a sweep,
    a table of trials and players for the best ones."""
    from .report import report_kind

    report_kind(path)
    import torch

    # One thread, as for process: the model runs over the whole test split.
    torch.set_num_threads(threads)
    from .report import write_report

    _registry()
    out = write_report(path)
    console.print(f"report: {out} ({out.stat().st_size / 1e6:.1f} MB)", markup=False, highlight=False, soft_wrap=True)


def _usage_error(exc: Exception) -> str:
    """A click usage error as one line: 'fxforge process: Missing argument 'output'.'"""
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if ctx is not None else "fxforge"
    message = " ".join(exc.format_message().split())
    return f"{where}: {message}"


def main(argv: Optional[List[str]] = None) -> int:
    """`fxforge ARGV` (sys.argv[1:] when None); returns the exit code instead of exiting,
    so tests and other programs can run the CLI in-process."""
    # click's exceptions, wherever they live (recent typer vendors click as typer._click)
    clicks = sys.modules[typer.BadParameter.__module__]
    no_args_is_help = getattr(clicks, "NoArgsIsHelpError", ())

    show_tb = lambda: _verbose["level"] > 0 or os.environ.get("FXFORGE_TRACEBACK")  # noqa: E731
    try:
        # Not standalone: click's usage errors come here to be made one line;
        # --help and typer.Exit come back as an exit code.
        code = app(args=argv, standalone_mode=False, prog_name="fxforge")
    except no_args_is_help as exc:  # bare `fxforge`: the help, exit 2 as before
        if exc.format_message():  # (typer's rich help has printed itself already)
            print(exc.format_message())
        return 2
    except clicks.ClickException as exc:  # UsageError, BadParameter, ...: exit 2
        err_console.print(f"error: {_usage_error(exc)}", markup=False, highlight=False, soft_wrap=True)
        return exc.exit_code if exc.exit_code else 2
    except FxforgeError as exc:
        if os.environ.get("FXFORGE_TRACEBACK"):
            traceback.print_exc()
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        return 2
    except Exception as exc:
        train = sys.modules.get("fxforge.train")
        if train is not None and isinstance(exc, train.Interrupted):
            err_console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
            return 130
        if isinstance(exc, (KeyboardInterrupt, typer.Abort)):
            err_console.print("interrupted")
            return 130
        if show_tb():
            traceback.print_exc()
        err_console.print(f"error: unexpected {type(exc).__name__}: {exc} (run with -v for the traceback)",
                          markup=False, highlight=False, soft_wrap=True)
        return 1
    except (KeyboardInterrupt, typer.Abort):
        err_console.print("interrupted")
        return 130
    # typer.Exit(n) and KeyboardInterrupt outside training (130) come back as the code
    return code if isinstance(code, int) else 0
