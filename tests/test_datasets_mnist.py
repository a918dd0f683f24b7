"""ahpsim.datasets MNIST: the real IDX files in ../shared/data/mnist, the caches, the spike code."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import time
import urllib.error

import numpy as np
import pytest

from ahpsim import datasets as ds
from ahpsim.datasets import _common, mnist as mnist_mod

# Official MD5 of the decompressed IDX files (yann.lecun.com; the shared README quotes the images').
OFFICIAL_MD5 = {
    ("train", "images"): "6bbc9ace898e44ae57da46a324031adb",
    ("train", "labels"): "a25bea736e30d166cdddb491f175f624",
    ("test", "images"): "2646ac647ad5339dbf082846283269ea",
    ("test", "labels"): "27ae3e4e09519cfbb04c329615203637",
}
# Published class counts of MNIST.
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(autouse=True, scope="module")
def _private_cache(tmp_path_factory):
    """Caches go to a temporary folder, never to ~/.cache or the (read-only) data tree."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AHPSIM_CACHE", str(tmp_path_factory.mktemp("ahpsim-cache")))
        yield


@pytest.fixture(scope="module")
def train(data_root):
    return ds.load_mnist(data_root, "train", download=False)


@pytest.fixture(scope="module")
def test(data_root):
    return ds.load_mnist(data_root, "test", download=False)


def _idx_bytes(arr: np.ndarray) -> bytes:
    head = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return head + arr.astype(np.uint8).tobytes()


