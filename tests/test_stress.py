"""The stress check finds what a player would hear: chaos (float32 and float64 part),
outputs far louder than the gear, and tails that never fall silent."""
import json

import pytest
import torch

from conftest import dry, run_cli, write_config, write_pair
from fxforge.nn.stress import CHAOS, stress


class Streaming(torch.nn.Module):
    """A minimal streaming model: y_t = f(x_t, s_{t-1}), state carried."""

    def __init__(self, step):
        super().__init__()
        self.step = step
        self.dummy = torch.nn.Parameter(torch.zeros(1))  # so .double() has something to cast

    def initial_state(self, batch, device):
        return torch.zeros(batch, 1, device=device)

    def forward(self, x, state):
        outs = []
        s = state.to(x.dtype)
        for t in range(x.shape[1]):
            y, s = self.step(x[:, t], s)
            outs.append(y)
        return torch.stack(outs, 1), s


def test_a_contractive_model_passes_every_probe():
    model = Streaming(lambda x, s: (0.5 * x + 0.3 * s, 0.5 * x + 0.3 * s))
    result = stress(model, 8000, target_peak=1.0, di=dry(1)[:8000])
    assert result["passed"] and result["stable_up_to"] == max(p["input_peak"] for p in result["probes"])
    burst = next(p for p in result["probes"] if p["name"].startswith("110 Hz burst"))
    assert burst["decay_ms"] < 10


def test_a_chaotic_model_is_found_and_its_stable_level_named():
    # A logistic map driven by the input: chaotic once the input pushes r past ~3.57.
    def step(x, s):
        r = 3.0 + 2.0 * x.abs().clamp(max=0.5)
        s = torch.where(s <= 0, torch.full_like(s, 0.3), s)
        s = r * s * (1 - s)
        return s, s

    result = stress(Streaming(step), 8000, target_peak=1.0)
    chaotic = [p for p in result["probes"] if p["f32_vs_f64"] > CHAOS]
    assert chaotic and not result["passed"]
    assert 0 < result["stable_up_to"] < 0.6  # quiet sines stay periodic, loud ones do not
    never_silent = next(p for p in result["probes"] if p["name"].startswith("DC 0.5"))
    assert never_silent["never_silent"] and never_silent["decay_ms"] is None and not never_silent["ok"]


@pytest.fixture(scope="module")
def stressed_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stressed")
    write_pair(folder, seconds=3)
    write_config(folder)
    out = run_cli("run", "run.toml", "--set", "train.stress=true", "--set", "train.epochs=1", cwd=folder)
    assert out.returncode == 0, out.stderr
    (run_dir,) = (folder / "runs" / "tiny").iterdir()
    return run_dir


def test_check_prints_the_probe_table_and_training_records_it(stressed_run):
    trained_run = stressed_run
    out = run_cli("check", trained_run, cwd=trained_run.parents[2])  # where it was trained: the recordings
    assert out.returncode == 0, out.stderr
    for probe in ("test DI +12 dB", "sine 40 Hz", "110 Hz burst, then silence", "DC 0.5", "full-scale noise"):
        assert probe in out.stdout
    assert "up to input peak" in out.stdout
    summary = json.loads((trained_run / "summary.json").read_text())
    assert set(summary["stress"]) >= {"stable_up_to", "passed", "failed"}
    table = json.loads((trained_run / "stress.json").read_text())
    assert len(table["probes"]) == 3 + 20 + 3


def test_check_without_the_recordings_still_runs_the_other_probes(stressed_run, tmp_path):
    out = run_cli("check", stressed_run, "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "warning: no test DI probes (di.wav: no such file)" in " ".join(out.stderr.split())
    assert len(json.loads(out.stdout)["probes"]) == 20 + 3
