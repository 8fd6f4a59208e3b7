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


def ecg_like(fs: int = 500, duration_s: float = 10.0, seed: int = 0) -> np.ndarray:
    """Deterministic ``(n, 12)`` mV signal with P, QRS and T waves at 72 bpm, per-lead gains."""
    t = np.arange(int(fs * duration_s)) / fs
    phase = (t % (60 / 72)) / (60 / 72)
    beat = (0.15 * np.exp(-((phase - 0.15) / 0.03) ** 2) + 1.0 * np.exp(-((phase - 0.3) / 0.012) ** 2)
            - 0.2 * np.exp(-((phase - 0.33) / 0.01) ** 2) + 0.3 * np.exp(-((phase - 0.55) / 0.05) ** 2))
    gains = np.random.default_rng(seed).uniform(-1.2, 1.5, 12)
    return beat[:, None] * gains[None, :]


# --- the suite's own run time, for the README (written only after a full, passing run) ---
_START = {}


def pytest_sessionstart(session):
    import time
    _START["t"] = time.perf_counter()


def pytest_sessionfinish(session, exitstatus):
    import json
    import time
    from datetime import date

    opt = session.config.option
    full = not (opt.keyword or opt.markexpr or getattr(opt, "lf", False)) and \
        session.testscollected >= 200 and not session.config.args[1:]
    if exitstatus != 0 or not full or "t" not in _START:
        return
    from ecgnb import io, pipeline
    io.write_json(paths.REPORTS / "benchmarks" / "test_suite.json",
                  {"seconds": round(time.perf_counter() - _START["t"], 1),
                   "tests": session.testscollected, "date": date.today().isoformat(),
                   "machine": pipeline.machine_id()})
