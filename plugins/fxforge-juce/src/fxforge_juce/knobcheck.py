"""``--verify`` of a conditioned run's plugin: its knobs as pedalboard sees them, the VST3 at
several knob positions, and a render with a knob moving, each against PyTorch.

The plugin smooths each knob with ``juce::SmoothedValue<float, Linear>`` over
``SMOOTHING_SECONDS`` (PluginProcessor.h's kSmoothingSeconds), on the normalised value
(value - min) / (max - min), and feeds the model the smoothed value sample by sample. The
reference reproduces that ramp exactly (:func:`smoothed`: JUCE's state machine in float32,
the target read at the start of each processBlock), and PyTorch plays the audio with those
per-sample knob channels. Static positions need no ramp: each render starts from a reset,
which sets the smoothers to the parameters' values.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .generate import PluginKnob

SMOOTHING_SECONDS = 0.02  # template/Source/PluginProcessor.h: kSmoothingSeconds
KNOB_BLOCK = 512          # pedalboard's buffer size for the knob renders
MOVE_CHUNKS = (8, 1, 8, 8, 2, 8)  # chunks of KNOB_BLOCK samples between knob changes (1 and 2: mid-ramp)


def _f32(v) -> np.float32:
    return np.float32(v)


def held_value(knob: PluginKnob, raw: float) -> np.float32:
    """The normalised value the plugin's model reads for a parameter at VST3 value ``raw``
    (0..1): JUCE's NormalisableRange::convertFrom0to1, then PluginProcessor's knobTarget, in float."""
    lo, hi = _f32(knob.min), _f32(knob.max)
    p = _f32(min(1.0, max(0.0, raw)))
    value = _f32(lo + _f32(hi - lo) * p)
    return _f32(_f32(value - lo) / _f32(hi - lo))


def default_value(knob: PluginKnob) -> np.float32:
    lo, hi = _f32(knob.min), _f32(knob.max)
    return _f32(_f32(_f32(knob.default) - lo) / _f32(hi - lo))


def smoothed(initial: float, changes: dict[int, float], n: int, sample_rate: float,
             seconds: float = SMOOTHING_SECONDS) -> np.ndarray:
    """Per sample, what juce::SmoothedValue<float, Linear> gives: reset (sample_rate, seconds),
    setCurrentAndTargetValue (initial), then setTargetValue (changes[i]) before sample i's
    getNextValue() (the plugin sets the target at every processBlock; an unchanged one is a
    no-op), all in float32 as JUCE computes it."""
    steps = int(math.floor(seconds * sample_rate))
    current = target = _f32(initial)
    step, countdown = _f32(0.0), 0
    out = np.empty(n, np.float32)
    for i in range(n):
        if i in changes:
            new = _f32(changes[i])
            if new != target:
                if steps <= 0:
                    current = target = new
                    countdown = 0
                else:
                    target, countdown = new, steps
                    step = _f32(_f32(target - current) / _f32(countdown))
        if countdown > 0:
            countdown -= 1
            current = _f32(current + step) if countdown > 0 else target
            out[i] = current
        else:
            out[i] = target
    return out


def at_knobs(model, values):
    """``model`` playing fixed normalised knob values: the audio-only face the rest of
    --verify (block sizes, probes, the LV2) uses, as the plugin at those settings."""
    import torch

    class AtKnobs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self.register_buffer("values", torch.tensor([float(v) for v in values], dtype=torch.float32))
            self.latency = int(getattr(model, "latency", 0))

        def initial_state(self, batch, device=None):
            return self.model.initial_state(batch, device)

        def forward(self, x, state):
            k = self.values.to(x.dtype).expand(x.shape[0], x.shape[1], self.values.numel())
            return self.model(torch.cat([x[..., :1], k], dim=-1), state)

    return AtKnobs().eval()


@dataclass
class KnobCheck:
    parameters: dict[str, dict]                          # knob id -> what pedalboard reports
    positions: list[tuple[str, float]] = field(default_factory=list)  # (label, max abs error)
    moving: tuple[str, float] | None = None
    problems: list[str] = field(default_factory=list)   # parameters pedalboard does not show as the manifest says

    def worst(self) -> float:
        errors = [e for _, e in self.positions] + ([self.moving[1]] if self.moving else [])
        return max(errors, default=0.0)

    def passed(self, tolerance: float) -> bool:
        return not self.problems and self.worst() <= tolerance


def find_parameter(plugin, knob: PluginKnob):
    """(pedalboard's name for it, its parameter) for the knob, or (None, None)."""
    for py, p in plugin.parameters.items():
        if getattr(p, "name", None) == knob.name:
            return py, p
    return None, None


def _reference(model, x: np.ndarray, knobs: np.ndarray) -> np.ndarray:
    import torch

    from fxforge import stream_process as process

    xt = torch.from_numpy(np.concatenate([x.reshape(-1, 1), knobs.reshape(len(x), -1)], axis=1).astype(np.float32))
    return process(model, xt).numpy()


def positions(knobs: list[PluginKnob]) -> list[tuple[str, dict[str, float]]]:
    """Every knob at its default; then each knob at its min, an interior point and its max
    (the others at their defaults)."""
    base = {k.id: k.default for k in knobs}
    out = [("all at default (" + ", ".join(f"{k.name} = {k.default:g}" for k in knobs) + ")", dict(base))]
    for k in knobs:
        interior = float(f"{k.min + 0.3 * (k.max - k.min):.6g}")
        for what, v in (("min", k.min), ("interior", interior), ("max", k.max)):
            out.append((f"{k.name} = {v:g} ({what})", {**base, k.id: v}))
    return out


def verify_knobs(vst3, model, knobs: list[PluginKnob], sample_rate: int, x: np.ndarray,
                 tolerance: float = 1e-4, console=None) -> KnobCheck:
    """The VST3 (pedalboard) at each of :func:`positions` and with the first knob moving
    (changed between chunks of MOVE_CHUNKS blocks, some mid-ramp), against PyTorch fed the
    same knob values (the moving one through :func:`smoothed`). ``x``: (channels, n) audio."""
    import pedalboard
    import torch
    from rich.console import Console
    from rich.table import Table

    console = console or Console(stderr=True)
    plugin = pedalboard.load_plugin(str(vst3))
    check = KnobCheck({})
    names = {}
    for k in knobs:
        py, p = find_parameter(plugin, k)
        if p is None:
            check.problems.append(f"no parameter named {k.name} (pedalboard lists: {', '.join(plugin.parameters)})")
            continue
        names[k.id] = py
        seen = {"python_name": py, "min": p.min_value, "max": p.max_value, "value": float(getattr(plugin, py))}
        check.parameters[k.id] = seen
        for key, want in (("min", k.min), ("max", k.max), ("value", k.default)):
            got = seen[key]
            if got is None or abs(float(got) - want) > 1e-5 * max(1.0, abs(want)):
                check.problems.append(f"{k.name}: pedalboard reads its {'default' if key == 'value' else key} "
                                      f"as {got}, the run's knob says {want:g}")
    if check.problems:
        return check

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for label, setting in positions(knobs):
            held = []
            for k in knobs:
                setattr(plugin, names[k.id], setting[k.id])
                held.append(held_value(k, plugin.parameters[names[k.id]].raw_value))
            y = plugin.process(x, float(sample_rate), buffer_size=KNOB_BLOCK, reset=True)
            err = 0.0
            for ch in range(x.shape[0]):
                ref = _reference(model, x[ch], np.tile(np.array(held, np.float32), (x.shape[1], 1)))
                err = max(err, float(np.max(np.abs(y[ch].astype(np.float64) - ref))))
            check.positions.append((label, err))

        # One knob moving while the audio plays: set between pedalboard calls (each a few blocks).
        k0 = knobs[0]
        for k in knobs:
            setattr(plugin, names[k.id], k.default)
        steady = [held_value(k, plugin.parameters[names[k.id]].raw_value) for k in knobs]
        route = [k0.max, k0.min, float(f"{k0.min + 0.7 * (k0.max - k0.min):.6g}"), k0.max, k0.min, k0.default]
        n = min(x.shape[1], KNOB_BLOCK * sum(MOVE_CHUNKS))
        xs, outs, changes, start = x[:, :n], [], {}, 0
        for i, blocks in enumerate(MOVE_CHUNKS):
            stop = min(n, start + blocks * KNOB_BLOCK)
            if stop <= start:
                break
            if i:
                setattr(plugin, names[k0.id], route[(i - 1) % len(route)])
                changes[start] = held_value(k0, plugin.parameters[names[k0.id]].raw_value)
            outs.append(plugin.process(xs[:, start:stop], float(sample_rate), buffer_size=KNOB_BLOCK, reset=(i == 0)))
            start = stop
        y = np.concatenate(outs, axis=1)
        trajectory = np.tile(np.array(steady, np.float32), (start, 1))
        trajectory[:, 0] = smoothed(steady[0], changes, start, sample_rate)
        err = 0.0
        for ch in range(x.shape[0]):
            ref = _reference(model, xs[ch, :start], trajectory)
            err = max(err, float(np.max(np.abs(y[ch].astype(np.float64) - ref))))
        moves = " -> ".join(f"{v:g}" for v in [k0.default] + route[: len(changes)])
        check.moving = (f"{k0.name} moving {moves} ({len(changes)} changes, {1000 * SMOOTHING_SECONDS:g} ms ramps)", err)
        for k in knobs:
            setattr(plugin, names[k.id], k.default)
    finally:
        torch.set_num_threads(threads)

    table = Table(title=f"plugin vs PyTorch at knob positions ({x.shape[1]} samples x {x.shape[0]} channels, "
                        f"{KNOB_BLOCK}-sample blocks)")
    table.add_column("knobs")
    table.add_column("max abs error", justify="right")
    for label, err in check.positions + ([check.moving] if check.moving else []):
        table.add_row(label, f"{err:.3g}")
    console.print(table)
    for k in knobs:
        seen = check.parameters[k.id]
        console.print(f"  knob {k.name}: pedalboard parameter '{seen['python_name']}', range "
                      f"{seen['min']:g}..{seen['max']:g}, default {seen['value']:g}")
    return check
