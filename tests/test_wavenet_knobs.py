"""A knob-conditioned WaveNet (#19): trained through the CLI on a captures manifest, it
renders each setting with `process --knob` as the model does in PyTorch, streams any
block size exactly, exports to JUCE with its knobs (tests/test_juce_knobs.py runs the
generated model against PyTorch), and NAM's format, which cannot hold it, refuses in one line."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import SR, run_cli, write_config
from test_knobs import KNOBS, train_knob_run, write_captures

WAVENET = KNOBS.replace('name = "wave-lstm"\nhidden_size = 8\nconditioning = "film"',
                        'name = "wavenet"\npreset = "nano"\nmax_dilation = 64')


@pytest.fixture(scope="module")
def wavenet_run(tmp_path_factory):
    assert WAVENET != KNOBS
    folder = tmp_path_factory.mktemp("wavenet-knobs")
    run_dir, _ = train_knob_run(folder, WAVENET)
    return folder, run_dir


def test_a_conditioned_wavenet_trains_and_renders_each_setting_as_in_pytorch(wavenet_run):
    from fxforge import load_run

    folder, run_dir = wavenet_run
    s = json.loads((run_dir / "summary.json").read_text())
    assert sorted(r["knobs"]["drive"] for r in s["settings"]) == [0.2, 0.5, 0.8]
    assert all(np.isfinite(r["esr"]) for r in s["settings"])
    x = sf.read(folder / "dry.wav", dtype="float32")[0][: SR // 2]
    sf.write(folder / "clip.wav", x, SR, subtype="FLOAT")
    model = load_run(run_dir).model
    outs = {}
    for drive in (0.2, 0.9):
        out = run_cli("process", run_dir, "clip.wav", f"out_{drive}.wav", "--knob", f"drive={drive}", "--block", "100",
                      cwd=folder)
        assert out.returncode == 0, out.stderr
        outs[drive] = sf.read(folder / f"out_{drive}.wav", dtype="float32")[0]
        inp = torch.stack([torch.from_numpy(x), torch.full((len(x),), drive)], dim=-1).unsqueeze(0)
        with torch.no_grad():
            want = model(inp, model.initial_state(1))[0].reshape(-1).numpy()
        assert np.max(np.abs(outs[drive] - want)) < 1e-5
    assert np.max(np.abs(outs[0.2] - outs[0.9])) > 1e-4  # the knob does something


def test_nam_refuses_a_conditioned_wavenet_in_one_line_and_juce_gives_it_its_knobs(wavenet_run, tmp_path):
    folder, run_dir = wavenet_run
    out = run_cli("export", "nam", run_dir, "--out", tmp_path / "nam", cwd=folder)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert out.stderr.count("\n") == 1 and "not NAM's" in out.stderr, out.stderr
    pytest.importorskip("fxforge_juce", reason="pip install -e plugins/fxforge-juce")
    out = run_cli("export", "juce", run_dir, "--out", tmp_path / "juce", cwd=folder)
    assert out.returncode == 0, out.stderr
    meta = json.loads((tmp_path / "juce" / "fxforge_export.json").read_text())
    assert [k["name"] for k in meta["knobs"]] == ["drive"]
    assert "kKnobs = 1" in (tmp_path / "juce" / "Source" / "FxforgeModel.h").read_text()


def test_nam_layout_with_knobs_is_refused_before_training(tmp_path):
    write_captures(tmp_path)
    write_config(tmp_path, WAVENET.replace('preset = "nano"\nmax_dilation = 64', 'preset = "nam-wavenet"'))
    out = run_cli("run", "run.toml", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "knob conditioning needs layout fxforge" in out.stderr
