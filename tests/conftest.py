"""Shared pytest fixtures: the real data sets live in ../shared/data beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

try:  # hypothesis: the same examples on every CI run; AHPSIM_FUZZ=random explores new ones
    from hypothesis import settings

    settings.register_profile("ci", derandomize=True)
    settings.register_profile("random", derandomize=False)
    settings.load_profile("random" if os.environ.get("AHPSIM_FUZZ") == "random" else "ci")
except ImportError:
    pass


def _data_root() -> Path:
    env = os.environ.get("AHPSIM_TEST_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = _data_root()
    if not root.is_dir():
        pytest.fail(f"test data not found at {root} (set AHPSIM_TEST_DATA)")
    return root


@pytest.fixture
def torch_one_thread():
    """PyTorch on one thread for the test (the tests compare against one-threaded kernel runs and
    share 2 cores), restored afterwards."""
    torch = pytest.importorskip("torch")
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
