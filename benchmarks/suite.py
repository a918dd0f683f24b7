"""The ahpsim benchmark suite: one entry point, one JSON, one markdown table, one plot.

    PYTHONPATH=python python -m benchmarks                      # full run -> benchmarks/results/suite.*
    PYTHONPATH=python python -m benchmarks --quick              # harness smoke test (tiny sizes, temp dir)
    PYTHONPATH=python python -m benchmarks --install-peers      # create the peers' venvs first if missing

Benchmarks (``--only`` picks some):

1. ``brunel``: Brunel-style balanced network (10k LIF, 1M synapses, dt 1 ms, Poisson drive, 1 s) in
   ahpsim (this interpreter) against NEST (``.venv-nest``) and Brian2 (``.venv-brian2``), each peer in
   its own virtual environment as a subprocess printing JSON.
2. ``scaling``: ahpsim 10k -> 1M neurons, in-degree 100 -> 1,000, 1 -> 2 threads (``bench_scaling.py``).
3. ``inference``: batched sMNIST inference, kernel vs PyTorch (``bench_inference.py``, if present).
4. ``loihi``: Loihi integer engine vs Lava (``bench_loihi_vs_lava.py``, if present).
5. ``train``: training step vs snnTorch and Norse (``bench_train_step_vs_peers.py``, if present).

A peer or benchmark that cannot run is reported with its error, never replaced by a number. The
quick run only checks that the harness works: its timings mean nothing.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
try:  # run as a script (benchmarks/ on sys.path) or imported as benchmarks.<name>
    from _args import real_in
except ImportError:
    from benchmarks._args import real_in

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
SCHEMA_VERSION = 1

#: Relative rate difference under which a peer's population rate "agrees" with ahpsim's. The networks
#: share parameters but not random streams (ahpsim's seed-to-seed spread of the 10k, 1 s rate: 0.5%),
#: and NEST clamps V during the 2 ms refractory period; a mis-specified network is far outside this
#: (Brian2's default schedule, one step late and 5% weaker input, gave a 17% lower rate).
RATE_TOLERANCE = 0.10

PEERS = {
    "nest": {"venv": ".venv-nest", "script": "bench_nest_brunel.py",
             "pip": ["nest-simulator>=3.10,<3.11", "psutil"], "import": "nest"},
    "brian2": {"venv": ".venv-brian2", "script": "bench_brian2_brunel.py",
               "pip": ["brian2", "numpy<2.3", "cython", "psutil"], "import": "brian2"},
}

# name -> (script, interpreter ("self" or a venv dir), full args, quick args, how its output is given)
EXTERNAL = {
    "inference": ("bench_inference.py", "self", ["--threads", "1"], ["--quick"], "--out"),
    "loihi": ("bench_loihi_vs_lava.py", "self", [], ["--sizes", "100", "--steps", "50", "--repeat", "1"], None),
    "train": ("bench_train_step_vs_peers.py", ".venv-peers", ["--reps", "3"],
              ["--batch", "2", "--steps", "20", "--reps", "1"], "--out"),
}

# How --install-peers creates the venvs of the external benchmarks.  torch is pinned in the same pip
# call as its dependants, so pip takes the CPU build instead of pulling a multi-GB CUDA one; ahpsim itself
# is not installed there: the suite puts its own build on their PYTHONPATH.  Lava needs Python < 3.11.
EXTERNAL_VENVS = {
    "train": (".venv-peers", "3.11", ["torch==2.13.0", "snntorch", "norse", "tqdm"]),
    "loihi": (".venv-lava", "3.10", ["lava-nc"]),
}

ALL = ["brunel", "scaling", "inference", "loihi", "train"]


# ----------------------------------------------------------------------------------------- helpers
def _last_json(text: str) -> Any:
    """The last complete top-level JSON object in ``text`` (scripts print logs before it)."""
    dec = json.JSONDecoder()
    best = None
    i = 0
    while True:
        j = text.find("{", i)
        if j < 0:
            return best
        if j == 0 or text[j - 1] == "\n":
            try:
                obj, end = dec.raw_decode(text, j)
                best = obj
                i = end
                continue
            except ValueError:
                pass
        i = j + 1


def machine_info() -> dict[str, Any]:
    import numpy as np

    import ahpsim

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gb = None
    try:
        with open("/proc/meminfo") as f:
            mem_gb = int(f.readline().split()[1]) / 1024**2
    except (OSError, ValueError, IndexError):
        pass
    commit = None
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"cpu": cpu, "cpus": os.cpu_count(), "memory_gb": mem_gb, "platform": platform.platform(),
            "python": sys.version.split()[0], "numpy": np.__version__, "ahpsim": ahpsim.__version__,
            "git_commit": commit, "load_average_at_start": load,
            "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}


def _find_python(version: str = "3.11") -> str | None:
    """A working interpreter of that version (pyenv's shims exist for versions they then refuse to run)."""
    cands = [shutil.which(f"python{version}"),
             *sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python")))]
    for cand in cands:
        if not cand or not os.path.exists(cand):
            continue
        try:
            ok = subprocess.run([cand, "-c", "import venv"], capture_output=True, timeout=60).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
        if ok:
            return cand
    return None


def install_venv(venv_name: str, python: str, packages: list[str]) -> dict[str, Any]:
    """Create ``<venv_name>`` with Python ``python`` and pip-install ``packages`` from PyPI; report what
    happened, never raise."""
    venv = ROOT / venv_name
    if (venv / "bin" / "python").exists():
        return {"installed": True, "note": "venv already present"}
    base = _find_python(python)
    if base is None:
        return {"installed": False, "error": f"no Python {python} interpreter found to create {venv_name}"}
    t0 = time.perf_counter()
    try:
        subprocess.run([base, "-m", "venv", str(venv)], check=True, capture_output=True, text=True, timeout=300)
        p = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *packages], capture_output=True,
                           text=True, timeout=1800)
    except (OSError, subprocess.SubprocessError) as e:
        shutil.rmtree(venv, ignore_errors=True)
        return {"installed": False, "error": repr(e)}
    if p.returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        return {"installed": False, "error": (p.stderr or p.stdout)[-3000:], "pip": packages}
    return {"installed": True, "pip": packages, "install_s": time.perf_counter() - t0}


