"""Golden spikes of snnTorch for the NIR interoperability test (``tests/test_nir_peers.py``).

Run in an environment with snnTorch 1.0 and nir (the benchmarks' ``.venv-peers``), from the repository
root, after ``make_ahpsim_nir.py``:

    .venv-peers/bin/python tests/nir_golden/generate_snntorch.py

1. snnTorch -> NIR: a recurrent LIF network built in snnTorch (``nn.Linear`` 8 -> 12 without bias, then
   ``snn.RLeaky`` of 12 neurons, all-to-all recurrent weights, beta 0.875, threshold 1, reset to zero
   without delay, float32, weights on a 2**-6 grid) runs on a fixed input raster; its spikes are saved,
   and ``snntorch.export_nir.export_to_nir`` writes ``snntorch_rlif.nir``.
2. NIR -> snnTorch: ``snntorch.import_nir.import_from_nir`` reads ``ahpsim_rlif.nir`` (written by ahpsim)
   and runs on the same input; its spikes are saved.

Everything lands in ``snntorch_golden.npz`` (``x`` [T, 8], ``spikes_snntorch`` and
``spikes_snntorch_import`` [T, 12]).
"""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np
import snntorch as snn
import torch
from snntorch.export_nir import export_to_nir
from snntorch.import_nir import import_from_nir

HERE = Path(__file__).resolve().parent
T, N_IN, N = 300, 8, 12


class RecurrentLIF(torch.nn.Module):
    def __init__(self, w_in, w_rec):
        super().__init__()
        self.fc = torch.nn.Linear(N_IN, N, bias=False)
        self.lif = snn.RLeaky(beta=0.875, threshold=1.0, reset_mechanism="zero", reset_delay=False,
                              all_to_all=True, linear_features=N, init_hidden=True)
        with torch.no_grad():
            self.fc.weight.copy_(torch.as_tensor(w_in))
            self.lif.recurrent.weight.copy_(torch.as_tensor(w_rec))
            self.lif.recurrent.bias.zero_()

    def forward(self, x):
        return self.lif(self.fc(x))


def run(module, x):
    """Steps ``module`` through ``x`` [T, n_in] from rest; spikes [T, n] as bool."""
    for m in module.modules():
        if hasattr(m, "reset_hidden"):
            m.reset_hidden()
    out, state = [], None
    with torch.no_grad():
        for t in range(x.shape[0]):
            if getattr(module, "_nir_stateful", False):  # a graph imported by nirtorch: (output, state)
                z, state = module(x[t:t + 1], state)
            else:
                z = module(x[t:t + 1])
            out.append(z.reshape(-1).numpy() > 0)
    return np.array(out)


def main():
    rng = np.random.default_rng(5)
    w_in = np.round(rng.normal(0.2, 0.35, (N, N_IN)) * 64) / 64
    w_rec = np.round(rng.normal(0.0, 0.4, (N, N)) * 64) / 64 * (1 - np.eye(N))
    x = (rng.random((T, N_IN)) < 0.3).astype(np.float64)
    xt = torch.as_tensor(x, dtype=torch.float32)

    net = RecurrentLIF(w_in, w_rec)
    spikes = run(net, xt)
    graph = export_to_nir(net, xt[:1], ignore_dims=[0])
    nir.write(HERE / "snntorch_rlif.nir", graph)

    imported = import_from_nir(nir.read(HERE / "ahpsim_rlif.nir"))
    imported._nir_stateful = True  # nirtorch's modules take and return the recurrent state
    spikes_import = run(imported, xt)
    np.savez_compressed(HERE / "snntorch_golden.npz", x=x.astype(bool), spikes_snntorch=spikes,
                        spikes_snntorch_import=spikes_import, snntorch=snn.__version__, nir=nir.version
                        if hasattr(nir, "version") else "")
    print(f"snnTorch {snn.__version__}: {spikes.sum()} spikes; imported ahpsim graph: {spikes_import.sum()} spikes")


if __name__ == "__main__":
    main()
