"""Batched trials and parameter sweeps on a Dask cluster (``dask.distributed``; the ``dask`` extra).

:func:`map_trials` splits the trials of a run (inference over a data set: one trial per sample) into
chunks, ships the network to every worker once in its saved form (``Network.save``'s ``.npz`` bytes,
which is how an :class:`ahpsim.Network` pickles), runs each chunk from a fresh state on a worker and
returns what ``fn`` extracts, concatenated in trial order. Chunk ``[s, e)`` starts with
``init_state(e - s, first_trial=s)``, so trial ``k`` draws the random streams (Poisson inputs and
drives) of trial ``k`` of one run over all trials: the results equal one process's, whatever the
chunking and the number of workers. :func:`map_params` maps a function over parameter values (seeds,
time constants, ...) in the same way.

Failures: a task that raises is retried ``retries`` times; the trials of a worker that dies are
recomputed on the others by the scheduler (up to ``distributed``'s ``allowed-failures``), so no chunk is
lost, and each chunk's result is gathered once, by position, so none is duplicated.

Without ``client`` a ``LocalCluster`` of ``n_workers`` processes (one thread each) is started for the
call and closed after it; pass ``client=Client("tcp://scheduler:8786")`` for a cluster (see
``docs/distributed.md``).
"""

from __future__ import annotations

import contextlib
import itertools
import os
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

__all__ = ["map_trials", "map_params", "readout_at_end", "spike_counts", "read_spike_files"]

_token = itertools.count()


def readout_at_end(result) -> np.ndarray:
    """The default ``fn`` of :func:`map_trials`: every readout's value at the last step, ``[trials, n]``."""
    return np.asarray(result.readout())[:, -1]


def spike_counts(result) -> np.ndarray:
    """Spikes per neuron of every spiking population side by side, ``[trials, neurons]`` (int64)."""
    return np.concatenate([np.asarray(result.raster(g)).sum(1, dtype=np.int64)
                           for g in result.populations if g.model.spiking], axis=1)


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise ImportError("ahpsim.distributed needs dask.distributed: pip install 'ahpsim[dask]' "
                          "(or pip install 'dask[distributed]')") from None
    return distributed


@contextlib.contextmanager
def _client(client, n_workers: int):
    if client is not None:
        yield client
        return
    distributed = _import_distributed()
    with distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


def _run_chunk(net, inputs: Mapping[str, np.ndarray], start: int, n: int, T: Optional[int], fn, n_threads: int):
    net.reset_state()
    net.init_state(n, first_trial=start)
    res = net.run(T, inputs=dict(inputs), n_threads=n_threads)
    return fn(res)


