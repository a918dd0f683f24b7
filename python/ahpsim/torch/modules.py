"""``torch.nn`` modules over :mod:`ahpsim.torch.functional`.

:class:`SpikingRNN` is the LSNN-style network of the paper: one recurrent layer of ``n_lif`` LIF,
``n_ahp`` AHP and ``n_alif`` ALIF neurons (in that order), input and recurrent weights (optional
per-synapse delays and sparse masks) and a leaky readout.  Everything needed to rebuild it (the
constructor arguments and per-neuron time constants) travels in ``state_dict()`` as extra state;
masks and delays are buffers.
"""

from __future__ import annotations

import copy
import math
from typing import NamedTuple, Optional

import numpy as np
import torch
from torch import nn

from . import functional as F

__all__ = ["SpikingRNN", "RNNOutput", "NEURON_LIF", "NEURON_AHP", "NEURON_ALIF", "surrogate_from_config",
           "AHP_BETA_PAPER"]

# The per-spike AHP charge of the paper's sMNIST network, in units of the threshold (see ahpsim.AHP).
AHP_BETA_PAPER = 0.756 / 64

NEURON_LIF, NEURON_AHP, NEURON_ALIF = 0, 1, 2

_SURROGATES = {"triangle": F.Triangle, "fast_sigmoid": F.FastSigmoid, "gaussian": F.Gaussian}


def surrogate_from_config(cfg) -> F.Surrogate:
    if isinstance(cfg, F.Surrogate):
        return cfg
    if cfg is None:
        return F.Triangle()
    if isinstance(cfg, (int, float)):
        return F.Triangle(float(cfg))
    cfg = dict(cfg)
    kind = cfg.pop("kind", "triangle")
    return _SURROGATES[kind](**cfg)


def _surrogate_to_config(s: F.Surrogate):
    for name, cls in _SURROGATES.items():
        if type(s) is cls:
            d = {k: getattr(s, k) for k in s.__dataclass_fields__ if k != "smooth_forward"}
            d["kind"] = name
            return d
    return None  # custom surrogate: not serialisable, the default is used on reload


class RNNOutput(NamedTuple):
    y: torch.Tensor  # [B, T, n_out] readout traces
    z: torch.Tensor  # [B, T, N] spikes of the recurrent layer


