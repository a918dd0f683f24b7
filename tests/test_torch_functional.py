"""ahpsim.torch: step functions, surrogate gradients, fused BPTT (gradcheck), modules and state_dict."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ahpsim.torch import functional as F  # noqa: E402
from ahpsim.torch import losses as L  # noqa: E402
from ahpsim.torch.modules import SpikingRNN  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("torch_one_thread")]



def test_import_ahpsim_does_not_import_torch():
    code = "import sys, ahpsim; assert 'torch' not in sys.modules and 'ahpsim.torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_decay_is_float64_exp_rounded():
    for tau in (20.0, 700.0, 40.3, 7.0):
        assert F.decay(tau).item() == np.float32(math.exp(-1.0 / tau))
        assert F.decay(tau, 0.5, torch.float64).item() == math.exp(-0.5 / tau)
    assert F.decay(0.0).item() == 0.0


def test_spike_is_strict_and_surrogate_is_triangle():
    v = torch.tensor([0.5, 1.0, 1.0000001, 1.5, 2.5], dtype=torch.float64, requires_grad=True)
    z = F.spike_fn(v, 1.0)
    assert z.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]
    (g,) = torch.autograd.grad(z.sum(), v)
    expect = 0.3 * np.maximum(0.0, 1.0 - np.abs(v.detach().numpy() - 1.0))
    np.testing.assert_allclose(g.numpy(), expect, rtol=1e-12)
    z2 = F.spike_fn(v, 1.0, F.FastSigmoid(dampening=1.0, slope=2.0))
    (g2,) = torch.autograd.grad(z2.sum(), v)
    np.testing.assert_allclose(g2.numpy(), 1.0 / (1.0 + 2.0 * np.abs(v.detach().numpy() - 1.0)) ** 2, rtol=1e-12)


@pytest.mark.parametrize("sur", [F.Triangle(0.3, smooth_forward=True), F.FastSigmoid(0.5, 3.0, smooth_forward=True),
                                 F.Gaussian(0.3, 0.5, smooth_forward=True)])
def test_gradcheck_spike_function(sur):
    v = (torch.rand(7, dtype=torch.float64) * 2.0).requires_grad_()
    thr = (1.0 + torch.rand(7, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda v, t: F.spike_fn(v, t, sur), (v, thr))


def _smooth_layer(reset, n_ref=0):
    net = SpikingRNN(3, 2, n_lif=2, n_ahp=2, n_alif=2, dtype=torch.float64, reset=reset, n_ref=n_ref,
                     tau_ahp=30.0, tau_a=30.0, beta_alif=0.5, surrogate=F.Triangle(0.3, smooth_forward=True))
    return net.layer_constants()


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_gradcheck_fused_bptt(reset):
    """The hand-written BPTT equals finite differences of the network whose Heaviside is replaced by the
    surrogate's primitive (float64): checks every path (v, c, a, reset, recurrence, delays)."""
    g = torch.Generator().manual_seed(1)
    k = _smooth_layer(reset)
    k.delays = (1, 3)
    E = torch.randn(14, 2, 6, dtype=torch.float64, generator=g).mul(1.5).requires_grad_()
    W1 = torch.randn(6, 6, dtype=torch.float64, generator=g).mul(0.6).requires_grad_()
    W3 = torch.randn(6, 6, dtype=torch.float64, generator=g).mul(0.6).requires_grad_()
    b = torch.randn(6, dtype=torch.float64, generator=g).mul(0.2).requires_grad_()
    assert torch.autograd.gradcheck(lambda E, W1, W3, b: F.recurrent_layer(E, [W1, W3], k, b), (E, W1, W3, b))


