"""The ``juce`` exporter: ``fxforge export juce RUN --out DIR [--build] [--verify]``."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fxforge import ExporterSpec, FxforgeError, hookimpl
from fxforge.exports import model_name

from .generate import CODE_RE, PluginKnob, Project, derive_names, plugin_knobs, safe_name, write_project
from .models import RTModel, Unsupported, map_model

FORMATS = {"vst3": "VST3", "lv2": "LV2", "standalone": "Standalone", "au": "AU", "aax": "AAX"}


class JuceConfig(BaseModel):
    """Options of ``fxforge export juce``."""

    model_config = ConfigDict(extra="forbid")

    out: Path = Field(description="directory of the generated CMake project")
    name: Optional[str] = Field(None, description="plugin name (default: the run's name); sanitised")
    manufacturer: str = Field("fxforge", description="company name shown by hosts; sanitised")
    plugin_code: Optional[str] = Field(None, description="4-char plugin code (default: derived from the name)")
    manufacturer_code: Optional[str] = Field(None, description="4-char manufacturer code (default: derived)")
    formats: list[str] = Field(default_factory=lambda: ["VST3", "LV2", "Standalone"],
                               description="comma-separated: VST3, LV2, Standalone, AU (macOS), AAX (macOS/Windows)")
    build: bool = Field(False, description="configure and build the project (Release, all cores)")
    verify: bool = Field(False, description="build, then compare the VST3 with PyTorch at several block sizes (a run with knobs: also at several knob positions and with a knob moving)")
    tolerance: float = Field(1e-4, gt=0, description="--verify: largest allowed max abs error")
    rtneural_dir: Optional[Path] = Field(None, description="local RTNeural checkout (default: $FXFORGE_RTNEURAL_DIR, else GitHub)")
    juce_dir: Optional[Path] = Field(None, description="local JUCE checkout (default: installed JUCE package, else GitHub)")
    jobs: Optional[int] = Field(None, gt=0, description="parallel build jobs (default: all cores)")
    portable: bool = Field(False, description="build without AVX2/FMA (runs on any x86-64 CPU, slower)")
    force: bool = Field(False, description="write into a non-empty --out that is not an fxforge project")

    @field_validator("formats", mode="before")
    @classmethod
    def _split_formats(cls, value):
        if isinstance(value, str):
            value = [v for v in value.replace(";", ",").split(",")]
        out = []
        for v in value:
            key = str(v).strip().lower()
            if not key:
                continue
            if key not in FORMATS:
                raise ValueError(f"unknown format {str(v).strip()!r} (choose from {', '.join(FORMATS.values())})")
            if FORMATS[key] not in out:
                out.append(FORMATS[key])
        if not out:
            raise ValueError("name at least one format")
        return out

    @field_validator("plugin_code", "manufacturer_code")
    @classmethod
    def _code(cls, value):
        if value is not None and (not CODE_RE.match(value) or value.lower() == value):
            raise ValueError("must be 4 letters/digits with at least one upper-case letter")
        return value

    @model_validator(mode="after")
    def _defaults(self):
        if self.rtneural_dir is None and os.environ.get("FXFORGE_RTNEURAL_DIR"):
            self.rtneural_dir = Path(os.environ["FXFORGE_RTNEURAL_DIR"])
        if self.verify and "VST3" not in self.formats:
            self.formats = [*self.formats, "VST3"]
        return self


def refuses(run) -> str | None:
    """One line saying why this run cannot become a plugin, or None."""
    try:
        map_model(model_name(run), run.model)
    except Unsupported as e:
        return " ".join(str(e).split())
    return None


def run_knobs(run, rt: RTModel) -> list[PluginKnob]:
    """The plugin parameters of a conditioned run: its knobs as the run recorded them
    (summary.json's ``knobs``, from its captures manifest: names, ranges, defaults), in the
    order of the model's knob inputs. A conditioned model without that record (a run directory
    made by hand) gets knob_1.. over 0..1 at the model's own defaults."""
    if not rt.knobs:
        return []
    summary = getattr(run, "summary", None) or {}
    listed = list((summary.get("knobs") or {}).get("knobs") or [])
    if not listed:
        defaults = getattr(run.model, "knob_defaults", None)
        if defaults is None:  # a model wrapped in stages keeps the buffer on the inner model
            from fxforge import unwrap

            defaults = getattr(unwrap(run.model)[0], "knob_defaults", None)
        values = [float(v) for v in defaults.reshape(-1).tolist()] if defaults is not None else [0.5] * rt.knobs
        listed = [{"name": f"knob_{j + 1}", "min": 0.0, "max": 1.0, "default": values[j]} for j in range(rt.knobs)]
    if len(listed) != rt.knobs:
        raise FxforgeError(f"the juce exporter: the model takes {rt.knobs} knob inputs, but the run records "
                           f"{len(listed)} knobs ({', '.join(str(k.get('name')) for k in listed)[:120]})")
    return plugin_knobs(listed)