def install_peer(name: str) -> dict[str, Any]:
    """Create the Brunel peer's venv with Python 3.11 and pip-install it from PyPI."""
    return install_venv(PEERS[name]["venv"], "3.11", PEERS[name]["pip"])


# ------------------------------------------------------------------------------ benchmark 1: Brunel
def brunel_params(quick: bool) -> tuple[dict[str, Any], int, int]:
    """The network both sides build (from bench_brunel's constants), steps, warmup."""
    sys.path.insert(0, str(HERE))
    import bench_brunel as bb

    n = 2000 if quick else 10_000
    indegree = 100
    c_e = int(indegree * 0.8)
    c_i = indegree - c_e
    delay = int(1.5 / 1.0 + 0.5)
    nu_th = bb.THETA / (bb.J * c_e * bb.TAU_M)
    params = {"n": n, "c_e": c_e, "c_i": c_i, "j": bb.J, "g": bb.G, "theta": bb.THETA, "tau_m": bb.TAU_M,
              "n_ref": bb.T_REF, "delay_ms": float(delay), "ext_rate_hz": bb.ETA * nu_th * c_e * 1000.0,
              "dt": 1.0, "seed": 1, "threads": 1, "repeats": 3}
    steps, warmup = (200, 50) if quick else (1000, 100)
    return params, steps, warmup


