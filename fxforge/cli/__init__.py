"""The fxforge command line. Each command is a thin shell over a library call, in a module
by concern; importing this package registers them all on ``app``.

Exit codes: 0 ok; 2 usage, config or input error (one line, no traceback);
1 unexpected failure (traceback with -v or FXFORGE_TRACEBACK=1), or a sweep none of
whose trials finished; 130 Ctrl-C.
"""
from . import capture, export, inspect, playback, report, training  # noqa: F401  (each registers its commands)
from .app import app, console, err_console  # noqa: F401
from .main import main  # noqa: F401
