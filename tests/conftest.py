"""Shared test setup: headless plotting and helpers to skip where ../shared is absent."""
from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np
import pytest

from ecgnb import paths


def require_shared(path=paths.REAL_ECG):
    """Skip the calling test, saying why, when the shared data folder is absent."""
    if not path.exists():
        pytest.skip(f"{path} not found: the shared real-ECG data lies beside the checkout "
                    "(../shared/data); tests that need it are skipped without it")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
