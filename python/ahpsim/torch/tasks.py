"""Training tasks: sequential MNIST (threshold-crossing spikes, the paper's encoding), permuted sMNIST, a
synthetic delayed-classification memory task, the Free Spoken Digit Dataset, JapaneseVowels (UEA) and
bAbI question answering (a Relational Network, :mod:`ahpsim.torch.relational`).

``make_task(name, root=None, **options) -> Task`` returns the train / validation / test data, the network
defaults and the training defaults of each task; ``Task.spec`` (name + options) is stored in checkpoints
so that ``python -m ahpsim eval`` can rebuild the test set.

Every task carves its validation set out of its training data (``Task.val_rule`` says how), so that
models are selected without looking at the test set:

* ``smnist`` / ``psmnist``: the last ``n_val`` (5,000) of the 60,000 MNIST training digits;
* ``memory``: ``n_val`` (256) trials generated with their own seed;
* ``fsdd``, ``jv``, ``ucr``: a seeded random ``val_fraction`` (10 %) of the training recordings;
* ``babi``: the last ``val_fraction`` (5 %) of the stories of each task's training file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from .modules import AHP_BETA_PAPER, SpikingRNN
from .trainer import SequenceData, TrainConfig

__all__ = ["Task", "make_task", "TASKS", "delayed_classification", "build_model", "NEURON_PRESETS"]

# neuron mixes of the same size, for comparisons (the paper: 140 LIF + 100 AHP on sMNIST)
NEURON_PRESETS = ("ahp", "alif", "lif")  # babi also takes "lstm" (the non-spiking baseline)


@dataclass
class Task:
    name: str
    train: SequenceData
    test: SequenceData
    n_in: int
    n_out: int
    model_kwargs: dict
    train_config: TrainConfig
    spec: dict = field(default_factory=dict)
    val: Optional[SequenceData] = None
    val_rule: str = ""
    notes: str = ""


def build_model(task: Task, neurons: str = "ahp", seed: int = 0, **overrides):
    """The task's network with its recurrent neurons as ``neurons``: "ahp" (n_lif LIF + n_adapt AHP),
    "alif" (n_lif LIF + n_adapt ALIF) or "lif" (n_lif + n_adapt LIF, same size). For ``babi`` a
    :class:`~ahpsim.torch.relational.RelationalNetwork` whose encoders are ``neurons`` ("ahp", "alif",
    "lif" or "lstm"); ``overrides`` are its arguments."""
    import inspect

    if task.name == "babi":
        from .relational import RelationalNetwork

        allowed = set(inspect.signature(RelationalNetwork.__init__).parameters) - {"self", "vocab_size", "encoder",
                                                                                   "vocab", "seed"}
        unknown = sorted(set(overrides) - allowed)
        if unknown:
            raise ValueError(f"unknown model option(s) {unknown}; allowed: {', '.join(sorted(allowed))}")
        kw = dict(task.model_kwargs)
        kw.update(overrides)
        return RelationalNetwork(task.n_in, neurons, seed=seed, **kw)
    if neurons == "lstm":
        raise ValueError("neurons='lstm' (an LSTM encoder) exists for the babi task only")

    allowed = set(inspect.signature(SpikingRNN.__init__).parameters) - {"self", "n_in", "n_out", "n_lif", "n_ahp",
                                                                        "n_alif"} | {"n_lif", "n_adapt"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ValueError(f"unknown model option(s) {unknown}; allowed: {', '.join(sorted(allowed))}")
    kw = dict(task.model_kwargs)
    kw.update(overrides)
    n_lif = kw.pop("n_lif")
    n_adapt = kw.pop("n_adapt")
    if neurons == "ahp":
        counts = dict(n_lif=n_lif, n_ahp=n_adapt)
    elif neurons == "alif":
        counts = dict(n_lif=n_lif, n_alif=n_adapt)
    elif neurons == "lif":
        counts = dict(n_lif=n_lif + n_adapt)
    else:
        raise ValueError(f"neurons must be one of {NEURON_PRESETS}, not {neurons!r}")
    return SpikingRNN(task.n_in, task.n_out, **counts, seed=seed, **kw)


# ---------------------------------------------------------------------------------------- memory task


def delayed_classification(n: int, n_classes: int = 4, ch_per_class: int = 5, n_cue: int = 5, t_pattern: int = 20,
                           delay: int = 200, t_cue: int = 30, p_on: float = 0.25, p_noise: float = 0.0,
                           seed: int = 0):
    """Delayed pattern classification (synthetic, seeded).

    A class is shown for ``t_pattern`` steps (its ``ch_per_class`` input channels fire with probability
    ``p_on`` per step), then ``delay`` silent steps (optional background noise ``p_noise`` on all
    channels), then a recall cue (``n_cue`` channels, ``t_cue`` steps).  The answer (the readout at the last
    step) is the class: a network must hold one of ``n_classes`` values for ``delay`` + ``t_cue`` steps,
    far beyond ``tau_m``.  Returns (x bool [n, T, C], labels int64 [n]).
    """
    rng = np.random.default_rng(seed)
    C = n_classes * ch_per_class + n_cue
    T = t_pattern + delay + t_cue
    labels = rng.integers(0, n_classes, size=n)
    x = rng.random((n, T, C)) < p_noise if p_noise > 0 else np.zeros((n, T, C), dtype=bool)
    on = rng.random((n, t_pattern, ch_per_class)) < p_on
    for k in range(n_classes):
        sel = labels == k
        x[sel, :t_pattern, k * ch_per_class:(k + 1) * ch_per_class] |= on[sel]
    x[:, T - t_cue:, n_classes * ch_per_class:] |= rng.random((n, t_cue, n_cue)) < p_on
    return x, labels.astype(np.int64)


def _memory(root=None, n_train: int = 1024, n_test: int = 256, n_val: int = 256, delay: int = 300,
            n_classes: int = 4, p_noise: float = 0.01, seed: int = 0, **kw):
    kw.update(n_classes=n_classes, delay=delay, p_noise=p_noise)
    xtr, ytr = delayed_classification(n_train, seed=seed, **kw)
    xte, yte = delayed_classification(n_test, seed=seed + 1_000_003, **kw)
    val = None
    if n_val:
        xva, yva = delayed_classification(n_val, seed=seed + 2_000_003, **kw)
        val = SequenceData.from_arrays(xva, yva)
    model = dict(n_lif=30, n_adapt=30, tau_m=20.0, tau_ahp=700.0, beta_ahp=0.756, tau_a=700.0, beta_alif=0.756,
                 tau_out=20.0, w_in_scale=3.0, w_rec_scale=1.0)
    t_cue = kw.get("t_cue", 30)
    cfg = TrainConfig(epochs=7, batch_size=64, lr=1e-2, loss_mode="window", window=t_cue // 2,
                      rate_target=0.02, rate_weight=0.0)
    return Task("memory", SequenceData.from_arrays(xtr, ytr), SequenceData.from_arrays(xte, yte),
                xtr.shape[2], n_classes, model, cfg, val=val,
                val_rule=(f"{n_val} trials generated with seed {seed + 2_000_003}" if n_val
                          else "none (training accuracy)"))


# ---------------------------------------------------------------------------------------- sMNIST


def _smnist(root=None, permute: bool = False, perm_seed: int = 0, n_train: Optional[int] = None,
            n_test: Optional[int] = None, n_val: int = 5000, encoding: str = "spikes"):
    """``encoding="spikes"``: the paper's 80 threshold-crossing channels, 784 + 56 cue steps;
    ``"levels"``: one spike per inked pixel on the channel of its grey-level band (40 channels with the
    cue, 784 + 56 steps; :func:`ahpsim.datasets.grey_level_encode`);
    ``"pixels"``: one grey value (0..1) per step on one channel, 784 steps, answer at the last step.
    Validation: the last ``n_val`` training digits (0: none; then the best epoch is chosen on the
    training accuracy); ``n_train`` keeps the first training digits of the rest."""
    from ahpsim import datasets as D

    if encoding not in ("spikes", "levels", "pixels"):
        raise ValueError(f"encoding must be 'spikes', 'levels' or 'pixels', not {encoding!r}")

    xi, yi = D.load_mnist(root, "train", download=root is None, progress=False)
    xt, yt = D.load_mnist(root, "test", download=root is None, progress=False)
    perm = D.mnist_permutation(perm_seed) if permute else None

    def make(images, labels):
        rows = images.reshape(len(images), 784)
        if perm is not None:
            rows = rows[:, perm]

        def get(idx):
            if encoding == "pixels":
                x = torch.from_numpy(D.sequential_mnist(rows[idx]))  # (permutation already applied)
            elif encoding == "levels":
                x = torch.from_numpy(D.grey_level_encode(rows[idx]))
            else:
                x = torch.from_numpy(D.threshold_crossing_encode(rows[idx]))
            return x, torch.from_numpy(labels[idx]), None

        return SequenceData(len(labels), get, labels)

    train, test = make(xi, yi), make(xt, yt)
    val = None
    if n_val >= len(train):
        raise ValueError(f"task option n_val must be below the {len(train)} training digits, got {n_val}")
    if n_val:
        val = train.subset(np.arange(len(train) - n_val, len(train)))
        train = train.subset(np.arange(len(train) - n_val))
    if n_train:
        train = train.subset(np.arange(min(n_train, len(train))))
    if n_test:
        test = test.subset(np.arange(min(n_test, len(test))))
    # The AHP strength of the authors' chip network (AHP_BETA_PAPER = 0.756 / 64 v_th per spike); ALIF
    # neurons get the adaptation that equals it below threshold: c enters v every step, so its effect
    # on v settles at c / (1 - alpha), which an ALIF threshold reaches with beta_a = beta_c / (1 - alpha).
    alpha = math.exp(-1.0 / 20.0)
    model = dict(n_lif=140, n_adapt=100, tau_m=20.0, tau_ahp=700.0, beta_ahp=AHP_BETA_PAPER, tau_a=700.0,
                 beta_alif=AHP_BETA_PAPER / (1.0 - alpha), n_ref=0, reset="zero", tau_out=20.0,
                 surrogate={"kind": "triangle", "dampening": 0.3}, w_in_scale=3.0, w_rec_scale=1.0)
    cfg = TrainConfig(epochs=100, batch_size=64, lr=1e-2, lr_schedule="cosine", lr_min=1e-4,
                      loss_mode="window", window=56, rate_target=0.02, rate_weight=0.1)
    n_in = 40 if encoding == "levels" else 80
    if encoding == "pixels":
        n_in = 1
        model["w_in_scale"] = 10.0
        cfg.loss_mode, cfg.window = "window", 20
    rule = f"the last {n_val} of the 60,000 MNIST training digits" if n_val else "none (training accuracy)"
    return Task("psmnist" if permute else "smnist", train, test, n_in, 10, model, cfg, val=val, val_rule=rule)


# ---------------------------------------------------------------------------------------- real sequences


def _standardise(xtr, ltr, xte):
    T = xtr.shape[1]
    m = np.arange(T)[None, :] < ltr[:, None]
    vals = xtr[m]
    mu, sd = vals.mean(0), vals.std(0) + 1e-6
    return ((xtr - mu) / sd * (np.arange(T)[None, :, None] < ltr[:, None, None])).astype(np.float32), \
        mu.astype(np.float32), sd.astype(np.float32)


def _apply_std(x, lengths, mu, sd):
    T = x.shape[1]
    return ((x - mu) / sd * (np.arange(T)[None, :, None] < lengths[:, None, None])).astype(np.float32)


def _sequences(name, xtr, ltr, ytr, xte, lte, yte, n_classes, model, cfg, val_fraction=0.1, val_seed=0):
    """Standardised (statistics of the training part only) train / validation / test sets; the
    validation set is a seeded random ``val_fraction`` of the training sequences."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    xtr, ltr, ytr = np.asarray(xtr, np.float32), np.asarray(ltr), np.asarray(ytr)
    n_val = int(round(val_fraction * len(ytr)))
    if n_val >= len(ytr):
        raise ValueError(f"task option val_fraction {val_fraction!r} leaves none of the {len(ytr)} training "
                         f"sequences for training")
    order = np.random.default_rng(val_seed).permutation(len(ytr))
    iv, it = np.sort(order[:n_val]), np.sort(order[n_val:])
    xtr_s, mu, sd = _standardise(xtr[it], ltr[it], None)
    xte_s = _apply_std(np.asarray(xte, np.float32), np.asarray(lte), mu, sd)
    val = None
    if n_val:
        val = SequenceData.from_arrays(_apply_std(xtr[iv], ltr[iv], mu, sd), ytr[iv], ltr[iv])
    rule = (f"a random {val_fraction:.0%} of the training sequences ({n_val}; numpy seed {val_seed})" if n_val
            else "none (training accuracy)")
    return Task(name, SequenceData.from_arrays(xtr_s, ytr[it], ltr[it]), SequenceData.from_arrays(xte_s, yte, lte),
                xtr_s.shape[2], n_classes, model, cfg, val=val, val_rule=rule)


