"""ahpsim.nir: ahpsim -> NIR file -> ahpsim gives the same spikes; a graph written by another tool is
read with the documented conventions (checked against a numpy simulation of them); nodes ahpsim cannot
represent are named in the error."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import ahpsim

nir = pytest.importorskip("nir")
from ahpsim.nir import NIRApproximationWarning, from_nir, to_nir  # noqa: E402

pytestmark = pytest.mark.nir


def _mixed(dtype):
    rng = np.random.default_rng(0)
    net = ahpsim.Network(dtype=dtype, seed=2)
    x = net.add_input(6, name="x")
    a = net.add_population(8, ahpsim.LIF(tau_m=15.0, reset="zero"), name="a")
    b = net.add_population(7, ahpsim.AHP(beta=0.2, tau_ahp=80.0), name="b")
    c = net.add_population(5, ahpsim.ALIF(beta=0.3, tau_a=60.0, n_ref=1), name="c")
    o = net.add_population(3, ahpsim.Readout(tau=10.0), name="o")
    net.connect(x, a, rng.normal(1, .5, (8, 6)), delay=rng.integers(0, 3, (8, 6)))
    net.connect(a, b, rng.normal(.5, .5, (7, 8)) * (rng.random((7, 8)) < .6), delay=rng.integers(1, 4, (7, 8)))
    net.connect(b, c, rng.normal(.6, .4, (5, 7)))
    net.connect(c, a, rng.normal(0, .4, (8, 5)), delay=2)
    net.connect(b, o, rng.normal(0, 1, (3, 7)), delay=0)
    return net


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_round_trip_through_a_nir_file_gives_the_same_spikes(tmp_path, dtype):
    net = _mixed(dtype)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = to_nir(net)
    msgs = [str(w.message) for w in caught if issubclass(w.category, NIRApproximationWarning)]
    assert any("ALIF population 'c'" in m for m in msgs) and any("refractoriness" in m for m in msgs)
    assert isinstance(graph.nodes["b.ahp"], nir.LI) and isinstance(graph.nodes["b"], nir.LIF)  # AHP subgraph
    assert graph.nodes["b.ahp_in"].weight[0, 0] == pytest.approx(0.2)
    nir.write(tmp_path / "net.nir", graph)
    back = from_nir(tmp_path / "net.nir")  # the dtype comes from the graph's metadata
    assert back.dtype == np.dtype(dtype)
    X = np.random.default_rng(1).random((2, 300, 6)) < 0.3
    r1, r2 = net.run(inputs={"x": X}), back.run(inputs={"x": X})
    for g in ("a", "b", "c"):
        assert r1.raster(g).sum() > 100
        np.testing.assert_array_equal(r1.raster(g), r2.raster(g))
    np.testing.assert_array_equal(r1.readout("o"), r2.readout("o"))


def test_the_shipped_smnist_network_survives_a_round_trip(tmp_path):
    from ahpsim.examples import load_demo_digits, load_demo_model

    net, _ = load_demo_model(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NIRApproximationWarning)
        nir.write(tmp_path / "smnist.nir", to_nir(net))
    back = from_nir(tmp_path / "smnist.nir", dtype=net.dtype.name)
    X = ahpsim.datasets.threshold_crossing_encode(load_demo_digits()[0][:4])
    r1, r2 = net.run(inputs={"x": X}), back.run(inputs={"x": X})
    for g in ("lif", "ahp"):
        np.testing.assert_array_equal(r1.raster(g), r2.raster(g))
    np.testing.assert_array_equal(r1.readout("out"), r2.readout("out"))


def test_a_foreign_lif_graph_follows_the_documented_conventions():
    """Input -> Linear -> LIF (recurrent Linear, one Delay) -> Linear -> LI, as other tools write it:
    ahpsim decays as forward Euler (1 - dt/tau), takes r * dt / tau of the input per step, resets to v_reset = 0,
    delays neuron -> neuron synapses by one step (plus a Delay node's delay / dt) and input synapses by none."""
    rng = np.random.default_rng(3)
    dt, n_in, n, n_out = 0.5, 4, 6, 2
    tau, r, vth = rng.uniform(4, 12, n), rng.uniform(0.5, 2, n), np.full(n, 1.0)
    tau_o, r_o = np.full(n_out, 5.0), np.full(n_out, 5.0 / dt)
    W_in, W_rec, W_out = rng.normal(1.5, .5, (n, n_in)), rng.normal(0, .8, (n, n)), rng.normal(0, 1, (n_out, n))
    g = nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([n_in])}),
        "fc": nir.Linear(weight=W_in), "lif": nir.LIF(tau=tau, r=r, v_leak=np.zeros(n), v_threshold=vth),
        "rec": nir.Linear(weight=W_rec), "rec.delay": nir.Delay(delay=np.full(n, 2 * dt)),
        "ro": nir.Linear(weight=W_out), "li": nir.LI(tau=tau_o, r=r_o, v_leak=np.zeros(n_out)),
        "out": nir.Output(output_type={"output": np.array([n_out])})},
        edges=[("in", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "rec.delay"), ("rec.delay", "lif"),
               ("lif", "ro"), ("ro", "li"), ("li", "out")])
    net = from_nir(g, dt=dt, dtype="float64")
    X = rng.random((150, n_in)) < 0.3
    res = net.run(inputs={"in": X})
    # the numpy reference of the conventions
    alpha, gain = 1.0 - dt / tau, r * dt / tau            # forward Euler, as NIR's discrete readers
    kappa, gain_o = 1.0 - dt / tau_o, r_o * dt / tau_o
    v, y, z_hist, zs, ys = np.zeros(n), np.zeros(n_out), [np.zeros(n)] * 4, [], []
    for t in range(150):
        I = gain * (W_in @ X[t] + W_rec @ z_hist[-3])          # recurrent: 1 step + Delay(2 dt) = 3 steps
        v = alpha * (1.0 - z_hist[-1]) * v + I                 # NIR's LIF: reset to v_reset = 0
        z = (v > vth).astype(float)
        y = kappa * y + gain_o * (W_out @ z_hist[-1])          # into the LI: one step
        z_hist = z_hist[1:] + [z]
        zs.append(z)
        ys.append(y.copy())
    np.testing.assert_array_equal(res.raster("lif")[0], np.array(zs, bool))
    assert np.array(zs).sum() > 50
    np.testing.assert_allclose(res.readout("li")[0], np.array(ys), rtol=1e-9, atol=1e-12)


