"""Write a self-contained JUCE/CMake project for one trained run.

The project is the package's ``template/`` folder: its files are copied byte for byte,
except the ``*.in`` ones, which are filled with :class:`string.Template` (``$name``) and
written without the ``.in``. The pieces that depend on the model's shape (per-sample or
block-wise processing, a conditioned model's knob API, a knob's table row) are the
``fragments/*.in`` files, filled the same way and substituted into those. That is the one
way C++ is written here: every value is an integer, a float written as a float32 literal, a
string through :func:`cpp_string` / :func:`cmake_string`, or C++ a mapping (``models.py``, a
model's or stage's ``juce`` facet) built from integers and fixed strings.

Safety: a run name is user text. It is reduced to a whitelist of characters
(letters, digits, space, ``-``, ``_``) before it reaches any generated file,
and is then still written through a CMake-quoting and a C++-literal encoder
(octal escapes for anything outside a small safe set). The 4-character codes,
bundle id and LV2 URI are derived from the sanitised names.
"""
from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from fxforge import Knob

from . import __version__
from .models import RTModel

MARKER = "fxforge_plugin.cmake"
WEIGHTS = Path("Resources") / "model_weights.json"
FORMAT_VERSION = 1
HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "template"    # the project: copied, *.in filled (package data)
FRAGMENTS = HERE / "fragments"  # pieces of the *.in files that depend on the model's shape
SKIP = {"build", "__pycache__", ".DS_Store"}


# ---------------------------------------------------------------- template


def template_dir() -> Path:
    """The C++ project template: the package's ``template/`` folder (package data)."""
    if not (TEMPLATE / "CMakeLists.txt").is_file() or not (TEMPLATE / "Source" / "PluginProcessor.cpp").is_file():
        from fxforge import FxforgeError

        raise FxforgeError(f"fxforge-juce: the C++ template is missing from {TEMPLATE} (reinstall fxforge-juce)")
    return TEMPLATE


def fill(path: Path, values: dict) -> str:
    """A ``*.in`` file with its ``$name`` placeholders filled (every one must be given; ``$$`` is a $)."""
    path = Path(path)
    try:
        return Template(path.read_text(encoding="utf-8")).substitute(values)
    except KeyError as e:
        raise KeyError(f"{path.name}: no value for ${e.args[0]}") from None


def fragment(file: str, /, **values) -> str:
    """``fragments/<file>`` filled with ``values``."""
    return fill(FRAGMENTS / file, values)


def lines(items: list[str], indent: str) -> str:
    """Lines one under the other at ``indent``, the placeholder's own (the first line has it there)."""
    return ("\n" + indent).join(items)


# ---------------------------------------------------------------- names

_UNSAFE = re.compile(r"[^A-Za-z0-9 _-]+")


def safe_name(raw: str | None, default: str, limit: int = 40) -> str:
    """Letters, digits, space, '-' and '_' only; no leading '-'; at most ``limit`` chars."""
    text = unicodedata.normalize("NFKD", str(raw or "")).encode("ascii", "ignore").decode("ascii")
    text = " ".join(_UNSAFE.sub(" ", text).split())
    text = text.lstrip("-_ ")[:limit].strip()
    return text or default


def slug(text: str, default: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40].strip("-")
    return s or default


def four_char_code(seed: str) -> str:
    """One upper-case letter then three lower-case letters/digits (what AU hosts want)."""
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    rest = "abcdefghijklmnopqrstuvwxyz0123456789"
    return upper[digest[0] % 26] + "".join(rest[b % len(rest)] for b in digest[1:4])


CODE_RE = re.compile(r"^[A-Za-z0-9]{4}$")


def cmake_string(value: str, allow: str = "") -> str:
    """A CMake quoted argument. The value is already whitelisted; replace anything risky anyway."""
    out = []
    for ch in value:
        if (ch in '\\"$;@<>{}' and ch not in allow) or not ch.isprintable() or ord(ch) > 126:
            out.append("_")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


_CPP_SAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .,:_-+()/|=%")


def cpp_string(value: str) -> str:
    """A C++ string literal: safe characters verbatim, every other byte as a 3-digit octal escape."""
    out = []
    for byte in str(value).encode("utf-8"):
        ch = chr(byte)
        out.append(ch if ch in _CPP_SAFE else "\\%03o" % byte)
    return '"' + "".join(out) + '"'


@dataclass
class Names:
    product: str
    company: str
    plugin_code: str
    manufacturer_code: str
    bundle_id: str
    lv2_uri: str


