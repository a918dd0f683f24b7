#!/usr/bin/env python
"""Generate golden vectors for ahpsim's Loihi "lava" rule set from Lava itself.

Runs Lava's CPU bit-accurate models (``PyLifModelBitAcc`` + ``PyDenseModelBitAcc``, selected with
``Loihi2SimCfg(select_tag="fixed_pt")``) on a few small random networks and writes, per network,
the network description plus the per-step ``u``, ``v`` and spikes of every LIF process to
``tests/loihi_golden/lava_golden.npz``.  The tests replay the same networks on ahpsim's integer
engine (rule set ``"lava"``) and demand bit-identical states.

Lava (lava-nc 0.10) needs Python < 3.11, so this script runs in its own virtual environment:

    /root/.pyenv/versions/3.10.13/bin/python -m venv .venv-lava
    .venv-lava/bin/pip install lava-nc
    .venv-lava/bin/python tests/loihi_golden/generate_lava.py          # writes lava_golden.npz

It imports nothing from ahpsim.  ``--bench`` mode is used by ``benchmarks/bench_loihi_vs_lava.py``.

Time convention: ahpsim step ``t`` (0-based) is Lava ``time_step`` ``t + 1``.  The RingBuffer sends
``data[:, t]`` at ahpsim step ``t``; each Dense process adds one step of latency.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


# --------------------------------------------------------------------------------------------
# network specifications (plain dicts; the tests read the same structure back from the .npz)
# --------------------------------------------------------------------------------------------
def _rand_w(rng, n_post, n_pre, density, lo, hi):
    w = rng.integers(lo, hi + 1, size=(n_post, n_pre))
    mask = rng.random((n_post, n_pre)) < density
    return (w * mask).astype(np.int64)


def spec_random(seed: int, T: int) -> dict:
    """Two LIF populations, mixed/excitatory/inhibitory projections, several weight exponents."""
    rng = np.random.default_rng(seed)
    n_in, na, nb = 24, 30, 20
    groups = [
        dict(name="A", n=na, du=int(rng.integers(100, 1500)), dv=int(rng.integers(50, 800)),
             vth=int(rng.integers(60, 200)),
             bias_mant=rng.integers(-60, 120, size=na), bias_exp=int(rng.integers(0, 4))),
        dict(name="B", n=nb, du=4095, dv=int(rng.integers(200, 1200)),
             vth=int(rng.integers(30, 120)),
             bias_mant=rng.integers(-200, 200, size=nb), bias_exp=int(rng.integers(0, 3))),
    ]
    projections = [
        dict(pre="input", post="A", weights=_rand_w(rng, na, n_in, 0.4, -256, 255), weight_exp=0),
        dict(pre="A", post="A", weights=_rand_w(rng, na, na, 0.3, -200, 200), weight_exp=-2),
        dict(pre="A", post="B", weights=_rand_w(rng, nb, na, 0.3, 0, 255), weight_exp=1),
        dict(pre="B", post="A", weights=_rand_w(rng, na, nb, 0.3, -255, 0), weight_exp=0),
        dict(pre="input", post="B", weights=_rand_w(rng, nb, n_in, 0.3, -127, 127), weight_exp=2),
        dict(pre="B", post="B", weights=_rand_w(rng, nb, nb, 0.2, -80, 80), weight_exp=-1),
    ]
    inp = rng.random((T, n_in)) < 0.15
    return dict(groups=groups, projections=projections, n_in=n_in, input=inp)


def spec_overflow(seed: int, T: int) -> dict:
    """Drive u past 2**23 (Lava wraps it) and v into both saturation limits."""
    rng = np.random.default_rng(seed)
    n_in, n1, n2 = 8, 6, 6
    groups = [
        # tiny current decay, huge excitatory drive: u wraps; maximal threshold: v saturates
        dict(name="P", n=n1, du=0, dv=10, vth=131071, bias_mant=rng.integers(-4096, 4096, size=n1),
             bias_exp=7),
        # strongly inhibited: v saturates at -(2**23 - 1); some neurons get a large positive bias
        dict(name="N", n=n2, du=3, dv=0, vth=5000, bias_mant=rng.integers(-4096, 4096, size=n2),
             bias_exp=5),
    ]
    projections = [
        dict(pre="input", post="P", weights=_rand_w(rng, n1, n_in, 0.9, 100, 255), weight_exp=7),
        dict(pre="input", post="N", weights=_rand_w(rng, n2, n_in, 0.9, -255, -100), weight_exp=6),
        dict(pre="P", post="N", weights=_rand_w(rng, n2, n1, 0.8, -256, 255), weight_exp=7),
        dict(pre="N", post="P", weights=_rand_w(rng, n1, n2, 0.8, -255, 255), weight_exp=-8),
    ]
    inp = rng.random((T, n_in)) < 0.5
    return dict(groups=groups, projections=projections, n_in=n_in, input=inp)


def spec_edge(seed: int, T: int) -> dict:
    """Three populations at the edges of the parameter ranges: du = 0 (still decays: ds_offset),
    du = dv = 4095, dv = 0, threshold 0 (spike whenever v > 0), per-neuron bias exponents 0..7,
    random weight exponents over the whole range -8..7."""
    rng = np.random.default_rng(seed)
    n_in, sizes = 16, (12, 10, 8)
    groups = [
        dict(name="E0", n=sizes[0], du=0, dv=0, vth=int(rng.integers(500, 3000)),
             bias_mant=rng.integers(-300, 300, size=sizes[0]), bias_exp=rng.integers(0, 8, size=sizes[0])),
        dict(name="E1", n=sizes[1], du=4095, dv=4095, vth=0,
             bias_mant=rng.integers(-20, 5, size=sizes[1]), bias_exp=rng.integers(0, 3, size=sizes[1])),
        dict(name="E2", n=sizes[2], du=int(rng.integers(1, 4095)), dv=int(rng.integers(1, 4095)),
             vth=int(rng.integers(1, 131072)), bias_mant=rng.integers(-4096, 4096, size=sizes[2]),
             bias_exp=rng.integers(0, 8, size=sizes[2])),
    ]
    names = ["input", "E0", "E1", "E2"]
    n_of = dict(zip(names, (n_in,) + sizes))
    projections = []
    for pre in names:
        for post in names[1:]:
            if rng.random() < 0.8:
                lo, hi = [(-256, 255), (0, 255), (-255, 0)][int(rng.integers(0, 3))]
                projections.append(dict(pre=pre, post=post,
                                        weights=_rand_w(rng, n_of[post], n_of[pre], 0.4, lo, hi),
                                        weight_exp=int(rng.integers(-8, 8))))
    inp = rng.random((T, n_in)) < 0.3
    return dict(groups=groups, projections=projections, n_in=n_in, input=inp)


def spec_bench(n: int, T: int, seed: int = 0, n_in: int = 100) -> dict:
    """The benchmark's LIF network: n neurons, dense random recurrent weights, 100 inputs."""
    rng = np.random.default_rng(seed)
    groups = [dict(name="L", n=n, du=1024, dv=256, vth=1500, bias_mant=np.zeros(n, np.int64),
                   bias_exp=0)]
    projections = [
        dict(pre="input", post="L", weights=_rand_w(rng, n, n_in, 0.2, -100, 255), weight_exp=0),
        dict(pre="L", post="L", weights=_rand_w(rng, n, n, 0.1, -128, 100), weight_exp=0),
    ]
    inp = rng.random((T, n_in)) < 0.05
    return dict(groups=groups, projections=projections, n_in=n_in, input=inp)


