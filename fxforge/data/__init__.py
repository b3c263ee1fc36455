"""Recordings: audio I/O and checks, alignment, the reamp signal, the built-in captures, pairs and segments, and `fxforge capture`."""
