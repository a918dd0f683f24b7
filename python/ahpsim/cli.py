"""Command line: ``python -m ahpsim demo | train | eval``."""

from __future__ import annotations

import argparse
import sys


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.out, steps=args.steps, seed=args.seed, trials=args.trials, plot=not args.no_plot)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="ahpsim", description="Sparse-firing recurrent spiking networks with AHP currents")
    p.add_argument("--version", action="version", version=f"ahpsim {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="simulate a recurrent AHP network and save figures")
    d.add_argument("--out", default="ahpsim-demo", help="output directory (default: ahpsim-demo)")
    d.add_argument("--steps", type=int, default=2000)
    d.add_argument("--trials", type=int, default=4)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--no-plot", action="store_true", help="skip the figures")
    d.set_defaults(func=_demo)
    try:
        from . import cli_train
    except ImportError:
        cli_train = None  # type: ignore[assignment]
    if cli_train is not None:
        cli_train.add_train_parser(sub)
        cli_train.add_eval_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    return int(args.func(args) or 0)
