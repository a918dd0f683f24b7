"""The two rule sets agree exactly where docs/loihi.md says they do, and differ where it says so."""

from __future__ import annotations

import numpy as np
import pytest

from ahpsim.loihi import LoihiNetwork

pytestmark = pytest.mark.loihi

T, N_IN, N = 250, 20, 25


def _pair(rng, w_in, w_rec, exp_in, exp_rec, du_lava):
    nets = {}
    for rules in ("lava", "loihi1"):
        net = LoihiNetwork(rules=rules)
        x = net.add_input(N_IN, name="x")
        g = net.add_compartments(N, du=du_lava + (1 if rules == "loihi1" else 0), dv=300, vth_mant=120,
                                 bias_mant=np.arange(N) - 5, bias_exp=2, name="g")
        # lava: every Dense adds one step; loihi1: input latency 0, so delay the input by 1 instead
        net.connect(x, g, w_in, weight_exponent=exp_in, delay=0 if rules == "lava" else 1)
        net.connect(g, g, w_rec, weight_exponent=exp_rec)
        nets[rules] = net
    return nets


def test_rule_sets_agree_on_their_common_ground():
    """du_loihi1 = du_lava + 1, exponents >= 0, even mantissas (no Lava truncation), input delay 1:
    the same states step for step."""
    rng = np.random.default_rng(5)
    w_in = 2 * rng.integers(-100, 128, (N, N_IN)) * (rng.random((N, N_IN)) < 0.3)
    w_rec = 2 * rng.integers(-127, 100, (N, N)) * (rng.random((N, N)) < 0.2)
    nets = _pair(rng, w_in, w_rec, 1, 0, du_lava=700)
    X = rng.random((T, N_IN)) < 0.2
    r = {k: net.run(T, inputs={"x": X}, record_uv=True) for k, net in nets.items()}
    assert r["lava"].raster("g").sum() > 100
    for what in ("u_all", "v_all", "spikes_all"):
        assert np.array_equal(getattr(r["lava"], what), getattr(r["loihi1"], what)), what


def test_weight_exponent_on_sum_vs_per_synapse():
    """lava shifts the summed mantissas: (7 + 7) >> 2 = 3; loihi1 scales each synapse and keeps the
    effective weight's 6 low bits zero: floor(7 / 4) * 2**6 = 64 each."""
    out = {}
    for rules in ("lava", "loihi1"):
        net = LoihiNetwork(rules=rules)
        x = net.add_input(2, name="x")
        g = net.add_compartments(1, du=4095, dv=4095, vth_mant=100_000, name="g")
        net.connect(x, g, np.array([[7, 7]]), weight_exponent=-2)
        out[rules] = net.run(3, inputs={x: np.array([[1, 1], [0, 0], [0, 0]])}, record_uv=True).u(g)[0, :, 0].tolist()
    assert out["lava"] == [0, 192, 0]         # ((7 + 7) >> 2) << 6, one step later
    assert out["loihi1"] == [128, 0, 0]       # 2 * (floor(7 / 4) << 6), same step


def test_current_decay_offset_and_u_wrap():
    out = {}
    for rules, du in (("lava", 0), ("loihi1", 0), ("loihi1", 4096)):
        net = LoihiNetwork(rules=rules)
        x = net.add_input(1, name="x")
        g = net.add_compartments(1, du=du, dv=4095, vth_mant=100_000, name="g")
        net.connect(x, g, np.array([[128]]), weight_exponent=7)  # 128 * 2**(6 + 7) = 2**20
        X = np.zeros((10, 1), bool)
        X[:8] = True
        out[(rules, du)] = net.run(10, inputs={x: X}, record_uv=True).u(g)[0, :, 0].tolist()
    # lava du = 0 still decays (decay constant du + 1): 2**20 * 4095 >> 12 = 1048320
    assert out[("lava", 0)][1:3] == [2**20, 2**20 + 1048320]
    # loihi1 du = 0 keeps u; after 8 inputs of 2**20 u = 2**23 wraps to -2**23 (two's complement)
    assert out[("loihi1", 0)][:8] == [k * 2**20 for k in range(1, 8)] + [-(2**23)]
    assert out[("loihi1", 4096)][:9] == [2**20] * 8 + [0]   # du = 4096: no carry-over
