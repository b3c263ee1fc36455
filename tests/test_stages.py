"""The stage kind: a [model.<stage>] table is resolved against the registered stages, the
stage wraps the built model, its config round-trips, and an exporter reaches it through
its spec's export facet (a toy gain stage, registered in-process as a third party's)."""
import pytest
import torch

from fxforge import FxforgeError, Stage, StageSpec, hookimpl
from fxforge.config import config_from_dict
from fxforge.nn.model import unwrap
from fxforge.registry import Registry, get_registry, reset_registry
from pydantic import BaseModel, ConfigDict

DATA = {"demo": "amp"}


class GainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gain: float = 2.0


class Gain(Stage):
    stage_name = "gain"

    def __init__(self, inner, cfg, sample_rate):
        super().__init__(inner)
        self.gain = cfg.gain

    def initial_state(self, batch, device=None):
        return self.inner.initial_state(batch, device)

    def forward(self, x, state):
        y, state = self.inner(x, state)
        return self.gain * y, state


def _juce(stage):
    return {"body": [f"y *= {float(stage.gain)!r}f;"], "block": [], "architecture": f"gain {stage.gain:g}"}


class ToyStages:
    @hookimpl
    def fxforge_register_stages(self, register):
        register(StageSpec("gain", "multiplies the output", GainConfig, Gain, exports={"juce": _juce}))


@pytest.fixture
def registry():
    reg = Registry().load_entry_points()
    reg.add_plugin(ToyStages(), "toy-stages")
    previous = get_registry()
    reset_registry(reg)
    try:
        yield reg
    finally:
        reset_registry(previous)


def test_stage_table_is_resolved_built_and_dumped(registry):
    from fxforge.runs import build_model

    doc = {"data": DATA, "model": {"name": "wave-lstm", "hidden_size": 4, "gain": {"gain": 3.0}}}
    cfg = config_from_dict(doc, "run.toml", registry)
    assert cfg.model.stages["gain"].gain == 3.0
    assert cfg.to_dict()["model"]["gain"] == {"gain": 3.0}
    assert config_from_dict(cfg.to_dict(), "again", registry).to_dict() == cfg.to_dict()
    model = build_model(cfg, 48000)
    inner, stages = unwrap(model)
    assert [s.stage_name for s in stages] == ["gain"] and not isinstance(inner, Stage)
    x = torch.randn(1, 64, 1)
    with torch.no_grad():
        assert torch.allclose(model(x, model.initial_state(1))[0], 3.0 * inner(x, inner.initial_state(1))[0])


def test_stage_keys_are_validated_by_its_config(registry):
    with pytest.raises(FxforgeError) as info:
        config_from_dict({"data": DATA, "model": {"name": "wave-lstm", "gain": {"gian": 1}}}, "run.toml", registry)
    assert str(info.value) == "run.toml: model.gain.gian: unknown key (did you mean 'gain'?)"
    assert (info.value.where, info.value.field) == ("run.toml", "model.gain.gian")
    with pytest.raises(FxforgeError, match=r"run.toml: model.gian: unknown key \(did you mean 'gain'\?\)"):
        config_from_dict({"data": DATA, "model": {"name": "wave-lstm", "gian": {}}}, "run.toml", registry)


def test_list_stages_names_the_cabinet():
    assert "cabinet" in get_registry().names("stage")


def test_juce_exporter_appends_a_stage_through_its_facet(registry):
    pytest.importorskip("fxforge_juce")
    from fxforge_juce.models import map_model
    from fxforge.builtins.wave_lstm.plugin import WaveLSTM

    rt = map_model("wave-lstm", Gain(WaveLSTM(4), GainConfig(gain=0.5), 48000))
    assert rt.body[-1] == "y *= 0.5f;" and rt.architecture.endswith("-> gain 0.5")


def test_a_stage_without_a_juce_facet_is_refused(registry):
    pytest.importorskip("fxforge_juce")
    from fxforge_juce.models import Unsupported, map_model
    from fxforge.builtins.wave_lstm.plugin import WaveLSTM

    class Other(Gain):
        stage_name = "other"

    with pytest.raises(Unsupported, match="the stage 'other' has no JUCE export"):
        map_model("wave-lstm", Other(WaveLSTM(4), GainConfig(), 48000))
