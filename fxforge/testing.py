"""A conformance kit for streaming models: what fxforge relies on from any model, checked.

A plugin's tests call :func:`check_model` (or the single checks) on a built model::

    from fxforge.testing import check_model

    def test_my_model_conforms():
        check_model(MyModel(hidden=8), sample_rate=48000)

Each check raises ``AssertionError`` with what broke and by how much:

* **streaming**: output run in blocks of any size, state carried, equals the whole file
  run at once (a plugin runs it in the host's blocks);
* **causality**: the output before sample t does not depend on the input from t on, and
  ``receptive_field`` (when given) bounds how far back an input still matters;
* **resume**: a state copied mid-stream continues exactly as the uninterrupted run
  (a checkpoint, a plugin's state);
* **batch independence**: rows of a batch do not see each other (validation runs clips
  side by side);
* **export parity**: ``reference(x) -> y`` (an exported file's loader, a C++ render)
  matches the model on guitar-like audio.
"""
from __future__ import annotations

import copy
from typing import Callable, Optional

import numpy as np
import torch

from .nn.stream import map_state, run_blocks

BLOCKS = (1, 7, 64, 511, 4096)
TOLERANCE = 1e-5


def _probe(seconds: float, sample_rate: int, seed: int = 0, peak: float = 0.5, knobs: int = 0) -> torch.Tensor:
    """Guitar-like test audio (fxforge's DI generator), (1, n, 1 + knobs) float32; each knob
    channel moves (a slow ramp within 0..1, as an automated knob), so a conditioned model's
    streaming and state are checked with its knobs changing."""
    from .data.demo import synth_di

    x = synth_di(seconds, seed)
    if sample_rate != 48000:
        from .data.dsp import resample

        x = resample(x.astype(np.float32), 48000, sample_rate)
    x = x * (peak / max(1e-9, float(np.max(np.abs(x)))))
    audio = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).reshape(1, -1, 1)
    if not knobs:
        return audio
    ramp = torch.linspace(0.0, 1.0, audio.shape[1]).reshape(1, -1, 1)
    starts = torch.tensor([(0.2 + 0.37 * (seed + k)) % 0.6 for k in range(knobs)]).reshape(1, 1, -1)
    return torch.cat([audio, starts + 0.4 * ramp], dim=-1)


def _whole(model, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        y, _ = model(x, model.initial_state(x.shape[0], x.device))
    return y


def _worst(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.max(torch.abs(a.double() - b.double())))


def check_streaming(model, sample_rate: int = 48000, blocks=BLOCKS, tolerance: float = TOLERANCE, knobs: int = 0) -> None:
    model = model.eval()
    x = _probe(0.2, sample_rate, knobs=knobs)
    whole = _whole(model, x)
    assert whole.shape == x[..., :1].shape, f"output shape {tuple(whole.shape)} for input {tuple(x.shape)}"
    for block in blocks:
        n = min(x.shape[1], 64 * block)  # sample-by-sample over a few blocks' worth is enough
        streamed, _ = run_blocks(model, x[:, :n], block)
        whole_n = whole[:, :n]
        err = _worst(streamed, whole_n)
        assert err <= tolerance, f"blocks of {block}: streamed output differs from the whole file by {err:.3g}"


def check_causality(model, sample_rate: int = 48000, receptive_field: Optional[int] = None,
                    tolerance: float = TOLERANCE, knobs: int = 0) -> None:
    model = model.eval()
    x = _probe(0.1, sample_rate, seed=1, knobs=knobs)
    n = x.shape[1]
    cut = n // 2
    changed = x.clone()
    changed[:, cut:] = -changed[:, cut:] + 0.1
    a, b = _whole(model, x), _whole(model, changed)
    # A model's latency delays what it says, never lets it hear ahead: the output before
    # the cut depends on the input before it, whatever the latency.
    err = _worst(a[:, :cut], b[:, :cut])
    assert err <= tolerance, f"the output before sample {cut} depends on later input (by {err:.3g})"
    if receptive_field is not None:
        early = x.clone()
        early[:, : cut - receptive_field] = 0.3
        c = _whole(model, early)
        err = _worst(a[:, cut:], c[:, cut:])
        assert err <= tolerance, (f"input more than receptive_field = {receptive_field} samples back still "
                                  f"changes the output (by {err:.3g})")


def check_resume(model, sample_rate: int = 48000, tolerance: float = 0.0, knobs: int = 0) -> None:
    """Exact: a copied state must continue bit for bit (tolerance 0 by default)."""
    model = model.eval()
    x = _probe(0.1, sample_rate, seed=2, knobs=knobs)
    half = x.shape[1] // 2
    with torch.no_grad():
        y1, state = model(x[:, :half], model.initial_state(1, x.device))
        saved = map_state(state, lambda t: t.detach().clone())
        ya, _ = model(x[:, half:], state)
        copy_model = copy.deepcopy(model)
        yb, _ = copy_model(x[:, half:], saved)
    err = _worst(ya, yb)
    assert err <= tolerance, f"a copied state (and model) does not continue as the original (by {err:.3g})"


def check_batch_independence(model, sample_rate: int = 48000, tolerance: float = TOLERANCE, knobs: int = 0) -> None:
    model = model.eval()
    a, b = _probe(0.05, sample_rate, seed=3, knobs=knobs), _probe(0.05, sample_rate, seed=4, knobs=knobs)
    both = _whole(model, torch.cat([a, b]))
    err = max(_worst(both[:1], _whole(model, a)), _worst(both[1:], _whole(model, b)))
    assert err <= tolerance, f"rows of a batch see each other (by {err:.3g})"


def check_export_parity(model, reference: Callable[[np.ndarray], np.ndarray], sample_rate: int = 48000,
                        tolerance: float = TOLERANCE, seconds: float = 0.5, knobs: int = 0) -> None:
    """``reference`` maps a 1-D float32 input (with knobs: (n, 1 + knobs), the knobs moving)
    to the exported model's 1-D output."""
    model = model.eval()
    x = _probe(seconds, sample_rate, seed=5, knobs=knobs)
    ours = _whole(model, x).reshape(-1).numpy()
    given = x[0].numpy().copy() if knobs else x.reshape(-1).numpy().copy()
    theirs = np.asarray(reference(given), dtype=np.float64).reshape(-1)
    assert theirs.shape == ours.shape, f"the export gives {theirs.shape[0]} samples for {ours.shape[0]}"
    err = float(np.max(np.abs(theirs - ours)))
    assert err <= tolerance, f"the export differs from the model by {err:.3g} (tolerance {tolerance:g})"


def check_model(model, sample_rate: int = 48000, receptive_field: Optional[int] = None,
                reference: Optional[Callable[[np.ndarray], np.ndarray]] = None,
                tolerance: float = TOLERANCE, knobs: int = 0) -> None:
    """Every check above; ``reference`` adds export parity. ``knobs``: a conditioned model's
    knob count; its input is then (batch, time, 1 + knobs), the knobs moving."""
    check_streaming(model, sample_rate, tolerance=tolerance, knobs=knobs)
    check_causality(model, sample_rate, receptive_field, tolerance, knobs=knobs)
    check_resume(model, sample_rate, knobs=knobs)
    check_batch_independence(model, sample_rate, tolerance, knobs=knobs)
    if reference is not None:
        check_export_parity(model, reference, sample_rate, tolerance, knobs=knobs)
