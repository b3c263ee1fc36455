"""Run directories: one new folder per run, never overwritten.

    runs/<name>/<YYYYmmdd-HHMMSS>[-N]/
        config.toml          the resolved run file (every default written out)
        summary.json         sample rate, status, figures
        metrics.jsonl        one line per validation
        model.pt             best-by-validation weights (state dict only)
        checkpoints/last.pt  everything needed to resume exactly
        plots/*.png
"""
from __future__ import annotations

import io
import json
import pickle
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atomic import atomic_write_bytes  # noqa: F401  (re-exported: exporters and sweeps import it from here)
from .config import RunConfig, load_config
from .errors import FxforgeError

if TYPE_CHECKING:
    import torch


# torch is imported where a checkpoint is read or written, so that reading run folders (sweeps'
# state and tables, reports' listings) loads none of it.


def atomic_save(obj: Any, path: Path) -> None:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError as exc:
        raise FxforgeError(f"{path}: could not write ({exc.strerror or exc})") from None


def safe_load(path: Path) -> Any:
    """Load a checkpoint without executing code from it (weights_only)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FxforgeError(f"{path}: no such checkpoint")
    with open(path, "rb") as f:
        head = f.read(4)
    if head != b"PK\x03\x04" and head[:1] != b"\x80":  # torch.save: a zip archive (a pickle before torch 1.6)
        raise FxforgeError(f"{path}: not a checkpoint (not a file torch.save wrote)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unpickling error"
        raise FxforgeError(f"{path}: refused: holds more than plain weights ({first[:160]})") from None
    except Exception as exc:
        raise FxforgeError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''})") from None


def load_weights(model: torch.nn.Module, state_dict: Any, path: Path) -> None:
    """Load a state dict, naming the tensors that do not fit."""
    import torch

    if not isinstance(state_dict, dict):
        raise FxforgeError(f"{path}: holds no state dict")
    own = model.state_dict()
    # Training statistics a newer version added (they restart from zero): older runs still load.
    from .nn.model import contract

    optional = set(contract(model).optional_state)
    missing = [k for k in own if k not in state_dict and k not in optional]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [f"{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in state_dict and isinstance(state_dict[k], torch.Tensor) and state_dict[k].shape != v.shape]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append("shape mismatch: " + ", ".join(shapes[:4]))
        if missing:
            parts.append("missing: " + ", ".join(missing[:4]))
        if unexpected:
            parts.append("unexpected: " + ", ".join(unexpected[:4]))
        raise FxforgeError(f"{path}: does not fit this model ({'; '.join(parts)})")
    model.load_state_dict(state_dict, strict=not optional)


class RunDir:
    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def create(cls, root: Path, name: str) -> "RunDir":
        """A fresh directory; os.mkdir is atomic, so two runs started in the
        same second still get different folders."""
        base = Path(root) / name
        try:
            base.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FxforgeError(f"{base}: cannot create run directory ({exc.strerror or exc})") from None
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for n in range(1, 1000):
            path = base / (stamp if n == 1 else f"{stamp}-{n}")
            try:
                path.mkdir()
            except FileExistsError:
                continue
            except OSError as exc:
                raise FxforgeError(f"{path}: cannot create run directory ({exc.strerror or exc})") from None
            (path / "checkpoints").mkdir()
            return cls(path)
        raise FxforgeError(f"{base}: too many runs started at {stamp}")

    config_path = property(lambda self: self.path / "config.toml")
    summary_path = property(lambda self: self.path / "summary.json")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    model_path = property(lambda self: self.path / "model.pt")
    last_path = property(lambda self: self.path / "checkpoints" / "last.pt")
    plots = property(lambda self: self.path / "plots")

    def write_config(self, cfg: RunConfig) -> None:
        import tomli_w

        atomic_write_bytes(self.config_path, tomli_w.dumps(cfg.to_dict()).encode())

    def read_summary(self) -> dict:
        try:
            return json.loads(self.summary_path.read_text())
        except FileNotFoundError:
            raise FxforgeError(f"{self.path}: not a run directory (no summary.json)") from None
        except json.JSONDecodeError as exc:
            raise FxforgeError(f"{self.summary_path}: corrupt ({exc})") from None

    def write_summary(self, summary: dict) -> None:
        atomic_write_bytes(self.summary_path, (json.dumps(summary, indent=2) + "\n").encode())

    def append_metrics(self, row: dict) -> None:
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(row) + "\n")

    def read_metrics(self) -> list[dict]:
        if not self.metrics_path.exists():
            return []
        rows = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # a line cut by a crash
        return rows

    def truncate_metrics(self, up_to_step: int) -> None:
        """On resume, drop rows logged after the checkpoint being resumed."""
        rows = [r for r in self.read_metrics() if r.get("step", 0) <= up_to_step]
        atomic_write_bytes(self.metrics_path, "".join(json.dumps(r) + "\n" for r in rows).encode())


@dataclass
class Run:
    """A trained run, ready to use: what exporters and ``process`` receive."""

    path: Path
    config: RunConfig
    model: torch.nn.Module
    sample_rate: int
    summary: dict


# A run folder's name: its start time, and a counter where two started in the same second.
RUN_STAMP = re.compile(r"^(\d{8}-\d{6})(?:-(\d+))?$")


def runs_in(folder: Path) -> list[Path]:
    """The run directories directly under ``folder`` (a run name's or a sweep trial's), newest first."""
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = RUN_STAMP.match(p.name)
        if m and (p / "config.toml").is_file():
            found.append(((m.group(1), int(m.group(2) or 1)), p))
    return [p for _, p in sorted(found, reverse=True)]


def read_summary(run: Path) -> dict:
    """A run's summary.json, or {} where it has none yet (or it is unreadable)."""
    try:
        return json.loads((run / "summary.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def open_run(path: Path | str) -> RunDir:
    path = Path(path)
    if not path.is_dir():
        raise FxforgeError(f"{path}: no such run directory")
    if not (path / "config.toml").is_file():
        raise FxforgeError(f"{path}: not a run directory (no config.toml)")
    return RunDir(path)


def build_model(cfg: RunConfig, sample_rate: int) -> torch.nn.Module:
    from .registry import get_registry

    reg = get_registry()
    spec = reg.get("model", cfg.model.name, where=cfg.source, field="model.name")
    model = spec.build(cfg.model, sample_rate)
    for name, stage_cfg in stages_of(cfg.model).items():  # innermost first, as the file lists them
        model = reg.get("stage", name, where=cfg.source, field=f"model.{name}").build(model, stage_cfg, sample_rate)
    return model


def stages_of(model_cfg) -> dict:
    """The stages a model config ends in (``[model.<stage>]`` tables), name -> config."""
    return dict(getattr(model_cfg, "stages", None) or {})


def load_run(path: Path | str, weights: str = "model") -> Run:
    """Rebuild a run's model with its best weights (or ``weights='last'``)."""
    rd = open_run(path)
    cfg = load_config(rd.config_path)
    summary = rd.read_summary()
    try:
        sr = int(summary["sample_rate"])
    except (KeyError, TypeError, ValueError):
        raise FxforgeError(f"{rd.summary_path}: has no sample_rate") from None
    if stages_of(cfg.model):  # each stage rebuilt as its trained weights expect (StageSpec.reload)
        from .registry import get_registry

        for name, stage_cfg in stages_of(cfg.model).items():
            cfg.model.stages[name] = get_registry().get("stage", name, where=str(rd.config_path),
                                                        field=f"model.{name}").reload(stage_cfg)
    model = build_model(cfg, sr)
    ckpt = rd.model_path if weights == "model" else rd.last_path
    if not ckpt.exists():
        raise FxforgeError(f"{rd.path}: has no trained weights yet ({ckpt.name} missing)")
    state = safe_load(ckpt)
    load_weights(model, state["model"] if weights == "last" else state, ckpt)
    model.eval()
    return Run(rd.path, cfg, model, sr, summary)
