"""Score a digitized ECG against its reference signal, as the PhysioNet Challenge 2024 does.

Signals are ``(n_samples, n_leads)`` float arrays in mV at ``fs`` Hz, leads in ``LEAD_NAMES``
order. In the reference, NaN marks samples that were not plotted on the page. In the
estimate, NaN means "no output here". Only samples finite in both are scored. Missing output
costs through the alpha factor below, not as 0 mV.

Which official version this is
------------------------------
The SNR reproduces ``evaluate_model.py`` and ``helper_code.py`` of
github.com/physionetchallenges/evaluation-2024 at commit **9af7dfb** (2024-09-13, the
scorer of the Challenge), with and without its ``--no_shift`` option. It was written from a
description of that code, not copied from it (the code is BSD-2). It agrees with the official
program's output on every lead of ``../shared/data/official-snr-golden`` within 1e-6 dB
(``tests/test_metrics_golden.py``). Per lead, ``snr_db`` does:

1. **Align** (``correlation_peak``). The two traces get one amplitude range ``[lo, hi]``
   (min and max over the finite samples of both) and one length ``T`` (the longer). Each
   becomes a 256 x T binary image: a finite sample n of value v lights the pixel in column n,
   row ``round(255 (v - lo) / (hi - lo) + 1) - 1`` (NumPy's round-half-to-even, so the
   ``+ 1`` matters; clipped to 0..255).
   Both images are blurred with ``scipy.ndimage.gaussian_filter(sigma=0.5)`` (its default
   'reflect' boundary). The first maximum of their full 2-D cross-correlation gives the lag
   (samples; positive when the estimate is late) and the offset (whole rows of
   ``(hi - lo) / 255`` mV; positive when the estimate is too high). With no finite sample in
   either trace, lag and offset are 0.
2. **Limits** (``find_alignment``). The alignment is used only if ``|lag| <= round(0.5 fs)``
   and ``|offset| <= 1.0 mV``; otherwise the lead is scored as given. Nothing is clipped.
3. **Shift** (``align_lead``). The estimate moves ``lag`` samples earlier (later for a
   negative lag) and the offset is subtracted. Samples shifted in are NaN: they are dropped
   and count as missing.
4. **SNR** (``snr_db``). The shorter signal is padded with NaN. Over the samples finite in
   both, ``10 log10(mean(ref**2) / mean((ref - est)**2))``, times **alpha** = (samples
   scored) / (finite reference samples). It is 0 dB when no sample is common but the
   reference has finite samples (an all-NaN or missing output), and NaN when the noise or the
   reference power is 0 (a perfect estimate, an all-zero reference) or the reference has no
   finite sample. Alpha pulls a negative SNR towards 0 as well as a positive one.
5. **Mean.** The Challenge score is the NaN-ignoring mean over every (record, lead) pair;
   ``summarize`` does the same.

``snr_db_unaligned`` is steps 4 alone (``--no_shift``).

The newest official commit, **1a51354** (2025-10-17, "Clarify shift"), differs only for an
estimate that *leads* the reference (negative lag): after the ``|lag|`` shifted-in NaN it
keeps only the first ``|lag|`` samples of the estimate, so only about ``|lag|`` samples are
scored, alpha is about ``|lag| / n`` and such a lead scores about 0 dB. Positive lags,
rejected alignments and the unaligned SNR are the same in both. ecgnb follows 9af7dfb.

Speed: each blurred image is built directly on its bounding box (the columns and rows that
the blurred trace reaches), which holds every non-zero pixel of the full 256 x T image,
'reflect' edges included; the correlation of the two crops is the full one's non-zero part,
in the same order. A single-precision FFT finds the near-peak positions and their exact
double-precision values decide, with the official tie order (first maximum). A 12-lead 10-s
record takes about 0.5 s on one core (0.03 s per 2.5-s lead, 0.13 s for a 10-s lead).

Besides the SNR, ``lead_metrics`` reports MSE, MAE and Pearson r of the aligned estimate
(ecgnb's own, not Challenge metrics).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import fft as sp_fft
from scipy.ndimage import gaussian_filter, gaussian_filter1d

from ecgnb.errors import SignalError
from ecgnb.leads import LEAD_NAMES

METRIC_COLUMNS: tuple[str, ...] = ("snr_db", "snr_db_unaligned", "mse", "mae", "pearson_r")
RECORD_COLUMNS: tuple[str, ...] = ("lead", *METRIC_COLUMNS, "n_valid", "shift_s", "offset_mv")
MAX_SHIFT_S = 0.5    # largest time shift the alignment may apply (s): |lag| <= round(0.5 fs)
MAX_OFFSET_MV = 1.0  # largest vertical offset the alignment may apply (mV)

_LEVELS = 256        # rows of the official signal image
_BLUR_SIGMA = 0.5    # gaussian_filter sigma (pixels) of the official image
_BLUR_RADIUS = 2     # gaussian_filter's kernel radius: int(truncate 4.0 * sigma + 0.5)
# Most near-peak positions of the single-precision correlation re-evaluated one by one;
# with more (a flat trace), the double-precision correlation is computed instead.
_MAX_CANDIDATES = 64


# --- input checks -----------------------------------------------------------------------------

def _check_finite_or_nan(x: np.ndarray, name: str) -> None:
    if np.isinf(x).any():
        raise SignalError(f"{name} contains ±inf; use NaN for samples that are missing")


def _pad_nan(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` (samples on axis 0) padded with NaN to ``n`` samples."""
    if x.shape[0] >= n:
        return x
    pad = np.full((n - x.shape[0], *x.shape[1:]), np.nan)
    return np.concatenate([x, pad])


