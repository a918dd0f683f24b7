"""The authors' published Loihi sMNIST network (weights v25_94per): on the integer engine it gives the
chip's answers on the chip's 200 test images (its 11 errors, in order); in the float kernel, with the
AHP strength it has on the chip (0.756 / 64 thresholds per spike), it classifies as well."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import ahpsim
from ahpsim import datasets as D
from ahpsim.loihi import (NXSDK_SMNIST_CHIP_ERRORS, load_nxsdk_smnist, load_nxsdk_smnist_weights,
                          nxsdk_smnist_answer, nxsdk_smnist_chip_images)

pytestmark = pytest.mark.loihi


@pytest.fixture(scope="module")
def chip_images(data_root):
    xt, yt = D.load_mnist(data_root, "test", download=False)
    sel = nxsdk_smnist_chip_images()
    return D.threshold_crossing_encode(xt[sel].reshape(len(sel), 784)), yt[sel]


def test_chip_answers_on_the_chip_test_images(data_root, chip_images):
    X, y = chip_images
    assert X.shape == (200, 840, 80)
    net = load_nxsdk_smnist(data_root / "loihi_smnist_v25_94per", download=False)
    r = net.run(inputs={"x": X}, n_threads=2)
    pred = nxsdk_smnist_answer(r)
    errors = tuple((int(y[i]), int(pred[i])) for i in range(200) if pred[i] != y[i])
    assert errors == NXSDK_SMNIST_CHIP_ERRORS  # 94.5 %: the chip's 11 errors, in the chip's order
    rate = (r.rate("lif") * 140 + r.rate("ahp.soma") * 100) / 240
    assert 0.03 < rate < 0.08  # the paper: about 0.05 spikes per neuron per step


def _float_network(w, beta):
    """The same network in the float kernel, thresholds 1: a mantissa m is m / 127 thresholds (LIF:
    threshold 127 * 2**6, weight m * 2**6; AHP: 508 * 2**6 and m * 2**8); decays as on the chip."""
    tau_m = -1.0 / np.log(1.0 - 204 / 4096)
    net = ahpsim.Network(dt=1.0, dtype="float64")
    x = net.add_input(80, name="x")
    lif = net.add_population(140, ahpsim.LIF(tau_m=tau_m, reset="zero"), name="lif")
    ahp = net.add_population(100, ahpsim.AHP(tau_m=tau_m, tau_ahp=-1.0 / np.log(1.0 - 5 / 4096), beta=beta,
                                             reset="zero"), name="ahp")
    out = net.add_population(10, ahpsim.Readout(tau=tau_m), name="out")
    groups = ((lif, slice(0, 140)), (ahp, slice(140, 240)))
    for post, sp in groups:
        net.connect(x, post, w["w_in"][:, sp].T / 127.0, delay=1)
        for pre, sq in groups:
            net.connect(pre, post, w["w_rec"][sq, sp].T / 127.0, delay=1)
        net.connect(post, out, w["w_out"][sp].T / 127.0, delay=1)
    return net


def test_float_kernel_with_the_chip_ahp_strength(data_root, chip_images):
    X, y = chip_images
    w = load_nxsdk_smnist_weights(data_root / "loihi_smnist_v25_94per", download=False)
    acc = {}
    for beta in (ahpsim.AHP().beta, 0.756):
        r = _float_network(w, beta).run(inputs={"x": X}, n_threads=2)
        acc[beta] = float((r.readout("out")[:, -1].argmax(1) == y).mean())
    assert ahpsim.AHP().beta == pytest.approx(384 / 32512, rel=1e-3)  # -96 * 2**2 against 508 * 2**6
    assert acc[ahpsim.AHP().beta] >= 0.94, acc
    assert acc[0.756] < 0.3, acc  # 64 times the chip's AHP: the trained network no longer works


def test_weight_files_are_checked(tmp_path, data_root):
    from ahpsim.datasets import ChecksumError, MissingFileError

    with pytest.raises(MissingFileError, match="w_in.npy"):
        load_nxsdk_smnist_weights(tmp_path, download=False)
    for f in ("w_in.npy", "w_rec.npy", "w_out.npy"):
        shutil.copy(data_root / "loihi_smnist_v25_94per" / f, tmp_path / f)
    raw = bytearray((tmp_path / "w_rec.npy").read_bytes())
    raw[-5] ^= 1
    (tmp_path / "w_rec.npy").write_bytes(bytes(raw))
    with pytest.raises(ChecksumError, match="w_rec.npy"):
        load_nxsdk_smnist_weights(tmp_path, download=False)
    with pytest.raises(ValueError, match="input_latency must be an integer in"):
        load_nxsdk_smnist(data_root / "loihi_smnist_v25_94per", input_latency=0, download=False)
