"""The bAbI Relational Network (ahpsim.torch.relational): pair construction, masking of absent sentences
and answer decoding against hand-computed values, the whole forward pass against a plain per-pair loop,
the spiking encoder against the exported kernel network, the babi task's story-wise validation split,
and a tiny training run."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ahpsim.torch.relational import (BabiBatch, RelationalNetwork, SpikingEncoder,  # noqa: E402
                                     decode_answers, pair_indices, word_spikes)

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("torch_one_thread")]

VOCAB = ["<pad>", "bathroom", "garden", "is", "john", "mary", "moved", "the", "to", "where", "went"]
W = {w: i for i, w in enumerate(VOCAB)}


def _sentence(text, width):
    ids = [W[w] for w in text.split()]
    return ids + [0] * (width - len(ids))


def _tiny_batch(S=4, width=6):
    """Two stories: 3 sentences and 1 sentence; padding rows and words are 0."""
    s1 = ["mary moved to the bathroom", "john went to the garden", "mary went to the garden"]
    s2 = ["john moved to the bathroom"]
    story = np.zeros((2, S, width), np.int64)
    for b, sents in enumerate((s1, s2)):
        for k, t in enumerate(sents):
            story[b, k] = _sentence(t, width)
    q = np.array([_sentence("where is mary", 4), _sentence("where is john", 4)], np.int64)
    return BabiBatch(torch.as_tensor(story), torch.tensor([3, 1]), torch.as_tensor(q), torch.tensor([3, 3]))


def test_pair_indices_hand_computed():
    b, i, j = pair_indices(torch.tensor([2, 0, 3]), 3)
    assert b.tolist() == [0, 0, 0, 2, 2, 2, 2, 2, 2]
    assert list(zip(i.tolist(), j.tolist())) == [(0, 0), (0, 1), (1, 1),
                                                 (0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
    # a full story of 20 sentences: the authors' 210 copies of g
    assert pair_indices(torch.tensor([20]), 20)[0].numel() == 210
    with pytest.raises(ValueError, match="lengths must lie in 0..3"):
        pair_indices(torch.tensor([4]), 3)


def test_word_spikes_hold_each_word():
    x = word_spikes(torch.tensor([[3, 1]]), 5, 2)
    assert x.shape == (1, 4, 5)
    expected = np.zeros((4, 5))
    expected[0:2, 3] = 1
    expected[2:4, 1] = 1
    np.testing.assert_array_equal(x[0].numpy(), expected)
    xb = word_spikes(torch.tensor([[3, 1]]), 5, 2, torch.bool)  # what the spiking encoders feed their layer
    assert xb.dtype == torch.bool and np.array_equal(xb[0].numpy(), expected.astype(bool))


def test_decode_answers():
    logits = torch.tensor([[0.0, 1.0, 5.0, 0.0], [3.0, 0.0, 0.0, 4.0]])
    assert decode_answers(logits, ["<pad>", "a", "b", "c"]) == ["b", "c"]
    assert decode_answers(torch.tensor([1, 3]), ["<pad>", "a", "b", "c"]) == ["a", "c"]
    with pytest.raises(ValueError, match="3 words"):
        decode_answers(logits, ["<pad>", "a", "b"])


def _model(encoder="ahp", dtype=torch.float64, **kw):
    return RelationalNetwork(len(VOCAB), encoder, 12, max_sentences=4, g_layers=(16, 16), f_layers=(16,),
                             steps_per_word=3, vocab=VOCAB, seed=3, dtype=dtype, **kw)


def _reference_logits(model, batch):
    """A plain loop: each sentence encoded on its own, g on every pair i <= j < L through the full
    first-layer matrix [A | B | C] on the concatenated input, summed, scaled by 1/S, then f."""
    story, L, q, Lq = batch
    S = model.max_sentences
    Wfull = torch.cat([model.g_first_i.weight, model.g_first_j.weight, model.g_first_q.weight], 1)
    out = []
    for b in range(story.shape[0]):
        Lb = int(L[b])
        objs = []
        for s in range(Lb):
            toks = story[b, s][story[b, s] > 0][None]
            e, _, _ = model.sentence_encoder(toks, torch.tensor([toks.shape[1]]))
            tag = torch.zeros(1, S, dtype=e.dtype)
            tag[0, Lb - 1 - s] = 1
            objs.append(torch.cat([e, tag], 1)[0])
        qt = q[b][q[b] > 0][None]
        eq = model.question_encoder(qt, torch.tensor([qt.shape[1]]))[0][0]
        acc = torch.zeros(model.g_first_i.out_features, dtype=e.dtype)
        for i in range(Lb):
            for j in range(i, Lb):
                h = torch.relu(Wfull @ torch.cat([objs[i], objs[j], eq]) + model.g_first_i.bias)
                for lin in model.g:
                    h = torch.relu(lin(h))
                acc = acc + h
        x = acc / S
        for k, lin in enumerate(model.f):
            x = lin(x)
            if k < len(model.f) - 1:
                x = torch.relu(x)
        out.append(x)
    return torch.stack(out)


@pytest.mark.parametrize("encoder", ["ahp", "lif", "lstm"])
def test_forward_equals_a_per_pair_loop(encoder):
    model = _model(encoder)
    batch = _tiny_batch()
    with torch.no_grad():
        got = model(batch)
        ref = _reference_logits(model, batch)
    torch.testing.assert_close(got.logits, ref, rtol=1e-10, atol=1e-10)
    assert got.n_pairs == 3 * 4 // 2 + 1
    if encoder != "lstm":
        assert got.spikes > 0 and got.neuron_steps == (4 * 5 + 2 * 3) * 3 * 12  # 4 distinct sentences, 2 questions


def test_absent_sentences_and_padding_change_nothing():
    model = _model()
    batch = _tiny_batch()
    with torch.no_grad():
        base = model(batch).logits
        junk = batch.story.clone()
        junk[0, 3] = torch.tensor([W["john"], W["went"], W["to"], W["the"], W["garden"], 0])  # row 3 absent
        junk[1, 1:] = W["mary"]
        a = model(batch._replace(story=junk)).logits
        wider = torch.nn.functional.pad(batch.story, (0, 3))  # more padding words
        b = model(batch._replace(story=wider)).logits
        short = batch._replace(story=batch.story[:, :3])  # fewer padding rows
        c = model(short).logits
    for other in (a, b, c):
        torch.testing.assert_close(other, base, rtol=0, atol=0)
    # a story cut to its first sentence is a different question
    with torch.no_grad():
        d = model(batch._replace(story_lengths=torch.tensor([1, 1]))).logits
    assert not torch.allclose(d[0], base[0])
    # question 1's pairs are the same, but the batch's pair count changes the shape of g's matrix
    # products, and BLAS may then round differently (seen on a Xeon with oneDNN): equal to float64 rounding
    torch.testing.assert_close(d[1], base[1], rtol=1e-12, atol=1e-14)


def test_bad_batches_raise():
    model = _model()
    batch = _tiny_batch()
    with pytest.raises(TypeError, match="BabiBatch"):
        model(tuple(batch))
    with pytest.raises(ValueError, match="word indices must lie in 0..10"):
        model(batch._replace(question=batch.question + 20))
    with pytest.raises(ValueError, match="at most 4"):
        model(batch._replace(story=torch.zeros(2, 5, 6, dtype=torch.int64)))
    with pytest.raises(ValueError, match="encoder must be one of"):
        RelationalNetwork(11, "gru")
    with pytest.raises(ValueError, match="vocab has 2 words"):
        RelationalNetwork(11, "lif", vocab=["a", "b"])


def test_encoding_is_the_spike_trace():
    """The encoding is sum_t kappa^(T-1-t) z[t-1] of the encoder's own spikes (numpy reference)."""
    enc = SpikingEncoder(len(VOCAB), 6, 6, steps_per_word=4, tau_trace=5.0, seed=1, dtype=torch.float64,
                         w_in_scale=6.0)
    toks = torch.tensor([[W["mary"], W["moved"], W["to"], W["the"], W["bathroom"]]])
    e, spikes, _ = enc(toks, torch.tensor([5]))
    z = enc.rnn(word_spikes(toks, len(VOCAB), 4, torch.float64)).z[0].detach().numpy()
    T = z.shape[0]
    kappa = math.exp(-1 / 5.0)
    ref = sum(kappa ** (T - 1 - t) * z[t - 1] for t in range(1, T))
    assert spikes == z.sum() > 0
    np.testing.assert_allclose(e[0].detach().numpy(), ref, rtol=1e-12, atol=1e-12)


