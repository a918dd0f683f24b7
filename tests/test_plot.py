"""ahpsim.plot: figures are built without pyplot (the caller's backend stays), the raster shows every
spike of the trial, and the learning curve and readout panels take their data as given."""

from __future__ import annotations

import numpy as np
import pytest

import ahpsim

mpl = pytest.importorskip("matplotlib")


def _result():
    net = ahpsim.Network(seed=0)
    x = net.add_input(5, name="x")
    a = net.add_population(6, ahpsim.LIF(), name="a")
    b = net.add_population(4, ahpsim.AHP(), name="b")
    out = net.add_population(3, ahpsim.Readout(), name="out")
    rng = np.random.default_rng(0)
    net.connect(x, a, rng.normal(1.0, 0.5, (6, 5)))
    net.connect(a, b, rng.normal(0.8, 0.3, (4, 6)))
    net.connect(b, out, rng.normal(0, 1, (3, 4)))
    return net.run(inputs={"x": rng.random((2, 200, 5)) < 0.2})


def test_plots_do_not_touch_the_backend_and_show_every_spike(tmp_path):
    from ahpsim import plot

    before = mpl.get_backend()
    res = _result()
    ax = res.plot_raster(trial=1, path=tmp_path / "r.png")
    assert (tmp_path / "r.png").stat().st_size > 1000
    n_points = sum(len(c.get_offsets()) for c in ax.collections)
    assert n_points == sum(len(res.spikes(1, g)[0]) for g in ("a", "b")) > 20
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["a (LIF 6)", "b (AHP 4)"]
    ax2 = plot.readout_traces(res.readout("out")[0], highlight=1, window=(150, 200))
    assert len(ax2.lines) == 3 and ax2.lines[1].get_linewidth() > ax2.lines[0].get_linewidth()
    y = res.readout("out")[0][150:200]
    lo, hi = ax2.get_ylim()
    assert lo <= y.min() and hi >= y.max() and hi - lo <= 1.3 * (y.max() - y.min()) + 1e-9
    hist = [{"epoch": e, "train_acc": 0.5 + 0.1 * e, "val_acc": 0.55 + 0.1 * e, "train_loss": 1.0 / e,
             "train_rate": 0.02} for e in (1, 2, 3)]
    fig = plot.learning_curve(hist, tmp_path / "lc.png", title="t")
    assert (tmp_path / "lc.png").is_file() and len(fig.axes) == 3
    with pytest.raises(ValueError, match="history: no epochs"):
        plot.learning_curve([])
    with pytest.raises(ValueError, match=r"y: expected \[T, n_out\]"):
        plot.readout_traces(np.zeros(5))
    assert mpl.get_backend() == before


def test_raster_of_a_loihi_result():
    from ahpsim import plot
    from ahpsim.loihi import LoihiNetwork

    net = LoihiNetwork()
    x = net.add_input(4, name="x")
    a = net.add_compartments(6, du=4096, dv=200, vth_mant=10, name="a")
    net.connect(x, a, np.full((6, 4), 200), 0)
    r = net.run(60, inputs={"x": np.random.default_rng(0).random((60, 4)) < 0.3})
    ax = plot.raster(r)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a (6)"]
    assert sum(len(c.get_offsets()) for c in ax.collections) == int(r.raster("a").sum()) > 10


def test_rates_and_overflow_summary(tmp_path):
    """The rate bars equal result.rate; the overflow summary shows the engine's counts as fractions."""
    from ahpsim import plot
    from ahpsim.loihi import LoihiNetwork

    res = _result()
    ax = plot.rates(res)
    assert [p.get_height() for p in ax.patches] == pytest.approx([res.rate("a"), res.rate("b")])
    net = LoihiNetwork()
    x = net.add_input(2, name="x")
    a = net.add_compartments(3, du=4096, dv=0, vth_mant=131071, name="a")  # v only grows: clipped
    net.connect(x, a, np.full((3, 2), 255), 7)
    net.run(200, inputs={"x": np.ones((200, 2), bool)})
    ov = net.overflows()
    assert ov["a"]["v_saturations"] > 0
    ax2 = plot.overflow_summary(net)
    heights = [p.get_height() for p in ax2.patches]
    assert heights[1] == pytest.approx(ov["a"]["v_saturations"] / (200 * 3))
    empty = LoihiNetwork()
    empty.add_compartments(1, du=0, dv=0, vth_mant=10, name="b")
    empty.run(5)
    assert plot.overflow_summary(empty).texts[0].get_text() == "no overflow"
