"""Paired audio: read, check, resample, align and split.

Every error names the file and, where it can, the sample at fault.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from .errors import FxforgeError

log = logging.getLogger("fxforge")

SILENCE_PEAK = 1e-5  # -100 dBFS: below this a recording holds nothing to learn from
# A filter's own group delay also moves the correlation peak by a few samples;
# that delay belongs to the effect, so only larger lags (interface round trips)
# are corrected.
MIN_CORRECTED_LAG = 16


@dataclass
class PairedAudio:
    """Aligned mono input/target at one sample rate (float32 numpy arrays)."""

    x: np.ndarray
    y: np.ndarray
    sample_rate: int
    latency: int = 0
    notes: list[str] = field(default_factory=list)

    def splits(self, fractions, fraction: float = 1.0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Contiguous time splits, never shuffled across the boundaries.
        ``fraction`` keeps the first part of the training split only."""
        n = len(self.x)
        a = int(n * fractions[0])
        b = int(n * (fractions[0] + fractions[1]))
        train_end = max(1, int(a * fraction))
        return {
            "train": (self.x[:train_end], self.y[:train_end]),
            "validation": (self.x[a:b], self.y[a:b]),
            "test": (self.x[b:], self.y[b:]),
        }


def read_audio(path: Path, channel: int | None = None, option: str = "data.channel") -> tuple[np.ndarray, int]:
    """Read one mono channel as float32; any PCM/float WAV or FLAC soundfile reads.
    ``option`` is what chooses the channel where the caller comes from ('--channel')."""
    path = Path(path)
    if not path.exists():
        raise FxforgeError(f"{path}: no such file")
    if path.is_dir():
        raise FxforgeError(f"{path}: is a directory, expected an audio file")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        reason = str(exc).split(":")[-1].strip() or "unreadable"
        raise FxforgeError(f"{path}: not a readable audio file ({reason})") from None
    if data.shape[0] == 0:
        raise FxforgeError(f"{path}: holds no samples")
    channels = data.shape[1]
    eq = " " if option.startswith("-") else " = "  # '--channel 1', 'data.channel = 1'
    if channel is None:
        if channels > 1:
            raise FxforgeError(f"{path}: has {channels} channels; choose one with {option}{eq}0..{channels - 1}")
        channel = 0
    elif channel >= channels:
        raise FxforgeError(f"{path}: {option}{eq}{channel} but the file has {channels} channel(s)")
    mono = np.ascontiguousarray(data[:, channel])
    bad = np.flatnonzero(~np.isfinite(mono))
    if bad.size:
        raise FxforgeError(f"{path}: sample {bad[0]} is not finite ({mono[bad[0]]})")
    return mono, int(sr)


def check_not_silent(signal: np.ndarray, what: str) -> None:
    if signal.size == 0 or float(np.max(np.abs(signal))) < SILENCE_PEAK:
        raise FxforgeError(f"{what}: is silent (peak below -100 dBFS)")


def resample(signal: np.ndarray, orig: int, new: int) -> np.ndarray:
    import torchaudio.functional as AF

    return AF.resample(torch.from_numpy(signal), orig, new).numpy()


def _cross_correlation(x: np.ndarray, y: np.ndarray, seconds: int) -> tuple[torch.Tensor, float]:
    """The cross-correlation of the first ``seconds`` samples at every lag (index
    k: y trails x by k, k - size for negative lags) and its normalisation."""
    n = min(len(x), len(y), seconds)
    a = torch.from_numpy(x[:n]).double()
    b = torch.from_numpy(y[:n]).double()
    a = a - a.mean()
    b = b - b.mean()
    size = 1 << (2 * n - 1).bit_length()
    corr = torch.fft.irfft(torch.fft.rfft(b, size) * torch.conj(torch.fft.rfft(a, size)), size)
    return corr, float(torch.sqrt((a * a).sum() * (b * b).sum()))


