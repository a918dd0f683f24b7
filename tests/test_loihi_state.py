"""LoihiNetwork is stateful like ahpsim.Network: run() continues where the last run stopped
(bit-exact, pending delayed spikes in the ring buffer and refractory counters included),
reset_state / init_state / store / restore / get_state / set_state, the float engine's run keywords
(T from the inputs, dense or event inputs, n_trials, n_threads, progress) and its result accessors."""

from __future__ import annotations

import numpy as np
import pytest

import ahpsim
from ahpsim import _core
from ahpsim.loihi import VTH_MANT_MAX, LoihiNetwork, quantize

pytestmark = pytest.mark.loihi

T, B = 240, 3
N_IN, N_LIF, N_AHP, N_OUT = 30, 25, 20, 5


def _w(rng, n_post, n_pre, density=0.25, lo=-255):
    w = rng.integers(lo, 256, size=(n_post, n_pre))
    return w * (rng.random((n_post, n_pre)) < density)


def _loihi1(seed=0):
    """Delays up to 62, refractory delays up to 5, biases and AHP neurons (ADD join)."""
    rng = np.random.default_rng(seed)
    net = LoihiNetwork(rules="loihi1")
    x = net.add_input(N_IN, name="x")
    lif = net.add_compartments(N_LIF, du=rng.integers(0, 4097, N_LIF), dv=rng.integers(100, 400, N_LIF),
                               vth_mant=rng.integers(150, 400, N_LIF), bias_mant=rng.integers(-40, 60, N_LIF),
                               bias_exp=3, refractory=rng.integers(2, 6, N_LIF), name="lif")
    ahp = net.add_ahp(N_AHP, du=4096, dv=205, vth_mant=508, aux_dv=int(4096 / 700),
                      ahp_weight_mantissa=-96, ahp_weight_exponent=-4, refractory=3, name="ahp")
    out = net.add_compartments(N_OUT, du=4096, dv=205, vth_mant=VTH_MANT_MAX, name="out")
    net.connect(x, lif, _w(rng, N_LIF, N_IN), weight_exponent=0, delay=rng.integers(0, 20, (N_LIF, N_IN)))
    net.connect(x, ahp, _w(rng, N_AHP, N_IN), weight_exponent=2)
    net.connect(lif, lif, _w(rng, N_LIF, N_LIF), weight_exponent=-1, delay=rng.integers(0, 63, (N_LIF, N_LIF)))
    net.connect(lif, ahp, _w(rng, N_AHP, N_LIF), weight_exponent=1, delay=7)
    net.connect(ahp, lif, _w(rng, N_LIF, N_AHP), weight_exponent=0, delay=62)
    net.connect(lif, out, _w(rng, N_OUT, N_LIF, 0.5), weight_exponent=-2)
    net.connect(ahp, out, _w(rng, N_OUT, N_AHP, 0.5), weight_exponent=-2, delay=3)
    return net


def _lava(seed=0):
    rng = np.random.default_rng(seed)
    net = LoihiNetwork(rules="lava")
    x = net.add_input(N_IN, name="x")
    a = net.add_compartments(N_LIF, du=rng.integers(0, 4096, N_LIF), dv=rng.integers(100, 400, N_LIF),
                             vth_mant=rng.integers(100, 300, N_LIF), bias_mant=rng.integers(-40, 60, N_LIF),
                             bias_exp=2, name="lif")
    b = net.add_compartments(N_AHP, du=800, dv=300, vth_mant=200, name="b")
    net.connect(x, a, _w(rng, N_LIF, N_IN, lo=-256), weight_exponent=1)
    net.connect(a, a, _w(rng, N_LIF, N_LIF, lo=-256), weight_exponent=-2)
    net.connect(a, b, _w(rng, N_AHP, N_LIF, lo=0), weight_exponent=0)
    net.connect(b, a, -_w(rng, N_LIF, N_AHP, lo=0), weight_exponent=0)
    return net


def _inputs(seed=0):
    rng = np.random.default_rng(100 + seed)
    return rng.random((B, T, N_IN)) < 0.1


