"""The main job (``python -m ahpsim demo``) on its built-in defaults."""

import json
import subprocess
import sys

import numpy as np

from ahpsim.datasets import threshold_crossing_encode
from ahpsim.demo import load_demo_digits, load_demo_model, run_demo


def test_trained_demo_reports_what_an_independent_run_gives(tmp_path):
    s = run_demo(tmp_path, n_threads=2)
    assert (tmp_path / "raster.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "summary.json").read_text())["digits"] == 200
    # recompute accuracy and spike counts with a fresh network, one trial at a time
    net, _ = load_demo_model(n_threads=1)
    images, labels = load_demo_digits()
    X = threshold_crossing_encode(images[:20])
    correct, spikes = 0, 0
    for b in range(20):
        net.reset_state()
        r = net.run(inputs={"x": X[b]})
        correct += int(r.readout("out")[0, -1].argmax() == labels[b])
        spikes += sum(int(r.raster(g).sum()) for g in r.populations if g.model.spiking)
    net.reset_state()
    r = net.run(inputs={"x": threshold_crossing_encode(images)}, n_threads=2)
    acc = float(np.mean(r.readout("out")[:, -1].argmax(-1) == labels))
    assert s["float"]["accuracy"] == acc
    assert s["float"]["accuracy"] > 0.2  # well above chance (10 classes)
    assert s["operations_per_inference"]["spikes"] == net.counters()["spikes"] / 200
    assert correct == int(np.sum(r.readout("out")[:20, -1].argmax(-1) == labels[:20]))
    assert spikes == sum(int(r.raster(g)[:20].sum()) for g in r.populations if g.model.spiking)
    assert 0 <= s["loihi"]["accuracy"] <= 1 and 0 <= s["loihi"]["agreement_with_float"] <= 1


def test_random_demo_from_the_command_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "ahpsim", "demo", "--network", "random", "--steps", "300",
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "spikes/neuron/step" in out.stdout
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["steps"] == 300 and s["synapses"] > 0