def _fsdd(root=None, n_mfcc: int = 13, val_fraction: float = 0.1):
    from ahpsim import datasets as D

    opt = dict(n_mfcc=n_mfcc, download=root is None, progress=False)
    xtr, ltr, ytr = D.load_fsdd(root, split="train", **opt)
    xte, lte, yte = D.load_fsdd(root, split="test", **opt)
    model = dict(n_lif=60, n_adapt=40, tau_m=20.0, tau_ahp=200.0, beta_ahp=0.3, tau_a=200.0, beta_alif=0.3,
                 tau_out=20.0, w_in_scale=1.0, w_rec_scale=1.0)
    cfg = TrainConfig(epochs=10, batch_size=32, lr=5e-3, loss_mode="window", window=10)
    return _sequences("fsdd", xtr, ltr, ytr, xte, lte, yte, 10, model, cfg, val_fraction)


def _ucr_uea(root=None, name: str = "JapaneseVowels", repeat: int = 1, val_fraction: float = 0.1):
    from ahpsim import datasets as D

    opt = dict(download=root is None, progress=False)
    xtr, ltr, ytr, classes = D.load_ucr_uea(name, root, split="train", **opt)
    xte, lte, yte, _ = D.load_ucr_uea(name, root, split="test", **opt)
    xtr, xte = np.nan_to_num(xtr), np.nan_to_num(xte)
    if repeat > 1:  # hold each sample for `repeat` steps
        xtr, xte = np.repeat(xtr, repeat, 1), np.repeat(xte, repeat, 1)
        ltr, lte = np.asarray(ltr) * repeat, np.asarray(lte) * repeat
    model = dict(n_lif=40, n_adapt=40, tau_m=20.0, tau_ahp=100.0, beta_ahp=0.3, tau_a=100.0, beta_alif=0.3,
                 tau_out=5.0, w_in_scale=1.0, w_rec_scale=1.0)
    cfg = TrainConfig(epochs=20, batch_size=16, lr=5e-3, loss_mode="window", window=3)
    return _sequences(name.lower(), xtr, ltr, ytr, xte, lte, yte, len(classes), model, cfg, val_fraction)


