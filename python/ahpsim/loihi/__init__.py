"""Loihi fixed-point emulation on ahpsim's C++ integer engine.

Build a network directly in Loihi units (:class:`LoihiNetwork`: integer weight mantissas with a
weight exponent per projection, 12-bit decays, threshold/bias mantissas, refractory and synaptic
delays, two-compartment AHP neurons) or convert a float network with :func:`quantize` (AHP, LIF,
ALIF, Readout populations); run it with the float engine's API: ``run(T, inputs=...)`` continues from
the network's state (``reset_state``, ``init_state``, ``store`` / ``restore``, ``t``), and the
result has ``SimResult``'s accessors (``raster``, ``spikes``, ``readout``, ``rate``, ``state``). Two rule sets: ``"loihi1"`` (NxSDK / the
paper's deployment) and ``"lava"`` (bit-identical to Lava's ``bit_accurate_loihi`` LIF + Dense).
See ``docs/loihi.md``.
"""

from __future__ import annotations

from .network import (
    RULE_SETS,
    VTH_MANT_MAX,
    AHPGroup,
    CompartmentGroup,
    InputGroup,
    LoihiNetwork,
    LoihiResult,
    lava_dense_weights,
    limits,
)
from .quantize import (QuantizationOverflowWarning, QuantizationReport, QuantizedNetwork, decay_from_tau, quantize,
                       split_weights)
from .nxsdk import (NXSDK_SMNIST_CHIP_ERRORS, SMNIST_V25_94PER, load_nxsdk_smnist, load_nxsdk_smnist_weights,
                    nxsdk_smnist_answer, nxsdk_smnist_chip_images, nxsdk_smnist_float)
from .resources import estimate_resources

__all__ = [
    "RULE_SETS",
    "VTH_MANT_MAX",
    "AHPGroup",
    "CompartmentGroup",
    "InputGroup",
    "LoihiNetwork",
    "LoihiResult",
    "NXSDK_SMNIST_CHIP_ERRORS",
    "SMNIST_V25_94PER",
    "QuantizationOverflowWarning",
    "QuantizationReport",
    "QuantizedNetwork",
    "decay_from_tau",
    "estimate_resources",
    "lava_dense_weights",
    "limits",
    "load_nxsdk_smnist",
    "load_nxsdk_smnist_weights",
    "nxsdk_smnist_answer",
    "nxsdk_smnist_chip_images",
    "nxsdk_smnist_float",
    "quantize",
    "split_weights",
]
