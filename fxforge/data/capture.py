"""`fxforge capture`: the capture signal rendered through an effect at every point of a
knob plan, written as a dry file, one target per setting and a captures manifest.

Three sources render a setting: a VST3 hosted by pedalboard (parameters set by name), a
chain of pedalboard's own effects described in TOML (parameters may be expressions over
the knobs), and any command line given as a template (an LV2 through lv2file, a script
driving hardware). Each rendered target is checked as a recording is: the latency from
the calibration blips, silence, clipping, the two validation takes.
"""
from __future__ import annotations

import ast
import itertools
import math
import operator
import re
import shlex
import string
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..errors import FxforgeError
from ..manifest import KNOB_NAME, MANIFEST_NAME, Knob, Manifest, Target, write_manifest

DRY_NAME = "dry.wav"
FULL_SCALE = 0.999      # a sample this close to 0 dBFS counts towards clipping
CLIP_RUN = 3            # consecutive samples at full scale: a flat top, not a peak that touched it
LENGTH_TOLERANCE_S = 0.05  # as data.length_tolerance: a renderer a block short is fine, more is not


def _fmt(v: float) -> str:
    return f"{v:.10g}"


# --- the knob plan -----------------------------------------------------------------------

@dataclass
class KnobPlan:
    name: str
    values: list[float]
    min: float
    max: float


