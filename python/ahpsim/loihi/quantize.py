"""Quantization of float AHP / LIF networks to Loihi units (rule set "loihi1").

Each population ``p`` gets its own voltage scale ``s_p`` (integer voltage units per float unit):
``vth_mant = round(v_th * s_p / 64)``; a weight ``w`` into ``p`` becomes ``mantissa *
2**(6 + exponent) ~= w * s_p`` with one exponent per projection, the smallest that keeps every
|mantissa| <= 255 (so the largest weight uses the full 8 bits); decays ``d = round(4096 * (1 -
exp(-dt / tau)))``; the AHP increment ``beta`` becomes the soma -> aux synapse ``-beta * s_p``;
a bias becomes ``bias_mant * 2**bias_exp``. Exponents are 0..7: Loihi 1 keeps the 6 low bits of an
effective weight zero, so the finest weight step is ``2**6`` and negative exponents only lose bits. The float input current enters v directly, so
``du = 4096`` (no carry-over). Delays: a float delay ``d >= 1`` between neurons is Loihi delay
``d - 1`` (compartment spikes take one step), a float input delay ``d`` is Loihi delay ``d``.

ALIF populations (``reset="subtract"``, no bias) are two-compartment neurons too, built from the
same parts as the AHP neuron: the soma's current ``u`` carries the float membrane potential (``du``
from ``tau_m``; ``dv = 4095`` so that ``v`` keeps only ``v / 4096`` of the previous step, under 64
units below threshold 2**18), the auxiliary compartment holds ``-beta * s_p * a`` (``aux_dv`` from
``tau_a``, charged one step after each spike) and its voltage is added to the soma's ``v`` by the
ADD join, so ``v > vth`` is the float test ``v > v_th + beta * a``; the reset by subtraction is a
soma -> soma synapse of ``-v_th * s_p``. Loihi's refractory hold of ``v`` then only blocks spikes
(``u`` keeps integrating), as the float ``n_ref`` does. This relies on the engine's reading that the
join enters the parent's ``v`` and is not stored in its ``u`` (docs/loihi.md, open point 1), and
``u`` wraps at 24 bits (+-258 thresholds at the default ``vth_mant`` 508, +-32 at 4096). ``reset="zero"`` (it would need
``u <- 0`` on a spike; Loihi resets only ``v``) and a bias (Loihi adds it to ``v``, not ``u``) raise
``NotImplementedError``.

Semantic differences (listed in the report): Loihi resets v to 0 (a float ``reset="subtract"``
population changes behaviour), Loihi's refractory period holds v at 0 (a float ``n_ref`` with
``refractory_mode="block"`` only blocks spikes; ``"clamp"`` holds v as the chip does), a readout is a compartment with the maximal threshold (it would spike and reset past
``(2**17 - 1) * 64``), and a float delay 0 from a neuron into a readout becomes one step.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from .._validation import as_int, as_positive_real
from ..models import REFRACTORY_MODES
from .network import VTH_MANT_MAX, LoihiNetwork, LoihiResult

__all__ = ["quantize", "QuantizedNetwork", "QuantizationReport", "QuantizationOverflowWarning", "decay_from_tau",
           "tau_from_decay", "split_weights", "weight_exponent"]

_W_MANT_MAX = 255
# Loihi 1 keeps the 6 low bits of an effective weight zero (floor(m * 2**e) * 2**6), so a negative
# exponent only drops mantissa bits: the finest weight step is 2**6, at exponent 0.
_EXP_MIN, _EXP_MAX = 0, 7


def decay_from_tau(tau: Any, dt: float = 1.0) -> np.ndarray:
    """12-bit decay ``round(4096 * (1 - exp(-dt / tau)))``; ``tau = 0`` gives 4096 (no carry-over)."""
    tau = np.asarray(tau, np.float64)
    with np.errstate(divide="ignore"):
        keep = np.where(tau > 0, np.exp(-dt / np.where(tau > 0, tau, 1.0)), 0.0)
    return np.rint(4096.0 * (1.0 - keep)).astype(np.int64)


def tau_from_decay(d: np.ndarray, dt: float) -> np.ndarray:
    """The time constant (in units of ``dt``) that a 12-bit Loihi decay ``d`` realizes: the inverse of
    :func:`decay_from_tau` (``d = 4096`` and above: 0, no carry-over; ``d = 0``: inf, no decay)."""
    keep = 1.0 - np.asarray(d, np.float64) / 4096.0
    with np.errstate(divide="ignore"):
        # (-log(1) is -0.0: d = 0 would give -inf)
        tau = dt / np.abs(np.log(np.where(keep > 0, keep, 1.0)))
    return np.where(keep > 0, tau, 0.0)


def weight_exponent(max_abs: float) -> int:
    """The exponent of a projection whose largest |weight| is ``max_abs`` (in voltage units): the
    smallest in [0, 7] that keeps every rounded |mantissa| <= 255. Negative exponents are never
    chosen: Loihi 1 drops the bits of an effective weight below 2**6."""
    if max_abs == 0.0:
        return 0
    # every exponent in turn (8 at most): a logarithm overshoots where rounding brings the mantissa back
    # to 255 (a weight of 255.3 * 2**6 fits exponent 0 as mantissa 255)
    for exp in range(_EXP_MIN, _EXP_MAX + 1):
        if np.rint(max_abs / 2.0 ** (6 + exp)) <= _W_MANT_MAX:
            return int(exp)
    raise ValueError(f"weights up to {max_abs:.4g} (in voltage units) exceed the largest Loihi weight "
                     f"{_W_MANT_MAX} * 2**{6 + _EXP_MAX}: lower vth_mant")


def split_weights(w_scaled: np.ndarray) -> tuple[np.ndarray, int]:
    """Mantissas and the one exponent of a projection: ``mantissa * 2**(6 + exponent) ~= w_scaled``
    (round to nearest), the exponent from :func:`weight_exponent`."""
    w_scaled = np.asarray(w_scaled, np.float64)
    exp = weight_exponent(float(np.max(np.abs(w_scaled))) if w_scaled.size else 0.0)
    return np.rint(w_scaled / 2.0 ** (6 + exp)).astype(np.int64), exp


def _split_bias(b_scaled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    b_scaled = np.asarray(b_scaled, np.float64)
    # per bias the smallest exponent in [0, 7] whose rounded mantissa fits [-4096, 4095]
    exp = np.full(b_scaled.shape, -1, np.int64)
    for e in range(7, -1, -1):
        m = np.rint(b_scaled / 2.0**e)
        exp = np.where((m >= -4096) & (m <= 4095), e, exp)
    if (exp < 0).any():
        raise ValueError("a bias exceeds 4095 * 2**7 voltage units: lower vth_mant")
    mant = np.rint(b_scaled / 2.0**exp).astype(np.int64)
    return mant, exp


class QuantizationOverflowWarning(RuntimeWarning):
    """The quantized network's integer state wrapped or saturated during a run."""