def derive_names(run_name: str | None, name: str | None, manufacturer: str | None,
                 plugin_code: str | None = None, manufacturer_code: str | None = None) -> Names:
    product = safe_name(name if name else run_name, "Fxforge Model")
    company = safe_name(manufacturer, "fxforge")
    p_slug, c_slug = slug(product, "model"), slug(company, "fxforge")
    return Names(
        product=product,
        company=company,
        # Derived from the (sanitised) names, so re-exporting a retrained model
        # under the same name keeps its identity in saved DAW sessions.
        plugin_code=plugin_code or four_char_code("plugin|" + product),
        manufacturer_code=manufacturer_code or four_char_code("manufacturer|" + company),
        bundle_id=f"com.{c_slug}.{p_slug}",
        lv2_uri=f"https://{c_slug}.fxforge.invalid/plugins/{p_slug}",  # .invalid: an identifier, never fetched
    )


# ---------------------------------------------------------------- knobs

# The template's own parameter IDs and the names pedalboard makes of its parameters' names
# ("Input" + "dB" -> input_db): a knob called so gets the ID knob_<name> and the name "<name> knob".
RESERVED_IDS = {"input_gain", "output_gain", "mix", "bypass", "input", "output", "input_db", "output_db"}
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")


@dataclass(frozen=True, kw_only=True)
class PluginKnob(Knob):
    """One knob of a conditioned run as a plugin parameter: in the knob's own units, from
    ``min`` to ``max``; the model reads ``normalise(value)``, (value - min) / (max - min).
    ``id`` is the parameter's ID, the knob's name made unique among the plugin's parameters."""
    id: str

    def as_dict(self) -> dict:
        return {"id": self.id, **super().as_dict()}


def plugin_knobs(listed: list[dict]) -> list[PluginKnob]:
    """The run's knobs (summary.json's ``knobs.knobs``: name, min, max, default) as parameters.
    A name is reduced to letters, digits and ``_`` (a manifest's names already are); one that
    is taken (a template parameter, or an earlier knob) gets a ``knob_`` prefix, or a number."""
    import math

    from fxforge import FxforgeError

    out: list[PluginKnob] = []
    taken = set(RESERVED_IDS)
    for i, k in enumerate(listed):
        raw = str(k.get("name", ""))
        base = _ID_UNSAFE.sub("_", unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode("ascii"))
        base = base.strip("_")[:40] or f"knob_{i + 1}"
        ident, name = base, base
        if ident.lower() in taken:
            ident, name = f"knob_{base}", f"{base} knob"
        n = 2
        while ident.lower() in taken:
            ident, name, n = f"knob_{base}_{n}", f"{base} knob {n}", n + 1
        taken.add(ident.lower())
        try:
            lo, hi, default = float(k["min"]), float(k["max"]), float(k["default"])
        except (KeyError, TypeError, ValueError):
            raise FxforgeError(f"knob {i + 1} ({base}): needs numeric min, max and default") from None
        if not all(math.isfinite(v) for v in (lo, hi, default)) or not lo < hi or not lo <= default <= hi:
            raise FxforgeError(f"knob {base}: range {lo:g}..{hi:g}, default {default:g}: a plugin parameter "
                               "needs min < max and the default within them")
        out.append(PluginKnob(name, lo, hi, default, id=ident))
    return out


def _cpp_float(v: float) -> str:
    import numpy as np

    text = repr(float(np.float32(v))) if not np.isfinite(np.float32(v)) else str(np.float32(v))  # shortest float32
    return text + ("f" if ("." in text or "e" in text) else ".0f")


def knob_values(knobs: list[PluginKnob]) -> dict:
    """Source/FxforgeKnobs.h's values: the count and the table (``{}`` when empty)."""
    rows = [fragment("knob_row.h.in", id=cpp_string(k.id), name=cpp_string(k.name), min=_cpp_float(k.min),
                     max=_cpp_float(k.max), default=_cpp_float(k.default)) for k in knobs]
    return {"knob_count": len(knobs), "knob_table": ("{{\n" + "".join(rows) + "}}") if rows else "{}"}


def readme_knobs(knobs: list[PluginKnob]) -> str:
    """README.md's knob table for a conditioned run (nothing for a run without knobs)."""
    if not knobs:
        return ""
    rows = [f"| {k.name} | `{k.id}` | {k.min:g} .. {k.max:g} | {k.default:g} |" for k in knobs]
    return fragment("readme_knobs.md.in", rows="\n".join(rows))


# ---------------------------------------------------------------- weights


def weights_document(rt: RTModel, meta: dict) -> dict:
    doc = {"_fxforge": meta}
    for key, tensor in rt.weights.items():
        doc[key] = tensor.tolist()  # float32 -> Python float is exact; repr round-trips
    return doc


# ---------------------------------------------------------------- files


