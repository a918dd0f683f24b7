"""Results of :meth:`ahpsim.Network.run`: spike events per trial, state and readout traces."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ._validation import trial_index

if TYPE_CHECKING:  # pragma: no cover
    from .network import Group, Network

__all__ = ["SimResult"]


class SimResult:
    """What one run recorded. Steps are absolute (counted from the last state reset).

    Spikes are kept as event arrays per trial (``spikes(trial)`` gives ``(steps, neuron_ids)`` with
    global neuron ids); traces are arrays ``[n_trials, T, k]`` handed over from C++ without copies.
    """

    def __init__(self) -> None:
        self.t0 = 0
        self.T = 0
        self.n_trials = 0
        self.dt = 1.0
        self._spike_steps: list[np.ndarray] = []
        self._spike_ids: list[np.ndarray] = []
        self._v = self._aux = self._y = np.zeros((0, 0, 0))
        self._state_groups: list[tuple[Any, np.ndarray]] = []
        self._groups: dict[str, Any] = {}
        self._readout_slices: dict[str, slice] = {}
        self._pops: list[Any] = []

    @classmethod
    def _from_parts(cls, net: "Network", parts: list[dict], t0: int, T: int, B: int,
                    state_groups: list, record_readouts: bool) -> "SimResult":
        r = cls()
        r.t0, r.T, r.n_trials, r.dt = t0, T, B, net.dt
        if len(parts) == 1:
            p = parts[0]
            r._spike_steps, r._spike_ids = list(p["spike_steps"]), list(p["spike_ids"])
            r._v, r._aux, r._y = p["v"], p["aux"], p["y"]
        else:
            r._spike_steps = [np.concatenate([p["spike_steps"][b] for p in parts]) for b in range(B)]
            r._spike_ids = [np.concatenate([p["spike_ids"][b] for p in parts]) for b in range(B)]
            r._v = np.concatenate([p["v"] for p in parts], axis=1)
            r._aux = np.concatenate([p["aux"] for p in parts], axis=1)
            r._y = np.concatenate([p["y"] for p in parts], axis=1)
        r._state_groups = state_groups
        r._pops = net.populations
        r._groups = {g.name: g for g in r._pops}
        if record_readouts:
            off = 0
            for g in r._pops:
                if not g.model.spiking:
                    r._readout_slices[g.name] = slice(off, off + g.n)
                    off += g.n
        return r

    @property
    def populations(self) -> list:
        """The network's populations (groups) at the time of the run."""
        return list(self._pops)

    def __repr__(self) -> str:
        n = sum(s.size for s in self._spike_steps)
        return f"SimResult(trials={self.n_trials}, steps={self.t0}..{self.t0 + self.T}, spikes={n})"

    def _pop(self, group: Any) -> "Group":
        name = group if isinstance(group, str) else getattr(group, "name", None)
        if name not in self._groups:
            raise KeyError(f"no population {group!r} in this result; populations: {sorted(self._groups)}")
        return self._groups[name]

    def _trial(self, trial: Any) -> int:
        return trial_index(trial, self.n_trials)

    # ------------------------------------------------------------------ spikes
    def spikes(self, trial: int = 0, group: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, neuron_ids)`` of one trial, ordered by step then id. With ``group``: local ids."""
        b = self._trial(trial)
        steps, ids = self._spike_steps[b], self._spike_ids[b]
        if group is None:
            return steps, ids
        g = self._pop(group)
        m = (ids >= g.start) & (ids < g.start + g.n)
        return steps[m], (ids[m] - g.start).astype(np.int64)

    def spike_events(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(trial, step, neuron_id)`` of every recorded spike of every trial."""
        trial = np.concatenate([np.full(s.size, b, dtype=np.int64) for b, s in enumerate(self._spike_steps)]) \
            if self.n_trials else np.zeros(0, dtype=np.int64)
        cat = (lambda xs, dt: np.concatenate(xs) if xs else np.zeros(0, dtype=dt))
        return trial, cat(self._spike_steps, np.int64), cat(self._spike_ids, np.uint32)

    def plot_raster(self, trial: int = 0, groups: Any = None, *, ax: Any = None, path: Any = None) -> Any:
        """Spike raster of ``trial`` (:func:`ahpsim.plot.raster`); saved as PNG to ``path`` if given.
        Returns the matplotlib Axes (needs the ``plot`` extra)."""
        from . import plot

        ax = plot.raster(self, trial, groups, ax=ax, dt_unit="ms" if self.dt == 1.0 else f"x {self.dt} ms")
        if path is not None:
            ax.figure.savefig(path, dpi=120)
        return ax

    def raster(self, group: Any = None, trial: int | None = None) -> np.ndarray:
        """Boolean spike raster ``[n_trials, T, n]`` of a population (all neurons when ``group`` is None);
        ``[T, n]`` for one ``trial``."""
        if group is None:
            lo, n = 0, sum(g.n for g in self._pops)
        else:
            g = self._pop(group)
            lo, n = g.start, g.n
        trials = range(self.n_trials) if trial is None else [self._trial(trial)]
        out = np.zeros((len(trials), self.T, n), dtype=bool)
        for i, b in enumerate(trials):
            s, ids = self._spike_steps[b], self._spike_ids[b].astype(np.int64)
            m = (ids >= lo) & (ids < lo + n)
            out[i, s[m] - self.t0, ids[m] - lo] = True
        return out[0] if trial is not None else out

    def spike_counts(self, group: Any = None) -> np.ndarray:
        """Spikes per trial and neuron ``[n_trials, n]``."""
        return self.raster(group).sum(axis=1)

    def rate(self, group: Any = None) -> float:
        """Mean spikes per neuron per step over trials and steps."""
        r = self.raster(group)
        return float(r.mean()) if r.size else 0.0

    def rate_hz(self, group: Any = None) -> float:
        """Mean firing rate in Hz."""
        return self.rate(group) * 1000.0 / self.dt

    # ------------------------------------------------------------------ traces
    def readout(self, group: Any = None) -> np.ndarray:
        """Readout traces ``y`` of a readout population ``[n_trials, T, n]`` (all readouts when None)."""
        if not self._readout_slices:
            raise ValueError("no readout traces: the network has no readout or record_readouts was False")
        if group is None:
            return self._y
        g = self._pop(group)
        if g.name not in self._readout_slices:
            raise ValueError(f"{g.name!r} is not a readout population")
        return self._y[:, :, self._readout_slices[g.name]]

    def state(self, var: str = "v", group: Any = None) -> np.ndarray:
        """Recorded trace of ``v`` or ``aux`` ``[n_trials, T, k]`` (the neurons chosen by record_state)."""
        if var not in ("v", "aux"):
            raise ValueError(f"var must be 'v' or 'aux', got {var!r}")
        arr = self._v if var == "v" else self._aux
        if group is None:
            return arr
        g = self._pop(group)
        off = 0
        for gg, idx in self._state_groups:
            if gg.name == g.name:
                return arr[:, :, off:off + idx.size]
            off += idx.size
        raise ValueError(f"state of {g.name!r} was not recorded (pass record_state=...)")