def test_gradcheck_step_functions_and_readout():
    """The autograd path through lif/ahp/alif/readout_step (the reference) also passes gradcheck."""
    sur = F.Triangle(0.3, smooth_forward=True)
    g = torch.Generator().manual_seed(2)
    I = torch.randn(10, 2, 3, dtype=torch.float64, generator=g).mul(1.5).requires_grad_()
    p = dict(alpha=math.exp(-1 / 20), v_th=torch.tensor([0.8, 1.0, 1.2], dtype=torch.float64))

    def run(I):
        s1 = s2 = s3 = ro = None
        out = []
        for t in range(I.shape[0]):
            z1, s1 = F.lif_step(I[t], s1, F.LIFParams(**p), sur)
            z2, s2 = F.ahp_step(I[t], s2, F.AHPParams(**p, rho=0.9, beta=0.5), sur)
            z3, s3 = F.alif_step(I[t], s3, F.ALIFParams(**p, rho=0.9, beta=0.5), sur)
            y, ro = F.readout_step(z1 + z2 + z3, ro, F.ReadoutParams(0.8))
            out.append(y)
        return torch.stack(out)

    assert torch.autograd.gradcheck(run, (I,))


@pytest.mark.parametrize("backend", ["kernel", "torch"])
@pytest.mark.parametrize("opts", [dict(), dict(reset="zero"), dict(n_ref=2), dict(delays=True),
                                  dict(n_ref=2, refractory_mode="clamp"),
                                  dict(reset="zero", n_ref=2, refractory_mode="clamp", delays=True)])
def test_fused_equals_step_reference(opts, backend):
    """Fused forward (the C++ layer kernel, or the plain torch path used on GPUs) == per-model step
    functions (spikes identical), fused BPTT == autograd (1e-9)."""
    opts = dict(opts)
    if opts.pop("delays", False):
        rng = np.random.default_rng(0)
        opts.update(rec_delay=rng.integers(1, 4, (12, 12)), in_delay=rng.integers(0, 3, (12, 5)), out_delay=0)
    net = SpikingRNN(5, 3, n_lif=4, n_ahp=4, n_alif=4, w_in_scale=3.0, bias=True, dtype=torch.float64, seed=3,
                     tau_ahp=50.0, tau_a=50.0, **opts)
    net.backend = backend
    x = torch.rand(2, 80, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) < 0.3
    o1, o2 = net(x), net.step_forward(x)
    assert o1.z.sum() > 20
    assert torch.equal(o1.z, o2.z)
    torch.testing.assert_close(o1.y, o2.y, rtol=1e-12, atol=1e-12)
    lab = torch.tensor([0, 2])

    def loss(o):
        return L.readout_cross_entropy(o.y, lab, "window", 10) + L.firing_rate_regularizer(o.z, 0.05, 1.0)

    g1 = torch.autograd.grad(loss(o1), list(net.parameters()))
    g2 = torch.autograd.grad(loss(o2), list(net.parameters()))
    for a, b in zip(g1, g2):
        assert b.abs().max() > 0
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_float32_evaluation_order_matches_contract():
    """float32 membrane update is ((alpha*v + I) - c) - v_th*z in separate roundings (no FMA)."""
    net = SpikingRNN(2, 1, n_ahp=3, w_in_scale=5.0, seed=0).quantize_()  # sums exact in any order
    x = torch.rand(1, 60, 2, generator=torch.Generator().manual_seed(0)) < 0.5
    k = net.layer_constants()
    with torch.no_grad():
        out = net(x)
        W_in, _, _ = net.effective_weights()
        E = (x.float() @ W_in.t())[0].numpy()
    alpha, rho, beta, vth = (np.float32(k.alpha[0]), np.float32(k.rho_c[0]), np.float32(k.beta_c[0]),
                             np.float32(k.v_th[0]))
    W = net.w_rec.detach().numpy() * net.rec_mask.numpy()
    v = np.zeros(3, np.float32)
    c = np.zeros(3, np.float32)
    z = np.zeros(3, np.float32)
    n_spikes = 0
    for t in range(60):
        I = E[t] + (W @ z).astype(np.float32) if t else E[t]
        c = rho * c + beta * z
        v = ((alpha * v + I) - c) - vth * z
        z = (v > vth).astype(np.float32)
        n_spikes += z.sum()
        assert np.array_equal(z, out.z[0, t].numpy()), t
    assert n_spikes > 5


