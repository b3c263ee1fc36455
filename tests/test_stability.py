"""Training that keeps a model stable beyond its capture's level (fxforge.nn.stability): the
penalties find a drifting state, a DC in silence and a too-loud output, cost nothing on a
model that behaves, and a run with them resumes exactly."""

import pytest
import torch

from conftest import TINY, dry, interrupt_run, run_cli, write_config
from fxforge.config import StabilityConfig
from fxforge.nn.stability import StabilityPenalty, batch_dims

SR = 8000


class Leaky(torch.nn.Module):
    """y_t = a * s_t + bias, s_t = r * s_{t-1} + x_t: contractive for |r| < 1, drifting beyond."""

    def __init__(self, r: float, bias: float = 0.0):
        super().__init__()
        self.r = torch.nn.Parameter(torch.tensor(r))
        self.bias = torch.nn.Parameter(torch.tensor(bias))

    def initial_state(self, batch, device=None):
        return torch.zeros(batch, 1, device=device)

    def forward(self, x, state):
        outs, s = [], state
        for t in range(x.shape[1]):
            s = self.r * s + x[:, t]
            outs.append(0.1 * s + self.bias)
        return torch.stack(outs, 1), s


def penalty_for(model, **weights):
    cfg = StabilityConfig(rows=2, **weights)
    x = dry(2, seed=3)[: 2 * SR]
    return StabilityPenalty(model, cfg, x, torch.from_numpy(x), SR, seed=0, device=torch.device("cpu"))


def test_a_contractive_model_pays_nothing():
    model = Leaky(0.5)
    stab = penalty_for(model, contraction=1.0, level=1.0, silence=1.0)
    total = sum(float(stab(model, 256).detach()) for _ in range(20))
    assert total == 0.0


def test_a_drifting_state_is_penalised_and_the_penalty_pulls_it_back():
    model = Leaky(1.02)  # every perturbation grows 2% a sample
    stab = penalty_for(model, contraction=1.0, level=0.0, silence=0.0)
    first = stab(model, 64)
    assert float(first.detach()) > 0.5 and stab.last["growth"] > 0.5
    first.backward()
    assert model.r.grad > 0  # gradient descent lowers r, towards contraction


def test_a_dc_in_silence_is_trained_away():
    model = Leaky(0.5, bias=0.01)  # -40 dBFS in silence
    stab = penalty_for(model, contraction=0.0, level=0.0, silence=1.0)
    opt = torch.optim.Adam([model.bias], lr=5e-4)
    for step in range(120):
        if step == 80:  # Adam circles the optimum by about its learning rate: settle
            opt.param_groups[0]["lr"] = 5e-5
        opt.zero_grad()
        stab(model, 512).backward()
        opt.step()
    assert abs(float(model.bias)) < 1e-3


@pytest.mark.parametrize("model", [
    'name = "wave-lstm"\nhidden_size = 8', 'name = "gru"\nhidden_size = 8',
    'name = "wave-lstm"\nhidden_size = 8\n[model.cabinet]\ntaps = 64',
    'name = "wavenet"\npreset = "nano"\nmax_dilation = 64',
    'name = "wavenet"\npreset = "nam-wavenet"\narrays = [4, 2]\nmax_dilation = 64'],
    ids=["lstm", "gru", "lstm+cabinet", "wavenet", "nam-wavenet"])
def test_every_builtin_model_can_be_stress_trained(workdir, model):
    """Each built-in's state is found along its batch dimension, and penalty steps run,
    finite, with a gradient for the model, across optimizer steps (a model whose initial state
    is computed from its weights, as NAM's layout is, must not leave a graph in the stream)."""
    from fxforge.config import load_config
    from fxforge.runs import build_model

    write_config(workdir, TINY.replace('name = "wave-lstm"\nhidden_size = 8', model))
    cfg = load_config(workdir / "run.toml")
    net = build_model(cfg, SR)
    assert batch_dims(net, torch.device("cpu"))
    stab = penalty_for(net)
    assert stab.active
    # The stream starts partway into a run, after the weights have moved.
    opt = torch.optim.SGD(net.parameters(), lr=1e-3)
    for param in net.parameters():
        param.grad = torch.full_like(param, 1e-3)
    opt.step()
    for _ in range(2):
        opt.zero_grad()
        penalty = stab(net, 256)
        assert torch.isfinite(penalty)
        penalty.backward()  # a graph reaches the parameters (possibly all-zero where nothing misbehaves)
        opt.step()


def test_a_run_with_the_stress_stream_resumes_exactly(workdir):
    sets = ["--set", "train.epochs=4", "--set", "train.stability.enabled=true"]
    out = run_cli("run", "run.toml", *sets, "--runs-dir", "whole", cwd=workdir)
    assert out.returncode == 0, out.stderr
    (whole,) = (workdir / "whole" / "tiny").iterdir()
    a = torch.load(whole / "checkpoints" / "last.pt", weights_only=True)
    assert set(a["stability"]) == {"pos", "state", "twin"} and a["stability"]["pos"] > 0
    cut, _ = interrupt_run(workdir, *sets)
    out = run_cli("run", "--resume", cut.relative_to(workdir), cwd=workdir)
    assert out.returncode == 0, out.stderr
    b = torch.load(cut / "checkpoints" / "last.pt", weights_only=True)
    assert a["progress"]["step"] == b["progress"]["step"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
