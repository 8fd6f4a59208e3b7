"""Layout and calibration: the trace rows of an upright page, its time axis and its panels.

Read top to bottom: what is found (``RowInfo``, ``PanelBox``, ``LayoutInfo``), ink near a row,
the candidate rows (``row_candidates``), the page's time axis, the 1 mV calibration pulse
(``detect_calibration``), each row's own grid slope (``row_slope``) and time axis under
perspective, the panel boxes, and ``detect_layout``, which puts them together. Inputs are an
upright trace mask ``(H, W)`` bool (``ecgnb.grid.remove_grid`` + ``denoise``) and its
``GridInfo``; all positions are px on that page. Thresholds come from
``ecgnb.config.PreprocessConfig`` (``cfg``, None: the defaults), the paper speed and the pulse
width's time from ``ecgnb.config.PaperConfig`` (``paper``). Builds on ``ecgnb.grid`` and on the
slope search of ``ecgnb.straighten``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from .config import PaperConfig, PreprocessConfig
from .errors import ImageError, LayoutError
from .grid import GridInfo, grid_period
from .layouts import LAYOUTS, get_layout, n_rows, panels
from .straighten import search_slope


# --------------------------------------------------------------------------------------------
# What is found
# --------------------------------------------------------------------------------------------

@dataclass
class RowInfo:
    """One printed row of traces."""

    index: int                  # 0 = top row
    baseline_y: float           # px, 0 mV level (calibration-pulse base if found, else ink peak)
    y0: float                   # px, top of the band searched for this row's trace
    y1: float                   # px, bottom of that band
    ink_x0: float               # px, where this row's ink starts (pulse included)
    ink_x1: float               # px, where it ends
    coverage: float             # 0..1, share of the trace span with ink near the baseline
    calibration: dict | None = None  # see detect_calibration
    slope: float = 0.0          # px/px, dy/dx of this row's grid lines (perspective left by deskew)
    x_ref: float = 0.0          # px, x at which the 0 mV line is at ``baseline_y``
    x_start: float | None = None  # px, this row's t = 0 (perspective); None: the page's
    x_end: float | None = None    # px, this row's t = duration; None: the page's

    def baseline_at(self, x):
        """y (px) of this row's 0 mV line at ``x`` (px, scalar or array)."""
        return self.baseline_y + self.slope * (np.asarray(x, float) - self.x_ref)


@dataclass
class PanelBox:
    """Where one ``ecgnb.layouts.Panel`` sits on the upright page (all px)."""

    lead: str
    row: int
    col: int
    rhythm: bool
    t0_s: float                 # s, record time at x0
    t1_s: float                 # s, record time at x1
    x0: float
    x1: float
    y0: float
    y1: float
    baseline_y: float           # px, y of 0 mV at ``x0``
    slope: float = 0.0          # px/px, dy/dx of the 0 mV line across the panel

    def baseline_at(self, x):
        """y (px) of the panel's 0 mV line at ``x`` (px, scalar or array)."""
        return self.baseline_y + self.slope * (np.asarray(x, float) - self.x0)


@dataclass
class LayoutInfo:
    """The layout found on a page: rows, the time axis and one box per panel."""

    name: str
    rows: list[RowInfo]
    x_start: float              # px, x of t = 0 s
    x_end: float                # px, x of t = duration
    panels: list[PanelBox]
    confidence: float           # 0..1
    candidates: dict[str, float] = field(default_factory=dict)  # layout -> confidence ("auto")
    notes: list[str] = field(default_factory=list)  # doubts about the layout, in words


# --------------------------------------------------------------------------------------------
# Ink near a row
# --------------------------------------------------------------------------------------------

def _smooth(p: np.ndarray, sigma: float) -> np.ndarray:
    """1-D Gaussian smoothing of ``p`` with ``sigma`` (samples, at least 0.5)."""
    return cv2.GaussianBlur(p.astype(np.float64).reshape(-1, 1), (1, 0), sigmaX=0,
                            sigmaY=max(sigma, 0.5)).ravel()


def _row_ink(mask: np.ndarray, y: float, grid: GridInfo, half_mm: float) -> np.ndarray:
    """Per-column bool: ink within +-``half_mm`` (mm) of ``y`` (px)."""
    h = mask.shape[0]
    r = int(half_mm * grid.px_per_mm_y)
    return mask[max(0, int(y) - r):min(h, int(y) + r + 1)].any(axis=0)


def _coverage(mask, y, x_start, x_end, grid, cfg: PreprocessConfig) -> float:
    """Share of columns in ``[x_start, x_end]`` (px) with ink within +-``cfg.row_ink_half_mm``
    of ``y`` (px)."""
    inked = _row_ink(mask, y, grid, cfg.row_ink_half_mm)
    a, b = max(0, int(x_start)), min(mask.shape[1], int(x_end) + 1)
    return float(inked[a:b].mean()) if b > a else 0.0


# --------------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------------

