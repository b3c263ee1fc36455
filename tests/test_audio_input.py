"""Recordings that are accepted: every common sample format, a measured interface latency, a
resampled target. (Those refused, each with its one-line error: tests/test_catalogue.py.)"""
import numpy as np
import pytest
import soundfile as sf

from conftest import SR, dry, effect, run_cli
from fxforge.data.align import SAFETY


def write(folder, x, y, sr_x=SR, sr_y=SR, subtype="FLOAT"):
    sf.write(folder / "di.wav", x, sr_x, subtype=subtype)
    sf.write(folder / "amp.wav", y, sr_y, subtype=subtype)


def test_interface_latency_is_measured_and_corrected(workdir):
    x = dry(4)
    y = np.concatenate([np.zeros(100, np.float32), np.tanh(4 * x[:-100])])
    write(workdir, x, y)
    out = run_cli("run", "run.toml", "--set", "train.epochs=1", cwd=workdir)
    assert out.returncode == 0, out.stderr
    # A clipper's linear response is noisy, so its onset is taken a little early, never late.
    corrected = int(out.stdout.split("latency corrected")[1].split("│")[1].split()[0])
    assert 100 - 2 * SAFETY <= corrected <= 100


def test_sample_rate_mismatch_is_resampled_with_a_warning(workdir):
    x = dry(3)
    import torchaudio.functional as AF
    import torch

    y44 = AF.resample(torch.from_numpy(effect(x)), SR, 44100).numpy()
    write(workdir, x, y44, sr_y=44100)
    out = run_cli("run", "run.toml", "--set", "train.epochs=1", cwd=workdir)
    assert out.returncode == 0, out.stderr
    assert "resampling target from 44100 Hz to the input's 48000 Hz" in " ".join(out.stderr.split())


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_every_common_sample_format_is_accepted(workdir, subtype):
    from fxforge.data.audio import read_audio

    x = dry(1)
    sf.write(workdir / "x.wav", x, SR, subtype=subtype)
    got, sr = read_audio(workdir / "x.wav")
    tolerance = {"PCM_U8": 1e-2, "PCM_16": 1e-4}.get(subtype, 1e-6)
    assert sr == SR and got.dtype == np.float32 and np.max(np.abs(got - x)) < tolerance
