"""A trained float AHP network keeps its test accuracy after quantization to Loihi units.

tests/loihi_golden/trained_ahp_rowmnist.npz holds the weights of a 128-neuron recurrent AHP network
(reset to zero, 10 leaky readouts) trained in PyTorch by benchmarks/bench_loihi_quantize.py on
row-wise MNIST spikes (28 steps of 28 channels + 4 cue steps; answer = argmax of the readouts at the
last step). Here the float engine and the quantized network on the integer engine classify the same
2,000 MNIST test images; the accuracies must agree within 1 percentage point. (On all 10,000 test
images: float 93.00 %, integer 93.13 %.)
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

import ahpsim
from ahpsim.loihi import quantize

pytestmark = pytest.mark.loihi

WEIGHTS = Path(__file__).resolve().parent / "loihi_golden" / "trained_ahp_rowmnist.npz"
N_TEST = 2000


def _mnist_test(root: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(root / "mnist" / "t10k-images-idx3-ubyte.gz", "rb") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:n]
    with gzip.open(root / "mnist" / "t10k-labels-idx1-ubyte.gz", "rb") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)[:n].astype(np.int64)
    X = np.zeros((n, 32, 29), bool)
    X[:, :28, :28] = x > 127
    X[:, 28:, 28] = True
    return X, y


def test_trained_ahp_network_keeps_accuracy_after_quantization(data_root):
    d = np.load(WEIGHTS)
    meta = json.loads(str(d["meta"]))
    X, y = _mnist_test(data_root, N_TEST)
    net = ahpsim.Network(dtype="float32")
    net.add_input(29, name="x")
    net.add_population(meta["neurons"], ahpsim.AHP(tau_m=meta["tau_m"], tau_ahp=meta["tau_ahp"], beta=meta["beta"],
                                                   v_th=meta["v_th"], reset="zero"), name="ahp")
    net.add_population(10, ahpsim.Readout(tau=meta["tau_out"]), name="out")
    net.connect("x", "ahp", d["W_in"], delay=0)
    net.connect("ahp", "ahp", d["W_rec"], delay=1)
    net.connect("ahp", "out", d["W_out"], delay=1)

    net.init_state(N_TEST)
    acc_float = float((net.run(32, inputs={"x": X}).readout("out")[:, -1].argmax(1) == y).mean())
    q = quantize(net)
    assert not q.report.warnings
    res = q.run(32, inputs={"x": X}, n_threads=2, record_uv=True)
    acc_int = float((res.readout("out")[:, -1].argmax(1) == y).mean())
    print(f"\nrow-MNIST ({N_TEST} test images): float {acc_float:.4f}, Loihi integer {acc_int:.4f}, "
          f"difference {100 * (acc_float - acc_int):+.2f} pp")
    assert acc_float > 0.9
    assert abs(acc_float - acc_int) <= 0.01
    # the integer network really is integer: output voltages are whole numbers of engine units
    assert res.v("out").dtype == np.int32
