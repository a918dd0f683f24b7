"""A trained bAbI Relational Network run on the engines, without PyTorch (numpy and ahpsim only).

:class:`DeployedRelationalNetwork` holds what inference needs: the sentence and question encoders as
:class:`ahpsim.Network` s (float kernel, or quantized to the Loihi 1 integer engine with
``engine="loihi"``), the weights of the relation function g and of the final network f, and the
vocabulary. g and f run as ReLU layers in numpy, or, with an :class:`IFHead`, as rate-coded
integrate-and-fire layers on the kernel (every stage spiking, as on the authors' chip).
``save(dir)`` / :func:`load_relnet` keep it in a folder of ``.npz`` files; the shipped demo network
(``python -m ahpsim demo babi``) is one.

It is built from a trained :class:`ahpsim.torch.RelationalNetwork` by
:class:`ahpsim.torch.relational.KernelRelationalNetwork` (which is a subclass); the network itself is
described in that module and in ``docs/babi.md``.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, NamedTuple, Optional, Sequence

import numpy as np

from ._validation import as_int, as_positive_real
from .network import Network, load_network

__all__ = ["DeployedRelationalNetwork", "IFHead", "RelNetResult", "load_relnet", "questions_to_arrays",
           "pair_indices_np", "word_spikes_np", "quantized_relu_np", "ENGINES"]

ENGINES = ("float", "loihi")
_FORMAT = "ahpsim-relnet"


class RelNetResult(NamedTuple):
    logits: np.ndarray    # [B, V]: answer scores over the vocabulary
    spikes: float         # spikes of both encoders in this batch
    neuron_steps: float   # neuron x steps of both encoders (for spikes per neuron per step)
    n_pairs: int          # relation-function evaluations (pairs) in this batch


def pair_indices_np(lengths: np.ndarray, max_sentences: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All unordered sentence pairs ``i <= j < lengths[b]``: ``(b, i, j)``, int64 [P] each, ordered by
    ``b``, then ``i``, then ``j``; ``P = sum_b L_b (L_b + 1) / 2`` (210 for a full story of 20).
    Raises ValueError for lengths outside 0..max_sentences."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.ndim != 1:
        raise ValueError(f"lengths: expected a 1-d array [B], got shape {lengths.shape}")
    if lengths.size and (lengths.min() < 0 or lengths.max() > max_sentences):
        raise ValueError(f"lengths must lie in 0..{max_sentences}, got {lengths.min()}..{lengths.max()}")
    I, J = np.triu_indices(max_sentences)
    b, p = np.nonzero(J[None, :] < lengths[:, None])
    return b, I[p], J[p]


def word_spikes_np(tokens: np.ndarray, vocab_size: int, steps_per_word: int) -> np.ndarray:
    """One-hot word spikes: ``tokens`` int [U, L] (no padding) -> bool [U, L * steps_per_word, vocab_size],
    word ``k`` on its channel at steps ``k * steps_per_word ... (k + 1) * steps_per_word - 1``."""
    tokens = np.asarray(tokens, dtype=np.int64)
    U, L = tokens.shape
    x = np.zeros((U, L, vocab_size), dtype=bool)
    x[np.arange(U)[:, None], np.arange(L)[None, :], tokens] = True
    return np.repeat(x, steps_per_word, axis=1)


_OPS = ("spikes", "syn_events", "input_events", "neuron_updates", "compartment_updates", "trial_steps", "trials")


def _compartments_per_step(net) -> int:
    """Loihi compartments of a float network (AHP / ALIF neurons count 2) or of a quantized one."""
    if hasattr(net, "net") and hasattr(net.net, "n_compartments"):
        return int(net.net.n_compartments)
    from .energy import compartments_per_neuron

    return sum(g.n * compartments_per_neuron(g.model.kind) for g in net.populations)


def _add_ops(ops: dict, stage: str, net, T: int, n_trials: int) -> None:
    """Adds the counters of ``net``'s last run (a fresh state) to ``ops[stage]``."""
    c = net.counters()
    acc = ops.setdefault(stage, dict.fromkeys(_OPS, 0))
    for k in ("spikes", "syn_events", "input_events", "neuron_updates"):
        acc[k] += int(c[k])
    acc["compartment_updates"] += int(c.get("compartment_updates", _compartments_per_step(net) * T * n_trials))
    acc["trial_steps"] += T * n_trials
    acc["trials"] += n_trials


def _user_stacklevel() -> int:
    """The ``stacklevel`` for a ``warnings.warn`` in the calling function that names the first frame
    outside the ahpsim package (the user's line, whichever of its wrappers they called)."""
    root = os.path.dirname(os.path.abspath(__file__)) + os.sep
    level, frame = 1, sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(root):
        frame, level = frame.f_back, level + 1
    return level


def _overflow_count(q) -> int:
    """Compartment-steps with a wrapped u or a clipped v in a quantized network's runs since its state
    was last reset (``QuantizedNetwork.overflows``)."""
    return sum(v["u_wraps"] + v["v_saturations"] for v in q.overflows().values())


MAX_HEAD_LEVELS = 1 << 24  # levels that float32 counts hold exactly


def check_head_levels(levels, name: str = "levels") -> int:
    """``levels`` as an int in 1 .. 2**24 (:func:`ahpsim._validation.as_int`)."""
    return as_int(levels, name, minimum=1, maximum=MAX_HEAD_LEVELS)


def quantized_relu_np(x: np.ndarray, scale: float, levels: int) -> np.ndarray:
    """``scale * clip(floor(levels * x / scale + 1/2), 0, levels) / levels``: the activation of a head
    trained with quantized ReLUs (``ahpsim.torch.relational.quantized_relu``), in ``x``'s floating
    dtype (float64 for integer input). ``scale``: finite > 0; ``levels``: int in 1 .. 2**24 (else
    TypeError / ValueError naming them)."""
    scale, levels = as_positive_real(scale, "scale"), check_head_levels(levels)
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    y = np.floor(x * (levels / scale) + 0.5)
    return (np.clip(y, 0, levels) * (scale / levels)).astype(x.dtype, copy=False)


