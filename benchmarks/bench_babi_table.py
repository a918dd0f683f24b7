"""The bAbI per-task table of the trained Relational Networks (docs/babi.md, issue 13), their firing
rates per stage and the estimated Loihi energy per question beside the paper's 7.48 mJ.

For every run folder that holds a ``best.pt`` (``benchmarks/runs/babi-lstm``, ``babi-ahp``,
``babi-lif``: the model chosen on validation questions carved from the training files):

* **torch**: test error per task on all 20 test files (1,000 questions each), evaluated once here;
* spiking runs, on the first ``--per-task`` test questions of each task: the **float kernel** with every
  stage spiking (encoders on the kernel, g and f as integrate-and-fire layers, ``--steps`` steps,
  scales at the ``--percentile`` of the ReLU activations, units starting at ``--v-init``) and
  the **integer engine** (encoders, g's later layers and f on the Loihi 1 integer engine; g's first
  layer as the injected spike source), with spikes per neuron per step of each stage;
* the operation counts of the integer run per question, summed over the stages (each question's own
  sentences counted, as a chip that encodes its whole story would run them: the encoders' counts per
  sentence step times the question's sentence steps), turned into Loihi 1 energy with
  ``ahpsim.energy`` (dynamic per-operation figures, and calibrated with static power per chip over the
  chips of the resource estimate, ``DeployedRelationalNetwork.resources()``, or ``--chips``; the
  paper's deployment used 22), on all questions and on task 17, the task of the paper's chip
  measurement.

``--f-percentile P`` calibrates f's scales at their own percentile; the run is then recorded as
``RUN, f at P`` beside the run's other records (``--merge``); ``--drain`` (IFHead's ``drain``) adds
``, drain``. A network trained with quantized ReLUs (``head_levels``) runs its head at its trained
scales (the percentiles do not apply).

A task is passed at test error < 5 %. ``--per-task`` questions give a standard error of about
``sqrt(p (1 - p) / n)`` per task (2.2 points at n = 100 and p = 0.9).

    PYTHONPATH=python python benchmarks/bench_babi_table.py --root ../shared/data --per-task 100

Writes ``benchmarks/results/babi_table.json`` and prints the markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from ahpsim.datasets._common import atomic_save_json
from ahpsim.energy import CALIBRATION, PUBLISHED, OpCounts, loihi1_estimate
from ahpsim.loihi import QuantizationOverflowWarning
from ahpsim.torch.relational import IFHead, KernelRelationalNetwork
from ahpsim.torch.tasks import make_task
from ahpsim.torch.trainer import evaluate, load_checkpoint, load_model

try:  # run as a script (benchmarks/ on sys.path) or imported as benchmarks.<name>
    from _args import int_at_least, real_in
except ImportError:
    from benchmarks._args import int_at_least, real_in

HERE = Path(__file__).resolve().parent
RUNS = ("babi-lstm", "babi-ahp", "babi-lif")


def per_question_ops(net, batch, B: int) -> dict:
    """Per-question operation counts of the last runs of ``net`` (a DeployedRelationalNetwork whose
    counters were reset before them): encoders scaled from the distinct sentences run to every
    question's own sentences; g and f as counted."""
    ops = net.operation_counts()
    story, L, q, Lq = (np.asarray(t) for t in batch)
    words = (story > 0).sum(2)  # [B, S]; absent sentences have 0 words
    sent_steps = float(words.sum()) * net.steps_per_word
    q_steps = float(Lq.sum()) * net.steps_per_word
    out = {}
    for stage, total_steps in (("sentence_encoder", sent_steps), ("question_encoder", q_steps), ("g", None), ("f", None)):
        c = ops[stage]
        f = 1.0 / B if total_steps is None else total_steps / c["trial_steps"] / B
        out[stage] = {k: c[k] * f for k in ("spikes", "syn_events", "input_events", "neuron_updates",
                                            "compartment_updates")}
    # the chip's steps per question: the longest sentence, then the question, then g and f (f's run ends
    # the head's: steps + f's depth, and with drain g's extra steps)
    out["chip_steps"] = float(words.max(1).mean() * net.steps_per_word + Lq.mean() * net.steps_per_word
                              + net.head.steps_f)
    return out


