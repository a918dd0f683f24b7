"""ahpsim.datasets bAbI v1.2: counts, parsing, padded arrays, checksums, missing files."""

from __future__ import annotations

import io
import re
import shutil
import tarfile
import urllib.error
from collections import Counter

import numpy as np
import pytest

from ahpsim import datasets as ds
from ahpsim.datasets import _common, babi as babi_mod


def _file(data_root, task, split="train", folder="en"):
    d = data_root / "babi" / "tasks_1-20_v1-2" / folder
    (path,) = d.glob(f"qa{task}_*_{split}.txt")
    return path


def _raw_answers(path):
    """Answers straight from the text: the second tab-separated field of question lines."""
    return [ln.split("\t")[1] for ln in path.read_text().splitlines() if "\t" in ln]


@pytest.mark.parametrize("split", ["train", "test"])
def test_every_1k_file_has_1000_questions(data_root, split):
    data = ds.load_babi(data_root, None, split, "1k", download=False)
    assert len(data) == 20000
    assert np.bincount(data.task, minlength=21)[1:].tolist() == [1000] * 20
    for t in range(1, 21):  # the count agrees with the raw text of each file
        assert len(_raw_answers(_file(data_root, t, split))) == 1000


@pytest.mark.slow
def test_every_10k_train_file_has_10000_questions(data_root):
    for t in range(1, 21):
        if t == 3:  # not in the shared copy (see its README)
            continue
        path = _file(data_root, t, "train", "en-10k")
        with open(path) as f:
            parsed = ds.parse_babi(f)
        assert len(parsed) == len(_raw_answers(path)) == 10000, path.name


def test_first_example_of_task_1(data_root):
    d = ds.load_babi(data_root, 1, "train", download=False)
    assert d.stories[0] == [["mary", "moved", "to", "the", "bathroom"], ["john", "went", "to", "the", "hallway"]]
    assert d.questions[0] == ["where", "is", "mary"]
    assert d.answers[0] == "bathroom" and d.supporting[0] == [0]
    # question 2 of the file: "6 Where is Daniel? \thallway\t4" after 4 sentences
    assert d.stories[1][-1] == ["sandra", "moved", "to", "the", "garden"] and len(d.stories[1]) == 4
    assert d.answers[1] == "hallway" and d.supporting[1] == [2]  # line 4 is the 3rd sentence
    # parse_babi takes a path, a string or lines alike
    path = _file(data_root, 1, "train")
    with open(path) as f:
        assert ds.parse_babi(path) == ds.parse_babi(path.read_text()) == ds.parse_babi(f)
    assert ds.parse_babi(path)[0] == (d.stories[0], d.questions[0], d.answers[0], d.supporting[0])


def test_answers_and_label_distribution_match_the_text(data_root):
    d = ds.load_babi(data_root, [6, 19, 8], "test", download=False)
    for t in (6, 8, 19):
        raw = Counter(a.lower() for a in _raw_answers(_file(data_root, t, "test")))
        got = Counter(a for a, tt in zip(d.answers, d.task) if tt == t)
        assert got == raw
    yes_no = Counter(a for a, tt in zip(d.answers, d.task) if tt == 6)
    assert set(yes_no) == {"yes", "no"} and sum(yes_no.values()) == 1000
    assert "s,e" in d.answers or "n,w" in d.answers  # path answers stay one token
    # decoded answer indices give back the answers
    assert [d.vocab[i] for i in d.answer[:50]] == d.answers[:50]


def test_padded_arrays_decode_back(data_root):
    d = ds.load_babi(data_root, [1, 2, 3], "train", max_sentences=20, download=False)
    n = len(d)
    assert d.story.shape == (n, 20, d.story.shape[2]) and d.story.dtype == np.int64
    assert d.question.shape[0] == n and d.answer.shape == (n,)
    assert d.vocab[0] == "<pad>" and d.vocab[1:] == sorted(d.vocab[1:])
    words = lambda row: [d.vocab[i] for i in row if i != 0]  # noqa: E731
    long_ones = [i for i in range(n) if len(d.stories[i]) > 20]
    assert long_ones, "task 3 has stories longer than 20 sentences"
    for i in [0, 1, 500, long_ones[0], long_ones[-1]]:
        kept = d.stories[i][-20:]
        assert d.story_lengths[i] == len(kept)
        assert [words(r) for r in d.story[i, :len(kept)]] == kept
        assert not d.story[i, len(kept):].any()
        assert words(d.question[i]) == d.questions[i]
        offset = len(d.stories[i]) - len(kept)
        for j, s in enumerate(d.supporting[i]):
            if s >= offset:
                assert words(d.story[i, d.support[i, j]]) == d.stories[i][s]
            else:
                assert d.support[i, j] == -1
    # some supporting facts of task 3 are older than the 20 kept sentences
    assert any(len(d.supporting[i]) > (d.support[i] >= 0).sum() for i in long_ones)


