"""ahpsim.datasets speech: FSDD (real recordings) and the Speech Commands layout (a synthetic tree)."""

from __future__ import annotations

import math
import shutil
import sys
from collections import Counter

import numpy as np
import pytest

from ahpsim import datasets as ds

try:  # file lists, checksums and missing files need neither; features need both
    import librosa  # noqa: F401
    import soundfile as sf
except ImportError:
    sf = None
needs_speech = pytest.mark.skipif(sf is None, reason="needs the speech extra (librosa, soundfile)")


@pytest.fixture(autouse=True, scope="module")
def _private_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AHPSIM_CACHE", str(tmp_path_factory.mktemp("ahpsim-cache")))
        yield


@pytest.fixture(scope="module")
def fsdd_train(data_root):
    return ds.load_fsdd(data_root, "train", download=False)


@pytest.fixture(scope="module")
def fsdd_test(data_root):
    return ds.load_fsdd(data_root, "test", download=False)


def test_file_list_and_standard_split(data_root):
    everything = ds.fsdd_files(data_root, "all", download=False)
    train = ds.fsdd_files(data_root, "train", download=False)
    test = ds.fsdd_files(data_root, "test", download=False)
    assert len(everything) == 3000 and len(train) == 2700 and len(test) == 300
    on_disk = sorted(p.name for p in (data_root / "fsdd" / "recordings").glob("*.wav"))
    assert sorted(p.name for p, *_ in everything) == on_disk
    assert {i for *_, i in test} == set(range(5)) and {i for *_, i in train} == set(range(5, 50))
    assert Counter(s for _, _, s, _ in everything) == {s: 500 for s in
                                                      ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")}
    assert everything[0][0].name == "0_george_0.wav" and everything[0][1:] == (0, "george", 0)
    for p, d, s, i in everything[::97]:
        assert p.name == f"{d}_{s}_{i}.wav"


@needs_speech
def test_features_counts_lengths_and_labels(data_root, fsdd_train, fsdd_test):
    for (x, lengths, labels), split, n in ((fsdd_train, "train", 2700), (fsdd_test, "test", 300)):
        assert x.shape[0] == lengths.shape[0] == labels.shape[0] == n
        assert x.dtype == np.float32 and x.shape[2] == 13
        assert lengths.dtype == labels.dtype == np.int64
        assert np.bincount(labels).tolist() == [n // 10] * 10
        files = ds.fsdd_files(data_root, split, download=False)
        assert labels.tolist() == [int(p.name.split("_")[0]) for p, *_ in files]
        # frames: 25 ms windows (200 samples, FFT 256) every 10 ms (80 samples) at 8 kHz, no centring
        n_samples = np.array([sf.info(str(p)).frames for p, *_ in files])
        assert lengths.tolist() == (1 + (n_samples - 256) // 80).tolist()
        assert x.shape[1] == lengths.max()
        assert not x[np.arange(x.shape[1])[None, :] >= lengths[:, None]].any()  # zero padding


@needs_speech
def test_train_normalisation(fsdd_train, fsdd_test):
    x, lengths, _ = fsdd_train
    valid = x[np.arange(x.shape[1])[None, :] < lengths[:, None]]
    np.testing.assert_allclose(valid.mean(0), 0, atol=1e-3)
    np.testing.assert_allclose(valid.std(0), 1, atol=1e-3)
    xt, lt, _ = fsdd_test
    vt = xt[np.arange(xt.shape[1])[None, :] < lt[:, None]]
    assert np.abs(vt.mean(0)).max() < 0.5  # test statistics are close, not forced


def _reference_mfcc(y, sr=8000, n_mfcc=13, n_mels=40, win=200, hop=80, n_fft=256):
    """MFCC written out from the definitions (Slaney mel scale and filter norm, dB with an 80 dB
    floor below the maximum, orthonormal DCT-II), with NumPy/SciPy only."""
    from scipy.fft import dct
    from scipy.signal import get_window

    w = np.zeros(n_fft)
    left = (n_fft - win) // 2
    w[left:left + win] = get_window("hann", win, fftbins=True)
    n_frames = 1 + (len(y) - n_fft) // hop
    frames = np.stack([y[t * hop: t * hop + n_fft] * w for t in range(n_frames)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # [T, n_fft/2 + 1]

    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0

    def hz_to_mel(f):
        return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-9) / min_log_hz) / logstep, f / f_sp)

    def mel_to_hz(m):
        return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)

    hz = mel_to_hz(np.linspace(hz_to_mel(np.array(0.0)), hz_to_mel(np.array(sr / 2)), n_mels + 2))
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    fb = np.zeros((n_mels, len(freqs)))
    for m in range(n_mels):
        rise = (freqs - hz[m]) / (hz[m + 1] - hz[m])
        fall = (hz[m + 2] - freqs) / (hz[m + 2] - hz[m + 1])
        fb[m] = np.maximum(0, np.minimum(rise, fall)) * 2.0 / (hz[m + 2] - hz[m])
    db = 10 * np.log10(np.maximum(1e-10, power @ fb.T))
    db = np.maximum(db, db.max() - 80.0)
    return dct(db, type=2, axis=1, norm="ortho")[:, :n_mfcc]


@needs_speech
def test_mfcc_matches_a_reference_written_from_the_definitions(data_root):
    for name in ("0_george_0.wav", "7_jackson_32.wav"):
        y, sr = sf.read(str(data_root / "fsdd" / "recordings" / name), dtype="float32")
        got = ds.mfcc(y, sr, 13)
        ref = _reference_mfcc(y.astype(np.float64))
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=1e-3, atol=2e-2 * np.abs(ref).max() / 100)


