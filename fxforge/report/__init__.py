"""report.html: one self-contained page per finished run (or per sweep), to listen and look.

No network and no external script: figures are inline PNG, audio clips are data: URIs,
the CSS and the A/B/X widget are inline (page.html, package data)."""
from __future__ import annotations

import html
import json
import logging
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from ..errors import FxforgeError

if TYPE_CHECKING:  # annotations only: the report is built without importing the run machinery
    from ..runs import RunDir

log = logging.getLogger("fxforge")

REPORT_NAME = "report.html"

# The thresholds NAM's trainer prints after training (neural-amp-modeler 0.13,
# nam/train/core.py _esr_comment), on plain ESR; the words beside them are ours.
VERDICTS = [
    (0.01, "Great", "hard to tell from the gear for most listeners", "#2e9d4f"),
    (0.035, "Not bad", "close; differences show side by side, in the difference track", "#8db526"),
    (0.1, "Might sound OK", "audible differences in tone or feel", "#e0a31a"),
    (0.3, "Probably won't sound great", "clearly a different sound", "#e0661a"),
    (float("inf"), "Something went wrong", "not a likeness: check the recordings and the alignment", "#c9302c"),
]


def verdict(esr: float | None) -> tuple[str, str, str]:
    if esr is None or not np.isfinite(esr):
        return "No verdict", "no test ESR", "#888"
    for limit, word, meaning, colour in VERDICTS:
        if esr < limit:
            return word, meaning, colour
    return VERDICTS[-1][1:]


@dataclass
class RunData:
    """What a run's page shows, gathered from a live trainer or from the run folder."""

    run: RunDir
    summary: dict
    config_text: str
    metrics: list[dict]
    sample_rate: int
    x: np.ndarray
    y: np.ndarray
    y_hat: np.ndarray
    response: Any = None
    latency: int = 0
    exports: list[dict] = field(default_factory=list)


def _exports(run: RunDir) -> list[dict]:
    path = run.path / "exports.jsonl"
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return rows


def from_trainer(run: RunDir, trainer, summary: dict) -> RunData:
    """At the end of a run: the trainer holds the test split and the best weights."""
    x, y, y_hat = (a.numpy().reshape(-1) for a in trainer.predictions("test"))
    return RunData(run, summary, run.config_path.read_text(), run.read_metrics(), trainer.sr, x, y, y_hat,
                   trainer.audio.response, trainer.audio.latency, _exports(run))


def _find_recordings(data, run_path: Path) -> None:
    """Relative recordings are where the run was started; from elsewhere, try the folder
    that holds runs/<name>/<stamp> (where `fxforge run` puts a run by default)."""
    started_in = run_path.resolve().parent.parent.parent
    for key in ("input", "target"):
        value = getattr(data, key, None)
        if value is not None and not Path(value).is_absolute() and not Path(value).exists() \
                and (started_in / value).exists():
            setattr(data, key, started_in / value)


def from_run_dir(path: Path | str) -> RunData:
    """A finished run from its folder: its config, best weights, and its recordings re-read and
    re-aligned as the run did (the test split is the same audio the run scored)."""
    import torch

    from ..data.audio import load_pair
    from ..runs import load_run, open_run
    from ..nn.stream import predict_clips

    rd = open_run(path)
    summary = rd.read_summary()
    if summary.get("status") != "finished":
        raise FxforgeError(f"{rd.summary_path}: status is {summary.get('status')!r}, not 'finished': no test "
                           f"results to report yet")
    r = load_run(rd.path)
    cfg = r.config
    _find_recordings(cfg.data, rd.path)
    try:
        pair = load_pair(cfg.data)
    except FxforgeError as exc:
        raise FxforgeError(f"{rd.config_path}: data: the recordings are needed for the players ({exc})") from None
    x, y = pair.splits(cfg.data.split, cfg.data.fraction)["test"]
    clip = int(cfg.train.val_clip_seconds * r.sample_rate)
    with torch.no_grad():
        y_hat = predict_clips(r.model, torch.from_numpy(x.copy()), clip,
                              context=max(cfg.train.warmup, 2048)).numpy()
    return RunData(rd, summary, rd.config_path.read_text(), rd.read_metrics(), r.sample_rate, x, y, y_hat,
                   pair.response, pair.latency, _exports(rd))


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt_esr(v: float | None) -> str:
    return "-" if v is None else f"{v:.5f}" if v >= 1e-4 else f"{v:.2e}"