@pytest.mark.parametrize("split", ["train", "test"])
def test_arrays_reproduce_the_official_files(split, train, test):
    images, labels = train if split == "train" else test
    n = 60000 if split == "train" else 10000
    assert images.shape == (n, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (n,) and labels.dtype == np.int64
    # rebuilding the IDX files from the arrays gives the official bytes
    assert hashlib.md5(_idx_bytes(images)).hexdigest() == OFFICIAL_MD5[(split, "images")]
    assert hashlib.md5(_idx_bytes(labels)).hexdigest() == OFFICIAL_MD5[(split, "labels")]


def test_known_first_examples_and_label_counts(train, test):
    (xtr, ytr), (xte, yte) = train, test
    assert ytr[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert yte[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    # row 5 of the first training image (the well-known "5")
    assert xtr[0, 5, 11:18].tolist() == [0, 3, 18, 18, 18, 126, 136]
    assert np.bincount(ytr).tolist() == TRAIN_COUNTS
    assert np.bincount(yte).tolist() == TEST_COUNTS


def test_cached_reload_is_fast_and_does_not_decompress(data_root, train, test, monkeypatch):
    def no_gzip(*a, **k):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(mnist_mod.gzip, "open", no_gzip)
    elapsed = []
    for _ in range(3):  # best of three: the machine is shared
        t0 = time.perf_counter()
        xtr, ytr = ds.load_mnist(data_root, "train", download=False)
        xte, yte = ds.load_mnist(data_root, "test", download=False)
        elapsed.append(time.perf_counter() - t0)
    elapsed = min(elapsed)
    assert np.array_equal(xtr, train[0]) and np.array_equal(ytr, train[1])
    assert np.array_equal(xte, test[0]) and np.array_equal(yte, test[1])
    assert elapsed < 1.0, f"cached load of 70k images took {elapsed:.3f} s"
    # nothing was written into the data tree
    assert sorted(p.name for p in (data_root / "mnist").iterdir()) == [
        "SHA256SUMS", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]


def _copy_test_split(data_root, dest):
    (dest / "mnist").mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(data_root / "mnist" / name, dest / "mnist" / name)
    return dest / "mnist"


def test_flipped_byte_in_content_is_a_checksum_error(data_root, tmp_path):
    folder = _copy_test_split(data_root, tmp_path)
    f = folder / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(f.read_bytes()))
    raw[5000] ^= 0x01  # a label changes; the gzip wrapper is valid
    f.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(ds.ChecksumError, match="t10k-labels-idx1-ubyte.gz") as info:
        ds.load_mnist(tmp_path, "test", download=False, cache=False)
    assert "download=True" in str(info.value)


def test_flipped_byte_in_gzip_stream_is_detected(data_root, tmp_path):
    folder = _copy_test_split(data_root, tmp_path)
    f = folder / "t10k-images-idx3-ubyte.gz"
    raw = bytearray(f.read_bytes())
    raw[len(raw) // 2] ^= 0x40
    f.write_bytes(bytes(raw))
    with pytest.raises(ds.DatasetError, match="t10k-images-idx3-ubyte.gz"):
        ds.load_mnist(tmp_path, "test", download=False, cache=False)


def test_truncated_file_is_a_clear_error(data_root, tmp_path):
    folder = _copy_test_split(data_root, tmp_path)
    f = folder / "t10k-images-idx3-ubyte.gz"
    f.write_bytes(f.read_bytes()[:100000])
    with pytest.raises(ds.CorruptFileError, match=r"t10k-images-idx3-ubyte\.gz.*truncated"):
        ds.load_mnist(tmp_path, "test", download=False, cache=False)


def test_cache_is_invalidated_when_the_file_changes(data_root, tmp_path):
    folder = _copy_test_split(data_root, tmp_path)
    x, y = ds.load_mnist(tmp_path, "test", download=False, cache_dir=tmp_path / "c")
    assert (tmp_path / "c" / "mnist-test-images.npy").is_file()
    f = folder / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(f.read_bytes()))
    raw[-1] ^= 0x02
    f.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(ds.ChecksumError):
        ds.load_mnist(tmp_path, "test", download=False, cache_dir=tmp_path / "c")


def test_missing_file_offline_names_file_and_remedy(tmp_path, monkeypatch):
    with pytest.raises(ds.MissingFileError, match="train-images-idx3-ubyte.gz") as info:
        ds.load_mnist(tmp_path, "train", download=False)
    assert "download=True" in str(info.value) and "AHPSIM_DATA" in str(info.value)

    def offline(url, timeout=None):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(_common, "_urlopen", offline)
    with pytest.raises(ds.MissingFileError, match="train-images-idx3-ubyte.gz") as info:
        ds.load_mnist(tmp_path, "train", download=True, progress=False)
    msg = str(info.value)
    assert "network unreachable" in msg and "ossci-datasets" in msg
    assert isinstance(info.value, FileNotFoundError)
    assert not any((tmp_path / "mnist").glob("*.part"))


def test_download_from_a_mirror_with_progress(data_root, tmp_path, monkeypatch, capsys):
    mirror = (data_root / "mnist").as_uri() + "/"
    monkeypatch.setattr(mnist_mod, "MNIST_MIRRORS", ("http://127.0.0.1:9/unreachable/", mirror))
    x, y = ds.load_mnist(tmp_path / "fresh", "test", cache=False, progress=True)
    assert x.shape == (10000, 28, 28) and y[:3].tolist() == [7, 2, 1]
    assert (tmp_path / "fresh" / "mnist" / "t10k-images-idx3-ubyte.gz").is_file()
    assert "t10k-images-idx3-ubyte.gz" in capsys.readouterr().err  # the tqdm bar


def test_corrupt_download_is_discarded(data_root, tmp_path, monkeypatch):
    src = tmp_path / "mirror"
    _copy_test_split(data_root, src)
    f = src / "mnist" / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(f.read_bytes()))
    raw[100] ^= 0x01
    f.write_bytes(gzip.compress(bytes(raw)))
    monkeypatch.setattr(mnist_mod, "MNIST_MIRRORS", ((src / "mnist").as_uri() + "/",))
    with pytest.raises(ds.ChecksumError, match="t10k-labels-idx1-ubyte.gz"):
        ds.load_mnist(tmp_path / "fresh", "test", cache=False, progress=False)
    assert not (tmp_path / "fresh" / "mnist" / "t10k-labels-idx1-ubyte.gz").exists()


def test_root_defaults_to_environment(data_root, monkeypatch):
    monkeypatch.setenv("AHPSIM_DATA", str(data_root))
    x, y = ds.load_mnist(split="test", download=False)
    assert x.shape == (10000, 28, 28) and y[0] == 7


def test_bad_arguments(data_root):
    with pytest.raises(ValueError, match="split"):
        ds.load_mnist(data_root, "validation")
    with pytest.raises(TypeError, match="root"):
        ds.load_mnist(123, "test")
    with pytest.raises(TypeError, match="images"):
        ds.sequential_mnist(np.zeros((2, 28, 28), dtype=np.float32))
    with pytest.raises(ValueError, match="images"):
        ds.sequential_mnist(np.zeros((2, 27, 28), dtype=np.uint8))
    with pytest.raises(ValueError, match="variant"):
        ds.threshold_crossing_encode(np.zeros((1, 28, 28), np.uint8), variant="fast")
    with pytest.raises(TypeError, match="seed"):
        ds.mnist_permutation(1.5)


# --------------------------------------------------------------------------- sequential views


def test_sequential_and_permuted_views(test):
    images = test[0][:50]
    seq = ds.sequential_mnist(images)
    assert seq.shape == (50, 784, 1) and seq.dtype == np.float32
    r, c = 14, 9  # row-major: step 28 r + c is pixel (r, c)
    assert seq[3, 28 * r + c, 0] == np.float32(images[3, r, c]) / np.float32(255)
    assert seq.max() == 1.0 and seq.min() == 0.0

    perm = ds.mnist_permutation(0)
    assert sorted(perm.tolist()) == list(range(784))
    assert np.array_equal(perm, ds.mnist_permutation(0))  # fixed
    assert not np.array_equal(perm, ds.mnist_permutation(1))
    # pinned: a change of the permutation would silently change the task
    assert perm[:6].tolist() == np.random.default_rng(0).permutation(784)[:6].tolist()
    pseq = ds.sequential_mnist(images, permute=True, seed=0)
    assert np.array_equal(pseq[:, :, 0], seq[:, perm, 0])


# --------------------------------------------------------------------------- spike code


def _reference_encoding(img: np.ndarray, variant: str) -> np.ndarray:
    """Slow transcription of the rule, independent of the vectorised encoder."""
    px = [int(v) for v in img.reshape(-1)]
    if variant == "loihi":
        th = [int(np.floor(k * 255.0 / 39.0)) for k in range(40)]

        def ge(p, k):
            return p >= th[k]
    else:  # TensorFlow scripts: pixel/255 compared with linspace(0, 1, 40)
        def ge(p, k):
            return p / 255.0 >= k / 39.0
    out = np.zeros((840, 80), dtype=bool)
    for p in range(784):
        if p < 783:
            for k in range(1, 39):
                if not ge(px[p], k) and ge(px[p + 1], k):
                    out[p, 2 * k] = True
                if ge(px[p], k) and not ge(px[p + 1], k):
                    out[p, 2 * k + 1] = True
        if px[p] == 255:
            out[p, 78] = True
    for t in range(784, 840):
        out[t, 79] = True
    return out


@pytest.mark.parametrize("variant", ["loihi", "tf"])
def test_threshold_crossing_matches_a_slow_reference(test, variant):
    rng = np.random.default_rng(5)
    edge = mnist_mod.mnist_thresholds("loihi")
    # a real digit plus a stress image made of threshold values, their neighbours and 255
    stress = rng.choice(np.unique(np.concatenate([edge, edge - 1, edge + 1, [255, 0]]).clip(0, 255)),
                        size=(28, 28)).astype(np.uint8)
    imgs = np.stack([test[0][0], test[0][1], stress])
    enc = ds.threshold_crossing_encode(imgs, variant=variant)
    assert enc.shape == (3, 840, 80) and enc.dtype == bool
    for i in range(3):
        assert np.array_equal(enc[i], _reference_encoding(imgs[i], variant))


def test_threshold_crossing_structure(test):
    enc = ds.threshold_crossing_encode(test[0][:20])
    assert not enc[:, :, :2].any()  # threshold 0 is never crossed
    assert enc[:, 784:, 79].all() and not enc[:, :784, 79].any()  # the cue
    assert not enc[:, 783:, :78].any()  # no crossing after the last pixel, none during the cue
    assert not enc[:, 784:, 78].any()
    # every upward crossing of a threshold is eventually matched by a downward one (digits end black)
    assert np.array_equal(enc[:, :, 2:78:2].sum(1), enc[:, :, 3:78:2].sum(1))
    # the two published threshold sets differ only where 255 k / 39 is not an integer
    lo, hi = mnist_mod.mnist_thresholds("loihi"), mnist_mod.mnist_thresholds("tf")
    assert lo[13] == hi[13] == 85 and lo[26] == hi[26] == 170 and lo[1] == 6 and hi[1] == 7


@pytest.mark.torch
def test_torch_dataset_views(data_root):
    pytest.importorskip("torch")
    images, labels = ds.load_mnist(data_root, "test", download=False)
    for view, shape in (("image", (1, 28, 28)), ("sequential", (784, 1)), ("permuted", (784, 1)),
                        ("spikes", (840, 80))):
        d = ds.MNISTDataset(data_root, "test", view, download=False)
        assert len(d) == 10000
        x, y = d[1]
        assert tuple(x.shape) == shape and y == labels[1] == 2
    d = ds.MNISTDataset(data_root, "test", "permuted", seed=3, download=False)
    assert np.allclose(d[4][0].numpy(), ds.sequential_mnist(images[4:5], permute=True, seed=3)[0])
    d = ds.MNISTDataset(data_root, "test", "spikes", download=False)
    assert np.array_equal(d[0][0].numpy().astype(bool), ds.threshold_crossing_encode(images[:1])[0])
    with pytest.raises(ValueError, match="view"):
        ds.MNISTDataset(data_root, "test", "pixels", download=False)


def test_grey_level_encode_by_hand():
    """Thresholds floor(linspace(0, 255, 40)) = 0, 6, 13, 19, 26, ..., 248, 255: a pixel of 5 is silent,
    6 and 12 fire band 0, 13 band 1, 254 band 37, 255 band 38; the cue (channel 39) follows the pixels."""
    th = ds.mnist_thresholds()
    assert list(th[:4]) == [0, 6, 13, 19] and th[38] == 248 and th[39] == 255
    img = np.zeros((1, 784), np.uint8)
    values = {0: 5, 1: 6, 2: 12, 3: 13, 10: 254, 11: 255, 783: 128}
    for p, val in values.items():
        img[0, p] = val
    out = ds.grey_level_encode(img, cue_steps=3)
    assert out.shape == (1, 787, 40) and out.dtype == bool
    expected = np.zeros_like(out)
    # band k - 1 where k = #{j in 1..39: x >= th[j]}: 128 reaches th[1..19] (th[19] = 124, th[20] = 130)
    assert th[19] == 124 and th[20] == 130
    for p, band in {1: 0, 2: 0, 3: 1, 10: 37, 11: 38, 783: 18}.items():
        expected[0, p, band] = True
    expected[0, 784:, 39] = True
    assert np.array_equal(out, expected)
    # one spike per inked pixel (>= 6), none for the rest; permuted rows give permuted spikes
    rng = np.random.default_rng(3)
    imgs = rng.integers(0, 256, (4, 784)).astype(np.uint8)
    enc = ds.grey_level_encode(imgs)
    assert np.array_equal(enc[:, :784, :39].sum(axis=2), (imgs >= 6).astype(int))
    perm = ds.mnist_permutation(0)
    assert np.array_equal(ds.grey_level_encode(imgs[:, perm])[:, :784], enc[:, perm])
    with pytest.raises(ValueError, match="cue_steps"):
        ds.grey_level_encode(img, cue_steps=-1)
    with pytest.raises(TypeError, match="images"):
        ds.grey_level_encode(img.astype(np.float32))