@needs_speech
def test_raw_features_equal_mfcc_of_the_file(data_root):
    x, lengths, _ = ds.load_fsdd(data_root, "test", normalize=None, download=False)
    y, sr = sf.read(str(data_root / "fsdd" / "recordings" / "0_george_0.wav"), dtype="float32")
    np.testing.assert_allclose(x[0, :lengths[0]], ds.mfcc(y, sr, 13), rtol=1e-5, atol=1e-4)


@needs_speech
def test_spike_encoding_matches_a_slow_loop(fsdd_test, data_root):
    x, lengths, labels = fsdd_test
    spikes, l2, y2 = ds.load_fsdd(data_root, "test", spikes=True, spike_thresholds=4, download=False)
    th = np.linspace(-2, 2, 4)
    assert spikes.shape == (300, x.shape[1], 13 * 4 * 2) and spikes.dtype == bool
    assert np.array_equal(l2, lengths) and np.array_equal(y2, labels)
    for i in (0, 123):
        ref = np.zeros(spikes.shape[1:], dtype=bool)
        for t in range(lengths[i] - 1):
            for f in range(13):
                for k in range(4):
                    a, b = x[i, t, f], x[i, t + 1, f]
                    ref[t, 2 * (f * 4 + k)] = a < th[k] <= b
                    ref[t, 2 * (f * 4 + k) + 1] = a >= th[k] > b
        assert np.array_equal(spikes[i], ref)


