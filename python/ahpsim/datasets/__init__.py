"""Data sets of the paper's tasks: MNIST / sMNIST (and its Loihi spike code), spoken digits and
keywords (FSDD, Speech Commands), bAbI and UCR/UEA time series.

Every loader takes ``root`` (default ``$AHPSIM_DATA``), reads ``root/<data set>/...``, downloads
missing files from the canonical source (with checksum and progress bar) when ``download=True``
and raises :class:`MissingFileError` / :class:`ChecksumError` / :class:`CorruptFileError`
naming the file and what to do otherwise. Loaders return NumPy arrays; the PyTorch ``Dataset``
classes (``MNISTDataset``, ``FSDDDataset``, ``SpeechCommandsDataset``, ``UCRUEADataset``,
``BabiDataset``) are importable from here when torch is installed: torch is imported only when
one of them is first used, never by ``import ahpsim.datasets``. Nothing is read or fetched at import.
"""

from ._common import (
    ChecksumError,
    CorruptFileError,
    DatasetError,
    MissingFileError,
    cache_root,
    data_root,
)
from .babi import BABI_TASKS, BabiData, babi_vocabulary, load_babi, parse_babi
from .mnist import (
    load_mnist,
    mnist_permutation,
    mnist_thresholds,
    sequential_mnist,
    grey_level_encode,
    threshold_crossing_encode,
)
from .speech import (
    SPEECH_COMMANDS_CLASSES,
    crossing_encode,
    fsdd_files,
    load_fsdd,
    load_speech_commands,
    mfcc,
    mfcc_batch,
)
from .ucr import load_ucr_uea, parse_ts

__all__ = [
    # errors and locations
    "DatasetError", "MissingFileError", "ChecksumError", "CorruptFileError", "data_root", "cache_root",
    # MNIST
    "load_mnist", "sequential_mnist", "mnist_permutation", "mnist_thresholds", "threshold_crossing_encode",
    "grey_level_encode",
    # speech
    "load_fsdd", "fsdd_files", "load_speech_commands", "SPEECH_COMMANDS_CLASSES", "mfcc", "mfcc_batch",
    "crossing_encode",
    # bAbI
    "load_babi", "parse_babi", "babi_vocabulary", "BabiData", "BABI_TASKS",
    # UCR/UEA
    "load_ucr_uea", "parse_ts",
]

# PyTorch Dataset classes: resolved lazily (PEP 562) so that importing this package never needs
# torch. They are left out of __all__ so that ``from ahpsim.datasets import *`` works without it.
_TORCH_CLASSES = ("MNISTDataset", "FSDDDataset", "SpeechCommandsDataset", "UCRUEADataset", "BabiDataset")


def __getattr__(name):
    if name in _TORCH_CLASSES:
        try:
            from . import _torch
        except ImportError as exc:
            if getattr(exc, "name", None) == "torch":
                raise ImportError(f"ahpsim.datasets.{name} needs PyTorch: pip install torch "
                                  "(the load_* functions work without it and return NumPy arrays)") from exc
            raise
        return getattr(_torch, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_TORCH_CLASSES))
