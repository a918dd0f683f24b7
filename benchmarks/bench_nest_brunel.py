"""Peer side of benchmark 1: the Brunel-style network of ``bench_brunel.py`` built in NEST.

Runs in NEST's own virtual environment (``.venv-nest``), never imports ahpsim, and prints one JSON
object on its last stdout line. The suite passes the network parameters as JSON (``--params``) so both
simulators build the same network:

* ``iaf_psc_delta`` with E_L = 0, V_reset = 0, V_th = theta, tau_m, t_ref = n_ref * dt, V_m(0) = 0;
  C_m is irrelevant for delta synapses (a weight J in mV jumps V_m by J mV);
* ``fixed_indegree`` connections (C_E from the excitatory, C_I from the inhibitory population, with
  replacement -- ``allow_multapses`` -- and no autapses) with weights J and -g J, delay 2 ms;
* one ``poisson_generator`` per neuron at the summed external rate with weight J (NEST's
  ``poisson_generator`` sends an independent train to each target, so one generator with
  ``all_to_all`` to the population gives each neuron its own Poisson drive);
* resolution dt = 1 ms, one thread.

Semantics that differ from ahpsim (reported by the suite, not hidden): NEST's ``iaf_psc_delta`` clamps
V_m at V_reset and discards input during the refractory period (unless ``refractory_input``) and
spikes on V_m >= V_th; ahpsim's LIF (LSNN convention) keeps integrating during refractoriness and
spikes on v > v_th.

    .venv-nest/bin/python benchmarks/bench_nest_brunel.py --params '{"n": 10000, ...}'
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", required=True, help="JSON: n, c_e, c_i, j, g, theta, tau_m, n_ref, delay_ms, "
                                                   "ext_rate_hz, steps, warmup, dt, seed, threads")
    a = json.loads(ap.parse_args(argv).params)
    t_import = time.perf_counter()
    import nest  # noqa: PLC0415 - imported here so --help works without NEST

    nest.set_verbosity("M_ERROR")
    import_s = time.perf_counter() - t_import
    nest.ResetKernel()
    nest.SetKernelStatus({"resolution": float(a["dt"]), "local_num_threads": int(a.get("threads", 1)),
                          "rng_seed": int(a.get("seed", 1)) + 1, "print_time": False})
    rss_import = _rss_mb()  # after import and kernel set-up: the baseline of the network's memory
    n = int(a["n"])
    n_e = int(n * 0.8)
    n_i = n - n_e
    params = {"E_L": 0.0, "V_reset": 0.0, "V_th": float(a["theta"]), "tau_m": float(a["tau_m"]),
              "t_ref": float(a["n_ref"]) * float(a["dt"]), "V_m": 0.0, "C_m": 1.0}
    t0 = time.perf_counter()
    exc = nest.Create("iaf_psc_delta", n_e, params=params)
    inh = nest.Create("iaf_psc_delta", n_i, params=params)
    pop = exc + inh
    d = float(a["delay_ms"])
    j = float(a["j"])
    nest.Connect(exc, pop, {"rule": "fixed_indegree", "indegree": int(a["c_e"]), "allow_autapses": False,
                            "allow_multapses": True}, {"synapse_model": "static_synapse", "weight": j, "delay": d})
    nest.Connect(inh, pop, {"rule": "fixed_indegree", "indegree": int(a["c_i"]), "allow_autapses": False,
                            "allow_multapses": True},
                 {"synapse_model": "static_synapse", "weight": -float(a["g"]) * j, "delay": d})
    noise = nest.Create("poisson_generator", params={"rate": float(a["ext_rate_hz"])})
    nest.Connect(noise, pop, "all_to_all", {"weight": j, "delay": float(a["dt"])})
    rec = nest.Create("spike_recorder")
    nest.Connect(pop, rec)
    n_syn = nest.GetKernelStatus("num_connections") - n - n  # minus the generator and recorder links
    build_s = time.perf_counter() - t0

    steps, warmup, dt = int(a["steps"]), int(a["warmup"]), float(a["dt"])
    t0 = time.perf_counter()
    nest.Simulate(warmup * dt)
    warm_s = time.perf_counter() - t0
    rec.n_events = 0
    # consecutive runs of `steps` (as the suite times ahpsim): the median wall time, spikes over all
    repeats = int(a.get("repeats", 1))
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        nest.Simulate(steps * dt)
        walls.append(time.perf_counter() - t0)
    wall = sorted(walls)[len(walls) // 2]
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the event counting below
    ev = rec.events
    senders = ev["senders"]
    spikes = len(senders)
    first_e, last_e = exc.tolist()[0], exc.tolist()[-1]
    n_spk_e = int(((senders >= first_e) & (senders <= last_e)).sum())
    bio_s = steps * dt / 1000.0 * repeats
    # one synaptic event = one spike delivered through one recurrent synapse (as ahpsim's syn_events),
    # counted exactly from each sender's out-degree in NEST's connection table
    conns_e = nest.GetConnections(source=exc, target=pop)
    conns_i = nest.GetConnections(source=inh, target=pop)
    import numpy as np  # noqa: PLC0415

    out_deg = np.zeros(n + 1, dtype=np.int64)
    for c in (conns_e, conns_i):
        src = np.asarray(c.get("source"))
        out_deg += np.bincount(src - first_e, minlength=n + 1)[: n + 1]
    syn_events = int(out_deg[np.asarray(senders, dtype=np.int64) - first_e].sum())
    out = {"peer": "nest", "version": nest.__version__, "python": sys.version.split()[0],
           "neurons": n, "synapses": int(n_syn), "build_s": build_s, "import_s": import_s,
           "warmup_steps": warmup, "warmup_s": warm_s, "steps": steps, "wall_s": wall,
           "repeats": repeats, "wall_s_all": walls,
           "syn_events": syn_events // repeats, "syn_events_per_s": syn_events / repeats / wall,
           "spikes": spikes, "rate_hz": spikes / n / bio_s, "rate_hz_exc": n_spk_e / n_e / bio_s,
           "rate_hz_inh": (spikes - n_spk_e) / n_i / bio_s, "realtime_factor": wall / (bio_s / repeats),
           "threads": int(a.get("threads", 1)), "pid": os.getpid(), "rss_after_import_mb": rss_import,
           "max_rss_mb": max_rss}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
