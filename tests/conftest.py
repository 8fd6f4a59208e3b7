"""Shared test setup: headless plotting and helpers to skip where ../shared is absent."""
from __future__ import annotations

import os
import shutil
import tempfile

os.environ.setdefault("MPLBACKEND", "Agg")
# The study's outputs (data/, reports/, models/) of a test run go to a temporary folder, set
# before ecgnb.paths is imported (notebook kernels inherit it), so tests never touch tracked
# files; ECGNB_OUTPUT_ROOT set by the caller is kept (and not removed).
_OWN_OUTPUT = "ECGNB_OUTPUT_ROOT" not in os.environ
if _OWN_OUTPUT:
    os.environ["ECGNB_OUTPUT_ROOT"] = tempfile.mkdtemp(prefix="ecgnb-tests-")

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


def ecg_like(fs: int = 500, duration_s: float = 10.0, seed: int = 0) -> np.ndarray:
    """Deterministic ``(n, 12)`` mV signal with P, QRS and T waves at 72 bpm, per-lead gains."""
    t = np.arange(int(fs * duration_s)) / fs
    phase = (t % (60 / 72)) / (60 / 72)
    beat = (0.15 * np.exp(-((phase - 0.15) / 0.03) ** 2) + 1.0 * np.exp(-((phase - 0.3) / 0.012) ** 2)
            - 0.2 * np.exp(-((phase - 0.33) / 0.01) ** 2) + 0.3 * np.exp(-((phase - 0.55) / 0.05) ** 2))
    gains = np.random.default_rng(seed).uniform(-1.2, 1.5, 12)
    return beat[:, None] * gains[None, :]


def pytest_sessionfinish(session, exitstatus):
    if _OWN_OUTPUT:
        shutil.rmtree(os.environ["ECGNB_OUTPUT_ROOT"], ignore_errors=True)
