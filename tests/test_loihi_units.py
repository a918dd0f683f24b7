"""A network given directly in Loihi units (rule set "loihi1") against a plain numpy integer
reference written here from the semantics of the issue / docs/loihi.md:

* decay: x <- sign(x) * ((|x| * (4096 - d)) >> 12); du = 4096: u is just this step's input
* effective weight = mantissa * 2**(6 + weight_exponent) with its 6 low bits zero, i.e.
  floor(mantissa * 2**weight_exponent) * 2**6 (as Brian2Loihi's chip-checked synapse model), summed
  per compartment
* u wraps to 24-bit two's complement; v = decay(v) + u + join + bias_mant * 2**bias_exp,
  saturated at +-(2**23 - 1); spike when v > vth_mant * 2**6, then v = 0 and
  refractory - 1 held steps (v = 0, no integration, no spike; u keeps integrating)
* an input spike at t with delay d is integrated at t + d; a compartment spike at t + 1 + d
* AHP neuron: aux compartment (never spikes) whose voltage is added to the soma's input (ADD join)
  every step; each soma spike charges the aux one step later with -96 * 2**(6 - 4)
"""

from __future__ import annotations

import numpy as np
import pytest

from ahpsim.loihi import VTH_MANT_MAX, LoihiNetwork

pytestmark = pytest.mark.loihi

T = 300
N_IN, N_LIF, N_AHP, N_OUT = 80, 40, 30, 10


def _w(rng, n_post, n_pre, density=0.2):
    w = rng.integers(-255, 256, size=(n_post, n_pre))
    return w * (rng.random((n_post, n_pre)) < density)


def _make(seed=0):
    rng = np.random.default_rng(seed)
    net = LoihiNetwork(rules="loihi1")
    x = net.add_input(N_IN, name="x")
    lif = net.add_compartments(N_LIF, du=rng.integers(0, 4097, N_LIF), dv=rng.integers(100, 400, N_LIF),
                               vth_mant=rng.integers(150, 400, N_LIF), bias_mant=rng.integers(-40, 60, N_LIF),
                               bias_exp=3, refractory=rng.integers(1, 4, N_LIF), name="lif")
    ahp = net.add_ahp(N_AHP, du=4096, dv=205, vth_mant=508, aux_dv=int(4096 / 700),
                      ahp_weight_mantissa=-96, ahp_weight_exponent=-4, name="ahp")
    out = net.add_compartments(N_OUT, du=4096, dv=205, vth_mant=VTH_MANT_MAX, name="out")
    conns = [  # (pre, post, W, exp, delay)
        (x, lif, _w(rng, N_LIF, N_IN), 0, rng.integers(0, 3, (N_LIF, N_IN))),
        (x, ahp, _w(rng, N_AHP, N_IN), 2, 0),
        (lif, lif, _w(rng, N_LIF, N_LIF), -1, rng.integers(0, 6, (N_LIF, N_LIF))),
        (lif, ahp, _w(rng, N_AHP, N_LIF), 1, 0),
        (ahp, lif, _w(rng, N_LIF, N_AHP), 0, 62),
        (ahp, ahp, _w(rng, N_AHP, N_AHP), 1, rng.integers(0, 2, (N_AHP, N_AHP))),
        (lif, out, _w(rng, N_OUT, N_LIF, 0.5), -2, 0),
        (ahp, out, _w(rng, N_OUT, N_AHP, 0.5), -2, 0),
    ]
    for pre, post, W, e, d in conns:
        net.connect(pre, post, W, weight_exponent=e, delay=d)
    X = rng.random((T, N_IN)) < 0.08
    return net, conns, X