def generate(run, config: JuceConfig) -> Project:
    """Write the CMake project for ``run`` into ``config.out`` (no build)."""
    try:
        rt = map_model(model_name(run), run.model)
    except Unsupported as e:
        reason = " ".join(str(e).split())
        raise FxforgeError(f"the juce exporter cannot export model '{model_name(run)[:60]}': {reason}") from None
    run_name = getattr(run.config, "name", None)
    names = derive_names(run_name, config.name, config.manufacturer, config.plugin_code, config.manufacturer_code)
    return write_project(
        config.out, names, rt,
        sample_rate=int(run.sample_rate), formats=config.formats, summary=getattr(run, "summary", None),
        run_label=safe_name(run_name, "run"), run_path=str(getattr(run, "path", "")),
        model_name=model_name(run), force=config.force, knobs=run_knobs(run, rt),
    )


def export(run, config: JuceConfig):
    from rich.console import Console

    console = Console(stderr=True)
    project = generate(run, config)
    n = project.names
    console.print(f"[bold]{n.product}[/bold] ({project.rt.architecture}, {project.sample_rate} Hz) "
                  f"-> {project.dir}  [dim]codes {n.manufacturer_code}/{n.plugin_code}[/dim]")
    if not (config.build or config.verify):
        console.print(f"next: cmake -S {project.dir} -B {project.dir / 'build'} -DCMAKE_BUILD_TYPE=Release "
                      f"&& cmake --build {project.dir / 'build'} -j   (or re-run with --build)")
        return project

    from .build import build_project, verify_plugin

    if config.verify:
        try:  # fail before a minutes-long build, not after it
            import pedalboard  # noqa: F401
        except ImportError:
            raise FxforgeError("--verify hosts the VST3 with pedalboard: pip install pedalboard") from None
    artifacts = build_project(project.dir, config, console=console)
    if config.verify:
        s = getattr(run, "summary", None) or {}
        model = run.model
        if project.knobs:  # the block sizes, probes and LV2 play the plugin's defaults
            from .knobcheck import at_knobs, default_value

            model = at_knobs(run.model, [default_value(k) for k in project.knobs])
        result = verify_plugin(artifacts["VST3"], model, project.sample_rate, console=console,
                               input_peak=s.get("input_peak"), tolerance=config.tolerance, lv2=artifacts.get("LV2"))
        knob_check = None
        if project.knobs:
            from .build import test_signal
            from .knobcheck import verify_knobs

            knob_check = verify_knobs(artifacts["VST3"], run.model, project.knobs, project.sample_rate,
                                      test_signal(project.sample_rate, 1.0, s.get("input_peak")),
                                      tolerance=config.tolerance, console=console)
        worst = max([*result.errors.values(), knob_check.worst() if knob_check else 0.0])
        if not result.passed(config.tolerance) or (knob_check and not knob_check.passed(config.tolerance)):
            why = (f"max abs error {worst:.3g} > {config.tolerance:g}" if worst > config.tolerance
                   else "non-finite output on a probe" if not all(p["finite"] for p in result.probes)
                   else f"the knobs in pedalboard: {'; '.join(knob_check.problems)}" if knob_check and knob_check.problems
                   else f"the LV2 in {result.lv2.get('host')}: {result.lv2.get('skipped') or result.lv2.get('error')}")
            console.print(f"[red]verify failed: {why}[/red]")
            raise SystemExit(1)
        at = f" (block sizes and {len(knob_check.positions)} knob positions, a knob moving)" if knob_check else ""
        console.print(f"[green]verify ok: max abs error {worst:.3g} <= {config.tolerance:g}{at}[/green]")
    return project


@hookimpl
def fxforge_register_exporters(register):
    register(ExporterSpec(
        name="juce",
        summary="real-time JUCE plugin (VST3/LV2/Standalone; AU/AAX on macOS/Windows) via RTNeural",
        Config=JuceConfig,
        export=export,
        refuses=refuses,
        out_name="{name}-juce",  # fxforge export all
    ))
