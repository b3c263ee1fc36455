"""`fxforge export NAME`: one command per registered exporter, its options from the exporter's
Config; and `export all`."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from pydantic import BaseModel, Field

from ..errors import FxforgeError
from .app import TyperCommand, TyperGroup, _registry, app, err_console


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
        from ..config import validate

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
    from ..exports import export_all
    from ..runs import load_run

    r = load_run(run_dir)
    outcomes = export_all(r, _registry(), options, on_outcome=lambda o: err_console.print(
        o.line(), markup=False, highlight=False, soft_wrap=True))
    if any(o.status == "failed" for o in outcomes):
        raise typer.Exit(1)


def _export_one(exporter: str, run_dir: Path, options: dict) -> None:
    from ..config import validate
    from ..runs import load_run

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
