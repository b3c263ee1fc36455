"""Issue 6's catalogue: each way to hand fxforge something wrong, through the real CLI.

One row per case: an id, what to change in a small working folder, the command, and
the exact error. Every case must exit 2 with that one line alone on stderr ("error: "
added here), print nothing but blank lines on stdout, show no traceback, and leave the folder exactly
as it was: every path, size, mtime and content hash, a finished run in runs/ included
(so "nothing overwritten" means something).

The folder, fresh for each case: di.wav and amp.wav (a 1.5 s pair at 16 kHz, 32-bit
float), run.toml (conftest's TINY), notes.txt, and runs/tiny/<stamp>/ (conftest's
trained run, copied; ``{prev}`` in a row). Rows may also use ``{tmp}`` (the folder)
and ``{models}``, ``{schedulers}``, ``{providers}``, ``{devices}``, ``{available}``
(what is installed and available here, as the messages list them).

Speed: a fresh ``python -m fxforge`` spends ~4 s importing torch, so the cases run, as
every conftest ``run_cli`` call does, in processes forked from one that has already
imported it (tests/cli_server.py), each calling ``fxforge.cli.main()`` with the case's
argv and cwd, exactly as ``python -m fxforge`` does. FXFORGE_CATALOGUE_SUBPROCESS=1 (or
FXFORGE_TESTS_SUBPROCESS=1, for every test) runs each case as a fresh ``python -m fxforge``.
"""
from __future__ import annotations

import functools
import hashlib
import os
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import TINY, dry, effect, run_cli, write_config

SR = 16_000
N = 24_000  # samples: 1.5 s at 16 kHz

# ---------------------------------------------------------------- setups


# A setup is f(folder, names): it changes the fresh folder before the command runs.

def edit(old: str, new: str, name: str = "run.toml"):
    """Replace text in a file of the folder (the text must be there)."""
    def apply(folder: Path, names: dict) -> None:
        text = (folder / name).read_text()
        assert old in text, f"{old!r} not in {name}"
        (folder / name).write_text(text.replace(old, new))
    return apply


def add(text: str, name: str = "run.toml"):
    return lambda folder, names: (folder / name).write_text((folder / name).read_text() + text)


def put(name: str, content):
    """Write a file: text, bytes, or f(x, y) -> samples (a 16 kHz float WAV)."""
    def apply(folder: Path, names: dict) -> None:
        path = folder / fill(name, names)
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            x, y = pair()
            sf.write(path, content(x, y), SR, subtype="FLOAT")
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return apply


def target(fn, sr: int = SR):
    """amp.wav from f(x, y): x the dry input, y the processed target."""
    return lambda folder, names: sf.write(folder / "amp.wav", fn(*pair()), sr, subtype="FLOAT")


def cut(name: str, keep):
    """Keep the first ``keep`` bytes of a file (an int, or a fraction of its size)."""
    def apply(folder: Path, names: dict) -> None:
        raw = (folder / name).read_bytes()
        (folder / name).write_bytes(raw[: keep if isinstance(keep, int) else int(len(raw) * keep)])
    return apply


def both(*setups):
    def apply(folder: Path, names: dict) -> None:
        for setup in setups:
            setup(folder, names)
    return apply


def sweep(grid: str, head: str = 'base = "run.toml"'):
    return put("sweep.toml", f"{head}\n\n[grid]\n{grid}\n")


@functools.lru_cache(maxsize=1)
def pair() -> tuple[np.ndarray, np.ndarray]:
    """The dry input and its processed target (read-only: a setup copies before changing them)."""
    x = dry(N / 48_000)  # synth_di is generated at 48 kHz: N samples, written here at 16 kHz
    y = effect(x)
    x.flags.writeable = y.flags.writeable = False
    return x, y


def delayed(signal: np.ndarray, samples: int) -> np.ndarray:
    return np.concatenate([np.zeros(samples, np.float32), signal[:-samples]])


def with_sample(value: float, at: int = 1234):
    def fn(x, y):
        y = y.copy()
        y[at] = value
        return y
    return fn


STEREO = put("di.wav", lambda x, y: np.stack([x, x], 1))
STFT = edit('name = "wave-lstm"\nhidden_size = 8', 'name = "stft-lstm"\nn_fft = 128\nhop = 32\nhidden_size = 8')
RUN = "run run.toml"
FINITE = "Input should be a finite number"

# ---------------------------------------------------------------- the catalogue
# (id, setup or None, command, the error after "error: ")

