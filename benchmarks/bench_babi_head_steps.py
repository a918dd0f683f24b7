"""How faithfully the integrate-and-fire head (g and f as rate-coded spiking layers, ``IFHead``) of the
full bAbI Relational Network reproduces its ReLU head (docs/babi.md, "Every stage spiking").

For each configuration ``STEPS:PERCENTILE:V_INIT:ENGINE`` (steps of the head, calibration percentile of
the layer scales or ``trained`` for a head trained with quantized ReLUs, whose scales it carries,
initial potential of the IF units in thresholds, ``float`` kernel or ``loihi``
integer engine), on the first ``--per-task`` test questions of each of ``--tasks`` (``--split val``:
validation questions, carved from the training files): the fraction of
questions answered as the ReLU head answers them (encoders on the float kernel, g and f in numpy; for a
run trained with quantized ReLUs, its quantized head),
the accuracy, the change of accuracy per task, the spikes per neuron per step of g and f, and how
decided the ReLU head was on the questions whose answer changed (its largest logit minus the next:
``changed_relu_margin_max`` / ``_median``, beside that margin's quantiles over all questions and its
median per task).
``relu:loihi`` is the ReLU head behind the encoders on the integer engine (the encoders' quantization
alone). A fifth field ``:VTH_MANT`` after ``loihi`` sets the integer engine's threshold mantissa (508).
Trailing ``:fpct=P``, ``:reset=zero``, ``:drain=1`` and ``:hvth=M`` fields set f's own calibration percentile
(default: PERCENTILE), the IF units' reset (IFHead's ``reset``; default ``subtract``), IFHead's ``drain``
(every layer integrates all of its input; default 0) and, on the integer engine,
the head's own threshold mantissa (IFHead's ``vth_mant``; default VTH_MANT, the encoders' one): a lower
one leaves the head's 24-bit currents more thresholds of range.
On the integer engine the encoders' weight quantization error is recorded too (rms relative error per
projection, from ``ahpsim.loihi.quantize``'s report). The scales are calibrated on every (N // 1000)-th training question.

    PYTHONPATH=python python benchmarks/bench_babi_head_steps.py --root ../shared/data \\
        --run babi-ahp --tasks 1-20 --per-task 10 100:99.9:0:float 100:99:0.5:float

Writes ``benchmarks/results/babi_head_<run>.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from ahpsim.datasets._common import atomic_save_json
from ahpsim.torch.relational import IFHead, KernelRelationalNetwork
from ahpsim.torch.tasks import make_task
from ahpsim.torch.trainer import load_checkpoint, load_model

try:  # run as a script (benchmarks/ on sys.path) or imported as benchmarks.<name>
    from _args import int_at_least
except ImportError:
    from benchmarks._args import int_at_least

HERE = Path(__file__).resolve().parent


def parse_config(text: str) -> dict:
    """``STEPS:PERCENTILE:V_INIT:float``, ``STEPS:PERCENTILE:V_INIT:loihi[:VTH_MANT]`` or
    ``relu:loihi[:VTH_MANT]`` (threshold mantissa of the integer engine, default 508); PERCENTILE is a
    number in (0, 100] or ``trained`` (the scales of a run trained with quantized ReLUs); a spiking
    head's followed by optional ``:fpct=P`` (f's percentile), ``:reset=zero|subtract``, ``:drain=0|1``
    (IFHead's ``drain``) and (integer engine) ``:hvth=M`` (the head's threshold mantissa) fields."""
    usage = (f"expected STEPS:PERCENTILE:V_INIT:float, STEPS:PERCENTILE:V_INIT:loihi[:VTH_MANT] or relu:loihi[:VTH_MANT], "
             f"optionally followed by :fpct=P, :reset=zero|subtract, :drain=0|1 and (loihi) :hvth=M, got {text!r}")
    parts = text.split(":")
    opts = {}
    while parts and "=" in parts[-1]:  # the optional trailing fields, each at most once
        key, _, value = parts.pop().partition("=")
        if key == "fpct" and "f_percentile" not in opts and re.fullmatch(r"[0-9]+(\.[0-9]*)?|\.[0-9]+", value):
            opts["f_percentile"] = float(value)
        elif key == "reset" and "reset" not in opts and value in ("zero", "subtract"):
            opts["reset"] = value
        elif key == "hvth" and "vth_mant" not in opts and re.fullmatch(r"[0-9]+", value):
            opts["vth_mant"] = int(value)
        elif key == "drain" and "drain" not in opts and value in ("0", "1"):
            opts["drain"] = value == "1"
        else:
            raise argparse.ArgumentTypeError(usage)
    if any("=" in p for p in parts):
        raise argparse.ArgumentTypeError(usage)
    vth = 508
    try:
        if parts[:2] == ["relu", "loihi"] and len(parts) <= 3:
            vth = int(parts[2]) if len(parts) == 3 else vth
            head = None
        elif len(parts) in (4, 5) and parts[3] in ("float", "loihi") and (len(parts) == 4 or parts[3] == "loihi"):
            vth = int(parts[4]) if len(parts) == 5 else vth
            head = dict(steps=int(parts[0]), percentile=None if parts[1] == "trained" else float(parts[1]),
                        v_init=float(parts[2]), **opts)
        else:
            raise argparse.ArgumentTypeError(usage)
    except ValueError:
        raise argparse.ArgumentTypeError(usage) from None
    if vth < 1:
        raise argparse.ArgumentTypeError(f"VTH_MANT must be >= 1, got {text!r}")
    if head is None and opts:
        raise argparse.ArgumentTypeError(f"fpct=, reset=, drain= and hvth= apply to a spiking head, not relu:loihi, "
                                         f"got {text!r}")
    if "vth_mant" in opts and parts[3] != "loihi":
        raise argparse.ArgumentTypeError(f"hvth= applies to the integer engine (loihi), got {text!r}")
    if opts.get("vth_mant", 1) < 1:
        raise argparse.ArgumentTypeError(f"hvth must be >= 1, got {text!r}")
    if head is not None and head["percentile"] is None and "f_percentile" in opts:
        raise argparse.ArgumentTypeError(f"fpct= applies to percentile scales, not to trained ones, got {text!r}")
    if head is not None and not (head["steps"] >= 1 and 0 < (50 if head["percentile"] is None else head["percentile"]) <= 100
                                 and 0 <= head["v_init"] < 1 and 0 < head.get("f_percentile", 50) <= 100):
        raise argparse.ArgumentTypeError(f"STEPS >= 1, PERCENTILE and fpct in (0, 100], and V_INIT in [0, 1), "
                                         f"got {text!r}")
    engine = "float" if head is not None and parts[3] == "float" else "loihi"
    return {"name": text, "head": head, "engine": engine, "vth_mant": vth}


def parse_tasks(text: str) -> list[int]:
    out = []
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            out += list(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"tasks: expected numbers and ranges such as 1-20 or 2,3,4, got {text!r}") from None
    if not out or min(out) < 1 or max(out) > 20:
        raise argparse.ArgumentTypeError(f"tasks must lie in 1..20, got {text!r}")
    return out


def load_run(run: str, root: str):
    """``(checkpoint, model (eval mode), task, calibration batch)`` of ``benchmarks/runs/<run>/best.pt``;
    the calibration batch is every (N // 1000)-th training question. None where the run is absent."""
    path = HERE / "runs" / run / "best.pt"
    if not path.is_file():
        return None
    ck = load_checkpoint(path)
    model = load_model(ck)
    model.eval()
    task = make_task("babi", root=root, **ck["meta"]["task"].get("options", {}))
    calib, _, _ = task.train.get(np.arange(0, len(task.train), max(len(task.train) // 1000, 1)))
    return ck, model, task, calib


def first_questions(data, tasks, per_task: int):
    """The first ``per_task`` questions of each task of ``data``: ``(batch, answers, task of each)``."""
    idx = np.concatenate([np.nonzero(data.groups == t)[0][:per_task] for t in tasks])
    batch, ans, _ = data.get(idx)
    return batch, ans.numpy(), data.groups[idx]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("configs", nargs="+", type=parse_config, help="STEPS:PERCENTILE:V_INIT:ENGINE or relu:loihi")
    ap.add_argument("--root", default=str(HERE.parent.parent / "shared" / "data"))
    ap.add_argument("--run", default="babi-ahp", help="run folder under benchmarks/runs (its best.pt)")
    ap.add_argument("--tasks", type=parse_tasks, default=list(range(1, 21)), help="e.g. 1-20 or 2,3,4,16")
    ap.add_argument("--per-task", type=int_at_least(1), default=10)
    ap.add_argument("--split", choices=("test", "val"), default="test",
                    help="questions from the test files or from the validation stories carved from the training "
                         "files (for choosing deployment settings without looking at test questions)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")  # the integer engine's overflow warnings: counted in the head's stats
    torch.set_num_threads(1)
    loaded = load_run(args.run, args.root)
    if loaded is None:
        print(f"--run: {HERE / 'runs' / args.run / 'best.pt'} does not exist", file=sys.stderr)
        return 2
    ck, model, task, calib = loaded
    # every configuration's scales must suit the run before anything is measured
    for cfg in args.configs:
        if cfg["head"] is None:
            continue
        if cfg["head"]["percentile"] is None and model.head_levels is None:
            print(f"{cfg['name']}: 'trained' scales need a run trained with quantized ReLUs (head_levels); "
                  f"{args.run} has a ReLU head: give a percentile", file=sys.stderr)
            return 2
        if cfg["head"]["percentile"] is not None and model.head_levels is not None:
            print(f"{cfg['name']}: {args.run} was trained with head_levels={model.head_levels} and carries its head's "
                  "scales: write 'trained' for PERCENTILE", file=sys.stderr)
            return 2
    data = task.test if args.split == "test" else task.val
    batch, ans, groups = first_questions(data, args.tasks, args.per_task)
    relu_logits = KernelRelationalNetwork(model)(batch).logits
    relu = relu_logits.argmax(1)
    top2 = np.sort(relu_logits, 1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]  # how decided the ReLU head is: its largest logit minus the next
    acc_relu = {int(t): float(np.mean(relu[groups == t] == ans[groups == t])) for t in args.tasks}
    doc = {"run": args.run, "best_epoch": ck["best_epoch"], "split": args.split, "tasks": args.tasks,
           "per_task": args.per_task,
           "questions": len(ans), "relu_acc": float(np.mean(relu == ans)),
           "relu_margin_quantiles": {q: float(np.percentile(margin, q)) for q in (10, 25, 50, 75, 90)},
           "relu_margin_median_by_task": {int(t): float(np.median(margin[groups == t])) for t in args.tasks},
           "configs": []}
    print(f"{args.run} (epoch {ck['best_epoch']}), {len(ans)} {args.split} questions: ReLU head accuracy {doc['relu_acc']:.3f}, "
          f"median margin of its two largest logits {doc['relu_margin_quantiles'][50]:.3g}", flush=True)
    for cfg in args.configs:
        t0 = time.perf_counter()
        vth = {"vth_mant": cfg["vth_mant"]} if cfg["engine"] == "loihi" else {}
        try:
            head = None if cfg["head"] is None else IFHead(model, calib, engine=cfg["engine"], **{**vth, **cfg["head"]})
            net = KernelRelationalNetwork(model, engine=cfg["engine"], head=head, **vth)
            pred = net(batch).logits.argmax(1)
        except ValueError as e:  # e.g. scales whose weights the integer engine cannot hold
            print(f"{cfg['name']}: {e}", file=sys.stderr)
            return 2
        stats = net.last_head_stats or {}
        # the encoders' weights on the integer grid: rms relative error per projection (quantize's report)
        enc_err = None if cfg["engine"] != "loihi" else [
            p["rms_rel_err"] for enc in (net.sentence, net.question) for p in enc.report.projections
            if not p["name"].endswith("->out")]
        rec = {"config": cfg["name"], **(cfg["head"] or {}), "engine": cfg["engine"], **vth,
               **({} if head is None else {"f_percentile": head.f_percentile, "reset": head.reset,
                                           "drain": head.drain}),
               # the integer head's threshold mantissa (hvth=; the encoders' vth_mant otherwise)
               **({} if head is None or not vth else {"head_vth_mant": cfg["head"].get("vth_mant", vth["vth_mant"])}),
               "same_as_relu": float(np.mean(pred == relu)), "acc": float(np.mean(pred == ans)),
               # the ReLU head's margin (largest logit minus the next) on the questions whose answer changed
               "changed_relu_margin_max": float(margin[pred != relu].max()) if np.any(pred != relu) else None,
               "changed_relu_margin_median": float(np.median(margin[pred != relu])) if np.any(pred != relu) else None,
               "acc_change_by_task": {int(t): float(np.mean(pred[groups == t] == ans[groups == t])) - acc_relu[int(t)]
                                      for t in args.tasks},
               "g_rate": stats.get("g_rate"), "f_rate": stats.get("f_rate"),
               # integer engine: compartment-steps of g and f with a wrapped current or a clipped voltage
               "overflows_g": stats.get("overflows_g"), "overflows_f": stats.get("overflows_f"),
               "encoder_weight_rms_rel_err": None if enc_err is None else [min(enc_err), max(enc_err)],
               "wall_s": time.perf_counter() - t0}
        doc["configs"].append(rec)
        changed = {t: round(100 * d) for t, d in rec["acc_change_by_task"].items() if d}
        rates = "" if head is None else f", spikes per neuron per step g {rec['g_rate']:.4f}, f {rec['f_rate']:.4f}"
        if rec["changed_relu_margin_max"] is not None:
            rates += f", changed answers' ReLU margins <= {rec['changed_relu_margin_max']:.3g}"
        if enc_err is not None:
            rates += f", encoder weights' rms error on the integer grid {min(enc_err):.3f}-{max(enc_err):.3f}"
        if rec["overflows_g"] is not None:
            rates += f", overflows g {rec['overflows_g']}, f {rec['overflows_f']}"
        print(f"  {cfg['name']:>18}: same answer as the ReLU head {100 * rec['same_as_relu']:5.1f} %, accuracy "
              f"{100 * rec['acc']:5.1f} %, changed tasks (points) {changed}{rates} ({rec['wall_s']:.0f} s)", flush=True)
    out = Path(args.out) if args.out else HERE / "results" / f"babi_head_{args.run}.json"
    atomic_save_json(out, doc, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
