"""Training on every setting of a captures manifest: each setting's pair, split by time as a
single pair is; training batches that mix settings (each example carries its setting's knob
channels); validation and test over the held-out time spans of every setting, and the
whole settings held out (``data.holdout``) scored on the same spans, never trained on.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.audio import load_pair
from ..errors import FxforgeError
from ..knobs import CaptureSet, Setting
from ..nn.losses import metrics
from ..data.pair import PairedAudio
from ..nn.model import contract
from ..nn.stream import _pad, predict_clips


def with_knobs(x: torch.Tensor, values) -> torch.Tensor:
    """(time,) audio as (time, 1 + K): the knob values (0..1) held constant after it."""
    knobs = torch.as_tensor(list(values), dtype=x.dtype, device=x.device)
    return torch.cat([x.reshape(-1, 1), knobs.expand(x.shape[0], knobs.numel())], dim=1)


# data.balance = "geometric": each step's errors fold into a setting's running ESR with this
# decay (a window of about a hundred steps: a few hundred examples of each setting), and no
# setting's pull on the loss (its weight squared) leaves BALANCE_LIMIT times (or 1 / BALANCE_LIMIT)
# what its energy alone gives it.
BALANCE_DECAY = 0.99
BALANCE_LIMIT = 4.0


@dataclass
class LoadedSetting:
    setting: Setting
    pair: PairedAudio
    split: dict  # name -> (x (time,), y (time,)) tensors


class _Batches:
    """An epoch's batches, built when indexed (a list of them all would hold every
    setting's training audio again, with its knob channels)."""

    def __init__(self, groups: list[list[tuple]], knobs: dict):
        self.groups, self.knobs = groups, knobs

    def __len__(self):
        return len(self.groups)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return _Batches(self.groups[i], self.knobs)
        group = self.groups[i]
        x = torch.cat([xb for xb, _, _ in group])
        y = torch.cat([yb for _, yb, _ in group])
        k = torch.stack([self.knobs[s] for _, _, s in group]).unsqueeze(1).expand(-1, x.shape[1], -1)
        return torch.cat([x, k.to(x.dtype)], dim=-1), y

    def __iter__(self):
        return (self[i] for i in range(len(self)))


