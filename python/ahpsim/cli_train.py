"""``python -m ahpsim train TASK ...`` and ``python -m ahpsim eval CHECKPOINT ...`` (need PyTorch).

This module imports torch only when a command runs, so ``python -m ahpsim --help`` works without it.
"""

from __future__ import annotations

import argparse
import os
import json
import sys
import time
from pathlib import Path

from ._argtypes import positive_seconds, seed, threads

__all__ = ["add_train_parser", "add_eval_parser", "train_command", "eval_command"]

_TASKS = ("memory", "smnist", "psmnist", "fsdd", "jv", "ucr", "babi")


def _kv(text: str):
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    return k, _parse_value(v)


def _parse_value(text: str):
    """JSON (true, 1e-3, [1, 2]) or a Python literal (True, None, (1, 2)); otherwise the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        import ast

        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return text


def _as_parsed_now(x):
    """Option values recorded by a run as text that today's parser reads as a value (runs before
    2026-12-02 kept "True" from --model-opt train_tau=True as a string)."""
    if isinstance(x, dict):
        return {k: _as_parsed_now(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_as_parsed_now(v) for v in x]
    return _parse_value(x) if isinstance(x, str) else x


def _power_or_float(text: str) -> float:
    """A positive float, or ``A**B`` / ``A^B`` of two numbers."""
    try:
        for op in ("**", "^"):
            if op in text:
                a, b = text.split(op, 1)
                value = float(a) ** float(b)
                break
        else:
            value = float(text)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"expected a number or a power like 2**-12, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown (None: the option's help says what applies), description and epilog as written."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.default == [] or action.help is None:
            return action.help
        return super()._get_help_string(action)


def _lazy_epilog(parser: argparse.ArgumentParser, make) -> None:
    """The epilog is made when help is shown (listing the task options imports torch)."""
    show = parser.format_help

    def format_help():
        parser.epilog = make()
        return show()

    parser.format_help = format_help


def _options_epilog() -> str:
    """The task options of every task and the model options (for --help), without importing torch."""
    lines = ["task options (--task-opt KEY=VALUE):"]
    try:
        from .torch.tasks import TASKS, _task_options
    except ImportError:  # torch missing: the command itself will say so
        return "task and model options: see docs/training.md (needs torch)"
    for name in TASKS:
        lines.append(f"  {name}: {', '.join(_task_options(name))}")
    lines.append("model options (--model-opt KEY=VALUE): n_lif, n_adapt and the SpikingRNN arguments "
                 "(tau_m, v_th, tau_ahp, beta_ahp, tau_a, beta_alif, n_ref, reset, refractory_mode, tau_out, rec_delay, "
                 "in_delay, "
                 "out_delay, p_in, p_rec, p_out, bias, out_bias, surrogate, w_in_scale, w_rec_scale, "
                 "w_out_scale, train_tau, ...); babi: n_encoder, g_layers, f_layers, max_sentences, steps_per_word, "
                 "position_tags, encoder_options, head_levels")
    return "\n".join(lines)


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("train", help="train a spiking network with surrogate gradients (needs torch)",
                              description="Train an LSNN-style network (LIF + AHP/ALIF) with BPTT and surrogate "
                                          "gradients; checkpoints in --out are resumed automatically, the best "
                                          "epoch is chosen on the task's validation set and the test set is "
                                          "evaluated once at the end.",
                              formatter_class=_Formatter)
    _lazy_epilog(p, _options_epilog)
    p.add_argument("task", choices=_TASKS, help="memory | smnist | psmnist | fsdd | jv (JapaneseVowels) | ucr | "
                                                "babi (a Relational Network with spiking encoders)")
    p.add_argument("--root", default=None, help="data root laid out like shared/data (default: $AHPSIM_DATA / download)")
    p.add_argument("--out", default=None, help="checkpoint folder (default: runs/TASK-NEURONS-seedS)")
    p.add_argument("--neurons", default="ahp", choices=["ahp", "alif", "lif", "lstm"],
                   help="adaptive neurons of the recurrent layer (lif = same size, no adaptation; babi: the "
                        "encoders' neurons, lstm = the non-spiking LSTM baseline)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the task's: smnist 100, memory 7, ...)")
    p.add_argument("--batch-size", type=int, default=None, help="batch size (default: the task's)")
    p.add_argument("--lr", type=float, default=None, help="initial learning rate of Adam (default: the task's)")
    p.add_argument("--lr-schedule", default=None, choices=["exponential", "step", "cosine", "linear", "constant"],
                   help="learning-rate schedule (the task's default: see docs/training.md)")
    p.add_argument("--lr-decay", type=float, default=None, help="exponential / step schedules: factor per epoch / step")
    p.add_argument("--lr-step-epochs", type=int, default=None, help="step schedule: epochs between decays")
    p.add_argument("--lr-min", type=float, default=None, help="cosine / linear schedules: final learning rate")
    p.add_argument("--grad-clip", type=float, default=None, help="clip the gradients' global L2 norm to this value")
    p.add_argument("--deep-r", type=float, default=None, metavar="CONNECTIVITY",
                   help="Deep R rewiring at this fraction of the possible synapses (e.g. 0.2, the paper's Loihi "
                        "networks)")
    p.add_argument("--deep-r-l1", type=float, default=None, help="Deep R: L1 pull on the synapse strengths "
                                                                  "(default 1e-4)")
    p.add_argument("--deep-r-temperature", type=float, default=None, help="Deep R: noise temperature (default 0)")
    p.add_argument("--seed", type=seed, default=0, help="seed of the weights, the masks and the batch order")
    p.add_argument("--threads", type=threads, default=None, help="threads (default: torch's)")
    p.add_argument("--max-batches", type=int, default=None, help="batches per epoch at most")
    p.add_argument("--time-budget", type=positive_seconds, default=None, help="stop (checkpointed) after this many seconds")
    p.add_argument("--rate-weight", type=float, default=None, help="firing-rate regulariser weight")
    p.add_argument("--rate-target", type=float, default=None, help="target spikes per neuron per step")
    p.add_argument("--ema-decay", type=float, default=None, metavar="DECAY",
                   help="keep an exponential moving average of the weights (decay per optimizer step, in (0, 1), "
                        "e.g. 0.998: a horizon of about 500 steps); validation, best.pt and the exported network "
                        "use the averaged weights (default: off)")
    p.add_argument("--weight-noise", type=float, default=None, metavar="STD",
                   help="train with the weight matrices multiplied by 1 + STD * normal noise in every step (relative "
                        "standard deviation in (0, 1], e.g. 0.003), towards weights that survive small errors such "
                        "as the chip's 8-bit weights (default: off)")
    p.add_argument("--loss-mode", default=None, choices=["last", "window", "window_mean"],
                   help="readout loss: cross-entropy at the last step (where the answer is read), averaged over "
                        "the last --window steps, or of the readout's mean over them (default: the task's; "
                        "smnist / psmnist: window over the 56 cue steps)")
    p.add_argument("--window", type=int, default=None, help="steps of the readout window (--loss-mode window / "
                                                            "window_mean)")
    p.add_argument("--task-opt", type=_kv, action="append", default=[], metavar="KEY=VALUE",
                   help="task option, e.g. n_train=2000, delay=300 (repeatable)")
    p.add_argument("--model-opt", type=_kv, action="append", default=[], metavar="KEY=VALUE",
                   help="network option, e.g. n_lif=100, tau_ahp=500 (repeatable)")
    p.add_argument("--init-from", default=None, metavar="CHECKPOINT",
                   help="start the run from the weights of CHECKPOINT (a best.pt / last.pt of the same network: "
                        "same --neurons and --model-opt); its optimizer, schedule and history start afresh. "
                        "Used when the run starts, not when --out holds a run to resume")
    p.add_argument("--no-resume", action="store_true", help="start afresh even if --out holds a checkpoint")
    p.add_argument("--portable-checkpoint", action="store_true",
                   help="also write DIR/portable.pt at every checkpoint: the model and the run's state without "
                        "the optimizer's moment estimates (a third of last.pt), to commit so that the run "
                        "resumes on another machine (on by itself when DIR already holds one)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (one line per epoch stays)")
    p.set_defaults(func=train_command)
    return p


def add_eval_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("eval", help="evaluate a checkpoint (torch and, with --kernel, the exported network)",
                              formatter_class=_Formatter)
    p.add_argument("checkpoint", help="last.pt / best.pt written by 'ahpsim train'")
    p.add_argument("--root", default=None, help="data root (default: the training run's --root, else $AHPSIM_DATA / download)")
    p.add_argument("--kernel", action="store_true", help="also run the exported C++ network and compare spikes")
    p.add_argument("--quantize", type=_power_or_float, default=None, metavar="STEP",
                   help="round weights to multiples of STEP first (a number or a power such as 2**-12)")
    p.add_argument("--spiking-head", type=int, default=None, metavar="STEPS",
                   help="babi with --kernel: run g and f as rate-coded integrate-and-fire layers for STEPS steps "
                        "(scales: percentiles of the activations on 1,024 training questions, or the trained ones "
                        "of a network trained with --model-opt head_levels=L, whose head matches at STEPS = L)")
    p.add_argument("--head-percentile", type=float, default=None, metavar="P",
                   help="babi with --spiking-head: each layer's scale is the P-th percentile of its positive "
                        "ReLU activations (0 < P <= 100; default: IFHead's, 99)")
    p.add_argument("--head-v-init", type=float, default=None, metavar="V",
                   help="babi with --spiking-head: initial potential of the integrate-and-fire units, in "
                        "thresholds (0 <= V < 1; default: IFHead's, 0.5)")
    p.add_argument("--head-f-percentile", type=float, default=None, metavar="P",
                   help="babi with --spiking-head: f's scales at their own percentile (0 < P <= 100; default: "
                        "--head-percentile)")
    p.add_argument("--head-reset", choices=("subtract", "zero"), default=None,
                   help="babi with --spiking-head: the integrate-and-fire units' reset (default: IFHead's, "
                        "subtract; zero: Loihi's own, whose potential saturates instead of wrapping on long runs)")
    p.add_argument("--head-drain", action="store_true",
                   help="babi with --spiking-head: every layer integrates all of its input (g runs one step more "
                        "per later layer; IFHead's drain)")
    p.add_argument("--loihi", action="store_true",
                   help="babi with --kernel: run on the Loihi 1 integer engine (the encoders and, with "
                        "--spiking-head, g's later layers and f)")
    p.add_argument("--export", default=None, metavar="DIR",
                   help="babi with --kernel: also save the deployed network to DIR (ahpsim.relnet.load_relnet "
                        "runs it without torch)")
    p.add_argument("--n-test", type=int, default=None, help="evaluate the first N test samples only")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--threads", type=threads, default=None)
    p.set_defaults(func=eval_command)
    return p


def _quiet_openmp_workers() -> None:
    """Passive waiting for torch's OpenMP workers (``OMP_WAIT_POLICY=PASSIVE``) unless the user set a
    policy. ahpsim's C++ kernels run their own threads beside torch's OpenMP pool, whose workers by
    default spin after every torch operation on the very cores those threads need (two threads gave
    1.46x one thread on the trained sMNIST network, 1.57x waiting passively: benchmarks/results/
    train_step_vs_peers.json). libgomp reads the policy when torch is first imported, so this acts only
    before that."""
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


# TrainConfig's and DeepR's field names in their messages, as the options that set them
_OPTION_OF_FIELD = {"lr_step_epochs": "--lr-step-epochs", "lr_schedule": "--lr-schedule", "lr_decay": "--lr-decay",
                    "lr_min": "--lr-min", "batch_size": "--batch-size", "max_batches_per_epoch": "--max-batches",
                    "grad_clip": "--grad-clip", "rate_weight": "--rate-weight", "rate_target": "--rate-target",
                    "ema_decay": "--ema-decay", "weight_noise": "--weight-noise", "loss_mode": "--loss-mode",
                    "window": "--window", "epochs": "--epochs", "lr": "--lr",
                    "num_threads": "--threads", "connectivity": "--deep-r", "l1": "--deep-r-l1",
                    "temperature": "--deep-r-temperature"}


class _option_names:
    """Re-raises a ValueError of the block with the fields it names spelled as command-line options."""

    def __enter__(self):
        return self

    def __exit__(self, kind, e, tb):
        if kind is not None and issubclass(kind, ValueError):
            import re

            names = sorted(_OPTION_OF_FIELD, key=len, reverse=True)
            msg = re.sub(r"(?<![\w-])(" + "|".join(names) + r")(?![\w-])", lambda m: _OPTION_OF_FIELD[m.group(1)],
                         str(e))
            raise ValueError(msg) from None
        return False


def _refuse_options_without_effect(args, cfg) -> None:
    """An option given on the command line that this run would ignore is a mistake to point out."""
    rules = [
        ("--rate-target", args.rate_target, cfg.rate_weight > 0,
         f"a firing-rate regulariser weight > 0 (this run: {cfg.rate_weight:g}; give --rate-weight too)"),
        ("--window", args.window, cfg.loss_mode != "last", "--loss-mode window or window_mean (this run: last)"),
        ("--lr-min", args.lr_min, cfg.lr_schedule in ("cosine", "linear"),
         f"--lr-schedule cosine or linear (this run: {cfg.lr_schedule})"),
        ("--lr-decay", args.lr_decay, cfg.lr_schedule in ("exponential", "step"),
         f"--lr-schedule exponential or step (this run: {cfg.lr_schedule})"),
        ("--lr-step-epochs", args.lr_step_epochs, cfg.lr_schedule == "step",
         f"--lr-schedule step (this run: {cfg.lr_schedule})"),
        ("--deep-r-l1", args.deep_r_l1, args.deep_r is not None, "--deep-r"),
        ("--deep-r-temperature", args.deep_r_temperature, args.deep_r is not None, "--deep-r"),
    ]
    for option, given, applies, needs in rules:
        if given is not None and not applies:
            raise ValueError(f"{option} has no effect in this run: it applies with {needs}")


def train_command(args) -> int:
    _quiet_openmp_workers()
    import numpy as np
    import torch

    from .torch.tasks import build_model, make_task
    from .torch.trainer import Trainer, evaluate

    import dataclasses

    from .torch.trainer import TrainConfig, TrainingInterrupted

    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {name: val for name, val in (
        ("epochs", args.epochs), ("batch_size", args.batch_size), ("lr", args.lr), ("lr_schedule", args.lr_schedule),
        ("lr_decay", args.lr_decay), ("lr_step_epochs", args.lr_step_epochs), ("lr_min", args.lr_min),
        ("grad_clip", args.grad_clip), ("max_batches_per_epoch", args.max_batches),
        ("rate_weight", args.rate_weight), ("rate_target", args.rate_target), ("loss_mode", args.loss_mode),
        ("window", args.window), ("ema_decay", args.ema_decay), ("weight_noise", args.weight_noise)) if val is not None}
    with _option_names():
        TrainConfig(**overrides)  # the options' values are checked before any data is read
    if args.out is not None and Path(args.out).exists() and not Path(args.out).is_dir():
        raise ValueError(f"--out {args.out} is a file; give a folder for the run's checkpoints")
    if args.neurons == "lstm" and args.task != "babi":
        raise ValueError("--neurons lstm (an LSTM encoder) exists for the babi task only")
    task = make_task(args.task, root=args.root, **dict(args.task_opt))
    model = build_model(task, args.neurons, seed=args.seed, **dict(args.model_opt))
    out = Path(args.out or f"runs/{args.task}-{args.neurons}-seed{args.seed}")
    with _option_names():  # (replace validates too: the task's defaults with the options)
        cfg = dataclasses.replace(task.train_config, **overrides, seed=args.seed, progress=not args.no_progress,
                                  log_epochs=True,
                                  portable_checkpoint=args.portable_checkpoint or (out / "portable.pt").is_file())
        cfg = TrainConfig(**dataclasses.asdict(cfg))  # validated
    _refuse_options_without_effect(args, cfg)
    if cfg.loss_mode != "last" and not hasattr(model, "objective") and len(task.train):
        steps = task.train.get(np.arange(1))[0].shape[1]  # (padded) steps of the task's sequences
        if cfg.window > steps:
            raise ValueError(f"--window {cfg.window} is longer than the task's {steps}-step sequences")
    # the data root as given (the committed runs keep their relative "../shared/data") and absolute
    meta = {"task": task.spec, "neurons": args.neurons, "model_opts": dict(args.model_opt), "root": args.root,
            "root_abs": None if args.root is None else os.path.abspath(args.root),
            "validation": task.val_rule, "title": f"{task.name}, {args.neurons}, seed {args.seed}",
            "seed": args.seed}
    if task.notes:
        meta["notes"] = task.notes
    will_resume = not args.no_resume and any((out / f).is_file() for f in ("last.pt", "portable.pt"))
    if args.init_from is not None and args.deep_r is not None and not will_resume:
        raise ValueError("--init-from with --deep-r: Deep R would redraw the masks at random and zero the loaded "
                         "weights outside them; start the rewiring run from scratch, or warm-start without it")
    if args.init_from is not None and not will_resume:
        from .torch.trainer import init_from_checkpoint

        # a warm start: weights of another run's checkpoint, fresh optimizer, schedule and history
        meta["init_from"] = init_from_checkpoint(model, args.init_from)
        if meta["init_from"].get("time_constants_replaced"):
            print(f"{out}: the time constants {', '.join(meta['init_from']['time_constants_replaced'])} come from "
                  f"{args.init_from}, not from this run's options" +
                  (" (learned from there: train_tau)" if getattr(model, "train_tau", False) else " (kept fixed)"),
                  file=sys.stderr)
    # the best epoch is chosen on the validation set (carved from the training data), never on the test set
    rewiring = None
    if args.deep_r is not None:
        from .torch.rewiring import DeepR

        l1 = 1e-4 if args.deep_r_l1 is None else args.deep_r_l1
        temperature = 0.0 if args.deep_r_temperature is None else args.deep_r_temperature
        with _option_names():
            rewiring = DeepR(model, args.deep_r, l1=l1, temperature=temperature, seed=args.seed)
        meta["deep_r"] = {"connectivity": args.deep_r, "l1": l1, "temperature": temperature}
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--out {out}: cannot create the folder ({e.strerror or type(e).__name__})") from None
    tr = Trainer(model, task.train, task.val, cfg, ckpt_dir=out, meta=meta, rewiring=rewiring)
    if not args.no_resume and tr.rank == 0 and (out / "best.pt").is_file() and not will_resume:
        print(f"{out}: holds best.pt but no last.pt or portable.pt to resume from: training starts afresh and "
              "replaces it", file=sys.stderr)
    def same_run(old: dict) -> None:  # the same task, data and network as the run being continued
        for key, what in (("task", "--task / --task-opt"), ("neurons", "--neurons"), ("model_opts", "--model-opt"),
                          ("seed", "--seed")):
            if key in old and _jsonish(_as_parsed_now(old[key])) != _jsonish(meta[key]):
                raise ValueError(f"{out} holds a run of {key} {old[key]!r}, not {meta[key]!r}: change {what} back, "
                                 "or pass --no-resume (or another --out) to start a new run")

    resumed = not args.no_resume and tr.try_resume(check_meta=same_run)
    if resumed:
        old = tr.resumed_meta or {}
        if "init_from" in old:  # the warm start is part of the run's record, whether or not repeated
            tr.meta["init_from"] = old["init_from"]
        if args.init_from is not None and tr.rank == 0:
            print(f"{out}: resuming the run in it; --init-from applies only when a run starts and is ignored",
                  file=sys.stderr)
    if resumed and tr.rank == 0:
        if tr.epoch >= cfg.epochs:
            print(f"{out}: already trained for {tr.epoch} epochs (pass a larger --epochs to train longer)",
                  file=sys.stderr)
        else:
            how = "" if tr.resumed_from.name == "last.pt" else \
                f" from {tr.resumed_from.name} (no last.pt: Adam's moment estimates restart)"
            print(f"{out}: resuming at epoch {tr.epoch + 1}, batch {tr.batch}{how}", file=sys.stderr)
        if tr.resumed_changes:  # (recorded in history.json: meta.config_changes)
            what = ", ".join(f"{_OPTION_OF_FIELD.get(k, k)} {a!r} -> {b!r}" for k, (a, b) in tr.resumed_changes.items())
            print(f"{out}: resumed with settings changed from the checkpoint's: {what}", file=sys.stderr)
    t0 = time.perf_counter()
    try:
        tr.fit(resume=False, max_wall_s=args.time_budget)
    except TrainingInterrupted as e:
        if tr.rank == 0:
            print(f"{out}: {e}", file=sys.stderr)
        tr.close()
        return 130
    tr.close()  # under torchrun: every rank has finished; rank 0 evaluates on the test set and reports
    if tr.rank != 0:
        return 0
    if tr.stopped:
        print(f"{out}: stopped by --time-budget at epoch {tr.epoch + 1}, batch {tr.batch} (checkpointed); rerun "
              "to resume", file=sys.stderr)
    summary = {"task": task.name, "neurons": args.neurons, "epochs_done": tr.epoch, "steps": tr.step,
               "stopped_early": tr.stopped, "selection": f"{tr.selection} ({task.val_rule})",
               "best_epoch": tr.best_epoch, "wall_s": time.perf_counter() - t0,
               "checkpoint": str(out / ("last.pt" if (out / "last.pt").is_file() else "portable.pt"))}
    summary[f"best_{tr.selection}_acc"] = tr.best_acc if tr.history else None
    if not tr.stopped and tr.epoch >= cfg.epochs:
        # the test set, once, with the selected model
        tr.load_best()
        summary["test"] = evaluate(model, task.test, cfg.eval_batch_size, cfg.loss_mode, cfg.window)
        (out / "test.json").write_text(json.dumps({"best_epoch": tr.best_epoch, "n_test": len(task.test),
                                                   **summary["test"]}, indent=1))
    print(json.dumps(summary))
    return 0


def _babi_kernel_eval(model, test, train, args) -> dict:
    """The Relational Network with its encoders on the C++ kernel (g and f in numpy) against the model."""
    import warnings

    import numpy as np
    import torch

    from .loihi import QuantizationOverflowWarning
    from .torch.relational import KernelRelationalNetwork

    head = None
    if args.spiking_head is not None:
        from .torch.relational import IFHead

        calib = None  # (a head trained with quantized ReLUs carries its scales)
        if model.head_levels is None:
            calib, _, _ = train.get(np.linspace(0, len(train) - 1, 1024).astype(np.int64))
        given = {k: v for k, v in (("percentile", args.head_percentile), ("v_init", args.head_v_init),
                                   ("f_percentile", args.head_f_percentile), ("reset", args.head_reset))
                 if v is not None}
        head = IFHead(model, calib, steps=args.spiking_head, n_threads=args.threads or 1,
                      engine="loihi" if args.loihi else "float", drain=args.head_drain, **given)
    kernel = KernelRelationalNetwork(model, n_threads=args.threads or 1, head=head,
                                     engine="loihi" if args.loihi else "float")
    if args.export:
        kernel.save(args.export)
    n_ok = n_same = spk_t = spk_k = 0
    g_spk = f_spk = ovf_g = ovf_f = 0
    idx = np.arange(len(test))
    t0 = time.perf_counter()
    for s in range(0, len(test), args.batch_size):
        batch, lab, _ = test.get(idx[s:s + args.batch_size])
        with torch.no_grad():
            o = model(batch)
        with warnings.catch_warnings():  # the integer engine's overflows: summed below, reported once
            warnings.simplefilter("ignore", QuantizationOverflowWarning)
            try:
                k = kernel(batch)
            except MemoryError as e:  # the head's spike arrays grow with its steps
                if head is None:
                    raise
                raise ValueError(f"--spiking-head {args.spiking_head}: the head's arrays need more memory than this "
                                 f"machine has ({e}); use fewer steps or a smaller --batch-size") from None
        pk = k.logits.argmax(1)
        n_ok += int((pk == lab.numpy()).sum())
        n_same += int((pk == o.logits.argmax(1).numpy()).sum())
        spk_t += o.spikes
        spk_k += k.spikes
        if head is not None:
            g_spk += kernel.last_head_stats["g_spikes"]
            f_spk += kernel.last_head_stats["f_spikes"]
            ovf_g += kernel.last_head_stats.get("overflows_g", 0)
            ovf_f += kernel.last_head_stats.get("overflows_f", 0)
    res = {"engine": kernel.engine, "acc": n_ok / len(test), "same_prediction": n_same / len(test),
           "spikes_torch": spk_t, "spikes_kernel": spk_k, "wall_s": time.perf_counter() - t0}
    if args.export:
        res["exported_to"] = str(args.export)
    if head is not None:
        res["head"] = {"kind": "integrate-and-fire", "steps": head.steps, "percentile": head.percentile,
                       "v_init": head.v_init, "f_percentile": head.f_percentile, "reset": head.reset,
                       "drain": head.drain, "trained_scales": model.head_levels is not None,
                       "g_spikes": g_spk, "f_spikes": f_spk}
        if args.loihi:  # compartment-steps with a wrapped current or a clipped voltage
            res["head"].update(overflows_g=ovf_g, overflows_f=ovf_f)
            if ovf_g or ovf_f:
                print(f"ahpsim eval: warning: the integer engine wrapped a 24-bit current or clipped a voltage in "
                      f"{ovf_g} compartment-steps of g and {ovf_f} of f over {len(test)} questions; answers may "
                      "differ from the float kernel's (fewer --spiking-head steps keep the units in range)",
                      file=sys.stderr)
    return res


def _jsonish(x):
    """A value as it reads back from a checkpoint's JSON-like metadata (tuples as lists)."""
    return json.loads(json.dumps(x, default=str))


