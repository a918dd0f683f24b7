"""Which half of the integrate-and-fire head (``IFHead``: g and f as rate-coded spiking layers) loses
the answers of the failed bAbI tasks? On validation questions (carved from the training files) of a
trained Relational Network, encoders on the float kernel, the head's answers against the ReLU head's:

* ``both``: g and f spiking (``IFHead``, units starting at half their threshold), 100 and 400 steps
  at percentile 99, and 100 steps with g's or f's scales at other percentiles;
* ``g_only``: g spiking for 100 / 400 steps, its summed spike counts decoded (count * lambda_g / steps)
  and f run as its ReLU layers: the loss of g's conversion alone;
* ``f_replay``: g spiking for 100 steps, f integrating g's summed spike train replayed 8 times (8x
  the spikes in f, the same answer scale), f's scales at the 99.9th percentile: a finer rate code in f.

    PYTHONPATH=python python benchmarks/babi_head_diagnosis.py --run babi-ahp-stretched-clamp \\
        --tasks 3,16,19 --per-task 100

Writes ``benchmarks/results/babi_head_diagnosis_<run>.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from ahpsim.datasets._common import atomic_save_json
from ahpsim.relnet import IFHead as IFHeadNp
from ahpsim.torch.relational import KernelRelationalNetwork, _linear_np, activation_scale, relu_activations

try:  # run as a script (benchmarks/ on sys.path) or imported as benchmarks.<name>
    from _args import int_at_least
    from bench_babi_head_steps import first_questions, load_run, parse_tasks
except ImportError:
    from benchmarks._args import int_at_least
    from benchmarks.bench_babi_head_steps import first_questions, load_run, parse_tasks

HERE = Path(__file__).resolve().parent


class _Variant(IFHeadNp):
    """IFHead whose f is either the ReLU network on g's decoded sums (``f_relu``) or a spiking f that
    integrates g's summed spike train replayed ``replay`` times."""

    def __init__(self, *a, f_relu: bool = False, replay: int = 1, f_layers=None, **kw):
        super().__init__(*a, **kw)
        if self.drain:  # (this variant runs g and f for `steps` steps, as IFHead without drain)
            raise ValueError("drain: not supported by the diagnosis variants")
        self.f_relu, self.replay, self.f_layers = f_relu, int(replay), f_layers

    def __call__(self, pre1, b, B):
        T, P, H_out = self.steps, len(b), self.g_sizes[-1]
        summed = np.zeros((B, T, H_out), np.int32)
        cur = (pre1 * self.first_scale).astype(np.float32)
        for s in range(0, P, self.chunk):
            part = cur[s:s + self.chunk]
            X = np.ascontiguousarray(np.broadcast_to(part[:, None, :], (len(part), T, part.shape[1])))
            res = self._run(self.g_net, T, X, "g")
            np.add.at(summed, b[s:s + self.chunk], res.raster(self.g_out).astype(np.int32))
        stats = {"g_rate": 0.0, "g_spikes": 1, "pairs": P, "steps": T}
        if self.f_relu:
            h = summed.sum(1) * (self.lam_g[-1] / (T * self.S))
            for W, bb in self.f_layers[:-1]:
                h = np.maximum(h @ W.T + (0 if bb is None else bb), 0.0)
            W, bb = self.f_layers[-1]
            return h @ W.T + (0 if bb is None else bb), {**stats, "f_rate": 0.0, "f_spikes": 1}
        depth = len(self.f_sizes) + 1
        Tf = self.replay * T + depth
        Xf = np.concatenate([np.tile(summed, (1, self.replay, 1)).astype(np.float32),
                             np.zeros((B, depth, H_out), np.float32)], 1)
        res = self._run(self.f_net, Tf, Xf, "f")
        f_spikes = sum(int(res.raster(f"f{k + 1}").sum()) for k in range(len(self.f_sizes)))
        return res.readout("out")[:, -1], {**stats, "f_spikes": f_spikes,
                                           "f_rate": f_spikes / max(B * Tf * sum(self.f_sizes), 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(HERE.parent.parent / "shared" / "data"))
    ap.add_argument("--run", default="babi-ahp-stretched-clamp", help="run folder under benchmarks/runs (its best.pt)")
    ap.add_argument("--tasks", type=parse_tasks, default=[3, 16, 19])
    ap.add_argument("--per-task", type=int_at_least(1), default=100)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    loaded = load_run(args.run, args.root)
    if loaded is None:
        print(f"--run: {HERE / 'runs' / args.run / 'best.pt'} does not exist", file=sys.stderr)
        return 2
    ck, model, task, calib = loaded
    acts = relu_activations(model, calib)
    batch, ans, groups = first_questions(task.val, args.tasks, args.per_task)
    relu = KernelRelationalNetwork(model)(batch).logits.argmax(1)

    def acc(pred, t):
        return float(np.mean(pred[groups == t] == ans[groups == t]))

    g_layers = [_linear_np(m, np.float64) for m in model.g]
    f_layers = [_linear_np(m, np.float64) for m in model.f]
    # (name, steps, g's percentile, f's percentile, options)
    variants = [("both", 100, 99.0, 99.0, dict()), ("both", 400, 99.0, 99.0, dict()),
                ("both", 100, 99.9, 99.0, dict()), ("both", 100, 98.0, 99.0, dict()),
                ("both", 100, 99.0, 95.0, dict()), ("both", 100, 99.0, 90.0, dict()),
                ("g_only", 100, 99.0, 99.0, dict(f_relu=True)), ("g_only", 400, 99.0, 99.0, dict(f_relu=True)),
                ("f_replay", 100, 99.0, 99.9, dict(replay=8))]
    doc = {"run": args.run, "best_epoch": ck["best_epoch"], "split": "val", "tasks": args.tasks,
           "per_task": args.per_task, "questions": len(ans),
           "relu_acc_by_task": {int(t): acc(relu, t) for t in args.tasks}, "variants": []}
    print(f"{args.run}: {len(ans)} validation questions; ReLU head accuracy by task "
          f"{ {t: round(100 * a) for t, a in doc['relu_acc_by_task'].items()} }", flush=True)
    for name, steps, pct_g, pct_f, kw in variants:
        t0 = time.perf_counter()
        head = _Variant(model.g_first_i.out_features, g_layers, f_layers, [activation_scale(a, pct_g) for a in acts["g"]],
                        [activation_scale(a, pct_f) for a in acts["f"]], model.max_sentences, steps=steps, v_init=0.5,
                        f_layers=f_layers, **kw)
        net = KernelRelationalNetwork(model, head=head)
        pred = net(batch).logits.argmax(1)
        rec = {"variant": name, "steps": steps, "g_percentile": pct_g, "f_percentile": pct_f, **kw,
               "same_as_relu": float(np.mean(pred == relu)),
               "acc_change_by_task": {int(t): acc(pred, t) - acc(relu, t) for t in args.tasks},
               "f_rate": net.last_head_stats.get("f_rate"), "wall_s": time.perf_counter() - t0}
        doc["variants"].append(rec)
        print(f"  {name:>8} {steps:3d} steps (percentiles g {pct_g}, f {pct_f}): same answer as the ReLU head "
              f"{100 * rec['same_as_relu']:5.1f} %, change by task (points) "
              f"{ {t: round(100 * d) for t, d in rec['acc_change_by_task'].items()} } ({rec['wall_s']:.0f} s)", flush=True)
    out = Path(args.out) if args.out else HERE / "results" / f"babi_head_diagnosis_{args.run}.json"
    atomic_save_json(out, doc, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
