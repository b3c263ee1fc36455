"""Latency you can trust: the onset of the response, not the peak of a correlation.

A cabinet's response peaks milliseconds after it starts; correcting that peak makes the
target non-causal. These pairs are built so the true latency is known."""
import json

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from conftest import SR, dry, run_cli
from fxforge.data import align, reamp
from fxforge.data.audio import load_pair
from fxforge.config import DataConfig
from fxforge.data.demo import cabinet_ir


def delayed(s: np.ndarray, n: int) -> np.ndarray:
    return np.concatenate([np.zeros(n, s.dtype), s[: len(s) - n]])


def resonant_cab(peak: int, sign: int) -> np.ndarray:
    """A cabinet-like response that starts at sample 0 and peaks ``peak`` samples later:
    a low resonance, damped so that it peaks there (atan(3u) = u for u = 1.324), and a
    short cone break-up."""
    t = np.arange(4096)
    low = np.sin(1.324 * t / peak) * np.exp(-t / (3 * peak))
    return sign * (low + 0.2 * np.sin(2 * np.pi * 2500 * t / SR) * np.exp(-t / 40))


def amp(x: np.ndarray) -> np.ndarray:
    return 0.5 * np.tanh(6 * x)


def latency_of(x: np.ndarray, y: np.ndarray, tmp_path) -> tuple[int, list[str]]:
    sf.write(tmp_path / "di.wav", x.astype(np.float32), SR, subtype="FLOAT")
    sf.write(tmp_path / "amp.wav", y.astype(np.float32), SR, subtype="FLOAT")
    pair = load_pair(DataConfig(input=tmp_path / "di.wav", target=tmp_path / "amp.wav"))
    return pair.latency, pair.notes


@pytest.fixture(scope="module")
def x():
    return dry(8)


@pytest.mark.parametrize("peak", [60, 100, 150])
@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize("driven", [False, True], ids=["linear", "amp"])
def test_a_cabinet_peaking_late_is_not_latency(x, tmp_path, peak, sign, driven):
    y = signal.fftconvolve(amp(x) if driven else x, resonant_cab(peak, sign))[: len(x)]
    assert abs(int(np.argmax(np.abs(resonant_cab(peak, sign)))) - peak) <= 0.1 * peak  # the premise
    lag, _ = latency_of(x, y, tmp_path)
    assert lag == 0


@pytest.mark.parametrize("n", [1, 37, 211])
def test_a_pure_delay_is_measured_exactly(x, tmp_path, n):
    lag, notes = latency_of(x, delayed(x, n), tmp_path)
    assert lag == n
    assert any(f"measured latency {n} samples" in note for note in notes)


@pytest.mark.parametrize("n", [60, 150])
def test_delay_amp_and_cabinet_give_the_delay_never_more(x, tmp_path, n):
    y = delayed(signal.fftconvolve(amp(x), cabinet_ir())[: len(x)], n)
    lag, _ = latency_of(x, y, tmp_path)
    assert n - 2 * align.SAFETY <= lag <= n  # a noisy estimate is taken early, never late


def fuzz(x: np.ndarray) -> np.ndarray:
    """A fuzz: a hard clipper at 40 dB of gain between two tone filters."""
    pre = signal.lfilter(*signal.butter(1, 80, "high", fs=SR), x)
    return signal.lfilter(*signal.butter(2, 3000, fs=SR), 0.3 * np.clip(100 * pre, -1, 1))


@pytest.mark.parametrize("n", [40, 90])
def test_a_fuzz_gives_its_delay_never_more(x, tmp_path, n):
    # Its output is almost square, so its linear response spreads around lag 0 and rises over
    # a few samples out of the noise: taken a little early, never late.
    lag, notes = latency_of(x, delayed(fuzz(x), n), tmp_path)
    assert n - 4 * align.SAFETY <= lag <= n, notes


