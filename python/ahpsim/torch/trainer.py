"""Seeded, batched, resumable training loop with tqdm progress, evaluation, atomic checkpoints and best-model
selection.

Resumption: the batch order of epoch ``e`` is ``numpy.random.default_rng([seed, e]).permutation(n)``, so a
run killed at any point and restarted from ``<ckpt_dir>/last.pt`` continues with exactly the batches it
had not done yet (model, optimiser, history and the best model are restored).  Checkpoints are written
to a temporary file in the same folder, flushed and fsync'ed, then ``os.replace``d over the old one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from tqdm import tqdm

from .._files import replace_with_umask_mode
from .._validation import MAX_THREADS, as_int, as_positive_real
from . import losses as L
from .modules import SpikingRNN
from .relational import RelationalNetwork

__all__ = ["SequenceData", "TrainConfig", "Trainer", "TrainingInterrupted", "LR_SCHEDULES", "save_checkpoint",
           "load_checkpoint", "load_model", "init_from_checkpoint", "evaluate", "format_epoch", "batch_objective",
           "portable_checkpoint"]


class TrainingInterrupted(KeyboardInterrupt):
    """Raised by :meth:`Trainer.fit` on Ctrl-C after the checkpoint has been written: ``epoch`` (0-based)
    and ``batch`` say where a rerun resumes."""

    def __init__(self, epoch: int, batch: int):
        super().__init__(f"interrupted at epoch {epoch + 1}, batch {batch}; rerun to resume")
        self.epoch, self.batch = epoch, batch


class SequenceData:
    """A labelled set of sequences served by index: ``get(idx) -> (x [B,T,C], labels [B], lengths [B]|None)``.

    Build it from arrays (``SequenceData.from_arrays``) or from a function that encodes on the fly
    (sMNIST: the threshold-crossing code of 60k images would take 4 GB)."""

    def __init__(self, n: int, get: Callable[[np.ndarray], tuple], labels: Optional[np.ndarray] = None,
                 groups: Optional[np.ndarray] = None):
        self.n = int(n)
        self._get = get
        self.labels = labels
        self.groups = None if groups is None else np.asarray(groups)  # e.g. the bAbI task of each item

    def __len__(self):
        return self.n

    def get(self, idx):
        return self._get(np.asarray(idx, dtype=np.int64))

    def subset(self, idx) -> "SequenceData":
        idx = np.asarray(idx, dtype=np.int64)
        return SequenceData(len(idx), lambda j: self._get(idx[j]),
                            None if self.labels is None else np.asarray(self.labels)[idx],
                            None if self.groups is None else self.groups[idx])

    @classmethod
    def from_arrays(cls, x, labels, lengths=None) -> "SequenceData":
        x = torch.as_tensor(np.asarray(x))
        lab = torch.as_tensor(np.asarray(labels, dtype=np.int64))
        ln = None if lengths is None else torch.as_tensor(np.asarray(lengths, dtype=np.int64))

        def get(idx):
            i = torch.as_tensor(idx)
            return x[i], lab[i], (None if ln is None else ln[i])

        return cls(len(lab), get, np.asarray(labels))


LR_SCHEDULES = ("exponential", "step", "cosine", "linear", "constant")


@dataclass
class TrainConfig:
    """Training settings. Learning-rate schedules (``lr_schedule``), with ``e`` the epoch (0-based) and
    ``p`` the fraction of all ``epochs`` done at the current batch:

    * ``"exponential"``: ``lr * lr_decay ** e`` (one value per epoch);
    * ``"step"``: ``lr * lr_decay ** (e // lr_step_epochs)``;
    * ``"cosine"``: ``lr_min + (lr - lr_min) (1 + cos(pi p)) / 2``, updated every batch;
    * ``"linear"``: ``lr + (lr_min - lr) p``, updated every batch;
    * ``"constant"``: ``lr``.

    ``grad_clip``: the gradients' global L2 norm is clipped to this value (None: no clipping).

    ``ema_decay``: where set, the run also keeps an exponential moving average of the weights (Polyak
    averaging; ``torch.optim.swa_utils.AveragedModel``), updated after every optimizer step as
    ``w_avg <- ema_decay w_avg + (1 - ema_decay) w`` (starting from the weights after the first step;
    masks and delays follow the trained network). Validation, ``best.pt`` and everything exported from it
    use the averaged weights; the training statistics are those of the trained weights. Its horizon is
    about ``1 / (1 - ema_decay)`` optimizer steps. None: off.

    ``weight_noise``: where set, every training step computes its loss and gradients with the weight
    matrices (the parameters of two or more dimensions: ``w_in``, ``w_rec``, ``w_out``, the bAbI
    network's layers) multiplied by ``1 + weight_noise * n``, ``n`` standard normal per weight, drawn
    from ``(seed, step)`` (so a resumed run draws the same noise); the optimizer then updates the
    unperturbed weights with those gradients (weight-noise injection, Graves 2011; absent synapses stay
    absent). It trains towards weights whose accuracy survives small relative errors, such as the
    chip's 8-bit weights. Validation and the exported network use the unperturbed weights. None: off.

    Ranges (``ValueError`` otherwise): ``lr`` in (0, 1] (Adam's step size; beyond 1 the weights diverge
    at once); ``lr_decay`` in (0, 1]; ``lr_min`` in [0, ``lr``] for the cosine and linear schedules;
    ``rate_target`` in [0, 1] spikes per neuron per step; ``ema_decay`` in (0, 1) or None; ``weight_noise``
    in (0, 1] or None; ``epochs`` at most 1,000,000; sizes >= 1.
    """

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-2
    lr_schedule: str = "exponential"
    lr_decay: float = 1.0            # exponential / step: factor per epoch / per lr_step_epochs
    lr_step_epochs: int = 10
    lr_min: float = 0.0              # cosine / linear: the final learning rate
    weight_decay: float = 0.0
    grad_clip: Optional[float] = None
    loss_mode: str = "last"          # "last" | "window" | "window_mean" (see losses.readout_cross_entropy)
    window: int = 1
    rate_target: float = 0.02        # spikes per neuron per step
    rate_weight: float = 0.0
    ema_decay: Optional[float] = None  # weight averaging per optimizer step (None: off)
    weight_noise: Optional[float] = None  # relative std of the weights' noise in training steps (None: off)
    seed: int = 0
    eval_batch_size: int = 256
    max_batches_per_epoch: Optional[int] = None
    ckpt_every: int = 50             # batches between checkpoints (and at every epoch end)
    portable_checkpoint: bool = False  # also write portable.pt (no optimizer moments; to commit with a run)
    progress: bool = True            # progress bar per epoch
    log_epochs: Optional[bool] = None  # one line per epoch on the terminal (None: with the progress bar)
    num_threads: Optional[int] = None

    def __post_init__(self):
        def positive_int(name):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")

        for name in ("epochs", "batch_size", "eval_batch_size", "lr_step_epochs"):
            positive_int(name)
        if self.epochs > 1_000_000:
            raise ValueError(f"epochs must be at most 1000000, got {self.epochs!r}")
        if self.max_batches_per_epoch is not None:
            positive_int("max_batches_per_epoch")
        for name in ("lr", "lr_decay"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and 0.0 < v <= 1.0):
                raise ValueError(f"{name} must be a number in (0, 1], got {v!r}")
        for name in ("lr_min", "weight_decay", "rate_weight", "rate_target"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.rate_target > 1.0:
            raise ValueError(f"rate_target must be at most 1 spike per neuron per step, got {self.rate_target!r}")
        if self.lr_schedule in ("cosine", "linear") and self.lr_min > self.lr:
            raise ValueError(f"lr_min ({self.lr_min!r}) must not exceed lr ({self.lr!r}): the {self.lr_schedule} "
                             f"schedule goes from lr down to lr_min")
        if self.num_threads is not None:
            as_int(self.num_threads, "num_threads", minimum=1, maximum=MAX_THREADS)
        for name, one_allowed in (("ema_decay", False), ("weight_noise", True)):
            v = getattr(self, name)  # optional numbers in (0, 1) or (0, 1]
            if v is not None and not (isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 < v
                                      and (v <= 1.0 if one_allowed else v < 1.0)):
                raise ValueError(f"{name} must be a number in (0, 1{']' if one_allowed else ')'} or None, got {v!r}")
        if self.grad_clip is not None and not (math.isfinite(self.grad_clip) and self.grad_clip > 0):
            raise ValueError(f"grad_clip must be a finite number > 0 or None, got {self.grad_clip!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if self.loss_mode not in ("last", "window", "window_mean"):
            raise ValueError(f"loss_mode must be 'last', 'window' or 'window_mean', got {self.loss_mode!r}")
        positive_int("window")

    def lr_at(self, epoch: int, batch: int = 0, n_batches: int = 1) -> float:
        """The learning rate of batch ``batch`` (of ``n_batches``) in epoch ``epoch`` (0-based)."""
        if self.lr_schedule == "exponential":
            return self.lr * self.lr_decay ** epoch
        if self.lr_schedule == "step":
            return self.lr * self.lr_decay ** (epoch // self.lr_step_epochs)
        if self.lr_schedule == "constant":
            return self.lr
        p = min(1.0, (epoch + batch / max(n_batches, 1)) / self.epochs)
        if self.lr_schedule == "cosine":
            return self.lr_min + (self.lr - self.lr_min) * 0.5 * (1.0 + math.cos(math.pi * p))
        return self.lr + (self.lr_min - self.lr) * p


# TrainConfig fields that shape the trajectory of a run (the others: seed, checked apart; bookkeeping,
# threads and the progress display, which change no result)
_TRAJECTORY_FIELDS = ("epochs", "batch_size", "lr", "lr_schedule", "lr_decay", "lr_step_epochs", "lr_min",
                      "weight_decay", "grad_clip", "loss_mode", "window", "rate_target", "rate_weight", "ema_decay",
                      "weight_noise", "max_batches_per_epoch")


def config_changes(old: dict, new: "TrainConfig") -> dict:
    """``{field: [old value, new value]}`` for the trajectory-shaping fields of ``new`` that differ from
    the recorded configuration ``old`` (a ``train_config`` dictionary of a checkpoint; a field it lacks,
    written before the field existed, counts as its default)."""
    defaults = dataclasses.asdict(TrainConfig())
    changed = {}
    for k in _TRAJECTORY_FIELDS:
        before, now = old.get(k, defaults[k]), getattr(new, k)
        if before != now:
            changed[k] = [before, now]
    return changed


def _atomic_torch_save(obj, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        replace_with_umask_mode(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def save_checkpoint(path, model: torch.nn.Module, **extra) -> None:
    """Writes ``{"model": state_dict, **extra}`` atomically (temp file + fsync + ``os.replace``)."""
    _atomic_torch_save({"format": "ahpsim.torch/1", "model": model.state_dict(), **extra}, Path(path))


def _narrow_int(t: torch.Tensor) -> torch.Tensor:
    """The smallest integer dtype that holds every value of ``t`` (lossless)."""
    if t.numel() == 0:
        return t
    lo, hi = int(t.min()), int(t.max())
    for dt in (torch.uint8, torch.int8, torch.int16, torch.int32):
        info = torch.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return t.to(dt)
    return t


def portable_checkpoint(ck: dict) -> dict:
    """The compact form of a ``last.pt`` dictionary, small enough to commit with a run so that it resumes
    on another machine (``portable.pt``; written beside ``last.pt`` when
    ``TrainConfig.portable_checkpoint`` is set).

    Lossless for the model: its floating-point tensors are kept as they are and its integer tensors
    (synaptic delays, masks) are stored in the narrowest integer type that holds them (widened back by
    :func:`load_checkpoint`). Left out: the optimizer's per-parameter state (Adam's first and second
    moment estimates, twice the model's size); the learning-rate schedule, the epoch and batch, the
    history, the best model's score and the rewiring state are kept. A run resumed from it therefore
    restarts Adam's moment estimates (its next step is Adam's first step at the scheduled learning
    rate); only ``last.pt`` resumes bit for bit."""
    if not isinstance(ck, dict) or "model" not in ck:
        raise ValueError("portable_checkpoint needs a checkpoint dictionary with a 'model' entry")
    out = {k: v for k, v in ck.items() if k != "optimizer"}
    model, widen = {}, {}
    for k, v in ck["model"].items():
        if torch.is_tensor(v) and not v.is_floating_point() and v.dtype != torch.bool:
            n = _narrow_int(v)
            if n.dtype != v.dtype:
                widen[k] = str(v.dtype).removeprefix("torch.")
            v = n
        model[k] = v
    out["model"] = model
    out["widen"] = widen
    if "optimizer" in ck:
        out["optimizer"] = {"state": {}, "param_groups": ck["optimizer"]["param_groups"]}
    out["portable"] = True
    return out


def load_checkpoint(path) -> dict:
    """Reads a checkpoint written by :func:`save_checkpoint` (tensors and plain Python values only:
    ``torch.load(weights_only=True)``, so an untrusted file cannot run code)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: a directory, not a checkpoint (use {path / 'best.pt'} or last.pt)")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such checkpoint") from None
    except Exception as e:  # not a torch file (an empty one too), or one holding objects weights_only refuses
        raise ValueError(f"{path}: not an ahpsim checkpoint (torch.load: {type(e).__name__})") from None
    if not isinstance(ck, dict) or "model" not in ck:
        raise ValueError(f"{path}: not an ahpsim checkpoint (no 'model' entry)")
    for k, dt in (ck.pop("widen", None) or {}).items():  # integer tensors narrowed by portable_checkpoint
        ck["model"][k] = ck["model"][k].to(getattr(torch, dt))
    return ck


