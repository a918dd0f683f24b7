"""Speed of the bAbI Relational Network (``ahpsim.torch.relational``) on real bAbI-10k questions:
training step (batch 64, forward + BPTT + Adam) with AHP, LIF-only and LSTM encoders, the projected
wall time of one epoch (181,450 training questions), and inference questions per second in torch and
on the C++ kernel deployment (``KernelRelationalNetwork``: spiking encoders, g and f in numpy), and
with every stage spiking (g and f as integrate-and-fire layers, ``--head-steps`` steps; ``IFHead``) on
the float kernel and on the Loihi integer engine. The LSTM-encoder network (the paper's
non-spiking baseline, the same g and f) is the reference each spiking variant is compared with.

    PYTHONPATH=python python benchmarks/bench_babi.py --root ../shared/data --threads 1

Writes ``benchmarks/results/babi.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ahpsim.datasets._common import atomic_save_json

from ahpsim.torch.relational import IFHead, KernelRelationalNetwork
from ahpsim.torch.tasks import build_model, make_task
try:  # run as a script (benchmarks/ on sys.path) or imported as benchmarks.<name>
    from _args import int_at_least
except ImportError:
    from benchmarks._args import int_at_least



def bench(task, encoder: str, n_steps: int, n_infer: int, head_steps: int = 100, seed: int = 0) -> dict:
    model = build_model(task, encoder, seed=seed)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    rng = np.random.default_rng(seed)
    times, rates = [], []
    for k in range(n_steps + 2):  # two warm-up steps
        idx = rng.choice(len(task.train), 64, replace=False)
        batch, ans, _ = task.train.get(np.sort(idx))
        t0 = time.perf_counter()
        out = model(batch)
        loss = torch.nn.functional.cross_entropy(out.logits, ans)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if k >= 2:
            times.append(time.perf_counter() - t0)
            rates.append(out.spikes / max(out.neuron_steps, 1.0))
    step = statistics.median(times)
    res = {"encoder": encoder, "train_step_s": step, "train_steps_timed": len(times),
           "epoch_s_projected": step * int(np.ceil(len(task.train) / 64)),
           "encoder_rate": statistics.mean(rates) if encoder != "lstm" else None}
    idx = np.arange(0, len(task.test), max(1, len(task.test) // n_infer))[:n_infer]
    batch, _, _ = task.test.get(idx)
    warm, _, _ = task.test.get(idx[:16])  # every timed call follows an untimed one (first-call set-up)
    with torch.no_grad():
        model(warm)
        t0 = time.perf_counter()
        ref = model(batch)
        res["infer_torch_qps"] = len(idx) / (time.perf_counter() - t0)
    if encoder != "lstm":
        kernel = KernelRelationalNetwork(model)
        kernel(warm)
        t0 = time.perf_counter()
        k = kernel(batch)
        res["infer_kernel_qps"] = len(idx) / (time.perf_counter() - t0)
        res["kernel_same_spikes"] = bool(k.spikes == ref.spikes)
        res["kernel_same_answers"] = float((k.logits.argmax(1) == ref.logits.argmax(1).numpy()).mean())
        # every stage spiking (g and f as integrate-and-fire layers, head_steps steps) on each engine,
        # on a quarter of the questions (the head runs one kernel trial per sentence pair)
        calib, _, _ = task.train.get(np.sort(rng.choice(len(task.train), 256, replace=False)))
        part = task.test.get(idx[: max(1, len(idx) // 4)])[0]
        for engine in ("float", "loihi"):
            head = IFHead(model, calib, steps=head_steps, engine=engine)
            net = KernelRelationalNetwork(model, head=head, engine=engine)
            net(task.test.get(idx[:2])[0])
            t0 = time.perf_counter()
            net(part)
            res[f"infer_spiking_{engine}_qps"] = len(part.question) / (time.perf_counter() - t0)
        res["head_steps"] = head_steps
    return res


def markdown(rows: list[dict]) -> str:
    base = next((r for r in rows if r["encoder"] == "lstm"), None)
    steps = next((r["head_steps"] for r in rows if "head_steps" in r), "-")
    lines = ["| encoders | training step (batch 64) | epoch (projected) | vs LSTM | inference torch | "
             f"inference kernel | all spiking, float kernel ({steps} head steps) | all spiking, integer engine | "
             "encoder spikes / neuron / step |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{r['train_step_s'] / base['train_step_s']:.2f}x" if base else "-"
        kern = f"{r['infer_kernel_qps']:.0f} q/s" if "infer_kernel_qps" in r else "-"
        rate = f"{r['encoder_rate']:.4f}" if r["encoder_rate"] is not None else "-"
        spk = [f"{r[k]:.1f} q/s" if k in r else "-" for k in ("infer_spiking_float_qps", "infer_spiking_loihi_qps")]
        lines.append(f"| {r['encoder']} | {r['train_step_s']:.3f} s | {r['epoch_s_projected'] / 60:.1f} min | {ratio} | "
                     f"{r['infer_torch_qps']:.0f} q/s | {kern} | {spk[0]} | {spk[1]} | {rate} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--threads", type=int_at_least(1), default=1)
    ap.add_argument("--steps", type=int_at_least(1), default=20, help="timed training steps per encoder")
    ap.add_argument("--n-infer", type=int_at_least(1), default=512, help="test questions for the inference timing")
    ap.add_argument("--encoders", default="ahp,lif,lstm")
    ap.add_argument("--head-steps", type=int_at_least(1), default=100,
                    help="steps of the integrate-and-fire g and f in the all-spiking timings")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "babi.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    task = make_task("babi", root=args.root)
    rows = [bench(task, e, args.steps, args.n_infer, args.head_steps) for e in args.encoders.split(",")]
    doc = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                       "threads": args.threads, "load_average_at_end": os.getloadavg()},
           "n_train": len(task.train), "notes": task.notes, "results": rows, "table": markdown(rows)}
    atomic_save_json(Path(args.out), doc, indent=1)
    print(doc["table"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
