"""The model contract: what the trainer, the streaming code and the exporters call on a model.

A model is a ``torch.nn.Module`` with a streaming face on (batch, time, 1) tensors::

    state = model.initial_state(batch, device)
    y, state = model(x, state)          # any block length; state carried to the next block

Subclass :class:`StreamingModel` to get every other hook as a documented no-op, and
override the ones your model needs. The trainer always calls them (it never probes a
model for optional attributes), so this class is the whole list. A plain ``nn.Module``
with the streaming face still trains: :func:`contract` gives it these defaults.

``fxforge.testing.check_model`` checks a model against the streaming face.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch


class StreamingModel(torch.nn.Module):
    #: Samples of algorithmic delay: the output at t answers the input at t - latency. The
    #: trainer scores against the target delayed as much; ``fxforge process`` flushes it.
    latency: int = 0
    #: state_dict keys a checkpoint may lack (buffers added in a later version), loaded when present.
    optional_state: tuple[str, ...] = ()

    def initial_state(self, batch: int, device=None):
        """The state before the first sample: a tensor or a (nested) tuple/list/dict of them,
        each with the batch along one dimension."""
        raise NotImplementedError

    def param_groups(self) -> list[dict]:
        """Optimizer groups, each ``{"params": [...], "lr_scale": s}``: a part that must learn
        slower than the rest (a long FIR) says so here."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "lr_scale": 1.0}]

    def fit_start(self, x: np.ndarray, y: np.ndarray, sample_rate: int) -> None:
        """Called once before training a fresh model (not on resume or from a checkpoint),
        with the training split: a stage can start from a closed-form fit."""

    def penalty(self) -> Optional[torch.Tensor]:
        """After each training forward: a term the model adds to its loss, or None."""
        return None

    def after_step(self, target: torch.Tensor, loss_terms: list[tuple[float, float, Optional[float]]]) -> None:
        """After each optimizer step, with the chunk's target and the loss's quadratic ESR
        terms (weight, pre-emphasis coefficient, energy): a least-squares stage re-solves here."""


class _Defaults:
    """StreamingModel's hooks for a plain nn.Module with the streaming face."""

    def __init__(self, module: torch.nn.Module):
        self.module = module
        self.latency = int(getattr(module, "latency", 0))
        self.optional_state = tuple(getattr(module, "optional_state", ()))

    def param_groups(self) -> list[dict]:
        return [{"params": [p for p in self.module.parameters() if p.requires_grad], "lr_scale": 1.0}]

    def fit_start(self, x, y, sample_rate) -> None:
        pass

    def penalty(self):
        return None

    def after_step(self, target, loss_terms) -> None:
        pass


def contract(model: torch.nn.Module):
    """The model's hooks: itself when it is a StreamingModel, else the defaults."""
    return model if isinstance(model, StreamingModel) else _Defaults(model)


class Stage(StreamingModel):
    """A module that wraps a model's output (``[model.<name>]`` in a run file, registered with
    ``fxforge_register_stages``): the model it wraps is ``inner``, and the trainer sees only
    the outermost module, so a stage's hooks are the ones that run. ``stage_name`` is the name
    its StageSpec is registered under: an exporter looks the stage's export facet up by it."""

    #: The registered StageSpec's name.
    stage_name: str = ""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner
        self.latency = contract(inner).latency


def unwrap(model: torch.nn.Module) -> tuple[torch.nn.Module, list[Stage]]:
    """The model inside any stages, and the stages from the innermost out."""
    stages: list[Stage] = []
    while isinstance(model, Stage):
        stages.append(model)
        model = model.inner
    return model, stages[::-1]
