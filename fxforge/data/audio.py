"""Paired audio: read, check, resample, align and split.

Every error names the file and, where it can, the sample at fault.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from . import align, reamp
from .dsp import resample  # noqa: F401  (fxforge.data.audio.resample, as before)
from .pair import PairedAudio  # noqa: F401  (fxforge.data.audio.PairedAudio, as before)
from ..errors import FxforgeError

log = logging.getLogger("fxforge")

SILENCE_PEAK = 1e-5  # -100 dBFS: below this a recording holds nothing to learn from
# libsndfile's log line for a WAV/AIFF data chunk shorter than its header says.
_TRUNCATED = re.compile(r"^\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
# A target whose correlation peaks this far before the input leads it: swapped files.
MIN_LEAD = 16


def read_audio(path: Path, channel: int | None = None, option: str = "data.channel") -> tuple[np.ndarray, int]:
    """Read one mono channel as float32; any PCM/float WAV or FLAC soundfile reads.
    ``option`` is what chooses the channel where the caller comes from ('--channel')."""
    path = Path(path)
    if not path.exists():
        raise FxforgeError(f"{path}: no such file")
    if path.is_dir():
        raise FxforgeError(f"{path}: is a directory, expected an audio file")
    try:
        truncated = _TRUNCATED.search(sf.info(str(path)).extra_info)
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        reason = str(exc).split(":")[-1].strip() or "unreadable"
        raise FxforgeError(f"{path}: not a readable audio file ({reason})") from None
    if truncated:  # libsndfile reads what is there and says so only in its log
        declared, held = map(int, truncated.groups())
        raise FxforgeError(f"{path}: truncated: its header declares {declared} bytes of audio but the file holds "
                           f"{held} (a copy or a recording cut short?)")
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


def _latency_from_response(x, y, sr: int, max_lag: int, response, data, notes: list[str]) -> int:
    """The latency to correct, from the onset of the estimated response; the
    correlation only refuses pairs that do not line up in the window at all."""
    corr, norm = _cross_correlation(x, y, sr * 30)
    lag, peak = _best_lag(corr, norm, max_lag)
    # A clear match at any lag tells a pair that lines up beyond the window
    # from one that does not line up at all (the window's peak is then noise).
    far_lag, far_peak = _best_lag(corr, norm, corr.numel())
    if abs(far_lag) > max_lag and far_peak > max(peak, 0.2):
        raise FxforgeError(f"{data.target}: it lines up with the input {abs(far_lag)} samples "
                           f"({1000 * abs(far_lag) / sr:.1f} ms) {'late' if far_lag > 0 else 'early'}, beyond "
                           f"data.max_latency_ms = {data.max_latency_ms} ms; trim the recordings or raise it")
    if peak < 0.05 or lag >= max_lag:
        raise FxforgeError(f"{data.target}: no alignment with the input found within "
                           f"data.max_latency_ms = {data.max_latency_ms} ms (correlation {peak:.3f})")
    if lag <= -MIN_LEAD:
        raise FxforgeError(f"{data.target}: it leads the input by {-lag} samples; "
                           "are input and target swapped?")
    onset = response.onset
    lag, why = align.latency_to_correct(onset)
    if onset.sure:
        notes.append(f"measured latency {max(0, onset.lag)} samples ({1000 * max(0, onset.lag) / sr:.2f} ms): "
                     f"the onset of the response estimated from {response.view} (its peak is at {onset.peak_lag})")
    if why:
        notes.append(f"latency {'left at 0' if lag == 0 else f'corrected by {lag}'}: {why}")
        if not onset.sure:
            log.warning("%s: latency left at 0: %s; set data.latency if you know it", data.target, why)
    return lag


def load_pair(data, channel_option: str = "data.channel") -> PairedAudio:
    """Load ``data.input``/``data.target`` (or the built-in demo) as an aligned pair."""
    if getattr(data, "captures", None) is not None:
        # A captures run's audio-only uses (the report, fxforge check) play its primary setting.
        from ..knobs import read_captures

        captures = read_captures(data)
        return load_pair(captures.data_for(data, captures.primary), channel_option)
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
    layout = reamp.recognise(x, sr_x, data.input)
    alignment: dict = {"method": "fixed"}
    if layout is not None:
        notes.append(f"the input is {layout.name}")
        alignment["layout"] = layout.name
        esr = reamp.replicate_esr(y, layout)
        if esr is not None:
            alignment["replicate_esr"] = esr
            if esr > reamp.REPLICATE_ESR_WARNING:
                log.warning("%s: the two takes of the validation segment differ (ESR %.4f > %g): the rig changed "
                            "between them, or it is noisy or time-based", data.target, esr, reamp.REPLICATE_ESR_WARNING)
                notes.append(f"validation replicates differ: ESR {esr:.4f}")
    response = None
    if data.latency == "auto":
        from ..progress import phase

        phase("aligning")
        response = align.estimate_response(x, y, sr_x, max_lag)
        blips = reamp.blip_latency(y, layout) if layout is not None else None
        if blips is not None:
            lag = max(0, blips)
            alignment.update(method="blips", onset=blips)
            notes.append(f"measured latency {blips} samples ({1000 * blips / sr_x:.2f} ms) from the calibration blips")
        else:
            lag = _latency_from_response(x, y, sr_x, max_lag, response, data, notes)
            alignment.update(method="response", onset=response.onset.lag, sure=response.onset.sure)
        alignment.update(peak_lag=response.onset.peak_lag, polarity=response.onset.polarity,
                         peak_to_noise=round(min(response.onset.peak_to_noise, 1e9), 1))
    else:
        lag = int(data.latency)
    alignment["latency"] = lag
    if lag:
        notes.append(f"target trails input by {lag} samples ({1000 * lag / sr_x:.2f} ms); corrected")
        x, y = x[: n - lag], y[lag:]
    return PairedAudio(x, y, sr_x, lag, notes, alignment, response)


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