def test_encoder_spikes_equal_the_exported_kernel_network():
    from ahpsim.torch.export import run_network, to_network

    model = _model(dtype=torch.float32)
    batch = _tiny_batch()
    rnn = model.sentence_encoder.rnn
    toks = batch.story[0, :3]
    for k in range(3):
        t = toks[k][toks[k] > 0][None]
        x = word_spikes(t, len(VOCAB), 3)
        with torch.no_grad():
            out = rnn(x)
        z, y = run_network(to_network(rnn), x)
        np.testing.assert_array_equal(z, out.z.numpy().astype(bool))
        np.testing.assert_allclose(y[:, -1], out.y[:, -1].numpy(), rtol=1e-6, atol=1e-6)


def test_gradients_reach_both_encoders_and_state_round_trips():
    model = _model(dtype=torch.float32, encoder_options={"w_in_scale": 6.0})
    batch = _tiny_batch()
    loss = torch.nn.functional.cross_entropy(model(batch).logits, torch.tensor([W["garden"], W["bathroom"]]))
    loss.backward()
    for enc in (model.sentence_encoder, model.question_encoder):
        assert float(enc.rnn.w_in.grad.abs().sum()) > 0
        assert enc.rnn.w_out.grad is None  # the identity trace weights stay fixed
    again = RelationalNetwork.from_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(again(batch).logits, model(batch).logits, rtol=0, atol=0)
    assert again.vocab == VOCAB


def test_babi_task_splits_validation_by_story(data_root):
    from ahpsim.torch.tasks import build_model, make_task

    task = make_task("babi", root=data_root, tasks=[1, 3], size="10k", val_fraction=0.1)
    assert "tasks [3] from the 1k files" in task.notes
    tr_b, _, _ = task.train.get(np.arange(len(task.train)))
    assert sorted(np.unique(task.test.groups).tolist()) == [1, 3]
    assert len(task.test) == 2000
    # task 1: 10,000 training questions in 2,000 stories of 5; task 3: 1,000 questions (1k file)
    assert len(task.train) + len(task.val) == 11000
    assert np.bincount(task.val.groups)[[1, 3]].tolist() == [1000, 100]
    model = build_model(task, "lstm", n_encoder=8, g_layers=[8], f_layers=[8])
    assert model.vocab[0] == "<pad>" and len(model.vocab) == task.n_in
    with pytest.raises(ValueError, match="unknown model option"):
        build_model(task, "ahp", n_neurons=3)


@pytest.mark.slow
def test_tiny_run_learns_task_1(data_root):
    """200 training stories of task 1 (1k): the AHP Relational Network beats the majority answer."""
    from ahpsim.torch.tasks import build_model, make_task
    from ahpsim.torch.trainer import TrainConfig, Trainer, evaluate

    task = make_task("babi", root=data_root, tasks=[1], size="1k", val_fraction=0.0)
    model = build_model(task, "ahp", n_encoder=40, g_layers=[64, 64], f_layers=[64])
    cfg = TrainConfig(epochs=6, batch_size=32, lr=2e-3, progress=False, grad_clip=5.0)
    Trainer(model, task.train, None, cfg).fit()
    res = evaluate(model, task.test)
    majority = np.bincount(task.test.labels).max() / len(task.test)
    assert res["acc"] > majority + 0.15, (res, majority)
    assert 0 < res["rate"] < 0.3
    # g and f as rate-coded integrate-and-fire layers on the kernel: nearly the ReLU network's answers
    from ahpsim.torch.relational import IFHead, KernelRelationalNetwork

    calib, _, _ = task.train.get(np.arange(0, len(task.train), 8))  # calibration on training data
    batch, answers, _ = task.test.get(np.arange(0, len(task.test), 4))
    relu = KernelRelationalNetwork(model)(batch).logits.argmax(1)
    spiking = KernelRelationalNetwork(model, head=IFHead(model, calib, steps=50))
    pred = spiking(batch).logits.argmax(1)
    assert np.mean(pred == relu) > 0.85
    assert np.mean(pred == answers.numpy()) > majority + 0.1
    stats = spiking.last_head_stats
    assert 0 < stats["g_rate"] < 0.5 and 0 < stats["f_rate"] < 1 and stats["steps"] == 50
    # the encoders on the Loihi 1 integer engine (quantized): nearly the float encoders' answers
    loihi = KernelRelationalNetwork(model, engine="loihi")
    lout = loihi(batch)
    assert np.mean(lout.logits.argmax(1) == relu) > 0.85
    assert 0.8 < lout.spikes / KernelRelationalNetwork(model)(batch).spikes < 1.25
    # every stage on the integer engine (g's first layer as the injected spike source): nearly the
    # float spiking network's answers
    whole = KernelRelationalNetwork(model, engine="loihi", head=IFHead(model, calib, steps=50, engine="loihi"))
    wpred = whole(batch).logits.argmax(1)
    assert np.mean(wpred == pred) > 0.8 and whole.last_head_stats["overflows"] == 0


