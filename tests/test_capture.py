"""`fxforge capture`: the capture signal rendered through an effect at every knob setting,
written as dry.wav, a WAV per setting and captures.toml, each target checked as a recording is.

The build test (a real VST3 from our JUCE exporter) is slow and runs with FXFORGE_SLOW=1."""
import json
import os
import shlex
import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import pedalboard
import pytest
import soundfile as sf

from conftest import SR, TINY, run_cli, write_config
from fxforge.manifest import read_manifest

CHAIN = """
[[effect]]
type = "Distortion"
drive_db = "{drive} * 30"

[[effect]]
type = "LowpassFilter"
cutoff_frequency_hz = "1000 + {tone} * 8000"

[[effect]]
type = "Gain"
gain_db = -6
"""

# A renderer as a user's script would be: delays by 37 samples (a converter's latency),
# drives a tanh by the knob, writes a stereo file.
RENDERER = """
import sys
import numpy as np
import soundfile as sf
x, sr = sf.read(sys.argv[1], dtype="float32")
drive = float(sys.argv[3])
if drive > 0.9:
    print("warming up", file=sys.stderr)
    print("the pedal is on fire", file=sys.stderr)
    sys.exit(3)
y = np.concatenate([np.zeros(37, np.float32), 0.5 * np.tanh((1 + 9 * drive) * x)[:-37]])
sf.write(sys.argv[2], np.stack([y, y], axis=1), sr, subtype="FLOAT")
"""


def capture(tmp_path, *args, out="out"):
    quiet = ["-q"] if "-q" in args else []  # a global option: fxforge -q capture ...
    return run_cli(*quiet, "capture", out, "--seconds", "40", *(a for a in args if a != "-q"), cwd=tmp_path)


def one_line_error(result) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0].removeprefix("error: ")


@pytest.fixture
def chain(tmp_path):
    (tmp_path / "chain.toml").write_text(textwrap.dedent(CHAIN))
    return tmp_path / "chain.toml"


def test_a_two_knob_grid_from_a_pedalboard_chain(tmp_path, chain):
    r = capture(tmp_path, "--knob", "drive=0:1:3", "--knob", "tone=0.2,0.8", "--chain", chain)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # a clean capture: nothing to warn about
    m = read_manifest(tmp_path / "out" / "captures.toml")
    assert m.names == ["drive", "tone"]
    assert (m.knobs["drive"].min, m.knobs["drive"].max, m.knobs["tone"].min, m.knobs["tone"].max) == (0, 1, 0.2, 0.8)
    assert [t.knobs for t in m.targets] == [{"drive": d, "tone": t} for d in (0.0, 0.5, 1.0) for t in (0.2, 0.8)]
    assert [t.file for t in m.targets][:2] == ["drive_0_tone_0.2.wav", "drive_0_tone_0.8.wav"]
    assert all(t.latency == 0 for t in m.targets)  # the blips: these effects answer at once
    x, sr = sf.read(m.input_path, dtype="float32")
    assert sr == SR and len(x) == 40 * SR
    for t in m.targets:  # each target is the chain at that setting, sample for sample
        y, _ = sf.read(m.target_path(t), dtype="float32")
        board = pedalboard.Pedalboard([pedalboard.Distortion(drive_db=t.knobs["drive"] * 30),
                                       pedalboard.LowpassFilter(cutoff_frequency_hz=1000 + t.knobs["tone"] * 8000),
                                       pedalboard.Gain(gain_db=-6)])
        np.testing.assert_allclose(y, board(x[None], sr)[0], atol=1e-6)
    # The manifest round-trips as the trainer reads it: every file where it says.
    assert all(m.target_path(t).is_file() for t in m.targets)

    # Never overwritten: the same folder is refused until --force.
    again = capture(tmp_path, "--knob", "drive=0:1:2", "--knob", "tone=0.2,0.8", "--chain", chain)
    assert one_line_error(again) == "out: already holds a capture (captures.toml); not overwriting (--force to replace it)"
    forced = capture(tmp_path, "--knob", "drive=0:1:2", "--knob", "tone=0.2,0.8", "--chain", chain, "--force", "-q")
    assert forced.returncode == 0 and forced.stdout == "", forced.stderr
    assert len(read_manifest(tmp_path / "out").targets) == 4


