"""Pure step functions and the fused BPTT kernel of ``ahpsim.torch``.

Every function follows ``docs/equations.md`` exactly, including the float evaluation order of the C++
kernel (no fused multiply-add; each arithmetic operation is one rounded torch op):

    I      = W_in x + W_rec z_delayed + bias
    c[t]   = rho_c * c[t-1] + beta_c * z[t-1]                       (AHP)
    a[t]   = rho_a * a[t-1] + z[t-1]                                (ALIF)
    v[t]   = ((alpha * v[t-1] + I[t]) - c[t]) - v_th * z[t-1]       (reset="subtract")
    v[t]   = (alpha * (1 - z[t-1])) * v[t-1] + I[t] - c[t]          (reset="zero")
    A[t]   = v_th + beta_a * a[t]                                   (ALIF; v_th otherwise)
    r[t]   = n_ref if z[t-1] else max(r[t-1] - 1, 0)
    z[t]   = H(v[t] - A[t]) * (r[t] == 0)                           (strict threshold)
    v[t]   = 0 where r[t] > 0                                       (refractory_mode="clamp")
    y[t]   = kappa * y[t-1] + I[t]                                  (leaky readout)

The Heaviside gets a surrogate derivative (Bellec et al. 2018): with ``x = (v - A) / A``,
``dz/dv = psi(x) / A`` and ``dz/dA = -psi(x) v / A**2`` (the chain rule through ``x``, as in LSNN),
``psi(x) = dampening * max(0, 1 - |x|)`` by default.  Surrogates are pluggable objects with
``pseudo_derivative(x)`` (and ``primitive(x)``, the antiderivative, used by ``smooth_forward=True`` to
make the forward pass differentiable so that ``torch.autograd.gradcheck`` can check the backward path).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import NamedTuple, Optional, Sequence

import numpy as np
import torch

from ..models import REFRACTORY_MODES

__all__ = [
    "Surrogate",
    "Triangle",
    "FastSigmoid",
    "Gaussian",
    "decay",
    "spike_fn",
    "LIFState",
    "AHPState",
    "ALIFState",
    "ReadoutState",
    "LIFParams",
    "AHPParams",
    "ALIFParams",
    "ReadoutParams",
    "lif_step",
    "ahp_step",
    "alif_step",
    "readout_step",
    "LayerConstants",
    "recurrent_layer",
    "recurrent_layer_events",
    "recurrent_network_events",
    "ReadoutConstants",
    "leaky_scan",
]


# --------------------------------------------------------------------------------------------------
# Surrogate derivatives
# --------------------------------------------------------------------------------------------------


class Surrogate:
    """Base class: ``pseudo_derivative(x)`` of the spike w.r.t. the normalised voltage ``x``."""

    smooth_forward: bool = False

    def pseudo_derivative(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def primitive(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError(f"{type(self).__name__} has no primitive (smooth_forward unsupported)")

    def forward_value(self, v: torch.Tensor, thr: torch.Tensor) -> torch.Tensor:
        if self.smooth_forward:
            return self.primitive((v - thr) / thr)
        return (v > thr).to(v.dtype)


@dataclass
class Triangle(Surrogate):
    """Bellec's triangular pseudo-derivative ``dampening * max(0, 1 - |x|)`` (default 0.3)."""

    dampening: float = 0.3
    smooth_forward: bool = False

    def pseudo_derivative(self, x):
        return self.dampening * torch.clamp(1.0 - x.abs(), min=0.0)

    def primitive(self, x):
        xc = x.clamp(-1.0, 1.0)
        lower = 0.5 * (xc + 1.0) ** 2
        upper = 1.0 - 0.5 * (1.0 - xc) ** 2
        return self.dampening * torch.where(xc < 0, lower, upper)


@dataclass
class FastSigmoid(Surrogate):
    """``dampening / (1 + slope |x|)**2`` (SuperSpike-style)."""

    dampening: float = 0.3
    slope: float = 10.0
    smooth_forward: bool = False

    def pseudo_derivative(self, x):
        return self.dampening / (1.0 + self.slope * x.abs()) ** 2

    def primitive(self, x):
        return self.dampening * x / (1.0 + self.slope * x.abs())


@dataclass
class Gaussian(Surrogate):
    """``dampening * exp(-x**2 / (2 sigma**2))``."""

    dampening: float = 0.3
    sigma: float = 0.5
    smooth_forward: bool = False

    def pseudo_derivative(self, x):
        return self.dampening * torch.exp(-0.5 * (x / self.sigma) ** 2)

    def primitive(self, x):
        s = self.sigma
        return self.dampening * s * math.sqrt(math.pi / 2.0) * (1.0 + torch.erf(x / (s * math.sqrt(2.0))))


def decay(tau, dt: float = 1.0, dtype=torch.float32) -> torch.Tensor:
    """``exp(-dt / tau)`` computed in float64 (``tau == 0`` gives 0), then rounded to ``dtype``."""
    t = torch.as_tensor(tau, dtype=torch.float64)
    out = torch.where(t > 0, torch.exp(-dt / torch.where(t > 0, t, torch.ones_like(t))), torch.zeros_like(t))
    return out.to(dtype)


class _SpikeFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, thr, surrogate):
        ctx.save_for_backward(v, thr)
        ctx.surrogate = surrogate
        return surrogate.forward_value(v, thr)

    @staticmethod
    def backward(ctx, g):
        v, thr = ctx.saved_tensors
        psi = ctx.surrogate.pseudo_derivative((v - thr) / thr)
        gv = g * psi / thr if ctx.needs_input_grad[0] else None
        gthr = None
        if ctx.needs_input_grad[1]:
            gthr = (-g * psi * v / (thr * thr)).sum_to_size(thr.shape)
        return gv, gthr, None


def spike_fn(v: torch.Tensor, thr, surrogate: Optional[Surrogate] = None) -> torch.Tensor:
    """``H(v - thr)`` (strict) with the surrogate gradient; ``thr`` broadcastable to ``v`` and > 0 (the
    surrogate is a function of ``(v - thr) / thr``; ValueError otherwise)."""
    surrogate = surrogate or Triangle()
    thr = torch.as_tensor(thr, dtype=v.dtype, device=v.device)
    if not bool((thr > 0).all()):
        raise ValueError("thr: thresholds must be > 0 (the surrogate gradient is normalised by the threshold)")
    return _SpikeFunction.apply(v, thr, surrogate)