def questions_to_arrays(questions: Sequence[dict], vocab: Sequence[str]):
    """Questions as words -> the arrays :meth:`DeployedRelationalNetwork.run` takes.

    ``questions``: dicts with ``"story"`` (a list of sentences, each a list of words, oldest first)
    and ``"question"`` (a list of words), as the demo's ``stories.json`` holds them; ``vocab``: the
    network's words by index (index 0 = padding). Returns ``(story int64 [B, S, W], story_lengths [B],
    question [B, Wq], question_lengths [B])``. Raises ValueError for an empty list, an empty question
    or a word outside ``vocab`` (naming it)."""
    if isinstance(questions, dict) or not isinstance(questions, (list, tuple)):
        raise TypeError(f"questions: expected a list of dicts with 'story' and 'question', got "
                        f"{type(questions).__name__}")
    if not questions:
        raise ValueError("questions: expected at least one question")
    if isinstance(vocab, (str, bytes)) or not isinstance(vocab, Sequence):
        raise TypeError(f"vocab: expected the network's list of words, got {type(vocab).__name__}")
    ids = {w: i for i, w in enumerate(vocab) if i > 0}  # index 0 is padding, never a word
    for k, q in enumerate(questions):
        if not isinstance(q, dict):
            raise TypeError(f"questions[{k}]: expected a dict with 'story' and 'question', got {type(q).__name__}")
        for part, seq in [("question", q.get("question"))] + [(f"story[{j}]", s) for j, s in enumerate(q.get("story", []))]:
            if isinstance(seq, (str, bytes)) or not isinstance(seq, (list, tuple)):
                raise TypeError(f"questions[{k}].{part}: expected a list of words, got {type(seq).__name__}")

    def tok(words, where):
        try:
            return [ids[w] for w in words]
        except KeyError as e:
            raise ValueError(f"{where}: the word {e.args[0]!r} is not in the network's vocabulary") from None

    for k, q in enumerate(questions):
        if not q.get("question"):
            raise ValueError(f"questions[{k}]: no question words")
    S = max(max(len(q.get("story", [])) for q in questions), 1)
    W = max([len(s) for q in questions for s in q.get("story", [])] + [1])
    Wq = max(len(q["question"]) for q in questions)
    B = len(questions)
    story = np.zeros((B, S, W), np.int64)
    question = np.zeros((B, Wq), np.int64)
    for b, q in enumerate(questions):
        for k, sent in enumerate(q.get("story", [])):
            story[b, k, :len(sent)] = tok(sent, f"questions[{b}].story[{k}]")
        question[b, :len(q["question"])] = tok(q["question"], f"questions[{b}].question")
    lengths = np.array([len(q.get("story", [])) for q in questions], np.int64)
    q_lengths = np.array([len(q["question"]) for q in questions], np.int64)
    return story, lengths, question, q_lengths


def _layers(arrs: Sequence) -> list[tuple[np.ndarray, Optional[np.ndarray]]]:
    return [(np.asarray(W), None if b is None else np.asarray(b)) for W, b in arrs]


