"""Export to and import from NIR, the Neuromorphic Intermediate Representation (Pedersen et al., Nature
Communications 2024; PyPI ``nir``, the ``nir`` extra): the exchange format of snnTorch, Norse, Rockpool,
Sinabs, Spyx, Lava-dl and Nengo.

Layout of an exported :class:`ahpsim.Network` (``to_nir``):

* an input group -> ``nir.Input``; a LIF population -> ``nir.LIF``; a readout -> ``nir.LI`` followed by a
  ``nir.Output`` (``<name>.output``), as does a spiking population whose spikes reach no readout;
* an AHP population (NIR has no multi-compartment neuron) -> a subgraph of standard nodes: the soma
  ``nir.LIF`` ``<name>``, its spikes through ``nir.Linear(diag(beta))`` (``<name>.ahp_in``) into
  ``nir.LI`` ``<name>.ahp`` (tau_ahp, the current c), fed back through ``nir.Linear(-I)``
  (``<name>.ahp_out``) into the soma; ALIF populations are written as ``nir.LIF`` (NIR cannot express an
  adaptive threshold) with their adaptation in the metadata (``NIRApproximationWarning``);
* a projection -> one ``nir.Linear`` (``[post, pre]``, zeros: no synapse) per distinct delay, each followed
  by a ``nir.Delay`` when the delay is not the default: ahpsim's delay counts the one-step synaptic
  latency between neurons (a spike at t arrives at t + d, d >= 1; from inputs d >= 0), so the Delay node
  holds ``(d - 1) * dt`` between neurons and ``d * dt`` from inputs. Reading a graph, a Linear between
  neurons without a Delay is a one-step synapse (as a recurrent connection in discrete-time frameworks;
  a feed-forward framework that passes spikes on within the same step differs by one step per layer).

Conventions (written in the graph's metadata, ``metadata["ahpsim"]``): times in the network's unit (ms),
``dt`` the step. NIR's ``tau dv/dt = (v_leak - v) + r I`` is read by discrete-time tools (snnTorch, Norse)
with forward Euler: ``v <- (1 - dt/tau) v + (r dt / tau) I``. ahpsim's ``v <- exp(-dt/tau_m) v + I`` is
therefore written with ``tau = dt / (1 - exp(-dt/tau_m))`` and ``r = tau / dt`` (the same decay and input
per step for an Euler reader), and a foreign graph's ``tau`` is read back as that Euler decay;
NIR's LIF resets to ``v_reset`` (written as 0): ahpsim's reset to zero; its reset by subtraction,
refractoriness and biases have no NIR field (metadata; ``NIRApproximationWarning``); the threshold is
strict (``v > v_threshold``).
Every node carries its ahpsim parameters in ``metadata["ahpsim"]``, so ahpsim -> NIR -> ahpsim is exact.
``from_nir`` also reads graphs written by other tools (``nir.LIF``, ``nir.LI``, ``nir.IF``, ``nir.Linear``,
``nir.Affine``, ``nir.Delay``, ``nir.Input``, ``nir.Output``) and raises NotImplementedError naming any
other node.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from . import models
from .network import Network

__all__ = ["to_nir", "from_nir", "NIRApproximationWarning"]

_FORMAT = 1


class NIRApproximationWarning(UserWarning):
    """A part of the network that NIR's standard nodes cannot express exactly (for other readers)."""


def _nir():
    try:
        import nir
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("ahpsim.nir needs the nir package: pip install 'ahpsim[nir]'") from e
    return nir


def _fields(model) -> list[str]:
    import dataclasses

    return [f.name for f in dataclasses.fields(model)]


def _euler_tau(tau: np.ndarray, dt: float) -> np.ndarray:
    """The time constant whose forward-Euler decay 1 - dt / tau_E equals ahpsim's exp(-dt / tau)
    (what NIR's discrete-time readers, snnTorch and Norse, compute); 0 stays 0 (no carry-over: dt)."""
    tau = np.asarray(tau, np.float64)
    with np.errstate(divide="ignore"):
        return np.where(tau > 0, dt / (1.0 - np.exp(-dt / np.where(tau > 0, tau, 1.0))), dt)


