#!/usr/bin/env python
"""ahpsim's Loihi integer engine (rule set "lava") against Lava's CPU bit-accurate LIF + Dense.

Both run the same LIF network (tests/loihi_golden/generate_lava.py: ``spec_bench``: n LIF neurons,
100 spike inputs, 20 % input and 10 % recurrent connectivity, 8-bit weights) on the same machine in
the same invocation. Lava runs in its own Python 3.10 virtual environment (``.venv-lava``, or
``--lava-python``) through a subprocess; its time excludes compilation and start-up (a warm-up run
first). ahpsim's time is the best of ``--repeat`` runs of the same steps (warm-up included, which
only handicaps ahpsim). The spike rasters of the two must be identical (SHA-256 compared), so the
ratio compares equal work. If Lava cannot run, the output says so and reports no ratio.

    python benchmarks/bench_loihi_vs_lava.py --sizes 100 1000 --steps 500

Prints one JSON object and a table.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
try:  # run as a script (benchmarks/ on sys.path) or imported as benchmarks.<name>
    from _args import int_at_least
except ImportError:
    from benchmarks._args import int_at_least

REPO = Path(__file__).resolve().parents[1]
GEN = REPO / "tests" / "loihi_golden" / "generate_lava.py"


def _spec_module():
    spec = importlib.util.spec_from_file_location("_ahpsim_generate_lava", GEN)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


def run_ahpsim(spec: dict, T: int, repeat: int) -> tuple[np.ndarray, float]:
    from ahpsim.loihi import LoihiNetwork

    net = LoihiNetwork(rules="lava")
    x = net.add_input(spec["n_in"], name="input")
    groups = {"input": x}
    for g in spec["groups"]:
        groups[g["name"]] = net.add_compartments(g["n"], du=g["du"], dv=g["dv"], vth_mant=g["vth"],
                                                 bias_mant=g["bias_mant"], bias_exp=g["bias_exp"],
                                                 name=g["name"])
    for p in spec["projections"]:
        net.connect(groups[p["pre"]], groups[p["post"]], p["weights"], p["weight_exp"])
    X = spec["input"][:T]
    net.run(1, inputs={x: X[:1]})  # build the engine outside the timing
    best = float("inf")
    res = None
    for _ in range(repeat):
        net.reset_state()  # runs continue from the state: every timed run starts at step 0
        t0 = time.perf_counter()
        res = net.run(T, inputs={x: X}, record_uv=False)
        best = min(best, time.perf_counter() - t0)
    return res.raster("L")[0], best


def run_lava(lava_python: str, n: int, steps: int, warmup: int, seed: int) -> dict:
    cmd = [lava_python, str(GEN), "--bench", str(n), "--steps", str(steps), "--warmup", str(warmup),
           "--seed", str(seed)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        raise RuntimeError(f"Lava run failed ({' '.join(cmd)}):\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int_at_least(1), nargs="+", default=[100, 1000])
    ap.add_argument("--steps", type=int_at_least(1), default=500)
    ap.add_argument("--warmup", type=int_at_least(0), default=20)
    ap.add_argument("--repeat", type=int_at_least(1), default=5)
    ap.add_argument("--seed", type=int_at_least(0), default=0)
    ap.add_argument("--lava-python", default=os.environ.get("AHPSIM_LAVA_PYTHON",
                                                            str(REPO / ".venv-lava" / "bin" / "python")))
    args = ap.parse_args(argv)

    gen = _spec_module()
    import ahpsim

    out = dict(benchmark="loihi_integer_engine_vs_lava", machine=platform.machine(), cpu_count=os.cpu_count(),
               python=platform.python_version(), ahpsim_version=ahpsim.__version__, steps=args.steps,
               warmup=args.warmup, lava_python=args.lava_python, results=[])
    lava_ok = Path(args.lava_python).exists()
    if not lava_ok:
        out["lava"] = f"unavailable: no interpreter at {args.lava_python} (make .venv-lava with Python 3.10 and pip install lava-nc)"
    for n in args.sizes:
        T = args.warmup + args.steps
        spec = gen.spec_bench(n, T, seed=args.seed)
        spikes, t_ahp = run_ahpsim(spec, T, args.repeat)
        row = dict(n=n, ahpsim_s=t_ahp, ahpsim_ms_per_step=1e3 * t_ahp / T, n_spikes=int(spikes.sum()),
                   spike_rate=float(spikes.mean()))
        if lava_ok:
            try:
                lv = run_lava(args.lava_python, n, args.steps, args.warmup, args.seed)
            except Exception as e:  # noqa: BLE001 -- reported, never replaced by a figure
                row["lava"] = f"failed: {e}"
            else:
                out["lava_version"] = lv["lava_version"]
                row.update(lava_s=lv["wall_s"], lava_ms_per_step=1e3 * lv["wall_s"] / args.steps,
                           identical_spikes=lv["spikes_sha"] == _sha(spikes))
                row["speedup_per_step"] = row["lava_ms_per_step"] / row["ahpsim_ms_per_step"]
        out["results"].append(row)

    print(json.dumps(out, indent=1))
    print()
    print(f"{'n':>6} {'rate':>6} {'ahpsim ms/step':>15} {'Lava ms/step':>13} {'speed-up':>9} {'identical':>9}")
    for r in out["results"]:
        lava = f"{r['lava_ms_per_step']:13.3f}" if "lava_ms_per_step" in r else f"{'n/a':>13}"
        sp = f"{r['speedup_per_step']:8.0f}x" if "speedup_per_step" in r else f"{'n/a':>9}"
        ident = str(r.get("identical_spikes", "n/a"))
        print(f"{r['n']:>6} {r['spike_rate']:6.3f} {r['ahpsim_ms_per_step']:15.5f} {lava} {sp} {ident:>9}")
    if not lava_ok:
        print(out["lava"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
