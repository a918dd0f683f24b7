"""The main job (``python -m ahpsim demo``) on its built-in defaults."""

import json
import subprocess
import sys

import numpy as np
import pytest

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
    # quantized with the threshold mantissa shipped with the network (chosen on validation digits)
    assert s["loihi"]["vth_mant"] == s["model"]["loihi_vth_mant"] == 254


def test_random_demo_from_the_command_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "ahpsim", "demo", "--network", "random", "--steps", "300",
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "spikes/neuron/step" in out.stdout
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["steps"] == 300 and s["synapses"] > 0


def test_babi_demo_runs_without_torch_and_answers_as_the_trained_model(tmp_path):
    """``python -m ahpsim demo babi`` with torch blocked: exit 0, stories, questions and answers printed;
    its answers on the float kernel are those of an independent rerun of the shipped network one
    question at a time, and its accuracy is what those answers give against the bundled truth."""
    code = f"""
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, NoTorch())
from ahpsim.cli import main
sys.exit(main(["demo", "babi", "--out", {str(tmp_path)!r}, "--threads", "1", "--show", "2"]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("Q: ") == 2 and "true: " in out.stdout and "spikes/neuron/step" in out.stdout
    s = json.loads((tmp_path / "summary_babi.json").read_text())
    from importlib import resources

    from ahpsim.relnet import load_relnet, questions_to_arrays

    with resources.as_file(resources.files("ahpsim") / "data" / "babi_demo") as folder:
        net = load_relnet(folder, n_threads=1)
        questions = json.loads((folder / "stories.json").read_text())["questions"]
    right = 0
    for q in questions:
        right += net.answer(*questions_to_arrays([q], net.vocab)) == [q["answer"]]
    assert s["questions"] == len(questions) == 40
    assert s["engines"]["float"]["accuracy"] == right / len(questions)
    assert s["engines"]["float"]["accuracy"] > 0.7 and s["engines"]["loihi"]["accuracy"] > 0.7
    assert 0 < s["engines"]["loihi"]["encoder_spikes_per_neuron_per_step"] < 0.3
    with pytest.raises(ValueError, match=r"questions\[0\].question: the word 'unicorn' is not in"):
        questions_to_arrays([{"story": [["john", "went"]], "question": ["where", "is", "unicorn"]}], net.vocab)
    with pytest.raises(TypeError, match=r"questions\[0\].story\[0\]: expected a list of words, got str"):
        questions_to_arrays([{"story": ["john went to the kitchen"], "question": ["where", "is", "john"]}], net.vocab)
    with pytest.raises(TypeError, match="questions: expected a list of dicts"):
        questions_to_arrays({"story": [], "question": ["where"]}, net.vocab)
    with pytest.raises(ValueError, match="'<pad>' is not in"):
        questions_to_arrays([{"story": [["john", "<pad>"]], "question": ["where", "is", "john"]}], net.vocab)


def test_babi_demo_rejects_bad_options():
    out = subprocess.run([sys.executable, "-m", "ahpsim", "demo", "babi", "--show", "-1"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.strip().splitlines()[-1].endswith("--show must be an integer >= 0, got -1")
    out = subprocess.run([sys.executable, "-m", "ahpsim", "demo", "mnist"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and "invalid choice: 'mnist'" in out.stderr
