"""Quantization of float AHP networks to Loihi units, and the resource estimate.

Spike-time agreement of the integer AHP neurons with the float ones (float engine, float64) is
measured two ways on the same feed-forward network (each neuron independent, 2000 steps):

* arithmetic: float neurons given the *dequantized* parameters (effective weights, time constants
  and AHP increment of the quantized network) against the integer engine -- what the integer
  arithmetic itself (integer voltages, round-toward-zero decays) costs;
* full: the original float parameters against the integer engine -- including 8-bit weights and
  12-bit decays (tau_ahp = 700 ms becomes 682 ms: 4096 * (1 - exp(-1/700)) = 5.85 rounds to 6).

Measured here (seed 1, 50 neurons, about 160 spikes): arithmetic 97.6 % of the float spikes at the
same step (98.8 % within +-1 step) at the default vth_mant = 4096; full 66 % (78 % within +-2).
"""

from __future__ import annotations

import numpy as np
import pytest

import ahpsim
from ahpsim.loihi import decay_from_tau, estimate_resources, quantize, split_weights

pytestmark = pytest.mark.loihi

T, N_IN, N = 2000, 40, 50


def _match(A: np.ndarray, B: np.ndarray, tol: int) -> int:
    """Greedy one-to-one matching of spikes of A to spikes of B within +-tol steps, per neuron."""
    m = 0
    for j in range(A.shape[1]):
        tb = np.nonzero(B[:, j])[0]
        used = np.zeros(tb.size, bool)
        for t in np.nonzero(A[:, j])[0]:
            c = np.nonzero((np.abs(tb - t) <= tol) & ~used)[0]
            if c.size:
                used[c[0]] = True
                m += 1
    return m


def _float_net(W, tau_m=20.0, tau_ahp=700.0, beta=0.756, **refractory):
    net = ahpsim.Network(dtype="float64")
    net.add_input(N_IN, name="x")
    net.add_population(N, ahpsim.AHP(tau_m=tau_m, tau_ahp=tau_ahp, beta=beta, v_th=1.0, reset="zero", **refractory),
                       name="ahp")
    net.connect("x", "ahp", W)
    return net


def _dequantized(q, W, **refractory):
    """The float network with the quantized network's effective parameters."""
    p = next(pp for pp in q.net.projections if pp["name"] == "x->ahp")
    s = q.scale["ahp"]
    Wd = np.zeros_like(W)
    Wd[p["post"], p["pre"]] = p["weight_mantissa"] * 2.0 ** (6 + p["weight_exponent"]) / s
    pr = q.report.populations[0]
    beta_d = -pr["ahp_weight_mantissa"] * 2.0 ** (6 + pr["ahp_weight_exponent"]) / s
    return _float_net(Wd, pr["tau_m_eff"], pr["tau_ahp_eff"], beta_d, **refractory)


@pytest.fixture(scope="module")
def tracking():
    rng = np.random.default_rng(1)
    W = rng.normal(0.15, 0.3, (N, N_IN)) * (rng.random((N, N_IN)) < 0.5)
    X = rng.random((T, N_IN)) < 0.1
    net = _float_net(W)
    S_float = net.run(T, inputs={"x": X}).raster("ahp")[0]
    q = quantize(net, vth_mant=4096)
    S_int = q.run(T, inputs={"x": X}, record_uv=True).raster("ahp")[0]
    S_deq = _dequantized(q, W).run(T, inputs={"x": X}).raster("ahp")[0]  # the quantized network's parameters
    return q, S_float, S_deq, S_int


def test_integer_ahp_arithmetic_tracks_float(tracking):
    q, S_float, S_deq, S_int = tracking
    n = int(S_deq.sum())
    assert n > 100
    exact, within1 = _match(S_deq, S_int, 0) / n, _match(S_deq, S_int, 1) / n
    print(f"\narithmetic spike-time agreement: exact {exact:.3f}, +-1 step {within1:.3f} ({n} float spikes)")
    assert exact >= 0.95 and within1 >= 0.97
    assert abs(int(S_int.sum()) - n) <= 0.03 * n