def run_ahpsim_brunel(params: dict[str, Any], steps: int, warmup: int, repeats: int) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    import bench_brunel as bb
    from bench_scaling import _rss_mb

    import ahpsim

    rss0 = _rss_mb()
    net, info = bb.build(params["n"], None, params["c_e"] + params["c_i"], seed=params["seed"], n_threads=1)
    assert info["c_e"] == params["c_e"] and info["c_i"] == params["c_i"], "bench_brunel changed its split"
    assert abs(info["ext_rate_hz"] - params["ext_rate_hz"]) < 1e-9 * params["ext_rate_hz"]
    runs = [bb.simulate(net, steps, warmup=warmup if r == 0 else 0, n_threads=1) for r in range(repeats)]
    rss1 = _rss_mb()
    med = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
    out = {"peer": "ahpsim", "version": ahpsim.__version__, "status": "ok", "neurons": params["n"],
           "synapses": info["synapses"], "bytes_per_synapse": info["bytes_per_synapse"], "build_s": info["build_s"],
           "steps": steps, "warmup_steps": warmup, "repeats": repeats, "wall_s": med["wall_s"],
           "wall_s_all": [r["wall_s"] for r in runs], "syn_events": med["syn_events"],
           "syn_events_per_s": med["syn_events"] / med["wall_s"],
           "rate_hz": statistics.fmean(r["rate_hz"] for r in runs),  # over all runs' biological time
           "rate_hz_all": [r["rate_hz"] for r in runs],
           "rate_hz_exc": statistics.fmean(float(r["rate_hz_exc"]) for r in runs),
           "rate_hz_inh": statistics.fmean(float(r["rate_hz_inh"]) for r in runs), "realtime_factor": med["realtime_factor"], "threads": 1,
           "rss_before_build_mb": rss0, "rss_after_run_mb": rss1, "network_memory_mb": rss1 - rss0,
           "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "memory_note": "in the suite's own process: network memory = RSS after the runs - RSS before build"}
    del net
    return out


def run_peer_brunel(name: str, params: dict[str, Any], steps: int, warmup: int, quick: bool,
                    timeout: float) -> dict[str, Any]:
    spec = PEERS[name]
    py = ROOT / spec["venv"] / "bin" / "python"
    if not py.exists():
        return {"peer": name, "status": "not installed",
                "error": f"{py} not found; run with --install-peers (pip: {' '.join(spec['pip'])})"}
    args = [str(py), str(HERE / spec["script"]), "--params", json.dumps(dict(params, steps=steps, warmup=warmup))]
    if name == "brian2" and quick:
        args += ["--target", "numpy"]  # no Cython compilation in the smoke run
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    t0 = time.perf_counter()
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, cwd=str(ROOT))
    except subprocess.TimeoutExpired:
        return {"peer": name, "status": "timeout", "timeout_s": timeout}
    res = _last_json(p.stdout)
    if p.returncode != 0 or not isinstance(res, dict):
        return {"peer": name, "status": "failed", "returncode": p.returncode,
                "error": (p.stderr or p.stdout)[-3000:]}
    res["status"] = "ok"
    res["process_wall_s"] = time.perf_counter() - t0
    if "rss_after_import_mb" in res:
        res["network_memory_mb"] = res["max_rss_mb"] - res["rss_after_import_mb"]
        res["memory_note"] = "network memory = peak RSS - RSS after importing the simulator"
    return res


def bench_brunel(quick: bool, peers: list[str], timeout: float) -> dict[str, Any]:
    params, steps, warmup = brunel_params(quick)
    print(f"[brunel] {params['n']:,} LIF, in-degree {params['c_e'] + params['c_i']}, {steps} steps", flush=True)
    rows = {"ahpsim": run_ahpsim_brunel(params, steps, warmup, repeats=params["repeats"])}
    a = rows["ahpsim"]
    print(f"  ahpsim: {a['wall_s']:.3f} s, {a['rate_hz']:.2f} Hz, {a['syn_events_per_s']:.3e} events/s", flush=True)
    for name in peers:
        rows[name] = run_peer_brunel(name, params, steps, warmup, quick, timeout)
        r = rows[name]
        print(f"  {name}: {r['status']}" + (f", {r['wall_s']:.3f} s, {r['rate_hz']:.2f} Hz" if r["status"] == "ok"
                                           else f": {str(r.get('error', ''))[-300:]}"), flush=True)
    comparisons = {}
    for name, r in rows.items():
        if name == "ahpsim" or r.get("status") != "ok":
            continue
        rel = (r["rate_hz"] - a["rate_hz"]) / a["rate_hz"] if a["rate_hz"] else float("nan")
        comparisons[name] = {
            "speedup_wall": r["wall_s"] / a["wall_s"],
            "events_per_s_ratio": a["syn_events_per_s"] / r["syn_events_per_s"] if r["syn_events_per_s"] else None,
            "build_ratio": r["build_s"] / a["build_s"] if a["build_s"] else None,
            "memory_ratio": (r["network_memory_mb"] / a["network_memory_mb"]
                             if r.get("network_memory_mb") and a["network_memory_mb"] > 0 else None),
            "rate_rel_diff": rel, "rates_agree": abs(rel) <= RATE_TOLERANCE,
        }
    semantics = ("ahpsim LIF (LSNN convention): integrates during the 2-step refractory period, spikes on v > theta, "
                 "reset to 0 at the next step. NEST iaf_psc_delta: clamps V at V_reset and discards input while "
                 "refractory, spikes on V >= theta. Brian2: same equations as ahpsim (integrates while refractory, "
                 "v > theta), synapses and Poisson input scheduled before the threshold test with the delay shortened "
                 "by one dt to reproduce ahpsim's update order; its drive is Binomial(1000, p) per step, NEST's and "
                 "ahpsim's Poisson. Independent random connectivity and streams in every simulator.")
    return {"params": params, "steps": steps, "warmup_steps": warmup, "biological_s": steps * params["dt"] / 1000,
            "results": rows, "comparisons": comparisons, "rate_tolerance": RATE_TOLERANCE, "semantics": semantics}


