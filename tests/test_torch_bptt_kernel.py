"""The C++ BPTT (``_core.layer_backward``) against the torch reference path (``_input_current_grad``,
itself checked against autograd through the step functions and gradcheck): float64, every feature."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ahpsim.torch import functional as F  # noqa: E402
from ahpsim.torch import losses as L  # noqa: E402
from ahpsim.torch.modules import SpikingRNN  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("torch_one_thread")]

SURROGATES = [F.Triangle(0.3), F.FastSigmoid(0.5, 3.0), F.Gaussian(0.3, 0.4)]


def _layer(seed, reset, n_ref, tau_m, delays, surrogate, detach_reset, n=(5, 5, 5), refractory_mode="block"):
    rng = np.random.default_rng(seed)
    N = sum(n)
    opts = dict(rec_delay=rng.integers(1, 6, (N, N)), in_delay=rng.integers(0, 3, (N, 4))) if delays else {}
    net = SpikingRNN(4, 3, n_lif=n[0], n_ahp=n[1], n_alif=n[2], w_in_scale=3.0, w_rec_scale=1.5, bias=True,
                     dtype=torch.float64, seed=seed, reset=reset, n_ref=n_ref, tau_m=tau_m, tau_ahp=60.0,
                     beta_ahp=0.3, tau_a=60.0, beta_alif=0.3, surrogate=surrogate, detach_reset=detach_reset,
                     p_rec=0.6, refractory_mode=refractory_mode, **opts)
    return net


def _run(net, T=120, B=3, seed=0):
    x = torch.rand(B, T, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) < 0.3
    k = net.layer_constants()
    W_in, W_rec, _ = net.effective_weights()
    xt = x.double().transpose(0, 1).contiguous()
    delay = net.rec_delay if int(net.rec_delay.min()) != int(net.rec_delay.max()) else int(net.rec_delay.max())
    in_delay = net.in_delay if int(net.in_delay.min()) != int(net.in_delay.max()) else int(net.in_delay.max())
    with torch.no_grad():
        z, v, A, fr, _, _ = F._kernel_forward(k, T, B, net.N, torch.float64, W_rec, delay, net.bias, x=xt, W_in=W_in,
                                           in_delay=in_delay)
    G = torch.randn(T, B, net.N, dtype=torch.float64, generator=torch.Generator().manual_seed(seed + 1))
    Ws = [W_rec.detach()] if isinstance(delay, int) else [W_rec.detach() * (delay == d) for d in k.delays]
    return k, G, z.clone(), v.clone(), None if A is None else A.clone(), None if fr is None else fr.clone(), \
        W_rec.detach(), delay, Ws


CASES = [
    dict(reset="subtract", n_ref=0, tau_m=20.0, delays=False),
    dict(reset="zero", n_ref=0, tau_m=20.0, delays=False),
    dict(reset="subtract", n_ref=2, tau_m=20.0, delays=True),
    dict(reset="zero", n_ref=1, tau_m=20.0, delays=True),
    # one membrane decay per neuron: the direct (row-sparse) back-projection instead of the shared-decay one
    dict(reset="subtract", n_ref=0, tau_m=np.linspace(5.0, 40.0, 15), delays=True),
    dict(reset="zero", n_ref=0, tau_m=np.linspace(5.0, 40.0, 15), delays=False),
    # v clamped at 0 while refractory (as on Loihi): shared and per-neuron decays, both resets
    dict(reset="subtract", n_ref=2, tau_m=20.0, delays=True, refractory_mode="clamp"),
    dict(reset="zero", n_ref=2, tau_m=20.0, delays=False, refractory_mode="clamp"),
    dict(reset="zero", n_ref=1, tau_m=np.linspace(5.0, 40.0, 15), delays=True, refractory_mode="clamp"),
]


@pytest.mark.parametrize("surrogate", SURROGATES, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("detach_reset", [False, True])
def test_kernel_bptt_equals_torch_reference(case, surrogate, detach_reset):
    net = _layer(1, case["reset"], case["n_ref"], case["tau_m"], case["delays"], surrogate, detach_reset,
                 refractory_mode=case.get("refractory_mode", "block"))
    k, G, z, v, A, fr, W, delay, Ws = _run(net)
    assert z.sum() > 30 and (z.mean((0, 1)) > 0).sum() > 8  # most neurons spike
    got = F._kernel_input_current_grad(k, G, z, v, A, fr, W, delay)[0]
    ref = F._input_current_grad(k, G, z, v, A, fr, Ws)
    assert got is not None and ref.abs().max() > 0
    err = float((got - ref).abs().max() / ref.abs().max())
    assert err <= 1e-9, err
    # the spikes read from their bits (what training passes: the forward pass's z_bits) give the same
    # gradients bit for bit, the decays' gradients included
    bits = _spike_bits(z)
    for decay_grads in (False, True):
        a = F._kernel_input_current_grad(k, G, z, v, A, fr, W, delay, decay_grads=decay_grads)
        b = F._kernel_input_current_grad(k, G, torch.zeros_like(z), v, A, fr, W, delay, decay_grads=decay_grads,
                                         z_bits=bits)
        assert torch.equal(a[0], b[0])
        if decay_grads:
            assert all(torch.equal(p, q) for p, q in zip(a[2], b[2]))


def _spike_bits(z):
    """Spikes [T, B, N] as layer_forward's bits: bit j % 64 of int64 word j // 64 (plain numpy)."""
    zb = z.numpy() != 0
    T, B, N = zb.shape
    words = np.zeros((T, B, (N + 63) // 64), np.uint64)
    for j in range(N):
        words[..., j // 64] |= zb[..., j].astype(np.uint64) << np.uint64(j % 64)
    return torch.from_numpy(words.view(np.int64))


@pytest.mark.parametrize("n", [(20, 20, 23), (50, 50, 50)])  # 63 neurons: one word; 150: three, the last partial
def test_forward_spike_bits_equal_the_spikes(n):
    net = _layer(6, "subtract", 0, 20.0, False, F.Triangle(0.3), False, n=n)
    T, B = 80, 6
    x = torch.rand(B, T, 4, generator=torch.Generator().manual_seed(6)) < 0.4
    k = net.layer_constants()
    W_in, W_rec, _ = net.effective_weights()
    with torch.no_grad():
        z, *_, bits = F._kernel_forward(k, T, B, net.N, torch.float64, W_rec, int(net.rec_delay.max()), net.bias,
                                        x=x, W_in=W_in, x_batch_major=True)
    assert z.sum() > 50 and (z.sum((0, 1)) > 0).sum() > net.N // 2
    assert torch.equal(bits, _spike_bits(z))


def test_kernel_bptt_is_independent_of_the_thread_count_and_matches_in_float32():
    net = _layer(2, "zero", 1, 20.0, True, F.Triangle(0.3), False, n=(20, 20, 20))
    k, G, z, v, A, fr, W, delay, Ws = _run(net, T=150, B=5)
    out = []
    for threads in (1, 2, 3):
        torch.set_num_threads(threads)
        try:
            out.append(F._kernel_input_current_grad(k, G, z, v, A, fr, W, delay)[0].clone())
        finally:
            torch.set_num_threads(1)
    assert torch.equal(out[0], out[1]) and torch.equal(out[0], out[2])
    # float32: the same recursion, rounded once per operation
    f = torch.float32
    k.alpha, k.v_th, k.rho_c, k.beta_c, k.rho_a, k.beta_a = (t.to(f) for t in (k.alpha, k.v_th, k.rho_c, k.beta_c,
                                                                                k.rho_a, k.beta_a))
    g32 = F._kernel_input_current_grad(k, G.to(f), z.to(f), v.to(f), A.to(f), fr, W.to(f), delay)[0]
    rel = float((g32.double() - out[0]).abs().max() / out[0].abs().max())
    assert g32.dtype == f and rel < 1e-4, rel


@pytest.mark.parametrize("decay_grads", [False, True])
def test_kernel_bptt_of_a_large_batch_equals_each_trial_alone(decay_grads):
    """The backward pass walks trials back in time in chunks (16 trials; 4 with decay gradients) that
    share nothing: a batch of 37 (chunks cut mid-batch, a partial last chunk, thread blocks that start
    mid-chunk) gives each trial exactly what that trial alone (B = 1) gives, on 1, 2 and 3 threads."""
    net = _layer(4, "zero", 1, 20.0, False, F.Triangle(0.3), False, n=(8, 8, 8))
    T, B = 60, 37
    k, G, z, v, A, fr, W, delay, Ws = _run(net, T=T, B=B, seed=5)
    alone = []
    for b in range(B):
        one = [t[:, b:b + 1].contiguous() for t in (G, z, v, A, fr)]
        res = F._kernel_input_current_grad(k, *one, W, delay, decay_grads=decay_grads)
        alone.append((res[0].clone(), res[2] if decay_grads else ()))  # (gI: a pooled buffer, reused)
    assert all(float(a[0].abs().sum()) > 0 for a in alone)
    for threads in (1, 2, 3):
        torch.set_num_threads(threads)
        try:
            got = F._kernel_input_current_grad(k, G, z, v, A, fr, W, delay, decay_grads=decay_grads)
        finally:
            torch.set_num_threads(1)
        assert torch.equal(got[0], torch.cat([a[0] for a in alone], dim=1)), threads
        if decay_grads:  # summed over trials: the same sum of the trials' own gradients
            for j in range(3):
                assert torch.equal(got[2][j], torch.stack([a[1][j] for a in alone]).sum(0)), (threads, j)


@pytest.mark.parametrize("delays", [True, False], ids=["per-synapse delays", "uniform delays (fused weight grads)"])
def test_model_gradients_with_kernel_and_torch_backends_agree(delays):
    """Whole-model gradients (readout, rate regulariser, W_in / W_rec / bias / W_out) of the two backends."""
    net = _layer(3, "zero", 0, 20.0, delays, F.Triangle(0.3), False, n=(10, 10, 10))
    x = torch.rand(4, 200, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) < 0.2
    lab = torch.tensor([0, 1, 2, 1])
    losses = {"both": lambda out: L.readout_cross_entropy(out.y, lab, "window", 20)
              + L.firing_rate_regularizer(out.z, 0.02, 1.0),
              # one output unused: its gradient reaches the kernel as None, not as zeros
              "readout only": lambda out: L.readout_cross_entropy(out.y, lab, "last"),
              "spikes only": lambda out: (out.z[:, -50:] * torch.linspace(-1, 1, 30, dtype=out.z.dtype)).sum()}
    for name, loss_fn in losses.items():
        grads = []
        for backend in ("kernel", "torch"):
            net.backend = backend
            grads.append(torch.autograd.grad(loss_fn(net(x)), list(net.parameters()), allow_unused=True))
        for a, b in zip(*grads):
            if b is None or not b.abs().max() > 0:  # W_out and b_out get none from a loss on spikes only
                assert name == "spikes only" and (a is None or not a.abs().max() > 0), name
                continue
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12, msg=name)


def test_layer_backward_rejects_bad_arrays():
    from ahpsim import _core

    T, B, N = 4, 2, 3
    z = np.zeros((T, B, N))
    ones = np.ones(N)
    args = dict(gI=np.zeros_like(z), G=None, z=z, v=np.zeros_like(z), A=None, free=None, alpha=ones, v_th=ones,
                rho_c=ones, beta_c=ones, rho_a=ones, beta_a=ones, reset_zero=False, detach_reset=False,
                has_ahp=True, has_alif=False, w_rec=np.zeros((N, N)), d_rec=None, d_rec_uniform=1, surrogate=0,
                dampening=0.3)
    _core.layer_backward(**args)
    with pytest.raises(ValueError, match="surrogate: 0 .triangle., 1 .fast sigmoid. or 2 .gaussian., got 7"):
        _core.layer_backward(**{**args, "surrogate": 7})
    with pytest.raises(ValueError, match="A: required with has_alif"):
        _core.layer_backward(**{**args, "has_alif": True})
    with pytest.raises(ValueError, match=r"refractory_clamp: needs free \(n_ref > 0\)"):
        _core.layer_backward(**{**args, "refractory_clamp": True})
    with pytest.raises(ValueError, match=r"gI: expected shape \(4, 2, 3\)"):
        _core.layer_backward(**{**args, "gI": np.zeros((T, B, N + 1))})
    with pytest.raises(TypeError, match="v: expected dtype float64"):
        _core.layer_backward(**{**args, "v": np.zeros((T, B, N), np.float32)})
    with pytest.raises(ValueError, match="d_rec: delays must be >= 1"):
        _core.layer_backward(**{**args, "d_rec": np.zeros((N, N), np.int32)})
    # the fused weight gradients: uniform delays, the input with g_w_in, shapes, d_in_uniform >= 0
    with pytest.raises(ValueError, match=r"g_w_rec: only with uniform delays \(d_rec None\)"):
        _core.layer_backward(**{**args, "g_w_rec": np.zeros((N, N)), "d_rec": np.ones((N, N), np.int32)})
    with pytest.raises(ValueError, match=r"g_w_rec: expected shape \(3, 3\)"):
        _core.layer_backward(**{**args, "g_w_rec": np.zeros((N, N + 1))})
    x = np.zeros((T, B, 2))
    with pytest.raises(ValueError, match="g_w_in: needs x, the layer's input"):
        _core.layer_backward(**{**args, "g_w_in": np.zeros((2, N))})
    with pytest.raises(ValueError, match="x: only with g_w_in"):
        _core.layer_backward(**{**args, "x": x})
    with pytest.raises(ValueError, match=r"g_w_in: expected shape \(2, 3\)"):
        _core.layer_backward(**{**args, "x": x, "g_w_in": np.zeros((3, N))})
    with pytest.raises(ValueError, match=r"x: expected a \[B, T, n_in\] array"):
        _core.layer_backward(**{**args, "x": x[0], "g_w_in": np.zeros((2, N)), "x_batch_major": True})
    with pytest.raises(ValueError, match="d_in_uniform: delays must be >= 0"):
        _core.layer_backward(**{**args, "x": x, "g_w_in": np.zeros((2, N)), "d_in_uniform": -1})
    g_in = np.zeros((2, N))
    _core.layer_backward(**{**args, "x": x, "g_w_in": g_in, "g_w_rec": np.zeros((N, N))})  # all well-formed


def test_bad_parameters_and_inputs_are_rejected():
    """The torch side checks what the kernel's models check, plus v_th > 0 (the surrogate divides by it),
    and rejects non-finite inputs (which would make every input-weight gradient NaN)."""
    for kw, msg in ((dict(v_th=0.0), "v_th: values must be > 0"), (dict(tau_m=-1.0), "tau_m: values must be >= 0"),
                    (dict(tau_out=float("nan")), "tau_out: values must be finite"),
                    (dict(n_ref=-1), "n_ref must be an integer >= 0"), (dict(n_lif=2.5), "n_lif must be an integer"),
                    (dict(p_rec=1.5), "p_rec must be a probability"), (dict(dt=0.0), "dt must be a finite number"),
                    (dict(beta_ahp="x"), "beta_ahp: expected a number"),
                    (dict(refractory_mode="hold"), "refractory_mode must be 'block' or 'clamp'")):
        with pytest.raises((ValueError, TypeError), match=msg):
            SpikingRNN(3, 2, **{"n_lif": 2, "n_ahp": 2, **kw})
    with pytest.raises(ValueError, match="thr: thresholds must be > 0"):
        F.spike_fn(torch.zeros(3), 0.0)
    net = SpikingRNN(3, 2, n_lif=2, n_ahp=2)
    x = torch.zeros(1, 10, 3)
    x[0, 4, 1] = float("nan")
    with pytest.raises(ValueError, match=r"x: contains NaN or infinite values \(first at \[trial, step, channel\] = \[0, 4, 1\]\)"):
        net(x)
    # the check first sums x: +inf, -inf, both (sum NaN) are caught, and finite values whose sum
    # overflows are accepted
    for vals in ([float("inf")], [-float("inf")], [float("inf"), -float("inf")]):
        x = torch.zeros(2, 10, 3)
        for n, val in enumerate(vals):
            x[1, 2 + n, 0] = val
        with pytest.raises(ValueError, match=r"first at \[trial, step, channel\] = \[1, 2, 0\]"):
            net(x)
    assert net(torch.full((1, 10, 3), 3e38)).y.shape == (1, 10, 2)
    with pytest.raises(ValueError, match=r"x: expected shape \[B, T, 3\]"):
        net(torch.zeros(1, 10, 4))


@pytest.mark.parametrize("opts", [dict(reset="subtract"), dict(reset="zero", n_ref=1), dict(delays=True)])
def test_trainable_time_constants_match_autograd(opts):
    """train_tau: the C++ backward's gradients w.r.t. log tau_m / tau_ahp / tau_a / tau_out (and every
    weight) equal autograd through the step functions (float64, 1e-9); the values survive state_dict
    and export."""
    opts = dict(opts)
    if opts.pop("delays", False):
        rng = np.random.default_rng(0)
        opts.update(rec_delay=rng.integers(1, 4, (12, 12)), in_delay=rng.integers(0, 3, (12, 5)))
    net = SpikingRNN(5, 3, n_lif=4, n_ahp=4, n_alif=4, w_in_scale=3.0, bias=True, dtype=torch.float64, seed=3,
                     tau_m=np.linspace(10.0, 30.0, 12), tau_ahp=50.0, beta_ahp=0.2, tau_a=50.0, beta_alif=0.3,
                     train_tau=True, **opts)
    names = [n for n, _ in net.named_parameters()]
    assert {"log_tau_m", "log_tau_ahp", "log_tau_a", "log_tau_out"} <= set(names)
    x = torch.rand(2, 80, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) < 0.3
    lab = torch.tensor([0, 2])

    def loss(o):
        return L.readout_cross_entropy(o.y, lab, "window", 10) + L.firing_rate_regularizer(o.z, 0.05, 1.0)

    o1, o2 = net(x), net.step_forward(x)
    assert torch.equal(o1.z, o2.z) and o1.z.sum() > 20
    g1 = dict(zip(names, torch.autograd.grad(loss(o1), list(net.parameters()))))
    g2 = dict(zip(names, torch.autograd.grad(loss(o2), list(net.parameters()))))
    for n in names:
        assert g2[n].abs().max() > 0, n
        torch.testing.assert_close(g1[n], g2[n], rtol=1e-9, atol=1e-12, msg=n)
    # entries without the time constant get no gradient (LIF neurons have no AHP / ALIF variable)
    assert float(g1["log_tau_ahp"][:4].abs().max()) == 0.0 and float(g1["log_tau_a"][:8].abs().max()) == 0.0
    with torch.no_grad():
        net.log_tau_m.add_(0.1)
    assert net.tau_m[0] == pytest.approx(10.0 * np.exp(0.1)) and net.tau_ahp[0] == 0.0
    net2 = SpikingRNN.from_state_dict(net.state_dict())
    np.testing.assert_array_equal(net2.tau_m, net.tau_m)
    from ahpsim.torch.export import run_network, to_network

    z, _ = run_network(to_network(net), x)
    with torch.no_grad():
        assert np.array_equal(z, net(x).z.numpy().astype(bool))
    net.backend = "torch"
    with pytest.raises(NotImplementedError, match="train_tau needs the C\\+\\+ layer kernel"):
        net(x)


@pytest.mark.parametrize("x_kind, decay_grads", [("bool batch-major", False), ("float time-major", False),
                                                  ("bool batch-major", True)])
def test_fused_weight_gradients_equal_delayed_outer_on_any_thread_count(x_kind, decay_grads):
    """layer_backward's g_w_rec / g_w_in (the weight gradients added while walking back, in groups of 8
    trials) against delayed_outer over the finished gI (the same sums in (t, b) order), and the same bits
    on 1, 2 and 3 threads (37 trials: five groups, the last partial; with decay gradients the trials are
    walked back 4 at a time, so a group spans two chunks)."""
    net = _layer(7, "subtract", 0, 20.0, False, F.Triangle(0.3), False, n=(12, 12, 12))
    T, B, n_in, d_in = 70, 37, 4, 2
    k, G, z, v, A, fr, W, delay, Ws = _run(net, T=T, B=B, seed=8)
    gen = torch.Generator().manual_seed(9)
    if x_kind == "bool batch-major":
        x, batch_major = torch.rand(B, T, n_in, generator=gen) < 0.3, True
    else:
        x = torch.rand(T, B, n_in, dtype=torch.float64, generator=gen) * (torch.rand(T, B, n_in, generator=gen) < 0.3)
        batch_major = False
    bits = _spike_bits(z)
    out = []
    for threads in (1, 2, 3):
        torch.set_num_threads(threads)
        try:
            g_rec, g_in = torch.zeros(net.N, net.N, dtype=torch.float64), torch.zeros(n_in, net.N, dtype=torch.float64)
            res = F._kernel_input_current_grad(k, G, z, v, A, fr, W, delay, z_bits=bits, g_w_rec=g_rec,
                                               g_w_in=g_in, x=x, x_batch_major=batch_major, in_delay=d_in,
                                               decay_grads=decay_grads)
        finally:
            torch.set_num_threads(1)
        out.append((res[0].clone(), g_rec, g_in, *(res[2] if decay_grads else ())))
    for o in out[1:]:
        assert all(torch.equal(a, b) for a, b in zip(out[0], o))
    gI, g_rec, g_in = out[0][:3]
    ref_rec = F._delayed_outer(z, gI, delay).t()
    ref_in = F._delayed_outer(x, gI, d_in, s_batch_major=batch_major).t()
    assert ref_rec.abs().max() > 0 and ref_in.abs().max() > 0
    torch.testing.assert_close(g_rec, ref_rec, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(g_in, ref_in, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("train_tau", [False, True])
def test_training_steps_give_the_same_weights_on_any_thread_count(train_tau):
    """Determinism end to end: a few Adam steps of a float32 network (uniform delays, so the weight
    gradients are fused into the backward pass; readout; rate loss) end with bit-identical parameters on
    1, 2 and 3 threads. 21 trials: three groups of the fused gradients, the last partial."""
    B, T = 21, 90
    x = torch.rand(B, T, 6, generator=torch.Generator().manual_seed(11)) < 0.25
    lab = torch.arange(B) % 3
    finals = []
    for threads in (1, 2, 3):
        net = SpikingRNN(6, 3, n_lif=20, n_ahp=20, w_in_scale=3.0, w_rec_scale=1.5, seed=12, tau_ahp=60.0,
                         beta_ahp=0.3, reset="zero", train_tau=train_tau)
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        torch.set_num_threads(threads)
        try:
            for _ in range(3):
                out = net(x)
                loss = L.readout_cross_entropy(out.y, lab, "window", 20) + L.firing_rate_regularizer(out.z, 0.02, 1.0)
                opt.zero_grad()
                loss.backward()
                opt.step()
        finally:
            torch.set_num_threads(1)
        assert out.z.sum() > 0
        finals.append([p.detach().clone() for p in net.parameters()])
    for other in finals[1:]:
        assert all(torch.equal(a, b) for a, b in zip(finals[0], other))