@dataclass
class QuantizationReport:
    """Quantization errors of every population and projection (relative errors are w.r.t. the
    float value; ``zeroed`` counts nonzero float weights that became 0)."""

    populations: list[dict[str, Any]] = field(default_factory=list)
    projections: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = ["population       kind     scale     vth_mant  vth_err   dv  tau_m_eff  aux_dv  tau_ahp_eff  ahp_w_err"]
        for p in self.populations:
            lines.append(
                f"{p['name']:<16} {p['kind']:<8} {p['scale']:<9.4g} {p.get('vth_mant', '-')!s:<9} "
                f"{p.get('vth_rel_err', 0):<9.2e} {p['dv_min']:<4} {p['tau_m_eff']:<10.4g} "
                f"{p.get('aux_dv', '-')!s:<7} {p.get('tau_ahp_eff', float('nan')):<12.4g} "
                f"{p.get('ahp_rel_err', float('nan')):.2e}")
        lines.append("projection               exp  synapses  max_rel_err  rms_rel_err  zeroed")
        for q in self.projections:
            lines.append(f"{q['name']:<24} {q['weight_exponent']:<4} {q['synapses']:<9} "
                         f"{q['max_rel_err']:<12.3e} {q['rms_rel_err']:<12.3e} {q['zeroed']}")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


