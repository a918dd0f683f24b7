"""One Brunel network (``bench_brunel.py``: 80 % excitatory, in-degree 100, delay 2 steps at dt = 1 ms,
Poisson drive) over 1-4 MPI ranks (``Network(comm=...)``), and a model of the exchange's cost.

For each configuration, ``mpiexec -n R`` runs this file with ``--one``: every rank builds its part,
runs a warm-up, then ``steps`` steps; each rank reports its build time, run time, the time spent in
the exchange (the spikes' ``Allgatherv`` and their counts), the time it waited for the slowest rank
before it, the bytes it sent per exchange, its synapses and its memory (resident set after building, peak). Ranks beyond the cores
share them (oversubscribed): their times are marked, their byte counts are exact.

The model: every rank receives every spike of a window, so the bytes per exchange and rank are
``b0 + b1 * S`` with ``S = N * rate * dt * W`` spikes per window (``W`` steps; ``b1`` per spike and
``b0`` per message, fitted on the measured messages); a rank's step costs ``c_n * N_r + c_row * S *
k_r`` (its ``N_r`` neurons; every spike ``S`` of the step visits ``k_r`` synapse rows with synapses
there -- about one per target population its range meets, fewer when a rank holds few of a row's
synapses -- each a cache miss), the slowest rank sets the pace, plus per
window ``alpha * log2(R) + R * bytes / bandwidth`` for the allgather. Predictions for 64 ranks and 100M neurons are printed for
the shared-memory constants fitted here and for a cluster interconnect (stated, not measured).

    PYTHONPATH=python python benchmarks/bench_mpi.py [--quick] [--out benchmarks/results/mpi.json]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

FULL = [(1_000_000, 1, 100), (1_000_000, 2, 100), (100_000, 1, 300), (100_000, 2, 300), (100_000, 3, 300),
        (100_000, 4, 300), (300_000, 1, 200), (300_000, 2, 200)]
QUICK = [(20_000, 1, 100), (20_000, 2, 100), (20_000, 3, 100)]
# a cluster interconnect for the extrapolation (InfiniBand HDR-class; stated, not measured here)
CLUSTER = {"alpha_s": 2e-6, "bandwidth_Bps": 12e9}


class TimedComm:
    """An mpi4py communicator that times each window's exchange: a barrier first (the wait for the
    slowest rank, reported apart), then the counts' allgather and the two Allgatherv of spikes,
    counting the bytes this rank sends."""

    def __init__(self, comm):
        self.comm = comm
        self.reset()

    def reset(self):
        self.seconds, self.wait_s, self.sent, self.calls = 0.0, 0.0, [], 0

    def Get_rank(self):
        return self.comm.Get_rank()

    def Get_size(self):
        return self.comm.Get_size()

    def allgather(self, x):  # the counts (first call of a window) and other small collectives
        t0 = time.perf_counter()
        self.comm.Barrier()
        t1 = time.perf_counter()
        r = self.comm.allgather(x)
        self.wait_s += t1 - t0
        self.seconds += time.perf_counter() - t1
        self.calls += 1
        self.sent.append(len(pickle.dumps(x, protocol=pickle.HIGHEST_PROTOCOL)))
        return r

    def Allgatherv(self, send, recv):
        t0 = time.perf_counter()
        self.comm.Allgatherv(send, recv)
        self.seconds += time.perf_counter() - t0
        self.sent[-1] += send.nbytes


def run_one(n: int, steps: int, warmup: int) -> None:
    from mpi4py import MPI

    sys.path.insert(0, str(HERE))
    import bench_brunel  # noqa: PLC0415
    from bench_scaling import _rss_mb  # noqa: PLC0415

    world = MPI.COMM_WORLD
    comm = TimedComm(world)
    t0 = time.perf_counter()
    net, info = bench_brunel.build(n, None, 100, comm=comm)
    build_s = time.perf_counter() - t0
    rss_built = _rss_mb()
    net.run(warmup, record_spikes=False)
    c0 = net.counters()
    comm.reset()
    world.Barrier()
    t0 = time.perf_counter()
    net.run(steps, record_spikes=False, gather_spikes="local")
    run_s = time.perf_counter() - t0
    x_s, wait_s, sent, calls = comm.seconds, comm.wait_s, list(comm.sent), comm.calls
    c1 = net.counters()
    me = {"rank": world.Get_rank(), "partition": list(net.partition), "synapses": int(net.n_synapses),
          "build_s": build_s, "run_s": run_s, "exchange_s": x_s, "wait_s": wait_s,
          "windows": calls - 2,  # the run's min-delay allgather and the counters' are not windows
          "bytes_sent_per_exchange": float(np.mean(sent[1:-1])) if len(sent) > 2 else 0.0,
          "rss_after_build_mb": rss_built, "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    ranks = world.gather(me)
    if world.Get_rank() == 0:
        spikes = c1["spikes"] - c0["spikes"]
        out = {"neurons": n, "ranks": world.Get_size(), "steps": steps, "delay_steps": info["delay_steps"],
               "spikes": spikes, "syn_events": c1["syn_events"] - c0["syn_events"],
               "rate_hz": spikes / n / (steps * net.dt / 1000.0), "per_rank": ranks,
               "run_s": max(r["run_s"] for r in ranks), "build_s": max(r["build_s"] for r in ranks)}
        print("RESULT " + json.dumps(out), flush=True)


def _launch(n: int, ranks: int, steps: int, warmup: int) -> dict:
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    here = Path(sys.executable).parent / "mpiexec"
    mpiexec = str(here) if here.exists() else "mpiexec"
    cmd = [mpiexec, "--oversubscribe", "-n", str(ranks), sys.executable, __file__, "--one", str(n), str(steps),
           str(warmup)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        raise RuntimeError(f"mpiexec -n {ranks} (N = {n}) failed:\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    r = json.loads(line[7:])
    r["oversubscribed"] = ranks > (os.cpu_count() or 1)
    return r


def partition(n: int, ranks: int) -> list[tuple[int, int]]:
    """The neuron ranges of the ranks, as ``Network(comm=...)`` divides them (whole blocks of 1,024)."""
    blocks = -(-n // 1024)
    return [(blocks * r // ranks * 1024, min(n, blocks * (r + 1) // ranks * 1024)) for r in range(ranks)]


def rows_per_spike(n: int, lo: int, hi: int, indegree: int = 100) -> float:
    """Synapse rows with synapses on the rank [lo, hi) that a spike visits, on average: for each source
    population (E: the first 80 % of the neurons, I: the rest; spikes in proportion, equal rates) and
    target population, the chance that a source's row has at least one of its ~Poisson-distributed
    synapses onto the rank's part of the target. Each such row costs the rank a cache miss."""
    n_e = int(n * 0.8)
    c = {"E": int(indegree * 0.8), "I": indegree - int(indegree * 0.8)}      # in-degree from each source
    size = {"E": n_e, "I": n - n_e}
    overlap = {"E": max(0, min(hi, n_e) - max(lo, 0)), "I": max(0, min(hi, n) - max(lo, n_e))}
    share = {"E": 0.8, "I": 0.2}
    return sum(share[s] * (1.0 - np.exp(-c[s] * overlap[t] / size[s])) for s in ("E", "I") for t in ("E", "I"))


