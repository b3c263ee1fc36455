"""Making recordings: `fxforge demo-capture`, `capture-signal` and `capture` (a knob plan)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..errors import FxforgeError
from .app import _verbose, app, console, err_console


@app.command("demo-capture")
def demo_capture_cmd(out_dir: Path = typer.Argument(..., help="folder for input.wav and target.wav"),
                     kind: str = typer.Option("amp", "--kind", help="amp, cab, lead or lead-cab"),
                     seconds: float = typer.Option(180.0, "--seconds", min=1.0)):
    """Write the built-in demo capture as WAV files (to train other tools on it)."""
    from ..data.audio import write_audio
    from ..config import DEMO_KINDS
    from ..data.demo import demo_capture

    if kind not in DEMO_KINDS:
        raise FxforgeError(f"--kind must be one of {', '.join(map(repr, DEMO_KINDS))} (got {kind!r})")
    out_dir.mkdir(parents=True, exist_ok=True)
    pair = demo_capture(kind, seconds)
    for name, sig in (("input.wav", pair.x), ("target.wav", pair.y)):
        if (out_dir / name).exists():
            raise FxforgeError(f"{out_dir / name}: already exists; not overwriting")
    write_audio(out_dir / "input.wav", pair.x, pair.sample_rate)
    write_audio(out_dir / "target.wav", pair.y, pair.sample_rate)
    console.print(f"wrote {out_dir}/input.wav and target.wav ({seconds:g} s at {pair.sample_rate} Hz)")


@app.command("capture-signal")
def capture_signal_cmd(output: Path = typer.Argument(..., help="the reamp file to write (.wav or .flac)"),
                       seconds: float = typer.Option(180.0, "--seconds", help="length; 40 s at least"),
                       sample_rate: int = typer.Option(48_000, "--sample-rate", min=8000, help="your interface's rate")):
    """Write the reamp signal: play it through your gear, record the output, train on the pair.

    It holds calibration blips (the latency is measured from them exactly), sweeps, noise,
    guitar-like playing over the whole level range, and a validation segment played twice
    (the two takes show whether the rig stayed the same)."""
    from ..data.audio import check_output, write_audio
    from ..data.reamp import MIN_SECONDS, capture_signal

    check_output(output)
    if seconds < MIN_SECONDS:
        raise FxforgeError(f"--seconds {seconds:g}: a capture signal needs at least {MIN_SECONDS:g} s")
    if output.exists():
        raise FxforgeError(f"{output}: already exists; not overwriting")
    write_audio(output, capture_signal(seconds, sample_rate), sample_rate)
    console.print(f"wrote {output} ({seconds:g} s at {sample_rate} Hz): play it through your gear, record the "
                  f"output at the same rate, then: fxforge train {output} recorded.wav")


@app.command("capture")
def capture_cmd(out_dir: Path = typer.Argument(..., help="folder for dry.wav, a WAV per setting and captures.toml"),
                knob: List[str] = typer.Option([], "--knob", help="drive=0:1:5 (min:max:count) or drive=0.1,0.5,0.9; repeat per knob"),
                range_: List[str] = typer.Option([], "--range", help="drive=0:1: the knob's range where --knob gives a list"),
                plan: str = typer.Option("grid", "--plan", help="grid (every combination) or lhs:N (N Latin-hypercube points)"),
                seed: int = typer.Option(0, "--seed", help="the Latin hypercube's seed"),
                vst3: Optional[Path] = typer.Option(None, "--vst3", help="a VST3 plugin; knobs are its parameters, in its units"),
                chain: Optional[Path] = typer.Option(None, "--chain", help="a chain of pedalboard effects (TOML)"),
                render: Optional[str] = typer.Option(None, "--render", help="a command with {input}, {output} and {KNOB} placeholders"),
                signal: Optional[Path] = typer.Option(None, "--signal", help="an existing capture signal (else generated)"),
                channel: Optional[int] = typer.Option(None, "--channel", min=0, help="the --signal file's channel"),
                seconds: float = typer.Option(180.0, "--seconds", help="the generated signal's length; 40 s at least"),
                sample_rate: int = typer.Option(48_000, "--sample-rate", min=8000, help="the generated signal's rate"),
                force: bool = typer.Option(False, "--force", help="replace a capture already in OUT_DIR")):
    """Render the capture signal through an effect at every knob setting of a plan: the pairs
    and a captures.toml to train one conditioned model on (data.captures)."""
    from ..data.capture import CaptureDisplay, capture, load_signal, make_source, parse_knobs, plan_points, prepare

    knobs = parse_knobs(knob, range_)
    points = plan_points(knobs, plan, seed)
    source = make_source(vst3, chain, render)
    prepare(out_dir, knobs, points, source, force)  # refusals before the signal is made
    x, sr = load_signal(signal, seconds, sample_rate, channel)
    warn = lambda m: err_console.print(f"warning: {m}", markup=False, highlight=False, soft_wrap=True)  # noqa: E731
    with CaptureDisplay(console, enabled=_verbose["level"] >= 0) as display:
        manifest = capture(out_dir, x, sr, knobs, points, source, force=force, warn=warn, progress=display)
    if _verbose["level"] >= 0:
        console.print(f"wrote {out_dir / 'captures.toml'}: {len(manifest.targets)} settings of "
                      f"{', '.join(manifest.names)} from {source.describe}, {len(x) / sr:g} s at {sr} Hz; train on it "
                      f"with [data] captures = \"{out_dir / 'captures.toml'}\"", markup=False, highlight=False, soft_wrap=True)
