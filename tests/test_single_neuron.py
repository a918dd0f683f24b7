"""Single-neuron traces of every model against closed forms (float64 engine)."""

import math

import numpy as np
import pytest

import ahpsim


def one_neuron(model, T, current, dtype="float64", record=True):
    net = ahpsim.Network(dtype=dtype)
    x = net.add_input(1, "x")
    p = net.add_population(1, model, "p")
    net.connect(x, p, np.ones((1, 1)))
    res = net.run(T, {"x": np.asarray(current, dtype=float).reshape(T, 1)}, record_state=[p])
    return res, res.state("v", p)[0, :, 0], res.state("aux", p)[0, :, 0], res.raster(p, trial=0)[:, 0]


def test_lif_subthreshold_closed_form():
    tau, I, T = 20.0, 0.04, 200
    alpha = math.exp(-1.0 / tau)
    _, v, _, z = one_neuron(ahpsim.LIF(tau_m=tau, v_th=10.0), T, np.full(T, I))
    t = np.arange(T)
    np.testing.assert_allclose(v, I * (1 - alpha ** (t + 1)) / (1 - alpha), rtol=1e-12)
    assert not z.any()


def test_lif_first_spike_time_and_reset_by_subtraction():
    tau, I, vth, T = 10.0, 0.2, 1.0, 60
    alpha = math.exp(-1.0 / tau)
    _, v, _, z = one_neuron(ahpsim.LIF(tau_m=tau, v_th=vth), T, np.full(T, I))
    free = I * (1 - alpha ** (np.arange(T) + 1)) / (1 - alpha)
    t1 = int(np.argmax(free > vth))
    assert np.flatnonzero(z)[0] == t1
    # the step after the spike: threshold subtracted once
    assert v[t1 + 1] == pytest.approx(alpha * v[t1] + I - vth, rel=1e-12)


def test_lif_reset_to_zero():
    tau, I = 10.0, 1.5  # above threshold every step
    alpha = math.exp(-1.0 / tau)
    _, v, _, z = one_neuron(ahpsim.LIF(tau_m=tau, v_th=1.0, reset="zero"), 20, np.full(20, I))
    assert z.all()  # v = I > 1 after every reset
    np.testing.assert_allclose(v, np.full(20, I))
    _, v2, _, _ = one_neuron(ahpsim.LIF(tau_m=tau, v_th=1.0), 3, np.full(3, I))
    assert v2[1] == pytest.approx(alpha * I + I - 1.0)  # subtraction keeps the remainder


def test_refractory_period_blocks_spikes_but_integrates():
    n_ref = 2
    _, v, _, z = one_neuron(ahpsim.LIF(tau_m=0.0, v_th=1.0, n_ref=n_ref), 30, np.full(30, 5.0))
    # tau 0: v[t] = I - v_th z[t-1]; spikes only every n_ref + 1 steps
    np.testing.assert_array_equal(np.flatnonzero(z), np.arange(0, 30, n_ref + 1))
    expected = np.where(np.r_[False, z[:-1]], 5.0 - 1.0, 5.0)
    np.testing.assert_allclose(v, expected)


def test_ahp_closed_form_after_one_spike():
    tau_m, tau_ahp, beta, vth, w, T = 20.0, 700.0, 0.756, 1.0, 1.5, 100
    alpha, rho = math.exp(-1 / tau_m), math.exp(-1 / tau_ahp)
    cur = np.zeros(T)
    cur[0] = w
    _, v, c, z = one_neuron(ahpsim.AHP(tau_m=tau_m, tau_ahp=tau_ahp, beta=beta, v_th=vth), T, cur)
    assert np.flatnonzero(z).tolist() == [0]
    t = np.arange(1, T)
    np.testing.assert_allclose(c[1:], beta * rho ** (t - 1), rtol=1e-12)
    assert c[0] == 0.0  # charged one step after the spike
    v_closed = alpha ** (t - 1) * (alpha * w - vth) - beta * (alpha ** t - rho ** t) / (alpha - rho)
    np.testing.assert_allclose(v[1:], v_closed, rtol=1e-10, atol=1e-14)


def test_alif_threshold_adaptation_closed_form():
    tau_a, beta, T = 200.0, 0.5, 50
    rho = math.exp(-1 / tau_a)
    cur = np.zeros(T)
    cur[0] = 2.0
    # second pulse at step 10 just below / above the adapted threshold 1 + beta rho^9 (tau_m 0: v = I)
    thr10 = 1.0 + beta * rho ** 9
    for amp, spikes in [(thr10 - 1e-9, [0]), (thr10 + 1e-9, [0, 10])]:
        c2 = cur.copy()
        c2[10] = amp
        _, v, a, z = one_neuron(ahpsim.ALIF(tau_m=0.0, tau_a=tau_a, beta=beta, v_th=1.0), T, c2)
        assert np.flatnonzero(z).tolist() == spikes
        np.testing.assert_allclose(a[1:10], rho ** np.arange(0, 9), rtol=1e-12)


def test_readout_impulse_response():
    tau, T = 15.0, 40
    kappa = math.exp(-1 / tau)
    net = ahpsim.Network(dtype="float64")
    x = net.add_input(1, "x")
    o = net.add_population(1, ahpsim.Readout(tau=tau, bias=0.25), "o")
    net.connect(x, o, np.array([[2.0]]))
    cur = np.zeros((T, 1))
    cur[5] = 1.0
    y = net.run(T, {"x": cur}).readout(o)[0, :, 0]
    t = np.arange(T)
    bias_part = 0.25 * (1 - kappa ** (t + 1)) / (1 - kappa)
    np.testing.assert_allclose(y, bias_part + np.where(t >= 5, 2.0 * kappa ** (t - 5.0), 0.0), rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float32_and_float64_agree_on_a_simple_trace(dtype):
    _, v, _, _ = one_neuron(ahpsim.LIF(tau_m=20.0, v_th=100.0), 50, np.full(50, 0.1), dtype=dtype)
    alpha = math.exp(-1 / 20)
    np.testing.assert_allclose(v, 0.1 * (1 - alpha ** (np.arange(50) + 1)) / (1 - alpha), rtol=1e-5)
