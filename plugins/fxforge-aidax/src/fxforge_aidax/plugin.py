"""The ``aidax`` exporter: ``fxforge export aidax RUN -o model.json``.

Writes the AIDA-X / RTNeural model JSON (Keras-style ``in_shape`` and
``layers``, plus AIDA-X's ``in_skip``, ``in_gain``, ``out_gain`` and a
``metadata`` block) for the models AIDA-X plays exactly (see
:mod:`fxforge_aidax.mapping`); any other run is refused with a one-line reason.
``--verify`` renders a guitar-like DI through RTNeural's own parser (a small
C++ program compiled against a local RTNeural checkout) as AIDA-X applies it,
and compares with the run's model; a conditioned model at several knob positions
and with each knob moving.
"""
from __future__ import annotations

import datetime
import json
import math
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from fxforge import ExporterSpec, FxforgeError, __version__ as fxforge_version, hookimpl
from fxforge.exports import has_cabinet, model_name, write_export

from .mapping import AidaxModel, Unsupported, map_run


class AidaxConfig(BaseModel):
    """Options of ``fxforge export aidax`` (metadata as AIDA-X's model files carry it)."""

    model_config = ConfigDict(extra="forbid")

    out: Path = Field(description="the .json model file to write (-o)")
    name: Optional[str] = Field(None, description="model name (default: the run's name)")
    author: Optional[str] = Field(None, description="who made the capture")
    based: Optional[str] = Field(None, description="the gear captured, e.g. Egnater Tweaker 40")
    style: Optional[str] = Field(None, description="e.g. clean, crunch, high gain")
    source: Optional[str] = Field(None, description="e.g. original")
    license: Optional[str] = Field(None, description="e.g. CC BY 4.0")
    in_gain: float = Field(0.0, ge=-40, le=40, description="AIDA-X's in_gain in dB, applied to the input before the model")
    out_gain: float = Field(0.0, ge=-40, le=40, description="AIDA-X's out_gain in dB, applied to the output")
    verify: bool = Field(False, description="render a DI through RTNeural's parser and compare (needs an RTNeural checkout and a C++ compiler)")
    tolerance: float = Field(1e-5, gt=0, description="--verify: largest allowed max abs error")
    rtneural_dir: Optional[Path] = Field(None, description="RTNeural checkout for --verify (default: $FXFORGE_RTNEURAL_DIR)")
    force: bool = Field(False, description="overwrite an existing file")

    @field_validator("out")
    @classmethod
    def _suffix(cls, value: Path):
        if value.suffix.lower() != ".json":
            raise ValueError(f"must end in .json (got {str(value)[:120]!r})")
        return value

    @field_validator("name", "author", "based", "style", "source", "license")
    @classmethod
    def _one_line(cls, value):
        if value is not None:
            value = " ".join(str(value).split())[:200]
        return value


def _map(run) -> AidaxModel:
    return map_run(model_name(run), run.model, has_cabinet(run))


def refuses(run) -> str | None:
    """One line saying why AIDA-X cannot play this run exactly, or None."""
    try:
        _map(run)
    except Unsupported as e:
        return " ".join(str(e).split())
    return None


# ---------------------------------------------------------------- the file


def _db_to_gain(db: float) -> float:
    """AIDA-X's DB_CO (in float32, as it computes it)."""
    return float(np.float32(10.0) ** np.float32(db * 0.05)) if db > -90 else 0.0


def aidax_dict(run, config: AidaxConfig, mapped: AidaxModel | None = None) -> dict:
    """The whole AIDA-X model document for ``run``."""
    mapped = mapped or _map(run)
    s = getattr(run, "summary", None) or {}
    esr = s.get("test_esr")
    metadata = {
        "name": config.name or getattr(run.config, "name", None),
        "samplerate": str(int(run.sample_rate)),  # AIDA-X's files write it as a string
        "source": config.source,
        "style": config.style,
        "based": config.based,
        "author": config.author,
        "license": config.license,
        "esr": esr if isinstance(esr, (int, float)) and math.isfinite(esr) else None,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "training": {
            "trainer": "fxforge",
            "fxforge_version": s.get("fxforge", fxforge_version),
            "model": model_name(run),
            "run": getattr(run.config, "name", None),
            "architecture": mapped.description,
            "latency_samples": s.get("latency_samples"),
            "test_esr_pre": s.get("test_esr_pre"),
            "validation_esr": s.get("val_esr"),
            "input_peak": s.get("input_peak"),
            "parameters": s.get("parameters"),
        },
    }
    knobs = (s.get("knobs") or {}).get("knobs") or []
    if mapped.inputs > 1:  # the knobs after the audio, in order, with the ranges the model's 0..1 maps to
        metadata["knobs"] = knobs
    return {
        "in_shape": [None, None, mapped.inputs],
        "in_skip": mapped.in_skip,
        "in_gain": float(config.in_gain),
        "out_gain": float(config.out_gain),
        "layers": mapped.layers,
        "metadata": metadata,
    }




# ---------------------------------------------------------------- verify


def test_signal(sample_rate: int, input_peak: Optional[float], seconds: float = 3.0) -> np.ndarray:
    """fxforge's guitar-like DI at the run's training level plus 3 dB of headroom."""
    from fxforge import synth_di

    x = synth_di(seconds, seed=11).astype(np.float64)
    peak = input_peak if isinstance(input_peak, (int, float)) and 0 < input_peak <= 4 else 0.5
    return (x * (peak * 10 ** (3 / 20) / np.max(np.abs(x)))).astype(np.float32)


