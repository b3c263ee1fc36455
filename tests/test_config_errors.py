"""Each config fault gives its exact one-line message, exit 2, and writes nothing."""
import pytest

from conftest import TINY, run_cli, write_config

CASES = [
    # (id, run-file text or None for TINY, extra CLI args, expected stderr)
    ("not-toml", "name = \n", [],
     "error: run.toml: invalid TOML: Invalid value (at line 1, column 8)"),
    ("unknown-section", TINY + "\n[trian]\nepochs = 3\n", [],
     "error: run.toml: trian: unknown section (did you mean 'train'?)"),
    ("unknown-key", TINY.replace("hidden_size = 8", "hiden_size = 8"), [],
     "error: run.toml: model.hiden_size: unknown key (did you mean 'hidden_size'?)"),
    ("wrong-type", TINY.replace("hidden_size = 8", 'hidden_size = "big"'), [],
     "error: run.toml: model.hidden_size: Input should be a valid integer, unable to parse string as an integer (got 'big')"),
    ("out-of-range", TINY.replace("hidden_size = 8", "hidden_size = -3"), [],
     "error: run.toml: model.hidden_size: Input should be greater than 0 (got -3)"),
    ("unknown-model", TINY.replace('name = "wave-lstm"', 'name = "wave-lstn"'), [],
     "error: run.toml: model.name: unknown model 'wave-lstn' (did you mean 'wave-lstm'? installed: "),
    ("unknown-scheduler", TINY.replace('name = "cosine"', 'name = "cosin"'), [],
     "error: run.toml: scheduler.name: unknown scheduler 'cosin' (did you mean 'cosine'? installed: "),
    ("unknown-device", None, ["--set", "train.device=tpu"],
     "error: run.toml: train.device: unknown device 'tpu' (did you mean 'xpu'? installed: cpu, cuda, mps, xpu)"),
    ("unavailable-device", None, ["--set", "train.device=cuda"],
     "error: run.toml: train.device: device 'cuda' is not available on this machine (available: cpu)"),
    ("set-unknown-key", None, ["--set", "optim.learning_rate=0.1"],
     "error: run.toml: optim.learning_rate: unknown key (valid: grad_clip, lr, weight_decay)"),
    ("set-into-value", None, ["--set", "model.hidden_size.x=1"],
     "error: --set model.hidden_size.x=1: 'model.hidden_size' is a value, not a section"),
    ("set-malformed", None, ["--set", "hidden_size"],
     "error: --set 'hidden_size': expected section.key=value"),
    ("missing-input", TINY.replace('"di.wav"', '"nope.wav"'), [],
     "error: nope.wav: no such file"),
    ("input-is-dir", TINY.replace('"di.wav"', '"."'), [],
     "error: .: is a directory, expected an audio file"),
    ("run-name-traversal", TINY.replace('name = "tiny"', 'name = "../evil"'), [],
     "error: run.toml: name: must be letters, digits, '.', '_' or '-' (no path separators or '..'), at most 64 characters (got '../evil')"),
    ("bad-duration", None, ["--set", "train.time_budget=soon"],
     "error: run.toml: train.time_budget: must be a duration like '90s', '15m', '1h30m' or 'none' (got 'soon')"),
    ("no-audio-source", TINY.replace('input = "di.wav"\ntarget = "amp.wav"\n', ""), [],
     "error: run.toml: data: give input and target recordings, or demo = \"amp\""),
    ("bad-split", None, ["--set", "data.split=[0.5, 0.5, 0.5]"],
     "error: run.toml: data.split: must be three positive fractions that add up to 1"),
    ("no-model-name", TINY.replace('name = "wave-lstm"\n', ""), [],
     "error: run.toml: model.name: Field required (installed: "),
]


@pytest.mark.parametrize("text,args,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_config_error(workdir, text, args, expected):
    if text is not None:
        write_config(workdir, text)
    out = run_cli("run", "run.toml", *args, cwd=workdir)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(expected) if expected.endswith(": ") else lines[0] == expected
    assert not (workdir / "runs").exists()


def test_missing_run_file(tmp_path):
    out = run_cli("run", "absent.toml", cwd=tmp_path)
    assert (out.returncode, out.stderr.strip()) == (2, "error: absent.toml: no such file")
