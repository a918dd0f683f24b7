"""ahpsim.datasets UCR/UEA .ts files: published instance counts, first values, errors."""

from __future__ import annotations

import shutil
import urllib.error
from collections import Counter

import numpy as np
import pytest

from ahpsim import datasets as ds
from ahpsim.datasets import _common

# name: (train count, test count, dimensions, series length or (min, max)); the archive's published figures
PUBLISHED = {
    "ArrowHead": (36, 175, 1, 251),
    "BasicMotions": (40, 40, 6, 100),
    "GunPoint": (50, 150, 1, 150),
    "ItalyPowerDemand": (67, 1029, 1, 24),
    "JapaneseVowels": (270, 370, 12, (7, 29)),
}


def _raw_instances(path):
    """(list of dimensions as float lists, label) from the text, without the library's parser."""
    lines = path.read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.strip().lower() == "@data") + 1
    out = []
    for ln in lines[start:]:
        if ln.strip():
            *dims, label = ln.strip().split(":")
            out.append(([[float(v) for v in d.split(",")] for d in dims], label))
    return out


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_counts_shapes_labels_and_first_values(data_root, name):
    n_train, n_test, c, length = PUBLISHED[name]
    for split, n in (("train", n_train), ("test", n_test)):
        X, lengths, labels, classes = ds.load_ucr_uea(name, data_root, split, download=False)
        assert X.shape[0] == lengths.shape[0] == labels.shape[0] == n
        assert X.dtype == np.float32 and lengths.dtype == labels.dtype == np.int64
        assert X.shape[2] == c
        if isinstance(length, tuple):
            assert length[0] <= lengths.min() and lengths.max() <= length[1]
        else:
            assert (lengths == length).all() and X.shape[1] == length
        raw = _raw_instances(data_root / "ucr_uea" / name / f"{name}_{split.upper()}.ts")
        # label distribution and order as in the text
        assert [classes[i] for i in labels] == [lab for _, lab in raw]
        assert Counter(classes[i] for i in labels) == Counter(lab for _, lab in raw)
        # first and last instance, all dimensions, then zero padding
        for i in (0, n - 1):
            dims, _ = raw[i]
            assert lengths[i] == len(dims[0])
            np.testing.assert_array_equal(X[i, :lengths[i]].T, np.array(dims, dtype=np.float32))
            assert not X[i, lengths[i]:].any()


def test_published_class_distributions(data_root):
    _, _, y, classes = ds.load_ucr_uea("JapaneseVowels", data_root, "test", download=False)
    assert classes == [str(k) for k in range(1, 10)]
    assert np.bincount(y).tolist() == [31, 35, 88, 44, 29, 24, 40, 50, 29]  # UCI test set per speaker
    _, _, y, classes = ds.load_ucr_uea("BasicMotions", data_root, "train", download=False)
    assert classes == ["Standing", "Running", "Walking", "Badminton"]
    assert np.bincount(y).tolist() == [10, 10, 10, 10]


def _copy(data_root, dest, name="GunPoint"):
    d = dest / "ucr_uea" / name
    d.mkdir(parents=True)
    for split in ("TRAIN", "TEST"):
        shutil.copy(data_root / "ucr_uea" / name / f"{name}_{split}.ts", d)
    return d


def test_flipped_byte_and_truncation(data_root, tmp_path):
    d = _copy(data_root, tmp_path)
    f = d / "GunPoint_TRAIN.ts"
    good = f.read_bytes()
    raw = bytearray(good)
    i = good.index(b"@data") + 40
    raw[i] = ord("7") if raw[i] != ord("7") else ord("3")  # a digit changes: still parses
    f.write_bytes(bytes(raw))
    with pytest.raises(ds.ChecksumError, match="GunPoint_TRAIN.ts"):
        ds.load_ucr_uea("GunPoint", tmp_path, "train", download=False)
    f.write_bytes(good[: len(good) - 500])  # cut inside the last instance
    with pytest.raises(ds.ChecksumError, match="GunPoint_TRAIN.ts"):
        ds.load_ucr_uea("GunPoint", tmp_path, "train", download=False)
    with pytest.raises(ds.CorruptFileError, match="GunPoint_TRAIN.ts"):
        ds.load_ucr_uea("GunPoint", tmp_path, "train", download=False, verify=False)
    f.write_bytes(good[:300])  # header only
    with pytest.raises(ds.CorruptFileError, match="no @data"):
        ds.load_ucr_uea("GunPoint", tmp_path, "train", download=False, verify=False)


def test_missing_file_offline(tmp_path, monkeypatch):
    with pytest.raises(ds.MissingFileError, match="Epilepsy_TRAIN.ts") as info:
        ds.load_ucr_uea("Epilepsy", tmp_path, "train", download=False)
    assert "timeseriesclassification.com" in str(info.value)

    def offline(url, timeout=None):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(_common, "_urlopen", offline)
    with pytest.raises(ds.MissingFileError, match="Epilepsy_TEST.ts"):
        ds.load_ucr_uea("Epilepsy", tmp_path, "test", progress=False)


