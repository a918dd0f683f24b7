"""``python -m ahpsim demo``: the main job on built-in defaults.

Default (``--network trained``): the trained sMNIST AHP network shipped in the package (140 LIF +
100 AHP neurons, 10 leaky readouts, exported from ``ahpsim.torch``) classifies the 200 real MNIST
test digits shipped with it, encoded as the authors' 80-channel threshold-crossing spike trains (840
steps), in the float kernel and on the Loihi integer engine; prints accuracy, spikes per neuron per
step, operation counts and the Loihi energy estimate, and saves a raster plot.

``--network random``: a random recurrent AHP network of the same shape driven by Poisson inputs.
"""

from __future__ import annotations

import json
import time
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .models import AHP, LIF, Readout
from .network import Network, load_network

__all__ = ["build_demo_network", "run_demo", "load_demo_model", "load_demo_digits"]


def load_demo_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 200 MNIST test digits shipped in the package: (uint8 [200, 28, 28], int64 [200])."""
    with resources.as_file(resources.files("ahpsim") / "data" / "mnist_test_200.npz") as p:
        with np.load(p) as d:
            return d["images"].copy(), d["labels"].astype(np.int64)


def load_demo_model(n_threads: int = 2) -> tuple[Network, dict]:
    """The trained sMNIST AHP network shipped in the package, and its provenance."""
    base = resources.files("ahpsim") / "data"
    with resources.as_file(base / "smnist_ahp.npz") as p:
        net = load_network(p, n_threads=n_threads)
    with resources.as_file(base / "smnist_ahp.json") as p:
        meta = json.loads(Path(p).read_text())
    return net, meta


def build_demo_network(seed: int = 0, n_lif: int = 140, n_ahp: int = 100, n_in: int = 80) -> Network:
    """The paper's sMNIST network shape (140 LIF + 100 AHP, 80 inputs, 10 leaky outputs) with random
    sparse weights (20% connectivity) and the paper's time constants, driven by Poisson inputs."""
    rng = np.random.default_rng(seed)
    net = Network(dt=1.0, seed=seed)
    x = net.add_input(n_in, "input", rate=20.0)
    lif = net.add_population(n_lif, LIF(tau_m=20.0, v_th=1.0), "lif")
    ahp = net.add_population(n_ahp, AHP(tau_m=20.0, tau_ahp=700.0, beta=0.756 / 64, v_th=1.0), "ahp")
    out = net.add_population(10, Readout(tau=20.0), "out")
    n = n_lif + n_ahp

    def sparse(shape, scale, p=0.2):
        return rng.normal(0.0, scale, shape) * (rng.random(shape) < p)

    for g, m in ((lif, n_lif), (ahp, n_ahp)):
        net.connect(x, g, sparse((m, n_in), 0.35))
    # 60 of the LIF neurons are inhibitory, as in the paper's network
    for src, m_src in ((lif, n_lif), (ahp, n_ahp)):
        for tgt, m_tgt in ((lif, n_lif), (ahp, n_ahp)):
            W = np.abs(sparse((m_tgt, m_src), 0.25))
            if src is lif:
                W[:, :60] *= -2.0
            net.connect(src, tgt, W, delay=1)
        net.connect(src, out, sparse((10, m_src), 1.0 / np.sqrt(n), p=1.0), delay=1)
    return net


def run_demo(out_dir: str | Path = "ahpsim-demo", network: str = "trained", steps: int = 2000, seed: int = 0,
             trials: int = 4, n_threads: int = 2, plot: bool = True, loihi: bool = True) -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if network == "trained":
        summary = _trained(out, n_threads, plot, loihi)
    elif network == "random":
        summary = _random(out, steps, seed, trials, n_threads, plot)
    else:
        raise ValueError(f"network must be 'trained' or 'random', got {network!r}")
    tmp = out / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2, default=float))
    tmp.replace(out / "summary.json")
    print(f"  summary: {out / 'summary.json'}")
    return summary


