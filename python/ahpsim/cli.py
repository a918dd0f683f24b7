"""Command line: ``python -m ahpsim demo | train | eval``."""

from __future__ import annotations

import argparse
import os
import re
import sys

from ._argtypes import OneLineParser, seed, threads


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    if args.job == "babi":
        from .demo import run_babi_demo

        smnist_only = [f"--{k.replace('_', '-')}" for k, default in (("network", "trained"), ("steps", 2000),
                                                                    ("trials", 4), ("seed", 0), ("no_plot", False))
                       if getattr(args, k) != default]
        if smnist_only:
            raise ValueError(f"{smnist_only[0]} applies to the sMNIST demo, not to 'demo babi'")

        run_babi_demo(args.out, n_threads=args.threads, loihi=not args.no_loihi, show=args.show)
        return 0
    if args.show != 3:
        raise ValueError("--show applies to 'demo babi'")
    run_demo(args.out, network=args.network, steps=args.steps, seed=args.seed, trials=args.trials,
             n_threads=args.threads, plot=not args.no_plot, loihi=not args.no_loihi)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = OneLineParser(prog="ahpsim", description="Sparse-firing recurrent spiking networks with AHP currents")
    p.add_argument("--version", action="version", version=f"ahpsim {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="classify bundled MNIST digits with the shipped trained AHP network "
                                     "(float kernel and Loihi integer engine) and save a raster plot; "
                                     "'demo babi': answer bundled bAbI questions with the shipped spiking "
                                     "Relational Network")
    d.add_argument("job", nargs="?", choices=["smnist", "babi"], default="smnist",
                   help="smnist (default): sequential MNIST; babi: bAbI question answering")
    d.add_argument("--show", type=int, default=3,
                   help="babi: questions printed with their whole story (default 3)")
    d.add_argument("--out", default="ahpsim-demo", help="output directory (default: ahpsim-demo)")
    d.add_argument("--network", choices=["trained", "random"], default="trained",
                   help="'trained': the shipped sMNIST network (default); 'random': a random AHP network")
    d.add_argument("--threads", type=threads, default=2)
    d.add_argument("--no-loihi", action="store_true", help="skip the Loihi integer engine")
    d.add_argument("--steps", type=int, default=2000, help="random network: steps")
    d.add_argument("--trials", type=int, default=4, help="random network: trials")
    d.add_argument("--seed", type=seed, default=0, help="random network: seed")
    d.add_argument("--no-plot", action="store_true", help="skip the figures")
    d.set_defaults(func=_demo)
    try:
        from . import cli_train
    except ImportError:
        cli_train = None  # type: ignore[assignment]
    if cli_train is not None:
        cli_train.add_train_parser(sub)
        cli_train.add_eval_parser(sub)
    from .energy import add_energy_parser
    from .nir import add_nir_parser

    add_energy_parser(sub)
    add_nir_parser(sub)
    return p


# What a command raises for a user's mistake (a bad value, a missing or unreadable file, a known gap):
# one line and exit code 2, as argparse does for its own errors. AHPSIM_DEBUG=1 shows the traceback.
_USER_ERRORS = (ValueError, TypeError, OSError, NotImplementedError, MemoryError, KeyError, FloatingPointError)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # output piped into a reader that stopped (| head): end quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except _USER_ERRORS as e:
        if os.environ.get("AHPSIM_DEBUG"):
            raise
        msg = str(e) if not isinstance(e, KeyError) else f"missing entry {e}"
        # a data file missing under --root: the command line cannot pass download=True, it drops --root
        msg = re.sub(r"pass download=True( to fetch it)?, or point root= / \$AHPSIM_DATA at",
                     "leave out --root to download it (into $AHPSIM_DATA or the cache), or point --root at", msg)
        print(f"{parser.prog} {args.command}: error: {msg or type(e).__name__}", file=sys.stderr)
        return 2