def _kv(value: str, label: str) -> str:
    return f'<div class="kv"><b>{_e(value)}</b><span>{_e(label)}</span></div>'


def _template() -> str:
    return resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")


def render(title: str, body: str) -> str:
    return _template().replace("{{TITLE}}", _e(title)).replace("{{BODY}}", body)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB" if n >= 1e3 else f"{n} B"


def players_html(clips, prefix: str) -> str:
    cells = []
    for c in clips:
        cells.append(f'<div class="player"><h3>{_e(c.label)}</h3>'
                     f'<audio class="clip" id="{prefix}{c.key}" controls preload="metadata" data-seconds="{c.seconds:.3f}" '
                     f'src="{c.uri}"></audio><small>gain {c.gain_db:+.1f} dB · {_size(c.bytes)}</small></div>')
    return '<div class="players">' + "".join(cells) + "</div>"


def abx_html(prefix: str) -> str:
    return (f'<div class="abx" data-a="{prefix}target" data-b="{prefix}model">'
            '<div><button data-play="A">Play A (target)</button><button data-play="B">Play B (model)</button>'
            '<button data-play="X">Play X (?)</button><button data-stop>Stop</button></div>'
            '<div>X is: <button data-guess="A">A</button><button data-guess="B">B</button>'
            '<button data-reset>Start over</button></div>'
            '<div class="score">0 of 0 right</div><div class="last"></div>'
            '<p class="note">X is the target or the model, drawn at random after every answer. Switching keeps '
            'the play position: compare one phrase, not the whole clip. Both are at the same gain. '
            'Twelve answers with ten or more right happen by guessing 2% of the time.</p></div>')


def _scale_html(esr: float | None) -> str:
    rows, lower = [], 0.0
    word_here = verdict(esr)[0]
    for limit, word, meaning, _ in VERDICTS:
        span = f"{lower:g} – {limit:g}" if np.isfinite(limit) else f"≥ {lower:g}"
        cls = ' class="here"' if word == word_here else ""
        rows.append(f"<tr{cls}><td>{span}</td><td>{_e(word)}</td><td>{_e(meaning)}</td></tr>")
        lower = limit
    return ('<table><tr><th>test ESR</th><th>verdict</th><th>what it means</th></tr>' + "".join(rows) +
            '</table><p class="note">The thresholds are those NAM\'s trainer prints (neural-amp-modeler 0.13, '
            '<code>_esr_comment</code>: Great! below 0.01, Not bad! below 0.035, might sound ok below 0.1), applied '
            'to the plain ESR of the held-out test split. ESR = energy of (target − model) / energy of target. '
            'Pre-emphasis (1 − 0.95 z⁻¹) weighs the highs, where the ear is sharper.</p>')


def _figure(draw, *args) -> str | None:
    """One figure that cannot be drawn leaves a page without it, not no page."""
    try:
        return draw(*args)
    except Exception as exc:
        log.warning("report: no %s figure (%s: %s)", draw.__name__.replace("_", " "), type(exc).__name__, exc)
        return None


