"""Editable connectivity: ``connect`` returns a Projection whose weights and delays can be read and set.
Reference: a network built afresh with the edited values gives bit-identical spikes."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import ahpsim


def _build(W_in, W_rec, D_rec, dtype="float64"):
    net = ahpsim.Network(dtype=dtype, seed=0)
    x = net.add_input(W_in.shape[1], name="x")
    pop = net.add_population(W_in.shape[0], ahpsim.AHP(tau_m=10.0, tau_ahp=50.0, beta=0.05), name="pop")
    p_in = net.connect(x, pop, W_in)
    p_rec = net.connect(pop, pop, W_rec, delay=D_rec)
    return net, p_in, p_rec


def _data(seed=0, n=30, m=12):
    rng = np.random.default_rng(seed)
    W_in = rng.normal(0.4, 0.3, (n, m)) * (rng.random((n, m)) < 0.7)
    W_rec = rng.normal(0, 0.3, (n, n)) * (rng.random((n, n)) < 0.6)  # at least half full: dense rows
    D_rec = rng.integers(1, 6, (n, n))
    X = rng.random((3, 120, m)) < 0.1
    return W_in, W_rec, D_rec, X


def _run(net, X):
    net.reset_state()
    return net.run(X.shape[1], inputs={"x": X}).raster("pop")


def test_connect_returns_a_projection_that_reads_back_what_was_given():
    W_in, W_rec, D_rec, _ = _data()
    net, p_in, p_rec = _build(W_in, W_rec, D_rec)
    assert isinstance(p_rec, ahpsim.Projection) and p_rec.index == 1 and len(p_rec) == np.count_nonzero(W_rec)
    assert p_rec.source.name == p_rec.target.name == "pop"
    np.testing.assert_array_equal(p_rec.to_dense(), W_rec)
    D = np.zeros_like(D_rec)
    D[p_rec.post.astype(int), p_rec.pre.astype(int)] = p_rec.delays
    np.testing.assert_array_equal(D, np.where(W_rec != 0, D_rec, 0))
    assert net.projection_arrays(p_rec)[2].shape == (len(p_rec),)  # a Projection is its index
    assert "2 synapses" not in repr(p_rec) and "'pop' -> 'pop'" in repr(p_rec)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_edited_weights_equal_a_fresh_build(dtype):
    W_in, W_rec, D_rec, X = _data(1)
    net, p_in, p_rec = _build(W_in, W_rec, D_rec, dtype)
    before = _run(net, X)
    rng = np.random.default_rng(7)
    new_rec = np.where(W_rec != 0, rng.normal(0, 0.5, W_rec.shape), 0.0)
    p_rec.weights = new_rec[p_rec.post.astype(int), p_rec.pre.astype(int)]
    p_in.weights = 0.5  # a scalar: every synapse
    after = _run(net, X)
    ref_net, _, _ = _build(np.where(W_in != 0, 0.5, 0.0), new_rec, D_rec, dtype)
    np.testing.assert_array_equal(after, _run(ref_net, X))
    assert not np.array_equal(before, after)


def test_edited_delays_equal_a_fresh_build():
    W_in, W_rec, D_rec, X = _data(2)
    net, _, p_rec = _build(W_in, W_rec, D_rec)
    new_D = np.random.default_rng(3).integers(1, 9, D_rec.shape)
    p_rec.delays = new_D[p_rec.post.astype(int), p_rec.pre.astype(int)]
    ref_net, _, _ = _build(W_in, W_rec, new_D)
    np.testing.assert_array_equal(_run(net, X), _run(ref_net, X))
    np.testing.assert_array_equal(p_rec.to_dense(), W_rec)  # the weights moved with their synapses


def test_homogeneous_projection_becomes_heterogeneous():
    net = ahpsim.Network(dtype="float64", seed=4)
    x = net.add_input(20, name="x")
    pop = net.add_population(40, ahpsim.LIF(tau_m=10.0), name="pop")
    p = net.connect_random(x, pop, indegree=5, weight=0.3, seed=1)
    assert net.projections()[0]["homogeneous_weight"]
    w = np.linspace(0.1, 1.0, len(p))
    p.weights = w
    assert not net.projections()[0]["homogeneous_weight"]
    np.testing.assert_array_equal(p.weights, w)
    ref = ahpsim.Network(dtype="float64", seed=4)
    rx = ref.add_input(20, name="x")
    rp = ref.add_population(40, ahpsim.LIF(tau_m=10.0), name="pop")
    ref.connect(rx, rp, weights=w, pre=p.pre, post=p.post, delay=p.delays)
    X = np.random.default_rng(5).random((2, 80, 20)) < 0.2
    np.testing.assert_array_equal(_run(net, X), _run(ref, X))


def test_edits_survive_save_and_pickle(tmp_path):
    W_in, W_rec, D_rec, X = _data(3)
    net, p_in, p_rec = _build(W_in, W_rec, D_rec)
    p_rec.weights = p_rec.weights * -1.5
    p_rec.delays = 2
    expected = _run(net, X)
    net.save(tmp_path / "n.npz")
    for other in (ahpsim.load_network(tmp_path / "n.npz"), pickle.loads(pickle.dumps(net))):
        np.testing.assert_array_equal(_run(other, X), expected)


def test_bad_edits_raise_clear_errors():
    W_in, W_rec, D_rec, X = _data(4)
    net, p_in, p_rec = _build(W_in, W_rec, D_rec)
    n = len(p_rec)
    with pytest.raises(ValueError, match=rf"weights must be a scalar or have one value per synapse \({n}\)"):
        p_rec.weights = np.ones(n + 1)
    with pytest.raises(ValueError, match="weights"):
        p_rec.weights = np.full(n, np.nan)
    with pytest.raises(ValueError, match=r"delay must be in \[1, 4096\] steps between spiking neurons"):
        p_rec.delays = 0
    p_in.delays = 0  # allowed from an input group
    with pytest.raises(ValueError, match="whole steps"):
        p_rec.delays = 1.5
    net.run(5, inputs={"x": X[:, :5]})
    with pytest.raises(RuntimeError, match="cannot change delays while the network holds simulation state"):
        p_rec.delays = 3
    p_rec.weights = 0.0  # weights may change between runs
    net.run(5, inputs={"x": X[:, :5]})
    with pytest.raises(ValueError, match="k must be <="):
        net.projection(5)
    assert net.projection(1).index == 1