def test_integer_refractory_period_is_the_float_clamp():
    """Loihi holds v at 0 during the refractory steps: the float refractory_mode="clamp" tracks the
    integer engine as closely as a network without refractoriness does; "block" (v integrates) does not."""
    rng = np.random.default_rng(1)
    W = rng.normal(0.4, 0.3, (N, N_IN)) * (rng.random((N, N_IN)) < 0.5)  # strong drive: spikes in bursts
    X = rng.random((T, N_IN)) < 0.1
    agree = {}
    for mode in ("clamp", "block"):
        q = quantize(_float_net(W, beta=0.2, n_ref=2, refractory_mode=mode), vth_mant=4096)
        assert (any("refractory" in w for w in q.report.warnings)) == (mode == "block")
        assert int((q.net.compartment_arrays()["refractory"] == 3).sum()) == N  # the somas (not the AHP parts)
        S_int = q.run(T, inputs={"x": X}).raster("ahp")[0]
        S_deq = _dequantized(q, W, n_ref=2, refractory_mode=mode).run(T, inputs={"x": X}).raster("ahp")[0]
        n = int(S_deq.sum())
        assert n > 500
        agree[mode] = _match(S_deq, S_int, 0) / n
    print(f"\nspike-time agreement with the integer engine, n_ref 2: clamp {agree['clamp']:.3f}, "
          f"block {agree['block']:.3f}")
    assert agree["clamp"] >= 0.95 and agree["block"] < agree["clamp"] - 0.1


def test_full_quantization_agreement_is_reported(tracking):
    q, S_float, S_deq, S_int = tracking
    n = int(S_float.sum())
    agree = [_match(S_float, S_int, t) / n for t in (0, 1, 2)]
    print(f"\nfull-quantization spike-time agreement: exact {agree[0]:.3f}, +-1 {agree[1]:.3f}, +-2 {agree[2]:.3f}")
    assert agree[2] >= 0.6
    assert abs(int(S_int.sum()) - n) <= 0.1 * n


def test_quantization_report(tracking):
    q, *_ = tracking
    rep = q.report
    pop = rep.populations[0]
    assert pop["vth_mant"] == 4096 and pop["aux_dv"] == 6 and pop["dv_min"] == 200
    assert abs(pop["tau_ahp_eff"] - 682.2) < 0.1 and abs(pop["tau_m_eff"] - 20.0) < 0.05
    assert pop["ahp_rel_err"] < 0.005
    proj = next(p for p in rep.projections if p["name"] == "x->ahp")
    assert proj["max_rel_err"] <= 1.0 and proj["rms_rel_err"] < 0.15
    # the largest weight uses the full 8-bit mantissa
    p = next(pp for pp in q.net.projections if pp["name"] == "x->ahp")
    assert np.abs(p["weight_mantissa"]).max() > 127
    assert "x->ahp" in str(rep)


