"""``fxforge export all RUN --out DIR``: every registered exporter that names an
``out_name`` (see :class:`fxforge.ExporterSpec`), each into DIR, each skipped
with its own one-line reason when it cannot export the run exactly.

The core knows no concrete exporter: which formats take part, and under which
names, is up to the installed plugins.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import FxforgeError

ALL_OPTIONS = ("out", "force", "verify")


@dataclass
class Outcome:
    exporter: str
    status: str  # "wrote", "skipped" or "failed"
    detail: str  # the path written, or the one-line reason

    def line(self) -> str:
        return f"{self.exporter}: {self.status} {self.detail}" if self.status == "wrote" else \
            f"{self.exporter}: {self.status}: {self.detail}"


# -- helpers for exporter plugins -------------------------------------------------

def model_name(run) -> str:
    """The run's model name, as its config gives it."""
    return str(getattr(getattr(run.config, "model", None), "name", "?"))


def stage_names(run) -> list[str]:
    """The stages the run's model ends in ([model.<stage>] tables), innermost first."""
    return list(getattr(getattr(run.config, "model", None), "stages", None) or {})


def has_cabinet(run) -> bool:
    """Whether the run's model ends in any stage: the formats the NAM and AIDA-X exporters
    write hold none (the name is theirs, from when the cabinet was the only one)."""
    return bool(stage_names(run))


def write_export(path: Path, text: str, force: bool) -> None:
    """An export file, written atomically (fxforge.runs.atomic_write_bytes); an existing
    file is replaced only with ``force``, and a failure is one line naming the file."""
    from .runs import atomic_write_bytes

    path = Path(path)
    if path.exists() and not force:
        raise FxforgeError(f"{path}: already exists; not overwriting (--force to replace it)")
    try:
        atomic_write_bytes(path, text.encode())
    except OSError as exc:
        raise FxforgeError(f"{path}: could not write ({exc.strerror or exc})") from None


def _file_stem(run) -> str:
    raw = str(getattr(run.config, "name", "") or "model")
    return re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-.")[:80] or "model"


def export_all(run, registry, options: dict, on_outcome=lambda o: None) -> list[Outcome]:
    """Run every taking-part exporter; returns one :class:`Outcome` each, in name order."""
    from .config import validate

    unknown = sorted(set(options) - set(ALL_OPTIONS))
    if unknown:
        raise FxforgeError(f"fxforge export all: unknown option --{unknown[0].replace('_', '-')} "
                           f"(it takes --out DIR, --force, --verify; run one exporter for its own options)")
    if not options.get("out") or options.get("out") is True:
        raise FxforgeError("fxforge export all: --out DIR is required")
    out_dir = Path(options["out"])
    if out_dir.exists() and not out_dir.is_dir():
        raise FxforgeError(f"{out_dir}: exists and is not a directory")
    names = [n for n in registry.names("exporter") if registry.get("exporter", n).out_name]
    if not names:
        raise FxforgeError("fxforge export all: no installed exporter takes part (none declares an out_name)")
    stem = _file_stem(run)
    outcomes = []
    for name in names:
        spec = registry.get("exporter", name)
        reason = spec.refuses(run)
        if reason:
            outcome = Outcome(name, "skipped", " ".join(str(reason).split()))
        else:
            fields = getattr(spec.Config, "model_fields", {})
            values = {k: options[k] for k in ("force", "verify") if k in options and k in fields}
            defaults = run.config.export.get(name, {}) if isinstance(run.config.export, dict) else {}
            target = out_dir / spec.out_name.format(name=stem)
            try:
                cfg = validate(spec.Config, {**defaults, **values, "out": str(target)}, f"fxforge export {name}", "")
                spec.export(run, cfg)
                outcome = Outcome(name, "wrote", str(target))
            except FxforgeError as exc:
                outcome = Outcome(name, "failed", " ".join(str(exc).split()))
            except SystemExit as exc:  # an exporter's --verify that did not pass
                if not exc.code:
                    outcome = Outcome(name, "wrote", str(target))
                else:
                    outcome = Outcome(name, "failed", "its --verify did not pass (see above)")
        on_outcome(outcome)
        outcomes.append(outcome)
    return outcomes


def facet_tensor(value, name: str, shape: tuple | None = None, *, facet: str, error: type = ValueError):
    """A tensor of a model's export facet (its plain description for one format), checked
    against the shape the format has there; anything else is ``error`` in one line naming
    the facet and the entry (``its nam facet's conv has shape (4, 1, 3), not (16, 1, 3)``)."""
    import torch

    try:
        t = torch.as_tensor(value).detach()
    except Exception:
        raise error(f"its {facet} facet's {name} is not a tensor") from None
    if shape is not None and tuple(t.shape) != tuple(shape):
        raise error(f"its {facet} facet's {name} has shape {tuple(t.shape)}, not {tuple(shape)}")
    return t
