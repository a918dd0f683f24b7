"""Training-step throughput (forward + loss + backward) of the paper's sMNIST LSNN in ``ahpsim.torch``
against snnTorch and Norse built the same way, in one process, one run.

Network (all frameworks): 80 input channels (threshold-crossing spikes, 5% density), 240 recurrent
spiking neurons with all-to-all recurrent weights (delay 1), membrane tau 20 steps, threshold 1,
reset to zero as in the paper's network (``make_task("smnist")`` trains it so; ``--reset subtract``: by
subtraction, except Norse, which resets to v_reset = 0 only), 10 leaky readouts (tau 20), cross-entropy
on the readout at the last step; batch 64, 840 steps (sMNIST), float32, CPU, ``torch.set_num_threads``.
Variants: ahpsim.torch 140 LIF + 100 AHP (the paper; also with 2 threads, and with the torch-operation
BPTT that ahpsim used before its C++ backward), 140 LIF + 100 ALIF, 240 LIF; snnTorch 240 ``RLeaky``
(all-to-all) + ``Leaky`` readout (no reset); Norse 240 ``LIFRecurrent`` (synaptic decay set to one step)
and 240 ``LSNNRecurrent`` (adaptive threshold, Bellec's LSNN) + ``LI`` readout, its weights initialised
like the others' and scaled to its membrane's input gain (its defaults leave the network silent).
Spikes per neuron per step are reported for every variant.  Repetitions are
interleaved so that load from other processes hits every framework alike, each timed step right after an
untimed one of the same variant (steady state, as in training); the median is reported.
The work of ahpsim's spike-sparse BPTT grows with the firing rate, that of the dense peers does not:
``--root DATA`` feeds every framework the code of real MNIST digits instead of random spikes, and
``--weights CHECKPOINT`` adds ahpsim's trained network (e.g. ``benchmarks/runs/smnist-ahp/best.pt``, as
training sees it: about 0.02 spikes per neuron per step) on one and two threads. For ahpsim's variants the
wall time of a step is split into its C++ forward pass, backward pass, weight gradients (``delayed_outer``:
the readout's; since 2026-12-02 the input and recurrent weights' gradients of networks with uniform
delays, all of these, are computed inside the backward pass) and the rest.

Run it in the peers' virtual environment (torch 2.13.0 CPU + snntorch + norse), with ahpsim importable
there; the suite does both (it puts its own ahpsim build on the path):

    PYTHONPATH=python .venv/bin/python -m benchmarks --only train --install-peers
    PYTHONPATH=<dir holding a built ahpsim> .venv-peers/bin/python benchmarks/bench_train_step_vs_peers.py --reps 5 \
        --root ../shared/data --weights benchmarks/runs/smnist-ahp/best.pt
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

# torch's OpenMP workers wait passively (as `python -m ahpsim train` sets it, before torch is imported):
# spinning workers hold the cores that ahpsim's kernel threads need; the peers run one thread (no workers)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn.functional as tnf  # noqa: E402
try:  # run as a script (benchmarks/ on sys.path) or imported as benchmarks.<name>
    from _args import int_at_least
except ImportError:
    from benchmarks._args import int_at_least


TRAINED = "ahpsim.torch, the trained network of --weights"
TRAINED_2 = "ahpsim.torch, the trained network of --weights, 2 threads"


class KernelClock:
    """Wall time of a training step spent in ahpsim's C++ kernels (``_core.layer_forward``,
    ``layer_backward`` (with uniform delays the W_in / W_rec gradients too), ``delayed_outer``: the other
    weight gradients), the rest being Python, torch's
    operations and the optimizer-free remainder of the step. Wraps the module functions while alive."""

    NAMES = {"layer_forward": "forward", "layer_backward": "backward", "delayed_outer": "weight_gradients"}

    def __init__(self):
        try:
            from ahpsim import _core
        except ImportError:  # ahpsim not importable: nothing to split
            self._core, self._orig = None, {}
            return
        self._core = _core
        self._orig = {n: getattr(_core, n) for n in self.NAMES}
        self.acc = dict.fromkeys(self.NAMES.values(), 0.0)
        for n, f in self._orig.items():
            setattr(_core, n, self._timed(f, self.NAMES[n]))

    def _timed(self, f, part):
        def call(*a, **k):
            t0 = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                self.acc[part] += time.perf_counter() - t0
        return call

    def reset(self):
        if self._core is not None:
            self.acc = dict.fromkeys(self.NAMES.values(), 0.0)

    def split(self, total: float) -> dict:
        """This step's seconds per part, and ``rest`` = ``total`` minus the kernels."""
        if self._core is None:
            return {"rest": total}
        return {**self.acc, "rest": total - sum(self.acc.values())}

    def close(self):
        for n, f in self._orig.items():
            setattr(self._core, n, f)


