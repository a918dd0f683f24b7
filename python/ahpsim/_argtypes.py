"""argparse value types shared by the command-line parsers (``cli``, ``cli_train``, ``energy``, ``nir``):
each refuses, in one line naming what is allowed, a value the command would otherwise crash on or
silently misuse. It imports only ``_validation`` (the parsers of every layer use it)."""

from __future__ import annotations

import argparse

from ._validation import MAX_THREADS, as_positive_real

MAX_SEED = 2 ** 63 - 1  # torch.manual_seed's and numpy's common range


def int_in_range(lo: int, hi: int, shown: str):
    """An argparse type: an integer in [lo, hi] (``shown``: the range as the message writes it)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer in {shown}, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be in {shown}, got {value}")
        return value

    return parse


threads = int_in_range(1, MAX_THREADS, f"[1, {MAX_THREADS}]")
seed = int_in_range(0, MAX_SEED, "[0, 2**63 - 1]")


def positive_seconds(text: str) -> float:
    """A finite number of seconds > 0."""
    try:
        return as_positive_real(float(text), "the value", " (seconds)")
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, got {text!r}") from None


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes end in one line (``prog: error: ...``) and exit code 2, without the usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
