"""Plots (matplotlib, the ``plot`` extra). Figures are built with ``matplotlib.figure.Figure`` and saved
or drawn into a given ``Axes``: nothing here changes the caller's matplotlib backend or pyplot state."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

__all__ = ["learning_curve"]


def _matplotlib():
    try:
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("ahpsim.plot needs matplotlib: pip install 'ahpsim[plot]'") from e
    return Figure


def learning_curve(history: Sequence[dict], path=None, *, title: Optional[str] = None, axes=None):
    """Learning curve of a training run: accuracy (training, validation) and loss per epoch, and the
    firing rate (spikes per neuron per step) on a second panel.

    ``history``: the per-epoch records of :class:`ahpsim.torch.Trainer` (``history.json``'s ``epochs``);
    ``path``: where to save a PNG (the figure is returned either way); ``axes``: two matplotlib Axes to
    draw into instead of a new figure. Raises ValueError for an empty history.
    """
    if not history:
        raise ValueError("history: no epochs to plot")
    ep = [h["epoch"] for h in history]
    if axes is None:
        Figure = _matplotlib()
        fig = Figure(figsize=(8.0, 3.2), layout="constrained")
        ax_acc, ax_rate = fig.subplots(1, 2)
    else:
        ax_acc, ax_rate = axes
        fig = ax_acc.figure
    ax_acc.plot(ep, [h["train_acc"] for h in history], "-", color="0.5", label="training (running)")
    if all("val_acc" in h for h in history):
        ax_acc.plot(ep, [h["val_acc"] for h in history], "o-", color="C0", ms=3, label="validation")
        best = max(range(len(history)), key=lambda i: history[i]["val_acc"])
        ax_acc.annotate(f"{history[best]['val_acc']:.4f}", (ep[best], history[best]["val_acc"]),
                        textcoords="offset points", xytext=(0, -14), ha="center", fontsize=8, color="C0")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy")
    ax_acc.grid(alpha=0.3)
    ax_acc.legend(loc="lower right", fontsize=8)
    ax_loss = ax_acc.twinx()
    ax_loss.plot(ep, [h["train_loss"] for h in history], ":", color="C3", label="training loss")
    ax_loss.set_ylabel("training loss", color="C3")
    ax_rate.plot(ep, [h["train_rate"] for h in history], "-", color="C2")
    ax_rate.set_xlabel("epoch")
    ax_rate.set_ylabel("spikes / neuron / step")
    ax_rate.grid(alpha=0.3)
    if title:
        ax_acc.set_title(title, fontsize=9, loc="left")
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    return fig
