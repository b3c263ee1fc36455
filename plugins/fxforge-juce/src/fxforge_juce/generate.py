"""Write a self-contained JUCE/CMake project for one trained run.

Safety: a run name is user text. It is reduced to a whitelist of characters
(letters, digits, space, ``-``, ``_``) before it reaches any generated file,
and is then still written through a CMake-quoting and a C++-literal encoder
(octal escapes for anything outside a small safe set). The 4-character codes,
bundle id and LV2 URI are derived from the sanitised names.
"""
from __future__ import annotations

import hashlib
import json
import os
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
SKIP = {"README.md", "PROJECT_README.md.in", "build", "__pycache__"}


# ---------------------------------------------------------------- template


def template_dir() -> Path:
    """The C++ template: packaged copy (wheel), else the repository's juce/ (editable)."""
    here = Path(__file__).resolve().parent
    candidates = []
    if os.environ.get("FXFORGE_JUCE_TEMPLATE"):
        candidates.append(Path(os.environ["FXFORGE_JUCE_TEMPLATE"]))
    candidates += [here / "template", here.parents[3] / "juce"]
    for c in candidates:
        if (c / "CMakeLists.txt").is_file() and (c / "Source" / "PluginProcessor.cpp").is_file():
            return c
    from fxforge import FxforgeError

    raise FxforgeError(
        "fxforge-juce: C++ template not found (reinstall fxforge-juce, or set FXFORGE_JUCE_TEMPLATE to the juce/ folder)"
    )


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


def knobs_header(knobs: list[PluginKnob]) -> str:
    rows = [f"    Knob {{ {cpp_string(k.id)}, {cpp_string(k.name)}, {_cpp_float(k.min)}, {_cpp_float(k.max)}, "
            f"{_cpp_float(k.default)} }}," for k in knobs]
    table = ("{{\n" + "\n".join(rows) + "\n}}") if rows else "{}"
    return f"""// Generated by fxforge-juce {__version__}. Do not edit: re-run `fxforge export juce`.
#pragma once

#include <array>

/** The run's knobs (its captures manifest): one smoothed plugin parameter each, in the knob's
    own units; the model gets (value - min) / (max - min). None for a run without knobs. */
namespace fxforge::knobs
{{
struct Knob
{{
    const char* id;
    const char* name;
    float min, max, defaultValue;
}};

static constexpr int kCount = {len(knobs)};
static constexpr std::array<Knob, kCount> kKnobs {table};
}} // namespace fxforge::knobs
"""


# ---------------------------------------------------------------- weights


def weights_document(rt: RTModel, meta: dict) -> dict:
    doc = {"_fxforge": meta}
    for key, tensor in rt.weights.items():
        doc[key] = tensor.tolist()  # float32 -> Python float is exact; repr round-trips
    return doc


# ---------------------------------------------------------------- files


def knob_api(rt: RTModel) -> str:
    """A conditioned model's knob inputs: kKnobs, setKnobs and the block API with the knobs
    per sample (nothing for a model without knobs, whose header stays as it was)."""
    if not rt.knobs:
        return ""
    update = ("\n" + " " * 8).join(rt.knob_update)
    return f"""
    /** Knob inputs, in the run's knob order. */
    static constexpr int kKnobs = {int(rt.knobs)};

    /** The knob values (each 0..1: (value - min) / (max - min), as fxforge normalises them)
        that the following samples play at. Real-time safe. */
    inline void setKnobs (const float* k) noexcept
    {{
        {update}
    }}

    /** n samples of in to out (in may equal out), the knobs moving: knobValues[i * kKnobs + j]
        is knob j at sample i (what PyTorch reads from input channel 1 + j). */
    void process (const float* in, float* out, const float* knobValues, int n) noexcept
    {{
        for (int i = 0; i < n; ++i)
        {{
            setKnobs (knobValues + i * kKnobs);
            out[i] = process (in[i]);
        }}
    }}
"""