def test_quantize_from_dict_and_warnings():
    rng = np.random.default_rng(0)
    d = dict(dt=1.0, inputs={"x": 4},
             populations=[dict(name="lif", kind="LIF", n=3, tau_m=10.0, v_th=0.5, reset="subtract", n_ref=2),
                          dict(name="out", kind="Readout", n=2, tau=20.0)],
             projections=[dict(pre="x", post="lif", weights=rng.normal(size=(3, 4))),
                          dict(pre="lif", post="out", weights=rng.normal(size=(2, 3)), delay=0)])
    q = quantize(d, vth_mant=4096)
    assert any("reset" in w for w in q.report.warnings)
    assert any("refractory" in w for w in q.report.warnings)
    assert any("delay 0" in w for w in q.report.warnings)
    arrs = q.net.compartment_arrays()
    assert arrs["refractory"][:3].tolist() == [3, 3, 3]
    assert arrs["dv"][:3].tolist() == [int(round(4096 * (1 - np.exp(-0.1))))] * 3
    r = q.run(5, inputs={"x": np.ones((5, 4), bool)}, record_uv=True)
    assert r.readout("out").shape == (1, 5, 2) and r.readout("out").dtype == np.float64
    with pytest.raises(NotImplementedError, match="ALIF"):
        quantize(dict(inputs={}, populations=[dict(name="a", kind="ALIF", n=1)], projections=[]))
    # the refractory mode: checked; with the clamp the reset mode does not matter (v held at 0 after a spike)
    lif = d["populations"][0]
    for bad, msg in ((dict(refractory_mode="hold"), "refractory_mode must be 'block' or 'clamp'"),
                     (dict(n_ref=70), r"n_ref must be 0..62 on Loihi"), (dict(n_ref=-1), r"n_ref must be 0..62")):
        with pytest.raises(ValueError, match=msg):
            quantize({**d, "populations": [{**lif, **bad}] + d["populations"][1:]})
    clamped = quantize({**d, "populations": [{**lif, "refractory_mode": "clamp"}] + d["populations"][1:]})
    assert not any("reset" in w or "refractory" in w for w in clamped.report.warnings)
    with pytest.raises(ValueError, match="vth_mant = 0 is out of range"):
        quantize(d, vth_mant=0)
    for bad in (0, -3.0, float("nan"), float("inf"), "255", True):  # a readout scale of 0 divides by zero
        with pytest.raises(ValueError, match="readout_mant must be a finite number > 0"):
            quantize(d, readout_mant=bad)
    for bad in ("508", 254.5, True):  # (ahpsim._validation.as_int: a TypeError)
        with pytest.raises(TypeError, match="vth_mant must be an integer"):
            quantize(d, vth_mant=bad)
    for bad in (0.0, -1.0, float("nan"), "1"):  # dt = 0 had given every decay 4096 silently
        with pytest.raises(ValueError, match="dt must be a finite number > 0"):
            quantize(d, dt=bad)


def test_decay_and_weight_split():
    from ahpsim.loihi.quantize import tau_from_decay

    # no decay is an infinite time constant (a non-leaky readout's report said -inf), no carry-over is 0
    assert tau_from_decay(np.array([0, 4096, 5000]), 1.0).tolist() == [np.inf, 0.0, 0.0]
    # the 12-bit decay of tau = 700 is 6 / 4096: 682 steps
    np.testing.assert_allclose(tau_from_decay(decay_from_tau(np.array([20.0, 700.0])), 1.0), [20.0, 700.0], rtol=0.03)
    assert decay_from_tau(0.0).item() == 4096
    assert decay_from_tau(700.0).item() == 6 and decay_from_tau(20.0).item() == 200
    m, e = split_weights(np.array([1000.0, -3.0, 0.0]))
    assert e == 0 and m.tolist() == [16, 0, 0]  # the finest step is 2**6: 1000 / 64 = 15.6 -> 16
    m, e = split_weights(np.array([20000.0, -70.0]))
    assert e == 1 and m.tolist() == [156, -1]  # 20000 / 128 = 156.25 <= 255
    m, e = split_weights(np.array([-198180.0]))
    assert e == 4 and m.tolist() == [-194]


def test_resource_estimate_sMNIST_sized():
    """The paper's sMNIST network: 80 inputs, 140 LIF + 100 AHP, 10 outputs, ~20 % connectivity."""
    rng = np.random.default_rng(0)

    def W(a, b):
        return rng.normal(size=(a, b)) * (rng.random((a, b)) < 0.2)

    d = dict(inputs={"x": 80},
             populations=[dict(name="lif", kind="LIF", n=140, reset="zero"),
                          dict(name="ahp", kind="AHP", n=100, reset="zero"),
                          dict(name="out", kind="Readout", n=10)],
             projections=[dict(pre="x", post="lif", weights=W(140, 80)), dict(pre="x", post="ahp", weights=W(100, 80)),
                          dict(pre="lif", post="lif", weights=W(140, 140)), dict(pre="ahp", post="lif", weights=W(140, 100)),
                          dict(pre="lif", post="ahp", weights=W(100, 140)), dict(pre="ahp", post="ahp", weights=W(100, 100)),
                          dict(pre="lif", post="out", weights=W(10, 140)), dict(pre="ahp", post="out", weights=W(10, 100))])
    q = quantize(d, vth_mant=4096)
    r = estimate_resources(q.net)
    assert r["compartments"] == 140 + 2 * 100 + 10 and r["neurons"] == 250
    possible = 80 * 240 + 240 * 240 + 240 * 10
    assert r["synapses"] == q.net.n_synapses and 0.15 < (r["synapses"] - 100) / possible < 0.25
    assert r["cores"] >= 1 and r["chips"] == 1
    assert r["connection_groups"] >= 2 * 8  # mixed-sign matrices need two groups each


