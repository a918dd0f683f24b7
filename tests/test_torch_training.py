"""ahpsim.torch training: the memory task (AHP and ALIF >> LIF), JapaneseVowels well above chance, the
trained models exported to the kernel spike for spike, trainer resumption and the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ahpsim.torch import losses as L  # noqa: E402
from ahpsim.torch.tasks import build_model, delayed_classification, make_task  # noqa: E402
from ahpsim.torch.trainer import Trainer, TrainConfig, batch_objective, evaluate, load_model  # noqa: E402
from ahpsim.torch.modules import SpikingRNN  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("torch_one_thread")]
REPO = Path(__file__).resolve().parents[1]





@pytest.fixture(scope="module")
def memory_results():
    """Trains the same-size AHP, ALIF and LIF networks on the delayed-classification task (4 classes,
    300 silent-but-noisy steps between pattern and cue), fixed seeds; about 15 s each on one core."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    task = make_task("memory")
    res = {}
    for neurons in ("ahp", "alif", "lif"):
        model = build_model(task, neurons, seed=0)
        cfg = task.train_config
        cfg.progress = False
        tr = Trainer(model, task.train, task.val, cfg)
        hist = tr.fit()
        final = evaluate(model, task.test, 256, cfg.loss_mode, cfg.window)["acc"]  # the last epoch's model
        res[neurons] = {"model": model, "final": final, "best": tr.best_acc, "history": hist}
    torch.set_num_threads(old)
    res["task"] = task
    return res


def test_delayed_classification_is_seeded():
    a, la = delayed_classification(8, seed=3)
    b, lb = delayed_classification(8, seed=3)
    assert a.dtype == bool and a.shape == (8, 250, 25)
    assert np.array_equal(a, b) and np.array_equal(la, lb)
    assert not np.array_equal(a, delayed_classification(8, seed=4)[0])


@pytest.mark.slow
def test_memory_task_ahp_and_alif_beat_lif(memory_results):
    r = {k: memory_results[k]["final"] for k in ("ahp", "alif", "lif")}
    print("memory task final test accuracy:", r)
    assert r["ahp"] >= 0.85, r
    assert r["alif"] >= 0.85, r
    assert r["lif"] <= 0.45, r  # chance is 0.25
    assert r["ahp"] - r["lif"] >= 0.4 and r["alif"] - r["lif"] >= 0.4


def _agreement(model, x, lengths=None):
    from ahpsim.torch.export import run_network, to_network

    with torch.no_grad():
        o = model(x)
    z, y = run_network(to_network(model), x)
    zt = o.z.numpy().astype(bool)
    pt = L.readout_logits(o.y, lengths).argmax(-1)
    pk = L.readout_logits(torch.from_numpy(np.asarray(y)), lengths).argmax(-1)
    return int(zt.sum()), int((zt != z).sum()), int((pt != pk).sum()), float(np.abs(o.y.numpy() - y).max())


@pytest.mark.slow
def test_trained_memory_model_matches_kernel(memory_results):
    """Trained AHP and ALIF networks: torch (float32) and the exported kernel network give identical spike
    trains and predictions on the test set; with weights on a 2**-12 grid the readouts agree bit for bit."""
    task = memory_results["task"]
    x, lab, _ = task.test.get(np.arange(len(task.test)))
    for neurons in ("ahp", "alif"):
        model = memory_results[neurons]["model"]
        n_spk, n_diff, n_pred, ydiff = _agreement(model, x)
        print(f"{neurons}: {n_spk} spikes, {n_diff} differ, {n_pred} predictions differ, max |dy| {ydiff:.3g}")
        assert n_spk > 1000
        assert n_diff <= 0.001 * n_spk and n_pred == 0
        q = load_model({"model": model.state_dict()}).quantize_(2.0 ** -12)
        n_spk, n_diff, n_pred, ydiff = _agreement(q, x)
        assert n_diff == 0 and n_pred == 0 and ydiff == 0.0


def test_japanese_vowels_learns(data_root):
    task = make_task("jv", root=data_root)
    assert task.n_out == 9 and task.n_in == 12
    model = build_model(task, "ahp", seed=0)
    cfg = task.train_config
    cfg.epochs, cfg.progress = 6, False
    tr = Trainer(model, task.train, task.test, cfg)
    hist = tr.fit()
    acc = hist[-1]["val_acc"]
    print("JapaneseVowels test accuracy per epoch:", [round(h["val_acc"], 3) for h in hist])
    assert acc >= 0.80  # chance 1/9
    # float inputs: the kernel sums w*x in another order; differences must stay < 0.1% of spikes
    x, lab, ln = task.test.get(np.arange(len(task.test)))
    n_spk, n_diff, n_pred, _ = _agreement(model, x, ln)
    print(f"JV torch vs kernel: {n_spk} spikes, {n_diff} differ, {n_pred} predictions differ")
    assert n_diff <= 0.001 * n_spk and n_pred <= 1


class _Killed(Exception):
    pass


def _die_at_step(trainer, n: int) -> None:
    """Makes ``trainer`` raise _Killed at its n-th training step (a process killed mid-epoch)."""
    orig, calls = trainer.train_step, {"n": 0}

    def dying(*a):
        calls["n"] += 1
        if calls["n"] == n:
            raise _Killed
        return orig(*a)

    trainer.train_step = dying


def _killed_then_resumed(new, data, cfg: dict, ckpt_dir):
    """A run of ``cfg`` killed at its 10th step (second epoch, batch 4 of 6: after the checkpoint at step
    8), then a fresh trainer on a fresh model that has resumed from its checkpoint; returns that trainer."""
    tr1 = Trainer(new(), data, data, TrainConfig(**cfg), ckpt_dir=ckpt_dir)
    _die_at_step(tr1, 10)
    with pytest.raises(_Killed):
        tr1.fit()
    tr2 = Trainer(new(), data, data, TrainConfig(**cfg), ckpt_dir=ckpt_dir)
    assert tr2.try_resume() and (tr2.epoch, tr2.batch) == (1, 2)
    return tr2


@pytest.mark.parametrize("schedule", [dict(lr_schedule="exponential", lr_decay=0.5),
                                      dict(lr_schedule="cosine", lr_min=1e-3), dict(lr_schedule="linear"),
                                      dict(lr_schedule="step", lr_decay=0.3, lr_step_epochs=1, grad_clip=0.5)])
def test_trainer_resumes_where_it_left_off(tmp_path, schedule):
    """A run killed in the middle of an epoch and restarted from its checkpoint ends with exactly the
    weights of an uninterrupted run, whatever the learning-rate schedule; checkpoints are written
    atomically (no temp files left)."""
    x, y = delayed_classification(96, delay=20, seed=1)
    from ahpsim.torch.trainer import SequenceData

    data = SequenceData.from_arrays(x, y)
    cfg = dict(epochs=2, batch_size=16, lr=1e-2, progress=False, ckpt_every=2, loss_mode="window", window=5,
               **schedule)

    def new():
        from ahpsim.torch.modules import SpikingRNN

        return SpikingRNN(25, 4, n_lif=10, n_ahp=10, w_in_scale=3.0, seed=0)

    ref = new()
    Trainer(ref, data, data, TrainConfig(**cfg)).fit()

    tr2 = _killed_then_resumed(new, data, cfg, tmp_path)
    m2 = tr2.model
    tr2.fit(resume=False)
    for a, b in zip(ref.parameters(), m2.parameters()):
        assert torch.equal(a, b)
    assert len(tr2.history) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "history.json", "last.pt",
                                                          "learning_curve.png"]
    hist = json.loads((tmp_path / "history.json").read_text())
    assert hist["selection"] == "val" and len(hist["epochs"]) == 2
    lrs = [h["lr"] for h in hist["epochs"]]
    cfg_obj = TrainConfig(**cfg)
    assert lrs == [cfg_obj.lr_at(0, 5, 6), cfg_obj.lr_at(1, 5, 6)]
    best = load_model(tmp_path / "best.pt")
    assert best.N == 20