# --------------------------------------------------------------------------------------------
# running a spec in Lava
# --------------------------------------------------------------------------------------------
def run_lava(spec: dict, T: int, record: bool = True):
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.magma.core.run_conditions import RunSteps
    from lava.proc.dense.process import Dense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor

    src = RingBuffer(data=spec["input"][:T].T.astype(np.int32))
    lifs = {}
    for g in spec["groups"]:
        lifs[g["name"]] = LIF(shape=(g["n"],), du=g["du"], dv=g["dv"], vth=g["vth"],
                              bias_mant=np.asarray(g["bias_mant"], np.int32),
                              bias_exp=np.broadcast_to(np.asarray(g["bias_exp"], np.int32), (g["n"],)).copy(),
                              name=g["name"])
    for p in spec["projections"]:
        dense = Dense(weights=np.asarray(p["weights"], np.int32), weight_exp=p["weight_exp"],
                      num_weight_bits=8)
        pre = src.s_out if p["pre"] == "input" else lifs[p["pre"]].s_out
        pre.connect(dense.s_in)
        dense.a_out.connect(lifs[p["post"]].a_in)

    monitors = {}
    if record:
        for name, lif in lifs.items():
            for var in ("u", "v", "s_out"):
                m = Monitor()
                m.probe(getattr(lif, var) if var != "s_out" else lif.s_out, T)
                monitors[(name, var)] = (m, lif)

    cfg = Loihi2SimCfg(select_tag="fixed_pt")
    first = next(iter(lifs.values()))
    t0 = time.perf_counter()
    first.run(condition=RunSteps(num_steps=T), run_cfg=cfg)
    wall = time.perf_counter() - t0
    out = {}
    if record:
        for (name, var), (m, lif) in monitors.items():
            data = m.get_data()
            arr = data[lif.name][var]  # [T, n]
            out[(name, var)] = np.asarray(arr).astype(np.int64)
    first.stop()
    return out, wall


