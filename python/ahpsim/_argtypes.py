"""argparse value types shared by the command-line parsers (``cli``, ``cli_train``, ``energy``, ``nir``):
each refuses, in one line naming what is allowed, a value the command would otherwise crash on or
silently misuse. No imports from the package (the parsers of every layer use it)."""

from __future__ import annotations

import argparse
import math

# More threads than this are refused: torch's OpenMP pool crashes (a segmentation fault) when asked for
# 100,000, and no machine this runs on has a thousand cores.
MAX_THREADS = 1024
MAX_SEED = 2 ** 63 - 1  # torch.manual_seed's and numpy's common range


def threads(text: str) -> int:
    """An integer in [1, MAX_THREADS]."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer in [1, {MAX_THREADS}], got {text!r}") from None
    if not 1 <= value <= MAX_THREADS:
        raise argparse.ArgumentTypeError(f"must be in [1, {MAX_THREADS}], got {value}")
    return value


def seed(text: str) -> int:
    """An integer in [0, 2**63 - 1]."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**63 - 1], got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**63 - 1], got {value}")
    return value


def positive_seconds(text: str) -> float:
    """A finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, got {text!r}")
    return value


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes end in one line (``prog: error: ...``) and exit code 2, without the usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
