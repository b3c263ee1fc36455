"""Block-wise inference with state carried between blocks, as a plugin runs."""
from __future__ import annotations

import torch

from .model import contract


def map_state(state, fn):
    """``fn`` applied to every tensor in a (nested tuple/list/dict) state."""
    if isinstance(state, torch.Tensor):
        return fn(state)
    if isinstance(state, (tuple, list)):
        return type(state)(map_state(s, fn) for s in state)
    if isinstance(state, dict):
        return {k: map_state(v, fn) for k, v in state.items()}
    return state


def detach_state(state):
    """Detach every tensor in a (nested) state so TBPTT cuts the graph there."""
    return map_state(state, torch.Tensor.detach)


@torch.no_grad()
def run_blocks(model, x: torch.Tensor, block: int | None = None, state=None):
    """Run (batch, time, 1) audio through ``model`` in blocks of ``block``
    samples (None: all at once); returns (output, final state)."""
    if state is None:
        state = model.initial_state(x.shape[0], x.device)
    if not block or block >= x.shape[1]:
        return model(x, state)
    outs = []
    for start in range(0, x.shape[1], block):
        y, state = model(x[:, start : start + block], state)
        outs.append(y)
    return torch.cat(outs, dim=1), state


@torch.no_grad()
def process(model, x: torch.Tensor, block: int | None = None) -> torch.Tensor:
    """1-D in (or (time, 1 + knobs) for a conditioned model), 1-D out; the output lines up with the input (the model's own
    latency, if it reports one, is compensated by flushing its tail)."""
    latency = contract(model).latency
    n = x.shape[0]
    x3 = x.reshape(1, n, -1).to(torch.float32)  # (n,) or (n, 1 + knobs): a conditioned model's channels
    if latency:
        x3 = torch.cat([x3, _pad(x3[0], latency, at_end=True).unsqueeze(0)], dim=1)
    y, _ = run_blocks(model, x3, block)
    return y.reshape(-1)[latency : latency + n]


def _pad(x: torch.Tensor, n: int, at_end: bool) -> torch.Tensor:
    """``n`` rows to put before or after ``x`` (time, channels): silence on the audio, the
    knobs held where they are (a knob channel padded with zeros would be a setting of its own)."""
    pad = x.new_zeros(n, x.shape[1])
    if x.shape[1] > 1 and x.shape[0]:
        pad[:, 1:] = x[-1 if at_end else 0, 1:]
    return pad


@torch.no_grad()
def predict_clips(model, x: torch.Tensor, clip: int, context: int) -> torch.Tensor:
    """Fast whole-signal inference for validation and test: the 1-D signal (or (time, 1 + knobs)) is
    cut into clips run as one batch, each preceded by ``context`` samples of
    the audio before it so its state has settled where scoring starts."""
    latency = contract(model).latency
    n = x.shape[0]
    x2 = x.reshape(n, -1)  # (n,) or (n, 1 + knobs): a conditioned model's channels
    clips = max(1, -(-n // clip))
    padded = torch.cat([_pad(x2, context, at_end=False), x2, _pad(x2, clips * clip - n + latency, at_end=True)])
    windows = padded.unfold(0, context + clip + latency, clip)[:clips].transpose(1, 2)
    y, _ = model(windows, model.initial_state(clips, x.device))
    return y[:, context + latency :, 0].reshape(-1)[:n]
