"""The captures manifest: the TOML a user writes by hand or `fxforge capture` writes, read
back with every fault named by file and field, and knob values mapped to 0..1."""
import subprocess
import sys
import textwrap
import tomllib

import pytest

from fxforge.errors import FxforgeError
from fxforge.manifest import Knob, Manifest, Target, read_manifest, write_manifest

GOOD = """
version = 1
input = "dry.wav"

[knobs.drive]
min = 0.0
max = 1.0
default = 0.5

[knobs.tone]
min = -12
max = 12

[[targets]]
file = "a.wav"
knobs = { drive = 0.25, tone = 0 }
latency = 3

[[targets]]
file = "sub/b.wav"
knobs = { drive = 1.0, tone = -12 }
"""


def write(tmp_path, text, name="captures.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def refusal(tmp_path, text) -> str:
    path = write(tmp_path, text)
    with pytest.raises(FxforgeError) as exc:
        read_manifest(path)
    line = str(exc.value)
    assert "\n" not in line
    return line.removeprefix(f"{path}: ")


def test_reads_the_documented_layout_with_paths_relative_to_the_manifest(tmp_path):
    m = read_manifest(write(tmp_path, GOOD))
    assert m.names == ["drive", "tone"]  # the file's order is the conditioning order
    assert m.knobs["tone"].default == 0  # the midpoint when not given
    assert m.input_path == tmp_path / "dry.wav"
    assert [m.target_path(t) for t in m.targets] == [tmp_path / "a.wav", tmp_path / "sub" / "b.wav"]
    assert [t.latency for t in m.targets] == [3, None]
    # A folder holding captures.toml reads as the manifest in it.
    assert read_manifest(tmp_path).targets[1].knobs == {"drive": 1.0, "tone": -12.0}


def test_normalised_maps_each_knob_by_its_range_in_knob_order(tmp_path):
    m = read_manifest(write(tmp_path, GOOD))
    assert m.normalised({"tone": 6, "drive": 0.25}) == [0.25, 0.75]
    assert m.normalised({"drive": 1}) == [1.0, 0.5]  # a knob left out sits at its default
    with pytest.raises(FxforgeError, match=r"--knob drive: 1.5 is outside 0..1"):
        m.normalised({"drive": 1.5})
    with pytest.raises(FxforgeError, match=r"--knob gain: no such knob \(knobs: drive, tone\)"):
        m.normalised({"gain": 0.1})


def test_write_then_read_round_trips_and_writes_the_inline_layout(tmp_path):
    m = Manifest(input="dry.wav", knobs={"drive": Knob(min=0, max=10), "level": Knob(min=-1, max=1, default=0.2)},
                 targets=[Target(file="drive_0.1.wav", knobs={"drive": 0.1, "level": 0.0}, latency=0),
                          Target(file="drive 10.wav", knobs={"drive": 10, "level": 1}, latency=None)])
    path = tmp_path / "out" / "captures.toml"
    write_manifest(path, m)
    text = path.read_text()
    assert "knobs = { drive = 0.1, level = 0.0 }" in text and "[knobs.level]" in text
    assert not list(path.parent.glob(".*.tmp"))  # the atomic write leaves no temporary behind
    back = read_manifest(path)
    assert back.model_dump() == m.model_dump()
    assert back.names == ["drive", "level"] and back.knobs["drive"].default == 5
    assert back.target_path(back.targets[1]) == path.parent / "drive 10.wav"
    assert tomllib.loads(text)["targets"][0]["latency"] == 0


def test_write_refuses_a_manifest_that_would_not_read_back(tmp_path):
    m = Manifest.model_construct(version=1, input="dry.wav", knobs={"drive": Knob(min=0, max=1)},
                                 targets=[Target(file="a.wav", knobs={"drive": 2.0})])
    with pytest.raises(FxforgeError, match=r"captures.toml: targets\[0\].knobs.drive: 2 is outside 0..1"):
        write_manifest(tmp_path / "captures.toml", m)
    assert not (tmp_path / "captures.toml").exists()


@pytest.mark.parametrize("change, expected", [
    (("drive = 1.0, tone = -12", "drive = 1.4, tone = -12"), "targets[1].knobs.drive: 1.4 is outside 0..1"),
    (("drive = 1.0, tone = -12", "drive = 1.0"), "targets[1].knobs.tone: missing: every target names every knob"),
    (("drive = 1.0, tone = -12", "drive = 1, tone = 0, gain = 2"), "targets[1].knobs.gain: no such knob (knobs: drive, tone)"),
    (("drive = 1.0, tone = -12", "drive = 'hot', tone = 0"), "targets[1].knobs.drive: Input should be a valid number, unable to parse string as a number (got 'hot')"),
    (("file = \"sub/b.wav\"", "file = \"a.wav\""), "targets[1].file: a.wav is already targets[0]"),
    (("file = \"sub/b.wav\"", "file = \"dry.wav\""), "targets[1].file: dry.wav is the input"),
    (("file = \"sub/b.wav\"", "fil = \"sub/b.wav\""), "targets[1].fil: unknown key"),
    (("latency = 3", "latency = 2.5"), "targets[0].latency: Input should be a valid integer (got 2.5)"),
    (("min = -12", "min = 12"), "knobs.tone: min (12) must be below max (12)"),
    (("default = 0.5", "default = 2"), "knobs.drive.default: 2 is outside 0..1"),
    (("[knobs.tone]", "[knobs.tone]\nstep = 1"), "knobs.tone.step: unknown key"),
    (("max = 12", "max = inf"), "knobs.tone.max: inf is not a finite number"),
    (("version = 1", "version = 2"), "version: version 2 is not supported (this fxforge reads version 1)"),
    (("input = \"dry.wav\"", ""), "input: Field required"),
])
def test_every_fault_is_one_line_naming_the_field(tmp_path, change, expected):
    old, new = change
    assert old in GOOD
    assert refusal(tmp_path, GOOD.replace(old, new, 1)) == expected


def test_structural_faults_name_the_file(tmp_path):
    assert refusal(tmp_path, "version = 1\ninput = 'dry.wav'\n[knobs]\n[[targets]]\nfile='a.wav'\nknobs={}\n") \
        == "knobs: name at least one knob ([knobs.NAME] with min and max)"
    assert refusal(tmp_path, "version = 1\ninput = 'dry.wav'\ntargets = []\n[knobs.drive]\nmin=0\nmax=1\n") \
        == "targets: list at least one target ([[targets]] with file and knobs)"
    assert refusal(tmp_path, "input = ").startswith("invalid TOML: ")
    assert refusal(tmp_path, GOOD.replace("[knobs.tone]", '[knobs."tone 2"]').replace("tone = ", '"tone 2" = ')) \
        == "knobs.tone 2: a knob name is letters, digits and _, not starting with a digit"
    with pytest.raises(FxforgeError, match=r"nope.toml: no such file"):
        read_manifest(tmp_path / "nope.toml")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FxforgeError, match=r"empty: is a directory with no captures.toml"):
        read_manifest(empty)


def test_importing_the_manifest_loads_neither_torch_nor_numpy():
    code = ("import sys, fxforge.manifest\n"
            "print(','.join(m for m in ('torch', 'numpy', 'pedalboard') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "", out.stderr


def test_the_readme_example_for_a_pedal_reamped_by_hand_reads(tmp_path):
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("### Capture the knobs"):]
    block = section[section.index("A real pedal works the same way by hand"):]
    block = block[block.index("```toml\n") + 8:]
    m = read_manifest(write(tmp_path, block[: block.index("```")]))
    assert m.names == ["drive", "tone"] and m.normalised({"drive": 2}) == [0.2, 0.5]
    assert [t.latency for t in m.targets] == [0, None]