def test_a_response_buried_in_noise_leaves_latency_at_zero_and_says_why(x, tmp_path):
    # An octave-up rectifier: its output is nearly uncorrelated with the input, so the
    # linear response is noise; the faint linear bleed still lines it up in the window.
    rng = np.random.default_rng(0)
    y = delayed(np.abs(x) - np.mean(np.abs(x)) + 0.05 * x + 0.3 * rng.standard_normal(len(x)) * np.std(x), 90)
    lag, notes = latency_of(x, y, tmp_path)
    assert lag == 0
    assert any(note.startswith("latency left at 0: ") for note in notes), notes


def test_onset_finder_ignores_a_correlation_peak_after_the_onset():
    h = np.zeros(1200)
    h[256 + 30 :] = resonant_cab(140, -1)[1 : 1200 - 285]  # first non-zero tap at lag 30, peak near 170
    onset = align.find_onset(h, 256)
    assert onset.lag == 30 and onset.peak_lag > 150 and onset.polarity == -1 and onset.sure


# -- reamp signals: fxforge's own and NAM's layout ----------------------------------------

def rig(signal_in: np.ndarray, n: int) -> np.ndarray:
    return delayed(signal.fftconvolve(amp(signal_in), cabinet_ir())[: len(signal_in)].astype(np.float32), n)


