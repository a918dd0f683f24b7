"""What switching a trained bAbI network's encoders to Loihi's refractory behaviour costs before any
fine-tuning: validation accuracy (every k-th validation question, carved from the training files) and
the encoders' spikes per neuron per step, with ``refractory_mode`` "block" (as trained, v integrates
during the refractory steps) and "clamp" (v held at 0, as on the chip).

    PYTHONPATH=python python benchmarks/babi_refractory_switch.py --run babi-ahp-stretched --n 2000

Writes ``benchmarks/results/babi_refractory_switch_<run>.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ahpsim.datasets._common import atomic_save_json
from ahpsim.torch.trainer import evaluate

try:  # run as a script (benchmarks/ on sys.path) or imported as benchmarks.<name>
    from _args import int_at_least
    from bench_babi_head_steps import load_run
except ImportError:
    from benchmarks._args import int_at_least
    from benchmarks.bench_babi_head_steps import load_run

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(HERE.parent.parent / "shared" / "data"))
    ap.add_argument("--run", default="babi-ahp-stretched", help="run folder under benchmarks/runs (its best.pt)")
    ap.add_argument("--n", type=int_at_least(1), default=2000, help="validation questions, evenly spaced")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    loaded = load_run(args.run, args.root)
    if loaded is None:
        print(f"--run: {HERE / 'runs' / args.run / 'best.pt'} does not exist", file=sys.stderr)
        return 2
    ck, model, task, _ = loaded
    val = task.val.subset(np.linspace(0, len(task.val) - 1, min(args.n, len(task.val))).astype(np.int64))
    doc = {"run": args.run, "best_epoch": ck["best_epoch"], "questions": len(val), "modes": {}}
    for mode in ("block", "clamp"):
        for enc in (model.sentence_encoder, model.question_encoder):
            enc.rnn.refractory_mode = mode
        r = evaluate(model, val)
        doc["modes"][mode] = {"acc": r["acc"], "encoder_rate": r["rate"], "acc_by_task": r["acc_by_group"]}
        print(f"{mode}: validation accuracy {100 * r['acc']:.1f} % on {len(val)} questions, encoders "
              f"{r['rate']:.4f} spikes per neuron per step; by task "
              f"{ {t: round(100 * a) for t, a in r['acc_by_group'].items()} }", flush=True)
    out = Path(args.out) if args.out else HERE / "results" / f"babi_refractory_switch_{args.run}.json"
    atomic_save_json(out, doc, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
