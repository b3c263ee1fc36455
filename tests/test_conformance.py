"""fxforge.testing, the conformance kit a model plugin's tests call: every built-in model
passes it, and it catches the faults it names (a model that peeks ahead, one whose output
depends on the block size, rows of a batch that mix, a state that does not resume)."""
import pytest
import torch

from conftest import SR, TINY, write_config
from fxforge.testing import (check_batch_independence, check_causality, check_model, check_resume,
                             check_streaming)

BUILTINS = {
    "wave-lstm": 'name = "wave-lstm"\nhidden_size = 8',
    "wave-lstm, 2 layers, not residual": 'name = "wave-lstm"\nhidden_size = 8\nnum_layers = 2\nresidual = false',
    "gru": 'name = "gru"\nhidden_size = 8',
    "wave-lstm + cabinet": 'name = "wave-lstm"\nhidden_size = 8\n[model.cabinet]\ntaps = 64',
    "wavenet nano": 'name = "wavenet"\npreset = "nano"\nmax_dilation = 64',
    "wavenet, NAM's layout": 'name = "wavenet"\npreset = "nam-wavenet"\narrays = [4, 2]\nmax_dilation = 64',
    "stft-lstm": 'name = "stft-lstm"\nhidden_size = 8\nn_fft = 64',
}


@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_model_conforms(tmp_path, name):
    from fxforge.config import load_config
    from fxforge.runs import build_model

    write_config(tmp_path, TINY.replace('name = "wave-lstm"\nhidden_size = 8', BUILTINS[name]))
    torch.manual_seed(0)
    model = build_model(load_config(tmp_path / "run.toml"), SR)
    for p in model.parameters():  # trained-looking weights: the initial ones are near zero
        p.data.add_(0.2 * torch.randn_like(p))
    check_model(model, SR, receptive_field=getattr(model, "receptive_field", None))


class Stepper(torch.nn.Module):
    """y_t = x_t + 0.5 s, s_t = x_t: streams correctly; the flags break one property each."""

    def __init__(self, peek=False, per_block=False, mix=False, lossy_state=False):
        super().__init__()
        self.peek, self.per_block, self.mix, self.lossy_state = peek, per_block, mix, lossy_state

    def initial_state(self, batch, device=None):
        return torch.zeros(batch, 1, device=device)

    def forward(self, x, state):
        prev = torch.cat([state.unsqueeze(1), x[:, :-1]], dim=1)
        y = x + 0.5 * prev
        if self.peek:  # the next sample: not causal
            y = y + 0.1 * torch.cat([x[:, 1:], x[:, -1:]], dim=1)
        if self.per_block:  # a block-edge effect
            y = y + 0.01 * x.shape[1] / 4096
        if self.mix:
            y = y + 0.1 * x.mean(dim=0, keepdim=True)
        last = x[:, -1]
        return y, (last * 0.99 if self.lossy_state else last)


def test_a_conforming_toy_passes():
    check_model(Stepper(), SR, receptive_field=2)


@pytest.mark.parametrize("fault,check,message", [
    ("peek", check_causality, "depends on later input"),
    ("per_block", check_streaming, "streamed output differs"),
    ("mix", check_batch_independence, "rows of a batch see each other"),
    ("lossy_state", check_streaming, "streamed output differs"),
])
def test_each_fault_is_caught_and_named(fault, check, message):
    with pytest.raises(AssertionError, match=message):
        check(Stepper(**{fault: True}), SR)


def test_a_receptive_field_claimed_too_short_is_caught():
    with pytest.raises(AssertionError, match="receptive_field"):
        check_causality(Stepper(), SR, receptive_field=0)


def test_resume_is_exact():
    check_resume(Stepper(), SR)
