"""Networks run over MPI processes by tests/test_mpi.py (``mpiexec -n K python tests/mpi_networks.py NAME
OUT``) and, for the reference, in one process: the same builder, with ``comm`` or without."""

from __future__ import annotations

import sys

import numpy as np

import ahpsim


def brunel(comm=None, n_threads: int = 1) -> tuple[ahpsim.Network, dict]:
    """Brunel's network (NE = 2,400, NI = 600: three blocks of 1,024 neurons) with random connectivity,
    delays of 3 and 5 steps, a Poisson drive and a Poisson input group with delays 0-6, 2 trials."""
    net = ahpsim.Network(dt=0.1, seed=7, n_threads=n_threads, comm=comm)
    lif = ahpsim.LIF(tau_m=20.0, v_th=20.0, n_ref=20, bias=0.0)
    E = net.add_population(2400, lif, "E")
    I = net.add_population(600, lif, "I")
    x = net.add_input(50, "x", rate=40.0)
    J, g = 0.1, 5.0
    for src, w, d in ((E, J, 15), (I, -g * J, 30)):
        net.connect_random(src, E, indegree=240 if src is E else 60, weight=w, delay=d)
        net.connect_random(src, I, indegree=240 if src is E else 60, weight=w, delay=d)
    rng = np.random.default_rng(3)
    W = np.where(rng.random((3000, 50)) < 0.05, 0.5, 0.0)
    D = rng.integers(0, 7, (3000, 50))
    net.connect(x, E, W[:2400], D[:2400])
    net.connect(x, I, W[2400:], D[2400:])
    net.add_poisson_drive(E, rate=20000.0, weight=0.11)
    net.add_poisson_drive(I, rate=20000.0, weight=0.11)
    return net, {"T": 600, "n_trials": 2}


def ahp(comm=None, n_threads: int = 1) -> tuple[ahpsim.Network, dict]:
    """LIF + AHP neurons (2,100: three blocks) with recurrent weights of one-step delays and an input
    group whose events reach them with delays 1-4 (deferred and replayed at every exchange)."""
    net = ahpsim.Network(dt=1.0, seed=11, n_threads=n_threads, comm=comm)
    L = net.add_population(1300, ahpsim.LIF(tau_m=20.0, v_th=1.0), "lif")
    A = net.add_population(800, ahpsim.AHP(tau_m=20.0, v_th=1.0, tau_ahp=500.0, beta=0.3), "ahp")
    x = net.add_input(40, "x")
    rng = np.random.default_rng(5)
    for src in (L, A):
        for tgt in (L, A):
            W = np.where(rng.random((tgt.n, src.n)) < 0.02, rng.normal(0.0, 0.35, (tgt.n, src.n)), 0.0)
            if (src, tgt) != (L, A):
                net.connect(src, tgt, W, 1)
                continue
            # a connection list; with comm each process passes only the synapses onto its own neurons
            post, pre = np.nonzero(W)
            if comm is not None:
                lo, hi = net.partition
                mine = (tgt.start + post >= lo) & (tgt.start + post < hi)
                post, pre = post[mine], pre[mine]
            net.connect(src, tgt, weights=W[post, pre], pre=pre, post=post, delay=1)
    for tgt in (L, A):
        W = np.where(rng.random((tgt.n, 40)) < 0.3, rng.uniform(0.2, 0.9, (tgt.n, 40)), 0.0)
        net.connect(x, tgt, W, rng.integers(1, 5, (tgt.n, 40)))
    X = rng.random((3, 300, 40)) < 0.05
    return net, {"inputs": {"x": X}}


BUILDERS = {"brunel": brunel, "ahp": ahp}


def run(name: str, comm=None, n_threads: int = 1, **run_kw) -> tuple[list[tuple[np.ndarray, np.ndarray]], dict]:
    """(spikes of every trial, counters) of network ``name``, built and run with or without ``comm``."""
    net, kw = BUILDERS[name](comm, n_threads)
    r = net.run(**kw, **run_kw)
    spikes = [r.spikes(b) for b in range(r.n_trials)]
    return spikes, net.counters()


if __name__ == "__main__":
    from mpi4py import MPI

    name, out = sys.argv[1], sys.argv[2]
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    files = len(sys.argv) > 4 and sys.argv[4] == "files"  # each process keeps and writes its own spikes
    comm = MPI.COMM_WORLD
    kw = {"gather_spikes": "local", "spike_file": out + ".stream"} if files else {}
    spikes, counters = run(name, comm, threads, **kw)
    if files:  # a process's own spikes only: its partition
        own = comm.gather([np.unique(i) for _, i in spikes])
        if comm.Get_rank() == 0:
            flat = [np.concatenate(r) for r in own]
            for a in range(len(flat)):
                for b in range(a + 1, len(flat)):
                    assert not np.intersect1d(flat[a], flat[b]).size, "processes hold the same neurons' spikes"
    if comm.Get_rank() == 0:
        arrays = {f"steps{b}": s for b, (s, _) in enumerate(spikes)}
        arrays.update({f"ids{b}": i for b, (_, i) in enumerate(spikes)})
        np.savez(out, **arrays, **{f"c_{k}": v for k, v in counters.items()})
