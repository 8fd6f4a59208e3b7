"""Real 12-lead records read from WFDB files, checked, in one standard form.

Every ``Record`` holds a ``(n_samples, 12)`` signal in mV in ``LEAD_NAMES`` order at one rate.
``read_record`` reads one WFDB record; ``list_records`` finds records in a PTB-XL download or in
any folder of ``.hea`` files; ``free_real_records`` loads the shared real records that are *not*
in the hidden ECG-Image-Kit evaluation set (see ``manifest.csv`` there), so nothing here ever
trains or tunes on that holdout.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import wfdb
from scipy.signal import resample_poly

from ecgnb import paths
from ecgnb.errors import MissingInputError, SignalError
from ecgnb.leads import LEAD_NAMES, canonical_lead

log = logging.getLogger(__name__)

# Physical units WFDB headers use, as a factor to mV (lower-case keys).
_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3}
# PTB-XL's recommended split: strat_fold 1-8 train, 9 validation, 10 test.
_PTBXL_SPLIT = {**{k: "train" for k in range(1, 9)}, 9: "val", 10: "test"}


@dataclass(frozen=True)
class Record:
    """One real ECG, ready to render or compare."""
    name: str                 # record name, e.g. 'E07505' or '00001_hr'
    signal: np.ndarray        # (n_samples, 12) mV, LEAD_NAMES order
    fs: int                   # Hz
    source: str               # where it came from, e.g. 'georgia' or 'ptb-xl'
    split_hint: str | None = None  # 'train' / 'val' / 'test' from PTB-XL strat_fold, else None


def _check_rate(fs: float, name: str) -> None:
    if not np.isfinite(fs) or fs <= 0 or abs(fs - round(fs)) > 1e-6:
        raise SignalError(f"{name}: sampling rate {fs!r} Hz is not a positive whole number; "
                          "resample to an integer rate such as 500 Hz first")


def _check_samples(s: np.ndarray, name: str) -> None:
    if s.ndim != 2 or s.shape[1] != len(LEAD_NAMES):
        raise SignalError(f"{name}: shape {s.shape} is not (n_samples, {len(LEAD_NAMES)}); "
                          f"pass samples in rows and the leads {', '.join(LEAD_NAMES)} in columns "
                          "(transpose a (12, n) array first)")
    bad = ~np.isfinite(s)
    if bad.any():
        leads = [LEAD_NAMES[i] for i in np.flatnonzero(bad.any(axis=0))]
        raise SignalError(f"{name}: {int(bad.sum())} NaN/inf samples in lead(s) "
                          f"{', '.join(leads)}; interpolate the gaps or drop this record")


def _check_length(n_samples: int, fs: float, duration_s: float, name: str) -> None:
    if n_samples < round(duration_s * fs):
        raise SignalError(f"{name}: {n_samples / fs:.2f} s long, shorter than the "
                          f"{duration_s:g} s needed; use a longer record or lower duration_s")


def validate_signal(signal: np.ndarray, fs: float, duration_s: float | None = None,
                    name: str = "signal") -> None:
    """Raise ``SignalError`` unless ``signal`` is a usable 12-lead ECG.

    Checks: ``fs`` a positive whole number of Hz, ``signal`` 2-D ``(n_samples, 12)`` and all
    finite (mV), and, when ``duration_s`` (s) is given, at least that long. ``name`` starts
    the message, so say which record or step it is.
    """
    _check_rate(fs, name)
    s = np.asarray(signal)
    _check_samples(s, name)
    if duration_s is not None:
        _check_length(s.shape[0], fs, duration_s, name)


def _header_path(path: Path) -> Path:
    """``path`` given without extension (or with .hea/.dat) -> the .hea file."""
    return path.with_suffix(".hea") if path.suffix in (".hea", ".dat") else Path(f"{path}.hea")


def _to_standard_leads(rec: wfdb.Record, name: str) -> np.ndarray:
    """The record's signal as ``(n, 12)`` mV in ``LEAD_NAMES`` order (extra leads dropped)."""
    columns: dict[str, int] = {}
    for i, raw in enumerate(rec.sig_name):
        try:
            lead = canonical_lead(raw)        # 'AVR' -> 'aVR'; PTB-XL writes upper case
        except KeyError:
            continue                          # e.g. a Frank lead in a 15-lead record
        if lead in columns:
            raise SignalError(f"{name}: lead {lead} appears twice ({rec.sig_name}); "
                              "fix the header so each lead is named once")
        columns[lead] = i
    missing = [lead for lead in LEAD_NAMES if lead not in columns]
    if missing:
        raise SignalError(f"{name}: missing lead(s) {', '.join(missing)} (header has "
                          f"{', '.join(rec.sig_name)}); only full 12-lead records can be used")
    factors = []
    for lead in LEAD_NAMES:
        unit = (rec.units[columns[lead]] or "").strip().lower()
        if unit not in _TO_MV:
            raise SignalError(f"{name}: lead {lead} is in unit {unit!r}, which is not a voltage "
                              f"({', '.join(_TO_MV)}); fix the header units")
        factors.append(_TO_MV[unit])
    return rec.p_signal[:, [columns[lead] for lead in LEAD_NAMES]] * np.array(factors)


