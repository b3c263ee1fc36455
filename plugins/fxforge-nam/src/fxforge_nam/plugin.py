"""The ``nam`` exporter: ``fxforge export nam RUN -o model.nam``.

Writes NAM's current .nam JSON (``version`` 0.7.0, ``architecture``,
``config``, flat ``weights`` in NAM's order, ``sample_rate``, ``metadata``) for
the models NAM represents exactly (see :mod:`fxforge_nam.mapping`); any other
run is refused with a one-line reason. ``--verify`` loads the file with NAM's
own loader (``nam.models.init_from_nam``) and compares it with the run's model.
"""
from __future__ import annotations

import datetime
import importlib.util
import json
import math
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from fxforge import ExporterSpec, FxforgeError, __version__ as fxforge_version, hookimpl
from fxforge.exports import has_cabinet, model_name, write_export

from .mapping import NamModel, Unsupported, map_run

NAM_FILE_VERSION = "0.7.0"  # the .nam schema NAM 0.13 writes (nam.models._constants.MODEL_VERSION)
GEAR_TYPES = ("amp", "pedal", "pedal_amp", "amp_cab", "amp_pedal_cab", "preamp", "studio")
TONE_TYPES = ("clean", "overdrive", "crunch", "hi_gain", "fuzz")


class NamConfig(BaseModel):
    """Options of ``fxforge export nam`` (metadata as NAM's trainer asks for it)."""

    model_config = ConfigDict(extra="forbid")

    out: Path = Field(description="the .nam file to write (-o)")
    name: Optional[str] = Field(None, description="model name shown by the plugin (default: the run's name)")
    modeled_by: Optional[str] = Field(None, description="who made the capture")
    gear_make: Optional[str] = Field(None, description="e.g. Fender")
    gear_model: Optional[str] = Field(None, description="e.g. Deluxe Reverb")
    gear_type: Optional[Literal[GEAR_TYPES]] = Field(None, description=" | ".join(GEAR_TYPES))
    tone_type: Optional[Literal[TONE_TYPES]] = Field(None, description=" | ".join(TONE_TYPES))
    input_level_dbu: Optional[float] = Field(None, description="analog level in dBu of a 0 dBFS input (reamp calibration)")
    output_level_dbu: Optional[float] = Field(None, description="analog level in dBu of a 0 dBFS output")
    verify: bool = Field(False, description="load the file with NAM's loader and compare with the run (needs neural-amp-modeler)")
    tolerance: float = Field(1e-5, gt=0, description="--verify: largest allowed max abs error")
    force: bool = Field(False, description="overwrite an existing file")

    @field_validator("out")
    @classmethod
    def _suffix(cls, value: Path):
        if value.suffix.lower() != ".nam":
            raise ValueError(f"must end in .nam (got {str(value)[:120]!r})")
        return value

    @field_validator("name", "modeled_by", "gear_make", "gear_model")
    @classmethod
    def _one_line(cls, value):
        if value is not None:
            value = " ".join(str(value).split())[:200]
        return value


def _map(run) -> NamModel:
    return map_run(model_name(run), run.model, has_cabinet(run))


def refuses(run) -> str | None:
    """One line saying why NAM cannot represent this run exactly, or None."""
    try:
        _map(run)
    except Unsupported as e:
        return " ".join(str(e).split())
    return None


# ---------------------------------------------------------------- running the model


@torch.no_grad()
def run_model(model, x: np.ndarray) -> np.ndarray:
    """(batch, time) float32 through the model's streaming face, from its initial state."""
    xt = torch.as_tensor(np.atleast_2d(x), dtype=torch.float32)
    y, _ = model(xt.unsqueeze(-1), model.initial_state(xt.shape[0], torch.device("cpu")))
    return y[..., 0].numpy()


def _nam_loudness_input() -> Optional[np.ndarray]:
    """NAM's standard loudness input (1 s), found without importing NAM; None if NAM is absent."""
    try:
        spec = importlib.util.find_spec("nam")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / "_resources" / "loudness_input.wav"
    if not path.is_file():
        return None
    import soundfile as sf

    x, _ = sf.read(str(path), dtype="float32", always_2d=True)
    return x[:, 0]


def loudness_and_gain(model) -> Optional[tuple[float, float]]:
    """NAM's ``loudness`` (dB RMS of the output for its loudness input) and ``gain``
    (0..1, how much the output grows with input gain), computed as NAM's trainer does."""
    x = _nam_loudness_input()
    if x is None:
        return None
    gains = np.linspace(0.0, 1.0, 11, dtype=np.float32)
    y = run_model(model, gains[:, None] * x[None, :]).astype(np.float64)
    rms = np.sqrt(np.mean(np.square(y), axis=1))
    loudness = 20.0 * math.log10(max(rms[-1], 1e-30))
    max_gain = rms[-1] * len(gains)
    min_gain = 0.5 * max_gain
    gain = float(np.clip((rms.sum() - min_gain) / (max_gain - min_gain), 0.0, 1.0)) if max_gain > 0 else 0.0
    return float(loudness), gain


