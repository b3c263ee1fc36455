"""Learning-rate schedules as functions of training progress in [0, 1].

Progress is the larger of steps done and time budget spent, so a cosine
schedule lands on its floor exactly when a fixed time budget runs out."""
import math

from pydantic import Field, model_validator

from fxforge import ComponentConfig, SchedulerSpec, hookimpl


class ConstantConfig(ComponentConfig):
    warmup: float = Field(0.0, ge=0, lt=1, description="fraction of training spent ramping up linearly")


class CosineConfig(ComponentConfig):
    floor: float = Field(0.02, ge=0, le=1, description="final lr as a fraction of optim.lr")
    warmup: float = Field(0.0, ge=0, lt=1, description="fraction of training spent ramping up linearly")


class StepConfig(ComponentConfig):
    gamma: float = Field(0.5, gt=0, le=1, description="lr factor at each milestone")
    milestones: list[float] = Field([0.5, 0.75], description="progress fractions where the lr drops")

    @model_validator(mode="after")
    def _sorted(self):
        if any(not 0 < m < 1 for m in self.milestones) or self.milestones != sorted(self.milestones):
            raise ValueError("milestones must be increasing fractions between 0 and 1")
        return self


def _warm(warmup: float, progress: float) -> float:
    return min(1.0, (progress + 1e-9) / warmup) if warmup else 1.0


def constant(cfg: ConstantConfig, base_lr: float):
    return lambda p: base_lr * _warm(cfg.warmup, p)


def cosine(cfg: CosineConfig, base_lr: float):
    def lr_at(p: float) -> float:
        if cfg.warmup and p < cfg.warmup:
            return base_lr * _warm(cfg.warmup, p)
        q = (p - cfg.warmup) / (1 - cfg.warmup)
        return base_lr * (cfg.floor + (1 - cfg.floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, q))))
    return lr_at


def step(cfg: StepConfig, base_lr: float):
    return lambda p: base_lr * cfg.gamma ** sum(p >= m for m in cfg.milestones)


@hookimpl
def fxforge_register_schedulers(register):
    register(SchedulerSpec("constant", "Fixed learning rate (optional linear warm-up)", ConstantConfig, constant))
    register(SchedulerSpec("cosine", "Cosine annealing to a floor over the run or its time budget", CosineConfig, cosine))
    register(SchedulerSpec("step", "Multiply the rate by gamma at progress milestones", StepConfig, step))
