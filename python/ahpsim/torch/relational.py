"""A Relational Network (Santoro et al. 2017) for bAbI whose sentence and question encoders are recurrent
spiking networks (LIF + AHP neurons, Rao et al. 2022), or LSTMs for the non-spiking baseline.

The network (shapes for a batch of B questions, stories of at most S sentences of at most W words):

* **Words as spikes.** Each word is a one-hot spike vector over the vocabulary (V channels) held for
  ``steps_per_word`` steps (the paper: 10).
* **Encoders.** A sentence encoder (shared by all sentences) and a question encoder, each a
  :class:`~ahpsim.torch.SpikingRNN` of ``n_encoder`` neurons (``"ahp"``: half LIF, half AHP; ``"lif"``:
  all LIF; ``"alif"``: half ALIF) with the paper's RelNet time constants (Table S1: tau_m = 7,
  tau_ahp = 40.3 steps, AHP charge 0.176 thresholds per spike). Each sentence runs from rest; its
  encoding is the synaptic trace of the encoder's spikes at the sentence's end,
  ``e = sum_t kappa^(T-1-t) z[t]`` with ``kappa = exp(-1/tau_trace)``: what the synapses of the next
  layer integrate ([n_encoder] per sentence). The ``"lstm"`` baseline reads one word per step and
  encodes a sentence by its last hidden state.
* **Objects.** Sentence ``s`` of a story of ``L`` sentences becomes ``o_s = [e_s, onehot(L - 1 - s)]``
  (a recency tag of width S, as Santoro et al. tag sentence positions).
* **Relation function g** over every unordered pair ``i <= j < L`` (at most S (S + 1) / 2 = 210 pairs,
  as in the authors' Loihi network); absent sentences form no pairs. Its first layer acts on
  ``[o_i, o_j, q]`` and is computed per object, not per pair: ``A o_i + B o_j + C q + b``.
  ``g_layers`` ReLU layers (the authors: 4 x 256).
* **Aggregation and f.** The sum of g over the pairs (times the fixed factor 1 / S), then ``f_layers`` ReLU layers and a linear readout
  over the vocabulary: the answer is ``vocab[argmax]`` (list and path answers are single tokens).

Simplifications against the authors' chip network (measured in ``docs/babi.md``): g and f are trained
as ReLU networks (the chip ran them as spiking layers); the encoders have no synaptic current filter
(Table S1: 7 steps).

Cost: the encoders run only over the distinct sentences of a batch, grouped by length (no padding
steps), through the C++ layer kernel (forward and BPTT); g runs only over the pairs that exist.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..relnet import ENGINES, DeployedRelationalNetwork, RelNetResult
from ..relnet import IFHead as _IFHeadNp
from .._validation import as_positive_real
from ..relnet import check_head_levels, pair_indices_np
from .modules import SpikingRNN

__all__ = ["BabiBatch", "RelNetOutput", "RelationalNetwork", "SpikingEncoder", "LSTMEncoder", "pair_indices",
           "word_spikes", "decode_answers", "KernelRelationalNetwork", "IFHead", "relu_activations", "activation_scale",
           "quantized_relu",
           "RELNET_ENCODER",
           "ENCODER_KINDS"]

# The encoder neurons of the paper's RelNet (supplementary Table S1, steps of 1 ms): tau_m 7, tau_ahp
# 40.3, AHP charge 0.176 v_th per spike (with tau_ahp = 40 this charge keeps c below 0.35 v_th at 5 %
# firing, unlike sMNIST's 0.756 at tau 700, which the chip divides by 64). Reset to zero as on Loihi.
RELNET_ENCODER = dict(tau_m=7.0, tau_ahp=40.3, beta_ahp=0.176, tau_a=40.3, n_ref=0, reset="zero",
                      w_in_scale=2.0, w_rec_scale=1.0, surrogate={"kind": "triangle", "dampening": 0.3})
ENCODER_KINDS = ("ahp", "lif", "alif", "lstm")


class BabiBatch(NamedTuple):
    """A batch of bAbI questions as :class:`ahpsim.datasets.BabiData` holds them (index 0 = padding)."""

    story: torch.Tensor             # int64 [B, S, W]: sentences oldest first, words left-aligned
    story_lengths: torch.Tensor     # int64 [B]: real sentences per story (0..S)
    question: torch.Tensor          # int64 [B, Wq]
    question_lengths: torch.Tensor  # int64 [B]

    @classmethod
    def from_data(cls, data, idx=None) -> "BabiBatch":
        """The questions ``idx`` (default: all) of a :class:`~ahpsim.datasets.BabiData`."""
        sel = slice(None) if idx is None else np.asarray(idx)
        return cls(*(torch.as_tensor(np.asarray(a[sel], dtype=np.int64))
                     for a in (data.story, data.story_lengths, data.question, data.question_lengths)))


# (logits [B, V], spikes, neuron_steps, n_pairs): torch logits from the model, numpy from the kernel
RelNetOutput = RelNetResult


def pair_indices(lengths: torch.Tensor, max_sentences: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All unordered sentence pairs ``i <= j < lengths[b]``: ``(b, i, j)``, int64 [P] each, ordered by
    ``b``, then ``i``, then ``j``. ``P = sum_b L_b (L_b + 1) / 2`` (210 for a full story of 20)."""
    lengths = torch.as_tensor(lengths, dtype=torch.int64)
    if lengths.dim() != 1:
        raise ValueError(f"lengths: expected a 1-d tensor [B], got shape {tuple(lengths.shape)}")
    return tuple(torch.as_tensor(a) for a in pair_indices_np(lengths.cpu().numpy(), max_sentences))


