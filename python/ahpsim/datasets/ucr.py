"""UCR/UEA time-series classification archives in sktime's ``.ts`` format.

Layout: ``<root>/ucr_uea/<Name>/<Name>_{TRAIN,TEST}.ts``. Univariate and multivariate,
equal or variable length; missing values (``?`` / ``NaN``) become NaN.
"""

from __future__ import annotations

import re
from pathlib import Path

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

__all__ = ["UCR_UEA_URL", "load_ucr_uea", "parse_ts", "TsData"]

UCR_UEA_URL = "https://www.timeseriesclassification.com/aeon-toolkit/{name}.zip"

# pinned SHA-256 of the sets whose files we have checked; other sets rely on the ZIP's CRC-32
_SHA256 = {
    "ArrowHead_TEST.ts": "5417dab42626d41df5e435bb22458c2df40dfad4bcd3b59559bbe72e20e84904",
    "ArrowHead_TRAIN.ts": "a83c470aaf611a5f5284377cce27a5fc9f6292bc3d110257b0fd4905ced5ee72",
    "BasicMotions_TEST.ts": "79213102bc6fca1a398ad98ce1185dff0208fa3d1465e687f48288946b0ff8dc",
    "BasicMotions_TRAIN.ts": "8dc43cc6306cb679c888c01e26f91772ac4441a916da43bac8b79734a538b9d6",
    "GunPoint_TEST.ts": "79332750788a6227b325b96bd0d70130c8eb707b9731f8d7dec62b7a7d36017e",
    "GunPoint_TRAIN.ts": "f842401779fd9800d247d8b33121a1a4643710a19b24917dbdd9a060ca8630d5",
    "ItalyPowerDemand_TEST.ts": "26122451f87dd0387ef90b18bc8a86c041371b8a1c068004922b939971247144",
    "ItalyPowerDemand_TRAIN.ts": "341269cb7e6cef96846b30e774580beec79addb93848ba360145219115a74b7c",
    "JapaneseVowels_TEST.ts": "b3d41d6a0ca3bcad3afb9ca7d4365382aa51341e2e58bae2a574babdda5b9462",
    "JapaneseVowels_TRAIN.ts": "68a430eabd919cc77f40b1f5f3bc0dcafacc1486bca9260785aeb7d262cc78cd",
}
_NAME = re.compile(r"^[A-Za-z0-9_\-]+$")


class TsData:
    """Result of :func:`parse_ts`: ``series`` (list of float64 [C, T_i]), ``labels`` (list of str),
    ``class_names`` (from ``@classLabel``) and the header fields in ``header``."""

    def __init__(self, series, labels, class_names, header):
        self.series, self.labels, self.class_names, self.header = series, labels, class_names, header


def _bool(v: str, key: str, path) -> bool:
    lv = v.lower()
    if lv not in ("true", "false"):
        raise CorruptFileError(f".ts file '{path}': @{key} must be true or false, got {v!r}")
    return lv == "true"


def parse_ts(path) -> TsData:
    """Parse one ``.ts`` file (header ``@...`` lines, comments ``#``, then ``@data``)."""
    path = Path(path)
    header: dict = {}
    class_names: list[str] | None = None
    series, labels = [], []
    in_data = False
    with open(path, encoding="utf-8-sig") as f:  # (a byte-order mark, as some editors write, is dropped)
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                if not line.startswith("@"):
                    raise CorruptFileError(f".ts file '{path}', line {lineno}: data before @data")
                key, _, val = line[1:].partition(" ")
                key = key.lower()
                if key == "data":
                    in_data = True
                    if class_names is None:
                        raise CorruptFileError(f".ts file '{path}': no @classLabel line (regression "
                                               "files are not supported)")
                elif key == "classlabel":
                    toks = val.split()
                    if not toks or not _bool(toks[0], key, path) or len(toks) < 2:
                        raise CorruptFileError(f".ts file '{path}': @classLabel must be 'true <labels...>'")
                    class_names = toks[1:]
                elif key == "timestamps":
                    if _bool(val.strip(), key, path):
                        raise CorruptFileError(f".ts file '{path}': time-stamped series are not supported")
                    header[key] = False
                elif key in ("univariate", "equallength", "missing"):
                    header[key] = _bool(val.strip(), key, path)
                elif key in ("dimensions", "serieslength"):
                    try:
                        header[key] = int(val)
                    except ValueError:
                        raise CorruptFileError(f".ts file '{path}': @{key} must be an integer, got {val!r}") from None
                else:
                    header[key] = val.strip()
                continue
            fields = line.split(":")
            if len(fields) < 2:
                raise CorruptFileError(f".ts file '{path}', line {lineno}: expected '<values>:<label>'")
            label = fields[-1].strip()
            if label not in class_names:
                raise CorruptFileError(f".ts file '{path}', line {lineno}: label {label!r} is not one of "
                                       f"@classLabel {class_names}")
            dims = []
            for d in fields[:-1]:
                try:
                    dims.append(np.array([float("nan") if v.strip() == "?" else float(v)
                                          for v in d.split(",")], dtype=np.float64))
                except ValueError:
                    raise CorruptFileError(f".ts file '{path}', line {lineno}: a value is not a number") from None
            lengths = {len(d) for d in dims}
            if len(lengths) != 1:
                # dimensions of unequal length inside one instance: pad the short ones with NaN
                t = max(lengths)
                dims = [np.concatenate([d, np.full(t - len(d), np.nan)]) for d in dims]
            series.append(np.stack(dims))
            labels.append(label)
    if not in_data:
        raise CorruptFileError(f".ts file '{path}' has no @data section: it is truncated or not a .ts file")
    if not series:
        raise CorruptFileError(f".ts file '{path}' has no instances after @data")
    n_dims = {s.shape[0] for s in series}
    if len(n_dims) != 1:
        raise CorruptFileError(f".ts file '{path}': instances have different numbers of dimensions {sorted(n_dims)}")
    c = n_dims.pop()
    if "dimensions" in header and header["dimensions"] != c:
        raise CorruptFileError(f".ts file '{path}': @dimensions {header['dimensions']} but the data has {c}")
    # every header that can contradict the data is checked against it
    if header.get("univariate") is True and c != 1:
        raise CorruptFileError(f".ts file '{path}': @univariate true but the data has {c} dimensions")
    if header.get("equallength"):
        if "serieslength" in header:
            bad = [i for i, s in enumerate(series) if s.shape[1] != header["serieslength"]]
            if bad:
                raise CorruptFileError(f".ts file '{path}': instance {bad[0]} has length {series[bad[0]].shape[1]}, "
                                       f"@seriesLength says {header['serieslength']} (truncated file?)")
        lengths = sorted({s.shape[1] for s in series})
        if len(lengths) > 1:
            raise CorruptFileError(f".ts file '{path}': @equalLength true but the series have lengths "
                                   f"{lengths[0]}..{lengths[-1]}")
    if header.get("missing") is False and any(np.isnan(s).any() for s in series):
        i = next(i for i, s in enumerate(series) if np.isnan(s).any())
        raise CorruptFileError(f".ts file '{path}': @missing false but instance {i} has missing values ('?')")
    return TsData(series, labels, class_names, header)