class QuantizedResult(LoihiResult):
    """Integer results plus float views (``readout``: output voltages divided by the scale)."""

    def __init__(self, qnet: "QuantizedNetwork", res: LoihiResult):
        super().__init__(res._net, res.spikes_all.view(np.uint8), res.u_all, res.v_all, res.t0, record=res.recorded)
        self._q = qnet

    def readout(self, group: Any = None) -> np.ndarray:
        """Float readout trace ``[n_trials, T, n]``: the output group's voltage divided by its scale."""
        if group is None:  # all readout populations, side by side (as SimResult.readout())
            names = [p["name"] for p in self._q.report.populations if p["kind"] == "Readout"]
            if not names:
                raise ValueError("no readout traces: the network has no readout population")
            return np.concatenate([self.readout(n) for n in names], axis=2)
        name = group if isinstance(group, str) else group.name
        return self.v(name).astype(np.float64) / self._q.scale[name]


class QuantizedNetwork:
    """A float network converted to Loihi units; :meth:`run` has the float engine's call shape and,
    as the float engine, continues from the current state (:meth:`reset_state` starts again)."""

    def __init__(self, net: LoihiNetwork, scale: dict[str, float], report: QuantizationReport, dt: float,
                 vth_mant: int = 508):
        self.net = net
        self.vth_mant = vth_mant
        self.scale = scale
        self.report = report
        self.dt = dt

    def run(self, T: int | None = None, inputs: Mapping[Any, Any] | None = None, *,
            n_trials: int | None = None, n_threads: int | None = None, record_uv: Any = False,
            progress: bool = False) -> QuantizedResult:
        """Run on the integer engine, continuing from the current state; inputs as for the float
        engine (dense arrays: nonzero = spike; event tuples ``(steps, channels[, values])``)."""
        conv: dict[Any, Any] = {}
        for k, v in (inputs or {}).items():
            key = k if isinstance(k, str) else k.name
            if isinstance(v, tuple) or (isinstance(v, list) and v and all(isinstance(x, tuple) for x in v)):
                one = lambda ev: ev[:2] + ((np.asarray(ev[2]) != 0),) if len(ev) == 3 else ev  # noqa: E731
                conv[key] = one(v) if isinstance(v, tuple) else [one(x) for x in v]
            else:
                conv[key] = np.asarray(v) != 0
        before = self.net.overflows()
        res = self.net.run(T, conv, n_trials=n_trials, n_threads=n_threads, record_uv=record_uv, progress=progress)
        after = self.net.overflows()
        if after != before:
            total = sum(v["u_wraps"] + v["v_saturations"] for v in after.values())
            warnings.warn(f"the integer engine overflowed ({total} compartment-steps so far: "
                          f"{after}); the float network leaves the 24-bit range at vth_mant = "
                          f"{self.vth_mant}: quantize with a smaller vth_mant for more headroom",
                          QuantizationOverflowWarning, stacklevel=2)
        return QuantizedResult(self, res)

    def overflows(self) -> dict[str, dict[str, int]]:
        """See :meth:`LoihiNetwork.overflows`."""
        return self.net.overflows()

    # state, as LoihiNetwork / ahpsim.Network
    @property
    def t(self) -> int:
        return self.net.t

    @property
    def n_trials(self) -> int:
        return self.net.n_trials

    def init_state(self, n_trials: int = 1) -> None:
        self.net.init_state(n_trials)

    def reset_state(self) -> None:
        self.net.reset_state()

    def counters(self) -> dict[str, int]:
        """Operation counts of the integer engine since the state was created (see
        :meth:`LoihiNetwork.counters`)."""
        return self.net.counters()

    def store(self, name: str = "default") -> None:
        self.net.store(name)

    def restore(self, name: str = "default") -> None:
        self.net.restore(name)

    def get_state(self, var: str = "v", group: Any = None) -> np.ndarray:
        return self.net.get_state(var, group)

    def set_state(self, var: str, values: Any, group: Any = None) -> None:
        self.net.set_state(var, values, group)

    def resources(self) -> dict[str, Any]:
        return self.net.resources()