def test_a_latin_hypercube_plan_is_seeded_and_fills_every_stratum(tmp_path, chain):
    r = capture(tmp_path, "--knob", "drive=0:1", "--knob", "tone=0:1", "--plan", "lhs:5", "--seed", "7",
                "--chain", chain, "-q")
    assert r.returncode == 0 and r.stdout == "", r.stderr
    m = read_manifest(tmp_path / "out" / "captures.toml")
    assert all(m.target_path(t).is_file() for t in m.targets)
    a = np.array([[t.knobs["drive"], t.knobs["tone"]] for t in m.targets])
    assert a.shape == (5, 2)
    for column in a.T:  # one point in each fifth of each knob's range
        assert sorted(np.floor(column * 5).astype(int)) == [0, 1, 2, 3, 4]

    from fxforge.data.capture import parse_knobs, plan_points

    knobs = parse_knobs(["drive=0:1", "tone=0:1"], [])
    assert plan_points(knobs, "lhs:5", 7) == [t.knobs for t in m.targets]  # --seed reproduces it
    assert plan_points(knobs, "lhs:5", 8) != plan_points(knobs, "lhs:5", 7)


def test_a_render_command_template_measures_its_latency(tmp_path):
    script = tmp_path / "render.py"
    script.write_text(RENDERER)
    template = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} {{input}} {{output}} {{drive}}"
    r = capture(tmp_path, "--knob", "drive=0,0.4,0.8", "--render", template)
    assert r.returncode == 0, r.stderr
    assert "rendering drive_0.4.wav (2/3)" in r.stdout  # piped: a plain line per setting
    m = read_manifest(tmp_path / "out")
    assert [t.latency for t in m.targets] == [37, 37, 37]
    x, _ = sf.read(m.input_path, dtype="float32")
    for t in m.targets:
        y, _ = sf.read(m.target_path(t), dtype="float32")
        assert y.ndim == 1 and len(y) == len(x)  # the first channel, mono, the input's length
        np.testing.assert_allclose(y[37:], 0.5 * np.tanh((1 + 9 * t.knobs["drive"]) * x[:-37]), atol=1e-6)

    # The manifest trains as it is: one conditioned model on every setting.
    run_toml = TINY.replace('input = "di.wav"\ntarget = "amp.wav"', 'captures = "out/captures.toml"')
    write_config(tmp_path, run_toml.replace("epochs = 2", "epochs = 1"))
    trained = run_cli("run", "run.toml", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished"
    assert summary["knobs"]["knobs"] == [{"name": "drive", "min": 0.0, "max": 0.8, "default": 0.4}]
    assert sorted(row["knobs"]["drive"] for row in summary["settings"]) == [0.0, 0.4, 0.8]

    # A failing command: its exit code and the last line it wrote to stderr.
    bad = capture(tmp_path, "--knob", "drive=0.5,1", "--render", template, out="bad")
    assert one_line_error(bad) == "--render: exit 3 rendering drive_1.wav at drive=1: the pedal is on fire"
    assert not (tmp_path / "bad" / "captures.toml").exists()  # no manifest for a capture cut short


def test_problems_in_a_rendered_target_are_one_line_warnings_naming_the_file(tmp_path):
    (tmp_path / "chain.toml").write_text('[[effect]]\ntype = "Gain"\ngain_db = "{level}"\n')
    r = capture(tmp_path, "--knob", "level=-200,0,24", "--chain", "chain.toml", "-q")
    assert r.returncode == 0, r.stderr
    warnings = r.stderr.strip().splitlines()
    assert warnings[0].startswith(f"warning: {os.path.join('out', 'level_-200.wav')}: is silent (peak below -100 dBFS)")
    assert warnings[1].startswith(f"warning: {os.path.join('out', 'level_24.wav')}: peaks at +")
    assert "above full scale" in warnings[1] and len(warnings) == 2
    m = read_manifest(tmp_path / "out")
    assert [t.latency for t in m.targets] == [None, 0, 0]  # silent: nothing to measure, data.latency decides


@pytest.mark.parametrize("args, expected", [
    (["--knob", "drive=0:1:3"], "fxforge capture: give exactly one source: --vst3 PLUGIN, --chain CHAIN.toml or --render 'COMMAND'"),
    (["--knob", "drive=0:1:one", "--chain", "chain.toml"], "--knob drive=0:1:one: COUNT must be a whole number, 2 or more (got 'one')"),
    (["--knob", "drive=0:1:3", "--chain", "chain.toml"],
     "chain.toml: effect[1].cutoff_frequency_hz: unknown knob 'tone' in '1000 + {tone} * 8000' (knobs: drive)"),
    (["--knob", "drive=0:1:3", "--vst3", "nope.vst3"], "nope.vst3: no such plugin"),
    (["--knob", "drive=0:1:3", "--render", "tool {input} {output} {drive} {gain}"],
     "--render: unknown placeholder {gain} (placeholders: {input}, {output}, {drive})"),
    (["--knob", "drive=0:1:3", "--knob", "tone=0:1:2", "--chain", "chain.toml", "--signal", "missing.wav"],
     "missing.wav: no such file"),
])
def test_bad_input_is_one_line_naming_the_option_and_exit_2(tmp_path, chain, args, expected):
    assert one_line_error(capture(tmp_path, *args)) == expected
    assert not (tmp_path / "out").exists()  # refused before anything is written


def refusal(fn, *args) -> str:
    from fxforge.errors import FxforgeError

    with pytest.raises(FxforgeError) as exc:
        fn(*args)
    assert "\n" not in str(exc.value)
    return str(exc.value)


# The same refusals, in-process: each CLI call above costs seconds of imports.
@pytest.mark.parametrize("knobs, ranges, plan, expected", [
    ([], [], "grid", "--knob: name at least one knob (--knob drive=0:1:5)"),
    (["drive"], [], "grid", "--knob drive: expected NAME=SPEC (drive=0:1:5 or drive=0.1,0.5,0.9)"),
    (["1drive=0:1:3"], [], "grid", "--knob 1drive=0:1:3: a knob name is letters, digits and _, not starting with a digit"),
    (["drive=1:0:3"], [], "grid", "--knob drive=1:0:3: MIN must be below MAX"),
    (["drive=0:1:1"], [], "grid", "--knob drive=0:1:1: COUNT must be a whole number, 2 or more (got '1')"),
    (["drive=0:x:3"], [], "grid", "--knob drive=0:x:3: 'x' is not a number"),
    (["drive=0:1:3", "drive=0,1"], [], "grid", "--knob drive=0,1: drive is given twice"),
    (["drive=0.5"], [], "grid", "--knob drive=0.5: one value gives no range; add --range drive=MIN:MAX"),
    (["drive=0.5,2"], ["drive=0:1"], "grid", "--knob drive=0.5,2: 2 is outside --range 0..1"),
    (["drive=0:1:3"], ["tone=0:1"], "grid", "--range tone: no --knob tone"),
    (["drive=0:1:3"], ["drive=1"], "grid", "--range drive=1: expected NAME=MIN:MAX"),
    (["drive=0:1"], [], "grid", "--knob drive: a grid needs values: give a count (0:1:5) or a list, or use --plan lhs:N"),
    (["drive=0:1:3"], [], "random", "--plan random: expected grid or lhs:N (N Latin-hypercube points)"),
    (["drive=0:1:3"], [], "lhs:1", "--plan lhs:1: N must be 2 or more"),
])
def test_a_bad_knob_plan_is_refused_naming_the_option(knobs, ranges, plan, expected):
    from fxforge.data.capture import parse_knobs, plan_points

    assert refusal(lambda: plan_points(parse_knobs(knobs, ranges), plan)) == expected


def test_a_list_with_a_range_and_a_single_value_knob_plan():
    from fxforge.data.capture import parse_knobs, plan_points

    (k,) = parse_knobs(["drive=0.9,0.1,0.5"], [])
    assert (k.values, k.min, k.max) == ([0.1, 0.5, 0.9], 0.1, 0.9)  # sorted; the range is the list's
    knobs = parse_knobs(["drive=0.5"], ["drive=0:1"])
    assert (knobs[0].min, knobs[0].max) == (0, 1) and plan_points(knobs, "grid") == [{"drive": 0.5}]
    assert plan_points(parse_knobs(["a=0:1:2", "b=0:2:3"], []), "grid") == [
        {"a": a, "b": b} for a in (0.0, 1.0) for b in (0.0, 1.0, 2.0)]  # the first knob slowest


@pytest.mark.parametrize("template, knobs, expected", [
    ("tool {input} {output} {drive} {gain}", ["drive"], "--render: unknown placeholder {gain} (placeholders: {input}, {output}, {drive})"),
    ("tool {input} {drive}", ["drive"], "--render: the command has no {output} (the output file)"),
    ("tool {input} {output}", ["drive"], "--render: the command has no {drive} (the knob's value)"),
    ("tool '{input} {output} {drive}", ["drive"], "--render: cannot split the command (No closing quotation)"),
    ("", ["drive"], "--render: the command is empty"),
])
def test_a_bad_render_template_is_refused_before_anything_runs(template, knobs, expected):
    from fxforge.data.capture import CommandSource

    assert refusal(lambda: CommandSource(template).check(knobs, [])) == expected


def test_a_render_command_that_cannot_run_or_writes_nothing(tmp_path):
    from fxforge.data.capture import CommandSource

    x = np.zeros(100, np.float32)
    sf.write(tmp_path / "dry.wav", x, SR)
    out = tmp_path / "out.wav"
    missing = CommandSource("no-such-renderer-xyz {input} {output} {drive}")
    assert refusal(missing.render, x, SR, {"drive": 0.5}, tmp_path / "dry.wav", out) == \
        "--render: no-such-renderer-xyz: command not found"
    silent = CommandSource(f"{shlex.quote(sys.executable)} -c pass {{input}} {{output}} {{drive}}")
    assert refusal(silent.render, x, SR, {"drive": 0.5}, tmp_path / "dry.wav", out) == \
        f"--render: the command exited 0 but wrote no {out} (is {{output}} where it writes?)"


def test_sources_one_and_only_one():
    from fxforge.data.capture import make_source

    assert refusal(make_source, None, "chain.toml", "x {input} {output} {drive}") == \
        "fxforge capture: give exactly one source: --vst3 PLUGIN, --chain CHAIN.toml or --render 'COMMAND' (got --chain, --render)"


@pytest.mark.parametrize("chain_text, knobs, expected", [
    ('[[effect]]\ntype = "Fuzz"\n', ["drive"], "chain.toml: effect[0].type: unknown effect 'Fuzz' (pedalboard's: Bitcrush,"),
    ('[[effect]]\ndrive_db = 3\n', ["drive"], "chain.toml: effect[0].type: missing (pedalboard's: "),
    ('[[effect]]\ntype = "VST3Plugin"\n', ["drive"], "chain.toml: effect[0].type: unknown effect 'VST3Plugin' (pedalboard's: "),
    ('[[effect]]\ntype = "Distortion"\ndrive = "{drive}"\n', ["drive"], "chain.toml: effect[0].drive: Distortion has no such parameter (drive_db)"),
    ('[[effect]]\ntype = "Distortion"\ndrive_db = [1, 2]\n', ["drive"], "chain.toml: effect[0].drive_db: expected a number, a string or an expression (got list)"),
    ('[[effect]]\ntype = "Distortion"\ndrive_db = "{drive} * gain"\n', ["drive"],
     "chain.toml: effect[0].drive_db: unknown knob 'gain' in '{drive} * gain' (knobs: drive)"),
    ('[[effect]]\ntype = "Distortion"\ndrive_db = "__import__(\'os\').system(\'x\') + {drive}"\n', ["drive"],
     "chain.toml: effect[0].drive_db: \"__import__('os').system('x') + {drive}\": only numbers, knob names, + - * / ** and "),
    ('[[effect]]\ntype = "Distortion"\ndrive_db = "{drive} *"\n', ["drive"], "chain.toml: effect[0].drive_db: '{drive} *' is not an expression"),
    ('[[effect]]\ntype = "Distortion"\ndrive_db = "log({drive})"\n', ["drive"], "chain.toml: effect[0].drive_db: 'log({drive})' at drive=0: math domain error"),
    ('[[effect]]\ntype = "Distortion"\ndrive_db = "{drive}"\n', ["drive", "gain"],
     'chain.toml: no parameter uses the knob gain (write "{gain}" in an expression)'),
    ('[[effect]]\ntype = "Convolution"\nmix = "{drive}"\n', ["drive"], "chain.toml: effect[0].impulse_response_filename: Convolution needs it"),
    ('[[effects]]\ntype = "Gain"\n', ["drive"], "chain.toml: effects: unknown key (the chain is a list of [[effect]] tables)"),
    ('effect = 3\n', ["drive"], "chain.toml: effect: give at least one [[effect]] table with a type"),
    ('[[effect]\n', ["drive"], "chain.toml: invalid TOML: "),
])
def test_a_bad_chain_is_one_line_naming_the_effect_and_key(tmp_path, monkeypatch, chain_text, knobs, expected):
    from fxforge.data.capture import ChainSource

    monkeypatch.chdir(tmp_path)
    (tmp_path / "chain.toml").write_text(chain_text)
    points = [dict.fromkeys(knobs, 0.0), dict.fromkeys(knobs, 1.0)]
    line = refusal(lambda: ChainSource(Path("chain.toml")).check(knobs, points))
    assert line.startswith(expected), line


class FakePlugin:
    """pedalboard's face of a hosted VST3: parameters by name, set as attributes."""

    class Parameter:
        def __init__(self, lo, hi):
            self.min_value, self.max_value = lo, hi

    def __init__(self):
        self.parameters = {"drive": self.Parameter(0.0, 10.0), "level": self.Parameter(-24.0, 24.0)}
        self.drive, self.level, self.seen = 5.0, 0.0, []

    def process(self, x, sample_rate, reset=True):
        self.seen.append((self.drive, self.level))
        return np.tanh(self.drive * x) * 10 ** (self.level / 20) * 0.3


def test_a_vst3_gets_its_parameters_set_by_name(tmp_path, monkeypatch):
    from fxforge.data import capture as cap

    plugin = FakePlugin()
    monkeypatch.setattr(pedalboard, "load_plugin", lambda path: plugin)
    (tmp_path / "Fake.vst3").mkdir()
    source = cap.Vst3Source(tmp_path / "Fake.vst3")
    knobs = cap.parse_knobs(["drive=1:9:2", "level=-6,0"], [])
    x, sr = cap.load_signal(None, 40, SR)
    m = cap.capture(tmp_path / "out", x, sr, knobs, cap.plan_points(knobs, "grid"), source)
    assert plugin.seen == [(1.0, -6.0), (1.0, 0.0), (9.0, -6.0), (9.0, 0.0)]  # in the plugin's own units
    assert [t.latency for t in m.targets] == [0] * 4

    with pytest.raises(cap.FxforgeError, match=r"^--knob gain: Fake.vst3 has no such parameter \(parameters: drive, level\)$"):
        source.check(["drive", "gain"], [{"drive": 1, "gain": 0}])
    with pytest.raises(cap.FxforgeError, match=r"^--knob level: 30 is outside the parameter's range -24..24$"):
        source.check(["level"], [{"level": 30.0}])


@pytest.mark.skipif(not shutil.which("lv2file") or not shutil.which("lv2info"), reason="needs lv2file (apt-get install lv2file)")
def test_the_readme_lv2_template_renders_guitarix_mxr_distortion(tmp_path):
    uri = "http://guitarix.sourceforge.net/plugins/gx_mxrdist_#_mxrdist_"
    import subprocess

    if subprocess.run(["lv2info", uri], capture_output=True).returncode != 0:
        pytest.skip("needs guitarix's LV2 plugins (apt-get install guitarix-lv2)")
    template = f"lv2file -i {{input}} -o {{output}} -p VOLUME:0.5 -p DRIVE:{{drive}} {uri}"
    r = capture(tmp_path, "--knob", "drive=0,1", "--render", template)
    assert r.returncode == 0, r.stderr
    m = read_manifest(tmp_path / "out")
    quiet, hot = (sf.read(m.target_path(t), dtype="float32")[0] for t in m.targets)
    assert np.sqrt(np.mean(hot**2)) > 1.5 * np.sqrt(np.mean(quiet**2))  # the drive knob drives
    assert all(t.latency is not None for t in m.targets)


def test_a_grid_from_a_vst3_built_by_our_juce_exporter(tmp_path):
    """Slow (a C++ build of minutes): FXFORGE_SLOW=1, as make test-all runs it."""
    pytest.importorskip("fxforge_juce", reason="pip install -e plugins/fxforge-juce")
    from test_export_juce import EXPORTABLE, _build_prerequisites, cli, lively, make_run_dir

    why = _build_prerequisites()
    if why:
        pytest.skip(why)
    name, _, section = EXPORTABLE["lstm-2x8"]
    run = make_run_dir(tmp_path, lively("lstm-2x8"), f'name = "{name}"\n{section}')
    args = ["export", "juce", run, "--out", tmp_path / "Plug", "--name", "Fxforge Capture", "--formats", "VST3", "--build"]
    if os.environ.get("FXFORGE_JUCE_DIR"):
        args += ["--juce-dir", os.environ["FXFORGE_JUCE_DIR"]]
    built = cli(*args, timeout=3600)
    assert built.returncode == 0, built.stderr[-3000:]
    vst3 = next((tmp_path / "Plug" / "build").glob("FxforgePlugin_artefacts/Release/VST3/*.vst3"))

    r = capture(tmp_path, "--vst3", vst3, "--knob", "mix=0:100:3", "--knob", "output_db=-6,0")
    assert r.returncode == 0, r.stderr
    m = read_manifest(tmp_path / "out")
    assert [t.knobs for t in m.targets] == [{"mix": a, "output_db": b} for a in (0.0, 50.0, 100.0) for b in (-6.0, 0.0)]
    assert all(t.latency == 0 for t in m.targets)  # the plugin reports and adds no latency
    x, _ = sf.read(m.input_path, dtype="float32")
    y = {(t.knobs["mix"], t.knobs["output_db"]): sf.read(m.target_path(t), dtype="float32")[0] for t in m.targets}
    # The knobs did what the plugin's parameters say, in their own units: all dry at mix 0, the
    # wet signal 6 dB down at output -6, half of each at mix 50.
    assert np.abs(y[100, 0] - x).max() > 1e-2
    np.testing.assert_allclose(y[0, 0], x, atol=1e-6)
    np.testing.assert_allclose(y[100, -6], 10 ** (-6 / 20) * y[100, 0], atol=1e-5)
    np.testing.assert_allclose(y[50, 0], 0.5 * (x + y[100, 0]), atol=1e-5)