def row_candidates(mask: np.ndarray, grid: GridInfo, *,
                   cfg: PreprocessConfig | None = None) -> list[tuple[float, float]]:
    """``[(y px, strength)]`` of horizontal ink bands: peaks of the row-wise ink projection.

    Projected over the central 60% of the width, which every layout fills with trace, so page
    borders and margin text do not count. Peaks closer than ``cfg.row_min_gap_mm`` are one row.
    """
    from scipy.signal import find_peaks

    cfg = PreprocessConfig() if cfg is None else cfg
    h, w = mask.shape
    prof = _smooth(mask[:, int(0.2 * w):int(0.8 * w)].sum(axis=1), 0.5 * grid.px_per_mm_y)
    peaks, props = find_peaks(prof, distance=max(1, int(cfg.row_min_gap_mm * grid.px_per_mm_y)),
                              height=0.02 * 0.6 * w)
    return [(float(p), float(hh)) for p, hh in zip(peaks, props["peak_heights"])]


def _pick_rows(mask, grid, cands, n, cfg: PreprocessConfig) -> list[RowInfo]:
    """The ``n`` candidate rows with the most inked columns (trace rows span the page)."""
    half = cfg.row_ink_half_mm
    scored = sorted(((float(_row_ink(mask, y, grid, half).mean()), y) for y, _ in cands),
                    reverse=True)
    ys = sorted(y for _, y in scored[:n])
    spacing = float(np.median(np.diff(ys))) if n > 1 else 30 * grid.px_per_mm_y
    rows = []
    for i, y in enumerate(ys):
        # Search band: up to the neighbouring rows' baselines (tall QRS complexes reach them).
        up = ys[i - 1] if i > 0 else max(0.0, y - 1.0 * spacing)
        down = ys[i + 1] if i < n - 1 else min(mask.shape[0] - 1.0, y + 0.7 * spacing)
        inked = np.flatnonzero(_row_ink(mask, y, grid, half))
        rows.append(RowInfo(index=i, baseline_y=y, y0=up, y1=down,
                            ink_x0=float(inked[0]) if inked.size else 0.0,
                            ink_x1=float(inked[-1]) if inked.size else 0.0, coverage=0.0))
    return rows


# --------------------------------------------------------------------------------------------
# The page's time axis
# --------------------------------------------------------------------------------------------

def _time_axis(inked_rows: list[np.ndarray], grid: GridInfo, duration_s: float,
               cfg: PreprocessConfig, paper: PaperConfig) -> tuple[float, float]:
    """``(x_start, x_end)`` px of t = 0 and t = duration on the page.

    The span is fixed by the paper speed (``paper.speed_mm_s``) and the measured px/mm; its
    position is the window of that width holding the most inked row-columns (``sum(f - 0.5)``,
    ``f`` the share of rows with ink near their baseline in each column). On ties (a calibration
    pulse left of the trace is inked too) the rightmost window wins, since every row ends with
    trace. The ink spans one sample period (at ``cfg.trace_fs``) less than the axis, and the pen
    reaches ``cfg.ink_lead_mm`` past the first and last samples.
    """
    f = np.mean(inked_rows, axis=0) - 0.5
    w_exact = duration_s * paper.speed_mm_s * grid.px_per_mm_x
    w = int(round(w_exact))
    if w >= f.size:
        return 0.0, float(w_exact)
    c = np.concatenate([[0.0], np.cumsum(f)])
    sums = c[w:] - c[:-w]            # sums[i] = window [i, i + w)
    best = int(np.flatnonzero(sums >= sums.max() - 1e-9)[-1])
    # Refine to sub-pixel: centre the span on the inked columns at the window's two ends.
    m = 3
    lo = np.flatnonzero(f[max(0, best - m):best + m + 1] > 0)
    hi = np.flatnonzero(f[best + w - 1 - m:best + w + m] > 0)
    if lo.size and hi.size:
        first, last = max(0, best - m) + lo[0], best + w - 1 - m + hi[-1]
        x_start = 0.5 * (first + last) - 0.5 * (w_exact - grid.px_per_mm_x * paper.speed_mm_s
                                                / cfg.trace_fs)
        # The pen's ink reaches farther before the first sample than after the last.
        x_start += 0.5 * (cfg.ink_lead_mm[0] - cfg.ink_lead_mm[1]) * grid.px_per_mm_x
        if abs(x_start - best) <= 2.0:  # a ragged end (trace gap, label) must not drag the axis
            return float(x_start), float(x_start + w_exact)
    return float(best), float(best + w_exact)


# --------------------------------------------------------------------------------------------
# Calibration pulse
# --------------------------------------------------------------------------------------------