def load_model(path_or_ckpt):
    """The model of a checkpoint (a path or a loaded dict): a :class:`SpikingRNN`, or the model class
    the checkpoint names (``RelationalNetwork`` for bAbI)."""
    ck = path_or_ckpt if isinstance(path_or_ckpt, dict) else load_checkpoint(path_or_ckpt)
    extra = ck["model"].get("_extra_state")
    if isinstance(extra, dict) and extra.get("class") == "RelationalNetwork":
        return RelationalNetwork.from_state_dict(ck["model"])
    return SpikingRNN.from_state_dict(ck["model"])


# the time constants a network with ``train_tau`` learns: they may differ between two of the same build
_TRAINABLE_CONSTANTS = ("tau_m", "tau_ahp", "tau_a", "tau_out")


def init_from_checkpoint(model: torch.nn.Module, path_or_ckpt) -> dict:
    """Copies the weights of a checkpoint into ``model`` (a warm start: a new run that begins where
    another one ended, with its own optimizer, schedule and history).

    The checkpoint's network must be built like ``model``: the same class, the same configuration (sizes,
    neuron models, thresholds, surrogate, delays) and the same parameter names and shapes.
    The time constants of a :class:`SpikingRNN` (``tau_m``, ``tau_ahp``, ``tau_a``, ``tau_out``) are
    state like the weights: they come from the checkpoint and replace the model's own, and they and
    ``train_tau`` may differ. A ``model`` with ``train_tau`` starts learning them from the checkpoint's
    values (trained or fixed); a ``model`` without it keeps them fixed at those values (after a run that
    learned them: a fine-tuning of the weights alone). Its values are copied into the model's tensors
    (the model keeps its dtype and device). Returns a record for the run's metadata: ``checkpoint`` (the
    path), ``epoch`` (the epoch after which the checkpoint was written), ``best_epoch`` (its run's best
    epoch at that moment) and, for a :class:`SpikingRNN`, ``time_constants_replaced``: the names of the
    model's time constants that differed from the checkpoint's before the copy.

    Raises ``ValueError`` naming what differs, ``FileNotFoundError`` for a missing file."""
    ck = path_or_ckpt if isinstance(path_or_ckpt, dict) else load_checkpoint(path_or_ckpt)
    where = "the checkpoint" if isinstance(path_or_ckpt, dict) else str(path_or_ckpt)
    src = load_model(ck)
    if type(src) is not type(model):
        raise ValueError(f"{where} holds a {type(src).__name__}, the run builds a {type(model).__name__}")
    a, b = _plain(src.config()), _plain(model.config())
    # the time constants (learned or fixed) are state the warm start carries over, whatever train_tau
    # says on either side: the model learns them from there (train_tau) or keeps them fixed
    own_train_tau = bool(b.get("train_tau"))
    taus_from_source = "train_tau" in b  # (a SpikingRNN; a RelationalNetwork's encoders must match)
    replaced = []
    if taus_from_source:
        # (a log/exp round trip of a trainable constant moves it by an ulp: not a replacement)
        replaced = [k for k in _TRAINABLE_CONSTANTS if k in b and not (
            np.shape(a.get(k)) == np.shape(b[k]) and np.allclose(a.get(k), b[k], rtol=1e-12, atol=0))]
        for k in _TRAINABLE_CONSTANTS:
            a.pop(k, None), b.pop(k, None)
        a.pop("train_tau", None), b.pop("train_tau", None)
    differ = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    if differ:
        what = "; ".join(f"{k}: checkpoint {_short(a.get(k))}, this run {_short(b.get(k))}" for k in differ[:3])
        raise ValueError(f"{where} holds a network built otherwise ({what}{'; ...' if len(differ) > 3 else ''}): "
                         "pass the --neurons / --model-opt of the run that wrote it")
    mine, theirs = model.state_dict(), src.state_dict()
    tensors = lambda d: {k: tuple(v.shape) for k, v in d.items() if isinstance(v, torch.Tensor)}  # noqa: E731
    tm, tt = tensors(mine), tensors(theirs)
    log_taus = {"log_" + k for k in _TRAINABLE_CONSTANTS}
    if taus_from_source:  # log_tau_* exist in a train_tau network only; they are set from the values below
        tm = {k: v for k, v in tm.items() if k not in log_taus}
        tt = {k: v for k, v in tt.items() if k not in log_taus}
        theirs = {k: v for k, v in theirs.items() if k not in log_taus}
        # the configuration loaded with the weights (which sets the time constants) keeps the run's train_tau
        for k, v in list(theirs.items()):
            if k.endswith("_extra_state") and isinstance(v, dict) and isinstance(v.get("config"), dict):
                theirs[k] = {**v, "config": {**v["config"], "train_tau": own_train_tau}}
    shapes = sorted(k for k in set(tm) | set(tt) if tm.get(k) != tt.get(k))
    if shapes:
        raise ValueError(f"{where}: parameters {', '.join(shapes[:5])} differ in name or shape from the run's network")
    missing, unexpected = model.load_state_dict(theirs, strict=not taus_from_source)
    if set(missing) - log_taus or unexpected:  # (strict loading raised already otherwise)
        raise ValueError(f"{where}: parameters {', '.join(sorted(set(missing) - log_taus) + list(unexpected))} "
                         "differ from the run's network")
    record = {"checkpoint": None if isinstance(path_or_ckpt, dict) else str(path_or_ckpt),
              "epoch": ck.get("epoch"), "best_epoch": ck.get("best_epoch")}
    if taus_from_source:
        record["time_constants_replaced"] = replaced
    return record


