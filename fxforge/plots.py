"""PNG plots of a finished run: learning curves, a waveform overlay, spectra."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import signal  # noqa: E402


def write_plots(run, trainer) -> None:
    run.plots.mkdir(exist_ok=True)
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