def _clusters(cols: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive column indices as ``[(first, last)]``."""
    if cols.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(cols) > 1)
    starts = np.concatenate([[cols[0]], cols[breaks + 1]])
    ends = np.concatenate([cols[breaks], [cols[-1]]])
    return list(zip(starts.tolist(), ends.tolist()))


def _ink_runs(col: np.ndarray) -> list[tuple[int, int]]:
    """Ink runs of one bool column as ``[(top, bottom)]`` px (``[(0, -1)]`` when it is blank)."""
    return _clusters(np.flatnonzero(col)) or [(0, -1)]


def _median_run_centre(region: np.ndarray, first: bool) -> float:
    """Median over columns of the centre (px) of each column's first (or last) ink run."""
    centres = []
    for col in region.T:
        ys = np.nonzero(col)[0]
        if ys.size == 0:
            continue
        runs = np.split(ys, np.flatnonzero(np.diff(ys) > 1) + 1)
        run = runs[0] if first else runs[-1]
        centres.append(0.5 * (run[0] + run[-1]))
    return float(np.median(centres)) if centres else float("nan")


def _run_centre_near(col: np.ndarray, y: float, tol: float) -> float | None:
    """Centre (px) of the ink run in ``col`` nearest to ``y``, if within ``tol`` px of it."""
    ys = np.nonzero(col)[0]
    if ys.size == 0:
        return None
    runs = np.split(ys, np.flatnonzero(np.diff(ys) > 1) + 1)
    centres = np.array([0.5 * (r[0] + r[-1]) for r in runs])
    best = centres[np.argmin(np.abs(centres - y))]
    return float(best) if abs(best - y) <= tol else None


def _pen_width(region: np.ndarray) -> float:
    """Median vertical run length (px) of ink columns in ``region``: the pen width of flat lines."""
    runs = region.sum(axis=0)
    runs = runs[(runs > 0) & (runs < np.median(runs[runs > 0]) * 3 + 1)] if runs.any() else runs
    return float(np.median(runs)) if runs.size else 1.0


def detect_calibration(mask: np.ndarray, row: RowInfo, grid: GridInfo,
                       x_start: float | None = None, *, cfg: PreprocessConfig | None = None,
                       paper: PaperConfig = PaperConfig()) -> dict | None:
    """Find the 1 mV x 0.2 s rectangular pulse at the start of ``row``; None if there is none.

    Searched (``cfg.cal_search_mm``, 15 / 1 / 14 / 3 mm by default) from left of ``x_start``
    (px, t = 0) to right of it, from above to below the row's ink peak: the pulse is two vertical
    strokes (columns with ``cfg.cal_stroke_mm`` of ink, ``cfg.cal_width_range_mm`` apart) joined
    by a flat top. The pair nearest the expected width (``cfg.cal_pulse_s`` at
    ``paper.speed_mm_s``) wins. Returns px positions (``x0``, ``x1``, ``top_y``, ``base_y``) and
    the measured ``height_mm``, ``width_mm`` and ``mm_per_mv`` (10 on a standard print; the pulse
    is ``cfg.cal_pulse_mv`` high).
    """
    cfg = PreprocessConfig() if cfg is None else cfg
    ppx, ppy = grid.px_per_mm_x, grid.px_per_mm_y
    left_mm, right_mm, above_mm, below_mm = cfg.cal_search_mm
    x_t0 = x_start if x_start is not None else row.ink_x0 + 10 * ppx
    xa, xb = int(max(0, x_t0 - left_mm * ppx)), int(min(mask.shape[1], x_t0 + right_mm * ppx))
    ya = int(max(0, row.baseline_y - above_mm * ppy))
    yb = int(min(mask.shape[0], row.baseline_y + below_mm * ppy))
    if xb - xa < 3 * ppx or yb <= ya:
        return None
    sub = mask[ya:yb, xa:xb]
    tall = sub.sum(axis=0) >= cfg.cal_stroke_mm * ppy  # columns of the pulse's vertical strokes
    strokes = _clusters(np.nonzero(tall)[0])
    # Pairs of strokes a plausible width apart (0.2 s at 25 mm/s is 5 mm); nearest t = 0 wins.
    w_lo, w_hi = cfg.cal_width_range_mm
    pairs = [(l0, r1) for i, (l0, _) in enumerate(strokes) for (_, r1) in strokes[i + 1:]
             if w_lo <= (r1 - l0) / ppx <= w_hi]
    if not pairs:
        return None
    # A tall QRS right after the pulse makes a stroke too: prefer the pulse's own width.
    cal_width_mm = cfg.cal_pulse_s * paper.speed_mm_s
    left, right = min(pairs, key=lambda p: (round(abs((p[1] - p[0]) / ppx - cal_width_mm)), -p[1]))
    width_mm = (right - left) / ppx
    mid = sub[:, left + 2:right - 1]
    top_y = ya + _median_run_centre(mid, first=True)
    bottom = max(np.nonzero(sub[:, left])[0][-1], np.nonzero(sub[:, right])[0][-1])
    # The 0 mV level is the centre of the flat ink just outside the strokes (pulse foot or trace),
    # falling back to the strokes' bottom when nothing is drawn there.
    # The pulse rises from 0 mV at its left stroke; right of it the trace may start at once
    # (a QRS), so a right foot is used only when the left one is missing and it lies level
    # (``cfg.cal_foot_tol_mm``) with the left stroke's bottom pulled in by half the pen (the flat
    # top's thickness); otherwise that bottom is the 0 mV level.
    def feet_centres(cols):
        found = [_run_centre_near(sub[:, c], bottom, 1.0 * ppy) for c in cols
                 if 0 <= c < sub.shape[1]]
        return [c for c in found if c is not None]

    centres = feet_centres((left - 2, left - 3))
    if not centres:
        centres = feet_centres((right + 2, right + 3))
        pen = _pen_width(mid[max(0, int(top_y - ya - 2 * ppy)):int(top_y - ya + 2 * ppy)])
        runs = _ink_runs(sub[:, left])  # the stroke: its column's longest ink run
        stroke = float(max(runs, key=lambda r: r[1] - r[0])[1]) - 0.5 * (pen - 1)
        if not centres or abs(float(np.median(centres)) - stroke) > cfg.cal_foot_tol_mm * ppy:
            centres = [stroke]
    base_y = ya + (float(np.median(centres)) if centres else float(bottom))
    height_mm = (base_y - top_y) / ppy
    if height_mm < cfg.cal_min_height_mm:
        return None
    return {"x0": float(xa + left), "x1": float(xa + right), "top_y": top_y, "base_y": base_y,
            "height_mm": height_mm, "width_mm": float(width_mm),
            "mm_per_mv": height_mm / cfg.cal_pulse_mv}


def axis_after_pulses(mask: np.ndarray, rows: list[RowInfo], grid: GridInfo, x_start: float,
                      x_end: float, *, cfg: PreprocessConfig | None = None,
                      paper: PaperConfig = PaperConfig()) -> tuple[float, float]:
    """``(x_start, x_end)`` px, moved right past the calibration pulses when the ink window put
    t = 0 on them; unchanged otherwise.

    The time axis is the window of ink as wide as the record; where a row's last millimetres are
    lost (a photo's dark or cut edge), it slides left onto the pulses, and every lead reads up to
    a pulse width (0.2 s) late. That shows as no pulse found left of ``x_start`` but pulses one
    pulse width further right, on at least two rows, their right strokes within 1 mm. The trace
    starts after them: at the first ink past a row's pulse (``_trace_start``, on pages that
    leave a gap) or else at the right stroke. Where it slid only part way, the pulses are found
    but their right strokes (at least two rows, within 1 mm) reach past ``x_start``; the axis
    then starts at those strokes. Either way it moves only by more than
    ``cfg.pulse_slide_mm``. (Moving it whenever a trace start lay past the pulses also moved it
    on ECG-Image-Kit pages, whose QRS beside the pulse looks like one.)
    """
    cfg = PreprocessConfig() if cfg is None else cfg
    ppx = grid.px_per_mm_x
    cals = [detect_calibration(mask, r, grid, x_start, cfg=cfg, paper=paper) for r in rows]
    if any(cals):
        # Pulses left of t = 0, or reaching past it: the trace starts at their right strokes at
        # the earliest, so an axis left of those slid part way onto them.
        right = np.array([c["x1"] for c in cals if c is not None])
        x0 = float(np.median(right)) - cfg.ink_lead_mm[0] * ppx
        if right.size < 2 or np.ptp(right) > ppx or x0 - x_start <= cfg.pulse_slide_mm * ppx:
            return x_start, x_end
        # The search ends cal_search_mm[1] right of x_start and may have cut the strokes short.
        wider = [detect_calibration(mask, r, grid, x0, cfg=cfg, paper=paper) for r in rows]
        again = np.array([c["x1"] for c in wider if c is not None])
        if again.size >= 2 and np.ptp(again) <= ppx:
            x0 = max(x0, float(np.median(again)) - cfg.ink_lead_mm[0] * ppx)
        return x0, x0 + (x_end - x_start)
    shifted = x_start + cfg.cal_pulse_s * paper.speed_mm_s * ppx
    cals = [detect_calibration(mask, r, grid, shifted, cfg=cfg, paper=paper) for r in rows]
    right = np.array([c["x1"] for c in cals if c is not None])
    if right.size < 2 or np.ptp(right) > ppx:
        return x_start, x_end
    band = [_row_ink(mask, r.baseline_y, grid, cfg.trace_band_mm[1]) for r in rows]
    starts = [_trace_start(b, b, c, float(np.median(right)), grid, cfg)
              for b, c in zip(band, cals) if c is not None]
    starts = [v + cfg.ink_lead_mm[0] * ppx for v in starts if np.isfinite(v)]
    x0 = float(np.median(starts)) if starts else float(np.median(right)) - cfg.ink_lead_mm[0] * ppx
    if x0 - x_start <= cfg.pulse_slide_mm * ppx:
        return x_start, x_end
    return x0, x0 + (x_end - x_start)


# --------------------------------------------------------------------------------------------
# Per-row geometry under perspective: slope and time axis
# --------------------------------------------------------------------------------------------

def row_slope(strength: np.ndarray, y: float, x_start: float, x_end: float, grid: GridInfo,
              spacing: float | None = None, *, cfg: PreprocessConfig | None = None) -> float:
    """dy/dx (px/px) of the horizontal grid lines in a band around ``y`` (px), within
    ``cfg.row_slope_max_deg``.

    The projection-profile search of ``ecgnb.straighten.estimate_skew`` on the grid evidence
    ``strength`` of the band between ``x_start`` and ``x_end`` (px), +-``cfg.row_band_frac`` of
    the row ``spacing`` (px) high (16 mm without one). 0 when the band holds too little grid to
    tell.
    """
    cfg = PreprocessConfig() if cfg is None else cfg
    max_deg = cfg.row_slope_max_deg
    half = cfg.row_band_frac * spacing if spacing else 16 * grid.px_per_mm_y
    ya, yb = int(max(0, y - half)), int(min(strength.shape[0], y + half))
    xa, xb = int(max(0, x_start)), int(min(strength.shape[1], x_end))
    band = strength[ya:yb, xa:xb]
    if band.size == 0 or not grid.found:
        return 0.0
    ys, xs = np.nonzero(band > max(float(np.quantile(band, 0.85)), 1e-3))
    if ys.size < 1000:
        return 0.0
    w = band[ys, xs].astype(np.float64)
    n_bins = int(band.shape[0] + band.shape[1] * np.tan(np.radians(max_deg)) * 2 + 4)
    deg = search_slope(ys.astype(np.float64), xs.astype(np.float64), w, n_bins,
                       -max_deg, max_deg, 0.02)
    return float(np.tan(np.radians(deg)))


def _robust_line(y: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``v`` replaced by a Theil-Sen line fit over ``y`` (median of pairwise slopes)."""
    i, j = np.triu_indices(y.size, 1)
    slope = float(np.median((v[j] - v[i]) / (y[j] - y[i])))
    return np.median(v - slope * y) + slope * y


def _fit_rows(ys: np.ndarray, v: np.ndarray, tol: float) -> np.ndarray | None:
    """Line through ``v`` over ``ys`` (px) evaluated at every row, ignoring outliers; or None.

    Every pair of finite values proposes a line; the one that most others agree with (within
    ``tol`` px) wins and is refitted by least squares on its inliers. None when fewer than
    three (or all rows, if fewer) or fewer than all but one agree: no shared straight edge.
    """
    ok = np.flatnonzero(np.isfinite(v))
    if ok.size < 2:
        return None
    best = ok[:0]
    for i, j in zip(*np.triu_indices(ok.size, 1)):
        a, b = ok[i], ok[j]
        slope = (v[b] - v[a]) / (ys[b] - ys[a])
        inl = ok[np.abs(v[ok] - (v[a] + slope * (ys[ok] - ys[a]))) <= tol]
        if inl.size > best.size:
            best = inl
    if best.size < max(min(3, ys.size), ok.size - 1):  # two points always fit a line: want 3
        return None
    return np.polyval(np.polyfit(ys[best], v[best], 1), ys)


def _trace_start(ink: np.ndarray, tall: np.ndarray, cal: dict | None, x_start: float,
                 grid: GridInfo, cfg: PreprocessConfig) -> float:
    """First column (px) of a row's trace: ink after an empty gap right of the pulse; NaN if none.

    ``ink`` / ``tall``: per-column ink within the narrow / tall band of ``cfg.trace_band_mm``
    around the baseline. The gap must be empty in ``tall``: where the trace abuts the pulse, a
    QRS leaving the narrow band is no gap. Searched from the pulse's right stroke to
    ``cfg.trace_gap_max_mm`` past it (the pulse's foot may run on for a mm or two; farther on, a
    gap is a QRS leaving the band); the trace must then be inked for most of the next 2 mm, and
    lie within ``cfg.row_end_tol_mm`` of the page's ``x_start``. Without a pulse, or when foot
    and trace touch (no gap), the start is not observable.
    """
    if cal is None:
        return np.nan
    ppx = grid.px_per_mm_x
    a = int(cal["x1"]) + 1
    b = int(min(ink.size - int(2 * ppx), cal["x1"] + cfg.trace_gap_max_mm * ppx))
    gap = max(2, int(round(0.3 * ppx)))
    for c in range(a + gap, b):
        if ink[c] and not tall[c - gap:c].any() and ink[c:c + int(2 * ppx)].mean() > 0.8:
            return float(c) if abs(c - x_start) < cfg.row_end_tol_mm * ppx else np.nan
    return np.nan


def _row_ends(mask, strength, row, x_start, x_end, grid, spacing, cfg: PreprocessConfig,
              paper: PaperConfig) -> tuple[float, float, float]:
    """``(first, last, px_per_mm_x)`` of one row: its trace's first and last ink columns (px,
    NaN when not found) and the px/mm of the grid in its band (the page's if implausible)."""
    ppx = grid.px_per_mm_x
    a = int(max(0, row.baseline_y - cfg.row_band_frac * spacing))
    b = int(row.baseline_y + cfg.row_band_frac * spacing)
    est, _ = grid_period(strength[a:b, int(max(0, x_start)):int(x_end)].mean(axis=0),
                         cfg=cfg, paper=paper)
    scale = est if abs(est / ppx - 1) < cfg.row_scale_tol else ppx
    # The whole row band: a trace that starts or ends far from its baseline (a QRS, a wandering
    # baseline) still has its first and last ink there.
    ink = _row_ink(mask, row.baseline_y, grid, cfg.row_band_frac * spacing / grid.px_per_mm_y)
    first = _trace_start(ink, ink, row.calibration, x_start, grid, cfg)
    if cfg.end_run:
        return first, _trace_end(ink, x_end, grid, cfg), scale
    tol = cfg.row_end_tol_mm * ppx
    inked = np.flatnonzero(ink[:int(x_end + tol) + 1])
    last = float(inked[-1]) if inked.size and inked[-1] > x_end - tol else np.nan
    return first, last, scale


def _trace_end(ink: np.ndarray, x_end: float, grid: GridInfo, cfg: PreprocessConfig) -> float:
    """Last column (px) of a row's trace in its per-column ``ink``: the last inked column within
    ``cfg.row_end_tol_mm`` of the page's ``x_end`` that ends 2 mm inked for the most part (what
    ``_trace_start`` asks of a start); NaN if none. Ink past a gap is other ink: on a copy whose
    grid is as dark as the trace, a stub of the next vertical grid line (a val photocopy's rhythm
    strip ran 2.4 mm long, its last beats 40 ms late)."""
    ppx = grid.px_per_mm_x
    run, tol = int(2 * ppx), cfg.row_end_tol_mm * ppx
    lo, hi = int(max(run, x_end - tol)), int(min(ink.size - 1, x_end + tol))
    for c in range(hi, lo, -1):
        if ink[c] and ink[c - run + 1:c + 1].mean() > 0.8:
            return float(c)
    return np.nan


def _shared_time_axis(rows, first: np.ndarray, last: np.ndarray, x_start: float, x_end: float,
                      sample_px: float, near: float, width_tol: float) -> None:
    """On a flat page, give every row one time axis from the rows' first and last samples (px,
    NaN where not found): t = 0 at the median first sample, t = duration one sample period
    (``sample_px``) after the median last one.

    The ends of the rows' own traces are sharper than the page's ink window, which a trace
    starting or ending off its baseline moves, and their distance measures the time scale along
    the rows themselves. Used only when both ends are found on two rows or more, each within
    ``near / 2`` px of the other rows' (a flat page's rows start and end together), their distance
    matches the page's span within ``width_tol`` (relative) and the start lies within ``near``
    px of ``x_start``; otherwise the page's axis stays.
    """
    starts, ends = first[np.isfinite(first)], last[np.isfinite(last)]
    if min(starts.size, ends.size) < 2 or max(np.ptp(starts), np.ptp(ends)) > 0.5 * near:
        return      # the rows disagree: some end is another ink's (a thresholded copy's grid)
    x0, x1 = float(np.median(starts)), float(np.median(ends)) + sample_px
    if abs((x1 - x0) / (x_end - x_start) - 1) >= width_tol or abs(x0 - x_start) >= near:
        return
    for r in rows:
        r.x_start, r.x_end = x0, x1


def _row_time_axes(mask, strength, rows, x_start, x_end, grid, spacing, cfg: PreprocessConfig,
                   paper: PaperConfig) -> None:
    """Set each row's own ``x_start``/``x_end`` (px): perspective scales and shifts rows apart.

    Each row's trace has two sharp ends in its ink: the start (first ink after the gap that
    follows the calibration pulse) and the end (last ink, within ``cfg.row_end_tol_mm`` of the
    page's ``x_end``); ink ends are ``cfg.ink_lead_mm`` outside the first and last samples. A
    page's perspective makes both vary linearly with y, so each is smoothed by a robust line
    over the rows, which also overrides a row whose end is hidden or extended by other ink.
    A missing start (hidden gap) comes from the end and the row's grid px/mm, and vice versa;
    on a page without calibration pulses rows keep the page's axis (an end alone cannot tell a
    perspective shift from other ink there).
    """
    ppx = grid.px_per_mm_x
    ys = np.array([r.baseline_y for r in rows])
    width_mm = (x_end - x_start) / ppx
    first, last, scale = np.array([_row_ends(mask, strength, r, x_start, x_end, grid, spacing,
                                             cfg, paper) for r in rows]).T
    # The pen (0.25 mm) reaches past the first and last samples (measured on clean pages).
    first = first + cfg.ink_lead_mm[0] * ppx
    last = last - cfg.ink_lead_mm[1] * ppx
    scale = _robust_line(ys, scale)
    starts = _fit_rows(ys, first, cfg.row_fit_tol_mm * ppx)
    ends = _fit_rows(ys, last, cfg.row_fit_tol_mm * ppx)
    if starts is None and (ends is None or not any(r.calibration for r in rows)):
        return
    if starts is None:
        starts = ends - width_mm * scale
    if ends is None:
        ends = starts + width_mm * scale
    if max(np.abs(starts - x_start).max(), np.abs(ends - x_end).max()) < cfg.row_min_shift_mm * ppx:
        _shared_time_axis(rows, first, last, x_start, x_end, paper.speed_mm_s * ppx / cfg.trace_fs,
                          cfg.row_min_shift_mm * ppx, cfg.row_width_tol)
        return
    near = cfg.row_shift_tol_mm * ppx  # farther off, an end found is some other ink's (another layout)
    for r, xs, xe, s in zip(rows, starts, ends, scale):
        if (abs((xe - xs) / (width_mm * s) - 1) < cfg.row_width_tol
                and abs(xs - x_start) < near and abs(xe - x_end) < near):
            r.x_start, r.x_end = float(xs), float(xe)


# --------------------------------------------------------------------------------------------
# Panels and the whole layout
# --------------------------------------------------------------------------------------------

def _panel_boxes(layout, rows, x_start, x_end, duration_s, height) -> list[PanelBox]:
    """One box per panel of ``layout``: columns split the time axis evenly."""
    out = []
    for p in panels(layout, duration_s):
        r = rows[p.row]
        xs = x_start if r.x_start is None else r.x_start
        xe = x_end if r.x_end is None else r.x_end
        span = (xe - xs) / p.n_cols
        x0 = xs + p.col * span
        out.append(PanelBox(lead=p.lead, row=p.row, col=p.col, rhythm=p.rhythm, t0_s=p.t0_s,
                            t1_s=p.t1_s, x0=x0, x1=x0 + span, y0=r.y0, y1=r.y1,
                            baseline_y=float(r.baseline_at(x0)), slope=r.slope))
    return out


def _detect_auto(mask, grid, duration_s, strength, cfg: PreprocessConfig,
                 paper: PaperConfig) -> LayoutInfo:
    """Try every known layout; keep the most confident (first in ``LAYOUTS`` on ties)."""
    results: dict[str, LayoutInfo] = {}
    errors = []
    for name in LAYOUTS:
        try:
            results[name] = detect_layout(mask, grid, name, duration_s, strength,
                                          cfg=cfg, paper=paper, rhythm_optional=False)
        except LayoutError as exc:
            errors.append(f"{name}: {exc}")
    if not results:
        raise LayoutError("no known layout fits this page:\n  " + "\n  ".join(errors))
    scores = {k: v.confidence for k, v in results.items()}
    best = max(results, key=lambda k: (round(scores[k], 2), -list(LAYOUTS).index(k)))
    out = results[best]
    out.candidates = scores
    return out


def agree_pulses(rows: list[RowInfo], tol_px: float) -> None:
    """Move the 0 mV line of each row whose calibration pulse is more than ``tol_px`` taller or
    shorter than the page's median pulse (px) to its flat top plus that median (in place; with
    at least 3 pulses). One print draws every pulse at one gain, and a pulse's flat top is a
    clean line while its foot is not: the trace may start at once beside it, or a stain or the
    grid may join it (an ECG-Image-Kit page read 1.4 mm, 0.14 mV, off in one row)."""
    cals = [r.calibration for r in rows if r.calibration is not None]
    if len(cals) < 3:
        return
    median = float(np.median([c["base_y"] - c["top_y"] for c in cals]))
    for r in rows:
        c = r.calibration
        if c is not None and abs(c["base_y"] - c["top_y"] - median) > tol_px:
            r.baseline_y = c["top_y"] + median


def _without_rhythm(layout: str) -> str | None:
    """The known layout with ``layout``'s lead grid and no rhythm strip (None if none)."""
    spec = get_layout(layout)
    if not spec["rhythm"]:
        return None
    return next((k for k, v in LAYOUTS.items() if v["grid"] == spec["grid"] and not v["rhythm"]),
                None)


def _lead_rows_only(mask, grid, layout, rows, duration_s, strength, cfg: PreprocessConfig,
                    paper: PaperConfig) -> LayoutInfo | None:
    """``layout`` read without its rhythm strips when only they lack ink (a page cut off below
    its lead rows, or printed without a strip), if the lead rows found then are the ones found
    before; else None. The rhythm strip's leads then come from their short panels only."""
    spec, base = get_layout(layout), _without_rhythm(layout)
    n_grid = len(spec["grid"])
    if base is None or min(r.coverage for r in rows[:n_grid]) < cfg.row_min_coverage:
        return None
    try:
        lay = detect_layout(mask, grid, base, duration_s, strength, cfg=cfg, paper=paper)
    except (LayoutError, ImageError):
        return None
    tol = cfg.row_min_gap_mm * grid.px_per_mm_y
    if any(abs(a.baseline_y - b.baseline_y) > tol for a, b in zip(lay.rows, rows)):
        return None
    cover = [round(r.coverage, 2) for r in rows[n_grid:]]
    lay.notes.append(f"no rhythm strip under the lead rows (ink coverage {cover}): read as "
                     f"{base}, so {', '.join(spec['rhythm'])} only from "
                     "short panels; check that the page is whole")
    return lay


def detect_layout(mask: np.ndarray, grid: GridInfo, layout: str = "3x4+1",
                  duration_s: float = 10.0, strength: np.ndarray | None = None, *,
                  cfg: PreprocessConfig | None = None,
                  paper: PaperConfig = PaperConfig(), rhythm_optional: bool = True) -> LayoutInfo:
    """Find the rows and panels of ``layout`` on an upright trace ``mask`` of a ``duration_s``
    (s) record.

    ``layout="auto"`` tries every layout in ``ecgnb.layouts.LAYOUTS`` and keeps the most
    confident (ties go to the earlier, more common, entry). Raises ``LayoutError`` for an unknown
    layout name or a page whose ink rows do not match, and ``ImageError`` when there is neither a
    grid nor trace-like ink (not an ECG page). ``strength`` (``grid_strength`` of the upright
    page, optional) lets each row's 0 mV line follow its own grid lines' slope: deskew removes
    one rotation, but a page photographed or scanned askew also has perspective.
    ``rhythm_optional``: a layout whose rhythm strips alone lack ink is read without them
    (``_lead_rows_only``, with a note) rather than refused.
    """
    cfg = PreprocessConfig() if cfg is None else cfg
    if layout == "auto":
        return _detect_auto(mask, grid, duration_s, strength, cfg, paper)
    try:
        get_layout(layout)
    except ValueError as exc:
        raise LayoutError(str(exc)) from None
    cands = row_candidates(mask, grid, cfg=cfg)
    if not cands and not grid.found:
        raise ImageError("not an ECG page: no grid and no trace-like ink found")
    n = n_rows(layout)
    if len(cands) < n:
        raise LayoutError(f"layout {layout!r} needs {n} trace rows but the page shows "
                          f"{len(cands)}; try layout='auto' or check the image")
    rows = _pick_rows(mask, grid, cands, n, cfg)
    x_start, x_end = _time_axis([_row_ink(mask, r.baseline_y, grid, cfg.time_axis_half_mm)
                                 for r in rows], grid, duration_s, cfg, paper)
    x_start, x_end = axis_after_pulses(mask, rows, grid, x_start, x_end, cfg=cfg, paper=paper)
    spacing = float(np.median(np.diff([r.baseline_y for r in rows]))) if n > 1 else None
    for r in rows:
        r.coverage = _coverage(mask, r.baseline_y, x_start, x_end, grid, cfg)
        r.calibration = detect_calibration(mask, r, grid, x_start, cfg=cfg, paper=paper)
        r.x_ref = 0.5 * (x_start + x_end)  # the ink peak is an average over the whole row
        if r.calibration is not None:
            r.baseline_y = r.calibration["base_y"]
            r.x_ref = 0.5 * (r.calibration["x0"] + r.calibration["x1"])
    if cfg.pulse_consensus:
        agree_pulses(rows, cfg.cal_height_tol_mm * grid.px_per_mm_y)
    for r in rows:
        if strength is not None:
            r.slope = row_slope(strength, r.baseline_y, x_start, x_end, grid, spacing, cfg=cfg)
    if strength is not None and n > 2:
        _row_time_axes(mask, strength, rows, x_start, x_end, grid, spacing, cfg, paper)
    extra = [c for c in cands if all(abs(c[0] - r.baseline_y) > cfg.row_min_gap_mm * grid.px_per_mm_y
                                     for r in rows)]
    extra_cov = max((_coverage(mask, y, x_start, x_end, grid, cfg) for y, _ in extra), default=0.0)
    # A fully inked row the layout has no place for halves the confidence.
    conf = float(min(r.coverage for r in rows) * (1.0 - 0.5 * (extra_cov > 0.8)))
    if min(r.coverage for r in rows) < cfg.row_min_coverage:
        short = _lead_rows_only(mask, grid, layout, rows, duration_s, strength, cfg, paper) \
            if rhythm_optional else None
        if short is not None:
            return short
        raise LayoutError(f"page does not look like layout {layout!r}: row ink coverage "
                          f"{[round(r.coverage, 2) for r in rows]}; try layout='auto'")
    if not grid.found and conf < cfg.page_min_confidence:
        raise ImageError("not an ECG page: no grid and no continuous trace rows found")
    return LayoutInfo(name=layout, rows=rows, x_start=x_start, x_end=x_end,
                      panels=_panel_boxes(layout, rows, x_start, x_end, duration_s, mask.shape[0]),
                      confidence=conf)
