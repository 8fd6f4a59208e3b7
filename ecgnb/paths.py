"""Absolute project paths, resolved from the package location.

Papermill runs notebooks from the caller's directory and nbval from the notebook's, so nothing
in ecgnb uses relative paths like ``../data``.
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Where the study writes data/, reports/ and models/: the checkout, unless ECGNB_OUTPUT_ROOT names
# another folder (the tests set a temporary one, so a test run never touches tracked files).
OUTPUT_ROOT = Path(os.environ.get("ECGNB_OUTPUT_ROOT") or ROOT).resolve()
DATA = OUTPUT_ROOT / "data"
REPORTS = OUTPUT_ROOT / "reports"
NOTEBOOKS = ROOT / "notebooks"
# Shared data lives beside the checkout, never inside it (see DEVELOPERS.md, "Data").
SHARED = ROOT.parent / "shared" / "data"
REAL_ECG = SHARED / "real-ecg"
EIK_DEV = SHARED / "eik-dev"
PHOTOS_DEV = SHARED / "photos-dev"   # real phone photos of printed pages: measurement only


def data_dir(profile: str) -> Path:
    """Folder of the generated dataset for ``profile`` (``data/<profile>``)."""
    return DATA / profile


def report_dir(profile: str) -> Path:
    """Folder of figures, tables and executed notebooks for ``profile``."""
    return REPORTS / profile


def models_dir(profile: str) -> Path:
    """Folder of the training runs of ``profile`` (``models/<profile>``, one sub-folder per variant)."""
    return OUTPUT_ROOT / "models" / profile
