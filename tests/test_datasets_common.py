"""ahpsim.datasets shared machinery: import cost, roots, downloads, archives."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from ahpsim import datasets as ds
from ahpsim.datasets import _common


def test_import_fetches_nothing_and_needs_no_torch_or_librosa(tmp_path):
    code = (
        "import sys, ahpsim.datasets as d\n"
        "heavy = [m for m in ('torch', 'librosa', 'soundfile', 'tqdm', 'urllib.request') if m in sys.modules]\n"
        "print(heavy)\n"
        "from ahpsim.datasets import *\n"
        "assert 'torch' not in sys.modules\n"
    )
    env = {"AHPSIM_DATA": str(tmp_path / "nothing"), "PATH": "/usr/bin:/bin",
           "PYTHONPATH": str(Path(ds.__file__).parents[2])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() in ("[]", "['urllib.request']")  # the stdlib opener may be imported, not used
    assert not (tmp_path / "nothing").exists()


def test_root_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("AHPSIM_DATA", str(tmp_path / "env"))
    assert ds.data_root() == tmp_path / "env"
    assert ds.data_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("AHPSIM_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ds.data_root() == tmp_path / "xdg" / "ahpsim" / "data"
    monkeypatch.setenv("AHPSIM_CACHE", str(tmp_path / "c"))
    assert ds.cache_root() == tmp_path / "c"


def test_download_checks_the_checksum_and_falls_back_to_the_next_url(tmp_path):
    src = tmp_path / "payload.bin"
    src.write_bytes(b"x" * 100000)
    good = hashlib.sha256(src.read_bytes()).hexdigest()
    dest = tmp_path / "out" / "payload.bin"
    _common.download(["file:///nonexistent/payload.bin", src.as_uri()], dest, sha256=good, progress=False)
    assert dest.read_bytes() == src.read_bytes()
    dest.unlink()
    with pytest.raises(ds.ChecksumError, match="payload.bin"):
        _common.download([src.as_uri()], dest, sha256="0" * 64, progress=False)
    assert not dest.exists() and not list(dest.parent.glob("*.part"))


def test_archive_members_cannot_escape(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        info = tarfile.TarInfo("../../escaped.txt")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"bad"))
    with pytest.raises(ds.CorruptFileError, match="outside"):
        _common.extract_members(archive, tmp_path / "dest", lambda name: name)
    assert not (tmp_path.parent / "escaped.txt").exists()
    truncated = tmp_path / "cut.tar.gz"
    truncated.write_bytes(archive.read_bytes()[:40])
    with pytest.raises(ds.CorruptFileError, match="cut.tar.gz"):
        _common.extract_members(truncated, tmp_path / "dest", lambda name: name)


def test_errors_are_oserrors_with_the_usual_meaning():
    assert issubclass(ds.MissingFileError, FileNotFoundError)
    assert issubclass(ds.ChecksumError, ds.DatasetError) and issubclass(ds.DatasetError, OSError)
    with pytest.raises(AttributeError):
        ds.NoSuchThing  # noqa: B018


def test_without_torch_loaders_still_work_and_dataset_classes_explain(data_root):
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # as if torch were not installed\n"
        "import ahpsim.datasets as d\n"
        f"x, lengths, y, names = d.load_ucr_uea('GunPoint', {str(data_root)!r}, 'test', download=False)\n"
        "assert type(x).__module__ == 'numpy' and x.shape == (150, 150, 1)\n"
        "try:\n"
        "    d.MNISTDataset\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(ds.__file__).parents[2])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert "needs PyTorch" in out.stdout and "pip install torch" in out.stdout


def test_a_download_cut_short_is_not_kept(tmp_path, monkeypatch):
    class Short(io.BytesIO):
        headers = {"Content-Length": "1000"}

    monkeypatch.setattr(_common, "_urlopen", lambda url, timeout=None: Short(b"x" * 600))
    dest = tmp_path / "f.bin"
    with pytest.raises(ds.MissingFileError, match="600 of 1000 bytes"):
        _common.download(["https://example.invalid/f.bin"], dest, progress=False)
    assert not dest.exists() and not list(tmp_path.glob("*.part"))


def test_atomic_writers_leave_the_usual_file_mode(tmp_path):
    """mkstemp creates 0600; every atomic writer gives the result the mode a plain open() would."""
    import os

    from ahpsim.datasets._common import atomic_save_json

    old = os.umask(0o022)
    try:
        atomic_save_json(tmp_path / "a.json", {"x": 1})
        assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
        torch = pytest.importorskip("torch")
        from ahpsim.torch import SpikingRNN, save_checkpoint
        from ahpsim.torch.trainer import _write_text_atomic

        save_checkpoint(tmp_path / "c.pt", SpikingRNN(2, 2, 3))
        _write_text_atomic(tmp_path / "h.json", "{}")
        for name in ("c.pt", "h.json"):
            assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name
    finally:
        os.umask(old)
