"""FxforgeError's structured fields, and that its one-line form is what users saw before."""
import pickle

import pytest

from fxforge import FxforgeError
from fxforge.config import config_from_dict


def test_fields_and_line():
    e = FxforgeError("Input should be greater than 0", where="configs/x.toml", field="model.hidden_size")
    assert str(e) == "configs/x.toml: model.hidden_size: Input should be greater than 0"
    assert (e.where, e.field, e.message) == ("configs/x.toml", "model.hidden_size", "Input should be greater than 0")
    assert str(FxforgeError("x.wav: no such file")) == "x.wav: no such file"
    assert FxforgeError("x.wav: no such file").where is None
    assert str(FxforgeError("unknown key", where="--set", field="train.epoch")) == "--set train.epoch: unknown key"
    assert str(FxforgeError("bad", field="model.x")) == "model.x: bad"


def test_reframed_and_pickled():
    e = FxforgeError("unknown key", where="run.toml", field="optim.lrr")
    r = e.reframed("sweep.toml", "grid.", " (trial t)")
    assert str(r) == "sweep.toml: grid.optim.lrr: unknown key (trial t)"
    back = pickle.loads(pickle.dumps(r))
    assert (back.where, back.field, back.message) == (r.where, r.field, r.message)


def test_config_errors_carry_fields():
    with pytest.raises(FxforgeError) as info:
        config_from_dict({"model": {"name": "wave-lstm", "hidden_size": -3}}, "x.toml")
    e = info.value
    assert (e.where, e.field) == ("x.toml", "model.hidden_size")
    assert str(e) == f"x.toml: model.hidden_size: {e.message}"
    with pytest.raises(FxforgeError) as info:
        config_from_dict({"model": {"name": "wave-lsmt"}}, "x.toml")
    assert (info.value.where, info.value.field) == ("x.toml", "model.name")
    assert str(info.value).startswith("x.toml: model.name: unknown model 'wave-lsmt' (did you mean 'wave-lstm'?")