@pytest.mark.slow
def test_cli_train_and_eval(tmp_path):
    import ahpsim  # the one this test imports (installed, or the in-place build), so _core is there

    pkg_parent = str(Path(ahpsim.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=pkg_parent + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = tmp_path / "run"
    train = [sys.executable, "-m", "ahpsim", "train", "memory", "--out", str(out), "--threads", "1",
             "--no-progress", "--task-opt", "n_train=128", "--task-opt", "n_test=64", "--task-opt", "delay=50"]
    r = subprocess.run(train + ["--epochs", "1"], env=env, capture_output=True, text=True, check=True)
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["epochs_done"] == 1 and (out / "last.pt").is_file() and (out / "best.pt").is_file()
    assert not (out / "portable.pt").exists()  # only on request
    cmd = [sys.executable, "-m", "ahpsim", "eval", str(out / "best.pt"), "--threads", "1"]
    cmd.append("--kernel")
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["n_test"] == 64 and 0.0 <= res["torch"]["acc"] <= 1.0
    assert res["kernel"]["same_prediction"] == 1.0
    assert res["kernel"]["differing_fraction"] <= 0.001
    # a run carried to another machine with portable.pt only resumes from it and says so
    subprocess.run(train + ["--epochs", "2", "--portable-checkpoint"], env=env, capture_output=True, text=True,
                   check=True)
    assert (out / "portable.pt").is_file()
    (out / "last.pt").unlink()
    r = subprocess.run(train + ["--epochs", "3"], env=env, capture_output=True, text=True, check=True)
    assert "resuming at epoch 3, batch 0 from portable.pt" in r.stderr and "Traceback" not in r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["epochs_done"] == 3
    assert (out / "last.pt").is_file()
    # continuing the run with other task options is refused (it would mix two data sets in one run)
    other = [a.replace("n_train=128", "n_train=96") for a in train]
    r = subprocess.run(other + ["--epochs", "4"], env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "holds a run of task" in r.stderr and "--no-resume" in r.stderr
    # so is continuing it with another network: named before its checkpoint is loaded into one of another size
    r = subprocess.run(train + ["--epochs", "4", "--model-opt", "n_lif=7"], env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "holds a run of model_opts" in r.stderr and "change --model-opt back" in r.stderr
    assert "Traceback" not in r.stderr


def test_smnist_tasks(data_root):
    """The paper's sMNIST input (80 threshold-crossing channels, 56-step cue), the permuted variant and the
    one-pixel-per-step encoding; the network defaults are the paper's (140 LIF + 100 AHP)."""
    s = make_task("smnist", root=data_root, n_train=8, n_test=8)
    p = make_task("psmnist", root=data_root, n_train=8, n_test=8)
    x, y, ln = s.train.get(np.arange(4))
    xp, yp, _ = p.train.get(np.arange(4))
    assert x.shape == (4, 840, 80) and x.dtype == torch.bool and ln is None
    assert bool(x[:, 784:, 79].all()) and not bool(x[:, :784, 79].any())
    assert torch.equal(y, yp) and not torch.equal(x, xp)
    m = build_model(s, "ahp")
    assert (m.n_lif, m.n_ahp, m.n_out) == (140, 100, 10)
    # the authors' chip network: AHP charge 384 / 32512 thresholds per spike (-96 * 2**2 against 508 * 2**6)
    assert m.config()["beta_ahp"][-1] == pytest.approx(384 / 32512, rel=1e-3) and m.config()["tau_ahp"][-1] == 700.0
    assert m.reset == "zero" and len(s.val) == 5000 and len(s.train) == 8
    from ahpsim import datasets as D

    assert np.array_equal(s.val.labels, D.load_mnist(data_root, "train", download=False)[1][-5000:])
    full = make_task("smnist", root=data_root, n_test=8)
    assert len(full.train) == 55000 and len(full.val) == 5000  # the last 5,000 training digits
    px = make_task("smnist", root=data_root, n_train=8, n_test=8, encoding="pixels").train.get(np.arange(2))[0]
    assert px.shape == (2, 784, 1) and float(px.max()) <= 1.0
    lv_task = make_task("psmnist", root=data_root, n_train=8, n_test=8, encoding="levels")
    lv = lv_task.train.get(np.arange(4))[0]
    assert lv.shape == (4, 840, 40) and lv_task.n_in == 40 and build_model(lv_task, "ahp").n_in == 40
    perm_rows = D.load_mnist(data_root, "train", download=False)[0][:4].reshape(4, 784)[:, D.mnist_permutation(0)]
    assert np.array_equal(lv.numpy(), D.grey_level_encode(perm_rows))
    with pytest.raises(ValueError, match="encoding must be 'spikes', 'levels' or 'pixels', not 'bits'"):
        make_task("smnist", root=data_root, n_train=8, n_test=8, encoding="bits")


def test_lr_schedules_and_config_validation():
    """Each schedule against its closed form; bad settings name the setting."""
    import math as m

    c = TrainConfig(epochs=10, lr=0.1, lr_schedule="cosine", lr_min=0.01)
    assert c.lr_at(0, 0, 5) == pytest.approx(0.1) and c.lr_at(10, 0, 5) == pytest.approx(0.01)
    assert c.lr_at(5, 0, 5) == pytest.approx(0.055)
    assert c.lr_at(2, 3, 5) == pytest.approx(0.01 + 0.09 * 0.5 * (1 + m.cos(m.pi * 2.6 / 10)))
    lin = TrainConfig(epochs=4, lr=0.1, lr_schedule="linear", lr_min=0.02)
    assert lin.lr_at(1, 1, 2) == pytest.approx(0.1 - 0.08 * 1.5 / 4)
    st = TrainConfig(lr=1.0, lr_schedule="step", lr_decay=0.5, lr_step_epochs=3)
    assert [st.lr_at(e) for e in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    ex = TrainConfig(lr=1.0, lr_decay=0.8)
    assert ex.lr_at(3) == pytest.approx(0.512)
    assert TrainConfig(lr=0.3, lr_schedule="constant").lr_at(7, 1, 2) == 0.3
    for bad, msg in ((dict(epochs=0), "epochs must be an integer >= 1"),
                     (dict(lr=-1.0), r"lr must be a number in \(0, 1\]"), (dict(lr=1e38), "lr must be"),
                     (dict(lr_decay=1.5), "lr_decay must be"), (dict(rate_target=2.0), "rate_target must be"),
                     (dict(lr=1e-3, lr_min=1e-2, lr_schedule="cosine"), "lr_min .* must not exceed lr"),
                     (dict(epochs=10 ** 7), "epochs must be at most"), (dict(num_threads=0), "num_threads"),
                     (dict(lr_schedule="warm"), "lr_schedule must be one of"),
                     (dict(grad_clip=0.0), "grad_clip must be"), (dict(batch_size=2.5), "batch_size must be"),
                     (dict(lr_min=float("nan")), "lr_min must be"), (dict(loss_mode="first"), "loss_mode must be")):
        with pytest.raises(ValueError, match=msg):
            TrainConfig(**bad)


def test_portable_checkpoint_resumes_without_last_pt(tmp_path):
    """portable.pt (written with ``portable_checkpoint``) carries a run to another machine: it restores
    the model exactly (integer delays narrowed on disk, widened back to their dtype), epoch, batch and
    history, and leaves out Adam's moments; the run resumed from it alone ends with the weights of a run
    resumed from last.pt with the optimizer's moments cleared (an independent path)."""
    from ahpsim.torch.modules import SpikingRNN
    from ahpsim.torch.trainer import SequenceData, load_checkpoint

    x, y = delayed_classification(96, delay=20, seed=1)
    data = SequenceData.from_arrays(x, y)
    cfg = TrainConfig(epochs=2, batch_size=16, lr=1e-2, progress=False, ckpt_every=2, loss_mode="window",
                      window=5, lr_schedule="cosine", portable_checkpoint=True)

    def new():
        return SpikingRNN(25, 4, n_lif=10, n_ahp=10, w_in_scale=3.0, seed=0,
                          rec_delay=np.random.default_rng(0).integers(1, 4, (20, 20)))

    tr1 = Trainer(new(), data, data, cfg, ckpt_dir=tmp_path / "a")
    _die_at_step(tr1, 10)
    with pytest.raises(_Killed):
        tr1.fit()
    full, port = tmp_path / "a" / "last.pt", tmp_path / "a" / "portable.pt"
    assert port.stat().st_size < 0.6 * full.stat().st_size
    ck_full, ck_port = load_checkpoint(full), load_checkpoint(port)
    assert ck_port["optimizer"]["state"] == {} and ck_full["optimizer"]["state"]
    for k, v in ck_full["model"].items():
        if torch.is_tensor(v):
            assert ck_port["model"][k].dtype == v.dtype and torch.equal(ck_port["model"][k], v), k
    assert torch.load(port, weights_only=True)["model"]["rec_delay"].dtype == torch.uint8  # narrowed on disk

    # another machine: only portable.pt came along
    (tmp_path / "b").mkdir()
    port.rename(tmp_path / "b" / "portable.pt")
    m2 = new()
    tr2 = Trainer(m2, data, data, cfg, ckpt_dir=tmp_path / "b")
    assert tr2.try_resume() and tr2.resumed_from.name == "portable.pt" and (tr2.epoch, tr2.batch) == (1, 2)
    assert len(tr2.history) == 1
    tr2.fit(resume=False)
    # reference: resume from last.pt, then clear Adam's moments by hand
    m3 = new()
    tr3 = Trainer(m3, data, data, cfg, ckpt_dir=tmp_path / "a")
    assert tr3.try_resume() and tr3.resumed_from.name == "last.pt"
    tr3.opt.state.clear()
    tr3.fit(resume=False)
    for a, b in zip(m2.parameters(), m3.parameters()):
        assert torch.equal(a, b)
    assert len(tr2.history) == 2 and (tmp_path / "b" / "last.pt").is_file()


def test_sigterm_checkpoints_and_the_rerun_resumes(tmp_path):
    """SIGTERM (or Ctrl-C) mid-epoch: the batch in flight finishes, the checkpoint is written, the command
    says where it stopped (exit 130); rerunning the command resumes there and says so."""
    import signal
    import time

    import ahpsim

    pkg_parent = str(Path(ahpsim.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=pkg_parent + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = tmp_path / "run"
    # 500 batches an epoch: the signal, sent once the first checkpoint (50 batches) is there, lands in
    # epoch 1 even on a fast machine (with 100 batches, one ran past the epoch's end before it arrived)
    cmd = [sys.executable, "-m", "ahpsim", "train", "memory", "--out", str(out), "--epochs", "2", "--threads", "1",
           "--batch-size", "8", "--task-opt", "n_train=4000", "--task-opt", "n_test=16", "--task-opt", "n_val=16",
           "--task-opt", "delay=50"]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "last.pt").exists() and time.time() < deadline:  # first checkpoint: 50 batches in
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "rerun to resume" in err and "Traceback" not in err
    ck = torch.load(out / "last.pt", weights_only=True)
    assert ck["step"] >= 50 and ck["epoch"] == 0
    r = subprocess.run(cmd + ["--epochs", "1"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"resuming at epoch 1, batch {ck['batch']}" in r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["epochs_done"] == 1
    r2 = subprocess.run(cmd + ["--epochs", "1"], env=env, capture_output=True, text=True, timeout=300)
    assert "already trained for 1 epochs" in r2.stderr


def test_deep_r_keeps_counts_and_signs_and_resumes_exactly(tmp_path):
    """Deep R: the number of active synapses per matrix stays fixed, active weights never change sign,
    inactive ones are exactly 0, new synapses appear, and a killed run resumes with identical weights
    and masks (the rewiring's random stream is checkpointed)."""
    from ahpsim.torch import DeepR
    from ahpsim.torch.modules import SpikingRNN
    from ahpsim.torch.trainer import SequenceData

    x, y = delayed_classification(96, delay=20, seed=1)
    data = SequenceData.from_arrays(x, y)
    cfg = dict(epochs=2, batch_size=16, lr=2e-2, progress=False, ckpt_every=2, loss_mode="window", window=5)

    def new():
        m = SpikingRNN(25, 4, n_lif=10, n_ahp=10, w_in_scale=3.0, seed=0)
        return m, DeepR(m, connectivity=0.3, l1=1e-2, temperature=1e-5, seed=1)

    ref, rw = new()
    counts = rw.n_active()
    assert counts == {"w_in": round(0.3 * 500), "w_rec": round(0.3 * 380), "w_out": round(0.3 * 80)}
    assert not bool(torch.diagonal(ref.rec_mask).any())
    masks0 = {k: getattr(ref, k).clone() for k in ("in_mask", "rec_mask", "out_mask")}
    signs = {k: v.clone() for k, v in rw.signs.items()}
    Trainer(ref, data, data, TrainConfig(**cfg), rewiring=rw).fit()
    assert rw.n_active() == counts
    for m, mk in (("w_in", "in_mask"), ("w_rec", "rec_mask"), ("w_out", "out_mask")):
        w, mask = getattr(ref, m).detach(), getattr(ref, mk)
        assert bool((w[~mask] == 0).all())
        assert bool((torch.sign(w[mask & (w != 0)]) == signs[m][mask & (w != 0)]).all())
    assert any(not torch.equal(getattr(ref, k), masks0[k]) for k in masks0)  # synapses were rewired

    m1, rw1 = new()
    tr1 = Trainer(m1, data, data, TrainConfig(**cfg), ckpt_dir=tmp_path, rewiring=rw1)
    orig, calls = tr1.train_step, {"n": 0}

    def dying(*a):
        calls["n"] += 1
        if calls["n"] == 10:
            raise _Killed
        return orig(*a)

    tr1.train_step = dying
    with pytest.raises(_Killed):
        tr1.fit()
    m2, rw2 = new()
    Trainer(m2, data, data, TrainConfig(**cfg), ckpt_dir=tmp_path, rewiring=rw2).fit()
    for a, b in zip(list(ref.parameters()) + list(ref.buffers()), list(m2.parameters()) + list(m2.buffers())):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="connectivity must be in"):
        DeepR(m2, connectivity=1.5)


def test_init_from_starts_a_new_run_from_another_runs_weights(tmp_path, capsys, monkeypatch):
    """--init-from: the new run begins with the checkpoint's weights (a learning rate of 1e-12 leaves them
    there to 1e-9, far from a fresh network's) and records where they came from; a resumed run continues
    from its own last.pt, not from the checkpoint again; networks built otherwise are refused in one line."""
    from ahpsim.cli import main
    from ahpsim.torch import build_model, load_checkpoint, load_model, make_task

    monkeypatch.delenv("AHPSIM_DEBUG", raising=False)
    base = ["train", "memory", "--threads", "1", "--no-progress", "--task-opt", "n_train=64", "--task-opt",
            "n_test=32", "--task-opt", "n_val=32", "--task-opt", "delay=30"]
    src_path = tmp_path / "a" / "best.pt"
    assert main(base + ["--out", str(tmp_path / "a"), "--epochs", "2"]) == 0
    src = load_model(src_path)
    assert main(base + ["--out", str(tmp_path / "b"), "--epochs", "1", "--lr", "1e-12", "--seed", "3",
                        "--init-from", str(src_path)]) == 0
    warm = load_model(tmp_path / "b" / "last.pt")
    fresh = build_model(make_task("memory", n_train=64, n_test=32, n_val=32, delay=30), "ahp", seed=3)
    for name, p in src.named_parameters():
        assert torch.allclose(p, dict(warm.named_parameters())[name], rtol=0, atol=1e-9), name
    assert not torch.allclose(src.w_rec, fresh.w_rec)
    hist = json.loads((tmp_path / "b" / "history.json").read_text())
    ck = load_checkpoint(src_path)
    assert hist["meta"]["init_from"] == {"checkpoint": str(src_path), "epoch": ck["epoch"],
                                         "best_epoch": ck["best_epoch"], "time_constants_replaced": []}
    assert [e["epoch"] for e in hist["epochs"]] == [1]
    # c moves away from the source; resumed with the option again (and a negligible rate) it continues
    # from its own last.pt, says the option is ignored, and keeps the record
    c = ["--out", str(tmp_path / "c"), "--seed", "3", "--init-from", str(src_path)]
    assert main(base + c + ["--epochs", "1", "--lr", "5e-2"]) == 0
    moved = load_model(tmp_path / "c" / "last.pt")
    assert (moved.w_rec - src.w_rec).abs().max() > 1e-3
    capsys.readouterr()
    assert main(base + c + ["--epochs", "2", "--lr", "1e-12"]) == 0
    assert "--init-from applies only when a run starts and is ignored" in capsys.readouterr().err
    again = load_model(tmp_path / "c" / "last.pt")
    assert torch.allclose(again.w_rec, moved.w_rec, rtol=0, atol=1e-9)
    hist = json.loads((tmp_path / "c" / "history.json").read_text())
    assert hist["meta"]["init_from"]["checkpoint"] == str(src_path) and len(hist["epochs"]) == 2
    # another network: refused before anything is written, in one short line naming what differs
    assert main(base + ["--out", str(tmp_path / "d"), "--model-opt", "n_lif=7", "--init-from", str(src_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "n_lif: checkpoint 30, this run 7" in err, err
    assert not (tmp_path / "d" / "last.pt").exists()
    # time constants are state a warm start carries over: the checkpoint's replace the run's own, said so
    assert main(base + ["--out", str(tmp_path / "e"), "--model-opt", "tau_ahp=300", "--epochs", "1", "--lr", "1e-12",
                        "--init-from", str(src_path)]) == 0
    assert "the time constants tau_ahp come from" in capsys.readouterr().err
    np.testing.assert_array_equal(load_model(tmp_path / "e" / "last.pt").tau_ahp, src.tau_ahp)
    assert json.loads((tmp_path / "e" / "history.json").read_text())["meta"]["init_from"][
        "time_constants_replaced"] == ["tau_ahp"]
    assert main(base + ["--out", str(tmp_path / "d"), "--deep-r", "0.5", "--init-from", str(src_path)]) == 2
    assert "--init-from with --deep-r" in capsys.readouterr().err
    assert main(base + ["--out", str(tmp_path / "d"), "--init-from", str(tmp_path / "nope.pt")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err


def test_init_from_checkpoint_relational_network_and_train_tau(tmp_path):
    """The Python API on a bAbI Relational Network (its state holds configuration entries, not only
    tensors) and on networks with trainable time constants (their learned tau_* may differ, their
    thresholds and AHP strengths may not)."""
    from ahpsim.torch import RelationalNetwork, SpikingRNN, init_from_checkpoint, load_model, save_checkpoint

    a = RelationalNetwork(12, "ahp", n_encoder=6, g_layers=[8], f_layers=[8], seed=1)
    b = RelationalNetwork(12, "ahp", n_encoder=6, g_layers=[8], f_layers=[8], seed=2)
    save_checkpoint(tmp_path / "a.pt", a, epoch=4, best_epoch=3)
    assert init_from_checkpoint(b, tmp_path / "a.pt") == {"checkpoint": str(tmp_path / "a.pt"), "epoch": 4,
                                                          "best_epoch": 3}
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), name
    with pytest.raises(ValueError, match="n_encoder: checkpoint 6, this run 7"):
        init_from_checkpoint(RelationalNetwork(12, "ahp", n_encoder=7, g_layers=[8], f_layers=[8]), tmp_path / "a.pt")
    with pytest.raises(ValueError, match="holds a RelationalNetwork, the run builds a SpikingRNN"):
        init_from_checkpoint(SpikingRNN(3, 2, n_lif=4), tmp_path / "a.pt")

    s = SpikingRNN(3, 2, n_lif=4, n_ahp=2, train_tau=True, seed=1)
    with torch.no_grad():
        s.log_tau_m.add_(0.1)  # a learned membrane time constant
    save_checkpoint(tmp_path / "s.pt", s, epoch=1, best_epoch=1)
    t = SpikingRNN(3, 2, n_lif=4, n_ahp=2, train_tau=True, seed=2)
    init_from_checkpoint(t, tmp_path / "s.pt")
    assert np.allclose(t.tau_m, s.tau_m) and torch.equal(t.w_rec, s.w_rec)
    with pytest.raises(ValueError, match="beta_ahp"):
        init_from_checkpoint(SpikingRNN(3, 2, n_lif=4, n_ahp=2, train_tau=True, beta_ahp=0.5), tmp_path / "s.pt")
    # a run that switches train_tau on starts its time constants from the fixed ones of the checkpoint
    # (its own defaults differ here), with the checkpoint's weights, and learns them
    f = SpikingRNN(3, 2, n_lif=4, n_ahp=2, tau_m=15.0, tau_ahp=300.0, seed=1)
    save_checkpoint(tmp_path / "f.pt", f, epoch=2, best_epoch=2)
    u = SpikingRNN(3, 2, n_lif=4, n_ahp=2, tau_m=15.0, train_tau=True, seed=2)
    assert not np.allclose(u.tau_ahp[4:], 300.0)
    init_from_checkpoint(u, tmp_path / "f.pt")
    for name in ("tau_m", "tau_ahp", "tau_out"):
        np.testing.assert_allclose(getattr(u, name), getattr(f, name), rtol=1e-12, err_msg=name)
    assert torch.equal(u.w_rec, f.w_rec) and torch.equal(u.w_in, f.w_in)
    assert u.log_tau_ahp.requires_grad and u.config()["train_tau"]
    save_checkpoint(tmp_path / "u.pt", u, epoch=1, best_epoch=1)  # what the warm-started run writes loads back
    back = load_model(tmp_path / "u.pt")
    assert back.train_tau and np.allclose(back.tau_ahp, u.tau_ahp, rtol=1e-12)
    # a run without train_tau after one with it: the learned constants, fixed (checked against the
    # source's outputs, computed in float64 from the same decays)
    with torch.no_grad():
        u.log_tau_m.add_(torch.linspace(-0.2, 0.3, 6, dtype=torch.float64))
        u.log_tau_ahp.add_(0.5)
    save_checkpoint(tmp_path / "u2.pt", u, epoch=1, best_epoch=1)
    fixed = SpikingRNN(3, 2, n_lif=4, n_ahp=2, seed=3)
    init_from_checkpoint(fixed, tmp_path / "u2.pt")
    assert not fixed.train_tau and not fixed.config()["train_tau"]
    assert not any(n.startswith("log_tau") for n, _ in fixed.named_parameters())
    for name in ("tau_m", "tau_ahp", "tau_out"):
        np.testing.assert_allclose(getattr(fixed, name), getattr(u, name), rtol=1e-12, err_msg=name)
    assert not np.allclose(fixed.tau_m, 15.0)
    x = (torch.rand(2, 30, 3, generator=torch.Generator().manual_seed(0)) < 0.3).double()
    u64, f64 = u.double(), fixed.double()
    torch.testing.assert_close(f64(x)[0], u64(x)[0], rtol=1e-12, atol=1e-12)
    save_checkpoint(tmp_path / "fixed.pt", fixed, epoch=1, best_epoch=1)
    back = load_model(tmp_path / "fixed.pt")
    assert not back.train_tau and np.allclose(back.tau_m, u.tau_m, rtol=1e-12)
    # and a further fixed-constant run from that one (its own constants, the defaults, are replaced)
    again = SpikingRNN(3, 2, n_lif=4, n_ahp=2, seed=4)
    assert init_from_checkpoint(again, tmp_path / "fixed.pt")["time_constants_replaced"] == ["tau_m", "tau_ahp"]
    torch.testing.assert_close(again.double()(x)[0], u64(x)[0], rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="n_ahp: checkpoint 2, this run 3"):
        init_from_checkpoint(SpikingRNN(3, 2, n_lif=3, n_ahp=3, train_tau=True), tmp_path / "f.pt")


@pytest.mark.parametrize("argv, msg", [
    (["train", "smnist", "--epochs", "0"], "epochs must be an integer >= 1"),
    (["train", "memory", "--lr", "-1"], r"--lr must be a number in \(0, 1\], got -1.0"),
    (["train", "memory", "--lr", "1e38"], r"--lr must be a number in \(0, 1\]"),
    (["train", "memory", "--lr-decay", "2"], r"--lr-decay must be a number in \(0, 1\]"),
    (["train", "memory", "--threads", "100000"], r"--threads: must be in \[1, 1024\]"),
    (["train", "memory", "--time-budget", "nan"], "--time-budget: must be a finite number of seconds > 0"),
    (["train", "memory", "--seed", "-1"], r"--seed: must be in \[0, 2\*\*63 - 1\]"),
    (["train", "memory", "--epochs", "1.5"], "--epochs: invalid int value"),
    (["train", "memory", "--task-opt", "n_train=0"], "task option n_train must be an integer >= 1, got 0"),
    (["train", "memory", "--task-opt", "p_noise=2"], r"task option p_noise must be a number in \[0, 1\), got 2"),
    (["train", "memory", "--task-opt", "delay=abc"], "task option delay must be an integer >= 0, got 'abc'"),
    (["train", "jv", "--task-opt", "repeat=0"], "task option repeat must be an integer >= 1, got 0"),
    (["train", "memory", "--model-opt", "train_tau=maybe"], "train_tau must be True or False, got 'maybe'"),
    (["train", "memory", "--rate-target", "0.05"], "--rate-target has no effect in this run"),
    (["train", "memory", "--loss-mode", "last", "--window", "3"], "--window has no effect in this run"),
    (["train", "memory", "--lr-min", "1e-4"], "--lr-min has no effect in this run: it applies with --lr-schedule "
                                              "cosine or linear"),
    (["train", "memory", "--deep-r-temperature", "0.1"], "--deep-r-temperature has no effect in this run"),
    (["train", "smnist", "--lr", "1e-5", "--epochs", "0"], "--epochs must be an integer >= 1"),
    (["train", "memory", "--task-opt", "foo=1"], r"unknown option\(s\) \['foo'\] for task 'memory'; allowed: n_train"),
    (["train", "memory", "--model-opt", "n_lif=abc"], "n_lif must be an integer >= 0, got 'abc'"),
    (["train", "memory", "--model-opt", "tau=3"], r"unknown model option\(s\) \['tau'\]"),
    (["train", "memory", "--threads", "0"], r"--threads: must be in \[1, 1024\], got 0"),
    (["train", "memory", "--window", "0"], "window must be an integer >= 1, got 0"),
    (["train", "memory", "--window", "351", "--task-opt", "n_train=8"],
     "--window 351 is longer than the task's 350-step sequences"),
    (["train", "memory", "--out", "README.md"], "--out README.md is a file; give a folder"),
    (["train", "memory", "--task-opt", "n_train=8", "--out", "/proc/ahpsim-run"], "--out /proc/ahpsim-run: cannot "
                                                                                   "create the folder"),
    (["eval", "/nonexistent/best.pt"], "no such checkpoint"),
    (["eval", "."], "a directory, not a checkpoint"),
    (["eval", "README.md"], "not an ahpsim checkpoint"),
])
def test_cli_mistakes_are_one_line_with_exit_code_2(argv, msg, capsys, monkeypatch):
    """Every CLI mistake ends in one line naming the option and exit code 2, not a traceback."""
    from ahpsim.cli import main

    monkeypatch.chdir(REPO)
    monkeypatch.delenv("AHPSIM_DEBUG", raising=False)
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own checks (types, choices, ranges)
        code = e.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    import re

    assert re.search(msg, err), err


def test_cli_data_dependent_mistakes(tmp_path, capsys, monkeypatch, data_root):
    """Mistakes found once the data or the file is read: one line, exit code 2."""
    from ahpsim.cli import main

    monkeypatch.delenv("AHPSIM_DEBUG", raising=False)
    (tmp_path / "empty.pt").write_bytes(b"")
    cases = [(["eval", str(tmp_path / "empty.pt")], "not an ahpsim checkpoint"),
             (["train", "memory", "--task-opt", "n_train=8", "--init-from", str(tmp_path / "empty.pt"),
               "--out", str(tmp_path / "x")], "not an ahpsim checkpoint")]
    cases += [(["train", "smnist", "--root", str(data_root), "--task-opt", "n_val=60000"],
               "task option n_val must be below the 60000 training digits"),
              (["train", "smnist", "--root", str(data_root), "--lr", "1e-5", "--out", str(tmp_path / "y")],
               r"--lr-min \(0.0001\) must not exceed --lr \(1e-05\)")]
    import re

    for argv, msg in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and re.search(msg, err), (argv, err)


def test_a_diverged_step_stops_training_before_the_weights(tmp_path):
    """A non-finite loss or gradient raises FloatingPointError before Adam's step: the weights stay as
    they were and no checkpoint is written from that step."""
    from ahpsim.torch.trainer import SequenceData, TrainConfig, Trainer

    m = SpikingRNN(3, 2, n_lif=4, seed=0)
    with torch.no_grad():
        m.w_out[0, 0] = float("nan")
    before = {k: p.detach().clone() for k, p in m.named_parameters()}
    x = torch.rand(8, 20, 3) < 0.3
    data = SequenceData.from_arrays(x.numpy(), np.zeros(8, dtype=np.int64))
    tr = Trainer(m, data, None, TrainConfig(epochs=1, batch_size=4, progress=False, log_epochs=False),
                 ckpt_dir=tmp_path / "run")
    with pytest.raises(FloatingPointError, match="not finite .*epoch 1, batch 1.*lower --lr or with --grad-clip"):
        tr.fit()
    for k, p in m.named_parameters():
        v = p.detach()
        assert torch.equal(v.isnan(), before[k].isnan()) and torch.equal(v.nan_to_num(), before[k].nan_to_num()), k
    assert not (tmp_path / "run" / "last.pt").exists()


def test_cli_key_values_take_json_and_python_literals():
    """--task-opt / --model-opt values: JSON or Python literals, otherwise the text (a Python False must
    not reach the model as the true-ish string "False")."""
    from ahpsim.cli_train import _kv

    assert _kv("train_tau=False") == ("train_tau", False) and _kv("train_tau=false") == ("train_tau", False)
    assert _kv("tasks=[1, 4]") == ("tasks", [1, 4]) and _kv("t=(1, 2)") == ("t", (1, 2))
    assert _kv("name=GunPoint") == ("name", "GunPoint") and _kv("x=1e-3") == ("x", 1e-3)
    with pytest.raises(ValueError, match="train_tau must be True or False, got 'False'"):
        SpikingRNN(3, 2, n_lif=2, train_tau="False")
    # a run recorded before values were parsed (train_tau as the text "True") still resumes
    from ahpsim.cli_train import _as_parsed_now

    assert _as_parsed_now({"train_tau": "True", "surrogate": {"kind": "triangle"}, "reset": "zero"}) == \
        {"train_tau": True, "surrogate": {"kind": "triangle"}, "reset": "zero"}


def test_ucr_task_takes_its_name_option(data_root):
    """make_task's own first argument is positional-only, so the ucr task's ``name`` option reaches it."""
    from ahpsim.torch import make_task

    task = make_task("ucr", data_root, name="GunPoint")
    assert task.name == "gunpoint" and task.spec["options"] == {"name": "GunPoint"}


def test_quantize_refuses_steps_that_underflow():
    m = SpikingRNN(3, 2, n_lif=4, seed=0)
    for bad in (1e-300, 0.0, float("nan"), -1.0):
        with pytest.raises(ValueError, match="step"):
            m.quantize_(bad)
    assert bool(torch.isfinite(m.w_rec).all())
    m.quantize_(2.0 ** -12)
    assert torch.equal(m.w_rec, torch.round(m.w_rec * 4096) / 4096)


def test_cli_loss_mode_and_window_reach_the_run(tmp_path, monkeypatch, capsys):
    """--loss-mode / --window replace the task's readout loss and are recorded with the run."""
    from ahpsim.cli import main

    monkeypatch.delenv("AHPSIM_DEBUG", raising=False)
    out = tmp_path / "run"
    assert main(["train", "memory", "--threads", "1", "--no-progress", "--task-opt", "n_train=32", "--task-opt",
                 "n_test=16", "--task-opt", "n_val=16", "--task-opt", "delay=30", "--epochs", "1", "--out", str(out),
                 "--loss-mode", "window_mean", "--window", "5"]) == 0
    cfg = json.loads((out / "history.json").read_text())["train_config"]
    assert (cfg["loss_mode"], cfg["window"]) == ("window_mean", 5)
    # resuming it with another seed (another batch order) is refused, as another network would be
    assert main(["train", "memory", "--threads", "1", "--no-progress", "--task-opt", "n_train=32", "--task-opt",
                 "n_test=16", "--task-opt", "n_val=16", "--task-opt", "delay=30", "--epochs", "2", "--out", str(out),
                 "--loss-mode", "window_mean", "--window", "5", "--seed", "5"]) == 2
    assert "holds a run of seed 0, not 5: change --seed back" in capsys.readouterr().err
    # resuming it with another learning rate runs, and says what changed
    assert main(["train", "memory", "--threads", "1", "--no-progress", "--task-opt", "n_train=32", "--task-opt",
                 "n_test=16", "--task-opt", "n_val=16", "--task-opt", "delay=30", "--epochs", "2", "--out", str(out),
                 "--loss-mode", "window_mean", "--window", "5", "--lr", "0.003"]) == 0
    err = capsys.readouterr().err
    assert "resumed with settings changed from the checkpoint's: --epochs 1 -> 2, --lr 0.01 -> 0.003" in err
    changes = json.loads((out / "history.json").read_text())["meta"]["config_changes"]
    assert changes[0]["changed"] == {"epochs": [1, 2], "lr": [0.01, 0.003]}


def test_cli_quantize_takes_a_power(tmp_path):
    from ahpsim.cli_train import _power_or_float

    assert _power_or_float("2**-12") == 2.0 ** -12 and _power_or_float("0.5") == 0.5
    import argparse

    for bad in ("abc", "-1", "0", "2**x"):
        with pytest.raises(argparse.ArgumentTypeError):
            _power_or_float(bad)


def test_eval_uses_the_training_runs_root_and_help_lists_options(tmp_path, data_root, capsys):
    """eval finds the data where the training run found it (its --root travels in the checkpoint);
    train --help shows the defaults and every task's options."""
    from ahpsim.cli import build_parser, main

    out = tmp_path / "jv"
    assert main(["train", "jv", "--root", str(data_root), "--out", str(out), "--epochs", "1", "--threads", "1",
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["eval", str(out / "best.pt"), "--n-test", "30", "--threads", "1"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["n_test"] == 30 and 0.0 <= res["torch"]["acc"] <= 1.0
    sub = build_parser()._subparsers._group_actions[0].choices["train"]
    text = " ".join(sub.format_help().split())
    assert "strengths (default 1e-4)" in text and "(default: 0)" in text and "None" not in text and "smnist: perm_seed, n_train, n_test, n_val, encoding" in text


def _torchrun_env():
    import ahpsim

    pkg_parent = str(Path(ahpsim.__file__).resolve().parents[1])
    return dict(os.environ, PYTHONPATH=pkg_parent + os.pathsep + os.environ.get("PYTHONPATH", ""),
                OMP_NUM_THREADS="1")


def _kill_processes_naming(token: str) -> None:
    """Kills every process whose command line contains ``token`` (Linux /proc; elsewhere nothing). torchrun
    starts its workers in sessions of their own, so killing torchrun's process group leaves them."""
    import signal

    proc = Path("/proc")
    if not proc.is_dir():
        return
    for d in proc.iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if token in cmd:
            try:
                os.kill(int(d.name), signal.SIGKILL)
            except OSError:
                pass


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc (Linux)")
def test_processes_left_in_their_own_session_are_found_and_killed(tmp_path):
    """The torchrun harness's clean-up: a process in a session of its own (as torchrun's workers) whose
    command line names the run's folder is killed; another is left alone."""
    token = str(tmp_path / "two")
    code = "import time; time.sleep(120)"
    mine = subprocess.Popen([sys.executable, "-c", code, token], start_new_session=True)
    other = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "one")], start_new_session=True)
    try:
        _kill_processes_naming(token)
        assert mine.wait(timeout=30) != 0
        assert other.poll() is None
    finally:
        for p in (mine, other):
            p.kill()
            p.wait()


def _torchrun(cmd: list, env: dict, out: Path) -> subprocess.CompletedProcess:
    """Runs a torchrun command; if it is still running after 300 s (torchrun has hung under load in CI:
    once in its rendezvous or shutdown, once with its agent gone and a worker waiting), torchrun's process
    group and every process naming ``out`` (its workers) are killed, ``out`` is put back as it was and the
    command runs once more. Output goes to files, not pipes: a worker left behind holds a pipe open, and
    reading it to the end would wait for that worker."""
    import shutil
    import signal
    import tempfile

    backup = out.with_name(out.name + ".before")
    if out.exists():
        shutil.copytree(out, backup)
    for attempt in (1, 2):
        with tempfile.TemporaryFile("w+") as fo, tempfile.TemporaryFile("w+") as fe:
            p = subprocess.Popen(cmd, env=env, stdout=fo, stderr=fe, text=True, start_new_session=True)
            try:
                p.wait(timeout=300)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                _kill_processes_naming(str(out))
                if attempt == 2:
                    raise
                shutil.rmtree(out, ignore_errors=True)
                if backup.exists():
                    shutil.copytree(backup, out)
                continue
            _kill_processes_naming(str(out))  # a worker its agent left behind
            fo.seek(0)
            fe.seek(0)
            return subprocess.CompletedProcess(cmd, p.returncode, fo.read(), fe.read())
    raise AssertionError("unreachable")


def _max_weight_diff(a, b) -> float:
    ma, mb = torch.load(a, weights_only=True)["model"], torch.load(b, weights_only=True)["model"]
    return max(float((ma[k] - mb[k]).abs().max()) for k in ma if torch.is_tensor(ma[k]) and ma[k].is_floating_point())


@pytest.mark.slow
@pytest.mark.parametrize("task", ["memory", "babi"])
def test_torchrun_two_processes_give_the_one_process_weights(tmp_path, task, data_root):
    """``torchrun --nproc_per_node 2 -m ahpsim train`` (DistributedDataParallel, gloo on the CPU): each rank
    takes half of every global batch; rank 0 alone writes checkpoints and reports; the run, stopped after
    one epoch and resumed for a second, ends with the weights of one process trained two epochs on the
    same global batches, to float32 reduction order (measured: 1.3e-6 after 16 steps; bound 1e-5)."""
    if task == "memory":
        opts = ["--task-opt", "n_train=256", "--task-opt", "n_test=64", "--task-opt", "delay=30"]
    else:  # the Relational Network (its own objective) through DDP
        opts = ["--root", str(data_root), "--task-opt", "tasks=[1]", "--task-opt", "size=\"1k\"",
                "--task-opt", "n_train=256", "--model-opt", "n_encoder=16", "--model-opt", "g_layers=[16]",
                "--model-opt", "f_layers=[16]", "--max-batches", "2"]  # few steps: spike flips amplify rounding
    # a schedule that does not depend on --epochs, so that stopping after epoch 1 changes nothing
    base = [task, "--threads", "1", "--no-progress", "--batch-size", "32", "--seed", "0", "--lr-schedule",
            "exponential", "--lr-decay", "0.9", *opts]
    env = _torchrun_env()
    one, two = tmp_path / "one", tmp_path / "two"
    r = subprocess.run([sys.executable, "-m", "ahpsim", "train", *base, "--epochs", "2", "--out", str(one)],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    run = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "ahpsim", "train", *base, "--out", str(two)]
    r1 = _torchrun(run + ["--epochs", "1"], env, two)
    assert r1.returncode == 0, r1.stderr[-2000:]
    assert sum(line.startswith("{") for line in r1.stdout.splitlines()) == 1  # rank 0 reports, once
    r2 = _torchrun(run + ["--epochs", "2"], env, two)
    assert r2.returncode == 0, r2.stderr[-2000:]
    assert "resuming at epoch 2, batch 0" in r2.stderr
    assert _max_weight_diff(one / "last.pt", two / "last.pt") <= 1e-5
    h1 = json.loads((one / "history.json").read_text())["epochs"]
    h2 = json.loads((two / "history.json").read_text())["epochs"]
    assert [e["train_acc"] for e in h1] == pytest.approx([e["train_acc"] for e in h2], abs=0.02)


def test_eval_reports_the_learned_time_constants(data_root):
    """``ahpsim eval`` of a network that trained its time constants (the committed smnist-ahp-tau run)
    prints their min / median / max over neurons, those of exp(log_tau_*) in the checkpoint."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    import ahpsim
    from ahpsim.torch import load_checkpoint

    ckpt = Path(__file__).resolve().parents[1] / "benchmarks" / "runs" / "smnist-ahp-tau" / "best.pt"
    env = dict(os.environ, PYTHONPATH=str(Path(ahpsim.__file__).resolve().parents[1]) + os.pathsep
               + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-m", "ahpsim", "eval", str(ckpt), "--root", str(data_root), "--n-test", "4",
                        "--threads", "1"], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])["time_constants"]
    state = load_checkpoint(ckpt)["model"]
    for name in ("tau_m", "tau_ahp", "tau_out"):
        v = np.exp(state[f"log_{name}"].double().numpy()).ravel()
        v = v[np.asarray(state["_extra_state"]["config"][name]).ravel() > 0]  # neurons that have the constant
        assert got[name] == pytest.approx([v.min(), np.median(v), v.max()], rel=1e-9), name
    assert "tau_a" not in got  # no ALIF neurons


def test_train_and_eval_let_torchs_openmp_workers_wait_passively():
    """``ahpsim train`` / ``eval`` set OMP_WAIT_POLICY=PASSIVE before torch is imported (spinning OpenMP
    workers hold the cores ahpsim's kernel threads need), keep a policy the user set, and change nothing
    once torch is imported (libgomp has read it by then)."""
    code = ("import os, sys; os.environ.pop('OMP_WAIT_POLICY', None)\n"
            "from ahpsim.cli_train import _quiet_openmp_workers as quiet\n"
            "assert 'torch' not in sys.modules\n"
            "quiet(); fresh = os.environ.get('OMP_WAIT_POLICY')\n"
            "os.environ['OMP_WAIT_POLICY'] = 'ACTIVE'; quiet(); kept = os.environ['OMP_WAIT_POLICY']\n"
            "del os.environ['OMP_WAIT_POLICY']; import torch; quiet()\n"
            "print(fresh, kept, os.environ.get('OMP_WAIT_POLICY'))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-1500:]
    assert r.stdout.split() == ["PASSIVE", "ACTIVE", "None"]


def _small_run(tmp_path, **cfg_extra):
    from ahpsim.torch.trainer import SequenceData

    x, y = delayed_classification(96, delay=20, seed=1)
    data = SequenceData.from_arrays(x, y)
    cfg = dict(epochs=2, batch_size=16, lr=1e-2, progress=False, ckpt_every=2, loss_mode="window", window=5,
               **cfg_extra)

    def new():
        return SpikingRNN(25, 4, n_lif=10, n_ahp=10, w_in_scale=3.0, seed=0, dtype=torch.float64)

    return data, cfg, new


def test_weight_averaging_follows_the_closed_form_and_is_what_is_selected(tmp_path):
    """ema_decay: the averaged weights equal a numpy exponential moving average of the weights after each
    optimizer step (the first step's weights as its start); validation scores and best.pt hold the
    averaged network, not the trained one."""
    data, cfg, new = _small_run(tmp_path, ema_decay=0.8)
    model = new()
    tr = Trainer(model, data, data, TrainConfig(**cfg), ckpt_dir=tmp_path)
    seen = []
    orig = tr.train_step

    def recording(*a, **k):
        out = orig(*a, **k)
        seen.append({n: p.detach().numpy().copy() for n, p in model.named_parameters()})
        return out

    tr.train_step = recording
    averaged = []  # the averaged weights at the end of each epoch, when the epoch is validated
    tr.on_epoch = lambda rec: averaged.append([p.detach().clone() for p in tr.ema.module.parameters()])
    tr.fit()
    assert len(seen) == 12
    for name, p in tr.ema.module.named_parameters():
        avg = seen[0][name]
        for w in seen[1:]:
            avg = 0.8 * avg + 0.2 * w[name]
        np.testing.assert_allclose(p.detach().numpy(), avg, rtol=1e-12, atol=1e-14)
        assert not np.allclose(avg, seen[-1][name])  # (the average is not the last weights)
    last_val = tr.history[-1]["val_acc"]
    assert evaluate(tr.ema.module, data, 256, cfg["loss_mode"], cfg["window"])["acc"] == last_val
    best = load_model(tmp_path / "best.pt")
    at_best = tr.history[tr.best_epoch - 1]["val_acc"]
    assert evaluate(best, data, 256, cfg["loss_mode"], cfg["window"])["acc"] == at_best
    for (n, _), p, q in zip(tr.ema.module.named_parameters(), averaged[tr.best_epoch - 1], best.parameters()):
        assert torch.equal(p, q), n


def test_weight_averaging_resumes_bit_for_bit_and_refuses_a_changed_setting(tmp_path):
    """A run with ema_decay killed mid-epoch and resumed ends with the trained and the averaged weights of
    an uninterrupted run, bit for bit (from last.pt and from portable.pt's averaged weights alike); a
    checkpoint written with (without) averaging is not resumed by a trainer set without (with) it."""
    data, cfg, new = _small_run(tmp_path, ema_decay=0.9, lr_schedule="cosine", portable_checkpoint=True)
    ref = Trainer(new(), data, data, TrainConfig(**cfg))
    ref.fit()
    tr2 = _killed_then_resumed(new, data, cfg, tmp_path)
    m2 = tr2.model
    tr2.fit(resume=False)
    for a, b in zip(ref.model.parameters(), m2.parameters()):
        assert torch.equal(a, b)
    for a, b in zip(ref.ema.module.parameters(), tr2.ema.module.parameters()):
        assert torch.equal(a, b)
    assert [h["val_acc"] for h in ref.history] == [h["val_acc"] for h in tr2.history]
    # the portable file carries the averaged weights too
    pc = torch.load(tmp_path / "portable.pt", weights_only=True)
    for n, p in tr2.ema.module.named_parameters():
        assert torch.equal(pc["ema"]["parameters"][n], p)
    no_ema = {k: v for k, v in cfg.items() if k != "ema_decay"}
    with pytest.raises(ValueError, match="with weight averaging"):
        Trainer(new(), data, data, TrainConfig(**no_ema), ckpt_dir=tmp_path).try_resume()
    other = tmp_path / "plain"
    Trainer(new(), data, data, TrainConfig(**{**no_ema, "epochs": 1}), ckpt_dir=other).fit()
    with pytest.raises(ValueError, match="without weight averaging"):
        Trainer(new(), data, data, TrainConfig(**cfg), ckpt_dir=other).try_resume()


@pytest.mark.parametrize("bad", [0, 1, 1.0, -0.5, True, "0.9", float("nan")])
def test_ema_decay_range(bad):
    with pytest.raises(ValueError, match="ema_decay must be a number in \\(0, 1\\)"):
        TrainConfig(ema_decay=bad)


def test_resume_with_changed_settings_is_recorded(tmp_path):
    """A run resumed with another learning rate or schedule says so: the trainer lists the changed
    fields (old and new value) and keeps every such change, with where it happened, in the run's metadata
    (history.json), across later resumes too; unchanged settings record nothing."""
    data, cfg, new = _small_run(tmp_path)
    tr = Trainer(new(), data, data, TrainConfig(**{**cfg, "epochs": 1}), ckpt_dir=tmp_path)
    tr.fit()
    same = Trainer(new(), data, data, TrainConfig(**{**cfg, "epochs": 1}), ckpt_dir=tmp_path)
    assert same.try_resume() and same.resumed_changes == {} and "config_changes" not in same.meta
    tr2 = Trainer(new(), data, data, TrainConfig(**{**cfg, "epochs": 2, "lr": 5e-3}), ckpt_dir=tmp_path)
    assert tr2.try_resume()
    assert tr2.resumed_changes == {"epochs": [1, 2], "lr": [1e-2, 5e-3]}
    tr2.fit(resume=False)
    rec = json.loads((tmp_path / "history.json").read_text())["meta"]["config_changes"]
    assert rec == [{"epoch": 2, "batch": 0, "step": 6, "changed": {"epochs": [1, 2], "lr": [1e-2, 5e-3]}}]
    tr3 = Trainer(new(), data, data, TrainConfig(**{**cfg, "epochs": 3, "lr": 5e-3, "grad_clip": 1.0}),
                  ckpt_dir=tmp_path)
    assert tr3.try_resume()
    assert [c["changed"] for c in tr3.meta["config_changes"]] == [
        {"epochs": [1, 2], "lr": [1e-2, 5e-3]}, {"epochs": [2, 3], "grad_clip": [None, 1.0]}]


def test_weight_noise_takes_the_gradient_at_the_perturbed_weights(tmp_path):
    """weight_noise: a training step's gradient is the loss gradient at the weight matrices multiplied by
    1 + std * n (n drawn from (seed, step); recomputed here by hand), and the step updates the unperturbed
    weights (plain SGD: w - lr * gradient); absent synapses stay absent; vectors (biases) get no noise."""
    data, cfg, new = _small_run(tmp_path, weight_noise=0.05)
    model = new()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    tr = Trainer(model, data, data, TrainConfig(**cfg))
    tr.opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, lab, ln = data.get(np.arange(16))
    tr.train_step(x, lab, ln)
    # the reference: perturb a copy by hand with the same draw, take its gradient
    ref = new()
    from ahpsim.torch.trainer import noise_seed

    gen = torch.Generator().manual_seed(noise_seed(0, 0))  # (the run's seed, step 0)
    with torch.no_grad():
        for p in ref.parameters():
            if p.dim() >= 2:
                p.mul_(1 + 0.05 * torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype))
    loss, *_ = batch_objective(ref, x, lab, ln, TrainConfig(**cfg))
    loss.backward()
    for (n, p), q in zip(model.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p.detach(), before[n] - 0.1 * q.grad, rtol=1e-12, atol=1e-14)
    assert torch.equal(model.w_rec.detach()[model.rec_mask == 0], torch.zeros_like(model.w_rec)[model.rec_mask == 0])
    # without noise the gradient differs (the draw mattered)
    plain = new()
    loss, *_ = batch_objective(plain, x, lab, ln, TrainConfig(**cfg))
    loss.backward()
    assert not torch.allclose(plain.w_rec.grad, ref.w_rec.grad)


def test_weight_noise_resumes_bit_for_bit(tmp_path):
    data, cfg, new = _small_run(tmp_path, weight_noise=0.02)
    ref = Trainer(new(), data, data, TrainConfig(**cfg))
    ref.fit()
    tr2 = _killed_then_resumed(new, data, cfg, tmp_path)
    m2 = tr2.model
    tr2.fit(resume=False)
    for a, b in zip(ref.model.parameters(), m2.parameters()):
        assert torch.equal(a, b)
    assert [h["val_acc"] for h in ref.history] == [h["val_acc"] for h in tr2.history]


@pytest.mark.parametrize("bad", [0, -0.1, 1.5, True, float("inf")])
def test_weight_noise_range(bad):
    with pytest.raises(ValueError, match="weight_noise must be a number in \\(0, 1\\]"):
        TrainConfig(weight_noise=bad)


def test_perturb_weights_is_relative_gaussian_seeded_and_restorable(tmp_path):
    """perturb_weights_: each weight matrix entry moves by the factor 1 + s n with n standard normal
    (checked by the moments of n over the 20,000 recurrent and input weights), zeros stay zero, biases are
    untouched, the same seed draws the same noise, and the returned copies restore the model exactly.
    benchmarks/weight_sensitivity.py on it: a vanishing scale gives the unperturbed accuracy."""
    from ahpsim.torch import perturb_weights_

    m = SpikingRNN(100, 4, n_lif=60, n_ahp=40, p_rec=0.5, bias=True, seed=1, dtype=torch.float64)
    with torch.no_grad():
        m.bias.fill_(0.3)
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    clean = perturb_weights_(m, 0.01, seed=5)
    assert {id(p) for p, _ in clean} == {id(m.w_in), id(m.w_rec), id(m.w_out)}
    nz = before["w_rec"] != 0
    assert torch.equal(m.w_rec[~nz], before["w_rec"][~nz])
    n = torch.cat([((m.w_rec[nz] / before["w_rec"][nz]) - 1) / 0.01,
                   ((m.w_in / before["w_in"]) - 1).flatten() / 0.01]).detach()
    assert n.numel() > 9000 and abs(float(n.mean())) < 0.05 and abs(float(n.std()) - 1) < 0.05
    assert torch.equal(m.bias, before["bias"])
    again = SpikingRNN(100, 4, n_lif=60, n_ahp=40, p_rec=0.5, bias=True, seed=1, dtype=torch.float64)
    with torch.no_grad():
        again.bias.fill_(0.3)
    perturb_weights_(again, 0.01, seed=5)
    assert torch.equal(again.w_rec, m.w_rec)
    with torch.no_grad():
        for p, w in clean:
            p.copy_(w)
    for name, p in m.named_parameters():
        assert torch.equal(p, before[name])
    # the benchmark's measurement on a small trained-free network and its validation data
    import importlib.util

    spec = importlib.util.spec_from_file_location("weight_sensitivity", REPO / "benchmarks" / "weight_sensitivity.py")
    ws = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ws)
    data, cfg, new = _small_run(tmp_path)
    tr = Trainer(new(), data, data, TrainConfig(**{**cfg, "epochs": 1}), ckpt_dir=tmp_path)
    tr.fit()
    r = ws.sensitivity(tmp_path / "best.pt", data, [1e-12, 0.5], draws=3, loss_mode="window", window=5)
    assert r["scales"]["1e-12"]["acc"] == [r["unperturbed"]] * 3
    assert r["scales"]["0.5"]["sd"] > 0 or r["scales"]["0.5"]["mean"] != r["unperturbed"]
