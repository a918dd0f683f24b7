"""Operation accounting and a Loihi 1 energy / latency estimate per inference (pure numpy).

Counts come from the kernel's exact counters (:meth:`ahpsim.Network.counters`), so they are the
operations the simulation actually did, not an estimate from average rates:

* **synaptic operations** -- one spike (or nonzero input value) delivered through one synapse;
  recurrent (``syn_events``) and from input groups (``input_events``). With binary (spike) inputs
  every one of them is an accumulate (AC). Poisson drive events (``add_poisson_drive``) are external
  and kept apart (``drive_events``).
* **spikes**, **neuron updates** (every population, readouts included, every step and trial) and
  **compartment updates** (Loihi compartments: LIF and readout 1, AHP 2 -- soma plus the AHP
  compartment joined by ADD, as in the authors' Loihi code -- and ALIF 2).
* **activation sparsity** of the spiking neurons: ``1 - spikes / spiking neuron updates``.

Relation to NeuroBench (https://neurobench.readthedocs.io, "Synaptic Operations" and "Activation
Sparsity"): ``synaptic_ops`` equals NeuroBench's *Eff_ACs* for binary activations -- only nonzero
activations through nonzero synapses, averaged per sample -- and ``dense_synaptic_ops`` its *Dense*
count (every synapse every step). Differences: NeuroBench hooks torch layers and counts a layer's
full weight matrix, zeros included, for Dense, while here a zero weight is no synapse (never stored),
so Dense counts stored synapses; NeuroBench counts nonzero non-binary activations as MACs, here a
float input is counted once per synapse it is delivered through (reported in ``input_macs`` when the
inputs are not binary); readouts are not activations here (they never spike) and are excluded from
the sparsity; delays and the Poisson drive have no NeuroBench counterpart.

Loihi 1 per-operation figures: Davies et al., "Loihi: A Neuromorphic Manycore Processor with
On-Chip Learning", IEEE Micro 38(1):82-99, 2018, Table 2 (p. 96), which the paper describes as
pre-silicon SDF and SPICE simulations consistent with early post-silicon characterization. The
estimate is dynamic energy of the neuromorphic cores only: it leaves out static (leakage) power,
the embedded x86 cores, host I/O and spike injection, which dominate measured per-inference energy
of small networks (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

__all__ = ["LOIHI1", "OpCounts", "count_operations", "loihi1_estimate", "lstm_costs", "lstm_hidden_for_params",
           "compartments_per_neuron", "energy_report", "plot_report", "add_energy_parser"]

#: Davies et al., IEEE Micro 38(1) 2018, Table 2 ("Loihi pre-silicon performance and energy
#: measurements"). Energies in pJ, times in ns.
LOIHI1: dict[str, Any] = {
    "source": "Davies et al., IEEE Micro 38(1):82-99, 2018, Table 2 (pre-silicon SDF/SPICE, p. 96)",
    "synaptic_spike_op_pJ": 23.6,       # "Energy per synaptic spike op (min)"
    "synaptic_update_pJ": 120.0,        # "Energy per synaptic update (pairwise STDP)" -- learning only
    "neuron_update_active_pJ": 81.0,    # "Energy per neuron update (active / inactive) 81 pJ / 52 pJ"
    "neuron_update_inactive_pJ": 52.0,
    "within_tile_spike_pJ": 1.7,        # "Within-tile spike energy"
    "tile_hop_pJ": (3.0, 4.0),          # "Energy per tile hop (E-W / N-S)"
    "synaptic_spike_op_ns": 3.5,        # "Time per synaptic spike op (max)"
    "neuron_update_active_ns": 8.4,     # "Time per neuron update (active / inactive) 8.4 ns / 5.3 ns"
    "neuron_update_inactive_ns": 5.3,
    "within_tile_spike_ns": 2.1,        # "Within-tile spike latency"
    "tile_hop_ns": (4.1, 6.5),          # "Latency per tile hop (E-W / N-S)"
    "barrier_sync_ns": (113.0, 465.0),  # "Mesh-wide barrier sync time (1-32 tiles)"
    "compartments_per_core": 1024,      # Davies et al. 2018, p. 86
}

_COMPARTMENTS = {"LIF": 1, "AHP": 2, "ALIF": 2, "Readout": 1}


def compartments_per_neuron(kind: str) -> int:
    """Loihi compartments one neuron of model ``kind`` takes (AHP: soma + AHP compartment)."""
    try:
        return _COMPARTMENTS[kind]
    except KeyError:
        raise ValueError(f"unknown neuron model {kind!r}; known: {sorted(_COMPARTMENTS)}") from None


@dataclass
class OpCounts:
    """Operation counts of ``inferences`` inferences of ``steps`` steps each (totals, not per inference)."""

    inferences: int
    steps: int
    synaptic_ops: int            # recurrent + input synaptic operations (ACs for binary inputs)
    recurrent_synaptic_ops: int  # spikes of populations delivered through synapses (kernel: syn_events)
    input_synaptic_ops: int      # input-group events delivered through synapses (kernel: input_events)
    drive_events: int            # Poisson drive events (external; not synaptic operations)
    spikes: int
    neuron_updates: int          # every population, readouts included
    compartment_updates: int     # Loihi compartments (AHP and ALIF neurons count 2)
    spiking_neuron_updates: int  # neuron updates of spiking populations (readouts excluded)
    dense_synaptic_ops: int      # every stored synapse every step (NeuroBench "Dense")
    n_neurons: int
    n_spiking: int
    n_compartments: int
    n_synapses: int
    binary_inputs: bool = True
    extra: dict = field(default_factory=dict)

    def per_inference(self) -> dict[str, float]:
        keys = ("synaptic_ops", "recurrent_synaptic_ops", "input_synaptic_ops", "drive_events", "spikes",
                "neuron_updates", "compartment_updates", "spiking_neuron_updates", "dense_synaptic_ops")
        return {k: getattr(self, k) / self.inferences for k in keys}

    @property
    def activation_sparsity(self) -> float:
        """NeuroBench activation sparsity of the spiking neurons: fraction of neuron-steps without a spike."""
        return 1.0 - self.spikes / self.spiking_neuron_updates if self.spiking_neuron_updates else float("nan")

    @property
    def spikes_per_neuron_per_step(self) -> float:
        return self.spikes / self.spiking_neuron_updates if self.spiking_neuron_updates else float("nan")

    @property
    def synaptic_op_sparsity(self) -> float:
        """1 - synaptic_ops / dense_synaptic_ops: the share of NeuroBench's Dense ops an event-driven
        engine skips."""
        return 1.0 - self.synaptic_ops / self.dense_synaptic_ops if self.dense_synaptic_ops else float("nan")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(per_inference=self.per_inference(), activation_sparsity=self.activation_sparsity,
                 spikes_per_neuron_per_step=self.spikes_per_neuron_per_step,
                 synaptic_op_sparsity=self.synaptic_op_sparsity)
        return d


def _network_shape(net: Any) -> tuple[int, int, int]:
    """(neurons, spiking neurons, Loihi compartments) of a float network, a LoihiNetwork or a
    QuantizedNetwork (its LoihiNetwork: ``net.net``)."""
    if hasattr(net, "populations"):
        pops = net.populations
        return (sum(g.n for g in pops), sum(g.n for g in pops if g.model.spiking),
                sum(g.n * compartments_per_neuron(g.model.kind) for g in pops))
    ln = getattr(net, "net", net)
    if hasattr(ln, "n_compartments") and hasattr(ln, "n_neurons"):
        return int(ln.n_neurons), int(ln.n_spiking), int(ln.n_compartments)
    raise TypeError(f"net: expected an ahpsim.Network, LoihiNetwork or QuantizedNetwork, got {type(net).__name__}")


def _io_shape(net: Any) -> tuple[int, int, float]:
    """(inputs, outputs, dt in ms): a float network's input channels, readouts and dt; a Loihi network's
    input channels, its compartments that never spike (readouts: not spiking, or the largest threshold)
    and 1 ms per step (the chip's time step in the paper)."""
    if hasattr(net, "populations"):
        return (sum(g.n for g in net.inputs), sum(g.n for g in net.populations if not g.model.spiking),
                float(net.dt))
    ln = getattr(net, "net", net)
    n_out = sum(g.n for g in ln.readout_groups())  # the definition LoihiNetwork.run records by default
    return int(ln.n_inputs), n_out, float(getattr(net, "dt", 1.0))


def count_operations(net: Any, n_inferences: int, steps: int, *, since: Mapping[str, int] | None = None,
                     binary_inputs: bool = True) -> OpCounts:
    """Operation counts of ``net`` from its kernel counters (minus ``since``, an earlier
    ``net.counters()``) for ``n_inferences`` trials of ``steps`` steps each.

    ``neuron_updates`` must equal ``n_neurons * steps * n_inferences`` (every neuron is updated every
    step); a mismatch means ``since``/``steps``/``n_inferences`` do not describe the counted runs and
    raises ``ValueError``.
    """
    if n_inferences < 1 or steps < 0:
        raise ValueError(f"n_inferences must be >= 1 and steps >= 0, got {n_inferences}, {steps}")
    c = dict(net.counters())
    if since is not None:
        c = {k: c[k] - since.get(k, 0) for k in c}
    n, n_spk, n_cx = _network_shape(net)
    n_syn = int(getattr(net, "net", net).n_synapses)
    expect = n * steps * n_inferences
    if c["neuron_updates"] != expect:
        raise ValueError(f"the counters hold {c['neuron_updates']} neuron updates but {n} neurons x {steps} steps x "
                         f"{n_inferences} inferences = {expect}; pass since=net.counters() taken before the run")
    rec, inp = int(c["syn_events"]), int(c["input_events"])
    return OpCounts(inferences=int(n_inferences), steps=int(steps), synaptic_ops=rec + inp,
                    recurrent_synaptic_ops=rec, input_synaptic_ops=inp, drive_events=int(c["drive_events"]),
                    spikes=int(c["spikes"]), neuron_updates=int(c["neuron_updates"]),
                    compartment_updates=n_cx * steps * n_inferences,
                    spiking_neuron_updates=n_spk * steps * n_inferences,
                    dense_synaptic_ops=n_syn * steps * n_inferences,
                    n_neurons=n, n_spiking=n_spk, n_compartments=n_cx, n_synapses=n_syn,
                    binary_inputs=bool(binary_inputs))


def loihi1_estimate(counts: OpCounts, params: Mapping[str, Any] = LOIHI1, *,
                    include_drive: bool = True) -> dict[str, Any]:
    """Dynamic energy and latency per inference on Loihi 1 from per-operation figures.

    energy = synaptic ops x 23.6 pJ + compartment updates x (81 pJ active; 52 pJ inactive gives the
    lower bound) + spikes x 1.7 pJ (within-tile spike); Poisson drive events count as synaptic ops
    (``include_drive``). Latency assumes one core does everything in sequence each step (an upper
    bound for networks that fit one core, 1,024 compartments) plus one mesh-wide barrier (113 ns):
    per step ``syn ops x 3.5 ns + compartment updates x 8.4 ns + spikes x 2.1 ns + 113 ns``.
    Static power, x86 cores, host I/O and input injection are not included.
    """
    p = params
    B, T = counts.inferences, max(counts.steps, 1)
    syn = counts.synaptic_ops + (counts.drive_events if include_drive else 0)
    e_syn = syn * p["synaptic_spike_op_pJ"]
    e_cx_hi = counts.compartment_updates * p["neuron_update_active_pJ"]
    e_cx_lo = counts.compartment_updates * p["neuron_update_inactive_pJ"]
    e_spk = counts.spikes * p["within_tile_spike_pJ"]
    pj = 1e-12
    energy = (e_syn + e_cx_hi + e_spk) * pj / B
    t_ns = (syn * p["synaptic_spike_op_ns"] + counts.compartment_updates * p["neuron_update_active_ns"]
            + counts.spikes * p["within_tile_spike_ns"]) / B + counts.steps * p["barrier_sync_ns"][0]
    cores = math.ceil(counts.n_compartments / p["compartments_per_core"])
    return {"energy_J": energy, "energy_J_low": (e_syn + e_cx_lo + e_spk) * pj / B,
            "breakdown_J": {"synaptic_ops": e_syn * pj / B, "compartment_updates": e_cx_hi * pj / B,
                            "spikes": e_spk * pj / B},
            "latency_s": t_ns * 1e-9, "latency_per_step_s": t_ns * 1e-9 / T, "cores": cores,
            "assumptions": "dynamic energy of the neuromorphic cores only (Table 2 per-op figures); active "
                           "neuron-update energy for every compartment every step (inactive: energy_J_low); "
                           "one core, sequential, plus one 113 ns barrier per step for the latency; no static "
                           "power, x86, host I/O or input injection",
            "source": p["source"]}


# The paper's chip measurements (Rao et al. 2022) used to calibrate and to check loihi1_calibrated.
PUBLISHED = {
    "smnist": {"chips": 1, "latency_s": 13.99e-3, "energy_J": 0.363e-3, "step_s": 16.65e-6, "steps": 840},
    "babi": {"chips": 22, "latency_s": 9.11e-3, "energy_J": 7.48e-3, "power_W": 0.821, "dynamic_power_W": 0.630},
}

# The two free constants of loihi1_calibrated, fitted by benchmarks/bench_loihi_nxsdk.py to the authors'
# sMNIST chip network (its operation counts on the 200 chip test images in this engine) and the
# chip's 16.65 us per step and 0.363 mJ per image: the time per step the per-operation model does not
# explain (host synchronization, input injection) and the power the chip draws besides its cores'
# operations (static power, x86 cores, I/O).
CALIBRATION = {"step_overhead_s": 10.905e-6, "static_power_W_per_chip": 0.023171,
               "fitted_to": "sMNIST on one chip: 16.65 us per step, 0.363 mJ per image (Rao et al. 2022)",
               "fitted_by": "benchmarks/bench_loihi_nxsdk.py (benchmarks/results/loihi_nxsdk.json)"}


def loihi1_calibrated(counts: OpCounts, *, chips: int = 1, calibration: Mapping[str, Any] = CALIBRATION,
                      params: Mapping[str, Any] = LOIHI1) -> dict[str, Any]:
    """Energy and latency per inference including what a chip measurement includes: the per-operation
    dynamic figures of :func:`loihi1_estimate`, a fitted overhead per step and a fitted static power per
    chip (``CALIBRATION``; ``energy = dynamic + static_power * chips * latency``). The dynamic-only figure
    stays in ``dynamic_energy_J``."""
    dyn = loihi1_estimate(counts, params)
    latency = dyn["latency_s"] + counts.steps * calibration["step_overhead_s"]
    static = calibration["static_power_W_per_chip"] * chips * latency
    return {"energy_J": dyn["energy_J"] + static, "dynamic_energy_J": dyn["energy_J"], "static_energy_J": static,
            "latency_s": latency, "latency_per_step_s": latency / max(counts.steps, 1), "chips": chips,
            "calibration": dict(calibration)}


def lstm_costs(n_in: int, n_h: int, n_out: int, steps: int, *, readout_every_step: bool = False,
               bytes_per_value: int = 4) -> dict[str, Any]:
    """Multiply-accumulates and memory traffic of one inference of a one-layer LSTM (batch 1).

    Per step the four gates take ``4 * (n_in + n_h + 1) * n_h`` MACs (input and recurrent weights,
    bias counted as one MAC per gate unit) plus ``3 * n_h`` elementwise products (the cell and output
    gating) and ``5 * n_h`` nonlinearities (3 sigmoids, 2 tanh), which are reported apart. The readout
    (``(n_h + 1) * n_out`` MACs) runs once per inference (the answer at the last step) unless
    ``readout_every_step``. Memory traffic at batch 1: every parameter is read once per step (no
    on-chip reuse across steps is assumed) plus the input, h and c read and h and c written.
    """
    for name, v in (("n_in", n_in), ("n_h", n_h), ("n_out", n_out), ("steps", steps)):
        if int(v) != v or v < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
    gate = 4 * (n_in + n_h + 1) * n_h
    ro = (n_h + 1) * n_out
    n_ro = steps if readout_every_step else (1 if steps else 0)
    params_cell, params = gate, gate + ro
    macs = gate * steps + ro * n_ro
    act_bytes = (n_in + 2 * n_h + 2 * n_h) * bytes_per_value  # x, h, c read; h, c written
    traffic = (params_cell * bytes_per_value + act_bytes) * steps + ro * bytes_per_value * n_ro
    return {"n_in": n_in, "n_h": n_h, "n_out": n_out, "steps": steps, "parameters": params,
            "macs": macs, "macs_per_step": gate, "elementwise_products": 3 * n_h * steps,
            "nonlinearities": 5 * n_h * steps, "memory_traffic_bytes": traffic, "bytes_per_value": bytes_per_value}


def lstm_hidden_for_params(n_params: int, n_in: int, n_out: int) -> int:
    """The hidden size whose LSTM (+ readout) has the parameter count nearest ``n_params``."""
    # 4 n_h^2 + (4 (n_in + 1) + n_out) n_h + n_out = n_params
    a, b, c = 4.0, 4.0 * (n_in + 1) + n_out, n_out - float(n_params)
    h = max(1, int(round((-b + math.sqrt(max(b * b - 4 * a * c, 0.0))) / (2 * a))))
    best = min((k for k in (h - 1, h, h + 1) if k >= 1),
               key=lambda k: abs(4 * (n_in + k + 1) * k + (k + 1) * n_out - n_params))
    return best


def energy_report(net: Any, n_inferences: int, steps: int, *, since: Mapping[str, int] | None = None,
                  binary_inputs: bool = True, lstm_hidden: int | None = None) -> dict[str, Any]:
    """Counts per inference, their rates, the Loihi 1 estimate and the equivalent LSTM's costs (an LSTM
    with as many parameters as ``net`` has synapses, unless ``lstm_hidden`` is given)."""
    counts = count_operations(net, n_inferences, steps, since=since, binary_inputs=binary_inputs)
    n_in, n_out, dt = _io_shape(net)
    n_h = lstm_hidden if lstm_hidden is not None else lstm_hidden_for_params(counts.n_synapses, n_in, n_out)
    lstm = lstm_costs(n_in, n_h, n_out, steps)
    per = counts.per_inference()
    dt_s = dt / 1000.0
    bio = steps * dt_s
    rates = {"spikes_per_neuron_per_step": counts.spikes_per_neuron_per_step,
             "spike_rate_hz": counts.spikes_per_neuron_per_step / dt_s if dt_s else float("nan"),
             "synaptic_ops_per_step": per["synaptic_ops"] / steps if steps else float("nan"),
             "synaptic_ops_per_biological_s": per["synaptic_ops"] / bio if bio else float("nan"),
             "activation_sparsity": counts.activation_sparsity,
             "synaptic_op_sparsity": counts.synaptic_op_sparsity}
    return {"counts": counts.to_dict(), "per_inference": per, "rates": rates, "loihi1": loihi1_estimate(counts),
            "lstm": lstm, "snn_ops_vs_lstm_macs": per["synaptic_ops"] / lstm["macs"] if lstm["macs"] else float("nan")}


def plot_report(report: Mapping[str, Any], path: str | Path, title: str = "") -> Path:
    """Two panels: operations per inference (SNN synaptic ops, spikes, compartment updates vs the LSTM's
    MACs) and the Loihi 1 energy breakdown per inference."""
    from .plot import figure

    per, lstm, lo = report["per_inference"], report["lstm"], report["loihi1"]
    fig, (a0, a1) = figure(1, 2, figsize=(10, 3.6), sharex=False)
    names = ["SNN synaptic ops", "SNN spikes", "SNN compartment\nupdates", f"LSTM MACs\n(n_h={lstm['n_h']})"]
    vals = [per["synaptic_ops"] + per["drive_events"], per["spikes"], per["compartment_updates"], lstm["macs"]]
    a0.bar(names, vals, color=["#1f77b4", "#2ca02c", "#9467bd", "#d62728"])
    a0.set_yscale("log")
    a0.set_ylabel("operations per inference")
    a0.tick_params(axis="x", labelsize=8)
    bd = lo["breakdown_J"]
    a1.bar(["synaptic ops", "compartment\nupdates", "spikes"], [bd["synaptic_ops"] * 1e6,
           bd["compartment_updates"] * 1e6, bd["spikes"] * 1e6], color=["#1f77b4", "#9467bd", "#2ca02c"])
    a1.set_ylabel("Loihi 1 dynamic energy per inference (uJ)")
    a1.set_title(f"total {lo['energy_J'] * 1e6:.1f} uJ, {lo['latency_s'] * 1e3:.2f} ms (per-op model)", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


# ---------------------------------------------------------------------------------------------- CLI
def _run_cli(args: argparse.Namespace) -> int:
    from .datasets import threshold_crossing_encode
    from .examples import build_demo_network, load_demo_digits, load_demo_model

    if args.digits < 1 or args.steps < 1 or args.threads < 1:
        raise ValueError(f"--digits, --steps and --threads must be >= 1, got {args.digits}, {args.steps}, "
                         f"{args.threads}")
    if args.network == "trained":
        net, _ = load_demo_model(args.threads)
        images, _labels = load_demo_digits()
        X = threshold_crossing_encode(images[: args.digits])
        B, T, _ = X.shape
        c0 = net.counters()
        net.run(inputs={"x": X}, n_threads=args.threads, record_spikes=False)
        title = f"trained sMNIST AHP network, {B} MNIST digits, {T} steps"
    else:
        net = build_demo_network(seed=args.seed)
        B, T = args.digits, args.steps
        c0 = net.counters()
        net.run(T, n_trials=B, n_threads=args.threads, record_spikes=False)
        title = f"random sMNIST-shaped AHP network, {B} trials, {T} steps"
    rep = energy_report(net, B, T, since=c0, lstm_hidden=args.lstm_hidden)
    rep["network"] = title
    rep["published_loihi_smnist"] = {"energy_J": 0.363e-3, "latency_s": 13.99e-3,
                                     "source": "Rao et al., Nat. Mach. Intell. 4:467-479 (2022), measured on Loihi"}
    per, lo, lstm = rep["per_inference"], rep["loihi1"], rep["lstm"]
    print(f"ahpsim energy: {title}")
    print(f"  per inference: {per['synaptic_ops']:,.0f} synaptic ops ({per['input_synaptic_ops']:,.0f} from inputs), "
          f"{per['spikes']:,.0f} spikes, {per['neuron_updates']:,.0f} neuron updates, "
          f"{per['compartment_updates']:,.0f} compartment updates")
    print(f"  rates: {rep['rates']['spikes_per_neuron_per_step']:.4f} spikes/neuron/step, activation sparsity "
          f"{rep['rates']['activation_sparsity']:.4f}, synaptic ops {100 * (1 - rep['rates']['synaptic_op_sparsity']):.2f}% "
          f"of dense")
    print(f"  Loihi 1 (per-op model, {LOIHI1['source']}): {lo['energy_J'] * 1e6:.2f} uJ "
          f"(>= {lo['energy_J_low'] * 1e6:.2f} uJ), {lo['latency_s'] * 1e3:.3f} ms per inference on {lo['cores']} core(s)")
    print(f"  equivalent LSTM (n_in {lstm['n_in']}, n_h {lstm['n_h']}, {lstm['parameters']:,} parameters): "
          f"{lstm['macs']:,} MACs, {lstm['memory_traffic_bytes'] / 1e6:.1f} MB memory traffic per inference")
    print(f"  SNN synaptic ops / LSTM MACs = {rep['snn_ops_vs_lstm_macs']:.4f}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "energy.json").write_text(json.dumps(rep, indent=2, default=_json_default))
        print(f"  saved {out / 'energy.json'}")
        if not args.no_plot:
            print(f"  saved {plot_report(rep, out / 'energy.png', title)}")
    if args.json:
        print(json.dumps(rep, indent=2, default=_json_default))
    return 0


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, tuple):
        return list(x)
    raise TypeError(f"not JSON serializable: {type(x).__name__}")


def add_energy_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``energy`` to an ``argparse`` subparsers object (``python -m ahpsim energy``)."""
    from ._argtypes import seed, threads

    e = subparsers.add_parser("energy", help="count synaptic ops, spikes and neuron updates per inference and "
                                             "estimate Loihi 1 energy/latency beside an equivalent LSTM")
    e.add_argument("--network", choices=["trained", "random"], default="trained",
                   help="'trained': the shipped sMNIST AHP network on bundled MNIST digits (default); "
                        "'random': a random network of the same shape driven by Poisson inputs")
    e.add_argument("--digits", type=int, default=20, help="inferences (digits or trials; default 20)")
    e.add_argument("--steps", type=int, default=840, help="random network: steps per trial (default 840)")
    e.add_argument("--seed", type=seed, default=0, help="random network: seed")
    e.add_argument("--threads", type=threads, default=2)
    e.add_argument("--lstm-hidden", type=int, default=None,
                   help="LSTM hidden size to compare with (default: as many parameters as the SNN has synapses)")
    e.add_argument("--out", default="ahpsim-energy", help="output directory for energy.json and energy.png "
                                                         "('' to write nothing)")
    e.add_argument("--no-plot", action="store_true")
    e.add_argument("--json", action="store_true", help="also print the report as JSON")
    e.set_defaults(func=_run_cli)
    return e