def _number(text: str, where: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise FxforgeError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(v):
        raise FxforgeError(f"{where}: {text!r} is not a finite number")
    return v


def _split(option: str, text: str) -> tuple[str, str]:
    name, eq, spec = text.partition("=")
    name = name.strip()
    if not eq or not name or not spec.strip():
        raise FxforgeError(f"{option} {text}: expected NAME=SPEC (drive=0:1:5 or drive=0.1,0.5,0.9)")
    if not KNOB_NAME.match(name):
        raise FxforgeError(f"{option} {text}: a knob name is letters, digits and _, not starting with a digit")
    return name, spec.strip()


def parse_knobs(knobs: list[str], ranges: list[str]) -> list[KnobPlan]:
    """``--knob drive=0:1:5`` (min:max:count, inclusive) or ``--knob drive=0.1,0.5,0.9``
    (range min..max of the list unless ``--range drive=0:1``)."""
    if not knobs:
        raise FxforgeError("--knob: name at least one knob (--knob drive=0:1:5)")
    given: dict[str, tuple[float, float]] = {}
    for text in ranges:
        name, spec = _split("--range", text)
        parts = spec.split(":")
        if len(parts) != 2:
            raise FxforgeError(f"--range {text}: expected NAME=MIN:MAX")
        lo, hi = (_number(p, f"--range {text}") for p in parts)
        if not lo < hi:
            raise FxforgeError(f"--range {text}: MIN must be below MAX")
        given[name] = (lo, hi)
    plans: list[KnobPlan] = []
    for text in knobs:
        name, spec = _split("--knob", text)
        where = f"--knob {text}"
        if any(p.name == name for p in plans):
            raise FxforgeError(f"{where}: {name} is given twice")
        if ":" in spec:
            parts = spec.split(":")
            if len(parts) not in (2, 3):
                raise FxforgeError(f"{where}: expected MIN:MAX:COUNT (0:1:5)")
            lo, hi = (_number(p, where) for p in parts[:2])
            if not lo < hi:
                raise FxforgeError(f"{where}: MIN must be below MAX")
            if len(parts) == 3:
                if not re.fullmatch(r"\d+", parts[2].strip()) or int(parts[2]) < 2:
                    raise FxforgeError(f"{where}: COUNT must be a whole number, 2 or more (got {parts[2]!r})")
                values = [float(_fmt(v)) for v in np.linspace(lo, hi, int(parts[2]))]
            else:
                values = []  # a range alone: enough for a Latin hypercube, not for a grid
            lo_r, hi_r = given.get(name, (lo, hi))
        else:
            values = sorted({_number(p.strip(), where) for p in spec.split(",") if p.strip()})
            if not values:
                raise FxforgeError(f"{where}: no values")
            if name not in given and len(values) < 2:
                raise FxforgeError(f"{where}: one value gives no range; add --range {name}=MIN:MAX")
            lo_r, hi_r = given.get(name, (values[0], values[-1]))
        outside = [v for v in values if not lo_r <= v <= hi_r]
        if outside:
            raise FxforgeError(f"{where}: {_fmt(outside[0])} is outside --range {_fmt(lo_r)}..{_fmt(hi_r)}")
        plans.append(KnobPlan(name, values, lo_r, hi_r))
    unused = sorted(set(given) - {p.name for p in plans})
    if unused:
        raise FxforgeError(f"--range {unused[0]}: no --knob {unused[0]}")
    return plans


def plan_points(knobs: list[KnobPlan], plan: str, seed: int = 0) -> list[dict[str, float]]:
    """Every setting to render: the full grid (the first knob slowest), or N points of a
    seeded Latin hypercube over the knobs' ranges."""
    plan = plan.strip()
    if plan == "grid":
        for k in knobs:
            if not k.values:
                raise FxforgeError(f"--knob {k.name}: a grid needs values: give a count ({_fmt(k.min)}:{_fmt(k.max)}:5) "
                                   "or a list, or use --plan lhs:N")
        return [dict(zip((k.name for k in knobs), combo)) for combo in itertools.product(*(k.values for k in knobs))]
    m = re.fullmatch(r"lhs:(\d+)", plan)
    if not m:
        raise FxforgeError(f"--plan {plan}: expected grid or lhs:N (N Latin-hypercube points)")
    n = int(m.group(1))
    if n < 2:
        raise FxforgeError(f"--plan {plan}: N must be 2 or more")
    from scipy.stats import qmc

    u = qmc.LatinHypercube(d=len(knobs), seed=seed).random(n)
    # Rounded to 1e-4 of each range, so file names and the manifest read as the settings do.
    return [{k.name: float(_fmt(k.min + round(float(row[j]), 4) * (k.max - k.min))) for j, k in enumerate(knobs)}
            for row in u]


def target_name(setting: dict[str, float], taken: set[str]) -> str:
    stem = "_".join(f"{name}_{v:.6g}" for name, v in setting.items())
    name, i = f"{stem}.wav", 2
    while name in taken or name == DRY_NAME:
        name, i = f"{stem}-{i}.wav", i + 1
    taken.add(name)
    return name


# --- sources -----------------------------------------------------------------------------

class Source:
    """Renders the dry signal at one setting; ``check`` refuses what cannot work before
    anything is rendered."""

    describe = "a source"
    warn: Callable[[str], None] = staticmethod(lambda message: None)

    def check(self, names: list[str], points: list[dict[str, float]]) -> None:
        pass

    def render(self, x: np.ndarray, sample_rate: int, setting: dict[str, float], dry: Path, out: Path) -> np.ndarray:
        raise NotImplementedError


def _process(plugin, x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono in, the first channel out; a plugin with a stereo-only bus gets the signal on both."""
    try:
        y = plugin.process(x[None, :], float(sample_rate), reset=True)
    except (RuntimeError, ValueError) as exc:
        if "channel" not in str(exc).lower():
            raise
        y = plugin.process(np.stack([x, x]), float(sample_rate), reset=True)
    y = np.asarray(y, np.float32)
    return y[0] if y.ndim == 2 else y


# -- a chain of pedalboard's effects ---

_HOSTS = {"Chain", "ExternalPlugin", "Mix", "Pedalboard", "Plugin", "PluginContainer", "VST3Plugin",
          "AudioUnitPlugin"}
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.Pow: operator.pow, ast.USub: operator.neg, ast.UAdd: operator.pos}
_FUNCS = {"min": min, "max": max, "abs": abs, "exp": math.exp, "log": math.log, "log10": math.log10,
          "sqrt": math.sqrt}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def _effects() -> dict[str, type]:
    import pedalboard

    return {n: c for n in dir(pedalboard) if not n.startswith("_") and n not in _HOSTS
            for c in [getattr(pedalboard, n)] if isinstance(c, type) and issubclass(c, pedalboard.Plugin)}


def _parameters(cls: type) -> dict[str, bool]:
    """The constructor's keyword parameters (name: required), from pybind11's signature line."""
    doc = (cls.__init__.__doc__ or "").strip().splitlines()[0] if cls.__init__.__doc__ else ""
    inner = doc[doc.find("(") + 1 : doc.rfind(")")]
    params, depth, current = [], 0, ""
    for ch in inner:  # split on top-level commas only: Union[str, ndarray] holds one
        depth += (ch in "[(") - (ch in "])")
        if ch == "," and depth == 0:
            params.append(current)
            current = ""
        else:
            current += ch
    params.append(current)
    out = {}
    for p in params:
        m = re.match(r"\s*(\w+)\s*:", p)
        if m and m.group(1) != "self":
            out[m.group(1)] = "=" not in p
    return out


def _evaluate(expr: str, values: dict[str, float], where: str) -> float:
    """An arithmetic expression over the knobs: numbers, + - * / **, and min, max, abs,
    exp, log, log10, sqrt. Nothing else runs."""
    text = _PLACEHOLDER.sub(lambda m: m.group(1).strip(), expr)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise FxforgeError(f"{where}: {expr!r} is not an expression") from None

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in values:
                raise FxforgeError(f"{where}: unknown knob {node.id!r} in {expr!r} (knobs: {', '.join(values)})")
            return values[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.operand))
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS
                and not node.keywords):
            return _FUNCS[node.func.id](*map(ev, node.args))
        raise FxforgeError(f"{where}: {expr!r}: only numbers, knob names, + - * / ** and "
                           f"{', '.join(_FUNCS)} are allowed")

    try:
        v = ev(tree)
    except FxforgeError:
        raise
    except (ArithmeticError, ValueError, TypeError) as exc:
        raise FxforgeError(f"{where}: {expr!r} at {_setting_text(values)}: {exc}") from None
    if not math.isfinite(v):
        raise FxforgeError(f"{where}: {expr!r} is not finite at {_setting_text(values)}")
    return float(v)


def _setting_text(setting: dict[str, float]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in setting.items())


class ChainSource(Source):
    """A chain of pedalboard's effects from a TOML file::

        [[effect]]
        type = "Distortion"
        drive_db = "{drive} * 30"     # a string holding {knob}: an expression over the knobs
        [[effect]]
        type = "LowpassFilter"
        cutoff_frequency_hz = 4000
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.describe = f"the chain in {self.path}"
        if not self.path.is_file():
            raise FxforgeError(f"{self.path}: no such file")
        try:
            doc = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise FxforgeError(f"{self.path}: not a text file") from None
        except tomllib.TOMLDecodeError as exc:
            raise FxforgeError(f"{self.path}: invalid TOML: {exc}") from None
        extra = sorted(set(doc) - {"effect"})
        if extra:
            raise FxforgeError(f"{self.path}: {extra[0]}: unknown key (the chain is a list of [[effect]] tables)")
        effects = doc.get("effect")
        if not isinstance(effects, list) or not effects or not all(isinstance(e, dict) for e in effects):
            raise FxforgeError(f"{self.path}: effect: give at least one [[effect]] table with a type")
        known = _effects()
        self.effects: list[tuple[str, type, dict]] = []
        for i, e in enumerate(effects):
            where = f"{self.path}: effect[{i}]"
            kind = e.get("type")
            if not isinstance(kind, str) or kind not in known:
                raise FxforgeError(f"{where}.type: " + (f"unknown effect {kind!r}" if kind is not None else "missing")
                                   + f" (pedalboard's: {', '.join(sorted(known))})")
            params = _parameters(known[kind])
            for key, value in e.items():
                if key == "type":
                    continue
                if key not in params:
                    raise FxforgeError(f"{where}.{key}: {kind} has no such parameter "
                                       f"({', '.join(params) or 'it takes none'})")
                if not isinstance(value, (int, float, str, bool)):
                    raise FxforgeError(f"{where}.{key}: expected a number, a string or an expression "
                                       f"(got {type(value).__name__})")
            missing = [p for p, required in params.items() if required and p not in e]
            if missing:
                raise FxforgeError(f"{where}.{missing[0]}: {kind} needs it")
            self.effects.append((kind, known[kind], {k: v for k, v in e.items() if k != "type"}))

    def _value(self, value, setting: dict[str, float], where: str):
        if isinstance(value, str):
            if _PLACEHOLDER.search(value):
                return _evaluate(value, setting, where)
            candidate = self.path.parent / value  # a file a parameter names (an impulse response)
            return str(candidate) if not Path(value).is_absolute() and candidate.exists() else value
        return value

    def board(self, setting: dict[str, float]):
        import pedalboard

        plugins = []
        for i, (kind, cls, params) in enumerate(self.effects):
            kwargs = {k: self._value(v, setting, f"{self.path}: effect[{i}].{k}") for k, v in params.items()}
            try:
                plugins.append(cls(**kwargs))
            except (TypeError, ValueError, RuntimeError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise FxforgeError(f"{self.path}: effect[{i}] ({kind}) at {_setting_text(setting)}: {first}") from None
        return pedalboard.Pedalboard(plugins)

    def check(self, names, points):
        for setting in points:  # every expression and constructor, before anything renders
            self.board(setting)
        used = {n for _, _, params in self.effects for v in params.values()
                if isinstance(v, str) and _PLACEHOLDER.search(v) for n in _names(v)}
        for name in names:
            if name not in used:
                raise FxforgeError(f"{self.path}: no parameter uses the knob {name} (write \"{{{name}}}\" "
                                   "in an expression)")

    def render(self, x, sample_rate, setting, dry, out):
        return _process(self.board(setting), x, sample_rate)


def _names(expr: str) -> set[str]:
    try:
        tree = ast.parse(_PLACEHOLDER.sub(lambda m: m.group(1).strip(), expr).strip(), mode="eval")
    except SyntaxError:
        return set()  # refused with its reason when the chain is built
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


# -- a VST3 hosted by pedalboard ---

class Vst3Source(Source):
    """Knob values are in the parameter's own units (what pedalboard shows as
    ``plugin.drive``); pedalboard maps each to the parameter's raw 0..1 value."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.describe = str(self.path)
        if not self.path.exists():
            raise FxforgeError(f"{self.path}: no such plugin")
        import pedalboard

        try:
            self.plugin = pedalboard.load_plugin(str(self.path))
        except (ImportError, RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise FxforgeError(f"{self.path}: could not load the plugin ({first})") from None

    def check(self, names, points):
        params = self.plugin.parameters
        for name in names:
            if name not in params:
                raise FxforgeError(f"--knob {name}: {self.path.name} has no such parameter "
                                   f"(parameters: {', '.join(params) or 'none'})")
            p = params[name]
            lo, hi = getattr(p, "min_value", None), getattr(p, "max_value", None)
            if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and not isinstance(lo, bool):
                for setting in points:
                    v = setting[name]
                    if not lo - 1e-9 * abs(hi - lo) <= v <= hi + 1e-9 * abs(hi - lo):
                        raise FxforgeError(f"--knob {name}: {_fmt(v)} is outside the parameter's range "
                                           f"{_fmt(lo)}..{_fmt(hi)}")

    def render(self, x, sample_rate, setting, dry, out):
        for name, v in setting.items():
            try:
                setattr(self.plugin, name, v)
            except (ValueError, TypeError, RuntimeError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise FxforgeError(f"--knob {name}: {self.path.name} refused {_fmt(v)} ({first})") from None
        return _process(self.plugin, x, sample_rate)


# -- any command line ---

class CommandSource(Source):
    """``lv2file -i {input} -o {output} -p DRIVE:{drive} URI``: split as a shell would, each
    word filled in, run without a shell (a path with spaces stays one argument)."""

    def __init__(self, template: str):
        self.template = template
        self.describe = f"--render {template!r}"
        try:
            self.words = shlex.split(template)
        except ValueError as exc:
            raise FxforgeError(f"--render: cannot split the command ({exc})") from None
        if not self.words:
            raise FxforgeError("--render: the command is empty")
        self.fields: set[str] = set()
        for word in self.words:
            try:
                self.fields |= {f for _, f, _, _ in string.Formatter().parse(word) if f is not None}
            except ValueError as exc:
                raise FxforgeError(f"--render: {word!r}: {exc} (write {{{{ and }}}} for literal braces)") from None

    def check(self, names, points):
        allowed = {"input", "output", *names}
        for field in sorted(self.fields):
            if field not in allowed:
                raise FxforgeError(f"--render: unknown placeholder {{{field}}} (placeholders: "
                                   f"{', '.join('{' + a + '}' for a in ['input', 'output', *names])})")
        for need in ("input", "output", *names):
            if need not in self.fields:
                what = "the knob's value" if need in names else f"the {need} file"
                raise FxforgeError(f"--render: the command has no {{{need}}} ({what})")

    def render(self, x, sample_rate, setting, dry, out):
        from .audio import read_audio

        values = {"input": str(dry.resolve()), "output": str(out.resolve()), **{k: _fmt(v) for k, v in setting.items()}}
        argv = [w.format(**values) for w in self.words]
        out.unlink(missing_ok=True)  # a stale file must not pass for this render's
        try:
            done = subprocess.run(argv, capture_output=True, text=True, errors="replace")
        except FileNotFoundError:
            raise FxforgeError(f"--render: {argv[0]}: command not found") from None
        except PermissionError:
            raise FxforgeError(f"--render: {argv[0]}: not executable") from None
        if done.returncode != 0:
            last = next((ln.strip() for ln in reversed(done.stderr.splitlines()) if ln.strip()), "no message on stderr")
            raise FxforgeError(f"--render: exit {done.returncode} rendering {out.name} at {_setting_text(setting)}: {last}")
        if not out.is_file():
            raise FxforgeError(f"--render: the command exited 0 but wrote no {out} (is {{output}} where it writes?)")
        y, sr = read_audio(out, 0, "--render")
        if sr != sample_rate:
            from .dsp import resample

            self.warn(f"{out}: rendered at {sr} Hz, not the input's {sample_rate} Hz; resampled")
            y = resample(y, sr, sample_rate)
        return y


# --- checks ------------------------------------------------------------------------------

def check_target(x: np.ndarray, y: np.ndarray, sample_rate: int, layout, where: str) -> tuple[Optional[int], list[str]]:
    """The measured latency (None where it cannot be) and one-line warnings."""
    from . import reamp
    from .audio import SILENCE_PEAK

    problems = []
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak < SILENCE_PEAK:
        return None, [f"{where}: is silent (peak below -100 dBFS): the effect passed nothing at this setting"]
    if peak > 1.0:
        problems.append(f"{where}: peaks at {20 * math.log10(peak):+.1f} dBFS, above full scale: gear or an "
                        "interface would clip it (lower the effect's output)")
    else:
        hot = np.abs(y) >= FULL_SCALE
        edges = np.diff(np.concatenate([[0], hot.astype(np.int8), [0]]))
        runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
        clipped = int(runs[runs >= CLIP_RUN].sum())
        if clipped:
            problems.append(f"{where}: {clipped} samples flat at full scale: the output clips "
                            "(lower the effect's output)")
    latency = None
    if layout is None:
        problems.append(f"{where}: the input has no calibration blips: latency left to data.latency")
    else:
        blips = reamp.blip_latency(y, layout)
        if blips is None:
            problems.append(f"{where}: no response to the calibration blips: latency left to data.latency")
        else:
            latency = max(0, blips)
        esr = reamp.replicate_esr(y, layout)
        if esr is not None and esr > reamp.REPLICATE_ESR_WARNING:
            problems.append(f"{where}: the two takes of the validation segment differ (ESR {esr:.4f} > "
                            f"{reamp.REPLICATE_ESR_WARNING:g}): the effect is noisy or time-based")
    return latency, problems


# --- the capture -------------------------------------------------------------------------

def refuse_existing(out_dir: Path, files: list[str], force: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise FxforgeError(f"{out_dir}: exists and is not a folder")
    if force:
        return
    if (out_dir / MANIFEST_NAME).exists():
        raise FxforgeError(f"{out_dir}: already holds a capture ({MANIFEST_NAME}); not overwriting (--force to replace it)")
    for name in files:
        if (out_dir / name).exists():
            raise FxforgeError(f"{out_dir / name}: already exists; not overwriting (--force to replace it)")


def prepare(out_dir: Path, knobs: list[KnobPlan], points: list[dict[str, float]], source: Source,
            force: bool = False) -> list[str]:
    """The targets' file names, once the folder and the source are known to work with the
    plan: every refusal comes before the signal is generated or anything is written."""
    taken: set[str] = set()
    names = [target_name(p, taken) for p in points]
    refuse_existing(Path(out_dir), [DRY_NAME, *names], force)
    source.check([k.name for k in knobs], points)
    return names


def capture(out_dir: Path, x: np.ndarray, sample_rate: int, knobs: list[KnobPlan], points: list[dict[str, float]],
            source: Source, force: bool = False, warn: Callable[[str], None] = lambda m: None,
            progress: Callable[[int, int, str], None] = lambda i, n, name: None) -> Manifest:
    """Render every setting and write OUT_DIR/dry.wav, a WAV per setting and captures.toml
    (last: a folder with a manifest holds a whole capture)."""
    from . import reamp
    from .audio import write_audio

    out_dir = Path(out_dir)
    names = prepare(out_dir, knobs, points, source, force)
    out_dir.mkdir(parents=True, exist_ok=True)
    if force:  # a half-written folder must not keep the previous capture's manifest
        (out_dir / MANIFEST_NAME).unlink(missing_ok=True)
    dry = out_dir / DRY_NAME
    write_audio(dry, x, sample_rate)
    layout = reamp.recognise(x, sample_rate)
    tolerance = int(round(LENGTH_TOLERANCE_S * sample_rate))
    targets = []
    source.warn = warn
    for i, (setting, name) in enumerate(zip(points, names)):
        progress(i, len(points), name)
        path = out_dir / name
        y = np.asarray(source.render(x, sample_rate, setting, dry, path), np.float32).reshape(-1)
        if not np.isfinite(y).all():
            raise FxforgeError(f"{path}: the effect put out non-finite samples at {_setting_text(setting)}")
        if abs(len(y) - len(x)) > tolerance:
            warn(f"{path}: {len(y) / sample_rate:.3f} s long, the input {len(x) / sample_rate:.3f} s: "
                 "cut or padded to the input's length")
        y = np.pad(y[: len(x)], (0, max(0, len(x) - len(y))))
        write_audio(path, y, sample_rate)
        latency, problems = check_target(x, y, sample_rate, layout, str(path))
        for p in problems:
            warn(p)
        targets.append(Target(file=name, knobs=setting, latency=latency))
    progress(len(points), len(points), "")
    manifest = Manifest(input=DRY_NAME, knobs={k.name: Knob(min=k.min, max=k.max) for k in knobs}, targets=targets)
    write_manifest(out_dir / MANIFEST_NAME, manifest)
    return manifest


def load_signal(signal: Optional[Path], seconds: float, sample_rate: int,
                channel: Optional[int] = None) -> tuple[np.ndarray, int]:
    """The dry signal: an existing file (``--signal``), else the capture signal generated."""
    from .reamp import MIN_SECONDS, capture_signal

    if signal is not None:
        from .audio import check_not_silent, read_audio

        x, sr = read_audio(signal, channel, "--channel")
        check_not_silent(x, str(signal))
        return x, sr
    if seconds < MIN_SECONDS:
        raise FxforgeError(f"--seconds {seconds:g}: a capture signal needs at least {MIN_SECONDS:g} s")
    return capture_signal(seconds, sample_rate), sample_rate


def make_source(vst3: Optional[Path], chain: Optional[Path], render: Optional[str]) -> Source:
    given = [s for s in (("--vst3", vst3), ("--chain", chain), ("--render", render)) if s[1] is not None]
    if len(given) != 1:
        raise FxforgeError("fxforge capture: give exactly one source: --vst3 PLUGIN, --chain CHAIN.toml or "
                           "--render 'COMMAND'" + (f" (got {', '.join(g[0] for g in given)})" if given else ""))
    if vst3 is not None:
        return Vst3Source(vst3)
    if chain is not None:
        return ChainSource(chain)
    return CommandSource(render)


class CaptureDisplay:
    """A bar over the settings on a terminal, a plain line per setting on a pipe, nothing with -q."""

    def __init__(self, console, enabled: bool = True):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console, self.enabled = console, enabled
        self.live = enabled and console.is_terminal
        self.bar = Progress(TextColumn("[bold]rendering"), BarColumn(bar_width=30), MofNCompleteColumn(),
                            TextColumn("{task.fields[file]}"), TimeElapsedColumn(), console=console,
                            disable=not self.live)
        self.task = None

    def __enter__(self):
        if self.live:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.live:
            self.bar.__exit__(*exc)

    def __call__(self, i: int, n: int, name: str) -> None:
        if self.live:
            if self.task is None:
                self.task = self.bar.add_task("capture", total=n, file=name)
            self.bar.update(self.task, completed=i, file=name)
        elif self.enabled and name:
            self.console.print(f"rendering {name} ({i + 1}/{n})", markup=False, highlight=False, soft_wrap=True)
