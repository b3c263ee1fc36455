"""Small signal helpers shared by the data modules."""
from __future__ import annotations

import numpy as np
import torch


def resample(signal: np.ndarray, orig: int, new: int) -> np.ndarray:
    import torchaudio.functional as AF

    return AF.resample(torch.from_numpy(signal), orig, new).numpy()
