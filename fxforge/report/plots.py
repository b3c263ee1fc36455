"""PNG plots of a finished run: learning curves, a waveform overlay, spectra."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import signal  # noqa: E402


def write_plots(run, trainer) -> None:
    run.plots.mkdir(exist_ok=True)
    if trainer.audio.response is not None:
        plot_response(trainer.audio.response, trainer.audio.latency, trainer.sr, run.plots / "impulse_response.png")
    rows = run.read_metrics()
    if rows:
        fig, ax = plt.subplots(figsize=(7, 4))
        t = [r["time"] for r in rows]
        ax.semilogy(t, [r["train_loss"] for r in rows], label="train loss")
        ax.semilogy(t, [r["val_esr"] for r in rows], label="validation ESR")
        ax.semilogy(t, [r["val_esr_pre"] for r in rows], label="validation ESR (pre-emph.)")
        ax.set_xlabel("training time (s)")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(run.plots / "loss.png", dpi=100)
        plt.close(fig)
    x, y, y_hat = (a.numpy().reshape(-1) for a in trainer.predictions("test"))
    sr = trainer.sr
    # The loudest 30 ms of the test split shows the distortion best.
    win = int(0.03 * sr)
    energy = np.convolve(y**2, np.ones(win), mode="valid")
    start = int(np.argmax(energy)) if energy.size else 0
    seg = slice(start, start + win)
    fig, ax = plt.subplots(figsize=(7, 4))
    ms = np.arange(len(y[seg])) / sr * 1000
    ax.plot(ms, x[seg], color="0.7", label="input")
    ax.plot(ms, y[seg], label="target")
    ax.plot(ms, y_hat[seg], "--", label="prediction")
    ax.set_xlabel("ms")
    ax.legend()
    fig.tight_layout()
    fig.savefig(run.plots / "waveform.png", dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 4))
    for sig, label in ((y, "target"), (y_hat, "prediction"), (y - y_hat, "error")):
        f, pxx = signal.welch(sig, sr, nperseg=4096)
        ax.semilogx(f[1:], 10 * np.log10(pxx[1:] + 1e-20), label=label)
    ax.set_xlabel("Hz")
    ax.set_ylabel("dB")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(run.plots / "spectrum.png", dpi=100)
    plt.close(fig)


def plot_response(response, latency: int, sample_rate: int, path) -> None:
    """The estimated linear response around its onset, with the onset and the latency chosen."""
    onset = response.onset
    lags = response.lags
    keep = (lags >= min(onset.lag, 0) - 64) & (lags <= max(onset.peak_lag, onset.lag) + int(0.01 * sample_rate))
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(lags[keep], response.h[keep], lw=0.8, label="estimated response (least squares)")
    ax.axvline(onset.lag, color="C1", ls="--", label=f"onset: lag {onset.lag}")
    ax.axvline(latency, color="C2", ls=":", label=f"latency corrected: {latency}")
    ax.axvline(onset.peak_lag, color="0.6", ls=":", label=f"peak: lag {onset.peak_lag}")
    ax.set_xlabel("lag (samples)")
    ax.set_title(f"peak {onset.peak_to_noise:.0f}x the noise floor" + ("" if onset.sure else f" - {onset.reason}"))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
