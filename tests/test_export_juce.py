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

from fxforge_cabinet import CabinetConfig, CabinetFIR  # noqa: E402
from fxforge.builtins.wave_lstm.plugin import WaveGRU, WaveLSTM  # noqa: E402
from fxforge.builtins.wavenet.plugin import WaveNet  # noqa: E402

from fxforge_juce.generate import cpp_string, derive_names, safe_name  # noqa: E402
from fxforge_juce.plugin import JuceConfig, generate, refuses  # noqa: E402
from conftest import compile_render_tool  # noqa: E402

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


def fake_run(model_name="wave-lstm", name="tiny-amp", model=None, **kw):
    torch.manual_seed(0)
    model = (model if model is not None else WaveLSTM(**kw)).eval()
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
                "Resources/model_weights.json", "cmake/check_avx2.cpp"]:
        assert (project.dir / rel).is_file(), rel
    # The benchmark and render tools are not part of a project, nor are the template's *.in files.
    assert not (project.dir / "bench").exists()
    assert not list(project.dir.rglob("*.in"))
    header = (project.dir / "Source/FxforgeModel.h").read_text()
    assert "RTNeural::LSTMLayerT<float, 1, 8>" in header
    assert header.count("LSTMLayerT<float, 8, 8>") == num_layers - 1
    assert "DenseT<float, 8, 1, true>" in header
    assert f"net.get<{num_layers}>()" in header  # the head follows the LSTM layers
    assert ("y += x;" in header) == residual
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

    static = [p.relative_to(template_dir()) for p in template_dir().rglob("*") if p.is_file() and p.suffix != ".in"]
    assert {"CMakeLists.txt", "Source/PluginProcessor.cpp", "Source/PluginEditor.cpp",
            "Source/FxforgeWaveNet.h"} <= {str(rel) for rel in static}
    for rel in static:
        assert (project.dir / rel).read_bytes() == (template_dir() / rel).read_bytes()


def test_gru_mapping(tmp_path):
    """Adding a model is one mapper: the GRU layout generates GRULayerT + loadGRU."""
    run = fake_run(model_name="gru", model=WaveGRU(12, 2, residual=False))
    project = generate(run, JuceConfig(out=tmp_path / "p"))
    header = (project.dir / "Source/FxforgeModel.h").read_text()
    assert "GRULayerT<float, 1, 12>" in header and "GRULayerT<float, 12, 12>" in header
    assert 'loadGRU<float> (json, "rnn.", net.get<1>(), true, 1)' in header
    assert "y += x;" not in header


def test_wavenet_mapping(tmp_path):
    """The WaveNet is the C++ class template wavenet::Net: the export writes its type parameters
    (channels, residual, each layer's kernel, dilation and gate) and the weights, 1x1 convs 2-D."""
    model = WaveNet(channels=4, stacks=2, max_dilation=8, gated=True)
    project = generate(fake_run(model_name="wavenet", model=model), JuceConfig(out=tmp_path / "p"))
    header = (project.dir / "Source/FxforgeModel.h").read_text()
    net = re.search(r"wavenet::Net<4, true,((?:\s*wavenet::Layer<\d+, \d+, \d+, (?:true|false)>,?)+)> net;", header)
    assert net, header
    layers = re.findall(r"wavenet::Layer<(\d+), (\d+), (\d+), (true|false)>", net[1])
    assert layers == [("4", "3", str(d), "true") for d in [1, 2, 4, 8] * 2]
    assert "net.load (json);" in header and "net.reset();" in header and "net.process (in, out, n);" in header
    assert "void process (const float* in, float* out, int n) noexcept" in header
    plain = WaveNet(channels=3, stacks=1, max_dilation=4, kernel_size=2, gated=False, input_residual=False)
    other = generate(fake_run(model_name="wavenet", model=plain), JuceConfig(out=tmp_path / "q"))
    assert re.search(r"wavenet::Net<3, false,\s*wavenet::Layer<3, 2, 1, false>,\s*wavenet::Layer<3, 2, 2, false>,"
                     r"\s*wavenet::Layer<3, 2, 4, false>> net;", (other.dir / "Source/FxforgeModel.h").read_text())
    assert (project.dir / "Source/FxforgeWaveNet.h").is_file()
    doc = json.loads((project.dir / "Resources/model_weights.json").read_text())
    assert torch.equal(torch.tensor(doc["layers.3.mix.weight"]), model.layers[3].mix.weight[:, :, 0])
    assert torch.equal(torch.tensor(doc["layers.5.conv.weight"]), model.layers[5].conv.weight)
    assert "layers.7.mix.weight" not in doc
    assert "WaveNet 8 layers x 4 ch" in doc["_fxforge"]["architecture"]