def fit_model(runs: list[dict]) -> dict:
    """The constants of the model (module docstring) from the measured runs."""
    # bytes per exchange and rank against spikes per window and rank: b0 + b1 * s
    xs, ys = [], []
    for r in runs:
        W = r["delay_steps"]
        for pr in r["per_rank"]:
            lo, hi = pr["partition"]
            own_spikes_per_window = r["spikes"] * (hi - lo) / r["neurons"] / r["steps"] * W
            xs.append(own_spikes_per_window)
            ys.append(pr["bytes_sent_per_exchange"])
    b1, b0 = np.polyfit(xs, ys, 1) if len(xs) >= 2 else (12.0, 0.0)
    # compute of a rank per step: c_n * (its neurons) + c_row * (spikes per step) * (its rows per spike),
    # fitted on every rank's time outside the exchange and the wait (runs with a core per rank)
    A, y = [], []
    for r in runs:
        if r["oversubscribed"]:
            continue
        spikes_step = r["spikes"] / r["steps"]
        for pr in r["per_rank"]:
            lo, hi = pr["partition"]
            A.append([hi - lo, spikes_step * rows_per_spike(r["neurons"], lo, hi)])
            y.append((pr["run_s"] - pr["wait_s"] - pr["exchange_s"]) / r["steps"])
    c_n, c_row = np.linalg.lstsq(np.array(A, float), np.array(y), rcond=None)[0]
    # exchange: per window alpha * log2(R) + R * bytes / bandwidth, from the ranks that had a core each
    rows, t = [], []
    for r in runs:
        if r["ranks"] < 2 or r["oversubscribed"]:
            continue
        W = r["delay_steps"]
        windows = r["steps"] // W
        x_s = float(np.mean([pr["exchange_s"] for pr in r["per_rank"]])) / windows
        bytes_msg = float(np.mean([pr["bytes_sent_per_exchange"] for pr in r["per_rank"]]))
        rows.append([np.log2(r["ranks"]), r["ranks"] * bytes_msg])
        t.append(x_s)
    if len(rows) >= 2:
        alpha, inv_bw = np.linalg.lstsq(np.array(rows), np.array(t), rcond=None)[0]
    else:
        alpha, inv_bw = (t[0] / rows[0][0], 0.0) if rows else (0.0, 0.0)
    return {"bytes_per_spike": float(b1), "bytes_per_message": float(b0), "c_neuron_s": float(c_n),
            "c_row_s": float(c_row), "alpha_s": float(alpha),
            "bandwidth_Bps": float(1.0 / inv_bw) if inv_bw > 0 else float("inf")}


