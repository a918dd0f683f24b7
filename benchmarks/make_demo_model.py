"""Exports a trained sMNIST checkpoint (from bench_train_smnist.py) to the kernel network file that
``python -m ahpsim demo`` ships and runs: python/ahpsim/data/smnist_ahp.npz (+ .json with provenance).

    PYTHONPATH=python python benchmarks/make_demo_model.py benchmarks/runs/smnist-ahp-loihi/best.pt --loihi-vth-mant 254
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from ahpsim.torch import load_checkpoint, load_model, to_network

try:  # run as a script (benchmarks/ on sys.path) or imported as benchmarks.<name>
    from _args import int_at_least
except ImportError:
    from benchmarks._args import int_at_least

DEST = Path(__file__).resolve().parents[1] / "python" / "ahpsim" / "data" / "smnist_ahp.npz"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--out", default=str(DEST))
    ap.add_argument("--loihi-vth-mant", type=int_at_least(1), default=508,
                    help="threshold mantissa the demo quantizes with (chosen on validation digits: "
                         "train_smnist_loihi.py --eval-only --eval-split val)")
    args = ap.parse_args(argv)
    ckpt = load_checkpoint(args.checkpoint)
    model = load_model(ckpt)
    net = to_network(model, dtype="float32")
    net.save(args.out)
    meta = {
        "source": str(args.checkpoint),
        "exported": time.strftime("%Y-%m-%d %H:%M:%S"),
        "epoch": ckpt.get("epoch"), "batch": ckpt.get("batch"), "step": ckpt.get("step"),
        "best_acc": ckpt.get("best_acc"), "train_wall_s": ckpt.get("wall"),
        "history": ckpt.get("history"), "torch": torch.__version__,
        "model": f"{model.n_lif} LIF + {model.n_ahp} AHP + {model.n_alif} ALIF, {model.n_in} inputs, {model.n_out} outputs",
        "loihi_vth_mant": args.loihi_vth_mant,
    }
    Path(args.out).with_suffix(".json").write_text(json.dumps(meta, indent=1, default=str))
    print(f"wrote {args.out} ({net.n_neurons} neurons, {net.n_synapses} synapses)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