def model_values(rt: RTModel) -> dict:
    """Source/FxforgeModel.h's values: the model's C++ (lists of lines, from its mapping) placed
    in the per-sample or the block-wise processing fragment."""
    if rt.block and rt.knobs:  # block-wise with knobs: per-sample values, or those setKnobs holds
        processing = fragment("process_block_knobs.h.in", block=lines(rt.block, " " * 8), knobs=int(rt.knobs),
                              knob_update=lines(rt.knob_update, " " * 8), held=rt.held_knobs)
    elif rt.block:  # block-wise: chunks of at most wavenet::kMaxBlock samples; one sample is a block of one
        processing = fragment("process_block.h.in", block=lines(rt.block, " " * 8))
    else:
        knob_api = ""
        if rt.knobs:  # kKnobs, setKnobs and the block API with the knobs per sample
            knob_api = fragment("knob_api.h.in", knobs=int(rt.knobs), knob_update=lines(rt.knob_update, " " * 8))
        processing = fragment("process_sample.h.in", body=lines(rt.body, " " * 8), knob_api=knob_api)
    return {
        "code": "".join(c.rstrip("\n") + "\n\n" for c in rt.code),  # a facet's own classes
        "architecture": rt.architecture,
        "what": "block-wise" if rt.block else "one sample at a time",
        "loaders": lines(rt.loaders, " " * 8),
        "resets": lines(rt.resets, " " * 8),
        "processing": processing,
        "members": lines(rt.members, " " * 4),
    }


def esr_text(summary: dict | None) -> str:
    summary = summary or {}

    def num(key):
        v = summary.get(key)
        return f"{float(v):.4g}" if isinstance(v, (int, float)) else None

    plain, pre = num("test_esr"), num("test_esr_pre")
    if plain and pre:
        return f"{plain} (pre-emphasis {pre})"
    return plain or pre or "n/a"


def _write_if_changed(dest: Path, data: bytes) -> None:
    """Unchanged files keep their mtime, so re-exporting into a built project rebuilds only what changed."""
    if dest.is_file() and dest.read_bytes() == data:
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)


@dataclass
class Project:
    dir: Path
    names: Names
    rt: RTModel
    sample_rate: int
    files: list[Path] = field(default_factory=list)
    knobs: list[PluginKnob] = field(default_factory=list)


def write_project(out: Path, names: Names, rt: RTModel, *, sample_rate: int, formats: list[str],
                  summary: dict | None, run_label: str, run_path: str, model_name: str,
                  force: bool = False, knobs: list[PluginKnob] = ()) -> Project:
    from fxforge import FxforgeError

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FxforgeError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file() and not force:
        raise FxforgeError(f"--out {out} is a non-empty directory that is not an fxforge plugin project (pass --force to write into it)")
    out.mkdir(parents=True, exist_ok=True)

    esr = esr_text(summary)
    values = {
        "version": __version__,
        # fxforge_plugin.cmake.in
        "product_cmake": cmake_string(names.product),
        "company_cmake": cmake_string(names.company),
        "bundle_id_cmake": cmake_string(names.bundle_id),
        "manufacturer_code_cmake": cmake_string(names.manufacturer_code),
        "plugin_code_cmake": cmake_string(names.plugin_code),
        "lv2_uri_cmake": cmake_string(names.lv2_uri),
        "formats_cmake": cmake_string(";".join(formats), allow=";"),
        # Source/FxforgeInfo.h.in
        "product_cpp": cpp_string(names.product),
        "run_cpp": cpp_string(run_label),
        "architecture_cpp": cpp_string(rt.architecture),
        "esr_cpp": cpp_string(esr),
        "sample_rate": int(sample_rate),
        # Source/FxforgeModel.h.in, Source/FxforgeKnobs.h.in
        **model_values(rt),
        **knob_values(list(knobs)),
        # README.md.in (sanitised names, numbers)
        "product": names.product, "company": names.company, "esr": esr, "plugin_code": names.plugin_code,
        "manufacturer_code": names.manufacturer_code, "formats": ", ".join(formats),
        "knobs_section": readme_knobs(list(knobs)),
    }
    src = template_dir()
    files: list[Path] = []

    def write(rel: str | Path, text: str):
        _write_if_changed(out / rel, text.encode("utf-8"))
        files.append(out / rel)

    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if any(part in SKIP for part in rel.parts) or path.is_dir():
            continue
        if path.suffix == ".in":
            write(rel.with_suffix(""), fill(path, values))
        else:
            _write_if_changed(out / rel, path.read_bytes())
            files.append(out / rel)

    meta = {
        "format_version": FORMAT_VERSION,
        "exporter": f"fxforge-juce {__version__}",
        "model": model_name,
        "sample_rate": int(sample_rate),
        "residual": rt.residual,
        "architecture": rt.architecture,
        "run": run_label,
    }
    write(WEIGHTS, json.dumps(weights_document(rt, meta)))
    write(".gitignore", "build/\n")
    write("fxforge_export.json", json.dumps({
        **meta,
        "run_path": run_path,
        "product_name": names.product,
        "company_name": names.company,
        "plugin_code": names.plugin_code,
        "manufacturer_code": names.manufacturer_code,
        "bundle_id": names.bundle_id,
        "lv2_uri": names.lv2_uri,
        "formats": formats,
        "layers": rt.members,
        "knobs": [k.as_dict() for k in knobs],
    }, indent=2) + "\n")
    return Project(out, names, rt, int(sample_rate), files, list(knobs))