def _exact_tau(tau_e: np.ndarray, dt: float) -> np.ndarray:
    """ahpsim's time constant whose exp(-dt / tau) equals the forward-Euler decay 1 - dt / tau_E."""
    tau_e = np.asarray(tau_e, np.float64)
    keep = 1.0 - dt / tau_e
    if np.any(keep < 0) or np.any(keep >= 1):
        raise NotImplementedError(f"time constants {tau_e.min()}..{tau_e.max()} below dt = {dt}: no decay in [0, 1)")
    with np.errstate(divide="ignore"):
        return np.where(keep > 0, -dt / np.log(np.where(keep > 0, keep, 0.5)), 0.0)


def _arr(model, field: str, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(getattr(model, field), np.float64), (n,)).astype(np.float64)


def to_nir(net: Network, *, dt: float | None = None, unit_r: bool = False):
    """The NIR graph (``nir.NIRGraph``) of ``net`` (see the module docstring for the layout). ``dt``: the
    step to record (default: ``net.dt``). Write it with ``nir.write(path, graph)``.

    ``unit_r``: write ``r = 1`` on every LIF and LI node and scale the rows of the ``Linear`` nodes
    feeding them by ``tau / dt`` instead (the same network in NIR's equations): the convention of
    importers that ignore ``r``, such as Norse's. :func:`from_nir` reads both."""
    nir = _nir()
    if not isinstance(net, Network):
        raise TypeError(f"net: expected an ahpsim.Network, got {type(net).__name__}")
    dt = float(net.dt if dt is None else dt)
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    approx: list[str] = []
    for g in net.inputs:
        if g.rate:
            approx.append(f"input {g.name!r} is a Poisson source ({g.rate} Hz): written as a plain input")
        nodes[g.name] = nir.Input(input_type={"input": np.array([g.n])},
                                  metadata={"ahpsim": {"kind": "input", "rate": g.rate}})
    for g in net.populations:
        m, n = g.model, g.n
        meta = {"kind": m.kind, "params": {f: (getattr(m, f) if isinstance(getattr(m, f), str)
                                              else _arr(m, f, n).tolist()) for f in _fields(m)}}
        if m.kind == "Readout":
            tau = _euler_tau(_arr(m, "tau", n), dt)
            nodes[g.name] = nir.LI(tau=tau, r=tau / dt, v_leak=np.zeros(n), metadata={"ahpsim": meta})
            nodes[g.name + ".output"] = nir.Output(output_type={"output": np.array([n])})
            edges.append((g.name, g.name + ".output"))
        else:
            tau = _euler_tau(_arr(m, "tau_m", n), dt)
            nodes[g.name] = nir.LIF(tau=tau, r=tau / dt, v_leak=np.zeros(n),
                                    v_threshold=_arr(m, "v_th", n), v_reset=np.zeros(n), metadata={"ahpsim": meta})
            if m.kind == "AHP":
                ta = _euler_tau(_arr(m, "tau_ahp", n), dt)
                nodes[g.name + ".ahp_in"] = nir.Linear(weight=np.diag(_arr(m, "beta", n)))
                nodes[g.name + ".ahp"] = nir.LI(tau=ta, r=ta / dt, v_leak=np.zeros(n),
                                                metadata={"ahpsim": {"kind": "ahp_current"}})
                nodes[g.name + ".ahp_out"] = nir.Linear(weight=-np.eye(n))
                edges += [(g.name, g.name + ".ahp_in"), (g.name + ".ahp_in", g.name + ".ahp"),
                          (g.name + ".ahp", g.name + ".ahp_out"), (g.name + ".ahp_out", g.name)]
            if m.kind == "ALIF":
                approx.append(f"ALIF population {g.name!r}: NIR has no adaptive threshold (kept in metadata)")
            if m.reset == "subtract":
                approx.append(f"population {g.name!r} resets by subtraction; NIR's LIF resets to v_reset "
                              "(kept in metadata)")
            if np.any(_arr(m, "n_ref", n)) or np.any(_arr(m, "bias", n)):
                approx.append(f"population {g.name!r}: refractoriness and biases have no NIR field (metadata)")
    groups = {g.name: g for g in list(net.inputs) + list(net.populations)}
    for k, info in enumerate(net.projections()):
        pre, post, w, d = net.projection_arrays(k)
        src, tgt = groups[info["source"]], groups[info["target"]]
        default = 0 if src.is_input else 1
        for delay in np.unique(d):
            sel = d == delay
            W = np.zeros((tgt.n, src.n))
            np.add.at(W, (post[sel].astype(np.int64), pre[sel].astype(np.int64)), w[sel].astype(np.float64))
            key = f"proj{k}.d{int(delay)}"
            nodes[key] = nir.Linear(weight=W, metadata={"ahpsim": {"kind": "projection", "index": k,
                                                                   "delay": int(delay)}})
            edges.append((src.name, key))
            if int(delay) != default:
                nodes[key + ".delay"] = nir.Delay(delay=np.full(tgt.n, (int(delay) - default) * dt))
                edges += [(key, key + ".delay"), (key + ".delay", tgt.name)]
            else:
                edges.append((key, tgt.name))
    # spiking populations whose spikes reach no readout leave the graph through an Output node
    feeds_readout = {info["source"] for info in net.projections()
                     if groups[info["target"]].model is not None and groups[info["target"]].model.kind == "Readout"}
    for g in net.populations:
        if g.model.spiking and g.name not in feeds_readout:
            nodes[g.name + ".output"] = nir.Output(output_type={"output": np.array([g.n])})
            edges.append((g.name, g.name + ".output"))
    if unit_r:
        _fold_r_into_weights(nir, nodes, edges)
    for msg in approx:
        warnings.warn(msg, NIRApproximationWarning, stacklevel=2)
    from . import __version__

    meta = {"ahpsim": {"format": _FORMAT, "version": __version__, "dt": dt, "dtype": net.dtype.name,
                       "groups": [g.name for g in list(net.inputs) + list(net.populations)],
                       "seed": int(net.seed), "time_unit": "ms", "integration": "exact exp(-dt/tau)",
                       "r": "tau / dt", "threshold": "strict v > v_threshold",
                       "reset": "to v_reset (0), or by subtraction where the node's metadata says so"}}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def _fold_r_into_weights(nir, nodes: dict, edges: list) -> None:
    """``r -> 1`` on LIF / LI nodes, their incoming ``Linear`` rows times the old ``r`` (= tau / dt); the
    factor goes to the Linear's metadata (``row_scale``) so that :func:`from_nir` undoes it."""
    for key, node in list(nodes.items()):
        if not isinstance(node, nir.Linear):
            continue
        (tgt,) = [b for a, b in edges if a == key]
        if isinstance(nodes[tgt], nir.Delay):
            (tgt,) = [b for a, b in edges if a == tgt]
        if isinstance(nodes[tgt], (nir.LIF, nir.LI)):
            r = np.asarray(nodes[tgt].r, np.float64)
            meta = dict(node.metadata or {})
            meta["ahpsim"] = dict(meta.get("ahpsim", {}), row_scale=r.tolist())
            nodes[key] = nir.Linear(weight=np.asarray(node.weight, np.float64) * r[:, None], metadata=meta)
    for key, node in list(nodes.items()):
        if isinstance(node, nir.LIF):
            nodes[key] = nir.LIF(tau=node.tau, r=np.ones_like(node.r), v_leak=node.v_leak,
                                 v_threshold=node.v_threshold, v_reset=node.v_reset, metadata=node.metadata)
        elif isinstance(node, nir.LI):
            nodes[key] = nir.LI(tau=node.tau, r=np.ones_like(node.r), v_leak=node.v_leak, metadata=node.metadata)


