"""bAbI question answering, v1.2 (tasks 1-20, 1k and 10k), parsed and padded for a Relational Network.

Layout: ``<root>/babi/tasks_1-20_v1-2/{en,en-10k}/qa<N>_<name>_{train,test}.txt``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ._common import (
    ChecksumError,
    CorruptFileError,
    MissingFileError,
    check_choice,
    check_sha256,
    data_root,
    download,
    extract_members,
    missing_error,
    sha256_file,
)

__all__ = ["BABI_TASKS", "BABI_URLS", "BabiData", "load_babi", "parse_babi", "babi_vocabulary", "babi_path"]

BABI_TASKS = {
    1: "single-supporting-fact", 2: "two-supporting-facts", 3: "three-supporting-facts",
    4: "two-arg-relations", 5: "three-arg-relations", 6: "yes-no-questions", 7: "counting",
    8: "lists-sets", 9: "simple-negation", 10: "indefinite-knowledge", 11: "basic-coreference",
    12: "conjunction", 13: "compound-coreference", 14: "time-reasoning", 15: "basic-deduction",
    16: "basic-induction", 17: "positional-reasoning", 18: "size-reasoning", 19: "path-finding",
    20: "agents-motivations",
}
BABI_URLS = (
    "http://www.thespermwhale.com/jaseweston/babi/tasks_1-20_v1-2.tar.gz",
    "https://s3.amazonaws.com/text-datasets/babi_tasks_1-20_v1-2.tar.gz",
)
_TOP = "tasks_1-20_v1-2"
_SIZES = {"1k": "en", "10k": "en-10k"}

# SHA-256 of the text files (relative to tasks_1-20_v1-2/), from a copy checked against the archive.
# en-10k/qa3_three-supporting-facts_train.txt has no pinned value (it is parsed but not verified).
_SHA256_TEXT = """
55acf66cef2f6d798e2aa1d056e1ec8f24e910ea9215b639450574321132959b en-10k/qa1_single-supporting-fact_test.txt
749ea9f7c99070feb2d88c975a254417a0dcc8274add4435ae5ae24c7afc7e9d en-10k/qa1_single-supporting-fact_train.txt
eff93fb9cd81ba02eb765772cf7cc269769ed44ec71cbbbc19cfb16ee5eba0f6 en-10k/qa2_two-supporting-facts_test.txt
d4074c0c5d54f70ce2f538056ce2b6ef6a313da336da4245f1a24f1298e37ef3 en-10k/qa2_two-supporting-facts_train.txt
17795c977100baf8188f386522ae301b62d6c1a13efc01b3aea781e588b4d57f en-10k/qa3_three-supporting-facts_test.txt
07f0ca18ddeea9eed4ba6d59e162adcb0ce44815721114b3540d92825509331e en-10k/qa4_two-arg-relations_test.txt
5d11b821d35234988ab907866aa7ce718e6b6d751acf63bdef52262afb59f12c en-10k/qa4_two-arg-relations_train.txt
ec825c1c8a76e63a31f0d7a7763cd63740e98332fa9bdf246a19068949bd5f97 en-10k/qa5_three-arg-relations_test.txt
2506910935b701bac64fc8b1d7ff12bd8d0f47ceefca183454282bec784c12a5 en-10k/qa5_three-arg-relations_train.txt
b108b16f1eccbd1c24df6dca2649079a7b2f10af7fd12d4c45a3393802de59e3 en-10k/qa6_yes-no-questions_test.txt
602f379184bf3cb59660d0f7769d9c94ccdc1fc4d82dfe90bd460d985b1ff0c5 en-10k/qa6_yes-no-questions_train.txt
a74d1f2b91329b2bae814d41cdac2fbdfdf0328562b7d8afa9a0fa576d461e27 en-10k/qa7_counting_test.txt
4a2508733bef9b38cfce4b3108a91b83cdee378de4a7370e4d32fea2dacd3b7d en-10k/qa7_counting_train.txt
362a653c821a580fa315a85243b4f03bfa06fa7e0269b6f8e596f8fe6911646a en-10k/qa8_lists-sets_test.txt
9518da2d3aa5d98bec33335e0d5ba3a22c2bd1929ee679085d37eb50a7652e4a en-10k/qa8_lists-sets_train.txt
63590aff3f89993db409f0e9a9eb39c2a5b9d5efff99b255d800a891b0044d9f en-10k/qa9_simple-negation_test.txt
5f8949f6ef7d64516fc4dd5732b12b5932d057b1a614e8ac94e795fb020d4ff0 en-10k/qa9_simple-negation_train.txt
fde8f20ed0b3ba979058ed391a566af34653f23baab5b2793ee37f87ef4e88b7 en-10k/qa10_indefinite-knowledge_test.txt
c5c0788b0446095c07a0442784cad2b59c1d58e875ebe8ad852f5e3f628613f4 en-10k/qa10_indefinite-knowledge_train.txt
46f3290d0158ce1285a40cd2d793f5a65f86ae5000226e165cbc85a3dfeb2f6f en-10k/qa11_basic-coreference_test.txt
edfcd97fecd4a5045af25e1790cf1408856ae362c39521b1b69cd32b88ec0ced en-10k/qa11_basic-coreference_train.txt
6437718f8f9801ce345869e910b896836cdc6fd2d01dc7b4d2df49730703b4b1 en-10k/qa12_conjunction_test.txt
39d58df3564916c66cebc98befb65d605c032181e51208730fd8837a77bc166a en-10k/qa12_conjunction_train.txt
76a25b684f23c9cc473d8cd1465506168b9a1ec8891cfc59d0bbd87e6a064990 en-10k/qa13_compound-coreference_test.txt
c530fdf122d26617a8a03ba5cdbacee87c22624ba7f50d1f07f9658c900e22d8 en-10k/qa13_compound-coreference_train.txt
e3f0b19858ffbec3ed1e49076cc4d1295a89ce146c50318b862f13f202b3caf2 en-10k/qa14_time-reasoning_test.txt
c322e0814eef71f088af1aa1334e7ae4b1ee6ca18f2ee94c05e2189226964ed6 en-10k/qa14_time-reasoning_train.txt
32b77e117fe9acf5f94906684e3b5206de0108e646c76e1da3e022896ec7ee94 en-10k/qa15_basic-deduction_test.txt
0a86673f7fafa484f8ee394048f03de19405bdc40b58f21086969efad2862010 en-10k/qa15_basic-deduction_train.txt
4a11e55366f2a5a859b5a81f683ee23801bdbe71ef984e51adb976bd053e8dcf en-10k/qa16_basic-induction_test.txt
27fef347ce0b25dd148efea2b15f154926e0e9069d4ea6ab9cfca3add492ab35 en-10k/qa16_basic-induction_train.txt
9e1e0250ed4ec1831757fab26c04138f81ea557ebf6976a220db879cbed04bac en-10k/qa17_positional-reasoning_test.txt
8a383651e009db50d6c9effed5778b8646c28c55fadb1592b5f4d8d3a187bbce en-10k/qa17_positional-reasoning_train.txt
d34f70eb7228a276fcb3a7854174fe562c5634f4fb454a39fc3d1ad9934be3ef en-10k/qa18_size-reasoning_test.txt
9e7c15107067d2070170ef12579a8bfe34dfc35a7ac9ebd13f2001dc1a7488f9 en-10k/qa18_size-reasoning_train.txt
023e391f0d7f79c9e6ae1c46c093e2d0dbd50ab8fbd8965e037a75e3614c20e5 en-10k/qa19_path-finding_test.txt
6cfdc6f448e3cf0e3d8a390fa3add461935b033f89ede32aeef30812401ec91e en-10k/qa19_path-finding_train.txt
bd3bde3788ac14ba0ae095078f7b820fbd2bfa6a34dba9d1d46a34afde9c2729 en-10k/qa20_agents-motivations_test.txt
36f20f3baf6bad2297d5b9fd877e633550c36106fe78bc10ddfb7b1eede62573 en-10k/qa20_agents-motivations_train.txt
55acf66cef2f6d798e2aa1d056e1ec8f24e910ea9215b639450574321132959b en/qa1_single-supporting-fact_test.txt
c64ba9b1a49bbb111ffc4cd2ae4f129d25c012399dd7ade9679eea464b9afb05 en/qa1_single-supporting-fact_train.txt
eff93fb9cd81ba02eb765772cf7cc269769ed44ec71cbbbc19cfb16ee5eba0f6 en/qa2_two-supporting-facts_test.txt
a4978af5bc0dc30191810e7c9949aaa6eae939ed0f6beb9fcb5f4330c2a27860 en/qa2_two-supporting-facts_train.txt
17795c977100baf8188f386522ae301b62d6c1a13efc01b3aea781e588b4d57f en/qa3_three-supporting-facts_test.txt
a6e78019f36a02a7ed71fe6aaded0b563ff09c8deec392931801fcd9c6af4d60 en/qa3_three-supporting-facts_train.txt
07f0ca18ddeea9eed4ba6d59e162adcb0ce44815721114b3540d92825509331e en/qa4_two-arg-relations_test.txt
c9370502d85fa382f32d1fea2111e817f81ae9e3e79eb2924a1a5392a90417fa en/qa4_two-arg-relations_train.txt
ec825c1c8a76e63a31f0d7a7763cd63740e98332fa9bdf246a19068949bd5f97 en/qa5_three-arg-relations_test.txt
086cd59c3ca9677bfac3d6a22ca5853c76a5c1fbae3159c7c4a6aef759a74ec0 en/qa5_three-arg-relations_train.txt
b108b16f1eccbd1c24df6dca2649079a7b2f10af7fd12d4c45a3393802de59e3 en/qa6_yes-no-questions_test.txt
5a133115ee35d475776df703ff605d145b11effbcdbf7e74861f9d5639246a5a en/qa6_yes-no-questions_train.txt
a74d1f2b91329b2bae814d41cdac2fbdfdf0328562b7d8afa9a0fa576d461e27 en/qa7_counting_test.txt
dca03bd91876951c49f1c971c83c9dd55404de60201b7b6435451cf7ddb4751c en/qa7_counting_train.txt
362a653c821a580fa315a85243b4f03bfa06fa7e0269b6f8e596f8fe6911646a en/qa8_lists-sets_test.txt
058604df6f9440458317e8ae685d2b7b84261e1a80b4d6410a9140d16f81bf06 en/qa8_lists-sets_train.txt
63590aff3f89993db409f0e9a9eb39c2a5b9d5efff99b255d800a891b0044d9f en/qa9_simple-negation_test.txt
0c3b89921af0caea1c4059ee3f7b7f2a88869f924195a428da37820446b8c49f en/qa9_simple-negation_train.txt
fde8f20ed0b3ba979058ed391a566af34653f23baab5b2793ee37f87ef4e88b7 en/qa10_indefinite-knowledge_test.txt
0b7691689447bab05476c5b48c44999b41e747c3978df69c18fdd87b60d6e8b3 en/qa10_indefinite-knowledge_train.txt
46f3290d0158ce1285a40cd2d793f5a65f86ae5000226e165cbc85a3dfeb2f6f en/qa11_basic-coreference_test.txt
9468de9a1f256f43dfda693a5d07182d21149a82b65f7c2451c64e9cff5eb138 en/qa11_basic-coreference_train.txt
6437718f8f9801ce345869e910b896836cdc6fd2d01dc7b4d2df49730703b4b1 en/qa12_conjunction_test.txt
45c2764bb2d3c8f699d35e9d9aa7958fcd96379c6e907116cdf74526c108bb25 en/qa12_conjunction_train.txt
76a25b684f23c9cc473d8cd1465506168b9a1ec8891cfc59d0bbd87e6a064990 en/qa13_compound-coreference_test.txt
533a391edbda743e4c99504de88b40cdded5b1d5ef454d1390f0863f748a4cc9 en/qa13_compound-coreference_train.txt
e3f0b19858ffbec3ed1e49076cc4d1295a89ce146c50318b862f13f202b3caf2 en/qa14_time-reasoning_test.txt
b7561cbc624205c9c2fdbb8c843cfa8ad90edd65e78bb223fc6dea8113662df8 en/qa14_time-reasoning_train.txt
32b77e117fe9acf5f94906684e3b5206de0108e646c76e1da3e022896ec7ee94 en/qa15_basic-deduction_test.txt
e856ebfdcce4dd7d617c1d10f985e96a0850c0ca18e9a19a017cb710d135ed3d en/qa15_basic-deduction_train.txt
4a11e55366f2a5a859b5a81f683ee23801bdbe71ef984e51adb976bd053e8dcf en/qa16_basic-induction_test.txt
20121005137e3d4b061a086eb177a456303d5742b764eb8da2d0e480b6af4d28 en/qa16_basic-induction_train.txt
9e1e0250ed4ec1831757fab26c04138f81ea557ebf6976a220db879cbed04bac en/qa17_positional-reasoning_test.txt
20083bf56ff74f0e7cf5e3e2f8c3905cdb8ef09293c3e8cf7a96ed8b45ae2277 en/qa17_positional-reasoning_train.txt
d34f70eb7228a276fcb3a7854174fe562c5634f4fb454a39fc3d1ad9934be3ef en/qa18_size-reasoning_test.txt
18b7dcf52c9a0e87e4e7dd3d65b7e5a630de039645f52a1294197af7481d739d en/qa18_size-reasoning_train.txt
023e391f0d7f79c9e6ae1c46c093e2d0dbd50ab8fbd8965e037a75e3614c20e5 en/qa19_path-finding_test.txt
dcb788352a56effb7bea1449128f31cc9c342c8c327b6df2caeee0e379e6ad3a en/qa19_path-finding_train.txt
bd3bde3788ac14ba0ae095078f7b820fbd2bfa6a34dba9d1d46a34afde9c2729 en/qa20_agents-motivations_test.txt
29580ad55fb7b4b29ba014696056cc68f8f347dac3be88470fd692ad60150398 en/qa20_agents-motivations_train.txt
"""
_SHA256 = {rel: h for h, rel in (line.split() for line in _SHA256_TEXT.strip().splitlines())}
_VERIFIED: set[tuple] = set()
_TOKEN = re.compile(r"[^\s.?!]+")


def babi_path(task: int, split: str = "train", size: str = "1k", root=None) -> Path:
    """Path of one bAbI file: ``root/babi/tasks_1-20_v1-2/<en|en-10k>/qa<task>_<name>_<split>.txt``."""
    _check_task(task)
    check_choice("split", split, ("train", "test"))
    check_choice("size", size, tuple(_SIZES))
    return data_root(root) / "babi" / _TOP / _SIZES[size] / f"qa{task}_{BABI_TASKS[task]}_{split}.txt"


def _check_task(task) -> None:
    if isinstance(task, bool) or not isinstance(task, (int, np.integer)) or int(task) not in BABI_TASKS:
        raise ValueError(f"task must be an int in 1..20, got {task!r}")


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class _Parsed:
    """One file: its sentences (token lists) and, per question, the sentence range of its story."""

    __slots__ = ("sentences", "start", "end", "questions", "answers", "support")

    def __init__(self):
        self.sentences: list[list[str]] = []  # token lists (one shared list per distinct text)
        self.start: list[int] = []  # first sentence of the question's story (index into sentences)
        self.end: list[int] = []  # one past the last sentence told before the question
        self.questions: list[list[str]] = []
        self.answers: list[str] = []
        self.support: list[list[int]] = []  # supporting facts, indices into the story


def _parse(lines: Iterable[str], source: str) -> _Parsed:
    res = _Parsed()
    line_to_idx: dict[int, int] = {}
    story_start = 0
    last_id = 0
    memo: dict[str, list[str]] = {}
    for lineno, raw in enumerate(lines, 1):
        raw = raw.rstrip("\n")
        if not raw.strip():
            continue
        head, _, rest = raw.partition(" ")
        if not head.isdigit():
            raise CorruptFileError(f"bAbI file {source}, line {lineno}: expected '<id> <text>', got {raw[:60]!r}")
        nid = int(head)
        if nid == 1:
            story_start, line_to_idx = len(res.sentences), {}
        elif nid != last_id + 1:
            raise CorruptFileError(f"bAbI file {source}, line {lineno}: sentence id {nid} follows {last_id}")
        last_id = nid
        if "\t" in rest:
            parts = rest.split("\t")
            if len(parts) < 3:
                raise CorruptFileError(f"bAbI file {source}, line {lineno}: a question needs "
                                       "'question<TAB>answer<TAB>supporting ids'")
            try:
                support = [line_to_idx[int(x)] for x in parts[2].split()]
            except (KeyError, ValueError) as exc:
                raise CorruptFileError(f"bAbI file {source}, line {lineno}: supporting fact {exc} is not "
                                       "a sentence of the story") from None
            res.start.append(story_start)
            res.end.append(len(res.sentences))
            res.questions.append(_tokens(parts[0]))
            res.answers.append(parts[1].strip().lower())
            res.support.append(support)
        else:
            line_to_idx[nid] = len(res.sentences) - story_start
            toks = memo.get(rest)
            if toks is None:
                toks = memo[rest] = _tokens(rest)
            res.sentences.append(toks)
    return res


def parse_babi(lines, source: str = "<text>"):
    """Parse bAbI text into a list of ``(story, question, answer, supporting)``.

    ``lines``: an iterable of lines (an open file), the text as one string, or a path (``Path``).

    ``story`` is the list of tokenised sentences told before the question (questions are not part
    of it), ``question`` a token list, ``answer`` a string (lower case; list answers such as
    ``"apple,football"`` and path answers such as ``"n,s"`` stay one token), ``supporting`` the
    indices into ``story`` of the supporting facts.
    """
    if isinstance(lines, os.PathLike):
        with open(lines, encoding="utf-8") as f:
            p = _parse(f, str(lines))
    else:
        p = _parse(lines.splitlines() if isinstance(lines, str) else lines, source)
    return [(p.sentences[s:e], q, a, sup)
            for s, e, q, a, sup in zip(p.start, p.end, p.questions, p.answers, p.support)]


_PARSED: dict[tuple, _Parsed] = {}


def _read(path: Path, *, verify: bool, download_missing: bool, progress: bool) -> _Parsed:
    if not path.is_file():
        if not download_missing:
            raise missing_error(path, what="bAbI file", source=BABI_URLS[0],
                                root_hint="<root>/babi/tasks_1-20_v1-2/{en,en-10k}/<file>.txt")
        _download_archive(path, progress)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    rel = f"{path.parent.name}/{path.name}"
    if verify and rel in _SHA256 and key not in _VERIFIED:
        check_sha256(path, sha256_file(path), _SHA256[rel], what="bAbI file",
                     fix="Delete it and load again with download=True (the archive is fetched "
                         "and the file replaced), or copy a good one there.")
        _VERIFIED.add(key)
    if key not in _PARSED:  # parsed files are kept for the session (they are small)
        try:
            with open(path, encoding="utf-8") as f:
                _PARSED[key] = _parse(f, str(path))
        except UnicodeDecodeError as exc:
            raise CorruptFileError(f"bAbI file '{path}' is not UTF-8 text ({exc})") from exc
    return _PARSED[key]


def _download_archive(path: Path, progress: bool) -> None:
    babi_dir = path.parents[2]
    archive = babi_dir / "tasks_1-20_v1-2.tar.gz"
    try:
        download(BABI_URLS, archive, progress=progress, what="bAbI archive")
    except MissingFileError as exc:
        raise MissingFileError(f"bAbI file '{path}' is missing and the archive could not be "
                               f"downloaded: {exc}") from None

    def pick(name: str):
        parts = name.split("/")
        if _TOP in parts:
            rel = parts[parts.index(_TOP) + 1:]
            if len(rel) == 2 and rel[0] in _SIZES.values() and rel[1].endswith(".txt"):
                return "/".join([_TOP, *rel])  # only en/ and en-10k/ (not hn/, shuffled/)
        return None

    written = extract_members(archive, babi_dir, pick)
    archive.unlink()
    for p in written:  # verify every text file we know the checksum of
        rel = f"{p.parent.name}/{p.name}"
        if rel in _SHA256 and sha256_file(p) != _SHA256[rel]:
            p.unlink()
            raise ChecksumError(f"bAbI file '{p}' from the downloaded archive has the wrong SHA-256; "
                                "it was deleted. Retry later or fetch the archive by hand.")
    if not path.is_file():
        raise MissingFileError(f"bAbI file '{path}' is not in the downloaded archive")


@dataclass
class BabiData:
    """Parsed bAbI questions plus padded index arrays (index 0 is padding; see ``vocab``).

    Attributes
    ----------
    stories, questions, answers, supporting : lists (length N), as returned by :func:`parse_babi`.
    task : int64 [N], the task (1..20) of each question.
    vocab : list[str], the words by index (``vocab[0] == "<pad>"``); ``word_index`` maps back.
    story : int64 [N, max_sentences, max_words], the most recent ``max_sentences`` sentences of
        each story, oldest first, left-aligned; padding rows and words are 0.
    story_lengths : int64 [N], number of real rows in ``story``.
    question : int64 [N, max_question_words]; question_lengths : int64 [N].
    answer : int64 [N], the vocabulary index of the answer.
    support : int64 [N, K], rows of ``story`` that hold the supporting facts (K: the most any
        question has), -1 for none or for a fact older than the kept window.
    story_id : int64 [N], the story each question belongs to (0, 1, ... in file order over the loaded
        files): questions of one story share its sentences, so splits that must not share text (a
        validation set carved from training data) split by story.
    """

    stories: list
    questions: list
    answers: list
    supporting: list
    task: np.ndarray
    vocab: list
    story: np.ndarray
    story_lengths: np.ndarray
    question: np.ndarray
    question_lengths: np.ndarray
    answer: np.ndarray
    support: np.ndarray
    story_id: np.ndarray
    word_index: dict = field(repr=False, default_factory=dict)

    def __len__(self) -> int:
        return len(self.questions)

    def __repr__(self) -> str:
        return (f"BabiData(N={len(self)}, tasks={sorted(set(self.task.tolist()))}, vocab={len(self.vocab)}, "
                f"story={tuple(self.story.shape)}, question={tuple(self.question.shape)})")


def _task_list(tasks) -> list[int]:
    if tasks is None:
        return list(BABI_TASKS)
    if isinstance(tasks, (int, np.integer)) and not isinstance(tasks, bool):
        tasks = [tasks]
    if isinstance(tasks, (str, bytes)) or not isinstance(tasks, Sequence):
        raise TypeError(f"tasks must be None, an int in 1..20 or a sequence of them, got {tasks!r}")
    for t in tasks:
        _check_task(t)
    if not tasks:
        raise ValueError("tasks must not be empty")
    return sorted({int(t) for t in tasks})


def babi_vocabulary(root=None, tasks=None, size: str = "1k", *, download: bool = True,
                    verify: bool = True, progress: bool = True) -> list[str]:
    """Sorted vocabulary (``["<pad>", ...]``) of the story, question and answer words of the train
    and test files of ``tasks``: the same for both splits, so their indices agree."""
    words: set[str] = set()
    for t in _task_list(tasks):
        for split in ("train", "test"):
            p = _read(babi_path(t, split, size, root), verify=verify, download_missing=download,
                      progress=progress)
            words.update(w for s in p.sentences for w in s)
            words.update(w for q in p.questions for w in q)
            words.update(p.answers)
    return ["<pad>"] + sorted(words)


def load_babi(root=None, tasks=None, split: str = "train", size: str = "1k", *,
              max_sentences: int | None = 20, max_words: int | None = None,
              max_question_words: int | None = None, vocab: Sequence[str] | None = None,
              download: bool = True, verify: bool = True, progress: bool = True) -> BabiData:
    """Load bAbI v1.2 questions of one or several tasks (joint training: ``tasks=None``, all 20).

    Parameters
    ----------
    tasks : None | int | sequence of int
        Tasks 1..20 (``None``: all). Files are concatenated in task order.
    split : {"train", "test"};  size : {"1k", "10k"} (folder ``en`` or ``en-10k``).
    max_sentences : int or None
        Keep the most recent ``max_sentences`` sentences of each story in the padded array
        (the Relational Network of the paper uses 20); ``None`` keeps all.
    max_words, max_question_words : int or None
        Pad to this many words (default: the longest in the selection); a longer sentence raises
        ``ValueError`` instead of being cut.
    vocab : list of words, optional
        Index table (``vocab[0]`` is padding). Default :func:`babi_vocabulary` of ``tasks``.
    """
    check_choice("split", split, ("train", "test"))
    check_choice("size", size, tuple(_SIZES))
    task_ids = _task_list(tasks)
    for name, v in (("max_sentences", max_sentences), ("max_words", max_words),
                    ("max_question_words", max_question_words)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
            raise ValueError(f"{name} must be None or an int >= 1, got {v!r}")

    parts = [(t, _read(babi_path(t, split, size, root), verify=verify, download_missing=download,
                       progress=progress)) for t in task_ids]
    if vocab is None:
        vocab = babi_vocabulary(root, task_ids, size, download=download, verify=verify, progress=progress)
    vocab = list(vocab)
    word_index = {w: i for i, w in enumerate(vocab)}
    if len(word_index) != len(vocab):
        raise ValueError("vocab has repeated words")

    def idx(w: str) -> int:
        try:
            return word_index[w]
        except KeyError:
            raise ValueError(f"word {w!r} is not in vocab (build vocab from the same tasks)") from None

    def encode_rows(seqs: list[list[str]], width: int | None, name: str) -> np.ndarray:
        longest = max((len(x) for x in seqs), default=1)
        width = width or longest
        if longest > width:
            raise ValueError(f"{name}={width} is smaller than the longest one in the data ({longest} words)")
        out = np.zeros((len(seqs), width), dtype=np.int64)
        for r, x in enumerate(seqs):
            out[r, :len(x)] = [idx(w) for w in x]
        return out

    # each distinct sentence (a token list shared within its file) is encoded once; a question's
    # story is then a gather of rows
    all_sent = [s for _, p in parts for s in p.sentences]
    uniq: dict[int, int] = {}
    uniq_tokens: list[list[str]] = []
    sent_ids = np.empty(len(all_sent) + 1, dtype=np.int64)
    for i, toks in enumerate(all_sent):
        k = uniq.get(id(toks))
        if k is None:
            k = uniq[id(toks)] = len(uniq_tokens)
            uniq_tokens.append(toks)
        sent_ids[i] = k
    uniq_rows = encode_rows(uniq_tokens, max_words, "max_words")
    sent_ids[-1] = len(uniq_rows)  # the padding row
    table = np.concatenate([uniq_rows, np.zeros((1, uniq_rows.shape[1]), dtype=np.int64)])
    starts, ends, base = [], [], 0
    for _, p in parts:
        starts.append(np.asarray(p.start, dtype=np.int64) + base)
        ends.append(np.asarray(p.end, dtype=np.int64) + base)
        base += len(p.sentences)
    start = np.concatenate(starts) if starts else np.zeros(0, np.int64)
    end = np.concatenate(ends) if ends else np.zeros(0, np.int64)
    n = len(start)
    full_len = end - start
    S = max_sentences or int(full_len.max(initial=1))
    first = np.maximum(start, end - S)  # most recent S sentences
    story_len = end - first
    rows = first[:, None] + np.arange(S)[None, :]
    valid = np.arange(S)[None, :] < story_len[:, None]
    story = table[sent_ids[np.where(valid, rows, len(all_sent))]]

    questions = [q for _, p in parts for q in p.questions]  # short: encoded one by one
    answers = [a for _, p in parts for a in p.answers]
    supporting = [s for _, p in parts for s in p.support]
    question = encode_rows(questions, max_question_words, "max_question_words")
    answer = np.fromiter((idx(a) for a in answers), dtype=np.int64, count=n)
    n_sup = max((len(s) for s in supporting), default=1)
    support = np.full((n, n_sup), -1, dtype=np.int64)
    offset = (first - start).tolist()
    for i, sup in enumerate(supporting):
        for j, s in enumerate(sup):
            if s >= offset[i]:
                support[i, j] = s - offset[i]

    stories = [all_sent[s:e] for s, e in zip(start.tolist(), end.tolist())]
    return BabiData(
        stories=stories, questions=questions, answers=answers, supporting=supporting,
        task=np.concatenate([np.full(len(p.start), t, dtype=np.int64) for t, p in parts]),
        vocab=vocab, story=story, story_lengths=story_len, question=question,
        question_lengths=np.asarray([len(q) for q in questions], dtype=np.int64),
        answer=answer, support=support, story_id=np.unique(start, return_inverse=True)[1].astype(np.int64),
        word_index=word_index,
    )