@pytest.mark.torch
def test_quantize_accepts_a_torch_model():
    torch_mod = pytest.importorskip("ahpsim.torch")
    model = torch_mod.SpikingRNN(6, 3, n_lif=4, n_ahp=5, reset="zero", seed=0)
    q = quantize(model)
    names = [p["name"] for p in q.report.populations]
    kinds = sorted(p["kind"] for p in q.report.populations)
    assert kinds == ["AHP", "LIF", "Readout"]
    ref = quantize(torch_mod.to_network(model, dtype="float64"))
    assert names == [p["name"] for p in ref.report.populations]
    for a, b in zip(q.net.projections, ref.net.projections):
        assert np.array_equal(a["weight_mantissa"], b["weight_mantissa"]) and a["weight_exponent"] == b["weight_exponent"]
    assert q.net.n_compartments == 4 + 2 * 5 + 3
    with pytest.raises(TypeError, match="quantize expects"):
        quantize(42)


def test_overflow_is_counted_and_warned():
    """A quantized network whose float currents leave the 24-bit range: the engine counts the wrapped
    currents per group (against a numpy count from the integer weights), and QuantizedNetwork.run
    warns; with enough headroom (the default vth_mant) nothing is counted or warned."""
    import warnings

    from ahpsim.loihi import QuantizationOverflowWarning

    W = np.zeros((3, 9))
    W[0, :8] = -7.0   # 8 inputs of -7 thresholds at once: -56, beyond +-32 at vth_mant 4096
    W[1, :8] = -3.0   # -24: fits
    W[:, 8] = 0.5
    d = dict(dt=1.0, inputs={"x": 9},
             populations=[dict(name="a", kind="LIF", n=3, tau_m=20.0, v_th=1.0, reset="zero")],
             projections=[dict(pre="x", post="a", weights=W)])
    X = np.zeros((1, 30, 9), bool)
    X[0, ::10, :8] = True
    X[0, :, 8] = True
    q = quantize(d, vth_mant=4096)
    with pytest.warns(QuantizationOverflowWarning, match="overflowed"):
        r = q.run(30, inputs={"x": X}, record_uv=True)
    p = q.net.projections[0]
    eff = np.zeros((3, 9), np.int64)
    eff[p["post"], p["pre"]] = np.asarray(p["weight_mantissa"], np.int64) * 2 ** (6 + int(p["weight_exponent"]))
    cur = X[0].astype(np.int64) @ eff.T  # du = 4096: u is this step's input
    expect = int(((cur < -2**23) | (cur >= 2**23)).sum())
    assert expect == 3 and q.overflows()["a"]["u_wraps"] == expect
    # the wrapped neuron fires on its inhibitory input, which the float network never does
    assert r.raster("a")[0, ::10, 0].all()
    q2 = quantize(d)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r2 = q2.run(30, inputs={"x": X}, record_uv=True)
    assert q2.overflows() == {} and not r2.raster("a")[0, ::10, 0].any()


def test_mantissa_exponent_splits_are_the_smallest_that_fit():
    """Every place that splits a value into mantissa and exponent, against a brute-force search: the
    weight exponent of a projection (8-bit mantissas) and the bias exponents (13-bit signed mantissas).
    A largest weight of 64 x 255.3 fits exponent 0 (mantissa 255); a logarithm gave 1 and zeroed the
    projection's smallest weights."""
    from ahpsim.loihi.quantize import _split_bias, split_weights, weight_exponent

    m, e = split_weights(np.array([64 * 255.3, 64 * 0.7, 64 * 3.4]))
    assert e == 0 and m.tolist() == [255, 1, 3]
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.uniform(0, 255.49 * 2**13, 3000), 255.5 * 2.0 ** np.arange(6, 13) + 1e-9,
                             (255.49 * 2.0 ** np.arange(6, 14)), [1e-3, 64.0, 255 * 64.0]])
    for v in values:
        brute = next(x for x in range(0, 8) if np.rint(v / 2.0 ** (6 + x)) <= 255)
        assert weight_exponent(float(v)) == brute, v
    b = np.concatenate([rng.uniform(-4096.5 * 2**7, 4095.49 * 2**7, 3000), [4095.4, -4096.4, 4095.6, 0.0]])
    mant, exp = _split_bias(b)
    for v, mm, ee in zip(b, mant, exp):
        brute = next(x for x in range(0, 8) if -4096 <= np.rint(v / 2.0**x) <= 4095)
        assert ee == brute and mm == np.rint(v / 2.0**ee), v
    with pytest.raises(ValueError, match="exceed the largest Loihi weight"):
        weight_exponent(255.6 * 2.0**13)