# --------------------------------------------------------------------------------------------------
# Step functions (reference path; autograd through plain torch ops)
# --------------------------------------------------------------------------------------------------


class LIFState(NamedTuple):
    v: torch.Tensor
    z: torch.Tensor
    r: torch.Tensor


class AHPState(NamedTuple):
    v: torch.Tensor
    z: torch.Tensor
    c: torch.Tensor
    r: torch.Tensor


class ALIFState(NamedTuple):
    v: torch.Tensor
    z: torch.Tensor
    a: torch.Tensor
    r: torch.Tensor


class ReadoutState(NamedTuple):
    y: torch.Tensor


@dataclass
class LIFParams:
    """Decays are already rounded to the model dtype (see :func:`decay`)."""

    alpha: torch.Tensor | float
    v_th: torch.Tensor | float = 1.0
    n_ref: int = 0
    reset: str = "subtract"
    detach_reset: bool = False
    refractory_mode: str = "block"  # "clamp": v held at 0 while refractory (Loihi, NEST)


@dataclass
class AHPParams(LIFParams):
    rho: torch.Tensor | float = 0.0
    beta: torch.Tensor | float = 0.0


@dataclass
class ALIFParams(LIFParams):
    rho: torch.Tensor | float = 0.0
    beta: torch.Tensor | float = 0.0


@dataclass
class ReadoutParams:
    kappa: torch.Tensor | float


def _zeros_like_state(cls, x):
    z = torch.zeros_like(x)
    return cls(*([z] * len(cls._fields)))


def _membrane(I, state_v, z_prev, c, params):
    zr = z_prev.detach() if params.detach_reset else z_prev
    if params.reset == "subtract":
        v = params.alpha * state_v + I
        if c is not None:
            v = v - c
        return v - params.v_th * zr
    if params.reset == "zero":
        v = (params.alpha * (1.0 - zr)) * state_v + I
        return v - c if c is not None else v
    raise ValueError(f"unknown reset {params.reset!r}")


def _refractory(state_r, z_prev, n_ref):
    if not n_ref:
        return state_r, None
    zp = z_prev.detach() > 0
    r = torch.where(zp, torch.full_like(state_r, float(n_ref)), torch.clamp(state_r - 1.0, min=0.0))
    return r, (r == 0).to(z_prev.dtype)


def _check_refractory_mode(mode: str) -> bool:
    """True for "clamp" (v held at 0 while refractory), False for "block"; ValueError otherwise."""
    if not isinstance(mode, str) or mode not in REFRACTORY_MODES:
        raise ValueError(f"refractory_mode must be 'block' or 'clamp', got {mode!r}")
    return mode == "clamp"


def _spike_and_hold(v, thr, free, params, surrogate):
    """z[t] (blocked while refractory) and v[t] (clamped at 0 while refractory with refractory_mode="clamp")."""
    clamp = _check_refractory_mode(params.refractory_mode)
    z = spike_fn(v, thr, surrogate)
    if free is None:
        return z, v
    if clamp:
        v = v * free
    return z * free, v


def lif_step(I: torch.Tensor, state: Optional[LIFState], params: LIFParams, surrogate: Optional[Surrogate] = None):
    """One LIF step: input current ``I[t]`` -> ``(z[t], state[t])``."""
    if state is None:
        state = _zeros_like_state(LIFState, I)
    v = _membrane(I, state.v, state.z, None, params)
    r, free = _refractory(state.r, state.z, params.n_ref)
    z, v = _spike_and_hold(v, params.v_th, free, params, surrogate)
    return z, LIFState(v, z, r)


def ahp_step(I: torch.Tensor, state: Optional[AHPState], params: AHPParams, surrogate: Optional[Surrogate] = None):
    """One AHP step (Rao et al. 2022): ``c = rho c + beta z[t-1]`` enters ``v`` as ``-c``."""
    if state is None:
        state = _zeros_like_state(AHPState, I)
    c = params.rho * state.c + params.beta * state.z
    v = _membrane(I, state.v, state.z, c, params)
    r, free = _refractory(state.r, state.z, params.n_ref)
    z, v = _spike_and_hold(v, params.v_th, free, params, surrogate)
    return z, AHPState(v, z, c, r)


def alif_step(I: torch.Tensor, state: Optional[ALIFState], params: ALIFParams, surrogate: Optional[Surrogate] = None):
    """One ALIF step (Bellec et al. 2018): threshold ``A = v_th + beta a``, ``a = rho a + z[t-1]``."""
    if state is None:
        state = _zeros_like_state(ALIFState, I)
    a = params.rho * state.a + state.z
    v = _membrane(I, state.v, state.z, None, params)
    thr = params.v_th + params.beta * a
    r, free = _refractory(state.r, state.z, params.n_ref)
    z, v = _spike_and_hold(v, thr, free, params, surrogate)
    return z, ALIFState(v, z, a, r)


def readout_step(I: torch.Tensor, state: Optional[ReadoutState], params: ReadoutParams):
    """Leaky readout ``y = kappa y + I`` -> ``(y, state)``."""
    y = I if state is None else params.kappa * state.y + I
    return y, ReadoutState(y)


# --------------------------------------------------------------------------------------------------
# Fused recurrent layer: forward loop without autograd graph + hand-written BPTT
# --------------------------------------------------------------------------------------------------


@dataclass
class LayerConstants:
    """Per-neuron constants of a heterogeneous recurrent layer (tensors of shape [N], model dtype).

    LIF neurons have ``beta_c = 0`` and ``beta_a = 0``: then ``c`` stays exactly 0 and ``A = v_th``
    exactly, so one set of equations covers LIF, AHP and ALIF neurons bit-for-bit.
    """

    alpha: torch.Tensor
    v_th: torch.Tensor
    rho_c: torch.Tensor
    beta_c: torch.Tensor
    rho_a: torch.Tensor
    beta_a: torch.Tensor
    n_ref: int = 0
    reset: str = "subtract"
    detach_reset: bool = False
    refractory_mode: str = "block"  # "clamp": v held at 0 while refractory (n_ref > 0)
    has_ahp: bool = True
    has_alif: bool = True
    delays: Sequence[int] = (1,)
    surrogate: Surrogate = None  # type: ignore[assignment]


