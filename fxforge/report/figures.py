"""The report's figures, as base64 PNG (small, and any browser shows them with no script)."""
from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import signal  # noqa: E402

SIZE = (6.4, 3.2)
DPI = 90


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def learning_curves(rows: list[dict]) -> str | None:
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=SIZE)
    t = [r.get("time", 0) for r in rows]
    for key, label in (("train_loss", "train loss"), ("val_esr", "validation ESR"),
                       ("val_esr_pre", "validation ESR (pre-emph.)")):
        values = [r.get(key) for r in rows]
        if any(v is not None and v > 0 for v in values):
            ax.semilogy(t, [v if v is not None and v > 0 else np.nan for v in values], marker="." if len(t) < 30 else None,
                        label=label)
    best = [r for r in rows if r.get("best")]
    if best:
        ax.axvline(best[-1].get("time", 0), color="0.6", ls=":", lw=1, label="best validation")
    ax.set_xlabel("training time (s)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def waveform(x: np.ndarray, y: np.ndarray, y_hat: np.ndarray, sample_rate: int) -> str:
    """The loudest 30 ms of the target: where the distortion shows."""
    win = max(1, min(len(y), int(0.03 * sample_rate)))
    energy = np.convolve(np.square(y, dtype=np.float64), np.ones(win), mode="valid")
    start = int(np.argmax(energy)) if energy.size else 0
    seg = slice(start, start + win)
    fig, ax = plt.subplots(figsize=SIZE)
    ms = np.arange(len(y[seg])) / sample_rate * 1000
    ax.plot(ms, x[seg], color="0.75", lw=1, label="input")
    ax.plot(ms, y[seg], lw=1.4, label="target")
    ax.plot(ms, y_hat[seg], "--", lw=1.2, label="model")
    ax.set_xlabel(f"ms (from {start / sample_rate:.2f} s into the test split)")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.3)
    return _png(fig)


def spectra(y: np.ndarray, y_hat: np.ndarray, sample_rate: int) -> str:
    fig, ax = plt.subplots(figsize=SIZE)
    nper = min(4096, len(y))
    for sig, label in ((y, "target"), (y_hat, "model"), (y - y_hat, "difference")):
        f, pxx = signal.welch(sig, sample_rate, nperseg=nper)
        ax.semilogx(f[1:], 10 * np.log10(pxx[1:] + 1e-20), label=label, lw=1)
    ax.set_xlabel("Hz")
    ax.set_ylabel("dB")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def difference_spectrogram(y: np.ndarray, y_hat: np.ndarray, sample_rate: int) -> str:
    """dB relative to the target's loudest bin, so the colours read as 'how far below the sound'."""
    nper = min(1024, len(y))
    f, t, s_diff = signal.spectrogram(y - y_hat, sample_rate, nperseg=nper, noverlap=nper // 2)
    _, _, s_y = signal.spectrogram(y, sample_rate, nperseg=nper, noverlap=nper // 2)
    ref = float(s_y.max()) or 1.0
    db = 10 * np.log10(s_diff / ref + 1e-12)
    fig, ax = plt.subplots(figsize=SIZE)
    mesh = ax.pcolormesh(t, f[1:], db[1:], shading="auto", vmin=-100, vmax=0, cmap="magma", rasterized=True)
    ax.set_yscale("log")
    ax.set_ylim(max(20.0, f[1]), sample_rate / 2)
    ax.set_xlabel("s (the excerpt)")
    ax.set_ylabel("Hz")
    fig.colorbar(mesh, ax=ax, label="dB re the target's peak")
    return _png(fig)


def impulse_response(response, latency: int, sample_rate: int) -> str | None:
    if response is None:
        return None
    from .plots import plot_response

    buf = io.BytesIO()
    plot_response(response, latency, sample_rate, buf)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