def run_body(d: RunData, clips, clip_info) -> str:
    from . import figures

    s, sr = d.summary, d.sample_rate
    word, meaning, colour = verdict(s.get("test_esr"))
    model_bytes = d.run.model_path.stat().st_size if d.run.model_path.exists() else 0
    lat = s.get("latency_samples", d.latency) or 0
    # the built-in demo capture is generated aligned: no alignment, so no method
    method = (s.get("alignment") or {}).get("method", "") or "none needed"
    n = min(len(d.y), len(d.y_hat))
    y, y_hat, x = d.y[:n], d.y_hat[:n], d.x[:n]
    seg = slice(int(clip_info["start_seconds"] * sr), int((clip_info["start_seconds"] + clip_info["seconds"]) * sr))
    ey = float(np.sum(np.square(y[seg], dtype=np.float64)))
    excerpt_esr = float(np.sum(np.square(y[seg] - y_hat[seg], dtype=np.float64)) / ey) if ey > 0 else None
    parts = [
        f'<h1>{_e(s.get("name", d.run.path.name))}</h1>',
        f'<p class="sub">model <b>{_e(s.get("model", "?"))}</b> · run <code>{_e(d.run.path)}</code> · '
        f'{_e(s.get("device", ""))} · fxforge {_e(s.get("fxforge", ""))}</p>',
        f'<div class="verdict" style="--vc:{colour}"><div class="word" id="verdict">{_e(word)}</div>'
        f'<div>{_e(meaning)}<div class="esr">test ESR {_fmt_esr(s.get("test_esr"))} · pre-emphasised '
        f'{_fmt_esr(s.get("test_esr_pre"))} (held-out test split)</div></div></div>',
        '<div class="grid">',
        _kv(_fmt_esr(s.get("test_esr")), "test ESR"),
        _kv(_fmt_esr(s.get("test_esr_pre")), "test ESR, pre-emphasised"),
        _kv(_fmt_esr(s.get("val_esr")), f"best validation ESR (epoch {s.get('best_epoch', '?')})"),
        _kv(f"{s.get('parameters', 0):,}", f"parameters · {_size(model_bytes)} model.pt"),
        _kv(f"{s.get('train_seconds', 0):.0f} s", f"training ({s.get('wall_seconds', 0) or 0:.0f} s wall)"),
        _kv(f"{(s.get('samples_per_second') or 0):,}", "samples/s"),
        _kv(f"{lat} samples", f"latency {1000 * lat / sr:.2f} ms ({method})"),
        _kv(f"{s.get('epochs', '?')} / {s.get('steps', '?')}", "epochs / steps"),
        "</div>",
        "<h2>Listen</h2>",
        f'<p class="note">{clip_info["seconds"]:.1f} s of the held-out test split, from '
        f'{clip_info["start_seconds"]:.1f} s (its loudest stretch); ESR of this excerpt {_fmt_esr(excerpt_esr)}. '
        f'Target and model share one gain ({clip_info["pair_gain_db"]:+.1f} dB, to −1 dBFS peak), so a level error '
        f'of the model is heard; the dry DI has its own. The difference is raised a further '
        f'{clip_info["difference_above_pair_db"]:+.1f} dB to the target\'s loudness (its own level: '
        f'{clip_info["difference_vs_target_db"] if clip_info["difference_vs_target_db"] is not None else "-"} dB '
        f're the target). Clips are {_e(clips[0].mime)} at {sr} Hz.</p>',
        players_html(clips, "clip-"),
        "<h2>Blind test (A/B/X)</h2>",
        abx_html("clip-"),
        "<h2>Verdict scale</h2>",
        _scale_html(s.get("test_esr")),
        "<h2>Figures</h2><div class=\"figs\">",
    ]
    figs = [
        (_figure(figures.learning_curves, d.metrics),
         "Learning curves: training loss and validation ESR against training time."),
        (_figure(figures.waveform, x, y, y_hat, sr), "Waveform overlay: the loudest 30 ms of the test split."),
        (_figure(figures.spectra, y, y_hat, sr),
         "Spectra (Welch) of target, model and their difference over the test split."),
        (_figure(figures.difference_spectrogram, y[seg], y_hat[seg], sr),
         "Spectrogram of the difference over the excerpt."),
        (_figure(figures.impulse_response, d.response, lat, sr),
         f"Estimated impulse response of the pair and the latency found: {lat} samples ({method})."),
    ]
    for uri, caption in figs:
        if uri:
            parts.append(f'<figure><img alt="{_e(caption)}" src="{uri}"><figcaption>{_e(caption)}</figcaption></figure>')
    if d.response is None:
        why = {"fixed": "the latency was set in the config", "none needed": "the pair needed no alignment"}
        parts.append(f'<p class="note">No impulse response: {why.get(method, "the latency was not estimated")} '
                     f'({lat} samples).</p>')
    parts.append("</div>")
    notes = list(s.get("notes") or []) + list(s.get("rollback_notes") or [])
    stress = s.get("stress")
    if stress:
        notes.append(f"stress check: {'passed' if stress.get('passed') else 'failed: ' + ', '.join(stress.get('failed') or [])}; "
                     f"stable up to input peak {stress.get('stable_up_to')}"
                     + (f"; {stress['warning']}" if stress.get("warning") else ""))
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>")
    parts.append("<h2>Plugin export</h2>")
    if d.exports:
        parts.append("<ul>" + "".join(f"<li><code>{_e(e.get('exporter'))}</code> → <code>{_e(e.get('out'))}</code> "
                                      f"({_e(e.get('time', ''))})</li>" for e in d.exports) + "</ul>")
    else:
        parts.append(f'<p>Not exported yet. <code>fxforge export juce {_e(d.run.path)} --out build/MyAmp --build</code> '
                     f'(VST3, LV2, standalone) or <code>fxforge export nam {_e(d.run.path)} -o model.nam</code>; '
                     f'then <code>fxforge report {_e(d.run.path)}</code> lists it here.</p>')
    parts.append("<h2>Resolved config</h2><pre>" + _e(d.config_text) + "</pre>")
    parts.append(f'<p class="note">Written {time.strftime("%Y-%m-%d %H:%M:%S")} by fxforge; '
                 f'<code>fxforge report {_e(d.run.path)}</code> writes it again.</p>')
    return "\n".join(parts)