def test_vocabulary_is_shared_by_splits_and_matches_an_independent_count(data_root):
    vtrain = ds.load_babi(data_root, None, "train", download=False).vocab
    vtest = ds.load_babi(data_root, None, "test", download=False).vocab
    assert vtrain == vtest
    words = set()
    for path in (data_root / "babi" / "tasks_1-20_v1-2" / "en").glob("qa*.txt"):
        for ln in path.read_text().lower().splitlines():
            text = ln.split(" ", 1)[1]
            parts = text.split("\t")
            words.update(re.sub(r"[.?]", " ", parts[0]).split())
            if len(parts) > 1:
                words.add(parts[1])
    assert vtrain[1:] == sorted(words)
    assert 170 <= len(vtrain) <= 190  # the paper's RelNet used a 180-word vocabulary


def test_padding_widths_are_checked(data_root):
    with pytest.raises(ValueError, match="max_words"):
        ds.load_babi(data_root, 1, max_words=3, download=False)
    with pytest.raises(ValueError, match="max_question_words"):
        ds.load_babi(data_root, 1, max_question_words=2, download=False)
    d = ds.load_babi(data_root, 1, max_words=12, max_question_words=9, max_sentences=None, download=False)
    assert d.story.shape[2] == 12 and d.question.shape[1] == 9
    assert d.story.shape[1] == max(len(s) for s in d.stories)


def test_bad_arguments(data_root):
    for kwargs, name in (({"tasks": 21}, "task"), ({"tasks": [0, 1]}, "task"), ({"split": "dev"}, "split"),
                         ({"size": "5k"}, "size"), ({"max_sentences": 0}, "max_sentences")):
        with pytest.raises(ValueError, match=name):
            ds.load_babi(data_root, **kwargs, download=False)
    with pytest.raises(TypeError, match="tasks"):
        ds.load_babi(data_root, tasks="qa1", download=False)


def test_missing_10k_file_is_named(data_root, tmp_path, monkeypatch):
    with pytest.raises(ds.MissingFileError, match="en-10k/qa3_three-supporting-facts_train.txt"):
        ds.load_babi(data_root, 3, "train", "10k", download=False)

    def offline(url, timeout=None):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(_common, "_urlopen", offline)
    with pytest.raises(ds.MissingFileError, match="qa3_three-supporting-facts_train.txt") as info:
        ds.load_babi(tmp_path, 3, "train", "10k", progress=False)
    assert not any(tmp_path.iterdir())  # a failed download leaves nothing behind
    assert "no route to host" in str(info.value)


def _copy_task(data_root, dest, task=1):
    d = dest / "babi" / "tasks_1-20_v1-2" / "en"
    d.mkdir(parents=True)
    for split in ("train", "test"):
        shutil.copy(_file(data_root, task, split), d)
    return d


def test_flipped_byte_is_a_checksum_error(data_root, tmp_path):
    d = _copy_task(data_root, tmp_path)
    f = d / "qa1_single-supporting-fact_train.txt"
    raw = bytearray(f.read_bytes())
    raw[1234] ^= 0x01
    f.write_bytes(bytes(raw))
    with pytest.raises(ds.ChecksumError, match="qa1_single-supporting-fact_train.txt"):
        ds.load_babi(tmp_path, 1, download=False)


def test_truncated_file_is_a_clear_error(data_root, tmp_path):
    d = _copy_task(data_root, tmp_path)
    f = d / "qa1_single-supporting-fact_train.txt"
    text = f.read_text()
    cut = text.index("\t", 5000) + 3  # inside the answer field of a question line
    f.write_text(text[:cut])
    with pytest.raises(ds.ChecksumError, match="qa1_single-supporting-fact_train.txt"):
        ds.load_babi(tmp_path, 1, download=False)
    with pytest.raises(ds.CorruptFileError, match=r"qa1_single-supporting-fact_train.txt, line \d+"):
        ds.load_babi(tmp_path, 1, download=False, verify=False)


def test_download_from_archive(data_root, tmp_path, monkeypatch):
    archive = tmp_path / "babi.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for split in ("train", "test"):
            p = _file(data_root, 2, split)
            tf.add(p, arcname=f"tasks_1-20_v1-2/en/{p.name}")
        tf.addfile(tarfile.TarInfo("tasks_1-20_v1-2/README.md"), io.BytesIO(b""))
    monkeypatch.setattr(babi_mod, "BABI_URLS", (archive.as_uri(),))
    root = tmp_path / "fresh"
    d = ds.load_babi(root, 2, "test", progress=False)
    assert len(d) == 1000
    assert (root / "babi" / "tasks_1-20_v1-2" / "en" / "qa2_two-supporting-facts_train.txt").is_file()
    assert not (root / "babi" / "tasks_1-20_v1-2.tar.gz").exists()


@pytest.mark.torch
def test_torch_dataset(data_root):
    torch = pytest.importorskip("torch")
    d = ds.BabiDataset(data_root, [1, 2], "test", download=False)
    assert len(d) == 2000
    story, question, answer = d[0]
    assert story.dtype == torch.int64 and story.shape == (20, d.data.story.shape[2])
    assert d.vocab[int(answer)] == d.data.answers[0]
    batch = next(iter(torch.utils.data.DataLoader(d, batch_size=8)))
    assert batch[0].shape[0] == 8
