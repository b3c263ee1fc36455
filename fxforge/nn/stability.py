"""Training that keeps a stateful model stable beyond its capture's level.

A capture says nothing about what the gear does with a louder input than the
DI held, or with a sustained low note, so a recurrent model is free to become
chaotic there (its float32 and float64 outputs part: a plugin then plays noise),
to overshoot, or to ring on after the input stops. The real gear does none of
these. This module adds three target-free hinge penalties that say so, on a
separate stream of stress inputs run beside each training step:

* **contraction**: a twin of the stream's state, a small distance away, must not
  drift further off over a chunk. The twin is renormalised back to that distance
  after each chunk (Benettin's method for the largest Lyapunov exponent), so it
  lines up with the most unstable direction and the penalty sees real growth;
* **level**: the output must stay within ``LOUD_MARGIN`` times the target's peak;
* **silence**: a while after the input stops, the output must be below -80 dBFS.

The stream mixes the training input replayed at up to ``gain_db`` above its level,
sines at guitar-low frequencies up to full scale, and stretches of silence. Each
penalty is zero on a model that already behaves, so it costs no accuracy there.
It needs nothing from a model beyond ``initial_state`` and ``forward``.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .stream import detach_state, map_state

LOUD_MARGIN = 1.2        # output peaks are pushed under this times the target's (the check allows 1.5)
SILENT = 1e-4            # -80 dBFS
SETTLE_SECONDS = 0.1     # silence is demanded this long after the input stops (the check allows 0.2)
SEGMENT_SECONDS = (0.3, 1.0)
SILENCE_SECONDS = 0.3
SINE_HZ = (30.0, 400.0)
STREAM_SECONDS = 12.0
TWIN_DISTANCE = 1e-3     # the twin's distance from the state, per row


def _leaves(state) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    map_state(state, lambda t: out.append(t) or t)
    return out


def _rebuild(template, leaves):
    it = iter(leaves)
    return map_state(template, lambda t: next(it))


def batch_dims(model, device) -> list[int | None] | None:
    """Each state tensor's batch dimension, found by asking for states of 1 and 2 rows;
    None where a tensor has none (shared by every row). None overall when the state
    has no tensor carrying the batch: nothing then can drift."""
    one, two = _leaves(model.initial_state(1, device)), _leaves(model.initial_state(2, device))
    if len(one) != len(two):
        return None
    dims: list[int | None] = []
    for a, b in zip(one, two):
        diff = [d for d in range(a.dim()) if a.shape[d] != b.shape[d]] if a.dim() == b.dim() else []
        dims.append(diff[0] if len(diff) == 1 and b.shape[diff[0]] == 2 * a.shape[diff[0]] else None)
    return dims if any(d is not None and t.is_floating_point() for d, t in zip(dims, one)) else None


def stress_stream(x_train: np.ndarray, sample_rate: int, rows: int, gain_db: float, seed: int):
    """(rows, n) stress input and a mask of where silence is demanded."""
    rng = np.random.default_rng(seed)
    n = int(STREAM_SECONDS * sample_rate)
    x = np.zeros((rows, n), np.float32)
    quiet = np.zeros((rows, n), bool)
    src = np.asarray(x_train, np.float64).reshape(-1)
    settle, silence = int(SETTLE_SECONDS * sample_rate), int(SILENCE_SECONDS * sample_rate)
    for r in range(rows):
        pos = 0
        while pos < n:
            length = int(rng.uniform(*SEGMENT_SECONDS) * sample_rate)
            kind = rng.random()
            t = np.arange(length) / sample_rate
            fade = np.minimum(1, t / 0.01)
            if kind < 0.4 and src.size > length:  # the capture's own playing, louder
                start = rng.integers(0, src.size - length)
                seg = src[start : start + length] * 10 ** (rng.uniform(0, gain_db) / 20)
            elif kind < 0.85:  # a sustained low note at up to full scale, the hardest case for a recurrent model
                hz = math.exp(rng.uniform(math.log(SINE_HZ[0]), math.log(SINE_HZ[1])))
                seg = rng.uniform(0.05, 1.0) * fade * np.sin(2 * np.pi * hz * t)
            elif kind < 0.95:  # noise: a cable fault, a hum-free buzz
                seg = rng.uniform(0.1, 1.0) * rng.uniform(-1, 1, length)
            else:  # a DC step: a bad interface or a switch
                seg = rng.uniform(-0.5, 0.5) * fade
            seg = np.clip(seg, -1, 1)
            stop = min(n, pos + length)
            x[r, pos:stop] = seg[: stop - pos]
            pos = stop
            if rng.random() < 0.5:  # then silence; the output must have died away after SETTLE_SECONDS
                quiet[r, min(n, pos + settle) : min(n, pos + silence)] = True
                pos += silence
    return x, quiet


class StabilityPenalty:
    """The stress stream, its carried state and twin, and the penalty for one chunk."""

    def __init__(self, model, cfg, x_train: np.ndarray, target: torch.Tensor, sample_rate: int, seed: int, device):
        self.cfg, self.device = cfg, device
        self.dims = batch_dims(model, device)
        x, quiet = stress_stream(x_train, sample_rate, cfg.rows, cfg.gain_db, seed)
        self.x = torch.from_numpy(x).unsqueeze(-1).to(device)
        self.quiet = torch.from_numpy(quiet).unsqueeze(-1).to(device)
        self.peak = float(target.abs().max())
        self.power = float(target.double().pow(2).mean()) or 1.0
        self.pos = 0
        # Detached: a model may compute its initial state from its weights (NAM's layout fills
        # its history with the layers' response to silence); a graph kept here would be
        # backpropagated steps later, after the optimizer has changed those weights.
        self.state = detach_state(model.initial_state(cfg.rows, device))
        self.twin = self._perturb(self.state, torch.Generator().manual_seed(seed)) if self.dims else None

    def reset(self, model) -> None:
        """Back to the stream's start from the initial state (after a roll-back)."""
        self.pos = 0
        self.state = detach_state(model.initial_state(self.cfg.rows, self.device))
        self.twin = self._perturb(self.state, torch.Generator().manual_seed(0))

    @property
    def active(self) -> bool:
        return self.dims is not None

    # -- state arithmetic along each tensor's batch dimension ----------------
    def _row_norm(self, diffs: list[torch.Tensor]) -> torch.Tensor:
        total = 0.0
        for t, d in zip(diffs, self.dims):
            if d is not None and t.is_floating_point():
                total = total + t.movedim(d, 0).reshape(t.shape[d], -1).pow(2).sum(1)
        return torch.sqrt(total + 1e-30)

    def _scale_rows(self, t: torch.Tensor, d: int, scale: torch.Tensor) -> torch.Tensor:
        shape = [1] * t.dim()
        shape[d] = -1
        return t * scale.reshape(shape).to(t.dtype)

    def _perturb(self, state, gen: torch.Generator):
        leaves = _leaves(state)
        noise = [torch.randn(t.shape, generator=gen).to(t) if d is not None and t.is_floating_point()
                 else torch.zeros_like(t) for t, d in zip(leaves, self.dims)]
        norm = self._row_norm(noise)
        return _rebuild(state, [t + self._scale_rows(n, d, TWIN_DISTANCE / norm) if d is not None and t.is_floating_point()
                                else t for t, n, d in zip(leaves, noise, self.dims)])

    def _joined(self):
        return _rebuild(self.state, [torch.cat([a, b], d) if d is not None else a
                                     for a, b, d in zip(_leaves(self.state), _leaves(self.twin), self.dims)])

    def _split(self, state):
        rows = self.cfg.rows
        leaves = _leaves(state)
        main = [t.narrow(d, 0, rows) if d is not None else t for t, d in zip(leaves, self.dims)]
        twin = [t.narrow(d, rows, rows) if d is not None else t for t, d in zip(leaves, self.dims)]
        return main, twin

    # -- one chunk -------------------------------------------------------------
    def __call__(self, model, length: int) -> torch.Tensor:
        """The weighted penalty for the next ``length`` samples of the stream (with
        gradient); the stream's state and twin move on, detached."""
        n = self.x.shape[1]
        idx = (torch.arange(length, device=self.device) + self.pos) % n
        self.pos = (self.pos + length) % n
        x, quiet = self.x[:, idx], self.quiet[:, idx]
        # In eval mode: a stage that gathers training statistics in forward (a least-squares
        # stage's running normal equations) must not see the stress stream.
        was_training = model.training
        model.eval()
        try:
            y2, state2 = model(torch.cat([x, x]), self._joined())
        finally:
            model.train(was_training)
        rows = self.cfg.rows
        y = y2[:rows]
        main, twin = self._split(state2)
        diffs = [b - a for a, b in zip(main, twin)]
        separation = self._row_norm(diffs)
        growth = torch.relu(torch.log(separation / TWIN_DISTANCE)).mean()
        loud = torch.relu(y.abs() - LOUD_MARGIN * self.peak).pow(2).mean() / self.power
        # In decades above -80 dBFS: a DC of -60 dBFS (a bias the loss never saw) costs as much as
        # a ringing tail; by power, against the target's, it would cost next to nothing.
        ringing = (torch.relu(torch.log10(y.pow(2) / SILENT ** 2 + 1e-12)) * quiet).sum() / quiet.sum().clamp(min=1)
        c = self.cfg
        penalty = c.contraction * growth + c.level * loud + c.silence * ringing
        if not torch.isfinite(penalty.detach()):
            # The stream itself blew up (a model far out of range): start it again rather than
            # let a non-finite gradient through; the training loss alone decides divergence.
            self.reset(model)
            return y2.new_zeros(())
        with torch.no_grad():  # Benettin: the twin goes back to TWIN_DISTANCE, along the direction it drifted
            scale = TWIN_DISTANCE / separation
            self.state = _rebuild(self.state, [t.detach() for t in main])
            self.twin = _rebuild(self.state, [
                (a + self._scale_rows(dlt, d, scale)).detach() if d is not None and a.is_floating_point() else a.detach()
                for a, dlt, d in zip(main, diffs, self.dims)])
        self.last = {"growth": float(growth.detach()), "loud": float(loud.detach()), "ringing": float(ringing.detach())}
        return penalty

    # -- exact resume ----------------------------------------------------------
    def state_dict(self) -> dict:
        return {"pos": self.pos, "state": _leaves(self.state), "twin": _leaves(self.twin) if self.twin is not None else None}

    def load_state_dict(self, saved: dict) -> None:
        self.pos = int(saved["pos"])
        self.state = _rebuild(self.state, [t.to(self.device) for t in saved["state"]])
        if saved.get("twin") is not None:
            self.twin = _rebuild(self.state, [t.to(self.device) for t in saved["twin"]])