def read_record(path: str | Path, fs: int = 500, duration_s: float = 10.0,
                source: str | None = None, split_hint: str | None = None) -> Record:
    """Read one WFDB record (``path`` without extension) as a checked 12-lead ``Record``.

    Lead names are matched case-insensitively and reordered to ``LEAD_NAMES``; the signal is
    converted to mV, resampled to ``fs`` Hz (polyphase) and cut to its first ``duration_s`` s.
    ``source`` defaults to the parent folder's name. Raises ``MissingInputError`` when the
    files are absent and ``SignalError`` when the record cannot be used.
    """
    path = Path(path)
    header = _header_path(path)
    name = header.stem
    if not header.exists():
        raise MissingInputError(f"{name}: no WFDB header at {header}; check the path "
                                "(give it without the .hea/.dat extension)")
    _check_rate(fs, f"{name} (requested rate)")
    try:
        rec = wfdb.rdrecord(str(header.with_suffix("")))
    except FileNotFoundError as err:
        raise MissingInputError(f"{name}: signal file missing next to {header} ({err}); "
                                "copy the .dat file beside the .hea") from err
    except ValueError as err:     # wfdb's own complaint about a malformed header or file
        raise SignalError(f"{name}: WFDB could not read {header} ({err}); "
                          "check the header against its signal file") from err
    if not rec.fs or rec.fs <= 0:
        raise SignalError(f"{name}: header sampling rate {rec.fs!r} Hz is not positive; "
                          "fix the first line of the .hea file")
    signal = _to_standard_leads(rec, name)
    _check_samples(signal, name)                 # before resampling, which would smear a NaN
    _check_length(signal.shape[0], rec.fs, duration_s, name)
    signal = _resample(signal, rec.fs, fs)[: int(round(duration_s * fs))]
    validate_signal(signal, fs, duration_s, name=name)
    return Record(name=name, signal=signal, fs=int(fs), split_hint=split_hint,
                  source=source if source is not None else header.parent.name)


def _resample(signal: np.ndarray, fs_in: float, fs_out: int) -> np.ndarray:
    """Polyphase resampling ``fs_in`` -> ``fs_out`` Hz along time (linear: lead relations hold)."""
    ratio = Fraction(fs_out) / Fraction(fs_in).limit_denominator(1000)
    if ratio == 1:
        return np.asarray(signal, float)
    # padtype='line' avoids the edge dip that zero padding causes on a non-zero baseline.
    return resample_poly(signal, ratio.numerator, ratio.denominator, axis=0, padtype="line")


def _ptbxl_table(folder: Path) -> pd.DataFrame:
    """PTB-XL's ``ptbxl_database.csv`` with the columns this module needs, checked."""
    table = pd.read_csv(folder / "ptbxl_database.csv")
    needed = {"filename_hr", "strat_fold"} - set(table.columns)
    if needed:
        raise SignalError(f"{folder / 'ptbxl_database.csv'} lacks column(s) "
                          f"{', '.join(sorted(needed))}; is this the PTB-XL database file?")
    return table


def list_records(folder: str | Path) -> list[Path]:
    """WFDB records (paths without extension) in ``folder``, sorted.

    A PTB-XL download (``ptbxl_database.csv`` present) lists its 500 Hz records
    (``filename_hr``); any other folder lists every ``.hea`` file below it, recursively.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingInputError(f"record folder {folder} does not exist; put WFDB records "
                                "there or pass the folder that holds them")
    if (folder / "ptbxl_database.csv").exists():
        return sorted(folder / f for f in _ptbxl_table(folder)["filename_hr"])
    return sorted(h.with_suffix("") for h in folder.rglob("*.hea"))


def split_hints(folder: str | Path) -> dict[str, str]:
    """Record name -> 'train' / 'val' / 'test' from PTB-XL's ``strat_fold``; empty otherwise."""
    folder = Path(folder)
    if not (folder / "ptbxl_database.csv").exists():
        return {}
    table = _ptbxl_table(folder)
    return {Path(f).name: _PTBXL_SPLIT[int(k)]
            for f, k in zip(table["filename_hr"], table["strat_fold"])}


