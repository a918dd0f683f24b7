"""ahpsim.torch.loihi_aware: a model trained on the Loihi weight grid and time constants quantizes with
no weight error, and the float kernel and the integer engine then compute the same network."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ahpsim.loihi import quantize  # noqa: E402
from ahpsim.loihi.quantize import decay_from_tau  # noqa: E402
from ahpsim.torch import SpikingRNN, load_model, to_network  # noqa: E402
from ahpsim.torch.loihi import loihi_aware  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.loihi]


def _model(seed=0):
    # (the AHP strength these tests were written with; the default is now the chip network's 0.756 / 64)
    return SpikingRNN(20, 4, n_lif=30, n_ahp=20, reset="zero", w_in_scale=3.0, w_rec_scale=1.0, seed=seed,
                      p_rec=0.5, beta_ahp=0.756)


def test_weights_land_on_the_quantization_grid():
    m = loihi_aware(_model(), 508)
    q = quantize(to_network(m, dtype="float64"), vth_mant=508)
    for p in q.report.projections:
        assert p["max_rel_err"] < 1e-6 and p["zeroed"] == 0, p  # float32 model: its own rounding only
    # realized time constants and AHP strength are the model's own
    ahp = next(p for p in q.report.populations if p["kind"] == "AHP")
    assert ahp["ahp_rel_err"] < 1e-12
    assert np.allclose(np.exp(-1.0 / m.tau_ahp[m.n_lif:]), 1 - decay_from_tau(700.0) / 4096, rtol=0, atol=1e-15)
    assert np.allclose(np.exp(-1.0 / m.tau_m), 1 - decay_from_tau(20.0) / 4096, rtol=0, atol=1e-15)
    # without the grid, the same weights are off by up to half a mantissa step
    q0 = quantize(to_network(_model(), dtype="float64"), vth_mant=508)
    assert max(p["max_rel_err"] for p in q0.report.projections) > 1e-3


def test_straight_through_gradient_and_state_dict_round_trip():
    m = loihi_aware(_model(), 508)
    W_in, W_rec, W_out = m.effective_weights()
    (W_in.sum() + 2 * W_rec.sum() + 3 * W_out.sum()).backward()
    assert torch.equal(m.w_in.grad, m.in_mask.to(m.w_in.dtype))
    assert torch.equal(m.w_rec.grad, 2 * m.rec_mask.to(m.w_rec.dtype))
    m2 = load_model({"model": m.state_dict()})
    assert m2.loihi_grid == 508 and np.array_equal(m2.tau_ahp, m.tau_ahp)
    for a, b in zip(m.effective_weights(), m2.effective_weights()):
        assert torch.equal(a, b)
    m2.set_loihi_grid(None)
    assert not torch.equal(m2.effective_weights()[1], W_rec)
    with pytest.raises(ValueError, match="vth_mant must be in"):
        m2.set_loihi_grid(0)


def test_float_kernel_and_integer_engine_agree_on_a_grid_model():
    """On the grid, the only differences left are the integer engine's rounding of decays (toward zero,
    a fraction of one of 32,512 units per threshold): nearly all spikes coincide on short runs."""
    m = loihi_aware(_model(1), 508)
    net = to_network(m, dtype="float64")
    q = quantize(net, vth_mant=508)
    rng = np.random.default_rng(3)
    X = rng.random((8, 150, 20)) < 0.05
    r = net.run(inputs={"x": X})
    rq = q.run(150, inputs={"x": X}, record_uv=True)
    n_same = n_all = 0
    for g in ("lif", "ahp"):
        zf = r.raster(g).astype(bool)
        zq = np.asarray(rq.raster(g)).astype(bool)
        n_all += zf.sum() + zq.sum()
        n_same += 2 * (zf & zq).sum()
    print(f"{n_all / 2:.0f} spikes per engine, {100 * n_same / n_all:.2f}% at the same step")
    assert n_all > 1000 and n_same / n_all > 0.98
    yf = r.readout("out")
    yq = np.asarray(rq.readout("out"))
    assert np.mean(yf[:, -1].argmax(-1) == yq[:, -1].argmax(-1)) >= 7 / 8
