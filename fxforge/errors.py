"""The one exception type that means "the user gave us something wrong"."""


class FxforgeError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits 2.

    The message should name the file and the field or sample at fault.
    """