def from_nir(graph_or_path: Any, *, dt: float | None = None, dtype: str | None = None) -> Network:
    """An :class:`ahpsim.Network` from a NIR graph (or a file ``nir.write`` wrote). Graphs written by
    :func:`to_nir` come back exactly (their ``metadata["ahpsim"]``, dtype included unless ``dtype`` is
    given); other graphs need ``dt`` (the step, in the graph's time unit), are read with the conventions
    of the module docstring and default to float32. Raises
    NotImplementedError naming a node that ahpsim cannot represent, ValueError for a malformed graph."""
    nir = _nir()
    g = graph_or_path
    if isinstance(g, (str, Path)):
        if not Path(g).is_file():
            raise FileNotFoundError(f"no NIR file at {str(g)!r}")
        try:
            g = nir.read(str(g))
        except Exception as e:  # h5py / nir errors: not a readable NIR file
            raise ValueError(f"{str(graph_or_path)!r} is not a readable NIR file ({type(e).__name__}: {e})") from None
    if not isinstance(g, nir.NIRGraph):
        raise TypeError(f"graph_or_path: expected a nir.NIRGraph or a path, got {type(g).__name__}")
    gmeta = dict(getattr(g, "metadata", {}) or {}).get("ahpsim")
    if dt is None:
        if not gmeta:
            raise ValueError("dt: required for a graph not written by ahpsim (the step, in the graph's time unit)")
        dt = float(gmeta["dt"])
    if dtype is None:
        dtype = str(gmeta.get("dtype", "float32")) if gmeta else "float32"
    net = Network(dt=float(dt), dtype=dtype, seed=int(gmeta.get("seed", 0)) if gmeta else 0)
    groups: dict[str, Any] = {}
    gains: dict[str, np.ndarray] = {}
    structural: list[str] = []  # in the graph's node order (projections keep their order: float sums)
    # groups in the writer's order (HDF5 files list nodes alphabetically; the order fixes neuron ids,
    # and with them the order of float sums)
    names = [k.decode() if isinstance(k, bytes) else str(k) for k in (gmeta or {}).get("groups", [])]
    first = [k for k in names if k in g.nodes]
    for key in first + [k for k in g.nodes if k not in first]:
        node = g.nodes[key]
        try:
            _add_node(nir, net, g, key, node, dt, groups, gains, structural)
        except (ValueError, TypeError, NotImplementedError) as e:  # name the node
            if str(e).startswith(f"node {key!r}"):
                raise
            kind = NotImplementedError if isinstance(e, NotImplementedError) else ValueError
            raise kind(f"node {key!r} ({type(node).__name__}): {e}") from None
    _connect_nodes(nir, net, g, dt, groups, gains, structural)
    return net


