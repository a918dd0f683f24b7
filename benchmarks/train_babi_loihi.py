"""Loihi-aware fine-tuning of a trained bAbI Relational Network's spiking encoders.

``ahpsim.torch.loihi_aware`` puts both encoders on the integer engine's weight grid (8-bit mantissas,
one exponent per projection, straight-through gradients), time constants (12-bit decays) and AHP
strengths, and training continues on all 20 tasks (g and f stay float: on the engines they run as the
integrate-and-fire head, whose weights are scaled at deployment). Validation questions, carved from
the training files, choose the epoch; the test files are not read here. The run folder is resumable
(rerun the same command) and holds ``best.pt`` / ``history.json`` / ``portable.pt`` like
``python -m ahpsim train babi``; ``bench_babi_table.py --runs FOLDER --merge`` then measures it on
the test questions in torch, on the float kernel and on the integer engine (threshold mantissa 508,
the default of both). ``--refractory-mode clamp`` makes the encoders hold v at 0 during their refractory
steps, as the chip does (a network trained with ``n_ref > 0`` and the default "block" integrates there).
``--head-levels L`` makes g's and f's hidden units quantized ReLUs of L levels with trainable scales
(``RelationalNetwork(head_levels=L)``), the counts an integrate-and-fire unit of the head passes on in
L steps, so that the trained network is the one its spiking head approximates (quantization-aware
training for the conversion, Bu et al. 2022); ``--freeze-encoders`` then trains g and f alone.

    PYTHONPATH=python python benchmarks/train_babi_loihi.py benchmarks/runs/babi-ahp-stretched/best.pt \\
        --out-dir benchmarks/runs/babi-ahp-stretched-loihi --epochs 1 --lr 1e-4 --no-progress
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from ahpsim.torch import load_checkpoint, load_model
from ahpsim.torch.relational import RelationalNetwork, activation_scale, relu_activations
from ahpsim.torch.loihi import LOIHI_VTH_MANT, loihi_aware
from ahpsim.torch.tasks import make_task
from ahpsim.torch.trainer import TrainConfig, Trainer

try:  # run as a script (benchmarks/ on sys.path) or imported as benchmarks.<name>
    from _args import int_at_least, real_in
except ImportError:
    from benchmarks._args import int_at_least, real_in

ROOT = Path(__file__).resolve().parents[1]


def with_quantized_head(model, train, levels: int, percentile: float = 99.0):
    """A copy of ``model`` (a ReLU-head RelationalNetwork) whose g and f hidden units are quantized
    ReLUs of ``levels`` levels, each layer's scale started at the ``percentile`` of its ReLU activations
    on 1,000 questions spread over ``train`` (as ``IFHead`` calibrates a ReLU head)."""
    calib, _, _ = train.get(np.arange(0, len(train), max(len(train) // 1000, 1)))
    acts = relu_activations(model, calib)
    new = RelationalNetwork(**{**model.config(), "head_levels": levels}, dtype=model.dtype)
    sd = model.state_dict()
    sd["_extra_state"] = new.get_extra_state()
    sd["g_scales"] = torch.tensor([activation_scale(a, percentile) for a in acts["g"]], dtype=model.dtype)
    sd["f_scales"] = torch.tensor([activation_scale(a, percentile) for a in acts["f"]], dtype=model.dtype)
    new.load_state_dict(sd)
    return new


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="best.pt of a 'python -m ahpsim train babi' run with spiking encoders")
    ap.add_argument("--out-dir", required=True, help="the fine-tuning run's folder (resumed if it holds one)")
    ap.add_argument("--root", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--vth-mant", type=int_at_least(1), default=LOIHI_VTH_MANT)
    ap.add_argument("--lr", type=real_in(0), default=1e-4, help="initial learning rate (cosine to lr / 10)")
    ap.add_argument("--epochs", type=int_at_least(1), default=1)
    ap.add_argument("--batches-per-epoch", type=int_at_least(1), default=None)
    ap.add_argument("--threads", type=int_at_least(1), default=1)
    ap.add_argument("--time-budget", type=real_in(0), default=None, help="seconds; stops cleanly at a checkpoint")
    ap.add_argument("--refractory-mode", choices=["keep", "block", "clamp"], default="keep",
                    help="the encoders' refractory mode while fine-tuning (keep: the checkpoint's)")
    ap.add_argument("--no-loihi-grid", action="store_true",
                    help="fine-tune in float (no weight grid): with --refractory-mode, the refractory change alone")
    ap.add_argument("--head-levels", type=int_at_least(1), default=None, metavar="L",
                    help="train g's and f's hidden units as quantized ReLUs of L levels with trainable scales "
                         "(RelationalNetwork(head_levels=L), started at the 99th percentile of each layer's ReLU "
                         "activations on training questions): the integrate-and-fire head's rate code of L steps")
    ap.add_argument("--freeze-encoders", action="store_true",
                    help="train g and f only (the encoders keep the checkpoint's weights)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not Path(args.checkpoint).is_file():
        print(f"checkpoint: {args.checkpoint} does not exist", file=sys.stderr)
        return 2
    src = load_checkpoint(args.checkpoint)
    model = load_model(src)
    if type(model).__name__ != "RelationalNetwork" or model.encoder_kind == "lstm":
        print(f"checkpoint: {args.checkpoint} holds no Relational Network with spiking encoders", file=sys.stderr)
        return 2
    for enc in (model.sentence_encoder, model.question_encoder):
        if args.refractory_mode != "keep":
            enc.rnn.refractory_mode = args.refractory_mode
        if not args.no_loihi_grid:
            loihi_aware(enc.rnn, args.vth_mant)
    spec = src["meta"]["task"]
    task = make_task("babi", root=args.root, **spec.get("options", {}))
    if args.head_levels is not None:
        if model.head_levels is not None:
            print(f"--head-levels: {args.checkpoint} already has a quantized head (head_levels="
                  f"{model.head_levels})", file=sys.stderr)
            return 2
        model = with_quantized_head(model, task.train, args.head_levels)
    if args.freeze_encoders:
        for enc in (model.sentence_encoder, model.question_encoder):
            enc.requires_grad_(False)
    old = src.get("train_config", {})
    cfg = TrainConfig(epochs=args.epochs, batch_size=old.get("batch_size", 64), lr=args.lr, lr_schedule="cosine",
                      lr_min=args.lr / 10, grad_clip=old.get("grad_clip"), max_batches_per_epoch=args.batches_per_epoch,
                      progress=not args.no_progress, log_epochs=True, portable_checkpoint=True,
                      num_threads=args.threads)
    meta = {**src["meta"], "loihi_vth_mant": None if args.no_loihi_grid else args.vth_mant,
            "finetuned_from": str(args.checkpoint), "finetuned_from_epoch": src.get("best_epoch"),
            "refractory_mode": model.sentence_encoder.rnn.refractory_mode, "head_levels": args.head_levels,
            "frozen_encoders": bool(args.freeze_encoders)}
    tr = Trainer(model, task.train, task.val, cfg, ckpt_dir=args.out_dir, meta=meta)
    tr.fit(resume=True, max_wall_s=args.time_budget)
    print(f"{args.out_dir}: best validation accuracy {tr.best_acc:.4f} (epoch {tr.best_epoch})"
          + (" (stopped by the time budget; rerun to continue)" if tr.stopped else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
