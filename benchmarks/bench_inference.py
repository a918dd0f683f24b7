"""Batched inference of the paper's sMNIST AHP network (140 LIF + 100 AHP, 80 threshold-crossing
input channels, 840 steps, 10 leaky outputs): the C++ kernel against the same model's PyTorch forward
pass on the CPU (its plain torch path, ``backend="torch"``: dense matrix products per step), at batch 1
and batch 256, with the same number of threads. Reports samples/s, the ratio, and checks that both
predict the same classes; ahpsim.torch with its C++ layer kernel (``backend="kernel"``) is reported
beside.

    PYTHONPATH=python python benchmarks/bench_inference.py [--ckpt shipped | CHECKPOINT]
        [--threads 1] [--quick] [--out benchmarks/results/inference.json]

Without a checkpoint the network is the untrained paper-shaped model (same sizes and sparsity),
which is said in the output; its firing is denser than a trained network's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np

import ahpsim
import ahpsim.datasets as ds
try:  # run as a script (benchmarks/ on sys.path) or imported as benchmarks.<name>
    from _args import int_at_least
except ImportError:
    from benchmarks._args import int_at_least


def bundled_spikes(n: int) -> np.ndarray:
    with resources.as_file(resources.files("ahpsim") / "data" / "mnist_test_200.npz") as p:
        images = np.load(p)["images"]
    x = ds.threshold_crossing_encode(images)
    reps = -(-n // len(x))
    return np.concatenate([x] * reps)[:n]


def load_model(ckpt: str | None):
    import torch  # noqa: F401

    from ahpsim.torch import SpikingRNN, from_network, load_model as load

    if ckpt == "shipped":  # the trained network that `python -m ahpsim demo` runs (in every checkout)
        with resources.as_file(resources.files("ahpsim") / "data" / "smnist_ahp.npz") as p:
            return from_network(ahpsim.load_network(p)), "the shipped demo network (python/ahpsim/data/smnist_ahp.npz)"
    if ckpt and Path(ckpt).exists():
        return load(ckpt), f"checkpoint {ckpt}"
    model = SpikingRNN(80, 10, n_lif=140, n_ahp=100, p_in=0.2, p_rec=0.2, p_out=1.0, seed=0)
    return model, "untrained paper-shaped model (no checkpoint found)"


def time_it(fn, min_time: float = 1.0, max_reps: int = 20) -> float:
    fn()  # warm-up
    times = []
    t_end = time.perf_counter() + min_time
    while len(times) < max_reps and (len(times) < 3 or time.perf_counter() < t_end):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", default="shipped",
                    help="'shipped' (the demo's trained network, default) or an ahpsim.torch checkpoint")
    ap.add_argument("--threads", type=int_at_least(1), default=1)
    ap.add_argument("--quick", action="store_true", help="small batch, one repetition: checks the harness only")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "inference.json"))
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        print(json.dumps({"benchmark": "inference", "error": "torch not installed"}))
        return 0
    torch.set_num_threads(args.threads)
    from ahpsim.torch import to_network

    model, what = load_model(args.ckpt)
    model.eval()
    net = to_network(model, n_threads=args.threads)
    batches = [1, 8] if args.quick else [1, 256]
    x_all = bundled_spikes(max(batches))
    rows = []
    for B in batches:
        x = x_all[:B]
        xt = torch.from_numpy(x)

        def run_torch(backend="torch"):
            # "torch": the model's plain tensor-operation path (dense matrix products per step), as the
            # same network runs in PyTorch; "kernel": ahpsim.torch's C++ layer kernel (reported beside)
            model.backend = backend
            with torch.no_grad():
                return model(xt).y[:, -1].argmax(-1).numpy()

        def run_kernel():
            net.reset_state()
            return net.run(inputs={"x": x}, n_threads=args.threads, record_spikes=False).readout("out")[:, -1].argmax(-1)

        pred_t, pred_k = run_torch(), run_kernel()
        t_torch = time_it(run_torch, 0.1 if args.quick else 2.0, 1 if args.quick else 10)
        t_kern = time_it(run_kernel, 0.1 if args.quick else 2.0, 1 if args.quick else 10)
        t_layer = time_it(lambda: run_torch("kernel"), 0.1 if args.quick else 2.0, 1 if args.quick else 10)
        net.reset_state()
        res = net.run(inputs={"x": x}, n_threads=args.threads)
        spk = float(np.mean([res.rate(g) for g in ("lif", "ahp")]))
        rows.append({"batch": B, "torch_samples_per_s": B / t_torch, "kernel_samples_per_s": B / t_kern,
                     "torch_with_kernel_layer_samples_per_s": B / t_layer,
                     "ratio": t_torch / t_kern, "same_predictions": float(np.mean(pred_t == pred_k)),
                     "spikes_per_neuron_per_step": spk})
    out = {"benchmark": "inference", "model": what, "threads": args.threads, "torch": torch.__version__,
           "ahpsim": ahpsim.__version__, "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                                                    "python": sys.version.split()[0]},
           "date": time.strftime("%Y-%m-%d %H:%M:%S"), "runs": rows}
    print(f"model: {what}; threads: {args.threads}")
    print("| batch | PyTorch samples/s | kernel samples/s | kernel / PyTorch | same predictions | spikes/neuron/step "
          "| ahpsim.torch with C++ layer samples/s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['batch']} | {r['torch_samples_per_s']:.1f} | {r['kernel_samples_per_s']:.1f} | "
              f"{r['ratio']:.1f}x | {100 * r['same_predictions']:.1f}% | {r['spikes_per_neuron_per_step']:.4f} | "
              f"{r['torch_with_kernel_layer_samples_per_s']:.1f} |")
    if not args.quick:
        p = Path(args.out)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(out, indent=2))
        os.replace(tmp, p)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
