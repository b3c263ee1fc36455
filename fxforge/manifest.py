"""The captures manifest: one dry recording and the same gear recorded at several knob
settings, each target named with its knob values.

    version = 1
    input = "dry.wav"            # paths relative to the manifest's folder
    [knobs.drive]                # one table per knob; their order is the conditioning order
    min = 0.0
    max = 1.0
    default = 0.5                # optional: the midpoint
    [[targets]]
    file = "drive_0.25.wav"
    knobs = { drive = 0.25 }     # every knob named, each within its range
    latency = 0                  # optional: measured by `fxforge capture`, else data.latency applies

`fxforge capture` writes it; a manifest for a real pedal reamped by hand at each setting
is written the same way. Pure pydantic and the standard library: the config layer and the
CLI read it without loading numpy or torch.
"""
from __future__ import annotations

import json
import math
import re
import tomllib
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StrictInt, ValidationError, model_validator

from .errors import FxforgeError

VERSION = 1
MANIFEST_NAME = "captures.toml"
# Knob names become placeholders in --render templates, variables in --chain expressions
# and parameter names in exported plugins: identifiers only.
KNOB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _num(v: float) -> str:
    return f"{v:g}"


class Knob(BaseModel):
    """A knob's range; values are mapped to 0..1 by it for the model."""

    model_config = ConfigDict(extra="forbid")

    min: float
    max: float
    default: Optional[float] = None  # filled with the midpoint

    @model_validator(mode="after")
    def _midpoint(self) -> "Knob":
        if self.default is None and math.isfinite(self.min) and math.isfinite(self.max):
            self.default = (self.min + self.max) / 2
        return self

    def normalise(self, value: float) -> float:
        return (float(value) - self.min) / (self.max - self.min)

    def contains(self, value: float) -> bool:
        # A value written as a decimal (0.1 + 0.2 and the like) may miss a bound by rounding.
        eps = 1e-9 * (self.max - self.min)
        return self.min - eps <= value <= self.max + eps


class Target(BaseModel):
    """One recording of the gear at one setting."""

    model_config = ConfigDict(extra="forbid")

    file: str = Field(min_length=1)
    knobs: dict[str, float]
    latency: Optional[StrictInt] = None  # samples the target lags the input; None: data.latency decides


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = VERSION
    input: str = Field(min_length=1)
    knobs: dict[str, Knob]
    targets: list[Target]

    # Where relative paths start: the manifest's folder once read or written; else the
    # working directory.
    _folder: Optional[Path] = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _consistent(self) -> "Manifest":
        problems = list(self._problems())
        if problems:
            field, msg = problems[0]
            raise ValueError(f"{field}: {msg}")
        return self

    def _problems(self):
        if not self.knobs:
            yield "knobs", "name at least one knob ([knobs.NAME] with min and max)"
        for name, k in self.knobs.items():
            if not KNOB_NAME.match(name):
                yield f"knobs.{name}", "a knob name is letters, digits and _, not starting with a digit"
            bad = [key for key in ("min", "max", "default") if getattr(k, key) is not None
                   and not math.isfinite(getattr(k, key))]
            if bad:
                yield f"knobs.{name}.{bad[0]}", f"{getattr(k, bad[0])} is not a finite number"
            elif not k.min < k.max:
                yield f"knobs.{name}", f"min ({_num(k.min)}) must be below max ({_num(k.max)})"
            elif not k.contains(k.default):
                yield f"knobs.{name}.default", f"{_num(k.default)} is outside {_num(k.min)}..{_num(k.max)}"
        if not self.targets:
            yield "targets", "list at least one target ([[targets]] with file and knobs)"
        seen: dict[str, int] = {}
        for i, t in enumerate(self.targets):
            where = f"targets[{i}]"
            if t.file in seen:
                yield f"{where}.file", f"{t.file} is already targets[{seen[t.file]}]"
            seen.setdefault(t.file, i)
            if t.file == self.input:
                yield f"{where}.file", f"{t.file} is the input"
            for name in t.knobs:
                if name not in self.knobs:
                    yield f"{where}.knobs.{name}", f"no such knob (knobs: {', '.join(self.knobs) or 'none'})"
            for name, k in self.knobs.items():
                if name not in t.knobs:
                    yield f"{where}.knobs.{name}", "missing: every target names every knob"
                    continue
                v = t.knobs[name]
                if not math.isfinite(v) or not k.contains(v):
                    yield f"{where}.knobs.{name}", f"{_num(v)} is outside {_num(k.min)}..{_num(k.max)}"

    # --- use -------------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """The knobs in conditioning order."""
        return list(self.knobs)

    @property
    def folder(self) -> Path:
        return self._folder if self._folder is not None else Path(".")

    def resolve(self, file: str) -> Path:
        """A path in the manifest, relative to the manifest's folder (absolute stays)."""
        p = Path(file).expanduser()
        return p if p.is_absolute() else self.folder / p

    @property
    def input_path(self) -> Path:
        return self.resolve(self.input)

    def target_path(self, target: Target) -> Path:
        return self.resolve(target.file)

    def normalised(self, knobs: dict[str, float]) -> list[float]:
        """Knob values mapped to 0..1 by their ranges, in knob order; a knob not given
        takes its default. An unknown name or a value outside the range is refused."""
        for name in knobs:
            if name not in self.knobs:
                raise FxforgeError(f"--knob {name}: no such knob (knobs: {', '.join(self.knobs)})")
        out = []
        for name, k in self.knobs.items():
            v = float(knobs.get(name, k.default))
            if not math.isfinite(v) or not k.contains(v):
                raise FxforgeError(f"--knob {name}: {_num(v)} is outside {_num(k.min)}..{_num(k.max)}")
            out.append(min(1.0, max(0.0, k.normalise(v))))
        return out

    def defaults(self) -> dict[str, float]:
        return {name: k.default for name, k in self.knobs.items()}