def word_spikes(tokens: torch.Tensor, vocab_size: int, steps_per_word: int, dtype=torch.float32) -> torch.Tensor:
    """One-hot word spikes: ``tokens`` int [U, L] (no padding) -> [U, L * steps_per_word, vocab_size] of
    ``dtype`` (a float type or ``torch.bool``), word ``k`` on its channel at steps
    ``k * steps_per_word ... (k + 1) * steps_per_word - 1``."""
    U, L = tokens.shape
    x = torch.zeros(U, L, vocab_size, dtype=dtype)
    x.scatter_(2, tokens[:, :, None], 1)
    return x.repeat_interleave(steps_per_word, dim=1)


def _group_by_length(tokens: torch.Tensor, lengths: torch.Tensor):
    """(length, row indices) for every length present, in increasing length."""
    out = []
    for L in torch.unique(lengths).tolist():
        out.append((int(L), torch.nonzero(lengths == L, as_tuple=True)[0]))
    return out


class SpikingEncoder(nn.Module):
    """Token sequences -> vectors through a recurrent spiking network.

    ``forward(tokens [U, W], lengths [U]) -> (e [U, n], spikes, neuron_steps)``: each sequence runs from
    rest for ``lengths * steps_per_word`` steps; ``e`` is the trace of the network's spikes at its last
    step (``sum_t kappa^(T-1-t) z[t - 1]``, ``kappa = exp(-1/tau_trace)``; the network's readout with
    identity weights, one step of synaptic latency). Sequences of one length run as one batch.
    """

    def __init__(self, vocab_size: int, n_lif: int = 0, n_ahp: int = 0, n_alif: int = 0, *,
                 steps_per_word: int = 10, tau_trace: float = 10.0, seed: int = 0,
                 dtype: torch.dtype = torch.float32, **rnn_kwargs):
        super().__init__()
        N = n_lif + n_ahp + n_alif
        if steps_per_word < 1:
            raise ValueError(f"steps_per_word must be >= 1, got {steps_per_word!r}")
        self.steps_per_word = int(steps_per_word)
        kw = dict(RELNET_ENCODER)
        kw.update(rnn_kwargs)
        self.rnn = SpikingRNN(vocab_size, N, n_lif, n_ahp, n_alif, tau_out=tau_trace, out_bias=False,
                              out_mask=np.eye(N, dtype=bool), seed=seed, dtype=dtype, **kw)
        with torch.no_grad():
            self.rnn.w_out.copy_(torch.eye(N, dtype=dtype))
        self.rnn.w_out.requires_grad_(False)  # the trace itself is the encoding
        self.vocab_size, self.n = int(vocab_size), N

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor):
        e = torch.zeros(tokens.shape[0], self.n, dtype=self.rnn.dtype)
        spikes, neuron_steps = 0.0, 0.0
        parts, rows = [], []
        for L, idx in _group_by_length(tokens, lengths):
            if L == 0:
                continue
            # bool spikes: the C++ layer reads them as they are (a float copy would be [U, T, vocab])
            x = word_spikes(tokens[idx, :L], self.vocab_size, self.steps_per_word, torch.bool)
            out = self.rnn(x)
            parts.append(out.y[:, -1])
            rows.append(idx)
            z = out.z.detach()
            spikes += float(z.sum())
            neuron_steps += float(z.numel())
        if parts:  # one scatter, so that autograd sees every group
            e = e.index_copy(0, torch.cat(rows), torch.cat(parts))
        return e, spikes, neuron_steps


