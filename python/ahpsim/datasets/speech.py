"""Spoken keywords: the Free Spoken Digit Dataset and Google Speech Commands v0.02, as MFCC frames.

Signal processing uses librosa (MFCC) and soundfile (WAV reading): ``pip install ahpsim[speech]``.

Layouts: ``<root>/fsdd/recordings/<digit>_<speaker>_<index>.wav`` and
``<root>/speech_commands_v0.02/<word>/<file>.wav`` with ``validation_list.txt``,
``testing_list.txt`` and ``_background_noise_/`` as in the official archive.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from .._files import replace_with_umask_mode
from ._common import (
    ChecksumError,
    CorruptFileError,
    MissingFileError,
    atomic_save_json,
    cache_dir_for,
    check_choice,
    data_root,
    download,
    extract_members,
    read_json,
    sha256_file,
    stat_signature,
    tree_digest,
)

__all__ = [
    "FSDD_COMMIT", "FSDD_URL", "FSDD_SPEAKERS", "SPEECH_COMMANDS_CLASSES", "SPEECH_COMMANDS_URL",
    "SPEECH_COMMANDS_SHA256",
    "fsdd_files", "load_fsdd", "load_speech_commands", "mfcc", "mfcc_batch", "crossing_encode",
]

FSDD_COMMIT = "26eb9aaf76e81b692f806f9140c2d2777410d7a1"
FSDD_URL = f"https://github.com/Jakobovski/free-spoken-digit-dataset/archive/{FSDD_COMMIT}.tar.gz"
FSDD_SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
# sha256 over the sorted "<sha256>  <file name>\n" lines of the 3,000 recordings at FSDD_COMMIT
_FSDD_TREE_SHA256 = "1801eae019c063377d98f831d3f93574f259475df7332bb0e3d1b080fb5e6959"
_FSDD_VERIFIED: set = set()

SPEECH_COMMANDS_URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"
SPEECH_COMMANDS_URLS = (
    "https://storage.googleapis.com/download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
    SPEECH_COMMANDS_URL,
)
# SHA-256 of the v0.02 archive (2,428,923,189 bytes) as published by TensorFlow Datasets
# (datasets/speech_commands/checksums.tsv) and torchaudio (SPEECHCOMMANDS _CHECKSUMS).
SPEECH_COMMANDS_SHA256 = "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58"
SPEECH_COMMANDS_CLASSES = ("_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right",
                           "on", "off", "stop", "go")
_FEATURE_CACHE_VERSION = 1


def _speech_deps():
    try:
        import librosa
        import soundfile
    except ImportError as exc:
        raise ImportError(
            f"speech features need librosa and soundfile ({exc.name} is missing): "
            "pip install 'ahpsim[speech]'  (or: pip install librosa soundfile)"
        ) from exc
    return librosa, soundfile


# --------------------------------------------------------------------------- features


def _check_int(name: str, v, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
    return int(v)


def _frame_params(sr: int, win_ms: float, hop_ms: float):
    for name, v in (("win_ms", win_ms), ("hop_ms", hop_ms)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise ValueError(f"{name} must be a positive number of milliseconds, got {v!r}")
    win = int(round(sr * win_ms / 1000.0))
    hop = int(round(sr * hop_ms / 1000.0))
    if win < 16 or hop < 1:
        raise ValueError(f"win_ms={win_ms} / hop_ms={hop_ms} give {win} / {hop} samples at {sr} Hz: too short")
    n_fft = 1 << (win - 1).bit_length()
    return win, hop, n_fft


def mfcc(y: np.ndarray, sr: int, n_mfcc: int = 13, *, n_mels: int = 40, win_ms: float = 25.0,
         hop_ms: float = 10.0, deltas: bool = False) -> np.ndarray:
    """MFCC frames of one waveform: float32 [T, n_mfcc] (``[T, 3 n_mfcc]`` with deltas).

    librosa's MFCC (Slaney mel filter bank of ``n_mels`` bands up to sr/2, power in dB with an
    80 dB floor below the maximum, orthonormal DCT-II) on Hann windows of ``win_ms`` every
    ``hop_ms``. The FFT size is the next power of two, n_fft >= win; there is no centre padding:
    frame t is the FFT of samples [t*hop, t*hop + n_fft) with the window centred in it, so
    T = 1 + (len - n_fft) // hop. Signals shorter than n_fft are zero padded to one frame.
    ``deltas`` appends first and second time derivatives (librosa.feature.delta, 9 frames, edge
    values repeated).
    """
    return mfcc_batch([y], sr, n_mfcc, n_mels=n_mels, win_ms=win_ms, hop_ms=hop_ms, deltas=deltas)[0]


def mfcc_batch(ys: Sequence[np.ndarray], sr: int, n_mfcc: int = 13, *, n_mels: int = 40,
               win_ms: float = 25.0, hop_ms: float = 10.0, deltas: bool = False,
               group: int = 64) -> list[np.ndarray]:
    """:func:`mfcc` of many waveforms, the same numbers, several times faster: the mel spectra of
    waveforms of similar length are computed in one librosa call (on zero-padded copies, whose
    extra frames are dropped), the dB scale and DCT per waveform as in :func:`mfcc`."""
    librosa, _ = _speech_deps()
    n_mfcc = _check_int("n_mfcc", n_mfcc, 1)
    n_mels = _check_int("n_mels", n_mels, n_mfcc)
    win, hop, n_fft = _frame_params(sr, win_ms, hop_ms)
    sigs = []
    for y in ys:
        y = np.asarray(y, dtype=np.float32)
        if y.ndim != 1:
            raise ValueError(f"y must be a mono waveform (1-D), got shape {y.shape}")
        sigs.append(np.pad(y, (0, n_fft - len(y))) if len(y) < n_fft else y)
    out: list = [None] * len(sigs)
    order = np.argsort([len(y) for y in sigs], kind="stable")
    for g in range(0, len(order), group):
        idx = order[g:g + group]
        width = max(len(sigs[i]) for i in idx)
        batch = np.zeros((len(idx), width), dtype=np.float32)
        for r, i in enumerate(idx):
            batch[r, :len(sigs[i])] = sigs[i]
        mel = librosa.feature.melspectrogram(y=batch, sr=sr, n_fft=n_fft, hop_length=hop, win_length=win,
                                             center=False, power=2.0, n_mels=n_mels)
        for r, i in enumerate(idx):
            frames = 1 + (len(sigs[i]) - n_fft) // hop
            m = librosa.feature.mfcc(S=librosa.power_to_db(mel[r, :, :frames]), n_mfcc=n_mfcc)
            if deltas:
                m = np.concatenate([m, librosa.feature.delta(m, order=1, mode="nearest"),
                                    librosa.feature.delta(m, order=2, mode="nearest")], axis=0)
            out[i] = np.ascontiguousarray(m.T, dtype=np.float32)
    return out


def crossing_encode(features: np.ndarray, lengths: np.ndarray, thresholds) -> np.ndarray:
    """Threshold-crossing spikes of feature streams: bool [N, T, F * 2 * K].

    For feature f and threshold k (``thresholds`` sorted, K of them), channel ``2 (f K + k)``
    fires at frame t < length-1 when ``x[t, f] < th[k] <= x[t+1, f]`` (upward crossing) and
    channel ``2 (f K + k) + 1`` when ``x[t, f] >= th[k] > x[t+1, f]`` (downward): the same rule
    as the sMNIST code of :func:`threshold_crossing_encode`. Padded frames stay silent.
    """
    x = np.asarray(features)
    if x.ndim != 3:
        raise ValueError(f"features must have shape [N, T, F], got {x.shape}")
    lengths = np.asarray(lengths)
    if lengths.shape != (x.shape[0],):
        raise ValueError(f"lengths must have shape [N] = [{x.shape[0]}], got {lengths.shape}")
    th = np.asarray(thresholds, dtype=np.float64)
    if th.ndim != 1 or th.size == 0 or np.any(np.diff(th) <= 0):
        raise ValueError("thresholds must be a non-empty increasing 1-D sequence")
    n, t, f = x.shape
    hi = x[..., None] >= th  # [N, T, F, K]
    up = ~hi[:, :-1] & hi[:, 1:]
    down = hi[:, :-1] & ~hi[:, 1:]
    out = np.zeros((n, t, f, th.size, 2), dtype=bool)
    out[:, :-1, :, :, 0] = up
    out[:, :-1, :, :, 1] = down
    valid = np.arange(t)[None, :] < (lengths[:, None] - 1)
    out &= valid[:, :, None, None, None]
    return out.reshape(n, t, f * th.size * 2)


def _pad(feats: Sequence[np.ndarray]):
    lengths = np.array([len(a) for a in feats], dtype=np.int64)
    f = feats[0].shape[1] if feats else 0
    out = np.zeros((len(feats), int(lengths.max(initial=0)), f), dtype=np.float32)
    for i, a in enumerate(feats):
        out[i, :len(a)] = a
    return out, lengths


def _normalize(padded: np.ndarray, lengths: np.ndarray, mode, stats=None):
    if mode is None or mode == "none":
        return padded
    mask = (np.arange(padded.shape[1])[None, :] < lengths[:, None])[..., None]
    if mode == "utterance":
        cnt = np.maximum(lengths, 1)[:, None, None].astype(np.float64)
        mean = (padded * mask).sum(1, keepdims=True) / cnt
        var = (((padded - mean) * mask) ** 2).sum(1, keepdims=True) / cnt
        out = (padded - mean) / np.sqrt(var + 1e-8)
    else:  # "train": statistics given
        mean, std = stats
        out = (padded - mean) / std
    return (out * mask).astype(np.float32)


def _finish(feats, labels, mode, stats, spikes, spike_thresholds):
    padded, lengths = _pad(feats)
    padded = _normalize(padded, lengths, mode, stats)
    if spikes:
        th = (np.linspace(-2.0, 2.0, _check_int("spike_thresholds", spike_thresholds, 1))
              if isinstance(spike_thresholds, (int, np.integer)) else spike_thresholds)
        padded = crossing_encode(padded, lengths, th)
    return padded, lengths, np.asarray(labels, dtype=np.int64)


def _train_stats(feats):
    allf = np.concatenate(feats).astype(np.float64)
    mean = allf.mean(0)
    std = allf.std(0)
    return mean.astype(np.float32), np.maximum(std, 1e-6).astype(np.float32)


def _check_common(split, normalize, allowed_splits, spikes):
    check_choice("split", split, allowed_splits)
    check_choice("normalize", normalize, ("train", "utterance", "none", None))
    if spikes and normalize in (None, "none"):
        raise ValueError("spikes=True needs normalised features (normalize='train' or 'utterance')")


# --------------------------------------------------------------------------- FSDD


def _fsdd_expected() -> list[str]:
    return [f"{d}_{s}_{i}.wav" for d in range(10) for s in FSDD_SPEAKERS for i in range(50)]


def _fsdd_download(rec: Path, progress: bool) -> None:
    archive = rec.parent / f"fsdd-{FSDD_COMMIT[:12]}.tar.gz"
    download([FSDD_URL], archive, progress=progress, what="FSDD archive")

    def pick(name: str):
        parts = name.split("/")
        return f"recordings/{parts[-1]}" if len(parts) >= 2 and parts[-2] == "recordings" and name.endswith(".wav") else None

    extract_members(archive, rec.parent, pick)
    archive.unlink()


def _fsdd_verify(rec: Path, paths: list[Path]) -> None:
    sig = hashlib.sha1(repr(stat_signature(paths)).encode()).hexdigest()
    if sig in _FSDD_VERIFIED:
        return
    digests = [(p.name, sha256_file(p)) for p in paths]
    if tree_digest(digests) != _FSDD_TREE_SHA256:
        bad = ""
        sums = rec.parent / "SHA256SUMS"
        if sums.is_file():  # a per-file list lets us name the culprits
            ref = {}
            for line in sums.read_text().splitlines():
                h, _, name = line.partition("  ")
                ref[name.rsplit("/", 1)[-1]] = h
            wrong = [n for n, h in digests if ref.get(n) != h]
            if wrong:
                bad = f" Files that differ from {sums}: {', '.join(wrong[:10])}{' ...' if len(wrong) > 10 else ''}."
        raise ChecksumError(
            f"FSDD recordings in '{rec}' differ from the pinned release (commit {FSDD_COMMIT[:12]}): "
            f"their combined SHA-256 is not {_FSDD_TREE_SHA256}.{bad} Delete the corrupt files and load "
            "again with download=True, or copy good ones there."
        )
    _FSDD_VERIFIED.add(sig)


def fsdd_files(root=None, split: str = "train", *, download: bool = True, verify: bool = True,
               progress: bool = True):
    """FSDD recordings of ``split`` as a list of ``(path, digit, speaker, index)``, ordered by
    digit, speaker, index. Standard split: index 0-4 of each digit and speaker is ``"test"``
    (300 files), 5-49 is ``"train"`` (2,700); ``"all"`` gives the 3,000."""
    check_choice("split", split, ("train", "test", "all"))
    rec = data_root(root) / "fsdd" / "recordings"
    names = _fsdd_expected()
    missing = [n for n in names if not (rec / n).is_file()]
    if missing and download:
        try:
            _fsdd_download(rec, progress)
        except MissingFileError as exc:
            raise MissingFileError(f"FSDD recording '{rec / missing[0]}' is missing ({len(missing)} of 3000 "
                                   f"missing) and could not be downloaded: {exc}") from None
        missing = [n for n in names if not (rec / n).is_file()]
    if missing:
        raise MissingFileError(
            f"FSDD recording '{rec / missing[0]}' is missing ({len(missing)} of 3000 missing"
            f"{'' if download else ', download=False'}). Get the recordings/ folder of {FSDD_URL} "
            f"into '{rec}', pass download=True, or point root= / $AHPSIM_DATA at a directory with fsdd/recordings/."
        )
    paths = [rec / n for n in names]
    if verify:
        _fsdd_verify(rec, paths)
    out = []
    for p in paths:
        d, s, i = p.stem.split("_")
        i = int(i)
        if split == "all" or (split == "test") == (i < 5):
            out.append((p, int(d), s, i))
    return out


def _read_wav(path: Path, sf, sr_expected: int | None = None) -> tuple[np.ndarray, int]:
    try:
        y, sr = sf.read(str(path), dtype="float32", always_2d=False)
    except Exception as exc:  # soundfile raises its own LibsndfileError (a RuntimeError)
        raise CorruptFileError(f"WAV file '{path}' cannot be read ({exc}): it is truncated or corrupt") from exc
    if y.ndim != 1:
        raise CorruptFileError(f"WAV file '{path}' is not mono (shape {y.shape})")
    if sr_expected is not None and sr != sr_expected:
        raise CorruptFileError(f"WAV file '{path}' has sample rate {sr}, expected {sr_expected}")
    return y, sr


def _fsdd_raw_features(files, params: dict, cache: bool, cache_dir, rec_dir: Path):
    """Unnormalised MFCC of every FSDD file (list of [T_i, F]), cached as one .npz."""
    librosa, sf = _speech_deps()
    key = hashlib.sha1(repr((sorted(params.items()), librosa.__version__, _FEATURE_CACHE_VERSION)).encode()).hexdigest()[:16]
    sig = hashlib.sha1(repr(stat_signature([f[0] for f in files])).encode()).hexdigest()
    cdir = cache_dir_for(rec_dir.parent, "fsdd", cache_dir) if cache else None
    if cdir is not None:
        meta = read_json(cdir / f"fsdd-mfcc-{key}.json")
        if meta is not None and meta.get("sources") == sig:
            try:
                with np.load(cdir / f"fsdd-mfcc-{key}.npz", allow_pickle=False) as z:
                    data, offsets = z["data"], z["offsets"]
                if len(offsets) == len(files) + 1:
                    return [data[offsets[i]:offsets[i + 1]] for i in range(len(files))]
            except (OSError, ValueError, KeyError):
                pass
    feats = mfcc_batch([_read_wav(p, sf, 8000)[0] for p, *_ in files], 8000, **params)
    if cdir is not None:
        offsets = np.concatenate([[0], np.cumsum([len(a) for a in feats])]).astype(np.int64)
        fd, tmp = tempfile.mkstemp(prefix=".fsdd-mfcc.", suffix=".npz", dir=cdir)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, data=np.concatenate(feats), offsets=offsets)
            replace_with_umask_mode(tmp, cdir / f"fsdd-mfcc-{key}.npz")
            atomic_save_json(cdir / f"fsdd-mfcc-{key}.json", {"sources": sig, "params": params})
        except OSError:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return feats


def load_fsdd(root=None, split: str = "train", n_mfcc: int = 13, *, n_mels: int = 40,
              win_ms: float = 25.0, hop_ms: float = 10.0, deltas: bool = False,
              normalize: str | None = "train", spikes: bool = False, spike_thresholds=8,
              download: bool = True, verify: bool = True, cache: bool = True, cache_dir=None,
              progress: bool = True):
    """Free Spoken Digit Dataset as MFCC frames: ``(features float32 [N, T_max, F], lengths int64 [N],
    labels int64 [N])`` (the digit), zero padded after ``lengths``.

    Standard split: recordings 0-4 of each speaker and digit are the test set (300), 5-49 the
    training set (2,700). Frames: ``win_ms`` Hann windows every ``hop_ms`` (25 ms / 10 ms: 200 / 80
    samples at 8 kHz), ``n_mels`` mel bands, ``n_mfcc`` coefficients (see :func:`mfcc`).

    normalize : ``"train"`` (default) standardises each coefficient with the mean and standard
        deviation over all frames of the *training* recordings, for every split; ``"utterance"``
        per recording; ``None`` keeps raw MFCC.
    spikes : return the threshold-crossing spike code (bool [N, T_max, F * 2 K]) of the normalised
        features instead (:func:`crossing_encode`; ``spike_thresholds`` K evenly spaced in [-2, 2]
        or an explicit increasing sequence).

    The MFCC of all 3,000 recordings are cached (``$AHPSIM_CACHE``) after the first call.
    """
    _check_common(split, normalize, ("train", "test", "all"), spikes)
    params = dict(n_mfcc=_check_int("n_mfcc", n_mfcc, 1), n_mels=_check_int("n_mels", n_mels, 1),
                  win_ms=float(win_ms), hop_ms=float(hop_ms), deltas=bool(deltas))
    _frame_params(8000, win_ms, hop_ms)
    files = fsdd_files(root, "all", download=download, verify=verify, progress=progress)
    rec_dir = files[0][0].parent
    feats = _fsdd_raw_features(files, params, cache, cache_dir, rec_dir)
    is_test = np.array([f[3] < 5 for f in files])
    stats = _train_stats([a for a, t in zip(feats, is_test) if not t]) if normalize == "train" else None
    pick = [i for i in range(len(files)) if split == "all" or is_test[i] == (split == "test")]
    return _finish([feats[i] for i in pick], [files[i][1] for i in pick], normalize, stats, spikes,
                   spike_thresholds)


# --------------------------------------------------------------------------- Speech Commands


def _sc_download(base: Path, progress: bool) -> None:
    """Fetch the v0.02 archive (checked against its published SHA-256) and extract it into ``base``."""
    archive = base.parent / "speech_commands_v0.02.tar.gz"
    download(list(SPEECH_COMMANDS_URLS), archive, sha256=SPEECH_COMMANDS_SHA256, progress=progress,
             what="Speech Commands v0.02 archive (2.3 GB)")

    def pick(name: str):
        while name.startswith("./"):
            name = name[2:]
        return name or None

    extract_members(archive, base, pick)
    archive.unlink()


def _sc_split_lists(base: Path, download_missing: bool = False, progress: bool = True):
    if download_missing and not (base / "testing_list.txt").is_file():
        try:
            _sc_download(base, progress)
        except MissingFileError:
            pass  # explained below, with the file that is missing
    lists = {}
    for name in ("validation_list.txt", "testing_list.txt"):
        p = base / name
        if not p.is_file():
            raise MissingFileError(
                f"Speech Commands file '{p}' is missing and the archive could not be downloaded. Download "
                f"{SPEECH_COMMANDS_URL} (2.3 GB; SHA-256 {SPEECH_COMMANDS_SHA256}), extract it into '{base}', "
                "or load with download=True while online."
            )
        lists[name] = {ln.strip() for ln in p.read_text().splitlines() if ln.strip()}
    return lists["validation_list.txt"], lists["testing_list.txt"]


def load_speech_commands(root=None, split: str = "train", n_mfcc: int = 13, *, n_mels: int = 40,
                         win_ms: float = 25.0, hop_ms: float = 10.0, deltas: bool = False,
                         normalize: str | None = "utterance", silence_fraction: float = 0.1,
                         unknown_fraction: float = 0.1, seed: int = 0, spikes: bool = False,
                         spike_thresholds=8, return_files: bool = False, download: bool = True,
                         progress: bool = True):
    """Google Speech Commands v0.02, standard 12-class task, as MFCC frames.

    When the files are missing and ``download`` is true, the archive is fetched from its canonical
    location, checked against its published SHA-256 and extracted into ``root/speech_commands_v0.02``.

    Returns ``(features float32 [N, T, F], lengths int64 [N], labels int64 [N])`` with labels
    indexing :data:`SPEECH_COMMANDS_CLASSES` (``_silence_``, ``_unknown_``, then the ten keywords
    yes, no, up, down, left, right, on, off, stop, go). Each clip is padded or cut to 1 s
    (16,000 samples), so T is the same for all (97 frames at 25 ms / 10 ms: FFT 512, hop 160).

    Split as in the archive (and TensorFlow's ``input_data.py``): files listed in
    ``testing_list.txt`` are ``"test"``, in ``validation_list.txt`` ``"validation"``, the rest
    ``"train"``. Unknown: a seeded sample of the other 25 words, ``unknown_fraction`` times the
    number of keyword clips of the split (rounded up); silence: as many seeded 1-s excerpts of the
    ``_background_noise_`` recordings scaled by a random volume in [0, 1].
    ``normalize="train"`` would need the whole training set, so the default here is
    ``"utterance"``; ``"train"`` is accepted and computes the statistics on the training split.
    """
    _check_common(split, normalize, ("train", "validation", "test"), spikes)
    for name, v in (("silence_fraction", silence_fraction), ("unknown_fraction", unknown_fraction)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
            raise ValueError(f"{name} must be a number in [0, 1], got {v!r}")
    _, sf = _speech_deps()
    params = dict(n_mfcc=_check_int("n_mfcc", n_mfcc, 1), n_mels=_check_int("n_mels", n_mels, 1),
                  win_ms=float(win_ms), hop_ms=float(hop_ms), deltas=bool(deltas))
    base = data_root(root) / "speech_commands_v0.02"
    val, test = _sc_split_lists(base, download, progress)
    words = sorted(d.name for d in base.iterdir() if d.is_dir() and not d.name.startswith("_"))
    keywords = SPEECH_COMMANDS_CLASSES[2:]
    missing_kw = [k for k in keywords if k not in words]
    if missing_kw:
        raise MissingFileError(f"Speech Commands folder '{base / missing_kw[0]}' is missing: the archive "
                               "is incompletely extracted")

    def member(which: str):
        if which == "test":
            return lambda rel: rel in test
        if which == "validation":
            return lambda rel: rel in val
        return lambda rel: rel not in test and rel not in val

    def examples(which: str):
        return _sc_examples(base, words, keywords, member(which), silence_fraction, unknown_fraction,
                            seed, sf, params, which)

    feats, labels, names = examples(split)
    stats = None
    if normalize == "train":
        stats = _train_stats(feats if split == "train" else examples("train")[0])
    out = _finish(feats, labels, normalize, stats, spikes, spike_thresholds)
    return (*out, names) if return_files else out


def _sc_examples(base, words, keywords, in_split, silence_fraction, unknown_fraction, seed, sf,
                 params, which):
    rng = np.random.default_rng([seed, ("train", "validation", "test").index(which)])
    known, unknown = [], []
    for w in words:
        for p in sorted((base / w).glob("*.wav")):
            rel = f"{w}/{p.name}"
            if in_split(rel):
                (known if w in keywords else unknown).append((rel, w))
    n_unknown = min(len(unknown), math.ceil(len(known) * unknown_fraction))
    pick_unknown = [unknown[i] for i in sorted(rng.choice(len(unknown), n_unknown, replace=False))] if n_unknown else []
    n_silence = math.ceil(len(known) * silence_fraction)
    noise_files = sorted((base / "_background_noise_").glob("*.wav"))
    if n_silence and not noise_files:
        raise MissingFileError(f"Speech Commands folder '{base / '_background_noise_'}' has no WAV files "
                               "(needed for the _silence_ class; pass silence_fraction=0 to skip it)")
    waves, labels, names = [], [], []
    sr = 16000
    for rel, w in known + pick_unknown:
        y, _ = _read_wav(base / rel, sf, sr)
        waves.append(np.pad(y[:sr], (0, max(0, sr - len(y)))))
        labels.append(SPEECH_COMMANDS_CLASSES.index(w) if w in keywords else 1)
        names.append(rel)
    noises = [_read_wav(p, sf, sr)[0] for p in noise_files] if n_silence else []
    for k in range(n_silence):
        j = int(rng.integers(len(noises)))
        noise = noises[j]
        start = int(rng.integers(0, max(1, len(noise) - sr)))
        y = noise[start:start + sr] * np.float32(rng.uniform(0.0, 1.0))
        waves.append(np.pad(y, (0, max(0, sr - len(y)))))
        labels.append(0)
        names.append(f"_background_noise_/{noise_files[j].name}@{start}")
    return mfcc_batch(waves, sr, **params), labels, names
