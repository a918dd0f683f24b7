"""``python -m benchmarks [--quick] [--only brunel,scaling,...]``: run the suite (see suite.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# BLAS libraries keep worker threads spinning after each call; on a small machine (2 vCPUs that may
# share a core) they slow the single-threaded runs being timed by up to 2x. Every benchmark here sets
# its own thread counts, so BLAS gets one thread (subprocesses inherit this), unless the user said
# otherwise.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
