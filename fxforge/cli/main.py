"""`main(argv) -> int`: the CLI in-process, every error one line and an exit code."""
from __future__ import annotations

import os
import sys
import traceback
from typing import List, Optional

import typer

from ..errors import FxforgeError, Interrupted
from .app import _verbose, app, err_console


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
        if isinstance(exc, Interrupted):
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