class IFHead:
    """g and f as rate-coded spiking layers (ANN-to-SNN conversion: Diehl et al. 2015, Rueckauer et al.
    2017), on the C++ kernel or on the Loihi 1 integer engine, for :class:`DeployedRelationalNetwork`
    (``head=``).

    Every ReLU unit becomes a non-leaky integrate-and-fire neuron (``ahpsim.LIF`` with ``tau_m`` = 1e9
    steps: decay 1 in float32), threshold 1, reset by subtraction. Layer ``l``'s weights are scaled by
    ``lambda[l-1] / lambda[l]`` and its bias by ``1 / lambda[l]``, where ``lambda[l]`` is a high
    percentile of the layer's positive ReLU activations on training questions (``lam_g``, ``lam_f``;
    :class:`ahpsim.torch.relational.IFHead` computes them from a trained model), so that a unit fires at
    about ``activation / lambda`` spikes per step.

    * **g** runs one trial per sentence pair for ``steps`` steps: its first layer receives the pair's
      input current ``(A o_i + B o_j + C q + b) / lambda[0]`` each step (the analog first layer of the
      conversion), layers 2.. receive spikes one step later each.
    * **The sum over pairs** is what f's first layer receives: at step ``t`` the spikes of g's last
      layer summed over the question's pairs, times ``lambda_g / S``.
    * **f** runs ``steps`` + (its depth) steps; the answer is the argmax of a non-leaky readout (the sum
      of its input over all steps).

    ``engine="loihi"``: g's layers after the first and f run on the Loihi 1 integer engine
    (:func:`ahpsim.loihi.quantize`, threshold mantissa ``vth_mant``); g's first layer, whose input is
    the analog pair current, runs on the float kernel as the spike source of the chip's part (input
    injection). The chip sums the pair copies' spikes in f's first layer through one synapse per copy
    with the same weight; here f's input has ``K`` channels per unit of g's last layer (channel
    ``k * H + h`` spikes when at least ``k + 1`` pairs' unit ``h`` spiked), the same integer sum.
    The IF layers keep their reset by subtraction on the chip (``quantize(..., subtract_reset="exact")``:
    the current ``u`` carries the potential, a self-synapse subtracts the threshold) and receive their
    biases through synapses from an always-on input channel.

    Parameters
    ----------
    first_width : int
        Units of g's first layer (whose input current the caller computes).
    g, f : lists of (W [out, in], b [out]) numpy arrays
        g's layers after the first and f's layers (the last one is the linear readout).
    lam_g, lam_f : sequences of float > 0
        The scales of g's layers (first included: ``len(g) + 1``) and of f's hidden layers (``len(f) - 1``).
    max_sentences : int
        S of the network (the sum over pairs is scaled by 1 / S).
    steps : int
        Steps per question (>= 1).
    engine : {"float", "loihi"}
        Where g's later layers and f run.
    reset : {"subtract", "zero"}, default "subtract"
        The IF units' reset. ``"subtract"`` keeps the excess over the threshold (the conversion's
        rate); on the integer engine the potential then lives in the 24-bit current ``u``, which a
        unit whose input stays negative for long wraps (see Notes). ``"zero"`` drops the excess at
        every spike, lowering the rates (on the trained bAbI network g's by a third and f's by half,
        and fewer answers agree with the ReLU head: docs/babi.md); on the integer engine it is Loihi's
        own reset, the potential in the voltage ``v``, which saturates at -2**23 instead of wrapping.
    v_init : float in [0, 1), default 0.5
        Membrane potential of every IF unit at the start of a question, in thresholds, set by one pulse
        of weight ``v_init`` at step 0 from the input ``start`` (as a chip would set it). 0.5 makes a
        unit's spike count its input's integral rounded instead of floored (Bu et al. 2022, "Optimal
        ANN-SNN conversion for high-accuracy and ultra-low-latency spiking neural networks", ICLR),
        which matters where units fire a few times per question.
    drain : bool, default False
        Give every layer the time to integrate all of its input. Without it g and f run ``steps``
        (+ f's depth) steps and each layer after g's first receives the spikes of one step fewer than
        the one before it (the one-step synaptic delay), while its bias arrives on every step. With it
        g runs ``steps + len(g)`` steps (its first layer's input current only in the first ``steps``),
        f receives g's spikes of all those steps, and every bias is spread so that a unit receives
        ``steps`` steps' worth of it over the longer run: a unit's spike count approximates
        ``steps * activation / lambda`` for every layer, not only the first. Costs ``len(g)`` more
        steps per question.

    Notes
    -----
    ``last_head_stats`` of the network after a call: spikes per neuron per step of g and of f, the
    steps, the pairs, and on the integer engine ``overflows`` (``overflows_g``, ``overflows_f``): the
    call's compartment-steps with a wrapped current or a clipped voltage, which also raise a
    :class:`ahpsim.loihi.QuantizationOverflowWarning` (a non-leaky unit keeps every step the input it
    does not spend on spikes, a negative one or more than a threshold, and over enough steps wraps
    Loihi's 24-bit current).
    """

    F_INPUT_BYTES = 1 << 27  # f runs on blocks of questions whose input array stays under 128 MiB

    def __init__(self, first_width: int, g: Sequence, f: Sequence, lam_g: Sequence[float],
                 lam_f: Sequence[float], max_sentences: int, steps: int = 50, chunk: int = 512, n_threads: int = 1,
                 engine: str = "float", vth_mant: int = 508, v_init: float = 0.5, reset: str = "subtract",
                 drain: bool = False):
        for name, v in (("steps", steps), ("chunk", chunk), ("n_threads", n_threads), ("max_sentences", max_sentences),
                        ("vth_mant", vth_mant), ("first_width", first_width)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if (isinstance(v_init, bool) or not isinstance(v_init, (int, float, np.integer, np.floating))
                or not 0.0 <= float(v_init) < 1.0):
            raise ValueError(f"v_init must be a number in [0, 1) (thresholds), got {v_init!r}")
        self.v_init = float(v_init)
        if not isinstance(reset, str) or reset not in ("subtract", "zero"):
            raise ValueError(f"reset must be 'subtract' or 'zero', got {reset!r}")
        self.reset = reset
        if not isinstance(drain, (bool, np.bool_)):
            raise TypeError(f"drain must be True or False, got {drain!r}")
        self.drain = bool(drain)
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
        g, f = _layers(g), _layers(f)
        for name, lam in (("lam_g", lam_g), ("lam_f", lam_f)):
            if (isinstance(lam, (str, bytes)) or not isinstance(lam, (Sequence, np.ndarray))
                    or any(isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating))
                           for v in lam)):
                raise TypeError(f"{name} must be a sequence of real numbers (one scale per layer), got {lam!r}")
        lam_g, lam_f = [float(v) for v in lam_g], [float(v) for v in lam_f]
        if len(lam_g) != len(g) + 1 or len(lam_f) != len(f) - 1:
            raise ValueError(f"lam_g needs {len(g) + 1} scales and lam_f {len(f) - 1}, got {len(lam_g)} and "
                             f"{len(lam_f)}")
        if min(lam_g + lam_f + [1.0]) <= 0 or not np.all(np.isfinite(lam_g + lam_f)):
            raise ValueError(f"scales must be finite and > 0, got lam_g={lam_g}, lam_f={lam_f}")
        self.steps, self.chunk, self.n_threads = int(steps), int(chunk), int(n_threads)
        self.lam_g, self.lam_f, self.S = lam_g, lam_f, int(max_sentences)
        self.engine, self.vth_mant = engine, int(vth_mant)
        H1 = int(first_width)
        # the converted layers: (name, n_in, W, bias, delay) with W and bias in threshold units
        self._g_spec = []
        n_prev = H1
        # steps of g and f per question; with drain each bias is spread over its stage's longer run
        self.steps_g = self.steps + (len(g) if self.drain else 0)
        self.steps_f = self.steps_g + len(f)
        g_bias, f_bias = (self.steps / self.steps_g, self.steps / self.steps_f) if self.drain else (1.0, 1.0)
        for k, (W, b) in enumerate(g, start=1):
            self._g_spec.append((f"g{k + 1}", W * (lam_g[k - 1] / lam_g[k]),
                                 np.zeros(W.shape[0]) if b is None else b * (g_bias / lam_g[k])))
            n_prev = W.shape[0]
        self.g_sizes = [H1] + [W.shape[0] for _, W, _ in self._g_spec]
        self._f_spec = []
        lam_prev, src_scale = None, lam_g[-1] / self.S
        for k, (W, b) in enumerate(f[:-1]):
            self._f_spec.append((f"f{k + 1}", W * ((src_scale if lam_prev is None else lam_prev) / lam_f[k]),
                                 np.zeros(W.shape[0]) if b is None else b * (f_bias / lam_f[k])))
            lam_prev = lam_f[k]
        W, b = f[-1]
        self._out = (W * (src_scale if lam_prev is None else lam_prev), np.zeros(W.shape[0]) if b is None else b * f_bias)
        self.f_sizes = [W.shape[0] for _, W, _ in self._f_spec]
        big = float(np.finfo(np.float32).max)  # the kernels' weights are float32
        if not all(np.all(np.abs(a) <= big) for _, W, b in self._g_spec + self._f_spec for a in (W, b)) or \
                not all(np.all(np.abs(a) <= big) for a in self._out):
            raise ValueError(f"the scales give non-finite weights or biases (lam_g={lam_g}, lam_f={lam_f}): each "
                             "scale must be of the order of its layer's activations")
        self.g_out = f"g{len(self.g_sizes)}"
        self.first_scale = 1.0 / lam_g[0]
        self.g_net = self._float_net(g_input=True)
        self.f_net = self._float_net(g_input=False)
        self._loihi_g = self._loihi_f = None
        self.ops: dict = {}  # operation counts per stage ("g", "f") over all calls (reset_ops() clears)
        if engine == "loihi":
            self._g1_net = self._float_net(g_input=True, only_first=True)
            # (a g of one layer has no later layers: its first layer's spikes go to f)
            self._loihi_g = self._quantize(self._describe_g_tail(), "g") if self._g_spec else None
            self._loihi_f: dict = {}  # by K, built on first use

    # ------------------------------------------------------------------ building
    def _float_net(self, g_input: bool, only_first: bool = False) -> Network:
        """The float kernel networks: g (x -> g1 -> g2 ...) or f (summed spikes -> f1 ... -> out)."""
        from .models import LIF, Readout

        def IF(bias=0.0):
            return LIF(tau_m=1e9, v_th=1.0, reset=self.reset, bias=bias)

        net = Network(dtype="float32", seed=0)
        start = net.add_input(1, name="start") if self.v_init else None

        def initial(lay):  # the pulse at step 0 that sets the potential to v_init
            if start is not None:
                net.connect(start, lay, np.full((lay.n, 1), self.v_init), delay=0)

        if g_input:
            H1 = self.g_sizes[0]
            x = net.add_input(H1, name="x")
            prev = net.add_population(H1, IF(), name="g1")
            net.connect(x, prev, np.eye(H1), delay=0)
            initial(prev)
            if only_first:
                return net
            for name, W, b in self._g_spec:
                lay = net.add_population(W.shape[0], IF(b), name=name)
                net.connect(prev, lay, W, delay=1)
                initial(lay)
                prev = lay
            return net
        prev = net.add_input(self.g_sizes[-1], name="x")
        first = True
        for name, W, b in self._f_spec:
            lay = net.add_population(W.shape[0], IF(b), name=name)
            net.connect(prev, lay, W, delay=0 if first else 1)
            initial(lay)
            prev, first = lay, False
        W, b = self._out
        out = net.add_population(W.shape[0], Readout(tau=1e9, bias=b), name="out")
        net.connect(prev, out, W, delay=0 if first else 1)
        return net

    def _if_layer(self, name, W, b, pre, delay, pops, projs):
        """A non-leaky IF layer (reset by subtraction built exactly on Loihi, ``subtract_reset="exact"``:
        u carries v; or Loihi's reset to zero); its bias arrives through a synapse from the always-on
        input ``one``, its initial potential through one from ``start``."""
        pops.append(dict(name=name, kind="LIF", n=W.shape[0], tau_m=1e9, v_th=1.0, reset=self.reset))
        projs.append(dict(pre=pre, post=name, weights=W, delay=delay))
        if np.any(b != 0):
            projs.append(dict(pre="one", post=name, weights=np.asarray(b, np.float64)[:, None], delay=0))
        if self.v_init:
            projs.append(dict(pre="start", post=name, weights=np.full((W.shape[0], 1), self.v_init), delay=0))

    def _inputs(self, n_x: int) -> dict:
        return {"x": n_x, "one": 1, **({"start": 1} if self.v_init else {})}

    def _describe_g_tail(self) -> dict:
        """g's layers after the first, fed by the first layer's spikes (input ``x``, one step later)."""
        pops, projs, prev = [], [], "x"
        for name, W, b in self._g_spec:
            self._if_layer(name, W, b, prev, 1, pops, projs)
            prev = name
        return dict(dt=1.0, inputs=self._inputs(self.g_sizes[0]), populations=pops, projections=projs)

    def _describe_f(self, K: int) -> dict:
        """f with K input channels per unit of g's last layer (see the class docstring)."""
        pops, projs, prev, first = [], [], "x", True
        for name, W, b in self._f_spec:
            self._if_layer(name, np.tile(W, (1, K)) if first else W, b, prev, 0 if first else 1, pops, projs)
            prev, first = name, False
        W, b = self._out
        pops.append(dict(name="out", kind="Readout", n=W.shape[0], tau=1e9, bias=b))
        projs.append(dict(pre=prev, post="out", weights=np.tile(W, (1, K)) if first else W, delay=0 if first else 1))
        return dict(dt=1.0, inputs=self._inputs(K * self.g_sizes[-1]), populations=pops, projections=projs)

    def _quantize(self, d: dict, stage: str):
        from .loihi import quantize

        try:
            if self.reset == "zero":  # Loihi's own reset; the potential in the saturating voltage v
                return quantize(d, vth_mant=self.vth_mant)
            return quantize(d, vth_mant=self.vth_mant, subtract_reset="exact")
        except ValueError as e:  # weights or biases past Loihi's range: name what sets them
            raise ValueError(f"the integer engine cannot hold {stage}'s weights or biases at its scales ({e}); the "
                             f"scales are percentiles of the activations: a higher calibration percentile (lam_{stage} "
                             "larger) gives smaller ones") from None

    # ------------------------------------------------------------------ running
    def reset_ops(self) -> None:
        self.ops = {}

    def _run(self, net, T: int, x: np.ndarray, stage: Optional[str] = None):
        res = self._run_net(net, T, x)
        if stage is not None:
            _add_ops(self.ops, stage, net, T, len(x))
        return res

    def _run_net(self, net, T: int, x: np.ndarray):
        net.reset_state()
        from .loihi import QuantizationOverflowWarning, QuantizedNetwork

        inputs = {"x": x}
        if isinstance(net, QuantizedNetwork):  # the bias source of the integer layers: a spike every step
            inputs["one"] = np.ones((T, 1), bool)
        if self.v_init:  # one pulse at step 0 sets the initial potential
            pulse = np.zeros((T, 1), bool)
            pulse[0] = True
            inputs["start"] = pulse
        with warnings.catch_warnings():  # overflows are counted in last_head_stats
            warnings.simplefilter("ignore", QuantizationOverflowWarning)
            return net.run(T, inputs=inputs, n_threads=self.n_threads)

    def __call__(self, pre1: np.ndarray, b: np.ndarray, B: int):
        """``pre1`` [P, H1]: g's first-layer input per pair (before ReLU); ``b`` [P]: each pair's
        question. Returns (logits [B, V] float numpy, stats)."""
        T, Tg, Tf = self.steps, self.steps_g, self.steps_f
        P = len(b)
        H_out = self.g_sizes[-1]
        summed = np.zeros((B, Tg, H_out), np.int32)
        g_spikes = ovf_g = ovf_f = 0
        cur = (pre1 * self.first_scale).astype(np.float32)
        names = [f"g{k + 1}" for k in range(len(self.g_sizes))]
        for s in range(0, P, self.chunk):
            part = cur[s:s + self.chunk]
            X = np.zeros((len(part), Tg, part.shape[1]), np.float32)  # (drain: no input after step T)
            X[:, :T] = part[:, None, :]
            if self.engine == "loihi":
                z1 = self._run(self._g1_net, Tg, X, "g").raster("g1")
                rasters = {"g1": z1}
                if self._loihi_g is not None:
                    res = self._run(self._loihi_g, Tg, z1, "g")
                    rasters.update({n: res.raster(n) for n in names[1:]})
                    ovf_g += _overflow_count(self._loihi_g)  # (counted since the run's reset)
            else:
                res = self._run(self.g_net, Tg, X, "g")
                rasters = {n: res.raster(n) for n in names}
            np.add.at(summed, b[s:s + self.chunk], rasters[self.g_out].astype(np.int32))
            g_spikes += sum(int(r.sum()) for r in rasters.values())
        K = 1
        if self.engine == "loihi":
            K = max(int(summed.max()), 1)
            K = -(-K // 8) * 8  # networks cached by K rounded up to a multiple of 8
            if K not in self._loihi_f:
                self._loihi_f[K] = self._quantize(self._describe_f(K), "f")
        # f's input [questions, Tf, K * H_out] in blocks of questions of at most F_INPUT_BYTES (one question
        # at least)
        budget = self.F_INPUT_BYTES
        if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
            raise ValueError(f"F_INPUT_BYTES must be an integer >= 1, got {budget!r}")
        per_question = Tf * K * H_out * (1 if self.engine == "loihi" else 4)
        step = max(1, int(budget) // per_question)
        blocks, f_spikes = [], 0
        for q0 in range(0, B, step):
            part = summed[q0:q0 + step]
            nq = len(part)
            if self.engine == "loihi":
                net = self._loihi_f[K]
                Xf = np.zeros((nq, Tf, K, H_out), bool)
                Xf[:, :Tg] = part[:, :, None, :] > np.arange(K)[None, None, :, None]
                res = self._run(net, Tf, Xf.reshape(nq, Tf, K * H_out), "f")
                ovf_f += _overflow_count(net)
            else:
                Xf = np.concatenate([part.astype(np.float32), np.zeros((nq, Tf - Tg, H_out), np.float32)], 1)
                res = self._run(self.f_net, Tf, Xf, "f")
            blocks.append(np.asarray(res.readout("out"))[:, -1])
            f_spikes += sum(int(res.raster(f"f{k + 1}").sum()) for k in range(len(self.f_sizes)))
        logits = np.concatenate(blocks)
        stats = {"g_rate": g_spikes / max(P * Tg * sum(self.g_sizes), 1),
                 "f_rate": f_spikes / max(B * Tf * max(sum(self.f_sizes), 1), 1),
                 "g_spikes": g_spikes, "f_spikes": f_spikes, "pairs": P, "steps": T, "steps_g": Tg, "steps_f": Tf}
        if self.engine == "loihi":  # integer-engine compartment-steps of this call with u wrapped or v clipped
            stats.update(overflows=ovf_g + ovf_f, overflows_g=ovf_g, overflows_f=ovf_f)
            if ovf_g or ovf_f:
                from .loihi import QuantizationOverflowWarning

                warnings.warn(f"the integer engine wrapped a 24-bit current or clipped a voltage in {ovf_g} "
                              f"compartment-steps of g and {ovf_f} of f over {B} questions: answers may differ "
                              f"from the float kernel's (a non-leaky unit keeps every step the input it does not "
                              f"spend on spikes, a negative one or more than a threshold, and over many steps "
                              "passes 24 bits)", QuantizationOverflowWarning,
                              stacklevel=_user_stacklevel())
        return logits, stats


class DeployedRelationalNetwork:
    """A trained spiking Relational Network on the engines (see the module docstring).

    Parameters
    ----------
    sentence, question : ahpsim.Network
        The encoders: input group ``"x"`` (one channel per word), spiking populations, readout ``"out"``
        whose last value is the encoding (as :func:`ahpsim.torch.to_network` exports them).
    first : three (W, b) pairs
        g's first layer split by input: ``A`` (with bias) on ``o_i``, ``B`` on ``o_j``, ``C`` on the
        question encoding (b of the last two is None).
    g, f : lists of (W [out, in], b [out])
        g's further ReLU layers; f's ReLU layers and its linear readout over the vocabulary.
    vocab_size, steps_per_word, max_sentences, position_tags
        As the trained network's (``RelationalNetwork.config()``).
    vocab : list of str, optional
        Words by index, for :meth:`answer`.
    engine : {"float", "loihi"}
        ``"loihi"`` quantizes the encoders to the Loihi 1 integer engine (:func:`ahpsim.loihi.quantize`,
        threshold mantissa ``vth_mant``); their encodings are the integer readouts divided by their scale.
    head : IFHead, optional
        Runs g and f as integrate-and-fire layers on the kernel (statistics of the last call in
        ``last_head_stats``) instead of ReLU layers in numpy.
    head_levels : int, optional
        g's and f's hidden units are quantized ReLUs of this many levels (a network trained with
        ``RelationalNetwork(head_levels=...)``; :func:`quantized_relu_np`) at the scales ``head_scales``
        ``(lam_g [len(g) + 1], lam_f [len(f) - 1])``. Without ``head``, numpy evaluates them so.

    Raises
    ------
    ValueError
        For an unknown engine or inconsistent shapes.
    """

    def __init__(self, sentence: Network, question: Network, first: Sequence, g: Sequence, f: Sequence, *,
                 vocab_size: int, steps_per_word: int, max_sentences: int, position_tags: bool = True,
                 vocab: Optional[Sequence[str]] = None, n_threads: int = 1, engine: str = "float",
                 vth_mant: int = 508, head: Optional[IFHead] = None, head_levels: Optional[int] = None,
                 head_scales: Optional[Sequence] = None):
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
        if isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer)) or n_threads < 1:
            raise ValueError(f"n_threads must be an integer >= 1, got {n_threads!r}")
        self.first, self.g, self.f = _layers(first), _layers(g), _layers(f)
        if len(self.first) != 3:
            raise ValueError(f"first: expected three (W, b) pairs (A, B, C), got {len(self.first)}")
        self.vocab_size, self.steps_per_word = int(vocab_size), int(steps_per_word)
        self.max_sentences, self.position_tags = int(max_sentences), bool(position_tags)
        self.vocab = None if vocab is None else [str(w) for w in vocab]
        if self.vocab is not None and len(self.vocab) != self.vocab_size:
            raise ValueError(f"vocab has {len(self.vocab)} words but vocab_size is {self.vocab_size}")
        self.engine, self.vth_mant, self.n_threads, self.head = engine, int(vth_mant), int(n_threads), head
        if (head_levels is None) != (head_scales is None):
            raise ValueError("head_levels and head_scales go together (a head trained with quantized ReLUs), "
                             f"got head_levels={head_levels!r}, head_scales={head_scales!r}")
        self.head_levels, self.head_scales = None, None
        if head is not None and not isinstance(head, IFHead):
            raise TypeError(f"head must be an IFHead or None, got {type(head).__name__}")
        if head_levels is not None:
            levels = check_head_levels(head_levels, "head_levels")
            try:
                lam_g, lam_f = (list(part) for part in head_scales)
            except (TypeError, ValueError):
                raise TypeError(f"head_scales must be (lam_g, lam_f), two sequences of numbers, got "
                                f"{head_scales!r}") from None
            if len(lam_g) != len(self.g) + 1 or len(lam_f) != len(self.f) - 1:
                raise ValueError(f"head_scales: lam_g needs {len(self.g) + 1} scales and lam_f {len(self.f) - 1}, "
                                 f"got {len(lam_g)} and {len(lam_f)}")
            lam_g = [as_positive_real(v, "head_scales' entries") for v in lam_g]
            lam_f = [as_positive_real(v, "head_scales' entries") for v in lam_f]
            self.head_levels, self.head_scales = levels, (lam_g, lam_f)
        self.last_head_stats: Optional[dict] = None
        self.ops: dict = {}  # operation counts per encoder over all runs (see operation_counts)
        self.float_sentence, self.float_question = sentence, question  # kept for save()
        self.sentence, self.question = sentence, question
        if engine == "loihi":
            from .loihi import QuantizationOverflowWarning, quantize

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", QuantizationOverflowWarning)
                self.sentence = quantize(sentence, vth_mant=vth_mant)
                self.question = quantize(question, vth_mant=vth_mant)

    # ------------------------------------------------------------------ running
    def _encode(self, net, tokens: np.ndarray, tag: str, spikes_out):
        lengths = (tokens > 0).sum(1)
        e = np.zeros((len(tokens), self.first[2][0].shape[1]), dtype=self.first[0][0].dtype)
        spikes = neuron_steps = 0.0
        for L in np.unique(lengths):
            if L == 0:
                continue
            idx = np.nonzero(lengths == L)[0]
            x = word_spikes_np(tokens[idx, :L], self.vocab_size, self.steps_per_word)
            net.reset_state()
            res = net.run(x.shape[1], inputs={"x": x}, n_threads=self.n_threads)
            _add_ops(self.ops, "sentence_encoder" if tag == "s" else "question_encoder", net, x.shape[1], len(x))
            if self.engine == "loihi":
                names = [p["name"] for p in net.report.populations if p["kind"] != "Readout"]
            else:
                names = [g.name for g in net.populations if g.model.spiking]
            z = np.concatenate([np.asarray(res.raster(n)) for n in names], axis=2)
            e[idx] = res.readout("out")[:, -1]
            spikes += float(z.sum())
            neuron_steps += float(z.size)
            if spikes_out is not None:
                for r, k in enumerate(idx):
                    spikes_out[(tag, *tokens[k, :L].tolist())] = z[r]
        return e, spikes, neuron_steps

    def _check(self, story, L, q, Lq):
        story, L, q, Lq = (np.asarray(a) for a in (story, L, q, Lq))
        for name, a in (("story", story), ("story_lengths", L), ("question", q), ("question_lengths", Lq)):
            if not np.issubdtype(a.dtype, np.integer):
                raise TypeError(f"{name}: expected an integer array, got dtype {a.dtype}")
        if story.ndim != 3 or q.ndim != 2 or L.shape != (story.shape[0],) or q.shape[0] != story.shape[0] \
                or Lq.shape != (q.shape[0],):
            raise ValueError(f"expected story [B, S, W], story_lengths [B], question [B, Wq], question_lengths "
                             f"[B]; got {story.shape}, {L.shape}, {q.shape}, {Lq.shape}")
        if story.shape[0] == 0:
            raise ValueError("story: a batch needs at least one question")
        if story.shape[1] > self.max_sentences:
            raise ValueError(f"story: {story.shape[1]} sentences, the network takes at most {self.max_sentences}")
        for name, a in (("story", story), ("question", q)):
            if a.size and (a.min() < 0 or a.max() >= self.vocab_size):
                raise ValueError(f"{name}: word indices must lie in 0..{self.vocab_size - 1}, got "
                                 f"{a.min()}..{a.max()}")
        S = story.shape[1]
        if L.size and (L.min() < 0 or L.max() > S):
            raise ValueError(f"story_lengths must lie in 0..{S} (the sentences of story), got {L.min()}..{L.max()}")
        # words are left-aligned (0 = padding after the last word) and the lengths agree with them
        words = story > 0
        if np.any(words[..., 1:] & ~words[..., :-1]):
            raise ValueError("story: a sentence has a padding index (0) before a word; words must be left-aligned")
        present = np.arange(S)[None, :] < L[:, None]
        if np.any(present & ~words.any(2)):
            raise ValueError("story: a sentence within story_lengths has no words")
        if np.any(~present & words.any(2)):
            raise ValueError("story: a sentence beyond story_lengths holds words (story_lengths too small?)")
        qw = q > 0
        if np.any(qw[:, 1:] & ~qw[:, :-1]):
            raise ValueError("question: a padding index (0) before a word; words must be left-aligned")
        if np.any(qw.sum(1) != Lq):
            raise ValueError("question_lengths disagree with the words of question (its nonzero indices)")
        if np.any(Lq < 1):
            raise ValueError("question: every question needs at least one word")
        return story.astype(np.int64), L.astype(np.int64), q.astype(np.int64), Lq.astype(np.int64)

    def run(self, story, story_lengths, question, question_lengths, return_spikes: bool = False):
        """Answers a batch of questions (the arrays of :class:`ahpsim.datasets.BabiData`: ``story`` int
        [B, S, W], ``story_lengths`` [B], ``question`` [B, Wq], ``question_lengths`` [B]; 0 = padding).
        Returns a :class:`RelNetResult` (``logits`` [B, V]) and, with ``return_spikes=True``, a dict
        ``{("s" | "q", word ids...): z bool [T, N]}`` of every distinct sentence's and question's spikes."""
        story, L, q, _ = self._check(story, story_lengths, question, question_lengths)
        B, S, _ = story.shape
        spk = {} if return_spikes else None
        present = np.arange(S)[None, :] < L[:, None]
        uniq, inv = np.unique(story[present], axis=0, return_inverse=True)
        e_u, s1, n1 = self._encode(self.sentence, uniq, "s", spk)
        obj = np.zeros((B, S, e_u.shape[1]), e_u.dtype)
        obj[present] = e_u[inv.reshape(-1)]
        if self.position_tags:
            recency = np.clip(L[:, None] - 1 - np.arange(S)[None, :], 0, None)
            tags = (np.eye(self.max_sentences, dtype=obj.dtype)[recency]) * present[:, :, None]
            obj = np.concatenate([obj, tags], 2)
        uq, inv_q = np.unique(q, axis=0, return_inverse=True)
        eq_u, s2, n2 = self._encode(self.question, uq, "q", spk)
        eq = eq_u[inv_q.reshape(-1)]
        b, i, j = pair_indices_np(L, S)
        (Wi, bi), (Wj, _), (Wq, _) = self.first
        pre1 = (obj @ Wi.T + (0 if bi is None else bi))[b, i] + (obj @ Wj.T)[b, j] + (eq @ Wq.T)[b]
        if self.head is not None:
            x, stats = self.head(pre1, b, B)
            self.last_head_stats = stats
            if stats["f_spikes"] == 0 and len(self.head.f_sizes):
                warnings.warn(f"f fired no spikes in {stats['steps']} steps: its answers come from the readout's "
                              "bias alone; give the integrate-and-fire head more steps", RuntimeWarning,
                              stacklevel=_user_stacklevel())
        else:
            h = self._activation(pre1, "g", 0)
            for k, (W, bb) in enumerate(self.g, start=1):
                h = self._activation(h @ W.T + bb, "g", k)
            x = np.zeros((B, h.shape[1]), h.dtype)
            np.add.at(x, b, h)
            x = x * (1.0 / self.max_sentences)
            for k, (W, bb) in enumerate(self.f):
                x = x @ W.T + bb
                if k < len(self.f) - 1:
                    x = self._activation(x, "f", k)
        out = RelNetResult(x, s1 + s2, n1 + n2, int(b.size))
        return (out, spk) if return_spikes else out

    def _activation(self, x: np.ndarray, stage: str, k: int) -> np.ndarray:
        if self.head_levels is None:
            return np.maximum(x, 0)
        lam = self.head_scales[0 if stage == "g" else 1][k]
        return quantized_relu_np(x, lam, self.head_levels)

    def answer(self, story, story_lengths, question, question_lengths) -> list[str]:
        """The answer words of a batch (``vocab[argmax(logits)]``); needs ``vocab``."""
        if self.vocab is None:
            raise ValueError("this network has no vocab; pass vocab= to decode answers")
        logits = self.run(story, story_lengths, question, question_lengths).logits
        return [self.vocab[k] for k in logits.argmax(1)]

    def operation_counts(self) -> dict:
        """Operation counts per stage over all runs since construction or :meth:`reset_ops`:
        ``{stage: {"spikes", "syn_events", "input_events", "neuron_updates", "compartment_updates",
        "trial_steps", "trials"}}`` for ``"sentence_encoder"`` and ``"question_encoder"`` (each
        distinct sentence / question of a batch is run once) and, with a head, ``"g"`` (one trial per
        pair) and ``"f"`` (one per question). Kernel counters (:meth:`ahpsim.Network.counters`)."""
        out = {k: dict(v) for k, v in self.ops.items()}
        if self.head is not None:
            out.update({k: dict(v) for k, v in self.head.ops.items()})
        return out

    def reset_ops(self) -> None:
        self.ops = {}
        if self.head is not None:
            self.head.reset_ops()

    def resources(self) -> dict:
        """A Loihi 1 resource estimate of the whole network laid out as the authors' chip network:
        one sentence encoder per sentence slot (``max_sentences`` copies) and one question encoder, one
        copy of g per sentence pair (S (S + 1) / 2: 210 for S = 20), f fed by every copy. Per stage
        :func:`ahpsim.loihi.resources.estimate_resources` of the quantized stage (compartments,
        synapses, cores by Loihi 1's per-core limits) times its copies; g's first layer, which the
        engine injects, is counted as the chip would hold it (its compartments, and synapses from
        both objects and the question, 8-bit weights and 10-bit indices). Needs the spiking head.
        Returns ``{"stages": {...}, "compartments", "synapses", "cores", "chips"}``."""
        import math

        from .loihi import QuantizationOverflowWarning, quantize
        from .loihi.resources import LOIHI1, estimate_resources

        if self.head is None:
            raise ValueError("resources() needs the spiking head (g and f as integrate-and-fire layers)")
        S = self.max_sentences
        P = S * (S + 1) // 2
        head = self.head
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", QuantizationOverflowWarning)
            enc = [self.sentence if self.engine == "loihi" else quantize(self.float_sentence, vth_mant=self.vth_mant),
                   self.question if self.engine == "loihi" else quantize(self.float_question, vth_mant=self.vth_mant)]
            g_tail = None if not head._g_spec else (
                head._loihi_g if head._loihi_g is not None else head._quantize(head._describe_g_tail(), "g"))
            f_net = head._quantize(head._describe_f(P), "f")
        stages = {}
        for name, net, copies in (("sentence_encoder", enc[0], S), ("question_encoder", enc[1], 1),
                                  ("g_later_layers", g_tail, P), ("f", f_net, 1)):
            if net is None:
                continue
            r = estimate_resources(net.net)  # the LoihiNetwork of the QuantizedNetwork
            stages[name] = {"copies": copies, "compartments": r["compartments"], "synapses": r["synapses"],
                            "cores": r["cores"]}
        H1 = self.first[0][0].shape[0]
        n_in = sum(W.shape[1] for W, _ in self.first)  # [o_i, o_j, q]
        syn = H1 * n_in
        bits = syn * (LOIHI1["weight_bits"] + LOIHI1["index_bits"])
        cores = max(math.ceil(H1 / LOIHI1["compartments_per_core"]),
                    math.ceil(bits / LOIHI1["synapse_memory_bits_per_core"]), 1)
        stages["g_first_layer"] = {"copies": P, "compartments": H1, "synapses": syn, "cores": cores}
        tot = {k: sum(v[k] * v["copies"] for v in stages.values()) for k in ("compartments", "synapses", "cores")}
        return {"stages": stages, **tot, "chips": math.ceil(tot["cores"] / LOIHI1["cores_per_chip"]),
                "note": "per-stage estimates (Loihi 1 per-core limits) times copies; not NxSDK's allocation"}

    @property
    def n_neurons(self) -> dict:
        """Neurons per stage: encoders (each), g (per pair copy), f."""
        n_enc = sum(g.n for g in self.float_sentence.populations if g.model.spiking)
        return {"sentence_encoder": n_enc, "question_encoder": n_enc,
                "g_per_pair": sum(W.shape[0] for W, _ in [self.first[0]] + self.g),
                "f": sum(W.shape[0] for W, _ in self.f[:-1]), "readout": self.f[-1][0].shape[0]}

    # ------------------------------------------------------------------ files
    def save(self, path) -> None:
        """Writes the folder ``path``: ``sentence.npz`` and ``question.npz`` (:meth:`Network.save`, the float
        encoders) and ``relnet.npz`` (g, f, the configuration, the vocabulary and the IF head's scales if
        there is a head). :func:`load_relnet` reads it."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.float_sentence.save(path / "sentence.npz")
        self.float_question.save(path / "question.npz")
        arrs: dict[str, Any] = {}
        for name, layers in (("first", self.first), ("g", self.g), ("f", self.f)):
            for k, (W, b) in enumerate(layers):
                arrs[f"{name}{k}_W"] = W
                if b is not None:
                    arrs[f"{name}{k}_b"] = b
        header = dict(format=_FORMAT, version=1, vocab_size=self.vocab_size, steps_per_word=self.steps_per_word,
                      max_sentences=self.max_sentences, position_tags=self.position_tags, vocab=self.vocab,
                      n_g=len(self.g), n_f=len(self.f), head_levels=self.head_levels,
                      head_scales=None if self.head_scales is None else [list(v) for v in self.head_scales],
                      head=None if self.head is None else dict(lam_g=self.head.lam_g, lam_f=self.head.lam_f,
                                                               steps=self.head.steps, v_init=self.head.v_init,
                                                               reset=self.head.reset, drain=self.head.drain))
        arrs["__header__"] = np.array(json.dumps(header))
        tmp = path / f"relnet.npz.tmp{os.getpid()}.npz"
        try:
            np.savez(tmp, **arrs)
            os.replace(tmp, path / "relnet.npz")
        finally:
            if tmp.exists():
                tmp.unlink()


def load_relnet(path, *, engine: str = "float", head: Optional[bool] = None, head_steps: Optional[int] = None,
                vth_mant: int = 508, n_threads: int = 1) -> DeployedRelationalNetwork:
    """Reads a folder written by :meth:`DeployedRelationalNetwork.save`.

    ``engine``: ``"float"`` (the C++ kernel) or ``"loihi"`` (the encoders and, with the head, g's later
    layers and f on the Loihi 1 integer engine, threshold mantissa ``vth_mant``). ``head``: run g and f
    as integrate-and-fire layers (:class:`IFHead`; default: if the folder holds its scales; a network
    trained with quantized ReLUs, ``head_levels``, builds one from its trained scales, at as many steps
    as levels, units starting at half their threshold); ``head_steps`` overrides the saved steps (and
    alone asks for the head). Raises FileNotFoundError for a missing
    folder or file and ValueError for a file of another format."""
    path = Path(path)
    if path.is_file() and path.name == "relnet.npz":  # the folder's main file: take its folder
        path = path.parent
    f = path / "relnet.npz"
    if not f.is_file():
        raise FileNotFoundError(f"{path}: no relnet.npz (a folder written by DeployedRelationalNetwork.save)")
    if head is not None and not isinstance(head, (bool, np.bool_)):
        raise TypeError(f"head must be True, False or None, got {head!r}")
    if head is False and head_steps is not None:
        raise ValueError("head_steps applies to the integrate-and-fire head; it is off (head=False)")
    try:
        data = np.load(f, allow_pickle=False)
    except Exception as e:  # not an npz at all, or truncated
        raise ValueError(f"{f}: not a readable ahpsim Relational Network file ({type(e).__name__})") from None
    with data:
        if "__header__" not in data.files:
            raise ValueError(f"{f}: not an ahpsim Relational Network file (no header)")
        try:
            h = json.loads(str(data["__header__"]))
        except ValueError:
            raise ValueError(f"{f}: not an ahpsim Relational Network file (unreadable header)") from None
        if h.get("format") != _FORMAT or h.get("version") != 1:
            raise ValueError(f"{f}: unsupported format {h.get('format')!r} version {h.get('version')!r}")

        def layers(name, n):
            return [(data[f"{name}{k}_W"], data[f"{name}{k}_b"] if f"{name}{k}_b" in data.files else None)
                    for k in range(n)]

        first, g, fl = layers("first", 3), layers("g", h["n_g"]), layers("f", h["n_f"])
    sentence = load_network(path / "sentence.npz", n_threads=n_threads)
    question = load_network(path / "question.npz", n_threads=n_threads)
    ifhead = None
    trained = h.get("head_scales")  # a head trained with quantized ReLUs: its scales
    if head is None:
        head = h["head"] is not None
        if not head and head_steps is not None:
            if trained is None:
                raise ValueError(f"head_steps: {path} was saved without an integrate-and-fire head (no scales) and "
                                 "has no trained head scales to build one from")
            head = True
    if head:
        if h["head"] is not None:
            hs = h["head"]
        elif trained is not None:  # the trained scales, run for as many steps as the head's levels
            hs = dict(lam_g=trained[0], lam_f=trained[1], steps=h["head_levels"], v_init=0.5)
        else:
            raise ValueError(f"{path}: saved without an integrate-and-fire head (no scales); pass head=False")
        ifhead = IFHead(first[0][0].shape[0], g, fl, hs["lam_g"], hs["lam_f"], h["max_sentences"],
                        steps=hs["steps"] if head_steps is None else head_steps, n_threads=n_threads,
                        engine=engine, vth_mant=vth_mant, v_init=hs.get("v_init", 0.0),
                        reset=hs.get("reset", "subtract"), drain=hs.get("drain", False))
    return DeployedRelationalNetwork(sentence, question, first, g, fl, vocab_size=h["vocab_size"],
                                     steps_per_word=h["steps_per_word"], max_sentences=h["max_sentences"],
                                     position_tags=h["position_tags"], vocab=h["vocab"], n_threads=n_threads,
                                     engine=engine, vth_mant=vth_mant, head=ifhead, head_levels=h.get("head_levels"),
                                     head_scales=h.get("head_scales"))
