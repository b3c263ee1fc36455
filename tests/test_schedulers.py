
import pytest

from fxforge.builtins.schedulers import ConstantConfig, CosineConfig, StepConfig, constant, cosine, step


def test_cosine_runs_from_base_to_floor():
    f = cosine(CosineConfig(name="cosine", floor=0.02), 0.01)
    assert f(0.0) == pytest.approx(0.01)
    assert f(0.5) == pytest.approx(0.01 * (0.02 + 0.98 * 0.5))
    assert f(1.0) == pytest.approx(0.0002)


def test_cosine_warmup_ramps_linearly():
    f = cosine(CosineConfig(name="cosine", warmup=0.1), 1.0)
    assert f(0.05) == pytest.approx(0.5, rel=1e-6)
    assert f(0.1) == pytest.approx(1.0)


def test_constant_and_step():
    assert constant(ConstantConfig(name="constant"), 0.3)(0.7) == 0.3
    f = step(StepConfig(name="step", gamma=0.1, milestones=[0.5, 0.9]), 1.0)
    assert [f(0.1), f(0.6), f(0.95)] == [1.0, pytest.approx(0.1), pytest.approx(0.01)]


def test_step_milestones_validated():
    with pytest.raises(ValueError):
        StepConfig(name="step", milestones=[0.8, 0.2])
