"""Losses and regularisers of the paper (LSNN training): readout cross-entropy at the last step or over a
cue window, and firing-rate regularisation towards a target rate."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as tnf

__all__ = ["readout_window", "readout_logits", "readout_cross_entropy", "firing_rate_regularizer", "accuracy",
           "spike_rate", "spike_counts_and_rates", "rate_penalty"]


def readout_window(y: torch.Tensor, window: int = 1, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The readout over the last ``window`` steps of each sequence: [B, window, n_out].

    ``lengths`` (int [B]): sequences end at step ``lengths - 1`` (padding after it is ignored).
    Raises ``ValueError`` unless ``1 <= window <= T``."""
    B, T, _ = y.shape
    if not 1 <= window <= T:
        raise ValueError(f"window must be between 1 and the sequence's {T} steps, got {window}")
    if lengths is None:
        return y[:, T - window:]
    end = lengths.to(device=y.device, dtype=torch.long).clamp(1, T) - 1
    idx = (end[:, None] - torch.arange(window - 1, -1, -1, device=y.device)[None]).clamp(min=0)
    return torch.gather(y, 1, idx[:, :, None].expand(-1, -1, y.shape[2]))


def readout_logits(y: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The answer of the network: the readout at the last (valid) step, [B, n_out] (the paper's rule)."""
    return readout_window(y, 1, lengths)[:, 0]


def readout_cross_entropy(y: torch.Tensor, labels: torch.Tensor, mode: str = "last", window: int = 1,
                          lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Cross-entropy of the readout: ``mode="last"`` at the last step, ``"window"`` averaged over the
    steps of the last ``window`` steps (the cue window), ``"window_mean"`` on the window-mean logits."""
    if mode == "last":
        return tnf.cross_entropy(readout_logits(y, lengths), labels)
    w = readout_window(y, window, lengths)
    if mode == "window":
        B, W, C = w.shape
        return tnf.cross_entropy(w.reshape(B * W, C), labels.repeat_interleave(W))
    if mode == "window_mean":
        return tnf.cross_entropy(w.mean(1), labels)
    raise ValueError(f"unknown readout loss mode {mode!r}")


def spike_rate(z: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Per-neuron firing rate (spikes per step) averaged over batch and (valid) time: [N]."""
    if lengths is None:
        return spike_counts_and_rates(z)[1]
    T = z.shape[1]
    m = (torch.arange(T, device=z.device)[None] < lengths.to(z.device)[:, None]).to(z.dtype)
    return (z * m[:, :, None]).sum((0, 1)) / m.sum().clamp(min=1)


def spike_counts_and_rates(z: torch.Tensor) -> tuple:
    """``(counts, rates)``, both [N]: each neuron's spikes in ``z`` [B, T, N] (exact integers in float up to
    2**24) and the :func:`spike_rate` they give (without lengths)."""
    # sum, then scale the [N] result: the gradient stays one broadcast [N] vector (the layer kernel
    # takes it as such instead of a [B, T, N] tensor)
    counts = z.sum((0, 1))
    return counts, counts * (1.0 / (z.shape[0] * z.shape[1]))


def firing_rate_regularizer(z: torch.Tensor, target_rate: float = 0.02, weight: float = 1.0,
                            lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
    """LSNN's rate regulariser ``weight * sum_j (rate_j - target)^2`` (rates in spikes per step)."""
    return rate_penalty(spike_rate(z, lengths), target_rate, weight)


def rate_penalty(rates: torch.Tensor, target_rate: float = 0.02, weight: float = 1.0) -> torch.Tensor:
    """:func:`firing_rate_regularizer` of per-neuron rates [N] already computed by :func:`spike_rate`."""
    return weight * ((rates - target_rate) ** 2).sum()


@torch.no_grad()
def accuracy(y: torch.Tensor, labels: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> float:
    return (readout_logits(y, lengths).argmax(-1) == labels.to(y.device)).float().mean().item()
