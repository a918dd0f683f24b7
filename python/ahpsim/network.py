"""The user-facing network: build from numpy / scipy arrays, run batched trials, record.

A :class:`Network` owns everything (no global simulator state). Its structure can change while it
holds no simulation state: before the first run, or after :meth:`Network.reset_state`.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence, Union

import numpy as np

from . import _core
from ._validation import MAX_THREADS, as_int, as_real_array, cast_checked, check_memory
from .models import NeuronModel, Readout
from .result import SimResult

__all__ = ["Network", "Group", "Projection", "load_network"]

MAX_DELAY = 4096  # steps; the ring buffer holds max_delay + 1 slots of every neuron's input
_KINDS = {"LIF": _core.ModelKind.LIF, "ALIF": _core.ModelKind.ALIF, "AHP": _core.ModelKind.AHP,
          "Readout": _core.ModelKind.Readout}


@dataclass(frozen=True)
class Group:
    """Handle of an input group or a neuron population of one network."""

    name: str
    kind: str  # "input" or "population"
    index: int  # position among the network's inputs or populations
    n: int
    start: int  # first global neuron id (populations); 0 for inputs
    model: NeuronModel | None = None
    rate: float = 0.0  # Poisson rate (Hz) of a Poisson input group
    owner: int = 0  # id() of the owning network, to catch groups of another network

    @property
    def is_input(self) -> bool:
        return self.kind == "input"

    @property
    def ids(self) -> np.ndarray:
        """Global neuron ids of a population."""
        if self.is_input:
            raise ValueError(f"input group {self.name!r} has no neuron ids")
        return np.arange(self.start, self.start + self.n)

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        what = self.model.kind if self.model is not None else ("Poisson input" if self.rate else "input")
        return f"Group({self.name!r}, {what}, n={self.n})"


GroupLike = Union[Group, str]
InputLike = Any


class Projection:
    """The synapses of one ``connect`` call: read and set their weights and delays.

    Synapses are listed in the order the kernel stores them (grouped by source neuron, then by delay
    and target), like the synapse index of Brian2's ``Synapses`` or NEST's ``SynapseCollection``:
    ``pre`` and ``post`` (local indices of the source and target groups), ``weights`` (units of the
    target's input current) and ``delays`` (steps) are arrays of ``n_synapses`` values in that order.

    * ``proj.weights = w`` takes a scalar or one value per synapse (finite, representable in the
      network's dtype) and may be set at any time; spikes already in flight keep their old weights.
    * ``proj.delays = d`` takes whole steps (>= 1 between spiking neurons, >= 0 from an input group or
      into a readout, <= 4096) and needs a network without state (before a run or after
      :meth:`Network.reset_state`); it re-sorts the synapses, so read ``pre`` / ``post`` again.
    * ``to_dense()``: the weight matrix [n_target, n_source] (multapses summed).

    A ``Projection`` is also its index (``operator.index``), so ``net.projection_arrays(proj)`` works.
    """

    def __init__(self, net: "Network", index: int):
        self._net, self.index = net, int(index)

    def _info(self) -> dict:
        return self._net.projections()[self.index]

    @property
    def source(self) -> Group:
        return self._net[self._info()["source"]]

    @property
    def target(self) -> Group:
        return self._net[self._info()["target"]]

    @property
    def n_synapses(self) -> int:
        return int(self._info()["n_synapses"])

    def __len__(self) -> int:
        return self.n_synapses

    def __index__(self) -> int:
        return self.index

    @property
    def pre(self) -> np.ndarray:
        """uint32 [n_synapses]: local index of each synapse's source neuron."""
        return self._net.projection_arrays(self.index)[0]

    @property
    def post(self) -> np.ndarray:
        """uint32 [n_synapses]: local index of each synapse's target neuron."""
        return self._net.projection_arrays(self.index)[1]

    @property
    def weights(self) -> np.ndarray:
        """[n_synapses] weights in the network's dtype (a copy; assign to change them)."""
        return self._net.projection_arrays(self.index)[2]

    @weights.setter
    def weights(self, values: Any) -> None:
        w = Network._per_synapse(values, self.n_synapses, "weights")
        w = cast_checked(w, self._net.dtype, "weights")
        self._net._engine.set_projection_weights(self.index, w)

    @property
    def delays(self) -> np.ndarray:
        """uint16 [n_synapses] delays in steps (a copy; assign to change them)."""
        return self._net.projection_arrays(self.index)[3]

    @delays.setter
    def delays(self, values: Any) -> None:
        self._net._check_mutable("change delays")
        src, tgt = self.source, self.target
        minimum = 0 if src.is_input or isinstance(tgt.model, Readout) else 1
        self._net._engine.set_projection_delays(self.index, Network._delays(values, self.n_synapses, minimum))

    def to_dense(self) -> np.ndarray:
        """float64 [n_target, n_source]: the weights as a matrix (multapses summed, no synapse = 0)."""
        pre, post, w, _ = self._net.projection_arrays(self.index)
        W = np.zeros((self.target.n, self.source.n))
        np.add.at(W, (post.astype(np.int64), pre.astype(np.int64)), w.astype(np.float64))
        return W

    def __repr__(self) -> str:
        i = self._info()
        return (f"Projection({self.index}: {i['source']!r} -> {i['target']!r}, {i['n_synapses']} synapses, "
                f"delays {i['min_delay']}..{i['max_delay']})")


# bytes of per-neuron parameters and state kept while building (an upper estimate)
_PARAM_BYTES_PER_NEURON = 128


class Network:
    """A network of spiking populations, external inputs and leaky readouts.

    Parameters
    ----------
    dt : float
        Time step in ms (default 1.0).
    dtype : "float32" or "float64"
        Precision of the float engine (default float32; float64 is used by the reference tests).
    seed : int
        Seed of every random stream of this network (Poisson sources and drives, random
        connectivity); each trial draws from its own stream, so results do not depend on threads.
    n_threads : int
        Default number of threads over which :meth:`run` spreads the trials.
    comm : mpi4py communicator, optional
        Run one network over the processes of ``comm`` (e.g. ``MPI.COMM_WORLD`` under ``mpiexec``):
        every process builds the same network with the same calls; each owns a contiguous range of
        neurons (whole blocks of 1,024, see :attr:`partition`), stores only the synapses onto them and
        updates only them; spikes are exchanged once per smallest delay. The spikes are those of one
        process, bit for bit, for any number of processes (docs/distributed.md). Needs ``mpi4py``
        (``pip install ahpsim[mpi]``).
    """

    def __init__(self, dt: float = 1.0, dtype: Any = "float32", seed: int = 0, n_threads: int = 1,
                 comm: Any = None) -> None:
        if isinstance(dt, (bool, np.bool_)) or not isinstance(dt, (int, float, np.integer, np.floating)):
            raise TypeError(f"dt must be a number of ms, got {type(dt).__name__}")
        if not (math.isfinite(dt) and dt > 0):
            raise ValueError(f"dt must be a positive finite number of ms, got {dt}")
        try:
            dt_np = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from None
        if dt_np not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        self.dtype = dt_np
        self.seed = as_int(seed, "seed", minimum=0, maximum=2**64 - 1)
        self.n_threads = as_int(n_threads, "n_threads", minimum=1, maximum=MAX_THREADS)
        self._engine = (_core.Network32 if dt_np == np.float32 else _core.Network64)(float(dt), self.seed)
        self._groups: dict[str, Group] = {}
        self._inputs: list[Group] = []
        self._pops: list[Group] = []
        self._snapshots: dict[str, Any] = {}
        self._drives: list[tuple[str, float, float]] = []  # (target, rate Hz, weight), for save()
        if comm is not None and not all(hasattr(comm, a) for a in ("Get_rank", "Get_size", "allgather")):
            raise TypeError(f"comm must be an mpi4py communicator (e.g. MPI.COMM_WORLD), got {type(comm).__name__}")
        self.comm = comm
        self._partitioned = False

    # ------------------------------------------------------------------ structure
    @property
    def dt(self) -> float:
        return self._engine.dt

    @property
    def t(self) -> int:
        """Steps simulated since the state was created (0 without state)."""
        return self._engine.t

    @property
    def n_neurons(self) -> int:
        return self._engine.n_neurons

    @property
    def n_synapses(self) -> int:
        return self._engine.n_synapses

    @property
    def synapse_bytes(self) -> int:
        """Bytes held by the synapse tables (targets, weights, delay segments, row pointers)."""
        return self._engine.synapse_bytes

    @property
    def populations(self) -> list[Group]:
        return list(self._pops)

    @property
    def inputs(self) -> list[Group]:
        return list(self._inputs)

    def __getitem__(self, name: str) -> Group:
        try:
            return self._groups[name]
        except KeyError:
            raise KeyError(f"no group named {name!r}; groups: {sorted(self._groups)}") from None

    def __repr__(self) -> str:
        pops = ", ".join(f"{g.name}:{g.model.kind}x{g.n}" for g in self._pops if g.model)
        return (f"Network(dt={self.dt}, dtype={self.dtype.name}, inputs={[g.name for g in self._inputs]}, "
                f"populations=[{pops}], synapses={self.n_synapses})")

    def summary(self) -> str:
        """A table of the groups, projections and drives, with synapse counts and memory."""
        lines = [f"Network: dt = {self.dt} ms, {self.dtype.name}, seed {self.seed}, {self.n_neurons} neurons, "
                 f"{self.n_synapses} synapses ({self.synapse_bytes / 1e6:.2f} MB), "
                 f"{'state for %d trials at step %d' % (self.n_trials, self.t) if self.n_trials else 'no state'}"]
        for g in self._inputs:
            lines.append(f"  input      {g.name:<12} n={g.n:<8} {'Poisson %.1f Hz' % g.rate if g.rate else 'external'}")
        for g in self._pops:
            m = g.model
            params = ", ".join(f"{f.name}={_short(getattr(m, f.name))}" for f in dataclasses.fields(m))
            lines.append(f"  population {g.name:<12} n={g.n:<8} {m.kind}({params})")
        for p in self.projections():
            kind = "dense rows" if p["dense_rows"] else ("shared weight" if p["homogeneous_weight"] else "sparse")
            lines.append(f"  projection {p['source']} -> {p['target']}: {p['n_synapses']} synapses, delays "
                         f"{p['min_delay']}..{p['max_delay']}, {kind}, {p['bytes'] / 1e3:.1f} kB")
        for target, rate, weight in self._drives:
            lines.append(f"  drive      Poisson {rate:.1f} Hz x weight {weight:g} -> {target}")
        return "\n".join(lines)

    def _new_name(self, name: str | None, prefix: str) -> str:
        if name is None:
            k = len(self._groups)
            while f"{prefix}{k}" in self._groups:
                k += 1
            return f"{prefix}{k}"
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty string, got {name!r}")
        if name in self._groups:
            raise ValueError(f"name {name!r} is already used by another group")
        return name

    def _check_mutable(self, what: str) -> None:
        if self._engine.has_state:
            raise RuntimeError(f"cannot {what} while the network holds simulation state; call reset_state() first")

    @property
    def partition(self) -> tuple[int, int]:
        """``(lo, hi)``: the global neuron ids this process owns (all of them without ``comm``). Fixed
        at the first connection, drive or run: whole blocks of 1,024 neurons, spread evenly over the ranks."""
        self._ensure_partition()
        return tuple(int(x) for x in self._engine.partition)  # type: ignore[return-value]

    def _ensure_partition(self) -> None:
        if self.comm is None or self._partitioned:
            return
        rank, size = self.comm.Get_rank(), self.comm.Get_size()
        n_blocks = -(-self.n_neurons // 1024)
        b0, b1 = n_blocks * rank // size, n_blocks * (rank + 1) // size
        self._engine.set_partition(b0 * 1024, min(self.n_neurons, b1 * 1024))
        self._partitioned = True

    def add_input(self, n: int, name: str | None = None, *, rate: float | None = None) -> Group:
        """Add ``n`` external input channels.

        Without ``rate`` the channels take the data passed to :meth:`run` (spikes or analog values).
        With ``rate`` (Hz) they are a seeded Poisson source: each channel spikes with probability
        ``rate * dt / 1000`` per step, independently in every trial.
        """
        self._check_mutable("add an input group")
        n = as_int(n, "n", minimum=1, maximum=2**31 - 1)
        r = 0.0
        if rate is not None:
            r = float(as_real_array(rate, "rate"))
            if r < 0 or r * self.dt / 1000.0 > 1.0:
                raise ValueError(f"rate must be in [0, {1000.0 / self.dt}] Hz (at most one spike per step), got {r}")
        name = self._new_name(name, "input")
        index = self._engine.add_input(name, n, r)
        g = Group(name, "input", index, n, 0, None, r, id(self))
        self._groups[name] = g
        self._inputs.append(g)
        return g

    def add_population(self, n: int, model: NeuronModel, name: str | None = None) -> Group:
        """Add ``n`` neurons of one model (:class:`LIF`, :class:`AHP`, :class:`ALIF`, :class:`Readout`)."""
        self._check_mutable("add a population")
        if self._partitioned:
            raise RuntimeError("with comm, add every population before the first connection, drive or run "
                               "(the neurons are then divided among the processes)")
        n = as_int(n, "n", minimum=1, maximum=2**31 - 1)
        if self.n_neurons + n > 2**32 - 1:
            raise ValueError(f"n = {n}: a network holds at most 2**32 - 1 neurons, it has {self.n_neurons}")
        check_memory(n * _PARAM_BYTES_PER_NEURON, f"add_population(n={n})")
        if not isinstance(model, NeuronModel) or model.kind not in _KINDS:
            raise TypeError(f"model must be an ahpsim.LIF, AHP, ALIF or Readout instance, got {model!r}")
        p = model.arrays(n)
        empty = np.zeros(0)
        kind = model.kind
        reset = _core.ResetMode.Zero if getattr(model, "reset", "subtract") == "zero" else _core.ResetMode.Subtract
        tau_aux = p.get("tau_ahp", p.get("tau_a", empty))
        name = self._new_name(name, kind.lower())
        index = self._engine.add_population(
            name, n, _KINDS[kind], reset,
            p["tau"] if kind == "Readout" else p["tau_m"],
            tau_aux, p.get("beta", empty), p.get("v_th", empty), p["bias"],
            p.get("n_ref", np.zeros(n, dtype=np.int32)),
            _core.RefractoryMode.Clamp if getattr(model, "refractory_mode", "block") == "clamp"
            else _core.RefractoryMode.Block)
        start = sum(g.n for g in self._pops)
        g = Group(name, "population", index, n, start, model, 0.0, id(self))
        self._groups[name] = g
        self._pops.append(g)
        return g

    def _group(self, g: GroupLike, arg: str) -> Group:
        if isinstance(g, str):
            return self[g]
        if not isinstance(g, Group):
            raise TypeError(f"{arg} must be a Group returned by this network (or its name), got {type(g).__name__}")
        if g.owner != id(self) or self._groups.get(g.name) is not g:
            raise ValueError(f"{arg}: group {g.name!r} does not belong to this network")
        return g

    def connect(self, source: GroupLike, target: GroupLike, weights: Any = None, delay: Any = None, *,
                pre: Any = None, post: Any = None) -> Projection:
        """Connect ``source`` (input group or spiking population) to ``target`` (population).

        Three forms:

        * ``connect(src, tgt, W)`` with a dense array ``W[n_target, n_source]``; zero entries are
          no synapse. ``delay`` is an int or an int array of the same shape.
        * ``connect(src, tgt, S)`` with a ``scipy.sparse`` matrix ``[n_target, n_source]``; every stored
          entry is a synapse. ``delay`` is an int.
        * ``connect(src, tgt, weights=w, pre=i, post=j, delay=d)``: connection lists of local
          indices; ``w`` and ``d`` scalars or one value per synapse.

        Delays are whole steps: >= 1 between spiking neurons, >= 0 from an input group or into a
        readout; default 0 from inputs and 1 otherwise. Returns a :class:`Projection`, whose
        weights and delays can be read and set.

        With ``comm`` each process keeps the synapses onto its own neurons (:attr:`partition`) and
        drops the others, so a connection list may hold just those: no process needs the whole network.
        """
        self._check_mutable("connect")
        src = self._group(source, "source")
        tgt = self._group(target, "target")
        if tgt.is_input:
            raise ValueError(f"target {tgt.name!r} is an input group; targets must be populations")
        if not src.is_input and not src.model.spiking:  # type: ignore[union-attr]
            raise ValueError(f"source {src.name!r} is a readout; readouts do not spike")
        zero_ok = src.is_input or isinstance(tgt.model, Readout)
        min_delay = 0 if zero_ok else 1
        if delay is None:
            delay = 0 if src.is_input else 1

        if pre is not None or post is not None:
            if pre is None or post is None:
                raise ValueError("pre and post must be given together (connection lists)")
            pre_i = self._index_array(pre, src.n, "pre")
            post_i = self._index_array(post, tgt.n, "post")
            if pre_i.shape != post_i.shape:
                raise ValueError(f"pre and post must have the same length, got {pre_i.size} and {post_i.size}")
            if weights is None:
                raise ValueError("weights is required with pre/post (a scalar or one value per synapse)")
            w = self._per_synapse(weights, pre_i.size, "weights")
            d = self._delays(delay, pre_i.size, min_delay)
        elif weights is None:
            raise ValueError("weights is required: a dense [n_target, n_source] array, a scipy.sparse matrix, "
                             "or per-synapse values with pre= and post=")
        elif hasattr(weights, "tocoo") and hasattr(weights, "nnz"):
            coo = weights.tocoo()
            if coo.shape != (tgt.n, src.n):
                raise ValueError(f"weights must have shape (n_target, n_source) = ({tgt.n}, {src.n}), got {coo.shape}")
            w = as_real_array(coo.data, "weights").astype(np.float64)
            post_i = np.asarray(coo.row, dtype=np.int64)
            pre_i = np.asarray(coo.col, dtype=np.int64)
            d = self._delays(delay, w.size, min_delay)
        else:
            W = as_real_array(weights, "weights")
            if W.ndim != 2 or W.shape != (tgt.n, src.n):
                raise ValueError(f"weights must have shape (n_target, n_source) = ({tgt.n}, {src.n}), got {W.shape}")
            post_i, pre_i = np.nonzero(W)
            w = W[post_i, pre_i]
            if np.ndim(delay) == 0:
                d = self._delays(delay, w.size, min_delay)
            else:
                D = as_real_array(delay, "delay")
                if D.shape != W.shape:
                    raise ValueError(f"delay must be an int or have the shape of weights {W.shape}, got {D.shape}")
                d = self._delays(D[post_i, pre_i], w.size, min_delay)
        w = cast_checked(w, self.dtype, "weights")
        if self.comm is not None:  # this process stores the synapses onto its own neurons
            self._ensure_partition()
            lo, hi = self._engine.partition
            mine = (tgt.start + post_i >= lo) & (tgt.start + post_i < hi)
            pre_i, post_i, w, d = pre_i[mine], post_i[mine], w[mine], d[mine]
        k = self._engine.connect(src.is_input, src.index, tgt.index, pre_i.astype(np.uint32),
                                 post_i.astype(np.uint32), w, d)
        return Projection(self, k)

    def connect_random(self, source: GroupLike, target: GroupLike, *, indegree: int, weight: float,
                       delay: int | None = None, seed: int | None = None, autapses: bool = False) -> Projection:
        """Random connectivity drawn in C++: each target neuron gets exactly ``indegree`` synapses from
        uniformly drawn sources (with replacement; no self-connections unless ``autapses``), as NEST's
        ``fixed_indegree``. All synapses share ``weight`` and ``delay``. Meant for very large networks.
        Returns a :class:`Projection`."""
        self._check_mutable("connect")
        src = self._group(source, "source")
        tgt = self._group(target, "target")
        if tgt.is_input:
            raise ValueError(f"target {tgt.name!r} is an input group; targets must be populations")
        if not src.is_input and not src.model.spiking:  # type: ignore[union-attr]
            raise ValueError(f"source {src.name!r} is a readout; readouts do not spike")
        k = as_int(indegree, "indegree", minimum=0, maximum=2**31 - 1)
        zero_ok = src.is_input or isinstance(tgt.model, Readout)
        d = as_int(1 if delay is None else delay, "delay", minimum=0 if zero_ok else 1, maximum=MAX_DELAY)
        w = float(as_real_array(weight, "weight"))
        if np.ndim(weight) != 0:
            raise ValueError("weight must be a scalar")
        s = self.seed if seed is None else as_int(seed, "seed", minimum=0, maximum=2**64 - 1)
        if not isinstance(autapses, (bool, np.bool_)):
            raise TypeError("autapses must be a bool")
        if src.index == tgt.index and not src.is_input and not autapses and k > 0 and src.n < 2:
            raise ValueError("indegree > 0 without autapses needs a source with at least 2 neurons")
        if tgt.n * k > 2**40:
            raise ValueError(f"indegree * n_target = {tgt.n * k} synapses is too many")
        self._ensure_partition()
        return Projection(self, self._engine.connect_fixed_indegree(src.is_input, src.index, tgt.index, k, w, d, s,
                                                                     bool(autapses)))

    def add_poisson_drive(self, target: GroupLike, rate: float, weight: float) -> None:
        """Independent Poisson input into every neuron of ``target``: each step adds ``weight * k``,
        ``k ~ Poisson(rate * dt / 1000)`` (rate in Hz, e.g. the summed rate of many external sources)."""
        self._check_mutable("add a Poisson drive")
        tgt = self._group(target, "target")
        if tgt.is_input:
            raise ValueError("target must be a population")
        r = float(as_real_array(rate, "rate"))
        w = float(as_real_array(weight, "weight"))
        if np.ndim(rate) or np.ndim(weight):
            raise ValueError("rate and weight must be scalars")
        if r < 0 or r * self.dt / 1000.0 > 1e6:
            raise ValueError(f"rate must be >= 0 Hz and give at most 1e6 events per step, got {r}")
        self._ensure_partition()
        self._engine.add_poisson_drive(tgt.index, r, w)
        self._drives.append((tgt.name, r, w))

    def projections(self) -> list[dict]:
        """One dict per projection: source, target, synapse count, bytes, delay range."""
        out = []
        for p in self._engine.projection_info():
            src = (self._inputs if p["pre_is_input"] else self._pops)[p["pre"]]
            p = dict(p, source=src.name, target=self._pops[p["post"]].name)
            out.append(p)
        return out

    def projection(self, k: int) -> Projection:
        """The :class:`Projection` of index ``k`` (the order of :meth:`projections`)."""
        return Projection(self, as_int(k, "k", minimum=0, maximum=len(self._engine.projection_info()) - 1))

    def projection_arrays(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(pre_local, post_local, weight, delay)`` of projection ``k`` as stored (grouped by source)."""
        k = as_int(k, "k", minimum=0, maximum=len(self._engine.projection_info()) - 1)
        pre, post, w, d = self._engine.projection_arrays(k)
        tgt = self._pops[self._engine.projection_info()[k]["post"]]
        return pre, post - np.uint32(tgt.start), w, d

    @staticmethod
    def _index_array(idx: Any, n: int, name: str) -> np.ndarray:
        arr = np.asarray(idx)
        if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
            if (np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))
                    and np.all(np.abs(arr) < 2**62)):
                arr = arr.astype(np.int64)
            else:
                raise TypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
        arr = arr.reshape(-1) if arr.ndim <= 1 else None  # type: ignore[assignment]
        if arr is None:
            raise ValueError(f"{name} must be one-dimensional")
        if arr.size and (arr.min() < 0 or arr.max() >= n):
            raise ValueError(f"{name} indices must be in [0, {n}), got range [{arr.min()}, {arr.max()}]")
        return arr.astype(np.int64)

    @staticmethod
    def _per_synapse(values: Any, n: int, name: str) -> np.ndarray:
        arr = as_real_array(values, name)
        if arr.ndim == 0:
            return np.full(n, float(arr))
        if arr.shape != (n,):
            raise ValueError(f"{name} must be a scalar or have one value per synapse ({n}), got shape {arr.shape}")
        return arr.astype(np.float64)

    @staticmethod
    def _delays(delay: Any, n: int, minimum: int) -> np.ndarray:
        arr = as_real_array(delay, "delay")
        if np.issubdtype(arr.dtype, np.floating) and np.any(arr != np.round(arr)):
            raise ValueError("delay must be whole steps (integers)")
        if arr.ndim == 0:
            arr = np.full(n, arr)
        if arr.shape != (n,):
            raise ValueError(f"delay must be an int or one per synapse ({n}), got shape {arr.shape}")
        if arr.size and (arr.min() < minimum or arr.max() > MAX_DELAY):
            what = "from an input or into a readout" if minimum == 0 else "between spiking neurons"
            raise ValueError(f"delay must be in [{minimum}, {MAX_DELAY}] steps {what}, got range "
                             f"[{arr.min()}, {arr.max()}]")
        return np.ascontiguousarray(arr, dtype=np.uint16)

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike) -> None:
        """Write the network's structure (groups, models, synapses, drives; not its state) to an
        ``.npz`` file, atomically (a temporary file renamed into place). Read it with :func:`load_network`.

        Raises ValueError for a network partitioned over processes (``comm``): each holds only its part."""
        if self.comm is not None:
            raise ValueError("save() is not available with comm: each process holds only the synapses onto "
                             "its own neurons; build the network from the same script instead")
        path = os.fspath(path)
        if not path.endswith(".npz"):
            path += ".npz"
        tmp = f"{path}.tmp{os.getpid()}.npz"
        try:
            self._write_npz(tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    # pickle / copy.deepcopy: the structure as save() writes it, plus the state and stored states
    def __getstate__(self) -> dict:
        buf = io.BytesIO()
        self._write_npz(buf)
        return {"npz": buf.getvalue(), "n_threads": self.n_threads,
                "state": self._engine.snapshot() if self._engine.has_state else None,
                "snapshots": dict(self._snapshots)}

    def __setstate__(self, state: dict) -> None:
        net = _load_npz(io.BytesIO(state["npz"]), "pickled network", dtype=None, n_threads=state["n_threads"])
        self.__dict__.update(net.__dict__)
        # the groups were made by the temporary network: they must name this one as their owner
        self._inputs = [dataclasses.replace(g, owner=id(self)) for g in self._inputs]
        self._pops = [dataclasses.replace(g, owner=id(self)) for g in self._pops]
        self._groups = {g.name: g for g in self._inputs + self._pops}
        if state["state"] is not None:
            self._engine.restore(state["state"])
        self._snapshots = dict(state["snapshots"])

    def _write_npz(self, file: Any) -> None:
        header: dict[str, Any] = {"format": "ahpsim-network", "version": 1, "dt": self.dt, "dtype": self.dtype.name,
                                  "seed": self.seed, "n_threads": self.n_threads, "inputs": [], "populations": [],
                                  "projections": [], "drives": [list(d) for d in self._drives]}
        arrays: dict[str, np.ndarray] = {}
        for g in self._inputs:
            header["inputs"].append({"name": g.name, "n": g.n, "rate": g.rate})
        for g in self._pops:
            m = g.model
            params = {}
            for f in dataclasses.fields(m):
                v = getattr(m, f.name)
                if isinstance(v, str):
                    params[f.name] = v
                else:
                    key = f"pop{g.index}_{f.name}"
                    arrays[key] = np.asarray(v)
                    params[f.name] = {"array": key}
            header["populations"].append({"name": g.name, "n": g.n, "model": m.kind, "params": params})
        for k, info in enumerate(self.projections()):
            pre, post, w, d = self.projection_arrays(k)
            for name, arr in (("pre", pre), ("post", post), ("w", w), ("d", d)):
                arrays[f"proj{k}_{name}"] = arr
            header["projections"].append({"source": info["source"], "target": info["target"]})
        np.savez_compressed(file, __header__=np.array(json.dumps(header)), **arrays)

    # ------------------------------------------------------------------ state
    @property
    def n_trials(self) -> int:
        """Number of trials in the current state (0 without state)."""
        return self._engine.n_trials

    def init_state(self, n_trials: int = 1, first_trial: int = 0) -> None:
        """Create fresh state (all zero, t = 0) for ``n_trials`` independent trials.

        ``first_trial``: trial ``k`` draws the random streams (Poisson inputs and drives) of trial
        ``first_trial + k`` of a run from a fresh state, so that a data set run in chunks (on several
        processes, :mod:`ahpsim.distributed`) gives the spikes of one run over all its trials."""
        n_trials = as_int(n_trials, "n_trials", minimum=1, maximum=2**31 - 1)
        first_trial = as_int(first_trial, "first_trial", minimum=0, maximum=2**63 - 1)
        self._check_state_memory(n_trials)
        self._engine.init_state(n_trials, first_trial)

    def _check_state_memory(self, n_trials: int) -> None:
        check_memory(float(n_trials) * self._engine.state_bytes_per_trial, f"simulation state of n_trials={n_trials}")

    def reset_state(self) -> None:
        """Drop all simulation state (t back to 0); connectivity and parameters are kept."""
        self._engine.reset_state()

    def store(self, name: str = "default") -> None:
        """Keep a copy of the full state (voltages, compartments, pending spikes, random streams, t)."""
        if not self._engine.has_state:
            raise RuntimeError("nothing to store: the network holds no state yet (run it or call init_state)")
        self._snapshots[str(name)] = self._engine.snapshot()

    def restore(self, name: str = "default") -> None:
        """Return to the state kept by :meth:`store` under ``name``."""
        try:
            snap = self._snapshots[str(name)]
        except KeyError:
            raise KeyError(f"no stored state named {name!r}; stored: {sorted(self._snapshots)}") from None
        self._engine.restore(snap)

    _STATE_VARS = ("v", "aux", "refr", "z")

    def get_state(self, var: str = "v", group: GroupLike | None = None) -> np.ndarray:
        """Copy of a state variable ``[n_trials, n]`` (``v``; ``aux`` = AHP c or ALIF a; ``refr``; ``z``)."""
        if var not in self._STATE_VARS:
            raise ValueError(f"var must be one of {self._STATE_VARS}, got {var!r}")
        if not self._engine.has_state:
            raise RuntimeError("the network holds no state yet (run it or call init_state)")
        arr = self._engine.get_state(var)
        if group is not None:
            g = self._group(group, "group")
            if g.is_input:
                raise ValueError("group must be a population")
            arr = arr[:, g.start:g.start + g.n]
        return arr

    def set_state(self, var: str, values: Any, group: GroupLike | None = None) -> None:
        """Set a state variable for all trials: ``values`` of shape ``[n]`` or ``[n_trials, n]``."""
        if var not in self._STATE_VARS:
            raise ValueError(f"var must be one of {self._STATE_VARS}, got {var!r}")
        if not self._engine.has_state:
            raise RuntimeError("the network holds no state yet: call init_state(n_trials) first")
        full = self._engine.get_state(var).copy()
        lo, hi = 0, self.n_neurons
        if group is not None:
            g = self._group(group, "group")
            if g.is_input:
                raise ValueError("group must be a population")
            lo, hi = g.start, g.start + g.n
        vals = as_real_array(values, "values", allow_bool=var == "z").astype(np.float64)
        try:
            full[:, lo:hi] = np.broadcast_to(vals, (full.shape[0], hi - lo))
        except ValueError:
            raise ValueError(f"values must have shape ({hi - lo},) or ({full.shape[0]}, {hi - lo}), "
                             f"got {vals.shape}") from None
        self._engine.set_state(var, np.ascontiguousarray(full))

    def counters(self) -> dict[str, int]:
        """Operation counts summed over trials since the state was created (with ``comm``: over every
        process too; a collective call)."""
        c = dict(self._engine.counters())
        if self.comm is not None:
            return {k: sum(d[k] for d in self.comm.allgather(c)) for k in c}
        return c

    # ------------------------------------------------------------------ running
    def run(self, T: int | None = None, inputs: Mapping[GroupLike, InputLike] | None = None, *,
            n_trials: int | None = None, n_threads: int | None = None,
            record_spikes: bool | Iterable[GroupLike] = True,
            record_state: GroupLike | Sequence[GroupLike] | Mapping[GroupLike, Any] | None = None,
            record_readouts: bool = True, progress: bool = False, gather_spikes: str = "all",
            spike_file: str | os.PathLike | None = None) -> SimResult:
        """Simulate ``T`` steps of every trial, continuing from the current state.

        ``inputs`` maps input groups (or names) to their data for this run: a dense array ``[T, n]``
        (the same for every trial) or ``[B, T, n]`` (bool spikes or float values), or events
        ``(steps, channels[, values])`` (steps relative to this run) or a list of B such tuples.
        ``T`` may be omitted when inputs give it. The number of trials ``B`` comes from the state,
        else from ``n_trials`` or the inputs (default 1). Spikes, chosen state traces and readout
        traces come back in a :class:`SimResult`.

        Long runs (and runs with ``progress=True``, which shows a tqdm bar on a terminal) are executed in chunks;
        Ctrl-C between chunks stops at a step boundary and leaves a consistent state (``net.t``).

        With ``comm`` (a partitioned network; every process calls ``run`` with the same arguments):
        ``gather_spikes`` chooses which recorded spikes each process's result holds: ``"all"`` (every
        process: all of them; default), ``"root"`` (rank 0: all, the others: their own) or ``"local"``
        (each process its own neurons'). ``spike_file`` (a path stem) also streams each process's own
        recorded spikes to ``<stem>.rank<r>.spikes`` as they are exchanged, for runs whose spikes do
        not fit in memory; :func:`ahpsim.distributed.read_spike_files` merges them.
        """
        inputs = dict(inputs or {})
        if n_threads is None:
            n_threads = self.n_threads
        else:
            n_threads = as_int(n_threads, "n_threads", minimum=1, maximum=MAX_THREADS)
        decoded = {}
        for key, data in inputs.items():
            g = self._group(key, "inputs key")
            if not g.is_input:
                raise ValueError(f"inputs: {g.name!r} is a population; inputs go to input groups")
            if g.rate:
                raise ValueError(f"inputs: {g.name!r} is a Poisson input group and takes no data")
            decoded[g] = _decode_input(data, g, self.dtype)
        lengths = {d.T for d in decoded.values() if d.T is not None}
        if T is None:
            if not lengths:
                raise ValueError("T is required when no dense input gives the number of steps")
            if len(lengths) > 1:
                raise ValueError(f"inputs disagree on the number of steps: {sorted(lengths)}")
            T = lengths.pop()
        T = as_int(T, "T", minimum=0, maximum=2**40)
        for g, d in decoded.items():
            if d.T is not None and d.T != T:
                raise ValueError(f"inputs[{g.name!r}] has {d.T} steps but T = {T}")
            if d.max_step is not None and d.max_step >= T:
                raise ValueError(f"inputs[{g.name!r}]: event step {d.max_step} is outside [0, {T})")
        batch = {d.B for d in decoded.values() if d.B is not None}
        if len(batch) > 1:
            raise ValueError(f"inputs disagree on the number of trials: {sorted(batch)}")
        if n_trials is not None:
            n_trials = as_int(n_trials, "n_trials", minimum=1, maximum=2**31 - 1)
            if batch and n_trials not in batch:
                raise ValueError(f"n_trials={n_trials} but inputs hold {batch.pop()} trials")
        B_req = n_trials if n_trials is not None else (batch.pop() if batch else None)
        if self._engine.has_state:
            B = self._engine.n_trials
            if B_req is not None and B_req != B:
                raise ValueError(f"the network holds state for {B} trials but this run has {B_req}; "
                                 "call reset_state() to change the number of trials")
        else:
            B = B_req or 1
            if not self._pops:
                raise RuntimeError("the network has no populations; add one with add_population()")
            self._check_state_memory(B)
            self._ensure_partition()
            self._engine.init_state(B)

        pop_flags = self._record_flags(record_spikes)
        if self.comm is not None:
            if gather_spikes not in ("all", "root", "local"):
                raise ValueError(f"gather_spikes must be 'all', 'root' or 'local', got {gather_spikes!r}")
            return self._run_partitioned(T, decoded, B, pop_flags, record_state, n_threads, progress,
                                         gather_spikes, spike_file)
        if gather_spikes != "all" or spike_file is not None:
            raise ValueError("gather_spikes and spike_file are for a network partitioned over processes (comm=...)")
        state_ids, state_groups = self._record_state_ids(record_state)
        if not isinstance(record_readouts, (bool, np.bool_)):
            raise TypeError("record_readouts must be a bool")
        n_readout = sum(g.n for g in self._pops if g.model.kind == "Readout") if record_readouts else 0
        check_memory(float(B) * T * (2 * len(state_ids) + n_readout) * self.dtype.itemsize,
                     f"recording state / readout traces of {B} trials x {T} steps")
        t0 = self._engine.t
        # Long runs go in chunks so that Ctrl-C (checked between chunks) stops them at a step boundary
        # with a consistent state; results do not depend on the chunking.
        chunks = _chunks(T, progress, T * B * max(self.n_neurons + self.n_synapses // 10, 1))
        parts = []
        bar = None
        if progress and T > 0:
            from tqdm.auto import tqdm
            bar = tqdm(total=T, unit="step", desc="ahpsim.run", leave=False, disable=None)  # no bar when not a terminal
        done = 0
        try:
            for lo, hi in chunks:
                ev = [(g.index,) + d.kernel_input(lo, hi) for g, d in decoded.items()]
                parts.append(self._engine.run(hi - lo, ev, pop_flags, state_ids, bool(record_readouts), n_threads))
                done = hi
                if bar is not None:
                    bar.update(hi - lo)
        except KeyboardInterrupt:
            if not parts:
                raise
            # the chunks simulated so far are kept: the state stands at their end
            partial = SimResult._from_parts(self, parts, t0, done, B, state_groups, bool(record_readouts))
            raise RunInterrupted(partial, t0 + done, t0 + T) from None
        finally:
            if bar is not None:
                bar.close()
        return SimResult._from_parts(self, parts, t0, T, B, state_groups, bool(record_readouts))

    def _run_partitioned(self, T: int, decoded: dict, B: int, pop_flags: list[int], record_state: Any,
                         n_threads: int, progress: bool, gather_spikes: str, spike_file: Any) -> SimResult:
        """run() of one process of a partitioned network: windows of the smallest delay; after each,
        every process's spikes are gathered everywhere and delivered onto the local neurons."""
        if record_state is not None:
            raise ValueError("record_state is not available with comm (each process holds only its own "
                             "neurons' state); record spikes")
        if any(not g.model.spiking for g in self._pops):  # type: ignore[union-attr]
            raise ValueError("readout populations are not available with comm; run readouts in one process")
        # the smallest delay over every process (one that stores no synapses reports none)
        W = int(min(self.comm.allgather(int(self._engine.min_delay))))
        eng = self._engine
        if not eng.exchange:
            eng.set_exchange(True)
        t0 = eng.t
        record = np.zeros(self.n_neurons, bool)
        for g, flag in zip(self._pops, pop_flags):
            record[g.start:g.start + g.n] = bool(flag)
        every = [1] * len(self._pops)
        none_ids = np.zeros(0, np.uint32)
        steps_rec: list[list[np.ndarray]] = [[] for _ in range(B)]
        ids_rec: list[list[np.ndarray]] = [[] for _ in range(B)]
        rank = self.comm.Get_rank()
        own_lo, own_hi = self._engine.partition
        keep_all = gather_spikes == "all" or (gather_spikes == "root" and rank == 0)
        writer = None
        if spike_file is not None:
            # records of (trial, step, id) as little-endian int64, appended window by window
            writer = open(f"{os.fspath(spike_file)}.rank{rank}.spikes", "wb")
        bar = None
        if progress and T > 0 and self.comm.Get_rank() == 0:
            from tqdm.auto import tqdm
            bar = tqdm(total=T, unit="step", desc="ahpsim.run (MPI)", leave=False, disable=None)
        try:
            for lo in range(0, T, W):
                hi = min(T, lo + W)
                ev = [(g.index,) + d.kernel_input(lo, hi) for g, d in decoded.items()]
                part = eng.run(hi - lo, ev, every, none_ids, False, n_threads)
                gathered = _allgather_spikes(self.comm, part["spike_steps"], part["spike_ids"])
                for b in range(B):
                    st, ids = gathered[b]
                    order = np.argsort(st, kind="stable")  # by step; ids stay ascending within a step
                    st, ids = st[order], ids[order]
                    eng.deliver_exchanged(b, st, ids)
                    keep = record[ids]
                    own = keep & (ids >= own_lo) & (ids < own_hi)
                    if writer is not None and own.any():
                        rec3 = np.stack([np.full(int(own.sum()), b, np.int64), st[own], ids[own].astype(np.int64)], 1)
                        writer.write(rec3.astype("<i8").tobytes())
                    if not keep_all:
                        keep = own
                    steps_rec[b].append(st[keep])
                    ids_rec[b].append(ids[keep])
                if bar is not None:
                    bar.update(hi - lo)
        finally:
            if bar is not None:
                bar.close()
            if writer is not None:
                writer.close()
        empty = np.zeros((B, T, 0), self.dtype)
        part = {"spike_steps": [np.concatenate(x) if x else np.zeros(0, np.int64) for x in steps_rec],
                "spike_ids": [np.concatenate(x) if x else np.zeros(0, np.uint32) for x in ids_rec],
                "v": empty, "aux": empty, "y": empty}
        return SimResult._from_parts(self, [part], t0, T, B, [], False)

    def _record_flags(self, record_spikes: Any) -> list[int]:
        if isinstance(record_spikes, (bool, np.bool_)):
            return [int(bool(record_spikes) and g.model.spiking) for g in self._pops]  # type: ignore[union-attr]
        if isinstance(record_spikes, (str, Group)):
            record_spikes = [record_spikes]
        try:
            chosen = {self._group(g, "record_spikes").index for g in record_spikes}
        except TypeError:
            raise TypeError("record_spikes must be a bool or a list of populations") from None
        return [int(g.index in chosen) for g in self._pops]

    def _record_state_ids(self, rec: Any) -> tuple[np.ndarray, list[tuple[Group, np.ndarray]]]:
        if rec is None:
            return np.zeros(0, dtype=np.uint32), []
        if isinstance(rec, (str, Group)):
            rec = [rec]
        items: list[tuple[Group, np.ndarray]] = []
        if isinstance(rec, Mapping):
            for key, idx in rec.items():
                g = self._group(key, "record_state")
                items.append((g, self._index_array(idx, g.n, f"record_state[{g.name!r}]")))
        else:
            for key in rec:
                g = self._group(key, "record_state")
                items.append((g, np.arange(g.n)))
        for g, _ in items:
            if g.is_input:
                raise ValueError(f"record_state: {g.name!r} is an input group, not a population")
        ids = np.concatenate([g.start + idx for g, idx in items]) if items else np.zeros(0)
        return ids.astype(np.uint32), items


def _allgather_spikes(comm: Any, steps: list, ids: list) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every process's spikes of a window, per trial, concatenated in rank order (= ascending neuron
    ranges): one small allgather of the counts, then the steps and ids as raw buffers (Allgatherv),
    or pickled lists with a communicator that has only ``allgather``."""
    B = len(steps)
    if not hasattr(comm, "Allgatherv"):
        g = comm.allgather([(steps[b], ids[b]) for b in range(B)])
        return [(np.concatenate([x[b][0] for x in g]).astype(np.int64),
                 np.concatenate([x[b][1] for x in g]).astype(np.uint32)) for b in range(B)]
    counts = np.array([len(x) for x in steps], np.int64)
    allc = np.array(comm.allgather(counts)).reshape(-1, B)        # [ranks, trials]
    per_rank = allc.sum(1)
    st = np.concatenate(steps).astype(np.int64) if B else np.zeros(0, np.int64)
    idv = np.concatenate(ids).astype(np.uint32) if B else np.zeros(0, np.uint32)
    all_st = np.empty(int(per_rank.sum()), np.int64)
    all_id = np.empty(int(per_rank.sum()), np.uint32)
    comm.Allgatherv(st, [all_st, per_rank])
    comm.Allgatherv(idv, [all_id, per_rank])
    out_st: list[list[np.ndarray]] = [[] for _ in range(B)]
    out_id: list[list[np.ndarray]] = [[] for _ in range(B)]
    at = 0
    for r in range(allc.shape[0]):
        for b in range(B):
            n = int(allc[r, b])
            out_st[b].append(all_st[at:at + n])
            out_id[b].append(all_id[at:at + n])
            at += n
    return [(np.concatenate(out_st[b]), np.concatenate(out_id[b])) for b in range(B)]


def _short(v: Any) -> str:
    """A parameter for display: the value, or the range of a per-neuron array."""
    if isinstance(v, str):
        return repr(v)
    a = np.asarray(v)
    if a.ndim == 0:
        return f"{a.item():g}"
    return f"[{a.min():g}..{a.max():g}]" if a.size else "[]"


# ---------------------------------------------------------------------- input decoding
class _Input:
    """Input of one group for one run: events (trial, step, channel, value) sorted by (trial, step)."""

    def __init__(self, B: int | None, T: int | None, trial: np.ndarray, step: np.ndarray, channel: np.ndarray,
                 value: np.ndarray, n_batch: int, dense: np.ndarray | None = None) -> None:
        self.B, self.T, self.n_batch, self.dense = B, T, n_batch, dense
        self.trial, self.step, self.channel, self.value = trial, step, channel, value
        self.max_step = int(step.max()) if step.size else None

    def kernel_input(self, lo: int, hi: int) -> tuple:
        """What the kernel takes for steps [lo, hi): (n_batch, dense [n_batch, hi - lo, n]) for arrays,
        which the kernel scans itself, else events (n_batch, offsets, channels, values)."""
        if self.dense is not None:
            return (self.n_batch, self.dense if (lo, hi) == (0, self.dense.shape[1]) else self.dense[:, lo:hi])
        return self.events(lo, hi)

    def events(self, lo: int, hi: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        """(n_batch, offsets [n_batch * (hi - lo + 1)], channels, values) for steps [lo, hi)."""
        n = hi - lo
        if lo == 0 and (self.max_step is None or self.max_step < hi):
            trial, step, ch, val = self.trial, self.step, self.channel, self.value
        else:
            m = (self.step >= lo) & (self.step < hi)
            trial, step, ch, val = self.trial[m], self.step[m] - lo, self.channel[m], self.value[m]
        # events are sorted by (trial, step): offsets of every (trial, step) from one cumulative count
        counts = np.bincount(trial * n + step, minlength=self.n_batch * n) if n else np.zeros(0, dtype=np.int64)
        cum = np.zeros(self.n_batch * n + 1, dtype=np.int64)
        np.cumsum(counts, out=cum[1:])
        idx = np.arange(self.n_batch)[:, None] * n + np.arange(n + 1)[None, :]
        return (self.n_batch, np.ascontiguousarray(cum[idx].ravel()), np.ascontiguousarray(ch, dtype=np.int32),
                np.ascontiguousarray(val))


def _decode_input(data: Any, g: Group, dtype: np.dtype) -> _Input:
    name = f"inputs[{g.name!r}]"
    if isinstance(data, tuple) or (isinstance(data, list) and data and all(isinstance(x, tuple) for x in data)):
        trials = [data] if isinstance(data, tuple) else data
        parts = [_decode_events(x, g, dtype, name if isinstance(data, tuple) else f"{name}[{b}]")
                 for b, x in enumerate(trials)]
        trial = np.concatenate([np.full(p[0].size, b, dtype=np.int64) for b, p in enumerate(parts)])
        step, ch, val = (np.concatenate([p[k] for p in parts]) for k in range(3))
        return _Input(None if isinstance(data, tuple) else len(data), None, trial, step, ch, val.astype(dtype),
                      len(parts))
    arr = as_real_array(data, name, allow_bool=True)
    if arr.ndim not in (2, 3) or arr.shape[-1] != g.n:
        raise ValueError(f"{name} must have shape [T, {g.n}] or [B, T, {g.n}], got {arr.shape}")
    B = arr.shape[0] if arr.ndim == 3 else None
    arr3 = arr if arr.ndim == 3 else arr[None]
    if arr3.dtype != np.bool_:
        arr3 = cast_checked(arr3, dtype, name)
    # the kernel scans dense arrays itself (in channel order, as events of one step would be delivered)
    empty = np.zeros(0, dtype=np.int64)
    return _Input(B, arr3.shape[1], empty, empty, empty, np.zeros(0, dtype=dtype), arr3.shape[0],
                  dense=np.ascontiguousarray(arr3))


def _decode_events(ev: tuple, g: Group, dtype: np.dtype, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if len(ev) not in (2, 3):
        raise ValueError(f"{name} events must be (steps, channels) or (steps, channels, values)")
    steps = Network._index_array(ev[0], 2**62, f"{name} steps")
    ch = Network._index_array(ev[1], g.n, f"{name} channels")
    if steps.shape != ch.shape:
        raise ValueError(f"{name}: steps and channels must have the same length")
    vals = np.ones(steps.size) if len(ev) == 2 else Network._per_synapse(ev[2], steps.size, f"{name} values")
    order = np.argsort(steps, kind="stable")
    return steps[order], ch[order].astype(np.int64), cast_checked(vals[order], dtype, f"{name} values")


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during :meth:`Network.run`: ``result`` holds what was simulated up to step ``t`` (the
    network's state stands there; ``run`` again continues from it); ``t_end`` is where the run would
    have ended."""

    def __init__(self, result: SimResult, t: int, t_end: int):
        super().__init__(f"run interrupted at step {t} of {t_end}; the steps simulated so far are in .result "
                         "and the network continues from there")
        self.result, self.t, self.t_end = result, t, t_end


def _chunks(T: int, progress: bool, work: int) -> list[tuple[int, int]]:
    if T == 0 or (not progress and work < 2e9):
        return [(0, T)]
    n = min(T, 100)
    edges = np.linspace(0, T, n + 1).astype(np.int64)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def load_network(path: str | os.PathLike, *, dtype: Any = None, n_threads: int | None = None) -> Network:
    """Rebuild a network written by :meth:`Network.save` (optionally in another ``dtype``)."""
    return _load_npz(path, repr(os.fspath(path)), dtype=dtype, n_threads=n_threads)


def _load_npz(file: Any, what: str, *, dtype: Any, n_threads: int | None) -> Network:
    from . import models

    try:
        data = np.load(file, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"no network file at {what}") from None
    except Exception as exc:
        raise ValueError(f"{what} is not a readable ahpsim network file: {exc}") from None
    with data:
        if "__header__" not in data.files:
            raise ValueError(f"{what} is not an ahpsim network file (no header)")
        h = json.loads(str(data["__header__"]))
        if h.get("format") != "ahpsim-network" or h.get("version") != 1:
            raise ValueError(f"{what}: unsupported format {h.get('format')!r} version {h.get('version')!r}")
        net = Network(dt=h["dt"], dtype=dtype or h["dtype"], seed=h["seed"],
                      n_threads=h["n_threads"] if n_threads is None else n_threads)
        for g in h["inputs"]:
            net.add_input(g["n"], g["name"], rate=g["rate"] or None)
        kinds = {"LIF": models.LIF, "AHP": models.AHP, "ALIF": models.ALIF, "Readout": models.Readout}
        for p in h["populations"]:
            params = {k: (data[v["array"]] if isinstance(v, dict) else v) for k, v in p["params"].items()}
            net.add_population(p["n"], kinds[p["model"]](**params), p["name"])
        for k, pr in enumerate(h["projections"]):
            net.connect(pr["source"], pr["target"], data[f"proj{k}_w"], pre=data[f"proj{k}_pre"],
                        post=data[f"proj{k}_post"], delay=data[f"proj{k}_d"])
        for target, rate, weight in h["drives"]:
            net.add_poisson_drive(target, rate, weight)
    return net
