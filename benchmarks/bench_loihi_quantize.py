#!/usr/bin/env python
"""Accuracy of a trained float AHP network before and after quantization to Loihi units.

Task (small enough for a CPU in minutes): row-wise MNIST as spikes -- 28 steps of 28 channels (a
pixel row, spike where the pixel is > 127), then ``--cue`` steps of a cue channel; the answer is
the argmax of the 10 leaky readouts at the last step (as in the paper's Loihi sMNIST deployment).
Network: one recurrent population of AHP neurons (reset to zero, as on Loihi) and 10 leaky readouts.

1. train it in PyTorch with BPTT and a triangular pseudo-derivative (the float equations of
   docs/equations.md, written out here);
2. copy the trained weights into an ``ahpsim.Network`` and measure its test accuracy on the float
   engine (float32);
3. ``ahpsim.loihi.quantize`` it and measure the test accuracy on the integer engine.

Prints one JSON object with both accuracies and the quantization report.

    python benchmarks/bench_loihi_quantize.py --train 20000 --test 10000 --epochs 10
    # or skip the training with the committed weights (trained with exactly the line above):
    python benchmarks/bench_loihi_quantize.py --weights tests/loihi_golden/trained_ahp_rowmnist.npz
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
try:  # run as a script (benchmarks/ on sys.path) or imported as benchmarks.<name>
    from _args import int_at_least, real_in
except ImportError:
    from benchmarks._args import int_at_least, real_in

REPO = Path(__file__).resolve().parents[1]


def load_mnist(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    pre = "train" if split == "train" else "t10k"
    with gzip.open(root / f"{pre}-images-idx3-ubyte.gz", "rb") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(root / f"{pre}-labels-idx1-ubyte.gz", "rb") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    return x, y.astype(np.int64)


def encode(images: np.ndarray, cue: int) -> np.ndarray:
    """[B, 28, 28] uint8 -> bool spikes [B, 28 + cue, 29] (28 row channels + 1 cue channel)."""
    B = images.shape[0]
    X = np.zeros((B, 28 + cue, 29), bool)
    X[:, :28, :28] = images > 127
    X[:, 28:, 28] = True
    return X


def train(Xtr, ytr, args, log):
    import torch

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    n_in, n, T = Xtr.shape[2], args.neurons, Xtr.shape[1]
    alpha = float(np.exp(-1.0 / args.tau_m))
    rho = float(np.exp(-1.0 / args.tau_ahp))
    kappa = float(np.exp(-1.0 / args.tau_out))
    beta, vth = args.beta, 1.0
    W_in = torch.nn.Parameter(torch.randn(n, n_in) / np.sqrt(n_in))
    W_rec = torch.nn.Parameter(torch.randn(n, n) / np.sqrt(n) * 0.5)
    W_out = torch.nn.Parameter(torch.randn(10, n) / np.sqrt(n))
    with torch.no_grad():
        W_rec.fill_diagonal_(0.0)
    opt = torch.optim.Adam([W_in, W_rec, W_out], lr=args.lr)

    class Spike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return (x > 0).to(x.dtype)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * args.dampening * torch.clamp(1.0 - x.abs(), min=0.0)

    eye = 1.0 - torch.eye(n)

    def forward(xb):
        B = xb.shape[0]
        v = torch.zeros(B, n)
        c = torch.zeros(B, n)
        z = torch.zeros(B, n)
        y = torch.zeros(B, 10)
        rate = 0.0
        for t in range(T):
            # readout: y[t] = kappa y[t-1] + W_out z[t-1] (delay 1 from the neurons)
            y = kappa * y + z @ W_out.t()
            c = rho * c + beta * z
            I = xb[:, t] @ W_in.t() + z @ (W_rec * eye).t()
            v = alpha * (1.0 - z) * v + I - c           # reset to zero (Loihi)
            z = Spike.apply((v - vth) / vth)
            rate = rate + z.mean()
        return y, rate / T

    Xt = torch.from_numpy(Xtr.astype(np.float32))
    yt = torch.from_numpy(ytr)
    nb = int(np.ceil(len(Xt) / args.batch))
    for ep in range(args.epochs):
        perm = torch.randperm(len(Xt))
        tot, correct, t0 = 0.0, 0, time.time()
        for b in range(nb):
            idx = perm[b * args.batch:(b + 1) * args.batch]
            out, rate = forward(Xt[idx])
            loss = torch.nn.functional.cross_entropy(out, yt[idx]) + args.rate_reg * (rate - args.target_rate) ** 2
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * len(idx)
            correct += int((out.argmax(1) == yt[idx]).sum())
        log(f"epoch {ep + 1}: loss {tot / len(Xt):.4f} train acc {correct / len(Xt):.4f} "
            f"rate {float(rate.detach()):.3f} ({time.time() - t0:.0f} s)")
    with torch.no_grad():
        W_rec_np = (W_rec * eye).numpy().astype(np.float64)
    return dict(W_in=W_in.detach().numpy().astype(np.float64), W_rec=W_rec_np,
                W_out=W_out.detach().numpy().astype(np.float64))


def float_network(W: dict, args):
    import ahpsim

    net = ahpsim.Network(dtype="float32")
    net.add_input(W["W_in"].shape[1], name="x")
    net.add_population(args.neurons, ahpsim.AHP(tau_m=args.tau_m, tau_ahp=args.tau_ahp, beta=args.beta, v_th=1.0,
                                                reset="zero"), name="ahp")
    net.add_population(10, ahpsim.Readout(tau=args.tau_out), name="out")
    net.connect("x", "ahp", W["W_in"], delay=0)
    net.connect("ahp", "ahp", W["W_rec"], delay=1)
    net.connect("ahp", "out", W["W_out"], delay=1)
    return net


def accuracy(run, X, y, chunk=1000) -> float:
    correct = 0
    for i in range(0, len(X), chunk):
        out = run(X[i:i + chunk])
        correct += int((out[:, -1].argmax(1) == y[i:i + chunk]).sum())
    return correct / len(X)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("AHPSIM_TEST_DATA", str(REPO.parent / "shared" / "data")))
    ap.add_argument("--train", type=int_at_least(1), default=20000)
    ap.add_argument("--test", type=int_at_least(1), default=10000)
    ap.add_argument("--epochs", type=int_at_least(1), default=10)
    ap.add_argument("--batch", type=int_at_least(1), default=128)
    ap.add_argument("--lr", type=real_in(0), default=2e-3)
    ap.add_argument("--neurons", type=int_at_least(1), default=128)
    ap.add_argument("--cue", type=int_at_least(1), default=4)
    ap.add_argument("--tau-m", type=real_in(0), default=20.0)
    ap.add_argument("--tau-ahp", type=real_in(0), default=200.0)
    ap.add_argument("--tau-out", type=real_in(0), default=20.0)
    ap.add_argument("--beta", type=real_in(0, lo_open=False), default=0.5)
    ap.add_argument("--dampening", type=real_in(0, lo_open=False), default=0.3)
    ap.add_argument("--rate-reg", type=real_in(0, lo_open=False), default=1.0)
    ap.add_argument("--target-rate", type=real_in(0, 1), default=0.05)
    ap.add_argument("--vth-mant", type=int_at_least(1), default=4096)
    ap.add_argument("--threads", type=int_at_least(1), default=1)
    ap.add_argument("--seed", type=int_at_least(0), default=0)
    ap.add_argument("--weights", default="", help="load/save trained weights (.npz) here")
    args = ap.parse_args(argv)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    root = Path(args.data) / "mnist"
    xtr, ytr = load_mnist(root, "train")
    xte, yte = load_mnist(root, "test")
    Xtr, ytr = encode(xtr[:args.train], args.cue), ytr[:args.train]
    Xte, yte = encode(xte[:args.test], args.cue), yte[:args.test]

    t0 = time.time()
    if args.weights and Path(args.weights).exists():
        W = {k: v for k, v in np.load(args.weights).items() if k.startswith("W_")}
        log(f"loaded weights from {args.weights}")
    else:
        W = train(Xtr, ytr, args, log)
        if args.weights:
            np.savez(args.weights, **W)
    t_train = time.time() - t0

    from ahpsim.loihi import quantize

    net = float_network(W, args)

    def run_float(X):
        net.init_state(X.shape[0])  # the float engine continues from its state: start each chunk at zero
        return net.run(X.shape[1], inputs={"x": X}).readout("out")

    acc_float = accuracy(run_float, Xte, yte)
    q = quantize(net, vth_mant=args.vth_mant)
    def run_int(X):
        q.reset_state()  # runs continue from the state: start each chunk at zero
        return q.run(X.shape[1], inputs={"x": X}, record_uv=True).readout("out")

    acc_int = accuracy(run_int, Xte, yte)
    res = dict(task="row-wise MNIST spikes (28 steps x 28 channels + cue)", train_images=len(Xtr),
               test_images=len(Xte), epochs=args.epochs, neurons=args.neurons, train_s=round(t_train, 1),
               float_accuracy=acc_float, integer_accuracy=acc_int,
               difference_pp=round(100 * (acc_float - acc_int), 3), vth_mant=args.vth_mant,
               report=dict(populations=q.report.populations, projections=q.report.projections,
                           warnings=q.report.warnings),
               resources={k: v for k, v in q.resources().items() if k not in ("projections", "limits")})
    print(json.dumps(res, indent=1, default=float))
    print(f"\nfloat engine accuracy {acc_float:.4f}, Loihi integer engine {acc_int:.4f}, "
          f"difference {100 * (acc_float - acc_int):+.2f} pp", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
