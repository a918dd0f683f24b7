"""How much a trained network's validation accuracy depends on small weight errors: every weight
matrix multiplied by ``1 + s n`` (n standard normal per weight, ``ahpsim.torch.perturb_weights_``),
``--draws`` draws per relative scale ``s``, on the task's validation data (carved from the training
set; the test set is never read). A network whose accuracy drops at s = 0.001 sits on a narrow
optimum: its best validation epoch partly measures luck, and the chip's 8-bit weights cost it more.

    PYTHONPATH=python python benchmarks/weight_sensitivity.py benchmarks/runs/smnist-ahp-lsnn-ft2/best.pt \\
        --root ../shared/data --out benchmarks/results/weight_sensitivity.json

Prints a markdown table (mean and standard deviation over the draws, in %) and writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

try:  # run as a script (benchmarks/ on sys.path) or imported as benchmarks.<name>
    from _args import int_at_least, real_in
except ImportError:
    from benchmarks._args import int_at_least, real_in


def sensitivity(path, val, scales, draws: int, batch_size: int = 500, loss_mode: str = "last",
                window: int = 1) -> dict:
    """``{"unperturbed": acc, "scales": {s: {"acc": [...], "mean", "sd"}}}`` for checkpoint ``path`` on
    ``val`` (a SequenceData); draw k of scale index i uses seed ``noise_seed(i, k)``."""
    import numpy as np
    import torch

    from ahpsim.torch.trainer import evaluate, load_model, noise_seed, perturb_weights_

    model = load_model(path)
    res = {"unperturbed": evaluate(model, val, batch_size, loss_mode, window)["acc"], "scales": {}}
    for i, s in enumerate(scales):
        accs = []
        for k in range(draws):
            clean = perturb_weights_(model, s, noise_seed(i, k))
            accs.append(evaluate(model, val, batch_size, loss_mode, window)["acc"])
            with torch.no_grad():
                for p, w in clean:
                    p.copy_(w)
        res["scales"][repr(s)] = {"acc": accs, "mean": float(np.mean(accs)),
                                  "sd": float(np.std(accs, ddof=1)) if draws > 1 else math.nan}
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+", help="best.pt / last.pt files of runs of --task")
    ap.add_argument("--task", default="smnist", choices=["smnist", "psmnist"], help="the runs' task")
    ap.add_argument("--root", default=None, help="data root (default: $AHPSIM_DATA / download)")
    ap.add_argument("--scales", type=real_in(0.0, 1.0), nargs="+", default=[1e-4, 1e-3, 3e-3],
                    help="relative standard deviations of the weight noise")
    ap.add_argument("--draws", type=int_at_least(1), default=6, help="noise draws per scale")
    ap.add_argument("--threads", type=int_at_least(1), default=1)
    ap.add_argument("--out", default=None, help="JSON file to write")
    args = ap.parse_args(argv)
    for c in args.checkpoints:
        if not Path(c).is_file():
            ap.error(f"checkpoint {c}: no such file")
    import torch

    from ahpsim.torch.tasks import make_task

    torch.set_num_threads(args.threads)
    task = make_task(args.task, root=args.root)
    cfg = task.train_config
    t0 = time.perf_counter()
    out = {"task": args.task, "validation": task.val_rule, "n_val": len(task.val), "draws": args.draws,
           "scales": args.scales, "runs": {}}
    for c in args.checkpoints:
        out["runs"][c] = sensitivity(c, task.val, args.scales, args.draws, loss_mode=cfg.loss_mode, window=cfg.window)
        print(f"{c}: done", file=sys.stderr, flush=True)
    out["wall_s"] = time.perf_counter() - t0
    head = "| checkpoint | unperturbed | " + " | ".join(f"s = {s:g}" for s in args.scales) + " |"
    rows = [head, "|" + "---|" * (2 + len(args.scales))]
    for c, r in out["runs"].items():
        cells = [f"{100 * r['unperturbed']:.2f}"] + [
            f"{100 * v['mean']:.2f} ± {100 * v['sd']:.2f}" for v in r["scales"].values()]
        rows.append(f"| {c} | " + " | ".join(cells) + " |")
    out["table"] = "\n".join(rows)
    print(out["table"])
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