def test_download_from_zip(data_root, tmp_path, monkeypatch):
    import zipfile

    from ahpsim.datasets import ucr

    z = tmp_path / "ItalyPowerDemand.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for split in ("TRAIN", "TEST"):
            zf.write(data_root / "ucr_uea" / "ItalyPowerDemand" / f"ItalyPowerDemand_{split}.ts",
                     f"ItalyPowerDemand/ItalyPowerDemand_{split}.ts")
    monkeypatch.setattr(ucr, "UCR_UEA_URL", tmp_path.as_uri() + "/{name}.zip")
    X, _, y, _ = ds.load_ucr_uea("ItalyPowerDemand", tmp_path / "fresh", "test", progress=False)
    assert X.shape == (1029, 24, 1)
    assert (tmp_path / "fresh" / "ucr_uea" / "ItalyPowerDemand" / "ItalyPowerDemand_TRAIN.ts").is_file()


def test_missing_values_and_variable_length(tmp_path):
    d = tmp_path / "ucr_uea" / "Toy"
    d.mkdir(parents=True)
    (d / "Toy_TRAIN.ts").write_text(
        "# toy\n@problemName Toy\n@timeStamps false\n@missing true\n@univariate false\n@dimensions 2\n"
        "@equalLength false\n@classLabel true a b\n@data\n"
        "1,2,3:4,5,6:b\n1,?:NaN,2:a\n"
    )
    X, lengths, y, classes = ds.load_ucr_uea("Toy", tmp_path, "train", download=False)
    assert classes == ["a", "b"] and y.tolist() == [1, 0] and lengths.tolist() == [3, 2]
    assert X.shape == (2, 3, 2)
    assert X[0].tolist() == [[1, 4], [2, 5], [3, 6]]
    assert np.isnan(X[1, 1, 0]) and np.isnan(X[1, 0, 1]) and X[1, 2].tolist() == [0, 0]
    (d / "Toy_TEST.ts").write_text("@classLabel true a b\n@data\n1,2:c\n")
    with pytest.raises(ds.CorruptFileError, match="label 'c'"):
        ds.load_ucr_uea("Toy", tmp_path, "test", download=False)


def test_bad_arguments(data_root):
    with pytest.raises(ValueError, match="split"):
        ds.load_ucr_uea("GunPoint", data_root, "val", download=False)
    with pytest.raises(ValueError, match="name"):
        ds.load_ucr_uea("../mnist", data_root, download=False)


@pytest.mark.torch
def test_torch_dataset(data_root):
    torch = pytest.importorskip("torch")
    d = ds.UCRUEADataset("JapaneseVowels", data_root, "train", download=False)
    x, length, y = d[0]
    assert x.dtype == torch.float32 and x.shape == (26, 12) and length == 20 and d.class_names[y] == "1"


def test_byte_order_mark_and_headers_that_contradict_the_data(tmp_path):
    """A valid file saved as UTF-8 with a byte-order mark reads like the plain one; each header that
    can contradict the data (@univariate, @dimensions, @equalLength, @seriesLength, @missing,
    @classLabel) is checked against it."""
    from ahpsim.datasets.ucr import parse_ts

    body = "@problemName Toy\n@univariate true\n@equalLength true\n@seriesLength 3\n@missing false\n" \
           "@classLabel true a b\n@data\n1,2,3:a\n4,5,6:b\n"
    plain, bom = tmp_path / "plain.ts", tmp_path / "bom.ts"
    plain.write_text(body, encoding="utf-8")
    bom.write_text(body, encoding="utf-8-sig")
    assert bom.read_bytes()[:3] == b"\xef\xbb\xbf"
    a, b = parse_ts(plain), parse_ts(bom)
    assert a.labels == b.labels == ["a", "b"] and all(np.array_equal(x, y) for x, y in zip(a.series, b.series))
    bad = {
        "@univariate true": ("1,2,3:4,5,6:a\n", "@univariate true but the data has 2 dimensions"),
        "@equalLength true": ("1,2,3:a\n1,2:b\n", "@equalLength true but the series have lengths 2..3"),
        "@missing false": ("1,?,3:a\n", "@missing false but instance 0 has missing values"),
    }
    for header, (data, msg) in bad.items():
        f = tmp_path / "bad.ts"
        head = "@univariate true\n@equalLength true\n@missing false\n" if header != "@univariate true" else \
            "@univariate true\n"
        f.write_text(head + "@classLabel true a b\n@data\n" + data)
        with pytest.raises(ds.CorruptFileError, match=msg):
            parse_ts(f)
    f = tmp_path / "dims.ts"
    f.write_text("@univariate false\n@dimensions 3\n@classLabel true a\n@data\n1:2:a\n")
    with pytest.raises(ds.CorruptFileError, match="@dimensions 3 but the data has 2"):
        parse_ts(f)