def test_state_dict_roundtrip_carries_constants():
    net = SpikingRNN(4, 3, n_lif=3, n_ahp=2, n_alif=1, tau_m=[10, 20, 30, 40, 50, 60], tau_ahp=123.0, beta_ahp=0.5,
                     n_ref=1, reset="zero", tau_out=7.0, p_rec=0.5, rec_delay=2, out_delay=0,
                     surrogate={"kind": "gaussian", "dampening": 0.4, "sigma": 0.3}, seed=5)
    sd = net.state_dict()
    assert "_extra_state" in sd and "rec_mask" in sd and "rec_delay" in sd
    net2 = SpikingRNN.from_state_dict(sd)
    assert net2.config() == net.config()
    assert isinstance(net2.surrogate, F.Gaussian) and net2.surrogate.sigma == 0.3
    x = torch.rand(2, 40, 4, generator=torch.Generator().manual_seed(0)) < 0.4
    with torch.no_grad():
        a, b = net(x), net2(x)
    assert torch.equal(a.z, b.z) and torch.equal(a.y, b.y)


def test_losses():
    y = torch.zeros(2, 5, 3)
    y[0, 4, 1] = 5.0
    y[1, 2, 2] = 5.0
    lab = torch.tensor([1, 2])
    assert L.accuracy(y, lab, torch.tensor([5, 3])) == 1.0
    assert L.accuracy(y, lab) == 0.5
    assert L.readout_window(y, 2, torch.tensor([5, 3])).shape == (2, 2, 3)
    for bad in (0, 6):  # a window longer than the sequence would wrap around in a slice
        with pytest.raises(ValueError, match=f"window must be between 1 and the sequence's 5 steps, got {bad}"):
            L.readout_cross_entropy(y, lab, "window", bad)
    # the three modes against their definitions written out
    yw = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(1))
    ce = torch.nn.functional.cross_entropy
    assert torch.allclose(L.readout_cross_entropy(yw, lab, "last"), ce(yw[:, -1], lab))
    assert torch.allclose(L.readout_cross_entropy(yw, lab, "window", 2),
                          (ce(yw[:, -2], lab) + ce(yw[:, -1], lab)) / 2)
    assert torch.allclose(L.readout_cross_entropy(yw, lab, "window_mean", 2), ce(yw[:, -2:].mean(1), lab))
    z = torch.zeros(1, 10, 2)
    z[0, :5, 0] = 1
    assert L.spike_rate(z).tolist() == [0.5, 0.0]
    assert L.firing_rate_regularizer(z, 0.5, 2.0).item() == pytest.approx(2 * 0.25)
    # the trainer's one pass: counts exact, rates and penalty those of spike_rate / the regulariser
    big = (torch.rand(64, 840, 240, generator=torch.Generator().manual_seed(0)) < 0.03).float()
    counts, rates = L.spike_counts_and_rates(big)
    ref_rates = big.double().mean((0, 1))  # independent of the float32 path
    assert torch.equal(counts, big.double().sum((0, 1)).float()) and torch.allclose(rates.double(), ref_rates)
    assert float(counts.sum()) == float(big.double().sum())
    assert L.rate_penalty(rates, 0.02, 0.1).item() == pytest.approx(0.1 * float(((ref_rates - 0.02) ** 2).sum()))


def test_backward_twice_with_retained_graph():
    net = SpikingRNN(4, 2, n_lif=3, n_ahp=3, n_alif=3, w_in_scale=3.0, dtype=torch.float64, seed=2)
    x = torch.rand(2, 50, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) < 0.3
    out = net(x)
    loss = (out.y[:, -1] ** 2).sum() + out.z.mean()
    g1 = torch.autograd.grad(loss, list(net.parameters()), retain_graph=True)
    g2 = torch.autograd.grad(loss, list(net.parameters()))
    for a, b in zip(g1, g2):
        assert torch.equal(a, b)


