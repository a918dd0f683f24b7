"""Golden spikes of Norse for the NIR interoperability test (``tests/test_nir_peers.py``): Norse's NIR
importer (``norse.torch.from_nir``, dt = 1e-3) reads ``ahpsim_rlif_unit_r.nir`` (written by
``make_ahpsim_nir.py``) and runs it on the input raster of ``snntorch_golden.npz``; the spikes go to
``norse_golden.npz``. Run in an environment with Norse 1.1 and nir (the benchmarks' ``.venv-peers``)
from the repository root:

    .venv-peers/bin/python tests/nir_golden/generate_norse.py
"""

from __future__ import annotations

from pathlib import Path

import nir
import norse
import numpy as np
import torch

HERE = Path(__file__).resolve().parent


def main():
    x = np.load(HERE / "snntorch_golden.npz")["x"]
    module = norse.torch.from_nir(nir.read(HERE / "ahpsim_rlif_unit_r.nir"), dt=1e-3)
    state, out = None, []
    with torch.no_grad():
        for t in range(x.shape[0]):
            z, state = module(torch.as_tensor(x[t:t + 1], dtype=torch.float32), state)
            out.append(z.reshape(-1).numpy() > 0)
    spikes = np.array(out)
    np.savez_compressed(HERE / "norse_golden.npz", spikes_norse_import=spikes, norse=norse.__version__)
    print(f"Norse {norse.__version__}: {spikes.sum()} spikes")


if __name__ == "__main__":
    main()
