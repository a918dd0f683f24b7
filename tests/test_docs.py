"""Every ```python block of README.md and docs/*.md runs (in a fresh interpreter, from a working folder
beside the test data as ``../shared/data``, the layout the docs assume)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md"] + sorted((REPO / "docs").glob("*.md"))
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(text: str) -> list[str]:
    return _BLOCK.findall(text)


def _cases():
    for f in DOCS:
        for i, code in enumerate(python_blocks(f.read_text())):
            yield pytest.param(code, id=f"{f.relative_to(REPO)}[{i}]")


def run_block(code: str, tmp_path: Path, data_root: Path) -> subprocess.CompletedProcess:
    import ahpsim

    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    shared = tmp_path / "shared"
    shared.mkdir(exist_ok=True)
    if not (shared / "data").exists():
        (shared / "data").symlink_to(data_root.resolve(), target_is_directory=True)
    env = dict(os.environ, MPLBACKEND="Agg",
               PYTHONPATH=str(Path(ahpsim.__file__).resolve().parents[1]) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=600)


def test_the_docs_have_examples():
    assert sum(len(python_blocks(f.read_text())) for f in DOCS) >= 7


@pytest.mark.parametrize("code", list(_cases()))
def test_docs_example_runs(code, tmp_path, data_root):
    if "torch" in code:
        pytest.importorskip("torch")
    r = run_block(code, tmp_path, data_root)
    assert r.returncode == 0, r.stderr[-2000:]


def test_a_broken_example_fails(tmp_path, data_root):
    """The check above can fail: a block with an undefined name, as the docs had, is caught."""
    broken = python_blocks("```python\nimport ahpsim\nnet.run(10)\n```\n")
    assert len(broken) == 1
    r = run_block(broken[0], tmp_path, data_root)
    assert r.returncode != 0 and "NameError" in r.stderr


def test_api_reference_builds_without_warnings(tmp_path):
    """The MkDocs site (guides + the API reference generated from the docstrings by mkdocstrings)
    builds with ``--strict``: a broken link, a missing object or an unparsable docstring fails."""
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                       cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    page = (tmp_path / "site" / "reference" / "ahpsim" / "index.html").read_text()
    for name in ("Network", "Projection", "connect_random", "SimResult"):
        assert name in page
    assert "RelationalNetwork" in (tmp_path / "site" / "reference" / "torch" / "index.html").read_text()


def test_api_reference_build_fails_on_a_missing_object(tmp_path):
    """The strict build can fail: a reference to an object that does not exist is an error."""
    import shutil

    shutil.copytree(REPO / "docs", tmp_path / "docs")
    shutil.copy(REPO / "mkdocs.yml", tmp_path / "mkdocs.yml")
    (tmp_path / "python").symlink_to(REPO / "python", target_is_directory=True)
    (tmp_path / "docs" / "reference" / "extras.md").write_text("# broken\n\n::: ahpsim.no_such_thing\n")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                       cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode != 0