def _per_neuron(value, n, name, lo=None, strict=False):
    """``value`` broadcast to ``n`` finite float64 values; ``lo``: the smallest value allowed (``strict``:
    values must exceed it). The same ranges as the kernel's models, plus v_th > 0 (the surrogate
    gradient is normalised by the threshold)."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a number or {n} numbers, got {value!r}") from None
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise ValueError(f"{name}: expected a scalar or {n} values, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: values must be finite")
    if lo is not None and (np.any(arr <= lo) if strict else np.any(arr < lo)):
        raise ValueError(f"{name}: values must be {'>' if strict else '>='} {lo}, got {arr.min()}")
    return arr


def _count(value, name, lo):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
    return int(value)


_TAUS = ("tau_m", "tau_ahp", "tau_a", "tau_out")


def _tau_property(name: str) -> property:
    """A time constant as a float64 numpy array ([N] or [n_out]); with ``train_tau`` it reads and writes
    the parameter ``log_<name>`` (entries without that time constant stay 0)."""

    def get(self):
        p = self._parameters.get("log_" + name)
        if p is None:
            return self.__dict__["_" + name]
        return np.where(self._tau_mask[name], np.exp(p.detach().cpu().double().numpy()), 0.0)

    def set(self, value):
        arr = np.asarray(value, np.float64)
        self.__dict__["_" + name] = arr
        p = self._parameters.get("log_" + name) if "_parameters" in self.__dict__ else None
        if p is not None:
            with torch.no_grad():
                p.copy_(torch.as_tensor(np.log(np.where(arr > 0, arr, 1.0)), dtype=p.dtype))

    return property(get, set, doc=f"{name} (steps' time unit); trainable with train_tau")


class SpikingRNN(nn.Module):
    """Recurrent spiking network with LIF, AHP and ALIF neurons and a leaky readout.

    Parameters (all times in units of ``dt``-steps' time unit, ms by default):
      tau_m, v_th: membrane time constant and threshold (scalar or one per recurrent neuron);
      tau_ahp, beta_ahp: AHP decay and per-spike charge of c (absolute units; the authors' sMNIST chip
        network: 0.756 / 64 = 0.0118 v_th, :data:`AHP_BETA_PAPER`, see :class:`ahpsim.AHP`);
      tau_a, beta_alif: ALIF adaptation decay and strength;
      n_ref, reset ("subtract" | "zero"): refractory steps, reset mode;
      refractory_mode: "block" (default: during the n_ref steps only spikes are blocked, v integrates)
        or "clamp" (v is also held at 0, as on Loihi and in NEST); settable after loading a checkpoint;
      tau_out: readout decay (0 = no carry-over);
      rec_delay (>= 1), in_delay (>= 0), out_delay (>= 0): int or int array [post, pre];
      p_in, p_rec, p_out: connection probabilities of the random sparse masks (or give masks);
      bias, out_bias: learnable biases of the recurrent neurons / readouts;
      train_tau: learn tau_m, tau_ahp, tau_a and tau_out (parameters ``log_tau_*``, float64; the C++
        layer kernel computes their gradients; the ``"torch"`` backend does not support it).
    """

    def __init__(self, n_in: int, n_out: int, n_lif: int = 0, n_ahp: int = 0, n_alif: int = 0, *,
                 tau_m=20.0, v_th=1.0, tau_ahp=700.0, beta_ahp=AHP_BETA_PAPER, tau_a=700.0, beta_alif=0.756,
                 n_ref: int = 0, reset: str = "subtract", refractory_mode: str = "block", tau_out=20.0,
                 rec_delay=1, in_delay=0, out_delay: int = 1,
                 p_in: float = 1.0, p_rec: float = 1.0, p_out: float = 1.0,
                 in_mask=None, rec_mask=None, out_mask=None, self_connections: bool = False,
                 bias: bool = False, out_bias: bool = True, dt: float = 1.0,
                 surrogate=None, detach_reset: bool = False,
                 w_in_scale: float = 1.0, w_rec_scale: float = 1.0, w_out_scale: float = 1.0,
                 loihi_grid: Optional[int] = None, train_tau: bool = False,
                 seed: Optional[int] = 0, dtype: torch.dtype = torch.float32):
        super().__init__()
        self._tau_mask: dict = {}
        n_in, n_out = _count(n_in, "n_in", 1), _count(n_out, "n_out", 1)
        n_lif, n_ahp, n_alif = (_count(n_lif, "n_lif", 0), _count(n_ahp, "n_ahp", 0), _count(n_alif, "n_alif", 0))
        n_ref = _count(n_ref, "n_ref", 0)
        N = n_lif + n_ahp + n_alif
        if N <= 0:
            raise ValueError("the recurrent layer needs at least one neuron (n_lif + n_ahp + n_alif >= 1)")
        if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
            raise ValueError(f"dt must be a finite number > 0, got {dt!r}")
        for name, p in (("p_in", p_in), ("p_rec", p_rec), ("p_out", p_out)):
            if not (isinstance(p, (int, float)) and 0.0 <= p <= 1.0):
                raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
        for name, flag in (("bias", bias), ("out_bias", out_bias), ("self_connections", self_connections),
                           ("detach_reset", detach_reset), ("train_tau", train_tau)):
            if not isinstance(flag, (bool, np.bool_)):  # a string "False" would count as true
                raise ValueError(f"{name} must be True or False, got {flag!r}")
        if not isinstance(reset, str) or reset not in ("subtract", "zero"):
            raise ValueError(f"reset must be 'subtract' or 'zero', not {reset!r}")
        reset = str(reset)
        self.n_in, self.n_out, self.n_lif, self.n_ahp, self.n_alif, self.N = n_in, n_out, n_lif, n_ahp, n_alif, N
        self.n_ref, self.reset, self.dt, self.detach_reset = int(n_ref), reset, float(dt), bool(detach_reset)
        self.refractory_mode = refractory_mode
        self.surrogate = surrogate_from_config(surrogate)
        self.backend = "auto"
        kinds = np.array([NEURON_LIF] * n_lif + [NEURON_AHP] * n_ahp + [NEURON_ALIF] * n_alif)
        is_ahp, is_alif = kinds == NEURON_AHP, kinds == NEURON_ALIF
        self.tau_m = _per_neuron(tau_m, N, "tau_m", 0.0)
        self.v_th_value = _per_neuron(v_th, N, "v_th", 0.0, strict=True)
        self.tau_ahp = np.where(is_ahp, _per_neuron(tau_ahp, N, "tau_ahp", 0.0), 0.0)
        self.beta_ahp = np.where(is_ahp, _per_neuron(beta_ahp, N, "beta_ahp"), 0.0)
        self.tau_a = np.where(is_alif, _per_neuron(tau_a, N, "tau_a", 0.0), 0.0)
        self.beta_alif = np.where(is_alif, _per_neuron(beta_alif, N, "beta_alif"), 0.0)
        self.tau_out = _per_neuron(tau_out, n_out, "tau_out", 0.0)
        self.out_delay = int(out_delay)
        if self.out_delay < 0:
            raise ValueError("out_delay must be >= 0")
        self._init_kwargs = dict(
            n_in=n_in, n_out=n_out, n_lif=n_lif, n_ahp=n_ahp, n_alif=n_alif, n_ref=self.n_ref, reset=reset,
            out_delay=self.out_delay, bias=bool(bias), out_bias=bool(out_bias), dt=self.dt,
            detach_reset=self.detach_reset, self_connections=bool(self_connections), loihi_grid=None,
            train_tau=bool(train_tau))
        self.train_tau = bool(train_tau)
        self.loihi_grid = None
        if loihi_grid is not None:
            self.set_loihi_grid(loihi_grid)

        gen = torch.Generator().manual_seed(0 if seed is None else int(seed))
        rng = np.random.default_rng(None if seed is None else int(seed))

        def mask(given, shape, p, diag_off=False):
            if given is not None:
                m = torch.as_tensor(np.asarray(given), dtype=torch.bool)
                if tuple(m.shape) != shape:
                    raise ValueError(f"mask shape {tuple(m.shape)} != {shape}")
            else:
                m = torch.as_tensor(rng.random(shape) < p) if p < 1.0 else torch.ones(shape, dtype=torch.bool)
            if diag_off:
                m = m & ~torch.eye(shape[0], dtype=torch.bool)
            return m

        self.register_buffer("in_mask", mask(in_mask, (N, n_in), p_in))
        self.register_buffer("rec_mask", mask(rec_mask, (N, N), p_rec, diag_off=not self_connections))
        self.register_buffer("out_mask", mask(out_mask, (n_out, N), p_out))

        def delays(d, shape, lo, name):
            arr = np.asarray(d, dtype=np.int64)
            arr = np.broadcast_to(arr, shape).copy() if arr.ndim == 0 else arr
            if arr.shape != shape or arr.min() < lo:
                raise ValueError(f"{name}: expected ints >= {lo} of shape {shape}")
            return torch.as_tensor(arr)

        self.register_buffer("rec_delay", delays(rec_delay, (N, N), 1, "rec_delay"))
        self.register_buffer("in_delay", delays(in_delay, (N, n_in), 0, "in_delay"))

        # LSNN-style initialisation: N(0, 1/fan_in), scaled; masks applied at use.
        fan_in = max(1.0, float(self.in_mask.sum(1).float().mean()))
        fan_rec = max(1.0, float(self.rec_mask.sum(1).float().mean()))
        fan_out = max(1.0, float(self.out_mask.sum(1).float().mean()))
        self.w_in = nn.Parameter(torch.randn(N, n_in, generator=gen, dtype=torch.float64).to(dtype)
                                 * (w_in_scale / math.sqrt(fan_in)))
        self.w_rec = nn.Parameter(torch.randn(N, N, generator=gen, dtype=torch.float64).to(dtype)
                                  * (w_rec_scale / math.sqrt(fan_rec)))
        self.w_out = nn.Parameter(torch.randn(n_out, N, generator=gen, dtype=torch.float64).to(dtype)
                                  * (w_out_scale / math.sqrt(fan_out)))
        if self.train_tau:
            # trainable time constants: log(tau) in float64 for the neurons that have the time constant
            for name in _TAUS:
                tau = getattr(self, name)
                self.register_parameter("log_" + name, nn.Parameter(torch.as_tensor(np.log(np.where(tau > 0, tau, 1.0)))))
                self._tau_mask[name] = tau > 0
        self.bias = nn.Parameter(torch.zeros(N, dtype=dtype)) if bias else None
        self.b_out = nn.Parameter(torch.zeros(n_out, dtype=dtype)) if out_bias else None
        with torch.no_grad():
            self.w_in.mul_(self.in_mask)
            self.w_rec.mul_(self.rec_mask)
            self.w_out.mul_(self.out_mask)

    tau_m = _tau_property("tau_m")
    tau_ahp = _tau_property("tau_ahp")
    tau_a = _tau_property("tau_a")
    tau_out = _tau_property("tau_out")

    @property
    def backend(self) -> str:
        """How :meth:`forward` runs the recurrent layer: ``"kernel"`` (the C++ layer kernel: CPU,
        float32/float64, Heaviside forward pass; the exported network's arithmetic), ``"torch"``
        (plain torch tensor operations with the same hand-written BPTT: any device) or ``"auto"``
        (the kernel where it applies, the default). A runtime choice, not saved in ``state_dict``."""
        return self._backend

    @backend.setter
    def backend(self, value: str) -> None:
        if value not in ("auto", "kernel", "torch"):
            raise ValueError(f"backend must be 'auto', 'kernel' or 'torch', not {value!r}")
        self._backend = value

    # ---------------------------------------------------------------- serialisation (state_dict)
    @property
    def refractory_mode(self) -> str:
        """What the n_ref refractory steps do: "block" (spikes only) or "clamp" (v held at 0 too)."""
        return self._refractory_mode

    @refractory_mode.setter
    def refractory_mode(self, mode: str) -> None:
        F._check_refractory_mode(mode)
        self._refractory_mode = str(mode)  # (a numpy string would make checkpoints unreadable with weights_only=True)

    def config(self) -> dict:
        cfg = dict(self._init_kwargs)
        cfg.update(tau_m=self.tau_m.tolist(), v_th=self.v_th_value.tolist(), tau_ahp=self.tau_ahp.tolist(),
                   beta_ahp=self.beta_ahp.tolist(), tau_a=self.tau_a.tolist(), beta_alif=self.beta_alif.tolist(),
                   tau_out=self.tau_out.tolist(), surrogate=_surrogate_to_config(self.surrogate),
                   refractory_mode=self.refractory_mode)
        return cfg

    def get_extra_state(self):
        return {"config": self.config()}

    def set_extra_state(self, state):
        cfg = state["config"]
        if (cfg["n_in"], cfg["n_out"], cfg["n_lif"], cfg["n_ahp"], cfg["n_alif"]) != (
                self.n_in, self.n_out, self.n_lif, self.n_ahp, self.n_alif):
            raise ValueError("state_dict belongs to a network of another size")
        F._check_refractory_mode(cfg.get("refractory_mode", "block"))  # before anything changes
        self.tau_m = np.asarray(cfg["tau_m"], np.float64)
        self.v_th_value = np.asarray(cfg["v_th"], np.float64)
        self.tau_ahp = np.asarray(cfg["tau_ahp"], np.float64)
        self.beta_ahp = np.asarray(cfg["beta_ahp"], np.float64)
        self.tau_a = np.asarray(cfg["tau_a"], np.float64)
        self.beta_alif = np.asarray(cfg["beta_alif"], np.float64)
        self.tau_out = np.asarray(cfg["tau_out"], np.float64)
        self.n_ref, self.reset, self.dt = int(cfg["n_ref"]), cfg["reset"], float(cfg["dt"])
        self.out_delay, self.detach_reset = int(cfg["out_delay"]), bool(cfg["detach_reset"])
        self.refractory_mode = cfg.get("refractory_mode", "block")  # (checkpoints before the option: block)
        if cfg.get("surrogate") is not None:
            self.surrogate = surrogate_from_config(cfg["surrogate"])
        self._init_kwargs.update({k: cfg[k] for k in self._init_kwargs if k in cfg})
        self.loihi_grid = cfg.get("loihi_grid")
        for name in _TAUS:  # the masks of trainable time constants follow the saved values
            if name in self._tau_mask:
                self._tau_mask[name] = getattr(self, name) > 0

    @classmethod
    def from_state_dict(cls, state_dict, dtype: Optional[torch.dtype] = None) -> "SpikingRNN":
        """Rebuilds a network from its ``state_dict()`` alone."""
        cfg = copy.deepcopy(state_dict["_extra_state"]["config"])
        sur = cfg.pop("surrogate", None)
        dtype = dtype or state_dict["w_rec"].dtype
        net = cls(**cfg, surrogate=sur, dtype=dtype)
        net.load_state_dict(state_dict)
        return net

    # ---------------------------------------------------------------- constants
    @property
    def dtype(self):
        return self.w_rec.dtype

    def neuron_kinds(self) -> np.ndarray:
        return np.array([NEURON_LIF] * self.n_lif + [NEURON_AHP] * self.n_ahp + [NEURON_ALIF] * self.n_alif)

    def layer_constants(self) -> F.LayerConstants:
        dtype, dev = self.dtype, self.w_rec.device

        def t(a):
            return torch.as_tensor(np.asarray(a, np.float64)).to(dtype=dtype, device=dev)

        lo, hi = int(self.rec_delay.min()), int(self.rec_delay.max())  # (torch.unique sorts: 6 ms a batch)
        delays = [lo] if lo == hi else sorted(int(d) for d in torch.unique(self.rec_delay).tolist())
        return F.LayerConstants(
            alpha=self._decay("tau_m"), v_th=t(self.v_th_value),
            rho_c=self._decay("tau_ahp"), beta_c=t(self.beta_ahp),
            rho_a=self._decay("tau_a"), beta_a=t(self.beta_alif),
            n_ref=self.n_ref, reset=self.reset, detach_reset=self.detach_reset, refractory_mode=self.refractory_mode,
            has_ahp=self.n_ahp > 0, has_alif=self.n_alif > 0, delays=tuple(delays), surrogate=self.surrogate)

    def kappa(self) -> torch.Tensor:
        return self._decay("tau_out")

    def _decay(self, name: str) -> torch.Tensor:
        """``exp(-dt / tau)`` of a time constant, in the model dtype; differentiable w.r.t. ``log_<name>``
        with ``train_tau`` (computed in float64 as :func:`functional.decay` does, then rounded)."""
        dev = self.w_rec.device
        p = self._parameters.get("log_" + name) if self.train_tau else None
        if p is None:
            return F.decay(getattr(self, name), self.dt, self.dtype).to(dev)
        d = torch.exp(-self.dt / torch.exp(p))
        mask = torch.as_tensor(self._tau_mask[name], device=p.device)
        return torch.where(mask, d, torch.zeros_like(d)).to(dtype=self.dtype, device=dev)

    def effective_weights(self):
        """(W_in, W_rec, W_out) with the masks applied ([post, pre]); on the Loihi weight grid (straight-
        through gradient) when :meth:`set_loihi_grid` is on."""
        W = self.w_in * self.in_mask, self.w_rec * self.rec_mask, self.w_out * self.out_mask
        if self.loihi_grid is None:
            return W
        return _loihi_fake_quant(self, *W)

    def set_loihi_grid(self, vth_mant: Optional[int]) -> "SpikingRNN":
        """Train for the Loihi integer engine (``ahpsim.loihi.quantize(..., vth_mant=vth_mant)``): the
        forward pass uses the weights that quantization will give (8-bit mantissa, one exponent per
        projection; gradients pass straight through), and ``None`` switches it off. Time constants
        and AHP strengths are not changed here: :func:`ahpsim.torch.loihi_aware` does both."""
        if vth_mant is not None:
            vth_mant = int(vth_mant)
            if not 1 <= vth_mant <= 131071:
                raise ValueError(f"vth_mant must be in [1, 131071], got {vth_mant}")
            for s in _pop_slices(self):
                v = self.v_th_value[s]
                if v.size and np.ptp(v) > 0:
                    raise ValueError("the Loihi weight grid needs one v_th per population")
        self.loihi_grid = vth_mant
        self._init_kwargs["loihi_grid"] = vth_mant
        return self

    def to_network(self, dtype: Optional[str] = None, n_threads: int = 1):
        """The same network as an :class:`ahpsim.Network` (:func:`ahpsim.torch.to_network`; ``dtype``
        defaults to the model's)."""
        from .export import to_network

        return to_network(self, dtype=dtype, n_threads=n_threads)

    @torch.no_grad()
    def quantize_(self, step: float = 2.0 ** -12) -> "SpikingRNN":
        """Rounds all weights/biases to multiples of ``step`` (exactly representable sums: float32
        accumulation is then order-independent, so torch and the kernel agree bit for bit).

        Raises ``ValueError`` unless ``step`` is a finite number >= the smallest normal number of the
        weights' dtype (float32: 1.2e-38; a smaller step underflows) that leaves every weight / step
        finite."""
        params = list(self.parameters())
        if isinstance(step, bool) or not isinstance(step, (int, float, np.floating)) or not math.isfinite(step):
            raise ValueError(f"step must be a finite number > 0, got {step!r}")
        for p in params:
            fi = torch.finfo(p.dtype)
            if not step >= fi.tiny:
                raise ValueError(f"step must be >= {fi.tiny:.3g} (the smallest normal {p.dtype} number), got {step!r}")
            if p.numel() and not bool(torch.isfinite(p.detach().abs().max() / step)):
                raise ValueError(f"step {step!r} is too small for weights of up to "
                                 f"{float(p.detach().abs().max()):.3g} in {p.dtype}")
        for p in params:
            p.copy_(torch.round(p / step) * step)
        return self

    # ---------------------------------------------------------------- forward
    def input_current(self, x_tm: torch.Tensor, W_in: torch.Tensor) -> torch.Tensor:
        """``E[t] = sum_i W_in[:, i] x_i[t - d_i]`` for time-major ``x_tm`` [T, B, n_in]."""
        T = x_tm.shape[0]
        ds = torch.unique(self.in_delay).tolist()
        if len(ds) == 1:
            d = int(ds[0])
            E = x_tm @ W_in.t()
            if d:
                E = torch.cat([E.new_zeros((min(d, T),) + E.shape[1:]), E[: max(T - d, 0)]], 0)
            return E
        E = None
        for d in ds:
            d = int(d)
            Wd = W_in * (self.in_delay == d)
            xs = x_tm if d == 0 else torch.cat([x_tm.new_zeros((min(d, T),) + x_tm.shape[1:]), x_tm[: max(T - d, 0)]], 0)
            part = xs @ Wd.t()
            E = part if E is None else E + part
        return E

    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x: expected a torch.Tensor [B, T, {self.n_in}], got {type(x).__name__}")
        if x.dim() == 2:
            x = x.unsqueeze(0)
        if x.dim() != 3 or x.shape[2] != self.n_in:
            raise ValueError(f"x: expected shape [B, T, {self.n_in}] or [T, {self.n_in}], got {tuple(x.shape)}")
        # a finite sum proves every entry finite (one reduction); only otherwise are the entries examined
        if x.is_floating_point() and not bool(torch.isfinite(x.sum())) and not bool(torch.isfinite(x).all()):
            bad = torch.nonzero(~torch.isfinite(x))[0].tolist()
            raise ValueError(f"x: contains NaN or infinite values (first at [trial, step, channel] = {bad})")
        return x

    def forward(self, x: torch.Tensor) -> RNNOutput:
        """``x``: [B, T, n_in] (bool or float) -> :class:`RNNOutput` (y [B, T, n_out], z [B, T, N]).
        Raises ValueError for a wrong shape or non-finite values."""
        x = self._check_input(x)
        W_in, W_rec, W_out = self.effective_weights()
        k = self.layer_constants()
        if self.backend == "kernel" or (self.backend == "auto" and F._kernel_ok(W_rec, k)):
            # the C++ layer kernel with the readout fused: the exported network's arithmetic, spike-sparse;
            # it reads x batch-major, and bool spikes as they are (no [T, B, n_in] float copy)
            if x.device != W_rec.device:
                raise ValueError(f"x: on {x.device}, the network on {W_rec.device}")
            xk = x if x.dtype == torch.bool else x.to(self.dtype)
            z, y = F.recurrent_network_events(xk.contiguous(), W_in, W_rec, k, self.bias, W_out, self.b_out,
                                              F.ReadoutConstants(self.kappa(), self.out_delay),
                                              _delay_arg(self.in_delay), _delay_arg(self.rec_delay),
                                              batch_major=True)
            return RNNOutput(y.transpose(0, 1), z.transpose(0, 1))
        if self.train_tau:
            raise NotImplementedError("train_tau needs the C++ layer kernel (backend 'auto' or 'kernel' on the "
                                      "CPU) or step_forward")
        x_tm = x.to(self.dtype).transpose(0, 1)
        E = self.input_current(x_tm, W_in).contiguous()
        if len(k.delays) == 1:
            Ws = [W_rec]
        else:
            Ws = [W_rec * (self.rec_delay == d) for d in k.delays]
        z = F.recurrent_layer(E, Ws, k, self.bias)
        d = self.out_delay
        T = z.shape[0]
        u = z @ W_out.t()  # shift the small readout currents, not the spikes
        if d:
            u = torch.cat([u.new_zeros((min(d, T),) + u.shape[1:]), u[: max(T - d, 0)]], 0)
        if self.b_out is not None:
            u = u + self.b_out
        y = F.leaky_scan(u, self.kappa())
        return RNNOutput(y.transpose(0, 1), z.transpose(0, 1))

    def step_forward(self, x: torch.Tensor) -> RNNOutput:
        """Reference path: the same network unrolled with the per-model ``*_step`` functions and plain
        autograd (slow; used to test the fused BPTT)."""
        x = self._check_input(x)
        B, T, _ = x.shape
        x_tm = x.to(self.dtype).transpose(0, 1)
        W_in, W_rec, W_out = self.effective_weights()
        E = self.input_current(x_tm, W_in)
        k = self.layer_constants()
        sl = {NEURON_LIF: slice(0, self.n_lif), NEURON_AHP: slice(self.n_lif, self.n_lif + self.n_ahp),
              NEURON_ALIF: slice(self.n_lif + self.n_ahp, self.N)}
        common = dict(n_ref=self.n_ref, reset=self.reset, detach_reset=self.detach_reset,
                      refractory_mode=self.refractory_mode)
        pl = F.LIFParams(k.alpha[sl[0]], k.v_th[sl[0]], **common)
        pa = F.AHPParams(k.alpha[sl[1]], k.v_th[sl[1]], rho=k.rho_c[sl[1]], beta=k.beta_c[sl[1]], **common)
        pf = F.ALIFParams(k.alpha[sl[2]], k.v_th[sl[2]], rho=k.rho_a[sl[2]], beta=k.beta_a[sl[2]], **common)
        states = [None, None, None]
        zs = []
        for t in range(T):
            I = E[t]
            for d in k.delays:
                if t - d >= 0:
                    Wd = W_rec if len(k.delays) == 1 else W_rec * (self.rec_delay == d)
                    I = I + zs[t - d] @ Wd.t()
            if self.bias is not None:
                I = I + self.bias
            parts = []
            for kind, fn, p in ((0, F.lif_step, pl), (1, F.ahp_step, pa), (2, F.alif_step, pf)):
                s = sl[kind]
                if s.stop > s.start:
                    zk, states[kind] = fn(I[:, s], states[kind], p, self.surrogate)
                    parts.append(zk)
            zs.append(torch.cat(parts, 1))
        kappa = self.kappa()
        ys, ro = [], None
        d = self.out_delay
        for t in range(T):
            zin = zs[t - d] if t - d >= 0 else torch.zeros_like(zs[0])
            u = zin @ W_out.t()
            if self.b_out is not None:
                u = u + self.b_out
            y, ro = F.readout_step(u, ro, F.ReadoutParams(kappa))
            ys.append(y)
        return RNNOutput(torch.stack(ys, 1), torch.stack(zs, 1))


def _delay_arg(delay: torch.Tensor):
    """A delay tensor, or its one value as an int when all synapses share it."""
    lo, hi = int(delay.min()), int(delay.max())
    return lo if lo == hi else delay


def _pop_slices(model: "SpikingRNN") -> list[slice]:
    a, b = model.n_lif, model.n_lif + model.n_ahp
    return [s for s in (slice(0, a), slice(a, b), slice(b, model.N)) if s.stop > s.start]


def _grid_round(w: torch.Tensor, scale: float) -> torch.Tensor:
    """``w`` on the grid of one Loihi projection into a population of voltage scale ``scale`` (the
    exponent ``ahpsim.loihi.quantize`` will choose, 8-bit mantissas), straight-through gradient."""
    from ..loihi.quantize import weight_exponent

    with torch.no_grad():
        m = float(w.detach().abs().max()) * scale
        if m == 0.0:
            return w
        step = 2.0 ** (6 + weight_exponent(m)) / scale
        q = torch.round(w.detach() / step) * step
    return w + (q - w.detach())


def _loihi_fake_quant(model: "SpikingRNN", W_in, W_rec, W_out):
    """The weights ``ahpsim.loihi.quantize`` will use, block by block (one block per projection of the
    exported network: input -> population, population -> population, population -> readout)."""
    vm = model.loihi_grid
    sl = _pop_slices(model)
    rows_in, rows_rec = [], []
    for post in sl:
        s = vm * 64.0 / float(model.v_th_value[post][0])
        rows_in.append(_grid_round(W_in[post], s))
        rows_rec.append(torch.cat([_grid_round(W_rec[post, pre], s) for pre in sl], 1))
    wmax = float(W_out.detach().abs().max())
    s_out = 255 * 64.0 / wmax if wmax > 0 else 1.0
    W_out_q = torch.cat([_grid_round(W_out[:, pre], s_out) for pre in sl], 1)
    return torch.cat(rows_in, 0), torch.cat(rows_rec, 0), W_out_q
