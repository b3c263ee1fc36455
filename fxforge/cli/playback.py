"""Using a trained run: `fxforge check` (stress probes), `process` and `eval`."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from ..errors import FxforgeError
from .app import app, console, err_console


@app.command()
def check(run_dir: Path = typer.Argument(..., help="a run directory"),
          as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
          threads: int = typer.Option(1, "--threads", min=1, help="CPU threads")):
    """Stress a trained model: loud DI, sines, a burst, DC and noise; float32 against float64."""
    import torch

    # One thread, as for process: a recurrent model steps sample by sample, and idle OpenMP
    # workers spinning on a busy machine made this minutes instead of seconds.
    torch.set_num_threads(threads)
    from ..data.audio import load_pair
    from ..runs import load_run
    from ..nn.stress import stress, warning

    r = load_run(run_dir)
    try:
        pair = load_pair(r.config.data)
        di, input_peak, target_peak = pair.splits(r.config.data.split)["test"][0], float(abs(pair.x).max()), float(abs(pair.y).max())
    except FxforgeError as exc:  # the recordings moved: the probes that need none still run
        if "target_peak" not in r.summary:
            raise
        err_console.print(f"warning: no test DI probes ({exc})", markup=False, highlight=False, soft_wrap=True)
        di, input_peak, target_peak = None, r.summary["input_peak"], r.summary["target_peak"]
    result = stress(r.model, r.sample_rate, target_peak, di)
    if as_json:
        print(json.dumps(result, indent=2))
        return
    table = Table(title=f"stress check of {run_dir} (target peak {result['target_peak']:.2f})")
    for col in ("probe", "input peak", "output peak", "f32 vs f64", "decay to -80 dBFS", ""):
        table.add_column(col)
    for p in result["probes"]:
        decay = "never" if p["never_silent"] else "-" if p["decay_ms"] is None else f"{p['decay_ms']:.0f} ms"
        table.add_row(p["name"], f"{p['input_peak']:.2f}", f"{p['output_peak']:.2f}", f"{p['f32_vs_f64']:.1e}",
                      decay, "ok" if p["ok"] else "FAIL")
    console.print(table)
    console.print(f"stable (float32 = float64 within {result['chaos_threshold']:g}) up to input peak "
                  f"{result['stable_up_to']:.2f}; the training DI peaks at {input_peak:.2f}")
    problem = warning(result, input_peak)
    if problem:
        err_console.print(f"warning: {problem}", markup=False, highlight=False, soft_wrap=True)


@app.command()
def process(run_dir: Path = typer.Argument(..., help="a run directory"),
            input: Path = typer.Argument(..., help="audio to process"),
            output: Path = typer.Argument(..., help="where to write the result"),
            block: int = typer.Option(256, "--block", min=1, help="block size, as a plugin host would use"),
            channel: Optional[int] = typer.Option(None, "--channel", min=0, help="channel of a multi-channel input"),
            knob: List[str] = typer.Option([], "--knob", help="a knob setting, name=value in the knob's range "
                                           "(a run trained on data.captures; the rest at their defaults)"),
            threads: int = typer.Option(1, "--threads", min=1, help="CPU threads")):
    """Run a trained model over a file block by block, state carried, as a plugin does."""
    import torch

    torch.set_num_threads(threads)
    from ..data.audio import check_output, read_audio, resample, write_audio
    from ..runs import load_run
    from ..nn.stream import process as stream_process

    r = load_run(run_dir)
    knobs, setting = _knob_setting(r, run_dir, knob)
    if output.exists() and output.resolve() == input.resolve():
        raise FxforgeError(f"{output}: would overwrite the input")
    check_output(output)
    x, sr = read_audio(input, channel, "--channel")
    if sr != r.sample_rate:
        logging.getLogger("fxforge").warning("%s: resampling from %d Hz to the model's %d Hz", input, sr, r.sample_rate)
        x = resample(x, sr, r.sample_rate)
    y = stream_process(r.model, _with_knobs(torch.from_numpy(x), knobs, setting), block).numpy()
    write_audio(output, y, r.sample_rate)
    at = f", {_setting_label(setting)}" if knobs else ""
    console.print(f"wrote {output} ({len(y) / r.sample_rate:.2f} s, block {block}{at})")


def _knob_setting(r, run_dir: Path, options: list[str]):
    """The run's knobs and the setting ``--knob`` options ask for (defaults for the rest)."""
    from ..knobs import parse_knob_options, run_knobs

    knobs = run_knobs(r.summary)
    return knobs, parse_knob_options(options, knobs, str(run_dir))


def _with_knobs(x, knobs, setting):
    """The model's input: the audio, and for a conditioned run its knob channels (0..1)."""
    if not knobs:
        return x
    from ..train.conditioned import with_knobs
    from ..knobs import normalised

    return with_knobs(x, normalised(knobs, setting))