def _cat(results):
    return tuple(np.concatenate([getattr(r, k) for r in results], axis=1) for k in ("spikes_all", "u_all", "v_all"))


@pytest.mark.parametrize("make", [_loihi1, _lava], ids=["loihi1", "lava"])
def test_continuation_is_bit_exact(make):
    X = _inputs()
    full = make().run(T, inputs={"x": X}, record_uv=True)
    assert full.spikes_all.sum() > 200
    for splits in ([100, 140], [1, 61, 178], [17, 0, 63, 160], [T]):
        net = make()
        parts, t = [], 0
        for k, s in enumerate(splits):
            parts.append(net.run(s, inputs={"x": X[:, t:t + s]}, n_threads=1 + k % 3, record_uv=True))
            assert parts[-1].t0 == t
            t += s
            assert net.t == t and net.n_trials == B
        for a, b in zip(_cat(parts), (full.spikes_all, full.u_all, full.v_all)):
            assert np.array_equal(a, b)


def test_split_points_hold_pending_spikes_and_refractory_counters():
    """The split really crosses delayed spikes in flight and compartments in their refractory
    period (so the equality above is not vacuous)."""
    X = _inputs()
    net = _loihi1()
    net.run(120, inputs={"x": X[:, :120]}, record_uv=True)
    assert (net.get_state("ref") > 0).any()
    st = net._engine.get_state()
    assert (st["acc"] != 0).any() and st["t"] == 120
    # dropping the pending input changes the continuation
    other = _loihi1()
    other.run(120, inputs={"x": X[:, :120]}, record_uv=True)
    st["acc"][:] = 0
    other._engine.set_state(st)
    a = net.run(T - 120, inputs={"x": X[:, 120:]}, record_uv=True)
    b = other.run(T - 120, inputs={"x": X[:, 120:]}, record_uv=True)
    assert not np.array_equal(a.v_all, b.v_all)


def test_store_restore_and_reset():
    X = _inputs()
    net = _loihi1()
    with pytest.raises(RuntimeError, match="no state"):
        net.store()
    net.run(90, inputs={"x": X[:, :90]}, record_uv=True)
    net.store("mid")
    r1 = net.run(T - 90, inputs={"x": X[:, 90:]}, record_uv=True)
    assert net.t == T
    net.restore("mid")
    assert net.t == 90
    r2 = net.run(T - 90, inputs={"x": X[:, 90:]}, n_threads=3, record_uv=True)
    for a, b in zip(_cat([r1]), _cat([r2])):
        assert np.array_equal(a, b)
    net.reset_state()
    assert net.t == 0 and net.n_trials == 0
    net.restore("mid")  # stored states survive reset_state
    r3 = net.run(T - 90, inputs={"x": X[:, 90:]}, record_uv=True)
    assert np.array_equal(r3.v_all, r1.v_all) and r3.t0 == 90
    with pytest.raises(KeyError, match="no stored state named 'nope'"):
        net.restore("nope")
    net.reset_state()
    full = net.run(T, inputs={"x": X}, record_uv=True)
    assert np.array_equal(full.v_all[:, 90:], r1.v_all)
    # a structural change rebuilds the engine: state and stored states go
    net.add_compartments(1, du=0, dv=0, vth_mant=1, name="late")
    assert net.t == 0 and net.n_trials == 0
    with pytest.raises(KeyError):
        net.restore("mid")


def test_threads_do_not_change_any_bit_across_runs():
    X = _inputs()
    res = {}
    for nt in (1, 2, 3, 8):
        net = _loihi1()
        res[nt] = _cat([net.run(70, inputs={"x": X[:, :70]}, n_threads=nt, record_uv=True),
                        net.run(T - 70, inputs={"x": X[:, 70:]}, n_threads=nt, record_uv=True)])
    for nt in (2, 3, 8):
        for a, b in zip(res[1], res[nt]):
            assert np.array_equal(a, b)


