"""``python -m ahpsim demo``: the main job on built-in defaults.

Default (``--network trained``): the trained sMNIST AHP network shipped in the package (140 LIF +
100 AHP neurons, 10 leaky readouts, exported from ``ahpsim.torch``) classifies the 200 real MNIST
test digits shipped with it, encoded as the authors' 80-channel threshold-crossing spike trains (840
steps), in the float kernel and on the Loihi integer engine; prints accuracy, spikes per neuron per
step, operation counts and the Loihi energy estimate, and saves a raster plot.

``--network random``: a random recurrent AHP network of the same shape driven by Poisson inputs.

``python -m ahpsim demo babi`` (:func:`run_babi_demo`): the small spiking Relational Network shipped in
the package (``ahpsim.relnet``; LIF + AHP sentence and question encoders, g and f as integrate-and-fire
layers) answers the real bAbI test questions shipped with it, on the float kernel and with its encoders
on the Loihi integer engine; prints stories, questions, answers and spikes per neuron per step.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .examples import build_demo_network, load_demo_digits, load_demo_model

__all__ = ["build_demo_network", "run_demo", "run_babi_demo", "load_demo_model", "load_demo_digits"]


def run_demo(out_dir: str | Path = "ahpsim-demo", network: str = "trained", steps: int = 2000, seed: int = 0,
             trials: int = 4, n_threads: int = 2, plot: bool = True, loihi: bool = True) -> dict:
    for name, value, lo in (("threads", n_threads, 1), ("steps", steps, 1), ("trials", trials, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
            raise ValueError(f"--{name} must be an integer >= {lo}, got {value!r}")
    if network not in ("trained", "random"):
        raise ValueError(f"network must be 'trained' or 'random', got {network!r}")
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

        q = quantize(net, vth_mant=int(meta.get("loihi_vth_mant", 508)))  # the mantissa chosen for this network
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


def _energy_report(net: Any, res: Any, B: int, T: int) -> dict:
    """Operation counts per inference and the Loihi 1 energy / latency estimate (``ahpsim.energy``)."""
    from .energy import count_operations, energy_report, loihi1_calibrated

    rep = energy_report(net, B, T)
    rep["loihi1_calibrated"] = loihi1_calibrated(count_operations(net, B, T))
    per, lo, cal = rep["per_inference"], rep["loihi1"], rep["loihi1_calibrated"]
    print(f"  per inference : {per['synaptic_ops']:,.0f} synaptic ops, {per['spikes']:,.0f} spikes, "
          f"{per['compartment_updates']:,.0f} compartment updates; an LSTM of as many parameters: "
          f"{rep['lstm']['macs']:,.0f} MACs ({1 / rep['snn_ops_vs_lstm_macs']:.0f}x)")
    print(f"  Loihi 1 estimate (Davies et al. 2018, per-operation dynamic energy): "
          f"{lo['energy_J'] * 1e6:.1f} uJ and {lo['latency_s'] * 1e3:.2f} ms per digit; calibrated to the "
          f"authors' chip measurement (static power, per-step overhead): {cal['energy_J'] * 1e6:.0f} uJ and "
          f"{cal['latency_s'] * 1e3:.2f} ms (their network on the chip: 363 uJ, 13.99 ms)")
    return {"energy": _jsonable(rep), "operations_per_inference": per}


def _plot_trained(res: Any, X: np.ndarray, labels: np.ndarray, pred: np.ndarray, out: Path) -> list[Path]:
    from . import plot

    b = 0
    fig, axes = plot.figure(3, 1, figsize=(11, 8.5), height_ratios=[1.2, 2.5, 1.4])
    s, c = np.nonzero(X[b])
    axes[0].scatter(s, c, s=1.5, c="k", linewidths=0)
    axes[0].set_ylabel("input channel")
    axes[0].set_title(f"Test digit 0 (label {labels[b]}, predicted {pred[b]}): threshold-crossing input, "
                      "spikes, readouts", loc="left", fontsize=10)
    plot.raster(res, b, ax=axes[1])
    y = res.readout("out")[b]
    plot.readout_traces(y, ax=axes[2], highlight=int(labels[b]), window=(784, y.shape[0]),
                        ylabel="readout y")
    for ax in axes[:2]:
        ax.set_xlabel("")
    p = out / "raster.png"
    fig.savefig(p, dpi=120)
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
    from . import plot

    fig, axes = plot.figure(3, 1, figsize=(11, 8), height_ratios=[3, 1.2, 1.2])
    plot.raster(res, 0, ax=axes[0])
    axes[0].set_title("Spike raster, trial 0", loc="left", fontsize=10)
    plot.state_traces(res.state("v", "ahp")[0], ax=axes[1], threshold=1.0, ylabel="AHP soma v\n(thresholds)")
    plot.state_traces(res.state("aux", "ahp")[0], ax=axes[2], ylabel="AHP current c\n(thresholds)")
    for ax in axes[:2]:
        ax.set_xlabel("")
    p = out / "raster.png"
    fig.savefig(p, dpi=120)
    return [p]


# ---------------------------------------------------------------------------------------------- bAbI
def run_babi_demo(out_dir: str | Path = "ahpsim-demo", n_threads: int = 2, loihi: bool = True,
                  show: int = 3) -> dict:
    """``python -m ahpsim demo babi``: the shipped spiking Relational Network answers the bundled real
    bAbI test questions (see the module docstring); writes ``summary_babi.json`` to ``out_dir`` and
    returns it. Raises ValueError for ``n_threads`` < 1 or ``show`` < 0."""
    from importlib import resources

    from .relnet import load_relnet, questions_to_arrays

    for name, value, lo in (("threads", n_threads, 1), ("show", show, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
            raise ValueError(f"--{name} must be an integer >= {lo}, got {value!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base = resources.files("ahpsim") / "data" / "babi_demo"
    with resources.as_file(base) as folder:
        folder = Path(folder)
        meta = json.loads((folder / "meta.json").read_text())
        bundle = json.loads((folder / "stories.json").read_text())
        engines = {"float": load_relnet(folder, n_threads=n_threads)}
        if loihi:
            engines["loihi"] = load_relnet(folder, engine="loihi", n_threads=n_threads)
    net = engines["float"]
    questions = bundle["questions"]
    batch = questions_to_arrays(questions, net.vocab)
    truth = [q["answer"] for q in questions]
    n = net.n_neurons
    cfg = meta["model"]
    print(f"ahpsim demo babi: spiking Relational Network (encoders {n['sentence_encoder']} neurons each, "
          f"{cfg['n_encoder'] - cfg['n_encoder'] // 2} LIF + {cfg['n_encoder'] // 2} AHP; g {cfg['g_layers']} "
          f"per sentence pair, f {cfg['f_layers']}, a readout over its {n['readout']}-word vocabulary), trained on "
          f"bAbI-10k tasks "
          f"{', '.join(map(str, meta['tasks']))}")
    print(f"  every stage spikes: word spikes held {net.steps_per_word} steps -> encoders -> g and f as "
          f"integrate-and-fire layers ({net.head.steps} steps)")
    print(f"  input: {len(questions)} real test questions ({bundle['source']})")
    summary: dict[str, Any] = {"job": "babi", "questions": len(questions), "model": meta["model"],
                               "tasks": meta["tasks"], "engines": {}}
    answers = {}
    for name, eng in engines.items():
        t0 = time.perf_counter()
        res = eng.run(*batch)
        wall = time.perf_counter() - t0
        pred = [eng.vocab[k] for k in res.logits.argmax(1)]
        answers[name] = pred
        st = eng.last_head_stats
        acc = float(np.mean([p == t for p, t in zip(pred, truth)]))
        rec = {"accuracy": acc, "encoder_spikes_per_neuron_per_step": res.spikes / res.neuron_steps,
               "g_spikes_per_neuron_per_step": st["g_rate"], "f_spikes_per_neuron_per_step": st["f_rate"],
               "pairs": res.n_pairs, "wall_s": wall, "questions_per_s": len(questions) / wall}
        summary["engines"][name] = rec
        label = "float kernel  " if name == "float" else "Loihi integer "
        print(f"  {label}: {100 * acc:5.1f}% right   spikes/neuron/step: encoders "
              f"{rec['encoder_spikes_per_neuron_per_step']:.4f}, g {st['g_rate']:.4f}, f {st['f_rate']:.4f}   "
              f"{rec['questions_per_s']:,.0f} questions/s")
    if loihi:
        same = float(np.mean([a == b for a, b in zip(answers["float"], answers["loihi"])]))
        summary["engines"]["loihi"]["same_answer_as_float"] = same
        print(f"  (Loihi: encoders, g's later layers and f on the integer engine, g's first layer injected as "
              f"spikes; same answer as the float kernel for {100 * same:.1f}% of questions)")
    step = max(len(questions) // max(show, 1), 1)
    for b in range(0, len(questions), step)[:show]:
        q = questions[b]
        print(f"\n  task {q['task']}:")
        for k, sent in enumerate(q["story"]):
            print(f"    {k + 1:2d}. {' '.join(sent)}")
        got = "   ".join(f"{e}: {answers[e][b]}" for e in answers)
        print(f"    Q: {' '.join(q['question'])}?   true: {q['answer']}   {got}")
    per_task = {}
    for name in answers:
        for t in sorted({q["task"] for q in questions}):
            idx = [k for k, q in enumerate(questions) if q["task"] == t]
            per_task.setdefault(t, {})[name] = float(np.mean([answers[name][k] == truth[k] for k in idx]))
    summary["accuracy_by_task"] = per_task
    m = meta["mean"]
    print(f"\n  measured on the first {meta['test_per_task_first']} test questions of each task when the network "
          f"was exported: torch {100 * m['torch']:.1f}%, float kernel (spiking) {100 * m['kernel_spiking']:.1f}%, "
          f"Loihi integer engine {100 * m['integer']:.1f}%")
    summary["export_measurement"] = m
    tmp = out / "summary_babi.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2, default=float))
    tmp.replace(out / "summary_babi.json")
    print(f"  summary: {out / 'summary_babi.json'}")
    return summary
