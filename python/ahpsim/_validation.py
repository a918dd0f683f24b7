"""Argument checking shared by the Python API: every error names the argument and what is allowed."""

from __future__ import annotations

import numbers
import operator
from typing import Any

import numpy as np

__all__ = ["as_param_array", "as_int", "as_positive_real", "as_real_array"]


# The most threads any call takes: more is a mistake (torch's OpenMP pool crashes with a segmentation
# fault when asked for 100,000), and no machine this runs on has a thousand cores.
MAX_THREADS = 1024


def as_int(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer argument (bools and non-integral floats are rejected)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got a bool")
    if isinstance(value, numbers.Integral):
        out = int(value)
    elif isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer():
        out = int(value)
    else:
        try:
            out = operator.index(value)
        except TypeError:
            raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}") from None
    if minimum is not None and out < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {out}")
    if maximum is not None and out > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {out}")
    return out


def as_positive_real(value: Any, name: str, what: str = "") -> float:
    """A finite real number > 0 (bools, strings and NaN rejected); ``what`` is added to the message."""
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating))
            or not 0 < float(value) < float("inf")):
        raise ValueError(f"{name} must be a finite number > 0{what}, got {value!r}")
    return float(value)


def as_real_array(value: Any, name: str, *, allow_bool: bool = False) -> np.ndarray:
    """A numeric array with finite values (no object, string or complex dtype)."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # e.g. ragged nested lists
        raise TypeError(f"{name} must be array-like of numbers: {exc}") from None
    if arr.dtype == np.bool_:
        if not allow_bool:
            raise TypeError(f"{name} must be numeric, got a bool array")
        return arr
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name} must be numeric (int or float), got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return arr


def trial_index(trial: Any, n_trials: int) -> int:
    """``trial`` as an index into ``n_trials`` trials (negative counts from the end)."""
    if isinstance(trial, (bool, np.bool_)) or not isinstance(trial, (int, np.integer)):
        raise TypeError(f"trial must be an int, got {type(trial).__name__}")
    if not -n_trials <= trial < n_trials:
        raise IndexError(f"trial must be in [0, {n_trials}), got {trial}")
    return int(trial) % n_trials


def cast_checked(arr: np.ndarray, dtype: Any, name: str) -> np.ndarray:
    """``arr`` (finite) as a contiguous array of the float ``dtype``; values beyond its range are a
    ValueError naming ``name``, not a RuntimeWarning and an inf."""
    dtype = np.dtype(dtype)
    arr = np.asarray(arr)
    big = float(np.finfo(dtype).max)
    if arr.size and np.issubdtype(arr.dtype, np.number) and float(np.max(np.abs(arr))) > big:
        raise ValueError(f"{name} overflows {dtype.name}: magnitudes must be <= {big:.6g}")
    return np.ascontiguousarray(arr, dtype=dtype)


def as_param_array(value: Any, n: int, name: str, *, nonneg: bool = False, integer: bool = False) -> np.ndarray:
    """A neuron parameter: scalar or one value per neuron, broadcast to ``n`` values (float64 / int32)."""
    arr = as_real_array(value, name)
    if arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] != n):
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got shape {arr.shape}")
    arr = np.broadcast_to(arr, (n,))
    if nonneg and np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0, got min {arr.min()}")
    if integer:
        if np.issubdtype(arr.dtype, np.floating) and np.any(arr != np.round(arr)):
            raise ValueError(f"{name} must hold whole numbers of steps")
        if np.any(np.abs(arr) > 2**31 - 1):
            raise ValueError(f"{name} must fit in 32 bits")
        return np.ascontiguousarray(arr, dtype=np.int32)
    if np.any(np.abs(arr) > 1e30):
        raise ValueError(f"{name} must have magnitude <= 1e30")
    return np.ascontiguousarray(arr, dtype=np.float64)


def available_memory() -> int | None:
    """Bytes of memory the process can still use (Linux MemAvailable; else physical memory; None if
    unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import os

        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(nbytes: float, what: str) -> None:
    """MemoryError naming ``what`` when ``nbytes`` exceed the memory available. Linux overcommits, so
    an allocation that cannot be backed would otherwise succeed and the process be killed later."""
    if nbytes < 2**26:  # small requests: not worth reading /proc/meminfo on every run
        return
    avail = available_memory()
    if avail is not None and nbytes > avail:
        raise MemoryError(f"{what} needs {nbytes / 2**30:.3g} GiB, more than the {avail / 2**30:.3g} GiB "
                          "of memory available")
