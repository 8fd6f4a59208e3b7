"""Score a digitized ECG against its reference signal, as the PhysioNet Challenge 2024 does.

Signals are ``(n_samples, n_leads)`` float arrays in mV at ``fs`` Hz, leads in ``LEAD_NAMES``
order. In the reference, NaN marks samples that were not drawn on the page: they are not
scored. In the estimate, NaN means "no output here" and counts as 0 mV, the Challenge's
penalty for missing output.

Correspondence with the official scoring code (physionetchallenges/evaluation-2024,
``helper_code.py: compute_snr`` and ``evaluate_model.py``):

- SNR per lead is ``10 log10(sum(reference**2) / sum((estimate - reference)**2))`` in dB;
  ``evaluate_model.py`` sets NaN in the output to 0 before scoring, as here.
- Zero noise gives ``inf`` (the official ``snr = float('inf')`` branch); zero signal with
  non-zero noise gives ``-inf``.
- The Challenge score is ``np.nanmean`` over every (record, lead) pair; ``summarize`` does
  the same, so one ``inf`` lead makes the mean ``inf`` there too.
- One deliberate difference: the official code sets NaN in the *reference* to 0 and keeps
  summing, so any output drawn where the reference is NaN counts as noise. Here those samples
  are excluded (not scored) by default; ``snr_db(..., exclude_unplotted=False)`` gives the
  official behaviour exactly. A lead with no valid reference sample scores NaN (the official
  code would give ``inf`` for an all-NaN reference and an all-zero output).

Alignment (``align_lead``): the stored versions of the official code that we could read
(evaluation-2024 ``evaluate_model.py`` and ``helper_code.py``, python-example-2024
``helper_code.py``) score without any alignment: they only reorder channels and zero-pad or
truncate the output. The ±0.5 s time shift and ±1 mV offset come from ecgnb's brief, not
from code we could see; the method below (mean-removed cross-correlation for the lag, least
squares for the offset, clipped) is ecgnb's own. ``snr_db_unaligned`` is the official score.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ecgnb.errors import SignalError
from ecgnb.leads import LEAD_NAMES

METRIC_COLUMNS: tuple[str, ...] = ("snr_db", "snr_db_unaligned", "mse", "mae", "pearson_r")
RECORD_COLUMNS: tuple[str, ...] = ("lead", *METRIC_COLUMNS, "n_valid", "shift_s", "offset_mv")
MAX_SHIFT_S = 0.5    # largest time shift alignment may apply (s)
MAX_OFFSET_MV = 1.0  # largest vertical offset alignment may apply (mV)


# --- input checks -----------------------------------------------------------------------------

def _check_finite_or_nan(x: np.ndarray, name: str) -> None:
    if np.isinf(x).any():
        raise SignalError(f"{name} contains ±inf; use NaN for samples that are missing")


def _as_lead_pair(reference, estimate) -> tuple[np.ndarray, np.ndarray]:
    """Copy one lead of reference and estimate to float64 ``(n_samples,)`` arrays, checked."""
    r = np.array(reference, dtype=float)
    e = np.array(estimate, dtype=float)
    if r.ndim != 1 or e.ndim != 1:
        raise SignalError(
            f"one lead must be 1-D (n_samples,); got reference {r.shape} and estimate {e.shape}; "
            "pass a single column of a (n_samples, n_leads) signal, or use record_metrics"
        )
    if r.shape != e.shape:
        raise SignalError(
            f"reference has {r.shape[0]} samples but estimate has {e.shape[0]}; pad or trim the "
            "estimate to the reference length first (the Challenge zero-pads or truncates it)"
        )
    _check_finite_or_nan(r, "reference")
    _check_finite_or_nan(e, "estimate")
    return r, e


def _as_record_pair(reference, estimate) -> tuple[np.ndarray, np.ndarray]:
    """Copy reference and estimate to float64 ``(n_samples, n_leads)`` arrays, checked."""
    r = np.array(reference, dtype=float)
    e = np.array(estimate, dtype=float)
    if r.ndim != 2 or e.ndim != 2:
        raise SignalError(
            f"signals must be 2-D (n_samples, n_leads); got reference {r.shape} and estimate "
            f"{e.shape}; for a single lead use lead_metrics"
        )
    if r.shape != e.shape:
        raise SignalError(
            f"reference {r.shape} and estimate {e.shape} differ in shape; reorder the estimate's "
            "leads and pad or trim it to the reference first"
        )
    return r, e


def _check_fs(fs: float) -> None:
    if not np.isfinite(fs) or fs <= 0:
        raise SignalError(f"fs must be a positive sampling frequency in Hz; got {fs!r}")


def _check_limits(max_shift_s: float, max_offset_mv: float) -> None:
    if not max_shift_s >= 0 or not max_offset_mv >= 0:
        raise SignalError(
            f"alignment limits must be >= 0; got max_shift_s={max_shift_s!r}, "
            f"max_offset_mv={max_offset_mv!r}"
        )


# --- SNR --------------------------------------------------------------------------------------

def _ratio_db(signal_power: float, noise_power: float) -> float:
    """10 log10(signal / noise) in dB; ``inf`` for zero noise, as the Challenge does."""
    if noise_power > 0:
        with np.errstate(divide="ignore"):
            return float(10.0 * np.log10(signal_power / noise_power))
    return float("inf")


def snr_db(reference, estimate, exclude_unplotted: bool = True) -> float:
    """Signal-to-noise ratio (dB) of one lead, as the PhysioNet Challenge 2024 defines it.

    Parameters
    ----------
    reference, estimate : array_like, ``(n_samples,)``, mV
        Reference NaN = not drawn on the page; estimate NaN = missing output, scored as 0 mV.
    exclude_unplotted : bool
        True (default): samples where the reference is NaN are not scored. False: the
        official ``compute_snr`` exactly (reference NaN set to 0 mV, estimate there is noise).

    Returns
    -------
    float
        ``10 log10(sum(ref**2) / sum((est - ref)**2))``; ``inf`` when the noise is 0,
        ``-inf`` when the signal is 0 and the noise is not, NaN when no sample is valid
        (only with ``exclude_unplotted``). Inputs are not modified.
    """
    r, e = _as_lead_pair(reference, estimate)
    e = np.nan_to_num(e, nan=0.0)
    if exclude_unplotted:
        valid = ~np.isnan(r)
        if not valid.any():
            return float("nan")
        r, e = r[valid], e[valid]
    else:
        r = np.nan_to_num(r, nan=0.0)
    return _ratio_db(float(np.sum(r**2)), float(np.sum((e - r) ** 2)))


# --- alignment --------------------------------------------------------------------------------

def shift_samples(x: np.ndarray, lag: int) -> np.ndarray:
    """Delay ``x`` by ``lag`` samples: ``y[n] = x[n - lag]``; samples shifted in are NaN."""
    x = np.asarray(x, dtype=float)
    y = np.full_like(x, np.nan)
    n = x.shape[0]
    if abs(lag) >= n:
        return y
    if lag >= 0:
        y[lag:] = x[: n - lag]
    else:
        y[:lag] = x[-lag:]
    return y


def _centred(x: np.ndarray) -> np.ndarray:
    """``x`` minus its mean over non-NaN samples, with NaN set to 0 (adds nothing to a sum)."""
    known = ~np.isnan(x)
    if not known.any():
        return np.zeros_like(x)
    return np.where(known, x - x[known].mean(), 0.0)


def _lagged_dot(a: np.ndarray, b: np.ndarray, lag: int) -> float:
    """``sum_n a[n] * b[n - lag]`` over the samples where both exist."""
    n = a.shape[0]
    if lag >= 0:
        return float(np.dot(a[lag:], b[: n - lag]))
    return float(np.dot(a[: n + lag], b[-lag:]))


def _best_lag(reference: np.ndarray, estimate: np.ndarray, max_lag: int) -> int:
    """Lag (samples) in ``[-max_lag, max_lag]`` maximising the mean-removed cross-correlation.

    Ties go to the smallest ``|lag|`` (0 first), so a flat or empty estimate is not moved.
    """
    rc, ec = _centred(reference), _centred(estimate)
    lags = sorted(range(-max_lag, max_lag + 1), key=abs)
    corr = np.array([_lagged_dot(rc, ec, lag) for lag in lags])
    return int(lags[int(np.argmax(corr))])


def _best_offset(reference: np.ndarray, shifted: np.ndarray, max_offset_mv: float) -> float:
    """Least-squares constant (mV) to add to ``shifted``, clipped to ``±max_offset_mv``."""
    both = ~np.isnan(reference) & ~np.isnan(shifted)
    if not both.any():
        return 0.0
    offset = float(np.mean(reference[both] - shifted[both]))
    return float(np.clip(offset, -max_offset_mv, max_offset_mv))


def find_alignment(reference, estimate, fs: float, max_shift_s: float = MAX_SHIFT_S,
                   max_offset_mv: float = MAX_OFFSET_MV) -> tuple[int, float]:
    """Time shift (samples) and vertical offset (mV) that best fit ``estimate`` to ``reference``.

    The lag maximises the cross-correlation of the mean-removed leads (NaN contribute
    nothing) within ``±round(max_shift_s * fs)`` samples; the offset is then the mean of
    ``reference - shifted estimate`` over samples where both exist, clipped to
    ``±max_offset_mv``. Apply them with ``shift_samples(estimate, lag) + offset``.
    """
    r, e = _as_lead_pair(reference, estimate)
    _check_fs(fs)
    _check_limits(max_shift_s, max_offset_mv)
    max_lag = min(int(round(max_shift_s * fs)), max(r.shape[0] - 1, 0))
    lag = _best_lag(r, e, max_lag)
    return lag, _best_offset(r, shift_samples(e, lag), max_offset_mv)


def align_lead(reference, estimate, fs: float, max_shift_s: float = MAX_SHIFT_S,
               max_offset_mv: float = MAX_OFFSET_MV) -> np.ndarray:
    """Return ``estimate`` (mV, ``(n_samples,)``) shifted in time and offset to fit ``reference``.

    See ``find_alignment`` for the method. Samples shifted in from outside the estimate are
    NaN, so ``snr_db`` scores them as missing output (0 mV); NaN in the estimate stay NaN
    (the offset is not applied to missing output).
    """
    lag, offset = find_alignment(reference, estimate, fs, max_shift_s, max_offset_mv)
    return shift_samples(np.asarray(estimate, dtype=float), lag) + offset


# --- per lead, per record, summary ------------------------------------------------------------

def _error_stats(reference: np.ndarray, estimate: np.ndarray) -> dict[str, float]:
    """MSE (mV²), MAE (mV) and Pearson r of two equal-length NaN-free arrays (NaN if empty)."""
    if reference.size == 0:
        return {"mse": float("nan"), "mae": float("nan"), "pearson_r": float("nan")}
    diff = estimate - reference
    rc, ec = reference - reference.mean(), estimate - estimate.mean()
    denom = float(np.sqrt(np.sum(rc**2) * np.sum(ec**2)))
    r = float(np.sum(rc * ec) / denom) if denom > 0 else float("nan")
    return {"mse": float(np.mean(diff**2)), "mae": float(np.mean(np.abs(diff))), "pearson_r": r}


def lead_metrics(reference, estimate, fs: float, align: bool = True,
                 max_shift_s: float = MAX_SHIFT_S, max_offset_mv: float = MAX_OFFSET_MV) -> dict:
    """Score one lead: SNR (dB) with and without alignment, MSE (mV²), MAE (mV), Pearson r.

    ``snr_db``, ``mse``, ``mae`` and ``pearson_r`` use the aligned estimate when ``align``
    (else the estimate as given); ``snr_db_unaligned`` never aligns (the official score).
    All are computed over valid samples (reference not NaN), with missing output as 0 mV.
    Also returns ``n_valid``, and the applied ``shift_s`` (s) and ``offset_mv`` (mV).
    """
    r, e = _as_lead_pair(reference, estimate)
    _check_fs(fs)
    lag, offset = find_alignment(r, e, fs, max_shift_s, max_offset_mv) if align else (0, 0.0)
    scored = shift_samples(e, lag) + offset
    valid = ~np.isnan(r)
    stats = _error_stats(r[valid], np.nan_to_num(scored[valid], nan=0.0))
    return {
        "snr_db": snr_db(r, scored),
        "snr_db_unaligned": snr_db(r, e),
        **stats,
        "n_valid": int(valid.sum()),
        "shift_s": lag / fs,
        "offset_mv": offset,
    }


def record_metrics(reference, estimate, fs: float, lead_names: Sequence[str] = LEAD_NAMES,
                   align: bool = True) -> pd.DataFrame:
    """Score every lead of a record: one row per lead, columns ``RECORD_COLUMNS``.

    ``reference`` and ``estimate`` are ``(n_samples, n_leads)`` mV at ``fs`` Hz, leads in
    ``lead_names`` order.
    """
    r, e = _as_record_pair(reference, estimate)
    _check_fs(fs)
    if len(lead_names) != r.shape[1]:
        raise SignalError(
            f"signals have {r.shape[1]} leads but {len(lead_names)} lead names were given; "
            "pass lead_names in the signals' column order"
        )
    rows = [{"lead": name, **lead_metrics(r[:, j], e[:, j], fs, align=align)}
            for j, name in enumerate(lead_names)]
    return pd.DataFrame(rows, columns=list(RECORD_COLUMNS))


def _as_long(frames: Mapping[str, pd.DataFrame] | pd.DataFrame) -> pd.DataFrame:
    """One table with a ``record`` column from ``{record: record_metrics(...)}`` or a table."""
    if isinstance(frames, pd.DataFrame):
        long = frames
    elif isinstance(frames, Mapping):
        if not frames:
            raise ValueError("no records to summarize; pass {record: record_metrics(...)}")
        long = pd.concat([f.assign(record=name) for name, f in frames.items()], ignore_index=True)
    else:
        raise TypeError(f"expected a dict of DataFrames or a DataFrame; got {type(frames).__name__}")
    missing = {"record", "lead", "snr_db"} - set(long.columns)
    if missing:
        raise ValueError(f"metrics table lacks column(s) {sorted(missing)}; build it with "
                         "record_metrics and add a 'record' column")
    return long


def _lead_order(leads) -> list[str]:
    known = [name for name in LEAD_NAMES if name in set(leads)]
    return known + sorted(set(leads) - set(known))


def summarize(frames: Mapping[str, pd.DataFrame] | pd.DataFrame) -> pd.DataFrame:
    """Mean metrics over records, NaN skipped: the Challenge's aggregation, then per lead.

    Parameters
    ----------
    frames : dict ``{record: record_metrics(...)}`` or one long table with a ``record`` column.

    Returns
    -------
    DataFrame indexed by ``lead``: the first row, ``'all'``, is the nanmean over every
    (record, lead) pair (the Challenge score for ``snr_db``); then one row per lead in
    ``LEAD_NAMES`` order. Columns: the metric columns present, ``n_scored`` (non-NaN
    ``snr_db`` values averaged) and ``n_records``. ``inf`` is kept, as in ``np.nanmean``.
    """
    long = _as_long(frames)
    metrics = [c for c in METRIC_COLUMNS if c in long.columns]
    values = long[metrics].apply(pd.to_numeric, errors="coerce")

    def stats(rows: pd.DataFrame) -> dict:
        return {**values.loc[rows.index].mean().to_dict(),
                "n_scored": int(values.loc[rows.index, "snr_db"].notna().sum()),
                "n_records": int(rows["record"].nunique())}

    table = {"all": stats(long)}
    for lead in _lead_order(long["lead"].unique()):
        table[lead] = stats(long[long["lead"] == lead])
    out = pd.DataFrame.from_dict(table, orient="index")
    out.index.name = "lead"
    return out
