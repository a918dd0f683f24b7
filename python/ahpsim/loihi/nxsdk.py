"""The Loihi sMNIST network of Rao, Plank, Wild & Maass (2022) as they ran it on the chip, built on the
integer engine from their published weights.

Source: Intel NRC models repository, ``nxsdk_modules_ncl/lsnn/apps/seqmnist/weights/v25_94per/``
(BSD-3-Clause), three ``.npy`` files of integer weight mantissas indexed (source, target). The network
(the authors' ``nxsdk_modules_ncl/lsnn/src/lsnn.py`` and sMNIST notebooks):

* 80 input channels (the threshold-crossing code, :func:`ahpsim.datasets.threshold_crossing_encode`);
  in the 200-image hardware test the input passed a relay layer: 2 steps of latency;
* 140 LIF compartments: current decay 4096, voltage decay 204, threshold mantissa 127, weight
  exponent 0, refractory delay 1, reset to 0;
* 100 AHP neurons (two compartments joined by ADD): soma as the LIF but threshold mantissa 508 and
  weight exponent 2; auxiliary compartment with voltage decay 5, charged by each soma spike one step
  later through a synapse of mantissa -96 at weight exponent -4;
* 10 output compartments (voltage decay 204, weight exponent 0, the largest threshold);
* the answer: the output with the largest voltage after the last step (the first one on ties).

With :func:`nxsdk_smnist_answer` this gives the chip's answers on its 200 test images, its 11 errors
included (``tests/test_loihi_nxsdk.py``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .network import VTH_MANT_MAX, LoihiNetwork, LoihiResult

__all__ = ["SMNIST_V25_94PER", "load_nxsdk_smnist_weights", "load_nxsdk_smnist", "nxsdk_smnist_answer",
           "nxsdk_smnist_chip_images", "NXSDK_SMNIST_CHIP_ERRORS", "nxsdk_smnist_float"]

# The chip's 11 errors on those 200 images, (true, predicted), in the order of the images (the
# published results of the authors' hardware test)
NXSDK_SMNIST_CHIP_ERRORS = ((1, 7), (3, 5), (8, 5), (0, 8), (9, 3), (8, 0), (7, 9), (3, 2), (4, 8), (4, 0), (2, 3))

# SHA-256 of the published files
SMNIST_V25_94PER = {
    "w_in.npy": "8aa2e0c51b19aac4cf163cab4fd84c6bfca2ed0cf0df236ca6170a27313cac79",
    "w_rec.npy": "83582366acf95e75e1fe6d1c71e0a4324764b22857894672eb5e3eb9527e7513",
    "w_out.npy": "a8cdc402951fa203f3f32a6e54e5215eb908fff4fa89f8d10e8055e3b6c18168",
}
_URL = ("https://raw.githubusercontent.com/intel-nrc-ecosystem/models/master/"
        "nxsdk_modules_ncl/lsnn/apps/seqmnist/weights/v25_94per/")
_SHAPES = {"w_in.npy": (80, 240), "w_rec.npy": (240, 240), "w_out.npy": (240, 10)}
N_IN, N_LIF, N_AHP, N_OUT = 80, 140, 100, 10


def nxsdk_smnist_chip_images() -> np.ndarray:
    """Indices (into the MNIST test set, standard order) of the 200 images the authors ran on the chip:
    ``np.random.seed(0); np.random.choice(range(10000), 200, replace=False)``."""
    return np.random.RandomState(0).choice(10000, 200, replace=False)


def load_nxsdk_smnist_weights(path: str | os.PathLike | None = None, *, download: bool = True,
                              progress: bool = True) -> dict[str, np.ndarray]:
    """The published weight mantissas as int64 arrays ``w_in`` [80, 240], ``w_rec`` [240, 240] and
    ``w_out`` [240, 10], indexed (source, target); neurons 0-139 are LIF, 140-239 AHP.

    ``path``: a folder holding ``w_in.npy``, ``w_rec.npy`` and ``w_out.npy`` (default: ahpsim's data
    cache); missing files are downloaded when ``download`` (checked against their SHA-256). Every
    file's SHA-256 is checked. Raises ``ahpsim.datasets.MissingFileError`` /
    ``ChecksumError`` naming the file.
    """
    from ..datasets._common import cache_root, check_sha256, download as fetch, missing_error, sha256_file

    folder = Path(path) if path is not None else cache_root() / "loihi_smnist_v25_94per"
    out = {}
    for name, digest in SMNIST_V25_94PER.items():
        f = folder / name
        if not f.is_file():
            if not download:
                raise missing_error(f, what="Loihi sMNIST weight file", source=_URL + name,
                                    root_hint="a folder with w_in.npy, w_rec.npy, w_out.npy")
            fetch([_URL + name], f, sha256=digest, progress=progress, what="Loihi sMNIST weight file")
        check_sha256(f, sha256_file(f), digest, what="Loihi sMNIST weight file",
                     fix=f"delete it to download it again from {_URL + name}")
        a = np.load(f, allow_pickle=False)
        if a.shape != _SHAPES[name] or not np.array_equal(a, np.round(a)):
            raise ValueError(f"{f}: expected integer mantissas of shape {_SHAPES[name]}, got {a.shape}")
        out[name[:-4]] = a.astype(np.int64)
    return out


def load_nxsdk_smnist(path: str | os.PathLike | None = None, *, input_latency: int = 2, download: bool = True,
                      progress: bool = True) -> LoihiNetwork:
    """The authors' sMNIST network on the integer engine (rule set ``"loihi1"``), groups ``"x"`` (80
    inputs), ``"lif"``, ``"ahp"`` (soma ``"ahp.soma"``, auxiliary ``"ahp.aux"``) and ``"out"``.

    ``input_latency``: steps from an input spike to its effect (2: the relay layer of the authors'
    200-image hardware test, whose answers this reproduces; 1: direct injection). Run it for the 840
    steps of an encoded image and decode with :func:`nxsdk_smnist_answer`.
    """
    if isinstance(input_latency, bool) or not isinstance(input_latency, (int, np.integer)) \
            or not 1 <= input_latency <= 63:
        raise ValueError(f"input_latency must be an integer in [1, 63], got {input_latency!r}")
    w = load_nxsdk_smnist_weights(path, download=download, progress=progress)
    net = LoihiNetwork("loihi1")
    x = net.add_input(N_IN, name="x")
    lif = net.add_compartments(N_LIF, du=4096, dv=204, vth_mant=127, refractory=1, name="lif")
    ahp = net.add_ahp(N_AHP, du=4096, dv=204, vth_mant=508, aux_dv=5, ahp_weight_mantissa=-96,
                      ahp_weight_exponent=-4, refractory=1, name="ahp")
    out = net.add_compartments(N_OUT, du=4096, dv=204, vth_mant=VTH_MANT_MAX, name="out")
    s_lif, s_ahp = slice(0, N_LIF), slice(N_LIF, N_LIF + N_AHP)
    d_in = int(input_latency) - 1  # an input spike at t is integrated at t + delay
    net.connect(x, lif, w["w_in"][:, s_lif].T, 0, delay=d_in)
    net.connect(x, ahp, w["w_in"][:, s_ahp].T, 2, delay=d_in)
    for post, sp, exp in ((lif, s_lif, 0), (ahp, s_ahp, 2)):  # AHP somas take their inputs at exponent 2
        for pre, sq in ((lif, s_lif), (ahp, s_ahp)):
            net.connect(pre, post, w["w_rec"][sq, sp].T, exp)
    net.connect(lif, out, w["w_out"][s_lif].T, 0)
    net.connect(ahp, out, w["w_out"][s_ahp].T, 0)
    return net


def nxsdk_smnist_answer(result: LoihiResult, group: Any = "out") -> np.ndarray:
    """The class of each trial [B]: the output with the largest voltage after the last step, the first
    one on ties. An output whose voltage crosses its threshold at the last step (and is reset by the
    engine) counts as the largest: the chip's answers on its 200 test images need this reading (four
    of them have an output crossing the threshold; one at the last step, where the chip answered with
    it). Needs the voltages: run with ``record_uv=True``."""
    v = np.asarray(result.v(group))
    if v.ndim != 3 or v.shape[1] == 0:
        raise ValueError("result: no recorded steps (run with record_uv=True and T >= 1)")
    z = np.asarray(result.raster(group)).astype(bool)
    last = np.where(z[:, -1], np.iinfo(np.int64).max, v[:, -1].astype(np.int64))
    return last.argmax(1)


def nxsdk_smnist_float(path: str | os.PathLike | None = None, *, beta: float | None = None, dtype: str = "float64",
                       download: bool = True, progress: bool = True):
    """The same network in ahpsim's float kernel (an :class:`ahpsim.Network`, thresholds 1): a weight
    mantissa ``m`` is ``m / 127`` thresholds (LIF: threshold ``127 * 2**6``, weights ``m * 2**6``; AHP soma:
    ``508 * 2**6`` and ``m * 2**8``), decays as on the chip (``1 - 204/4096`` and ``1 - 5/4096`` per step),
    reset to zero, one step of latency everywhere; ``beta``: the AHP charge per spike in thresholds
    (default: the chip's, ``ahpsim.AHP().beta`` = 0.756 / 64). Groups ``"x"``, ``"lif"``, ``"ahp"``,
    ``"out"``; the answer is the argmax of ``readout("out")`` at the last step."""
    from .. import models
    from ..network import Network

    w = load_nxsdk_smnist_weights(path, download=download, progress=progress)
    tau_m = -1.0 / np.log(1.0 - 204 / 4096)
    net = Network(dt=1.0, dtype=dtype)
    x = net.add_input(N_IN, name="x")
    lif = net.add_population(N_LIF, models.LIF(tau_m=tau_m, reset="zero"), name="lif")
    ahp = net.add_population(N_AHP, models.AHP(tau_m=tau_m, tau_ahp=-1.0 / np.log(1.0 - 5 / 4096),
                                               beta=models.AHP().beta if beta is None else beta, reset="zero"),
                             name="ahp")
    out = net.add_population(N_OUT, models.Readout(tau=tau_m), name="out")
    groups = ((lif, slice(0, N_LIF)), (ahp, slice(N_LIF, N_LIF + N_AHP)))
    for post, sp in groups:
        net.connect(x, post, w["w_in"][:, sp].T / 127.0, delay=1)
        for pre, sq in groups:
            net.connect(pre, post, w["w_rec"][sq, sp].T / 127.0, delay=1)
        net.connect(post, out, w["w_out"][sp].T / 127.0, delay=1)
    return net
