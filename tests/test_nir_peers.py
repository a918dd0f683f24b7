"""NIR against other frameworks, with golden spikes made by committed scripts in the peers' environment
(``tests/nir_golden/``: ``make_ahpsim_nir.py`` here, ``generate_snntorch.py`` and ``generate_norse.py``
with snnTorch 1.0 / Norse 1.1):

* snnTorch -> NIR -> ahpsim: a recurrent LIF network built in snnTorch (``RLeaky``, reset to zero) and
  exported by snnTorch gives snnTorch's spikes here, every one (float32 and float64).
* ahpsim -> NIR -> Norse: a recurrent LIF network exported by ahpsim (``unit_r=True``) and read by
  Norse's importer gives ahpsim's spikes in Norse, every one.
* ahpsim -> NIR -> snnTorch: snnTorch 1.0's importer feeds a recurrent layer's input through its
  recurrent weights too (``_create_rnn_subgraph`` wires the subgraph's input into ``W_rec``), so 70 %
  of the spike entries agree; its spikes are exactly a simulation of that wiring.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest

nir = pytest.importorskip("nir")

from ahpsim.nir import NIRApproximationWarning, from_nir, to_nir  # noqa: E402

GOLDEN = Path(__file__).resolve().parent / "nir_golden"
pytestmark = pytest.mark.nir


def _maker():
    spec = importlib.util.spec_from_file_location("make_ahpsim_nir", GOLDEN / "make_ahpsim_nir.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def golden():
    return np.load(GOLDEN / "snntorch_golden.npz"), np.load(GOLDEN / "norse_golden.npz")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_snntorch_export_runs_here_with_snntorchs_spikes(golden, dtype):
    snn, _ = golden
    net = from_nir(GOLDEN / "snntorch_rlif.nir", dt=1e-4, dtype=dtype)  # snnTorch writes dt = 1e-4
    res = net.run(inputs={"input": snn["x"]})
    (pop,) = [g for g in net.populations if g.model.spiking]
    z = res.raster(pop)[0]
    assert z.shape == snn["spikes_snntorch"].shape and 0.1 < z.mean() < 0.6
    np.testing.assert_array_equal(z, snn["spikes_snntorch"])


def test_ahpsim_export_runs_in_norse_with_ahpsims_spikes(golden):
    snn, norse = golden
    net = _maker().build(1e-3)
    z = net.run(inputs={"input": snn["x"]}).raster("lif")[0]
    assert z.sum() > 500
    np.testing.assert_array_equal(z, norse["spikes_norse_import"])


def test_snntorch_import_of_an_ahpsim_export_follows_its_wiring(golden):
    snn, _ = golden
    net = _maker().build()
    z = net.run(inputs={"input": snn["x"]}).raster("lif")[0]
    theirs = snn["spikes_snntorch_import"]
    assert 0.6 < np.mean(z == theirs) < 0.8  # documented in docs/nir.md
    g = nir.read(GOLDEN / "ahpsim_rlif.nir")
    W_in = g.nodes["proj0.d0"].weight.astype(np.float32)
    W_rec = g.nodes["proj1.d1"].weight.astype(np.float32)
    v, zp, out = np.zeros(12, np.float32), np.zeros(12, np.float32), []
    for x in snn["x"].astype(np.float32):
        v = np.float32(0.875) * v + W_rec @ (W_in @ x + zp)  # the input through W_rec as well
        zp = (v > 1).astype(np.float32)
        v = v * (1 - zp)
        out.append(zp > 0)
    np.testing.assert_array_equal(np.array(out), theirs)


@pytest.mark.parametrize("name,dt,unit_r", [("ahpsim_rlif.nir", 1e-4, False), ("ahpsim_rlif_unit_r.nir", 1e-3, True)])
def test_committed_exports_are_what_to_nir_writes_today(name, dt, unit_r):
    """The golden files were made from these NIR files: they must still be what ahpsim writes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NIRApproximationWarning)
        now = to_nir(_maker().build(dt), dt=dt, unit_r=unit_r)
    saved = nir.read(GOLDEN / name)
    assert set(saved.nodes) == set(now.nodes) and sorted(saved.edges) == sorted(now.edges)
    for key, node in now.nodes.items():
        for field in ("weight", "tau", "r", "v_threshold"):
            if hasattr(node, field):
                np.testing.assert_allclose(getattr(saved.nodes[key], field), getattr(node, field), rtol=1e-12)


def test_unit_r_round_trip_keeps_the_spikes(golden):
    snn, _ = golden
    net = _maker().build(1e-3)
    back = from_nir(to_nir(net, dt=1e-3, unit_r=True), dtype="float64")
    np.testing.assert_array_equal(back.run(inputs={"input": snn["x"]}).raster("lif"),
                                  net.run(inputs={"input": snn["x"]}).raster("lif"))
    g = to_nir(net, dt=1e-3, unit_r=True)
    assert np.all(g.nodes["lif"].r == 1.0)
    np.testing.assert_allclose(g.nodes["proj0.d0"].weight, net.projection(0).to_dense() * 8.0, rtol=1e-9)


def test_spiking_rnn_round_trip_through_a_nir_file(tmp_path):
    """A SpikingRNN (LIF + AHP + ALIF, delays, readout) -> NIR file -> SpikingRNN for further training:
    the same spikes and readout (float64), and a graph without a readout is refused by name."""
    torch = pytest.importorskip("torch")
    from ahpsim.torch import SpikingRNN
    from ahpsim.torch import from_nir as rnn_from_nir
    from ahpsim.torch import to_nir as rnn_to_nir

    rng = np.random.default_rng(0)
    model = SpikingRNN(6, 3, n_lif=5, n_ahp=4, n_alif=3, rec_delay=rng.integers(1, 4, (12, 12)), reset="zero",
                       w_in_scale=3.0, seed=2, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NIRApproximationWarning)
        nir.write(tmp_path / "rnn.nir", rnn_to_nir(model))
    back = rnn_from_nir(tmp_path / "rnn.nir", dtype=torch.float64)
    assert (back.n_lif, back.n_ahp, back.n_alif) == (5, 4, 3)
    x = torch.as_tensor(rng.random((2, 80, 6)) < 0.2)
    with torch.no_grad():
        a, b = model(x), back(x)
    assert a.z.sum() > 0
    torch.testing.assert_close(b.z, a.z, rtol=0, atol=0)
    torch.testing.assert_close(b.y, a.y, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="one input and one readout"):
        rnn_from_nir(GOLDEN / "snntorch_rlif.nir", dt=1e-4)