def test_delayed_outer_equals_numpy_loops():
    """The spike-sparse weight gradient of the C++ layer kernel against plain loops (per-synapse delays)."""
    rng = np.random.default_rng(4)
    T, B, P, N = 30, 3, 7, 5
    s = (rng.random((T, B, P)) < 0.2) * rng.choice([1.0, 0.5, -2.0], (T, B, P))
    g = rng.normal(size=(T, B, N))
    d = rng.integers(0, 4, (N, P))  # [post, pre]
    ref = np.zeros((N, P))
    for i in range(N):
        for j in range(P):
            for t in range(T - d[i, j]):
                ref[i, j] += (s[t, :, j] * g[t + d[i, j], :, i]).sum()
    got = F._delayed_outer(torch.as_tensor(s), torch.as_tensor(g), torch.as_tensor(d))
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12, atol=1e-12)
    got1 = F._delayed_outer(torch.as_tensor(s), torch.as_tensor(g), 2)
    ref1 = np.einsum("tbj,tbi->ij", s[: T - 2], g[2:])
    np.testing.assert_allclose(got1.numpy(), ref1, rtol=1e-12, atol=1e-12)
    assert not F._delayed_outer(torch.as_tensor(s), torch.as_tensor(g), T + 3).any()  # nothing reaches a step < T
    # rows j split over 1, 2 or 3 threads, every entry summing over t, then b: the same bits
    for n_post in (70, 130):
        _delayed_outer_thread_counts(rng, n_post)


def _delayed_outer_thread_counts(rng, n_post):
    s2 = (rng.random((40, 5, 23)) < 0.1).astype(np.float32)
    g2 = rng.normal(size=(40, 5, n_post)).astype(np.float32)
    d2 = rng.integers(0, 4, (n_post, 23))
    outs = []
    for threads in (1, 2, 3):
        torch.set_num_threads(threads)
        try:
            outs.append((F._delayed_outer(torch.as_tensor(s2), torch.as_tensor(g2), 1),
                         F._delayed_outer(torch.as_tensor(s2), torch.as_tensor(g2), torch.as_tensor(d2))))
        finally:
            torch.set_num_threads(1)
    for a, b in outs[1:]:
        assert torch.equal(a, outs[0][0]) and torch.equal(b, outs[0][1])
    np.testing.assert_allclose(outs[0][0].numpy(), np.einsum("tbj,tbi->ij", s2[:-1], g2[1:]), rtol=1e-5, atol=1e-5)
    ref = np.zeros((n_post, 23))
    for i in range(n_post):
        for j in range(23):
            ref[i, j] = (s2[: 40 - d2[i, j], :, j].astype(float) * g2[d2[i, j]:, :, i]).sum()
    np.testing.assert_allclose(outs[0][1].numpy(), ref, rtol=1e-5, atol=1e-5)