def test_signal(sample_rate: int, seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """Guitar-like: plucked notes (decaying harmonics) over the playing range, then silence."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    x = np.zeros(n)
    for start in np.arange(0.0, seconds * 0.8, 0.2):
        f0 = 82.41 * 2 ** (rng.integers(0, 24) / 12)
        env = np.where(t >= start, np.exp(-(t - start) * rng.uniform(3, 8)), 0.0)
        note = sum(np.sin(2 * np.pi * f0 * k * (t - start)) / k ** 1.3 for k in range(1, 9))
        x += rng.uniform(0.2, 1.0) * env * note
    return (0.5 * x / np.max(np.abs(x))).astype(np.float32)


def verify(path: Path, model, sample_rate: int) -> float:
    """Max abs difference between NAM's loader on ``path`` and ``model``."""
    try:
        from nam.models import init_from_nam
    except ImportError:
        raise FxforgeError("--verify loads the file with NAM's loader: pip install neural-amp-modeler") from None
    nam_model = init_from_nam(json.loads(Path(path).read_text())).eval()
    x = test_signal(sample_rate)
    with torch.no_grad():
        y_nam = nam_model(torch.from_numpy(x)).numpy()
    y = run_model(model, x)[0]
    return float(np.max(np.abs(y_nam - y)))


# ---------------------------------------------------------------- the file


def _training_metadata(run) -> dict:
    s = getattr(run, "summary", None) or {}
    data = getattr(run.config, "data", None)
    manual = getattr(data, "latency", None)
    alignment = s.get("alignment") if isinstance(s.get("alignment"), dict) else {}
    return {
        "trainer": "fxforge",
        "fxforge_version": s.get("fxforge", fxforge_version),
        "model": model_name(run),
        "run": getattr(run.config, "name", None),
        "latency": {
            "samples": s.get("latency_samples"),
            "manual": manual if isinstance(manual, int) and not isinstance(manual, bool) else None,
            "method": alignment.get("method"),
        },
        "test_esr": s.get("test_esr"),
        "test_esr_pre": s.get("test_esr_pre"),
        "validation_esr": s.get("val_esr"),
        "validation_esr_pre": s.get("val_esr_pre"),
        "epochs": s.get("epochs"),
        "parameters": s.get("parameters"),
    }


def nam_dict(run, config: NamConfig, mapped: NamModel | None = None) -> dict:
    """The whole .nam document for ``run``."""
    mapped = mapped or _map(run)
    now = datetime.datetime.now()
    metadata: dict = {"date": {"year": now.year, "month": now.month, "day": now.day,
                               "hour": now.hour, "minute": now.minute, "second": now.second}}
    lg = loudness_and_gain(run.model)
    if lg is not None:
        metadata["loudness"], metadata["gain"] = lg
    metadata.update({
        "name": config.name or getattr(run.config, "name", None),
        "modeled_by": config.modeled_by,
        "gear_type": config.gear_type,
        "gear_make": config.gear_make,
        "gear_model": config.gear_model,
        "tone_type": config.tone_type,
    })
    for key in ("input_level_dbu", "output_level_dbu"):
        if getattr(config, key) is not None:
            metadata[key] = getattr(config, key)
    metadata["training"] = _training_metadata(run)
    return {
        "version": NAM_FILE_VERSION,
        "metadata": metadata,
        "architecture": mapped.architecture,
        "config": mapped.config,
        "weights": mapped.weights,
        "sample_rate": int(run.sample_rate),
    }




def export(run, config: NamConfig):
    from rich.console import Console

    console = Console(stderr=True)
    try:
        mapped = _map(run)
    except Unsupported as e:
        raise FxforgeError(f"the nam exporter cannot export model '{model_name(run)[:60]}': {' '.join(str(e).split())}") from None
    doc = nam_dict(run, config, mapped)
    write_export(config.out, json.dumps(doc), config.force)
    console.print(f"wrote {config.out} ({mapped.description}; {len(mapped.weights)} weights, {run.sample_rate} Hz)")
    if config.verify:
        err = verify(config.out, run.model, int(run.sample_rate))
        if err > config.tolerance:
            console.print(f"verify failed: NAM's loader differs from the run by {err:.3g} > {config.tolerance:g}")
            raise SystemExit(1)
        console.print(f"verify ok: NAM's loader matches the run within {err:.3g} (<= {config.tolerance:g})")
    return config.out


@hookimpl
def fxforge_register_exporters(register):
    register(ExporterSpec(
        name="nam",
        summary="a Neural Amp Modeler .nam file (NAM's WaveNet or LSTM, exactly as trained)",
        Config=NamConfig,
        export=export,
        refuses=refuses,
        out_name="{name}.nam",  # fxforge export all
    ))