def _check_finite(key: str, node, fields) -> None:
    for f in fields:
        a = np.asarray(getattr(node, f), np.float64)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"node {key!r} ({type(node).__name__}): {f} must be finite (no NaN or inf)")


def _add_node(nir, net, g, key, node, dt, groups, gains, structural) -> None:
    """One NIR node: a population or input group of ``net``, or a structural node for later."""
    meta = (getattr(node, "metadata", {}) or {}).get("ahpsim", {})
    if isinstance(node, nir.Input):
        n = int(np.prod(node.input_type["input"]))
        groups[key] = net.add_input(n, name=key, rate=float(meta.get("rate") or 0) or None)
    elif isinstance(node, (nir.LIF, nir.IF)) and meta.get("kind") in ("LIF", "AHP", "ALIF"):
        cls = {"LIF": models.LIF, "AHP": models.AHP, "ALIF": models.ALIF}[meta["kind"]]
        groups[key] = net.add_population(len(node.v_threshold), cls(**_params(meta["params"])), name=key)
    elif isinstance(node, nir.LI) and meta.get("kind") == "Readout":
        groups[key] = net.add_population(len(node.tau), models.Readout(**_params(meta["params"])), name=key)
    elif isinstance(node, nir.LI) and meta.get("kind") == "ahp_current":
        structural.append(key)
    elif isinstance(node, nir.LIF):  # a foreign LIF: exact decay of its tau, Euler input gain r dt / tau
        _check_finite(key, node, ("tau", "r", "v_threshold", "v_leak"))
        tau = np.asarray(node.tau, np.float64)
        if np.any(np.asarray(node.v_leak) != 0):
            raise NotImplementedError(f"node {key!r} (LIF): v_leak != 0 has no ahpsim equivalent")
        v_reset = getattr(node, "v_reset", None)
        if v_reset is not None and np.any(np.asarray(v_reset) != 0):
            raise NotImplementedError(f"node {key!r} (LIF): v_reset != 0 has no ahpsim equivalent")
        # NIR's LIF resets to v_reset (0): ahpsim's reset to zero; its decay is forward Euler's
        groups[key] = net.add_population(len(tau), models.LIF(tau_m=_exact_tau(tau, dt),
                                                              v_th=np.asarray(node.v_threshold), reset="zero"),
                                         name=key)
        gains[key] = np.asarray(node.r, np.float64) * dt / tau
    elif isinstance(node, nir.LI):
        _check_finite(key, node, ("tau", "r", "v_leak"))
        tau = np.asarray(node.tau, np.float64)
        groups[key] = net.add_population(len(tau), models.Readout(tau=_exact_tau(tau, dt)), name=key)
        gains[key] = np.asarray(node.r, np.float64) * dt / tau
    elif isinstance(node, (nir.Linear, nir.Affine, nir.Delay, nir.Output)):
        structural.append(key)
    else:
        raise NotImplementedError(f"node {key!r} of type {type(node).__name__}: ahpsim has no equivalent")


