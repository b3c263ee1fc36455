"""The STFT LSTM end to end through the CLI, on seconds of generated audio."""
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import SR, dry, effect, run_cli, write_config, write_pair

STFT_TINY = """
name = "stft"
seed = 0

[data]
input = "di.wav"
target = "amp.wav"
segment = 4096

[model]
name = "stft-lstm"
n_fft = 128
hop = 32
hidden_size = 32

[optim]
lr = 0.01

[scheduler]
name = "cosine"

[train]
epochs = 6
batch_size = 8
tbptt = 1024
warmup = 512
val_clip_seconds = 0.5
"""


def esr(y_hat, y):
    return float(np.sum((y - y_hat) ** 2) / np.sum(y**2))


@pytest.fixture(scope="module")
def stft_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stft")
    write_pair(folder, seconds=5.0)
    write_config(folder, STFT_TINY)
    out = run_cli("run", "run.toml", cwd=folder)
    assert out.returncode == 0, out.stderr
    (run_dir,) = (folder / "runs" / "stft").iterdir()
    return run_dir


def test_run_trains_and_beats_doing_nothing(stft_run):
    s = json.loads((stft_run / "summary.json").read_text())
    assert s["status"] == "finished" and s["model"] == "stft-lstm" and s["epochs"] == 6
    x, _ = sf.read(stft_run.parents[2] / "di.wav", dtype="float32")
    y = effect(x)
    test = slice(int(len(x) * 0.85), None)
    assert s["test_esr"] < 0.5 * esr(x[test], y[test])
    text = (stft_run / "config.toml").read_text()
    assert 'provider = "frames"' in text and 'predict = "complex"' in text and 'window = "hann"' in text


@pytest.mark.parametrize("block", [1, 256])  # more sizes, in process: plugins/fxforge-stft-lstm/tests
def test_process_blocks_equal_whole_file_and_line_up(stft_run, tmp_path, block):
    x = dry(0.25, seed=3)
    sf.write(tmp_path / "in.wav", x, SR, subtype="FLOAT")
    out = run_cli("process", stft_run, tmp_path / "in.wav", tmp_path / "out.wav", "--block", block)
    assert out.returncode == 0, out.stderr
    y_block, sr = sf.read(tmp_path / "out.wav", dtype="float32")
    from fxforge import load_run

    r = load_run(stft_run)
    assert r.model.latency == 127
    with torch.no_grad():  # the whole file in one call, then shifted back by the latency by hand
        padded = torch.cat([torch.from_numpy(x), torch.zeros(r.model.latency)]).reshape(1, -1, 1)
        raw, _ = r.model(padded, r.model.initial_state(1))
    whole = raw.reshape(-1)[r.model.latency :].numpy()
    assert sr == SR and y_block.shape == x.shape
    assert np.max(np.abs(y_block - whole)) < 1e-5


def test_magnitude_mode_trains(tmp_path):
    write_pair(tmp_path, seconds=2.5)
    write_config(tmp_path, STFT_TINY)
    out = run_cli("run", "run.toml", "--set", 'model.predict="magnitude"', "--set", "train.epochs=1", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (run_dir,) = (tmp_path / "runs" / "stft").iterdir()
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["status"] == "finished" and np.isfinite(s["test_esr"])
    assert 'predict = "magnitude"' in (run_dir / "config.toml").read_text()


CONFIG_ERRORS = [
    (["model.hop=512"], "model: hop (512) must not exceed n_fft (128)"),
    (["model.predict=\"phase\""], "model.predict: Input should be 'magnitude' or 'complex'"),
    (["model.window=\"kaiser\""], "model: window must be one of"),
    (["model.shaper=-1"], "model.shaper: Input should be greater than or equal to 0"),
    (["data.segmnet=4096"], "data.segmnet: unknown key (did you mean 'segment'?)"),
]


@pytest.mark.parametrize("sets,message", CONFIG_ERRORS)
def test_config_errors_name_the_field(tmp_path, sets, message):
    from fxforge import FxforgeError, load_config

    path = write_config(tmp_path, STFT_TINY)
    with pytest.raises(FxforgeError) as err:
        load_config(path, sets)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_config_error_exits_2_with_one_line(tmp_path):
    write_config(tmp_path, STFT_TINY)
    out = run_cli("run", "run.toml", "--set", "model.hop=512", cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert lines == ["error: run.toml: model: hop (512) must not exceed n_fft (128)"], out.stderr
    assert not (tmp_path / "runs").exists()


def test_juce_exporter_refuses_stft_lstm(stft_run, tmp_path):
    from fxforge.registry import get_registry

    if "juce" not in get_registry().names("exporter"):
        pytest.skip("the juce exporter is not installed (fxforge list exporters)")
    out = run_cli("export", "juce", stft_run, "--out", tmp_path / "plugin")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "stft-lstm" in lines[0], out.stderr
    assert not (tmp_path / "plugin").exists()
