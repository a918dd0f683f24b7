"""The digits shipped in the package are the first 200 real MNIST test digits."""

from importlib import resources

import numpy as np

import ahpsim.datasets as ds


def test_bundled_digits_equal_the_mnist_test_set(data_root):
    with resources.as_file(resources.files("ahpsim") / "data" / "mnist_test_200.npz") as p:
        d = np.load(p)
        images, labels = d["images"], d["labels"]
    x, y = ds.load_mnist(data_root, "test", cache=False, download=False)
    assert images.shape == (200, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, x[:200])
    np.testing.assert_array_equal(labels, y[:200])


def test_core_stub_names_match_the_module():
    """``_core.pyi`` is written by hand: every public name of ``ahpsim._core`` is in it and every name in
    it exists (private base classes of the stub aside)."""
    import ast
    from pathlib import Path

    from ahpsim import _core

    tree = ast.parse((Path(__file__).resolve().parents[1] / "python" / "ahpsim" / "_core.pyi").read_text())
    stub = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    stub |= {n.target.id for n in tree.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    public = {n for n in dir(_core) if not n.startswith("_")}
    assert public - stub == set()
    assert {n for n in stub - public if not n.startswith("_")} == set()
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and not n.name.startswith("_")):
        methods = {f.name for f in cls.body if isinstance(f, ast.FunctionDef) and not f.name.startswith("__")}
        assert methods <= set(dir(getattr(_core, cls.name))), cls.name


def test_bundled_babi_stories_are_the_first_test_questions(data_root):
    """The demo's bAbI questions are the first five test questions of each of its tasks, word for word."""
    import json

    with resources.as_file(resources.files("ahpsim") / "data" / "babi_demo" / "stories.json") as p:
        bundle = json.loads(p.read_text())["questions"]
    tasks = sorted({q["task"] for q in bundle})
    d = ds.load_babi(data_root, tasks, "test", "10k")
    for t in tasks:
        mine = [q for q in bundle if q["task"] == t]
        rows = np.nonzero(d.task == t)[0][:len(mine)]
        assert len(mine) == 5
        for q, r in zip(mine, rows):
            story = [[d.vocab[w] for w in s if w] for s in d.story[r][:d.story_lengths[r]]]
            assert story == q["story"]
            assert [d.vocab[w] for w in d.question[r] if w] == q["question"]
            assert d.vocab[d.answer[r]] == q["answer"]