def _connect_nodes(nir, net, g, dt, groups, gains, structural) -> None:
    """Every Linear / Affine feeding a population (through at most one Delay) becomes a projection."""
    preds: dict[str, list[str]] = {}
    for a, b in g.edges:
        preds.setdefault(b, []).append(a)

    def order(key):  # ahpsim's projections in their original order, then the graph's order
        meta = (getattr(g.nodes[key], "metadata", {}) or {}).get("ahpsim", {})
        return (meta.get("index", -1), meta.get("delay", 0))

    for key in sorted(structural, key=order):  # every Linear / Affine feeding a population (+ a Delay)
        node = g.nodes[key]
        if not isinstance(node, (nir.Linear, nir.Affine)):
            continue
        meta = (getattr(node, "metadata", {}) or {}).get("ahpsim", {})
        srcs = [s for s in preds.get(key, [])]
        if len(srcs) != 1:
            raise ValueError(f"node {key!r}: expected one source, got {srcs}")
        src = srcs[0]
        if src not in groups or (src in g.nodes and key.endswith(".ahp_in")):
            continue  # the AHP subgraph: part of its population
        tgt, delay = _target(g, key)
        if tgt not in groups:
            if key.endswith(".ahp_out") or tgt in structural:
                continue
            raise ValueError(f"node {key!r}: its target {tgt!r} is not a population")
        W = np.asarray(node.weight, np.float64)
        want = (groups[tgt].n, groups[src].n)
        if W.shape != want:
            raise ValueError(f"node {key!r} ({type(node).__name__}): weight has shape {W.shape}, but it connects "
                             f"{src!r} ({want[1]}) to {tgt!r} ({want[0]}): expected {want}")
        _check_finite(key, node, ("weight",))
        W = W * np.asarray(gains.get(tgt, 1.0)).reshape(-1, 1)
        if "row_scale" in meta:  # written with unit_r: the rows carry tau / dt
            W = W / np.asarray(meta["row_scale"], np.float64).reshape(-1, 1)
        if isinstance(node, nir.Affine) and np.any(np.asarray(node.bias)):
            raise NotImplementedError(f"node {key!r} (Affine): biases between populations are not supported")
        steps = meta.get("delay")
        if steps is None:  # the one-step latency between neurons, plus a Delay node's delay
            steps = (0 if groups[src].is_input else 1) + (0 if delay is None else np.rint(np.asarray(delay) / dt))
        D = np.broadcast_to(np.asarray(steps, np.int64).reshape(-1, 1) if np.ndim(steps) else np.int64(steps),
                            W.shape)
        try:
            net.connect(groups[src], groups[tgt], W, delay=D)
        except (ValueError, TypeError) as e:
            raise ValueError(f"node {key!r} ({type(node).__name__}): {e}") from None