def run_lava_bench(spec: dict, warmup: int, steps: int):
    """Time ``steps`` steps after ``warmup`` untimed ones (compilation and process start-up);
    only the spikes are monitored. Returns (spikes [warmup + steps, n] bool, seconds)."""
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.magma.core.run_conditions import RunSteps
    from lava.proc.dense.process import Dense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor

    T = warmup + steps
    g = spec["groups"][0]
    src = RingBuffer(data=spec["input"][:T].T.astype(np.int32))
    lif = LIF(shape=(g["n"],), du=g["du"], dv=g["dv"], vth=g["vth"],
              bias_mant=np.asarray(g["bias_mant"], np.int32), bias_exp=g["bias_exp"], name="L")
    for p in spec["projections"]:
        dense = Dense(weights=np.asarray(p["weights"], np.int32), weight_exp=p["weight_exp"])
        (src.s_out if p["pre"] == "input" else lif.s_out).connect(dense.s_in)
        dense.a_out.connect(lif.a_in)
    mon = Monitor()
    mon.probe(lif.s_out, T)
    cfg = Loihi2SimCfg(select_tag="fixed_pt")
    lif.run(condition=RunSteps(num_steps=warmup), run_cfg=cfg)
    t0 = time.perf_counter()
    lif.run(condition=RunSteps(num_steps=steps), run_cfg=cfg)
    wall = time.perf_counter() - t0
    spikes = np.asarray(mon.get_data()["L"]["s_out"]) != 0
    lif.stop()
    return spikes, wall


def _flatten(key: str, spec: dict, rec: dict, T: int, npz: dict) -> dict:
    meta = dict(T=T, n_in=spec["n_in"], groups=[], projections=[])
    for g in spec["groups"]:
        gm = {k: int(v) for k, v in g.items() if k not in ("bias_mant", "bias_exp", "name")}
        gm["name"] = g["name"]
        meta["groups"].append(gm)
        npz[f"{key}__bias_mant__{g['name']}"] = np.asarray(g["bias_mant"], np.int16)
        npz[f"{key}__bias_exp__{g['name']}"] = np.broadcast_to(np.asarray(g["bias_exp"], np.int8), (g["n"],)).copy()
        for var, short in (("u", "u"), ("v", "v"), ("s_out", "s")):
            a = rec[(g["name"], var)]
            npz[f"{key}__{short}__{g['name']}"] = (a != 0) if short == "s" else a.astype(np.int32)
    for i, p in enumerate(spec["projections"]):
        meta["projections"].append(dict(pre=p["pre"], post=p["post"], weight_exp=p["weight_exp"]))
        npz[f"{key}__w__{i}"] = np.asarray(p["weights"], np.int16)
    npz[f"{key}__input"] = np.asarray(spec["input"][:T], bool)
    return meta


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", default=str(HERE / "lava_golden.npz"))
    ap.add_argument("--bench", type=int, default=0, metavar="N",
                    help="benchmark mode: time Lava on spec_bench(N) and print JSON")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20, help="benchmark: untimed steps first")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import lava  # noqa: F401
    from importlib.metadata import version
    lava_version = version("lava-nc")

    if args.bench:
        spec = spec_bench(args.bench, args.warmup + args.steps, seed=args.seed)
        spikes, wall = run_lava_bench(spec, args.warmup, args.steps)
        print(json.dumps(dict(lava_version=lava_version, n=args.bench, steps=args.steps,
                              warmup=args.warmup, wall_s=wall, n_spikes=int(spikes.sum()),
                              spikes_sha=_sha(spikes))))
        return 0

    T = args.steps
    npz: dict = {}
    nets = {}
    for key, spec in (("rand0", spec_random(11, T)), ("rand1", spec_random(12, T)),
                      ("overflow", spec_overflow(13, T)), ("edge0", spec_edge(14, T)),
                      ("edge1", spec_edge(15, T))):
        rec, wall = run_lava(spec, T)
        nets[key] = _flatten(key, spec, rec, T, npz)
        spikes = sum(int(rec[(g["name"], "s_out")].astype(bool).sum()) for g in spec["groups"])
        print(f"{key}: {T} steps in {wall:.2f} s, {spikes} spikes", file=sys.stderr)
    npz["meta"] = np.array(json.dumps(dict(lava_version=lava_version, python=sys.version.split()[0],
                                           networks=nets)))
    np.savez_compressed(args.out, **npz)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size} bytes)", file=sys.stderr)
    return 0


def _sha(a: np.ndarray) -> str:
    import hashlib
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


if __name__ == "__main__":
    sys.exit(main())