def _as_lead_pair(reference, estimate) -> tuple[np.ndarray, np.ndarray]:
    """One lead of reference and estimate as float64 ``(n,)`` copies, the shorter NaN-padded."""
    r = np.array(reference, dtype=float)
    e = np.array(estimate, dtype=float)
    if r.ndim != 1 or e.ndim != 1:
        raise SignalError(
            f"one lead must be 1-D (n_samples,); got reference {r.shape} and estimate {e.shape}; "
            "pass a single column of a (n_samples, n_leads) signal, or use record_metrics"
        )
    _check_finite_or_nan(r, "reference")
    _check_finite_or_nan(e, "estimate")
    n = max(r.shape[0], e.shape[0])
    return _pad_nan(r, n), _pad_nan(e, n)


def _as_record_pair(reference, estimate) -> tuple[np.ndarray, np.ndarray]:
    """Reference and estimate as float64 ``(n_samples, n_leads)`` arrays, the shorter NaN-padded."""
    r = np.array(reference, dtype=float)
    e = np.array(estimate, dtype=float)
    if r.ndim != 2 or e.ndim != 2:
        raise SignalError(
            f"signals must be 2-D (n_samples, n_leads); got reference {r.shape} and estimate "
            f"{e.shape}; for a single lead use lead_metrics"
        )
    if r.shape[1] != e.shape[1]:
        raise SignalError(
            f"reference {r.shape} and estimate {e.shape} have different numbers of leads; "
            "reorder the estimate's leads to the reference's first"
        )
    n = max(r.shape[0], e.shape[0])
    return _pad_nan(r, n), _pad_nan(e, n)


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

def _snr(r: np.ndarray, e: np.ndarray) -> tuple[float, np.ndarray]:
    """Official SNR (dB, alpha applied) of two equal-length leads, and the mask of samples used."""
    on_page = ~np.isnan(r)
    used = on_page & ~np.isnan(e)
    n_ref, n_used = int(on_page.sum()), int(used.sum())
    if n_ref == 0:
        return float("nan"), used
    if n_used == 0:
        return 0.0, used
    signal = float(np.mean(r[used] ** 2))
    noise = float(np.mean((r[used] - e[used]) ** 2))
    if not (signal > 0 and noise > 0):
        return float("nan"), used
    return float(10.0 * np.log10(signal / noise)) * n_used / n_ref, used