def holdout_names(manifest_path: str | Path = paths.REAL_ECG / "manifest.csv") -> set[str]:
    """Names of the records also used by the hidden evaluation set (never train or tune on them)."""
    manifest_path = Path(manifest_path)
    if not manifest_path.exists():
        raise MissingInputError(f"holdout manifest {manifest_path} not found; it ships with the "
                                f"shared real records (expected in {paths.REAL_ECG})")
    table = pd.read_csv(manifest_path)
    flags = table["used_in_hidden_holdout"].astype(str).str.strip().str.lower() == "true"
    rows = table[flags]
    # Both columns name the record; take both so a renamed 'record' cannot hide one.
    return set(rows["record"].astype(str)) | {Path(p).name for p in rows["path"].astype(str)}


def _flat_leads(signal: np.ndarray) -> list[str]:
    """Leads whose trace never moves (peak-to-peak < 1 uV): electrode not recorded."""
    return [LEAD_NAMES[i] for i in np.flatnonzero(np.ptp(signal, axis=0) < 1e-3)]


def _source_name(folder: Path, path: Path, is_ptbxl: bool) -> str:
    """'ptb-xl' for a PTB-XL download, else the first sub-folder (georgia, ...) or the folder."""
    if is_ptbxl:
        return "ptb-xl"
    return path.relative_to(folder).parts[0] if path.parent != folder else folder.name


def scan_real_records(folder: str | Path = paths.REAL_ECG, fs: int = 500,
                      duration_s: float = 10.0,
                      manifest_path: str | Path | None = None, no_holdout: bool = False,
                      ) -> tuple[list[Record], dict[str, str]]:
    """Load the non-holdout records of ``folder``; also return ``{name: reason}`` for the rest.

    Skipped, with a reason: holdout records (not even read), exact duplicates of a record
    already kept (same samples after resampling; e.g. E07510 = E07509), records that fail
    ``read_record``, and records with a flat (never recorded) lead. The holdout is read from
    ``manifest_path`` (default ``folder/manifest.csv``), which must exist unless ``no_holdout``
    says that the folder has none (e.g. your own recordings).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingInputError(f"real ECG folder {folder} not found; the shared records are "
                                f"expected in {paths.REAL_ECG} (beside the checkout, see README)")
    holdout = set() if no_holdout else holdout_names(manifest_path or folder / "manifest.csv")
    hints = split_hints(folder)
    kept, skipped, seen = [], {}, {}
    for path in list_records(folder):
        name = path.name
        if name in holdout:
            skipped[name] = "in the hidden evaluation holdout"
            continue
        try:
            source = _source_name(folder, path, is_ptbxl=bool(hints))
            rec = read_record(path, fs, duration_s, source=source, split_hint=hints.get(name))
        except (SignalError, MissingInputError) as err:
            skipped[name] = str(err)
            continue
        digest = hashlib.sha256(np.ascontiguousarray(rec.signal).tobytes()).hexdigest()
        if digest in seen:
            skipped[name] = f"duplicate of {seen[digest]} (identical samples)"
        elif flat := _flat_leads(rec.signal):
            skipped[name] = f"flat lead(s) {', '.join(flat)} (never recorded)"
        else:
            seen[digest] = name
            kept.append(rec)
    return kept, skipped


def free_real_records(folder: str | Path = paths.REAL_ECG, fs: int = 500,
                      duration_s: float = 10.0) -> list[Record]:
    """The real records free to train and tune on: never a holdout record, no duplicates.

    Same as ``scan_real_records`` but returns only the records; each skipped record is logged
    (``logging`` INFO, logger ``ecgnb.sources``) with its reason. Use ``scan_real_records`` to
    show the reasons in a table.
    """
    kept, skipped = scan_real_records(folder, fs, duration_s)
    for name, reason in skipped.items():
        log.info("skipped %s: %s", name, reason)
    return kept