# ----------------------------------------------------------------------------- benchmark 2: scaling
def bench_scaling(quick: bool, timeout: float) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    import bench_scaling as bs

    print("[scaling]", flush=True)
    return {"runs": bs.run_grid(bs.QUICK if quick else bs.FULL, timeout=timeout)}


# ------------------------------------------------------------------------- benchmarks 3-5: external
def _importable_ahpsim(tmp: Path) -> str:
    """A directory to put first on another interpreter's PYTHONPATH so that it imports the very ahpsim
    this suite runs (same sources, same compiled ``_core``).  An editable install keeps ``_core`` outside
    the package directory; then the package is mirrored under ``tmp`` by symlinks, ``_core`` included."""
    import ahpsim
    from ahpsim import _core

    pkg = Path(ahpsim.__file__).resolve().parent
    core = Path(_core.__file__).resolve()
    if core.parent == pkg:
        return str(pkg.parent)
    shim = tmp / "pythonpath" / "ahpsim"
    shim.mkdir(parents=True)
    for entry in pkg.iterdir():
        if not entry.name.startswith("_core.") or entry.suffix == ".pyi":
            (shim / entry.name).symlink_to(entry)
    (shim / core.name).symlink_to(core)
    return str(shim.parent)


def bench_external(name: str, quick: bool, timeout: float) -> dict[str, Any]:
    script, interp, full_args, quick_args, out_flag = EXTERNAL[name]
    path = HERE / script
    if not path.exists():
        return {"status": "not available", "error": f"{path.name} is not in benchmarks/"}
    if interp == "self":
        py = sys.executable
    else:
        py = str(ROOT / interp / "bin" / "python")
        if not os.path.exists(py):
            return {"status": "not available", "error": f"{interp} (its peers' virtual environment) not found"}
    print(f"[{name}] {script}", flush=True)
    with tempfile.TemporaryDirectory(prefix=f"ahpsim-bench-{name}-") as tmp:
        env = dict(os.environ)
        pkg_root = _importable_ahpsim(Path(tmp))
        env["PYTHONPATH"] = os.pathsep.join([pkg_root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        out_file = Path(tmp) / f"{name}.json"
        args = [py, str(path), *(quick_args if quick else full_args)]
        if out_flag:
            args += [out_flag, str(out_file)]
        t0 = time.perf_counter()
        try:
            p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, cwd=str(ROOT))
        except subprocess.TimeoutExpired:
            return {"status": "timeout", "timeout_s": timeout, "command": args[1:]}
        wall = time.perf_counter() - t0
        res = None
        if out_file.exists():
            try:
                res = json.loads(out_file.read_text())
            except ValueError:
                res = None
        if res is None:
            res = _last_json(p.stdout)
    if p.returncode != 0 or not isinstance(res, dict):
        return {"status": "failed", "returncode": p.returncode, "command": args[1:],
                "error": (p.stderr or p.stdout)[-3000:]}
    if res.get("error"):
        return {"status": "failed", "error": res["error"], "result": res, "command": args[1:]}
    if res.get("failed"):  # some variants of the script failed: never report a ratio without them
        first = next(iter(res["failed"].items()))
        return {"status": "failed", "error": f"{len(res['failed'])} variant(s) failed, e.g. {first[0]}: {first[1]}",
                "result": res, "command": args[1:]}
    cmd = [os.path.relpath(a, ROOT) if os.path.isabs(a) and a.startswith(str(ROOT)) else a for a in args[1:]]
    return {"status": "ok", "process_wall_s": wall, "command": cmd, "result": res}


def _external_summary(name: str, res: dict[str, Any]) -> str:
    """One line of the markdown table for an external benchmark's JSON (known shapes, else its ratios)."""
    try:
        if name == "inference":
            return "; ".join(f"batch {r['batch']}: kernel {r['kernel_samples_per_s']:.0f} vs torch "
                             f"{r['torch_samples_per_s']:.0f} samples/s = {r['ratio']:.1f}x" for r in res["runs"])
        if name == "loihi":
            return "; ".join(f"{r['n']:,} LIF: {r['speedup_per_step']:.0f}x Lava per step, spikes "
                             f"{'identical' if r.get('identical_spikes') else 'DIFFER'}" for r in res["results"])
        if name == "train" and "speedup_vs_fastest_peer" in res:
            return f"{res['speedup_vs_fastest_peer']:.2f}x the fastest peer ({res.get('fastest_peer', '?')})"
    except (KeyError, TypeError, ValueError):
        pass
    return "; ".join(f"{n} = {x:.3g}" for n, x in _ratios(res)[:6])


def _ratios(obj: Any, prefix: str = "", depth: int = 0) -> list[tuple[str, float]]:
    """Scalar entries whose key says ratio/speedup/x_faster (for the summary table of external benches)."""
    out: list[tuple[str, float]] = []
    if depth > 4:
        return out
    if isinstance(obj, dict):
        for k, v in obj.items():
            key = f"{prefix}{k}"
            if isinstance(v, (int, float)) and not isinstance(v, bool) and any(
                    s in str(k).lower() for s in ("ratio", "speedup", "faster", "times")):
                out.append((key, float(v)))
            elif isinstance(v, (dict, list)):
                out.extend(_ratios(v, key + ".", depth + 1))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:6]):
            out.extend(_ratios(v, f"{prefix}{i}.", depth + 1))
    return out


