"""Which encoder neurons carry bAbI task 4 (two-argument relations)? A short diagnostic, not a result
of the paper: the full-size Relational Network (200-neuron encoders, g 4 x 256, f 256, 512) trained on
task 4's 10k file alone for ``--epochs`` epochs (default 6, a cosine schedule), one run per encoder
variant, the best epoch chosen on the task's validation stories, then its test accuracy on the task's
1,000 test questions. Variants: AHP with the paper's RelNet constants (Table S1), LIF-only, LSTM, AHP
with the "stretched" column of Table S1 (tau_m 20, tau_ahp 120, AHP charge 0.062, refractory 2,
dampening 0.5; without its synaptic filter, as every encoder here), and AHP with single constants of
that column changed (``tau_ahp`` 120; ``tau_m`` 20).

The joint 20-task AHP run fails task 4 (84.2 %) where the LSTM and LIF-only runs pass it; this tells
which constants to train the next joint run with. Equal short budgets favour fast learners (the LSTM
learns task 4 more slowly than the spiking encoders here), so compare the AHP variants with each other.

    PYTHONPATH=python python benchmarks/babi_task4_encoders.py --root ../shared/data

Writes ``benchmarks/results/babi_task4_encoders.json`` (atomic, after every variant).
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from ahpsim.datasets._common import atomic_save_json
from ahpsim.torch.tasks import build_model, make_task
from ahpsim.torch.trainer import Trainer, evaluate

try:  # run as a script (benchmarks/ on sys.path) or imported as benchmarks.<name>
    from _args import int_at_least
except ImportError:
    from benchmarks._args import int_at_least

HERE = Path(__file__).resolve().parent

STRETCHED = {"tau_m": 20.0, "tau_ahp": 120.0, "beta_ahp": 0.062, "n_ref": 2,
             "surrogate": {"kind": "triangle", "dampening": 0.5}}
VARIANTS = {  # name: (encoder kind, encoder_options)
    "ahp": ("ahp", None),
    "lif": ("lif", None),
    "lstm": ("lstm", None),
    "ahp-stretched": ("ahp", STRETCHED),
    "ahp-tau_ahp120": ("ahp", {"tau_ahp": 120.0}),
    "ahp-tau_m20": ("ahp", {"tau_m": 20.0}),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(HERE.parent.parent / "shared" / "data"))
    ap.add_argument("--task", type=int_at_least(1), default=4, help="the bAbI task (1-20)")
    ap.add_argument("--epochs", type=int_at_least(1), default=6)
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    ap.add_argument("--threads", type=int_at_least(1), default=1)
    ap.add_argument("--out", default=str(HERE / "results" / "babi_task4_encoders.json"))
    args = ap.parse_args(argv)
    if args.task > 20:
        ap.error(f"argument --task: expected an integer in 1..20, got {args.task}")
    names = [v for v in args.variants.split(",") if v]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown or not names:
        ap.error(f"argument --variants: unknown {unknown}; allowed: {', '.join(VARIANTS)}")
    torch.set_num_threads(args.threads)
    task = make_task("babi", root=args.root, tasks=[args.task])
    doc = {"task": args.task, "epochs": args.epochs, "n_train": len(task.train), "n_val": len(task.val),
           "n_test": len(task.test), "validation": task.val_rule, "argv": sys.argv[1:],
           "platform": platform.platform(), "date": time.strftime("%Y-%m-%d %H:%M:%S"), "runs": {}}
    for name in names:
        kind, opts = VARIANTS[name]
        model = build_model(task, kind, seed=0, **({"encoder_options": opts} if opts else {}))
        cfg = dataclasses.replace(task.train_config, epochs=args.epochs, progress=False, log_epochs=False, seed=0)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as ckpt:
            tr = Trainer(model, task.train, task.val, cfg, ckpt_dir=ckpt)
            tr.fit(resume=False)
            tr.load_best()
            test = evaluate(model, task.test)
        rec = {"encoder": kind, "encoder_options": opts, "best_epoch": tr.best_epoch, "val_acc": tr.best_acc,
               "val_by_epoch": [e["val_acc"] for e in tr.history], "test_acc": test["acc"],
               "encoder_rate": test["rate"] if kind != "lstm" else None, "wall_s": time.perf_counter() - t0}
        doc["runs"][name] = rec
        atomic_save_json(args.out, doc)
        print(f"{name:16s} validation {100 * rec['val_acc']:5.1f} % (epoch {rec['best_epoch']})  "
              f"test {100 * rec['test_acc']:5.1f} %  {rec['wall_s'] / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
