"""Shared machinery of the data-set loaders: where data lives, checksums, downloads, caches, errors.

Nothing here touches the network or the disk at import time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Iterable, Sequence

from .._files import replace_with_umask_mode

import numpy as np

ENV_ROOT = "AHPSIM_DATA"
ENV_CACHE = "AHPSIM_CACHE"

# Indirection so tests (and users behind proxies) can replace the opener.
_urlopen: Callable = urllib.request.urlopen


# --------------------------------------------------------------------------- errors


class DatasetError(OSError):
    """Base class of the data-set errors: a file is missing, corrupt or unreadable."""


class MissingFileError(DatasetError, FileNotFoundError):
    """A data file is not on disk and could not be downloaded."""


class ChecksumError(DatasetError):
    """A data file's SHA-256 differs from the published one."""


class CorruptFileError(DatasetError):
    """A data file is truncated or does not have the expected format."""


# --------------------------------------------------------------------------- locations


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The directory that holds the data sets.

    ``root`` if given, else the ``AHPSIM_DATA`` environment variable, else ``~/.cache/ahpsim/data``
    (``$XDG_CACHE_HOME/ahpsim/data`` when that is set). Each data set lives in its own
    sub-folder (``mnist/``, ``babi/``, ``fsdd/``, ``ucr_uea/``, ``speech_commands/``).
    """
    if root is None:
        env = os.environ.get(ENV_ROOT)
        if env:
            return Path(env).expanduser()
        return _user_cache_base() / "data"
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a path (str or os.PathLike) or None, not {type(root).__name__}")
    return Path(root).expanduser()


def _user_cache_base() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "ahpsim"


def cache_root() -> Path:
    """Writable directory for decoded-array caches: ``AHPSIM_CACHE`` or ``~/.cache/ahpsim``."""
    env = os.environ.get(ENV_CACHE)
    return Path(env).expanduser() if env else _user_cache_base()


def _is_writable_dir(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    try:
        fd, name = tempfile.mkstemp(prefix=".ahpsim-probe-", dir=path)
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True


def cache_dir_for(dataset_dir: Path, name: str, cache_dir: str | os.PathLike | None = None) -> Path | None:
    """Where to keep decoded arrays of the data set in ``dataset_dir``.

    ``cache_dir`` if given, else ``cache_root()/<name>-<hash of dataset_dir's absolute path>``.
    Caches never go inside the data tree (it may be shared or read-only). ``None`` when the
    folder cannot be written (the loaders then work without a cache).
    """
    if cache_dir is not None:
        c = Path(cache_dir).expanduser()
    else:
        key = hashlib.sha1(str(dataset_dir.resolve()).encode()).hexdigest()[:12]
        c = cache_root() / f"{name}-{key}"
    return c if _is_writable_dir(c) else None


def stat_signature(paths: Iterable[Path]) -> list[list]:
    """(name, size, mtime_ns) of each file: a cheap fingerprint that a cache records and checks."""
    out = []
    for p in paths:
        st = p.stat()
        out.append([p.name, st.st_size, st.st_mtime_ns])
    return out


# --------------------------------------------------------------------------- checksums


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_sha256(path: Path, actual: str, expected: str, *, what: str, fix: str) -> None:
    if actual != expected:
        raise ChecksumError(
            f"{what} '{path}' is corrupt: its SHA-256 is {actual}, the published value is {expected}. "
            f"{fix}"
        )


def tree_digest(entries: Iterable[tuple[str, str]]) -> str:
    """One SHA-256 over ``"<sha256>  <name>\\n"`` lines sorted by name (as ``sha256sum`` prints them)."""
    h = hashlib.sha256()
    for name, digest in sorted(entries):
        h.update(f"{digest}  {name}\n".encode())
    return h.hexdigest()


# --------------------------------------------------------------------------- downloads


def _progress(total: int | None, desc: str, enabled: bool):
    if enabled:
        try:
            from tqdm import tqdm
        except ImportError:  # tqdm is optional: no bar without it
            pass
        else:
            return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, leave=False)
    return None


def download(urls: Sequence[str], dest: Path, *, sha256: str | None = None, progress: bool = True,
             what: str = "file", timeout: float = 60.0) -> Path:
    """Fetch the first URL of ``urls`` that works into ``dest`` (atomically), checking ``sha256``.

    Raises :class:`MissingFileError` naming ``dest``, the URLs tried and the errors, when none works;
    :class:`ChecksumError` when a download arrives with the wrong checksum (nothing is kept).
    """
    dest = Path(dest)
    errors = []
    bad_checksum = False
    for url in urls:
        tmp = None
        try:
            with _urlopen(url, timeout=timeout) as resp:
                length = resp.headers.get("Content-Length") if getattr(resp, "headers", None) else None
                total = int(length) if length and str(length).isdigit() else None
                dest.parent.mkdir(parents=True, exist_ok=True)  # only once a source answered
                fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
                h = hashlib.sha256()
                got = 0
                bar = _progress(total, dest.name, progress)
                try:
                    with os.fdopen(fd, "wb") as out:
                        while True:
                            block = resp.read(1 << 16)
                            if not block:
                                break
                            out.write(block)
                            h.update(block)
                            got += len(block)
                            if bar is not None:
                                bar.update(len(block))
                finally:
                    if bar is not None:
                        bar.close()
            if total is not None and got != total:
                raise OSError(f"transfer cut short: {got} of {total} bytes")
            if sha256 is not None and h.hexdigest() != sha256:
                raise ChecksumError(
                    f"download of {what} from {url} has SHA-256 {h.hexdigest()}, expected {sha256}; "
                    "the file was discarded (a broken mirror or an interrupted transfer)"
                )
            replace_with_umask_mode(tmp, dest)
            tmp = None
            return dest
        except ChecksumError as exc:
            bad_checksum = True
            errors.append(str(exc))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            errors.append(f"{url}: {exc}")
        finally:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
    if bad_checksum:
        raise ChecksumError(f"{what} '{dest}' could not be downloaded intact: {'; '.join(errors)}")
    raise MissingFileError(
        f"{what} '{dest}' is missing and could not be downloaded "
        f"(tried: {'; '.join(errors) or 'no URL'}). Download it by hand from {urls[0] if urls else '?'} "
        f"into {dest.parent}, or point root= / ${ENV_ROOT} at a directory that has it."
    )


def missing_error(path: Path, *, what: str, source: str, root_hint: str) -> MissingFileError:
    return MissingFileError(
        f"{what} '{path}' is missing and download=False. Get it from {source} and put it at {path} "
        f"(layout: {root_hint}), pass download=True to fetch it, or point root= / ${ENV_ROOT} at a "
        "directory that has it."
    )


# --------------------------------------------------------------------------- atomic caches


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array, allow_pickle=False)
        replace_with_umask_mode(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_save_json(path: Path, obj, indent: int | None = None) -> None:
    """``obj`` as JSON at ``path`` (its folder created), atomically: a temporary file renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=indent)
        replace_with_umask_mode(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_json(path: Path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def extract_members(archive: Path, dest: Path, pick: Callable[[str], str | None]) -> list[Path]:
    """Extract archive members for which ``pick(member_name)`` gives a relative path under ``dest``.

    Works for ``.tar.gz`` and ``.zip``; never writes outside ``dest``; each file is written atomically.
    """
    import tarfile
    import zipfile

    written = []
    dest = Path(dest)

    def _write(rel: str, src) -> None:
        target = (dest / rel).resolve()
        if dest.resolve() not in target.parents:
            raise CorruptFileError(f"archive {archive} has a member outside the data folder: {rel}")
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(src, out)
        replace_with_umask_mode(tmp, target)
        written.append(target)

    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    rel = None if info.is_dir() else pick(info.filename)
                    if rel:
                        with zf.open(info) as src:  # zipfile checks each member's CRC-32
                            _write(rel, src)
        else:
            with tarfile.open(archive, "r:*") as tf:
                for m in tf:
                    rel = pick(m.name) if m.isfile() else None
                    if rel:
                        src = tf.extractfile(m)
                        if src is not None:
                            _write(rel, src)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise CorruptFileError(f"archive '{archive}' is corrupt or truncated ({exc}); delete it and retry") from exc
    return written


def check_choice(name: str, value, allowed: Sequence) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(repr(a) for a in allowed)}; got {value!r}")
