"""``[model.cabinet]``: the stage's keys (pure pydantic, so ``fxforge list`` and
config validation never wait for torch)."""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

MIN_TAPS, MAX_TAPS = 64, 2048


class CabinetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    taps: int = Field(2048, ge=MIN_TAPS, le=MAX_TAPS, description="FIR length in samples (2048: 43 ms at 48 kHz, "
                                                                  "a cabinet's low resonances need it)")
    ir: Optional[Path] = Field(None, description="initialise from a measured IR (WAV/FLAC, mono, the model's rate)")
    lr_scale: float = Field(1.0, gt=0, le=1, description="its learning rate relative to the model's (Adam moves "
                                                         "each tap by about the learning rate per step)")
    fit: bool = Field(False, description="without `ir`: start from the least-squares FIR from the model's initial "
                                         "output to the target on the training audio (else the identity)")
    update: Literal["least-squares", "adam"] = Field(
        "least-squares", description="how the taps train: re-solved by least squares from running statistics of "
                                     "the model's output and the target (the model trains by gradient against the "
                                     "optimal FIR), or by Adam jointly with the model")


def for_trained_weights(cfg: CabinetConfig) -> CabinetConfig:
    """A trained run's taps are in its weights: rebuild without the measured IR it started
    from, which may have moved or gone since."""
    return cfg.model_copy(update={"ir": None})