def _short(v) -> str:
    """A configuration value for an error message: long lists summarised by length and distinct values."""
    if isinstance(v, list) and len(v) > 4:
        distinct = sorted({json.dumps(x) for x in v})
        return f"{len(v)} values ({', '.join(distinct[:3])}{', ...' if len(distinct) > 3 else ''})"
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _plain(x):
    """A configuration as JSON would read it back (tuples as lists, numpy values as Python's)."""
    return json.loads(json.dumps(x, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))


def batch_objective(model, x, lab, ln, cfg) -> tuple:
    """``(loss, predictions [B], spikes, neuron_steps)`` of one batch. A model with an
    ``objective(x, labels, cfg)`` method (e.g. :class:`~ahpsim.torch.relational.RelationalNetwork`)
    computes it itself; for a :class:`SpikingRNN` the loss is the readout cross-entropy of
    ``cfg.loss_mode`` (plus the rate regulariser with ``cfg.rate_weight``), the prediction the readout's
    argmax at the last valid step, and spikes are counted up to each sequence's end."""
    if hasattr(model, "objective"):
        return model.objective(x, lab, cfg)
    out = model(x)
    lab = lab.to(out.y.device)
    loss = L.readout_cross_entropy(out.y, lab, cfg.loss_mode, cfg.window, ln)
    counts = None
    if cfg.rate_weight > 0:
        if ln is None:  # the counts serve the spike statistics below too: one pass over z, not two
            counts, rates = L.spike_counts_and_rates(out.z)
        else:
            rates = L.spike_rate(out.z, ln)
        loss = loss + L.rate_penalty(rates, cfg.rate_target, cfg.rate_weight)
    with torch.no_grad():
        pred = L.readout_logits(out.y, ln).argmax(-1)
        z = out.z.detach()
        if ln is None:
            spikes = float((z if counts is None else counts.detach()).sum())
            neuron_steps = float(z.numel())
        else:  # padding after a sequence's end is not counted
            m = torch.arange(z.shape[1])[None] < ln[:, None]
            spikes, neuron_steps = float((z * m[:, :, None]).sum()), float(m.sum()) * z.shape[2]
    return loss, pred, spikes, neuron_steps