class LSTMEncoder(nn.Module):
    """The non-spiking baseline: an LSTM reading one one-hot word per step; the encoding is its hidden
    state after the last word. ``forward`` as :class:`SpikingEncoder` (spike counts 0)."""

    def __init__(self, vocab_size: int, hidden: int, *, seed: int = 0, dtype: torch.dtype = torch.float32):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.lstm = nn.LSTM(vocab_size, hidden, batch_first=True, dtype=dtype)
        self.vocab_size, self.n = int(vocab_size), int(hidden)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor):
        e = torch.zeros(tokens.shape[0], self.n, dtype=self.lstm.weight_ih_l0.dtype)
        parts, rows = [], []
        for L, idx in _group_by_length(tokens, lengths):
            if L == 0:
                continue
            x = word_spikes(tokens[idx, :L], self.vocab_size, 1, e.dtype)
            _, (h, _) = self.lstm(x)
            parts.append(h[-1])
            rows.append(idx)
        if parts:
            e = e.index_copy(0, torch.cat(rows), torch.cat(parts))
        return e, 0.0, 0.0


def _mlp(sizes: Sequence[int], gen: torch.Generator, dtype) -> nn.ModuleList:
    layers = nn.ModuleList()
    for a, b in zip(sizes[:-1], sizes[1:]):
        lin = nn.Linear(a, b, dtype=dtype)
        _init_linear(lin, gen)
        layers.append(lin)
    return layers


_MIN_SCALE = 1e-6  # a trained scale stays positive


def quantized_relu(x: torch.Tensor, scale, levels: int) -> torch.Tensor:
    """The quantization-clip-floor-shift activation (QCFS; Bu et al. 2022, "Optimal ANN-SNN conversion
    for high-accuracy and ultra-low-latency spiking neural networks", ICLR):
    ``scale * clamp(floor(levels * x / scale + 1/2), 0, levels) / levels``, what a non-leaky
    integrate-and-fire unit of threshold ``scale`` that starts at half its threshold passes on in
    ``levels`` steps of constant input ``x`` (its spike count times ``scale / levels``).

    ``x``: a floating tensor of any shape; ``scale``: a finite number > 0, or a scalar tensor
    (trainable: its gradient is that of the clip and of the rounding offset; a value that training
    pushed below 1e-6 counts as 1e-6); ``levels``: int in 1 .. 2**24. Other values raise a TypeError /
    ValueError naming them. The floor has a straight-through gradient, so ``d out / d x`` is 1 where
    ``0 <= x < scale`` (within half a level) and 0 outside."""
    levels = check_head_levels(levels)
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {type(x).__name__}"
                        + (f" of dtype {x.dtype}" if isinstance(x, torch.Tensor) else ""))
    if not isinstance(scale, torch.Tensor):
        scale = as_positive_real(scale, "scale")
    elif scale.numel() != 1:
        raise ValueError(f"scale must be a scalar tensor, got shape {tuple(scale.shape)}")
    s = torch.as_tensor(scale, dtype=x.dtype).clamp(min=_MIN_SCALE)
    y = x * (levels / s) + 0.5
    y = y + (torch.floor(y) - y).detach()
    return torch.clamp(y, 0.0, float(levels)) * (s / levels)


