"""A sweep's data: the sweep file as written (``SweepFile``), and the planned trials."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..config import RUN_NAME, RunConfig


class SweepFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Optional[str] = Field(None, description="the sweep's folder name (default: the file's stem)")
    description: str = Field("", description="free text, copied into results.md")
    base: Path = Field(..., description="the base run file, relative to the sweep file")
    repeats: int = Field(1, gt=0, le=1000, description="seeds per point: the base's seed, seed + 1, ...")
    seeds: Optional[list[int]] = Field(None, min_length=1, description="explicit seeds (instead of repeats)")
    set: dict = Field(default_factory=dict, description="overrides applied to every trial")
    grid: dict = Field(default_factory=dict, description="dotted key -> list of values; every combination")
    points: list[dict] = Field(default_factory=list, description="listed points, each crossed with the grid")

    @field_validator("name")
    @classmethod
    def _name(cls, v):
        if v is not None and (not RUN_NAME.match(v) or ".." in v):
            raise ValueError(f"must be letters, digits, '.', '_' or '-', at most 64 characters (got {v!r})")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v):
        if v is not None and len(set(v)) != len(v):
            raise ValueError("seeds must be different")
        return v


@dataclass
class Trial:
    id: str
    overrides: dict[str, Any]     # dotted key -> value (seed not included)
    seed: int
    doc: dict                     # the resolved run document handed to config_from_dict
    cfg: RunConfig
    state: str = "new"            # new | done | resume
    run: Optional[Path] = None    # the run directory to skip or resume
    note: str = ""

    def resources(self, cluster: dict | None = None) -> dict:
        """What a Ray task for this trial asks for: CPUs = train.threads, one GPU for CUDA."""
        device = self.cfg.train.device
        gpu = device.split(":")[0] == "cuda" or (device == "auto" and bool((cluster or {}).get("GPU", 0)))
        return {"num_cpus": self.cfg.train.threads or 1, "num_gpus": 1 if gpu else 0}


@dataclass
class Plan:
    name: str
    file: Path
    dir: Path
    base: Path
    keys: list[str]
    labels: dict[str, str]
    trials: list[Trial]
    description: str = ""
    sets: list[str] = field(default_factory=list)
    common: dict = field(default_factory=dict)

    def counts(self) -> Counter:
        return Counter(t.state for t in self.trials)