def _training_root(ck: dict, checkpoint) -> str | None:
    """The data root of the run that wrote ``ck``: its absolute path where recorded and present, else
    its --root as given, tried from the current folder and from the folders above the checkpoint (a
    committed run keeps the relative root it was started with, e.g. "../shared/data" from the
    repository root)."""
    meta = ck.get("meta", {})
    absolute, given = meta.get("root_abs"), meta.get("root")
    if absolute and os.path.isdir(absolute):
        return absolute
    if given is None or os.path.isabs(given) or os.path.isdir(given):
        return given
    for up in Path(checkpoint).resolve().parents:
        if (up / given).is_dir():
            return str(up / given)
    raise FileNotFoundError(f"the training run's data root {given!r} (its --root, relative to where it ran) is "
                            "not found from here or above the checkpoint; pass --root")


def eval_command(args) -> int:
    _quiet_openmp_workers()
    import numpy as np
    import torch

    from .torch import losses as L
    from .torch.tasks import make_task
    from .torch.trainer import evaluate, load_checkpoint, load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    for name, v in (("--spiking-head", args.spiking_head), ("--n-test", args.n_test),
                    ("--batch-size", args.batch_size)):
        if v is not None and v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    ck = load_checkpoint(args.checkpoint)
    model = load_model(ck)
    if not hasattr(model, "quantize_") and args.quantize:
        raise ValueError(f"--quantize needs a SpikingRNN checkpoint; {args.checkpoint} holds a "
                         f"{type(model).__name__}")
    if args.kernel and getattr(model, "encoder_kind", None) == "lstm":
        raise ValueError(f"--kernel needs spiking encoders; {args.checkpoint} holds an LSTM-encoder "
                         "RelationalNetwork")
    babi_only = [f for f, on in (("--spiking-head", args.spiking_head is not None), ("--loihi", args.loihi),
                                 ("--export", args.export is not None)) if on]
    head_opts = [f for f, v in (("--head-percentile", args.head_percentile), ("--head-v-init", args.head_v_init),
                                ("--head-f-percentile", args.head_f_percentile), ("--head-reset", args.head_reset),
                                ("--head-drain", args.head_drain or None))
                 if v is not None]
    if head_opts and args.spiking_head is None:
        raise ValueError(f"{head_opts[0]} applies to the integrate-and-fire head; add --spiking-head STEPS")
    if getattr(model, "head_levels", None) is not None and (args.head_percentile is not None
                                                           or args.head_f_percentile is not None):
        raise ValueError(f"--head-percentile and --head-f-percentile apply to a ReLU head; {args.checkpoint} was "
                         f"trained with head_levels={model.head_levels} and carries its head's scales")
    # checked here, before the data are loaded (IFHead checks them again)
    for name, v in (("--head-percentile", args.head_percentile), ("--head-f-percentile", args.head_f_percentile)):
        if v is not None and not 0.0 < v <= 100.0:
            raise ValueError(f"{name} must be in (0, 100], got {v}")
    if args.head_v_init is not None and not 0.0 <= args.head_v_init < 1.0:
        raise ValueError(f"--head-v-init must be in [0, 1), got {args.head_v_init}")
    if babi_only and not (args.kernel and type(model).__name__ == "RelationalNetwork"):
        raise ValueError(f"{babi_only[0]} needs a babi checkpoint and --kernel")
    if args.quantize:
        model.quantize_(args.quantize)
    spec = ck.get("meta", {}).get("task")
    if not spec:
        raise ValueError(f"{args.checkpoint}: the checkpoint has no task description; cannot rebuild the test set")
    root = args.root if args.root is not None else _training_root(ck, args.checkpoint)
    task = make_task(spec["name"], root=root, **spec.get("options", {}))
    test = task.test
    if args.n_test:
        test = test.subset(np.arange(min(args.n_test, len(test))))
    tc = ck.get("train_config", {})
    res = {"checkpoint": str(args.checkpoint), "task": task.name, "n_test": len(test), "quantize": args.quantize,
           "torch": evaluate(model, test, args.batch_size, tc.get("loss_mode", "last"), tc.get("window", 1))}
    if args.kernel and task.name == "babi":
        res["kernel"] = _babi_kernel_eval(model, test, task.train, args)
    elif args.kernel:
        from .torch.export import run_network, to_network

        net = to_network(model)
        n_ok = n_same = n_spk_t = n_spk_k = n_diff = 0
        idx = np.arange(len(test))
        t0 = time.perf_counter()
        for s in range(0, len(test), args.batch_size):
            x, lab, ln = test.get(idx[s:s + args.batch_size])
            with torch.no_grad():
                o = model(x)
            z, y = run_network(net, x, n_threads=args.threads or 1)
            zt = o.z.numpy().astype(bool)
            pk = L.readout_logits(torch.from_numpy(np.asarray(y, np.float32)), ln).argmax(-1)
            pt = L.readout_logits(o.y, ln).argmax(-1)
            n_ok += int((pk == lab).sum())
            n_same += int((pk == pt).sum())
            n_spk_t += int(zt.sum())
            n_spk_k += int(z.sum())
            n_diff += int((zt != z).sum())
        res["kernel"] = {"acc": n_ok / len(test), "same_prediction": n_same / len(test), "spikes_torch": n_spk_t,
                         "spikes_kernel": n_spk_k, "differing_spike_entries": n_diff,
                         "differing_fraction": n_diff / max(n_spk_t, 1), "wall_s": time.perf_counter() - t0}
    if getattr(model, "train_tau", False):  # the learned time constants (steps): min, median, max over neurons
        res["time_constants"] = {}
        for name in ("tau_m", "tau_ahp", "tau_a", "tau_out"):
            v = np.asarray(getattr(model, name), np.float64)
            v = v[v > 0]
            if v.size:
                res["time_constants"][name] = [float(v.min()), float(np.median(v)), float(v.max())]
    print(json.dumps(res))
    return 0
