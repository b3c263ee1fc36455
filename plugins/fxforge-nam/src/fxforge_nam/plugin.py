"""The ``nam`` exporter: ``fxforge export nam RUN -o model.nam``.

Writes NAM's current .nam JSON (``version`` 0.7.0, ``architecture``,
``config``, flat ``weights`` in NAM's order, ``sample_rate``, ``metadata``) for
the models NAM represents exactly (see :mod:`fxforge_nam.mapping`); any other
run is refused with a one-line reason. ``--verify`` plays the file in NAM's own
loaders and compares with the run's model: the Python one (``nam.models.init_from_nam``)
and, where a NeuralAmpModelerCore checkout and a C++ compiler are here, the core's
``nam::get_dsp`` as NAM's plugin runs it (see :mod:`fxforge_nam.core`).
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
    verify: bool = Field(False, description="play the file in NAM's loaders and compare with the run: neural-amp-modeler's "
                                            "and NeuralAmpModelerCore's (each skipped, saying why, when absent)")
    tolerance: float = Field(1e-5, gt=0, description="--verify: largest allowed max abs error")
    nam_core_dir: Optional[Path] = Field(None, description="NeuralAmpModelerCore checkout for --verify (default: $FXFORGE_NAM_CORE_DIR)")
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


def _say(console, line: str) -> None:
    """One line as it is: no wrapping inside it, no markup read from paths."""
    console.print(line, soft_wrap=True, markup=False, highlight=False)


def test_signal(input_peak: Optional[float], seconds: float = 3.0) -> np.ndarray:
    """fxforge's guitar-like DI at the run's training level plus 3 dB of headroom."""
    from fxforge import synth_di

    x = synth_di(seconds, seed=11).astype(np.float64)
    peak = input_peak if isinstance(input_peak, (int, float)) and 0 < input_peak <= 4 else 0.5
    return (x * (peak * 10 ** (3 / 20) / np.max(np.abs(x)))).astype(np.float32)


def _has_nam() -> bool:
    try:
        return importlib.util.find_spec("nam") is not None
    except (ImportError, ValueError):
        return False


def verify_python(path: Path, model, x: np.ndarray) -> float:
    """Max abs difference between neural-amp-modeler's loader on ``path`` and ``model``."""
    from nam.models import init_from_nam

    nam_model = init_from_nam(json.loads(Path(path).read_text())).eval()
    with torch.no_grad():
        y_nam = nam_model(torch.from_numpy(x)).numpy()
    return float(np.max(np.abs(y_nam - run_model(model, x)[0])))


# Host block sizes for the core: one that divides nothing and one a DAW uses.
CORE_BLOCKS = (17, 512)


def verify_core(path: Path, model, x: np.ndarray, core: Path, compiler: str, console) -> float:
    """Max abs difference between NeuralAmpModelerCore's get_dsp on ``path`` and ``model``,
    played as NAM's plugin plays it: after the core's prewarm, block by block; an LSTM also from
    the initial state the file holds (no prewarm), which checks that state."""
    from .core import build_check, render

    exe = build_check(core, compiler, announce=lambda line: _say(console, f"  {line}"))
    refs: dict[int, np.ndarray] = {}

    def ours(silence: int) -> np.ndarray:
        # The core ran `silence` samples of silence through the model before the audio.
        if silence not in refs:
            padded = np.concatenate([np.zeros(silence, np.float32), x])
            refs[silence] = run_model(model, padded)[0][silence:]
        return refs[silence]

    def one(block: int, prewarm: bool) -> tuple[float, str]:
        theirs, info = render(exe, Path(path), x, block, prewarm)
        silence = int(info.get("prewarm_samples") or 0)
        err = float(np.max(np.abs(theirs.astype(np.float64) - ours(silence))))
        how = (f"after its prewarm ({silence} samples of silence)" if prewarm
               else "from the file's initial state (no prewarm)")
        _say(console, f"  NeuralAmpModelerCore's get_dsp vs the run, block {block}, {how}: max abs error {err:.3g}")
        return err, str(info.get("architecture"))

    errs = [one(block, True) for block in CORE_BLOCKS]
    # An LSTM's start is the state the file holds; a WaveNet's buffers start at zero without
    # the prewarm, which is not how any host plays it.
    if errs[0][1] == "LSTM":
        errs.append(one(64, False))
    return max(e for e, _ in errs)


def verify(path: Path, run, config: NamConfig, console) -> list[tuple[float, str]]:
    """(max abs difference, loader) for each of NAM's loaders that played ``path``
    against the run; empty when every check skipped (each says why)."""
    from .core import find_compiler, find_core, missing

    s = getattr(run, "summary", None) or {}
    x = test_signal(s.get("input_peak"))
    model = run.model.eval()
    results: list[tuple[float, str]] = []
    _say(console, f"verify on fxforge's guitar-like DI: {len(x) / int(run.sample_rate):.0f} s, peak "
                  f"{np.max(np.abs(x)):.2f} (the run's input peak + 3 dB)")
    if _has_nam():
        err = verify_python(path, model, x)
        _say(console, f"  NAM's loader (nam.models.init_from_nam) vs the run: max abs error {err:.3g}")
        results.append((err, "NAM's loader"))
    else:
        _say(console, "verify skipped for NAM's Python loader: it needs neural-amp-modeler (pip install neural-amp-modeler)")
    core, cxx = find_core(config.nam_core_dir), find_compiler()
    why = missing(core, cxx)
    if why is None:
        results.append((verify_core(path, model, x, core, cxx, console), "NeuralAmpModelerCore"))
    else:
        _say(console, f"verify skipped for NeuralAmpModelerCore: it compiles NAM's C++ loader and needs {why}")
    return results


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
    if config.nam_core_dir is not None:  # a wrong path is a usage error, before anything is written
        from .core import find_core

        try:
            find_core(config.nam_core_dir)
        except FxforgeError as e:
            raise FxforgeError(f"fxforge export nam: {e}") from None
    doc = nam_dict(run, config, mapped)
    write_export(config.out, json.dumps(doc), config.force)
    console.print(f"wrote {config.out} ({mapped.description}; {len(mapped.weights)} weights, {run.sample_rate} Hz)")
    if config.verify:
        results = verify(config.out, run, config, console)
        bad = [(e, who) for e, who in results if not e <= config.tolerance]  # a NaN fails too
        if not results:
            _say(console, "verify skipped: neither of NAM's loaders is here (see above); the file is written, unchecked")
        elif bad:
            for e, who in bad:
                _say(console, f"verify failed: {who} differs from the run by {e:.3g} > {config.tolerance:g}")
            raise SystemExit(1)
        else:
            _say(console, f"verify ok: {' and '.join(who for _, who in results)} "
                          f"match{'es' if len(results) == 1 else ''} the run within "
                          f"{max(e for e, _ in results):.3g} (<= {config.tolerance:g})")
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