def ahpsim_factory(n_lif, n_ahp=0, n_alif=0, legacy_bptt=False, threads=None, weights=None, reset="zero"):
    """``legacy_bptt``: the BPTT of torch operations (a per-step Python loop) that ahpsim used before its
    C++ backward (2026-11-30), reached through a surrogate the C++ backward does not take; ``threads``:
    torch / kernel threads for this variant only; ``weights``: a checkpoint whose trained network is
    used instead of a fresh one."""
    from ahpsim.torch import functional as F
    from ahpsim.torch.modules import AHP_BETA_PAPER, SpikingRNN

    class LegacyTriangle(F.Triangle):  # the same function; only the code path differs
        pass

    def make(n_in, n_out):
        if weights is not None:  # a trained network (its own configuration: reset, surrogate, ...)
            from ahpsim.torch import load_model
            m = load_model(weights)
            if (m.n_in, m.n_out) != (n_in, n_out):
                raise ValueError(f"--weights: a network of {n_in} inputs and {n_out} outputs expected, got "
                                 f"{m.n_in} and {m.n_out}")
        else:
            m = SpikingRNN(n_in, n_out, n_lif=n_lif, n_ahp=n_ahp, n_alif=n_alif, tau_m=20.0, tau_ahp=700.0,
                           beta_ahp=AHP_BETA_PAPER, tau_a=700.0, beta_alif=AHP_BETA_PAPER * 20.5, tau_out=20.0,
                           w_in_scale=3.0, seed=0, surrogate=LegacyTriangle(0.3) if legacy_bptt else None,
                           reset=reset)
        inner = make_step(m)
        if threads is None:
            return m, inner

        def step(x, lab):
            old = torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                return inner(x, lab)
            finally:
                torch.set_num_threads(old)

        return m, step

    def make_step(m):

        def step(x, lab):
            out = m(x)
            loss = tnf.cross_entropy(out.y[:, -1], lab)
            m.zero_grad(set_to_none=True)
            loss.backward()
            return float(out.z.detach().mean())

        return step

    return make


def snntorch_factory(reset="zero"):
    import snntorch as snn

    def make(n_in, n_out, n_rec=240):
        alpha = math.exp(-1.0 / 20.0)
        fc_in = torch.nn.Linear(n_in, n_rec, bias=False)
        torch.nn.init.normal_(fc_in.weight, 0.0, 3.0 / math.sqrt(n_in))
        rlif = snn.RLeaky(beta=alpha, linear_features=n_rec, all_to_all=True, threshold=1.0,
                          reset_mechanism=reset)
        fc_out = torch.nn.Linear(n_rec, n_out)
        readout = snn.Leaky(beta=alpha, reset_mechanism="none")
        params = list(fc_in.parameters()) + list(rlif.parameters()) + list(fc_out.parameters())

        def step(x, lab):
            x_tm = x.float().transpose(0, 1)
            # input currents of all steps in one product; unbind (not cur[t]) so that the backward pass
            # stacks the per-step gradients once instead of filling a [T, B, N] tensor per step
            cur = fc_in(x_tm).unbind(0)
            spk, mem = rlif.reset_mem()
            mem_o = readout.reset_mem()
            spikes = []
            for t in range(x_tm.shape[0]):
                spk, mem = rlif(cur[t], spk, mem)
                spikes.append(spk)
                _, mem_o = readout(fc_out(spk), mem_o)
            loss = tnf.cross_entropy(mem_o, lab)
            for p in params:
                p.grad = None
            loss.backward()
            return float(torch.stack(spikes).detach().mean())

        return (fc_in, rlif, fc_out), step

    return make


