"""Export a trained :class:`~ahpsim.torch.SpikingRNN` to the C++ kernel (``ahpsim.Network``) and back.

``to_network(model)`` builds a network with one input group ``"x"``, the populations ``"lif"``,
``"ahp"``, ``"alif"`` (those with neurons) and the readout ``"out"``; weights, masks (absent synapses),
per-synapse delays, thresholds, time constants, refractoriness (and its mode), reset mode and biases are carried over
exactly (the kernel rounds ``exp(-dt/tau)`` to its dtype as ``ahpsim.torch`` does).
``from_network(net)`` does the reverse for networks of that shape.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from .modules import NEURON_AHP, NEURON_ALIF, NEURON_LIF, SpikingRNN

__all__ = ["to_network", "from_network", "run_network", "POP_NAMES"]

POP_NAMES = {NEURON_LIF: "lif", NEURON_AHP: "ahp", NEURON_ALIF: "alif"}


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _slices(model: SpikingRNN):
    a, b = model.n_lif, model.n_lif + model.n_ahp
    return {NEURON_LIF: slice(0, a), NEURON_AHP: slice(a, b), NEURON_ALIF: slice(b, model.N)}


def _param(arr: np.ndarray):
    """A scalar when all values agree (smaller networks to build), else the per-neuron array."""
    arr = np.asarray(arr, dtype=np.float64)
    return float(arr[0]) if arr.size and np.all(arr == arr[0]) else arr


def to_network(model: SpikingRNN, dtype: Optional[str] = None, seed: int = 0, n_threads: int = 1):
    """Builds an ``ahpsim.Network`` that computes exactly what ``model`` computes (same dtype by default)."""
    import ahpsim

    if dtype is None:
        dtype = {torch.float32: "float32", torch.float64: "float64"}.get(model.dtype)
        if dtype is None:
            raise ValueError(f"model dtype {model.dtype} has no kernel counterpart; pass dtype=")
    net = ahpsim.Network(dt=model.dt, dtype=dtype, seed=seed, n_threads=n_threads)
    x = net.add_input(model.n_in, name="x")
    W_in, W_rec, W_out = (_np(w).astype(np.float64) for w in model.effective_weights())
    d_in, d_rec = _np(model.in_delay), _np(model.rec_delay)
    bias = np.zeros(model.N) if model.bias is None else _np(model.bias).astype(np.float64)
    sl = _slices(model)
    pops = {}
    for kind, s in sl.items():
        if s.stop <= s.start:
            continue
        common = dict(tau_m=_param(model.tau_m[s]), v_th=_param(model.v_th_value[s]), n_ref=model.n_ref,
                      reset=model.reset, bias=_param(bias[s]), refractory_mode=model.refractory_mode)
        if kind == NEURON_LIF:
            m = ahpsim.LIF(**common)
        elif kind == NEURON_AHP:
            m = ahpsim.AHP(tau_ahp=_param(model.tau_ahp[s]), beta=_param(model.beta_ahp[s]), **common)
        else:
            m = ahpsim.ALIF(tau_a=_param(model.tau_a[s]), beta=_param(model.beta_alif[s]), **common)
        pops[kind] = (net.add_population(s.stop - s.start, m, name=POP_NAMES[kind]), s)
    b_out = 0.0 if model.b_out is None else _param(_np(model.b_out))
    out = net.add_population(model.n_out, ahpsim.Readout(tau=_param(model.tau_out), bias=b_out), name="out")

    for kind, (g, s) in pops.items():
        if np.any(W_in[s]):
            net.connect(x, g, W_in[s], delay=d_in[s])
    for kpost, (gpost, spost) in pops.items():
        for kpre, (gpre, spre) in pops.items():
            W = W_rec[spost, spre]
            if np.any(W):
                net.connect(gpre, gpost, W, delay=d_rec[spost, spre])
    for kind, (g, s) in pops.items():
        if np.any(W_out[:, s]):
            net.connect(g, out, W_out[:, s], delay=model.out_delay)
    return net


def _values(model_obj, field: str, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(getattr(model_obj, field), dtype=np.float64), (n,)).copy()


def from_network(net, input: str = "x", readout: str = "out", surrogate=None) -> SpikingRNN:
    """Builds a :class:`SpikingRNN` from a kernel network with one input group, LIF/AHP/ALIF populations
    (any number of each; neurons are reordered LIF, AHP, ALIF) and one leaky readout.

    Requirements of the torch model: one ``n_ref`` and reset mode for all spiking neurons, one delay
    for all synapses into the readout, no multapses and no Poisson inputs/drives."""
    import ahpsim

    xg = net[input]
    og = net[readout]
    if not xg.is_input or xg.rate:
        raise ValueError(f"{input!r} must be a (non-Poisson) input group")
    if not isinstance(og.model, ahpsim.Readout):
        raise ValueError(f"{readout!r} must be a Readout population")
    order = {"LIF": 0, "AHP": 1, "ALIF": 2}
    spiking = [g for g in net.populations if g.model.spiking]
    spiking.sort(key=lambda g: (order[g.model.kind], g.index))
    offs, N = {}, 0
    for g in spiking:
        offs[g.name] = N
        N += g.n
    counts = {k: sum(g.n for g in spiking if g.model.kind == k) for k in order}
    field = {"tau_m": np.zeros(N), "v_th": np.zeros(N), "tau_ahp": np.zeros(N), "beta_ahp": np.zeros(N),
             "tau_a": np.zeros(N), "beta_alif": np.zeros(N), "bias": np.zeros(N)}
    n_refs, resets, modes = set(), set(), set()
    for g in spiking:
        s = slice(offs[g.name], offs[g.name] + g.n)
        m = g.model
        field["tau_m"][s] = _values(m, "tau_m", g.n)
        field["v_th"][s] = _values(m, "v_th", g.n)
        field["bias"][s] = _values(m, "bias", g.n)
        if m.kind == "AHP":
            field["tau_ahp"][s] = _values(m, "tau_ahp", g.n)
            field["beta_ahp"][s] = _values(m, "beta", g.n)
        elif m.kind == "ALIF":
            field["tau_a"][s] = _values(m, "tau_a", g.n)
            field["beta_alif"][s] = _values(m, "beta", g.n)
        n_refs.update(np.unique(np.asarray(m.n_ref)).tolist())
        resets.add(m.reset)
        modes.add(m.refractory_mode)
    if len(n_refs) > 1 or len(resets) > 1 or len(modes) > 1:
        raise ValueError("all spiking neurons must share n_ref, the reset mode and the refractory mode")

    W_in = np.zeros((N, xg.n))
    D_in = np.zeros((N, xg.n), np.int64)
    W_rec = np.zeros((N, N))
    D_rec = np.ones((N, N), np.int64)
    W_out = np.zeros((og.n, N))
    M_in = np.zeros((N, xg.n), bool)
    M_rec = np.zeros((N, N), bool)
    M_out = np.zeros((og.n, N), bool)
    out_delays = set()
    for k, info in enumerate(net.projections()):
        pre, post, w, d = net.projection_arrays(k)
        pre, post = pre.astype(np.int64), post.astype(np.int64)
        src, tgt = net[info["source"]], net[info["target"]]
        if tgt.name == og.name:
            if src.is_input:
                raise ValueError("input -> readout synapses are not supported by SpikingRNN")
            cols = pre + offs[src.name]
            _scatter(W_out, M_out, None, post, cols, w, d)
            out_delays.update(np.unique(d).tolist())
        elif src.is_input:
            if src.name != xg.name:
                raise ValueError(f"a second input group ({src.name!r}) is not supported")
            _scatter(W_in, M_in, D_in, post + offs[tgt.name], pre, w, d)
        else:
            if not tgt.model.spiking:
                raise ValueError(f"a second readout ({tgt.name!r}) is not supported")
            _scatter(W_rec, M_rec, D_rec, post + offs[tgt.name], pre + offs[src.name], w, d)
    if len(out_delays) > 1:
        raise ValueError("all synapses into the readout must share one delay")
    has_bias = bool(np.any(field["bias"]))
    b_out = _values(og.model, "bias", og.n)
    dtype = torch.float64 if np.dtype(net.dtype) == np.float64 else torch.float32
    model = SpikingRNN(
        xg.n, og.n, n_lif=counts["LIF"], n_ahp=counts["AHP"], n_alif=counts["ALIF"],
        tau_m=field["tau_m"], v_th=field["v_th"],
        tau_ahp=field["tau_ahp"] if counts["AHP"] else 700.0, beta_ahp=field["beta_ahp"] if counts["AHP"] else 0.0,
        tau_a=field["tau_a"] if counts["ALIF"] else 700.0, beta_alif=field["beta_alif"] if counts["ALIF"] else 0.0,
        n_ref=int(n_refs.pop()) if n_refs else 0, reset=resets.pop() if resets else "subtract",
        refractory_mode=modes.pop() if modes else "block",
        tau_out=_values(og.model, "tau", og.n), rec_delay=D_rec, in_delay=D_in,
        out_delay=int(out_delays.pop()) if out_delays else 1, in_mask=M_in, rec_mask=M_rec, out_mask=M_out,
        self_connections=True, bias=has_bias, out_bias=bool(np.any(b_out)), dt=net.dt,
        surrogate=surrogate, dtype=dtype)
    with torch.no_grad():
        model.w_in.copy_(torch.as_tensor(W_in))
        model.w_rec.copy_(torch.as_tensor(W_rec))
        model.w_out.copy_(torch.as_tensor(W_out))
        if has_bias:
            model.bias.copy_(torch.as_tensor(field["bias"]))
        if model.b_out is not None:
            model.b_out.copy_(torch.as_tensor(b_out))
    return model


def _scatter(W, M, D, rows, cols, w, d):
    if np.any(M[rows, cols]):
        raise ValueError("multapses (two synapses between one pair) are not supported by SpikingRNN")
    flat = rows * W.shape[1] + cols
    if np.unique(flat).size != flat.size:
        raise ValueError("multapses (two synapses between one pair) are not supported by SpikingRNN")
    W[rows, cols] = w
    M[rows, cols] = True
    if D is not None:
        D[rows, cols] = d


def run_network(net, x, model: Optional[SpikingRNN] = None, n_threads: int = 1):
    """Runs the exported network on ``x`` [B, T, n_in] from a fresh state; returns
    ``(z bool [B, T, N] in the model's neuron order, y [B, T, n_out])``."""
    if torch.is_tensor(x):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.dtype != np.bool_:
        x = x.astype(np.dtype(net.dtype))
    net.reset_state()
    res = net.run(x.shape[1], inputs={"x": x}, n_threads=n_threads)
    names = [g.name for g in net.populations if g.model.spiking]
    order = [POP_NAMES[k] for k in (NEURON_LIF, NEURON_AHP, NEURON_ALIF)]
    names = [n for n in order if n in names] + [n for n in names if n not in order]
    z = np.concatenate([res.raster(n) for n in names], axis=2)
    return z, res.readout("out")


def to_nir(model: SpikingRNN, *, dt: Optional[float] = None, unit_r: bool = False):
    """The NIR graph of a :class:`SpikingRNN`: :func:`ahpsim.nir.to_nir` of :func:`to_network` (the model's
    dtype). Needs the ``nir`` extra."""
    from ..nir import to_nir as _to_nir

    if not isinstance(model, SpikingRNN):
        raise TypeError(f"model: expected a SpikingRNN, got {type(model).__name__}")
    return _to_nir(to_network(model), dt=dt, unit_r=unit_r)


def from_nir(graph_or_path, *, dt: Optional[float] = None, dtype: torch.dtype = torch.float32,
             surrogate=None) -> SpikingRNN:
    """A :class:`SpikingRNN` (for further training) from a NIR graph with one input, one recurrent layer of
    LIF / AHP / ALIF populations and one leaky readout: :func:`ahpsim.nir.from_nir`, then
    :func:`from_network`. ``dt`` as for :func:`ahpsim.nir.from_nir`. Raises ValueError when the graph is
    not of that shape (naming what it has)."""
    from ..nir import from_nir as _from_nir

    names = {torch.float32: "float32", torch.float64: "float64"}
    if dtype not in names:
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    net = _from_nir(graph_or_path, dt=dt, dtype=names[dtype])
    inputs = [g.name for g in net.inputs]
    readouts = [g.name for g in net.populations if not g.model.spiking]
    if len(inputs) != 1 or len(readouts) != 1:
        raise ValueError(f"a SpikingRNN needs one input and one readout; the graph has inputs {inputs} and "
                         f"readouts {readouts} (use ahpsim.nir.from_nir for an ahpsim.Network)")
    return from_network(net, inputs[0], readouts[0], surrogate=surrogate).to(dtype)
