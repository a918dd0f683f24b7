"""ahpsim.energy: exact operation counts on hand-countable networks, the Loihi 1 arithmetic, and the
LSTM multiply-accumulate formula against a direct count."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

import ahpsim
from ahpsim import energy


def chain(ahp_last: bool = False) -> tuple[ahpsim.Network, ahpsim.Group]:
    """input -> n0 -> n1 -> n2 -> readout; each spike of the previous neuron makes the next one spike
    once (weight 1 > threshold 0.5, reset to zero), delay 1 step."""
    net = ahpsim.Network(dt=1.0)
    x = net.add_input(1, "x")
    lif = ahpsim.LIF(tau_m=20.0, v_th=0.5, reset="zero")
    a = net.add_population(2, lif, "a")  # n0, n1
    b = net.add_population(1, ahpsim.AHP(tau_m=20.0, tau_ahp=700.0, beta=0.756, v_th=0.5) if ahp_last else lif, "b")
    out = net.add_population(1, ahpsim.Readout(tau=20.0), "out")
    net.connect(x, a, weights=1.0, pre=[0], post=[0], delay=0)
    net.connect(a, a, weights=1.0, pre=[0], post=[1], delay=1)
    net.connect(a, b, weights=1.0, pre=[1], post=[0], delay=1)
    net.connect(b, out, weights=1.0, pre=[0], post=[0], delay=1)
    return net, x


@pytest.mark.parametrize("ahp_last", [False, True])
def test_chain_exact_counts(ahp_last: bool) -> None:
    net, x = chain(ahp_last)
    T = 10
    X = np.zeros((T, 1), dtype=bool)
    X[0, 0] = True
    c0 = net.counters()
    res = net.run(inputs={x: X})
    # the spikes are the hand-derived ones: n0 at 0, n1 at 1, n2 at 2, nothing else
    assert np.array_equal(np.flatnonzero(res.raster("a")[0, :, 0]), [0])
    assert np.array_equal(np.flatnonzero(res.raster("a")[0, :, 1]), [1])
    assert np.array_equal(np.flatnonzero(res.raster("b")[0, :, 0]), [2])
    c = energy.count_operations(net, 1, T, since=c0)
    assert c.spikes == 3
    assert c.input_synaptic_ops == 1                # one input spike x fan-out 1
    assert c.recurrent_synaptic_ops == 3            # 3 spikes x fan-out 1 each (n2's goes to the readout)
    assert c.synaptic_ops == 4
    assert c.neuron_updates == 4 * T                # N x T, readout included
    assert c.spiking_neuron_updates == 3 * T
    assert c.compartment_updates == (5 if ahp_last else 4) * T  # an AHP neuron is 2 Loihi compartments
    assert c.dense_synaptic_ops == 4 * T            # 4 stored synapses, every step
    assert c.drive_events == 0
    assert c.activation_sparsity == pytest.approx(1 - 3 / (3 * T))
    assert c.per_inference()["synaptic_ops"] == 4

    est = energy.loihi1_estimate(c)
    L = energy.LOIHI1
    cx = (5 if ahp_last else 4) * T
    assert est["energy_J"] == pytest.approx((4 * L["synaptic_spike_op_pJ"] + cx * L["neuron_update_active_pJ"]
                                             + 3 * L["within_tile_spike_pJ"]) * 1e-12)
    assert est["energy_J_low"] == pytest.approx((4 * 23.6 + cx * 52.0 + 3 * 1.7) * 1e-12)
    assert est["latency_s"] == pytest.approx((4 * 3.5 + cx * 8.4 + 3 * 2.1 + T * 113.0) * 1e-9)
    assert est["cores"] == 1


def test_fanout_and_trials() -> None:
    """synaptic ops = spikes x fan-out, summed over trials; per inference divides by the trials."""
    net = ahpsim.Network(dt=1.0)
    x = net.add_input(1, "x")
    src = net.add_population(1, ahpsim.LIF(tau_m=20.0, v_th=0.5, reset="zero"), "src")
    tgt = net.add_population(5, ahpsim.LIF(tau_m=20.0, v_th=100.0), "tgt")  # never spike
    net.connect(x, src, weights=1.0, pre=[0], post=[0], delay=0)
    net.connect(src, tgt, np.full((5, 1), 0.1), delay=2)
    T = 12
    X = np.zeros((2, T, 1), dtype=bool)
    X[0, [0, 3, 6], 0] = True    # trial 0: 3 source spikes
    X[1, [1], 0] = True          # trial 1: 1 source spike
    res = net.run(inputs={x: X})
    assert res.raster("src").sum() == 4 and res.raster("tgt").sum() == 0
    c = energy.count_operations(net, 2, T)
    assert c.spikes == 4
    assert c.recurrent_synaptic_ops == 4 * 5
    assert c.input_synaptic_ops == 4
    assert c.neuron_updates == 6 * T * 2
    assert c.per_inference()["synaptic_ops"] == (20 + 4) / 2
    assert c.dense_synaptic_ops == 6 * T * 2
    assert c.synaptic_op_sparsity == pytest.approx(1 - 24 / (6 * T * 2))


def test_synaptic_ops_counted_when_the_spike_is_routed() -> None:
    """A spike's synaptic ops are counted at the step it is emitted (routed into the delay buffers),
    even when the delayed delivery falls after the run, and never again."""
    net, x = chain()
    X = np.zeros((3, 1), dtype=bool)
    X[0, 0] = True
    net.run(inputs={x: X})  # n2 spikes at step 2; its readout synapse (delay 1) delivers at step 3
    c = energy.count_operations(net, 1, 3)
    assert c.spikes == 3
    assert c.recurrent_synaptic_ops == 3
    c0 = net.counters()
    net.run(inputs={x: np.zeros((2, 1), dtype=bool)})
    assert energy.count_operations(net, 1, 2, since=c0).recurrent_synaptic_ops == 0


def test_drive_events_are_not_synaptic_ops() -> None:
    net = ahpsim.Network(dt=1.0, seed=3)
    p = net.add_population(10, ahpsim.LIF(tau_m=20.0, v_th=1e9), "p")
    net.add_poisson_drive(p, rate=500.0, weight=0.1)
    net.run(100)
    c = energy.count_operations(net, 1, 100)
    assert c.synaptic_ops == 0 and c.spikes == 0
    assert c.drive_events == net.counters()["drive_events"] > 0
    with_drive = energy.loihi1_estimate(c)["breakdown_J"]["synaptic_ops"]
    assert with_drive == pytest.approx(c.drive_events * 23.6e-12)
    assert energy.loihi1_estimate(c, include_drive=False)["breakdown_J"]["synaptic_ops"] == 0


def test_count_mismatch_raises() -> None:
    net, x = chain()
    net.run(inputs={x: np.zeros((5, 1), dtype=bool)})
    with pytest.raises(ValueError, match="neuron updates"):
        energy.count_operations(net, 1, 4)
    with pytest.raises(ValueError):
        energy.count_operations(net, 0, 5)


def _lstm_direct_macs(n_in: int, n_h: int, n_out: int, T: int, seed: int = 0) -> tuple[int, np.ndarray]:
    """Run an LSTM with explicit loops, counting every multiply-accumulate (bias: one per gate unit)."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(4 * n_h, n_in + n_h))
    b = rng.normal(size=4 * n_h)
    Wo = rng.normal(size=(n_out, n_h))
    bo = rng.normal(size=n_out)
    h = np.zeros(n_h)
    cell = np.zeros(n_h)
    macs = 0
    for _ in range(T):
        z = np.concatenate([rng.normal(size=n_in), h])
        g = np.empty(4 * n_h)
        for r in range(4 * n_h):
            acc = 0.0
            for k in range(n_in + n_h):
                acc += W[r, k] * z[k]
                macs += 1
            acc += b[r]
            macs += 1
            g[r] = acc
        i, f, o = (1 / (1 + np.exp(-g[s * n_h:(s + 1) * n_h])) for s in range(3))
        cell = f * cell + i * np.tanh(g[3 * n_h:])
        h = o * np.tanh(cell)
    y = np.empty(n_out)
    for r in range(n_out):
        acc = 0.0
        for k in range(n_h):
            acc += Wo[r, k] * h[k]
            macs += 1
        y[r] = acc + bo[r]
        macs += 1
    return macs, y


