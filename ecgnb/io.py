"""Reading and writing ecgnb's on-disk formats, always atomically.

A rendered page ``NAME`` is stored as four files in one folder:

- ``NAME.png``: the page image (RGB, 8 bit).
- ``NAME.hea`` / ``NAME.dat``: a WFDB record (format 16, 1000 ADC units per mV, i.e. 1 uV steps)
  with the 12 leads in ``ecgnb.leads.LEAD_NAMES`` order, in mV; samples the page does not show are
  NaN (WFDB's invalid-sample value).
- ``NAME.json``: the ground-truth sidecar written by ``ecgnb.render`` (panel boxes, pixel traces,
  sample ranges, px/mm, artefacts applied). It is written last, so a page is complete exactly
  when its sidecar exists.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import wfdb

from .errors import ImageError, MissingInputError, SignalError
from .leads import LEAD_NAMES, canonical_lead

ADC_GAIN = 1000.0       # ADC units per mV: 1 uV resolution
WFDB_LIMIT_MV = 32.0    # format 16 holds +-32.767 mV at that gain


@contextmanager
def staging_dir(final_dir: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``final_dir``; files moved out of it land atomically.

    The folder is removed whatever happens, so a failure leaves nothing half-written.
    """
    final_dir = Path(final_dir)
    final_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".staging-", dir=final_dir))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def commit_files(staged: list[Path], final_dir: Path) -> list[Path]:
    """Move staged files into ``final_dir`` (``os.replace`` is atomic on one filesystem)."""
    out = []
    for src in staged:
        dst = Path(final_dir) / src.name
        os.replace(src, dst)
        out.append(dst)
    return out


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: Path, obj, compact: bool = False) -> Path:
    """Write ``obj`` as JSON (indented, or ``compact`` for large sidecars), atomically."""
    text = json.dumps(obj, default=_json_default,
                      **({"separators": (",", ":")} if compact else {"indent": 1}))
    return write_text_atomic(path, text + "\n")


def _rounded_traces(truth: dict, decimals: int = 3) -> dict:
    """A shallow copy of ``truth`` whose panel traces are rounded to ``10**-decimals`` px.

    Sub-milli-pixel digits carry no information and triple the sidecar's size.
    """
    panels = [{**p, "trace": np.round(np.asarray(p["trace"], float), decimals).tolist()}
              if "trace" in p else p for p in truth.get("panels", [])]
    return {**truth, "panels": panels} if "panels" in truth else dict(truth)


def read_json(path: Path):
    """Read a JSON file; ``MissingInputError`` if it is absent."""
    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"{path} not found")
    return json.loads(path.read_text(encoding="utf-8"))


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def check_rgb(image: np.ndarray) -> None:
    """Raise ``ImageError`` unless ``image`` is an ``(H, W, 3)`` uint8 RGB array."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ImageError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")


def write_png(path: Path, image: np.ndarray) -> Path:
    """Write an RGB ``(H, W, 3)`` uint8 image as PNG (not atomic by itself; stage it)."""
    check_rgb(image)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ImageError(f"could not encode {path} as PNG")
    Path(path).write_bytes(buf.tobytes())
    return Path(path)


def read_image(path: Path) -> np.ndarray:
    """Read an image file as RGB ``(H, W, 3)`` uint8; clear errors for missing or corrupt files."""
    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"image {path} not found")
    data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise ImageError(f"{path} is not a readable image (corrupt or unsupported format)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def write_wfdb(stem: Path, signal: np.ndarray, fs: float, comments: list[str] | None = None,
               lead_names: tuple[str, ...] = LEAD_NAMES) -> list[Path]:
    """Write ``signal`` ``(n_samples, n_leads)`` mV (NaN allowed) as WFDB ``stem.hea/.dat``.

    Returns the two paths written. Not atomic by itself: write into a ``staging_dir``.
    """
    stem = Path(stem)
    signal = np.asarray(signal, dtype=float)
    if signal.ndim != 2 or signal.shape[1] != len(lead_names):
        raise SignalError(f"expected (n_samples, {len(lead_names)}) signal, got {signal.shape}")
    if np.nanmax(np.abs(signal), initial=0.0) > WFDB_LIMIT_MV:
        raise SignalError(f"{stem.name}: amplitudes beyond +-{WFDB_LIMIT_MV} mV cannot be stored "
                          "in format 16; is the signal really in mV?")
    n = signal.shape[1]
    wfdb.wrsamp(stem.name, fs=float(fs), units=["mV"] * n, sig_name=list(lead_names),
                p_signal=signal, fmt=["16"] * n, adc_gain=[ADC_GAIN] * n, baseline=[0] * n,
                comments=comments or [], write_dir=str(stem.parent))
    return [stem.with_suffix(".hea"), stem.with_suffix(".dat")]


def read_wfdb(stem: Path) -> tuple[np.ndarray, float, tuple[str, ...]]:
    """Read a WFDB record written by ``write_wfdb``: ``(signal mV, fs Hz, lead names)``.

    NaN samples (not drawn on the page) come back as NaN.
    """
    stem = Path(stem)
    if not stem.with_suffix(".hea").exists():
        raise MissingInputError(f"WFDB header {stem.with_suffix('.hea')} not found")
    rec = wfdb.rdrecord(str(stem))
    names = tuple(canonical_lead(s) for s in rec.sig_name)
    return np.asarray(rec.p_signal, dtype=float), float(rec.fs), names


def save_page(folder: Path, name: str, image: np.ndarray, signal: np.ndarray, fs: float,
              truth: dict) -> dict[str, Path]:
    """Store one page (image, WFDB record, JSON sidecar) under ``folder`` atomically.

    ``signal`` is the page's ground truth, ``(n_samples, 12)`` mV with NaN where not drawn.
    """
    folder = Path(folder)
    with staging_dir(folder) as tmp:
        staged = [write_png(tmp / f"{name}.png", image)]
        staged += write_wfdb(tmp / name, signal, fs, comments=[f"ecgnb page {name}"])
        commit_files(staged, folder)
    write_json(folder / f"{name}.json", _rounded_traces(truth), compact=True)  # last: page complete
    return {k: folder / f"{name}.{k}" for k in ("png", "hea", "dat", "json")}


def load_page(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """Load ``(image RGB uint8, signal (n, 12) mV with NaN, truth dict)`` of a stored page."""
    folder = Path(folder)
    if not (folder / f"{name}.json").exists():
        raise MissingInputError(f"page {name} not found (or incomplete) in {folder}; "
                                "run notebook 01_synthesis first")
    image = read_image(folder / f"{name}.png")
    signal, _, _ = read_wfdb(folder / name)
    return image, signal, read_json(folder / f"{name}.json")
