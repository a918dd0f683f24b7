"""The authors' Loihi sMNIST network (weights v25_94per) on ahpsim's integer engine: its answers on the
chip's 200 test images against the chip's, its accuracy on all 10,000 MNIST test images, and engine
speed (images per second, one and two threads, no voltages recorded; the median of ``--reps`` runs of
200 images, every run kept in the JSON) against the chip's 13.99 ms per image.

    PYTHONPATH=python python benchmarks/bench_loihi_nxsdk.py --root ../shared/data
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path


from ahpsim import datasets as D
from ahpsim.loihi import (NXSDK_SMNIST_CHIP_ERRORS, load_nxsdk_smnist, nxsdk_smnist_answer,
                          nxsdk_smnist_chip_images, nxsdk_smnist_float)
try:  # run as a script (benchmarks/ on sys.path) or imported as benchmarks.<name>
    from _args import int_at_least
except ImportError:
    from benchmarks._args import int_at_least

CHIP_MS_PER_IMAGE = 13.99  # the paper, one Loihi 1 chip


def calibrate(net, xt, yt) -> dict:
    """Fits the two constants of ahpsim.energy.loihi1_calibrated to the sMNIST chip measurement (from this
    network's operation counts on the chip's 200 images) and checks them against the bAbI deployment."""
    from ahpsim import energy

    sel = nxsdk_smnist_chip_images()
    net.reset_state()
    net.run(inputs={"x": D.threshold_crossing_encode(xt[sel].reshape(-1, 784))}, n_threads=2, record_uv=False)
    counts = energy.count_operations(net, len(sel), 840)
    dyn = energy.loihi1_estimate(counts)
    pub = energy.PUBLISHED["smnist"]
    overhead = pub["step_s"] - dyn["latency_per_step_s"]
    latency = dyn["latency_s"] + 840 * overhead
    static_w = (pub["energy_J"] - dyn["energy_J"]) / latency
    fitted = {"step_overhead_s": overhead, "static_power_W_per_chip": static_w}
    cal = energy.loihi1_calibrated(counts, calibration={**energy.CALIBRATION, **fitted})
    babi = energy.PUBLISHED["babi"]
    babi_static = babi["power_W"] - babi["dynamic_power_W"]
    rows = [
        ("sMNIST latency per image (s)", pub["latency_s"], cal["latency_s"], "fitted"),
        ("sMNIST time per step (s)", pub["step_s"], cal["latency_per_step_s"], "fitted"),
        ("sMNIST energy per image (J)", pub["energy_J"], cal["energy_J"], "fitted"),
        ("sMNIST energy x delay (J s)", 5.07e-6, cal["energy_J"] * cal["latency_s"], "check"),
        ("bAbI static power, 22 chips (W)", babi_static, static_w * 22, "check (per-chip static power)"),
    ]
    return {"per_image_counts": {k: v for k, v in counts.per_inference().items()},
            "dynamic_only": {"energy_J": dyn["energy_J"], "latency_s": dyn["latency_s"]},
            "fitted": fitted, "in_package": {k: energy.CALIBRATION[k] for k in fitted},
            "predicted_vs_measured": [{"figure": f, "measured": m, "predicted": p_, "error": p_ / m - 1,
                                       "role": role} for f, m, p_, role in rows]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--n-test", type=int_at_least(1), default=10000, help="test images for the accuracy (default: all)")
    ap.add_argument("--batch", type=int_at_least(1), default=500)
    ap.add_argument("--reps", type=int_at_least(1), default=7, help="timed runs per thread count (the median is reported)")
    ap.add_argument("--out", default="benchmarks/results/loihi_nxsdk.json")
    args = ap.parse_args(argv)
    root = Path(args.root)
    net = load_nxsdk_smnist(root / "loihi_smnist_v25_94per", download=False)
    xt, yt = D.load_mnist(root, "test", download=False)
    res = {"machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count()}

    sel = nxsdk_smnist_chip_images()
    X = D.threshold_crossing_encode(xt[sel].reshape(-1, 784))
    net.reset_state()
    pred = nxsdk_smnist_answer(net.run(inputs={"x": X}, n_threads=2))
    errors = [(int(yt[sel][i]), int(pred[i])) for i in range(len(sel)) if pred[i] != yt[sel][i]]
    res["chip_images"] = {"n": len(sel), "accuracy": float((pred == yt[sel]).mean()), "errors": errors,
                          "equal_to_chip": tuple(errors) == NXSDK_SMNIST_CHIP_ERRORS}
    print(json.dumps(res["chip_images"]), flush=True)

    n = min(args.n_test, len(yt))
    ok = 0
    spikes = 0.0
    for s in range(0, n, args.batch):
        X = D.threshold_crossing_encode(xt[s:s + args.batch].reshape(-1, 784))
        net.reset_state()
        r = net.run(inputs={"x": X}, n_threads=2)
        ok += int((nxsdk_smnist_answer(r) == yt[s:s + args.batch]).sum())
        spikes += (r.rate("lif") * 140 + r.rate("ahp.soma") * 100) / 240 * len(X)
    res["test_set"] = {"n": n, "accuracy": ok / n, "spikes_per_neuron_step": spikes / n}
    print(json.dumps(res["test_set"]), flush=True)

    # the same weights in the float kernel, with the chip's AHP strength and with 0.756
    Xc = D.threshold_crossing_encode(xt[sel].reshape(-1, 784))
    res["float_kernel_chip_images"] = {}
    for name, beta in (("beta 0.756/64 (the chip's)", None), ("beta 0.756", 0.756)):
        fnet = nxsdk_smnist_float(root / "loihi_smnist_v25_94per", beta=beta, download=False)
        y = fnet.run(inputs={"x": Xc}, n_threads=2).readout("out")[:, -1]
        res["float_kernel_chip_images"][name] = float((y.argmax(1) == yt[sel]).mean())
    print(json.dumps(res["float_kernel_chip_images"]), flush=True)

    res["energy_model"] = calibrate(net, xt, yt)
    print(json.dumps(res["energy_model"], indent=1), flush=True)

    X = D.threshold_crossing_encode(xt[:200].reshape(-1, 784))
    speed = {}
    for threads in (1, 2):
        times = []
        for _ in range(args.reps):
            net.reset_state()
            t0 = time.perf_counter()
            net.run(inputs={"x": X}, n_threads=threads, record_uv=False)
            times.append(time.perf_counter() - t0)
        t = statistics.median(times)
        speed[threads] = {"images_per_s": len(X) / t, "ms_per_image": 1e3 * t / len(X),
                          "vs_chip": CHIP_MS_PER_IMAGE / (1e3 * t / len(X)),
                          "ms_per_image_min": 1e3 * min(times) / len(X),
                          "ms_per_image_all": [1e3 * x / len(X) for x in times]}
    res["speed_no_recording"] = speed
    res["chip_ms_per_image"] = CHIP_MS_PER_IMAGE
    print(json.dumps(speed), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
