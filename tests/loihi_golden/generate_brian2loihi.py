#!/usr/bin/env python
"""Golden vectors for ahpsim's "loihi1" rule set from Brian2Loihi, an independent Loihi 1 emulator.

Brian2Loihi (PyPI ``brian2-loihi``, Michaelis, Lehr, Tetzlaff: "Brian2Loihi: an emulator for the
neuromorphic chip Loihi using the spiking neural network simulator Brian", Front. Neuroinform.
2022) models Loihi 1's compartment and synapse arithmetic in Brian2 and was checked by its authors
against the chip (their README: neuron and synapse model results in an exact match to Loihi). It
covers single-compartment LIF neurons without bias: current/voltage decays (round toward zero),
threshold mantissa << 6, reset to 0, refractory delay, 8-bit weight mantissas with sign modes, the
weight exponent (effective weight floor(w * 2**(6 + e) / 2**6) * 2**6), synaptic delays 0..62,
spike generators. It does not model biases, saturation or multi-compartment neurons.

This script builds random networks from those pieces, records per-step I (= ahpsim's u), v and
spikes, and writes ``tests/loihi_golden/brian2loihi_golden.npz``. It runs in its own venv:

    /root/.pyenv/versions/3.10.13/bin/python -m venv .venv-brian2loihi
    .venv-brian2loihi/bin/pip install brian2-loihi "numpy<2.3"
    .venv-brian2loihi/bin/python tests/loihi_golden/generate_brian2loihi.py

It imports nothing from ahpsim. Excitatory and inhibitory weights go into separate synapse groups
(sign modes EXCITATORY / INHIBITORY), as the paper's authors connected their networks.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def spec_random(seed: int, T: int) -> dict:
    """Two LIF groups; every input -> group and group -> group projection, weight exponents -8..7
    (negative ones drop the bits below 2**6), delays 0..62, refractory delays 1..4. Magnitudes are
    chosen so that u and v stay within 24 bits (Brian2Loihi models no overflow)."""
    rng = np.random.default_rng(seed)
    n_in, sizes = 20, (16, 12)
    groups = []
    for k, n in enumerate(sizes):
        groups.append(dict(name=f"G{k}", n=n, decay_I=int(rng.choice([4096, int(rng.integers(0, 4096))])),
                           decay_v=int(rng.integers(1, 4096)), vth=int(rng.integers(50, 400)),
                           refractory=int(rng.integers(1, 5))))
    conns = [  # pre, post, exponent range, density, weight range, delay choices
        ("input", "G0", (0, 3), 0.4, (-60, 255), [0]),
        ("input", "G1", (-3, 2), 0.4, (-100, 255), [0, 2]),
        ("G0", "G0", (-8, 0), 0.3, (-255, 255), [0, 1, 3]),
        ("G0", "G1", (-4, 2), 0.3, (-200, 255), [0, int(rng.integers(2, 63))]),
        ("G1", "G0", (-2, 1), 0.3, (-255, 150), [1, 62]),
        ("G1", "G1", (-1, 2), 0.2, (-255, 200), [0, 5]),
    ]
    n_of = dict(zip(["input", "G0", "G1"], (n_in,) + sizes))
    projections = []
    for pre, post, (e0, e1), dens, (w0, w1), delays in conns:
        for d in delays:  # one projection per delay value
            W = rng.integers(w0, w1 + 1, (n_of[post], n_of[pre])) * (rng.random((n_of[post], n_of[pre])) < dens / len(delays))
            projections.append(dict(pre=pre, post=post, weights=W.astype(np.int64),
                                    weight_exp=int(rng.integers(e0, e1 + 1)), delay=int(d)))
    inp = rng.random((T, n_in)) < 0.12
    return dict(groups=groups, projections=projections, n_in=n_in, input=inp)


def run_brian2loihi(spec: dict, T: int) -> dict:
    from brian2 import prefs
    from brian2_loihi import (LoihiNetwork, LoihiNeuronGroup, LoihiSpikeGeneratorGroup, LoihiSpikeMonitor,
                              LoihiStateMonitor, LoihiSynapses)

    prefs.codegen.target = "numpy"
    t_idx, ch = np.nonzero(spec["input"][:T])
    gen = LoihiSpikeGeneratorGroup(spec["n_in"], ch.astype(int), t_idx.astype(int), name="input")
    objs = [gen]
    groups = {"input": gen}
    mons = {}
    for g in spec["groups"]:
        ng = LoihiNeuronGroup(g["n"], refractory=g["refractory"], threshold_v_mant=g["vth"],
                              decay_v=g["decay_v"], decay_I=g["decay_I"], name=g["name"])
        groups[g["name"]] = ng
        mons[g["name"]] = (LoihiStateMonitor(ng, "I"), LoihiStateMonitor(ng, "v"), LoihiSpikeMonitor(ng))
        objs += [ng, *mons[g["name"]]]
    for k, p in enumerate(spec["projections"]):
        W = p["weights"]
        for sign, mode in ((1, 2), (-1, 3)):  # EXCITATORY, INHIBITORY
            post_i, pre_i = np.nonzero(W * sign > 0)
            if post_i.size == 0:
                continue
            syn = LoihiSynapses(groups[p["pre"]], groups[p["post"]], w_exp=p["weight_exp"], sign_mode=mode,
                                delay=p["delay"], name=f"syn{k}_{'exc' if sign > 0 else 'inh'}")
            syn.connect(i=pre_i, j=post_i)
            syn.w = W[post_i, pre_i].astype(np.int64)
            objs.append(syn)
    net = LoihiNetwork(*objs)
    net.run(T)
    out = {}
    for name, (mi, mv, ms) in mons.items():
        n = groups[name].N
        out[(name, "u")] = np.asarray(mi.I).T.astype(np.int64)          # [T, n]
        out[(name, "v")] = np.asarray(mv.v).T.astype(np.int64)
        s = np.zeros((T, n), bool)
        s[np.rint(np.asarray(ms.t / ms.t.unit if hasattr(ms.t, "unit") else ms.t)).astype(int), np.asarray(ms.i)] = True
        out[(name, "s")] = s
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", default=str(HERE / "brian2loihi_golden.npz"))
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args(argv)
    from importlib.metadata import version

    T = args.steps
    npz: dict = {}
    nets = {}
    for key, seed in (("b0", 21), ("b1", 22), ("b2", 23)):
        spec = spec_random(seed, T)
        rec = run_brian2loihi(spec, T)
        meta = dict(T=T, n_in=spec["n_in"], groups=spec["groups"], projections=[])
        for i, p in enumerate(spec["projections"]):
            meta["projections"].append({k: v for k, v in p.items() if k != "weights"})
            npz[f"{key}__w__{i}"] = p["weights"].astype(np.int16)
        for g in spec["groups"]:
            for what in ("u", "v", "s"):
                npz[f"{key}__{what}__{g['name']}"] = rec[(g["name"], what)] if what == "s" else rec[(g["name"], what)].astype(np.int32)
        npz[f"{key}__input"] = spec["input"][:T]
        for g in spec["groups"]:  # Brian2Loihi models no 24-bit overflow: keep the vectors inside it
            for what in ("u", "v"):
                assert np.abs(rec[(g["name"], what)]).max() < 2**23, (key, g["name"], what)
        nets[key] = meta
        print(f"{key}: {sum(int(rec[(g['name'], 's')].sum()) for g in spec['groups'])} spikes", file=sys.stderr)
    npz["meta"] = np.array(json.dumps(dict(brian2_loihi_version=version("brian2-loihi"), brian2_version=version("brian2"),
                                           python=sys.version.split()[0], networks=nets)))
    np.savez_compressed(args.out, **npz)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