@pytest.mark.parametrize("n_in,n_h,n_out,T", [(3, 4, 2, 5), (1, 1, 1, 1), (7, 5, 3, 2)])
def test_lstm_macs_formula_matches_direct_count(n_in: int, n_h: int, n_out: int, T: int) -> None:
    direct, _ = _lstm_direct_macs(n_in, n_h, n_out, T)
    c = energy.lstm_costs(n_in, n_h, n_out, T)
    assert c["macs_per_step"] == 4 * (n_in + n_h + 1) * n_h
    assert c["macs"] == direct == 4 * (n_in + n_h + 1) * n_h * T + (n_h + 1) * n_out
    assert c["parameters"] == 4 * (n_in + n_h + 1) * n_h + (n_h + 1) * n_out
    assert c["nonlinearities"] == 5 * n_h * T
    # every parameter read once per step (cell) / once (readout), activations x, h, c read and h, c written
    assert c["memory_traffic_bytes"] == 4 * ((4 * (n_in + n_h + 1) * n_h + n_in + 4 * n_h) * T + (n_h + 1) * n_out)
    every = energy.lstm_costs(n_in, n_h, n_out, T, readout_every_step=True)
    assert every["macs"] == 4 * (n_in + n_h + 1) * n_h * T + (n_h + 1) * n_out * T