class _BufferPool:
    """Reuses the large [T, B, N] work buffers of the fused layer from one training step to the next.

    A fresh multi-megabyte tensor is mapped page by page on first touch (the allocator returns large
    blocks to the OS when they are freed), which cost about a fifth of an sMNIST training step. A pooled
    buffer is handed out again only when nothing else holds its storage (no autograd graph, no view,
    no numpy array): then its use count is the pool's own reference plus the probe's.
    """

    MIN_BYTES = 1 << 20

    def __init__(self, per_key: int = 2, max_bytes: int = 1 << 30):
        self.per_key = per_key
        self.max_bytes = max_bytes  # pooled memory in all; beyond it buffers are plain allocations
        self._bufs: dict = {}
        self._bytes = 0
        self._lock = threading.Lock()
        self._use_count = getattr(torch._C, "_storage_Use_Count", None)

    def empty(self, shape, dtype, device, tag: str, pooled: bool = True) -> torch.Tensor:
        shape = tuple(int(n) for n in shape)
        n_bytes = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
        if (not pooled or self._use_count is None or torch.device(device).type != "cpu"
                or n_bytes < self.MIN_BYTES):
            return torch.empty(shape, dtype=dtype, device=device)
        with self._lock:
            bufs = self._bufs.setdefault((shape, dtype, tag), [])
            # handed out as a new tensor on the storage (detach), so that whoever keeps it (an autograd
            # graph's saved tensors included) raises the storage's use count
            for b in bufs:
                if self._use_count(b.untyped_storage()._cdata) <= 2:
                    return b.detach()
            b = torch.empty(shape, dtype=dtype, device=device)
            if len(bufs) < self.per_key and self._bytes + n_bytes <= self.max_bytes:
                bufs.append(b)
                self._bytes += n_bytes
                return b.detach()
            return b

    @property
    def nbytes(self) -> int:
        """Memory held by the pool."""
        return self._bytes

    def clear(self) -> None:
        """Drops the pooled buffers (their memory goes back once nothing else holds them)."""
        with self._lock:
            self._bufs.clear()
            self._bytes = 0


BUFFERS = _BufferPool()


def _surrogate_dzdv_dzdA(sur: Surrogate, v_all, A, has_alif: bool, free_all=None, inplace: bool = False):
    """dz/dv (and dz/dA for adaptive thresholds) of all steps at once (``inplace``: overwrite ``v_all``)."""
    if not has_alif and type(sur) is Triangle:
        # psi(x)/thr with x = (v - thr)/thr  ==  (d / thr^2) * relu(thr - |v - thr|): 5 in-place passes
        t = v_all.sub_(A) if inplace else torch.sub(v_all, A, out=BUFFERS.empty(v_all.shape, v_all.dtype,
                                                                               v_all.device, "dzdv"))
        t.abs_()
        t.neg_()
        t.add_(A)
        t.clamp_(min=0.0)
        t.mul_(sur.dampening / (A * A))
        if free_all is not None:
            t.mul_(free_all)
        return t, None
    if has_alif and type(sur) is Triangle:
        # A varies per step: dz/dv = (d / A^2) relu(A - |v - A|), dz/dA = -(dz/dv) v / A
        t = v_all - A
        t.abs_()
        torch.sub(A, t, out=t)
        t.clamp_(min=0.0)
        t.mul_(sur.dampening)
        t.div_(A).div_(A)
        if free_all is not None:
            t.mul_(free_all)
        dzdA = v_all.mul_(t) if inplace else v_all * t
        dzdA.div_(A).neg_()
        return t, dzdA
    inv = 1.0 / A
    psi = sur.pseudo_derivative((v_all - A) * inv)
    if free_all is not None:
        psi = psi * free_all
    dzdv = psi * inv
    dzdA = -dzdv * v_all * inv if has_alif else None
    return dzdv, dzdA