# --- files -------------------------------------------------------------------------------

def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _message(exc: ValidationError) -> tuple[str, str]:
    """The first pydantic error as (dotted field, message). An unknown key comes first:
    it is usually a misspelling of the key another error says is missing."""
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    err = errors[0]
    loc = tuple(err["loc"])
    msg = err["msg"]
    if err["type"] == "value_error":
        msg = msg.removeprefix("Value error, ")
        if not loc and ": " in msg:  # the whole-manifest checks carry their own field
            field, msg = msg.split(": ", 1)
            return field, msg
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "literal_error" and loc == ("version",):
        msg = f"version {err.get('input')!r} is not supported (this fxforge reads version {VERSION})"
    elif err["type"] != "missing" and isinstance(err.get("input"), (int, float, str, bool)):
        msg += f" (got {err['input']!r})"
    return _loc(loc) or "(top level)", msg


def parse_manifest(doc: dict, where: str, folder: Optional[Path] = None) -> Manifest:
    """A manifest from a parsed TOML document; errors name ``where`` and the field."""
    try:
        manifest = Manifest.model_validate(doc)
    except ValidationError as exc:
        field, msg = _message(exc)
        raise FxforgeError(f"{where}: {field}: {msg}") from None
    manifest._folder = folder
    return manifest


def read_manifest(path: Path | str) -> Manifest:
    path = Path(path)
    if path.is_dir():
        if (path / MANIFEST_NAME).is_file():
            path = path / MANIFEST_NAME
        else:
            raise FxforgeError(f"{path}: is a directory with no {MANIFEST_NAME}")
    if not path.is_file():
        raise FxforgeError(f"{path}: no such file")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise FxforgeError(f"{path}: not a text file") from None
    except tomllib.TOMLDecodeError as exc:
        raise FxforgeError(f"{path}: invalid TOML: {exc}") from None
    return parse_manifest(doc, str(path), path.parent)


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)  # shortest round-tripping form; TOML reads Python's float syntax
    return json.dumps(str(v))  # JSON's escapes are TOML basic-string escapes


def dumps_manifest(manifest: Manifest) -> str:
    """The manifest as TOML in the documented layout (a target's knobs inline)."""
    lines = [f"version = {manifest.version}", f"input = {_value(manifest.input)}", ""]
    for name, k in manifest.knobs.items():
        lines += [f"[knobs.{_key(name)}]", f"min = {_value(float(k.min))}", f"max = {_value(float(k.max))}",
                  f"default = {_value(float(k.default))}", ""]
    for t in manifest.targets:
        knobs = ", ".join(f"{_key(n)} = {_value(float(v))}" for n, v in t.knobs.items())
        lines += ["[[targets]]", f"file = {_value(t.file)}", f"knobs = {{ {knobs} }}"]
        if t.latency is not None:
            lines.append(f"latency = {t.latency}")
        lines.append("")
    return "\n".join(lines)


def write_manifest(path: Path | str, manifest: Manifest) -> None:
    """Write atomically (a crash leaves the old file or the new one); relative paths in it
    then resolve against ``path``'s folder."""
    from .atomic import atomic_write_bytes

    path = Path(path)
    # Validate again: a manifest built with model_construct or edited after construction
    # must not reach the disk in a shape read_manifest would refuse.
    parse_manifest(manifest.model_dump(), str(path))
    try:
        atomic_write_bytes(path, dumps_manifest(manifest).encode("utf-8"))
    except OSError as exc:
        raise FxforgeError(f"{path}: could not write ({exc.strerror or exc})") from None
    manifest._folder = path.parent