@needs_speech
def test_deltas_and_utterance_normalisation(data_root):
    y, sr = sf.read(str(data_root / "fsdd" / "recordings" / "4_nicolas_8.wav"), dtype="float32")
    m = ds.mfcc(y, sr, 10, deltas=True)
    base = ds.mfcc(y, sr, 10)
    assert m.shape == (base.shape[0], 30) and np.array_equal(m[:, :10], base)
    # first delta of a linear ramp in time is its slope (away from the edges)
    t = np.arange(40, dtype=np.float64)
    librosa = pytest.importorskip("librosa")
    np.testing.assert_allclose(librosa.feature.delta(np.stack([t]), mode="nearest")[0, 5:-5], 1.0)
    np.testing.assert_allclose(m[4:-4, 10:20].mean(), np.diff(base, axis=0)[3:-4].mean(), atol=0.5)
    x, lengths, _ = ds.load_fsdd(data_root, "test", normalize="utterance", download=False)
    v = x[5, :lengths[5]]
    np.testing.assert_allclose(v.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(v.std(0), 1, atol=1e-3)


@needs_speech
def test_batched_mfcc_equals_one_by_one(data_root):
    files = [p for p, *_ in ds.fsdd_files(data_root, "test", download=False)][:40:3]
    ys = [sf.read(str(p), dtype="float32")[0] for p in files]
    batched = ds.mfcc_batch(ys, 8000, 13, group=5)
    for y, b in zip(ys, batched):
        np.testing.assert_allclose(b, ds.mfcc(y, 8000, 13), rtol=1e-5, atol=1e-4)


def _linked_copy(data_root, dest, skip=(), copy=()):
    rec = dest / "fsdd" / "recordings"
    rec.mkdir(parents=True)
    for p in (data_root / "fsdd" / "recordings").glob("*.wav"):
        if p.name in skip:
            continue
        if p.name in copy:
            shutil.copy(p, rec / p.name)
        else:
            (rec / p.name).symlink_to(p)
    return rec


def test_missing_recording_is_named(data_root, tmp_path, monkeypatch):
    _linked_copy(data_root, tmp_path, skip={"3_theo_17.wav"})
    with pytest.raises(ds.MissingFileError, match="3_theo_17.wav") as info:
        ds.load_fsdd(tmp_path, "train", download=False)
    assert "1 of 3000" in str(info.value)

    from ahpsim.datasets import _common

    def offline(url, timeout=None):
        raise OSError("network is unreachable")

    monkeypatch.setattr(_common, "_urlopen", offline)
    with pytest.raises(ds.MissingFileError, match="3_theo_17.wav"):
        ds.load_fsdd(tmp_path, "train", progress=False)


def test_flipped_byte_is_detected_and_named(data_root, tmp_path):
    rec = _linked_copy(data_root, tmp_path, copy={"5_lucas_20.wav"})
    f = rec / "5_lucas_20.wav"
    raw = bytearray(f.read_bytes())
    raw[3000] ^= 0x10
    f.write_bytes(bytes(raw))
    with pytest.raises(ds.ChecksumError, match="differ from the pinned release"):
        ds.load_fsdd(tmp_path, "test", download=False)
    (tmp_path / "fsdd" / "SHA256SUMS").symlink_to(data_root / "fsdd" / "SHA256SUMS")
    with pytest.raises(ds.ChecksumError, match="5_lucas_20.wav"):
        ds.load_fsdd(tmp_path, "test", download=False)


@needs_speech
def test_truncated_wav_is_a_clear_error(data_root, tmp_path):
    rec = _linked_copy(data_root, tmp_path, copy={"0_george_3.wav"})  # early in the order: fails fast
    f = rec / "0_george_3.wav"
    f.write_bytes(f.read_bytes()[:30])  # not even a whole header
    with pytest.raises(ds.ChecksumError):
        ds.load_fsdd(tmp_path, "train", download=False)
    with pytest.raises(ds.CorruptFileError, match="0_george_3.wav"):
        ds.load_fsdd(tmp_path, "train", download=False, verify=False, cache=False)


def test_missing_speech_libraries_name_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "librosa", None)
    with pytest.raises(ImportError, match=r"ahpsim\[speech\]"):
        ds.mfcc(np.zeros(800, np.float32), 8000)


def test_bad_arguments(data_root):
    for kwargs, name in (({"split": "val"}, "split"), ({"n_mfcc": 0}, "n_mfcc"), ({"hop_ms": -1}, "hop_ms"),
                         ({"normalize": "global"}, "normalize")):
        with pytest.raises(ValueError, match=name):
            ds.load_fsdd(data_root, **kwargs, download=False)
    with pytest.raises(ValueError, match="spikes"):
        ds.load_fsdd(data_root, "test", normalize=None, spikes=True, download=False)


# --------------------------------------------------------------------------- Speech Commands


KEYWORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]


@pytest.fixture
def speech_commands_tree(tmp_path):
    if sf is None:
        pytest.skip("needs soundfile")
    base = tmp_path / "speech_commands_v0.02"
    rng = np.random.default_rng(0)
    test_list, val_list = [], []
    for w in KEYWORDS + ["bed", "cat", "happy"]:
        (base / w).mkdir(parents=True)
        for k in range(4):
            name = f"{k:08x}_nohash_0.wav"
            n = 16000 if k else 12000  # one short clip per word: padded to 1 s
            sf.write(str(base / w / name), (0.1 * rng.standard_normal(n)).astype(np.float32), 16000,
                     subtype="PCM_16")
            (test_list if k == 3 else val_list if k == 2 else []).append(f"{w}/{name}")
    (base / "_background_noise_").mkdir()
    sf.write(str(base / "_background_noise_" / "white_noise.wav"),
             (0.3 * rng.standard_normal(48000)).astype(np.float32), 16000, subtype="PCM_16")
    (base / "testing_list.txt").write_text("\n".join(test_list) + "\n")
    (base / "validation_list.txt").write_text("\n".join(val_list) + "\n")
    return tmp_path