def test_cabinet_stage_is_appended(tmp_path):
    inner = WaveLSTM(8)
    model = CabinetFIR(inner, CabinetConfig(taps=96), SR)
    with torch.no_grad():
        model.ir.copy_(torch.linspace(1, 0, 96))
    project = generate(fake_run(model=model), JuceConfig(out=tmp_path / "p"))
    header = (project.dir / "Source/FxforgeModel.h").read_text()
    assert "Fir<96> cabinet;" in header and "LSTMLayerT<float, 1, 8>" in header
    body = header[header.index("float process"):]
    assert body.index("y += x;") < body.index("y = cabinet.process (y);")  # residual, then the cabinet
    doc = json.loads((project.dir / "Resources/model_weights.json").read_text())
    assert torch.equal(torch.tensor(doc["cabinet.ir"]), model.ir.detach())
    assert doc["_fxforge"]["architecture"].endswith("-> cabinet FIR 96 taps")


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
    code = f"import sys\n{prelude}\nfrom fxforge.cli import main\nsys.exit(main(sys.argv[1:]))\n"
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
               "from fxforge.registry import get_registry\nget_registry().add_plugin(toy_plugin, 'toy-plugin')")
    r = cli("export", "juce", run, "--out", tmp_path / "out", prelude=prelude)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [l for l in r.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and "toy-linear" in lines[0] and "wave-lstm" in lines[0], r.stderr
    assert not (tmp_path / "out").exists()


def test_cli_generates_project_with_hostile_name(tmp_path):
    run = make_run_dir(tmp_path, WaveLSTM(8), 'name = "wave-lstm"\nhidden_size = 8')
    out = tmp_path / "MyAmp"
    r = cli("export", "juce", run, "--out", out, "--name", HOSTILE[0], "--formats", "VST3,LV2")
    assert r.returncode == 0, r.stdout + r.stderr
    cmake = (out / "fxforge_plugin.cmake").read_text()
    assert 'set(FXFORGE_PRODUCT_NAME "a system rm -rf")' in cmake
    assert 'set(FXFORGE_FORMATS "VST3;LV2"' in cmake
    assert not (out / "build").exists()  # without --build nothing is compiled


# ---------------------------------------------------------------- build + verify

# Each exportable shape, with the run-file [model] section that rebuilds it.
EXPORTABLE = {
    "lstm-2x8": ("wave-lstm", lambda: WaveLSTM(8, 2), "hidden_size = 8\nnum_layers = 2"),
    "gru-2x8+cabinet": ("gru", lambda: CabinetFIR(WaveGRU(8, 2), CabinetConfig(taps=128), SR),
                        "hidden_size = 8\nnum_layers = 2\n[model.cabinet]\ntaps = 128"),
    "wavenet-gated+cabinet": (
        "wavenet", lambda: CabinetFIR(WaveNet(4, 1, 64, 3, True, True), CabinetConfig(taps=64), SR),
        "channels = 4\nstacks = 1\nmax_dilation = 64\n[model.cabinet]\ntaps = 64"),
    "wavenet-plain-2stacks": ("wavenet", lambda: WaveNet(3, 2, 8, 2, False, False),
                              "channels = 3\nstacks = 2\nmax_dilation = 8\nkernel_size = 2\ngated = false\n"
                              "input_residual = false"),
}


def lively(key: str) -> nn.Module:
    """The model with livelier weights than the default init, so mapping errors would show."""
    torch.manual_seed(1)
    model = EXPORTABLE[key][1]()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model.eval()


def _rtneural_dir() -> Path | None:
    rt = os.environ.get("FXFORGE_RTNEURAL_DIR")
    return Path(rt) if rt and Path(rt, "RTNeural", "RTNeural.h").is_file() else None


CPP_RENDER_SKIP = "needs a C++ compiler and FXFORGE_RTNEURAL_DIR (an RTNeural checkout)"


def render_error(tmp_path: Path, project_dir: Path, model: nn.Module, blocks: tuple[int, ...] = (),
                 label: str = "") -> float:
    """Max |C++ - PyTorch| of an exported project's FxforgeModel.h compiled without JUCE
    (fxforge_juce/check/fxforge_render.cpp), fed in blocks cycling through ``blocks`` (default 1, 17, 64,
    512, 4096). Built with EIGEN_RUNTIME_NO_MALLOC and assertions on, so a heap allocation by
    Eigen inside process() aborts the render. Skips without a compiler and RTNeural."""
    rt, cxx = _rtneural_dir(), shutil.which("g++") or shutil.which("clang++")
    if rt is None or cxx is None:
        pytest.skip(CPP_RENDER_SKIP)
    import numpy as np
    from fxforge.nn.stream import process

    project_dir = Path(project_dir)
    exe = tmp_path / "render"
    compile_render_tool(cxx, rt, project_dir, exe)
    # 12000 samples: past the WaveNet history buffer's first rewind (history + 4096 columns).
    torch.manual_seed(2)
    x = (0.5 * torch.sin(torch.arange(12000) * 0.03) + 0.1 * torch.randn(12000)).to(torch.float32)
    x.numpy().tofile(tmp_path / "in.f32")
    subprocess.run([str(exe), str(project_dir / "Resources/model_weights.json"), str(tmp_path / "in.f32"),
                    str(tmp_path / "out.f32"), *map(str, blocks)], check=True)
    y = torch.from_numpy(np.fromfile(tmp_path / "out.f32", np.float32))
    with torch.no_grad():
        ref = process(model, x, 1000)
    assert ref.abs().max() > 0.1
    err = float((y - ref).abs().max())
    print(f"{label} blocks {blocks or 'default'}: max abs error {err:.3g}")
    return err


def _render_error(tmp_path: Path, key: str, blocks: tuple[int, ...] = (), model: nn.Module | None = None) -> float:
    """render_error of the EXPORTABLE model ``key`` (livelier weights unless ``model`` is given)."""
    if _rtneural_dir() is None or not (shutil.which("g++") or shutil.which("clang++")):
        pytest.skip(CPP_RENDER_SKIP)
    model = lively(key) if model is None else model
    project = generate(fake_run(model_name=EXPORTABLE[key][0], model=model), JuceConfig(out=tmp_path / "p"))
    return render_error(tmp_path, project.dir, model, blocks, label=key)


@pytest.mark.parametrize("key", list(EXPORTABLE))
def test_generated_model_matches_pytorch(tmp_path, key):
    """The generated model against PyTorch (seconds, not minutes), in irregular blocks."""
    assert _render_error(tmp_path, key) < 1e-4


@pytest.mark.parametrize("blocks", [(1,), (3, 1023, 1025, 2049, 7), (4096, 5000)])
def test_wavenet_block_sizes(tmp_path, blocks):
    """The block-wise WaveNet at odd block sizes, one sample, and blocks longer than its chunk."""
    assert _render_error(tmp_path, "wavenet-gated+cabinet", blocks) < 1e-4


def test_wide_wavenet_allocates_nothing(tmp_path):
    """64 channels, kernel 8: past Eigen's fixed-size and stack limits (weights on the heap, the conv tap by tap)."""
    torch.manual_seed(4)
    model = WaveNet(64, 1, 16, 8, True, True).eval()
    assert _render_error(tmp_path, "wavenet-gated+cabinet", (64, 1024, 3), model=model) < 1e-4


def test_non_finite_input_is_muted_and_resets_the_model(tmp_path):
    """The render runs the model as the plugin does (processGuarded): a block holding NaN or Inf
    comes out silent and the model restarts from its reset state, so what follows is exactly
    PyTorch's output for the rest of the signal from a fresh state, with no NaN ever let out."""
    rt, cxx = _rtneural_dir(), shutil.which("g++") or shutil.which("clang++")
    if rt is None or cxx is None:
        pytest.skip("needs a C++ compiler and FXFORGE_RTNEURAL_DIR (an RTNeural checkout)")
    import numpy as np
    from fxforge.nn.stream import process

    model = lively("lstm-2x8")
    project = generate(fake_run(model_name="wave-lstm", model=model), JuceConfig(out=tmp_path / "p"))
    exe = tmp_path / "render"
    compile_render_tool(cxx, rt, project.dir, exe)
    torch.manual_seed(3)
    x = (0.5 * torch.sin(torch.arange(4096) * 0.05) + 0.05 * torch.randn(4096)).to(torch.float32)
    x[1000], x[2500] = float("nan"), float("inf")  # in blocks 960..1023 and 2496..2559 (64-sample blocks)
    x.numpy().tofile(tmp_path / "in.f32")
    subprocess.run([str(exe), str(project.dir / "Resources/model_weights.json"), str(tmp_path / "in.f32"),
                    str(tmp_path / "out.f32"), "64"], check=True)
    y = np.fromfile(tmp_path / "out.f32", np.float32)
    assert np.isfinite(y).all()
    assert not y[960:1024].any() and not y[2496:2560].any()
    for start, stop in ((1024, 2496), (2560, 4096)):  # after each reset: PyTorch from a zero state
        ref = process(model, x[start:stop], 64).numpy()
        assert np.abs(ref).max() > 0.1
        assert np.max(np.abs(y[start:stop] - ref)) < 1e-4
    assert np.max(np.abs(y[:960] - process(model, x[:960], 64).numpy())) < 1e-4


def _build_prerequisites() -> str | None:
    from fxforge_juce.build import find_juce_package

    if os.environ.get("FXFORGE_SLOW") != "1":
        return ("slow (a C++ build of minutes): set FXFORGE_SLOW=1 (make test-all) and FXFORGE_RTNEURAL_DIR "
                "to an RTNeural checkout to run it")
    if _rtneural_dir() is None:
        return ("set FXFORGE_RTNEURAL_DIR to an RTNeural checkout "
                "(git clone https://github.com/jatinchowdhury18/RTNeural) to run the JUCE build test")
    if not shutil.which("cmake") or not (shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")):
        return "needs cmake and a C++ compiler (apt-get install cmake g++)"
    if not (os.environ.get("FXFORGE_JUCE_DIR") or find_juce_package()):
        return "needs JUCE: apt-get install juce-modules-source, or set FXFORGE_JUCE_DIR to a JUCE checkout"
    return None


def test_build_and_verify_plugin(tmp_path):
    """Builds the VST3 for each exportable shape and checks it against PyTorch at 5 block sizes.

    One project directory is re-exported per model (same plugin name), so JUCE
    compiles once and each further model rebuilds only its own files.
    """
    why = _build_prerequisites()
    if why:
        pytest.skip(why)
    pytest.importorskip("pedalboard")
    out = tmp_path / "Plug"
    for key, (name, _, section) in EXPORTABLE.items():
        run = make_run_dir(tmp_path / key, lively(key), f'name = "{name}"\n{section}')
        args = ["export", "juce", run, "--out", out, "--name", "Fxforge Verify", "--formats", "VST3,LV2", "--verify"]
        if os.environ.get("FXFORGE_JUCE_DIR"):
            args += ["--juce-dir", os.environ["FXFORGE_JUCE_DIR"]]
        r = cli(*args, timeout=1800)
        print(key, r.stdout[-3000:], r.stderr[-3000:])
        assert r.returncode == 0, f"{key}: {r.stderr[-3000:]}"
        assert "verify ok" in r.stderr, key
        for block in ("1", "17", "64", "512", "4096"):
            assert re.search(rf"│\s+{block} │", r.stderr), (key, block)
        assert "guitar-like DI peaking at" in r.stderr, key
        assert "the model's own float32 vs float64" in r.stderr or "numerically sensitive on this input (from" in r.stderr
        for probe in ("110 Hz burst, then silence", "loud low E (+6 dB), then silence"):
            assert re.search(rf"probe {re.escape(probe)}: input -?[\d.]+ dBFS, output peak -?[\d.]+ dBFS, "
                             r"(\d+ ms to -80 dBFS|never below -80 dBFS)", r.stderr), (key, probe)
        if shutil.which("jalv") and shutil.which("jackd"):  # the LV2 hosted by jalv, against the model
            m = re.search(r"LV2 in jalv \(JACK dummy backend\), 256-sample periods, after 24000 samples of silence: "
                          r"max abs error (\S+)", r.stderr)
            assert m and float(m[1]) <= 1e-4, (key, r.stderr[-2000:])
        elif shutil.which("lv2file"):
            assert re.search(r"LV2 in lv2file: (max abs error|not rendered: this lv2file could not instantiate)",
                             r.stderr), key

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

    # NaN or Inf from the host: that chunk is silent, the model restarts, nothing non-finite comes out.
    plugin.mix, plugin.output_db = 100.0, 0.0
    bad = x.copy()
    bad[0, 1000], bad[1, 3000] = np.nan, np.inf
    y = plugin.process(bad, SR, buffer_size=512, reset=True)
    assert np.isfinite(y).all()
    assert not y[0, 768:1024].any() and not y[1, 2816:3072].any()  # the plugin's 256-sample chunks holding them
    clean = plugin.process(x, SR, buffer_size=512, reset=True)
    assert np.array_equal(y[0, :512], clean[0, :512]) and np.abs(y[0, 1024:]).max() > 1e-3  # plays on
    plugin.input_db = 24.0  # gained past float range inside the plugin: muted, not Inf
    assert np.isfinite(plugin.process((1e38 * x).astype(np.float32), SR, buffer_size=512, reset=True)).all()

    # The LV2 declares absolute IRIs only (lilv refuses a plugin or UI at a relative one) and loads in lilv.
    from fxforge_juce.build import lv2_uris

    bundle = next((tmp_path / "Plug" / "build").glob("FxforgePlugin_artefacts/Release/LV2/*.lv2"))
    assert lv2_uris(bundle) == []
    manifest = (bundle / "manifest.ttl").read_text()
    assert "<https://fxforge.fxforge.invalid/plugins/fxforge-verify>" in manifest
    if shutil.which("lv2info"):
        info = subprocess.run(["lv2info", "https://fxforge.fxforge.invalid/plugins/fxforge-verify"], capture_output=True,
                              text=True, env={**os.environ, "LV2_PATH": str(bundle.parent)})
        assert info.returncode == 0 and "Fxforge Verify" in info.stdout, info.stdout + info.stderr


def test_lv2_check_says_why_jalv_is_not_used(tmp_path, monkeypatch):
    """Without jalv and jackd the LV2 check falls back to lv2file and names what is missing."""
    import numpy as np
    from fxforge_juce import build, lv2host

    real_which = shutil.which
    gone = ("jalv", "jackd", "lv2file")
    monkeypatch.setattr(lv2host.shutil, "which", lambda name: None if name in gone else real_which(name))
    x = np.zeros((2, 64), np.float32)
    result = build._verify_lv2(tmp_path, x, [x[0], x[1]], 64, SR, model=object())
    assert result == {"host": "lv2file", "skipped": "skipped: jalv: jalv, jackd not installed (apt-get install jalv "
                                                    "jackd2); lv2file is not installed (apt-get install lv2file)"}