def norse_factory(kind):
    import norse.torch as norse

    def make(n_in, n_out, n_rec=240):
        if kind == "lif":
            p = norse.LIFParameters(tau_syn_inv=torch.as_tensor(1000.0), tau_mem_inv=torch.as_tensor(50.0),
                                    v_th=torch.as_tensor(1.0), v_reset=torch.as_tensor(0.0))
            rec = norse.LIFRecurrent(n_in, n_rec, p=p, dt=1e-3)
        else:
            p = norse.LSNNParameters(tau_syn_inv=torch.as_tensor(1000.0), tau_mem_inv=torch.as_tensor(50.0),
                                     tau_adapt_inv=torch.as_tensor(1.0 / 700.0), v_th=torch.as_tensor(1.0),
                                     v_reset=torch.as_tensor(0.0), beta=torch.as_tensor(0.756))
            rec = norse.LSNNRecurrent(n_in, n_rec, p=p, dt=1e-3)
        # Norse's default weights leave this network silent (its membrane takes dt * tau_mem_inv = 1/20 of
        # the current per step); the initialisation of the other frameworks, scaled by that factor, makes
        # it spike at a rate like theirs, so that every framework trains a spiking network.
        gain = 1.0 / (1e-3 * 50.0)
        with torch.no_grad():
            rec.input_weights.normal_(0.0, 3.0 * gain / math.sqrt(n_in))
            rec.recurrent_weights.normal_(0.0, gain / math.sqrt(n_rec))
        fc_out = torch.nn.Linear(n_rec, n_out)
        li = norse.LI(p=norse.LIParameters(tau_syn_inv=torch.as_tensor(1000.0), tau_mem_inv=torch.as_tensor(50.0)),
                      dt=1e-3)
        params = list(rec.parameters()) + list(fc_out.parameters())

        def step(x, lab):
            x_tm = x.float().transpose(0, 1)
            z, _ = rec(x_tm)
            y, _ = li(fc_out(z))
            loss = tnf.cross_entropy(y[-1], lab)
            for q in params:
                q.grad = None
            loss.backward()
            return float(z.detach().mean())

        return (rec, fc_out, li), step

    return make