def _setting_label(setting: dict) -> str:
    from ..knobs import label

    return label(setting)


@app.command("eval")
def evaluate(run_dir: Path = typer.Argument(..., help="a run directory"),
             input: Optional[Path] = typer.Option(None, "--input", help="dry recording"),
             target: Optional[Path] = typer.Option(None, "--target", help="processed recording"),
             captures: Optional[Path] = typer.Option(None, "--captures", help="a captures manifest: ESR at every "
                                                     "setting it lists (a run trained on data.captures)"),
             knob: List[str] = typer.Option([], "--knob", help="with --input/--target: the setting they were "
                                            "recorded at, name=value (the rest at their defaults)"),
             channel: Optional[int] = typer.Option(None, "--channel", min=0, help="channel of multi-channel recordings"),
             as_json: bool = typer.Option(False, "--json")):
    """Score a trained run on another pair of recordings (ESR, plain and pre-emphasised), or on
    every setting of a captures manifest, the settings it held out from training marked."""
    import torch

    torch.set_num_threads(1)
    from ..data.audio import load_pair
    from ..config import DataConfig
    from ..nn.losses import metrics
    from ..runs import load_run
    from ..nn.stream import process as stream_process

    if captures is not None and (input is not None or target is not None or knob):
        raise FxforgeError("fxforge eval: give --captures, or --input and --target (with --knob), not both")
    if captures is None and input is not None and target is None:
        raise FxforgeError("fxforge eval: Missing option '--target'.")  # as a required option reads
    if captures is None and (input is None or target is None):
        raise FxforgeError("fxforge eval: give --input and --target, or --captures captures.toml")
    r = load_run(run_dir)
    knobs, setting = _knob_setting(r, run_dir, knob)

    def score(pair, values):
        if pair.sample_rate != r.sample_rate:
            raise FxforgeError(f"{pair_name}: sample rate {pair.sample_rate} Hz, but the model was trained at {r.sample_rate} Hz")
        y_hat = stream_process(r.model, _with_knobs(torch.from_numpy(pair.x), knobs, values), 4096)
        m = metrics(y_hat.reshape(1, -1, 1), torch.from_numpy(pair.y).reshape(1, -1, 1), r.config.train.loss.pre_emphasis)
        m["latency_samples"] = pair.latency
        return m

    if captures is None:
        pair_name = input
        pair = load_pair(DataConfig(input=input, target=target, channel=channel), channel_option="--channel")
        m = score(pair, setting)
        if knobs:
            m["knobs"] = setting
        if as_json:
            print(json.dumps(m))
        else:
            at = f"at {_setting_label(setting)}: " if knobs else ""
            console.print(f"{at}ESR {m['esr']:.5f}   pre-emphasised ESR {m['esr_pre']:.5f}   (latency corrected: {pair.latency} samples)")
        return
    from ..knobs import SAME, read_captures

    if not knobs:
        raise FxforgeError(f"--captures {captures}: {run_dir} was trained on one setting and has no knobs")
    cs = read_captures(DataConfig(captures=captures, channel=channel))
    names, theirs = [k.name for k in knobs], [k.name for k in cs.knobs]
    if theirs != names:
        raise FxforgeError(f"{captures}: knobs {', '.join(theirs)}, but {run_dir} has {', '.join(names)}")
    held = [row["knobs"] for row in r.summary.get("settings") or () if row.get("held_out")]
    trained = [row["knobs"] for row in r.summary.get("settings") or () if not row.get("held_out")]
    same = lambda a, b: all(abs(a[k] - b.get(k, float("nan"))) <= SAME * max(1.0, abs(a[k])) for k in a)  # noqa: E731
    rows = []
    for s in cs.settings:
        pair_name = s.file
        m = score(load_pair(cs.data_for(DataConfig(captures=captures, channel=channel), s), channel_option="--channel"),
                  s.knobs)
        role = ("held out" if any(same(s.knobs, h) for h in held) else
                "trained" if any(same(s.knobs, t) for t in trained) else "new")
        rows.append({"knobs": s.knobs, "file": str(s.file), "role": role, **m})
    if as_json:
        print(json.dumps(rows))
        return
    table = Table(title=f"{run_dir} on {captures} (whole files)")
    for col in ("setting", "ESR", "pre-emph. ESR", "latency", ""):
        table.add_column(col)
    for row in rows:
        mark = {"held out": "held out (never trained on)", "trained": "trained", "new": "not in the run"}
        table.add_row(_setting_label(row["knobs"]), f"{row['esr']:.5f}", f"{row['esr_pre']:.5f}",
                      str(row["latency_samples"]), mark[row["role"]])
    console.print(table)
