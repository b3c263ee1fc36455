"""Losses and metrics on (batch, time, 1) tensors.

ESR = sum((y - y_hat)^2) / sum(y^2) (Wright et al. 2019), optionally after the
first-order pre-emphasis 1 - a z^-1 that weights the highs as the ear does.
"""
from __future__ import annotations

import torch
import torchaudio

EPS = 1e-8


def pre_emphasis(x: torch.Tensor, coeff: float = 0.95) -> torch.Tensor:
    """y[n] = x[n] - coeff * x[n-1] along time (dim 1)."""
    return torch.cat([x[:, :1], x[:, 1:] - coeff * x[:, :-1]], dim=1)


def esr(y_hat: torch.Tensor, y: torch.Tensor, energy: float | None = None) -> torch.Tensor:
    """sum((y - y_hat)^2) / sum(y^2); with ``energy`` (the mean of y^2 over a longer
    span), divided by that instead of this batch's own energy."""
    if energy is not None:
        return ((y - y_hat) ** 2).mean() / (energy + EPS)
    return ((y - y_hat) ** 2).sum() / ((y**2).sum() + EPS)


def dc_loss(y_hat: torch.Tensor, y: torch.Tensor, energy: float | None = None) -> torch.Tensor:
    return ((y - y_hat).mean(dim=1) ** 2).mean() / (((y**2).mean() if energy is None else energy) + EPS)


class MultiResolutionSTFT(torch.nn.Module):
    """Spectral convergence + log-magnitude distance over several FFT sizes."""

    def __init__(self, sizes=(2048, 1024, 512, 256)):
        super().__init__()
        self.specs = torch.nn.ModuleList(
            torchaudio.transforms.Spectrogram(n_fft=n, hop_length=n // 4, power=1.0, center=True) for n in sizes)

    def forward(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        a, b = y_hat.squeeze(-1), y.squeeze(-1)
        total = a.new_zeros(())
        for spec in self.specs:
            if a.shape[-1] < spec.n_fft // 2 + 1:
                continue
            sa, sb = spec(a), spec(b)
            total = total + torch.linalg.norm(sb - sa) / (torch.linalg.norm(sb) + EPS)
            total = total + (torch.log(sa + 1e-5) - torch.log(sb + 1e-5)).abs().mean()
        return total / len(self.specs)


class Loss(torch.nn.Module):
    """The weighted sum the config asks for (see LossConfig)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.stft = MultiResolutionSTFT() if cfg.stft > 0 else None
        self.energy: float | None = None  # mean y^2 of the training split (normalise = "split")
        self.energy_pre: float | None = None

    def normalise_by(self, y: torch.Tensor) -> None:
        """Divide the ESR and DC terms by the energy of ``y`` (the whole training target)
        instead of each batch's: a batch of quiet passages then weighs as little as it
        sounds. Per-batch ESR explodes on near-silent batches, and those steps throw the
        model off (docs/recipe_measurements.md)."""
        if self.cfg.normalise == "split":
            y = y.double().reshape(1, -1, 1)
            self.energy = float((y**2).mean())
            self.energy_pre = float((pre_emphasis(y, self.cfg.pre_emphasis) ** 2).mean())

    def quadratic_terms(self) -> list[tuple[float, float, float | None]]:
        """The ESR terms as (weight, pre-emphasis coefficient or 0, energy they divide by or
        None for the batch's own): what a least-squares stage (a FIR re-solved in after_step) minimises.
        Plain ESR when the loss has none."""
        c = self.cfg
        terms = [(c.esr_pre, c.pre_emphasis, self.energy_pre)] * bool(c.esr_pre)
        terms += [(c.esr, 0.0, self.energy)] * bool(c.esr)
        return terms or [(1.0, 0.0, self.energy)]

    def forward(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        total = y.new_zeros(())
        if c.esr_pre:
            total = total + c.esr_pre * esr(pre_emphasis(y_hat, c.pre_emphasis), pre_emphasis(y, c.pre_emphasis),
                                            self.energy_pre)
        if c.esr:
            total = total + c.esr * esr(y_hat, y, self.energy)
        if c.dc:
            total = total + c.dc * dc_loss(y_hat, y, self.energy)
        if self.stft is not None:
            total = total + c.stft * self.stft(y_hat, y)
        return total


@torch.no_grad()
def metrics(y_hat: torch.Tensor, y: torch.Tensor, coeff: float = 0.95) -> dict[str, float]:
    """The headline figures, always both: plain and pre-emphasised ESR."""
    y_hat, y = y_hat.double(), y.double()
    return {
        "esr": float(esr(y_hat, y)),
        "esr_pre": float(esr(pre_emphasis(y_hat, coeff), pre_emphasis(y, coeff))),
    }