def test_quantized_readout_by_default_records_only_the_readouts():
    """QuantizedNetwork.run records only the readout compartments by default; their float readout is
    the same as with every compartment recorded (the readout is not the first group here), and the
    voltage of an unrecorded group is a clear error."""
    import ahpsim
    from ahpsim.loihi import quantize

    rng = np.random.default_rng(1)
    net = ahpsim.Network(seed=0)
    x = net.add_input(5, name="x")
    lif = net.add_population(7, ahpsim.LIF(tau_m=10.0), name="lif")
    ahp = net.add_population(4, ahpsim.AHP(tau_m=10.0, tau_ahp=40.0, beta=0.1), name="ahp")
    out = net.add_population(3, ahpsim.Readout(tau=10.0), name="out")
    net.connect(x, lif, rng.normal(0.6, 0.3, (7, 5)))
    net.connect(x, ahp, rng.normal(0.6, 0.3, (4, 5)))
    net.connect(lif, out, rng.normal(0, 0.5, (3, 7)), delay=1)
    net.connect(ahp, out, rng.normal(0, 0.5, (3, 4)), delay=1)
    q = quantize(net)
    X = rng.random((2, 60, 5)) < 0.3
    default = q.run(60, inputs={"x": X})
    q.reset_state()
    everything = q.run(60, inputs={"x": X}, record_uv=True)
    assert default.readout("out").shape == (2, 60, 3)
    np.testing.assert_array_equal(default.readout("out"), everything.readout("out"))
    assert np.abs(default.readout("out")).max() > 0
    with pytest.raises(ValueError, match="v of 'lif' was not recorded"):
        default.v("lif")


def test_exact_subtract_reset_keeps_integrate_and_fire_rates():
    """``subtract_reset="exact"``: a non-leaky integrate-and-fire population with reset by subtraction
    (the rate-coded layers of an ANN-to-SNN conversion) keeps, on the integer engine, the float kernel's
    spike count per neuron to within one spike over 200 steps; Loihi's own reset to zero loses the
    remainder at every spike (fewer spikes). A bias or refractory period is refused."""
    import ahpsim

    rng = np.random.default_rng(1)
    W = rng.uniform(0.05, 0.45, (20, 3))
    x = rng.random((200, 3)) < 0.6
    net = ahpsim.Network(dtype="float64")
    inp = net.add_input(3, name="x")
    lif = net.add_population(20, ahpsim.LIF(tau_m=1e9, v_th=1.0, reset="subtract"), name="lif")
    net.connect(inp, lif, W, delay=0)
    ref = net.run(200, inputs={"x": x}).raster("lif").sum(1)[0]
    exact = quantize(net, vth_mant=508, subtract_reset="exact")
    assert not any("reset" in w for w in exact.report.warnings)
    got = exact.run(200, inputs={"x": x}).raster("lif").sum(1)[0]
    assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1
    zero = quantize(net, vth_mant=508)
    assert any("reset" in w for w in zero.report.warnings)
    lost = zero.run(200, inputs={"x": x}).raster("lif").sum(1)[0]
    assert (lost <= ref).all() and lost.sum() < 0.9 * ref.sum()
    d = dict(inputs={"x": 1}, populations=[dict(name="a", kind="LIF", n=1, reset="subtract", bias=0.1)],
             projections=[])
    with pytest.raises(NotImplementedError, match="always-on input"):
        quantize(d, subtract_reset="exact")
    with pytest.raises(ValueError, match="subtract_reset must be"):
        quantize(d, subtract_reset="soft")