class _RecurrentLayerFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, E, bias, k: LayerConstants, *Ws):
        T, B, N = E.shape
        dtype, dev = E.dtype, E.device
        sur = k.surrogate
        smooth = bool(getattr(sur, "smooth_forward", False))
        WTs = [W.t().contiguous() for W in Ws]
        fast = k.reset == "subtract" and not smooth and not k.n_ref
        clamp = _check_refractory_mode(k.refractory_mode) and bool(k.n_ref)
        z_all = (torch.empty if fast else torch.zeros)(T, B, N, dtype=dtype, device=dev)
        v_all = torch.empty(T, B, N, dtype=dtype, device=dev)
        A_all = torch.empty(T, B, N, dtype=dtype, device=dev) if k.has_alif else None
        free_all = torch.empty(T, B, N, dtype=torch.bool, device=dev) if k.n_ref else None
        v = torch.zeros(B, N, dtype=dtype, device=dev)
        c = torch.zeros_like(v)
        a = torch.zeros_like(v)
        r = torch.zeros_like(v)
        z_prev = torch.zeros_like(v)
        has_bias = bias.numel() > 0
        neg_vth = -k.v_th
        Es, zs, vs = E.unbind(0), z_all.unbind(0), v_all.unbind(0)
        As = A_all.unbind(0) if k.has_alif else None
        rec = torch.empty(B, N, dtype=dtype, device=dev)
        rev_pairs = list(zip(k.delays, WTs))[::-1]
        for t in range(T):
            # I = (W_rec z_delayed) + W_in x + bias: recurrent sum first, as the kernel's ring buffer
            # (whose slot receives the oldest spikes, i.e. the longest delays, first)
            I = Es[t]
            first = True
            for d, WT in rev_pairs:
                if t - d >= 0:
                    if first:
                        torch.mm(zs[t - d], WT, out=rec)
                        first = False
                    else:
                        rec.addmm_(zs[t - d], WT)
            if not first:
                I = rec.add_(I)
            if has_bias:
                I = I + bias
            # NB: products with z (0/1) are exact, so c = rho c + beta z rounds once, as in the kernel.
            if k.has_ahp:
                c = k.rho_c * c
                c.addcmul_(z_prev, k.beta_c)
            if k.has_alif:
                a = k.rho_a * a
                a.add_(z_prev)
            if fast:
                u = k.alpha * v
                u.add_(I)
                if k.has_ahp:
                    u.sub_(c)
                v = torch.addcmul(u, z_prev, neg_vth, out=vs[t])
            else:
                if k.reset == "subtract":
                    v = k.alpha * v + I
                    if k.has_ahp:
                        v = v - c
                    v = v - k.v_th * z_prev
                else:
                    v = (k.alpha * (1.0 - z_prev)) * v + I
                    if k.has_ahp:
                        v = v - c
                vs[t].copy_(v)
            if k.has_alif:
                A = torch.add(k.v_th, k.beta_a * a, out=As[t])
            else:
                A = k.v_th
            if fast:
                z = torch.gt(v, A, out=zs[t])
            else:
                if smooth:
                    z = sur.primitive((v - A) / A)
                else:
                    z = (v > A).to(dtype)
                if k.n_ref:
                    r = torch.where(z_prev > 0, torch.full_like(r, float(k.n_ref)), torch.clamp(r - 1.0, min=0.0))
                    free = r == 0
                    free_all[t] = free
                    z = z * free
                    if clamp:
                        v = v * free
                        vs[t].copy_(v)
                zs[t].copy_(z)
                z = zs[t]
            z_prev = z
        ctx.k = k
        ctx.has_bias = has_bias
        saved = [z_all, v_all] + ([A_all] if k.has_alif else []) + ([free_all] if k.n_ref else []) + list(Ws)
        ctx.save_for_backward(*saved)
        return z_all

    @staticmethod
    def backward(ctx, G):
        k: LayerConstants = ctx.k
        saved = list(ctx.saved_tensors)
        z_all, v_all = saved[0], saved[1]
        i = 2
        A_all = None
        free_all = None
        if k.has_alif:
            A_all = saved[i]
            i += 1
        if k.n_ref:
            free_all = saved[i]
            i += 1
        Ws = saved[i:]
        T, B, N = z_all.shape
        gI_all = _input_current_grad(k, G, z_all, v_all, A_all, free_all, Ws)
        gE = gI_all if ctx.needs_input_grad[0] else None
        gbias = gI_all.sum((0, 1)) if (ctx.has_bias and ctx.needs_input_grad[1]) else None
        gWs = []
        for j, d in enumerate(k.delays):
            if not ctx.needs_input_grad[3 + j]:
                gWs.append(None)
            elif d >= T:
                gWs.append(torch.zeros_like(Ws[j]))
            else:
                gWs.append(gI_all[d:].reshape(-1, N).t() @ z_all[: T - d].reshape(-1, N))
        return (gE, gbias, None, *gWs)


def _input_current_grad(k: LayerConstants, G, z_all, v_all, A_all, free_all, Ws) -> torch.Tensor:
    """The hand-written BPTT: dL/dI [T, B, N] of a layer run (spikes ``z_all``, voltages ``v_all``,
    thresholds ``A_all`` (ALIF) and non-refractory masks ``free_all`` (n_ref > 0) saved by the forward
    pass), given ``G`` = dL/dz from the layer's users; ``Ws[j]`` holds the recurrent weights of the
    synapses with delay ``k.delays[j]``."""
    T, B, N = z_all.shape
    A = A_all if A_all is not None else k.v_th
    # (saved tensors stay untouched, so that a retained graph can be differentiated again)
    dzdv, dzdA = _surrogate_dzdv_dzdA(k.surrogate, v_all, A, k.has_alif, free_all)
    # one buffer for dL/dz (filled from the future) and dL/dI: slot t turns from the first into the
    # second when step t is processed; only earlier slots are written afterwards
    gz_buf = BUFFERS.empty(z_all.shape, z_all.dtype, z_all.device, "grad")
    if G is not None:
        gz_buf.copy_(G)
    else:
        gz_buf.zero_()
    gI_all = gz_buf
    gv = torch.zeros(B, N, dtype=z_all.dtype, device=z_all.device)
    gc = torch.zeros_like(gv)
    ga = torch.zeros_like(gv)
    reset_grad = not k.detach_reset
    subtract = k.reset == "subtract"
    # The reset term -v_th z[t-1] of v[t] is folded into the delay-1 matrix of the backward matmul.
    Wb = [W for W in Ws]
    fold = subtract and reset_grad and 1 in k.delays
    if fold:
        j1 = list(k.delays).index(1)
        Wb[j1] = Ws[j1] - torch.diag(k.v_th.expand(N))
    gzs, dzdvs = gz_buf.unbind(0), dzdv.unbind(0)
    alpha_scalar = None
    if subtract and bool((k.alpha == k.alpha.reshape(-1)[0]).all()):
        alpha_scalar = float(k.alpha.reshape(-1)[0])
    gv_carry = gv_prev = None
    # with refractory_mode="clamp", v[t] = 0 while refractory: no gradient passes through v there
    clamp = _check_refractory_mode(k.refractory_mode) and free_all is not None
    for t in range(T - 1, -1, -1):
        gz = gzs[t]
        if k.has_alif:
            gzdA = gz * dzdA[t]
        gv = gz.mul_(dzdvs[t])  # gz is not needed any more (ALIF used it above)
        if t < T - 1:
            if subtract:
                if alpha_scalar is not None:
                    gv.add_(gv_prev, alpha=alpha_scalar)
                else:
                    gv.add_(k.alpha * gv_prev)
            else:
                gv.add_(gv_carry)
        if clamp:
            gv.mul_(free_all[t])
        gv_prev = gv
        if k.has_ahp:
            gc.mul_(k.rho_c).sub_(gv)
        if k.has_alif:
            ga = k.rho_a * ga
            ga.add_(gzdA.mul_(k.beta_a))
        if t >= 1:
            acc = gzs[t - 1]
            if reset_grad and not fold:
                if subtract:
                    acc.sub_(gv * k.v_th)
                else:
                    acc.sub_(k.alpha * v_all[t - 1] * gv)
            if k.has_ahp:
                acc.addcmul_(gc, k.beta_c)
            if k.has_alif:
                acc.add_(ga)
            for d, W in zip(k.delays, Wb):
                if t - d >= 0:
                    gzs[t - d].addmm_(gv, W)
            if not subtract:
                gv_carry = (k.alpha * (1.0 - z_all[t - 1])) * gv
    return gI_all