def test_nodes_ahpsim_cannot_represent_are_named():
    g = nir.NIRGraph(nodes={"in": nir.Input(input_type={"input": np.array([1, 8, 8])}),
                            "conv": nir.Conv2d(input_shape=(8, 8), weight=np.zeros((2, 1, 3, 3)), stride=1, padding=0,
                                               dilation=1, groups=1, bias=np.zeros(2)),
                            "out": nir.Output(output_type={"output": np.array([2, 6, 6])})},
                     edges=[("in", "conv"), ("conv", "out")], type_check=False)
    with pytest.raises(NotImplementedError, match="node 'conv' of type Conv2d"):
        from_nir(g, dt=1.0)
    with pytest.raises(ValueError, match="dt: required"):
        from_nir(nir.NIRGraph(nodes={}, edges=[]))
    with pytest.raises(TypeError, match="expected an ahpsim.Network"):
        to_nir("not a network")


def test_command_line_export_and_run(tmp_path, capsys):
    """``ahpsim nir export`` writes a saved network as NIR; ``ahpsim nir run`` simulates the file; a
    missing or broken file is one line with exit code 2."""
    import json

    from ahpsim.cli import main

    net = _mixed("float32")
    net.save(tmp_path / "net.npz")
    assert main(["nir", "export", str(tmp_path / "net.npz"), str(tmp_path / "net.nir")]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["nodes"] > 10 and any("ALIF" in a for a in out["approximations"])
    assert main(["nir", "run", str(tmp_path / "net.nir"), "--steps", "200", "--rate", "0.3"]) == 0
    rates = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["spikes_per_neuron_per_step"]
    assert set(rates) == {"a", "b", "c"} and rates["a"] > 0
    (tmp_path / "bad.nir").write_text("not hdf5")
    for argv, msg in ((["nir", "run", str(tmp_path / "missing.nir")], "no NIR file at"),
                      (["nir", "run", str(tmp_path / "bad.nir")], "is not a readable NIR file"),
                      (["nir", "run", str(tmp_path / "net.nir"), "--steps", "0"], "--steps must be >= 1")):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and msg in err


def _small_graph(lif=None, W=None):
    n = 3
    lif = lif or nir.LIF(tau=np.full(n, 5.0), r=np.full(n, 5.0), v_leak=np.zeros(n), v_threshold=np.ones(n),
                         v_reset=np.zeros(n))
    return nir.NIRGraph(nodes={"in": nir.Input(input_type={"input": np.array([2])}),
                               "fc": nir.Linear(weight=np.ones((n, 2)) if W is None else W), "lif": lif,
                               "out": nir.Output(output_type={"output": np.array([n])})},
                        edges=[("in", "fc"), ("fc", "lif"), ("lif", "out")], type_check=False)


def _lif(**kw):
    p = dict(tau=np.full(3, 5.0), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3), v_reset=np.zeros(3))
    p.update(kw)
    return nir.LIF(**p)


@pytest.mark.parametrize("graph,kind,message", [
    (lambda: _small_graph(W=np.full((3, 2), np.nan)), ValueError, r"node 'fc' \(Linear\): weight must be finite"),
    (lambda: _small_graph(W=np.ones((4, 2))), ValueError, r"node 'fc' \(Linear\): weight has shape \(4, 2\).*expected \(3, 2\)"),
    (lambda: _small_graph(_lif(tau=np.array([5.0, np.nan, 5.0]))), ValueError, r"node 'lif' \(LIF\): tau must be finite"),
    (lambda: _small_graph(_lif(v_threshold=np.array([1.0, np.inf, 1.0]))), ValueError, r"node 'lif' \(LIF\): v_threshold must be finite"),
    (lambda: _small_graph(_lif(tau=np.full(3, 0.5))), NotImplementedError, r"node 'lif' \(LIF\): time constants 0.5..0.5 below dt"),
    (lambda: _small_graph(_lif(tau=np.full(3, -5.0))), NotImplementedError, r"node 'lif' \(LIF\): time constants"),
])
def test_malformed_graphs_name_the_node(graph, kind, message):
    with pytest.raises(kind, match=message):
        from_nir(graph(), dt=1.0)


def test_a_truncated_nir_file_is_a_clear_error(tmp_path):
    nir.write(tmp_path / "ok.nir", _small_graph())
    data = (tmp_path / "ok.nir").read_bytes()
    (tmp_path / "cut.nir").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="is not a readable NIR file"):
        from_nir(tmp_path / "cut.nir", dt=1.0)
    assert from_nir(tmp_path / "ok.nir", dt=1.0).n_synapses == 6