@torch.no_grad()
def reference(model, x: np.ndarray, in_skip: int, in_gain_db: float, out_gain_db: float,
              prebuffer: int = 0, knobs: Optional[np.ndarray] = None) -> np.ndarray:
    """What AIDA-X plays for ``x``, computed with the run's PyTorch model: the model
    without its residual (AIDA-X adds the input itself when in_skip is 1), with the gains.
    ``knobs`` (len(x), K) are the model's 0..1 knob channels per sample; the pre-roll holds
    their first row, as the check program does."""
    from fxforge import stream_process as process

    gi, go = _db_to_gain(in_gain_db), _db_to_gain(out_gain_db)
    xg = (np.float32(gi) * x.astype(np.float32)) if gi != 1.0 else x.astype(np.float32)
    padded = np.concatenate([np.zeros(prebuffer, np.float32), xg])
    if knobs is not None:
        k = np.asarray(knobs, np.float32).reshape(len(x), -1)
        k = np.concatenate([np.repeat(k[:1], prebuffer, axis=0), k])
        padded = np.concatenate([padded.reshape(-1, 1), k], axis=1)
    if bool(in_skip) != bool(getattr(model, "residual", False)):
        raise FxforgeError(f"in_skip = {in_skip} but the run's model is {'' if in_skip else 'not '}residual")
    # The residual model's own y = xg + f(xg) is AIDA-X's in_skip = 1.
    y = process(model, torch.from_numpy(padded)).numpy()[prebuffer:]
    return (y * np.float32(go)) if go != 1.0 else y


def knob_trajectories(knobs: list[dict], n: int) -> list[tuple[str, np.ndarray]]:
    """The knob positions --verify plays: every knob at its default, at its minimum and at its
    maximum, then each knob swept from minimum to maximum while the others sit at their
    defaults (0..1, as the model reads them)."""
    k = len(knobs)
    default = np.array([(float(d["default"]) - float(d["min"])) / (float(d["max"]) - float(d["min"]))
                        for d in knobs], np.float32)
    out = [("knobs at default", np.tile(default, (n, 1))),
           ("knobs at minimum", np.zeros((n, k), np.float32)),
           ("knobs at maximum", np.ones((n, k), np.float32))]
    for j, d in enumerate(knobs):
        moving = np.tile(default, (n, 1))
        moving[:, j] = np.linspace(0.0, 1.0, n, dtype=np.float32)
        out.append((f"{d['name']} moving min -> max", moving))
    return out


def verify(path: Path, run, config: AidaxConfig, console) -> Optional[float]:
    """Max abs difference between RTNeural's parser on ``path`` and the run, or None when skipped."""
    from .rtneural import AIDAX_PREBUFFER, build_check, find_compiler, find_rtneural, render

    rt, cxx = find_rtneural(config.rtneural_dir), find_compiler()
    if rt is None or cxx is None:
        missing = ("an RTNeural checkout (--rtneural-dir, or FXFORGE_RTNEURAL_DIR; git clone "
                   "https://github.com/jatinchowdhury18/RTNeural)") if rt is None else "a C++ compiler (g++ or clang++)"
        console.print(f"verify skipped: it compiles RTNeural's parser and needs {missing}")
        return None
    doc = json.loads(Path(path).read_text())
    exe = build_check(rt, cxx)
    s = getattr(run, "summary", None) or {}
    x = test_signal(int(run.sample_rate), s.get("input_peak"))
    model = run.model.eval()
    knobs = ((s.get("knobs") or {}).get("knobs") or []) if doc["in_shape"][-1] > 1 else []
    if len(knobs) != doc["in_shape"][-1] - 1:
        raise FxforgeError(f"{path}: the model takes {doc['in_shape'][-1] - 1} knob(s) but the run's summary "
                           f"names {len(knobs)}")
    trajectories = knob_trajectories(knobs, len(x)) if knobs else [("", None)]
    worst = 0.0
    for label, k in trajectories:
        for prebuffer, what in ((0, "from RTNeural's reset state"), (AIDAX_PREBUFFER, f"after AIDA-X's {AIDAX_PREBUFFER}-sample pre-roll")):
            theirs = render(exe, Path(path), x, prebuffer, knobs=k)
            ours = reference(model, x, doc["in_skip"], doc["in_gain"], doc["out_gain"], prebuffer, knobs=k)
            err = float(np.max(np.abs(theirs.astype(np.float64) - ours)))
            console.print(f"  RTNeural parseJson vs the run, {what}{', ' + label if label else ''}: max abs error {err:.3g} "
                          f"(DI peak {np.max(np.abs(x)):.2f}, output peak {np.max(np.abs(ours)):.2f})")
            worst = max(worst, err)
    return worst


def export(run, config: AidaxConfig):
    from rich.console import Console

    console = Console(stderr=True)
    try:
        mapped = _map(run)
    except Unsupported as e:
        raise FxforgeError(f"the aidax exporter cannot export model '{model_name(run)[:60]}': {' '.join(str(e).split())}") from None
    doc = aidax_dict(run, config, mapped)
    write_export(config.out, json.dumps(doc), config.force)
    console.print(f"wrote {config.out} ({mapped.description}; {run.sample_rate} Hz)")
    if config.verify:
        err = verify(config.out, run, config, console)
        if err is not None and err > config.tolerance:
            console.print(f"verify failed: RTNeural's parser differs from the run by {err:.3g} > {config.tolerance:g}")
            raise SystemExit(1)
        if err is not None:
            console.print(f"verify ok: RTNeural's parser matches the run within {err:.3g} (<= {config.tolerance:g})")
    return config.out


@hookimpl
def fxforge_register_exporters(register):
    register(ExporterSpec(
        name="aidax",
        summary="an AIDA-X / RTNeural model JSON (one LSTM or GRU layer into Dense, exactly as trained)",
        Config=AidaxConfig,
        export=export,
        refuses=refuses,
        out_name="{name}.json",  # fxforge export all
    ))
