"""Deep R (Bellec, Kappel, Maass & Legenstein, ICLR 2018): training with a fixed number of synapses.

Each rewired weight matrix keeps a fixed sign per potential synapse and a fixed number of active
synapses. After every optimizer step, with ``theta = sign * w`` the synapse's strength,

    theta <- theta - lr * l1 + sqrt(2 lr T) * N(0, 1)         (active synapses only)

active synapses whose ``theta`` became negative are removed (weight 0, mask off) and as many inactive
ones, drawn uniformly, are added with ``theta = 0`` (their optimizer moments reset). The paper's authors
trained their Loihi networks this way to about 20 % connectivity. Masks live in the model
(:class:`SpikingRNN`'s ``in_mask`` / ``rec_mask`` / ``out_mask``), so the exported network has exactly the
active synapses; the random stream is part of the state, so a resumed run rewires as an uninterrupted
one would.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch

from .modules import SpikingRNN

__all__ = ["DeepR"]

_MATRICES = {"w_in": "in_mask", "w_rec": "rec_mask", "w_out": "out_mask"}


class DeepR:
    """Deep R rewiring of ``model``'s weight matrices (``matrices``: any of ``"w_in"``, ``"w_rec"``,
    ``"w_out"``).

    ``connectivity``: the fraction of potential synapses kept active (None: keep the model's current
    masks and counts; a float in (0, 1]: the masks are redrawn at that density, the weights outside them
    zeroed); ``l1``: the L1 pull on the strengths (per unit learning rate); ``temperature``: the noise
    (0: none); ``seed``: the rewiring's random stream. Call :meth:`step` after every optimizer step
    (:class:`Trainer` does, with ``rewiring=``). Raises ValueError for bad arguments.
    """

    def __init__(self, model: SpikingRNN, connectivity: Optional[float] = None, *, l1: float = 1e-4,
                 temperature: float = 0.0, matrices: Sequence[str] = ("w_in", "w_rec", "w_out"), seed: int = 0):
        if not isinstance(model, SpikingRNN):
            raise TypeError(f"model: expected a SpikingRNN, got {type(model).__name__}")
        for m in matrices:
            if m not in _MATRICES:
                raise ValueError(f"matrices: each one of {sorted(_MATRICES)}, got {m!r}")
        if connectivity is not None and not (isinstance(connectivity, (int, float)) and 0 < connectivity <= 1):
            raise ValueError(f"connectivity must be in (0, 1] or None, got {connectivity!r}")
        for name, v in (("l1", l1), ("temperature", temperature)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        self.model, self.matrices = model, tuple(matrices)
        self.l1, self.temperature = float(l1), float(temperature)
        self.gen = torch.Generator().manual_seed(int(seed))
        self.signs = {}
        with torch.no_grad():
            for m in self.matrices:
                w, mask = getattr(model, m), getattr(model, _MATRICES[m])
                allowed = self._allowed(m)
                if connectivity is not None:  # redraw the mask at that density among the allowed entries
                    idx = torch.nonzero(allowed.flatten()).flatten()
                    k = max(1, int(round(connectivity * idx.numel())))
                    keep = idx[torch.randperm(idx.numel(), generator=self.gen)[:k]]
                    new = torch.zeros(mask.numel(), dtype=torch.bool)
                    new[keep] = True
                    mask.copy_(new.view_as(mask))
                # fixed signs: the current weight's, a random one where it is zero
                rand = torch.where(torch.rand(w.shape, generator=self.gen) < 0.5, -1.0, 1.0).to(w.dtype)
                self.signs[m] = torch.where(w != 0, torch.sign(w), rand)
                w.mul_(mask)

    def _allowed(self, m: str) -> torch.Tensor:
        mask = getattr(self.model, _MATRICES[m])
        allowed = torch.ones_like(mask)
        if m == "w_rec" and not self.model._init_kwargs.get("self_connections", False):
            allowed &= ~torch.eye(mask.shape[0], dtype=torch.bool)
        return allowed

    def n_active(self) -> dict:
        """Active synapses per rewired matrix."""
        return {m: int(getattr(self.model, _MATRICES[m]).sum()) for m in self.matrices}

    @torch.no_grad()
    def step(self, optimizer: Optional[torch.optim.Optimizer] = None, lr: Optional[float] = None) -> dict:
        """One rewiring step (after ``optimizer.step()``); ``lr`` defaults to the optimizer's. Returns the
        number of synapses rewired per matrix."""
        if lr is None:
            if optimizer is None:
                raise ValueError("lr: give the learning rate or the optimizer")
            lr = optimizer.param_groups[0]["lr"]
        rewired = {}
        for m in self.matrices:
            w, mask, sign = getattr(self.model, m), getattr(self.model, _MATRICES[m]), self.signs[m]
            theta = sign * w
            noise = torch.randn(w.shape, generator=self.gen, dtype=w.dtype)  # drawn every step: fixed stream
            theta -= lr * self.l1
            if self.temperature > 0:
                theta += math.sqrt(2.0 * lr * self.temperature) * noise
            dead = mask & (theta < 0)
            n_dead = int(dead.sum())
            mask &= ~dead
            theta[~mask] = 0.0
            if n_dead:
                candidates = torch.nonzero((~mask & self._allowed(m)).flatten()).flatten()
                born = candidates[torch.randperm(candidates.numel(), generator=self.gen)[:n_dead]]
                flat = mask.view(-1)
                flat[born] = True
                theta.view(-1)[born] = 0.0
                if optimizer is not None:  # new synapses start without the old moments
                    st = optimizer.state.get(w, {})
                    for key in ("exp_avg", "exp_avg_sq", "momentum_buffer"):
                        if key in st:
                            st[key].view(-1)[born] = 0.0
                            st[key].view(-1)[dead.view(-1)] = 0.0
            w.copy_(sign * theta)
            rewired[m] = n_dead
        return rewired

    def state_dict(self) -> dict:
        return {"signs": {m: s.clone() for m, s in self.signs.items()}, "generator": self.gen.get_state(),
                "l1": self.l1, "temperature": self.temperature, "matrices": list(self.matrices)}

    def load_state_dict(self, state: dict) -> None:
        self.signs = {m: s.clone() for m, s in state["signs"].items()}
        self.gen.set_state(state["generator"])
