"""Bad recordings: one-line error naming the file and what is wrong, exit 2, no run directory."""
import numpy as np
import pytest
import soundfile as sf

from conftest import SR, dry, effect, run_cli


def write(folder, x, y, sr_x=SR, sr_y=SR, subtype="FLOAT"):
    sf.write(folder / "di.wav", x, sr_x, subtype=subtype)
    sf.write(folder / "amp.wav", y, sr_y, subtype=subtype)


def fails(workdir, expected):
    out = run_cli("run", "run.toml", cwd=workdir)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == [expected]
    assert not (workdir / "runs").exists()


def test_stereo_without_channel(workdir):
    x = dry(3)
    write(workdir, np.stack([x, x], 1), effect(x))
    fails(workdir, "error: di.wav: has 2 channels; choose one with data.channel = 0..1")


def test_non_finite_sample(workdir):
    x = dry(3)
    y = effect(x)
    y[1234] = np.nan
    write(workdir, x, y)
    fails(workdir, "error: amp.wav: sample 1234 is not finite (nan)")


def test_silent_target(workdir):
    x = dry(3)
    write(workdir, x, np.zeros_like(x))
    fails(workdir, "error: amp.wav: is silent (peak below -100 dBFS)")


def test_length_mismatch(workdir):
    x = dry(3)
    write(workdir, x, effect(x)[: SR * 2])
    fails(workdir, "error: amp.wav: length 2.000 s differs from the input's 3.000 s by more than "
                   "data.length_tolerance = 0.05 s")


def test_not_audio(workdir):
    (workdir / "amp.wav").write_text("this is not a wave file")
    fails(workdir, "error: amp.wav: not a readable audio file (Format not recognised.)")


def test_zero_length(workdir):
    sf.write(workdir / "amp.wav", np.zeros(0, np.float32), SR)
    fails(workdir, "error: amp.wav: holds no samples")


def test_swapped_recordings_with_interface_latency(workdir):
    x = dry(4)
    y = np.concatenate([np.zeros(100, np.float32), np.tanh(4 * x[:-100])])  # a clipper behind a 100-sample round trip
    write(workdir, y, x)
    fails(workdir, "error: amp.wav: it leads the input by 100 samples; are input and target swapped?")


def test_interface_latency_is_measured_and_corrected(workdir):
    x = dry(4)
    y = np.concatenate([np.zeros(100, np.float32), np.tanh(4 * x[:-100])])
    write(workdir, x, y)
    out = run_cli("run", "run.toml", "--set", "train.epochs=1", cwd=workdir)
    assert out.returncode == 0, out.stderr
    assert "latency corrected        │ 100 samples" in out.stdout


def test_sample_rate_mismatch_is_resampled_with_a_warning(workdir):
    x = dry(3)
    import torchaudio.functional as AF
    import torch

    y44 = AF.resample(torch.from_numpy(effect(x)), SR, 44100).numpy()
    write(workdir, x, y44, sr_y=44100)
    out = run_cli("run", "run.toml", "--set", "train.epochs=1", cwd=workdir)
    assert out.returncode == 0, out.stderr
    assert "resampling target from 44100 Hz to the input's 48000 Hz" in " ".join(out.stderr.split())


def test_sample_rate_mismatch_refused_when_resampling_is_off(workdir):
    x = dry(3)
    write(workdir, x, effect(x)[::2], sr_y=24000)
    out = run_cli("run", "run.toml", "--set", "data.resample=false", cwd=workdir)
    assert out.returncode == 2
    assert out.stderr.strip() == ("error: amp.wav: sample rate 24000 Hz differs from the input's 48000 Hz "
                                  "(set data.resample = true to resample it)")


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_every_common_sample_format_is_accepted(workdir, subtype):
    from fxforge.audio import read_audio

    x = dry(1)
    sf.write(workdir / "x.wav", x, SR, subtype=subtype)
    got, sr = read_audio(workdir / "x.wav")
    tolerance = {"PCM_U8": 1e-2, "PCM_16": 1e-4}.get(subtype, 1e-6)
    assert sr == SR and got.dtype == np.float32 and np.max(np.abs(got - x)) < tolerance
