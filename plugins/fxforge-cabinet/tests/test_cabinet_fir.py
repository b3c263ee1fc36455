"""The cabinet stage's internals: the DC blocker and the FIR stream exactly in any block size.
(End-to-end runs with [model.cabinet] are in the core's tests/test_models_cli.py.)"""
import numpy as np
import torch

from fxforge import synth_di
from fxforge import stream_process as process
from fxforge_cabinet import CabinetConfig, CabinetFIR, dc_block, dc_pole

SR = 48_000


def dry(seconds: float, seed: int = 0) -> np.ndarray:
    return synth_di(seconds, seed)


def test_dc_blocker_streams_exactly():
    """The cabinet's DC blocker, computed as a convolution, equals its recursion block by block."""
    pole = dc_pole(SR)
    h = torch.from_numpy(dry(0.3, seed=2)).view(1, -1, 1) + 0.3  # with DC, which it must remove
    ref, prev_in, prev_out = np.zeros(h.shape[1]), 0.0, 0.0
    for t, v in enumerate(h[0, :, 0].double().tolist()):
        prev_out = pole * prev_out + v - prev_in
        prev_in = v
        ref[t] = prev_out
    state, outs = torch.zeros(1, 2), []
    for a, b in ((0, 1), (1, 18), (18, 5000), (5000, h.shape[1])):
        out, state = dc_block(h[:, a:b], state, pole)
        outs.append(out)
    got = torch.cat(outs, 1)[0, :, 0].double().numpy()
    assert np.abs(got - ref).max() < 1e-6
    assert abs(got[-2000:].mean()) < 0.01  # the 0.3 offset is gone


def test_cabinet_streams_exactly_with_a_long_ir():
    """Training uses FFT convolution for long chunks, streaming direct convolution for tiny
    blocks; both carry the output tail, so any block size gives the whole-file output."""

    class Tanh(torch.nn.Module):
        def initial_state(self, batch, device=None):
            return None

        def forward(self, x, state):
            return torch.tanh(3 * x), state

    torch.manual_seed(0)
    model = CabinetFIR(Tanh(), CabinetConfig(taps=2048, fit=False), SR)
    with torch.no_grad():
        model.ir.copy_(torch.randn(2048) * torch.exp(-torch.arange(2048) / 400.0))
    x = torch.from_numpy(dry(0.4, seed=5))
    whole = process(model, x)
    for block in (1, 31, 32, 500, 4096):
        assert (process(model, x, block) - whole).abs().max() < 1e-5 * whole.abs().max(), block
