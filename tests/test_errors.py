"""Bad input gives a clear ValueError / TypeError naming the argument, never a crash."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ahpsim


@pytest.fixture
def net():
    n = ahpsim.Network()
    n.add_input(3, "x")
    n.add_population(4, ahpsim.LIF(), "a")
    n.add_population(2, ahpsim.Readout(), "o")
    return n


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"dt": 0.0}, ValueError, "dt"),
    ({"dt": -1.0}, ValueError, "dt"),
    ({"dt": float("nan")}, ValueError, "dt"),
    ({"dt": "1"}, TypeError, "dt"),
    ({"dtype": "float16"}, ValueError, "dtype"),
    ({"dtype": "banana"}, TypeError, "dtype"),
    ({"seed": -1}, ValueError, "seed"),
    ({"seed": 1.5}, TypeError, "seed"),
    ({"n_threads": 0}, ValueError, "n_threads"),
])
def test_network_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ahpsim.Network(**kwargs)


@pytest.mark.parametrize("make, exc, match", [
    (lambda: ahpsim.LIF(tau_m=-1.0), ValueError, "tau_m"),
    (lambda: ahpsim.LIF(tau_m=float("nan")), ValueError, "tau_m"),
    (lambda: ahpsim.AHP(tau_ahp=-5.0), ValueError, "tau_ahp"),
    (lambda: ahpsim.ALIF(tau_a=float("inf")), ValueError, "tau_a"),
    (lambda: ahpsim.LIF(n_ref=1.5), ValueError, "n_ref"),
    (lambda: ahpsim.LIF(n_ref=-1), ValueError, "n_ref"),
    (lambda: ahpsim.LIF(reset="hard"), ValueError, "reset"),
    (lambda: ahpsim.AHP(n_ref=2, refractory_mode="hold"), ValueError, "refractory_mode must be one of"),
    (lambda: ahpsim.LIF(refractory_mode=np.array(["block", "clamp"])), ValueError, "one per population"),
    (lambda: ahpsim.ALIF(reset=None), ValueError, "reset must be one of"),
    (lambda: ahpsim.LIF(v_th="x"), TypeError, "v_th"),
    (lambda: ahpsim.Readout(tau=-2.0), ValueError, "tau"),
])
def test_model_parameters(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_population_arguments(net):
    with pytest.raises(ValueError, match="n must be >= 1"):
        net.add_population(0, ahpsim.LIF())
    with pytest.raises(ValueError, match=r"tau_m must be a scalar or have shape \(5,\)"):
        net.add_population(5, ahpsim.LIF(tau_m=np.ones(4)))
    with pytest.raises(TypeError, match="model must be"):
        net.add_population(5, "LIF")
    with pytest.raises(ValueError, match="already used"):
        net.add_population(5, ahpsim.LIF(), name="a")
    with pytest.raises(TypeError, match="n must be an integer"):
        net.add_population(2.5, ahpsim.LIF())


def test_connect_arguments(net):
    x, a, o = net["x"], net["a"], net["o"]
    with pytest.raises(ValueError, match=r"weights must have shape \(n_target, n_source\) = \(4, 3\)"):
        net.connect(x, a, np.ones((3, 4)))
    with pytest.raises(ValueError, match="weights must be finite"):
        net.connect(x, a, np.full((4, 3), np.nan))
    with pytest.raises(ValueError, match="weights must be finite"):
        net.connect(x, a, np.full((4, 3), np.inf))
    with pytest.raises(TypeError, match="weights must be numeric"):
        net.connect(x, a, np.full((4, 3), "a"))
    with pytest.raises(ValueError, match=r"delay must be in \[1, 4096\] steps between spiking neurons"):
        net.connect(a, a, np.ones((4, 4)), delay=0)
    with pytest.raises(ValueError, match="delay must be in"):
        net.connect(a, a, np.ones((4, 4)), delay=-2)
    with pytest.raises(ValueError, match="whole steps"):
        net.connect(a, a, np.ones((4, 4)), delay=1.5)
    with pytest.raises(ValueError, match="delay must be an int or have the shape"):
        net.connect(a, a, np.ones((4, 4)), delay=np.ones((2, 2), int))
    with pytest.raises(ValueError, match=r"post indices must be in \[0, 4\)"):
        net.connect(x, a, 1.0, pre=[0, 1], post=[0, 9])
    with pytest.raises(ValueError, match=r"pre indices must be in \[0, 3\)"):
        net.connect(x, a, 1.0, pre=[-1, 1], post=[0, 1])
    with pytest.raises(ValueError, match="same length"):
        net.connect(x, a, 1.0, pre=[0, 1, 2], post=[0, 1])
    with pytest.raises(ValueError, match="readout"):
        net.connect(o, a, np.ones((4, 2)))
    with pytest.raises(ValueError, match="input group"):
        net.connect(a, x, np.ones((3, 4)))
    with pytest.raises(TypeError, match="source must be a Group"):
        net.connect(3, a, np.ones((4, 3)))
    other = ahpsim.Network()
    g = other.add_population(4, ahpsim.LIF(), "a")
    with pytest.raises(ValueError, match="does not belong to this network"):
        net.connect(g, a, np.ones((4, 4)))
    with pytest.raises(ValueError, match="shape"):
        net.connect(x, a, sp.eye(3))
    net.connect(a, o, np.ones((2, 4)), delay=0)  # delay 0 into a readout is fine


def test_run_arguments(net):
    x = net["x"]
    with pytest.raises(ValueError, match=r"inputs\['x'\] must have shape \[T, 3\]"):
        net.run(10, {"x": np.zeros((10, 4))})
    with pytest.raises(ValueError, match="has 10 steps but T = 5"):
        net.run(5, {"x": np.zeros((10, 3))})
    with pytest.raises(ValueError, match="finite"):
        net.run(10, {"x": np.full((10, 3), np.nan)})
    with pytest.raises(ValueError, match="T must be >= 0"):
        net.run(-1)
    with pytest.raises(TypeError, match="T must be an integer"):
        net.run("10")
    with pytest.raises(KeyError, match="no group named 'y'"):
        net.run(10, {"y": np.zeros((10, 3))})
    with pytest.raises(ValueError, match="is a population"):
        net.run(10, {"a": np.zeros((10, 4))})
    with pytest.raises(ValueError, match=r"channels indices must be in \[0, 3\)"):
        net.run(10, {x: ([1, 2], [0, 7])})
    with pytest.raises(ValueError, match=r"event step 12 is outside \[0, 10\)"):
        net.run(10, {x: ([1, 12], [0, 1])})
    with pytest.raises(ValueError, match="T is required"):
        net.run()
    net.run(10, {"x": np.zeros((2, 10, 3))})
    with pytest.raises(ValueError, match="state for 2 trials but this run has 3"):
        net.run(10, {"x": np.zeros((3, 10, 3))})
    with pytest.raises(RuntimeError, match="reset_state"):
        net.add_population(2, ahpsim.LIF())
    net.reset_state()
    net.add_population(2, ahpsim.LIF())  # allowed again


def test_state_arguments(net):
    with pytest.raises(RuntimeError, match="no state"):
        net.get_state("v")
    with pytest.raises(RuntimeError, match="nothing to store"):
        net.store()
    net.init_state(2)
    with pytest.raises(ValueError, match="var must be one of"):
        net.get_state("u")
    with pytest.raises(ValueError, match=r"values must have shape \(4,\) or \(2, 4\)"):
        net.set_state("v", np.zeros(5), "a")
    with pytest.raises(ValueError, match="finite"):
        net.set_state("v", np.full(4, np.nan), "a")


def test_result_accessors(net):
    res = net.run(5, n_trials=2)
    with pytest.raises(IndexError, match="trial must be in"):
        res.spikes(5)
    with pytest.raises(KeyError, match="no population"):
        res.raster("zz")
    with pytest.raises(ValueError, match="not recorded"):
        res.state("v", "a")
    with pytest.raises(ValueError, match="not a readout"):
        res.readout("a")


# ---------------------------------------------------------------- fuzzing with hypothesis
junk = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4), st.lists(st.floats(allow_nan=True), max_size=5),
    st.lists(st.integers(-5, 20), max_size=6),
    st.builds(lambda s, v: np.full(s, v), st.tuples(st.integers(0, 5), st.integers(0, 5)),
              st.floats(allow_nan=True, allow_infinity=True)),
    st.builds(lambda s: np.zeros(s, dtype=np.int64), st.tuples(st.integers(0, 4), st.integers(0, 12), st.integers(0, 5))),
)
OK = (ValueError, TypeError, KeyError, IndexError, RuntimeError, OverflowError, MemoryError)


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(op=st.sampled_from(["pop", "connect", "connect_list", "run", "drive", "random", "model", "state", "input"]),
       a=junk, b=junk, c=junk)
def test_random_bad_arguments_never_crash(op, a, b, c):
    net = ahpsim.Network()
    x = net.add_input(3, "x")
    p = net.add_population(4, ahpsim.AHP(), "a")
    try:
        if op == "pop":
            net.add_population(a, ahpsim.LIF(tau_m=b, v_th=c))
        elif op == "connect":
            net.connect(x, p, a, delay=b)
        elif op == "connect_list":
            net.connect(p, p, a, pre=b, post=c, delay=1)
        elif op == "run":
            net.run(a, {"x": b})
        elif op == "drive":
            net.add_poisson_drive(p, a, b)
        elif op == "random":
            net.connect_random(p, p, indegree=a, weight=b, delay=c)
        elif op == "model":
            net.add_population(4, ahpsim.ALIF(tau_m=a, tau_a=b, beta=c))
        elif op == "state":
            net.init_state(a)
            net.set_state("v", b)
        elif op == "input":
            net.add_input(a, rate=b)
    except OK:
        pass
    # whatever happened, the network is still usable
    net.reset_state()
    net.run(3, n_trials=1)


def test_state_beyond_memory_is_a_memory_error_not_a_kill(net):
    """Linux overcommits: without a check, a state too large for the machine is allocated and the process
    killed when it is touched. ahpsim raises first, naming the argument."""
    with pytest.raises(MemoryError, match="n_trials=2147483647"):
        net.init_state(2**31 - 1)
    with pytest.raises(MemoryError, match="n_trials=2147483647"):
        net.run(1, n_trials=2**31 - 1)
    with pytest.raises(MemoryError, match=r"add_population\(n=2147483647\)"):
        net.add_population(2**31 - 1, ahpsim.LIF())
    net.run(2, n_trials=2)  # still usable
