"""MNIST from the four IDX ``.gz`` files; sequential / permuted views; the Loihi threshold-crossing code.

Layout: ``<root>/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ._common import (
    CorruptFileError,
    DatasetError,
    atomic_save_json,
    atomic_save_npy,
    cache_dir_for,
    check_choice,
    check_sha256,
    data_root,
    download,
    missing_error,
    read_json,
    sha256_bytes,
    stat_signature,
)

__all__ = [
    "MNIST_MIRRORS",
    "load_mnist",
    "mnist_permutation",
    "sequential_mnist",
    "threshold_crossing_encode",
    "grey_level_encode",
    "mnist_thresholds",
    "N_PIXELS",
    "CUE_STEPS",
    "N_INPUT_CHANNELS",
]

MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

# file name -> (number of items, SHA-256 of the *decompressed* IDX file). The decompressed bytes are
# what every mirror serves identically (their gzip wrappers differ); their MD5s are the official ones
# (train images 6bbc9ace..., t10k images 2646ac64...).
_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60000),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000),
}
_RAW_SHA256 = {
    "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

N_PIXELS = 784
CUE_STEPS = 56  # two image rows: the steps after the pixels in which the network answers
N_INPUT_CHANNELS = 80
_CACHE_VERSION = 1


def _idx_decode(raw: bytes, path: Path, expect_dims: int, n: int) -> np.ndarray:
    if len(raw) < 4 + 4 * expect_dims:
        raise CorruptFileError(f"MNIST file '{path}' is truncated (only {len(raw)} bytes)")
    zero, dtype_code, ndim = raw[0] << 8 | raw[1], raw[2], raw[3]
    if zero != 0 or dtype_code != 0x08 or ndim != expect_dims:
        raise CorruptFileError(
            f"MNIST file '{path}' is not an unsigned-byte IDX file with {expect_dims} dimension(s) "
            f"(header {raw[:4].hex()})"
        )
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    size = int(np.prod(dims))
    body = memoryview(raw)[4 + 4 * ndim:]
    if dims[0] != n or len(body) != size:
        raise CorruptFileError(
            f"MNIST file '{path}' holds {len(body)} data bytes for dimensions {dims}; expected "
            f"{n} items: the file is truncated or not the official one"
        )
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def _read_gz(path: Path, *, verify: bool) -> bytes:
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (EOFError, OSError, zlib.error) as exc:
        raise CorruptFileError(
            f"MNIST file '{path}' cannot be decompressed ({exc}): it is truncated or corrupt. "
            "Delete it and load again with download=True, or copy a good one there."
        ) from exc
    if verify:
        check_sha256(path, sha256_bytes(raw), _RAW_SHA256[path.name], what="MNIST file (decompressed)",
                     fix="Delete it and load again with download=True, or copy a good one there.")
    return raw


def _ensure(path: Path, *, download_missing: bool, progress: bool) -> None:
    if path.is_file():
        return
    if not download_missing:
        raise missing_error(path, what="MNIST file", source=MNIST_MIRRORS[0] + path.name,
                            root_hint="<root>/mnist/<file>.gz")
    download([m + path.name for m in MNIST_MIRRORS], path, progress=progress, what="MNIST file")
    try:  # a bad download must not stay behind
        _read_gz(path, verify=True)
    except DatasetError:
        path.unlink()
        raise


def load_mnist(root=None, split: str = "train", *, download: bool = True, cache: bool = True,
               cache_dir=None, verify: bool = True, progress: bool = True):
    """Load MNIST as ``(images uint8 [N, 28, 28], labels int64 [N])``.

    Parameters
    ----------
    root : path, optional
        Data directory (the files are read from ``root/mnist``); default ``$AHPSIM_DATA``.
    split : {"train", "test"}
        60,000 training or 10,000 test images.
    download : bool
        Fetch missing files from the canonical mirrors (with checksum and progress bar).
    cache : bool
        Keep the decoded arrays as ``.npy`` files in ``cache_dir`` (default: the user cache
        ``$AHPSIM_CACHE`` or ``~/.cache/ahpsim``, never the data tree); later calls read those,
        which takes a few tens of milliseconds instead of decompressing. A cache is used only
        while the ``.gz`` files keep the size and modification time they had when it was written.
    verify : bool
        Check the SHA-256 of the decompressed files whenever they are decoded.
    """
    check_choice("split", split, tuple(_FILES))
    folder = data_root(root) / "mnist"
    img_name, lab_name, n = _FILES[split]
    img_path, lab_path = folder / img_name, folder / lab_name
    for p in (img_path, lab_path):
        _ensure(p, download_missing=download, progress=progress)

    sig = stat_signature([img_path, lab_path])
    cdir = cache_dir_for(folder, "mnist", cache_dir) if cache else None
    if cdir is not None:
        meta_p = cdir / f"mnist-{split}.json"
        meta = read_json(meta_p)
        if (meta is not None and meta.get("version") == _CACHE_VERSION and meta.get("sources") == sig
                and (meta.get("verified") or not verify)):
            try:
                images = np.load(cdir / f"mnist-{split}-images.npy", allow_pickle=False)
                labels = np.load(cdir / f"mnist-{split}-labels.npy", allow_pickle=False)
            except (OSError, ValueError):
                pass
            else:
                if images.shape == (n, 28, 28) and labels.shape == (n,):
                    return images, labels

    images = _idx_decode(_read_gz(img_path, verify=verify), img_path, 3, n)
    labels = _idx_decode(_read_gz(lab_path, verify=verify), lab_path, 1, n).astype(np.int64)
    if labels.max() > 9:
        raise CorruptFileError(f"MNIST file '{lab_path}' has labels outside 0..9")
    images = images.copy()  # own the memory (frombuffer views the decompressed bytes, read-only)
    if cdir is not None:
        try:
            atomic_save_npy(cdir / f"mnist-{split}-images.npy", images)
            atomic_save_npy(cdir / f"mnist-{split}-labels.npy", labels)
            atomic_save_json(cdir / f"mnist-{split}.json",
                             {"version": _CACHE_VERSION, "sources": sig, "verified": bool(verify)})
        except OSError:
            pass  # a cache that cannot be written is not an error
    return images, labels


# --------------------------------------------------------------------------- sequential views


def _as_pixel_rows(images, name: str = "images") -> np.ndarray:
    arr = np.asarray(images)
    if arr.dtype != np.uint8:
        raise TypeError(f"{name} must be a uint8 array of grey levels 0..255, got dtype {arr.dtype}")
    if arr.ndim == 3 and arr.shape[1:] == (28, 28):
        return arr.reshape(arr.shape[0], N_PIXELS)
    if arr.ndim == 2 and arr.shape[1] == N_PIXELS:
        return arr
    raise ValueError(f"{name} must have shape [N, 28, 28] or [N, 784], got {arr.shape}")


def _check_cue_steps(cue_steps) -> None:
    if isinstance(cue_steps, bool) or not isinstance(cue_steps, (int, np.integer)) or cue_steps < 0:
        raise ValueError(f"cue_steps must be an int >= 0, got {cue_steps!r}")


def mnist_permutation(seed: int = 0) -> np.ndarray:
    """The fixed pixel permutation of permuted sMNIST for ``seed`` (int64 [784], a permutation of 0..783).

    ``numpy.random.default_rng(seed).permutation(784)``: stable across platforms and NumPy versions
    (the PCG64 stream and the permutation algorithm are covered by NumPy's stream-compatibility policy).
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return np.random.default_rng(int(seed)).permutation(N_PIXELS).astype(np.int64)


def sequential_mnist(images, permute: bool = False, seed: int = 0) -> np.ndarray:
    """Pixel-per-step sequences: float32 [N, 784, 1] with values pixel/255 in row-major order.

    With ``permute=True`` the pixel order is ``mnist_permutation(seed)`` (the same for every image);
    ``seed`` is ignored otherwise.
    """
    rows = _as_pixel_rows(images)
    if permute:
        rows = rows[:, mnist_permutation(seed)]
    out = rows.astype(np.float32)
    out /= np.float32(255.0)  # correctly rounded pixel/255
    return out[:, :, None]


# --------------------------------------------------------------------------- threshold-crossing spikes


def mnist_thresholds(variant: str = "loihi") -> np.ndarray:
    """The 40 integer grey-level thresholds of the threshold-crossing code (int16 [40]).

    ``"loihi"``: ``floor(linspace(0, 255, 40))``, as in the authors' Loihi input SNIP.
    ``"tf"``: the TensorFlow (LSNN) training scripts compare pixel/255 with ``linspace(0, 1, 40)``;
    for 8-bit pixels this equals the integer thresholds ``ceil(linspace(0, 255, 40))``: the two
    codes differ only for pixels exactly on a floor threshold that is not a multiple of 255/39.
    """
    check_choice("variant", variant, ("loihi", "tf"))
    lin = np.linspace(0.0, 255.0, 40)
    th = np.floor(lin) if variant == "loihi" else np.ceil(lin - 1e-9)
    return th.astype(np.int16)


def threshold_crossing_encode(images, *, variant: str = "loihi", cue_steps: int = CUE_STEPS,
                              chunk: int = 2048) -> np.ndarray:
    """Threshold-crossing spike code of sMNIST as run on Loihi: bool [N, 784 + cue_steps, 80].

    Channels (``th = mnist_thresholds(variant)``, ``x[p]`` the p-th pixel in row-major order):

    - ``2k`` (k = 1..38) at step p < 783: upward crossing, ``x[p] < th[k] <= x[p+1]``;
    - ``2k+1`` (k = 1..38) at step p < 783: downward crossing, ``x[p] >= th[k] > x[p+1]``;
    - ``78`` at step p <= 783: the pixel is 255 (touching the top threshold);
    - ``79``: the cue, on for the ``cue_steps`` (56) steps after the 784 pixel steps;
    - channels 0 and 1 (threshold 0) never fire.

    The output for 60,000 images is 4 GB; encode mini-batches (or use ``MNISTSpikes``).
    """
    rows = _as_pixel_rows(images)
    _check_cue_steps(cue_steps)
    th = mnist_thresholds(variant)[1:39]  # k = 1..38
    n = rows.shape[0]
    out = np.zeros((n, N_PIXELS + cue_steps, N_INPUT_CHANNELS), dtype=bool)
    for s in range(0, n, chunk):
        x = rows[s:s + chunk].astype(np.int16)
        cur_hi = x[:, :-1, None] >= th  # [B, 783, 38]
        nxt_hi = x[:, 1:, None] >= th
        o = out[s:s + chunk]
        o[:, :N_PIXELS - 1, 2:78:2] = ~cur_hi & nxt_hi
        o[:, :N_PIXELS - 1, 3:78:2] = cur_hi & ~nxt_hi
        o[:, :N_PIXELS, 78] = x == 255
    out[:, N_PIXELS:, 79] = True
    return out


def grey_level_encode(images, *, variant: str = "loihi", cue_steps: int = CUE_STEPS,
                      chunk: int = 2048) -> np.ndarray:
    """One spike per inked pixel on the channel of its grey-level band: bool [N, 784 + cue_steps, 40].

    With ``th = mnist_thresholds(variant)`` and ``x[p]`` the p-th pixel, let ``k`` be the number of
    thresholds ``th[1..39]`` that ``x[p]`` reaches (``x[p] >= th[j]``); channel ``k - 1`` fires at step
    ``p`` when ``k >= 1`` (pixels below ``th[1]`` = 6 stay silent); channel 39 is the cue, on for the
    ``cue_steps`` steps after the 784 pixel steps. Unlike the threshold-crossing code, each step carries
    its own pixel's value, whatever the pixel before it: the code for permuted sMNIST, where neighbours
    in time are unrelated pixels.
    """
    rows = _as_pixel_rows(images)
    _check_cue_steps(cue_steps)
    th = mnist_thresholds(variant)[1:40]  # th[1..39]
    n = rows.shape[0]
    out = np.zeros((n, N_PIXELS + cue_steps, 40), dtype=bool)
    for s in range(0, n, chunk):
        x = rows[s:s + chunk].astype(np.int16)
        k = (x[:, :, None] >= th).sum(axis=2)  # [B, 784], 0..39
        b, p = np.nonzero(k)
        out[s + b, p, k[b, p] - 1] = True
    out[:, N_PIXELS:, 39] = True
    return out