# ---------------------------------------------------------------------------------------------- trained
def _trained(out: Path, n_threads: int, plot: bool, loihi: bool) -> dict:
    from .datasets import threshold_crossing_encode

    net, meta = load_demo_model(n_threads)
    images, labels = load_demo_digits()
    X = threshold_crossing_encode(images)  # bool [200, 840, 80]
    B, T, _ = X.shape
    spiking = [g for g in net.populations if g.model.spiking]
    n_spk = sum(g.n for g in spiking)
    print(f"ahpsim demo: trained sMNIST AHP network ({', '.join(f'{g.n} {g.model.kind}' for g in spiking)}, "
          f"{net['out'].n} readouts, {net.n_synapses} synapses)")
    print(f"  trained with ahpsim.torch: {meta.get('model', '')}; {meta.get('source', '')}")
    print(f"  input: {B} real MNIST test digits as {X.shape[2]}-channel threshold-crossing spikes, {T} steps each")

    t0 = time.perf_counter()
    res = net.run(inputs={"x": X}, n_threads=n_threads, progress=True)
    wall = time.perf_counter() - t0
    pred = res.readout("out")[:, -1].argmax(-1)
    acc = float(np.mean(pred == labels))
    rate = sum(res.rate(g) * g.n for g in spiking) / n_spk
    counts = net.counters()
    summary: dict[str, Any] = {
        "network": "trained", "model": meta, "digits": B, "steps": T,
        "float": {"accuracy": acc, "spikes_per_neuron_per_step": rate, "wall_s": wall, "threads": n_threads,
                  "samples_per_s": B / wall},
        "counts_per_inference": {k: v / B for k, v in counts.items()},
    }
    print(f"  float kernel  : accuracy {100 * acc:5.1f}%   spikes/neuron/step {rate:.4f}   "
          f"{B / wall:,.0f} digits/s ({n_threads} threads)")

    if loihi:
        from .loihi import QuantizationOverflowWarning, quantize

        q = quantize(net)
        q.reset_state()
        t0 = time.perf_counter()
        with warnings.catch_warnings():  # reported below, with the counts
            warnings.simplefilter("ignore", QuantizationOverflowWarning)
            qres = q.run(T, inputs={"x": X}, n_threads=n_threads, record_uv=True)
        qwall = time.perf_counter() - t0
        overflows = q.overflows()
        qpred = np.asarray(qres.readout("out"))[:, -1].argmax(-1)
        qacc = float(np.mean(qpred == labels))
        qrate = sum(float(np.mean(qres.raster(g.name))) * g.n for g in spiking) / n_spk
        agree = float(np.mean(qpred == pred))
        summary["loihi"] = {"accuracy": qacc, "spikes_per_neuron_per_step": qrate, "agreement_with_float": agree,
                            "vth_mant": q.vth_mant, "overflows": overflows,
                            "wall_s": qwall, "resources": _jsonable(q.resources())}
        print(f"  Loihi integer : accuracy {100 * qacc:5.1f}%   spikes/neuron/step {qrate:.4f}   "
              f"same class as float for {100 * agree:.1f}% of digits")
        n_cs = B * T * q.net.n_compartments
        n_wrap = sum(v["u_wraps"] for v in overflows.values())
        n_sat = sum(v["v_saturations"] for v in overflows.values())
        # (Loihi clips v at -(2**23 - 1) where the float voltage goes on down: the chip does the same)
        print(f"                  threshold mantissa {q.vth_mant}: u wrapped in {n_wrap:,}, v clipped at "
              f"+-(2^23 - 1) in {n_sat:,} of {n_cs:,} compartment-steps ({100 * n_sat / n_cs:.2f}%)")

    summary.update(_energy_report(net, res, B, T))
    if plot:
        paths = _plot_trained(res, X, labels, pred, out)
        summary["figures"] = [str(p) for p in paths]
        for p in paths:
            print(f"  saved {p}")
    return summary


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x


def _energy_report(net: Network, res: Any, B: int, T: int) -> dict:
    """Operation counts per inference and the Loihi 1 energy / latency estimate (``ahpsim.energy``)."""
    from .energy import energy_report

    rep = energy_report(net, B, T)
    per, lo = rep["per_inference"], rep["loihi1"]
    print(f"  per inference : {per['synaptic_ops']:,.0f} synaptic ops, {per['spikes']:,.0f} spikes, "
          f"{per['compartment_updates']:,.0f} compartment updates; an LSTM of as many parameters: "
          f"{rep['lstm']['macs']:,.0f} MACs ({1 / rep['snn_ops_vs_lstm_macs']:.0f}x)")
    print(f"  Loihi 1 estimate (Davies et al. 2018, per-operation dynamic energy): "
          f"{lo['energy_J'] * 1e6:.1f} uJ and {lo['latency_s'] * 1e3:.2f} ms per digit "
          f"(the paper measured 363 uJ and 13.99 ms on the chip, static power and I/O included)")
    return {"energy": _jsonable(rep), "operations_per_inference": per}


