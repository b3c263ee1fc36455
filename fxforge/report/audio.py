"""The report's listening clips: an excerpt of the held-out test audio, levelled and
encoded small enough to embed (Opus in Ogg where libsndfile has it, else 16-bit FLAC)."""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import numpy as np
import soundfile as sf

EXCERPT_SECONDS = 15.0
PEAK = 10 ** (-1 / 20)          # clips are normalised to -1 dBFS peak
MAX_GAIN_DB = 40.0              # a near-silent signal is not blown up into noise
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)  # the only rates an Opus stream carries
# libsndfile's 0..1 scale, 0 the highest bitrate: this one sits near transparency for guitar
# while four clips of 15 s keep the page far under its size limit.
OPUS_COMPRESSION = 0.3


def _db(gain: float) -> float:
    return 20 * np.log10(max(gain, 1e-12))


def _rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(a, dtype=np.float64)))) if a.size else 0.0


def pick_excerpt(y: np.ndarray, sample_rate: int, seconds: float = EXCERPT_SECONDS) -> slice:
    """The loudest ``seconds`` of the target (in half-second steps): the playing, not a pause."""
    n = min(len(y), int(seconds * sample_rate))
    if n >= len(y):
        return slice(0, len(y))
    step = max(1, sample_rate // 2)
    blocks = np.add.reduceat(np.square(y, dtype=np.float64), np.arange(0, len(y), step))
    width = max(1, n // step)
    sums = np.convolve(blocks, np.ones(width), mode="valid")
    start = int(np.argmax(sums)) * step
    start = min(start, len(y) - n)
    return slice(start, start + n)


@dataclass
class Clip:
    key: str            # dry, target, model, difference
    label: str
    uri: str            # data: URI
    mime: str
    seconds: float
    gain_db: float      # what was applied to the recorded/predicted signal
    bytes: int


def _gain_to_peak(*signals: np.ndarray) -> float:
    peak = max((float(np.max(np.abs(s))) if s.size else 0.0) for s in signals)
    if peak <= 0:
        return 1.0
    return min(PEAK / peak, 10 ** (MAX_GAIN_DB / 20))


def encoding() -> tuple[str, str]:
    """(format, subtype) the clips use on this machine."""
    if "OPUS" in sf.available_subtypes("OGG"):
        return "OGG", "OPUS"
    return "FLAC", "PCM_16"


def encode(signal: np.ndarray, sample_rate: int) -> tuple[bytes, str]:
    fmt, subtype = encoding()
    signal = np.clip(np.asarray(signal, dtype=np.float32), -1.0, 1.0)
    buf = io.BytesIO()
    if subtype == "OPUS":
        if sample_rate not in OPUS_RATES:
            from math import gcd

            from scipy.signal import resample_poly

            g = gcd(48000, sample_rate)
            signal = resample_poly(signal, 48000 // g, sample_rate // g).astype(np.float32)
            sample_rate = 48000
        sf.write(buf, signal, sample_rate, format=fmt, subtype=subtype, compression_level=OPUS_COMPRESSION)
        return buf.getvalue(), "audio/ogg"
    sf.write(buf, signal, sample_rate, format=fmt, subtype=subtype)
    return buf.getvalue(), "audio/flac"


def make_clips(x: np.ndarray, y: np.ndarray, y_hat: np.ndarray, sample_rate: int, seconds: float = EXCERPT_SECONDS,
               keys=("dry", "target", "model", "difference")) -> tuple[list[Clip], dict]:
    """Dry, target, model and difference over one excerpt. Target and model share one gain, so
    a level error of the model stays audible; the difference is raised to the target's loudness."""
    seg = pick_excerpt(y, sample_rate, seconds)
    x, y, y_hat = (np.asarray(a[seg], dtype=np.float64) for a in (x, y, y_hat))
    diff = y - y_hat
    g_dry = _gain_to_peak(x)
    g_pair = _gain_to_peak(y, y_hat)
    rms_y, rms_d = _rms(y), _rms(diff)
    g_diff = min(rms_y / rms_d, 10 ** (MAX_GAIN_DB / 20)) * g_pair if rms_d > 0 else g_pair
    peak_d = float(np.max(np.abs(diff))) if diff.size else 0.0
    if peak_d * g_diff > PEAK:  # a spiky difference at the target's loudness would clip
        g_diff = PEAK / peak_d
    clips = []
    for key, label, sig, gain in (("dry", "Dry (the input DI)", x, g_dry), ("target", "Target (the gear)", y, g_pair),
                                  ("model", "Model", y_hat, g_pair),
                                  ("difference", "Difference (target − model)", diff, g_diff)):
        if key not in keys:
            continue
        data, mime = encode(sig * gain, sample_rate)
        uri = f"data:{mime};base64," + base64.b64encode(data).decode("ascii")
        clips.append(Clip(key, label, uri, mime, len(sig) / sample_rate, round(_db(gain), 1), len(data)))
    info = {"start_seconds": seg.start / sample_rate, "seconds": (seg.stop - seg.start) / sample_rate,
            "pair_gain_db": round(_db(g_pair), 1), "dry_gain_db": round(_db(g_dry), 1),
            "difference_gain_db": round(_db(g_diff), 1),
            "difference_vs_target_db": round(_db(rms_d / rms_y), 1) if rms_y > 0 and rms_d > 0 else None,
            "difference_above_pair_db": round(_db(g_diff / g_pair), 1)}
    return clips, info
