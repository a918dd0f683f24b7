"""What the bAbI Relational Network's deployment paths keep of a trained model (docs/babi.md,
"Deployment"): a small network (60 encoder neurons, g 3 x 128, f 128) trained on tasks 1 and 6 of the 1k
files (6 epochs, seeds fixed), then 500 test questions answered by the kernel deployment with g and f
as ReLU layers, as rate-coded integrate-and-fire layers (``IFHead``, 10 / 30 / 100 steps, calibrated on
training questions) and with the encoders on the Loihi integer engine (threshold mantissa 508 / 4095).

    PYTHONPATH=python python benchmarks/bench_babi_deploy.py --root ../shared/data

Writes ``benchmarks/results/babi_deploy.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from ahpsim.datasets._common import atomic_save_json
from ahpsim.torch import TrainConfig, Trainer, build_model, evaluate, make_task
from ahpsim.torch.relational import IFHead, KernelRelationalNetwork


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "babi_deploy.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    task = make_task("babi", root=args.root, tasks=[1, 6], size="1k")
    model = build_model(task, "ahp", n_encoder=60, g_layers=[128, 128, 128], f_layers=[128])
    cfg = TrainConfig(epochs=6, batch_size=32, lr=2e-3, progress=False, grad_clip=5.0)
    Trainer(model, task.train, task.val, cfg).fit()
    calib, _, _ = task.train.get(np.arange(0, len(task.train), 10))
    batch, answers, _ = task.test.get(np.arange(0, len(task.test), 4))
    ans = answers.numpy()
    relu = KernelRelationalNetwork(model)(batch)
    ref = relu.logits.argmax(1)
    rows = [{"path": "torch, whole test set", "acc": evaluate(model, task.test)["acc"]},
            {"path": "kernel encoders, ReLU g and f", "acc": float(np.mean(ref == ans)), "same_answer": 1.0,
             "encoder_spikes": relu.spikes}]
    for steps in (10, 30, 100):
        k = KernelRelationalNetwork(model, head=IFHead(model, calib, steps=steps))
        p = k(batch).logits.argmax(1)
        rows.append({"path": f"kernel, integrate-and-fire g and f, {steps} steps", "acc": float(np.mean(p == ans)),
                     "same_answer": float(np.mean(p == ref)), "g_rate": k.last_head_stats["g_rate"],
                     "f_rate": k.last_head_stats["f_rate"]})
    for vm in (508, 4095):
        out = KernelRelationalNetwork(model, engine="loihi", vth_mant=vm)(batch)
        p = out.logits.argmax(1)
        rows.append({"path": f"Loihi integer encoders (vth_mant {vm}), ReLU g and f", "acc": float(np.mean(p == ans)),
                     "same_answer": float(np.mean(p == ref)), "encoder_spikes": out.spikes})
    lines = ["| path | accuracy (500 test questions) | same answer as ReLU head |", "|---|---|---|"]
    for r in rows:
        same = f"{100 * r['same_answer']:.1f} %" if "same_answer" in r else "-"
        lines.append(f"| {r['path']} | {100 * r['acc']:.1f} % | {same} |")
    doc = {"n_questions": len(ans), "results": rows, "table": "\n".join(lines)}
    atomic_save_json(Path(args.out), doc, indent=1)
    print(doc["table"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