def test_lstm_hidden_for_params() -> None:
    for n_params, n_in, n_out in [(79_000, 80, 10), (1_000, 3, 2), (10, 1, 1)]:
        h = energy.lstm_hidden_for_params(n_params, n_in, n_out)
        p = lambda k: 4 * (n_in + k + 1) * k + (k + 1) * n_out  # noqa: E731
        assert all(abs(p(h) - n_params) <= abs(p(k) - n_params) for k in range(1, 400))
    with pytest.raises(ValueError):
        energy.lstm_costs(-1, 2, 3, 4)


def test_compartments_per_neuron() -> None:
    assert [energy.compartments_per_neuron(k) for k in ("LIF", "AHP", "ALIF", "Readout")] == [1, 2, 2, 1]
    with pytest.raises(ValueError):
        energy.compartments_per_neuron("HH")


def test_report_plot_and_cli(tmp_path) -> None:
    net, x = chain(ahp_last=True)
    X = np.zeros((2, 8, 1), dtype=bool)
    X[:, 0, 0] = True
    net.run(inputs={x: X})
    rep = energy.energy_report(net, 2, 8, lstm_hidden=3)
    assert rep["per_inference"]["synaptic_ops"] == 4
    assert rep["lstm"]["macs"] == 4 * (1 + 3 + 1) * 3 * 8 + 4 * 1
    assert rep["snn_ops_vs_lstm_macs"] == pytest.approx(4 / rep["lstm"]["macs"])
    assert rep["rates"]["spikes_per_neuron_per_step"] == pytest.approx(3 / (3 * 8))
    png = energy.plot_report(rep, tmp_path / "e.png", "chain")
    assert png.stat().st_size > 1000

    ap = argparse.ArgumentParser()
    energy.add_energy_parser(ap.add_subparsers(dest="command"))
    args = ap.parse_args(["energy", "--network", "random", "--digits", "2", "--steps", "30", "--threads", "1",
                          "--out", str(tmp_path / "cli"), "--no-plot"])
    assert args.func(args) == 0
    d = json.loads((tmp_path / "cli" / "energy.json").read_text())
    assert d["counts"]["neuron_updates"] == d["counts"]["n_neurons"] * 30 * 2
    assert d["loihi1"]["energy_J"] > 0 and "Davies" in d["loihi1"]["source"]