def _params(p: dict) -> dict:
    return {k: (v if isinstance(v, str) else np.asarray(v, np.float64)) for k, v in p.items()}


def _target(g, key: str):
    """(the node a Linear feeds, through at most one Delay; that Delay's delays or None)."""
    nir = _nir()
    nxt = [b for a, b in g.edges if a == key]
    if len(nxt) != 1:
        raise ValueError(f"node {key!r}: expected one target, got {nxt}")
    t = nxt[0]
    if isinstance(g.nodes[t], nir.Delay):
        after = [b for a, b in g.edges if a == t]
        if len(after) != 1:
            raise ValueError(f"node {t!r}: expected one target, got {after}")
        return after[0], np.asarray(g.nodes[t].delay, np.float64)
    return t, None


# ---------------------------------------------------------------------------------------------- CLI
def add_nir_parser(subparsers) -> None:
    """``python -m ahpsim nir export CHECKPOINT OUT`` and ``python -m ahpsim nir run FILE``."""
    import argparse

    from ._argtypes import seed, threads

    p = subparsers.add_parser("nir", help="export a trained network to NIR, or run a NIR file",
                              description="NIR (neuroir.org) export and import; needs the nir extra")
    sub = p.add_subparsers(dest="nir_command", required=True)
    e = sub.add_parser("export", help="write a checkpoint of 'ahpsim train' (or a saved network .npz) as NIR")
    e.add_argument("source", help="a checkpoint (best.pt / last.pt) or a network saved with Network.save")
    e.add_argument("out", help="the NIR file to write")
    e.set_defaults(func=_cli_export)
    r = sub.add_parser("run", help="simulate a NIR file with Poisson input and print spike rates",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    r.add_argument("file")
    r.add_argument("--dt", type=float, default=None, help="the step (needed for graphs not written by ahpsim)")
    r.add_argument("--steps", type=int, default=1000)
    r.add_argument("--trials", type=int, default=1)
    r.add_argument("--rate", type=float, default=0.05, help="input spikes per channel per step")
    r.add_argument("--seed", type=seed, default=0)
    r.add_argument("--threads", type=threads, default=1)
    r.set_defaults(func=_cli_run)


def _cli_export(args) -> int:
    import json

    src = Path(args.source)
    if src.suffix == ".npz":
        from .network import load_network

        net = load_network(src)
    else:
        from .torch.export import to_network
        from .torch.trainer import load_model

        net = to_network(load_model(src))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NIRApproximationWarning)
        graph = to_nir(net)
    _nir().write(args.out, graph)
    print(json.dumps({"written": str(args.out), "nodes": len(graph.nodes), "edges": len(graph.edges),
                      "approximations": [str(w.message) for w in caught]}))
    return 0


def _cli_run(args) -> int:
    import json

    for name in ("steps", "trials", "threads"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if not 0.0 <= args.rate <= 1.0:
        raise ValueError(f"--rate must be in [0, 1] (spikes per channel per step), got {args.rate}")
    net = from_nir(args.file, dt=args.dt)
    rng = np.random.default_rng(args.seed)
    inputs = {g.name: rng.random((args.trials, args.steps, g.n)) < args.rate for g in net.inputs if not g.rate}
    res = net.run(args.steps, inputs=inputs, n_trials=args.trials, n_threads=args.threads)
    print(json.dumps({"file": str(args.file), "dt": net.dt, "steps": args.steps, "trials": args.trials,
                      "spikes_per_neuron_per_step": {g.name: res.rate(g) for g in net.populations
                                                     if g.model.spiking}}))
    return 0