def snr_db(reference, estimate) -> float:
    """Signal-to-noise ratio (dB) of one lead as given (the official ``--no_shift`` score).

    Parameters
    ----------
    reference, estimate : array_like, ``(n_samples,)``, mV
        Reference NaN = not plotted; estimate NaN = missing output. The shorter is padded
        with NaN. Inputs are not modified.

    Returns
    -------
    float
        ``10 log10(mean(ref**2) / mean((ref - est)**2))`` over the samples finite in both,
        times alpha = (samples used) / (finite reference samples). 0 dB when no sample is
        common but the reference has some; NaN when the noise is 0 (a perfect estimate), the
        reference power is 0 (an all-zero lead), or the reference has no finite sample.
    """
    r, e = _as_lead_pair(reference, estimate)
    return _snr(r, e)[0]


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


_TAPS = np.arange(-_BLUR_RADIUS, _BLUR_RADIUS + 1)
# gaussian_filter's own 1-D kernel (the response to a centred one-hot).
_WEIGHTS = gaussian_filter1d(np.eye(1, _TAPS.size, _BLUR_RADIUS)[0], _BLUR_SIGMA, mode="constant")


def _reflect(index: np.ndarray, n: int) -> np.ndarray:
    """``index`` (at most the blur radius outside ``[0, n)``) mirrored as 'reflect' does."""
    return np.where(index < 0, -1 - index, np.where(index >= n, 2 * n - 1 - index, index))


def _blurred_image(x: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, int, int]:
    """The official blurred signal image of ``x``, cropped: ``(image, first row, first column)``.

    Each lit pixel spreads into the separable 5 x 5 kernel of ``gaussian_filter(sigma=0.5)``,
    its taps mirrored at the full image's edges as 'reflect' does; the crop is the bounding box
    of those pixels, so it holds every non-zero pixel of the full blurred image, equal to it to
    rounding (the sums are taken in another order).
    """
    cols = np.flatnonzero(~np.isnan(x))
    levels = np.clip(np.round(255 * (x[cols] - lo) / (hi - lo) + 1).astype(int), 1, _LEVELS)
    rows = levels - 1
    if x.size < _TAPS.size:           # too short for one mirror: blur the full image itself
        image = np.zeros((_LEVELS, x.size))
        image[rows, cols] = 1.0
        return gaussian_filter(image, _BLUR_SIGMA), 0, 0
    row_taps = _reflect(rows[:, None] + _TAPS, _LEVELS)
    col_taps = _reflect(cols[:, None] + _TAPS, x.size)
    r0, c0 = int(row_taps.min()), int(col_taps.min())
    height, width = int(row_taps.max()) - r0 + 1, int(col_taps.max()) - c0 + 1
    flat = (row_taps - r0)[:, :, None] * width + (col_taps - c0)[:, None, :]
    weights = np.broadcast_to(_WEIGHTS[:, None] * _WEIGHTS[None, :], flat.shape)
    image = np.bincount(flat.ravel(), weights.ravel(), minlength=height * width)
    return image.reshape(height, width), r0, c0


