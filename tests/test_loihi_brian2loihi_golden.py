"""The "loihi1" rule set against golden vectors from Brian2Loihi, an independent Loihi 1 emulator.

tests/loihi_golden/brian2loihi_golden.npz was written by tests/loihi_golden/generate_brian2loihi.py
with brian2-loihi 0.5.2 (Brian2 2.9.0), whose authors checked its neuron and synapse model against
the Loihi chip. Three random networks of two LIF groups, 300 steps: current decays 0..4096, voltage
decays, thresholds, refractory delays 1..4, excitatory and inhibitory synapse groups with weight
exponents -8..7 (negative ones drop the bits below 2**6 of the effective weight), synaptic delays
0..62, spike-generator input. Every per-step u (Brian2Loihi's I), v and spike must be identical.
Brian2Loihi has no bias, saturation or multi-compartment neurons; those parts of "loihi1" are
covered by tests/test_loihi_units.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ahpsim.loihi import LoihiNetwork

pytestmark = pytest.mark.loihi

GOLDEN = Path(__file__).resolve().parent / "loihi_golden" / "brian2loihi_golden.npz"
NETS = ["b0", "b1", "b2"]


def _load():
    d = np.load(GOLDEN)
    return d, json.loads(str(d["meta"]))


def test_golden_file_and_coverage():
    d, meta = _load()
    assert meta["brian2_loihi_version"] == "0.5.2" and set(meta["networks"]) == set(NETS)
    projs = [(k, i, p) for k in NETS for i, p in enumerate(meta["networks"][k]["projections"])]
    # negative exponents with mantissas that are not multiples of 2**-e: the dropped low bits matter
    assert any(p["weight_exp"] < 0 and (d[f"{k}__w__{i}"] % 2 ** -p["weight_exp"] != 0).any() for k, i, p in projs)
    assert max(p["delay"] for _, _, p in projs) >= 60
    groups = [g for k in NETS for g in meta["networks"][k]["groups"]]
    assert any(g["refractory"] > 1 for g in groups) and any(g["decay_I"] == 4096 for g in groups)
    assert any(g["decay_I"] < 4096 for g in groups)


@pytest.mark.parametrize("key", NETS)
def test_bit_identical_to_brian2loihi(key):
    d, meta = _load()
    m = meta["networks"][key]
    net = LoihiNetwork(rules="loihi1")
    groups = {"input": net.add_input(m["n_in"], name="input")}
    for g in m["groups"]:
        groups[g["name"]] = net.add_compartments(g["n"], du=g["decay_I"], dv=g["decay_v"], vth_mant=g["vth"],
                                                 refractory=g["refractory"], name=g["name"])
    for i, p in enumerate(m["projections"]):
        net.connect(groups[p["pre"]], groups[p["post"]], d[f"{key}__w__{i}"], weight_exponent=p["weight_exp"],
                    delay=p["delay"], name=f"p{i}")
    res = net.run(m["T"], inputs={"input": d[f"{key}__input"]}, record_uv=True)
    spikes = 0
    for g in m["groups"]:
        name = g["name"]
        for what, mine in (("u", res.u(name)[0]), ("v", res.v(name)[0]), ("s", res.raster(name)[0])):
            ref = d[f"{key}__{what}__{name}"]
            bad = np.argwhere(mine != ref)
            assert bad.size == 0, (f"{key}/{name}/{what}: first mismatch at step {bad[0][0]} neuron {bad[0][1]}: "
                                   f"ahpsim {mine[tuple(bad[0])]} brian2loihi {ref[tuple(bad[0])]}")
        spikes += int(res.raster(name).sum())
    assert spikes > 500