def test_delayed_outer_reads_bool_and_batch_major_activity():
    """Bool spikes and [B, T, P] layouts (how ahpsim.torch passes sMNIST input, without float copies)
    give the float time-major result bit for bit, which equals numpy's einsum."""
    from ahpsim import _core

    rng = np.random.default_rng(7)
    T, B, P, N = 50, 4, 37, 21
    spikes = rng.random((T, B, P)) < 0.1
    g = rng.normal(size=(T, B, N))
    ref = np.einsum("tbj,tbi->ij", spikes[: T - 1].astype(float), g[1:])
    outs = []
    for s, batch_major in ((spikes.astype(float), False), (spikes, False),
                           (np.ascontiguousarray(spikes.transpose(1, 0, 2)), True)):
        out = F._delayed_outer(torch.as_tensor(s), torch.as_tensor(g), 1, s_batch_major=batch_major)
        outs.append(out)
    for o in outs[1:]:
        assert torch.equal(o, outs[0])
    np.testing.assert_allclose(outs[0].numpy(), ref, rtol=1e-12, atol=1e-12)
    # spike bits as the forward pass writes them (bit j % 64 of word j // 64), over 1 and 3 threads
    words = np.zeros((T, B, 1), np.uint64)
    for j in range(P):
        words[..., 0] |= spikes[..., j].astype(np.uint64) << np.uint64(j)
    for threads in (1, 3):
        torch.set_num_threads(threads)
        try:
            got = F._delayed_outer(torch.as_tensor(words.view(np.int64)), torch.as_tensor(g), 1, n_pre=P)
        finally:
            torch.set_num_threads(1)
        assert torch.equal(got, outs[0])
    # and a wider postsynaptic layer (130) over 1, 2 and 3 threads, against numpy
    g_wide = rng.normal(size=(T, B, 130))
    ref_wide = np.einsum("tbj,tbi->ij", spikes[: T - 1].astype(float), g_wide[1:])
    for threads in (1, 2, 3):
        torch.set_num_threads(threads)
        try:
            got = F._delayed_outer(torch.as_tensor(words.view(np.int64)), torch.as_tensor(g_wide), 1, n_pre=P)
            got_bm = F._delayed_outer(torch.as_tensor(np.ascontiguousarray(spikes.transpose(1, 0, 2))),
                                      torch.as_tensor(g_wide), 1, s_batch_major=True)
        finally:
            torch.set_num_threads(1)
        np.testing.assert_allclose(got.numpy(), ref_wide, rtol=1e-12, atol=1e-12)
        assert torch.equal(got, got_bm)
    with pytest.raises(ValueError, match="n_pre: only with spike bits"):
        _core.delayed_outer(s=spikes, g=g, d=None, d_uniform=1, out=np.zeros((P, N)), n_pre=P)
    with pytest.raises(ValueError, match="s: spike bits .uint64. need n_pre"):
        _core.delayed_outer(s=words, g=g, d=None, d_uniform=1, out=np.zeros((P, N)))
    with pytest.raises(ValueError, match="s: expected shape \\(50, 4, 1\\), got \\(50, 4, 2\\)"):
        _core.delayed_outer(s=np.zeros((T, B, 2), np.uint64), g=g, d=None, d_uniform=1, out=np.zeros((P, N)),
                            n_pre=P)
    with pytest.raises(ValueError, match=r"s: expected shape \(4, 50, 37\), got \(50, 4, 37\)"):
        _core.delayed_outer(s=spikes, g=g, d=None, d_uniform=1, out=np.zeros((P, N)), s_batch_major=True)
    with pytest.raises(TypeError, match="s: expected dtype float64 or bool, got uint8"):
        _core.delayed_outer(s=spikes.astype(np.uint8), g=g, d=None, d_uniform=1, out=np.zeros((P, N)))


def test_event_layer_reads_bool_batch_major_input_as_float_time_major():
    """recurrent_network_events: x as bool [B, T, n_in] (no copy) == x as float [T, B, n_in], spikes,
    readout and every gradient bit for bit; other dtypes are refused with the allowed ones named."""
    rng = np.random.default_rng(3)
    n_in, N, K, T, B = 6, 9, 3, 80, 3
    W_in = torch.tensor(rng.normal(0, 1.5, (N, n_in)), requires_grad=True)
    W_rec = torch.tensor(rng.normal(0, 0.5, (N, N)), requires_grad=True)
    W_out = torch.tensor(rng.normal(0, 1, (K, N)), requires_grad=True)
    k = F.LayerConstants(alpha=torch.full((N,), 0.95, dtype=torch.float64), v_th=torch.ones(N, dtype=torch.float64),
                         rho_c=torch.full((N,), 0.99, dtype=torch.float64),
                         beta_c=torch.full((N,), 0.1, dtype=torch.float64), rho_a=torch.ones(N, dtype=torch.float64),
                         beta_a=torch.zeros(N, dtype=torch.float64), has_alif=False)
    ro = F.ReadoutConstants(torch.full((K,), 0.9, dtype=torch.float64), 1)
    spikes = torch.as_tensor(rng.random((B, T, n_in)) < 0.2)
    results = []
    for x, batch_major in ((spikes.double().transpose(0, 1).contiguous(), False), (spikes, True)):
        z, y = F.recurrent_network_events(x, W_in, W_rec, k, None, W_out, None, ro, 0, 1, batch_major=batch_major)
        loss = (y[-10:] ** 2).sum() + z.sum() * 0.01
        results.append((z, y) + torch.autograd.grad(loss, (W_in, W_rec, W_out)))
    assert results[0][0].sum() > 20
    for a, b in zip(*results):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match=r"x: expected a CPU tensor of W_rec's dtype \(torch.float64\) or torch.bool, "
                                         r"got torch.uint8"):
        F.recurrent_network_events(spikes.to(torch.uint8), W_in, W_rec, k, batch_major=True)
    with pytest.raises(ValueError, match=r"x: expected \[B, T, n_in\] with n_in = 6, got \(3, 80, 5\)"):
        F.recurrent_network_events(spikes[..., :5], W_in, W_rec, k, batch_major=True)