@torch.no_grad()
def evaluate(model, data: SequenceData, batch_size: int = 256, loss_mode: str = "last",
             window: int = 1, progress: bool = False) -> dict:
    """Accuracy (argmax of the readout at the last valid step), loss and spikes per neuron per step
    (``acc``, ``loss``, ``rate``); where ``data.groups`` is set (bAbI: the task of each question) also
    ``acc_by_group`` {group: accuracy}."""
    model.eval()
    cfg = TrainConfig(loss_mode=loss_mode, window=window)
    n_ok, loss_sum, spikes, neuron_steps = 0, 0.0, 0.0, 0.0
    idx = np.arange(len(data))
    groups = getattr(data, "groups", None)
    right = np.zeros(len(data), dtype=bool)
    it = range(0, len(data), batch_size)
    for s in tqdm(it, desc="eval", disable=not progress, leave=False):
        x, lab, ln = data.get(idx[s:s + batch_size])
        loss, pred, spk, ns = batch_objective(model, x, lab, ln, cfg)
        ok = (pred.cpu() == lab.cpu()).numpy()
        right[s:s + len(ok)] = ok
        n_ok += int(ok.sum())
        loss_sum += float(loss) * len(lab)
        spikes += spk
        neuron_steps += ns
    n = max(len(data), 1)
    res = {"acc": n_ok / n, "loss": loss_sum / n, "rate": spikes / max(neuron_steps, 1.0)}
    if groups is not None:
        res["acc_by_group"] = {int(g): float(right[groups == g].mean()) for g in np.unique(groups)}
    return res


