"""The one exception type that means "the user gave us something wrong"."""
from __future__ import annotations


class FxforgeError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits 2.

    The line names the file (or command-line option) and the field or sample at
    fault. Give the parts separately when they are known, so that a caller that
    re-frames the error (a sweep naming its own file and section instead of the
    trial's resolved document) rewrites fields instead of parsing the string::

        FxforgeError("Input should be greater than 0", where="configs/x.toml", field="model.hidden_size")
        # configs/x.toml: model.hidden_size: Input should be greater than 0

    A single pre-formatted line, ``FxforgeError("x.wav: no such file")``, still
    works: ``message`` is then the whole line and ``where``/``field`` are None.
    """

    def __init__(self, message: str = "", *, where: str | None = None, field: str | None = None):
        self.message = str(message)
        self.where = where or None
        self.field = field or None
        super().__init__(self.line())

    def line(self) -> str:
        """'where: field: message', leaving out the parts that are not known. A
        command-line option as ``where`` reads as typed: ``--set train.epoch: ...``."""
        head = self.where
        if head and self.field:
            head = f"{head} {self.field}" if head.startswith("--") else f"{head}: {self.field}"
        elif self.field:
            head = self.field
        return f"{head}: {self.message}" if head else self.message

    def __str__(self) -> str:
        return self.line()

    def __reduce__(self):
        # Ray and multiprocessing pickle exceptions; keyword-only fields need help.
        return (_rebuild, (type(self), self.message, self.where, self.field))

    def reframed(self, where: str | None, field_prefix: str = "", suffix: str = "") -> "FxforgeError":
        """The same fault named from another place: a new ``where``, the field
        under ``field_prefix`` (``"grid."``), ``suffix`` appended to the message."""
        field = f"{field_prefix}{self.field}" if self.field else (field_prefix.rstrip(".") or None)
        return type(self)(self.message + suffix, where=where, field=field)


def _rebuild(cls, message, where, field):
    return cls(message, where=where, field=field)


class Interrupted(Exception):
    """Ctrl-C during training: the checkpoint is saved; exit 130."""

    def __init__(self, run_dir):
        super().__init__(f"interrupted; checkpoint saved. Resume with: fxforge run --resume {run_dir}")
        self.run_dir = run_dir
