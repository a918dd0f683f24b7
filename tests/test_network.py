"""Delays, continuation, store/restore, batching, threads, input forms and Poisson sources."""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.stats as st

import ahpsim


def chain(delay, dtype="float64"):
    net = ahpsim.Network(dtype=dtype)
    x = net.add_input(1, "x")
    a = net.add_population(1, ahpsim.LIF(tau_m=0.0, v_th=0.5), "a")
    b = net.add_population(1, ahpsim.LIF(tau_m=0.0, v_th=10.0), "b")
    net.connect(x, a, np.ones((1, 1)))
    net.connect(a, b, np.array([[3.0]]), delay=delay)
    return net, a, b


@pytest.mark.parametrize("delay", [1, 2, 7, 63, 300])
def test_delay_is_exact(delay):
    net, a, b = chain(delay)
    T = delay + 20
    res = net.run(T, {"x": ([4], [0])}, record_state=[b])
    assert res.spikes(0, a)[0].tolist() == [4]
    vb = res.state("v", b)[0, :, 0]
    assert np.flatnonzero(vb).tolist() == [4 + delay]  # tau_m 0: v is exactly this step's input
    assert vb[4 + delay] == 3.0


def random_net(seed=3, B=None, drive=True, n=200):
    rng = np.random.default_rng(seed)
    net = ahpsim.Network(seed=seed)
    x = net.add_input(10, "x")
    e = net.add_population(n, ahpsim.AHP(tau_ahp=200.0, beta=0.3), "e")
    i = net.add_population(n // 4, ahpsim.LIF(n_ref=2), "i")
    o = net.add_population(3, ahpsim.Readout(tau=10.0), "o")
    net.connect(x, e, rng.normal(0, 1, (n, 10)) * (rng.random((n, 10)) < 0.3))
    net.connect(e, e, rng.normal(0.05, 0.2, (n, n)) * (rng.random((n, n)) < 0.1), delay=rng.integers(1, 5, (n, n)))
    net.connect(e, i, rng.random((n // 4, n)) * 0.3 * (rng.random((n // 4, n)) < 0.2), delay=2)
    net.connect(i, e, -rng.random((n, n // 4)) * 0.5 * (rng.random((n, n // 4)) < 0.2), delay=1)
    net.connect(e, o, rng.normal(0, 0.1, (3, n)), delay=0)
    if drive:
        net.add_poisson_drive(e, rate=2000.0, weight=0.08)
    return net


def inputs(T, B=None, seed=0):
    rng = np.random.default_rng(seed)
    shape = (T, 10) if B is None else (B, T, 10)
    return {"x": (rng.random(shape) < 0.05).astype(np.float32)}


def same(r1, r2):
    assert r1.n_trials == r2.n_trials
    for b in range(r1.n_trials):
        for u, v in zip(r1.spikes(b), r2.spikes(b)):
            np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(r1.readout(), r2.readout())


def concat(r1, r2):
    class R:  # minimal view of two consecutive results as one
        n_trials = r1.n_trials

        def spikes(self, b):
            return tuple(np.concatenate([a, c]) for a, c in zip(r1.spikes(b), r2.spikes(b)))

        def readout(self):
            return np.concatenate([r1.readout(), r2.readout()], axis=1)
    return R()


def test_run_continues_exactly():
    inp = inputs(200, B=3)
    full = random_net().run(200, inp)
    assert sum(full.spikes(b)[0].size for b in range(3)) > 500
    net = random_net()
    r1 = net.run(100, {"x": inp["x"][:, :100]})
    r2 = net.run(100, {"x": inp["x"][:, 100:]})
    assert net.t == 200 and r2.t0 == 100
    same(full, concat(r1, r2))


def test_store_restore_is_exact():
    net = random_net()
    inp = inputs(150, B=2)
    net.run(50, {"x": inp["x"][:, :50]})
    net.store("mid")
    a = net.run(100, {"x": inp["x"][:, 50:]})
    net.restore("mid")
    assert net.t == 50
    b = net.run(100, {"x": inp["x"][:, 50:]})
    same(a, b)
    with pytest.raises(KeyError, match="no stored state named 'nope'"):
        net.restore("nope")


def test_reset_state_keeps_connectivity():
    net = random_net()
    a = net.run(100, inputs(100))
    net.reset_state()
    assert net.t == 0 and net.n_trials == 0
    b = net.run(100, inputs(100))
    same(a, b)


@pytest.mark.parametrize("n_threads", [2, 3, 8])
def test_threads_do_not_change_results(n_threads):
    inp = inputs(200, B=7)
    a = random_net().run(200, inp, n_threads=1)
    b = random_net().run(200, inp, n_threads=n_threads)
    same(a, b)


def test_batched_trial_equals_single_run():
    inp = inputs(120, B=4, seed=5)
    batch = random_net(drive=False).run(120, inp)
    for b in range(4):
        single = random_net(drive=False).run(120, {"x": inp["x"][b]})
        for u, v in zip(single.spikes(0), batch.spikes(b)):
            np.testing.assert_array_equal(u, v)


def test_trials_differ_with_poisson_drive_and_seed_matters():
    r = random_net().run(100, n_trials=2)
    assert not np.array_equal(r.raster()[0], r.raster()[1])
    r2 = random_net(seed=4).run(100, n_trials=2)
    assert r2.raster().sum() != r.raster().sum() or not np.array_equal(r2.raster(), r.raster())


def test_connection_forms_agree():
    rng = np.random.default_rng(0)
    W = rng.normal(0, 1, (30, 40)) * (rng.random((30, 40)) < 0.2)
    D = rng.integers(1, 4, W.shape)
    post, pre = np.nonzero(W)

    def make(form):
        net = ahpsim.Network(dtype="float64")
        x = net.add_input(40, "x")
        a = net.add_population(40, ahpsim.LIF(tau_m=0.0, v_th=0.5), "a")
        b = net.add_population(30, ahpsim.Readout(tau=0.0), "b")
        net.connect(x, a, np.eye(40))
        if form == "dense":
            net.connect(a, b, W, delay=D)
        elif form == "list":
            net.connect(a, b, W[post, pre], pre=pre, post=post, delay=D[post, pre])
        else:
            for d in (1, 2, 3):
                net.connect(a, b, sp.csr_matrix(np.where(D == d, W, 0.0)), delay=d)
        return net.run(30, {"x": (rng.random((30, 40)) < 0.3)}).readout(b)

    rng = np.random.default_rng(1)
    dense = make("dense")
    rng = np.random.default_rng(1)
    lst = make("list")
    rng = np.random.default_rng(1)
    sparse = make("sparse")
    np.testing.assert_allclose(dense, lst, atol=1e-12)
    np.testing.assert_allclose(dense, sparse, atol=1e-12)
    assert np.abs(dense).sum() > 0


def test_projection_arrays_round_trip():
    rng = np.random.default_rng(2)
    W = rng.normal(0, 1, (20, 25)) * (rng.random((20, 25)) < 0.3)
    D = rng.integers(1, 5, W.shape)
    net = ahpsim.Network(dtype="float64")
    a = net.add_population(25, ahpsim.LIF(), "a")
    b = net.add_population(20, ahpsim.LIF(), "b")
    k = net.connect(a, b, W, delay=D)
    pre, post, w, d = net.projection_arrays(k)
    W2 = np.zeros_like(W)
    D2 = np.zeros_like(D)
    W2[post, pre] = w
    D2[post, pre] = d
    np.testing.assert_array_equal(W2, W)
    np.testing.assert_array_equal(D2[W != 0], D[W != 0])
    assert np.all(np.diff(pre.astype(int)) >= 0)  # grouped by source


@pytest.mark.parametrize("lam", [0.02, 3.7, 30.0])  # compare-and-count sampling; 30: guide-table lookup
def test_poisson_drive_counts_follow_poisson_distribution(lam):
    net = ahpsim.Network(dtype="float64", seed=11)
    o = net.add_population(50, ahpsim.Readout(tau=0.0), "o")  # tau 0: y[t] = this step's input
    net.add_poisson_drive(o, rate=lam * 1000.0, weight=1.0)
    y = net.run(2000, n_trials=2).readout(o)
    counts = y.reshape(-1)
    assert np.all(counts == np.round(counts))
    assert abs(counts.mean() - lam) < 4 * np.sqrt(lam / counts.size)
    # neighbouring neurons draw from the halves of one 64-bit word of one of four streams: uncorrelated
    c = np.corrcoef(y[0].T[:16])
    assert np.abs(c[np.triu_indices(16, 1)]).max() < 5 / np.sqrt(y.shape[1])
    lo, hi = int(st.poisson.ppf(1e-3, lam)), int(st.poisson.isf(1e-3, lam)) + 1
    k = np.arange(lo, hi + 1)
    observed = np.array([(counts <= k[0]).sum()] + [(counts == kk).sum() for kk in k[1:-1]] + [(counts >= k[-1]).sum()])
    expected = np.r_[st.poisson.cdf(k[0], lam), st.poisson.pmf(k[1:-1], lam), st.poisson.sf(k[-2], lam)] * counts.size
    chi2 = ((observed - expected) ** 2 / expected).sum()
    assert st.chi2.sf(chi2, len(k) - 1) > 1e-4


def test_poisson_drive_avx2_and_portable_paths_agree():
    """The drive's AVX2 path and its portable path (AHPSIM_DISABLE_AVX2) give the same spikes."""
    code = """
import hashlib, numpy as np, ahpsim
net = ahpsim.Network(seed=5)
e = net.add_population(1003, ahpsim.LIF(tau_m=20.0, v_th=20.0, n_ref=2, reset="zero"), "e")
net.connect_random(e, e, indegree=50, weight=0.3, delay=2, seed=1)
net.add_poisson_drive(e, rate=2500.0, weight=0.5)
o = net.add_population(21, ahpsim.Readout(tau=0.0), "o")
net.add_poisson_drive(o, rate=40000.0, weight=1.0)
r = net.run(300, n_trials=2)
print(hashlib.sha1(r.raster(e).tobytes() + r.readout(o).tobytes()).hexdigest(), int(r.raster(e).sum()))
"""
    import os
    import subprocess
    import sys

    outs = []
    for disable in (False, True):
        env = dict(os.environ)
        env.pop("AHPSIM_DISABLE_AVX2", None)
        if disable:
            env["AHPSIM_DISABLE_AVX2"] = "1"
        outs.append(subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True,
                                   text=True).stdout.split())
    assert int(outs[0][1]) > 1000
    assert outs[0] == outs[1]


def test_poisson_input_group_rate():
    net = ahpsim.Network(seed=2)
    x = net.add_input(100, "x", rate=50.0)
    o = net.add_population(100, ahpsim.Readout(tau=0.0), "o")
    net.connect(x, o, np.eye(100))
    y = net.run(2000).readout(o)
    p = 50.0 / 1000.0
    assert set(np.unique(y)) <= {0.0, 1.0}
    assert abs(y.mean() - p) < 4 * np.sqrt(p * (1 - p) / y.size)


def test_initial_state_per_trial():
    net = ahpsim.Network(dtype="float64")
    a = net.add_population(2, ahpsim.LIF(tau_m=10.0, v_th=5.0), "a")
    net.init_state(3)
    v0 = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    net.set_state("v", v0, a)
    res = net.run(1, record_state=[a])
    np.testing.assert_allclose(res.state("v", a)[:, 0, :], v0 * np.exp(-0.1))
    np.testing.assert_allclose(net.get_state("v", a), v0 * np.exp(-0.1))


def test_connect_random_fixed_indegree():
    net = ahpsim.Network(seed=1)
    a = net.add_population(500, ahpsim.LIF(), "a")
    net.connect_random(a, a, indegree=50, weight=0.1, delay=2)
    assert net.n_synapses == 500 * 50
    pre, post, w, d = net.projection_arrays(0)
    np.testing.assert_array_equal(np.bincount(post, minlength=500), np.full(500, 50))
    assert not np.any(pre == post)
    assert np.all(w == np.float32(0.1)) and np.all(d == 2)
    assert net.synapse_bytes / net.n_synapses < 9


def test_progress_run_equals_plain_run():
    inp = inputs(250, B=2)
    a = random_net(drive=False).run(250, inp)
    b = random_net(drive=False).run(250, inp, progress=True)
    same(a, b)


def test_counters_count_synaptic_events():
    net = ahpsim.Network()
    x = net.add_input(1, "x")
    a = net.add_population(1, ahpsim.LIF(tau_m=0.0, v_th=0.5), "a")
    b = net.add_population(7, ahpsim.LIF(v_th=100.0), "b")
    net.connect(x, a, np.ones((1, 1)))
    net.connect(a, b, np.ones((7, 1)))
    net.run(10, {"x": ([1, 3, 5], [0, 0, 0])})
    c = net.counters()
    assert c["spikes"] == 3 and c["syn_events"] == 21 and c["input_events"] == 3
    assert c["neuron_updates"] == 80


def big_net(seed=5):
    rng = np.random.default_rng(seed)
    net = ahpsim.Network(seed=seed)
    x = net.add_input(20, "x", rate=30.0)
    a = net.add_population(2500, ahpsim.AHP(tau_ahp=100.0, beta=0.2), "a")
    l = net.add_population(1700, ahpsim.ALIF(n_ref=1), "l")
    o = net.add_population(4, ahpsim.Readout(), "o")
    net.connect(x, a, rng.normal(0.3, 0.3, (2500, 20)) * (rng.random((2500, 20)) < 0.2))
    net.connect_random(a, l, indegree=40, weight=0.05, delay=3)
    net.connect_random(l, a, indegree=30, weight=-0.04, delay=1)
    net.connect_random(a, a, indegree=20, weight=0.03, delay=2)
    net.connect(l, o, rng.normal(0, 0.1, (4, 1700)), delay=0)
    net.add_poisson_drive(a, rate=800.0, weight=0.3)
    net.add_poisson_drive(l, rate=1500.0, weight=0.3)
    return net


@pytest.mark.parametrize("n_threads", [2, 3, 5])
def test_one_trial_split_over_threads_is_identical(n_threads):
    a = big_net().run(150, n_threads=1, record_state={"a": [0, 1500, 2499], "l": [3]})
    b = big_net().run(150, n_threads=n_threads, record_state={"a": [0, 1500, 2499], "l": [3]})
    assert a.spikes(0)[0].size > 1000
    same(a, b)
    np.testing.assert_array_equal(a.state("v"), b.state("v"))
    np.testing.assert_array_equal(a.state("aux"), b.state("aux"))


def test_save_and_load_network_round_trip(tmp_path):
    net = random_net(drive=True)
    path = tmp_path / "net.npz"
    net.save(path)
    assert not list(tmp_path.glob("*.tmp*"))
    again = ahpsim.load_network(path)
    assert again.n_synapses == net.n_synapses and again.n_neurons == net.n_neurons
    inp = inputs(120, B=2)
    same(net.run(120, inp), again.run(120, inp))
    with pytest.raises(FileNotFoundError, match="no network file"):
        ahpsim.load_network(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable ahpsim network file"):
        ahpsim.load_network(tmp_path / "bad.npz")


def test_dense_rows_split_over_threads_are_identical():
    rng = np.random.default_rng(9)

    def make():
        net = ahpsim.Network(seed=1)
        x = net.add_input(30, "x")
        a = net.add_population(3000, ahpsim.AHP(tau_ahp=50.0, beta=0.3), "a")
        o = net.add_population(5, ahpsim.Readout(), "o")
        r = np.random.default_rng(9)
        net.connect(x, a, r.normal(0.2, 0.5, (3000, 30)))  # full: dense rows, split over threads
        net.connect(a, a, r.normal(0.0, 0.05, (3000, 3000)) * (r.random((3000, 3000)) < 0.6), delay=2)
        net.connect(a, o, r.normal(0, 0.1, (5, 3000)), delay=0)
        return net

    net = make()
    assert all(p["dense_rows"] for p in net.projections())
    x = (rng.random((80, 30)) < 0.2) * rng.random((80, 30))
    r1 = net.run(inputs={"x": x}, n_threads=1)
    r3 = make().run(inputs={"x": x}, n_threads=3)
    assert r1.spikes(0)[0].size > 500
    same(r1, r3)


def test_summary_lists_every_group_and_projection():
    net = random_net()
    text = net.summary()
    assert f"{net.n_synapses} synapses" in text
    for name in ("x", "e", "i", "o"):
        assert f" {name} " in text
    assert text.count("projection ") == len(net.projections()) == 5
    assert "Poisson 2000.0 Hz" in text and "AHP(" in text and "tau_ahp=200" in text


def test_dense_and_event_inputs_give_identical_runs():
    rng = np.random.default_rng(4)
    x = (rng.random((3, 90, 10)) < 0.1) * rng.normal(1.0, 0.5, (3, 90, 10))
    events = [tuple(np.nonzero(x[b])) + (x[b][np.nonzero(x[b])],) for b in range(3)]
    spikes = x != 0
    spike_events = [tuple(np.nonzero(spikes[b])) for b in range(3)]
    a = random_net(drive=False).run(inputs={"x": x})
    b = random_net(drive=False).run(90, {"x": events})
    same(a, b)
    c = random_net(drive=False).run(inputs={"x": spikes}, progress=True)  # chunked dense input
    d = random_net(drive=False).run(90, {"x": spike_events})
    same(c, d)
    assert a.spikes(0)[0].size != c.spikes(0)[0].size or not np.array_equal(a.readout(), c.readout())


def test_networks_pickle_and_deepcopy_with_their_state():
    """pickle / copy.deepcopy carry the structure, the state (voltages, AHP currents, pending delayed
    spikes, random streams of Poisson inputs and drives, t, counters) and stored states: the copy and
    the original continue with identical spikes (multiprocessing, joblib and Dask need this)."""
    import copy
    import pickle

    net = ahpsim.Network(dtype="float64", seed=3)
    x = net.add_input(20, name="x", rate=30.0)
    a = net.add_population(50, ahpsim.AHP(beta=0.1), name="a")
    b = net.add_population(30, ahpsim.LIF(n_ref=2), name="b")
    rng = np.random.default_rng(1)
    net.connect(x, a, rng.normal(0.4, 0.2, (50, 20)))
    net.connect(a, b, rng.normal(0.3, 0.3, (30, 50)), delay=rng.integers(1, 6, (30, 50)))
    net.add_poisson_drive(b, 200.0, 0.2)
    net.run(137, n_trials=3)
    net.store("mid")
    for clone in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        assert clone.t == net.t and clone.counters() == net.counters()
        np.testing.assert_array_equal(clone.get_state("aux", "a"), net.get_state("aux", "a"))
        r1, r2 = net.run(200), clone.run(200)
        for g in ("a", "b"):
            np.testing.assert_array_equal(r1.raster(g), r2.raster(g))
        assert r1.raster("b").sum() > 50
        net.restore("mid")
        clone.restore("mid")  # stored states travel too
        np.testing.assert_array_equal(net.run(50).raster("a"), clone.run(50).raster("a"))
        net.restore("mid")
    fresh = pickle.loads(pickle.dumps(ahpsim.Network()))  # no state: fine too
    assert fresh.n_trials == 0
    for clone in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):  # its groups are its own
        res = clone.run(5, record_state=clone.populations[0])
        assert res.state("v", clone["a"]).shape == (3, 5, 50)
        clone.reset_state()
        clone.connect(clone["x"], clone["b"], np.ones((30, 20)))
        with pytest.raises(ValueError, match="does not belong to this network"):
            clone.run(1, record_state=net["a"])
    snap = net._engine.snapshot()
    state = snap.__getstate__()
    bad = (state[0], state[1], state[2], state[3], state[4], [tuple([b"\x00"] + list(state[5][0][1:]))])
    with pytest.raises(ValueError, match="snapshot: v has 1 bytes, expected 640"):
        type(snap).__new__(type(snap)).__setstate__(bad)


def test_an_interrupted_run_keeps_what_it_simulated():
    """Ctrl-C between chunks of a long run raises RunInterrupted carrying the spikes simulated so far; the
    network stands at that step, and they equal the first steps of an uninterrupted run."""
    def build():
        net = ahpsim.Network(seed=1)
        x = net.add_input(10, name="x", rate=50.0)
        a = net.add_population(40, ahpsim.AHP(beta=0.1), name="a")
        net.connect(x, a, np.random.default_rng(0).normal(0.6, 0.2, (40, 10)))
        return net

    ref = build().run(300, n_trials=2)

    class Interrupting:
        def __init__(self, engine):
            self.engine, self.calls = engine, 0

        def __getattr__(self, name):
            return getattr(self.engine, name)

        def run(self, *a):
            self.calls += 1
            if self.calls == 4:
                raise KeyboardInterrupt
            return self.engine.run(*a)

    net = build()
    net._engine = Interrupting(net._engine)
    with pytest.raises(ahpsim.RunInterrupted) as info:
        net.run(300, n_trials=2, progress=True)  # 100 chunks of 3 steps
    e = info.value
    assert e.t == 9 and e.t_end == 300 and net.t == 9 and "interrupted at step 9 of 300" in str(e)
    np.testing.assert_array_equal(e.result.raster("a"), ref.raster("a")[:, :9])
    rest = net.run(291)  # continues from step 9
    np.testing.assert_array_equal(rest.raster("a"), ref.raster("a")[:, 9:])