def _init_linear(lin: nn.Linear, gen: torch.Generator) -> None:
    """He-uniform weights, zero bias, from ``gen`` (torch's default init draws from the global RNG)."""
    bound = math.sqrt(6.0 / lin.in_features)
    with torch.no_grad():
        lin.weight.copy_((torch.rand(lin.weight.shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound)
        if lin.bias is not None:
            lin.bias.zero_()


class RelationalNetwork(nn.Module):
    """The Relational Network of the module docstring.

    Parameters
    ----------
    vocab_size : int
        V, the input channels and answer classes (``len(BabiData.vocab)``; index 0 is padding).
    encoder : {"ahp", "lif", "alif", "lstm"}
        Sentence and question encoders: spiking (``n_encoder`` neurons; "ahp"/"alif": half LIF, half
        adaptive) or LSTM (``n_encoder`` hidden units).
    n_encoder : int
        Neurons (units) per encoder (the authors: 200).
    max_sentences : int
        S, the most sentences of a story (the paper: 20); recency tags are S wide.
    g_layers, f_layers : sequences of int
        Widths of g's ReLU layers (the authors: 4 x 256) and of f's hidden ReLU layers.
    steps_per_word : int
        Steps each word is held (the paper: 10).
    position_tags : bool
        Append the recency one-hot to each sentence encoding.
    encoder_options : dict
        Extra :class:`~ahpsim.torch.SpikingRNN` arguments of the spiking encoders (over
        :data:`RELNET_ENCODER`), plus ``tau_trace``.
    vocab : list of str, optional
        The words by index (``BabiData.vocab``), kept with the model to decode answers.
    head_levels : int, optional
        g's and f's hidden units as quantized ReLUs of ``head_levels`` levels with trainable scales
        (:func:`quantized_relu`; parameters ``g_scales`` [len(g_layers)] and ``f_scales``
        [len(f_layers)]) instead of ReLUs: the activations an integrate-and-fire unit of the same scale
        realizes in ``head_levels`` steps (:class:`IFHead` then takes these scales). Default: ReLU.
    """

    def __init__(self, vocab_size: int, encoder: str = "ahp", n_encoder: int = 200, *, max_sentences: int = 20,
                 g_layers: Sequence[int] = (256, 256, 256, 256), f_layers: Sequence[int] = (256, 512),
                 steps_per_word: int = 10, position_tags: bool = True, encoder_options: Optional[dict] = None,
                 vocab: Optional[Sequence[str]] = None, head_levels: Optional[int] = None, seed: int = 0,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        for name, v, lo in (("vocab_size", vocab_size, 2), ("n_encoder", n_encoder, 1),
                            ("max_sentences", max_sentences, 1), ("steps_per_word", steps_per_word, 1)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
        if head_levels is not None:
            check_head_levels(head_levels, "head_levels")
        if encoder not in ENCODER_KINDS:
            raise ValueError(f"encoder must be one of {ENCODER_KINDS}, got {encoder!r}")
        g_layers, f_layers = [int(w) for w in g_layers], [int(w) for w in f_layers]
        if not g_layers or min(g_layers + f_layers + [1]) < 1:
            raise ValueError(f"g_layers needs at least one width >= 1 and f_layers widths >= 1, got "
                             f"{g_layers}, {f_layers}")
        opts = dict(encoder_options or {})
        if vocab is not None:
            vocab = [str(w) for w in vocab]
            if len(vocab) != vocab_size:
                raise ValueError(f"vocab has {len(vocab)} words but vocab_size is {vocab_size}")
        self.vocab = vocab
        self._config = dict(vocab_size=int(vocab_size), encoder=encoder, n_encoder=int(n_encoder),
                            max_sentences=int(max_sentences), g_layers=g_layers, f_layers=f_layers,
                            steps_per_word=int(steps_per_word), position_tags=bool(position_tags),
                            encoder_options=opts, vocab=vocab)
        if head_levels is not None:  # (absent from the configuration of a ReLU head: older checkpoints load)
            self._config["head_levels"] = int(head_levels)
        self.head_levels = None if head_levels is None else int(head_levels)
        self.vocab_size, self.encoder_kind, self.max_sentences = int(vocab_size), encoder, int(max_sentences)
        self.position_tags = bool(position_tags)

        def make_encoder(s):
            if encoder == "lstm":
                if opts:
                    raise ValueError(f"encoder_options apply to spiking encoders only, got {sorted(opts)}")
                return LSTMEncoder(vocab_size, n_encoder, seed=s, dtype=dtype)
            half = n_encoder // 2
            counts = {"ahp": dict(n_lif=n_encoder - half, n_ahp=half), "lif": dict(n_lif=n_encoder),
                      "alif": dict(n_lif=n_encoder - half, n_alif=half)}[encoder]
            return SpikingEncoder(vocab_size, **counts, steps_per_word=steps_per_word, seed=s, dtype=dtype, **opts)

        self.sentence_encoder = make_encoder(seed)
        self.question_encoder = make_encoder(seed + 1)
        gen = torch.Generator().manual_seed(int(seed) + 2)
        d_obj = n_encoder + (max_sentences if position_tags else 0)
        H = g_layers[0]
        self.g_first_i = nn.Linear(d_obj, H, dtype=dtype)
        self.g_first_j = nn.Linear(d_obj, H, bias=False, dtype=dtype)
        self.g_first_q = nn.Linear(n_encoder, H, bias=False, dtype=dtype)
        for lin in (self.g_first_i, self.g_first_j, self.g_first_q):
            _init_linear(lin, gen)
        with torch.no_grad():  # the first layer's fan-in is the whole pair input [o_i, o_j, q]
            s = math.sqrt(d_obj / (2 * d_obj + n_encoder))
            for lin in (self.g_first_i, self.g_first_j):
                lin.weight.mul_(s)
            self.g_first_q.weight.mul_(math.sqrt(n_encoder / (2 * d_obj + n_encoder)))
        self.g = _mlp(g_layers, gen, dtype)
        self.f = _mlp([g_layers[-1]] + f_layers + [vocab_size], gen, dtype)
        if self.head_levels is not None:  # the hidden layers' scales (lambda), set by calibration or training
            self.g_scales = nn.Parameter(torch.ones(len(g_layers), dtype=dtype))
            self.f_scales = nn.Parameter(torch.ones(len(f_layers), dtype=dtype))

    # ------------------------------------------------------------------ serialisation
    def config(self) -> dict:
        return dict(self._config)

    def get_extra_state(self):
        return {"config": self.config(), "class": "RelationalNetwork"}

    def set_extra_state(self, state):
        if state.get("config") != self._config:
            raise ValueError("state_dict was saved from a RelationalNetwork of another configuration; build "
                             "it with RelationalNetwork.from_state_dict")

    @classmethod
    def from_state_dict(cls, state_dict, dtype: Optional[torch.dtype] = None) -> "RelationalNetwork":
        cfg = state_dict["_extra_state"]["config"]
        if dtype is None:
            dtype = state_dict["g_first_i.weight"].dtype
        model = cls(**cfg, dtype=dtype)
        model.load_state_dict(state_dict)
        return model

    @property
    def dtype(self) -> torch.dtype:
        return self.g_first_i.weight.dtype

    # ------------------------------------------------------------------ forward
    def _check(self, batch) -> BabiBatch:
        if not isinstance(batch, BabiBatch):
            raise TypeError(f"batch: expected a BabiBatch, got {type(batch).__name__}")
        story, L, q, Lq = batch
        if story.dim() != 3 or q.dim() != 2 or L.shape != (story.shape[0],) or Lq.shape != (q.shape[0],) \
                or q.shape[0] != story.shape[0]:
            raise ValueError(f"batch: expected story [B, S, W], story_lengths [B], question [B, Wq], "
                             f"question_lengths [B]; got {tuple(story.shape)}, {tuple(L.shape)}, {tuple(q.shape)}, "
                             f"{tuple(Lq.shape)}")
        if story.shape[1] > self.max_sentences:
            raise ValueError(f"batch: stories of {story.shape[1]} sentences, the network takes at most "
                             f"{self.max_sentences} (max_sentences)")
        for name, t in (("story", story), ("question", q)):
            if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.vocab_size):
                raise ValueError(f"batch.{name}: word indices must lie in 0..{self.vocab_size - 1}, got "
                                 f"{int(t.min())}..{int(t.max())}")
        return batch

    def encode_story(self, story: torch.Tensor, lengths: torch.Tensor):
        """Objects [B, S, d_obj] (zeros for absent sentences) and the encoder's spike counts. The
        encoder runs once per distinct sentence of the batch."""
        B, S, W = story.shape
        present = torch.arange(S)[None, :] < lengths[:, None]
        rows = story[present]  # [M, W]
        uniq, inv = torch.unique(rows, dim=0, return_inverse=True)
        e_u, spk, ns = self.sentence_encoder(uniq, (uniq > 0).sum(1))
        e = torch.zeros(B, S, e_u.shape[1], dtype=e_u.dtype)
        e = e.index_put((present.nonzero(as_tuple=True)), e_u[inv])
        if self.position_tags:
            recency = (lengths[:, None] - 1 - torch.arange(S)[None, :]).clamp(min=0)
            tags = torch.nn.functional.one_hot(recency, self.max_sentences).to(e.dtype) * present[:, :, None]
            e = torch.cat([e, tags], 2)
        return e, spk, ns

    def forward(self, batch: BabiBatch) -> RelNetOutput:
        """``batch`` -> :class:`RelNetOutput` (``logits`` [B, V]). Raises TypeError / ValueError for a
        batch of the wrong kind, shape or word range."""
        story, L, q, Lq = self._check(batch)
        B = story.shape[0]
        obj, spk_s, ns_s = self.encode_story(story, L)
        uq, inv_q = torch.unique(q, dim=0, return_inverse=True)
        eq_u, spk_q, ns_q = self.question_encoder(uq, (uq > 0).sum(1))
        eq = eq_u[inv_q]
        b, i, j = pair_indices(L, story.shape[1])
        h = self.g_first_i(obj)[b, i] + self.g_first_j(obj)[b, j] + self.g_first_q(eq)[b]
        h = self.activation(h, "g", 0)
        for k, lin in enumerate(self.g, start=1):
            h = self.activation(lin(h), "g", k)
        # the sum over pairs (Santoro et al.), scaled by a fixed 1 / S: typical stories give O(1) inputs to f
        x = torch.zeros(B, h.shape[1], dtype=h.dtype).index_add(0, b, h) * (1.0 / self.max_sentences)
        for k, lin in enumerate(self.f):
            x = lin(x)
            if k < len(self.f) - 1:
                x = self.activation(x, "f", k)
        return RelNetOutput(x, spk_s + spk_q, ns_s + ns_q, int(b.numel()))

    def activation(self, x: torch.Tensor, stage: str, k: int) -> torch.Tensor:
        """Hidden layer ``k`` of ``stage`` ("g" or "f"): ReLU, or :func:`quantized_relu` at the layer's
        scale with ``head_levels``."""
        if self.head_levels is None:
            return torch.relu(x)
        return quantized_relu(x, (self.g_scales if stage == "g" else self.f_scales)[k], self.head_levels)

    def head_scales(self) -> Optional[tuple[list[float], list[float]]]:
        """``(lam_g, lam_f)``: the trained scales of g's and f's hidden layers (None for a ReLU head)."""
        if self.head_levels is None:
            return None
        return ([float(v) for v in self.g_scales.detach().clamp(min=_MIN_SCALE)],
                [float(v) for v in self.f_scales.detach().clamp(min=_MIN_SCALE)])

    def objective(self, batch: BabiBatch, answers: torch.Tensor, cfg=None):
        """Training/evaluation hook of :class:`~ahpsim.torch.Trainer`: ``(loss, predictions [B], spikes,
        neuron_steps)``: the cross-entropy of the answers, the predicted answer indices, and the
        encoders' spikes and neuron-steps (reported, not regularised; ``cfg`` is not used)."""
        out = self(batch)
        loss = torch.nn.functional.cross_entropy(out.logits, answers)
        return loss, out.logits.detach().argmax(-1), out.spikes, out.neuron_steps

    def predict(self, batch: BabiBatch) -> torch.Tensor:
        """Answer indices [B] (argmax of the logits)."""
        with torch.no_grad():
            return self(batch).logits.argmax(-1)


def decode_answers(logits_or_indices: torch.Tensor, vocab: Sequence[str]) -> list[str]:
    """Answer words: ``vocab[argmax(logits)]`` for logits [B, V], or ``vocab[i]`` for indices [B]."""
    t = torch.as_tensor(logits_or_indices)
    if t.dim() == 2:
        if t.shape[1] != len(vocab):
            raise ValueError(f"logits have {t.shape[1]} classes but vocab has {len(vocab)} words")
        t = t.argmax(-1)
    if t.dim() != 1:
        raise ValueError(f"expected logits [B, V] or indices [B], got shape {tuple(t.shape)}")
    return [vocab[int(k)] for k in t]


def _linear_np(m: nn.Linear, dtype=None):
    W = m.weight.detach().cpu().numpy().copy()
    b = None if m.bias is None else m.bias.detach().cpu().numpy().copy()
    if dtype is not None:
        W, b = W.astype(dtype), None if b is None else b.astype(dtype)
    return W, b


class KernelRelationalNetwork(DeployedRelationalNetwork):
    """A trained spiking :class:`RelationalNetwork` deployed on the C++ kernel: both encoders exported
    with :func:`~ahpsim.torch.to_network` (an ``ahpsim.Network`` each, the model's dtype), g and f
    evaluated with numpy in the same dtype (:class:`ahpsim.relnet.DeployedRelationalNetwork`, which runs
    without torch; ``save(dir)`` writes it for :func:`ahpsim.relnet.load_relnet`). ``__call__(batch)``
    returns a :class:`RelNetOutput` (logits as a numpy array) and, with ``return_spikes=True``, a dict
    ``{("s" | "q", word ids...): z bool [T, N]}`` of every distinct sentence's and question's spikes.

    The spikes equal the model's (the kernel is the training forward pass's arithmetic); the logits agree
    with the model's to float rounding (numpy's and torch's matrix products sum in different orders).

    ``head``: an :class:`IFHead` runs g and f as rate-coded integrate-and-fire layers on the kernel
    instead (its statistics of the last call in ``last_head_stats``). ``engine="loihi"``: the encoders
    run on the Loihi 1 integer engine (``ahpsim.loihi.quantize``, threshold mantissa ``vth_mant``);
    their encodings are the integer readouts divided by their scale.
    """

    def __init__(self, model: RelationalNetwork, n_threads: int = 1, head: Optional["IFHead"] = None,
                 engine: str = "float", vth_mant: int = 508):
        from .export import to_network

        if not isinstance(model, RelationalNetwork):
            raise TypeError(f"model: expected a RelationalNetwork, got {type(model).__name__}")
        if model.encoder_kind == "lstm":
            raise ValueError("an LSTM-encoder RelationalNetwork has no spiking encoders to deploy")
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
        self.model_config = model.config()
        super().__init__(to_network(model.sentence_encoder.rnn, n_threads=n_threads),
                         to_network(model.question_encoder.rnn, n_threads=n_threads),
                         [_linear_np(model.g_first_i), _linear_np(model.g_first_j), _linear_np(model.g_first_q)],
                         [_linear_np(m) for m in model.g], [_linear_np(m) for m in model.f],
                         vocab_size=model.vocab_size, steps_per_word=model.sentence_encoder.steps_per_word,
                         max_sentences=model.max_sentences, position_tags=model.position_tags, vocab=model.vocab,
                         n_threads=n_threads, engine=engine, vth_mant=vth_mant, head=head,
                         head_levels=model.head_levels, head_scales=model.head_scales())

    def __call__(self, batch: BabiBatch, return_spikes: bool = False):
        story, L, q, Lq = (np.asarray(t) for t in batch)
        out = self.run(story, L, q, Lq, return_spikes=return_spikes)
        if return_spikes:
            res, spk = out
            return RelNetOutput(*res), spk
        return RelNetOutput(*out)


@torch.no_grad()
def relu_activations(model: RelationalNetwork, batch: BabiBatch) -> dict:
    """The ReLU activations of g (one array [P, width] per layer, over all pairs of ``batch``) and of
    f's hidden layers ([B, width] each): ``{"g": [...], "f": [...]}`` (float64 numpy)."""
    story, L, q, Lq = model._check(batch)
    obj, _, _ = model.encode_story(story, L)
    uq, inv_q = torch.unique(q, dim=0, return_inverse=True)
    eq = model.question_encoder(uq, (uq > 0).sum(1))[0][inv_q]
    b, i, j = pair_indices(L, story.shape[1])
    h = model.g_first_i(obj)[b, i] + model.g_first_j(obj)[b, j] + model.g_first_q(eq)[b]
    h = model.activation(h, "g", 0)
    acts = {"g": [h.double().numpy()], "f": []}
    for k, lin in enumerate(model.g, start=1):
        h = model.activation(lin(h), "g", k)
        acts["g"].append(h.double().numpy())
    x = torch.zeros(story.shape[0], h.shape[1], dtype=h.dtype).index_add(0, b, h) * (1.0 / model.max_sentences)
    for k, lin in enumerate(model.f[:-1]):
        x = model.activation(lin(x), "f", k)
        acts["f"].append(x.double().numpy())
    return acts


def activation_scale(a: np.ndarray, percentile: float) -> float:
    """An integrate-and-fire layer's scale (``lambda``): the ``percentile`` of the positive ReLU
    activations ``a`` (1 where none is positive)."""
    pos = a[a > 0]
    return float(np.percentile(pos, percentile)) if pos.size else 1.0


class IFHead(_IFHeadNp):
    """g and f of a trained :class:`RelationalNetwork` as rate-coded spiking layers on the C++ kernel
    (:class:`ahpsim.relnet.IFHead`, described there), calibrated on ``calibration`` (take it from the
    training set): ``lambda[l]`` is the ``percentile`` of layer ``l``'s positive ReLU activations.
    ``engine="loihi"``: g's later layers and f on the Loihi 1 integer engine.

    Defaults (percentile 99, every unit starting at half its threshold), chosen on validation
    questions of the trained full network (``benchmarks/runs/babi-ahp``, 100 steps): the spiking head
    gives the ReLU head's answer for 96.5 % of 200 of them, against 91.0 % with percentile 99.9 and no
    initial potential (docs/babi.md); g and f fire about 1.5x and 2.6x as often.

    ``f_percentile`` (default: ``percentile``) sets the scales of f's hidden layers apart from g's (an f
    of the readout alone has none). A low percentile gives large weights, which the integer engine may
    not hold (a ValueError names the stage). ``reset="zero"`` and ``drain``: see :class:`ahpsim.relnet.IFHead`.

    A model trained with ``head_levels`` (quantized ReLUs, :func:`quantized_relu`) carries its scales:
    they are the head's, ``calibration`` is not used (None will do), ``percentile`` and ``f_percentile``
    are refused (ValueError), and ``steps`` defaults to ``head_levels``, where a unit of g's first layer
    (constant input current, starting at half its threshold: ``v_init`` 0.5) passes on exactly the
    model's activation. Otherwise ``steps`` defaults to 50 and ``percentile`` to 99. A ``model`` of
    another class or a ``calibration`` that is not a :class:`BabiBatch` raises a TypeError."""

    def __init__(self, model: RelationalNetwork, calibration: Optional[BabiBatch] = None, steps: Optional[int] = None,
                 percentile: Optional[float] = None, chunk: int = 512, n_threads: int = 1, engine: str = "float",
                 vth_mant: int = 508, v_init: float = 0.5, f_percentile: Optional[float] = None,
                 reset: str = "subtract", drain: bool = False):
        if not isinstance(model, RelationalNetwork):
            raise TypeError(f"model: expected a RelationalNetwork, got {type(model).__name__}")
        if calibration is not None and not isinstance(calibration, BabiBatch):
            raise TypeError(f"calibration: expected a BabiBatch of training questions or None, got "
                            f"{type(calibration).__name__}")
        trained = model.head_scales()
        if steps is None:
            steps = 50 if trained is None else model.head_levels
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
        if trained is not None:
            if percentile is not None or f_percentile is not None:
                raise ValueError("percentile and f_percentile apply to a ReLU head; this model's head was trained "
                                 f"with head_levels={model.head_levels} and carries its scales")
            lam_g, lam_f = trained
            self.percentile = self.f_percentile = None
        else:
            if calibration is None:
                raise ValueError("calibration: a ReLU head's scales are percentiles of its activations on "
                                 "calibration questions (take them from the training set); got None")
            percentile = 99.0 if percentile is None else percentile
            for name, p in (("percentile", percentile),
                            ("f_percentile", percentile if f_percentile is None else f_percentile)):
                if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, float, np.integer, np.floating)):
                    raise TypeError(f"{name} must be a real number in (0, 100], got {type(p).__name__} {p!r}")
                if not 0 < p <= 100:
                    raise ValueError(f"{name} must be in (0, 100], got {p!r}")
            self.percentile = float(percentile)
            self.f_percentile = self.percentile if f_percentile is None else float(f_percentile)
            acts = relu_activations(model, calibration)
            lam_g = [activation_scale(a, self.percentile) for a in acts["g"]]
            lam_f = [activation_scale(a, self.f_percentile) for a in acts["f"]]
        super().__init__(model.g_first_i.out_features, [_linear_np(m, np.float64) for m in model.g],
                         [_linear_np(m, np.float64) for m in model.f], lam_g, lam_f, model.max_sentences, steps=steps,
                         chunk=chunk, n_threads=n_threads, engine=engine, vth_mant=vth_mant, v_init=v_init,
                         reset=reset, drain=drain)
