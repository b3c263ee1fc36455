"""Third-party plugins, installed with pip and found through their entry points."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import TINY, run_cli, write_config

# A pip install or uninstall here changes what is installed under the fork server that
# run_cli's calls come from (its imports are stale): the CLI calls that follow one run as a
# fresh `python -m fxforge` (fresh=True; the PYTHONPATH of bad_plugins makes one by itself).

FIXTURES = Path(__file__).parent / "fixtures"


def pip(*args):
    out = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.fixture(scope="module")
def echo_installed():
    """fxforge-echo installed into this environment as a user would; removed afterwards."""
    pip("install", "--quiet", "--no-deps", "--no-build-isolation", str(FIXTURES / "fxforge-echo"))
    try:
        yield
    finally:
        pip("uninstall", "--yes", "--quiet", "fxforge-echo")


@pytest.fixture(scope="module")
def bad_plugins(tmp_path_factory):
    """The broken and the duplicate package, installed into a target folder on PYTHONPATH
    (so a crashed test run cannot leave them in the shared environment)."""
    target = tmp_path_factory.mktemp("site")
    for name in ("fxforge-broken", "fxforge-dup"):
        pip("install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(target), str(FIXTURES / name))
    return {"PYTHONPATH": str(target)}


def test_installed_plugin_is_listed_with_its_package(echo_installed):
    models = {m["name"]: m for m in json.loads(run_cli("list", "models", "--json", fresh=True).stdout)}
    assert models["echo"]["package"] == "fxforge-echo" and models["echo"]["version"] == "1.2.3"
    scheds = {s["name"]: s for s in json.loads(run_cli("list", "schedulers", "--json", fresh=True).stdout)}
    assert scheds["halving"]["package"] == "fxforge-echo"


def test_third_party_model_and_scheduler_train_end_to_end(echo_installed, workdir):
    cfg = TINY.replace('name = "wave-lstm"\nhidden_size = 8', 'name = "echo"\ntaps = 8').replace(
        'name = "cosine"', 'name = "halving"')
    write_config(workdir, cfg)
    out = run_cli("run", "run.toml", "--set", "train.epochs=1", cwd=workdir, fresh=True)
    assert out.returncode == 0, out.stderr
    (run_dir,) = (workdir / "runs" / "tiny").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["model"] == "echo" and summary["status"] == "finished"
    assert summary["parameters"] == 8


def test_uninstalled_plugin_is_gone(echo_installed):
    pip("uninstall", "--yes", "--quiet", "fxforge-echo")
    try:
        models = {m["name"] for m in json.loads(run_cli("list", "models", "--json", fresh=True).stdout)}
        assert "echo" not in models and "wave-lstm" in models
    finally:
        pip("install", "--quiet", "--no-deps", "--no-build-isolation", str(FIXTURES / "fxforge-echo"))


def test_broken_plugin_is_reported_once_and_skipped(bad_plugins):
    out = run_cli("list", "models", "--json", env=bad_plugins)
    assert out.returncode == 0
    assert "wave-lstm" in {m["name"] for m in json.loads(out.stdout)}
    lines = [ln for ln in out.stderr.splitlines() if "fxforge-broken" in ln]
    assert lines == ["warning: plugin package 'fxforge-broken': import failed: ImportError: "
                     "this plugin is broken on purpose; skipped"]


def test_duplicate_name_and_malformed_spec_are_reported(bad_plugins):
    out = run_cli("plugins", "--json", env=bad_plugins)
    assert out.returncode == 0
    problems = json.loads(out.stdout)["problems"]
    assert "plugin package 'fxforge-dup': scheduler 'cosine' is already registered by 'fxforge-schedulers'; skipped" in problems \
        or "plugin package 'fxforge-schedulers': scheduler 'cosine' is already registered by 'fxforge-dup'; skipped" in problems
    assert "plugin package 'fxforge-dup': registered dict where a ModelSpec was expected; skipped" in problems


def test_a_run_not_using_the_broken_plugin_still_works(bad_plugins, workdir):
    out = run_cli("run", "run.toml", "--set", "train.epochs=1", cwd=workdir, env=bad_plugins)
    assert out.returncode == 0, out.stderr


# ---------------------------------------------------------------- the tutorial package
# tests/fixtures/fxforge-tutorial (its README is the plugin tutorial): a model with its JUCE
# export facet and a stage with its own fragment, importing only fxforge's public API.

TUTORIAL_RUN = TINY.replace('name = "wave-lstm"\nhidden_size = 8',
                            'name = "fir-shaper"\ntaps = 8\n\n[model.tone]\ngain = 0.8')


@pytest.fixture(scope="module")
def tutorial_installed():
    """fxforge-tutorial pip-installed as its README says; this process's registry reloaded
    to see it, and reloaded again once it is uninstalled."""
    import importlib

    from fxforge.registry import reset_registry

    pip("install", "--quiet", "--no-deps", "--no-build-isolation", str(FIXTURES / "fxforge-tutorial"))
    importlib.invalidate_caches()
    reset_registry()
    try:
        yield
    finally:
        pip("uninstall", "--yes", "--quiet", "fxforge-tutorial")
        reset_registry()


@pytest.fixture(scope="module")
def tutorial_run(tutorial_installed, tmp_path_factory) -> Path:
    """One finished run of the tutorial's model with its tone stage, through `fxforge run`."""
    from conftest import write_pair

    folder = tmp_path_factory.mktemp("tutorial")
    write_pair(folder)
    write_config(folder, TUTORIAL_RUN)
    out = run_cli("run", "run.toml", "--set", "train.epochs=1", cwd=folder, fresh=True)
    assert out.returncode == 0, out.stderr
    (run_dir,) = (folder / "runs" / "tiny").iterdir()
    return run_dir


