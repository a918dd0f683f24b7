"""Plots (matplotlib, the ``plot`` extra). Figures are built with ``matplotlib.figure.Figure`` and saved
or drawn into a given ``Axes``: nothing here changes the caller's matplotlib backend or pyplot state."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

__all__ = ["learning_curve", "raster", "rates", "readout_traces", "state_traces", "overflow_summary", "figure"]

_COLORS = ("tab:blue", "tab:red", "tab:green", "tab:purple", "tab:orange", "tab:brown")


def _matplotlib():
    try:
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("ahpsim.plot needs matplotlib: pip install 'ahpsim[plot]'") from e
    return Figure


def figure(rows: int = 1, cols: int = 1, *, figsize=(10.0, 3.0), height_ratios=None, sharex: bool = True):
    """A matplotlib ``Figure`` (not registered with pyplot) and its Axes ``[rows * cols]``."""
    Figure = _matplotlib()
    fig = Figure(figsize=figsize, layout="constrained")
    kw = {"height_ratios": height_ratios} if height_ratios is not None else {}
    axes = fig.subplots(rows, cols, sharex=sharex, squeeze=False, gridspec_kw=kw)
    return fig, list(axes.flat)


def _axes(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    fig, (ax,) = figure(figsize=figsize)
    return fig, ax


def raster(result, trial: int = 0, groups=None, *, ax=None, dt_unit: str = "ms", markersize: float = 2.0):
    """Spike raster of one trial of a :class:`ahpsim.SimResult` (or a Loihi result): one color per
    spiking group, stacked in network order, legend outside the plot. ``groups``: names or groups
    (default: every spiking group). Returns the Axes."""
    fig, ax = _axes(ax, (10.0, 3.5))
    if hasattr(result, "populations"):  # a SimResult
        lookup = result._pop
        if groups is None:
            groups = [g for g in result.populations if g.model.spiking]
    else:  # a LoihiResult: its network's spiking compartment groups
        lookup = lambda name: result._net._cgroup(name, "group")  # noqa: E731
        if groups is None:
            groups = [g for g in result._net.groups if getattr(g, "spiking", False)]
    off = 0
    for k, g in enumerate(groups):
        g = lookup(g) if isinstance(g, str) else g
        st, ids = result.spikes(trial, g)
        kind = getattr(getattr(g, "model", None), "kind", "")
        ax.scatter(st, ids + off, s=markersize, c=_COLORS[k % len(_COLORS)], linewidths=0,
                   label=f"{g.name} ({kind} {g.n})" if kind else f"{g.name} ({g.n})")
        off += g.n
    ax.set_ylim(-0.5, max(off, 1) - 0.5)
    ax.set_ylabel("neuron")
    ax.set_xlabel(f"step ({dt_unit})")
    ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), markerscale=5, fontsize=8, frameon=False)
    return ax


def rates(result, groups=None, *, ax=None, dt_ms: float = 1.0):
    """Firing rate of every spiking group of a result (spikes per neuron per step, and Hz on a second
    axis with ``dt_ms`` per step). Returns the Axes."""
    import numpy as np

    fig, ax = _axes(ax, (6.0, 2.8))
    if groups is None:
        groups = ([g.name for g in result.populations if g.model.spiking] if hasattr(result, "populations")
                  else [g.name for g in result._net.groups if getattr(g, "spiking", False)])
    names = [g if isinstance(g, str) else g.name for g in groups]
    vals = np.array([result.rate(n) for n in names])
    ax.bar(names, vals, color=[_COLORS[k % len(_COLORS)] for k in range(len(names))])
    ax.set_ylabel("spikes / neuron / step")
    sec = ax.secondary_yaxis("right", functions=(lambda r: r * 1000.0 / dt_ms, lambda h: h * dt_ms / 1000.0))
    sec.set_ylabel("Hz")
    return ax


def overflow_summary(net, *, ax=None):
    """Per compartment group of a Loihi network (or a QuantizedNetwork): the fraction of compartment-steps
    whose current wrapped at 24 bits and whose voltage was clipped (``overflows()``, since the state was
    created), on a log scale; an empty plot says "no overflow". Returns the Axes."""
    import numpy as np

    ln = getattr(net, "net", net)
    fig, ax = _axes(ax, (6.0, 2.8))
    ov = ln.overflows()
    steps = max(int(ln.t), 1) * max(int(ln.n_trials), 1)
    names = sorted(ov)
    if not names:
        ax.text(0.5, 0.5, "no overflow", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    sizes = {g.name: g.n for g in ln.groups if hasattr(g, "spiking")}
    x = np.arange(len(names))
    for off, key, color in ((-0.2, "u_wraps", "tab:red"), (0.2, "v_saturations", "tab:orange")):
        frac = [ov[n][key] / (steps * sizes.get(n, 1)) for n in names]
        ax.bar(x + off, frac, width=0.4, color=color, label={"u_wraps": "u wrapped (24 bits)",
                                                               "v_saturations": "v clipped"}[key])
    ax.set_xticks(x, names)
    ax.set_yscale("symlog", linthresh=1e-6)
    ax.set_ylabel("fraction of compartment-steps")
    ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False)
    return ax


def readout_traces(y, *, ax=None, highlight=None, window=None, dt_unit: str = "ms", ylabel: str = "readout y"):
    """Readout traces ``y`` [T, n_out] of one trial; ``highlight``: the class drawn bold (e.g. the true
    label); ``window``: (start, stop) steps shaded and used for the y range (the answer's window, e.g.
    sMNIST's cue). Legend outside the traces. Returns the Axes."""
    import numpy as np

    y = np.asarray(y)
    if y.ndim != 2:
        raise ValueError(f"y: expected [T, n_out], got shape {y.shape}")
    fig, ax = _axes(ax, (10.0, 2.5))
    for k in range(y.shape[1]):
        ax.plot(y[:, k], lw=1.8 if k == highlight else 0.8, label=str(k), color=f"C{k % 10}")
    if window is not None:
        a, b = int(window[0]), int(window[1])
        ax.axvspan(a, b, color="0.92", zorder=-1)
        seg = y[max(a, 0):max(b, a + 1)]
        if seg.size:
            lo, hi = float(seg.min()), float(seg.max())
            pad = 0.1 * (hi - lo or 1.0)
            ax.set_ylim(lo - pad, hi + pad)
    ax.set_ylabel(ylabel)
    ax.set_xlabel(f"step ({dt_unit})" + ("; shaded: answer window" if window is not None else ""))
    ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7, frameon=False,
              title="class" + (" (bold: true)" if highlight is not None else ""), title_fontsize=7)
    return ax


def state_traces(values, *, ax=None, threshold=None, ylabel: str = "v (thresholds)", dt_unit: str = "ms"):
    """State traces [T, n] (a few neurons' voltages or AHP currents of one trial); ``threshold`` draws a
    dashed line. Returns the Axes."""
    import numpy as np

    values = np.asarray(values)
    fig, ax = _axes(ax, (10.0, 2.0))
    ax.plot(values, lw=0.8)
    if threshold is not None:
        ax.axhline(threshold, color="k", lw=0.6, ls="--")
    ax.set_ylabel(ylabel)
    ax.set_xlabel(f"step ({dt_unit})")
    return ax


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
