"""Fine-tunes a trained sMNIST AHP checkpoint for the Loihi integer engine and measures what quantization
keeps: ``ahpsim.torch.loihi_aware`` puts the model on the integer engine's weight grid and time constants
(straight-through gradients), training continues, and the result is evaluated on held-out MNIST test
digits in the float kernel and, after ``ahpsim.loihi.quantize``, in the integer engine.

Validation (best-model selection) uses the last ``--n-val`` training images, never test digits. The
evaluation uses test digits ``--eval-from`` .. 9999 (the first 1,000 test digits were the selection set
of the earlier float training, bench_train_smnist.py / train with --n-eval 1000, so they are left out).

    PYTHONPATH=python python benchmarks/train_smnist_loihi.py CHECKPOINT --time-budget 3600
    PYTHONPATH=python python benchmarks/train_smnist_loihi.py CHECKPOINT --eval-only   # no training

Resumable (rerun the same command); results to ``--out`` (JSON, atomic).
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

from ahpsim.datasets import load_mnist, threshold_crossing_encode
from ahpsim.loihi import QuantizationOverflowWarning, quantize
from ahpsim.torch import load_checkpoint, load_model, to_network
from ahpsim.torch.loihi import LOIHI_VTH_MANT, loihi_aware
from ahpsim.torch.tasks import make_task
from ahpsim.torch.trainer import Trainer
try:  # run as a script (benchmarks/ on sys.path) or imported as benchmarks.<name>
    from _args import int_at_least, real_in
except ImportError:
    from benchmarks._args import int_at_least, real_in

ROOT = Path(__file__).resolve().parents[1]



def evaluate_kernels(model, root, eval_from: int, n_eval: int, vth_mant: int, threads: int,
                     batch: int = 250, split: str = "test") -> dict:
    """Accuracy of the exported float32 kernel network and of its quantized integer version on the same
    digits, their agreement, and spikes per neuron per step in each. ``split="test"``: test digits
    ``eval_from`` on; ``"val"``: the last 5,000 training digits (the sMNIST task's validation set; for
    choosing settings such as ``vth_mant`` without looking at test digits)."""
    if split == "val":
        images, labels = load_mnist(root, "train", progress=False)
        eval_from = len(labels) - 5000
    else:
        images, labels = load_mnist(root, "test", progress=False)
    idx = np.arange(eval_from, min(eval_from + n_eval, len(labels)) if n_eval else len(labels))
    net = to_network(model, dtype="float32")
    q = quantize(net, vth_mant=vth_mant)
    spiking = [g for g in net.populations if g.model.spiking]
    n_spk = sum(g.n for g in spiking)
    pf, pq, sf, sq, steps = [], [], 0.0, 0.0, 0
    t_f = t_q = 0.0
    overflows: dict = {}  # per group: steps with a wrapped u / a clipped v, summed over digits
    for lo in range(0, idx.size, batch):
        sel = idx[lo:lo + batch]
        X = threshold_crossing_encode(images[sel])
        t0 = time.perf_counter()
        net.reset_state()
        r = net.run(inputs={"x": X}, n_threads=threads)
        t_f += time.perf_counter() - t0
        pf.append(r.readout("out")[:, -1].argmax(-1))
        sf += sum(float(r.raster(g.name).sum()) for g in spiking)
        t0 = time.perf_counter()
        q.reset_state()
        with warnings.catch_warnings():  # counted below instead
            warnings.simplefilter("ignore", QuantizationOverflowWarning)
            rq = q.run(X.shape[1], inputs={"x": X}, n_threads=threads, record_uv=True)
        for g, c in q.overflows().items():
            for k, v in c.items():
                overflows.setdefault(g, {}).setdefault(k, 0)
                overflows[g][k] += v
        t_q += time.perf_counter() - t0
        pq.append(np.asarray(rq.readout("out"))[:, -1].argmax(-1))
        sq += sum(float(np.asarray(rq.raster(g.name)).sum()) for g in spiking)
        steps += X.shape[0] * X.shape[1]
    pf, pq, y = np.concatenate(pf), np.concatenate(pq), labels[idx]
    d = (pf == y).astype(np.float64) - (pq == y)  # paired per-digit difference
    return {"split": split, f"{split}_digits": [int(idx[0]), int(idx[-1])], "n": int(idx.size), "vth_mant": vth_mant,
            "float_acc": float(np.mean(pf == y)), "loihi_acc": float(np.mean(pq == y)),
            "difference_pp": float(100 * d.mean()),
            "difference_standard_error_pp": float(100 * d.std(ddof=1) / np.sqrt(d.size)),
            "same_prediction": float(np.mean(pf == pq)),
            "float_spikes_per_neuron_step": sf / (steps * n_spk), "loihi_spikes_per_neuron_step": sq / (steps * n_spk),
            "overflows": overflows, "compartment_steps": int(idx.size) * int(X.shape[1]) * q.net.n_compartments,
            "float_wall_s": t_f, "loihi_wall_s": t_q, "quantization_report": str(q.report)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="trained float checkpoint (reset='zero', as Loihi resets)")
    ap.add_argument("--root", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--vth-mant", type=int_at_least(1), default=LOIHI_VTH_MANT)
    ap.add_argument("--lr", type=real_in(0), default=3e-3)
    ap.add_argument("--lr-decay", type=real_in(0, 1), default=0.9)
    ap.add_argument("--epochs", type=int_at_least(1), default=12, help="of --batches-per-epoch batches each")
    ap.add_argument("--batches-per-epoch", type=int_at_least(1), default=300)
    ap.add_argument("--n-val", type=int_at_least(1), default=1000)
    ap.add_argument("--eval-from", type=int_at_least(0), default=1000)
    ap.add_argument("--n-eval", type=int_at_least(0), default=0, help="test digits evaluated (0 = all from --eval-from)")
    ap.add_argument("--threads", type=int_at_least(1), default=1)
    ap.add_argument("--time-budget", type=real_in(0), default=None)
    ap.add_argument("--ckpt-dir", default=str(ROOT / "benchmarks" / "results" / "smnist_loihi_ckpt"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "train_smnist_loihi.json"))
    ap.add_argument("--eval-only", action="store_true", help="evaluate CHECKPOINT as it is (no fine-tuning)")
    ap.add_argument("--eval-split", choices=("test", "val"), default="test",
                    help="--eval-only on test digits (--eval-from on) or on the last 5,000 training digits")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    src = load_checkpoint(args.checkpoint)
    model = load_model(src)
    if model.reset != "zero":
        print("warning: the checkpoint resets by subtraction; Loihi resets v to 0", file=sys.stderr)
    out: dict = {"source": str(args.checkpoint), "source_epoch": src.get("epoch"), "argv": sys.argv[1:],
                 "torch_threads": args.threads, "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    if args.eval_only:
        out["eval"] = evaluate_kernels(model, args.root, args.eval_from, args.n_eval, args.vth_mant, args.threads,
                                       split=args.eval_split)
        print(json.dumps({k: v for k, v in out["eval"].items() if k != "quantization_report"}))
        atomic_save_json(Path(args.out), out, indent=1)
        return 0

    out["before"] = evaluate_kernels(model, args.root, args.eval_from, args.n_eval, args.vth_mant, args.threads)
    print("before:", json.dumps({k: v for k, v in out["before"].items() if k != "quantization_report"}), flush=True)
    loihi_aware(model, args.vth_mant)
    task = make_task("smnist", root=args.root, n_val=args.n_val)
    cfg = task.train_config
    cfg.lr, cfg.lr_decay, cfg.epochs, cfg.max_batches_per_epoch = args.lr, args.lr_decay, args.epochs, args.batches_per_epoch
    cfg.progress, cfg.ckpt_every, cfg.eval_batch_size = not args.no_progress, 20, 250
    tr = Trainer(model, task.train, task.val, cfg, ckpt_dir=args.ckpt_dir,
                 meta={"task": task.spec, "neurons": "ahp", "reset": model.reset, "loihi_vth_mant": args.vth_mant,
                       "finetuned_from": str(args.checkpoint)})
    tr.on_epoch = lambda rec: print(json.dumps(rec), flush=True)
    hist = tr.fit(resume=True, max_wall_s=args.time_budget)
    out["history"] = hist
    out["stopped_by_time_budget"] = tr.stopped
    best = load_model(load_checkpoint(Path(args.ckpt_dir) / "best.pt"))
    out["after"] = evaluate_kernels(best, args.root, args.eval_from, args.n_eval, args.vth_mant, args.threads)
    print("after:", json.dumps({k: v for k, v in out["after"].items() if k != "quantization_report"}), flush=True)
    atomic_save_json(Path(args.out), out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
