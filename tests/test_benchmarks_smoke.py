"""Smoke test of the benchmark suite (``python -m benchmarks --quick``): the harness runs end to end on
tiny sizes and writes a valid JSON, markdown and plot. Timings are never checked. Peers run only where
their virtual environment exists; the ahpsim side always runs."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


def _suite():
    spec = importlib.util.spec_from_file_location("ahpsim_bench_suite", BENCH / "suite.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


def _ahpsim_parent() -> Path:
    import ahpsim

    return Path(ahpsim.__file__).resolve().parents[1]


def test_quick_suite_end_to_end(tmp_path: Path) -> None:
    suite = _suite()
    peers = [p for p, s in suite.PEERS.items() if (ROOT / s["venv"] / "bin" / "python").exists()]
    env = dict(os.environ)
    # The ahpsim this test imports (installed, or the in-place build under python/), never a source
    # tree without the compiled _core.
    env["PYTHONPATH"] = os.pathsep.join([str(_ahpsim_parent())] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    cmd = [sys.executable, "-m", "benchmarks", "--quick", "--only", "brunel,scaling", "--peers", ",".join(peers),
           "--out-dir", str(tmp_path), "--timeout", "600"]
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads((tmp_path / "suite.json").read_text())
    assert suite.validate(res) == []
    assert res["quick"] is True
    b = res["benchmarks"]["brunel"]
    a = b["results"]["ahpsim"]
    assert a["status"] == "ok" and a["synapses"] == b["params"]["n"] * (b["params"]["c_e"] + b["params"]["c_i"])
    assert a["syn_events"] > 0 and a["rate_hz"] > 0
    for peer in suite.PEERS:
        r = b["results"].get(peer)
        if peer in peers:
            assert r is not None and r["status"] in ("ok", "failed", "timeout")
            if r["status"] == "ok":
                assert r["synapses"] == a["synapses"] and r["neurons"] == a["neurons"]
                assert peer in b["comparisons"]
        else:
            assert r is None or r["status"] == "not installed"
    runs = res["benchmarks"]["scaling"]["runs"]
    assert runs and all(r["status"] == "ok" for r in runs)
    assert {r["threads"] for r in runs} == {1, 2}
    md = (tmp_path / "suite.md").read_text()
    assert "QUICK" in md and "| ahpsim |" in md
    assert (tmp_path / "suite.png").stat().st_size > 1000


def test_missing_peer_and_external_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    suite = _suite()
    monkeypatch.setitem(suite.PEERS, "ghost", {"venv": ".venv-does-not-exist", "script": "x.py", "pip": ["ghost"],
                                               "import": "ghost"})
    r = suite.run_peer_brunel("ghost", {"n": 10}, 1, 0, True, 10.0)
    assert r["status"] == "not installed" and ".venv-does-not-exist" in r["error"]
    monkeypatch.setitem(suite.EXTERNAL, "ghost", ("bench_does_not_exist.py", "self", [], [], None))
    e = suite.bench_external("ghost", True, 10.0)
    assert e["status"] == "not available" and "bench_does_not_exist.py" in e["error"]
    monkeypatch.setitem(suite.EXTERNAL, "ghost2", ("suite.py", ".venv-does-not-exist", [], [], None))
    assert suite.bench_external("ghost2", True, 10.0)["status"] == "not available"


def test_last_json() -> None:
    suite = _suite()
    text = 'log line {not json}\n{"a": 1}\nmore\n{\n  "b": {"c": [1, 2]}\n}\ntrailing'
    assert suite._last_json(text) == {"b": {"c": [1, 2]}}
    assert suite._last_json("nothing") is None


def test_external_scripts_import_the_suites_own_ahpsim(tmp_path: Path) -> None:
    """The directory the suite puts first on a peer interpreter's PYTHONPATH gives that interpreter the
    same sources and compiled _core as the suite, even with no ahpsim installed there: the interpreter
    here runs with -S (no site-packages, hence no installed or editable ahpsim), numpy added by path."""
    import numpy as np

    import ahpsim
    from ahpsim import _core

    suite = _suite()
    root = suite._importable_ahpsim(tmp_path)
    numpy_dir = str(Path(np.__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = os.pathsep.join([root, numpy_dir])
    code = ("import json, os, ahpsim\nfrom ahpsim import _core\n"
            "print(json.dumps({'pkg': os.path.realpath(ahpsim.__file__), 'core': os.path.realpath(_core.__file__)}))")
    p = subprocess.run([sys.executable, "-S", "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r["core"] == os.path.realpath(_core.__file__)
    assert r["pkg"] == os.path.realpath(ahpsim.__file__)


def test_external_failed_variant_is_not_reported_as_ok(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    suite = _suite()
    monkeypatch.setattr(suite, "HERE", tmp_path)
    (tmp_path / "bench_half.py").write_text(
        "import json, sys\njson.dump({'speedup': 2.0, 'failed': {'ahpsim variant': 'ImportError: boom'}},"
        " open(sys.argv[sys.argv.index('--out') + 1], 'w'))\n")
    monkeypatch.setitem(suite.EXTERNAL, "half", ("bench_half.py", "self", [], [], "--out"))
    r = suite.bench_external("half", True, 120.0)
    assert r["status"] == "failed" and "ahpsim variant: ImportError: boom" in r["error"]


def test_babi_benchmark_smoke(tmp_path: Path, data_root: Path) -> None:
    """bench_babi.py on one timed step per encoder: the JSON has every row, and the kernel deployment
    gives the model's spikes and answers (timings are not checked)."""
    pytest.importorskip("torch")
    out = tmp_path / "babi.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(_ahpsim_parent()), str(ROOT)]))
    r = subprocess.run([sys.executable, str(BENCH / "bench_babi.py"), "--root", str(data_root), "--steps", "1",
                        "--n-infer", "32", "--head-steps", "5", "--encoders", "ahp,lstm", "--out", str(out)],
                       capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(out.read_text())
    rows = {row["encoder"]: row for row in doc["results"]}
    assert set(rows) == {"ahp", "lstm"}
    assert rows["ahp"]["kernel_same_spikes"] is True and rows["ahp"]["kernel_same_answers"] == 1.0
    assert 0 < rows["ahp"]["encoder_rate"] < 0.5 and rows["lstm"]["encoder_rate"] is None
    assert rows["ahp"]["infer_spiking_float_qps"] > 0 and rows["ahp"]["infer_spiking_loihi_qps"] > 0
    assert "infer_spiking_loihi_qps" not in rows["lstm"] and rows["ahp"]["head_steps"] == 5
    assert "| ahp |" in doc["table"] and "| lstm |" in doc["table"]


def test_babi_table_smoke(tmp_path: Path, data_root: Path) -> None:
    """bench_babi_table.py on the committed demo run, two questions per task: the run's record (epochs from
    its history.json, not from best.pt's), every task on both engines, the per-task table."""
    pytest.importorskip("torch")
    out = tmp_path / "table.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(_ahpsim_parent()), str(ROOT)]))
    r = subprocess.run([sys.executable, str(BENCH / "bench_babi_table.py"), "--root", str(data_root), "--runs",
                        "babi-demo", "--per-task", "2", "--steps", "5", "--out", str(out)],
                       capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(out.read_text())
    rec = doc["runs"]["babi-demo"]
    # --merge keeps the records already in --out (here: rebuilt from a copy under another name)
    doc["runs"] = {"earlier": doc["runs"]["babi-demo"]}
    out.write_text(json.dumps(doc))
    r = subprocess.run([sys.executable, str(BENCH / "bench_babi_table.py"), "--root", str(data_root), "--runs",
                        "babi-demo", "--per-task", "2", "--steps", "5", "--out", str(out), "--merge"],
                       capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    merged = json.loads(out.read_text())
    assert sorted(merged["runs"]) == ["babi-demo", "earlier"] and merged["table"].count("earlier (torch)") == 1
    assert merged["runs"]["earlier"]["engines_per_task"] == merged["runs"]["babi-demo"]["engines_per_task"]
    r = subprocess.run([sys.executable, str(BENCH / "bench_babi_table.py"), "--root", str(data_root), "--runs",
                        "babi-demo", "--per-task", "3", "--steps", "5", "--out", str(out), "--merge"],
                       capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 2 and "measured with other settings" in r.stderr
    # --drain: recorded beside the run; g's two later layers add two chip steps per question
    r = subprocess.run([sys.executable, str(BENCH / "bench_babi_table.py"), "--root", str(data_root), "--runs",
                        "babi-demo", "--per-task", "2", "--steps", "5", "--out", str(out), "--merge", "--drain"],
                       capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    drained = json.loads(out.read_text())["runs"]["babi-demo, drain"]
    assert drained["head"]["drain"] and drained["variant_of"] == "babi-demo"
    assert drained["energy_all_tasks"]["chip_steps"] == rec["energy_all_tasks"]["chip_steps"] + 2
    hist = json.loads((BENCH / "runs" / "babi-demo" / "history.json").read_text())
    assert rec["epochs_done"] == len(hist["epochs"]) and rec["best_epoch"] == hist["best_epoch"]
    tasks = sorted(rec["torch_test_error_by_task"], key=int)
    assert sorted(rec["engines_per_task"], key=int) == tasks and len(tasks) == 8
    for t in tasks:
        e = rec["engines_per_task"][t]
        assert e["n"] == 2 and all(0.0 <= e[k] <= 1.0 for k in ("torch", "kernel", "integer"))
    n_pass = sum(err < 0.05 for err in rec["torch_test_error_by_task"].values())
    assert "| task | babi-demo (torch) |" in doc["table"] and f"| passed | {n_pass} |" in doc["table"]


def test_babi_task4_encoders_smoke(tmp_path: Path, data_root: Path) -> None:
    """babi_task4_encoders.py, one epoch of one variant: the record names the selection and the test
    accuracy on the task's 1,000 test questions; unknown variants are a usage error."""
    pytest.importorskip("torch")
    out = tmp_path / "t4.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(_ahpsim_parent()), str(ROOT)]))
    cmd = [sys.executable, str(BENCH / "babi_task4_encoders.py"), "--root", str(data_root), "--out", str(out)]
    r = subprocess.run(cmd + ["--epochs", "1", "--variants", "lstm"], capture_output=True, text=True, env=env,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(out.read_text())
    rec = doc["runs"]["lstm"]
    assert doc["task"] == 4 and doc["n_test"] == 1000 and rec["best_epoch"] == 1 and len(rec["val_by_epoch"]) == 1
    assert 0.0 <= rec["test_acc"] <= 1.0 and rec["encoder_rate"] is None
    r = subprocess.run(cmd + ["--variants", "gru"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 2 and "argument --variants: unknown ['gru']" in r.stderr


def test_benchmark_options_are_range_checked() -> None:
    """Every numeric option of the benchmark scripts goes through benchmarks/_args.py: a value out of range
    is a one-line usage error naming the option (exit code 2), never a traceback later in the run."""
    import argparse
    import re

    from benchmarks._args import int_at_least, real_in

    bare = [f"{p.name}: {m.group(0)}" for p in sorted(BENCH.glob("*.py"))
            for m in re.finditer(r"add_argument\([^\n]*type=(int|float)\b", p.read_text())]
    assert not bare, bare
    assert int_at_least(1)("3") == 3 and int_at_least(0)("0") == 0
    assert real_in(0, 1)("1") == 1.0 and real_in(0, lo_open=False)("0") == 0.0
    for parse, text, msg in ((int_at_least(1), "0", "integer >= 1, got 0"), (int_at_least(1), "2.5", "got '2.5'"),
                             (real_in(0), "nan", r"\(0, inf\), got nan"), (real_in(0), "-1", "got -1"),
                             (real_in(0, 1), "1.5", r"\(0, 1\], got 1.5"), (real_in(0), "inf", "got inf")):
        with pytest.raises(argparse.ArgumentTypeError, match=msg):
            parse(text)
    for script, args, msg in (("bench_loihi_nxsdk.py", ["--reps", "0"], "argument --reps: expected an integer >= 1"),
                              ("train_smnist_loihi.py", ["--lr-decay", "1.5"], "argument --lr-decay: expected a number")):
        p = subprocess.run([sys.executable, str(BENCH / script), *args], cwd=ROOT, capture_output=True, text=True,
                           timeout=300, env={**os.environ, "PYTHONPATH": str(_ahpsim_parent())})
        assert p.returncode == 2 and msg in p.stderr and "Traceback" not in p.stderr, p.stderr[-2000:]


def test_train_babi_loihi_smoke(tmp_path: Path, data_root: Path) -> None:
    """train_babi_loihi.py on the committed demo run, two batches: the fine-tuned checkpoint reloads with
    both encoders on the integer engine's grid, which quantization then keeps exactly (the demo run's
    own weights lose 10-17 % rms and some synapses); a run without spiking encoders is refused, exit 2."""
    pytest.importorskip("torch")
    import warnings

    from ahpsim.loihi import quantize
    from ahpsim.torch import load_checkpoint, load_model

    out = tmp_path / "ft"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(_ahpsim_parent()), str(ROOT)]))
    r = subprocess.run([sys.executable, str(BENCH / "train_babi_loihi.py"), str(BENCH / "runs" / "babi-demo" / "best.pt"),
                        "--root", str(data_root), "--out-dir", str(out), "--batches-per-epoch", "2", "--no-progress",
                        "--refractory-mode", "clamp"],
                       capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / "portable.pt").is_file() and "val acc" in r.stdout + r.stderr

    def weight_errors(path):
        model = load_model(load_checkpoint(path))
        errs = []
        for enc in (model.sentence_encoder, model.question_encoder):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                q = quantize(enc.rnn.to_network(), vth_mant=508)
            errs += [p["rms_rel_err"] for p in q.report.projections]
        return model, max(errs)

    model, err = weight_errors(out / "best.pt")
    assert model.sentence_encoder.rnn.loihi_grid == 508 and model.question_encoder.rnn.loihi_grid == 508
    # the refractory mode travels with the checkpoint (the demo run's encoders: "block", n_ref 0)
    assert model.sentence_encoder.rnn.refractory_mode == model.question_encoder.rnn.refractory_mode == "clamp"
    assert load_checkpoint(out / "best.pt")["meta"]["refractory_mode"] == "clamp"
    assert err < 1e-6
    assert weight_errors(BENCH / "runs" / "babi-demo" / "best.pt")[1] > 0.05
    r = subprocess.run([sys.executable, str(BENCH / "train_babi_loihi.py"), str(BENCH / "runs" / "smnist-ahp" / "best.pt"),
                        "--root", str(data_root), "--out-dir", str(tmp_path / "x")],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 2 and "holds no Relational Network with spiking encoders" in r.stderr


def test_babi_head_steps_configs_parse_and_refuse() -> None:
    """bench_babi_head_steps.py's configurations: the fields land where they belong (the head's own
    threshold mantissa in the head, the encoders' after ``loihi``), and each malformed one is refused
    with a usage message, never taken silently."""
    import argparse

    pytest.importorskip("torch")
    from benchmarks.bench_babi_head_steps import parse_config

    c = parse_config("200:99:0.5:loihi:508:fpct=99.9:hvth=127")
    assert c["engine"] == "loihi" and c["vth_mant"] == 508
    assert c["head"] == dict(steps=200, percentile=99.0, v_init=0.5, f_percentile=99.9, vth_mant=127)
    assert parse_config("100:99:0.5:float")["head"] == dict(steps=100, percentile=99.0, v_init=0.5)
    assert parse_config("relu:loihi:254") == {"name": "relu:loihi:254", "head": None, "engine": "loihi", "vth_mant": 254}
    assert parse_config("100:trained:0.5:float:drain=1")["head"] == dict(steps=100, percentile=None, v_init=0.5,
                                                                         drain=True)
    for bad, msg in (("100:99:0.5:float:hvth=127", "hvth= applies to the integer engine"),
                     ("100:trained:0.5:float:fpct=99", "fpct= applies to percentile scales"),
                     ("100:0:0.5:float", "PERCENTILE and fpct in"),
                     ("100:99:0.5:float:drain=yes", "expected STEPS"),
                     ("relu:loihi:hvth=127", "apply to a spiking head"),
                     ("100:99:0.5:loihi:hvth=0", "hvth must be >= 1"),
                     ("100:99:0.5:loihi:hvth=12.5", "expected STEPS"),
                     ("100:99:0.5:loihi:hvth=127:hvth=254", "expected STEPS"),
                     ("100:99:0.5:loihi:fpct=99:fpct=99.9", "expected STEPS"),
                     ("100:150:0.5:float", "PERCENTILE and fpct in")):
        with pytest.raises(argparse.ArgumentTypeError, match=msg):
            parse_config(bad)


def test_babi_head_steps_checks_every_configuration_before_measuring(tmp_path: Path, data_root: Path) -> None:
    """'trained' scales on a run with a ReLU head are refused with exit code 2 before any configuration is
    measured (nothing written), even when a valid configuration comes first."""
    pytest.importorskip("torch")
    out = tmp_path / "heads.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(_ahpsim_parent()), str(ROOT)]))
    r = subprocess.run([sys.executable, str(BENCH / "bench_babi_head_steps.py"), "--root", str(data_root), "--run",
                        "babi-demo", "--tasks", "1", "--per-task", "2", "--out", str(out),
                        "5:99:0.5:float", "5:trained:0.5:float"],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 2 and "'trained' scales need a run trained with quantized ReLUs" in r.stderr
    assert "Traceback" not in r.stderr and "same answer" not in r.stdout and not out.exists()