def recurrent_layer(E: torch.Tensor, Ws: Sequence[torch.Tensor], k: LayerConstants,
                    bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Runs a recurrent spiking layer over time with the fused BPTT.

    ``E``: [T, B, N] external current (``W_in x``, already delayed); ``Ws[j]``: [N, N] recurrent weights
    of the synapses with delay ``k.delays[j]`` (>= 1); ``bias``: [N] or None. Returns spikes [T, B, N].
    """
    if any(int(d) < 1 for d in k.delays):
        raise ValueError("recurrent delays must be >= 1")
    if k.surrogate is None:
        k.surrogate = Triangle()
    b = bias if bias is not None else E.new_zeros(0)
    return _RecurrentLayerFn.apply(E, b, k, *Ws)


def _kernel_ok(t: torch.Tensor, k: LayerConstants) -> bool:
    """The C++ layer kernel runs CPU float32/float64 layers with a binary (Heaviside) forward pass."""
    return (t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64)
            and not getattr(k.surrogate, "smooth_forward", False))


def _np(t: Optional[torch.Tensor]):
    return None if t is None else t.detach().numpy()


def _pre_major_delays(delay) -> tuple:
    """(delays [pre, post] int32 array or None, uniform delay) of a [post, pre] delay tensor or an int."""
    if isinstance(delay, int):
        return None, delay
    u = torch.unique(delay)
    if u.numel() == 1:
        return None, int(u)
    return delay.t().to(torch.int32).contiguous().numpy(), 0


@dataclass
class ReadoutConstants:
    """The leaky readout fused into the C++ layer kernel: ``y[t] = kappa y[t-1] + W_out z[t - delay] + b_out``
    (``kappa`` [n_out], model dtype; ``delay`` >= 0)."""

    kappa: torch.Tensor
    delay: int = 1


def _kernel_forward(k: LayerConstants, T: int, B: int, N: int, dtype, W_rec, rec_delay, bias, *,
                    x=None, W_in=None, in_delay=0, E=None, keep_state: bool = True, W_out=None, b_out=None,
                    readout: Optional[ReadoutConstants] = None, x_batch_major: bool = False):
    """Runs the C++ forward pass; returns (z, v, A, free, y, z_bits): z, v, A, free [T, B, N] (v, A (ALIF),
    free (n_ref > 0) and z_bits (the spikes as bits, [T, B, ceil(N / 64)] int64 words) only with
    ``keep_state``: the backward pass needs them, inference does not) and the readout y [T, B, n_out]
    (with ``W_out``, else None). ``x``: [T, B, n_in] ([B, T, n_in] with ``x_batch_major``), of ``dtype``
    or bool."""
    from .. import _core

    # buffers are pooled only for training (repeated same-shape steps whose page faults matter)
    z_all = BUFFERS.empty((T, B, N), dtype, "cpu", "z", pooled=keep_state)
    v_all = BUFFERS.empty((T, B, N), dtype, "cpu", "v") if keep_state else None
    A_all = BUFFERS.empty((T, B, N), dtype, "cpu", "A") if (keep_state and k.has_alif) else None
    free_all = BUFFERS.empty((T, B, N), torch.uint8, "cpu", "free") if (keep_state and k.n_ref) else None
    # the spikes as bits (int64 storage, read as uint64): what the weight gradients read
    z_bits = BUFFERS.empty((T, B, (N + 63) // 64), torch.int64, "cpu", "z_bits") if keep_state else None
    y = None if W_out is None else torch.empty(T, B, W_out.shape[0], dtype=dtype)
    d_rec, d_rec_u = _pre_major_delays(rec_delay)
    d_in, d_in_u = _pre_major_delays(in_delay)

    def vec(t, n=N):
        return t.detach().to(dtype).expand(n).contiguous().numpy()

    ro = {}
    if W_out is not None:
        K = W_out.shape[0]
        ro = dict(y=y.numpy(), w_out=W_out.detach().to(dtype).contiguous().numpy(),
                  b_out=None if b_out is None else vec(b_out, K), kappa=vec(readout.kappa, K), d_out=int(readout.delay))
    _core.layer_forward(
        z=z_all.numpy(), v=_np(v_all), A=_np(A_all), free=_np(free_all),
        alpha=vec(k.alpha), v_th=vec(k.v_th), rho_c=vec(k.rho_c), beta_c=vec(k.beta_c), rho_a=vec(k.rho_a),
        beta_a=vec(k.beta_a), bias=None if bias is None else vec(bias), n_ref=int(k.n_ref),
        reset_zero=k.reset == "zero", has_ahp=bool(k.has_ahp), has_alif=bool(k.has_alif),
        w_rec=W_rec.detach().t().contiguous().numpy(), d_rec=d_rec, d_rec_uniform=d_rec_u,
        x=None if x is None else x.detach().contiguous().numpy(),
        w_in=None if W_in is None else W_in.detach().t().contiguous().numpy(), d_in=d_in, d_in_uniform=d_in_u,
        E=None if E is None else E.detach().contiguous().numpy(), x_batch_major=x_batch_major,
        z_bits=None if z_bits is None else z_bits.numpy().view(np.uint64), n_threads=torch.get_num_threads(),
        refractory_clamp=_check_refractory_mode(k.refractory_mode) and bool(k.n_ref), **ro)
    return z_all, v_all, A_all, free_all, y, z_bits


def _surrogate_code(sur: Surrogate):
    """(kind, dampening, slope, sigma) of a surrogate the C++ backward knows, else None."""
    if getattr(sur, "smooth_forward", False):
        return None
    if type(sur) is Triangle:
        return 0, sur.dampening, 10.0, 0.5
    if type(sur) is FastSigmoid:
        return 1, sur.dampening, sur.slope, 0.5
    if type(sur) is Gaussian:
        return 2, sur.dampening, 10.0, sur.sigma
    return None


def _split_rate_grad(G):
    """``(dense, per_neuron)``: a gradient [T, B, N] that is one [N] vector broadcast over steps and trials
    (what a firing-rate loss sends back) is passed to the kernel as that vector, without materializing it."""
    if G is None:
        return None, None
    if G.dim() == 3 and G.stride(0) == 0 and G.stride(1) == 0 and G.shape[0] and G.shape[1]:
        return None, G[0, 0].contiguous()
    return G.contiguous(), None


def _kernel_input_current_grad(k: LayerConstants, G, z_all, v_all, A_all, free_all, W_rec, rec_delay, *,
                               Gy=None, W_out=None, readout: Optional[ReadoutConstants] = None,
                               decay_grads: bool = False, z_bits=None, g_w_rec=None, g_w_in=None, x=None,
                               x_batch_major: bool = False, in_delay: int = 0):
    """dL/dI [T, B, N] by the C++ BPTT (``_core.layer_backward``), and with a readout also dL/du
    [T, B, n_out] (u: the readout's input), as ``(gI, gU)`` (with ``decay_grads`` a third item: the
    gradients w.r.t. alpha, rho_c and rho_a, [N] each); None when the surrogate is not one the C++
    backward knows (then :func:`_input_current_grad` computes it). ``z_bits``: the forward pass's spike
    bits, read by the kernel instead of ``z_all`` (1/32 of its bytes). ``g_w_rec`` [N, N] / ``g_w_in``
    [n_in, N] (pre-major, zeros; uniform delays; ``g_w_in`` with the input ``x`` and ``in_delay``): the
    weight gradients are added to them during the pass (what :func:`_delayed_outer` computes, transposed)."""
    from .. import _core

    code = _surrogate_code(k.surrogate)
    if code is None:
        return None
    T, B, N = z_all.shape
    dtype = z_all.dtype
    gI = BUFFERS.empty((T, B, N), dtype, "cpu", "grad")

    def vec(t, n=N):
        return t.detach().to(dtype).expand(n).contiguous().numpy()

    if isinstance(rec_delay, int):
        d_rec, d_u = None, rec_delay
    else:
        d_rec, d_u = rec_delay.to(torch.int32).contiguous().numpy(), 1
    G_dense, G_rate = _split_rate_grad(G)
    ro, gU = {}, None
    if W_out is not None:
        K = W_out.shape[0]
        gU = torch.empty(T, B, K, dtype=dtype)
        Gy_batch_major = False
        if Gy is not None:
            Gy = Gy.detach().to(dtype)
            # the gradient of the batch-first y that the modules return: read as it lies, without a copy
            Gy_batch_major = not Gy.is_contiguous() and Gy.transpose(0, 1).is_contiguous()
            Gy = (Gy.transpose(0, 1) if Gy_batch_major else Gy.contiguous()).numpy()
        ro = dict(Gy=Gy, Gy_batch_major=Gy_batch_major, gU=gU.numpy(),
                  w_out=W_out.detach().to(dtype).contiguous().numpy(), kappa=vec(readout.kappa, K),
                  d_out=int(readout.delay))
    if decay_grads:
        per_trial = [torch.zeros(B, N, dtype=dtype) for _ in range(3)]
        ro.update(g_alpha=per_trial[0].numpy(), g_rho_c=per_trial[1].numpy(), g_rho_a=per_trial[2].numpy())
    _core.layer_backward(
        gI=gI.numpy(), G=_np(G_dense), G_rate=_np(G_rate), z=z_all.numpy(), v=v_all.numpy(),
        A=_np(A_all), free=_np(free_all), alpha=vec(k.alpha), v_th=vec(k.v_th), rho_c=vec(k.rho_c),
        beta_c=vec(k.beta_c), rho_a=vec(k.rho_a), beta_a=vec(k.beta_a), reset_zero=k.reset == "zero",
        detach_reset=bool(k.detach_reset), has_ahp=bool(k.has_ahp), has_alif=bool(k.has_alif),
        w_rec=W_rec.detach().contiguous().numpy(), d_rec=d_rec, d_rec_uniform=d_u, surrogate=code[0],
        dampening=float(code[1]), slope=float(code[2]), sigma=float(code[3]), n_threads=torch.get_num_threads(),
        refractory_clamp=_check_refractory_mode(k.refractory_mode) and free_all is not None,
        z_bits=None if z_bits is None else z_bits.numpy().view(np.uint64), g_w_rec=_np(g_w_rec),
        g_w_in=_np(g_w_in), x=None if g_w_in is None else x.detach().contiguous().numpy(),
        x_batch_major=x_batch_major, d_in_uniform=int(in_delay), **ro)
    if decay_grads:  # summed over trials in trial order: the same for any thread count
        return gI, gU, tuple(g.sum(0) for g in per_trial)
    return gI, gU


def _delayed_outer(s: torch.Tensor, g: torch.Tensor, delay, s_batch_major: bool = False,
                   n_pre: Optional[int] = None) -> torch.Tensor:
    """``W[i, j] = sum_{t,b} g[t + delay[i, j], b, i] s[t, b, j]`` ([post, pre]), spike-sparse in ``s``
    (of g's dtype or bool; [B, T, P] with ``s_batch_major``; or spike bits from :func:`_kernel_forward`,
    int64 words [T, B, ceil(P / 64)], with ``n_pre`` = P)."""
    from .. import _core

    P = s.shape[2] if n_pre is None else n_pre
    N = g.shape[2]
    d, d_u = _pre_major_delays(delay)
    out = torch.zeros(P, N, dtype=g.dtype)
    s_np = s.detach().contiguous().numpy()
    _core.delayed_outer(s=s_np if n_pre is None else s_np.view(np.uint64), g=g.detach().contiguous().numpy(), d=d,
                        d_uniform=d_u, out=out.numpy(), s_batch_major=s_batch_major, n_pre=-1 if n_pre is None else P,
                        n_threads=torch.get_num_threads())
    return out.t()


class _EventNetworkFn(torch.autograd.Function):
    """Recurrent layer driven by input events through delayed input synapses, with an optional leaky
    readout, as the exported kernel network computes it: forward in C++ (``_core.layer_forward``), BPTT
    in C++ (``_core.layer_backward``; the torch recursion :func:`_input_current_grad` for other
    surrogates), weight gradients spike-sparse (``_core.delayed_outer``)."""

    @staticmethod
    def forward(ctx, x, W_in, W_rec, bias, W_out, b_out, alpha, rho_c, rho_a, kappa, k: LayerConstants, readout,
                in_delay, rec_delay, keep_state, batch_major):
        T, B = (x.shape[1], x.shape[0]) if batch_major else (x.shape[0], x.shape[1])
        N = W_rec.shape[0]
        has_ro = W_out.numel() > 0
        z_all, v_all, A_all, free_all, y, z_bits = _kernel_forward(
            k, T, B, N, W_rec.dtype, W_rec, rec_delay, bias if bias.numel() else None, x=x, W_in=W_in,
            in_delay=in_delay, keep_state=keep_state, W_out=W_out if has_ro else None,
            b_out=b_out if b_out.numel() else None, readout=readout, x_batch_major=batch_major)
        ctx.k, ctx.readout, ctx.in_delay, ctx.rec_delay = k, readout, in_delay, rec_delay
        ctx.batch_major = batch_major
        # an output the loss does not use gets None, not a [T, B, N] tensor of zeros (a loss on the
        # readout alone would otherwise fill and read 50 MB per sMNIST batch)
        ctx.set_materialize_grads(False)
        ctx.has_bias, ctx.has_ro, ctx.has_b_out = bias.numel() > 0, has_ro, b_out.numel() > 0
        if y is None:
            y = W_rec.new_zeros(T, B, 0)
        ctx.save_for_backward(x, W_in, W_rec, W_out, z_all, v_all, A_all, free_all, y, z_bits)
        return z_all, y

    @staticmethod
    def backward(ctx, G, Gy):
        x, W_in, W_rec, W_out, z_all, v_all, A_all, free_all, y, z_bits = ctx.saved_tensors
        k: LayerConstants = ctx.k
        T, B, N = z_all.shape
        gU = None
        decay_grads = any(ctx.needs_input_grad[6:9])
        # with uniform delays the kernel adds the weight gradients' terms while each gI row is in cache
        pre_in = W_in.new_zeros(W_in.shape[1], N) if ctx.needs_input_grad[1] and isinstance(ctx.in_delay, int) \
            else None
        pre_rec = W_rec.new_zeros(N, N) if ctx.needs_input_grad[2] and isinstance(ctx.rec_delay, int) else None
        res = _kernel_input_current_grad(k, G, z_all, v_all, A_all, free_all, W_rec, ctx.rec_delay,
                                         Gy=Gy if ctx.has_ro else None, W_out=W_out if ctx.has_ro else None,
                                         readout=ctx.readout, decay_grads=decay_grads, z_bits=z_bits,
                                         g_w_rec=pre_rec, g_w_in=pre_in, x=x, x_batch_major=ctx.batch_major,
                                         in_delay=ctx.in_delay if pre_in is not None else 0)
        if res is None:  # (the torch recursion below: no fused weight gradients)
            pre_in = pre_rec = None
        g_decays = (None, None, None)
        if res is not None:
            gI, gU = res[:2]
            if decay_grads:
                g_decays = res[2]
        else:  # a surrogate the C++ backward does not know: the same BPTT in torch operations
            if decay_grads:
                raise NotImplementedError("trainable time constants need a Triangle, FastSigmoid or Gaussian "
                                          "surrogate (the C++ backward)")
            if ctx.has_ro:
                gU = _leaky_scan_grad(Gy, ctx.readout.kappa) if Gy is not None else torch.zeros(
                    T, B, W_out.shape[0], dtype=z_all.dtype)
                d = ctx.readout.delay
                Gr = torch.zeros_like(z_all)
                if d < T:
                    Gr[: T - d] = gU[d:] @ W_out
                G = Gr if G is None else G + Gr
            if isinstance(ctx.rec_delay, int):
                Ws = [W_rec]
            else:
                Ws = [W_rec * (ctx.rec_delay == d) for d in k.delays]
            gI = _input_current_grad(k, G, z_all, v_all, A_all, free_all, Ws)
        gx = gW_in = gW_rec = gbias = gW_out = gb_out = None
        if ctx.needs_input_grad[0]:  # x[t] enters I[t + d]
            gx = torch.zeros(T, B, x.shape[2], dtype=x.dtype)
            in_delay = ctx.in_delay
            for d in ([in_delay] if isinstance(in_delay, int) else torch.unique(in_delay).tolist()):
                d = int(d)
                Wd = W_in if isinstance(in_delay, int) else W_in * (in_delay == d)
                if d < T:
                    gx[: T - d] += gI[d:] @ Wd
            if ctx.batch_major:
                gx = gx.transpose(0, 1)
        if pre_in is not None:
            gW_in = pre_in.t()
        elif ctx.needs_input_grad[1]:
            gW_in = _delayed_outer(x, gI, ctx.in_delay, s_batch_major=ctx.batch_major)
        # the spikes' weight gradients read them as bits (z_bits), not as [T, B, N] floats
        spikes, n_pre = (z_all, None) if z_bits is None else (z_bits, N)
        if pre_rec is not None:
            gW_rec = pre_rec.t()
        elif ctx.needs_input_grad[2]:
            gW_rec = _delayed_outer(spikes, gI, ctx.rec_delay, n_pre=n_pre)
        if ctx.has_bias and ctx.needs_input_grad[3]:
            gbias = gI.sum((0, 1))
        if ctx.has_ro and ctx.needs_input_grad[4]:
            gW_out = _delayed_outer(spikes, gU, ctx.readout.delay, n_pre=n_pre)
        if ctx.has_ro and ctx.has_b_out and ctx.needs_input_grad[5]:
            gb_out = gU.sum((0, 1))
        g_alpha, g_rho_c, g_rho_a = (None if g is None or not need else g.sum_to_size(inp.shape)
                                     for g, need, inp in zip(g_decays, ctx.needs_input_grad[6:9],
                                                             (k.alpha, k.rho_c, k.rho_a)))
        g_kappa = None
        if ctx.has_ro and ctx.needs_input_grad[9] and T > 1:  # y[t] = kappa y[t-1] + u[t]
            g_kappa = (gU[1:] * y[:-1]).sum((0, 1)).sum_to_size(ctx.readout.kappa.shape)
        return (gx, gW_in, gW_rec, gbias, gW_out, gb_out, g_alpha, g_rho_c, g_rho_a, g_kappa,
                None, None, None, None, None, None)


def _leaky_scan_grad(gy: torch.Tensor, kappa: torch.Tensor) -> torch.Tensor:
    """``gu[t] = gy[t] + kappa gu[t+1]`` along dim 0 (the adjoint of :func:`leaky_scan`)."""
    gu = torch.empty_like(gy)
    acc = None
    for t in range(gy.shape[0] - 1, -1, -1):
        acc = gy[t] if acc is None else gy[t] + kappa * acc
        gu[t] = acc
    return gu


def _check_event_args(x, W_in, W_rec, k, in_delay, rec_delay):
    if k.surrogate is None:
        k.surrogate = Triangle()
    if not _kernel_ok(W_rec, k):
        raise ValueError("the C++ layer kernel runs on CPU float32/float64 tensors with a non-smooth surrogate")
    if x.device.type != "cpu" or x.dtype not in (torch.bool, W_rec.dtype):
        raise ValueError(f"x: expected a CPU tensor of W_rec's dtype ({W_rec.dtype}) or torch.bool, got "
                         f"{x.dtype} on {x.device.type}")
    for name, d, shape, lo in (("in_delay", in_delay, W_in.shape, 0), ("rec_delay", rec_delay, W_rec.shape, 1)):
        if isinstance(d, int):
            if d < lo:
                raise ValueError(f"{name} must be >= {lo}, got {d}")
        elif tuple(d.shape) != tuple(shape) or int(d.min()) < lo:
            raise ValueError(f"{name}: expected ints >= {lo} of shape {tuple(shape)}")


def recurrent_layer_events(x: torch.Tensor, W_in: torch.Tensor, W_rec: torch.Tensor, k: LayerConstants,
                           bias: Optional[torch.Tensor] = None, in_delay=0, rec_delay=1, *,
                           batch_major: bool = False) -> torch.Tensor:
    """A recurrent spiking layer driven by input events, computed as the exported kernel network computes
    it (same summation order: input events by channel, then spikes by source, through the delay ring).

    ``x``: [T, B, n_in] input ([B, T, n_in] with ``batch_major``): values of the weights' dtype, or
    spikes as ``torch.bool`` (read as they are, without a float copy); ``W_in`` [N, n_in], ``W_rec``
    [N, N] ([post, pre]); ``in_delay`` (>= 0) and ``rec_delay`` (>= 1): ints or int tensors shaped like
    the weights. CPU float32/float64 with a Heaviside forward pass (else use :func:`recurrent_layer`).
    Returns spikes [T, B, N] (time-major whatever the layout of ``x``); gradients flow to ``x`` (float
    input), the weights and ``bias``. Raises ValueError for another device, dtype or delay.
    """
    return recurrent_network_events(x, W_in, W_rec, k, bias, in_delay=in_delay, rec_delay=rec_delay,
                                    batch_major=batch_major)[0]


def recurrent_network_events(x: torch.Tensor, W_in: torch.Tensor, W_rec: torch.Tensor, k: LayerConstants,
                             bias: Optional[torch.Tensor] = None, W_out: Optional[torch.Tensor] = None,
                             b_out: Optional[torch.Tensor] = None, readout: Optional[ReadoutConstants] = None,
                             in_delay=0, rec_delay=1, *, batch_major: bool = False):
    """:func:`recurrent_layer_events` with the leaky readout fused into the kernel: returns ``(z, y)``,
    spikes [T, B, N] and readout ``y[t] = kappa y[t-1] + W_out z[t - readout.delay] + b_out`` [T, B, n_out]
    (``W_out`` [n_out, N]; without it ``y`` is [T, B, 0]). A loss on ``z`` that is one value per neuron
    broadcast over time and trials (a firing-rate loss through ``z.sum((0, 1))``) reaches the kernel as
    that vector, without a [T, B, N] gradient tensor."""
    _check_event_args(x, W_in, W_rec, k, in_delay, rec_delay)
    if W_out is not None:
        if readout is None:
            raise ValueError("readout: ReadoutConstants required with W_out")
        if W_out.dim() != 2 or W_out.shape[1] != W_rec.shape[0]:
            raise ValueError(f"W_out: expected [n_out, {W_rec.shape[0]}], got {tuple(W_out.shape)}")
        if int(readout.delay) < 0:
            raise ValueError(f"readout.delay must be >= 0, got {readout.delay}")
    if x.dim() != 3 or x.shape[2] != W_in.shape[1]:
        layout = "[B, T, n_in]" if batch_major else "[T, B, n_in]"
        raise ValueError(f"x: expected {layout} with n_in = {W_in.shape[1]}, got {tuple(x.shape)}")
    b = bias if bias is not None else W_rec.new_zeros(0)
    Wo = W_out if W_out is not None else W_rec.new_zeros(0, W_rec.shape[0])
    bo = b_out if b_out is not None else W_rec.new_zeros(0)
    # the state for the backward pass is kept only when a gradient can be asked for
    keep_state = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x, W_in, W_rec, bias, W_out, b_out))
    kappa = readout.kappa if readout is not None else W_rec.new_zeros(0)
    keep_state = keep_state or (torch.is_grad_enabled() and any(
        torch.is_tensor(t) and t.requires_grad for t in (k.alpha, k.rho_c, k.rho_a, kappa)))
    return _EventNetworkFn.apply(x, W_in, W_rec, b, Wo, bo, _as_tensor(k.alpha, W_rec),
                                 _as_tensor(k.rho_c, W_rec), _as_tensor(k.rho_a, W_rec), kappa, k, readout,
                                 in_delay, rec_delay, keep_state, bool(batch_major))


def _as_tensor(v, like: torch.Tensor) -> torch.Tensor:
    return v if torch.is_tensor(v) else torch.as_tensor(v, dtype=like.dtype)


class _LeakyScanFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, kappa):
        T = u.shape[0]
        y = torch.empty_like(u)
        prev = None
        for t in range(T):
            prev = u[t] if prev is None else kappa * prev + u[t]
            y[t] = prev
        ctx.save_for_backward(kappa)
        return y

    @staticmethod
    def backward(ctx, gy):
        (kappa,) = ctx.saved_tensors
        T = gy.shape[0]
        gu = torch.empty_like(gy)
        acc = None
        for t in range(T - 1, -1, -1):
            acc = gy[t] if acc is None else gy[t] + kappa * acc
            gu[t] = acc
        return gu, None


def leaky_scan(u: torch.Tensor, kappa: torch.Tensor) -> torch.Tensor:
    """``y[t] = kappa * y[t-1] + u[t]`` along dim 0 (``y[-1] = 0``); ``kappa`` is a constant."""
    return _LeakyScanFn.apply(u, kappa.detach())