def cpu_caches() -> dict:
    """The CPU's model name and cache sizes where Linux tells them: the ratios against the dense peers
    depend on them (ahpsim's spike-sparse passes are bound by memory traffic, the peers' by arithmetic)."""
    out = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                out["cpu_model"] = line.split(":", 1)[1].strip()
                break
        for idx in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
            level, kind = (idx / "level").read_text().strip(), (idx / "type").read_text().strip()
            if kind != "Instruction":
                out[f"L{level}_cache"] = (idx / "size").read_text().strip()
    except OSError:
        pass
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int_at_least(1), default=64)
    ap.add_argument("--steps", type=int_at_least(1), default=840)
    ap.add_argument("--threads", type=int_at_least(1), default=1)
    ap.add_argument("--reps", type=int_at_least(1), default=3)
    ap.add_argument("--root", default=None,
                    help="MNIST folder: the input is the threshold-crossing code of the first --batch training "
                         "digits (as training feeds it; --steps is then 840) instead of random spikes at 5 %%")
    ap.add_argument("--weights", default=None, metavar="CHECKPOINT",
                    help="also time the trained network of CHECKPOINT (e.g. benchmarks/runs/smnist-ahp/best.pt), "
                         "on one and two threads")
    ap.add_argument("--reset", choices=["zero", "subtract"], default="zero",
                    help="reset of the fresh networks (default: to zero, the paper's network); Norse resets to "
                         "zero in either case")
    ap.add_argument("--out", default="benchmarks/results/train_step_vs_peers.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.weights is not None:
        if not Path(args.weights).is_file():
            ap.error(f"--weights: no such file: {args.weights}")
        from ahpsim.torch import load_model
        try:
            trained = load_model(args.weights)
        except Exception:  # one line, not a traceback (torch's unpickling message runs to a page)
            ap.error(f"--weights: {args.weights} is not an ahpsim.torch checkpoint")
        if (getattr(trained, "n_in", None), getattr(trained, "n_out", None)) != (80, 10):
            ap.error(f"--weights: expected a SpikingRNN of 80 inputs and 10 outputs (sMNIST), got "
                     f"{type(trained).__name__} with n_in={getattr(trained, 'n_in', None)}, "
                     f"n_out={getattr(trained, 'n_out', None)}")
    if args.root is not None:
        from ahpsim import datasets as D
        try:
            images, labels = D.load_mnist(args.root, "train", download=False, progress=False)
        except (OSError, ValueError) as e:
            ap.error(f"--root: {e}")
        if args.batch > len(labels):
            ap.error(f"--batch: at most {len(labels)} with --root")
        x = torch.from_numpy(D.threshold_crossing_encode(images[: args.batch].reshape(args.batch, 784)))
        lab = torch.from_numpy(labels[: args.batch].astype("int64"))
        args.steps = x.shape[1]
    else:
        x = torch.rand(args.batch, args.steps, 80, generator=torch.Generator().manual_seed(0)) < 0.05
        lab = torch.randint(0, 10, (args.batch,), generator=torch.Generator().manual_seed(1))

    candidates = {
        "ahpsim.torch 140 LIF + 100 AHP (paper)": lambda: ahpsim_factory(140, n_ahp=100, reset=args.reset),
        "ahpsim.torch 140 LIF + 100 AHP, 2 threads": lambda: ahpsim_factory(140, n_ahp=100, threads=2,
                                                                             reset=args.reset),
        "ahpsim.torch 140 LIF + 100 AHP, torch-operation BPTT (before 2026-11-30)":
            lambda: ahpsim_factory(140, n_ahp=100, legacy_bptt=True, reset=args.reset),
        "ahpsim.torch 140 LIF + 100 ALIF": lambda: ahpsim_factory(140, n_alif=100, reset=args.reset),
        "ahpsim.torch 240 LIF": lambda: ahpsim_factory(240, reset=args.reset),
        "snnTorch 240 RLeaky (all-to-all)": lambda: snntorch_factory(args.reset),
        "Norse 240 LIFRecurrent": lambda: norse_factory("lif"),
        "Norse 240 LSNNRecurrent (ALIF)": lambda: norse_factory("lsnn"),
    }
    if args.weights is not None:
        candidates[TRAINED] = lambda: ahpsim_factory(0, weights=args.weights)
        candidates[TRAINED_2] = lambda: ahpsim_factory(0, weights=args.weights, threads=2)
    versions = {"torch": torch.__version__}
    for mod in ("snntorch", "norse"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception as e:  # report a peer that is not installed, never a made-up figure
            versions[mod] = f"not available: {type(e).__name__}: {e}"
    steps = {}
    errors = {}
    for name, fac in candidates.items():
        try:
            _, step = fac()(80, 10)
            step(x, lab)  # warm-up
            steps[name] = step
        except Exception as e:
            errors[name] = f"{type(e).__name__}: {e}"
            print(f"{name}: FAILED {errors[name]}", flush=True)
    times = {n: [] for n in steps}
    cpu = {n: [] for n in steps}
    rates = {}
    kernels = KernelClock()
    parts = {n: [] for n in steps if n.startswith("ahpsim")}
    for r in range(args.reps):
        for name, step in steps.items():
            # an untimed step first: the timed one then finds the caches as the previous step of the same
            # training left them, not as another framework did (the step run right after Norse was
            # 1.5-2x slower in its C++ forward pass, whichever ahpsim variant it was)
            step(x, lab)
            kernels.reset()
            t0, c0 = time.perf_counter(), time.process_time()
            rates[name] = step(x, lab)
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
            if name in parts:
                parts[name].append(kernels.split(times[name][-1]))
            print(f"rep {r}: {name}: {times[name][-1]:.3f} s wall, {cpu[name][-1]:.3f} s CPU", flush=True)
    kernels.close()
    # The machine is shared: the CPU time of this (single-threaded) process is the robust measure of the
    # work per training step; wall-clock medians are reported beside it.
    wall_med = {n: statistics.median(t) for n, t in times.items()}
    med = {n: statistics.median(t) for n, t in cpu.items()}
    two = "ahpsim.torch 140 LIF + 100 AHP, 2 threads"
    for n in (two, TRAINED_2):
        if n in wall_med:  # CPU time counts both threads: two-thread variants are measured by wall time
            med[n] = wall_med[n]
    ours = med.get("ahpsim.torch 140 LIF + 100 AHP (paper)")
    trained = med.get(TRAINED)
    legacy = med.get("ahpsim.torch 140 LIF + 100 AHP, torch-operation BPTT (before 2026-11-30)")
    peers = {n: t for n, t in med.items() if not n.startswith("ahpsim")}
    fastest_peer = min(peers, key=peers.get) if peers else None
    res = {
        "config": {"batch": args.batch, "steps": args.steps, "threads": args.threads, "reps": args.reps,
                   "n_in": 80, "n_rec": 240, "n_out": 10, "dtype": "float32",
                   "input": ("threshold-crossing code of the first MNIST training digits" if args.root
                             else "random spikes, 5 % of channels per step"),
                   "weights": args.weights, "reset": args.reset, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                   "timing": "each timed step right after an untimed step of the same variant"},
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine(), **cpu_caches()},
        "versions": versions,
        "median_cpu_s_per_train_step": med,
        "median_wall_s_per_train_step": wall_med,
        "all_cpu_s": cpu,
        "all_wall_s": times,
        "spike_rate": rates,
        "samples_per_s": {n: args.batch / t for n, t in med.items()},
        "failed": errors,
        "ahpsim_wall_s_per_step_by_part": {
            n: {k: statistics.median(p[k] for p in ps) for k in ps[0]} for n, ps in parts.items() if ps},
        "fastest_peer": fastest_peer,
        "speedup_vs_fastest_peer": (peers[fastest_peer] / ours) if (ours and fastest_peer) else None,
        "speedup_measure": "median CPU seconds per training step (single-threaded process)",
        "speedup_vs_each_peer": {n: t / ours for n, t in peers.items()} if ours else {},
        "speedup_vs_torch_operation_bptt": (legacy / ours) if (ours and legacy) else None,
        "speedup_2_threads_wall": (wall_med["ahpsim.torch 140 LIF + 100 AHP (paper)"] / wall_med[two])
        if two in wall_med and "ahpsim.torch 140 LIF + 100 AHP (paper)" in wall_med else None,
        "trained_speedup_vs_fastest_peer": (peers[fastest_peer] / trained) if (trained and fastest_peer) else None,
        "trained_speedup_vs_torch_operation_bptt": (legacy / trained) if (trained and legacy) else None,
        "trained_speedup_2_threads_wall": (wall_med[TRAINED] / wall_med[TRAINED_2])
        if TRAINED in wall_med and TRAINED_2 in wall_med else None,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.out).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(res, indent=1))
    os.replace(tmp, args.out)
    print(json.dumps({k: res[k] for k in ("median_cpu_s_per_train_step", "median_wall_s_per_train_step", "fastest_peer",
                                          "speedup_vs_fastest_peer", "speedup_vs_torch_operation_bptt",
                                          "speedup_2_threads_wall", "trained_speedup_vs_fastest_peer",
                                          "trained_speedup_vs_torch_operation_bptt",
                                          "trained_speedup_2_threads_wall", "spike_rate",
                                          "ahpsim_wall_s_per_step_by_part")},
                     indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
