"""``python -m ahpsim.datasets [--root DIR] [--no-download] {check,bench}``.

check: load every data set under ``root`` (verifying checksums) and print counts.
bench: time MNIST loading (first read into an empty cache, then cached reads) and the other loaders.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ahpsim.datasets", description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=("check", "bench"))
    ap.add_argument("--root", default=None, help="data directory (default: $AHPSIM_DATA)")
    ap.add_argument("--no-download", action="store_true", help="never fetch missing files")
    ap.add_argument("--repeat", type=int, default=5, help="bench: cached reads to time")
    args = ap.parse_args(argv)

    from . import load_babi, load_fsdd, load_mnist, load_ucr_uea

    dl = not args.no_download
    if args.command == "check":
        for split in ("train", "test"):
            x, y = load_mnist(args.root, split, download=dl)
            print(f"mnist {split}: {x.shape[0]} images")
        for size in ("1k", "10k"):
            for split in ("train", "test"):
                try:
                    d = load_babi(args.root, None, split, size, download=dl)
                    print(f"babi {size} {split}: {len(d)} questions, vocabulary {len(d.vocab) - 1} words")
                except OSError as exc:
                    print(f"babi {size} {split}: {type(exc).__name__}: {exc}")
        for split in ("train", "test"):
            x, lengths, y = load_fsdd(args.root, split, download=dl)
            print(f"fsdd {split}: {x.shape[0]} recordings, frames {lengths.min()}..{lengths.max()}")
        for name in ("ArrowHead", "BasicMotions", "GunPoint", "ItalyPowerDemand", "JapaneseVowels"):
            for split in ("train", "test"):
                x, lengths, y, classes = load_ucr_uea(name, args.root, split, download=dl)
                print(f"ucr_uea {name} {split}: {x.shape[0]} x {x.shape[2]} dims, length "
                      f"{lengths.min()}..{lengths.max()}, {len(classes)} classes")
        return 0

    with tempfile.TemporaryDirectory() as cache:
        os.environ["AHPSIM_CACHE"] = cache  # an empty cache: the first read decodes the .gz files

        def both():
            return load_mnist(args.root, "train", download=dl), load_mnist(args.root, "test", download=dl)

        _, first = _timed(both)
        cached = [_timed(both)[1] for _ in range(args.repeat)]
        print(f"MNIST 70,000 images, first read (decompress + SHA-256 + write cache): {first:.3f} s")
        print(f"MNIST 70,000 images, cached reads: best {min(cached):.3f} s, median "
              f"{sorted(cached)[len(cached) // 2]:.3f} s over {args.repeat}")
        _, t = _timed(lambda: load_fsdd(args.root, "train", download=dl))
        print(f"FSDD train, MFCC of all 3,000 recordings (first call, feature cache empty): {t:.2f} s")
        _, t = _timed(lambda: load_fsdd(args.root, "test", download=dl))
        print(f"FSDD test from the feature cache: {t:.3f} s")
    _, t = _timed(lambda: load_babi(args.root, None, "train", "1k", download=dl))
    print(f"bAbI 1k, 20 tasks, train (parse + pad 20,000 questions): {t:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