def predict(m: dict, n: int, ranks: int, rate_hz: float, dt_ms: float = 1.0, W: int = 2,
            alpha_s: float | None = None, bandwidth_Bps: float | None = None) -> dict:
    """Seconds per step of the slowest rank (compute) plus the exchange per step, and the bytes."""
    alpha = m["alpha_s"] if alpha_s is None else alpha_s
    bw = m["bandwidth_Bps"] if bandwidth_Bps is None else bandwidth_Bps
    spikes_step = n * rate_hz * dt_ms / 1000.0
    compute = max(m["c_neuron_s"] * (hi - lo) + m["c_row_s"] * spikes_step * rows_per_spike(n, lo, hi)
                  for lo, hi in partition(n, ranks))
    msg = m["bytes_per_message"] + m["bytes_per_spike"] * spikes_step * W / ranks
    exchange = (alpha * np.log2(max(ranks, 1)) + ranks * msg / bw) / W if ranks > 1 else 0.0
    return {"neurons": n, "ranks": ranks, "s_per_step": compute + exchange, "compute_s_per_step": compute,
            "exchange_s_per_step": exchange, "bytes_per_exchange_per_rank": msg,
            "bytes_received_per_exchange_per_rank": ranks * msg}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--one":
        run_one(int(argv[1]), int(argv[2]), int(argv[3]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="20k neurons; checks the harness only")
    ap.add_argument("--out", default=str(HERE / "results" / "mpi.json"))
    ap.add_argument("--refit", metavar="JSON", help="refit the model to the runs stored in JSON (no new runs)")
    args = ap.parse_args(argv)
    runs = json.loads(Path(args.refit).read_text())["runs"] if args.refit else []
    for n, ranks, steps in ([] if args.refit else (QUICK if args.quick else FULL)):
        r = _launch(n, ranks, steps, warmup=20)
        runs.append(r)
        print(f"N = {n:,}, {ranks} rank(s): {r['run_s'] / steps * 1e3:.2f} ms/step, rate {r['rate_hz']:.1f} Hz, "
              f"max RSS/rank {max(p['max_rss_mb'] for p in r['per_rank']):.0f} MB, synapses/rank "
              f"{[p['synapses'] for p in r['per_rank']]}", flush=True)
    m = fit_model(runs)
    check = []
    for r in runs:
        p = predict(m, r["neurons"], r["ranks"], r["rate_hz"], W=r["delay_steps"])
        meas_bytes = float(np.mean([pr["bytes_sent_per_exchange"] for pr in r["per_rank"]]))
        check.append({"neurons": r["neurons"], "ranks": r["ranks"], "oversubscribed": r["oversubscribed"],
                      "measured_s_per_step": r["run_s"] / r["steps"], "predicted_s_per_step": p["s_per_step"],
                      "measured_bytes_per_exchange": meas_bytes,
                      "predicted_bytes_per_exchange": p["bytes_per_exchange_per_rank"]})
    rate = float(np.mean([r["rate_hz"] for r in runs]))
    extrap = {f"{n:,} neurons, {R} ranks, {name}": predict(m, n, R, rate, **kw)
              for n in (1_000_000, 100_000_000) for R in (1, 2, 4, 16, 64)
              for name, kw in (("this machine's constants", {}), ("cluster interconnect", CLUSTER))}
    speed = {}
    big = [r for r in runs if r["neurons"] == max(x["neurons"] for x in runs)]
    one = [r for r in big if r["ranks"] == 1]
    for r in big:
        if one:
            speed[r["ranks"]] = one[0]["run_s"] / r["run_s"]
    out = {"benchmark": "mpi", "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
           "date": time.strftime("%Y-%m-%d %H:%M:%S"), "runs": runs, "model": m, "model_check": check,
           "speedup_largest": speed, "extrapolation_rate_hz": rate, "cluster_constants": CLUSTER,
           "extrapolation": extrap}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print("| neurons | ranks | ms/step measured | ms/step model | bytes/exchange measured | model |")
    print("|---:|---:|---:|---:|---:|---:|")
    for c in check:
        flag = " (oversubscribed)" if c["oversubscribed"] else ""
        print(f"| {c['neurons']:,} | {c['ranks']}{flag} | {1e3 * c['measured_s_per_step']:.2f} | "
              f"{1e3 * c['predicted_s_per_step']:.2f} | {c['measured_bytes_per_exchange']:.0f} | "
              f"{c['predicted_bytes_per_exchange']:.0f} |")
    print("model:", json.dumps(m))
    for k, v in extrap.items():
        if "100,000,000" in k or "64 ranks" in k:
            print(f"{k}: {1e3 * v['s_per_step']:.2f} ms/step (compute {1e3 * v['compute_s_per_step']:.2f}, "
                  f"exchange {1e3 * v['exchange_s_per_step']:.2f}), {v['bytes_received_per_exchange_per_rank'] / 1e6:.2f} MB "
                  f"received per exchange and rank")
    print("speed-up, largest network:", speed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
