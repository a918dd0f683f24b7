"""Bad Loihi parameters give clear errors naming the parameter and its range, in the Python API and
again in the C++ engine (std::invalid_argument -> ValueError)."""

from __future__ import annotations

import numpy as np
import pytest

from ahpsim import _core
from ahpsim.loihi import LoihiNetwork, limits

pytestmark = pytest.mark.loihi


def _net(rules="loihi1"):
    net = LoihiNetwork(rules=rules)
    x = net.add_input(2, name="x")
    g = net.add_compartments(3, du=100, dv=100, vth_mant=10, name="g")
    return net, x, g


@pytest.mark.parametrize("kw, match", [
    (dict(dv=4096), r"dv of group 'h' = 4096 is out of range \[0, 4095\]"),
    (dict(du=4097), r"du of group 'h' = 4097 is out of range \[0, 4096\]"),
    (dict(du=-1), r"du of group 'h' = -1 is out of range \[0, 4096\]"),
    (dict(vth_mant=2**17), r"vth_mant of group 'h' = 131072 is out of range \[0, 131071\]"),
    (dict(bias_mant=4096), r"bias_mant of group 'h' = 4096 is out of range \[-4096, 4095\]"),
    (dict(bias_exp=8), r"bias_exp of group 'h' = 8 is out of range \[0, 7\]"),
    (dict(refractory=0), r"refractory of group 'h' \(rule set loihi1\) = 0 is out of range \[1, 63\]"),
])
def test_compartment_parameter_errors(kw, match):
    net, _, _ = _net()
    args = dict(du=0, dv=0, vth_mant=1) | kw
    with pytest.raises(ValueError, match=match):
        net.add_compartments(2, name="h", **args)


def test_lava_decay_and_refractory_ranges():
    net, _, _ = _net("lava")
    with pytest.raises(ValueError, match=r"du of group 'h' = 4096 is out of range \[0, 4095\]"):
        net.add_compartments(2, du=4096, dv=0, vth_mant=1, name="h")
    with pytest.raises(ValueError, match=r"refractory .* \(rule set lava\) = 2 is out of range \[1, 1\]"):
        net.add_compartments(2, du=0, dv=0, vth_mant=1, refractory=2, name="h")
    net2, x, g = _net("lava")
    h = net2.add_compartments(3, du=0, dv=0, vth_mant=1, name="h")
    with pytest.raises(ValueError, match="multi-compartment"):
        net2.join(g, h)


def test_projection_errors():
    net, x, g = _net()
    W = np.ones((3, 2), int)
    with pytest.raises(ValueError, match=r"weight_mantissa of projection 'x->g' \(rule set loihi1\) = 256 is out of range \[-255, 255\]"):
        net.connect(x, g, W * 256)
    with pytest.raises(ValueError, match=r"weight_mantissa .* = -256 is out of range \[-255, 255\]"):
        net.connect(x, g, -W * 256)
    with pytest.raises(ValueError, match=r"weight_exponent of projection 'x->g' = 8 is out of range \[-8, 7\]"):
        net.connect(x, g, W, weight_exponent=8)
    with pytest.raises(ValueError, match=r"weight_exponent .* = -9 is out of range \[-8, 7\]"):
        net.connect(x, g, W, weight_exponent=-9)
    with pytest.raises(ValueError, match=r"delay of projection 'x->g' \(rule set loihi1\) = 63 is out of range \[0, 62\]"):
        net.connect(x, g, W, delay=63)
    with pytest.raises(ValueError, match=r"shape \[n_post, n_pre\] = \[3, 2\]"):
        net.connect(x, g, W.T)
    with pytest.raises(TypeError, match="integers"):
        net.connect(x, g, W * 0.5)
    lava, lx, lg = _net("lava")
    with pytest.raises(ValueError, match=r"delay .* \(rule set lava\) = 1 is out of range \[0, 0\]"):
        lava.connect(lx, lg, W, delay=1)
    lava.connect(lx, lg, -W * 256)  # -256 is valid in Lava's mixed sign mode


def test_input_errors():
    net, x, g = _net()
    net.connect(x, g, np.ones((3, 2), int))
    with pytest.raises(ValueError, match=r"input 'x' must have shape \[T, n\] = \[5, 2\]"):
        net.run(5, inputs={x: np.zeros((4, 2), bool)})
    with pytest.raises(ValueError, match="0/1"):
        net.run(5, inputs={x: np.full((5, 2), 2)})
    with pytest.raises(ValueError, match="not an input group"):
        net.run(5, inputs={g: np.zeros((5, 3), bool)})


def _raw_cx(n, **over):
    cx = dict(du=[0] * n, dv=[0] * n, vth_mant=[1] * n, bias_mant=[0] * n, bias_exp=[0] * n,
              refractory=[1] * n, spiking=[1] * n, parent=[-1] * n, join=[0] * n)
    cx.update(over)
    return {k: np.asarray(v, np.int64) for k, v in cx.items()}


