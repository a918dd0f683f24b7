"""Networks in Loihi units, run on ahpsim's C++ integer engine (``ahpsim._core.LoihiEngine``).

Everything here is integer: weight mantissas with one weight exponent per projection, 12-bit
decays, threshold and bias mantissas, refractory delays, synaptic delays. No float step happens
between :meth:`LoihiNetwork.connect` and :meth:`LoihiNetwork.run`. The arithmetic follows one of
two rule sets (``"loihi1"``, ``"lava"``) described in ``docs/loihi.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Union

import numpy as np

from .. import _core
from .._validation import trial_index

__all__ = [
    "RULE_SETS",
    "VTH_MANT_MAX",
    "AHPGroup",
    "CompartmentGroup",
    "InputGroup",
    "LoihiNetwork",
    "LoihiResult",
    "limits",
]

RULE_SETS = ("loihi1", "lava")
VTH_MANT_MAX = 2**17 - 1  # maximal threshold mantissa (output compartments)


_COUNTER_KEYS = ("spikes", "syn_events", "input_events", "drive_events", "neuron_updates", "compartment_updates")


def limits(rules: str = "loihi1") -> dict[str, Any]:
    """Parameter ranges and constants of a rule set, as declared in the C++ headers."""
    _check_rules(rules)
    return dict(_core.loihi_limits(rules))


def _check_rules(rules: str) -> None:
    if rules not in RULE_SETS:
        raise ValueError(f"rules must be one of {RULE_SETS}, got {rules!r}")


def _int_array(value: Any, shape: tuple[int, ...], name: str, lo: int, hi: int) -> np.ndarray:
    """Broadcast ``value`` to ``shape`` as int64, requiring integers in ``[lo, hi]``."""
    arr = np.asarray(value)
    if arr.dtype == np.bool_:
        raise TypeError(f"{name} must be integers, got booleans")
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"{name} must be integers (Loihi units), got dtype {arr.dtype}")
    try:
        arr = np.broadcast_to(arr.astype(np.int64), shape)
    except ValueError:
        raise ValueError(f"{name} must be a scalar or have shape {shape}, got shape {np.shape(value)}") from None
    if arr.size and (arr.min() < lo or arr.max() > hi):
        bad = arr.min() if arr.min() < lo else arr.max()
        raise ValueError(f"{name} = {int(bad)} is out of range [{lo}, {hi}]")
    return np.ascontiguousarray(arr)


def _positive(n: Any, name: str) -> int:
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or not 1 <= n <= 2**31 - 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return int(n)


def _check_spikes(a: np.ndarray, what: str) -> None:
    if a.dtype != np.bool_:
        if not np.issubdtype(a.dtype, np.integer) or (a.size and (a.min() < 0 or a.max() > 1)):
            raise ValueError(f"{what} must hold spikes: bool or 0/1 integers")


@dataclass(frozen=True)
class InputGroup:
    """External spike input channels (spike generators)."""

    name: str
    n: int
    start: int  # first channel of this group among all input channels

    def __len__(self) -> int:
        return self.n


@dataclass(frozen=True)
class CompartmentGroup:
    """A group of compartments with shared or per-compartment integer parameters."""

    name: str
    n: int
    start: int  # first global compartment index
    spiking: bool = True

    def __len__(self) -> int:
        return self.n

    @property
    def ids(self) -> np.ndarray:
        return np.arange(self.start, self.start + self.n)


@dataclass(frozen=True)
class AHPGroup:
    """Two-compartment AHP neurons: ``aux`` (non-spiking, voltage passed to the parent through the
    ADD join) and ``soma`` (spiking). Connecting to or from the group means the soma."""

    name: str
    soma: CompartmentGroup
    aux: CompartmentGroup
    n: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", self.soma.n)

    def __len__(self) -> int:
        return self.n


GroupLike = Union[InputGroup, CompartmentGroup, AHPGroup, str]


class LoihiResult:
    """What one :meth:`LoihiNetwork.run` recorded: per-step spikes (and optionally u, v) of every
    compartment, arrays ``[n_trials, T, n]`` (``spikes_all``, ``u_all``, ``v_all``), with the accessor
    names of the float engine's :class:`ahpsim.SimResult`. Steps are absolute (counted from the
    last state reset): this run covers steps ``t0 .. t0 + T - 1``. Global neuron ids are compartment
    indices; a group may be a compartment group, an AHP group (its soma) or a name (``"ahp.aux"``).
    """

    dt = 1.0  # one Loihi time step, taken as 1 ms for rate_hz

    def __init__(self, net: "LoihiNetwork", spikes: np.ndarray, u: np.ndarray | None, v: np.ndarray | None,
                 t0: int = 0, record: np.ndarray | None = None):
        self._net = net
        self.spikes_all = spikes.view(np.bool_)
        self.u_all = u  # [n_trials, T, recorded compartments] (record_uv), or None
        self.v_all = v
        n_cx = int(spikes.shape[2])
        rec = np.arange(n_cx) if record is None else np.asarray(record, np.int64)
        self.recorded = rec  # compartments whose u / v are the columns of u_all / v_all, in order
        self._cols = np.full(n_cx, -1, np.int64)  # compartment -> column of u_all / v_all
        if u is not None:
            self._cols[rec] = np.arange(len(rec))
        self.t0 = int(t0)
        self.n_trials, self.T = int(spikes.shape[0]), int(spikes.shape[1])

    def __repr__(self) -> str:
        return (f"LoihiResult(trials={self.n_trials}, steps={self.t0}..{self.t0 + self.T}, "
                f"spikes={int(self.spikes_all.sum())})")

    def _range(self, group: GroupLike | None) -> tuple[int, int]:
        if group is None:
            return 0, int(self.spikes_all.shape[2])
        g = self._net._cgroup(group, "group")
        return g.start, g.n

    def _slice(self, arr: np.ndarray, group: GroupLike | None, what: str) -> np.ndarray:
        lo, n = self._range(group)
        return arr[:, :, lo:lo + n]

    def _trace(self, arr: np.ndarray | None, group: GroupLike | None, what: str) -> np.ndarray:
        """u or v of a group from the recorded compartments (a view when they are recorded side by side)."""
        lo, n = self._range(group)
        cols = self._cols[lo:lo + n] if arr is not None else np.full(n, -1)
        if n and (cols < 0).any():
            name = "the network" if group is None else repr(self._net._cgroup(group, "group").name)
            raise ValueError(f"{what} of {name} was not recorded: run with record_uv=True or "
                             f"record_uv=[the group] (by default only readout compartments are recorded)")
        if n and cols[-1] - cols[0] == n - 1:
            return arr[:, :, cols[0]:cols[0] + n]
        return arr[:, :, cols]

    def _trial(self, trial: Any) -> int:
        return trial_index(trial, self.n_trials)

    # ------------------------------------------------------------------ spikes
    def raster(self, group: GroupLike | None = None, trial: int | None = None) -> np.ndarray:
        """bool ``[n_trials, T, n]`` spikes of a group (of the soma for an AHP group; all
        compartments when ``group`` is None); ``[T, n]`` for one ``trial``."""
        r = self._slice(self.spikes_all, group, "spikes")
        return r if trial is None else r[self._trial(trial)]

    def spikes(self, trial: int = 0, group: GroupLike | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, ids)`` of one trial, ordered by step then id; steps are absolute
        (``t0 + k``). Without ``group``: global compartment ids; with it: ids within the group."""
        steps, ids = np.nonzero(self.raster(group, self._trial(trial)))
        return steps.astype(np.int64) + self.t0, ids.astype(np.int64)

    def spike_events(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(trial, step, compartment_id)`` of every spike of every trial (absolute steps)."""
        b, t, i = np.nonzero(self.spikes_all)
        return b.astype(np.int64), t.astype(np.int64) + self.t0, i.astype(np.int64)

    def spike_counts(self, group: GroupLike | None = None) -> np.ndarray:
        """Spikes per trial and neuron ``[n_trials, n]``."""
        return self.raster(group).sum(axis=1)

    def rate(self, group: GroupLike | None = None) -> float:
        """Mean spikes per neuron per step over trials and steps."""
        r = self.raster(group)
        return float(r.mean()) if r.size else 0.0

    def rate_hz(self, group: GroupLike | None = None) -> float:
        """Mean firing rate in Hz, taking one step as 1 ms."""
        return self.rate(group) * 1000.0 / self.dt

    # ------------------------------------------------------------------ traces
    def u(self, group: GroupLike | None = None) -> np.ndarray:
        """int32 ``[n_trials, T, n]`` current of a group (all compartments when None)."""
        return self._trace(self.u_all, group, "u")

    def v(self, group: GroupLike | None = None) -> np.ndarray:
        """int32 ``[n_trials, T, n]`` voltage of a group (after the spike reset)."""
        return self._trace(self.v_all, group, "v")

    def state(self, var: str = "v", group: GroupLike | None = None) -> np.ndarray:
        """Trace of ``"u"``, ``"v"`` or ``"aux"`` (the voltage of an AHP group's auxiliary
        compartment, the integer counterpart of the float AHP's ``aux``) ``[n_trials, T, n]``."""
        if var == "aux":
            g = self._net._any_group(group, "group") if group is not None else None
            if not isinstance(g, AHPGroup):
                raise ValueError("state('aux', group) needs an AHP group")
            return self.v(g.aux)
        if var not in ("u", "v"):
            raise ValueError(f"var must be 'u', 'v' or 'aux', got {var!r}")
        return self.u(group) if var == "u" else self.v(group)

    def readout(self, group: GroupLike | None = None) -> np.ndarray:
        """Voltage trace of an output group (same as :meth:`v`)."""
        return self.v(group)


class LoihiNetwork:
    """A network given directly in Loihi units, simulated by the integer engine.

    Parameters
    ----------
    rules : "loihi1" or "lava"
        Arithmetic rule set (see ``docs/loihi.md``): ``"loihi1"`` follows NxSDK / the paper's
        deployment (per-synapse weight scaling, refractory delays, synaptic delays, multi-compartment
        neurons); ``"lava"`` is bit-identical to Lava's ``bit_accurate_loihi`` LIF + Dense models.
    """

    def __init__(self, rules: str = "loihi1") -> None:
        _check_rules(rules)
        self.rules = rules
        self._lim = limits(rules)
        self._inputs: list[InputGroup] = []
        self._groups: dict[str, Any] = {}
        self._cx: dict[str, list[np.ndarray]] = {k: [] for k in (
            "du", "dv", "vth_mant", "bias_mant", "bias_exp", "refractory", "spiking", "parent", "join")}
        self._n_cx = 0
        self._n_in = 0
        self._proj: list[dict[str, Any]] = []
        self._engine: Any = None
        self._snapshots: dict[str, tuple[dict[str, Any], dict[str, int]]] = {}
        self._fanout: tuple[np.ndarray, np.ndarray] | None = None
        self._counts: dict[str, int] = dict.fromkeys(_COUNTER_KEYS, 0)

    def _invalidate(self) -> None:
        """A structural change: the engine is rebuilt at the next run, state and stored states go."""
        self._engine = None
        self._snapshots.clear()
        self._fanout = None
        self._counts = dict.fromkeys(_COUNTER_KEYS, 0)

    def _fanouts(self) -> tuple[np.ndarray, np.ndarray]:
        """Synapses per input channel and per compartment (its projections' synapses, the AHP's
        soma -> aux synapse included), for the operation counters."""
        if self._fanout is None:
            f_in, f_cx = np.zeros(self._n_in, np.int64), np.zeros(self._n_cx, np.int64)
            for p in self._proj:
                f = f_in if p["from_input"] else f_cx
                np.add.at(f, p["pre_start"] + p["pre"], 1)
            self._fanout = (f_in, f_cx)
        return self._fanout

    def _add_counts(self, spikes: dict[str, np.ndarray], B: int, T: int) -> None:
        """Adds a run part's operations to the counters (``spikes``: the engine's spike counts per
        compartment and per input channel, summed over its B trials and T steps)."""
        f_in, f_cx = self._fanouts()
        per_cx = spikes["spikes"].astype(np.int64)
        c = self._counts
        c["spikes"] += int(per_cx.sum())
        c["syn_events"] += int(per_cx @ f_cx)
        c["input_events"] += int(spikes["inputs"].astype(np.int64) @ f_in)
        c["compartment_updates"] += B * T * self._n_cx
        c["neuron_updates"] += B * T * self._n_neurons()

    def _n_neurons(self) -> int:
        return self.n_neurons

    @property
    def n_neurons(self) -> int:
        """Neurons: compartments without a parent (an AHP neuron's auxiliary compartment is part of it)."""
        return int((np.concatenate(self._cx["parent"]) < 0).sum()) if self._n_cx else 0

    @property
    def n_spiking(self) -> int:
        """Compartments that can spike."""
        return int(np.concatenate(self._cx["spiking"]).sum()) if self._n_cx else 0

    def counters(self) -> dict[str, int]:
        """Operation counts summed over trials since the state was created (as
        :meth:`ahpsim.Network.counters`): ``spikes``; ``syn_events``, synaptic operations of compartment
        spikes (one per synapse, the AHP's own soma -> aux synapse included); ``input_events``, those of
        input spikes; ``drive_events`` (always 0); ``neuron_updates`` (neurons x steps x trials, an AHP
        neuron counted once) and ``compartment_updates``. Counted from the engine's spikes."""
        return dict(self._counts)

    # ------------------------------------------------------------------ structure
    @property
    def n_compartments(self) -> int:
        return self._n_cx

    @property
    def n_inputs(self) -> int:
        return self._n_in

    @property
    def n_synapses(self) -> int:
        return int(sum(p["pre"].size for p in self._proj))

    @property
    def projections(self) -> list[dict[str, Any]]:
        return list(self._proj)

    @property
    def groups(self) -> list[Any]:
        return list(self._groups.values())

    def __getitem__(self, name: str) -> Any:
        try:
            return self._groups[name]
        except KeyError:
            raise KeyError(f"no group named {name!r}; groups: {sorted(self._groups)}") from None

    def _name(self, name: str | None, prefix: str) -> str:
        if name is None:
            name = f"{prefix}{len(self._groups)}"
        if not isinstance(name, str) or not name:
            raise TypeError("name must be a non-empty string")
        if name in self._groups:
            raise ValueError(f"a group named {name!r} already exists")
        return name

    @staticmethod
    def _count(n: Any) -> int:
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        return int(n)

    def add_input(self, n: int, name: str | None = None) -> InputGroup:
        """``n`` external spike channels; spikes are given to :meth:`run`."""
        n = self._count(n)
        g = InputGroup(self._name(name, "input"), n, self._n_in)
        self._n_in += n
        self._groups[g.name] = g
        self._invalidate()
        return g

    def add_compartments(self, n: int, *, du: Any, dv: Any, vth_mant: Any, bias_mant: Any = 0,
                         bias_exp: Any = 0, refractory: Any = 1, spiking: bool = True,
                         name: str | None = None) -> CompartmentGroup:
        """``n`` compartments. Each parameter is a scalar or one integer per compartment.

        du, dv : 12-bit decays (``x <- x * (4096 - d) >> 12``, toward zero; ``"loihi1"`` also
            takes du = 4096: the current does not carry over). vth_mant : threshold mantissa,
            spike when ``v > vth_mant * 2**6`` (use :data:`VTH_MANT_MAX` for output compartments).
            bias_mant, bias_exp : bias ``bias_mant * 2**bias_exp`` added to v each step.
            refractory : Loihi's refractoryDelay (1 = no extra held step). spiking : False for a
            compartment that never spikes (it passes its voltage to a parent, see :meth:`join`).
        """
        n = self._count(n)
        name = self._name(name, "cx")
        return self._append(name, self._params(n, name, du=du, dv=dv, vth_mant=vth_mant, bias_mant=bias_mant,
                                               bias_exp=bias_exp, refractory=refractory, spiking=spiking))

    def _params(self, n: int, name: str, *, du: Any, dv: Any, vth_mant: Any, bias_mant: Any, bias_exp: Any,
                refractory: Any, spiking: bool) -> dict[str, np.ndarray]:
        """Validated per-compartment arrays of a new group (nothing is changed yet)."""
        L = self._lim
        vals = dict(
            du=_int_array(du, (n,), f"du of group {name!r}", *L["du"]),
            dv=_int_array(dv, (n,), f"dv of group {name!r}", *L["dv"]),
            vth_mant=_int_array(vth_mant, (n,), f"vth_mant of group {name!r}", *L["vth_mant"]),
            bias_mant=_int_array(bias_mant, (n,), f"bias_mant of group {name!r}", *L["bias_mant"]),
            bias_exp=_int_array(bias_exp, (n,), f"bias_exp of group {name!r}", *L["bias_exp"]),
            refractory=_int_array(refractory, (n,), f"refractory of group {name!r} (rule set {self.rules})",
                                  *L["refractory"]),
        )
        vals["spiking"] = np.full(n, 1 if spiking else 0, np.int64)
        vals["parent"] = np.full(n, -1, np.int64)
        vals["join"] = np.zeros(n, np.int64)
        return vals

    def _append(self, name: str, vals: dict[str, np.ndarray]) -> CompartmentGroup:
        n = int(vals["du"].size)
        for k, v in vals.items():
            self._cx[k].append(v)
        g = CompartmentGroup(name, n, self._n_cx, bool(vals["spiking"][0]))
        self._n_cx += n
        self._groups[name] = g
        self._invalidate()
        return g

    def join(self, child: GroupLike, parent: GroupLike, op: str = "add") -> None:
        """Make compartment ``i`` of ``child`` a child of compartment ``i`` of ``parent``: each step
        the child's voltage is added (ADD join) to the parent's input. The parent group must have
        been created after the child group (Loihi processes children first)."""
        if not self._lim["multi_compartment"]:
            raise ValueError(f"multi-compartment neurons are not part of rule set {self.rules!r}")
        if op != "add":
            raise ValueError(f"op must be 'add' (the only join implemented), got {op!r}")
        c = self._cgroup(child, "child")
        p = self._cgroup(parent, "parent")
        if c.n != p.n:
            raise ValueError(f"child ({c.n}) and parent ({p.n}) groups differ in size")
        if p.start <= c.start:
            raise ValueError("the parent group must be created after the child group")
        parent_arr = np.concatenate(self._cx["parent"])
        join_arr = np.concatenate(self._cx["join"])
        parent_arr[c.start:c.start + c.n] = np.arange(p.start, p.start + p.n)
        join_arr[p.start:p.start + p.n] = 1
        self._cx["parent"] = [parent_arr]
        self._cx["join"] = [join_arr]
        self._invalidate()

    def add_ahp(self, n: int, *, dv: Any, vth_mant: Any, aux_dv: Any, ahp_weight_mantissa: Any,
                ahp_weight_exponent: int, du: Any = 4096, aux_du: Any = 4096, bias_mant: Any = 0,
                bias_exp: Any = 0, refractory: Any = 1, name: str | None = None) -> AHPGroup:
        """``n`` two-compartment AHP neurons as the paper's authors built them on Loihi 1.

        The auxiliary compartment (decays ``aux_du``, ``aux_dv``) never spikes; its voltage is
        added to the soma's input each step (ADD join). Each soma spike reaches it one step later
        through a synapse of weight ``floor(ahp_weight_mantissa * 2**ahp_weight_exponent) * 2**6``
        (negative: the authors' sMNIST network uses -96 with exponent -4, aux_dv = int(4096/700),
        soma vth_mant = 508).
        """
        name = self._name(name, "ahp")
        n = self._count(n)
        if not self._lim["multi_compartment"]:
            raise ValueError(f"multi-compartment (AHP) neurons are not part of rule set {self.rules!r}")
        for sub in (f"{name}.aux", f"{name}.soma"):
            self._name(sub, "")
        # validate everything before changing the network
        aux_p = self._params(n, f"{name}.aux", du=aux_du, dv=aux_dv, vth_mant=VTH_MANT_MAX, bias_mant=0,
                             bias_exp=0, refractory=1, spiking=False)
        soma_p = self._params(n, f"{name}.soma", du=du, dv=dv, vth_mant=vth_mant, bias_mant=bias_mant,
                              bias_exp=bias_exp, refractory=refractory, spiking=True)
        w = _int_array(ahp_weight_mantissa, (n,), f"ahp_weight_mantissa of group {name!r}",
                       *self._lim["weight_mantissa"])
        lo, hi = self._lim["weight_exponent"]
        if isinstance(ahp_weight_exponent, (bool, np.bool_)) or not isinstance(ahp_weight_exponent, (int, np.integer)) \
                or not lo <= ahp_weight_exponent <= hi:
            raise ValueError(f"ahp_weight_exponent of group {name!r} = {ahp_weight_exponent!r} is out of range [{lo}, {hi}]")
        aux = self._append(f"{name}.aux", aux_p)
        soma = self._append(f"{name}.soma", soma_p)
        self.join(aux, soma)
        self._add_projection(soma, aux, np.arange(n), np.arange(n), w, int(ahp_weight_exponent),
                             np.zeros(n, np.int64), f"{name}.ahp")
        g = AHPGroup(name, soma, aux)
        self._groups[name] = g
        return g

    def _any_group(self, g: GroupLike, arg: str) -> Any:
        if isinstance(g, str):
            return self[g]
        if isinstance(g, (InputGroup, CompartmentGroup, AHPGroup)) and self._groups.get(g.name) is g:
            return g
        raise ValueError(f"{arg} must be a group of this network or its name, got {g!r}")

    def _cgroup(self, g: GroupLike, arg: str) -> CompartmentGroup:
        g = self._any_group(g, arg)
        if isinstance(g, AHPGroup):
            return g.soma
        if isinstance(g, InputGroup):
            raise ValueError(f"{arg} must be a compartment group, got input group {g.name!r}")
        return g

    def connect(self, pre: GroupLike, post: GroupLike, weight_mantissa: Any, weight_exponent: int = 0,
                delay: Any = 0, name: str | None = None) -> int:
        """Connect ``pre`` (input or compartment group) to ``post`` with integer weight mantissas
        ``[n_post, n_pre]`` (zeros: no synapse) and one weight exponent for the projection.

        ``"loihi1"``: effective weight ``mantissa * 2**(6 + weight_exponent)`` per synapse, held
        with its 6 low bits zero (``floor(mantissa * 2**weight_exponent) * 2**6``), mantissa in
        [-255, 255] (sign + 8-bit magnitude: the hardware splits a mixed matrix into an
        excitatory and an inhibitory connection group), ``delay`` 0..62 (scalar or ``[n_post,
        n_pre]``): an input spike at step t is integrated at ``t + delay``, a compartment spike at
        ``t + 1 + delay``. ``"lava"``: like Lava's ``Dense(weights, weight_exp)``: mantissa in
        [-256, 255], clipped and truncated to the sign mode as Lava does, the exponent shifts the
        summed input, and every projection has exactly one step of latency (``delay`` must be 0).
        Returns the projection index.
        """
        src = self._any_group(pre, "pre")
        if isinstance(src, AHPGroup):
            src = src.soma
        dst = self._cgroup(post, "post")
        shape = (dst.n, src.n)
        W = np.asarray(weight_mantissa)
        if W.shape != shape:
            raise ValueError(f"weight_mantissa must have shape [n_post, n_pre] = {list(shape)}, got {list(W.shape)}")
        pname = name or f"{src.name}->{dst.name}"
        W = _int_array(W, shape, f"weight_mantissa of projection {pname!r} (rule set {self.rules})",
                       *self._lim["weight_mantissa"])
        if isinstance(weight_exponent, (bool, np.bool_)) or not isinstance(weight_exponent, (int, np.integer)):
            raise TypeError(f"weight_exponent must be an integer, got {weight_exponent!r}")
        lo, hi = self._lim["weight_exponent"]
        if not lo <= weight_exponent <= hi:
            raise ValueError(f"weight_exponent of projection {pname!r} = {weight_exponent} is out of range [{lo}, {hi}]")
        D = _int_array(delay, shape, f"delay of projection {pname!r} (rule set {self.rules})", *self._lim["delay"])
        if self.rules == "lava":
            W = lava_dense_weights(W)
        post_i, pre_i = np.nonzero(W)
        return self._add_projection(src, dst, pre_i, post_i, W[post_i, pre_i], int(weight_exponent),
                                    D[post_i, pre_i], pname)

    def _add_projection(self, src: Any, dst: CompartmentGroup, pre: np.ndarray, post: np.ndarray,
                        w: np.ndarray, exp: int, delay: np.ndarray, name: str) -> int:
        lo, hi = self._lim["weight_exponent"]
        if not lo <= exp <= hi:
            raise ValueError(f"weight_exponent of projection {name!r} = {exp} is out of range [{lo}, {hi}]")
        self._proj.append(dict(
            name=name, from_input=isinstance(src, InputGroup), pre_start=src.start, n_pre=src.n,
            post_start=dst.start, n_post=dst.n, weight_exponent=int(exp),
            pre=np.ascontiguousarray(pre, np.int64), post=np.ascontiguousarray(post, np.int64),
            weight_mantissa=np.ascontiguousarray(w, np.int64), delay=np.ascontiguousarray(delay, np.int64),
            source=src.name, target=dst.name))
        self._invalidate()
        return len(self._proj) - 1

    # ------------------------------------------------------------------ simulation
    def compartment_arrays(self) -> dict[str, np.ndarray]:
        """Per-compartment integer parameters (global index order)."""
        return {k: (np.concatenate(v) if v else np.zeros(0, np.int64)) for k, v in self._cx.items()}

    def _build(self) -> Any:
        if self._engine is None:
            if self._n_cx == 0:
                raise ValueError("the network has no compartments")
            self._engine = _core.LoihiEngine(self.rules, self._n_in, self.compartment_arrays(), self._proj)
        return self._engine

    # ------------------------------------------------------------------ state
    @property
    def t(self) -> int:
        """Steps simulated since the last state reset."""
        return int(self._engine.t) if self._engine is not None else 0

    @property
    def n_trials(self) -> int:
        """Number of trials in the current state (0 without state)."""
        return int(self._engine.n_trials) if self._engine is not None else 0

    def init_state(self, n_trials: int = 1) -> None:
        """Create fresh state (``u = v = 0``, nothing pending, t = 0, counters 0) for ``n_trials`` trials."""
        self._build().init_state(_positive(n_trials, "n_trials"))
        self._counts = dict.fromkeys(_COUNTER_KEYS, 0)

    def reset_state(self) -> None:
        """Drop all simulation state (t back to 0, counters 0): the next run starts from zero. Stored
        states (:meth:`store`) are kept."""
        if self._engine is not None:
            self._engine.reset_state()
        self._counts = dict.fromkeys(_COUNTER_KEYS, 0)

    def _require_state(self) -> Any:
        if self._engine is None or not self._engine.has_state:
            raise RuntimeError("the network holds no state yet (run it or call init_state)")
        return self._engine

    def overflows(self) -> dict[str, dict[str, int]]:
        """Steps (summed over trials, since the state was created) in which a compartment's current
        ``u`` wrapped at 24 bits or its voltage ``v`` was clipped at +-(2**23 - 1), per compartment
        group (AHP neurons: ``"name.soma"``, ``"name.aux"``); only groups where it happened. Loihi does
        the same, but a network quantized from float values with too little headroom then computes
        something else than the float network (a wrapped inhibitory current turns excitatory)."""
        if self._engine is None or not self._engine.has_state:
            return {}
        d = self._engine.overflows()
        groups = []
        for g in self._groups.values():
            if isinstance(g, AHPGroup):
                groups += [g.soma, g.aux]
            elif isinstance(g, CompartmentGroup):
                groups.append(g)
        out: dict[str, dict[str, int]] = {}
        for g in groups:
            uw = int(d["u_wraps"][g.start:g.start + g.n].sum())
            vs = int(d["v_saturations"][g.start:g.start + g.n].sum())
            if uw or vs:
                out[g.name] = {"u_wraps": uw, "v_saturations": vs}
        return out

    def store(self, name: str = "default") -> None:
        """Keep a copy of the full state (u, v, refractory counters, pending delayed spikes, t).
        A structural change (adding groups or projections) drops stored states."""
        if self._engine is None or not self._engine.has_state:
            raise RuntimeError("nothing to store: the network holds no state yet (run it or call init_state)")
        self._snapshots[str(name)] = (self._engine.get_state(), dict(self._counts))

    def restore(self, name: str = "default") -> None:
        """Return to the state kept by :meth:`store` under ``name``."""
        try:
            snap = self._snapshots[str(name)]
        except KeyError:
            raise KeyError(f"no stored state named {name!r}; stored: {sorted(self._snapshots)}") from None
        self._build().set_state(snap[0])
        self._counts = dict(snap[1])

    _STATE_VARS = ("u", "v", "ref")

    def get_state(self, var: str = "v", group: GroupLike | None = None) -> np.ndarray:
        """Copy of a state variable ``[n_trials, n]``: ``u``, ``v`` (int64) or ``ref`` (held
        refractory steps left)."""
        if var not in self._STATE_VARS:
            raise ValueError(f"var must be one of {self._STATE_VARS}, got {var!r}")
        arr = self._require_state().get_state()[var]
        if group is not None:
            g = self._cgroup(group, "group")
            arr = arr[:, g.start:g.start + g.n]
        return arr

    def set_state(self, var: str, values: Any, group: GroupLike | None = None) -> None:
        """Set ``u``, ``v`` or ``ref`` for all trials: integer ``values`` of shape ``[n]`` or
        ``[n_trials, n]`` (``v`` within +-(2**23 - 1), ``ref`` within 0..refractory - 1)."""
        if var not in self._STATE_VARS:
            raise ValueError(f"var must be one of {self._STATE_VARS}, got {var!r}")
        st = self._require_state().get_state()
        full = st[var].astype(np.int64)
        lo, hi = 0, self._n_cx
        if group is not None:
            g = self._cgroup(group, "group")
            lo, hi = g.start, g.start + g.n
        full[:, lo:hi] = _int_array(values, (full.shape[0], hi - lo), f"values of {var!r}", -(2**31), 2**31 - 1)
        st[var] = full
        self._engine.set_state(st)

    # ------------------------------------------------------------------ running
    def run(self, T: int | None = None, inputs: Mapping[GroupLike, Any] | None = None, *,
            n_trials: int | None = None, n_threads: int | None = None, record_uv: Any = False,
            record_readouts: bool = True, progress: bool = False) -> LoihiResult:
        """Simulate ``T`` steps of every trial, continuing from the current state (as
        :meth:`ahpsim.Network.run`): ``run(a)`` then ``run(b)`` gives bit for bit what
        ``run(a + b)`` gives, pending delayed spikes and refractory counters included. Call
        :meth:`reset_state` to start again from zero.

        inputs : {input group or name: spikes}, for this run: a dense ``[T, n]`` (the same for
            every trial) or ``[B, T, n]`` array of bool or 0/1 integers, or events ``(steps,
            channels[, values])`` with steps relative to this run (values 0/1), or a list of B such
            tuples. Input groups not given receive no spikes. ``T`` may be omitted when a dense
            input gives it.
        n_trials : number of trials ``B`` when the network holds no state yet (else it must match
            the state's; default: from the inputs, or 1).
        n_threads : threads over which the trials are spread (results do not depend on it).
        record_uv : the per-step ``u`` and ``v`` (int32) to record besides the readouts: False (none),
            True (every compartment), or a group / list of groups (names or objects; an AHP group
            records its soma and auxiliary compartment). Recording every compartment of the sMNIST
            network costs 2.35 MB per image and half the speed, so it is opt-in as in ``Network.run``.
        record_readouts : also record ``u`` and ``v`` of the readout compartments (root compartments
            that never spike: ``spiking=False`` or the largest threshold), which :meth:`LoihiResult.readout`
            needs.
        progress : run in chunks with a tqdm progress bar, shown on a terminal (results do not depend on it).
        """
        if n_threads is None:
            n_threads = 1
        if isinstance(n_threads, (bool, np.bool_)) or not isinstance(n_threads, (int, np.integer)) \
                or not 1 <= n_threads <= 1024:
            raise ValueError(f"n_threads must be an integer in [1, 1024], got {n_threads!r}")
        decoded = self._decode_inputs(inputs or {})
        lengths = {d[1] for d in decoded.values() if d[1] is not None}
        if T is None:
            if not lengths:
                raise ValueError("T is required when no dense input gives the number of steps")
            if len(lengths) > 1:
                raise ValueError(f"inputs disagree on the number of steps: {sorted(lengths)}")
            T = lengths.pop()
        if isinstance(T, (bool, np.bool_)) or not isinstance(T, (int, np.integer)) or T < 0:
            raise ValueError(f"T must be a non-negative integer, got {T!r}")
        T = int(T)
        batch = {d[0] for d in decoded.values() if d[0] is not None}
        if len(batch) > 1:
            raise ValueError("all inputs must have the same number of trials")
        if n_trials is not None:
            n_trials = _positive(n_trials, "n_trials")
            if batch and n_trials not in batch:
                raise ValueError(f"n_trials={n_trials} but inputs hold {batch.pop()} trials")
        B_req = n_trials if n_trials is not None else (batch.pop() if batch else None)
        engine = self._build()
        if engine.has_state:
            B = int(engine.n_trials)
            if B_req is not None and B_req != B:
                raise ValueError(f"the network holds state for {B} trials but this run has {B_req}; "
                                 "call reset_state() to change the number of trials")
        else:
            B = B_req or 1
        X = self._dense_inputs(decoded, T, B)
        if not engine.has_state:
            engine.init_state(B)
            self._counts = dict.fromkeys(_COUNTER_KEYS, 0)
        t0 = int(engine.t)
        record = self._record_list(record_uv, record_readouts)
        chunks = [(0, T)]
        bar = None
        if progress and T > 0:
            from tqdm.auto import tqdm

            edges = np.linspace(0, T, min(T, 100) + 1).astype(np.int64)
            chunks = [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]
            bar = tqdm(total=T, unit="step", desc="ahpsim.loihi.run", leave=False, disable=None)  # no bar when not a terminal
        parts = []
        try:
            for lo, hi in chunks:
                x = None if X is None else np.ascontiguousarray(X[:, lo:hi])
                parts.append(engine.advance(hi - lo, x, record, int(n_threads)))
                self._add_counts(parts[-1][3], B, hi - lo)
                if bar is not None:
                    bar.update(hi - lo)
        finally:
            if bar is not None:
                bar.close()
        if len(parts) == 1:
            spikes, u, v = parts[0][:3]
        else:
            spikes = np.concatenate([p[0] for p in parts], axis=1)
            u = np.concatenate([p[1] for p in parts], axis=1) if len(record) else None
            v = np.concatenate([p[2] for p in parts], axis=1) if len(record) else None
        return LoihiResult(self, spikes, u, v, t0, record)

    def readout_groups(self) -> list[CompartmentGroup]:
        """Root compartment groups that never spike (``spiking=False`` or the largest threshold): readouts."""
        out = []
        parent = np.concatenate(self._cx["parent"]) if self._n_cx else np.zeros(0, np.int64)
        spiking = np.concatenate(self._cx["spiking"]) if self._n_cx else np.zeros(0, np.int64)
        vth = np.concatenate(self._cx["vth_mant"]) if self._n_cx else np.zeros(0, np.int64)
        for g in self._groups.values():
            if isinstance(g, CompartmentGroup):
                sl = slice(g.start, g.start + g.n)
                if (parent[sl] < 0).all() and ((spiking[sl] == 0) | (vth[sl] >= VTH_MANT_MAX)).all():
                    out.append(g)
        return out

    def _record_list(self, record_uv: Any, record_readouts: bool) -> np.ndarray:
        """The compartment indices whose u and v a run records (ascending)."""
        if record_uv is True:
            return np.arange(self._n_cx, dtype=np.int32)
        if record_uv is None or record_uv is False:
            groups: list = []
        elif isinstance(record_uv, (str, CompartmentGroup, AHPGroup)):
            groups = [record_uv]
        else:
            try:
                groups = list(record_uv)
            except TypeError:
                raise TypeError(f"record_uv must be True, False, a group or a list of groups, got {record_uv!r}") from None
        idx = []
        for g in groups:
            g = self._any_group(g, "record_uv")
            parts = [g.soma, g.aux] if isinstance(g, AHPGroup) else [g]
            for p in parts:
                if isinstance(p, InputGroup):
                    raise ValueError(f"record_uv: {p.name!r} is an input group (it has no u or v)")
                idx.append(np.arange(p.start, p.start + p.n))
        if record_readouts:
            idx += [np.arange(g.start, g.start + g.n) for g in self.readout_groups()]
        return np.unique(np.concatenate(idx)).astype(np.int32) if idx else np.zeros(0, np.int32)

    def _decode_inputs(self, inputs: Mapping[GroupLike, Any]) -> dict[InputGroup, tuple[Any, Any, Any]]:
        """{group: (B or None, T or None, data)}: data a bool/int array [B or 1, T, n], or a list of
        per-trial (steps, channels) event arrays (T None)."""
        out: dict[InputGroup, tuple[Any, Any, Any]] = {}
        for key, data in inputs.items():
            g = self._any_group(key, "inputs key")
            if not isinstance(g, InputGroup):
                raise ValueError(f"inputs key {g.name!r} is not an input group")
            if isinstance(data, tuple):
                out[g] = (None, None, [self._decode_events(data, g, f"input {g.name!r}")])
                continue
            if isinstance(data, list) and data and all(isinstance(x, tuple) for x in data):
                out[g] = (len(data), None, [self._decode_events(x, g, f"input {g.name!r}[{b}]")
                                            for b, x in enumerate(data)])
                continue
            a = np.asarray(data)
            if a.ndim not in (2, 3) or a.shape[-1] != g.n:
                raise ValueError(f"input {g.name!r} must have shape [T, n] = [T, {g.n}] or [trials, T, n], "
                                 f"got {list(a.shape)}")
            _check_spikes(a, f"input {g.name!r}")
            out[g] = (a.shape[0] if a.ndim == 3 else None, int(a.shape[-2]), a if a.ndim == 3 else a[None])
        return out

    @staticmethod
    def _decode_events(ev: tuple, g: InputGroup, what: str) -> tuple[np.ndarray, np.ndarray]:
        if len(ev) not in (2, 3):
            raise ValueError(f"{what}: events must be (steps, channels) or (steps, channels, values)")
        steps = _int_array(ev[0], np.shape(ev[0]), f"{what} steps", 0, 2**62)
        ch = _int_array(ev[1], np.shape(ev[1]), f"{what} channels", 0, g.n - 1)
        if steps.ndim != 1 or steps.shape != ch.shape:
            raise ValueError(f"{what}: steps and channels must be 1-d and of the same length")
        if len(ev) == 3:
            vals = np.asarray(ev[2])
            if vals.shape != steps.shape:
                raise ValueError(f"{what}: values must have the length of steps")
            _check_spikes(vals, f"{what} values")
            keep = vals.astype(bool)
            steps, ch = steps[keep], ch[keep]
        return steps, ch

    def _dense_inputs(self, decoded: dict[InputGroup, tuple[Any, Any, Any]], T: int, B: int) -> np.ndarray | None:
        if not decoded:
            return None
        X = np.zeros((B, T, self._n_in), np.uint8)
        for g, (Bg, Tg, data) in decoded.items():
            if Tg is not None and Tg != T:
                raise ValueError(f"input {g.name!r} must have shape [T, n] = [{T}, {g.n}] or [trials, T, n], "
                                 f"got {Tg} steps")
            if Bg is not None and Bg != B:
                raise ValueError(f"input {g.name!r} holds {Bg} trials but the run has {B}")
            if Tg is not None:
                X[:, :, g.start:g.start + g.n] = data  # [1 or B, T, n] broadcasts over the trials
                continue
            for b in range(B):
                steps, ch = data[b if len(data) > 1 else 0]
                if steps.size and steps.max() >= T:
                    raise ValueError(f"input {g.name!r}: event step {int(steps.max())} is outside [0, {T})")
                X[b, steps, g.start + ch] = 1
        return X

    def resources(self) -> dict[str, Any]:
        """Loihi 1 resource estimate (see :func:`ahpsim.loihi.estimate_resources`)."""
        from .resources import estimate_resources
        return estimate_resources(self)


def lava_dense_weights(W: np.ndarray, num_weight_bits: int = 8) -> np.ndarray:
    """The weights Lava's ``PyDenseModelBitAcc`` actually uses: sign mode from the matrix
    (excitatory if all >= 0, inhibitory if all <= 0, else mixed), clipped to 8 bits in that sign
    mode, then the least significant bit dropped in mixed mode (``(w >> 1) << 1``)."""
    W = np.asarray(W, np.int64)
    if W.size == 0 or W.min() >= 0:
        mode = "exc"
    elif W.max() <= 0:
        mode = "inh"
    else:
        mode = "mixed"
    w = -W if mode == "inh" else W.copy()
    lo = -(2**8) if mode == "mixed" else 0
    w = np.clip(w, lo, 2**8 - 1)
    drop = 8 - num_weight_bits + (1 if mode == "mixed" else 0)
    w = (w >> drop) << drop
    return -w if mode == "inh" else w
