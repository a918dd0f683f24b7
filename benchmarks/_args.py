"""argparse types shared by the benchmark scripts: a value outside its range is a one-line usage error
naming the option (exit code 2), not a traceback later in the run."""

from __future__ import annotations

import argparse
import math


def int_at_least(lo: int):
    """An integer >= ``lo``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {lo}, got {text!r}") from None
        if value < lo:
            raise argparse.ArgumentTypeError(f"expected an integer >= {lo}, got {value}")
        return value

    return parse


def real_in(lo: float = 0.0, hi: float = math.inf, *, lo_open: bool = True, hi_open: bool = False):
    """A finite float in the interval from ``lo`` to ``hi`` (open or closed ends as given)."""
    interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open or math.isinf(hi) else ']'}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number in {interval}, got {text!r}") from None
        ok = math.isfinite(value) and (value > lo if lo_open else value >= lo) and (
            value < hi if hi_open else value <= hi)
        if not ok:
            raise argparse.ArgumentTypeError(f"expected a number in {interval}, got {text}")
        return value

    return parse