def test_init_state_n_trials_and_input_forms():
    net = _loihi1()
    X = _inputs()[0]
    net.init_state(2)
    assert net.n_trials == 2 and net.t == 0
    r = net.run(inputs={"x": X}, record_uv=True)  # T from the input, [T, n] given to every trial
    assert r.T == T and r.n_trials == 2
    assert np.array_equal(r.v_all[0], r.v_all[1])
    with pytest.raises(ValueError, match="state for 2 trials"):
        net.run(5, n_trials=3)
    with pytest.raises(ValueError, match="state for 2 trials"):
        net.run(inputs={"x": np.zeros((3, 5, N_IN), bool)})
    net.reset_state()
    # events (steps, channels) equal the dense input; a list of tuples gives one per trial
    steps, ch = np.nonzero(X)
    dense = net.run(T, inputs={"x": X}, n_trials=2, record_uv=True)
    net.reset_state()
    ev = net.run(T, inputs={"x": (steps, ch)}, n_trials=2, record_uv=True)
    assert np.array_equal(ev.v_all, dense.v_all) and np.array_equal(ev.spikes_all, dense.spikes_all)
    net.reset_state()
    ev3 = net.run(T, inputs={"x": (steps, ch, np.ones(steps.size, int))}, record_uv=True)
    assert np.array_equal(ev3.v_all[0], dense.v_all[0])
    net.reset_state()
    lst = net.run(T, inputs={"x": [(steps, ch), (np.zeros(0, int), np.zeros(0, int))]}, record_uv=True)
    assert lst.n_trials == 2 and np.array_equal(lst.v_all[0], dense.v_all[0])
    assert not np.array_equal(lst.v_all[1], dense.v_all[1])
    net.reset_state()
    with pytest.raises(ValueError, match="T is required"):
        net.run(inputs={"x": (steps, ch)})
    with pytest.raises(ValueError, match=r"event step \d+ is outside \[0, 10\)"):
        net.run(10, inputs={"x": (steps, ch)})
    with pytest.raises(ValueError, match="channels"):
        net.run(10, inputs={"x": ([0], [N_IN])})
    with pytest.raises(ValueError, match="n_trials"):
        net.init_state(0)
    assert net.t == 0 and net.n_trials == 0  # failed runs leave no state


def test_progress_chunks_give_the_same_bits():
    X = _inputs()
    a = _loihi1().run(T, inputs={"x": X}, record_uv=True)
    b = _loihi1().run(T, inputs={"x": X}, progress=True, record_uv=True)
    for p, q in zip(_cat([a]), _cat([b])):
        assert np.array_equal(p, q)


def test_result_accessors_match_simresult_names():
    X = _inputs()
    net = _loihi1()
    net.run(50, inputs={"x": X[:, :50]}, record_uv=True)
    r = net.run(T - 50, inputs={"x": X[:, 50:]}, record_uv=True)
    assert r.t0 == 50 and r.T == T - 50 and r.n_trials == B
    assert r.raster("lif").shape == (B, T - 50, N_LIF) and r.raster("lif", trial=1).shape == (T - 50, N_LIF)
    assert np.array_equal(r.raster("ahp", trial=-1), r.raster("ahp")[B - 1])
    steps, ids = r.spikes(1, "lif")
    assert steps.size and steps.min() >= 50 and ids.max() < N_LIF
    assert np.array_equal(r.raster("lif", 1)[steps - 50, ids], np.ones(steps.size, bool))
    gsteps, gids = r.spikes(1)
    lif = net["lif"]
    m = (gids >= lif.start) & (gids < lif.start + lif.n)
    assert np.array_equal(gsteps[m], steps) and np.array_equal(gids[m] - lif.start, ids)
    tr, st, ci = r.spike_events()
    assert tr.size == r.spikes_all.sum() and st.min() >= 50
    assert r.rate("lif") == pytest.approx(r.raster("lif").mean()) and r.rate_hz() == pytest.approx(1000 * r.rate())
    assert np.array_equal(r.spike_counts("ahp"), r.raster("ahp").sum(1))
    assert np.array_equal(r.state("aux", "ahp"), r.v("ahp.aux")) and np.array_equal(r.state("u", "lif"), r.u("lif"))
    assert np.array_equal(r.readout("out"), r.v("out")) and r.v().shape == (B, T - 50, net.n_compartments)
    with pytest.raises(IndexError):
        r.raster("lif", trial=B)
    with pytest.raises(ValueError, match="AHP group"):
        r.state("aux", "lif")
    assert "steps=50..240" in repr(r)


