"""The knob settings of a run trained on a captures manifest (``[data] captures``): which
settings it trains on and which it holds out (``holdout = [{drive = 0.6}]``), the one the
audio-only machinery plays (stress probes, plots, the report), what the run records about
its knobs, and ``--knob name=value`` on the command line. No torch: the config layer's
checks and ``fxforge list`` stay light; ``fxforge.train.conditioned`` loads the audio.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .errors import FxforgeError

# Two knob values closer than this are the same setting (a manifest's 0.6 and a holdout's 0.6
# may differ in their last bits after a TOML round trip).
SAME = 1e-6


@dataclass(frozen=True)
class Knob:
    name: str
    min: float
    max: float
    default: float

    def normalise(self, value: float) -> float:
        span = self.max - self.min
        return 0.0 if span == 0 else (float(value) - self.min) / span

    def as_dict(self) -> dict:
        return {"name": self.name, "min": self.min, "max": self.max, "default": self.default}


@dataclass
class Setting:
    file: Path
    knobs: dict[str, float]
    normalised: list[float]
    latency: Optional[int]
    held_out: bool = False

    @property
    def label(self) -> str:
        return label(self.knobs)


def label(knobs: dict[str, float]) -> str:
    return ", ".join(f"{k} = {v:g}" for k, v in knobs.items())


@dataclass
class CaptureSet:
    path: Path
    input: Path
    knobs: list[Knob]
    settings: list[Setting]

    @property
    def trained(self) -> list[Setting]:
        return [s for s in self.settings if not s.held_out]

    @property
    def primary(self) -> Setting:
        """The trained setting nearest the knobs' defaults: the audio-only machinery (stress
        probes, plots, the report's players) plays it, so their target is a recording."""
        defaults = [k.normalise(k.default) for k in self.knobs]
        return min(self.trained, key=lambda s: sum((a - b) ** 2 for a, b in zip(s.normalised, defaults)))

    def data_for(self, data, setting: Setting):
        """``data`` as a plain pair: the dry input and this setting's recording."""
        latency = setting.latency if setting.latency is not None else data.latency
        return data.model_copy(update={"captures": None, "holdout": None, "demo": None, "input": self.input,
                                       "target": setting.file, "latency": latency})

    def info(self) -> dict:
        """What a run records (summary.json's ``knobs``): process, eval and the exporters read it."""
        return {"manifest": str(self.path), "knobs": [k.as_dict() for k in self.knobs],
                "primary": dict(self.primary.knobs)}


def _manifest_knobs(manifest) -> list[Knob]:
    knobs = manifest.knobs
    items = knobs.items() if isinstance(knobs, dict) else ((k.name, k) for k in knobs)
    return [Knob(str(name), float(k.min), float(k.max), float(k.default)) for name, k in items]


def read_captures(data, where: str = "") -> CaptureSet:
    """The manifest of ``data.captures`` with ``data.holdout`` applied; a holdout naming a knob
    the manifest lacks, or a setting it does not list, is a one-line error."""
    from .manifest import read_manifest

    path = Path(data.captures)
    manifest = read_manifest(path)
    knobs = _manifest_knobs(manifest)
    names = [k.name for k in knobs]
    if not knobs:
        raise FxforgeError(f"{path}: lists no knobs; a plain pair trains with data.input and data.target")
    settings = []
    for t in manifest.targets:
        values = {name: float(t.knobs[name]) for name in names}
        settings.append(Setting(manifest.target_path(t), values, list(manifest.normalised(values)), getattr(t, "latency", None)))
    prefix = f"{where}: " if where else ""
    for i, entry in enumerate(data.holdout or []):
        field = f"data.holdout[{i}]"
        unknown = [k for k in entry if k not in names]
        if unknown or not entry:
            raise FxforgeError(f"{prefix}{field}: {path} has no knob '{unknown[0] if unknown else ''}' "
                               f"(its knobs: {', '.join(names)})")
        hits = [s for s in settings if all(abs(s.knobs[k] - v) <= SAME * max(1.0, abs(v)) for k, v in entry.items())]
        if not hits:
            listed = "; ".join(s.label for s in settings[:8]) + ("; ..." if len(settings) > 8 else "")
            raise FxforgeError(f"{prefix}{field}: no setting {label(entry)} in {path} (its settings: {listed})")
        for s in hits:
            s.held_out = True
    if not any(not s.held_out for s in settings):
        raise FxforgeError(f"{prefix}data.holdout: holds out every setting of {path}; leave at least one to train on")
    return CaptureSet(path, manifest.input_path, knobs, settings)


def run_knobs(summary: dict) -> list[Knob]:
    """A run's knobs, from its summary (none for a run trained on one pair)."""
    info = summary.get("knobs") or {}
    return [Knob(k["name"], float(k["min"]), float(k["max"]), float(k["default"])) for k in info.get("knobs", [])]


def parse_knob_options(options: list[str], knobs: list[Knob], run: str, option: str = "--knob") -> dict[str, float]:
    """``['drive=0.6']`` as {name: value} over every knob of the run (the rest at their default)."""
    values = {k.name: k.default for k in knobs}
    names = [k.name for k in knobs]
    for item in options:
        name, eq, raw = item.partition("=")
        name = name.strip()
        if not eq or not name:
            raise FxforgeError(f"{option} {item!r}: expected name=value, e.g. {option} {names[0] if names else 'drive'}=0.5")
        if not knobs:
            raise FxforgeError(f"{option} {item}: {run} was trained on one setting and has no knobs")
        if name not in names:
            raise FxforgeError(f"{option} {item}: {run} has no knob '{name}' (its knobs: {', '.join(names)})")
        try:
            value = float(raw)
        except ValueError:
            raise FxforgeError(f"{option} {item}: {raw!r} is not a number") from None
        knob = knobs[names.index(name)]
        lo, hi = min(knob.min, knob.max), max(knob.min, knob.max)
        if not math.isfinite(value) or not lo <= value <= hi:
            raise FxforgeError(f"{option} {item}: outside the knob's range {knob.min:g}..{knob.max:g}")
        values[name] = value
    return values


def normalised(knobs: list[Knob], values: dict[str, float]) -> list[float]:
    return [k.normalise(values[k.name]) for k in knobs]