def _best_lag(corr: torch.Tensor, norm: float, max_lag: int) -> tuple[int, float]:
    max_lag = min(max_lag, corr.numel() // 2 - 1)
    lags = torch.cat([corr[: max_lag + 1], corr[-max_lag:]]) if max_lag > 0 else corr[:1]
    lag_values = torch.cat([torch.arange(0, max_lag + 1), torch.arange(-max_lag, 0)]) if max_lag > 0 else torch.zeros(1, dtype=torch.long)
    i = int(torch.argmax(lags.abs()))
    return int(lag_values[i]), float(lags[i].abs()) / norm if norm > 0 else 0.0


def measure_latency(x: np.ndarray, y: np.ndarray, max_lag: int, seconds: int) -> tuple[int, float]:
    """Lag (samples) by which y trails x, from the peak of their normalised
    cross-correlation within +-max_lag, and the peak's height in [0, 1]."""
    return _best_lag(*_cross_correlation(x, y, seconds), max_lag)


def load_pair(data, channel_option: str = "data.channel") -> PairedAudio:
    """Load ``data.input``/``data.target`` (or the built-in demo) as an aligned pair."""
    if data.demo is not None:
        from .demo import demo_capture

        return demo_capture(data.demo, seconds=data.demo_seconds)
    x, sr_x = read_audio(data.input, data.channel, channel_option)
    y, sr_y = read_audio(data.target, data.channel, channel_option)
    notes = []
    if sr_x != sr_y:
        if not data.resample:
            raise FxforgeError(f"{data.target}: sample rate {sr_y} Hz differs from the input's {sr_x} Hz "
                               "(set data.resample = true to resample it)")
        log.warning("%s: resampling target from %d Hz to the input's %d Hz", data.target, sr_y, sr_x)
        notes.append(f"target resampled from {sr_y} Hz to {sr_x} Hz")
        y = resample(y, sr_y, sr_x)
    tolerance = int(round(data.length_tolerance * sr_x))
    if abs(len(x) - len(y)) > tolerance:
        raise FxforgeError(
            f"{data.target}: length {len(y) / sr_x:.3f} s differs from the input's {len(x) / sr_x:.3f} s "
            f"by more than data.length_tolerance = {data.length_tolerance} s")
    n = min(len(x), len(y))
    x, y = x[:n], y[:n]
    check_not_silent(x, str(data.input))
    check_not_silent(y, str(data.target))

    max_lag = max(1, int(sr_x * data.max_latency_ms / 1000))
    if data.latency == "auto":
        corr, norm = _cross_correlation(x, y, sr_x * 30)
        lag, peak = _best_lag(corr, norm, max_lag)
        # A clear match at any lag tells a pair that lines up beyond the window
        # from one that does not line up at all (the window's peak is then noise).
        far_lag, far_peak = _best_lag(corr, norm, corr.numel())
        if abs(far_lag) > max_lag and far_peak > max(peak, 0.2):
            raise FxforgeError(f"{data.target}: it lines up with the input {abs(far_lag)} samples "
                               f"({1000 * abs(far_lag) / sr_x:.1f} ms) {'late' if far_lag > 0 else 'early'}, beyond "
                               f"data.max_latency_ms = {data.max_latency_ms} ms; trim the recordings or raise it")
        if peak < 0.05 or lag >= max_lag:
            raise FxforgeError(f"{data.target}: no alignment with the input found within "
                               f"data.max_latency_ms = {data.max_latency_ms} ms (correlation {peak:.3f})")
        if lag <= -MIN_CORRECTED_LAG:
            raise FxforgeError(f"{data.target}: it leads the input by {-lag} samples; "
                               "are input and target swapped?")
        notes.append(f"measured latency {lag} samples ({1000 * lag / sr_x:.2f} ms)")
        if abs(lag) < MIN_CORRECTED_LAG:
            lag = 0
    else:
        lag = int(data.latency)
    if lag:
        notes.append(f"target trails input by {lag} samples ({1000 * lag / sr_x:.2f} ms); corrected")
        x, y = x[: n - lag], y[lag:]
    return PairedAudio(x, y, sr_x, lag, notes)


def check_output(path: Path) -> str:
    """Refuse an output path that cannot be written as audio, before any work;
    returns the soundfile format its extension names."""
    path = Path(path)
    if path.is_dir():
        raise FxforgeError(f"{path}: is a directory, expected an audio file name")
    if not path.parent.is_dir():
        raise FxforgeError(f"{path.parent}: no such directory")
    fmt = path.suffix[1:].upper()
    if fmt not in sf.available_formats():
        raise FxforgeError(f"{path}: cannot tell the audio format from the name (use .wav or .flac)")
    return fmt


def write_audio(path: Path, signal: np.ndarray, sample_rate: int) -> None:
    """32-bit float where the format has it (WAV), else 24-bit (FLAC) or its default."""
    fmt = check_output(path)
    subtype = next((s for s in ("FLOAT", "PCM_24") if sf.check_format(fmt, s)), None)
    sf.write(str(path), np.asarray(signal, dtype=np.float32), sample_rate, subtype=subtype)