def test_get_set_state():
    net = _loihi1()
    with pytest.raises(RuntimeError, match="no state"):
        net.get_state("v")
    net.init_state(2)
    net.set_state("v", np.full(N_LIF, 1000), group="lif")
    assert (net.get_state("v", "lif") == 1000).all() and (net.get_state("v", "ahp") == 0).all()
    r = net.run(1, record_uv=True)
    v = r.v("lif")[:, 0]
    dv = np.asarray(net.compartment_arrays()["dv"][net["lif"].ids])
    bias = net.compartment_arrays()["bias_mant"][net["lif"].ids] * 8
    assert np.array_equal(v, np.broadcast_to((1000 * (4096 - dv)) >> 12, v.shape) + bias)
    with pytest.raises(ValueError, match="out of range"):
        net.set_state("v", 2**23, group="lif")
    with pytest.raises(ValueError, match="ref"):
        net.set_state("ref", 60)
    with pytest.raises(ValueError, match="var must be"):
        net.get_state("acc")


def _float_ahp_net():
    rng = np.random.default_rng(4)
    net = ahpsim.Network(dtype="float64")
    net.add_input(N_IN, name="x")
    net.add_population(N_AHP, ahpsim.AHP(tau_m=20.0, tau_ahp=300.0, beta=0.5, v_th=1.0, reset="zero"), name="ahp")
    net.add_population(N_OUT, ahpsim.Readout(tau=20.0), name="out")
    net.connect("x", "ahp", rng.normal(0.2, 0.4, (N_AHP, N_IN)) * (rng.random((N_AHP, N_IN)) < 0.4))
    net.connect("ahp", "ahp", rng.normal(0, 0.2, (N_AHP, N_AHP)) * (rng.random((N_AHP, N_AHP)) < 0.2), delay=3)
    net.connect("ahp", "out", rng.normal(0, 0.5, (N_OUT, N_AHP)))
    return net


def test_quantized_run_unchanged_and_continues():
    """quantize(float net).run gives what the stateless engine gave before (every trial from the
    zero state), and continues like the float engine."""
    X = _inputs()
    q = quantize(_float_ahp_net())
    net = q.net
    before = _core.LoihiEngine("loihi1", net.n_inputs, net.compartment_arrays(), net.projections).run(
        T, X.astype(np.uint8), B, True, 1)
    r = q.run(T, inputs={"x": X.astype(np.float64)}, record_uv=True)
    assert r.spikes_all.sum() > 50
    for a, b in zip((r.spikes_all.view(np.uint8), r.u_all, r.v_all), before):
        assert np.array_equal(a, b)
    assert r.readout("out").dtype == np.float64
    assert np.array_equal(r.readout("out"), r.v("out") / q.scale["out"])
    assert np.array_equal(r.readout(), r.readout("out"))
    q.reset_state()
    a = q.run(100, inputs={"x": X[:, :100]}, record_uv=True)
    q.store()
    b = q.run(inputs={"x": X[:, 100:]}, n_threads=2, record_uv=True)
    assert q.t == T and b.t0 == 100
    assert np.array_equal(np.concatenate([a.v_all, b.v_all], 1), before[2])
    q.restore()
    c = q.run(inputs={"x": X[:, 100:]}, record_uv=True)
    assert np.array_equal(c.readout("out"), b.readout("out"))
    # event inputs (float values: nonzero = spike), one list entry per trial
    q.reset_state()
    ev = []
    for k in range(B):
        st, ch = np.nonzero(X[k])
        ev.append((st, ch, np.full(st.size, 0.5)))
    e = q.run(T, inputs={"x": ev}, record_uv=True)
    assert np.array_equal(e.v_all, before[2])
    # the float engine has the same call shape
    fnet = _float_ahp_net()
    fa = fnet.run(100, inputs={"x": X[:, :100]})
    fb = fnet.run(inputs={"x": X[:, 100:]})
    assert fb.t0 == b.t0 and fa.raster("ahp").shape == a.raster("ahp").shape
    assert fb.readout("out").shape == b.readout("out").shape
