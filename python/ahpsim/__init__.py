"""ahpsim: event-driven simulation and training of sparse-firing recurrent spiking networks with
after-hyperpolarizing (AHP) currents (Rao, Plank, Wild & Maass, Nature Machine Intelligence 2022).

Submodules loaded on first use: ``ahpsim.datasets`` (data sets), ``ahpsim.loihi`` (Loihi fixed-point
emulation), ``ahpsim.torch`` (PyTorch training; needs torch).
"""

from __future__ import annotations

import importlib
from typing import Any

from . import _core
from .models import AHP, ALIF, LIF, NeuronModel, Readout
from .network import Group, Network, Projection, RunInterrupted, load_network
from .result import SimResult

__version__: str = _core.__version__

__all__ = [
    "AHP",
    "ALIF",
    "LIF",
    "Group",
    "Projection",
    "Network",
    "NeuronModel",
    "Readout",
    "RunInterrupted",
    "SimResult",
    "__version__",
    "load_network",
]

_LAZY = ("datasets", "loihi", "torch", "energy", "demo", "plot", "nir", "examples", "relnet", "distributed")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'ahpsim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