def test_two_live_graphs_keep_their_own_pooled_buffers():
    """The fused layer's pooled [T, B, N] buffers: a second forward pass while the first graph is alive
    must not reuse the first one's saved voltages / spikes (its gradients would be silently wrong); an
    empty batch backpropagates a loss on the spikes."""
    net = SpikingRNN(6, 3, n_lif=60, n_ahp=60, seed=3)  # v: 300 x 8 x 120 float32 = 1.15 MB, pooled
    gen = torch.Generator().manual_seed(1)
    x0, x1 = (torch.rand(8, 300, 6, generator=gen) < 0.2 for _ in range(2))
    o = net(x0)
    alone = torch.autograd.grad(o.y.sum() + o.z.sum(), list(net.parameters()))
    del o
    o0, o1 = net(x0), net(x1)
    torch.autograd.grad(o1.y.sum() + o1.z.sum(), list(net.parameters()))
    later = torch.autograd.grad(o0.y.sum() + o0.z.sum(), list(net.parameters()))
    for a, b in zip(alone, later):
        assert torch.equal(a, b)
    empty = net(torch.zeros(0, 300, 6, dtype=torch.bool))
    (g,) = torch.autograd.grad(empty.z.sum() + empty.y.sum(), [net.w_rec])
    assert not g.any()
    W = net.effective_weights()
    z, y = F.recurrent_network_events(x0, W[0], W[1], net.layer_constants(), batch_major=True)
    assert y.dtype == torch.float32 and y.shape == (300, 8, 0)


def test_input_gradient_of_the_kernel_layer_equals_autograd():
    """Gradients w.r.t. real-valued inputs (a layer stacked on another) through the C++ layer == autograd."""
    rng = np.random.default_rng(1)
    net = SpikingRNN(4, 2, n_lif=3, n_ahp=3, n_alif=3, w_in_scale=3.0, dtype=torch.float64, seed=4,
                     in_delay=rng.integers(0, 3, (9, 4)), rec_delay=rng.integers(1, 3, (9, 9)))
    x = (torch.rand(2, 60, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(5)) < 0.3).double()
    x = (x * 1.5).requires_grad_()
    o1, o2 = net(x), net.step_forward(x)
    assert torch.equal(o1.z, o2.z) and o1.z.sum() > 10
    (g1,) = torch.autograd.grad((o1.y[:, -1] ** 2).sum(), x)
    (g2,) = torch.autograd.grad((o2.y[:, -1] ** 2).sum(), x)
    assert g2.abs().max() > 0
    torch.testing.assert_close(g1, g2, rtol=1e-9, atol=1e-12)