def test_cli_rejects_lstm_outside_babi():
    r = subprocess.run([sys.executable, "-m", "ahpsim", "train", "memory", "--neurons", "lstm"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].endswith("--neurons lstm (an LSTM encoder) exists for the babi task only")


def test_kernel_deployment_agrees_spike_for_spike_on_real_test_stories(data_root):
    """The model's encoders exported to the C++ kernel, g and f in numpy: the same spikes for every
    distinct sentence and question of 64 real test stories of all 20 tasks, the same answers."""
    from ahpsim.torch.relational import KernelRelationalNetwork
    from ahpsim.torch.tasks import build_model, make_task

    task = make_task("babi", root=data_root, size="1k", val_fraction=0.0)
    model = build_model(task, "ahp", n_encoder=40, g_layers=[32, 32], f_layers=[32], seed=2)
    idx = np.arange(0, len(task.test), len(task.test) // 64)[:64]
    batch, answers, _ = task.test.get(idx)
    with torch.no_grad():
        out = model(batch)
    kernel = KernelRelationalNetwork(model)
    kout, kspikes = kernel(batch, return_spikes=True)
    assert kout.spikes == out.spikes > 0 and kout.neuron_steps == out.neuron_steps
    np.testing.assert_allclose(kout.logits, out.logits.numpy(), rtol=1e-4, atol=1e-4)
    assert (kout.logits.argmax(1) == out.logits.argmax(1).numpy()).all()
    # each distinct sentence's spike train equals the torch model's
    enc = model.sentence_encoder
    for key, z in list(kspikes.items())[:20]:
        toks = torch.tensor([key[1:]])
        m = enc if key[0] == "s" else model.question_encoder
        with torch.no_grad():
            zt = m.rnn(word_spikes(toks, model.vocab_size, m.steps_per_word)).z[0].numpy().astype(bool)
        np.testing.assert_array_equal(z, zt)
    with pytest.raises(ValueError, match="no spiking encoders"):
        KernelRelationalNetwork(build_model(task, "lstm", n_encoder=8, g_layers=[8], f_layers=[8]))


def test_saved_deployment_runs_without_torch_and_gives_the_same_answers(tmp_path, data_root):
    """``KernelRelationalNetwork.save`` -> ``ahpsim.relnet.load_relnet`` in a fresh interpreter where
    importing torch fails: the same logits (float engine) and the same answer words as the torch model on
    real test stories; the IF head's scales travel with it; bad input names the argument."""
    import json

    from ahpsim.relnet import load_relnet
    from ahpsim.torch.relational import IFHead, KernelRelationalNetwork
    from ahpsim.torch.tasks import build_model, make_task

    task = make_task("babi", root=data_root, tasks=[1, 6], size="1k", val_fraction=0.0)
    model = build_model(task, "ahp", n_encoder=24, g_layers=[32, 32], f_layers=[32], seed=3)
    batch, answers, _ = task.test.get(np.arange(0, 40))
    calib, _, _ = task.train.get(np.arange(0, 200, 4))
    kernel = KernelRelationalNetwork(model, head=IFHead(model, calib, steps=20, v_init=0.5,
                                                               f_percentile=99.5, reset="zero",
                                                               drain=True))  # saved too
    kernel.save(tmp_path / "net")
    ref = KernelRelationalNetwork(model)(batch).logits
    ref_if = kernel(batch).logits
    arrays = tmp_path / "batch.npz"
    np.savez(arrays, *(t.numpy() for t in batch))
    code = f"""
import sys, json, numpy as np
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, NoTorch())
from ahpsim.relnet import load_relnet
d = np.load({str(arrays)!r})
b = [d[f"arr_{{k}}"] for k in range(4)]
relu = load_relnet({str(tmp_path / "net")!r}, head=False)
spk = load_relnet({str(tmp_path / "net")!r})
print(json.dumps({{"relu": relu.run(*b).logits.tolist(), "if": spk.run(*b).logits.tolist(),
                  "answers": relu.answer(*b), "torch_loaded": "torch" in sys.modules}}))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert not out["torch_loaded"]
    np.testing.assert_allclose(np.array(out["relu"]), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.array(out["if"]), ref_if, rtol=1e-5, atol=1e-5)
    assert out["answers"] == decode_answers(torch.as_tensor(ref), model.vocab)
    spk_net = load_relnet(tmp_path / "net")
    res = spk_net.run(*(t.numpy() for t in batch))
    ops = spk_net.operation_counts()
    assert ops["sentence_encoder"]["spikes"] + ops["question_encoder"]["spikes"] == res.spikes
    trial_steps = ops["sentence_encoder"]["trial_steps"] + ops["question_encoder"]["trial_steps"]
    n_readout = spk_net.float_sentence["out"].n  # readout neurons are updated too, but never spike
    assert ops["sentence_encoder"]["neuron_updates"] + ops["question_encoder"]["neuron_updates"] == \
        res.neuron_steps + trial_steps * n_readout
    assert ops["g"]["spikes"] == spk_net.last_head_stats["g_spikes"] and ops["g"]["trials"] == res.n_pairs
    # the chip layout's resources: 20 sentence encoders (12 LIF + 12 two-compartment AHP + 24 readouts),
    # 210 copies of g (32 + 32 units), f (32 + the readout) fed by every copy
    r = spk_net.resources()
    S, P, V = 20, 210, model.vocab_size
    assert r["stages"]["sentence_encoder"]["compartments"] == 12 + 2 * 12 + 24
    assert r["stages"]["g_first_layer"]["compartments"] == 32 and r["stages"]["g_later_layers"]["compartments"] == 32
    assert r["stages"]["f"]["compartments"] == 32 + V
    assert r["compartments"] == S * 60 + 60 + P * 64 + 32 + V
    assert r["stages"]["g_first_layer"]["synapses"] == 32 * (2 * (24 + S) + 24)
    assert r["chips"] >= 1 and r["cores"] >= S + 1 + 2 * P + 1
    loaded = load_relnet(tmp_path / "net", engine="loihi", head=False)
    assert (loaded.run(*batch).logits.argmax(1) == KernelRelationalNetwork(model, engine="loihi")(batch)
            .logits.argmax(1)).all()
    with pytest.raises(FileNotFoundError, match="no relnet.npz"):
        load_relnet(tmp_path)
    with pytest.raises(ValueError, match="engine must be one of"):
        load_relnet(tmp_path / "net", engine="gpu")
    with pytest.raises(ValueError, match="question: word indices must lie in 0.."):
        loaded.run(batch[0].numpy(), batch[1].numpy(), batch[2].numpy() + 1000, batch[3].numpy())
    with pytest.raises(TypeError, match="story: expected an integer array"):
        loaded.run(batch[0].numpy().astype(float), batch[1].numpy(), batch[2].numpy(), batch[3].numpy())
    s, L, q, Lq = (t.numpy().copy() for t in batch)
    with pytest.raises(ValueError, match="question_lengths disagree"):
        loaded.run(s, L, q, Lq + 1)
    with pytest.raises(ValueError, match="story_lengths must lie in 0.."):
        loaded.run(s, L + 100, q, Lq)
    with pytest.raises(ValueError, match="at least one question"):
        loaded.run(s[:0], L[:0], q[:0], Lq[:0])
    holey = s.copy()
    holey[0, 0, 1] = 0  # a padding index inside the first sentence
    with pytest.raises(ValueError, match="left-aligned"):
        loaded.run(holey, L, q, Lq)


def test_numpy_pairs_and_word_spikes_match_torch():
    from ahpsim.relnet import pair_indices_np, word_spikes_np

    L = np.array([2, 0, 3, 5])
    for a, t in zip(pair_indices_np(L, 5), pair_indices(torch.as_tensor(L), 5)):
        np.testing.assert_array_equal(a, t.numpy())
    toks = np.array([[3, 1, 4], [2, 2, 1]])
    np.testing.assert_array_equal(word_spikes_np(toks, 6, 3), word_spikes(torch.as_tensor(toks), 6, 3).numpy() > 0)


def test_if_head_first_layer_equals_a_numpy_integrate_and_fire():
    """The converted g's first layer: non-leaky IF neurons, threshold 1, reset by subtraction, driven by
    the pair's scaled input current (float32, the same arithmetic as a plain numpy loop)."""
    from ahpsim.torch.relational import IFHead, relu_activations

    model = _model(dtype=torch.float32, encoder_options={"w_in_scale": 6.0})
    batch = _tiny_batch()
    head = IFHead(model, batch, steps=40, percentile=99.0)
    acts = relu_activations(model, batch)
    assert head.lam_g[0] == pytest.approx(np.percentile(acts["g"][0][acts["g"][0] > 0], 99.0))
    rng = np.random.default_rng(0)
    cur = rng.uniform(-0.5, 1.5, (3, 16)).astype(np.float32)
    head.g_net.reset_state()
    res = head.g_net.run(40, inputs={"x": np.repeat(cur[:, None, :], 40, 1)})
    z = res.raster("g1")
    v = np.zeros_like(cur)
    ref = np.zeros_like(z)
    for t in range(40):
        v = np.float32(1.0) * v + cur
        ref[:, t] = v > 1.0
        v = v - ref[:, t].astype(np.float32)
    np.testing.assert_array_equal(z, ref)
    # rates follow the ReLU of the current (at most one spike per step)
    np.testing.assert_allclose(z.mean(1), np.clip(cur, 0, 1), atol=1 / 40 + 1e-6)
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        IFHead(model, batch, steps=0)


def test_loihi_if_head_sums_pair_copies_as_the_chip_does():
    """f on the integer engine receives K channels per unit of g's last layer (channel k * H + h spikes
    when at least k + 1 pairs' unit h spiked): its first layer's integer input current equals the
    effective integer weight times the count, as one synapse per pair copy would give (numpy reference)."""
    from ahpsim.relnet import IFHead

    rng = np.random.default_rng(4)
    g = [(rng.normal(0, 0.5, (3, 4)), rng.normal(0, 0.1, 3))]
    f = [(rng.normal(0, 0.5, (5, 3)), rng.normal(0, 0.1, 5)), (rng.normal(0, 0.5, (2, 5)), np.zeros(2))]
    head = IFHead(4, g, f, [1.0, 1.0], [1.0], max_sentences=2, steps=5, engine="loihi")
    K = 8
    q = head._quantize(head._describe_f(K), "f")
    proj = next(p for p in q.net.projections if p["name"] == "x->f1")
    eff = np.zeros((5, K * 3), np.int64)
    eff[proj["post"], proj["pre"]] = proj["weight_mantissa"] * 2 ** (6 + proj["weight_exponent"])
    np.testing.assert_array_equal(eff, np.tile(eff[:, :3], (1, K)))  # the same weight for every copy
    counts = np.array([[0, 3, 8], [5, 1, 0]])
    x = (counts[:, None, :] > np.arange(K)[None, :, None]).reshape(2, 1, K * 3)
    q.reset_state()
    res = q.run(1, inputs={"x": x}, record_uv=["f1"])
    np.testing.assert_array_equal(res.u("f1")[:, 0], counts @ eff[:, :3].T)
    # the whole head runs; its stats count spikes on both engines
    pre1 = rng.normal(0.5, 0.5, (6, 4))
    logits, stats = head(pre1, np.array([0, 0, 0, 1, 1, 1]), 2)
    assert logits.shape == (2, 2) and stats["g_spikes"] > 0 and stats["overflows"] == 0
    # operation counts per stage (kernel counters) agree with the spikes the head saw
    assert head.ops["g"]["spikes"] == stats["g_spikes"] and head.ops["f"]["spikes"] == stats["f_spikes"]
    assert head.ops["g"]["trials"] == 2 * 6 and head.ops["g"]["trial_steps"] == 2 * 6 * 5  # g1 and the tail
    assert head.ops["f"]["trials"] == 2
    with pytest.raises(ValueError, match="engine must be one of"):
        IFHead(4, g, f, [1.0, 1.0], [1.0], max_sentences=2, engine="tpu")


def test_loihi_if_head_counts_the_overflows_of_each_call():
    """last_head_stats' overflows are those of the call: the same questions give the same count whatever
    ran before (another call needing another f network) and however the pairs are chunked through g."""
    import warnings

    from ahpsim.relnet import IFHead

    rng = np.random.default_rng(4)
    g = [(rng.normal(0, 0.5, (3, 4)), rng.normal(0, 0.1, 3)), (5 * rng.normal(0, 0.5, (3, 3)), np.zeros(3))]
    f = [(5 * rng.normal(0, 0.5, (5, 3)), rng.normal(0, 0.1, 5)), (rng.normal(0, 0.5, (2, 5)), np.zeros(2))]
    small = (rng.normal(2.0, 0.5, (6, 4)), np.array([0, 0, 0, 1, 1, 1]), 2)
    large = (rng.normal(2.0, 0.5, (20, 4)), np.zeros(20, np.int64), 1)  # up to 20 pairs per unit: another K
    seen = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for chunk in (512, 2):
            head = IFHead(4, g, f, [1.0, 1.0, 1.0], [1.0], max_sentences=6, steps=20, engine="loihi", chunk=chunk,
                          vth_mant=4096)  # +-32 thresholds before u wraps: easy to overflow
            seen[chunk] = [head(*q)[1]["overflows"] for q in (small, large, small)]
        assert len(head._loihi_f) == 2 and head._loihi_g is not None
    assert seen[512][0] > 0 and seen[512][1] > 0, seen
    assert seen[512] == seen[2] and seen[512][0] == seen[512][2], seen


@pytest.mark.slow
def test_cli_eval_runs_the_whole_network_on_the_integer_engine_and_exports_it(tmp_path, data_root):
    """``eval --kernel --spiking-head N --loihi --export DIR``: every stage spiking, on the integer engine;
    the exported folder (run without torch) answers as the reported accuracy says; the babi-only options
    are refused, before any work, for a checkpoint without --kernel."""
    import json
    import os
    from pathlib import Path

    import ahpsim
    from ahpsim.relnet import load_relnet
    from ahpsim.torch.tasks import make_task

    env = dict(os.environ, PYTHONPATH=str(Path(ahpsim.__file__).resolve().parents[1]) + os.pathsep
               + os.environ.get("PYTHONPATH", ""))
    run = tmp_path / "run"
    train = [sys.executable, "-m", "ahpsim", "train", "babi", "--root", str(data_root), "--out", str(run),
             "--task-opt", "tasks=[1]", "--task-opt", 'size="1k"', "--task-opt", "n_train=256",
             "--model-opt", "n_encoder=16", "--model-opt", "g_layers=[16]", "--model-opt", "f_layers=[16]",
             "--epochs", "1", "--threads", "1", "--no-progress"]
    tr = subprocess.run(train, env=env, check=True, capture_output=True, text=True, timeout=600)
    # per-task validation accuracy in the history and on the epoch line (one task: the overall accuracy)
    rec = json.loads((run / "history.json").read_text())["epochs"][0]
    assert rec["val_acc_by_group"] == {"1": rec["val_acc"]}
    assert f"val groups >= 0.95: {int(rec['val_acc'] >= 0.95)}/1" in tr.stdout + tr.stderr
    out = tmp_path / "deployed"
    r = subprocess.run([sys.executable, "-m", "ahpsim", "eval", str(run / "best.pt"), "--kernel", "--spiking-head",
                        "20", "--loihi", "--export", str(out), "--n-test", "40", "--threads", "1"],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])["kernel"]
    assert res["engine"] == "loihi" and res["head"]["steps"] == 20 and res["head"]["g_spikes"] > 0
    assert res["head"]["v_init"] == 0.5 and res["head"]["percentile"] == 99.0  # the defaults, recorded
    assert res["head"]["f_percentile"] == 99.0 and res["head"]["reset"] == "subtract"
    assert res["head"]["overflows_g"] >= 0 and res["head"]["overflows_f"] >= 0  # summed over the batches
    net = load_relnet(out, engine="loihi", head_steps=20)
    task = make_task("babi", root=data_root, tasks=[1], size="1k", n_train=256)
    batch, ans, _ = task.test.get(np.arange(40))
    pred = net.run(*(t.numpy() for t in batch)).logits.argmax(1)
    assert float(np.mean(pred == ans.numpy())) == res["acc"]
    r = subprocess.run([sys.executable, "-m", "ahpsim", "eval", str(run / "best.pt"), "--loihi"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--loihi needs a babi checkpoint and --kernel" in r.stderr
    for opt, val, msg in (("--n-test", "-3", "--n-test must be >= 1, got -3"),
                          ("--threads", "0", "--threads: must be in [1, 1024], got 0"),
                          ("--batch-size", "0", "--batch-size must be >= 1, got 0")):
        r = subprocess.run([sys.executable, "-m", "ahpsim", "eval", str(run / "best.pt"), opt, val], env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    for args, msg in ((["--kernel", "--spiking-head", "5", "--head-v-init", "1.5"], "--head-v-init must be in [0, 1)"),
                      (["--kernel", "--spiking-head", "5", "--head-percentile", "nan"], "--head-percentile must be in"),
                      (["--kernel", "--head-v-init", "0.2"], "--head-v-init applies to the integrate-and-fire head"),
                      (["--kernel", "--head-percentile", "99"], "--head-percentile applies to the integrate-and-fire"),
                      (["--kernel", "--spiking-head", "5", "--head-f-percentile", "101"], "--head-f-percentile must be in"),
                      (["--kernel", "--head-f-percentile", "99"], "--head-f-percentile applies to the integrate-and-fire"),
                      (["--kernel", "--head-reset", "zero"], "--head-reset applies to the integrate-and-fire")):
        r = subprocess.run([sys.executable, "-m", "ahpsim", "eval", str(run / "best.pt"), *args], env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_eval_finds_a_committed_runs_relative_data_root_from_anywhere(tmp_path):
    """The committed runs keep the relative --root they were started with ("../shared/data" from the
    repository root); eval without --root, run from another folder, finds it above the checkpoint."""
    import json
    import os
    from pathlib import Path

    import ahpsim

    repo = Path(__file__).resolve().parents[1]
    ckpt = repo / "benchmarks" / "runs" / "babi-demo" / "best.pt"
    if not (repo.parent / "shared" / "data" / "babi").is_dir():
        pytest.skip("the run's data root ../shared/data is not beside this checkout")
    env = dict(os.environ, PYTHONPATH=str(Path(ahpsim.__file__).resolve().parents[1]) + os.pathsep
               + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-m", "ahpsim", "eval", str(ckpt), "--n-test", "8", "--threads", "1"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-1500:]
    assert json.loads(r.stdout.strip().splitlines()[-1])["n_test"] == 8


@pytest.mark.parametrize("engine", ["float", "loihi"])
def test_if_head_initial_potential_rounds_the_spike_counts(engine):
    """``v_init``: a non-leaky IF unit with reset by subtraction that starts at ``v_init`` thresholds and
    receives a constant current c < 1 spikes floor(c T + v_init) times in T steps (closed form); layers
    fed by spikes follow a plain numpy IF simulation (exactly on the float kernel, within one spike on
    the integer engine). The initial potential is saved with the deployed head."""
    from ahpsim.relnet import IFHead

    T = 20
    c = np.array([0.13, 0.37, 0.62, 0.91])  # c * T = 2.6, 7.4, 12.4, 18.2
    W2 = np.array([[0.25, 0.5, 0.0, 0.125], [0.375, -0.25, 0.5, 0.25], [0.125, 0.125, 0.625, -0.125]])
    g = [(W2, np.zeros(3))]
    f = [(np.full((2, 3), 0.25), np.zeros(2)), (np.ones((2, 2)), np.zeros(2))]
    for v_init in (0.0, 0.5):
        head = IFHead(4, g, f, [1.0, 1.0], [1.0], max_sentences=2, steps=T, v_init=v_init, engine=engine)
        x = np.broadcast_to(c.astype(np.float32), (1, T, 4))
        z1 = head._run_net(head._g1_net if engine == "loihi" else head.g_net, T, x).raster("g1")[0]
        np.testing.assert_array_equal(z1.sum(0), np.floor(c * T + v_init))
        # the layer fed by those spikes (one step later), against numpy
        v, ref = np.full(3, v_init), np.zeros(3)
        for t in range(T):
            v += W2 @ z1[t - 1] if t else 0.0
            s = v > 1.0  # the kernel's threshold test is strict
            ref += s
            v -= s
        tail = head._loihi_g if engine == "loihi" else head.g_net
        z2 = head._run_net(tail, T, z1[None] if engine == "loihi" else x).raster("g2")[0]
        if engine == "float":
            np.testing.assert_array_equal(z2.sum(0), ref)
        else:
            assert np.abs(z2.sum(0) - ref).max() <= 1, (z2.sum(0), ref)
    with pytest.raises(ValueError, match="v_init must be a number in"):
        IFHead(4, g, f, [1.0, 1.0], [1.0], max_sentences=2, v_init=1.0)
    with pytest.raises(ValueError, match="v_init must be a number in"):
        IFHead(4, g, f, [1.0, 1.0], [1.0], max_sentences=2, v_init=True)


@pytest.mark.parametrize("engine", ["float", "loihi"])
def test_if_head_reset_to_zero_against_numpy(engine):
    """``reset="zero"``: a non-leaky IF unit dropping its excess at each spike (v = v (1 - z') + I, the
    kernel's order) fires as a plain numpy simulation of that rule: exactly on the float kernel, within
    one spike on the integer engine (Loihi's own reset, the potential in v); fewer spikes than with
    reset by subtraction. A unit held below zero for long saturates at -2**23 on the integer engine
    instead of wrapping round to fire every step."""
    from ahpsim.relnet import IFHead

    T = 60
    c = np.array([0.13, 0.37, 0.62, 0.91])
    g = [(np.eye(4) * 0.5, np.zeros(4))]
    f = [(np.full((2, 4), 0.25), np.zeros(2)), (np.ones((2, 2)), np.zeros(2))]
    head = IFHead(4, g, f, [1.0, 1.0], [1.0], max_sentences=2, steps=T, v_init=0.5, engine=engine, reset="zero")
    x = np.broadcast_to(c.astype(np.float32), (1, T, 4))
    z1 = np.asarray(head._run_net(head._g1_net if engine == "loihi" else head.g_net, T, x).raster("g1"))[0]
    v, z, ref = np.full(4, 0.5), np.zeros(4), np.zeros(4)
    for t in range(T):
        v = v * (1 - z) + c
        z = (v > 1.0).astype(float)
        ref += z
    got = z1.sum(0)
    np.testing.assert_array_equal(got, ref)  # (g's first layer runs on the float kernel on both engines)
    assert np.all(ref <= np.floor(c * T + 0.5)) and np.any(ref < np.floor(c * T + 0.5))
    if engine == "loihi":  # g2 driven at -0.45 thresholds a step for 2,000 steps (900 thresholds down)
        x2 = np.broadcast_to(np.full(4, 0.9, np.float32), (1, 2000, 4))
        for reset, wraps in (("zero", False), ("subtract", True)):
            h = IFHead(4, [(-np.eye(4) * 0.5, np.zeros(4))], f, [1.0, 1.0], [1.0], max_sentences=1, steps=2000,
                       engine="loihi", reset=reset)
            z1 = np.asarray(h._run_net(h._g1_net, 2000, x2).raster("g1"))
            z2 = np.asarray(h._run_net(h._loihi_g, 2000, z1).raster("g2"))
            assert (z2.sum() > 0) == wraps, (reset, z2.sum())
    with pytest.raises(ValueError, match="reset must be 'subtract' or 'zero'"):
        IFHead(4, g, f, [1.0, 1.0], [1.0], max_sentences=2, reset="none")


def test_if_head_reports_and_warns_integer_overflows():
    """A non-leaky unit driven past one threshold a step keeps the excess: over enough steps its
    integer current passes 24 bits. The integer head counts such compartment-steps per stage and warns;
    the same head over fewer steps stays in range, silently."""
    from ahpsim.loihi import QuantizationOverflowWarning
    from ahpsim.relnet import IFHead

    g = [(np.eye(3) * 2.0, np.zeros(3))]
    f = [(np.full((1, 3), 0.3), np.zeros(1)), (np.array([[1.0], [0.5]]), np.zeros(2))]
    b = np.zeros(3, np.int64)  # three pairs of one question: g's units fire every step, f's unit gets 2.7
    pre1 = np.full((3, 3), 2.0)
    with pytest.warns(QuantizationOverflowWarning, match=r"\d+ compartment-steps of g and \d+ of f over 1 questions"):
        _, stats = IFHead(3, g, f, [1.0, 1.0], [1.0], max_sentences=1, steps=640, engine="loihi")(pre1, b, 1)
    assert stats["overflows_f"] > 0 and stats["overflows_g"] > 0  # (g's second layer: 2 a step)
    assert stats["overflows"] == stats["overflows_f"] + stats["overflows_g"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", QuantizationOverflowWarning)
        _, stats = IFHead(3, g, f, [1.0, 1.0], [1.0], max_sentences=1, steps=40, engine="loihi")(pre1, b, 1)
    assert stats["overflows"] == 0


def test_if_head_refuses_bad_arguments_by_name(monkeypatch):
    """The numpy IFHead checks its sizes, scales and engine limits when built, naming the argument; the
    integer engine's weight range failure names the stage and the remedy; the overflow warning names
    the caller's line, through any of ahpsim's wrappers."""
    from ahpsim.loihi import QuantizationOverflowWarning
    from ahpsim.relnet import IFHead

    g = [(np.eye(3) * 0.5, np.zeros(3))]
    f = [(np.full((2, 3), 0.25), np.zeros(2)), (np.ones((2, 2)), np.zeros(2))]
    ok = dict(first_width=3, g=g, f=f, lam_g=[1.0, 1.0], lam_f=[1.0], max_sentences=2)
    for key, bad in (("chunk", -1), ("chunk", 0), ("chunk", 2.7), ("chunk", True), ("max_sentences", 0),
                     ("max_sentences", -2), ("vth_mant", True), ("n_threads", 0), ("first_width", "3")):
        with pytest.raises(ValueError, match=f"{key} must be an integer >= 1"):
            IFHead(**{**ok, key: bad})
    for key, bad in (("lam_g", 3.0), ("lam_g", [True, True]), ("lam_f", ["1"]), ("lam_f", "1")):
        with pytest.raises(TypeError, match=f"{key} must be a sequence of real numbers"):
            IFHead(**{**ok, key: bad})
    for key, bad in (("lam_f", [1e-300]), ("lam_g", [1e300, 1.0])):
        with pytest.raises(ValueError, match="the scales give non-finite weights"):
            IFHead(**{**ok, key: bad})
    with pytest.raises(ValueError, match="cannot hold g's weights or biases at its scales.*higher calibration percentile"):
        IFHead(**{**ok, "lam_g": [1e4, 1e-4]}, engine="loihi")
    head = IFHead(**ok, steps=640, engine="loihi")
    monkeypatch.setattr(IFHead, "F_INPUT_BYTES", 1.5e8)
    with pytest.raises(ValueError, match="F_INPUT_BYTES must be an integer >= 1"):
        head(np.full((3, 3), 0.5), np.zeros(3, np.int64), 1)
    monkeypatch.undo()
    with pytest.warns(QuantizationOverflowWarning) as rec:  # g's units driven at 2 thresholds a step
        head(np.full((3, 3), 4.0), np.zeros(3, np.int64), 1)
    assert rec[0].filename == __file__


def test_if_head_f_percentile_sets_f_scales_apart_from_g(data_root):
    """``f_percentile``: g's scales at ``percentile``, f's at ``f_percentile`` (each as a head with that
    one percentile computes them); out of range it is refused by name."""
    from ahpsim.torch.relational import IFHead
    from ahpsim.torch.tasks import build_model, make_task

    task = make_task("babi", root=data_root, tasks=[1], size="1k", val_fraction=0.0)
    model = build_model(task, "ahp", n_encoder=16, g_layers=[16, 16], f_layers=[16, 16], seed=1)
    calib, _, _ = task.train.get(np.arange(0, 120, 2))
    mixed = IFHead(model, calib, steps=5, percentile=99.0, f_percentile=95.0)
    at99, at95 = IFHead(model, calib, steps=5, percentile=99.0), IFHead(model, calib, steps=5, percentile=95.0)
    assert mixed.lam_g == at99.lam_g and mixed.lam_f == at95.lam_f and at95.lam_f != at99.lam_f
    assert (mixed.percentile, mixed.f_percentile, at99.f_percentile) == (99.0, 95.0, 99.0)
    for bad in (0.0, 100.5, float("nan")):
        with pytest.raises(ValueError, match=r"f_percentile must be in \(0, 100\]"):
            IFHead(model, calib, steps=5, f_percentile=bad)
    for bad in (True, "99", [99]):
        with pytest.raises(TypeError, match="f_percentile must be a real number"):
            IFHead(model, calib, steps=5, f_percentile=bad)


def test_if_head_runs_f_on_blocks_of_questions_with_the_same_answers(monkeypatch):
    """f's input (K channels per unit on the integer engine) grows as questions x steps;
    IFHead runs f on blocks of questions under ``F_INPUT_BYTES``: blocks of one question give the same
    logits and spike counts as one block of all."""
    from ahpsim.relnet import IFHead

    rng = np.random.default_rng(5)
    b = np.repeat(np.arange(4), 3)
    pre1 = rng.uniform(0, 1, (len(b), 4))
    g = [(rng.normal(0, 0.5, (3, 4)), np.zeros(3))]
    f = [(rng.normal(0, 0.5, (5, 3)), np.zeros(5)), (rng.normal(0, 1, (2, 5)), np.zeros(2))]
    for engine in ("float", "loihi"):
        head = IFHead(4, g, f, [1.0, 1.0], [1.0], max_sentences=2, steps=10, engine=engine)
        whole, st_whole = head(pre1, b, 4)
        monkeypatch.setattr(IFHead, "F_INPUT_BYTES", 1)
        blocked, st_blocked = head(pre1, b, 4)
        monkeypatch.undo()
        np.testing.assert_array_equal(blocked, whole)
        assert st_blocked["f_spikes"] == st_whole["f_spikes"] > 0


@pytest.mark.parametrize("engine", ["float", "loihi"])
def test_if_head_drain_lets_every_layer_integrate_all_of_its_input(engine):
    """``drain``: g runs ``steps + len(g)`` steps and every bias is spread over its stage's run. Hand
    computed: a first-layer unit at current 1 spikes on each of the T steps; the next layer (weight 1,
    one step later) passes on T - 1 of them without drain and all T with it. A unit driven by its
    bias alone (0.3 per step, starting at 0.5) spikes floor(0.3 T + 0.5) times either way, and the
    readout's bias (0.5 per step) adds 0.5 (T + 1) without drain (f's run is one step longer) and
    0.5 T with it: the logits are (T - 1, 6 + 0.5 (T + 1)) and (T, 6 + 0.5 T) for T = 20."""
    from ahpsim.relnet import IFHead, load_relnet

    T = 20
    g = [(np.eye(2), np.array([0.0, 0.3]))]
    f = [(np.eye(2), np.array([0.0, 0.5]))]
    pre1 = np.array([[1.0, -1.0]])
    want = {False: [T - 1, 6 + 0.5 * (T + 1)], True: [T, 6 + 0.5 * T]}
    for drain in (False, True):
        head = IFHead(2, g, f, [1.0, 1.0], [], max_sentences=1, steps=T, engine=engine, drain=drain)
        assert head.steps_g == T + drain and head.steps_f == T + drain + 1
        logits, stats = head(pre1, np.array([0]), 1)
        np.testing.assert_allclose(logits[0], want[drain], rtol=1e-6 if engine == "float" else 1e-2)
        assert stats["g_spikes"] == T + want[drain][0] + 6
    with pytest.raises(TypeError, match="drain must be True or False"):
        IFHead(2, g, f, [1.0, 1.0], [], max_sentences=1, drain="yes")


def test_quantized_relu_closed_form_and_gradients():
    """``quantized_relu``: scale * clip(floor(L x / scale + 1/2), 0, L) / L by hand; the numpy twin
    agrees; the floor passes the gradient straight through inside [0, scale] and none outside; the
    scale's gradient is 1 where the unit saturates."""
    from ahpsim.relnet import quantized_relu_np
    from ahpsim.torch.relational import quantized_relu

    x = torch.tensor([-0.3, 0.05, 0.12, 0.26, 0.49, 0.7, 1.3], dtype=torch.float64, requires_grad=True)
    s = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
    # L x / s + 1/2 with L = 4, s = 0.8: -1, 0.75, 1.1, 1.8, 2.95, 4.0, 7 -> levels 0, 0, 1, 1, 2, 4, 4
    y = quantized_relu(x, s, 4)
    np.testing.assert_allclose(y.detach().numpy(), 0.2 * np.array([0, 0, 1, 1, 2, 4, 4]), atol=1e-15)
    np.testing.assert_allclose(quantized_relu_np(x.detach().numpy(), 0.8, 4), y.detach().numpy(), atol=1e-15)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 1, 1, 1, 1, 1, 0])
    # d/ds: inside, (floor(y) - y + 1/2) / L for y = L x / s + 1/2; saturated, 1 each
    inside = np.array([0.75, 1.1, 1.8, 2.95, 4.0])
    want = np.sum((np.floor(inside) - inside + 0.5) / 4) + 1.0
    assert s.grad.item() == pytest.approx(want, abs=1e-12)
    with pytest.raises(ValueError, match="head_levels must be >= 1"):
        RelationalNetwork(len(VOCAB), n_encoder=8, g_layers=[8], f_layers=[], head_levels=0)


def test_quantized_head_is_what_the_spiking_head_realizes(data_root, tmp_path):
    """A network trained with ``head_levels = L`` (g of one layer, f a readout): its integrate-and-fire
    head of L steps with ``drain`` passes on exactly the model's quantized activations (each unit fed a
    constant current spikes floor(L x / scale + 1/2) times), so its readout divided by L equals the
    torch model's logits, on real stories. The numpy head of the deployed network applies the same
    quantization; the scales travel with a saved deployment; percentile scales are refused."""
    from ahpsim.relnet import load_relnet
    from ahpsim.torch.relational import IFHead, KernelRelationalNetwork, relu_activations
    from ahpsim.torch.tasks import build_model, make_task

    L = 20
    task = make_task("babi", root=data_root, tasks=[1, 6], size="1k", val_fraction=0.0)
    model = build_model(task, "ahp", n_encoder=24, g_layers=[16], f_layers=[], head_levels=L, seed=5)
    batch, _, _ = task.test.get(np.arange(0, 30))
    calib, _, _ = task.train.get(np.arange(0, 200, 4))
    with torch.no_grad():  # scales near the top of each layer's activations
        model.g_scales.fill_(float(np.percentile(relu_activations(model, calib)["g"][0], 90)))
        model.f[-1].bias.copy_(torch.linspace(-0.5, 0.5, model.vocab_size))  # (drain spreads the readout's bias)
        ref = model(batch).logits.numpy()
    head = IFHead(model, steps=L, drain=True)
    assert head.steps == L and head.lam_g == model.head_scales()[0]
    spiking = KernelRelationalNetwork(model, head=head)
    np.testing.assert_allclose(spiking(batch).logits / L, ref, rtol=1e-4, atol=1e-4)
    assert IFHead(model).steps == L  # the default: the model's levels
    numpy_head = KernelRelationalNetwork(model)
    np.testing.assert_allclose(numpy_head(batch).logits, ref, rtol=1e-5, atol=1e-5)
    numpy_head.save(tmp_path / "net")
    loaded = load_relnet(tmp_path / "net")
    assert loaded.head_levels == L and loaded.head_scales == model.head_scales()
    np.testing.assert_allclose(loaded.run(*(t.numpy() for t in batch)).logits, ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="percentile and f_percentile apply to a ReLU head"):
        IFHead(model, calib, percentile=99.0)
    relu_model = build_model(task, "ahp", n_encoder=24, g_layers=[16], f_layers=[], seed=5)
    with pytest.raises(ValueError, match="calibration: a ReLU head's scales"):
        IFHead(relu_model)


def test_cli_trains_and_deploys_a_quantized_head(tmp_path, data_root):
    """``train babi --model-opt head_levels=L`` trains quantized ReLUs with trainable scales; ``eval
    --kernel --spiking-head L --head-drain`` runs its head at those scales (recorded), and percentile
    options are refused with exit code 2 and a message that names them."""
    import json
    import os
    from pathlib import Path

    import ahpsim

    env = dict(os.environ, PYTHONPATH=str(Path(ahpsim.__file__).resolve().parents[1]) + os.pathsep
               + os.environ.get("PYTHONPATH", ""))
    run = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "ahpsim", "train", "babi", "--root", str(data_root), "--out", str(run),
                    "--task-opt", "tasks=[1]", "--task-opt", 'size="1k"', "--task-opt", "n_train=128",
                    "--model-opt", "n_encoder=16", "--model-opt", "g_layers=[16]", "--model-opt", "f_layers=[16]",
                    "--model-opt", "head_levels=20", "--epochs", "1", "--threads", "1", "--no-progress"],
                   env=env, check=True, capture_output=True, text=True, timeout=600)
    from ahpsim.torch import load_model

    model = load_model(run / "best.pt")
    lam_g, lam_f = model.head_scales()
    assert model.head_levels == 20 and len(lam_g) == 1 and len(lam_f) == 1
    assert lam_g[0] != 1.0 or lam_f[0] != 1.0  # trained (they start at 1)
    r = subprocess.run([sys.executable, "-m", "ahpsim", "eval", str(run / "best.pt"), "--kernel", "--spiking-head",
                        "20", "--head-drain", "--n-test", "20", "--threads", "1"],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    head = json.loads(r.stdout.strip().splitlines()[-1])["kernel"]["head"]
    assert head["trained_scales"] and head["drain"] and head["percentile"] is None and head["steps"] == 20
    for args, msg in ((["--kernel", "--spiking-head", "20", "--head-percentile", "99"], "apply to a ReLU head"),
                      (["--kernel", "--head-drain"], "--head-drain applies to the integrate-and-fire"),
                      (["--kernel", "--spiking-head", "1000000000000", "--n-test", "2"],
                       "--spiking-head 1000000000000: the head's arrays need more memory")):
        r = subprocess.run([sys.executable, "-m", "ahpsim", "eval", str(run / "best.pt"), *args], env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert r.stderr.startswith("ahpsim eval: error: ") and r.stderr.count("\n") == 1  # one line, one prefix


def test_quantized_head_arguments_are_checked(data_root, tmp_path):
    """Bad levels, scales, inputs, heads and head steps raise errors that name them; the torch and numpy
    activations agree on integer input; a deployed network saved without an IF head but with trained
    scales builds its head from them (head=True or head_steps), one without either refuses head_steps."""
    from ahpsim.relnet import DeployedRelationalNetwork, load_relnet, quantized_relu_np
    from ahpsim.torch.relational import IFHead, KernelRelationalNetwork, quantized_relu
    from ahpsim.torch.tasks import build_model, make_task

    x = torch.tensor([-1.0, 0.3, 2.0])
    for levels, exc, msg in ((0, ValueError, "levels must be >= 1"), (-2, ValueError, "levels must be >= 1"),
                             (2 ** 24 + 1, ValueError, "levels must be <= 16777216"),
                             (2.5, TypeError, "levels must be an integer"), (True, TypeError, "levels must be an integer")):
        for fn, arg in ((quantized_relu, x), (quantized_relu_np, x.numpy())):
            with pytest.raises(exc, match=msg):
                fn(arg, 1.0, levels)
    for scale, exc in ((0.0, ValueError), (-1.0, ValueError), (float("nan"), ValueError), ("1", ValueError)):
        for fn, arg in ((quantized_relu, x), (quantized_relu_np, x.numpy())):
            with pytest.raises(exc, match="scale must be a finite number > 0"):
                fn(arg, scale, 4)
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        quantized_relu(torch.tensor([1, 2]), 3.0, 4)
    np.testing.assert_allclose(quantized_relu_np(np.array([1, 2]), 3.0, 4), [0.75, 2.25])
    task = make_task("babi", root=data_root, tasks=[1], size="1k", val_fraction=0.0)
    model = build_model(task, "ahp", n_encoder=16, g_layers=[16], f_layers=[16], head_levels=8, seed=2)
    with pytest.raises(TypeError, match="model: expected a RelationalNetwork"):
        IFHead("not a model")
    with pytest.raises(TypeError, match="calibration: expected a BabiBatch"):
        IFHead(model, "garbage")
    net = KernelRelationalNetwork(model)
    with pytest.raises(TypeError, match="head must be an IFHead or None"):
        DeployedRelationalNetwork(net.sentence, net.question, net.first, net.g, net.f, vocab_size=net.vocab_size,
                                  steps_per_word=10, max_sentences=20, head="not a head")
    with pytest.raises(ValueError, match="head_scales' entries must be a finite number > 0"):
        DeployedRelationalNetwork(net.sentence, net.question, net.first, net.g, net.f, vocab_size=net.vocab_size,
                                  steps_per_word=10, max_sentences=20, head_levels=8, head_scales=([True], [1.0]))
    net.save(tmp_path / "q")
    batch, _, _ = task.test.get(np.arange(6))
    arrays = [t.numpy() for t in batch]
    for loaded in (load_relnet(tmp_path / "q", head=True), load_relnet(tmp_path / "q", head_steps=8)):
        assert loaded.head.steps == 8 and loaded.head.lam_g == model.head_scales()[0]
        np.testing.assert_allclose(loaded.run(*arrays).logits, KernelRelationalNetwork(model, head=IFHead(model))(batch).logits)
    assert load_relnet(tmp_path / "q").head is None  # the default: the numpy quantized head
    relu = build_model(task, "ahp", n_encoder=16, g_layers=[16], f_layers=[16], seed=2)
    KernelRelationalNetwork(relu).save(tmp_path / "r")
    with pytest.raises(ValueError, match="head_steps: .* saved without an integrate-and-fire head"):
        load_relnet(tmp_path / "r", head_steps=5)
