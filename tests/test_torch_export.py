"""ahpsim.torch export: to_network / from_network against the C++ kernel, spike for spike."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import ahpsim  # noqa: E402

from ahpsim.torch.export import from_network, run_network, to_network  # noqa: E402
from ahpsim.torch.modules import SpikingRNN  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("torch_one_thread")]



def _random_model(dtype=torch.float32, **opts):
    rng = np.random.default_rng(7)
    if opts.pop("delays", False):
        opts.update(rec_delay=rng.integers(1, 5, (30, 30)), in_delay=rng.integers(0, 3, (30, 8)))
    m = SpikingRNN(8, 3, n_lif=10, n_ahp=10, n_alif=10, w_in_scale=4.0, w_rec_scale=1.5, p_rec=0.5, p_in=0.8,
                   tau_m=rng.uniform(5, 30, 30), seed=1, dtype=dtype, **opts)
    with torch.no_grad():
        if m.bias is not None:
            m.bias.normal_(0, 0.05, generator=torch.Generator().manual_seed(0))
        m.b_out.normal_(0, 0.1, generator=torch.Generator().manual_seed(1))
    return m


CASES = [dict(), dict(reset="zero"), dict(n_ref=2), dict(delays=True, out_delay=0, bias=True),
         dict(reset="zero", n_ref=2, refractory_mode="clamp"),
         dict(tau_out=0.0, out_delay=3, beta_ahp=0.3, tau_ahp=50.0)]


@pytest.mark.parametrize("opts", CASES)
@pytest.mark.parametrize("quantize", [False, True])
def test_torch_and_kernel_spike_for_spike(opts, quantize):
    m = _random_model(**dict(opts))
    if quantize:
        m.quantize_(2.0 ** -12)
    x = torch.rand(4, 400, 8, generator=torch.Generator().manual_seed(2)) < 0.05
    with torch.no_grad():
        o = m(x)
    z, y = run_network(to_network(m), x)
    zt = o.z.numpy().astype(bool)
    assert zt.sum() > 500
    assert np.array_equal(zt, z)  # float32 both; in these cases no threshold ties at all
    if quantize:  # exactly representable sums: even the readouts agree bit for bit
        assert np.array_equal(o.y.numpy(), y)
    else:
        np.testing.assert_allclose(o.y.numpy(), y, rtol=1e-5, atol=1e-4)


def test_float64_models_export_to_float64_kernel():
    m = _random_model(torch.float64, delays=True)
    x = torch.rand(2, 300, 8, generator=torch.Generator().manual_seed(3)) < 0.05
    with torch.no_grad():
        o = m(x)
    net = to_network(m)
    assert net.dtype == np.float64
    z, y = run_network(net, x)
    assert np.array_equal(o.z.numpy().astype(bool), z)
    np.testing.assert_allclose(o.y.numpy(), y, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("opts", CASES)
def test_from_network_roundtrip(opts):
    m = _random_model(**dict(opts))
    net = to_network(m)
    m2 = from_network(net)
    assert (m2.n_lif, m2.n_ahp, m2.n_alif, m2.n_ref, m2.reset, m2.refractory_mode, m2.out_delay) == \
        (m.n_lif, m.n_ahp, m.n_alif, m.n_ref, m.reset, m.refractory_mode, m.out_delay)
    for a, b in zip(m.effective_weights(), m2.effective_weights()):
        assert torch.equal(a, b)
    x = torch.rand(2, 200, 8, generator=torch.Generator().manual_seed(4)) < 0.05
    with torch.no_grad():
        o, o2 = m(x), m2(x)
    assert torch.equal(o.z, o2.z) and torch.equal(o.y, o2.y)


def test_from_network_of_a_hand_built_kernel_network():
    """A network written directly against the kernel API (populations in another order, connection lists)
    is imported, trained-ready, and reproduces the kernel's spikes."""
    rng = np.random.default_rng(0)
    net = ahpsim.Network(dt=1.0, dtype="float32")
    x = net.add_input(5, name="x")
    ahp = net.add_population(6, ahpsim.AHP(tau_m=20.0, tau_ahp=300.0, beta=0.5), name="ahp")
    lif = net.add_population(7, ahpsim.LIF(tau_m=15.0, v_th=0.8), name="lif")
    out = net.add_population(2, ahpsim.Readout(tau=10.0), name="out")
    net.connect(x, ahp, rng.normal(0, 1.5, (6, 5)).astype(np.float32))
    net.connect(x, lif, rng.normal(0, 1.5, (7, 5)).astype(np.float32), delay=1)
    # (docs/api.md spells the keyword `weight=`, network.py `weights=`: pass it by position)
    net.connect(lif, ahp, [0.5, -0.3, 0.8, 1.1], pre=[0, 1, 2, 3], post=[0, 0, 5, 4], delay=[1, 2, 3, 1])
    net.connect(ahp, lif, rng.normal(0, 0.5, (7, 6)).astype(np.float32), delay=2)
    net.connect(lif, out, rng.normal(0, 1, (2, 7)).astype(np.float32))
    net.connect(ahp, out, rng.normal(0, 1, (2, 6)).astype(np.float32))
    xin = rng.random((3, 300, 5)) < 0.1
    res = net.run(300, inputs={"x": xin})
    zk = np.concatenate([res.raster(lif), res.raster(ahp)], axis=2)  # model order: LIF, then AHP
    m = from_network(net)
    assert (m.n_lif, m.n_ahp) == (7, 6)
    with torch.no_grad():
        o = m(torch.from_numpy(xin))
    assert zk.sum() > 100
    assert np.array_equal(o.z.numpy().astype(bool), zk)
    np.testing.assert_allclose(o.y.numpy(), res.readout(out), rtol=1e-5, atol=1e-5)