def model_header(rt: RTModel) -> str:
    def lines(items: list[str], indent: str) -> str:
        return ("\n" + indent).join(items)

    if rt.block:
        # Block-wise model: chunks of at most kMaxBlock samples; one sample is a block of one.
        processing = f"""/** n samples of in to out (in may equal out); any n. Real-time safe. */
    void process (const float* in, float* out, int n) noexcept
    {{
        for (int start = 0; start < n; start += wavenet::kMaxBlock)
            processChunk (in + start, out + start, std::min (wavenet::kMaxBlock, n - start));
    }}

    inline float process (float x) noexcept
    {{
        float y = 0.0f;
        process (&x, &y, 1);
        return y;
    }}

private:
    void processChunk (const float* in, float* out, int n) noexcept
    {{
        {lines(rt.block, "        ")}
    }}
"""
    else:
        processing = f"""inline float process (float x) noexcept
    {{
        {lines(rt.body, "        ")}
        return y;
    }}

    /** n samples of in to out (in may equal out): the recurrent layers run one sample at a time. */
    void process (const float* in, float* out, int n) noexcept
    {{
        for (int i = 0; i < n; ++i)
            out[i] = process (in[i]);
    }}
{knob_api(rt)}
private:
"""
    what = "block-wise" if rt.block else "one sample at a time"
    code = "".join(c.rstrip("\n") + "\n\n" for c in rt.code)  # a facet's own classes
    return f"""// Generated by fxforge-juce {__version__}. Do not edit: re-run `fxforge export juce`.
#pragma once

#include <RTNeural/RTNeural.h>
#include <RTNeural/torch_helpers.h>

#include <algorithm>

#include "FxforgeGlue.h"
#include "FxforgeWaveNet.h"

namespace fxforge
{{
{code}/** {rt.architecture}: the exact compile-time model for this run, {what}. */
class Model
{{
public:
    /** Loads the PyTorch state dict (Resources/model_weights.json). */
    void load (const nlohmann::json& json)
    {{
        {lines(rt.loaders, "        ")}
    }}

    void reset() noexcept
    {{
        {lines(rt.resets, "        ")}
    }}

    {processing}
    {lines(rt.members, "    ")}
}};
}} // namespace fxforge
"""


def info_header(names: Names, rt: RTModel, sample_rate: int, esr_text: str, run_label: str) -> str:
    return f"""// Generated by fxforge-juce {__version__}. Do not edit: re-run `fxforge export juce`.
#pragma once

namespace fxforge::info
{{
static constexpr const char* kProductName = {cpp_string(names.product)};
static constexpr const char* kRunName = {cpp_string(run_label)};
static constexpr const char* kArchitecture = {cpp_string(rt.architecture)};
static constexpr const char* kTestEsr = {cpp_string(esr_text)};
static constexpr int kSampleRate = {int(sample_rate)};
}} // namespace fxforge::info
"""


def cmake_values(names: Names, formats: list[str]) -> str:
    lines = [
        f"# Generated by fxforge-juce {__version__}. Names are sanitised; edit with care.",
        f"set(FXFORGE_PRODUCT_NAME {cmake_string(names.product)})",
        f"set(FXFORGE_COMPANY_NAME {cmake_string(names.company)})",
        f"set(FXFORGE_BUNDLE_ID {cmake_string(names.bundle_id)})",
        f"set(FXFORGE_MANUFACTURER_CODE {cmake_string(names.manufacturer_code)})",
        f"set(FXFORGE_PLUGIN_CODE {cmake_string(names.plugin_code)})",
        f"set(FXFORGE_LV2_URI {cmake_string(names.lv2_uri)})",
        'set(FXFORGE_VERSION "1.0.0")',
        f"set(FXFORGE_FORMATS {cmake_string(';'.join(formats), allow=';')} CACHE STRING \"Plugin formats to build\")",
    ]
    return "\n".join(lines) + "\n"


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

    src = template_dir()
    files: list[Path] = []
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if any(part in SKIP for part in rel.parts) or path.is_dir():
            continue
        _write_if_changed(out / rel, path.read_bytes())
        files.append(out / rel)

    def write(rel: str | Path, text: str):
        _write_if_changed(out / rel, text.encode("utf-8"))
        files.append(out / rel)

    esr = esr_text(summary)
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
    write("Source/FxforgeModel.h", model_header(rt))
    write("Source/FxforgeInfo.h", info_header(names, rt, sample_rate, esr, run_label))
    write("Source/FxforgeKnobs.h", knobs_header(list(knobs)))
    write(MARKER, cmake_values(names, formats))
    write(".gitignore", "build/\n")
    readme = Template((src / "PROJECT_README.md.in").read_text(encoding="utf-8"))
    write("README.md", readme.substitute(
        product=names.product, company=names.company, architecture=rt.architecture,
        sample_rate=int(sample_rate), esr=esr, plugin_code=names.plugin_code,
        manufacturer_code=names.manufacturer_code, formats=", ".join(formats), version=__version__,
    ))
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