def _check_int(name: str, v: Any, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    return int(v)


def _concat(parts: list):
    if all(isinstance(p, np.ndarray) for p in parts):
        return np.concatenate(parts, axis=0)
    if all(isinstance(p, dict) for p in parts):
        return {k: _concat([p[k] for p in parts]) for k in parts[0]}
    return [x for p in parts for x in p]


def map_trials(net, inputs: Optional[Mapping[Any, np.ndarray]] = None, *, T: Optional[int] = None,
               n_trials: Optional[int] = None, fn: Callable = readout_at_end, chunk_size: int = 64,
               client=None, n_workers: int = 2, n_threads: int = 1, retries: int = 2, progress: bool = False):
    """Runs ``n_trials`` trials of ``net`` from a fresh state on a Dask cluster, in chunks.

    Parameters
    ----------
    net : ahpsim.Network
        Shipped once to every worker (scattered, in its saved form); left unchanged here.
    inputs : {input group name: array [B, T, n]}, optional
        Per-trial inputs (bool spikes or float values), split along the trial axis. ``[T, n]`` arrays
        (the same for every trial) are sent whole.
    T : int, optional
        Steps per trial (default: from the inputs).
    n_trials : int, optional
        Trials (default: from the inputs).
    fn : callable(SimResult) -> array [trials, ...] | dict of such arrays | list
        What each chunk returns (runs on the worker; must be picklable: a module-level function).
        Default :func:`readout_at_end`.
    chunk_size : int
        Trials per task.
    client : distributed.Client, optional
        The cluster; default a ``LocalCluster`` of ``n_workers`` processes for this call.
    n_threads : int
        Threads per chunk on a worker.
    retries : int
        Retries of a task that raises.

    Returns
    -------
    array, dict of arrays or list
        ``fn``'s results concatenated along the first axis in trial order (dicts key by key, lists
        joined).

    Raises
    ------
    ValueError
        For bad sizes, or inputs whose trial or step counts disagree.
    TypeError
        For a network, ``fn``, inputs or client of the wrong kind.
    ImportError
        Without dask.distributed.
    """
    chunk_size = _check_int("chunk_size", chunk_size, 1)
    n_workers = _check_int("n_workers", n_workers, 1)
    n_threads = _check_int("n_threads", n_threads, 1)
    retries = _check_int("retries", retries, 0)
    if not (hasattr(net, "run") and hasattr(net, "init_state")):
        raise TypeError(f"net: expected an ahpsim.Network, got {type(net).__name__}")
    if not callable(fn):
        raise TypeError(f"fn: expected a function of a SimResult, got {type(fn).__name__}")
    if inputs is not None and not isinstance(inputs, Mapping):
        raise TypeError(f"inputs: expected a dict {{input group name: array}}, got {type(inputs).__name__}")
    if client is not None and not hasattr(client, "submit"):
        raise TypeError(f"client: expected a distributed.Client, got {type(client).__name__} (for a scheduler "
                        "address use Client('tcp://...'))")
    if T is not None:
        T = _check_int("T", T, 1)
    per_trial, shared = {}, {}
    for k, v in (inputs or {}).items():
        key = k if isinstance(k, str) else k.name
        a = np.asarray(v)
        if a.ndim == 3:
            per_trial[key] = a
        elif a.ndim == 2:
            shared[key] = a
        else:
            raise ValueError(f"inputs[{key!r}]: expected [B, T, n] or [T, n], got shape {a.shape}")
    counts = {a.shape[0] for a in per_trial.values()}
    if len(counts) > 1:
        raise ValueError(f"inputs disagree on the number of trials: {sorted(counts)}")
    B = counts.pop() if counts else None
    if n_trials is not None:
        n_trials = _check_int("n_trials", n_trials, 1)
        if B is not None and n_trials != B:
            raise ValueError(f"n_trials = {n_trials} but the inputs hold {B} trials")
        B = n_trials
    if B is None:
        raise ValueError("n_trials is required when no [B, T, n] input gives the number of trials")
    if B == 0:
        raise ValueError("inputs: the trial axis is empty (no trials to run)")
    steps = {a.shape[1] for a in per_trial.values()} | {a.shape[0] for a in shared.values()}
    if T is not None and steps and steps != {T}:
        raise ValueError(f"T = {T} but the inputs have {sorted(steps)} steps")
    if T is None and not per_trial and not shared:
        raise ValueError("T is required when no input gives the number of steps")
    distributed = _import_distributed()
    tok = next(_token)
    with _client(client, n_workers) as c:
        remote_net = c.scatter(net, broadcast=True, hash=False)
        futures = []
        for s in range(0, B, chunk_size):
            e = min(s + chunk_size, B)
            chunk = {k: np.ascontiguousarray(a[s:e]) for k, a in per_trial.items()}
            chunk.update(shared)
            futures.append(c.submit(_run_chunk, remote_net, chunk, s, e - s, T, fn, n_threads,
                                    retries=retries, pure=False, key=f"ahpsim-trials-{id(net)}-{tok}-{s}"))
        if progress:
            distributed.progress(futures)
        parts = c.gather(futures)
    return _concat(parts)


def map_params(fn: Callable, params: Sequence, *, client=None, n_workers: int = 2, retries: int = 2) -> list:
    """``[fn(p) for p in params]`` on a Dask cluster (a parameter sweep: ``fn`` builds and runs a network
    for one seed or parameter set and returns what to keep), in the order of ``params``. ``fn`` must
    be picklable. Failures as in :func:`map_trials`."""
    n_workers = _check_int("n_workers", n_workers, 1)
    retries = _check_int("retries", retries, 0)
    params = list(params)
    if not callable(fn):
        raise TypeError(f"fn: expected a callable, got {type(fn).__name__}")
    if not params:
        return []
    tok = next(_token)
    with _client(client, n_workers) as c:
        futures = [c.submit(fn, p, retries=retries, pure=False, key=f"ahpsim-params-{tok}-{k}")
                   for k, p in enumerate(params)]
        return list(c.gather(futures))


def read_spike_files(stem: Any, n_trials: Optional[int] = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Merges the per-process spike files of a partitioned run (``Network.run(..., spike_file=stem)``):
    ``[(steps, ids)]`` per trial, ordered by step then neuron id, as ``SimResult.spikes(b)`` gives them.

    stem : the path stem given to ``run``; every ``<stem>.rank<r>.spikes`` (r = 0, 1, ...) is read.
    n_trials : number of trials (default: the largest trial index found, plus one).

    Raises FileNotFoundError when no ``<stem>.rank0.spikes`` exists, ValueError for a truncated file."""
    import glob
    import re

    stem = os.fspath(stem)
    files = sorted(glob.glob(glob.escape(stem) + ".rank*.spikes"),
                   key=lambda f: int(re.search(r"\.rank(\d+)\.spikes$", f).group(1)))
    if not files or not files[0].endswith(".rank0.spikes"):
        raise FileNotFoundError(f"no spike files {stem}.rank<r>.spikes (rank 0 first)")
    parts = []
    for f in files:
        raw = np.fromfile(f, dtype="<i8")
        if raw.size % 3:
            raise ValueError(f"{f}: truncated (size not a multiple of 3 int64 values)")
        parts.append(raw.reshape(-1, 3))
    rec = np.concatenate(parts) if parts else np.zeros((0, 3), np.int64)
    B = int(rec[:, 0].max()) + 1 if n_trials is None and len(rec) else int(n_trials or 0)
    out = []
    for b in range(B):
        r = rec[rec[:, 0] == b]
        order = np.lexsort((r[:, 2], r[:, 1]))
        out.append((r[order, 1], r[order, 2].astype(np.uint32)))
    return out

