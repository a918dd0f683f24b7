"""Peer side of benchmark 1: the Brunel-style network of ``bench_brunel.py`` built in Brian2.

Runs in Brian2's own virtual environment (``.venv-brian2``: brian2, numpy<2.3, cython), never imports
ahpsim, and prints one JSON object on its last stdout line. Same network as ahpsim's:

* ``dv/dt = -v / tau_m`` integrated exactly (``method="exact"``), threshold ``v > theta``, reset
  ``v = 0``, ``refractory = n_ref * dt`` *without* ``(unless refractory)``, so -- as in ahpsim -- the
  voltage keeps integrating during refractoriness and only spiking is blocked;
* delta synapses ``on_pre: v_post += w`` (w = J or -g J), delay 2 ms, fixed in-degree C_E / C_I drawn
  with replacement, no autapses (the indices are drawn with numpy here and passed to ``connect``);
* ``PoissonInput`` per neuron (1,000 sources summing to the external rate) with weight J;
* dt = 1 ms, runtime code generation with Cython (``--target numpy`` for the pure numpy one).

Brian2's default schedule propagates synaptic input *after* the threshold test of a step (and the
next state update decays it by alpha before it is tested), which is a one-step-later, 5%-weaker
version of ahpsim's ``v[t] = alpha v[t-1] + I[t]`` (a Brian2 run with the default schedule gave 13.8 Hz
where NEST and ahpsim gave 16.6 Hz on a 2k-neuron version). By default (``BRIAN2_ALIGN=1``) the
synaptic pathways and the Poisson input therefore run at ``when="before_thresholds"`` with the delay
shortened by one dt, which gives ahpsim's update order exactly; ``BRIAN2_ALIGN=0`` keeps Brian2's
default schedule.

    .venv-brian2/bin/python benchmarks/bench_brian2_brunel.py --params '{"n": 10000, ...}'
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time


N_DRIVE = 1000
ALIGN = os.environ.get("BRIAN2_ALIGN", "1") == "1"


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _fixed_indegree(rng, n_src: int, src_off: int, n_tgt: int, k: int, same: bool):
    import numpy as np  # noqa: PLC0415

    post = np.repeat(np.arange(n_tgt, dtype=np.int64), k)
    if not same:
        return rng.integers(0, n_src, size=n_tgt * k), post
    # sources drawn from the target's own population: no autapses (redraw the few self-connections)
    pre = rng.integers(0, n_src, size=n_tgt * k)
    bad = pre == post - src_off
    while bad.any():
        pre[bad] = rng.integers(0, n_src, size=int(bad.sum()))
        bad = pre == post - src_off
    return pre, post


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", required=True)
    ap.add_argument("--target", default="cython", choices=["cython", "numpy"])
    args = ap.parse_args(argv)
    a = json.loads(args.params)
    t_import = time.perf_counter()
    import brian2 as b2  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    import_s = time.perf_counter() - t_import
    rss_import = _rss_mb()
    b2.prefs.codegen.target = args.target
    b2.prefs.logging.console_log_level = "ERROR"
    b2.seed(int(a.get("seed", 1)))
    rng = np.random.default_rng(int(a.get("seed", 1)))
    dt = float(a["dt"]) * b2.ms
    b2.defaultclock.dt = dt
    n = int(a["n"])
    n_e = int(n * 0.8)
    j = float(a["j"]) * b2.mV
    t0 = time.perf_counter()
    tau_m = float(a["tau_m"]) * b2.ms
    theta = float(a["theta"]) * b2.mV
    pop = b2.NeuronGroup(n, "dv/dt = -v / tau_m : volt", threshold="v > theta", reset="v = 0*mV",
                         refractory=float(a["n_ref"]) * float(a["dt"]) * b2.ms, method="exact",
                         namespace={"tau_m": tau_m, "theta": theta})
    pop.v = 0 * b2.mV
    exc, inh = pop[:n_e], pop[n_e:]
    delay = float(a["delay_ms"]) * b2.ms
    out_deg = np.zeros(n, dtype=np.int64)
    syns = []
    for src, n_src, off, k, w in ((exc, n_e, 0, int(a["c_e"]), j), (inh, n - n_e, n_e, int(a["c_i"]), -float(a["g"]) * j)):
        s = b2.Synapses(src, pop, on_pre="v_post += w", namespace={"w": w}, delay=delay - dt if ALIGN else delay)
        if ALIGN:
            s.pre.when = "before_thresholds"
        # fixed in-degree: the target's own population may not connect to itself (no autapses)
        pre_parts, post_parts = [], []
        for t_lo, t_hi in ((0, n_e), (n_e, n)):
            pre, post = _fixed_indegree(rng, n_src, off - t_lo, t_hi - t_lo, k, same=(t_lo == off))
            pre_parts.append(pre)
            post_parts.append(post + t_lo)
        pre = np.concatenate(pre_parts)
        post = np.concatenate(post_parts)
        s.connect(i=pre, j=post)
        out_deg[off:off + n_src] += np.bincount(pre, minlength=n_src)
        syns.append(s)
    # PoissonInput draws Binomial(N, rate * dt) per neuron and step, so N must make rate * dt << 1:
    # N_DRIVE sources at ext_rate / N_DRIVE each (Binomial(1000, 0.002) vs Poisson(2) per step here)
    drive = b2.PoissonInput(pop, "v", N=N_DRIVE, rate=float(a["ext_rate_hz"]) / N_DRIVE * b2.Hz, weight=j,
                             when="before_thresholds" if ALIGN else "synapses")
    mon = b2.SpikeMonitor(pop)
    net = b2.Network(pop, *syns, drive, mon)
    n_syn = sum(len(s) for s in syns)
    build_s = time.perf_counter() - t0
    steps, warmup = int(a["steps"]), int(a["warmup"])
    t0 = time.perf_counter()
    net.run(warmup * dt)  # also compiles the code objects (Cython): counted here, not in the timed run
    warm_s = time.perf_counter() - t0
    n0 = mon.num_spikes
    i0 = len(mon.i)
    # consecutive runs of `steps` (as the suite times ahpsim): the median wall time, spikes over all
    repeats = int(a.get("repeats", 1))
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        net.run(steps * dt)
        walls.append(time.perf_counter() - t0)
    wall = sorted(walls)[len(walls) // 2]
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the event counting below
    senders = np.asarray(mon.i[i0:], dtype=np.int64)
    spikes = int(mon.num_spikes - n0)
    n_spk_e = int((senders < n_e).sum())
    bio_s = steps * float(a["dt"]) / 1000.0 * repeats
    syn_events = int(out_deg[senders].sum())
    out = {"peer": "brian2", "version": b2.__version__, "numpy": np.__version__, "target": args.target,
           "python": sys.version.split()[0], "neurons": n, "synapses": int(n_syn), "build_s": build_s,
           "import_s": import_s, "warmup_steps": warmup, "warmup_s": warm_s, "steps": steps, "wall_s": wall,
           "repeats": repeats, "wall_s_all": walls,
           "syn_events": syn_events // repeats, "syn_events_per_s": syn_events / repeats / wall, "spikes": spikes,
           "rate_hz": spikes / n / bio_s, "rate_hz_exc": n_spk_e / n_e / bio_s,
           "rate_hz_inh": (spikes - n_spk_e) / (n - n_e) / bio_s, "realtime_factor": wall / (bio_s / repeats),
           "threads": 1, "pid": os.getpid(), "rss_after_import_mb": rss_import,
           "max_rss_mb": max_rss}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