@needs_speech
def test_speech_commands_layout_and_twelve_classes(speech_commands_tree):
    root = speech_commands_tree
    x, lengths, labels, files = ds.load_speech_commands(root, "train", return_files=True)
    # train: 10 keywords x 2 clips = 20; unknown and silence: ceil(10% of 20) = 2 each
    assert len(labels) == 24 and x.shape == (24, 97, 13) and (lengths == 97).all()  # 1 + (16000 - 512) // 160
    assert Counter(labels.tolist()) == {**{k: 2 for k in range(2, 12)}, 0: 2, 1: 2}
    for f, lab in zip(files, labels):
        if lab >= 2:
            assert f.split("/")[0] == ds.SPEECH_COMMANDS_CLASSES[lab]
        elif lab == 1:
            assert f.split("/")[0] in ("bed", "cat", "happy")
        else:
            assert f.startswith("_background_noise_/")
    assert ds.SPEECH_COMMANDS_CLASSES[:2] == ("_silence_", "_unknown_")
    xt, _, yt, ft = ds.load_speech_commands(root, "test", return_files=True)
    assert all(f.startswith(tuple(f"{w}/00000003" for w in KEYWORDS + ["bed", "cat", "happy"])) or
               f.startswith("_background_noise_/") for f in ft)
    assert (yt >= 2).sum() == 10
    xv, _, yv = ds.load_speech_commands(root, "validation", normalize="train")
    assert (yv >= 2).sum() == 10 and (yv == 1).sum() == 1 and (yv == 0).sum() == 1
    # deterministic for a seed
    x2, _, y2 = ds.load_speech_commands(root, "train")
    assert np.array_equal(x2, x) and np.array_equal(y2, labels)


@needs_speech
def test_speech_commands_missing_archive_is_explained(tmp_path, monkeypatch):
    from ahpsim.datasets import _common

    def offline(url, timeout=None):
        raise OSError("network is unreachable")

    monkeypatch.setattr(_common, "_urlopen", offline)
    with pytest.raises(ds.MissingFileError, match="validation_list.txt") as info:
        ds.load_speech_commands(tmp_path, "train", progress=False)
    assert "speech_commands_v0.02.tar.gz" in str(info.value)


@needs_speech
@pytest.mark.torch
def test_torch_dataset(data_root, fsdd_test):
    torch = pytest.importorskip("torch")
    d = ds.FSDDDataset(data_root, "test", download=False)
    x, length, y = d[7]
    assert x.dtype == torch.float32 and x.shape == fsdd_test[0].shape[1:]
    assert length == fsdd_test[1][7] and y == fsdd_test[2][7]
    xb, lb, yb = next(iter(torch.utils.data.DataLoader(d, batch_size=16)))
    assert xb.shape[0] == lb.shape[0] == yb.shape[0] == 16


@needs_speech
def test_speech_commands_download_is_checked_and_extracted(speech_commands_tree, tmp_path_factory, monkeypatch):
    import hashlib
    import tarfile

    from ahpsim.datasets import speech

    # pack the synthetic tree the way the real archive is laid out ("./word/file.wav")
    src = speech_commands_tree / "speech_commands_v0.02"
    archive = tmp_path_factory.mktemp("mirror") / "speech_commands_v0.02.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for p in sorted(src.rglob("*")):
            if p.is_file():
                tf.add(p, arcname="./" + p.relative_to(src).as_posix())
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    root = tmp_path_factory.mktemp("fresh")
    monkeypatch.setattr(speech, "SPEECH_COMMANDS_URLS", (archive.as_uri(),))
    monkeypatch.setattr(speech, "SPEECH_COMMANDS_SHA256", "0" * 64)
    with pytest.raises(ds.ChecksumError, match="expected 0000"):
        ds.load_speech_commands(root, "train", progress=False)
    assert not (root / "speech_commands_v0.02" / "testing_list.txt").exists()
    monkeypatch.setattr(speech, "SPEECH_COMMANDS_SHA256", sha)
    x, _, y = ds.load_speech_commands(root, "train", progress=False)
    x0, _, y0 = ds.load_speech_commands(speech_commands_tree, "train")
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)
    assert not (root / "speech_commands_v0.02.tar.gz").exists()  # archive removed after extraction
    assert speech.SPEECH_COMMANDS_SHA256 == sha


def test_speech_commands_pinned_checksum_is_the_published_one():
    from ahpsim.datasets import speech

    # TensorFlow Datasets checksums.tsv and torchaudio publish this SHA-256 for the v0.02 archive
    assert speech.SPEECH_COMMANDS_SHA256 == "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58"