# ---------------------------------------------------------------------------------------- bAbI


def _babi(root=None, tasks=None, size: str = "10k", val_fraction: float = 0.05, max_sentences: int = 20,
          n_train: Optional[int] = None):
    """bAbI v1.2 question answering, all ``tasks`` (default: 1-20) trained jointly. ``size="10k"`` takes the
    10k training files; a task whose 10k training file is absent from ``root`` (the shared copy lacks task
    3's) takes its 1k file instead (``Task.notes`` says which). The test files are the same in both sizes.
    Validation: the last ``val_fraction`` of the stories of each task's training file (all questions of
    a story go to the same side, since they share its sentences). ``n_train``: keep a seeded random subset
    of the remaining training questions (quick runs)."""
    from ahpsim import datasets as D
    from ahpsim.datasets.babi import _task_list

    from .relational import BabiBatch

    if size not in ("1k", "10k"):
        raise ValueError(f"size must be '1k' or '10k', got {size!r}")
    if not (isinstance(val_fraction, (int, float)) and 0.0 <= val_fraction < 1.0):
        raise ValueError(f"val_fraction must be a number in [0, 1), got {val_fraction!r}")
    task_ids = _task_list(tasks)
    download = root is None
    sizes = {t: size for t in task_ids}
    if size == "10k" and root is not None:
        for t in task_ids:
            if not D.babi.babi_path(t, "train", "10k", root).is_file():
                sizes[t] = "1k"
    groups = {}
    for t in task_ids:
        groups.setdefault(sizes[t], []).append(t)
    opt = dict(download=download, progress=False)
    vocab = sorted(set().union(*(D.babi_vocabulary(root, g, sz, **opt)[1:] for sz, g in groups.items())))
    vocab = ["<pad>"] + vocab

    def load(split):
        parts = [D.load_babi(root, g, split, sz, max_sentences=max_sentences, vocab=vocab, **opt)
                 for sz, g in sorted(groups.items())]
        W = max(p.story.shape[2] for p in parts)
        Wq = max(p.question.shape[1] for p in parts)
        cat = lambda f: np.concatenate([f(p) for p in parts])  # noqa: E731
        sid, base = [], 0
        for p in parts:
            sid.append(p.story_id + base)
            base += int(p.story_id.max(initial=-1)) + 1
        arrays = dict(
            story=cat(lambda p: np.pad(p.story, ((0, 0), (0, max_sentences - p.story.shape[1]),
                                                 (0, W - p.story.shape[2])))).astype(np.int16),
            story_lengths=cat(lambda p: p.story_lengths).astype(np.int16),
            question=cat(lambda p: np.pad(p.question, ((0, 0), (0, Wq - p.question.shape[1])))).astype(np.int16),
            question_lengths=cat(lambda p: p.question_lengths).astype(np.int16),
            answer=cat(lambda p: p.answer), task=cat(lambda p: p.task), story_id=np.concatenate(sid))
        order = np.argsort(arrays["task"], kind="stable")  # task order, whatever the file groups
        return {k: v[order] for k, v in arrays.items()}

    def make(a, idx=None):
        if idx is not None:
            a = {k: v[idx] for k, v in a.items()}

        def get(j):
            b = BabiBatch(*(torch.from_numpy(a[k][j].astype(np.int64))
                            for k in ("story", "story_lengths", "question", "question_lengths")))
            return b, torch.from_numpy(a["answer"][j]), None

        return SequenceData(len(a["answer"]), get, a["answer"], a["task"])

    tr, te = load("train"), load("test")
    val_idx = []
    for t in task_ids:  # the last val_fraction of each task's training stories
        rows = np.nonzero(tr["task"] == t)[0]
        stories = np.unique(tr["story_id"][rows])
        n_val = int(round(val_fraction * len(stories)))
        if n_val:
            val_idx.append(rows[np.isin(tr["story_id"][rows], stories[len(stories) - n_val:])])
    val_idx = np.concatenate(val_idx) if val_idx else np.zeros(0, np.int64)
    train_idx = np.setdiff1d(np.arange(len(tr["answer"])), val_idx)
    if n_train:
        keep = np.random.default_rng(0).permutation(len(train_idx))[:n_train]
        train_idx = np.sort(train_idx[keep])
    V = len(vocab)
    model = dict(vocab=vocab, max_sentences=max_sentences)
    cfg = TrainConfig(epochs=40, batch_size=64, lr=1e-3, lr_schedule="cosine", lr_min=1e-5, grad_clip=5.0,
                      loss_mode="last", eval_batch_size=256)
    fallback = sorted(t for t in task_ids if sizes[t] != size)
    rule = (f"the last {val_fraction:g} of the stories of each task's training file" if len(val_idx)
            else "none (training accuracy)")
    task = Task("babi", make(tr, train_idx), make(te), V, V, model, cfg,
                val=make(tr, val_idx) if len(val_idx) else None, val_rule=rule)
    task.notes = (f"training files: {size}" + (f"; tasks {fallback} from the 1k files (their {size} training "
                                                "file is absent)" if fallback else ""))
    return task


