"""A plain numpy implementation of docs/equations.md, written independently of the kernel: dense
weight matrices, one matrix per delay, a spike history instead of a ring buffer. float64."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class RefPop:
    name: str
    kind: str  # LIF / ALIF / AHP / Readout
    n: int
    tau_m: np.ndarray  # Readout: tau
    v_th: np.ndarray | None = None
    tau_aux: np.ndarray | None = None
    beta: np.ndarray | None = None
    bias: np.ndarray | None = None
    n_ref: np.ndarray | None = None
    reset: str = "subtract"
    refractory_mode: str = "block"  # "clamp": v = 0 while refractory


@dataclass
class RefNet:
    dt: float = 1.0
    n_in: int = 0
    pops: list[RefPop] = field(default_factory=list)
    # (source pop name or "input", target pop name, W [n_tgt, n_src], D [n_tgt, n_src] int)
    projections: list[tuple[str, str, np.ndarray, np.ndarray]] = field(default_factory=list)


def decay(tau: np.ndarray, dt: float) -> np.ndarray:
    return np.array([0.0 if t == 0 else math.exp(-dt / t) for t in np.broadcast_to(tau, np.shape(tau))])


def simulate(net: RefNet, x: np.ndarray, T: int) -> dict[str, np.ndarray]:
    """Returns z [T, N] (spikes of all neurons, readouts 0), v [T, N], aux [T, N]."""
    starts, off = {}, 0
    for p in net.pops:
        starts[p.name] = off
        off += p.n
    N = off
    sl = {p.name: slice(starts[p.name], starts[p.name] + p.n) for p in net.pops}
    max_d = max([int(D.max()) for _, _, W, D in net.projections if W.size] + [0])
    Wrec = np.zeros((max_d + 1, N, N))
    Win = np.zeros((max_d + 1, N, max(net.n_in, 1)))
    for src, tgt, W, D in net.projections:
        for d in np.unique(D[W != 0]):
            Wd = np.where((D == d) & (W != 0), W, 0.0)
            if src == "input":
                Win[d, sl[tgt], :net.n_in] += Wd
            else:
                Wrec[d, sl[tgt], sl[src]] += Wd
    alpha = np.zeros(N); rho = np.zeros(N); beta = np.zeros(N); vth = np.zeros(N); bias = np.zeros(N)
    nref = np.zeros(N, dtype=int); reset_zero = np.zeros(N, bool); clamp = np.zeros(N, bool)
    kind = np.empty(N, dtype=object)
    for p in net.pops:
        s = sl[p.name]
        kind[s] = p.kind
        alpha[s] = decay(p.tau_m, net.dt)
        if p.tau_aux is not None:
            rho[s] = decay(p.tau_aux, net.dt)
        if p.beta is not None:
            beta[s] = p.beta
        if p.v_th is not None:
            vth[s] = p.v_th
        if p.bias is not None:
            bias[s] = p.bias
        if p.n_ref is not None:
            nref[s] = p.n_ref
        reset_zero[s] = p.reset == "zero"
        clamp[s] = p.refractory_mode == "clamp"
    spk = kind != "Readout"
    lif, ahp, alif = kind == "LIF", kind == "AHP", kind == "ALIF"
    v = np.zeros(N); aux = np.zeros(N); r = np.zeros(N, dtype=int)
    zs = np.zeros((T, N)); vs = np.zeros((T, N)); auxs = np.zeros((T, N))
    zprev = np.zeros(N)
    xs = np.zeros((T, max(net.n_in, 1)))
    if net.n_in:
        xs[:, :net.n_in] = x
    for t in range(T):
        I = bias.copy()
        for d in range(max_d + 1):
            if t - d >= 0:
                I += Win[d] @ xs[t - d]
                if d >= 1:
                    I += Wrec[d] @ zs[t - d]
        # auxiliary compartments (charged by the previous step's spike)
        aux_new = aux.copy()
        aux_new[ahp] = rho[ahp] * aux[ahp] + beta[ahp] * zprev[ahp]
        aux_new[alif] = rho[alif] * aux[alif] + zprev[alif]
        vv = np.where(reset_zero & (zprev > 0), 0.0, v)
        v_new = alpha * vv + I
        v_new[ahp] -= aux_new[ahp]
        sub = spk & ~reset_zero
        v_new[sub] -= vth[sub] * zprev[sub]
        r = np.where(zprev > 0, nref, np.maximum(r - 1, 0))
        thr = vth + np.where(alif, beta * aux_new, 0.0)
        z = (spk & (v_new > thr) & (r == 0)).astype(float)
        v_new[clamp & (r > 0)] = 0.0
        # readouts see this step's spikes through delay-0 synapses
        ro = ~spk
        y = alpha * v + I + Wrec[0] @ z
        v_new[ro] = y[ro]
        v, aux, zprev = v_new, aux_new, z
        zs[t], vs[t], auxs[t] = z, v, aux
    return {"z": zs, "v": vs, "aux": auxs, "starts": starts}
