"""``python -m benchmarks [--quick] [--only brunel,scaling,...]``: run the suite (see suite.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