def _describe(model: Any) -> dict[str, Any]:
    """Plain description of a float network: ahpsim.Network or a dict (see quantize)."""
    if isinstance(model, Mapping):
        return dict(model)
    if callable(getattr(model, "to_network", None)):  # ahpsim.torch.SpikingRNN converts itself (the torch
        model = model.to_network(dtype="float64")         # layer sits above this one: no import of it here)
    if hasattr(model, "populations") and hasattr(model, "projection_arrays"):
        pops = []
        for g in model.populations:
            m = g.model
            d = dict(name=g.name, kind=m.kind, n=g.n)
            d.update(m.arrays(g.n))
            d["reset"] = getattr(m, "reset", None)
            d["refractory_mode"] = getattr(m, "refractory_mode", None)
            pops.append(d)
        projs = []
        for k, p in enumerate(model.projections()):
            pre, post, w, dl = model.projection_arrays(k)
            n_pre = next(g.n for g in (model.inputs if p["pre_is_input"] else model.populations) if g.name == p["source"])
            n_post = next(g.n for g in model.populations if g.name == p["target"])
            W = np.zeros((n_post, n_pre))
            D = np.zeros((n_post, n_pre), np.int64)
            np.add.at(W, (post.astype(np.int64), pre.astype(np.int64)), np.asarray(w, np.float64))
            D[post.astype(np.int64), pre.astype(np.int64)] = dl
            projs.append(dict(pre=p["source"], post=p["target"], weights=W, delay=D))
        return dict(dt=model.dt, inputs={g.name: g.n for g in model.inputs}, populations=pops, projections=projs)
    raise TypeError("quantize expects an ahpsim.Network, an ahpsim.torch.SpikingRNN, or a dict with 'inputs', "
                    "'populations', 'projections'")