# ------------------------------------------------------------------------------------- reporting
def _fmt(x: Any, spec: str = ".3g") -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return format(x, spec)
    return str(x)


def markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [f"# ahpsim benchmark suite{' (QUICK: harness check, timings meaningless)' if res['quick'] else ''}", "",
             f"{m['date_utc']} UTC; ahpsim {m['ahpsim']} (commit {m['git_commit']}); {m['cpu']}, {m['cpus']} CPUs, "
             f"{_fmt(m['memory_gb'], '.0f')} GB; {m['platform']}; Python {m['python']}, numpy {m['numpy']}; "
             f"load average at start {_fmt(m['load_average_at_start'] and m['load_average_at_start'][0], '.2f')}; "
             f"suite wall time {res['wall_s'] / 60:.1f} min.", ""]
    b = res["benchmarks"].get("brunel")
    if b:
        p = b["params"]
        lines += [f"## 1. Brunel balanced network: {p['n']:,} LIF, {p['n'] * (p['c_e'] + p['c_i']):,} synapses, "
                  f"dt 1 ms, {b['biological_s']:g} s, one thread", "",
                  "| simulator | version | build s | sim s | syn events/s | rate Hz (E / I) | network MB | "
                  "ahpsim speed-up | rate vs ahpsim |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name, r in b["results"].items():
            if r.get("status") != "ok":
                lines.append(f"| {name} | - | - | - | - | - | - | - | {r.get('status')}: "
                             f"{str(r.get('error', '')).strip().splitlines()[-1][:80] if r.get('error') else ''} |")
                continue
            c = b["comparisons"].get(name, {})
            sp = f"{c['speedup_wall']:.1f}x" if c else "1"
            agree = (f"{100 * c['rate_rel_diff']:+.1f}% ({'agrees' if c['rates_agree'] else 'DIFFERS'})" if c else "-")
            lines.append(f"| {name} | {r.get('version', '-')} | {r['build_s']:.2f} | {r['wall_s']:.3f} | "
                         f"{r['syn_events_per_s']:.3g} | {r['rate_hz']:.2f} ({r['rate_hz_exc']:.2f} / {r['rate_hz_inh']:.2f}) | "
                         f"{_fmt(r.get('network_memory_mb'), '.0f')} | {sp} | {agree} |")
        lines += ["", f"Rates agree when within {100 * b['rate_tolerance']:.0f}% of ahpsim's. {b['semantics']}",
                  "Every simulator: the median wall time of 3 consecutive 1 s runs of its network after a warm-up "
                  f"({b['warmup_steps']} steps; Brian2's code generation happens there), rate over all 3. Network memory: ahpsim "
                  "RSS growth across build + runs in the suite's process; peers peak RSS minus RSS after import.", ""]
    s = res["benchmarks"].get("scaling")
    if s:
        lines += ["## 2. Scaling (ahpsim, Brunel network, J = 0.5 mV at every size)", "",
                  "| neurons | in-degree | synapses | threads | build s | bytes/synapse | rate Hz | sim s / bio s | "
                  "syn events/s | peak RSS MB |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in s["runs"]:
            if r.get("status") != "ok":
                lines.append(f"| {r['neurons']:,} | {r['indegree']} | - | {r['threads']} | {r.get('status')} |"
                             " | | | | |")
                continue
            lines.append(f"| {r['neurons']:,} | {r['indegree']:,} | {r['synapses']:,} | {r['threads']} | "
                         f"{r['build_s']:.2f} | {r['bytes_per_synapse']:.2f} | {r['rate_hz']:.2f} | "
                         f"{r['realtime_factor']:.3f} | {r['syn_events_per_s']:.3g} | {r['max_rss_mb']:.0f} |")
        lines.append("")
    ext = [(k, v) for k, v in res["benchmarks"].items() if k in EXTERNAL]
    if ext:
        lines += ["## 3-5. Benchmarks of other modules", "", "| benchmark | script | status | ratios reported |",
                  "|---|---|---|---|"]
        for k, v in ext:
            rat = _external_summary(k, v.get("result", {})) if v["status"] == "ok" \
                else str(v.get("error", "")).strip().splitlines()[-1][:120] if v.get("error") else ""
            lines.append(f"| {k} | {EXTERNAL[k][0]} | {v['status']} | {rat or 'see suite.json'} |")
        lines.append("")
    return "\n".join(lines)


def plot(res: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    b = res["benchmarks"].get("brunel")
    if b:
        ok = [(k, r) for k, r in b["results"].items() if r.get("status") == "ok"]
        axes[0].bar([k for k, _ in ok], [r["realtime_factor"] for _, r in ok], color=["#1f77b4", "#ff7f0e", "#2ca02c"][:len(ok)])
        axes[0].set_yscale("log")
        axes[0].set_ylabel("wall s per biological s (1 thread)")
        axes[0].set_title(f"Brunel {b['params']['n']:,} LIF", fontsize=9)
    s = res["benchmarks"].get("scaling")
    if s:
        for th, mk in ((1, "o-"), (2, "s--")):
            for k in sorted({r["indegree"] for r in s["runs"] if r.get("status") == "ok"}):
                rs = sorted([r for r in s["runs"] if r.get("status") == "ok" and r["threads"] == th
                             and r["indegree"] == k], key=lambda r: r["synapses"])
                if rs:
                    axes[1].plot([r["synapses"] for r in rs], [r["syn_events_per_s"] for r in rs], mk,
                                 label=f"in-degree {k}, {th} thread{'s' if th > 1 else ''}")
        axes[1].set_xscale("log")
        axes[1].set_yscale("log")
        axes[1].set_xlabel("synapses")
        axes[1].set_ylabel("synaptic events / s")
        axes[1].legend(fontsize=7)
        axes[1].set_title("ahpsim scaling", fontsize=9)
    fig.suptitle(f"ahpsim benchmarks, {res['machine']['cpu']}, {res['machine']['date_utc'][:10]}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------------ main
def run(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the harness only (CI smoke test)")
    ap.add_argument("--only", default=",".join(ALL), help=f"comma-separated subset of {','.join(ALL)}")
    ap.add_argument("--peers", default="nest,brian2", help="peers of benchmark 1 ('' for none)")
    ap.add_argument("--install-peers", action="store_true", help="create missing peer venvs from PyPI first")
    ap.add_argument("--out-dir", default=None, help="default: benchmarks/results (full), a temporary directory (quick)")
    ap.add_argument("--timeout", type=real_in(0), default=None, help="per subprocess, seconds (default 900 full, 300 quick)")
    args = ap.parse_args(argv)
    only = [x for x in args.only.split(",") if x]
    bad = [x for x in only if x not in ALL]
    if bad:
        ap.error(f"unknown benchmark(s) {bad}; choose from {ALL}")
    peers = [x for x in args.peers.split(",") if x]
    for x in peers:
        if x not in PEERS:
            ap.error(f"unknown peer {x!r}; choose from {sorted(PEERS)}")
    timeout = args.timeout or (300.0 if args.quick else 900.0)
    out_dir = Path(args.out_dir) if args.out_dir else (Path(tempfile.mkdtemp(prefix="ahpsim-bench-quick-"))
                                                        if args.quick else RESULTS)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    res: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "suite": "ahpsim-benchmarks", "quick": args.quick,
                           "machine": machine_info(), "installs": {}, "benchmarks": {}}
    if args.install_peers:
        for x in peers:
            res["installs"][x] = install_peer(x)
            print(f"[install] {x}: {res['installs'][x]}", flush=True)
        for name in only:
            if name in EXTERNAL_VENVS:
                venv, python, packages = EXTERNAL_VENVS[name]
                res["installs"][venv] = install_venv(venv, python, packages)
                print(f"[install] {venv}: {res['installs'][venv]}", flush=True)
    for name in only:
        if name == "brunel":
            res["benchmarks"]["brunel"] = bench_brunel(args.quick, peers, timeout)
        elif name == "scaling":
            res["benchmarks"]["scaling"] = bench_scaling(args.quick, timeout)
        else:
            res["benchmarks"][name] = bench_external(name, args.quick, timeout)
            print(f"  {name}: {res['benchmarks'][name]['status']}", flush=True)
    res["wall_s"] = time.perf_counter() - t0
    (out_dir / "suite.json").write_text(json.dumps(res, indent=1, default=float))
    (out_dir / "suite.md").write_text(markdown(res))
    png = plot(res, out_dir / "suite.png")
    print(markdown(res))
    print(f"wrote {out_dir / 'suite.json'}, {out_dir / 'suite.md'}" + (f", {png}" if png else ""))
    res["out_dir"] = str(out_dir)
    return res


def main(argv: list[str] | None = None) -> int:
    run(argv)
    return 0


def validate(res: dict[str, Any]) -> list[str]:
    """Schema check of a suite result; returns the problems found (empty when valid)."""
    errs = []
    for k in ("schema_version", "suite", "quick", "machine", "benchmarks", "wall_s"):
        if k not in res:
            errs.append(f"missing top-level key {k!r}")
    for k in ("cpu", "cpus", "python", "numpy", "ahpsim", "date_utc"):
        if k not in res.get("machine", {}):
            errs.append(f"machine lacks {k!r}")
    b = res.get("benchmarks", {}).get("brunel")
    if b is not None:
        a = b.get("results", {}).get("ahpsim", {})
        for k in ("wall_s", "build_s", "syn_events", "syn_events_per_s", "rate_hz", "bytes_per_synapse", "synapses"):
            if not isinstance(a.get(k), (int, float)):
                errs.append(f"brunel.ahpsim.{k} missing or not a number")
        for name, r in b.get("results", {}).items():
            if r.get("status") not in ("ok", "not installed", "failed", "timeout"):
                errs.append(f"brunel.{name}: bad status {r.get('status')!r}")
            if r.get("status") != "ok" and not r.get("error") and r.get("status") != "timeout":
                errs.append(f"brunel.{name}: status {r.get('status')} without an error message")
        for name, c in b.get("comparisons", {}).items():
            for k in ("speedup_wall", "rate_rel_diff", "rates_agree"):
                if k not in c:
                    errs.append(f"brunel.comparisons.{name} lacks {k}")
    s = res.get("benchmarks", {}).get("scaling")
    if s is not None:
        for r in s.get("runs", []):
            if r.get("status") == "ok":
                for k in ("neurons", "indegree", "threads", "synapses", "bytes_per_synapse", "build_s", "syn_events_per_s"):
                    if not isinstance(r.get(k), (int, float)):
                        errs.append(f"scaling run lacks {k}")
    for k in EXTERNAL:
        v = res.get("benchmarks", {}).get(k)
        if v is not None and v.get("status") not in ("ok", "not available", "failed", "timeout"):
            errs.append(f"{k}: bad status {v.get('status')!r}")
    return errs


if __name__ == "__main__":
    raise SystemExit(main())
