"""The shipped example network and data (the demo's and ``python -m ahpsim energy``'s inputs): the
trained sMNIST AHP network, the 200 MNIST test digits that come with it, and a random network of the
same shape. A leaf module (models and networks only), so that the demo and the accounting both use it."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np

from .models import AHP, LIF, Readout
from .network import Network, load_network

__all__ = ["build_demo_network", "load_demo_model", "load_demo_digits"]


def load_demo_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 200 MNIST test digits shipped in the package: (uint8 [200, 28, 28], int64 [200])."""
    with resources.as_file(resources.files("ahpsim") / "data" / "mnist_test_200.npz") as p:
        with np.load(p) as d:
            return d["images"].copy(), d["labels"].astype(np.int64)


def load_demo_model(n_threads: int = 2) -> tuple[Network, dict]:
    """The trained sMNIST AHP network shipped in the package, and its provenance."""
    base = resources.files("ahpsim") / "data"
    with resources.as_file(base / "smnist_ahp.npz") as p:
        net = load_network(p, n_threads=n_threads)
    with resources.as_file(base / "smnist_ahp.json") as p:
        meta = json.loads(Path(p).read_text())
    return net, meta


def build_demo_network(seed: int = 0, n_lif: int = 140, n_ahp: int = 100, n_in: int = 80) -> Network:
    """The paper's sMNIST network shape (140 LIF + 100 AHP, 80 inputs, 10 leaky outputs) with random
    sparse weights (20% connectivity) and the paper's time constants, driven by Poisson inputs."""
    rng = np.random.default_rng(seed)
    net = Network(dt=1.0, seed=seed)
    x = net.add_input(n_in, "input", rate=20.0)
    lif = net.add_population(n_lif, LIF(tau_m=20.0, v_th=1.0), "lif")
    ahp = net.add_population(n_ahp, AHP(tau_m=20.0, tau_ahp=700.0, beta=0.756 / 64, v_th=1.0), "ahp")
    out = net.add_population(10, Readout(tau=20.0), "out")
    n = n_lif + n_ahp

    def sparse(shape, scale, p=0.2):
        return rng.normal(0.0, scale, shape) * (rng.random(shape) < p)

    for g, m in ((lif, n_lif), (ahp, n_ahp)):
        net.connect(x, g, sparse((m, n_in), 0.35))
    # 60 of the LIF neurons are inhibitory, as in the paper's network
    for src, m_src in ((lif, n_lif), (ahp, n_ahp)):
        for tgt, m_tgt in ((lif, n_lif), (ahp, n_ahp)):
            W = np.abs(sparse((m_tgt, m_src), 0.25))
            if src is lif:
                W[:, :60] *= -2.0
            net.connect(src, tgt, W, delay=1)
        net.connect(src, out, sparse((10, m_src), 1.0 / np.sqrt(n), p=1.0), delay=1)
    return net