CASES = [
    # -- the run file
    ("missing-run-file", None, "run absent.toml",
     "absent.toml: no such file"),
    ("run-file-is-a-directory", None, "run runs",
     "runs: is a directory, expected a TOML run file"),
    ("run-file-not-text", put("run.toml", b"\xff\xfe\x00name"), RUN,
     "run.toml: not a text file"),
    ("not-toml", put("run.toml", "name = \n"), RUN,
     "run.toml: invalid TOML: Invalid value (at line 1, column 8)"),
    ("unknown-section", add("\n[trian]\nepochs = 3\n"), RUN,
     "run.toml: trian: unknown section (did you mean 'train'?)"),
    ("unknown-key", edit("hidden_size = 8", "hiden_size = 8"), RUN,
     "run.toml: model.hiden_size: unknown key (did you mean 'hidden_size'?)"),
    ("wrong-type", edit("hidden_size = 8", 'hidden_size = "big"'), RUN,
     "run.toml: model.hidden_size: Input should be a valid integer, unable to parse string as an integer (got 'big')"),
    ("out-of-range", edit("hidden_size = 8", "hidden_size = -3"), RUN,
     "run.toml: model.hidden_size: Input should be greater than 0 (got -3)"),
    ("infinite-value", None, f"{RUN} --set data.max_latency_ms=inf",  # was: exit 1, OverflowError
     f"run.toml: data.max_latency_ms: {FINITE} (got inf)"),
    ("infinite-loss-weight", None, f"{RUN} --set train.loss.esr=inf",  # was: a run directory, then "diverged"
     f"run.toml: train.loss.esr: {FINITE} (got inf)"),
    ("bad-duration", None, f"{RUN} --set train.time_budget=soon",
     "run.toml: train.time_budget: must be a duration like '90s', '15m', '1h30m' or 'none' (got 'soon')"),
    ("bad-split", None, f"{RUN} --set 'data.split=[0.5, 0.5, 0.5]'",
     "run.toml: data.split: must be three positive fractions that add up to 1"),
    ("no-audio-source", edit('input = "di.wav"\ntarget = "amp.wav"\n', ""), RUN,
     'run.toml: data: give input and target recordings, or demo = "amp"'),
    ("run-name-traversal", edit('name = "tiny"', 'name = "../evil"'), RUN,
     "run.toml: name: must be letters, digits, '.', '_' or '-' (no path separators or '..'), "
     "at most 64 characters (got '../evil')"),
    ("run-name-separator", edit('name = "tiny"', 'name = "a/b"'), RUN,
     "run.toml: name: must be letters, digits, '.', '_' or '-' (no path separators or '..'), "
     "at most 64 characters (got 'a/b')"),
    # -- components
    ("no-model-name", edit('name = "wave-lstm"\n', ""), RUN,
     "run.toml: model.name: Field required (installed: {models})"),
    ("unknown-model", edit('name = "wave-lstm"', 'name = "wave-lstn"'), RUN,
     "run.toml: model.name: unknown model 'wave-lstn' (did you mean 'wave-lstm'? installed: {models})"),
    ("unknown-scheduler", edit('name = "cosine"', 'name = "cosin"'), RUN,
     "run.toml: scheduler.name: unknown scheduler 'cosin' (did you mean 'cosine'? installed: {schedulers})"),
    ("unknown-provider", edit("segment = 4096", 'segment = 4096\nprovider = "segmentz"'), RUN,
     "run.toml: data.provider: unknown provider 'segmentz' (did you mean 'segments'? installed: {providers})"),
    ("unknown-device", None, f"{RUN} --set train.device=tpu",
     "run.toml: train.device: unknown device 'tpu' (did you mean 'xpu'? installed: {devices})"),
    ("unavailable-device", None, f"{RUN} --set train.device=xpu",
     "run.toml: train.device: device 'xpu' is not available on this machine (available: {available})"),
    # -- --set
    ("set-malformed", None, f"{RUN} --set hidden_size",
     "--set 'hidden_size': expected section.key=value"),
    ("set-unknown-section", None, f"{RUN} --set trian.epochs=3",
     "run.toml: trian: unknown section (did you mean 'train'?)"),
    ("set-unknown-key", None, f"{RUN} --set optim.learning_rate=0.1",
     "run.toml: optim.learning_rate: unknown key (valid: grad_clip, lr, weight_decay)"),
    ("set-into-a-value", None, f"{RUN} --set model.hidden_size.x=1",
     "--set model.hidden_size.x=1: 'model.hidden_size' is a value, not a section"),
    # -- the STFT model
    ("stft-n_fft-too-small", STFT, f"{RUN} --set model.n_fft=8",
     "run.toml: model.n_fft: Input should be greater than or equal to 16 (got 8)"),
    ("stft-hop-zero", STFT, f"{RUN} --set model.hop=0",
     "run.toml: model.hop: Input should be greater than 0 (got 0)"),
    ("stft-window-does-not-overlap", STFT, f"{RUN} --set model.window=blackman --set model.hop=128",
     "run.toml: model: a blackman window of 128 with hop 128 does not overlap enough to reconstruct "
     "the signal; use a smaller hop"),
    ("stft-examples-all-warmup", STFT, f"{RUN} --set data.segment=64",  # was: exit 1, ZeroDivisionError, a run dir
     "run.toml: training examples are 64 samples long, not longer than train.warmup = 256; "
     "raise data.segment or lower train.warmup"),
    ("examples-all-warmup", None, f"{RUN} --set data.segment=100",
     "run.toml: training examples are 100 samples long, not longer than train.warmup = 256; "
     "raise data.segment or lower train.warmup"),
    # -- the recordings: paths
    ("missing-input", edit('"di.wav"', '"nope.wav"'), RUN,
     "nope.wav: no such file"),
    ("missing-target", edit('"amp.wav"', '"gone.wav"'), RUN,
     "gone.wav: no such file"),
    ("input-is-a-directory", edit('"di.wav"', '"runs"'), RUN,
     "runs: is a directory, expected an audio file"),
    # -- the recordings: contents
    ("not-audio", put("amp.wav", "this is not a wave file"), RUN,
     "amp.wav: not a readable audio file (Format not recognised.)"),
    ("empty-file", put("amp.wav", b""), RUN,
     "amp.wav: not a readable audio file (Format not recognised.)"),
    ("truncated-header", cut("amp.wav", 30), RUN,
     "amp.wav: not a readable audio file (Error in WAV file. No 'data' chunk marker.)"),
    ("truncated-data", cut("amp.wav", 0.5), RUN,  # was: "amp.wav: length 0.749 s differs from the input's ..."
     "amp.wav: truncated: its header declares 96000 bytes of audio but the file holds 47960 (a copy or a recording cut short?)"),
    ("truncated-after-header", cut("amp.wav", 300), RUN,  # was: read as a 0.001 s file, then "length ... differs"
     "amp.wav: truncated: its header declares 96000 bytes of audio but the file holds 220 (a copy or a recording cut short?)"),
    ("zero-length", put("amp.wav", lambda x, y: np.zeros(0, np.float32)), RUN,
     "amp.wav: holds no samples"),
    ("silent-target", target(lambda x, y: np.zeros_like(y)), RUN,
     "amp.wav: is silent (peak below -100 dBFS)"),
    ("silent-input", put("di.wav", lambda x, y: np.zeros_like(x)), RUN,
     "di.wav: is silent (peak below -100 dBFS)"),
    ("nan-sample", target(with_sample(np.nan)), RUN,
     "amp.wav: sample 1234 is not finite (nan)"),
    ("inf-sample", target(with_sample(-np.inf, at=77)), RUN,
     "amp.wav: sample 77 is not finite (-inf)"),
    ("stereo-without-channel", put("di.wav", lambda x, y: np.stack([x, x], 1)), RUN,
     "di.wav: has 2 channels; choose one with data.channel = 0..1"),
    ("channel-out-of-range", None, f"{RUN} --set data.channel=1",
     "di.wav: data.channel = 1 but the file has 1 channel(s)"),
    ("sample-rate-mismatch-no-resampling", target(lambda x, y: y[::2], sr=SR // 2),
     f"{RUN} --set data.resample=false",
     "amp.wav: sample rate 8000 Hz differs from the input's 16000 Hz (set data.resample = true to resample it)"),
    ("length-mismatch", target(lambda x, y: y[: 2 * N // 3]), RUN,
     "amp.wav: length 1.000 s differs from the input's 1.500 s by more than data.length_tolerance = 0.05 s"),
    ("swapped", both(put("di.wav", lambda x, y: delayed(y, 100)), target(lambda x, y: x)), RUN,
     "amp.wav: it leads the input by 102 samples; are input and target swapped?"),
    ("misaligned-beyond-window", target(lambda x, y: delayed(y, 2000)), RUN,  # was: "swapped?"
     "amp.wav: it lines up with the input 2002 samples (125.1 ms) late, beyond data.max_latency_ms = 50.0 ms; "
     "trim the recordings or raise it"),
    ("unrelated-target", target(lambda x, y: np.random.default_rng(0).normal(0, 0.1, N).astype(np.float32)),
     RUN,  # was: "are input and target swapped?"
     "amp.wav: no alignment with the input found within data.max_latency_ms = 50.0 ms (correlation 0.019)"),
    # -- starting points: --resume and --checkpoint
    ("neither-run-file-nor-resume", None, "run",
     "give a run file, or --resume RUN_DIR (not both)"),
    ("resume-with-set", None, "run --resume {prev} --set train.epochs=3",
     "--set cannot change a run being resumed; start a new run instead"),
    ("resume-not-a-run", None, "run --resume .",
     ".: not a run directory (no config.toml)"),
    ("resume-finished-run", None, "run --resume {prev}",
     "{prev}: this run has finished; start a new one, or use --checkpoint {prev}/model.pt"),
    ("checkpoint-missing", None, f"{RUN} --checkpoint nope.pt",
     "nope.pt: no such checkpoint"),
    ("checkpoint-not-a-checkpoint", None, f"{RUN} --checkpoint di.wav",  # was: "(IndexError: pop from empty list)"
     "di.wav: not a checkpoint (not a file torch.save wrote)"),
    # -- process and eval
    ("process-not-a-run", None, "process . di.wav out.wav",
     ".: not a run directory (no config.toml)"),
    ("process-missing-input", None, "process {prev} nope.wav out.wav",
     "nope.wav: no such file"),
    ("process-not-audio", None, "process {prev} notes.txt out.wav",
     "notes.txt: not a readable audio file (Format not recognised.)"),
    ("process-onto-its-input", None, "process {prev} di.wav di.wav",
     "di.wav: would overwrite the input"),
    ("process-unknown-output-format", None, "process {prev} di.wav out.mp4",  # was: exit 1, TypeError
     "out.mp4: cannot tell the audio format from the name (use .wav or .flac)"),
    ("process-output-folder-missing", None, "process {prev} di.wav nodir/out.wav",  # was: exit 1, LibsndfileError
     "nodir: no such directory"),
    ("process-weights-not-a-checkpoint", put("{prev}/model.pt", b"junk"), "process {prev} di.wav out.wav",
     "{prev}/model.pt: not a checkpoint (not a file torch.save wrote)"),
    ("process-summary-without-rate", put("{prev}/summary.json", '{"status": "finished"}'),  # was: exit 1, KeyError
     "process {prev} di.wav out.wav",
     "{prev}/summary.json: has no sample_rate"),
    ("eval-missing-target", None, "eval {prev} --input di.wav --target nope.wav",
     "nope.wav: no such file"),
    ("eval-not-audio", None, "eval {prev} --input notes.txt --target amp.wav",
     "notes.txt: not a readable audio file (Format not recognised.)"),
    ("eval-sample-rate", None, "eval {prev} --input di.wav --target amp.wav",
     "di.wav: sample rate 16000 Hz, but the model was trained at 48000 Hz"),
    ("process-stereo-without-channel", STEREO, "process {prev} di.wav out.wav",  # was: "data.channel"
     "di.wav: has 2 channels; choose one with --channel 0..1"),
    ("process-channel-out-of-range", None, "process {prev} di.wav out.wav --channel 1",
     "di.wav: --channel 1 but the file has 1 channel(s)"),
    ("eval-stereo-without-channel", STEREO, "eval {prev} --input di.wav --target amp.wav",
     "di.wav: has 2 channels; choose one with --channel 0..1"),
    ("eval-channel-out-of-range", None, "eval {prev} --input di.wav --target amp.wav --channel 3",
     "di.wav: --channel 3 but the file has 1 channel(s)"),
    # -- the command line itself (click's usage errors; was: a multi-line boxed panel)
    ("usage-out-of-range", None, "process {prev} di.wav out.wav --block 0",
     "fxforge process: Invalid value for '--block': Input should be greater than or equal to 1"),
    ("usage-negative-channel", None, "eval {prev} --input di.wav --target amp.wav --channel -1",
     "fxforge eval: Invalid value for '--channel': Input should be greater than or equal to 0"),
    ("usage-missing-argument", None, "process {prev} di.wav",
     "fxforge process: Missing argument 'output'."),
    ("usage-missing-option", None, "eval {prev} --input di.wav",
     "fxforge eval: Missing option '--target'."),
    ("usage-unknown-option", None, f"{RUN} --sett optim.lr=0.1",
     "fxforge run: No such option: --sett (Possible options: --set)"),
    ("usage-not-an-integer", None, "sweep sweep.toml --repeats two",
     "fxforge sweep: Invalid value for '--repeats': Input should be a valid integer, unable to parse string as an integer"),
    ("usage-unknown-command", None, "trian run.toml",  # click suggests since `fxforge train` exists
     "fxforge: No such command 'trian'. Did you mean 'train'?"),
    # -- show
    ("show-unknown-kind", None, "show gadget x",
     "unknown kind 'gadget' (one of: models, providers, schedulers, devices or exporters)"),
    ("show-unknown-model", None, "show model wave-lstn",
     "unknown model 'wave-lstn' (did you mean 'wave-lstm'? installed: {models})"),
    # -- export
    ("export-unknown-exporter", None, "export jucy {prev} --out plugin",
     "unknown exporter 'jucy' (did you mean 'juce'? installed: {exporters})"),
    ("export-missing-run", None, "export juce runs/nope --out plugin",
     "runs/nope: no such run directory"),
    ("export-not-a-run", None, "export juce . --out plugin",
     ".: not a run directory (no config.toml)"),
    ("export-unknown-option", None, "export juce {prev} --outt plugin",  # was: "out: Field required"
     "fxforge export juce: outt: unknown key (did you mean 'out'?) (and 1 more)"),
    ("export-no-out", None, "export juce {prev}",
     "fxforge export juce: out: Field required"),
    ("export-stray-argument", None, "export juce {prev} plugin",
     "unexpected argument 'plugin' (exporter options look like --key value)"),
    ("export-out-not-empty", put("plugin/keep.txt", "mine"), "export juce {prev} --out plugin",
     "--out plugin is a non-empty directory that is not an fxforge plugin project (pass --force to write into it)"),
    # -- sweep
    ("sweep-missing-file", None, "sweep nope.toml",
     "nope.toml: no such file"),
    ("sweep-unknown-key", put("sweep.toml", 'base = "run.toml"\nrepeat = 2\n'), "sweep sweep.toml",
     "sweep.toml: repeat: unknown key (did you mean 'repeats'?)"),
    ("sweep-missing-base", sweep("optim.lr = [0.01]", head='base = "nope.toml"'), "sweep sweep.toml",
     "sweep.toml: base: no such file (nope.toml)"),  # was: "nope.toml: no such file"
    ("sweep-bad-grid-key", sweep("optimm.lr = [0.01, 0.001]"), "sweep sweep.toml",
     "sweep.toml: grid.optimm: unknown section (did you mean 'optim'?) (trial lr-0.01_seed-0)"),
    ("sweep-empty-grid-list", sweep("optim.lr = []"), "sweep sweep.toml",
     "sweep.toml: grid.optim.lr: expected a non-empty list of values, e.g. [0.01, 0.001] (got [])"),
    ("sweep-grid-not-a-list", sweep("optim.lr = 0.01"), "sweep sweep.toml",
     "sweep.toml: grid.optim.lr: expected a non-empty list of values, e.g. [0.01, 0.001] (got 0.01)"),
    ("sweep-grid-value-out-of-range", sweep("optim.lr = [0.01, -1]"), "sweep sweep.toml",
     "sweep.toml: grid.optim.lr: Input should be greater than 0 (got -1) (trial lr--1_seed-0)"),
    ("sweep-set-fixes-a-swept-key", sweep("optim.lr = [0.01, 0.001]"), "sweep sweep.toml --set optim.lr=0.1",
     "--set optim.lr=0.1: optim.lr is swept by sweep.toml; it cannot also be fixed"),
    ("sweep-missing-recording", sweep('data.input = ["di.wav", "gone.wav"]'), "sweep sweep.toml",
     "sweep.toml: data.input: no such file ({tmp}/gone.wav) (trial input-gone.wav_seed-0)"),
    # was: every trial started, failed, and the sweep exited 0
    ("sweep-target-not-audio", both(put("amp.wav", "this is not a wave file"), sweep("optim.lr = [0.01, 0.001]")),
     "sweep sweep.toml", "sweep.toml: amp.wav: not a readable audio file (Format not recognised.) (trial lr-0.01_seed-0)"),
    ("sweep-grid-input-not-audio", sweep('data.input = ["di.wav", "notes.txt"]'), "sweep sweep.toml",
     "sweep.toml: notes.txt: not a readable audio file (Format not recognised.) (trial input-notes.txt_seed-0)"),
    ("sweep-stereo-without-channel", both(put("amp.wav", lambda x, y: np.stack([y, y], 1)), sweep("optim.lr = [0.01]")),
     "sweep sweep.toml", "sweep.toml: amp.wav: has 2 channels; choose one with data.channel = 0..1 (trial lr-0.01_seed-0)"),
    # -- demo-capture
    ("demo-unknown-kind", None, "demo-capture demo --kind bass",
     "--kind must be one of 'amp', 'cab', 'lead', 'lead-cab' (got 'bass')"),
    ("demo-would-overwrite", put("demo/input.wav", b"mine"), "demo-capture demo --seconds 1",
     "demo/input.wav: already exists; not overwriting"),
]

# ---------------------------------------------------------------- running the CLI

@pytest.fixture(scope="module")
def cli():
    fresh = bool(os.environ.get("FXFORGE_CATALOGUE_SUBPROCESS"))
    return lambda *args, cwd: run_cli(*args, cwd=cwd, timeout=300 if fresh else 120, fresh=fresh)


@pytest.fixture(scope="module")
def scene(tmp_path_factory, trained_run) -> tuple[Path, dict]:
    """The folder every case starts from, and the names its messages use."""
    from fxforge.registry import get_registry

    folder = tmp_path_factory.mktemp("catalogue-scene")
    x, y = pair()
    sf.write(folder / "di.wav", x, SR, subtype="FLOAT")
    sf.write(folder / "amp.wav", y, SR, subtype="FLOAT")
    write_config(folder, TINY)
    (folder / "notes.txt").write_text("not audio\n")
    prev = Path("runs") / "tiny" / trained_run.name
    shutil.copytree(trained_run, folder / prev)
    reg = get_registry()
    devices = reg.components["device"]
    kinds = ("model", "scheduler", "provider", "device", "exporter")
    names = {f"{{{kind}s}}": ", ".join(reg.names(kind)) for kind in kinds}
    names["{available}"] = ", ".join(n for n in reg.names("device") if devices[n].spec.is_available())
    names["{prev}"] = prev.as_posix()
    return folder, names


def snapshot(root: Path) -> dict:
    """Every path under root: a folder's mtime; a file's size, mtime and hash."""
    out = {".": root.stat().st_mtime_ns}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        rel = path.relative_to(root).as_posix()
        if path.is_dir():
            out[rel + "/"] = st.st_mtime_ns
        else:
            out[rel] = (st.st_size, st.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
    return out


def fill(text: str, names: dict) -> str:
    for key, value in names.items():
        text = text.replace(key, value)
    return text


@pytest.mark.parametrize("setup,command,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_refused_in_one_line_and_nothing_written(cli, scene, tmp_path, setup, command, expected):
    template, names = scene
    if command.startswith("export") and "juce" not in names["{exporters}"].split(", "):
        pytest.skip("the juce exporter is not installed (fxforge list exporters)")
    names = {**names, "{tmp}": str(tmp_path)}
    shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    if setup is not None:
        setup(tmp_path, names)
    before = snapshot(tmp_path)
    out = cli(*[fill(a, names) for a in shlex.split(command)], cwd=tmp_path)
    shown = f"exit {out.returncode}\nstdout: {out.stdout}\nstderr: {out.stderr}"
    assert "Traceback" not in out.stdout + out.stderr, shown
    assert out.returncode == 2, shown
    assert out.stderr.splitlines() == [f"error: {fill(expected, names)}"], shown
    assert out.stdout.strip() == "", shown  # (a refused `run` leaves the idle progress display's newline)
    after = snapshot(tmp_path)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"the refused command wrote or changed: {changed}"


@pytest.mark.parametrize("args", [["--help"], ["process", "--help"], ["eval", "--help"], ["sweep", "--help"]])
def test_help_still_prints_and_exits_0(cli, tmp_path, args):
    """main() runs click non-standalone (to make its usage errors one line); --help is untouched."""
    out = cli(*args, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Usage: fxforge" in out.stdout and out.stderr == ""
    if args[0] in ("process", "eval"):
        assert "--channel" in out.stdout
    assert not list(tmp_path.iterdir())


def test_no_command_prints_the_help_and_exits_2(cli, tmp_path):
    out = cli(cwd=tmp_path)
    assert out.returncode == 2 and out.stdout.count("Usage: fxforge [OPTIONS] COMMAND") == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