def test_capture_signal_round_trip_through_the_cli(tmp_path):
    out = run_cli("capture-signal", "reamp.wav", "--seconds", "40", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    x, sr = sf.read(tmp_path / "reamp.wav", dtype="float32")
    assert sr == SR and len(x) == 40 * SR and np.max(np.abs(x)) <= 1.0
    assert reamp.recognise(x, sr).name == "fxforge capture signal v1"
    sf.write(tmp_path / "recorded.wav", rig(x, 150), SR, subtype="PCM_24")
    (tmp_path / "run.toml").write_text(
        'name = "cs"\n[data]\ninput = "reamp.wav"\ntarget = "recorded.wav"\nsegment = 4096\n'
        '[model]\nname = "wave-lstm"\nhidden_size = 4\n[train]\nepochs = 1\nbatch_size = 8\n'
        'tbptt = 1024\nwarmup = 256\nval_clip_seconds = 0.5\nstress = false\nstability.enabled = false\n')
    out = run_cli("run", "run.toml", "--set", "data.fraction=0.05", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (run_dir,) = (tmp_path / "runs" / "cs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["latency_samples"] == 150
    assert summary["alignment"]["method"] == "blips"
    assert summary["alignment"]["replicate_esr"] < 1e-6
    assert (run_dir / "plots" / "impulse_response.png").stat().st_size > 1000
    # Refused: too short, and never over an existing file.
    assert run_cli("capture-signal", "reamp.wav", cwd=tmp_path).stderr.strip() == \
        "error: reamp.wav: already exists; not overwriting"
    assert run_cli("capture-signal", "b.wav", "--seconds", "10", cwd=tmp_path).stderr.strip() == \
        "error: --seconds 10: a capture signal needs at least 40 s"


def test_a_rig_that_changed_between_takes_is_warned(tmp_path):
    x = reamp.capture_signal(40)
    y = rig(x, 20)
    y[-9 * SR :] *= 1.3  # the last take louder: a knob moved
    layout = reamp.recognise(x, SR)
    assert reamp.blip_latency(y, layout) == 20
    assert reamp.replicate_esr(y, layout) == pytest.approx(0.09, rel=0.05)
    sf.write(tmp_path / "di.wav", x, SR, subtype="FLOAT")
    sf.write(tmp_path / "amp.wav", y, SR, subtype="FLOAT")
    pair = load_pair(DataConfig(input=tmp_path / "di.wav", target=tmp_path / "amp.wav"))
    assert pair.latency == 20
    assert any(note.startswith("validation replicates differ: ESR 0.09") for note in pair.notes), pair.notes


def nam_v3_like(seconds: float = 40.0) -> np.ndarray:
    """A file laid out as NAM's v3 input (its real file cannot ship here): validation at the
    start and again at the end, silence, then blips at 10.5 s and 11.5 s, then playing."""
    n = int(seconds * SR)
    x = np.zeros(n, np.float32)
    validation = dry(9, seed=3)
    x[: len(validation)] = validation
    x[n - len(validation) :] = validation
    x[504_000] = x[552_000] = 0.9
    playing = dry(seconds - 30, seed=4)
    x[17 * SR : 17 * SR + len(playing)] = playing
    return x


def test_a_nam_v3_layout_is_recognised_and_its_blips_give_the_latency(tmp_path):
    x = nam_v3_like()
    layout = reamp.recognise(x, SR)
    assert layout is not None and layout.name == "NAM input v3.0.0"
    y = rig(x, 77)
    sf.write(tmp_path / "di.wav", x, SR, subtype="FLOAT")
    sf.write(tmp_path / "amp.wav", y, SR, subtype="FLOAT")
    pair = load_pair(DataConfig(input=tmp_path / "di.wav", target=tmp_path / "amp.wav"))
    assert pair.latency == 77
    assert pair.alignment["layout"] == "NAM input v3.0.0" and pair.alignment["method"] == "blips"
    assert pair.alignment["replicate_esr"] < 1e-6


def test_a_nam_file_is_known_by_its_md5_even_when_not_laid_out_as_expected(tmp_path, monkeypatch, x):
    # NAM's real files cannot ship here; a file given one of the layouts' hashes stands in.
    import dataclasses
    import hashlib

    sf.write(tmp_path / "input.wav", x, SR, subtype="PCM_24")
    md5 = hashlib.md5((tmp_path / "input.wav").read_bytes()).hexdigest()
    v3 = dataclasses.replace(reamp.NAM_LAYOUTS[0], md5=(md5,))
    monkeypatch.setattr(reamp, "NAM_LAYOUTS", (v3, *reamp.NAM_LAYOUTS[1:]))
    assert reamp.recognise(x, SR, tmp_path / "input.wav") is v3
    assert reamp.recognise(x, SR) is None  # the same audio without the file: its layout does not match


def test_an_ordinary_recording_is_not_taken_for_a_reamp_file(x):
    assert reamp.recognise(x, SR) is None


# -- a real third-party plugin (guitarix through lv2file), where installed ------------------

GX = "http://guitarix.sourceforge.net/plugins/gxmetal_amp#metal_amp"


def lv2(x: np.ndarray, uri: str, folder) -> np.ndarray:
    import subprocess

    sf.write(folder / "in.wav", x, SR, subtype="FLOAT")
    subprocess.run(["lv2file", "-i", str(folder / "in.wav"), "-o", str(folder / "out.wav"), uri],
                   check=True, capture_output=True)
    y, _ = sf.read(folder / "out.wav", dtype="float32", always_2d=True)
    return y[: len(x), 0]


@pytest.mark.skipif(not __import__("shutil").which("lv2file"), reason="needs lv2file and guitarix-lv2 (Debian)")
@pytest.mark.parametrize("late", [0, 150])
def test_a_real_amp_plugin_gives_its_impulse_onset_plus_the_delay(x, tmp_path, late):
    impulse = np.zeros(SR, np.float32)
    impulse[SR // 2] = 0.05
    try:
        response = np.abs(lv2(impulse, GX, tmp_path)[SR // 2 :])
    except Exception as exc:  # lv2file present, the plugin not
        pytest.skip(f"guitarix's GxMetal Amp could not be rendered ({exc})")
    onset = int(np.flatnonzero(response > 0.01 * response.max())[0])  # -40 dB: the response has begun
    y = delayed(lv2(x, GX, tmp_path), late)
    lag, notes = latency_of(x, y, tmp_path)
    assert max(0, onset + late - 2 * align.SAFETY) <= lag <= onset + late, notes
