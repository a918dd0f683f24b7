"""``python -m ahpsim demo``: simulate a sparse-firing recurrent AHP network and save its figures."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .models import AHP, LIF, Readout
from .network import Network

__all__ = ["build_demo_network", "run_demo"]


def build_demo_network(seed: int = 0, n_lif: int = 140, n_ahp: int = 100, n_in: int = 80) -> Network:
    """The paper's sMNIST network shape (140 LIF + 100 AHP, 80 inputs, 10 leaky outputs) with random
    sparse weights (20% connectivity) and the paper's time constants, driven by Poisson inputs."""
    rng = np.random.default_rng(seed)
    net = Network(dt=1.0, seed=seed)
    x = net.add_input(n_in, "input", rate=20.0)
    lif = net.add_population(n_lif, LIF(tau_m=20.0, v_th=1.0), "lif")
    ahp = net.add_population(n_ahp, AHP(tau_m=20.0, tau_ahp=700.0, beta=0.756, v_th=1.0), "ahp")
    out = net.add_population(10, Readout(tau=20.0), "out")
    n = n_lif + n_ahp

    def sparse(shape, scale, p=0.2):
        return rng.normal(0.0, scale, shape) * (rng.random(shape) < p)

    for g, m in ((lif, n_lif), (ahp, n_ahp)):
        net.connect(x, g, sparse((m, n_in), 0.6))
    # 60 of the LIF neurons are inhibitory, as in the paper's network
    for src, m_src in ((lif, n_lif), (ahp, n_ahp)):
        for tgt, m_tgt in ((lif, n_lif), (ahp, n_ahp)):
            W = np.abs(sparse((m_tgt, m_src), 0.25))
            if src is lif:
                W[:, :60] *= -2.0
            net.connect(src, tgt, W, delay=1)
        net.connect(src, out, sparse((10, m_src), 1.0 / np.sqrt(n), p=1.0), delay=1)
    return net


def run_demo(out_dir: str | Path = "ahpsim-demo", steps: int = 2000, seed: int = 0, trials: int = 4,
             plot: bool = True) -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    net = build_demo_network(seed)
    t0 = time.perf_counter()
    res = net.run(steps, n_trials=trials, n_threads=2, record_state={"ahp": [0, 1, 2]}, progress=True)
    wall = time.perf_counter() - t0
    c = net.counters()
    n_spk = sum(g.n for g in net.populations if g.model.spiking)
    summary = {
        "neurons": n_spk,
        "synapses": net.n_synapses,
        "trials": trials,
        "steps": steps,
        "spikes_per_neuron_per_step": {g: res.rate(g) for g in ("lif", "ahp")},
        "rate_hz": {g: res.rate_hz(g) for g in ("lif", "ahp")},
        "synaptic_events": c["syn_events"],
        "input_events": c["input_events"],
        "wall_s": wall,
    }
    print(f"ahpsim demo: {n_spk} spiking neurons (140 LIF + 100 AHP), {net.n_synapses} synapses, "
          f"{trials} trials x {steps} steps in {wall:.2f} s")
    for g in ("lif", "ahp"):
        print(f"  {g:4s}: {res.rate(g):.4f} spikes/neuron/step ({res.rate_hz(g):.1f} Hz)")
    print(f"  synaptic events: {c['syn_events']}, input events: {c['input_events']}")
    if plot:
        paths = _plot(res, out, steps)
        summary["figures"] = [str(p) for p in paths]
        for p in paths:
            print(f"  saved {p}")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _plot(res, out: Path, steps: int) -> list[Path]:
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