def _plot_trained(res: Any, X: np.ndarray, labels: np.ndarray, pred: np.ndarray, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    b = 0
    fig, axes = plt.subplots(3, 1, figsize=(10, 8.5), sharex=True, gridspec_kw={"height_ratios": [1.2, 2.5, 1.3]})
    s, c = np.nonzero(X[b])
    axes[0].scatter(s, c, s=1.5, c="k", linewidths=0)
    axes[0].set_ylabel("input channel")
    axes[0].set_title(f"Test digit 0 (label {labels[b]}, predicted {pred[b]}): threshold-crossing input, "
                      "spikes, readouts")
    off = 0
    for g, color in zip([g for g in res.populations if g.model.spiking], ("tab:blue", "tab:red", "tab:green")):
        st, ids = res.spikes(b, g)
        axes[1].scatter(st, ids + off, s=2, c=color, label=f"{g.model.kind} ({g.n})", linewidths=0)
        off += g.n
    axes[1].set_ylabel("neuron")
    axes[1].legend(loc="upper left", markerscale=5)
    y = res.readout("out")[b]
    for k in range(y.shape[1]):
        axes[2].plot(y[:, k], lw=1.6 if k == labels[b] else 0.7, label=str(k))
    axes[2].axvspan(784, y.shape[0], color="0.9", zorder=-1)
    axes[2].set_ylabel("readout y")
    axes[2].set_xlabel("step (ms); shaded: cue window")
    axes[2].legend(ncol=10, fontsize=7, loc="lower left", title="readout (bold: true class)", title_fontsize=7)
    fig.tight_layout()
    p = out / "raster.png"
    fig.savefig(p, dpi=120)
    plt.close(fig)
    return [p]


# ---------------------------------------------------------------------------------------------- random
def _random(out: Path, steps: int, seed: int, trials: int, n_threads: int, plot: bool) -> dict:
    net = build_demo_network(seed)
    t0 = time.perf_counter()
    res = net.run(steps, n_trials=trials, n_threads=n_threads, record_state={"ahp": [0, 1, 2]}, progress=True)
    wall = time.perf_counter() - t0
    c = net.counters()
    n_spk = sum(g.n for g in net.populations if g.model.spiking)
    summary = {
        "network": "random", "neurons": n_spk, "synapses": net.n_synapses, "trials": trials, "steps": steps,
        "spikes_per_neuron_per_step": {g: res.rate(g) for g in ("lif", "ahp")},
        "rate_hz": {g: res.rate_hz(g) for g in ("lif", "ahp")},
        "synaptic_events": c["syn_events"], "input_events": c["input_events"], "wall_s": wall,
    }
    print(f"ahpsim demo: random network, {n_spk} spiking neurons (140 LIF + 100 AHP), {net.n_synapses} synapses, "
          f"{trials} trials x {steps} steps in {wall:.2f} s")
    for g in ("lif", "ahp"):
        print(f"  {g:4s}: {res.rate(g):.4f} spikes/neuron/step ({res.rate_hz(g):.1f} Hz)")
    print(f"  synaptic events: {c['syn_events']}, input events: {c['input_events']}")
    if plot:
        paths = _plot_random(res, out, steps)
        summary["figures"] = [str(p) for p in paths]
        for p in paths:
            print(f"  saved {p}")
    return summary


def _plot_random(res, out: Path, steps: int) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True, gridspec_kw={"height_ratios": [3, 1.2, 1.2]})
    for g, color, off in (("lif", "tab:blue", 0), ("ahp", "tab:red", 140)):
        s, i = res.spikes(0, g)
        axes[0].scatter(s, i + off, s=1.5, c=color, label=g.upper(), linewidths=0)
    axes[0].set_ylabel("neuron")
    axes[0].legend(loc="upper right", markerscale=6)
    axes[0].set_title("Spike raster, trial 0")
    t = np.arange(steps)
    axes[1].plot(t, res.state("v", "ahp")[0], lw=0.7)
    axes[1].axhline(1.0, color="k", lw=0.5, ls="--")
    axes[1].set_ylabel("AHP soma v")
    axes[2].plot(t, res.state("aux", "ahp")[0], lw=0.9)
    axes[2].set_ylabel("AHP current c")
    axes[2].set_xlabel("step (ms)")
    fig.tight_layout()
    p = out / "raster.png"
    fig.savefig(p, dpi=120)
    plt.close(fig)
    return [p]
