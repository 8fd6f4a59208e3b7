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
import signal
import tempfile
import threading
import time
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


STAGING_PREFIX = ".staging-"   # + "<pid>-<random>": a folder of files not yet in place
_JOURNAL = ".commit.json"       # in a staging folder: what commit_files is moving where
_REPLACED = ".replaced"         # in a staging folder: files the commit moved aside
STALE_AFTER_S = 3600.0          # s: a staging folder this old is stale whoever made it


@contextmanager
def staging_dir(final_dir: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``final_dir``; files moved out of it land atomically.

    The folder is removed whatever happens, so a failure leaves nothing half-written; one left
    by a process that was killed (SIGKILL) is removed by ``clean_stale_staging``.
    """
    final_dir = Path(final_dir)
    final_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=final_dir))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def deferred_signals(signums: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block is done, then deliver the first one received.

    Only the main thread can set handlers; elsewhere the block runs unprotected.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: received.append(signum)) for s in signums}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        if received:
            signal.raise_signal(received[0])


def _roll_back(tmp: Path, final_dir: Path, names: list[str]) -> None:
    """Undo a partial ``commit_files``: remove what was moved in, put back what it replaced."""
    for name in names:
        if not (tmp / name).exists():          # moved in already: that file is the new one
            (final_dir / name).unlink(missing_ok=True)
        old = tmp / _REPLACED / name
        if old.exists():
            os.replace(old, final_dir / name)


def commit_files(staged: list[Path], final_dir: Path) -> list[Path]:
    """Move staged files (all from one ``staging_dir``) into ``final_dir``: all of them or none.

    Files of the same names already in ``final_dir`` are first moved aside into the staging
    folder; if a move fails, the files moved in are removed and the old ones put back.
    SIGINT/SIGTERM arriving meanwhile are held until the moves are done. A journal in the
    staging folder lets ``clean_stale_staging`` finish that rollback after a hard kill.
    ``os.replace`` is atomic on one filesystem, and the staging folder lies inside ``final_dir``.
    """
    staged = [Path(s) for s in staged]
    if not staged:
        return []
    final_dir, tmp = Path(final_dir), staged[0].parent
    names = [s.name for s in staged]
    assert all(s.parent == tmp for s in staged), "commit_files moves files of one staging folder"
    assert not any(n.startswith(".") for n in names), f"hidden names are the journal's: {names}"
    (tmp / _JOURNAL).write_text(json.dumps({"names": names}), encoding="utf-8")
    (tmp / _REPLACED).mkdir(exist_ok=True)
    with deferred_signals():
        try:
            for name in names:
                if (final_dir / name).exists():
                    os.replace(final_dir / name, tmp / _REPLACED / name)
            for src in staged:
                os.replace(src, final_dir / src.name)
        except BaseException:
            _roll_back(tmp, final_dir, names)
            raise
    return [final_dir / n for n in names]


def _staging_is_stale(folder: Path) -> bool:
    """True if no live process can be using staging ``folder`` (its maker died, or it is old)."""
    try:
        if time.time() - folder.stat().st_mtime > STALE_AFTER_S:
            return True
    except FileNotFoundError:
        return False
    pid = folder.name[len(STAGING_PREFIX):].split("-", 1)[0]
    if not pid.isdigit() or int(pid) == os.getpid():
        return False                      # an unknown maker's, or this process's own: leave it
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:                       # PermissionError: alive, another user's
        return False
    return False


def clean_stale_staging(final_dir: Path) -> list[Path]:
    """Remove the staging folders in ``final_dir`` left by killed processes; return them.

    A commit cut short (some files moved in, some not) is rolled back first, so every record in
    ``final_dir`` is again either complete or absent.
    """
    removed = []
    for tmp in sorted(Path(final_dir).glob(f"{STAGING_PREFIX}*")):
        if not tmp.is_dir() or not _staging_is_stale(tmp):
            continue
        try:
            names = json.loads((tmp / _JOURNAL).read_text(encoding="utf-8"))["names"]
        except (OSError, ValueError, KeyError):
            names = []                    # no journal (or cut short): nothing was moved yet
        if any((tmp / n).exists() for n in names):
            _roll_back(tmp, Path(final_dir), names)
        shutil.rmtree(tmp, ignore_errors=True)
        removed.append(tmp)
    return removed


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