TASKS = {
    "memory": _memory,
    "smnist": lambda root=None, **kw: _smnist(root, permute=False, **kw),
    "psmnist": lambda root=None, **kw: _smnist(root, permute=True, **kw),
    "fsdd": _fsdd,
    "jv": lambda root=None, **kw: _ucr_uea(root, "JapaneseVowels", **kw),
    "ucr": _ucr_uea,
    "babi": _babi,
}


def _builder(name: str):
    """The function that builds task ``name`` (the TASKS entries of smnist, psmnist and jv wrap one)."""
    return {"smnist": _smnist, "psmnist": _smnist, "jv": _ucr_uea}.get(name, TASKS[name])


def _task_options(name: str) -> list:
    """The keyword options a task takes (from its builder's signature)."""
    import inspect

    params = inspect.signature(_builder(name)).parameters
    skip = {"root", "permute"} | ({"name"} if name == "jv" else set())
    opts = [p for p in params if p not in skip and params[p].kind is not inspect.Parameter.VAR_KEYWORD]
    if name == "memory":  # passed on to delayed_classification
        opts += [p for p in inspect.signature(delayed_classification).parameters if p not in ("n", "seed") + tuple(opts)]
    return opts


# The smallest value of each integer task option, and the range of each fractional one: checked by
# make_task before anything is built (a zero-sized split or a probability of 2 would run and report
# nonsense otherwise). Options whose builder's default is None take None too.
_INT_OPTION_MIN = {"n_train": 1, "n_test": 1, "n_val": 0, "delay": 0, "n_classes": 2, "ch_per_class": 1,
                   "n_cue": 1, "t_pattern": 1, "t_cue": 2, "seed": 0, "perm_seed": 0, "n_mfcc": 1, "repeat": 1,
                   "max_sentences": 1}
