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
    """Per-step spikes (and optionally u, v) of every compartment: arrays ``[trials, steps, n]``."""

    def __init__(self, net: "LoihiNetwork", spikes: np.ndarray, u: np.ndarray | None, v: np.ndarray | None):
        self._net = net
        self.spikes_all = spikes.view(np.bool_)
        self.u_all = u
        self.v_all = v

    def _slice(self, arr: np.ndarray | None, group: GroupLike, what: str) -> np.ndarray:
        if arr is None:
            raise ValueError(f"{what} was not recorded: run with record_uv=True")
        g = self._net._cgroup(group, "group")
        return arr[:, :, g.start:g.start + g.n]

    def raster(self, group: GroupLike) -> np.ndarray:
        """bool ``[trials, steps, n]`` spikes of a group (of the soma for an AHP group)."""
        return self._slice(self.spikes_all, group, "spikes")

    def u(self, group: GroupLike) -> np.ndarray:
        """int32 ``[trials, steps, n]`` current of a group."""
        return self._slice(self.u_all, group, "u")

    def v(self, group: GroupLike) -> np.ndarray:
        """int32 ``[trials, steps, n]`` voltage of a group (after the spike reset)."""
        return self._slice(self.v_all, group, "v")

    def readout(self, group: GroupLike) -> np.ndarray:
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
        self._engine = None
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
        self._engine = None
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
        self._engine = None

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
        self._engine = None
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

    def run(self, T: int, inputs: Mapping[GroupLike, Any] | None = None, *, record_uv: bool = True,
            n_threads: int = 1) -> LoihiResult:
        """Simulate ``T`` steps from the zero state (one trial per leading index of the inputs).

        inputs : {input group or name: spikes}; spikes are ``[T, n]`` or ``[trials, T, n]`` of bool
            or 0/1 integers. Input groups not given receive no spikes.
        record_uv : also return the per-step ``u`` and ``v`` (int32) of all compartments.
        n_threads : threads over which the trials are spread (results do not depend on it).
        """
        if isinstance(T, (bool, np.bool_)) or not isinstance(T, (int, np.integer)) or T < 0:
            raise ValueError(f"T must be a non-negative integer, got {T!r}")
        T = int(T)
        if isinstance(n_threads, (bool, np.bool_)) or not isinstance(n_threads, (int, np.integer)) or not 1 <= n_threads <= 1024:
            raise ValueError(f"n_threads must be an integer in [1, 1024], got {n_threads!r}")
        engine = self._build()
        X, B = self._assemble_inputs(T, inputs or {})
        spikes, u, v = engine.run(T, X, B, bool(record_uv), int(n_threads))
        return LoihiResult(self, spikes, u, v)

    def _assemble_inputs(self, T: int, inputs: Mapping[GroupLike, Any]) -> tuple[np.ndarray | None, int]:
        if not inputs:
            return None, 1
        B: int | None = None
        parts: list[tuple[InputGroup, np.ndarray]] = []
        for key, data in inputs.items():
            g = self._any_group(key, "inputs key")
            if not isinstance(g, InputGroup):
                raise ValueError(f"inputs key {g.name!r} is not an input group")
            a = np.asarray(data)
            if a.ndim == 2:
                a = a[None]
            if a.ndim != 3 or a.shape[1:] != (T, g.n):
                raise ValueError(f"input {g.name!r} must have shape [T, n] = [{T}, {g.n}] or [trials, T, n], "
                                 f"got {list(np.shape(data))}")
            if a.dtype != np.bool_:
                if not np.issubdtype(a.dtype, np.integer) or (a.size and (a.min() < 0 or a.max() > 1)):
                    raise ValueError(f"input {g.name!r} must hold spikes: bool or 0/1 integers")
            if B is None:
                B = a.shape[0]
            elif a.shape[0] != B:
                raise ValueError("all inputs must have the same number of trials")
            parts.append((g, a))
        X = np.zeros((B, T, self._n_in), np.uint8)
        for g, a in parts:
            X[:, :, g.start:g.start + g.n] = a
        return X, int(B)

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
