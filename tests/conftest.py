"""Shared pytest fixtures: the real data sets live in ../shared/data beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _data_root() -> Path:
    env = os.environ.get("AHPSIM_TEST_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = _data_root()
    if not root.is_dir():
        pytest.fail(f"test data not found at {root} (set AHPSIM_TEST_DATA)")
    return root