def _ensure(name: str, folder: Path, path: Path, *, download_missing: bool, progress: bool) -> None:
    if path.is_file():
        return
    url = UCR_UEA_URL.format(name=name)
    if not download_missing:
        raise missing_error(path, what="UCR/UEA file", source=url, root_hint="<root>/ucr_uea/<Name>/<Name>_TRAIN.ts")
    archive = folder / f"{name}.zip"
    try:
        download([url], archive, progress=progress, what=f"UCR/UEA archive {name}.zip")
    except MissingFileError as exc:
        raise MissingFileError(f"UCR/UEA file '{path}' is missing and could not be downloaded: {exc}") from None
    wanted = {f"{name}_TRAIN.ts", f"{name}_TEST.ts"}
    extract_members(archive, folder, lambda m: m.split("/")[-1] if m.split("/")[-1] in wanted else None)
    archive.unlink()
    for fn in wanted:
        p = folder / fn
        if p.is_file() and fn in _SHA256 and sha256_file(p) != _SHA256[fn]:
            p.unlink()
            raise ChecksumError(f"UCR/UEA file '{p}' from {url} has the wrong SHA-256; it was deleted")
    if not path.is_file():
        raise MissingFileError(f"UCR/UEA file '{path}' is not in the archive downloaded from {url}")


def load_ucr_uea(name: str, root=None, split: str = "train", *, download: bool = True,
                 verify: bool = True, progress: bool = True):
    """Load a UCR/UEA classification set: ``(X float32 [N, T_max, C], lengths int64 [N],
    labels int64 [N], class_names list[str])``.

    ``X`` is zero padded after each series' length (``lengths``); missing values stay NaN.
    ``labels`` index ``class_names`` (in the order of the file's ``@classLabel`` line, which is
    the same in the TRAIN and TEST files). Files of the five sets in the test data
    (ArrowHead, BasicMotions, GunPoint, ItalyPowerDemand, JapaneseVowels) are checked against
    pinned SHA-256 values when ``verify``.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"name must be a UCR/UEA data-set name such as 'GunPoint', got {name!r}")
    check_choice("split", split, ("train", "test"))
    folder = data_root(root) / "ucr_uea" / name
    fn = f"{name}_{split.upper()}.ts"
    path = folder / fn
    _ensure(name, folder, path, download_missing=download, progress=progress)
    if verify and fn in _SHA256:
        check_sha256(path, sha256_file(path), _SHA256[fn], what="UCR/UEA file",
                     fix="Delete it and load again with download=True, or copy a good one there.")
    ts = parse_ts(path)
    lengths = np.array([s.shape[1] for s in ts.series], dtype=np.int64)
    c = ts.series[0].shape[0]
    X = np.zeros((len(ts.series), int(lengths.max()), c), dtype=np.float32)
    for i, s in enumerate(ts.series):
        X[i, :s.shape[1]] = s.T
    index = {n: i for i, n in enumerate(ts.class_names)}
    labels = np.array([index[l] for l in ts.labels], dtype=np.int64)
    return X, lengths, labels, list(ts.class_names)