def _spectrum(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """2-D FFT of real ``x`` zero-padded to ``shape`` (last axis halved), single precision."""
    return sp_fft.fft(sp_fft.rfft(x.astype(np.float32), shape[1], axis=1), shape[0], axis=0)


def _correlation(a: np.ndarray, b: np.ndarray, single: bool) -> np.ndarray:
    """Full 2-D cross-correlation ``D[p, q] = sum a[i, j] b[i + hb-1-p, j + lb-1-q]``.

    ``single``: a fast single-precision FFT (errors ~1e-7 of the peak); else double.
    """
    out = (a.shape[0] + b.shape[0] - 1, a.shape[1] + b.shape[1] - 1)
    if not single:
        fshape = (sp_fft.next_fast_len(out[0], real=True), sp_fft.next_fast_len(out[1], real=True))
        prod = sp_fft.rfft2(a, fshape) * sp_fft.rfft2(b[::-1, ::-1], fshape)
        return sp_fft.irfft2(prod, fshape)[: out[0], : out[1]]
    fshape = (sp_fft.next_fast_len(out[0]), sp_fft.next_fast_len(out[1], real=True))
    prod = _spectrum(a, fshape) * _spectrum(b[::-1, ::-1], fshape)
    rows = sp_fft.ifft(prod, axis=0, overwrite_x=True)[: out[0]]
    return sp_fft.irfft(rows, fshape[1], axis=1)[:, : out[1]]


def _exact_value(a: np.ndarray, b: np.ndarray, u: int, v: int) -> float:
    """``sum a[i, j] b[i + u, j + v]`` over the overlap, in double precision."""
    i0, i1 = max(0, -u), min(a.shape[0], b.shape[0] - u)
    j0, j1 = max(0, -v), min(a.shape[1], b.shape[1] - v)
    if i1 <= i0 or j1 <= j0:
        return 0.0
    return float(np.vdot(a[i0:i1, j0:j1], b[i0 + u:i1 + u, j0 + v:j1 + v]))


def _peak(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    """Index ``(p, q)`` of the first maximum of ``_correlation(a, b)`` (row-major order).

    The single-precision correlation is within ``err`` of the exact one everywhere (``err``
    is 1e-5 |a| |b|, over 40 times the largest float32 error seen on the golden set), so the
    exact maximum lies among the positions within ``2 err`` of its peak. Their exact values
    decide, in descending order of the approximate ones, until none left can reach the best.
    """
    approx = _correlation(a, b, single=True)
    top = float(approx.max())
    err = 1e-5 * float(np.linalg.norm(a) * np.linalg.norm(b))
    near = np.flatnonzero(approx >= top - 2 * err)
    if near.size > _MAX_CANDIDATES:   # a flat trace: many near-equal peaks, decide exactly
        exact = _correlation(a, b, single=False)
        p, q = np.unravel_index(int(np.argmax(exact)), exact.shape)
        return int(p), int(q)
    values = approx.ravel()[near]
    best, best_value = -1, -np.inf
    for k in near[np.argsort(-values, kind="stable")]:
        if approx.flat[k] < best_value - err:
            break
        p, q = divmod(int(k), approx.shape[1])
        value = _exact_value(a, b, b.shape[0] - 1 - p, b.shape[1] - 1 - q)
        if value > best_value or (value == best_value and k < best):   # first maximum wins
            best, best_value = int(k), value
    p, q = divmod(best, approx.shape[1])
    return p, q


def correlation_peak(reference, estimate) -> tuple[int, float]:
    """Lag (samples) and offset (mV) at the official image cross-correlation peak, unlimited.

    ``lag > 0``: the estimate is late by ``lag`` samples; ``offset > 0``: it is ``offset``
    mV too high. Step 1 of the module docstring; ``(0, 0.0)`` when either lead has no finite
    sample (or both are one constant, where the image is undefined). ``find_alignment``
    applies the limits.
    """
    r, e = _as_lead_pair(reference, estimate)
    if np.isnan(r).all() or np.isnan(e).all():
        return 0, 0.0
    lo = float(min(np.nanmin(r), np.nanmin(e)))
    hi = float(max(np.nanmax(r), np.nanmax(e)))
    if hi == lo:
        return 0, 0.0
    a, ra, ca = _blurred_image(r, lo, hi)
    b, rb, cb = _blurred_image(e, lo, hi)
    p, q = _peak(a, b)
    rows = (b.shape[0] - 1 - p) + rb - ra         # estimate row - reference row at the peak
    lag = (b.shape[1] - 1 - q) + cb - ca          # estimate column - reference column
    return int(lag), rows * (hi - lo) / 255


def find_alignment(reference, estimate, fs: float, max_shift_s: float = MAX_SHIFT_S,
                   max_offset_mv: float = MAX_OFFSET_MV) -> tuple[int, float]:
    """Lag (samples) and offset (mV) that the Challenge scorer removes from ``estimate``.

    ``correlation_peak`` if ``|lag| <= round(max_shift_s * fs)`` and
    ``|offset| <= max_offset_mv``, else ``(0, 0.0)``: an alignment beyond a limit is not
    used at all (not clipped). Signs: ``lag > 0`` = estimate late, ``offset > 0`` = estimate
    too high. Apply them with ``align_lead`` (``shift_samples(estimate, -lag) - offset``).
    """
    _check_fs(fs)
    _check_limits(max_shift_s, max_offset_mv)
    lag, offset = correlation_peak(reference, estimate)
    if abs(lag) <= round(max_shift_s * fs) and abs(offset) <= max_offset_mv:
        return lag, offset
    return 0, 0.0


def _apply(estimate: np.ndarray, lag: int, offset: float) -> np.ndarray:
    return shift_samples(estimate, -lag) - offset


def align_lead(reference, estimate, fs: float, max_shift_s: float = MAX_SHIFT_S,
               max_offset_mv: float = MAX_OFFSET_MV) -> np.ndarray:
    """``estimate`` (mV) as the Challenge scores it: lag and offset of ``find_alignment`` removed.

    The result has the length of the longer of the two leads (the shorter NaN-padded).
    Samples shifted in are NaN (missing output); NaN in the estimate stay NaN.
    """
    r, e = _as_lead_pair(reference, estimate)
    lag, offset = find_alignment(r, e, fs, max_shift_s, max_offset_mv)
    return _apply(e, lag, offset)


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

    ``snr_db`` is the official aligned SNR when ``align`` (else the unaligned one);
    ``snr_db_unaligned`` is the official ``--no_shift`` SNR. ``mse``, ``mae`` and
    ``pearson_r`` compare the estimate that ``snr_db`` scores (aligned when ``align``) with
    the reference over exactly the samples that ``snr_db`` uses: finite in both after the
    shift. They have no alpha penalty; NaN when no sample is common. ``n_valid`` counts those
    samples (alpha = ``n_valid`` / finite reference samples). ``shift_s`` (s) and
    ``offset_mv`` (mV) are the lag and offset removed (0 when not aligned or beyond a limit):
    positive when the estimate was late, or too high.
    """
    r, e = _as_lead_pair(reference, estimate)
    _check_fs(fs)
    lag, offset = find_alignment(r, e, fs, max_shift_s, max_offset_mv) if align else (0, 0.0)
    scored = _apply(e, lag, offset) if (lag, offset) != (0, 0.0) else e
    snr, used = _snr(r, scored)
    return {
        "snr_db": snr,
        "snr_db_unaligned": _snr(r, e)[0] if scored is not e else snr,
        **_error_stats(r[used], scored[used]),
        "n_valid": int(used.sum()),
        "shift_s": lag / fs,
        "offset_mv": float(offset),
    }


def record_metrics(reference, estimate, fs: float, lead_names: Sequence[str] = LEAD_NAMES,
                   align: bool = True) -> pd.DataFrame:
    """Score every lead of a record: one row per lead, columns ``RECORD_COLUMNS``.

    ``reference`` and ``estimate`` are ``(n_samples, n_leads)`` mV at ``fs`` Hz, leads in
    ``lead_names`` order; the shorter is padded with NaN, as the Challenge does.
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
    ``snr_db`` values averaged) and ``n_records``. The official SNR is never ±inf (zero noise
    is NaN), so the means are finite unless a table brings ±inf of its own.
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
