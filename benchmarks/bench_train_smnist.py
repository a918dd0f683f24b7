"""Trains the paper's sMNIST network (140 LIF + 100 AHP, 80 threshold-crossing input channels, 56-step
cue, 10 leaky outputs; answer = argmax of the outputs at the last step) for real with ``ahpsim.torch``
and records, per epoch, validation accuracy (the last 5,000 training digits), spikes per neuron per
step and wall time; the test digits are evaluated once, with the epoch best on validation, at the end.
(Before 2026-11-30 this script evaluated and selected on test digits; `benchmarks/results/
train_smnist*.json` of that time are marked so. ``python -m ahpsim train smnist`` does the same as this
script and is what `benchmarks/runs/` uses.)

Resumable: rerun the same command and it continues from ``--ckpt-dir`` (``--time-budget`` stops a run
cleanly after that many seconds; a killed run loses at most ``ckpt_every`` batches).  Results go to
``--out`` (JSON, rewritten atomically after every epoch and at the end).

    PYTHONPATH=python python benchmarks/bench_train_smnist.py --root ../shared/data --threads 1 \
        --time-budget 3600
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import torch

from ahpsim.datasets._common import atomic_save_json

from ahpsim.torch.tasks import build_model, make_task
from ahpsim.torch.trainer import Trainer, evaluate
try:  # run as a script (benchmarks/ on sys.path) or imported as benchmarks.<name>
    from _args import int_at_least, real_in
except ImportError:
    from benchmarks._args import int_at_least, real_in



def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--permute", action="store_true", help="permuted sMNIST")
    ap.add_argument("--neurons", default="ahp", choices=["ahp", "alif", "lif"])
    ap.add_argument("--epochs", type=int_at_least(1), default=36)
    ap.add_argument("--batch-size", type=int_at_least(1), default=64)
    ap.add_argument("--lr", type=real_in(0), default=1e-2)
    ap.add_argument("--threads", type=int_at_least(1), default=1)
    ap.add_argument("--n-eval", type=int_at_least(0), default=0, help="test images evaluated once at the end (0 = all)")
    ap.add_argument("--time-budget", type=real_in(0), default=None, help="seconds of training in this call")
    ap.add_argument("--ckpt-dir", default="benchmarks/results/smnist_ckpt")
    ap.add_argument("--out", default="benchmarks/results/train_smnist.json")
    ap.add_argument("--seed", type=int_at_least(0), default=0)
    ap.add_argument("--reset", default="subtract", choices=["subtract", "zero"],
                    help="'zero' resets as Loihi does (the network to deploy with ahpsim.loihi)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    task = make_task("psmnist" if args.permute else "smnist", root=args.root, n_test=args.n_eval or None)
    model = build_model(task, args.neurons, seed=args.seed, reset=args.reset)
    cfg = task.train_config
    cfg.epochs, cfg.batch_size, cfg.lr, cfg.seed = args.epochs, args.batch_size, args.lr, args.seed
    cfg.progress = not args.no_progress
    cfg.ckpt_every = 20
    out_path = Path(args.out)
    info = {"task": task.name, "neurons": args.neurons, "reset": args.reset, "n_lif": model.n_lif, "n_ahp": model.n_ahp,
            "n_alif": model.n_alif, "batch_size": cfg.batch_size, "lr": cfg.lr, "lr_decay": cfg.lr_decay,
            "loss": f"{cfg.loss_mode} ({cfg.window} cue steps)", "rate_weight": cfg.rate_weight,
            "threads": args.threads, "machine": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "torch": torch.__version__, "n_eval": len(task.test),
            "n_train": len(task.train)}
    tr = Trainer(model, task.train, task.val, cfg, ckpt_dir=args.ckpt_dir,
                 meta={"task": task.spec, "neurons": args.neurons, "validation": task.val_rule})

    def report(partial=None):
        res = dict(info)
        res["epochs"] = tr.history
        res["steps_done"] = tr.step
        res["train_wall_s"] = tr.wall
        res["samples_seen"] = tr.step * cfg.batch_size
        res["best_val_acc"] = tr.best_acc if tr.history else None
        if partial is not None:
            res["partial"] = partial
        atomic_save_json(out_path, res, indent=1)

    resumed = tr.try_resume()
    print(f"{'resumed at epoch %d batch %d' % (tr.epoch, tr.batch) if resumed else 'fresh start'}", flush=True)
    tr.on_epoch = lambda rec: (print(json.dumps(rec), flush=True), report())
    tr.fit(resume=False, max_wall_s=args.time_budget)
    partial = None
    if tr.stopped:
        partial = {"epoch": tr.epoch, "batch_in_epoch": tr.batch, "steps": tr.step}
        print("stopped by time budget:", json.dumps(partial), flush=True)
    report(partial)
    if not tr.stopped and tr.epoch >= cfg.epochs:  # the test set, once, with the model chosen on validation
        tr.load_best()
        ev = evaluate(model, task.test, cfg.eval_batch_size, cfg.loss_mode, cfg.window)
        res = json.loads(out_path.read_text())
        res["test"] = {"n": len(task.test), "acc": ev["acc"], "rate": ev["rate"], "best_epoch": tr.best_epoch}
        atomic_save_json(out_path, res, indent=1)
        print("test:", json.dumps(res["test"]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
