"""The knob-conditioned built-ins' input: (batch, time, 1 + K), channel 0 the audio, the rest the
knobs (0..1); given the audio channel alone a model plays its ``knob_defaults``."""
from __future__ import annotations


def split_knobs(x, knobs: int, defaults):
    """(audio (B, T, 1), knobs (B, T, K) or None for an unconditioned model) from the input."""
    audio = x[..., :1]
    if not knobs:
        return audio, None
    if x.shape[-1] == 1:
        return audio, defaults.to(x.dtype).expand(x.shape[0], x.shape[1], knobs)
    if x.shape[-1] != 1 + knobs:
        raise ValueError(f"expected 1 + {knobs} input channels (audio, knobs), got {x.shape[-1]}")
    return audio, x[..., 1:]