def noise_seed(*key: int) -> int:
    """A torch generator seed (63 bits) derived from integers ``key`` (e.g. a run's seed and step)."""
    return int(np.random.SeedSequence([*key, 0x6E6F6973]).generate_state(1, np.uint64)[0] >> 1)


def perturb_weights_(model: torch.nn.Module, rel_std: float, seed: int) -> list:
    """Multiplies every weight matrix of ``model`` (its parameters of two or more dimensions) in place by
    ``1 + rel_std * n``, ``n`` standard normal per entry, drawn in float64 from ``torch.Generator``
    seeded with ``seed`` in the order of ``model.parameters()`` (zeros, i.e. absent synapses, stay zero).
    Returns ``[(parameter, its unperturbed copy)]``; ``p.copy_(w)`` for each pair restores the model.
    Used by ``TrainConfig.weight_noise`` and to measure how an accuracy depends on small weight errors."""
    gen = torch.Generator().manual_seed(int(seed))
    clean = []
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                clean.append((p, p.detach().clone()))
                n = torch.randn(p.shape, generator=gen, dtype=torch.float64).to(dtype=p.dtype, device=p.device)
                p.mul_(1 + rel_std * n)
    return clean


class _StopOnSignal:
    """While active (main thread only): the first SIGINT / SIGTERM sets ``requested`` (the caller stops
    at the next safe point); a second SIGINT raises KeyboardInterrupt. An ignored SIGINT (a background
    job) stays ignored. Previous handlers are restored on exit."""

    def __init__(self):
        self.requested = False
        self._old = {}

    def _handler(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                old = signal.getsignal(sig)
                if sig == signal.SIGINT and old is signal.SIG_IGN:
                    continue
                self._old[sig] = old
                signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


def _write_text_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=str(path.parent))
    with os.fdopen(fd, "w") as f:
        f.write(text)
    replace_with_umask_mode(tmp, path)


def format_epoch(rec: dict, epochs: int) -> str:
    """One terminal line per epoch: training loss / accuracy, validation accuracy (and, where the data are
    grouped, e.g. bAbI's tasks, how many groups reach 95 %), rate, lr, time."""
    parts = [f"epoch {rec['epoch']}/{epochs}", f"loss {rec['train_loss']:.4f}", f"train acc {rec['train_acc']:.4f}"]
    if "val_acc" in rec:
        parts.append(f"val acc {rec['val_acc']:.4f}")
    by_group = rec.get("val_acc_by_group")
    if by_group:  # bAbI's criterion: a task is passed at an error below 5 %
        parts.append(f"val groups >= 0.95: {sum(a >= 0.95 for a in by_group.values())}/{len(by_group)}")
    parts += [f"rate {rec['train_rate']:.4f}", f"lr {rec.get('lr', float('nan')):.2e}",
              f"{rec['epoch_wall_s'] / 60:.1f} min"]
    return " | ".join(parts)


class _Objective(torch.nn.Module):
    """``forward(x, labels, lengths)`` = :func:`batch_objective` of the wrapped model: the module that
    ``DistributedDataParallel`` wraps, so that models with their own ``objective`` (the bAbI Relational
    Network) and plain ``SpikingRNN`` s go through DDP's forward the same way."""

    def __init__(self, model: torch.nn.Module, cfg: "TrainConfig"):
        super().__init__()
        self.model = model
        self.cfg = cfg

    def forward(self, x, lab, ln):
        return batch_objective(self.model, x, lab, ln, self.cfg)


def _take(x, idx: np.ndarray):
    """Rows ``idx`` of a batch: a tensor, or a tuple of tensors (``BabiBatch``), or None."""
    if x is None:
        return None
    if isinstance(x, tuple):
        return type(x)(*(t[idx] for t in x))
    return x[idx]