def quantize(model: Any, *, vth_mant: int = 508, readout_mant: int = 255, dt: float | None = None,
             subtract_reset: str = "zero") -> QuantizedNetwork:
    """Quantize a float network to Loihi 1 units (rule set ``"loihi1"``).

    model : ``ahpsim.Network`` (populations AHP / LIF / ALIF / Readout), a trained
        ``ahpsim.torch.SpikingRNN`` (converted with ``ahpsim.torch.to_network``), or a dict ``{"dt": 1.0, "inputs":
        {name: n}, "populations": [{"name", "kind" ("AHP", "LIF", "ALIF", "Readout"), "n", "tau_m",
        "tau_ahp", "tau_a", "beta", "v_th", "n_ref", "bias", "reset", "refractory_mode", "tau"}], "projections": [{"pre",
        "post", "weights" [n_post, n_pre], "delay"}]}``.
    vth_mant : threshold mantissa of every spiking population (default 508, the paper's authors'
        value: threshold 32512, leaving the 24-bit u and v a range of +-258 thresholds; trained networks
        drive strongly inhibited neurons tens of thresholds below zero, and a current past 2**23
        wraps to the opposite sign on Loihi. Halving it doubles that range and halves the voltage's
        resolution; the weights keep their mantissas (one exponent lower) while the exponent range
        [-8, 7] allows: the trained sMNIST network wraps 6x less at 254, see docs/loihi.md).
    readout_mant : the largest weight into a readout maps to this mantissa at exponent 0.
    subtract_reset : how a LIF population with ``reset="subtract"`` is built. ``"zero"`` (default): a
        plain compartment, which Loihi resets to ``v = 0`` (the report warns). ``"exact"``: the ALIF
        construction without the auxiliary compartment: ``u`` carries the membrane potential (``du``
        from ``tau_m``, ``dv`` = 4095) and a soma -> soma synapse of ``-v_th`` subtracts the threshold,
        one step later into ``u``, before the next threshold test; exact for non-leaky neurons
        (``tau_m`` -> inf, as in rate-coded ANN-to-SNN layers), for leaky ones the subtracted
        threshold misses one decay (a relative ``1 - exp(-dt / tau_m)``). Such a population cannot
        have a bias (Loihi adds it to ``v``, which then keeps nothing: feed it through a synapse from
        an always-on input) or a refractory period (NotImplementedError).

    Returns a :class:`QuantizedNetwork` with ``.net`` (the :class:`LoihiNetwork`), ``.scale``
    (integer voltage units per float unit, per population) and ``.report``.
    """
    if subtract_reset not in ("zero", "exact"):
        raise ValueError(f"subtract_reset must be 'zero' or 'exact', got {subtract_reset!r}")
    as_positive_real(readout_mant, "readout_mant")
    d = _describe(model)
    dt = as_positive_real(dt if dt is not None else d.get("dt", 1.0), "dt", " (the step in the time constants' units)")
    vth_mant = as_int(vth_mant, "vth_mant")
    if not 1 <= vth_mant <= VTH_MANT_MAX:
        raise ValueError(f"vth_mant = {vth_mant} is out of range [1, {VTH_MANT_MAX}]")
    net = LoihiNetwork(rules="loihi1")
    rep = QuantizationReport()
    scale: dict[str, float] = {}
    groups: dict[str, Any] = {}
    for name, n in d.get("inputs", {}).items():
        groups[name] = net.add_input(int(n), name=name)
    kinds = {}
    max_in: dict[str, float] = {}
    for q in d["projections"]:
        max_in[q["post"]] = max(max_in.get(q["post"], 0.0), float(np.max(np.abs(q["weights"]))) if np.size(q["weights"]) else 0.0)
    for p in d["populations"]:
        name, kind, n = p["name"], p["kind"], int(p["n"])
        kinds[name] = kind
        arr = lambda k, default=0.0: np.broadcast_to(np.asarray(p.get(k, default), np.float64), (n,))  # noqa: E731
        bias = arr("bias")
        entry: dict[str, Any] = dict(name=name, kind=kind)
        if kind == "ALIF":
            reset = p.get("reset", "zero")
            if reset != "subtract":
                raise NotImplementedError(
                    f"population {name!r}: ALIF with reset={reset!r} cannot be quantized. On Loihi the "
                    "adaptive neuron keeps its membrane potential in the soma's current u (the soma's v "
                    "only adds the auxiliary compartment's -beta * a through the ADD join and tests the "
                    "threshold), and Loihi resets v, never u: a reset to zero would need u <- 0 on a spike. "
                    "Use reset='subtract' (a soma -> soma synapse of -v_th), which is exact")
            if np.any(bias != 0):
                raise NotImplementedError(
                    f"population {name!r}: ALIF with a bias cannot be quantized: Loihi adds the bias to v, "
                    "not to the current u that holds the ALIF membrane potential, so it would not be integrated")
        if kind in ("AHP", "LIF", "ALIF"):
            v_th = arr("v_th", 1.0)
            if np.any(v_th <= 0):
                raise ValueError(f"population {name!r}: v_th must be > 0 to quantize")
            if np.ptp(v_th) > 0:
                raise ValueError(f"population {name!r}: quantize needs one v_th per population")
            s = vth_mant * 64.0 / float(v_th[0])
            dv = decay_from_tau(arr("tau_m", 20.0), dt)
            n_ref = np.rint(arr("n_ref")).astype(np.int64)
            b_m, b_e = _split_bias(bias * s)
            exact_subtract = kind == "LIF" and p.get("reset", "zero") == "subtract" and subtract_reset == "exact"
            if exact_subtract and (np.any(bias != 0) or np.any(n_ref > 0)):
                raise NotImplementedError(
                    f"population {name!r}: LIF with reset='subtract' built exactly (subtract_reset='exact') "
                    "keeps its membrane potential in u; it cannot have a bias (Loihi adds the bias to v, which "
                    "keeps nothing from step to step: feed it through a synapse from an always-on input) or "
                    "a refractory period")
            mode = p.get("refractory_mode") or "block"
            if not isinstance(mode, str) or mode not in REFRACTORY_MODES:
                raise ValueError(f"population {name!r}: refractory_mode must be 'block' or 'clamp', got {mode!r}")
            clamped = mode == "clamp"
            if np.any((n_ref < 0) | (n_ref > 62)):
                bad = int(n_ref[(n_ref < 0) | (n_ref > 62)][0])
                raise ValueError(f"population {name!r}: n_ref must be 0..62 on Loihi (refractoryDelay n_ref + 1 is a "
                                 f"6-bit field, 1..63), got {bad}")
            # (with the clamp and n_ref >= 1 the step after a spike is held at 0 anyway: no reset difference)
            reset_moot = clamped and bool(np.all(n_ref >= 1))
            if (kind != "ALIF" and p.get("reset", "zero") != "zero" and not exact_subtract and not reset_moot):
                rep.warnings.append(f"{name}: float reset={p.get('reset')!r}; Loihi resets v to 0 (reset='zero')")
            if np.any(n_ref > 0) and kind == "ALIF" and clamped:
                rep.warnings.append(f"{name}: Loihi's refractory period only blocks the spikes of this two-compartment "
                                    "neuron (u carries its membrane potential), the float refractory_mode='clamp' "
                                    "also holds v at 0")
            elif np.any(n_ref > 0) and kind != "ALIF" and not clamped:
                rep.warnings.append(f"{name}: Loihi's refractory period holds v at 0 (the float n_ref only blocks spikes; "
                                    "refractory_mode='clamp' trains what the chip does)")
            common = dict(dv=np.minimum(dv, 4095), vth_mant=vth_mant, bias_mant=b_m, bias_exp=b_e,
                          refractory=n_ref + 1)
            entry.update(scale=s, vth_mant=vth_mant, vth_rel_err=0.0, dv_min=int(dv.min()),
                         tau_m_eff=float(tau_from_decay(dv, dt).mean()))
            if kind == "AHP":
                beta = arr("beta")
                aux_dv = decay_from_tau(arr("tau_ahp", 700.0), dt)
                if np.ptp(beta) > 0:
                    raise ValueError(f"population {name!r}: quantize needs one beta per population")
                w_ahp, e_ahp = split_weights(np.array([-float(beta[0]) * s]))
                g = net.add_ahp(n, du=4096, aux_dv=np.minimum(aux_dv, 4095), ahp_weight_mantissa=int(w_ahp[0]),
                                ahp_weight_exponent=e_ahp, name=name, **common)
                got = float(w_ahp[0]) * 2.0 ** (6 + e_ahp) / s
                entry.update(aux_dv=int(aux_dv.min()), tau_ahp_eff=float(tau_from_decay(aux_dv, dt).mean()),
                             ahp_weight_mantissa=int(w_ahp[0]), ahp_weight_exponent=e_ahp,
                             ahp_rel_err=abs(got + beta[0]) / beta[0] if beta[0] else 0.0)
            elif kind == "ALIF":
                # Adaptive threshold with a second compartment (see the module docstring): the soma's
                # current u is the float v (du from tau_m, dv = 4095: v holds almost nothing over), the
                # auxiliary compartment's voltage is -beta * s * a (aux_dv from tau_a, charged by each
                # spike one step later) and is added to the soma's v by the ADD join, so the soma
                # spikes when u - beta * s * a > vth, i.e. v_float > v_th + beta * a. Reset by
                # subtraction: a soma -> soma synapse of -v_th * s, one step later, into u.
                beta = arr("beta", 1.8)
                aux_dv = decay_from_tau(arr("tau_a", 700.0), dt)
                if np.ptp(beta) > 0:
                    raise ValueError(f"population {name!r}: quantize needs one beta per population")
                w_ahp, e_ahp = split_weights(np.array([-float(beta[0]) * s]))
                common.update(dv=4095)
                g = net.add_ahp(n, du=dv, aux_dv=np.minimum(aux_dv, 4095), ahp_weight_mantissa=int(w_ahp[0]),
                                ahp_weight_exponent=e_ahp, name=name, **common)
                w_rst, e_rst = split_weights(np.array([-float(vth_mant) * 64.0]))
                net.connect(g, g, np.diag(np.full(n, int(w_rst[0]))), weight_exponent=e_rst, name=f"{name}.reset")
                got = float(w_ahp[0]) * 2.0 ** (6 + e_ahp) / s
                entry.update(aux_dv=int(aux_dv.min()), tau_ahp_eff=float(tau_from_decay(aux_dv, dt).mean()),
                             ahp_weight_mantissa=int(w_ahp[0]), ahp_weight_exponent=e_ahp,
                             ahp_rel_err=abs(got + beta[0]) / beta[0] if beta[0] else 0.0,
                             reset_weight_rel_err=abs(float(w_rst[0]) * 2.0 ** (6 + e_rst) + vth_mant * 64.0)
                             / (vth_mant * 64.0))
            elif exact_subtract:  # u carries v; the threshold is subtracted from u by a self-synapse
                common.update(dv=4095)
                g = net.add_compartments(n, du=dv, name=name, **common)
                w_rst, e_rst = split_weights(np.array([-float(vth_mant) * 64.0]))
                net.connect(g, g, np.diag(np.full(n, int(w_rst[0]))), weight_exponent=e_rst, name=f"{name}.reset")
                entry.update(reset="subtract (exact: u carries v, self-synapse -v_th)")
            else:
                g = net.add_compartments(n, du=4096, name=name, **common)
        elif kind == "Readout":
            wmax = max_in.get(name, 0.0) or 1.0
            s = readout_mant * 64.0 / wmax
            dv = decay_from_tau(arr("tau", 20.0), dt)
            b_m, b_e = _split_bias(bias * s)
            g = net.add_compartments(n, du=4096, dv=np.minimum(dv, 4095), vth_mant=VTH_MANT_MAX, bias_mant=b_m,
                                     bias_exp=b_e, name=name)
            entry.update(scale=s, dv_min=int(dv.min()), tau_m_eff=float(tau_from_decay(dv, dt).mean()))
        else:
            raise NotImplementedError(
                f"population {name!r}: quantize supports AHP, LIF, ALIF and Readout, not {kind!r}")
        scale[name] = s
        groups[name] = g
        rep.populations.append(entry)

    for q in d["projections"]:
        pre, post = q["pre"], q["post"]
        W = np.asarray(q["weights"], np.float64)
        s = scale[post]
        mant, exp = split_weights(W * s)
        if mant.size and 0 < np.abs(mant).max() < 128:
            rep.warnings.append(f"{pre}->{post}: the largest weight uses mantissa {int(np.abs(mant).max())} < 128 "
                                f"(weights small against the threshold): raise vth_mant for more precision")
        from_input = pre in d.get("inputs", {})
        D = np.broadcast_to(np.asarray(q.get("delay", 0 if from_input else 1), np.int64), W.shape)
        if from_input:
            Dl = D
        else:
            if np.any(D[W != 0] < 1):
                rep.warnings.append(f"{pre}->{post}: float delay 0 from a neuron becomes one step on Loihi")
            Dl = np.maximum(D - 1, 0)
        if np.any(Dl > 62):
            raise ValueError(f"{pre}->{post}: delays above {62 + (0 if from_input else 1)} steps do not fit Loihi 1")
        net.connect(groups[pre], groups[post], mant, weight_exponent=exp, delay=Dl, name=f"{pre}->{post}")
        nz = W != 0
        got = mant * 2.0 ** (6 + exp) / s
        rel = np.abs(got[nz] - W[nz]) / np.abs(W[nz]) if nz.any() else np.zeros(0)
        rep.projections.append(dict(name=f"{pre}->{post}", weight_exponent=exp, synapses=int((mant != 0).sum()),
                                    max_rel_err=float(rel.max()) if rel.size else 0.0,
                                    rms_rel_err=float(np.sqrt(np.mean(rel**2))) if rel.size else 0.0,
                                    zeroed=int((nz & (mant == 0)).sum())))
    return QuantizedNetwork(net, scale, rep, dt, vth_mant)