def _raw_proj(**over):
    p = dict(name="p", from_input=True, pre_start=0, n_pre=1, post_start=0, n_post=1, weight_exponent=0,
             pre=np.array([0]), post=np.array([0]), weight_mantissa=np.array([1]), delay=np.array([0]))
    p.update(over)
    return p


@pytest.mark.parametrize("rules, cx, proj, match", [
    ("loihi1", dict(dv=[4096]), {}, r"dv\[compartment 0\] = 4096 is out of range \[0, 4095\]"),
    ("lava", dict(du=[4096]), {}, r"du\[compartment 0\] = 4096 is out of range \[0, 4095\]"),
    ("loihi1", dict(bias_exp=[9]), {}, r"bias_exp\[compartment 0\] = 9 is out of range \[0, 7\]"),
    ("loihi1", {}, dict(weight_mantissa=np.array([300])),
     r"weight_mantissa\[projection 0 'p'\] \(rule set loihi1\) = 300 is out of range \[-255, 255\]"),
    ("loihi1", {}, dict(weight_exponent=-9), r"weight_exponent\[projection 0 'p'\] = -9 is out of range \[-8, 7\]"),
    ("lava", {}, dict(delay=np.array([3])), r"delay\[projection 0 'p'\] \(rule set lava\) = 3 is out of range \[0, 0\]"),
    ("loihi1", {}, dict(weight_mantissa=np.array([2**40])), r"weight_mantissa = 1099511627776 does not fit"),
])
def test_cpp_engine_validates_again(rules, cx, proj, match):
    with pytest.raises(ValueError, match=match):
        _core.LoihiEngine(rules, 1, _raw_cx(1, **cx), [_raw_proj(**proj)])


def test_cpp_engine_rejects_bad_parent_and_rules():
    with pytest.raises(ValueError, match=r"parent\[compartment 1\] = 0 is out of range \[2, 1\]"):
        _core.LoihiEngine("loihi1", 0, _raw_cx(2, parent=[-1, 0], join=[1, 0]), [])
    with pytest.raises(ValueError, match="needs join = ADD"):
        _core.LoihiEngine("loihi1", 0, _raw_cx(2, parent=[1, -1]), [])
    with pytest.raises(ValueError, match="rules must be 'lava' or 'loihi1'"):
        _core.LoihiEngine("loihi2", 0, _raw_cx(1), [])
    with pytest.raises(ValueError, match="rules must be one of"):
        LoihiNetwork(rules="loihi2")


def test_limits_are_declared_in_cpp():
    L = limits("loihi1")
    assert L["weight_exponent"] == (-8, 7) and L["vth_mant"] == (0, 2**17 - 1) and L["delay"] == (0, 62)
    assert L["du"] == (0, 4096) and L["dv"] == (0, 4095) and L["state_bits"] == 24
    assert limits("lava")["du"] == (0, 4095) and limits("lava")["exponent_on_sum"] is True


def test_failed_add_ahp_leaves_network_unchanged():
    net, x, g = _net()
    before = (net.n_compartments, len(net.projections), len(net.groups))
    with pytest.raises(ValueError, match=r"vth_mant of group 'a.soma' = 200000 is out of range"):
        net.add_ahp(2, dv=10, vth_mant=200_000, aux_dv=5, ahp_weight_mantissa=-96, ahp_weight_exponent=-4, name="a")
    with pytest.raises(ValueError, match=r"ahp_weight_mantissa of group 'a' = -300 is out of range \[-255, 255\]"):
        net.add_ahp(2, dv=10, vth_mant=500, aux_dv=5, ahp_weight_mantissa=-300, ahp_weight_exponent=-4, name="a")
    with pytest.raises(ValueError, match=r"ahp_weight_exponent of group 'a' = 9 is out of range \[-8, 7\]"):
        net.add_ahp(2, dv=10, vth_mant=500, aux_dv=5, ahp_weight_mantissa=-96, ahp_weight_exponent=9, name="a")
    assert (net.n_compartments, len(net.projections), len(net.groups)) == before
    a = net.add_ahp(2, dv=10, vth_mant=500, aux_dv=5, ahp_weight_mantissa=-96, ahp_weight_exponent=-4, name="a")
    assert a.aux.start == 3 and a.soma.start == 5 and net.compartment_arrays()["parent"].tolist() == [-1, -1, -1, 5, 6, -1, -1]
    with pytest.raises(ValueError, match="not part of rule set 'lava'"):
        LoihiNetwork(rules="lava").add_ahp(1, dv=1, vth_mant=1, aux_dv=1, ahp_weight_mantissa=-1, ahp_weight_exponent=0)