class Trainer:
    """Trains a :class:`SpikingRNN` (or any module with an ``objective`` method, see
    :func:`batch_objective`) on a :class:`SequenceData`; ``fit()`` resumes from ``ckpt_dir``.

    Model selection: ``best.pt`` is the epoch with the highest accuracy on ``val`` (data carved from the
    training set; never the test set); without ``val`` the training accuracy of the epoch is used. With
    ``TrainConfig.ema_decay`` the averaged weights are validated and saved (:attr:`selected_model`).
    With ``ckpt_dir`` the run's history is also written to ``history.json`` and, where matplotlib is
    installed, its learning curve to ``learning_curve.png`` after every epoch.

    **Data-parallel training** under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment, or a
    ``torch.distributed`` process group already initialised): the model is wrapped in
    ``DistributedDataParallel`` (process group ``gloo`` on CPUs, ``nccl`` on GPUs); every rank takes a
    contiguous share of each global batch of ``batch_size`` questions / sequences, its loss weighted by
    its share so that DDP's average of the gradients is the gradient of the global batch's mean loss
    (as one process computes it, up to the order of the float sums; the rate regulariser is computed
    per share); the training statistics are summed over ranks; rank 0 alone evaluates, writes
    checkpoints and history and prints; a stop (time budget, SIGTERM, Ctrl-C) on any rank stops all
    at the same batch. Resuming reads ``last.pt`` on every rank.
    """

    def __init__(self, model: torch.nn.Module, train: SequenceData, val: Optional[SequenceData] = None,
                 config: Optional[TrainConfig] = None, ckpt_dir=None, meta: Optional[dict] = None,
                 on_epoch: Optional[Callable[[dict], None]] = None, rewiring=None):
        self.model = model
        self.train = train
        self.val = val
        self.cfg = config or TrainConfig()
        self.ckpt_dir = Path(ckpt_dir) if ckpt_dir is not None else None
        self.meta = dict(meta or {})
        self.on_epoch = on_epoch
        self.rewiring = rewiring  # e.g. ahpsim.torch.DeepR: called after every optimizer step
        self.opt = torch.optim.Adam(model.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        self.ema = None  # the averaged weights (TrainConfig.ema_decay); buffers follow the model
        if self.cfg.ema_decay is not None:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(self.cfg.ema_decay), use_buffers=False)
        self.epoch, self.batch, self.step = 0, 0, 0
        self.history: list[dict] = []
        self.best_acc = -math.inf
        self.best_epoch = -1
        self.wall = 0.0
        self._epoch_stats = self._new_stats()
        self._best_state = None
        self.stopped = False
        self.resumed_from: Optional[Path] = None
        self.resumed_meta: Optional[dict] = None
        self.resumed_changes: dict = {}  # settings changed at the last resume (see config_changes)
        self.rank, self.world, self._ddp, self._owns_group = 0, 1, None, False
        self._setup_distributed()

    def close(self) -> None:
        """Under torchrun: waits for every rank and ends the process group this Trainer started (call
        it once training is over; the command line does). Does nothing in one process."""
        if self._owns_group:
            import gc

            import torch.distributed as dist

            dist.barrier()
            # DistributedDataParallel keeps the process group alive: released only after
            # destroy_process_group, when a faster rank had already exited, gloo's destructor waited for
            # that peer forever (a rank hung at exit under load, about one torchrun in four). Free it here,
            # while every rank is past the barrier.
            self._ddp = None
            gc.collect()
            dist.destroy_process_group()
            self._owns_group = False

    def _setup_distributed(self) -> None:
        import torch.distributed as dist

        if not dist.is_available():
            return
        if not dist.is_initialized():
            if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
                return
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
            self._owns_group = True
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self._ddp = DistributedDataParallel(_Objective(self.model, self.cfg))

    @staticmethod
    def _new_stats():
        return {"loss": 0.0, "ok": 0, "n": 0, "spikes": 0.0, "neuron_steps": 0.0}

    # ------------------------------------------------------------------ checkpoints
    def _state(self) -> dict:
        return {"optimizer": self.opt.state_dict(), "epoch": self.epoch, "batch": self.batch, "step": self.step,
                "history": self.history, "best_acc": self.best_acc, "best_epoch": self.best_epoch,
                "wall": self.wall, "epoch_stats": self._epoch_stats,
                "train_config": dataclasses.asdict(self.cfg), "meta": self.meta,
                "rewiring": None if self.rewiring is None else self.rewiring.state_dict(),
                "ema": None if self.ema is None else {
                    "n_averaged": int(self.ema.n_averaged),
                    "parameters": {k: v.detach() for k, v in self.ema.module.named_parameters()}}}

    @property
    def selected_model(self) -> torch.nn.Module:
        """The network validated and saved as ``best.pt``: the averaged weights with ``ema_decay``, else the
        trained ones."""
        return self.model if self.ema is None else self.ema.module

    def save(self, name: str = "last.pt") -> None:
        """Writes ``last.pt`` (everything needed to resume) or, for ``best.pt``, the model with the run's
        metadata but without the optimizer state (it is never resumed from; half the size)."""
        if self.ckpt_dir is not None and self.rank == 0:
            state = self._state()
            model = self.model
            if name != "last.pt":  # best.pt: the selected network (the averaged one with ema_decay)
                state.pop("optimizer")
                state.pop("ema")
                model = self.selected_model
            save_checkpoint(self.ckpt_dir / name, model, **state)
            if name == "last.pt" and self.cfg.portable_checkpoint:
                _atomic_torch_save(portable_checkpoint({"format": "ahpsim.torch/1", "model": self.model.state_dict(),
                                                        **state}), self.ckpt_dir / "portable.pt")

    def try_resume(self, check_meta=None) -> bool:
        """Restores the run from ``ckpt_dir/last.pt``, or, where that is absent (a run carried to another
        machine), from ``portable.pt`` (see :func:`portable_checkpoint`: Adam's moments restart).
        ``resumed_from`` names the file. Returns False when neither exists. ``check_meta(meta)``, if
        given, sees the checkpoint's metadata before anything is loaded (and may raise)."""
        self.resumed_from = None
        if self.ckpt_dir is None:
            return False
        path = next((p for p in (self.ckpt_dir / "last.pt", self.ckpt_dir / "portable.pt") if p.is_file()), None)
        if path is None:
            return False
        ck = load_checkpoint(path)
        if check_meta is not None:
            check_meta(ck.get("meta", {}))
        self.resumed_meta = ck.get("meta", {})
        has_ema = ck.get("ema") is not None
        if has_ema != (self.ema is not None):
            raise ValueError(f"{path} holds a run trained {'with' if has_ema else 'without'} weight averaging "
                             f"(ema_decay), this one is set {'without' if has_ema else 'with'} it: resume it as it "
                             "was set, or start a new run (a warm start from its best.pt)")
        self.model.load_state_dict(ck["model"])
        if has_ema:
            with torch.no_grad():
                for k, p in self.ema.module.named_parameters():
                    p.copy_(ck["ema"]["parameters"][k])
                for b_avg, b in zip(self.ema.module.buffers(), self.model.buffers()):
                    b_avg.copy_(b)
            self.ema.n_averaged.fill_(int(ck["ema"]["n_averaged"]))
        if ck.get("portable"):  # no moment estimates: keep the fresh optimizer's state, take the groups
            self.opt.load_state_dict({"state": {}, "param_groups": ck["optimizer"]["param_groups"]})
        else:
            self.opt.load_state_dict(ck["optimizer"])
        self.resumed_from = path
        self.epoch, self.batch, self.step = ck["epoch"], ck["batch"], ck["step"]
        self.history, self.best_acc, self.best_epoch = ck["history"], ck["best_acc"], ck["best_epoch"]
        self.wall = ck.get("wall", 0.0)
        if self.rewiring is not None and ck.get("rewiring") is not None:
            self.rewiring.load_state_dict(ck["rewiring"])
        self._epoch_stats = ck.get("epoch_stats", self._new_stats())
        # a run resumed with other settings keeps the record of where they changed (meta.config_changes)
        history_of_changes = list(self.resumed_meta.get("config_changes", []))
        self.resumed_changes = config_changes(ck.get("train_config", {}), self.cfg)
        if self.resumed_changes:
            history_of_changes.append({"epoch": self.epoch + 1, "batch": self.batch, "step": self.step,
                                       "changed": self.resumed_changes})
        if history_of_changes:
            self.meta["config_changes"] = history_of_changes
        return True

    # ------------------------------------------------------------------ training
    def _set_lr(self, n_batches: int = 1) -> float:
        lr = self.cfg.lr_at(self.epoch, self.batch, n_batches)
        for g in self.opt.param_groups:
            g["lr"] = lr
        return lr

    @property
    def selection(self) -> str:
        """What ``best.pt`` is chosen on: ``"val"`` or ``"train"``."""
        return "val" if self.val is not None else "train"

    def write_history(self) -> None:
        """``history.json`` (and ``learning_curve.png`` with matplotlib) in ``ckpt_dir``."""
        if self.ckpt_dir is None or self.rank != 0:
            return
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        doc = {"meta": self.meta, "train_config": dataclasses.asdict(self.cfg), "selection": self.selection,
               "best_epoch": self.best_epoch, "best_acc": self.best_acc if self.history else None,
               "steps": self.step, "train_wall_s": self.wall, "epochs": self.history}
        _write_text_atomic(self.ckpt_dir / "history.json", json.dumps(doc, indent=1))
        try:
            from ..plot import learning_curve
        except ImportError:  # matplotlib is optional
            return
        learning_curve(self.history, self.ckpt_dir / "learning_curve.png",
                       title=str(self.meta.get("title", self.ckpt_dir.name)))

    def train_step(self, x, lab, ln, share: float = 1.0) -> tuple[float, int, float, float]:
        """One optimizer step on a batch (with DDP: this rank's ``share`` of the global batch)."""
        cfg = self.cfg
        self.model.train()
        # weight_noise: this step's gradients at perturbed weights, drawn from (seed, step)
        clean = perturb_weights_(self.model, cfg.weight_noise, noise_seed(cfg.seed, self.step)) \
            if cfg.weight_noise else None
        try:
            if self._ddp is None:
                loss, pred, spikes, neuron_steps = batch_objective(self.model, x, lab, ln, cfg)
            else:
                loss, pred, spikes, neuron_steps = self._ddp(x, lab, ln)
            ok = int((pred.cpu() == lab.cpu()).sum())
            self.opt.zero_grad(set_to_none=True)
            (loss * (share * self.world) if self._ddp is not None else loss).backward()
        finally:
            if clean is not None:  # the step updates the unperturbed weights
                with torch.no_grad():
                    for p, w in clean:
                        p.copy_(w)
        # a diverged step is stopped before it reaches the weights and the checkpoints (the gradients
        # are the same on every rank after DDP's all-reduce, so all ranks stop together)
        loss_value = float(loss.detach())
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        finite = bool(torch.stack([g.isfinite().all() for g in grads]).all()) if grads else True
        if not finite or (self._ddp is None and not math.isfinite(loss_value)):
            raise FloatingPointError(
                f"the training loss or its gradient is not finite (loss {loss_value!r}, epoch "
                f"{self.epoch + 1}, batch {self.batch + 1}); the weights were left as they were and the last "
                f"checkpoint is intact: resume with a lower --lr or with --grad-clip")
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.opt.step()
        if self.rewiring is not None:
            self.rewiring.step(self.opt)
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        return loss_value, ok, spikes, neuron_steps

    def fit(self, resume: bool = True, max_wall_s: Optional[float] = None) -> list[dict]:
        """Trains until ``cfg.epochs``; with ``max_wall_s`` it stops (checkpointed, ``self.stopped``) once
        that much wall time has passed in this call.

        Ctrl-C (SIGINT) or SIGTERM (as batch schedulers send before killing a job) lets the batch in
        flight finish, writes the checkpoint and raises :class:`TrainingInterrupted`; a second Ctrl-C
        interrupts at once (the last checkpoint, at most ``ckpt_every`` batches old, stays)."""
        if max_wall_s is not None:
            as_positive_real(max_wall_s, "max_wall_s", " (seconds) or None")
        with _StopOnSignal() as stop:
            return self._fit(resume, max_wall_s, stop)

    def _fit(self, resume, max_wall_s, stop) -> list[dict]:
        cfg = self.cfg
        t_start = time.perf_counter()
        self.stopped = False
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        if resume:
            self.try_resume()
        n = len(self.train)
        n_batches = math.ceil(n / cfg.batch_size)
        if cfg.max_batches_per_epoch:
            n_batches = min(n_batches, cfg.max_batches_per_epoch)
        while self.epoch < cfg.epochs:
            perm = np.random.default_rng([cfg.seed, self.epoch]).permutation(n)
            t_ep = time.perf_counter()
            bar = tqdm(total=n_batches, initial=self.batch, desc=f"epoch {self.epoch + 1}/{cfg.epochs}",
                       disable=not cfg.progress or self.rank != 0, leave=False)
            while self.batch < n_batches:
                idx = perm[self.batch * cfg.batch_size:(self.batch + 1) * cfg.batch_size]
                mine = np.array_split(idx, self.world)[self.rank] if self.world > 1 else idx
                x, lab, ln = self.train.get(mine)
                t0 = time.perf_counter()
                self._set_lr(n_batches)
                if self.world > 1:
                    loss, ok, spk, ns = self.train_step(x, lab, ln, share=len(mine) / len(idx))
                else:
                    loss, ok, spk, ns = self.train_step(x, lab, ln)
                if self.world > 1:  # the global batch's statistics
                    loss, ok, spk, ns = self._sum_over_ranks([loss * len(mine) / len(idx), ok, spk, ns])
                    ok = int(round(ok))
                self.wall += time.perf_counter() - t0
                st = self._epoch_stats
                st["loss"] += loss * len(idx)
                st["ok"] += ok
                st["n"] += len(idx)
                st["spikes"] += spk
                st["neuron_steps"] += ns
                self.batch += 1
                self.step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{st['loss'] / st['n']:.3f}", acc=f"{st['ok'] / st['n']:.3f}")
                out_of_time = max_wall_s is not None and time.perf_counter() - t_start > max_wall_s
                requested = stop.requested
                if self.world > 1:  # every rank stops at the same batch
                    requested, out_of_time = (bool(v) for v in self._sum_over_ranks([requested, out_of_time]))
                if requested:
                    bar.close()
                    self.save()
                    raise TrainingInterrupted(self.epoch, self.batch)
                if cfg.ckpt_every and self.step % cfg.ckpt_every == 0 and self.batch < n_batches:
                    self.save()
                if out_of_time and self.batch < n_batches:
                    self.stopped = True
                    break
            bar.close()
            if self.stopped:
                self.save()
                return self.history
            st = self._epoch_stats
            rec = {"epoch": self.epoch + 1, "steps": self.step, "train_loss": st["loss"] / max(st["n"], 1),
                   "train_acc": st["ok"] / max(st["n"], 1),
                   "train_rate": st["spikes"] / max(st["neuron_steps"], 1.0),
                   "epoch_wall_s": time.perf_counter() - t_ep, "train_wall_s": self.wall,
                   "lr": self.opt.param_groups[0]["lr"]}
            if self.val is not None and self.rank == 0:
                t0 = time.perf_counter()
                ev = evaluate(self.selected_model, self.val, cfg.eval_batch_size, cfg.loss_mode, cfg.window)
                rec.update({"val_acc": ev["acc"], "val_loss": ev["loss"], "val_rate": ev["rate"],
                            "eval_wall_s": time.perf_counter() - t0})
                if "acc_by_group" in ev:  # e.g. bAbI: validation accuracy per task
                    rec["val_acc_by_group"] = {str(g): a for g, a in ev["acc_by_group"].items()}
                score = ev["acc"]
            else:
                score = rec["train_acc"]
            self.history.append(rec)
            self.epoch += 1
            self.batch = 0
            self._epoch_stats = self._new_stats()
            if score > self.best_acc:
                self.best_acc, self.best_epoch = score, self.epoch
                self._best_state = {k: v.detach().clone() if torch.is_tensor(v) else v
                                    for k, v in self.selected_model.state_dict().items()}
                self.save("best.pt")
            self.save()
            self.write_history()
            if (cfg.progress if cfg.log_epochs is None else cfg.log_epochs) and self.rank == 0:
                tqdm.write(format_epoch(rec, cfg.epochs))
            if self.on_epoch is not None and self.rank == 0:
                self.on_epoch(rec)
        return self.history

    def _sum_over_ranks(self, values: list) -> list:
        import torch.distributed as dist

        t = torch.tensor([float(v) for v in values], dtype=torch.float64)
        dist.all_reduce(t)
        return t.tolist()

    def load_best(self) -> torch.nn.Module:
        """Loads the best model's weights into ``self.model`` (if a best checkpoint exists)."""
        if self.ckpt_dir is not None and (self.ckpt_dir / "best.pt").is_file():
            self.model.load_state_dict(load_checkpoint(self.ckpt_dir / "best.pt")["model"])
        elif self._best_state is not None:
            self.model.load_state_dict(self._best_state)
        return self.model
