"""The Typer app every command hangs on, its consoles and -v/-q, the registry (its problems
reported once), and the commands plugins register through the commands hook."""
from __future__ import annotations

import logging

import typer
from rich.console import Console
from rich.logging import RichHandler

from ..errors import FxforgeError


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
    from ..registry import get_registry

    reg = get_registry()
    if not getattr(reg, "problems_reported", False):  # once per registry
        for problem in reg.problems:
            err_console.print(f"[yellow]warning:[/] {problem}", markup=True, highlight=False, soft_wrap=True)
        reg.problems_reported = True
    return reg


def _kind(kind: str) -> str:
    from ..registry import KINDS

    k = kind[:-1] if kind.endswith("s") else kind
    if k not in KINDS:
        raise FxforgeError(f"unknown kind '{kind}' (one of: {KIND_HELP})")
    return k


def _plugin_commands(core: set) -> dict:
    """name -> click command of every registered CommandSpec (the commands hook), built
    once per registry; a name the core's own commands take is reported and skipped."""
    reg = _registry()
    built = getattr(reg, "cli_commands", None)
    if built is None:
        from ..registry import Problem

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
