"""`fxforge export juce`: code generation (always), build + verify (when JUCE and RTNeural are here).

The build test is slow (minutes) and runs with FXFORGE_SLOW=1 (make test-all).
It needs CMake, a C++ compiler, JUCE (Debian: apt-get install
juce-modules-source) and a local RTNeural checkout named by FXFORGE_RTNEURAL_DIR
(git clone https://github.com/jatinchowdhury18/RTNeural).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

fxforge_juce = pytest.importorskip("fxforge_juce", reason="pip install -e plugins/fxforge-juce")

from fxforge_juce.generate import cpp_string, derive_names, safe_name  # noqa: E402
from fxforge_juce.plugin import JuceConfig, generate, refuses  # noqa: E402

SR = 48_000
HOSTILE = [
    'a"; system("rm -rf /"); //',
    '${CMAKE_COMMAND}\nmessage(FATAL_ERROR pwned)',
    'x")\nadd_custom_target(evil ALL COMMAND touch /tmp/pwned)\n#',
    "??=define X \\\n\r\t",
    "Ampé 😀 <script>",
    "--",
    "",
]


class TinyWaveLSTM(nn.Module):
    """The wave-lstm layout: lstm (batch_first, input 1) -> head Linear(H, 1) [+ x]."""

    def __init__(self, hidden_size=8, num_layers=1, residual=True):
        super().__init__()
        self.lstm = nn.LSTM(1, hidden_size, num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)
        self.residual = residual

    def initial_state(self, batch, device=None):
        shape = (self.lstm.num_layers, batch, self.lstm.hidden_size)
        return torch.zeros(shape, device=device), torch.zeros(shape, device=device)

    def forward(self, x, state):
        h, state = self.lstm(x, state)
        y = self.head(h)
        return (y + x if self.residual else y), state


def fake_run(model_name="wave-lstm", name="tiny-amp", **kw):
    torch.manual_seed(0)
    model = TinyWaveLSTM(**kw).eval()
    return SimpleNamespace(
        path=Path("runs/tiny/0"), model=model, sample_rate=SR,
        config=SimpleNamespace(name=name, model=SimpleNamespace(name=model_name)),
        summary={"test_esr": 0.0123, "test_esr_pre": 0.0456, "parameters": 123},
    )


# ---------------------------------------------------------------- generation


@pytest.mark.parametrize("num_layers,residual", [(1, True), (2, False)])
def test_generated_project(tmp_path, num_layers, residual):
    run = fake_run(hidden_size=8, num_layers=num_layers, residual=residual)
    project = generate(run, JuceConfig(out=tmp_path / "p"))
    for rel in ["CMakeLists.txt", "fxforge_plugin.cmake", "README.md", "fxforge_export.json",
                "Source/PluginProcessor.cpp", "Source/PluginProcessor.h", "Source/PluginEditor.cpp",
                "Source/PluginEditor.h", "Source/FxforgeModel.h", "Source/FxforgeInfo.h",
                "Resources/model_weights.json", "bench/fxforge_bench.cpp", "cmake/check_avx2.cpp"]:
        assert (project.dir / rel).is_file(), rel
    header = (project.dir / "Source/FxforgeModel.h").read_text()
    assert "RTNeural::LSTMLayerT<float, 1, 8>" in header
    assert header.count("LSTMLayerT<float, 8, 8>") == num_layers - 1
    assert f"DenseT<float, 8, 1, true>" in header
    assert f"model.get<{num_layers}>()" in header  # the head follows the LSTM layers
    assert f"kResidual = {'true' if residual else 'false'}" in header
    cmake = (project.dir / "CMakeLists.txt").read_text()
    assert "juce_add_binary_data" in cmake and "juce_generate_juce_header" in cmake
    assert "find_package(JUCE CONFIG" in cmake and "FetchContent_Declare(RTNeural" in cmake
    info = (project.dir / "Source/FxforgeInfo.h").read_text()
    assert "kSampleRate = 48000" in info and "0.0123" in info
    readme = (project.dir / "README.md").read_text()
    assert "cmake -B build" in readme and "tiny-amp" in readme


@pytest.mark.parametrize("num_layers", [1, 3])
def test_weights_json_round_trips(tmp_path, num_layers):
    run = fake_run(hidden_size=6, num_layers=num_layers)
    project = generate(run, JuceConfig(out=tmp_path / "p"))
    doc = json.loads((project.dir / "Resources/model_weights.json").read_text())
    assert doc["_fxforge"]["sample_rate"] == SR and doc["_fxforge"]["model"] == "wave-lstm"
    state = run.model.state_dict()
    weights = {k: v for k, v in doc.items() if not k.startswith("_")}
    assert set(weights) == set(state)
    for key, tensor in state.items():
        back = torch.tensor(weights[key], dtype=torch.float32)
        assert back.shape == tensor.shape, key
        assert torch.equal(back, tensor), key  # bit-exact, not approximately


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_names_are_sanitised(tmp_path, hostile):
    run = fake_run(name=hostile)
    project = generate(run, JuceConfig(out=tmp_path / "p", name=hostile or None, manufacturer=hostile))
    n = project.names
    for value in (n.product, n.company):
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 _-]*", value), value
    assert re.fullmatch(r"[A-Z][a-z0-9]{3}", n.plugin_code) and re.fullmatch(r"[A-Z][a-z0-9]{3}", n.manufacturer_code)
    assert re.fullmatch(r"[a-z0-9.-]+", n.bundle_id)

    # Every line of the generated CMake is one plain set() of a plain quoted value.
    for line in (project.dir / "fxforge_plugin.cmake").read_text().splitlines():
        assert line.startswith("#") or re.fullmatch(
            r'set\(FXFORGE_[A-Z0-9_]+ "[A-Za-z0-9 _.:/;-]*"( CACHE STRING "[A-Za-z ]+")?\)', line), line
    # Every C++ string is a literal of safe characters and octal escapes.
    for line in (project.dir / "Source/FxforgeInfo.h").read_text().splitlines():
        if "const char*" in line:
            assert re.fullmatch(r'static constexpr const char\* k\w+ = "([A-Za-z0-9 .,:_+()/|=%-]|\\[0-7]{3})*";', line), line
    generated = ["fxforge_plugin.cmake", "Source/FxforgeInfo.h", "Source/FxforgeModel.h", "README.md"]
    text = "".join((project.dir / rel).read_text() for rel in generated)
    # Words may survive (they are harmless letters); the syntax around them may not.
    for bad in ("system(", "${CMAKE_COMMAND}", "add_custom_target(", "(FATAL_ERROR", "??=", "<script>", "\\\n"):
        assert bad not in text
    # The static C++/CMake is copied byte for byte: no run text is substituted into it.
    from fxforge_juce.generate import template_dir

    for rel in ["CMakeLists.txt", "Source/PluginProcessor.cpp", "Source/PluginEditor.cpp"]:
        assert (project.dir / rel).read_bytes() == (template_dir() / rel).read_bytes()


def test_gru_mapping(tmp_path):
    """Adding a model is one mapper: the GRU layout generates GRULayerT + loadGRU."""
    run = fake_run(model_name="gru")
    torch.manual_seed(0)
    run.model = nn.Module()
    run.model.rnn, run.model.head, run.model.residual = nn.GRU(1, 12, 2, batch_first=True), nn.Linear(12, 1), False
    project = generate(run, JuceConfig(out=tmp_path / "p"))
    header = (project.dir / "Source/FxforgeModel.h").read_text()
    assert "GRULayerT<float, 1, 12>" in header and "GRULayerT<float, 12, 12>" in header
    assert 'loadGRU<float>(json, "rnn.", model.get<1>(), true, 1)' in header
    assert "kResidual = false" in header


def test_cpp_string_encodes_every_byte_safely():
    for value in HOSTILE + ["plain Name-1_2", "tab\there"]:
        literal = cpp_string(value)
        assert re.fullmatch(r'"([A-Za-z0-9 .,:_+()/|=%-]|\\[0-7]{3})*"', literal)
        decoded = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), literal[1:-1])
        assert decoded.encode("latin-1") == value.encode("utf-8")


def test_names_and_codes_are_stable():
    a, b = derive_names("amp", "My Amp", "Me"), derive_names("other-run", "My Amp", "Me")
    assert a.plugin_code == b.plugin_code  # re-exports keep their identity in DAW sessions
    assert derive_names("amp", "Other Amp", "Me").plugin_code != a.plugin_code
    assert safe_name("  --My   Amp!! ", "x") == "My Amp"


def test_config_parses_cli_strings(tmp_path):
    cfg = JuceConfig(out=str(tmp_path), formats="vst3, lv2,Standalone,au", verify=True)
    assert cfg.formats == ["VST3", "LV2", "Standalone", "AU"]
    assert JuceConfig(out=tmp_path, formats="LV2", verify=True).formats == ["LV2", "VST3"]
    with pytest.raises(ValueError, match="unknown format 'DX'"):
        JuceConfig(out=tmp_path, formats="VST3,DX")
    with pytest.raises(ValueError, match="4 letters"):
        JuceConfig(out=tmp_path, plugin_code="ab;d")
    with pytest.raises(ValueError):
        JuceConfig(out=tmp_path, bogus=1)


def test_refuses_unknown_models_in_one_line():
    assert refuses(fake_run()) is None
    reason = refuses(fake_run(model_name="stft-lstm"))
    assert reason and "\n" not in reason and "wave-lstm" in reason


def test_refuses_to_overwrite_a_foreign_directory(tmp_path):
    from fxforge import FxforgeError

    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(FxforgeError, match="not an fxforge plugin project"):
        generate(fake_run(), JuceConfig(out=tmp_path))
    generate(fake_run(), JuceConfig(out=tmp_path / "p"))
    generate(fake_run(), JuceConfig(out=tmp_path / "p"))  # re-export in place is fine


# ---------------------------------------------------------------- the real CLI


def cli(*args, cwd=None, timeout=900, prelude=""):
    """`fxforge ARGS` as a user runs it; ``prelude`` runs first in the same process."""
    code = f"import sys\n{prelude}\nfrom fxforge.cli import main\nsys.argv = ['fxforge'] + sys.argv[1:]\nmain()\n"
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def make_run_dir(root: Path, model: nn.Module, model_toml: str, name: str = "tiny-amp") -> Path:
    """A run directory as `fxforge run` leaves it, without training."""
    run = root / "runs" / name / "20260101-000000"
    run.mkdir(parents=True)
    (run / "config.toml").write_text(textwrap.dedent(f"""\
        name = "{name}"
        seed = 0
        [data]
        demo = "amp"
        [model]
        {model_toml}
        """))
    (run / "summary.json").write_text(json.dumps(
        {"sample_rate": SR, "status": "finished", "test_esr": 0.0123, "test_esr_pre": 0.0456, "parameters": 123}))
    torch.save(model.state_dict(), run / "model.pt")
    return run


TOY_PLUGIN = '''
from torch import nn
from fxforge import ComponentConfig, ModelSpec, hookimpl

class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(1, 1)
    def initial_state(self, batch, device=None):
        return None
    def forward(self, x, state):
        return self.proj(x), state

class ToyConfig(ComponentConfig):
    pass

@hookimpl
def fxforge_register_models(register):
    register(ModelSpec("toy-linear", "a model RTNeural export does not know", ToyConfig, lambda cfg, sr: Toy()))
'''


def test_cli_refuses_unsupported_model(tmp_path):
    (tmp_path / "toy_plugin.py").write_text(TOY_PLUGIN)
    torch.manual_seed(0)
    run = make_run_dir(tmp_path, nn.Sequential(), 'name = "toy-linear"')
    torch.save({"proj.weight": torch.ones(1, 1), "proj.bias": torch.zeros(1)}, run / "model.pt")
    prelude = (f"sys.path.insert(0, {str(tmp_path)!r})\nimport toy_plugin\n"
               "from fxforge.plugins import get_registry\nget_registry().add_plugin(toy_plugin, 'toy-plugin')")
    r = cli("export", "juce", run, "--out", tmp_path / "out", prelude=prelude)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [l for l in r.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and "toy-linear" in lines[0] and "wave-lstm" in lines[0], r.stderr
    assert not (tmp_path / "out").exists()


def test_cli_generates_project_with_hostile_name(tmp_path):
    pytest.importorskip("fxforge_wave_lstm", reason="pip install -e plugins/fxforge-wave-lstm")
    run = make_run_dir(tmp_path, TinyWaveLSTM(8), 'name = "wave-lstm"\nhidden_size = 8')
    out = tmp_path / "MyAmp"
    r = cli("export", "juce", run, "--out", out, "--name", HOSTILE[0], "--formats", "VST3,LV2")
    assert r.returncode == 0, r.stdout + r.stderr
    cmake = (out / "fxforge_plugin.cmake").read_text()
    assert 'set(FXFORGE_PRODUCT_NAME "a system rm -rf")' in cmake
    assert 'set(FXFORGE_FORMATS "VST3;LV2"' in cmake
    assert not (out / "build").exists()  # without --build nothing is compiled


# ---------------------------------------------------------------- build + verify


def _build_prerequisites() -> str | None:
    from fxforge_juce.build import find_juce_package

    if os.environ.get("FXFORGE_SLOW") != "1":
        return ("slow (a C++ build of minutes): set FXFORGE_SLOW=1 (make test-all) and FXFORGE_RTNEURAL_DIR "
                "to an RTNeural checkout to run it")
    rt = os.environ.get("FXFORGE_RTNEURAL_DIR")
    if not rt or not Path(rt, "RTNeural", "RTNeural.h").is_file():
        return ("set FXFORGE_RTNEURAL_DIR to an RTNeural checkout "
                "(git clone https://github.com/jatinchowdhury18/RTNeural) to run the JUCE build test")
    if not shutil.which("cmake") or not (shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")):
        return "needs cmake and a C++ compiler (apt-get install cmake g++)"
    if not (os.environ.get("FXFORGE_JUCE_DIR") or find_juce_package()):
        return "needs JUCE: apt-get install juce-modules-source, or set FXFORGE_JUCE_DIR to a JUCE checkout"
    return None


def test_build_and_verify_plugin(tmp_path):
    """Builds the VST3 for an LSTM-8 and checks it against PyTorch at 5 block sizes (a few minutes)."""
    why = _build_prerequisites()
    if why:
        pytest.skip(why)
    pytest.importorskip("fxforge_wave_lstm", reason="pip install -e plugins/fxforge-wave-lstm")
    pytest.importorskip("pedalboard")
    torch.manual_seed(1)
    model = TinyWaveLSTM(8, 2)
    with torch.no_grad():  # livelier weights than the default init, so errors would show
        for p in model.parameters():
            p.mul_(3.0)
    run = make_run_dir(tmp_path, model, 'name = "wave-lstm"\nhidden_size = 8\nnum_layers = 2')
    args = ["export", "juce", run, "--out", tmp_path / "Plug", "--formats", "VST3", "--verify"]
    if os.environ.get("FXFORGE_JUCE_DIR"):
        args += ["--juce-dir", os.environ["FXFORGE_JUCE_DIR"]]
    r = cli(*args, timeout=1800)
    print(r.stdout[-3000:], r.stderr[-3000:])
    assert r.returncode == 0, r.stderr[-3000:]
    assert "verify ok" in r.stderr
    for block in ("1", "17", "64", "512", "4096"):
        assert re.search(rf"│\s+{block} │", r.stderr), block

    # The parameters do what they say, and the host can save and restore them.
    import numpy as np
    import pedalboard

    vst3 = next((tmp_path / "Plug" / "build").glob("FxforgePlugin_artefacts/Release/VST3/*.vst3"))
    plugin = pedalboard.load_plugin(str(vst3))
    assert {"input_db", "output_db", "mix", "bypass"} <= set(plugin.parameters)
    x = (0.3 * np.random.default_rng(0).standard_normal((2, 4800))).astype(np.float32)
    assert np.abs(plugin.process(x, SR, buffer_size=64) - x).max() > 1e-3  # the model changes the sound
    plugin.mix = 0.0
    assert np.array_equal(plugin.process(x, SR, buffer_size=64), x)  # all dry
    plugin.mix, plugin.bypass = 100.0, True
    assert np.array_equal(plugin.process(x, SR, buffer_size=64), x)  # bypassed
    plugin.bypass, plugin.mix, plugin.output_db = False, 37.0, -6.0
    saved = plugin.raw_state
    plugin.mix, plugin.output_db = 80.0, 0.0
    plugin.raw_state = saved
    assert abs(plugin.mix - 37.0) < 0.1 and abs(plugin.output_db + 6.0) < 0.1