def test_refractory_mode_is_saved_and_old_checkpoints_load_as_block():
    m = _random_model(n_ref=2, refractory_mode="clamp")
    sd = m.state_dict()
    assert SpikingRNN.from_state_dict(sd).refractory_mode == "clamp"
    del sd["_extra_state"]["config"]["refractory_mode"]  # a checkpoint written before the option
    assert SpikingRNN.from_state_dict(sd).refractory_mode == "block"
    m.refractory_mode = "block"  # settable (fine-tuning a trained network into the chip's behaviour)
    assert m.config()["refractory_mode"] == "block"
    with pytest.raises(ValueError, match="refractory_mode must be 'block' or 'clamp'"):
        m.refractory_mode = "hold"
    m.refractory_mode = np.str_("clamp")  # stored as a plain str: torch.load(weights_only=True) reads it
    assert type(m.config()["refractory_mode"]) is str
    # an invalid mode is refused whether or not the network has a refractory period, on every path
    from ahpsim.torch import functional as F
    for n_ref in (0, 2):
        p = F.LIFParams(alpha=0.9, n_ref=n_ref, refractory_mode="hold")
        with pytest.raises(ValueError, match="refractory_mode must be"):
            F.lif_step(torch.ones(1, 2), None, p)
        k = _random_model(n_ref=n_ref).layer_constants()
        k.refractory_mode = None
        x = torch.rand(5, 1, 8) < 0.5
        m2 = _random_model(n_ref=n_ref)
        with pytest.raises(ValueError, match="refractory_mode must be"):
            F.recurrent_layer_events(x, m2.w_in, m2.w_rec, k)
        with pytest.raises(ValueError, match="refractory_mode must be"):
            F.recurrent_layer(torch.zeros(5, 1, 30), [m2.w_rec], k)
    sd = _random_model().state_dict()
    sd["_extra_state"]["config"].update(refractory_mode="hold", n_ref=5)
    m3 = _random_model()
    with pytest.raises(ValueError, match="refractory_mode must be"):
        m3.load_state_dict(sd)
    assert m3.n_ref == 0  # refused before anything changed