_FRACTION_OPTIONS = {"p_on": (0.0, 1.0, "(0, 1]"), "p_noise": (0.0, 1.0, "[0, 1)"),
                     "val_fraction": (0.0, 1.0, "[0, 1)")}
_STRING_OPTIONS = ("encoding", "size", "name")


def _option_default(name: str, key: str):
    import inspect

    for f in (_builder(name), delayed_classification):
        p = inspect.signature(f).parameters.get(key)
        if p is not None:
            return p.default
    return inspect.Parameter.empty


def _check_task_options(name: str, options: dict) -> None:
    for key, v in options.items():
        if v is None and _option_default(name, key) is None:
            continue
        if key in _INT_OPTION_MIN:
            lo = _INT_OPTION_MIN[key]
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"task option {key} must be an integer >= {lo}, got {v!r}")
        elif key in _FRACTION_OPTIONS:
            lo, hi, text = _FRACTION_OPTIONS[key]
            ok = (not isinstance(v, bool) and isinstance(v, (int, float, np.floating)) and math.isfinite(v)
                  and ((lo < v <= hi) if text.startswith("(") else (lo <= v < hi)))
            if not ok:
                raise ValueError(f"task option {key} must be a number in {text}, got {v!r}")
        elif key in _STRING_OPTIONS and not isinstance(v, str):
            raise ValueError(f"task option {key} must be a string, got {v!r}")


def make_task(name: str, /, root=None, **options) -> Task:
    """Builds a task: ``memory``, ``smnist``, ``psmnist``, ``fsdd``, ``jv`` (JapaneseVowels) or ``ucr``
    (``name=`` any UCR/UEA set: ``make_task("ucr", root, name="GunPoint")``).

    Raises ``ValueError`` for an unknown task or option, or an option outside its range (sizes are
    integers >= 1, ``n_val`` >= 0 (0: no validation set), probabilities and ``val_fraction`` fractions)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose from {sorted(TASKS)}")
    allowed = _task_options(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for task {name!r}; allowed: {', '.join(allowed)}")
    _check_task_options(name, options)
    task = TASKS[name](root, **options)
    task.spec = {"name": name, "options": dict(options)}
    return task