def energy(ops: dict, chips: int) -> dict:
    tot = {k: sum(ops[s][k] for s in ("sentence_encoder", "question_encoder", "g", "f"))
           for k in ("spikes", "syn_events", "input_events", "neuron_updates", "compartment_updates")}
    steps = int(round(ops["chip_steps"]))
    counts = OpCounts(inferences=1, steps=steps, synaptic_ops=int(tot["syn_events"] + tot["input_events"]),
                      recurrent_synaptic_ops=int(tot["syn_events"]), input_synaptic_ops=int(tot["input_events"]),
                      drive_events=0, spikes=int(tot["spikes"]), neuron_updates=int(tot["neuron_updates"]),
                      compartment_updates=int(tot["compartment_updates"]), spiking_neuron_updates=0,
                      dense_synaptic_ops=0, n_neurons=0, n_spiking=0, n_compartments=1024, n_synapses=0)
    dyn = loihi1_estimate(counts)
    # latency as the chip measures it: the calibrated time per step (the stages run in parallel on
    # their own cores; the per-step overhead dominates, 16.65 us per step on the sMNIST chip)
    latency = steps * (CALIBRATION["step_overhead_s"] + dyn["latency_per_step_s"] / max(chips, 1))
    static = CALIBRATION["static_power_W_per_chip"] * chips * latency
    return {"per_question_ops": tot, "chip_steps": steps, "dynamic_energy_J": dyn["energy_J"],
            "dynamic_breakdown_J": dyn["breakdown_J"], "latency_s": latency, "static_energy_J": static,
            "energy_J": dyn["energy_J"] + static, "chips": chips}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(HERE.parent.parent / "shared" / "data"))
    ap.add_argument("--runs", default=",".join(RUNS), help="run folders under benchmarks/runs")
    ap.add_argument("--per-task", type=int_at_least(1), default=100, help="test questions per task on the engines")
    ap.add_argument("--steps", type=int_at_least(1), default=30, help="steps of the integrate-and-fire g and f")
    ap.add_argument("--percentile", type=real_in(0, 100), default=99.0,
                    help="calibration percentile of the integrate-and-fire layers' scales (IFHead)")
    ap.add_argument("--v-init", type=real_in(0, 1, lo_open=False, hi_open=True), default=0.5,
                    help="initial potential of the integrate-and-fire units, in thresholds (IFHead)")
    ap.add_argument("--f-percentile", type=real_in(0, 100), default=None,
                    help="calibration percentile of f's scales (default: --percentile)")
    ap.add_argument("--drain", action="store_true",
                    help="every layer of the head integrates all of its input (IFHead's drain); the run is recorded "
                         "as 'RUN, drain'")
    ap.add_argument("--chips", type=int_at_least(1), default=None,
                    help="chips for the static power (default: the resource estimate's; the paper used 22)")
    ap.add_argument("--threads", type=int_at_least(1), default=1)
    ap.add_argument("--out", default=str(HERE / "results" / "babi_table.json"))
    ap.add_argument("--merge", action="store_true",
                    help="keep the records of other runs already in --out (measured with the same settings) and "
                         "rebuild the table from all of them")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    # the integer engine's overflows are counted per task (row "overflows"), not warned about per call
    warnings.simplefilter("ignore", QuantizationOverflowWarning)
    task = None
    results: dict = {}
    settings = {"per_task_questions": args.per_task, "steps": args.steps, "percentile": args.percentile,
                "v_init": args.v_init, "chips": args.chips}
    if args.merge and Path(args.out).is_file():
        old = json.loads(Path(args.out).read_text())
        differ = {k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v}
        if differ:
            print(f"--merge: {args.out} was measured with other settings (theirs, these): {differ}", file=sys.stderr)
            return 2
        for name, rec in old["runs"].items():  # task numbers come back from JSON as strings
            for key in ("torch_test_error_by_task", "engines_per_task"):
                if key in rec:
                    rec[key] = {int(t): v for t, v in rec[key].items()}
            results[name] = rec
    variant = args.f_percentile is not None and args.f_percentile != args.percentile
    for run in [r for r in args.runs.split(",") if r]:
        label = (run if not variant else f"{run}, f at {args.f_percentile:g}") + (", drain" if args.drain else "")
        path = HERE / "runs" / run / "best.pt"
        if not path.is_file():
            print(f"{run}: no best.pt, skipped", flush=True)
            continue
        ck = load_checkpoint(path)
        model = load_model(ck)
        model.eval()
        if task is None:
            task = make_task("babi", root=args.root, **ck["meta"]["task"].get("options", {}))
        t0 = time.perf_counter()
        full = evaluate(model, task.test)
        hist = path.parent / "history.json"  # the whole run's (best.pt holds the history up to its epoch)
        done = len(json.loads(hist.read_text())["epochs"]) if hist.is_file() else len(ck["history"])
        rec = {"run": run, "best_epoch": ck["best_epoch"], "epochs_done": done, "val_acc": ck["best_acc"],
               "encoder": model.encoder_kind, "torch_test_acc": full["acc"],
               "torch_test_error_by_task": {t: 1 - a for t, a in full["acc_by_group"].items()},
               "torch_encoder_rate": full["rate"], "torch_wall_s": time.perf_counter() - t0}
        print(f"{run}: epoch {rec['best_epoch']} of {rec['epochs_done']} (validation {100 * rec['val_acc']:.1f} %), "
              f"test {100 * full['acc']:.2f} %", flush=True)
        if model.encoder_kind != "lstm":
            calib, _, _ = task.train.get(np.arange(0, len(task.train), max(len(task.train) // 1000, 1)))
            trained = model.head_levels is not None  # (a head trained with quantized ReLUs carries its scales)
            if trained:
                print(f"{run}: trained with head_levels={model.head_levels}: its head runs at its trained scales "
                      "(--percentile and --f-percentile do not apply)", flush=True)
            hopt = dict(steps=args.steps, percentile=None if trained else args.percentile, v_init=args.v_init,
                        f_percentile=None if trained else args.f_percentile, drain=args.drain)
            rec["head"] = {**hopt, "f_percentile": None if trained else args.f_percentile or args.percentile,
                           "trained_scales": trained}
            engines = {"kernel": KernelRelationalNetwork(model, head=IFHead(model, calib, **hopt),
                                                         n_threads=args.threads),
                       "integer": KernelRelationalNetwork(model, engine="loihi", n_threads=args.threads,
                                                          head=IFHead(model, calib, engine="loihi",
                                                                      n_threads=args.threads, **hopt))}
            by_task: dict = {}
            ops_all, ops_17 = [], None
            t0 = time.perf_counter()
            for t in sorted(int(x) for x in np.unique(task.test.groups)):
                idx = np.nonzero(task.test.groups == t)[0][:args.per_task]
                batch, ans, _ = task.test.get(idx)
                ans = ans.numpy()
                with torch.no_grad():
                    row = {"n": len(idx), "torch": float(np.mean(model(batch).logits.argmax(1).numpy() == ans))}
                for name, eng in engines.items():
                    eng.reset_ops()
                    out = eng(batch)
                    st = eng.last_head_stats
                    row[name] = float(np.mean(out.logits.argmax(1) == ans))
                    row[f"{name}_rates"] = {"encoders": out.spikes / out.neuron_steps, "g": st["g_rate"],
                                            "f": st["f_rate"]}
                    if name == "integer":
                        row["overflows"] = st.get("overflows", 0)
                        ops = per_question_ops(eng, batch, len(idx))
                        ops_all.append(ops)
                        if t == 17:
                            ops_17 = ops
                by_task[t] = row
                print(f"  task {t:2d}: torch {100 * row['torch']:5.1f}  kernel {100 * row['kernel']:5.1f}  "
                      f"integer {100 * row['integer']:5.1f}  (rates: encoders "
                      f"{row['integer_rates']['encoders']:.4f}, g {row['integer_rates']['g']:.4f}, "
                      f"f {row['integer_rates']['f']:.4f})", flush=True)
            mean_ops = {s: {k: float(np.mean([o[s][k] for o in ops_all])) for k in ops_all[0][s]}
                        for s in ("sentence_encoder", "question_encoder", "g", "f")}
            mean_ops["chip_steps"] = float(np.mean([o["chip_steps"] for o in ops_all]))
            res = engines["integer"].resources()
            chips = args.chips or res["chips"]
            rec.update(engines_per_task=by_task, engines_wall_s=time.perf_counter() - t0, resources=res,
                       energy_all_tasks=energy(mean_ops, chips),
                       energy_task17=energy(ops_17, chips) if ops_17 else None)
        if variant or args.drain:  # the torch column is the run's own
            rec["variant_of"] = run
        results[label] = rec
    if not results:
        print("no run with a best.pt", file=sys.stderr)
        return 1
    tasks = list(range(1, 21))
    cols = [(r, "torch") for r in results if "variant_of" not in results[r]] + [(r, "integer") for r in results if "engines_per_task" in results[r]]
    head = "| task | " + " | ".join(f"{r} {'(torch)' if c == 'torch' else f'(integer, first {args.per_task})'}"
                                     for r, c in cols) + " |"
    lines = ["Test error (%) per task; passed: error < 5 %.", "", head, "|---" * (len(cols) + 1) + "|"]
    passed = {col: 0 for col in cols}
    for t in tasks:
        cells = []
        for r, c in cols:
            rec = results[r]
            if c == "torch":
                err = rec["torch_test_error_by_task"].get(t)
            else:
                row = rec["engines_per_task"].get(t)
                err = None if row is None else 1 - row["integer"]
            if err is None:
                cells.append("-")
                continue
            passed[(r, c)] += err < 0.05
            cells.append(f"{100 * err:.1f}")
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    lines.append("| passed | " + " | ".join(str(passed[c]) for c in cols) + " |")
    for r, rec in results.items():
        e = rec.get("energy_all_tasks")
        if e:
            def fmt(x):
                return (f"{1e3 * x['energy_J']:.2f} mJ ({1e3 * x['dynamic_energy_J']:.3f} mJ dynamic), "
                        f"{1e3 * x['latency_s']:.2f} ms")

            e17 = rec["energy_task17"]
            pub = PUBLISHED["babi"]
            rs = rec["resources"]
            lines += ["", f"{r}: Loihi 1 resources (estimate): {rs['compartments']:,} compartments, "
                          f"{rs['synapses']:,} synapses, {rs['cores']:,} cores, {rs['chips']} chips (paper: 22 chips)."]
            lines += ["", f"{r}: estimated Loihi 1 energy per question (integer engine's operation counts, "
                          f"{e['chips']} chips): all tasks {fmt(e)}"
                          + (f"; task 17 {fmt(e17)}" if e17 else "; task 17 not among the run's tasks")
                          + f". Paper (task 17, 22 chips): {1e3 * pub['energy_J']:.2f} mJ, "
                            f"{1e3 * pub['latency_s']:.2f} ms ({pub['dynamic_power_W']} W of {pub['power_W']} W "
                            "dynamic)."]
    doc = {**settings, "runs": results,
           "table": "\n".join(lines)}
    atomic_save_json(Path(args.out), doc, indent=1)
    print(doc["table"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