def write_run_report(d: RunData) -> Path:
    from .audio import make_clips

    clips, info = make_clips(d.x, d.y, d.y_hat, d.sample_rate)
    from ..runs import atomic_write_bytes

    page = render(f"{d.summary.get('name', 'run')} – fxforge report", run_body(d, clips, info))
    path = d.run.path / REPORT_NAME
    atomic_write_bytes(path, page.encode("utf-8"))
    return path


def report_at_end(run: RunDir, trainer, summary: dict) -> Optional[Path]:
    """The end of a run: write the page; a failure is one warning, never a lost run."""
    from ..progress import phase

    phase("writing the report")
    try:
        return write_run_report(from_trainer(run, trainer, summary))
    except Exception as exc:  # the run is already saved; the page is a convenience
        log.warning("could not write %s: %s: %s", run.path / REPORT_NAME, type(exc).__name__, exc)
        return None


def report_kind(path: Path | str) -> str:
    """'run' or 'sweep'; else a one-line error. Cheap: the command says no before torch loads."""
    path = Path(path)
    if not path.is_dir():
        raise FxforgeError(f"{path}: no such directory")
    if (path / "sweep.json").is_file():
        return "sweep"
    if not (path / "summary.json").is_file() or not (path / "config.toml").is_file():
        raise FxforgeError(f"{path}: not a run or sweep directory (no summary.json and config.toml, no sweep.json)")
    return "run"


def write_report(path: Path | str) -> Path:
    """``fxforge report PATH``: a run folder or a sweep folder."""
    if report_kind(path) == "sweep":
        from .sweep import write_sweep_report

        return write_sweep_report(Path(path))
    return write_run_report(from_run_dir(path))