@torch.no_grad()
def _predict_every_nth(model, x: torch.Tensor, y: torch.Tensor, clip: int, context: int, every: int, first: int):
    """predict_clips's output and the target at clips first, first + every, ... only (the same
    samples predict_clips gives there: each clip after ``context`` samples of the audio before it)."""
    latency = contract(model).latency
    n = x.shape[0]
    clips = max(1, -(-n // clip))
    padded = torch.cat([_pad(x, context, at_end=False), x, _pad(x, clips * clip - n + latency, at_end=True)])
    windows = padded.unfold(0, context + clip + latency, clip)[:clips].transpose(1, 2)
    pick = torch.arange(first % every, clips, every)
    out, _ = model(windows[pick], model.initial_state(len(pick), x.device))
    valid = (pick.reshape(-1, 1) * clip + torch.arange(clip).reshape(1, -1)) < n
    target = torch.cat([y.reshape(-1), y.new_zeros(clips * clip - n)]).reshape(clips, clip)[pick]
    return out[:, context + latency:, 0].cpu()[valid], target[valid]


def _load_pairs(captures: CaptureSet, data, primary: PairedAudio | None) -> list[PairedAudio]:
    """Every setting's pair. The settings ``data.latency = "auto"`` measures (those naming no
    latency of their own) are aligned by one latency: one input through one rig, they share its
    round trip, but an onset measured on a heavily clipped setting is off by a few samples
    (GxMXR Distortion+: 23 samples at DRIVE 0 .. 0.6, yet 28 measured at 0.75 and 21 at 1), a
    knob-dependent delay a conditioned model would have to learn and could not interpolate. It
    is measured on the trained settings at the ends of each knob's range and the primary (the
    cleanest is usually at one end, a drive's minimum): the one whose estimated response stands
    clearest out of its noise gives it. The rest take it unmeasured: the alignment is most of a
    pair's loading time. Where the calibration blips give a latency, each setting keeps its own."""
    def load(s, latency=None):
        if latency is None and primary is not None and s is captures.primary:
            return primary
        d = captures.data_for(data, s)
        return load_pair(d if latency is None else d.model_copy(update={"latency": latency}))

    auto = [s for s in captures.settings if s.latency is None and data.latency == "auto"]
    trained = [s for s in auto if not s.held_out]
    if len(auto) < 2 or not trained:
        return [load(s) for s in captures.settings]
    ends = {id(min(trained, key=lambda s: s.normalised[j])) for j in range(len(captures.knobs))}
    ends |= {id(max(trained, key=lambda s: s.normalised[j])) for j in range(len(captures.knobs))}
    measured = {id(s): load(s) for s in trained if id(s) in ends or s is captures.primary}
    if any(p.alignment.get("method") != "response" for p in measured.values()):  # blips: exact, per file
        return [measured.get(id(s)) or load(s) for s in captures.settings]
    by = {id(s): s for s in auto}
    best = max(measured, key=lambda i: measured[i].alignment.get("peak_to_noise", 0.0))
    lag, source = measured[best].latency, by[best].label
    pairs = []
    for s in captures.settings:
        if s.latency is not None or data.latency != "auto":
            pairs.append(load(s))
            continue
        own = measured.get(id(s))
        if own is not None and own.latency == lag:
            pairs.append(own)
            continue
        pair = load(s, lag)
        if own is None:
            pair.alignment = {"method": "shared", "latency": lag, "shared_from": source}
            pair.notes.append(f"latency {lag} samples, as measured on {source} (the clearest estimate of the set)")
        else:
            pair.alignment = {**own.alignment, "latency": lag, "measured_latency": own.latency, "shared_from": source}
            pair.notes = [*own.notes, f"latency {lag} samples, as measured on {source} (the clearest estimate of "
                                      f"the set): {own.latency} was measured here"]
        pairs.append(pair)
    return pairs


class Settings:
    """Every setting of a CaptureSet, loaded and split (the automatically aligned ones by one
    latency, see _load_pairs)."""

    def __init__(self, captures: CaptureSet, data, primary: PairedAudio | None = None, loss=None):
        self.captures = captures
        self.loaded: list[LoadedSetting] = []
        pairs = _load_pairs(captures, data, primary)
        for s, pair in zip(captures.settings, pairs):
            if self.loaded and pair.sample_rate != self.loaded[0].pair.sample_rate:
                raise FxforgeError(f"{s.file}: sample rate {pair.sample_rate} Hz, but {self.loaded[0].setting.file} "
                                   f"has {self.loaded[0].pair.sample_rate} Hz")
            splits = pair.splits(data.split, data.fraction)
            self.loaded.append(LoadedSetting(s, pair, {k: (torch.from_numpy(x.copy()), torch.from_numpy(y.copy()))
                                                         for k, (x, y) in splits.items()}))
        self.knobs = {id(ls.setting): torch.tensor(ls.setting.normalised, dtype=torch.float32) for ls in self.loaded}
        # Each trained setting's weight in the loss: sqrt(mean energy / its energy), so that every
        # setting's ESR counts the same. By the pooled energy alone a loud setting rules: on
        # GxMXR Distortion+ DRIVE 1 (RMS 0.25) held 79 % of the grid's energy, DRIVE 0 (0.03) 1 %.
        energy = torch.stack([ls.split["train"][1].double().pow(2).mean() for ls in self.trained])
        self._grid = torch.stack([self.knobs[id(ls.setting)] for ls in self.trained])
        self._weight = (energy.mean() / energy.clamp_min(1e-12)).sqrt().float()
        self.balance = data.balance
        # data.balance = "geometric": per trained setting, decayed sums of the training batches'
        # squared error and target energy, plain and pre-emphasised (rows), as the loss weighs them.
        self._errors: torch.Tensor | None = None
        # the loss's mix of plain and pre-emphasised ESR (train.loss; either alone: that one)
        self._pre_emphasis = float(loss.pre_emphasis) if loss is not None else 0.95
        mix = (float(loss.esr), float(loss.esr_pre)) if loss is not None else (1.0, 1.0)
        self._mix = mix if any(mix) else (1.0, 0.0)

    @property
    def trained(self) -> list[LoadedSetting]:
        return [ls for ls in self.loaded if not ls.setting.held_out]

    @property
    def primary(self) -> LoadedSetting:
        return next(ls for ls in self.loaded if ls.setting is self.captures.primary)

    def train_target(self) -> torch.Tensor:
        """Every trained setting's training target: the loss is normalised by its energy."""
        return torch.cat([ls.split["train"][1] for ls in self.trained])

    def example_settings(self, xb: torch.Tensor) -> torch.Tensor:
        """(batch,) index into ``trained`` of the setting each example of a training batch (audio,
        knob channels) is, by its knobs."""
        knobs = xb[:, 0, 1:].to(self._grid.device, torch.float32)
        return torch.cdist(knobs, self._grid).argmin(dim=1)

    def example_weights(self, xb: torch.Tensor, which: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, 1, 1) loss weights of a training batch's examples: the weight of each one's
        setting (``which``, from example_settings). Both the output and the target are scaled by
        it before the loss (whose ESR and DC terms are quadratic in them): by energy, every
        setting's ESR weighs the same; with data.balance = "geometric", each is further divided
        by that setting's running ESR (relative to their geometric mean, within a factor of
        BALANCE_LIMIT either way), so that the loss's gradient is that of the settings' mean log
        ESR: a setting twice as hard no longer pulls twice as hard."""
        which = self.example_settings(xb) if which is None else which
        weight = self._weight
        if self.balance == "geometric" and self._errors is not None:
            esr = self.running_esr()
            relative = esr / esr.log().mean().exp()
            weight = weight * relative.rsqrt().clamp(BALANCE_LIMIT ** -0.5, BALANCE_LIMIT ** 0.5)
        return weight[which].reshape(-1, 1, 1).to(xb.device, xb.dtype)

    def running_esr(self) -> torch.Tensor:
        """(settings,) each trained setting's recent training ESR, as the loss mixes plain and
        pre-emphasised (observe's decayed sums)."""
        e = self._errors
        return (self._mix[0] * e[0] / e[1].clamp_min(1e-30) + self._mix[1] * e[2] / e[3].clamp_min(1e-30)
                ).float().clamp_min(1e-12)

    @torch.no_grad()
    def observe(self, which: torch.Tensor, y_hat: torch.Tensor, y: torch.Tensor) -> None:
        """Fold a training step's errors into each setting's running ESR (data.balance = "geometric")."""
        if self.balance != "geometric":
            return
        from ..nn.losses import pre_emphasis

        y_hat, y = y_hat.detach().double(), y.double()
        yp, hp = pre_emphasis(y, self._pre_emphasis), pre_emphasis(y_hat, self._pre_emphasis)
        sums = torch.stack([(y_hat - y).pow(2).sum(dim=(1, 2)), y.pow(2).sum(dim=(1, 2)),
                            (hp - yp).pow(2).sum(dim=(1, 2)), yp.pow(2).sum(dim=(1, 2))]).cpu()
        if not torch.isfinite(sums).all():  # a diverging step (the loop rolls back): keep the running ESR
            return
        step = torch.zeros(4, len(self._weight), dtype=torch.float64).index_add_(1, which.cpu(), sums)
        self._errors = step if self._errors is None else BALANCE_DECAY * self._errors + step

    def state_dict(self) -> dict:
        """What resuming needs to weigh the settings as the interrupted run did."""
        return {"errors": self._errors}

    def load_state_dict(self, state: dict) -> None:
        self._errors = state.get("errors")

    def samples(self, split: str) -> int:
        return sum(ls.split[split][0].numel() for ls in self.trained)

    def batches(self, provider, batch_size: int, generator: torch.Generator) -> _Batches:
        """The provider's examples of every trained setting, shuffled together into batches of
        ``batch_size``; examples of different lengths never share a batch."""
        examples = []
        for ls in self.trained:
            x, y = ls.split["train"]
            examples += [(xb, yb, id(ls.setting)) for xb, yb in provider.batches(x, y, 1, generator)]
        order = torch.randperm(len(examples), generator=generator).tolist()
        groups: list[list[tuple]] = []
        open_by_length: dict[int, list[tuple]] = {}
        for i in order:
            ex = examples[i]
            group = open_by_length.setdefault(ex[0].shape[1], [])
            group.append(ex)
            if len(group) == batch_size:
                groups.append(group)
                open_by_length[ex[0].shape[1]] = []
        groups += [g for g in open_by_length.values() if g]
        return _Batches(groups, self.knobs)

    def evaluate(self, model, split: str, clip: int, context: int, pre_emphasis: float,
                 device=None, held_out: bool = True) -> tuple[dict[str, float], list[dict]]:
        """ESR of the trained settings (the mean of each one's ESR on its ``split`` span: each
        setting counts the same, as in the loss), and per setting (the held-out ones included,
        marked, unless ``held_out`` is false: validation never looks at them)."""
        rows = []
        # Validation (held_out false) gives each of the S trained settings every S-th clip of its
        # span, in turn: together they cover the span once, so validating costs what a single
        # pair's does and the wall-clock budget stays spent on training. The test runs every clip.
        share = len(self.trained) if not held_out else 1
        for i, ls in enumerate(self.loaded if held_out else self.trained):
            x, y = ls.split[split]
            xk = with_knobs(x, ls.setting.normalised).to(device)
            if share > 1 and x.numel() > share * clip:
                y_hat, y = _predict_every_nth(model, xk, y, clip, context, share, i)
            else:
                y_hat = predict_clips(model, xk, clip, context).cpu()
            m = metrics(y_hat.reshape(1, -1, 1), y.reshape(1, -1, 1), pre_emphasis)
            rows.append({"knobs": dict(ls.setting.knobs), "held_out": ls.setting.held_out,
                         "esr": m["esr"], "esr_pre": m["esr_pre"]})
        trained = [r for r in rows if not r["held_out"]]
        pooled = {k: sum(r[k] for r in trained) / len(trained) for k in ("esr", "esr_pre")}
        return pooled, rows


def load_settings(cfg):
    """A captures run's settings, and its config with the model's knob keys filled in (the
    knob count from the manifest; ``knob_defaults`` the primary setting, which the audio-only
    machinery plays). A model without knob inputs is refused in one line."""
    import dataclasses

    from ..knobs import read_captures

    where = cfg.source
    captures = read_captures(cfg.data, where)
    fields = type(cfg.model).model_fields
    if "knobs" not in fields or "knob_defaults" not in fields:
        raise FxforgeError(f"{where}: model.name: model '{cfg.model.name}' takes no knob inputs, and data.captures "
                           f"trains a conditioned model (wave-lstm, gru or wavenet)")
    count = len(captures.knobs)
    given = cfg.model.knobs
    if given and given != count:
        raise FxforgeError(f"{where}: model.knobs: {given}, but {captures.path} has {count} knobs "
                           f"({', '.join(k.name for k in captures.knobs)}); leave model.knobs out, the core sets it")
    update = {"knobs": count, "knob_defaults": list(captures.primary.normalised)}
    # The model's Config checks the knobs too (a layout that cannot take them says so)
    from ..config import validate

    validate(type(cfg.model), {**cfg.model.model_dump(exclude={"stages"}), **update}, where, "model")
    model = cfg.model.model_copy(update=update)
    cfg = dataclasses.replace(cfg, model=model)
    return Settings(captures, cfg.data, loss=cfg.train.loss), cfg