def test_kernel_layer_does_not_depend_on_thread_count():
    """Same spikes with 1 and 2 threads (trials split over threads, each summed in a fixed order)."""
    net = SpikingRNN(8, 3, n_lif=20, n_ahp=20, n_alif=20, n_ref=1, w_in_scale=3.0, seed=6)
    x = torch.rand(5, 200, 8, generator=torch.Generator().manual_seed(0)) < 0.1
    lab = torch.tensor([0, 1, 2, 0, 1])
    res = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        try:
            out = net(x)
            loss = L.readout_cross_entropy(out.y, lab, "last") + L.firing_rate_regularizer(out.z, 0.02, 1.0)
            res.append((out.z.detach().clone(), torch.autograd.grad(loss, list(net.parameters()))))
        finally:
            torch.set_num_threads(1)
    assert res[0][0].sum() > 100 and torch.equal(res[0][0], res[1][0])  # spikes: bit for bit
    for a, b in zip(res[0][1], res[1][1]):  # gradients: torch's BLAS sums in thread-dependent order
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_pooled_buffers_are_not_reused_while_referenced():
    """Training buffers come from a pool; a result still referenced keeps its buffer; inference
    (no gradient) neither keeps the backward state nor grows the pool."""
    F.BUFFERS.clear()
    net = SpikingRNN(8, 3, n_lif=60, n_ahp=60, w_in_scale=3.0, seed=2)
    xa = torch.rand(16, 300, 8, generator=torch.Generator().manual_seed(0)) < 0.1  # 16*300*120*4 B > 1 MiB
    xb = torch.rand(16, 300, 8, generator=torch.Generator().manual_seed(1)) < 0.1
    with torch.no_grad():
        ref_a, ref_b = net(xa).z.clone(), net(xb).z.clone()
    assert F.BUFFERS.nbytes == 0
    za = net(xa).z  # holds its buffer (and the graph holds the state)
    zb = net(xb).z  # must not overwrite za
    assert torch.equal(za.detach(), ref_a) and torch.equal(zb.detach(), ref_b)
    held = F.BUFFERS.nbytes
    assert held > 0
    del zb
    for _ in range(3):  # reuses the freed buffers: the pool does not grow
        out = net(xb)
        out.y[:, -1].sum().backward()
        assert torch.equal(out.z.detach(), ref_b)
        del out
    assert torch.equal(za.detach(), ref_a)
    assert F.BUFFERS.nbytes <= held + 16 * 300 * 120 * 4 * 2
    F.BUFFERS.clear()


def test_layer_kernel_rejects_bad_arrays():
    from ahpsim import _core

    T, B, N = 4, 2, 3
    z = np.zeros((T, B, N), np.float32)
    ones = np.ones(N, np.float32)
    args = dict(z=z, v=np.zeros_like(z), A=None, free=None, alpha=ones, v_th=ones, rho_c=ones, beta_c=ones,
                rho_a=ones, beta_a=ones, bias=None, n_ref=0, reset_zero=False, has_ahp=True, has_alif=False,
                w_rec=np.zeros((N, N), np.float32), d_rec=None, d_rec_uniform=1, x=None, w_in=None, d_in=None,
                d_in_uniform=0, E=None)
    _core.layer_forward(**args)
    with pytest.raises(TypeError, match="v_th: expected dtype float32"):
        _core.layer_forward(**{**args, "v_th": np.ones(N)})
    with pytest.raises(ValueError, match=r"w_rec: expected shape \(3, 3\)"):
        _core.layer_forward(**{**args, "w_rec": np.zeros((N, N + 1), np.float32)})
    with pytest.raises(ValueError, match="d_rec: delays must be >= 1"):
        _core.layer_forward(**{**args, "d_rec": np.zeros((N, N), np.int32)})
    with pytest.raises(ValueError, match="v: must be C-contiguous"):
        _core.layer_forward(**{**args, "v": np.zeros((B, T, N), np.float32).transpose(1, 0, 2)})
    with pytest.raises(ValueError, match="rec_delay must be >= 1"):
        F.recurrent_layer_events(torch.zeros(T, B, 2), torch.zeros(N, 2), torch.zeros(N, N), net_constants(N), rec_delay=0)


def net_constants(N):
    return SpikingRNN(2, 1, n_lif=N).layer_constants()


def test_backend_is_validated_and_both_backends_agree_in_float32():
    net = SpikingRNN(6, 3, n_lif=20, n_ahp=20, w_in_scale=3.0, seed=8)
    with pytest.raises(ValueError, match="backend must be 'auto', 'kernel' or 'torch'"):
        net.backend = "cuda"
    x = torch.rand(3, 300, 6, generator=torch.Generator().manual_seed(1)) < 0.1
    with torch.no_grad():
        net.backend = "kernel"
        a = net(x)
        net.backend = "torch"
        b = net(x)
    # float32 sums in another order (BLAS vs. event order) may flip a spike at a threshold tie
    assert a.z.sum() > 200
    assert (a.z != b.z).float().mean() < 1e-3
