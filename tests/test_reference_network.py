"""Random recurrent networks with delays, all models mixed: kernel spikes == numpy reference."""

import numpy as np
import pytest

import ahpsim

from reference import RefNet, RefPop, simulate


def build(seed, n_lif=120, n_ahp=110, n_alif=90, n_out=5, n_in=20, p_conn=0.1, max_delay=6, T=1000,
          refractory_mode="block"):
    rng = np.random.default_rng(seed)
    sizes = {"lif": n_lif, "ahp": n_ahp, "alif": n_alif}
    ref = RefNet(n_in=n_in)
    net = ahpsim.Network(dtype="float64", seed=seed)
    x = net.add_input(n_in, "x")
    params = {
        "lif": dict(tau_m=rng.uniform(5, 30, n_lif), v_th=rng.uniform(0.8, 1.2, n_lif),
                    n_ref=rng.integers(0, 3, n_lif), bias=rng.normal(0, 0.02, n_lif)),
        "ahp": dict(tau_m=rng.uniform(5, 30, n_ahp), tau_ahp=rng.uniform(100, 800, n_ahp),
                    beta=rng.uniform(0.1, 1.0, n_ahp), v_th=1.0, n_ref=0 if refractory_mode == "block" else 2,
                    bias=0.0),
        "alif": dict(tau_m=20.0, tau_a=rng.uniform(100, 800, n_alif), beta=rng.uniform(0.5, 2, n_alif),
                     v_th=1.0, n_ref=1, bias=0.01),
    }
    mode = dict(refractory_mode=refractory_mode)
    groups = {
        "lif": net.add_population(n_lif, ahpsim.LIF(**params["lif"], **mode), "lif"),
        "ahp": net.add_population(n_ahp, ahpsim.AHP(**params["ahp"], reset="zero", **mode), "ahp"),
        "alif": net.add_population(n_alif, ahpsim.ALIF(**params["alif"], **mode), "alif"),
    }
    out = net.add_population(n_out, ahpsim.Readout(tau=rng.uniform(0, 30, n_out)), "out")
    b = lambda v, n: np.broadcast_to(np.asarray(v, float), (n,))
    ref.pops = [
        RefPop("lif", "LIF", n_lif, b(params["lif"]["tau_m"], n_lif), b(params["lif"]["v_th"], n_lif),
               bias=params["lif"]["bias"], n_ref=params["lif"]["n_ref"], **mode),
        RefPop("ahp", "AHP", n_ahp, params["ahp"]["tau_m"], b(1.0, n_ahp), params["ahp"]["tau_ahp"],
               params["ahp"]["beta"], n_ref=np.full(n_ahp, params["ahp"]["n_ref"]), reset="zero", **mode),
        RefPop("alif", "ALIF", n_alif, b(20.0, n_alif), b(1.0, n_alif), params["alif"]["tau_a"],
               params["alif"]["beta"], bias=b(0.01, n_alif), n_ref=np.ones(n_alif, int), **mode),
        RefPop("out", "Readout", n_out, net["out"].model.tau),
    ]
    for tgt in sizes:
        W = rng.normal(0.0, 0.6, (sizes[tgt], n_in)) * (rng.random((sizes[tgt], n_in)) < 0.3)
        D = rng.integers(0, 3, W.shape)
        net.connect(x, groups[tgt], W, delay=D)
        ref.projections.append(("input", tgt, W, D))
        for src in sizes:
            W = rng.normal(0.0, 0.35 * np.sqrt(0.1 / p_conn), (sizes[tgt], sizes[src])) \
                * (rng.random((sizes[tgt], sizes[src])) < p_conn)
            if src == "ahp" or src == "lif":
                W[:, : sizes[src] // 3] = -np.abs(W[:, : sizes[src] // 3])  # some inhibition
            D = rng.integers(1, max_delay + 1, W.shape)
            net.connect(groups[src], groups[tgt], W, delay=D)
            ref.projections.append((src, tgt, W, D))
        Wo = rng.normal(0, 0.5, (n_out, sizes[tgt])) * (rng.random((n_out, sizes[tgt])) < 0.5)
        Do = rng.integers(0, 3, Wo.shape)
        net.connect(groups[tgt], out, Wo, delay=Do)
        ref.projections.append((tgt, "out", Wo, Do))
    xs = (rng.random((T, n_in)) < 0.05) * rng.uniform(0.5, 2.0, (T, n_in))
    return net, ref, xs


@pytest.mark.parametrize("seed, p_conn, refractory_mode", [(1, 0.1, "block"), (2, 0.1, "block"), (3, 0.7, "block"),
                                                            (4, 0.1, "clamp")])
def test_random_mixed_network_matches_numpy_reference(seed, p_conn, refractory_mode):
    """p_conn 0.7: the kernel stores the projections as dense rows (>= 50% full); 0.1: sparse. "clamp":
    v held at 0 during the refractory steps (every model has some)."""
    T = 1000
    net, ref, xs = build(seed, T=T, p_conn=p_conn, max_delay=1 if p_conn > 0.5 else 6,
                         refractory_mode=refractory_mode)
    if p_conn > 0.5:
        assert net.projections()[1]["dense_rows"]
    assert net.n_neurons >= 300
    res = net.run(T, {"x": xs}, record_state=[net["ahp"], net["alif"]])
    r = simulate(ref, xs, T)
    z_kernel = res.raster(trial=0).astype(float)
    n_spikes = int(r["z"].sum())
    assert n_spikes > 2000, "the test network must be active"
    np.testing.assert_array_equal(z_kernel, r["z"])
    out0 = r["starts"]["out"]
    np.testing.assert_allclose(res.readout("out")[0], r["v"][:, out0:], rtol=1e-9, atol=1e-9)
    a0 = r["starts"]["ahp"]
    np.testing.assert_allclose(res.state("aux", "ahp")[0], r["aux"][:, a0:a0 + 110], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res.state("v", "ahp")[0], r["v"][:, a0:a0 + 110], rtol=1e-9, atol=1e-12)
    if refractory_mode == "clamp":  # the clamp changes the dynamics (else this case would test nothing new)
        for p in ref.pops:
            p.refractory_mode = "block"
        assert not np.array_equal(simulate(ref, xs, T)["z"], r["z"])
    # every model fired
    for g in ("lif", "ahp", "alif"):
        assert res.raster(g).sum() > 50
