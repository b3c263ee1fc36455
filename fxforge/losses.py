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


def esr(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((y - y_hat) ** 2).sum() / ((y**2).sum() + EPS)


def dc_loss(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((y - y_hat).mean(dim=1) ** 2).mean() / ((y**2).mean() + EPS)


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

    def forward(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        total = y.new_zeros(())
        if c.esr_pre:
            total = total + c.esr_pre * esr(pre_emphasis(y_hat, c.pre_emphasis), pre_emphasis(y, c.pre_emphasis))
        if c.esr:
            total = total + c.esr * esr(y_hat, y)
        if c.dc:
            total = total + c.dc * dc_loss(y_hat, y)
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
