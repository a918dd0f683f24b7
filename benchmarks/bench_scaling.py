"""Benchmark 2: scaling of the ahpsim kernel on the Brunel-style network of ``bench_brunel.py``.

Neurons 10k -> 1M (in-degree 100), in-degree 100 -> 1,000 (10k and 100k neurons), 1 -> 2 threads.
Each configuration runs in a fresh interpreter (this file with ``--one``) so that its peak RSS is its
own. Reports synaptic events/s of the simulation phase, bytes per synapse (synapse tables as the
kernel reports them), build time, firing rate and peak RSS. The network's parameters (J = 0.5 mV,
g = 5, eta = 1) are those of benchmark 1 at every size; with in-degree 1,000 the recurrent input is
ten times stronger, so the rate differs -- the table shows it.

    PYTHONPATH=python python benchmarks/bench_scaling.py [--quick] [--out benchmarks/results/scaling.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (neurons, in-degree, threads, steps): steps shrink with size to keep the whole grid under ~2 minutes
FULL = [(10_000, 100, 1, 1000), (10_000, 100, 2, 1000), (100_000, 100, 1, 300), (100_000, 100, 2, 300),
        (1_000_000, 100, 1, 100), (1_000_000, 100, 2, 100), (10_000, 1000, 1, 500), (10_000, 1000, 2, 500),
        (100_000, 1000, 1, 100), (100_000, 1000, 2, 100)]
QUICK = [(2_000, 100, 1, 50), (2_000, 100, 2, 50), (4_000, 200, 1, 50)]


def _rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def run_one(n: int, indegree: int, threads: int, steps: int, warmup: int = 50) -> dict:
    sys.path.insert(0, str(HERE))
    import bench_brunel  # noqa: PLC0415

    rss0 = _rss_mb()
    net, info = bench_brunel.build(n, None, indegree, n_threads=threads)
    rss_built = _rss_mb()
    run = bench_brunel.simulate(net, steps, warmup=min(warmup, steps), n_threads=threads)
    info.update(run)
    info.update(threads=threads, indegree=indegree, rss_before_build_mb=rss0, rss_after_build_mb=rss_built,
                max_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    for k in ("rate_hz_exc", "rate_hz_inh"):
        info[k] = float(info[k])
    return info


def run_grid(configs: list[tuple[int, int, int, int]], timeout: float = 600.0) -> list[dict]:
    """Each configuration in a fresh interpreter; a failure is recorded, never skipped silently."""
    rows = []
    import ahpsim  # noqa: PLC0415 - the child must import the same ahpsim as this process

    env = dict(os.environ)
    pkg_root = str(Path(ahpsim.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([pkg_root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    for n, k, th, steps in configs:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--one", json.dumps([n, k, th, steps])]
        t0 = time.perf_counter()
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
            line = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
            row = json.loads(line) if p.returncode == 0 and line.startswith("{") else \
                {"neurons": n, "indegree": k, "threads": th, "status": "failed", "returncode": p.returncode,
                 "error": (p.stderr or p.stdout)[-2000:]}
        except subprocess.TimeoutExpired:
            row = {"neurons": n, "indegree": k, "threads": th, "status": "timeout", "timeout_s": timeout}
        row.setdefault("status", "ok")
        row["process_wall_s"] = time.perf_counter() - t0
        rows.append(row)
        print(f"  scaling n={n:,} k={k} threads={th}: {row['status']}"
              + (f", {row['syn_events_per_s']:.3e} events/s" if row["status"] == "ok" else ""), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.one:
        n, k, th, steps = json.loads(args.one)
        print(json.dumps(run_one(n, k, th, steps)))
        return 0
    rows = run_grid(QUICK if args.quick else FULL)
    out = {"benchmark": "scaling", "quick": args.quick, "runs": rows}
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
