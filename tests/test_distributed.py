"""Trials and parameter sweeps on a Dask LocalCluster (ahpsim.distributed): results in trial order,
equal to one process (random inputs and drives included, whatever the chunking), and complete when a
worker is killed mid-run."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

import ahpsim

distributed = pytest.importorskip("distributed")

from ahpsim.distributed import map_params, map_trials, readout_at_end, spike_counts  # noqa: E402


def random_network(seed: int = 5, n: int = 200) -> ahpsim.Network:
    """Recurrent LIF + AHP network with delays 1-4, a Poisson input group, a Poisson drive and a data
    input: every source of randomness a trial has."""
    rng = np.random.default_rng(seed)
    net = ahpsim.Network(seed=seed)
    noise = net.add_input(20, name="noise", rate=40.0)
    x = net.add_input(8, name="x")
    lif = net.add_population(n, ahpsim.LIF(tau_m=15.0), name="lif")
    ahp = net.add_population(n // 2, ahpsim.AHP(tau_m=15.0, tau_ahp=200.0, beta=0.05), name="ahp")
    out = net.add_population(3, ahpsim.Readout(tau=10.0), name="out")
    net.connect(noise, lif, rng.normal(0.3, 0.1, (n, 20)) * (rng.random((n, 20)) < 0.3))
    net.connect(x, ahp, rng.normal(0.4, 0.1, (n // 2, 8)))
    net.connect(lif, ahp, rng.normal(0.0, 0.2, (n // 2, n)) * (rng.random((n // 2, n)) < 0.1),
                delay=rng.integers(1, 5, (n // 2, n)))
    net.connect(ahp, lif, rng.normal(0.0, 0.2, (n, n // 2)) * (rng.random((n, n // 2)) < 0.1), delay=2)
    net.connect(lif, out, rng.normal(0, 0.1, (3, n)), delay=1)
    net.add_poisson_drive(lif, rate=200.0, weight=0.1)
    return net


def _sweep_seed(seed):
    net = random_network(seed, n=60)
    return int(net.run(100, inputs={"x": np.zeros((100, 8), bool)}).raster("lif").sum())


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


def test_chunked_trials_equal_one_process(client):
    net = random_network()
    X = np.random.default_rng(1).random((10, 150, 8)) < 0.1
    ref = net.run(inputs={"x": X})
    want_counts, want_out = spike_counts(ref), readout_at_end(ref)
    assert want_counts.sum() > 0
    got = map_trials(net, {"x": X}, fn=spike_counts, chunk_size=3, client=client)
    np.testing.assert_array_equal(got, want_counts)
    got = map_trials(net, {"x": X}, chunk_size=4, client=client)
    np.testing.assert_array_equal(got, want_out)
    # the same trials split differently, on one process: the global trial index fixes the streams
    net.reset_state()
    net.init_state(4, first_trial=6)
    np.testing.assert_array_equal(spike_counts(net.run(inputs={"x": X[6:]})), want_counts[6:])


def test_a_worker_killed_mid_run_loses_nothing(client):
    net = random_network(n=600)
    X = np.random.default_rng(2).random((16, 1500, 8)) < 0.1
    want = spike_counts(net.run(inputs={"x": X}))
    victim = sorted(client.scheduler_info()["workers"])[0]
    pid = client.run(os.getpid, workers=[victim])[victim]

    mid_run = []

    def kill():
        deadline = time.time() + 30
        while time.time() < deadline:  # once the victim is running a chunk of ours
            if any(k.startswith("ahpsim-trials") for k in client.processing(workers=[victim]).get(victim, ())):
                mid_run.append(True)
                break
            time.sleep(0.02)
        os.kill(pid, signal.SIGKILL)

    th = threading.Thread(target=kill)
    th.start()
    got = map_trials(net, {"x": X}, fn=spike_counts, chunk_size=1, client=client)
    th.join()
    np.testing.assert_array_equal(got, want)  # every trial, in order, as one process
    assert mid_run  # the worker died while it ran one of the chunks
    assert victim not in client.scheduler_info()["workers"]  # it did die (its nanny starts a new one)


def test_parameter_sweep_in_order(client):
    seeds = [3, 1, 2]
    assert map_params(_sweep_seed, seeds, client=client) == [_sweep_seed(s) for s in seeds]


def test_bad_arguments_are_named():
    net = random_network(n=20)
    with pytest.raises(ValueError, match="chunk_size must be an integer >= 1"):
        map_trials(net, {"x": np.zeros((2, 5, 8), bool)}, chunk_size=0)
    with pytest.raises(ValueError, match="inputs disagree on the number of trials"):
        map_trials(net, {"x": np.zeros((2, 5, 8), bool), "noise": np.zeros((3, 5, 20), bool)})
    with pytest.raises(ValueError, match="n_trials is required"):
        map_trials(net, {"x": np.zeros((5, 8), bool)})
    with pytest.raises(TypeError, match="net: expected an ahpsim.Network"):
        map_trials(object(), n_trials=2, T=5)
    with pytest.raises(TypeError, match="fn: expected a function"):
        map_trials(net, {"x": np.zeros((2, 5, 8), bool)}, fn=5)
    with pytest.raises(ValueError, match="the trial axis is empty"):
        map_trials(net, {"x": np.zeros((0, 5, 8), bool)})
    with pytest.raises(ValueError, match=r"T = 7 but the inputs have \[5\] steps"):
        map_trials(net, {"x": np.zeros((2, 5, 8), bool)}, T=7)
    with pytest.raises(TypeError, match="client: expected a distributed.Client"):
        map_trials(net, {"x": np.zeros((2, 5, 8), bool)}, client="tcp://head:8786")