def test_tutorial_model_and_stage_are_listed_with_their_package(tutorial_installed):
    models = {m["name"]: m for m in json.loads(run_cli("list", "models", "--json", fresh=True).stdout)}
    stages = {s["name"]: s for s in json.loads(run_cli("list", "stages", "--json", fresh=True).stdout)}
    assert models["fir-shaper"]["package"] == "fxforge-tutorial"
    assert stages["tone"]["package"] == "fxforge-tutorial"


def test_tutorial_model_with_its_stage_trains(tutorial_run):
    summary = json.loads((tutorial_run / "summary.json").read_text())
    assert summary["model"] == "fir-shaper" and summary["status"] == "finished"
    assert summary["parameters"] == 8 + 1 + 2  # the FIR and its scale, the stage's gain and tilt
    assert "tone" in (tutorial_run / "config.toml").read_text()


def test_tutorial_model_passes_the_conformance_kit(tutorial_run):
    """The trained run's model, tone stage and all: streaming in any block size, causal with
    a receptive field of its 8 taps (7 past samples, plus the stage's one), exact resume."""
    from fxforge import load_run
    from fxforge.nn.model import unwrap
    from fxforge.testing import check_model

    model = load_run(tutorial_run).model
    inner, stages = unwrap(model)
    assert type(inner).__name__ == "FirShaper" and [s.stage_name for s in stages] == ["tone"]
    with torch.no_grad():  # a tilt away from its start, so the stage's own state is exercised
        stages[0].tilt.fill_(0.3)
    check_model(model, 48000, receptive_field=8)


@pytest.fixture(scope="module")
def tutorial_export(tutorial_run, tmp_path_factory) -> Path:
    pytest.importorskip("fxforge_juce", reason="pip install -e plugins/fxforge-juce")
    out = tmp_path_factory.mktemp("tutorial-juce") / "p"
    r = run_cli("export", "juce", tutorial_run, "--out", out, fresh=True)
    assert r.returncode == 0, r.stderr
    return out


def test_tutorial_exports_to_juce_with_its_model_and_stage_code(tutorial_run, tutorial_export):
    from fxforge import load_run
    from fxforge.nn.model import unwrap

    header = (tutorial_export / "Source/FxforgeModel.h").read_text()
    assert "class TutorialShaper" in header and "class TutorialTone" in header
    assert "TutorialShaper<8> shaper;" in header and "TutorialTone tone;" in header
    block = header[header.index("void processChunk"):]
    assert block.index("shaper.process (in, out, n);") < block.index("tone.process (out, n);")
    doc = json.loads((tutorial_export / "Resources/model_weights.json").read_text())
    inner, (tone,) = unwrap(load_run(tutorial_run).model)
    assert torch.equal(torch.tensor(doc["fir_shaper.fir"]), inner.fir.weight.detach().reshape(-1))
    assert doc["tone.gain"] == tone.gain.detach().tolist() and doc["tone.tilt"] == tone.tilt.detach().tolist()
    assert doc["_fxforge"]["architecture"] == "FIR 8 taps -> tanh -> scale -> tone (one-zero) and gain"


def test_tutorial_export_renders_as_pytorch(tutorial_run, tutorial_export, tmp_path):
    """The exported C++ (compiled without JUCE, as test_export_juce's render check does)
    against the trained model, in irregular blocks; skipped without a compiler and RTNeural."""
    from fxforge import load_run
    from test_export_juce import render_error

    model = load_run(tutorial_run).model.eval()
    assert render_error(tmp_path, tutorial_export, model, label="fir-shaper+tone") < 1e-4


def test_tutorial_stage_follows_a_built_in_model_in_cpp(tutorial_installed, tmp_path):
    """The tone fragment's per-sample body after a recurrent built-in (the shaper is block-wise)."""
    pytest.importorskip("fxforge_juce", reason="pip install -e plugins/fxforge-juce")
    from fxforge.registry import get_registry
    from fxforge.builtins.wave_lstm.plugin import WaveLSTM
    from test_export_juce import fake_run, generate, JuceConfig, render_error

    spec = get_registry().get("stage", "tone")
    torch.manual_seed(5)
    model = spec.build(WaveLSTM(8), spec.Config(gain=0.7), 48000)
    with torch.no_grad():
        model.tilt.fill_(-0.4)
    project = generate(fake_run(model=model.eval()), JuceConfig(out=tmp_path / "p"))
    header = (project.dir / "Source/FxforgeModel.h").read_text()
    assert "y = tone.process (y);" in header
    assert render_error(tmp_path, project.dir, model, label="wave-lstm+tone") < 1e-4


def test_a_model_facet_that_refuses_is_one_line(tutorial_installed):
    pytest.importorskip("fxforge_juce", reason="pip install -e plugins/fxforge-juce")
    from fxforge_juce.models import Unsupported, map_model

    with pytest.raises(Unsupported, match="^not a fir-shaper module$"):
        map_model("fir-shaper", torch.nn.Linear(1, 1))


def test_a_model_export_facet_that_is_not_callable_is_reported_and_skipped():
    from fxforge import ComponentConfig, ModelSpec, hookimpl
    from fxforge.registry import Registry

    class BadFacet:
        @hookimpl
        def fxforge_register_models(self, register):
            register(ModelSpec("bad-facet", "one line", ComponentConfig, lambda cfg, sr: None,
                               exports={"juce": "not a function"}))

    reg = Registry()
    reg.add_plugin(BadFacet(), "fxforge-bad-facet")
    assert "bad-facet" not in reg.names("model")
    assert [str(p) for p in reg.problems] == [
        "plugin package 'fxforge-bad-facet': model 'bad-facet': each of exports must be a callable facet(module); skipped"]
