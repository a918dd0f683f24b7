"""A first-order Loihi 1 resource estimate (compartments, synapses, cores, chips).

Per-core limits of Loihi 1 (Davies et al., IEEE Micro 2018): 1,024 compartments, 4,096 fan-in
axons, 4,096 fan-out axons, 128 KiB of synaptic memory; 128 cores per chip. The synapse cost
assumes the sparse encoding the paper's authors used: 8 weight bits, the delay bits needed by the
projection (0 without delays, else 4 or 6), and a 10-bit target index per synapse. It is an
estimate of the packing a compiler would reach, not NxSDK's exact allocation.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["estimate_resources", "LOIHI1"]

LOIHI1 = dict(compartments_per_core=1024, fan_in_axons_per_core=4096, fan_out_axons_per_core=4096,
              synapse_memory_bits_per_core=128 * 1024 * 8, cores_per_chip=128,
              weight_bits=8, index_bits=10)


def _delay_bits(max_delay: int) -> int:
    if max_delay <= 0:
        return 0
    return 4 if max_delay < 16 else 6


def estimate_resources(net: Any) -> dict[str, Any]:
    """Resource estimate of a :class:`~ahpsim.loihi.LoihiNetwork` on Loihi 1."""
    L = LOIHI1
    n_cx = net.n_compartments
    syn = 0
    syn_bits = 0
    conn_groups = 0
    fan_in = 0
    per_proj = []
    for p in net.projections:
        w = p["weight_mantissa"]
        n = int(w.size)
        dbits = _delay_bits(int(p["delay"].max()) if n else 0)
        bits = n * (L["weight_bits"] + dbits + L["index_bits"])
        # the authors split mixed-sign matrices into an excitatory and an inhibitory group
        groups = int((w > 0).any()) + int((w < 0).any())
        syn += n
        syn_bits += bits
        conn_groups += groups
        n_src = len(np.unique(p["pre"])) if n else 0
        fan_in += n_src * groups
        per_proj.append(dict(name=p["name"], synapses=n, connection_groups=groups, delay_bits=dbits))
    cores = max(
        math.ceil(n_cx / L["compartments_per_core"]),
        math.ceil(syn_bits / L["synapse_memory_bits_per_core"]),
        math.ceil(fan_in / L["fan_in_axons_per_core"]),
        1,
    )
    return dict(
        compartments=n_cx,
        neurons=n_cx - int((net.compartment_arrays()["parent"] >= 0).sum()),  # aux compartments excluded
        input_channels=net.n_inputs,
        synapses=syn,
        connection_groups=conn_groups,
        synapse_memory_bits=syn_bits,
        fan_in_axons=fan_in,
        cores=cores,
        chips=math.ceil(cores / L["cores_per_chip"]),
        limits=dict(L),
        projections=per_proj,
        note="estimate: compartment, axon and synapse-memory limits of Loihi 1; not NxSDK's allocation",
    )
