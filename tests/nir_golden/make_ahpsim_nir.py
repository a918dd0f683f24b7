"""Writes a recurrent LIF network built with ahpsim (8 inputs, 12 LIF neurons, reset to zero, one-step
recurrent synapses, decay 0.875 per step) as NIR files for the peers' importers:

* ``ahpsim_rlif.nir``: ``to_nir(net)`` at dt = 1e-4 s, the step snnTorch's importer assumes;
* ``ahpsim_rlif_unit_r.nir``: ``to_nir(net, unit_r=True)`` at dt = 1e-3 s (Norse's default step; its
  importer ignores ``r``).

``generate_snntorch.py`` and ``generate_norse.py`` (run in an environment with those frameworks) read
them back. Run from the repository root:

    PYTHONPATH=python python tests/nir_golden/make_ahpsim_nir.py
"""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np

import ahpsim
from ahpsim.nir import to_nir

HERE = Path(__file__).resolve().parent
DT = 1e-4
BETA = 0.875  # the decay per step, as snnTorch's beta


def build(dt: float = DT) -> ahpsim.Network:
    rng = np.random.default_rng(11)
    net = ahpsim.Network(dt=dt, dtype="float64", seed=0)
    x = net.add_input(8, name="input")
    lif = net.add_population(12, ahpsim.LIF(tau_m=-dt / np.log(BETA), v_th=1.0, reset="zero"), name="lif")
    # weights on a 2**-6 grid: every sum of them is exact in float64
    net.connect(x, lif, np.round(rng.normal(0.2, 0.35, (12, 8)) * 64) / 64)
    net.connect(lif, lif, np.round(rng.normal(0.0, 0.4, (12, 12)) * 64) / 64 * (1 - np.eye(12)), delay=1)
    return net


if __name__ == "__main__":
    nir.write(HERE / "ahpsim_rlif.nir", to_nir(build(), dt=DT))
    nir.write(HERE / "ahpsim_rlif_unit_r.nir", to_nir(build(1e-3), dt=1e-3, unit_r=True))
    print("wrote", HERE / "ahpsim_rlif.nir", HERE / "ahpsim_rlif_unit_r.nir")
