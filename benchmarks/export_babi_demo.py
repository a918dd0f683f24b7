"""Exports the small bAbI Relational Network that ``python -m ahpsim demo babi`` ships.

The network is trained by the command in ``benchmarks/runs/README.md`` (folder ``babi-demo``: 80-neuron
LIF + AHP encoders, g 3 x 128, f 128, eight tasks of bAbI-10k, model selected on validation questions
carved from the training files). This script

* loads its ``best.pt`` and converts g and f to integrate-and-fire layers (``IFHead``, scales from
  training questions);
* measures its test accuracy per task (the first ``--per-task`` test questions of each task) in torch,
  on the float kernel (every stage spiking) and on the Loihi integer engine (encoders, g's later
  layers and f; g's first layer as the injected spike source);
* bundles the first ``--bundle`` test questions of each task (fixed positions, not chosen by outcome)
  as real stories for the demo;
* writes ``python/ahpsim/data/babi_demo/`` (``sentence.npz``, ``question.npz``, ``relnet.npz``,
  ``stories.json``, ``meta.json``).

    PYTHONPATH=python python benchmarks/export_babi_demo.py --root ../shared/data
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ahpsim.datasets._common import atomic_save_json
from ahpsim.torch.relational import IFHead, KernelRelationalNetwork
from ahpsim.torch.tasks import make_task
from ahpsim.torch.trainer import evaluate, load_checkpoint, load_model
try:  # run as a script (benchmarks/ on sys.path) or imported as benchmarks.<name>
    from _args import int_at_least, real_in
except ImportError:
    from benchmarks._args import int_at_least, real_in

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(HERE.parents[0].parent / "shared" / "data"))
    ap.add_argument("--run", default=str(HERE / "runs" / "babi-demo"))
    ap.add_argument("--out", default=str(HERE.parent / "python" / "ahpsim" / "data" / "babi_demo"))
    ap.add_argument("--per-task", type=int_at_least(1), default=200, help="test questions per task measured (default 200)")
    ap.add_argument("--bundle", type=int_at_least(1), default=5, help="test questions per task shipped (default 5)")
    ap.add_argument("--steps", type=int_at_least(1), default=30, help="steps of the integrate-and-fire g and f (default 30)")
    ap.add_argument("--percentile", type=real_in(0, 100), default=99.0, help="calibration percentile of the IF layers' scales")
    ap.add_argument("--v-init", type=real_in(0, 1, lo_open=False, hi_open=True), default=0.5, help="initial potential of the IF units, in thresholds")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    run = Path(args.run)
    ck = load_checkpoint(run / "best.pt")
    model = load_model(ck)
    model.eval()
    spec = ck["meta"]["task"]
    task = make_task("babi", root=args.root, **spec.get("options", {}))
    calib, _, _ = task.train.get(np.arange(0, len(task.train), max(len(task.train) // 1000, 1)))
    hopt = dict(steps=args.steps, percentile=args.percentile, v_init=args.v_init)
    kern = KernelRelationalNetwork(model, head=IFHead(model, calib, **hopt))
    loihi = KernelRelationalNetwork(model, engine="loihi", head=IFHead(model, calib, engine="loihi", **hopt))
    groups = task.test.groups
    tasks = sorted(int(t) for t in np.unique(groups))
    rows, t0 = [], time.perf_counter()
    for t in tasks:
        idx = np.nonzero(groups == t)[0][:args.per_task]
        batch, ans, _ = task.test.get(idx)
        ans = ans.numpy()
        with torch.no_grad():
            p_torch = model(batch).logits.argmax(1).numpy()
        o_k = kern(batch)
        st_k = dict(kern.last_head_stats)
        o_l = loihi(batch)
        st_l = dict(loihi.last_head_stats)
        rows.append({"task": t, "n": len(idx), "torch": float(np.mean(p_torch == ans)),
                     "kernel_spiking": float(np.mean(o_k.logits.argmax(1) == ans)),
                     "integer": float(np.mean(o_l.logits.argmax(1) == ans)),
                     "encoder_rate": o_k.spikes / o_k.neuron_steps, "loihi_encoder_rate": o_l.spikes / o_l.neuron_steps,
                     "g_rate": st_k["g_rate"], "f_rate": st_k["f_rate"], "loihi_g_rate": st_l["g_rate"]})
        print(f"task {t:2d}: torch {100 * rows[-1]['torch']:5.1f} %  kernel (spiking) "
              f"{100 * rows[-1]['kernel_spiking']:5.1f} %  integer engine {100 * rows[-1]['integer']:5.1f} %",
              flush=True)
    full = evaluate(model, task.test)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    kern.save(out)
    vocab = model.vocab
    stories = []
    for t in tasks:
        for k in np.nonzero(groups == t)[0][:args.bundle]:
            batch, ans, _ = task.test.get(np.array([k]))
            story, L, q, Lq = (a.numpy()[0] for a in batch)
            stories.append({"task": t, "story": [[vocab[w] for w in s if w] for s in story[:int(L)]],
                            "question": [vocab[w] for w in q if w], "answer": vocab[int(ans[0])]})
    atomic_save_json(out / "stories.json", {"source": "bAbI tasks v1.2 (Weston et al. 2015), en-10k test files, "
                                             f"the first {args.bundle} questions of each task",
                                             "license": "CC BY 3.0 (the bAbI tasks' LICENSE.txt)", "questions": stories},
                     indent=0)
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("torch", "kernel_spiking", "integer")}
    meta = {"model": model.config() | {"vocab": None}, "tasks": tasks, "run": os.path.relpath(run, HERE.parent),
            "selection": f"best epoch {ck['best_epoch']} on validation ({ck['meta']['validation']})",
            "if_head": {"steps": args.steps, "v_init": args.v_init,
                        "calibration": f"every (N // 1000)-th training question, {args.percentile:g}th percentile "
                                       "of positive activations"},
            "test_torch_all": {"acc": full["acc"], "acc_by_task": full["acc_by_group"], "n": len(task.test)},
            "test_per_task_first": args.per_task, "per_task": rows, "mean": mean,
            "wall_s": time.perf_counter() - t0}
    atomic_save_json(out / "meta.json", meta, indent=1)
    print(json.dumps(mean))
    return 0


if __name__ == "__main__":
    sys.exit(main())