def _reference(net, conns, X):
    """Plain numpy integer reference (independent of the engine's data structures)."""
    cx = net.compartment_arrays()
    N = net.n_compartments
    lif, ahp, out = net["lif"], net["ahp"], net["out"]
    soma, aux = ahp.soma, ahp.aux

    def sl(g):
        return slice(g.start, g.start + g.n)

    def dec(x, d):
        return np.sign(x) * ((np.abs(x) * (4096 - d)) >> 12)

    def wrap24(x):
        return ((x + 2**23) % 2**24) - 2**23

    # synapse tables: (source is input?, source slice, target slice, effective W, delay matrix)
    syn = []
    for pre, post, W, e, d in conns:
        tgt = sl(post.soma if hasattr(post, "soma") else post)
        src_is_input = pre.name == "x"
        src = slice(0, N_IN) if src_is_input else sl(pre.soma if hasattr(pre, "soma") else pre)
        W_eff = W.astype(np.int64) * 2 ** (6 + e) if e >= 0 else (W.astype(np.int64) // 2 ** (-e)) * 64
        syn.append((src_is_input, src, tgt, W_eff,
                    np.broadcast_to(np.asarray(d), W.shape)))
    # the AHP synapse soma -> aux: -96 * 2**(6-4), one step later
    syn.append((False, sl(soma), sl(aux), np.diag(np.full(soma.n, -96 * 2**2)), np.zeros((soma.n, soma.n), int)))

    acc = np.zeros((T + 70, N), np.int64)
    u = np.zeros(N, np.int64)
    v = np.zeros(N, np.int64)
    ref = np.zeros(N, np.int64)
    thr = cx["vth_mant"] * 64
    bias = cx["bias_mant"] * 2 ** cx["bias_exp"]
    U, V, S = (np.zeros((T, N), np.int64) for _ in range(3))
    order = [sl(aux), slice(0, aux.start), slice(aux.start + aux.n, N)]  # children first

    def push(t, spikes_src, is_input):
        for src_is_input, src, tgt, W, D in syn:
            if src_is_input != is_input:
                continue
            active = np.nonzero(spikes_src[src])[0]
            for j in active:
                lat = D[:, j] + (0 if is_input else 1)
                for i in np.nonzero(W[:, j])[0]:
                    acc[t + lat[i], tgt.start + i] += W[i, j]

    xin = np.zeros(N_IN, bool)
    for t in range(T):
        xin[:] = X[t]
        push(t, xin, True)
        u = wrap24(dec(u, cx["du"]) + acc[t])
        join = np.zeros(N, np.int64)
        s = np.zeros(N, bool)
        for part in order:
            held = ref[part] > 0
            vn = np.clip(dec(v[part], cx["dv"][part]) + u[part] + join[part] + bias[part], -(2**23 - 1), 2**23 - 1)
            vn = np.where(held, 0, vn)
            fire = (~held) & (cx["spiking"][part] == 1) & (vn > thr[part])
            vn = np.where(fire, 0, vn)
            ref[part] = np.where(held, ref[part] - 1, np.where(fire, cx["refractory"][part] - 1, 0))
            v[part] = vn
            s[part] = fire
            if part == order[0]:
                join[sl(soma)] += v[sl(aux)]
        push(t, s, False)
        U[t], V[t], S[t] = u, v, s
    return U, V, S


@pytest.fixture(scope="module")
def run_both():
    net, conns, X = _make()
    res = net.run(T, inputs={"x": X}, record_uv=True)
    U, V, S = _reference(net, conns, X)
    return net, res, U, V, S


def test_loihi_units_network_matches_numpy_reference(run_both):
    net, res, U, V, S = run_both
    for what, mine, ref in (("u", res.u_all[0], U), ("v", res.v_all[0], V), ("spikes", res.spikes_all[0], S)):
        bad = np.argwhere(mine != ref)
        assert bad.size == 0, f"{what}: first mismatch at step/compartment {bad[0].tolist()}"


def test_loihi_units_network_is_active(run_both):
    net, res, U, V, S = run_both
    assert res.raster("lif").sum() > 100
    assert res.raster("ahp").sum() > 20
    assert res.raster("ahp.aux").sum() == 0            # the aux compartment never spikes
    assert res.v("ahp.aux").min() < -1000              # but is charged by soma spikes
    assert res.raster("out").sum() == 0                # maximal threshold: outputs do not spike here
    assert res.v("out").std() > 0


def test_sMNIST_ahp_neuron_in_loihi_units():
    """One AHP neuron with the authors' sMNIST constants, traced by hand."""
    net = LoihiNetwork()
    x = net.add_input(1, name="x")
    ahp = net.add_ahp(1, dv=4095, vth_mant=508, aux_dv=int(4096 / 700), ahp_weight_mantissa=-96,
                      ahp_weight_exponent=-4, name="ahp")
    net.connect(x, ahp, np.array([[255]]), weight_exponent=2)  # 255 * 2**8 = 65280 > 508 * 64 = 32512
    X = np.zeros((4, 1), bool)
    X[0] = X[2] = True
    r = net.run(4, inputs={x: X}, record_uv=True)
    assert r.raster(ahp)[0, :, 0].tolist() == [True, False, True, False]
    # aux: t1 = -384, t2 = -384 * 4091 >> 12 toward zero = -383, t3 = -383 - 384 after the t2 spike
    assert r.v("ahp.aux")[0, :, 0].tolist() == [0, -384, -383, -383 * 4091 // 4096 - 384 + 1]
    assert r.v(ahp)[0, :, 0].tolist() == [0, -384, 0, -766]


def test_trials_threads_and_zero_start():
    """Trials are independent runs from the zero state; threads do not change any bit; a run after
    reset_state() starts from zero again."""
    net, conns, X = _make(seed=3)
    Xb = np.stack([X, np.roll(X, 7, axis=0), X])
    r1 = net.run(T, inputs={"x": Xb}, n_threads=1, record_uv=True)
    net.reset_state()
    r3 = net.run(T, inputs={"x": Xb}, n_threads=3, record_uv=True)
    for a, b in ((r1.spikes_all, r3.spikes_all), (r1.u_all, r3.u_all), (r1.v_all, r3.v_all)):
        assert np.array_equal(a, b)
    assert np.array_equal(r1.v_all[0], r1.v_all[2]) and not np.array_equal(r1.v_all[0], r1.v_all[1])
    net.reset_state()
    single = net.run(T, inputs={"x": X}, record_uv=True)  # after reset_state() a run starts from zero again
    assert np.array_equal(single.v_all[0], r1.v_all[0])
    with pytest.raises(ValueError, match="n_threads"):
        net.run(T, inputs={"x": X}, n_threads=0)
    quiet = net.run(5, record_uv=False, record_readouts=False)  # no inputs: only biases drive the network
    assert quiet.u_all is None and quiet.spikes_all.shape == (1, 5, net.n_compartments)
    with pytest.raises(ValueError, match="record_uv=True"):
        quiet.v("lif")
    # by default only the readout compartments are recorded (recording is opt-in, as in Network.run)
    net.store("s")
    default = net.run(5)
    readouts = [g.name for g in net.readout_groups()]
    assert readouts and default.v_all.shape == (1, 5, sum(net[g].n for g in readouts))
    net.restore("s")
    assert np.array_equal(default.readout(readouts[0]), net.run(5, record_uv=True).v(readouts[0]))
    with pytest.raises(ValueError, match="v of 'lif' was not recorded"):
        default.v("lif")
