"""Classical page preprocessing: load, deskew, find the grid, separate the trace, find the layout.

Every step is one small function so a notebook can show each before/after. Conventions:
``image`` is ``(H, W, 3)`` uint8 RGB; masks are ``(H, W)`` bool (True = trace ink); angles are
degrees, counter-clockwise positive (as ``cv2.getRotationMatrix2D``); lengths are px unless a name
says ``_mm``. The printed scale is the standard 25 mm/s and 10 mm/mV (``ecgnb.config.PaperConfig``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .config import PaperConfig
from .errors import ImageError, LayoutError
from .io import read_image
from .layouts import LAYOUTS, get_layout, n_rows, panels

PAPER = PaperConfig()
MAX_SKEW_DEG = 10.0          # deg, largest rotation estimate_skew searches
ROW_SLOPE_MAX_DEG = 0.6      # deg, largest per-row tilt left after deskew (perspective)
ROW_END_TOL_MM = 4.0         # mm, how far a row's trace end may lie from the page's
ROW_SHIFT_TOL_MM = 5.0       # mm, largest shift of a row's time axis from the page's
ROW_FIT_TOL_MM = 0.3         # mm, rows' trace ends this close to one straight line agree
ROW_MIN_SHIFT_MM = 0.3       # mm, rows closer than this to the page's time axis keep it
ROW_WIDTH_TOL = 0.01         # largest relative disagreement of a row's ends and its grid px/mm
ROW_SCALE_TOL = 0.02         # largest relative px/mm difference of a row from the page's
TRACE_GAP_MAX_MM = 4.0       # mm past the pulse's right stroke where a row's trace may start
TIME_AXIS_HALF_MM = 4.0      # mm either side of a row's baseline whose ink marks the time axis
INK_LEAD_MM = (0.22, 0.145)  # mm the trace's ink reaches before its first / after its last sample
SKEW_BORDER_FRAC = 0.08      # share of each side ignored by estimate_skew (scan edges, margins)
PX_PER_MM_RANGE = (2.0, 24.0)  # px/mm, plausible scan resolutions (about 50-600 dpi)
TRACE_DARKNESS = 0.45        # relative darkness (0..1) above which a grey/black pixel is trace ink
CAL_FOOT_TOL_MM = 0.5        # mm, a right foot farther from the left stroke's bottom is trace
CAL_WIDTH_MM = 5.0           # mm, calibration pulse width (0.2 s at 25 mm/s)
GRID_CONFIDENCE_MIN = 0.25   # below this the grid is reported as not found


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------

def load_image(path: str | Path) -> np.ndarray:
    """Read ``path`` as an RGB ``(H, W, 3)`` uint8 image.

    Raises ``MissingInputError`` if it does not exist and ``ImageError`` if it is corrupt,
    not an image, or too small to hold an ECG page (under 200 px on a side).
    """
    image = read_image(Path(path))
    if min(image.shape[:2]) < 200:
        raise ImageError(f"{path}: {image.shape[1]}x{image.shape[0]} px is too small for an ECG "
                         "page; scan at 100 dpi or more")
    return image


# --------------------------------------------------------------------------------------------
# Darkness maps: the building block of skew, grid and trace detection
# --------------------------------------------------------------------------------------------

def _closing_kernel(shape: tuple[int, ...]) -> int:
    """Odd kernel size (px) wider than any trace or grid line: about 1/60 of the short side.

    Fixed from the image size because px/mm is not known yet (3.6 mm on a 200-dpi letter page):
    wider than a dense, noisy trace band (which a narrower kernel would mistake for paper), and
    narrower than wrinkle shadows, which must stay in the background.
    """
    k = max(7, int(round(min(shape[:2]) / 60)))
    return k | 1


def darkness(image: np.ndarray) -> np.ndarray:
    """Per-channel relative darkness ``1 - I / background`` in 0..1, ``(H, W, 3)`` float32.

    The background is a grey closing (max then min filter) of each channel: thin dark lines vanish
    from it while paper colour, shading and wrinkle shadows stay, so the ratio is contrast against
    the local paper, not absolute brightness.
    """
    k = _closing_kernel(image.shape)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    img = image.astype(np.float32)
    bg = cv2.morphologyEx(img, cv2.MORPH_CLOSE, kernel)
    return np.clip(1.0 - img / np.maximum(bg, 1.0), 0.0, 1.0)


def channel_min(a: np.ndarray) -> np.ndarray:
    """``a.min(axis=2)`` for 3 channels, several times faster than numpy's strided reduction."""
    return np.minimum(np.minimum(a[..., 0], a[..., 1]), a[..., 2])


def channel_max(a: np.ndarray) -> np.ndarray:
    """``a.max(axis=2)`` for 3 channels (see ``channel_min``)."""
    return np.maximum(np.maximum(a[..., 0], a[..., 1]), a[..., 2])


def grid_strength(dark: np.ndarray) -> np.ndarray:
    """``(H, W)`` float32 map of grid-line evidence from a ``darkness`` map.

    A coloured grid is dark in some channels but not all (red: dark in G and B, not in R); the
    spread ``max - min`` over channels measures that. For grey grids the spread is 0, so faint
    achromatic lines (darker than noise, lighter than trace ink) count too.
    """
    dmax, dmin = channel_max(dark), channel_min(dark)
    colour = dmax - dmin
    grey = np.where((dmin > 0.08) & (dmin < TRACE_DARKNESS), dmin, 0.0)
    return np.maximum(colour, grey).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Skew
# --------------------------------------------------------------------------------------------

def _profile_sharpness(ys: np.ndarray, xs: np.ndarray, w: np.ndarray, slope: float,
                       n_bins: int) -> float:
    """Sum of squared row sums after shearing points by ``slope`` (px/px): high when lines align."""
    yy = np.round(ys - xs * slope).astype(np.int64)
    yy -= yy.min()
    h = np.bincount(yy, weights=w, minlength=n_bins)
    return float(np.dot(h, h))


def _search_slope(ys, xs, w, n_bins, lo_deg, hi_deg, step_deg) -> float:
    angles = np.arange(lo_deg, hi_deg + step_deg / 2, step_deg)
    scores = [_profile_sharpness(ys, xs, w, np.tan(np.radians(a)), n_bins) for a in angles]
    i = int(np.argmax(scores))
    if 0 < i < len(angles) - 1:  # parabolic refinement between the three best steps
        s0, s1, s2 = scores[i - 1], scores[i], scores[i + 1]
        den = s0 - 2 * s1 + s2
        if den < 0:
            return float(angles[i] + 0.5 * step_deg * (s0 - s2) / den)
    return float(angles[i])


def estimate_skew(gray: np.ndarray, max_deg: float = MAX_SKEW_DEG) -> float:
    """Rotation of the page content in degrees (counter-clockwise positive), within ``max_deg``.

    ``gray`` is a ``(H, W)`` line-evidence map (any dark-line image works; ``deskew`` passes
    ``grid_strength`` plus trace ink) or an ``(H, W, 3)`` RGB image. Projection-profile method:
    shear the strongest line pixels by each candidate slope and keep the slope whose horizontal
    projection is sharpest (grid lines and trace baselines all collapse into few rows), coarse
    0.5 deg steps then 0.05 deg steps.
    """
    if gray.ndim == 3:
        gray = _line_evidence(cv2.resize(gray, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))
    else:
        gray = cv2.resize(gray, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    small = _blank_border(gray, SKEW_BORDER_FRAC)
    thr = np.quantile(small, 0.9)
    ys, xs = np.nonzero(small > max(thr, 1e-3))
    if ys.size < 100:
        return 0.0
    if ys.size > 300_000:  # subsample: the answer depends on line directions, not pixel counts
        keep = np.random.default_rng(0).choice(ys.size, 300_000, replace=False)
        ys, xs = ys[keep], xs[keep]
    w = small[ys, xs].astype(np.float64)
    n_bins = int(small.shape[0] + small.shape[1] * np.tan(np.radians(max_deg)) * 2 + 4)
    ys, xs = ys.astype(np.float64), xs.astype(np.float64)
    coarse = _search_slope(ys, xs, w, n_bins, -max_deg, max_deg, 0.5)
    fine = _search_slope(ys, xs, w, n_bins, coarse - 0.6, coarse + 0.6, 0.05)
    # A line rotated counter-clockwise rises to the right: y decreases with x (negative slope).
    return -fine


def _blank_border(evidence: np.ndarray, frac: float) -> np.ndarray:
    """Copy of ``evidence`` ``(H, W)`` with a band of ``frac`` of each side set to 0.

    Scan framing (dark margin bands, the scanner lid around a tilted page, the page's own edge)
    draws long, perfectly axis-aligned, high-contrast edges there; left in, they outvote the
    grid and pin the skew estimate at 0 deg. The printed grid and traces fill the page centre.
    """
    out = evidence.copy()
    by, bx = int(frac * out.shape[0]), int(frac * out.shape[1])
    out[:by], out[out.shape[0] - by:], out[:, :bx], out[:, out.shape[1] - bx:] = 0, 0, 0, 0
    return out


def _line_evidence(image: np.ndarray) -> np.ndarray:
    """Grid evidence plus trace ink, ``(H, W)`` float32: what skew estimation aligns."""
    dark = darkness(image)
    return np.maximum(grid_strength(dark), channel_min(dark))


def rotate(image: np.ndarray, angle_deg: float) -> np.ndarray:
    """Rotate ``image`` counter-clockwise by ``angle_deg`` about its centre, same size.

    Corners filled by replicating the border, so no black wedges look like ink.
    """
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle_deg, 1.0)
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def deskew(image: np.ndarray, max_deg: float = MAX_SKEW_DEG) -> tuple[np.ndarray, float]:
    """Return ``(upright image, angle)``: ``angle`` (deg, CCW) is the skew that was removed.

    Rotation only; perspective is not corrected here (the grid period is measured separately
    along x and y, which absorbs mild anisotropic scaling, and ``detect_layout`` gives each row
    its own 0 mV slope and time axis).
    """
    # Half resolution is plenty for line directions and 4x cheaper.
    angle = estimate_skew(image, max_deg)
    if abs(angle) < 0.02:  # below what the search resolves: avoid a needless resampling blur
        return image, 0.0
    return rotate(image, -angle), angle


# --------------------------------------------------------------------------------------------
# Grid
# --------------------------------------------------------------------------------------------

@dataclass
class GridInfo:
    """The printed grid, measured from its own periodicity (never from the dpi)."""

    px_per_mm: float            # px/mm, mean of the x and y estimates (0.2 * major spacing)
    px_per_mm_x: float          # px/mm along x (time axis)
    px_per_mm_y: float          # px/mm along y (amplitude axis)
    minor_px: float             # px, minor line spacing (1 mm)
    major_px: float             # px, major line spacing (5 mm)
    colour: tuple[int, int, int]  # RGB of the grid lines (median of the strongest grid pixels)
    confidence: float           # 0..1: periodicity strength x agreement of the x and y estimates
    found: bool                 # False: no usable grid; px_per_mm is then a 200-dpi fallback
    notes: list[str] = field(default_factory=list)  # why confidence is low, if it is


def _autocorr(profile: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation (lag 0 = 1) of a 1-D profile after removing its slow trend."""
    p = profile.astype(np.float64)
    trend = cv2.blur(p.reshape(1, -1), (61, 1)).ravel()  # 61 px: well above any minor period
    p = p - trend
    n = p.size
    f = np.fft.rfft(p, 2 * n)
    ac = np.fft.irfft(f * np.conj(f))[:n]
    return ac / ac[0] if ac[0] > 0 else np.zeros(n)


def _peak(ac: np.ndarray, lag: float, tol: float) -> tuple[float, float]:
    """Sub-pixel position and height of the highest autocorrelation peak within ``lag +- tol``."""
    lo, hi = max(1, int(np.floor(lag - tol))), min(ac.size - 2, int(np.ceil(lag + tol)))
    if hi <= lo:
        return lag, 0.0
    i = lo + int(np.argmax(ac[lo:hi + 1]))
    y0, y1, y2 = ac[i - 1], ac[i], ac[i + 1]
    den = y0 - 2 * y1 + y2
    off = 0.5 * (y0 - y2) / den if den < 0 else 0.0
    return i + float(np.clip(off, -0.5, 0.5)), float(y1)


def grid_period(profile: np.ndarray) -> tuple[float, float]:
    """``(px_per_mm, strength)`` from one projection profile of the grid-evidence map.

    The minor period is the smallest strong autocorrelation peak in the plausible range. The
    estimate is then refined on far multiples of the major (5 mm) period, where a 0.1 px peak
    error is a tiny fraction. ``strength`` is the autocorrelation at the major period.
    """
    ac = _autocorr(profile)
    lo, hi = PX_PER_MM_RANGE
    lags = np.arange(int(lo), min(int(hi * 5) + 2, ac.size - 2))
    is_peak = (ac[lags] > ac[lags - 1]) & (ac[lags] >= ac[lags + 1]) & (ac[lags] > 0.1)
    cand = lags[is_peak]
    if cand.size == 0:
        return 0.0, 0.0
    best = ac[cand].max()
    first = float(cand[ac[cand] >= 0.35 * best][0])
    # Is ``first`` the minor period or already the major one (faint minor lines)? A period over
    # the largest plausible px/mm must be major; otherwise look for a minor peak at first / 5.
    minor = first
    if first > hi:
        minor = first / 5
    elif first / 5 >= lo:
        p5, h5 = _peak(ac, first / 5, 0.15 * first / 5)
        if h5 - ac[int(round(first / 10))] > 0.03:
            minor = p5
    major, strength = _peak(ac, 5 * minor, 0.1 * 5 * minor)
    if not lo <= minor <= hi:
        return 0.0, 0.0
    # Refine on the farthest whole multiple of the major period that fits in a quarter profile.
    k = max(1, int(ac.size / 4 // major))
    far, _ = _peak(ac, k * major, 0.3 * minor)
    return far / (k * PAPER.major_mm), strength


def detect_grid(image: np.ndarray, dark: np.ndarray | None = None) -> GridInfo:
    """Measure the grid of an upright page: px/mm along x and y, line colour and confidence.

    px/mm comes from the autocorrelation of the grid-evidence map projected on each axis. With no
    periodic grid (grey, faint, absent) ``found`` is False, confidence is low and px/mm falls back to
    a 200-dpi page so callers can still proceed, and ``notes`` says so. ``dark`` is
    ``darkness(image)`` when the caller already has it.
    """
    g = grid_strength(darkness(image) if dark is None else dark)
    ppm_x, sx = grid_period(g.mean(axis=0))
    ppm_y, sy = grid_period(g.mean(axis=1))
    notes: list[str] = []
    if ppm_x > 0 and ppm_y > 0:
        agree = max(0.0, 1.0 - abs(ppm_x - ppm_y) / max(ppm_x, ppm_y) / 0.05)  # 5% -> 0
        conf = float(np.clip(min(sx, sy) / 0.3, 0, 1) * agree)
    else:
        conf = 0.0
    found = conf >= GRID_CONFIDENCE_MIN
    if not found:
        notes.append("no periodic grid found; assuming 200 dpi (7.87 px/mm)")
        ppm_x = ppm_y = PAPER.px_per_mm
    ppm = 0.5 * (ppm_x + ppm_y)
    return GridInfo(px_per_mm=ppm, px_per_mm_x=ppm_x, px_per_mm_y=ppm_y, minor_px=ppm,
                    major_px=5 * ppm, colour=_grid_colour(image, g), confidence=conf,
                    found=found, notes=notes)


def _grid_colour(image: np.ndarray, g: np.ndarray) -> tuple[int, int, int]:
    """Median RGB of the 2% strongest grid-evidence pixels."""
    thr = np.quantile(g[::4, ::4], 0.98)
    sel = image[g >= max(thr, 1e-3)]
    if sel.size == 0:
        return (255, 255, 255)
    return tuple(int(v) for v in np.median(sel, axis=0))


# --------------------------------------------------------------------------------------------
# Trace separation
# --------------------------------------------------------------------------------------------

def remove_grid(image: np.ndarray, grid: GridInfo | None = None,
                threshold: float = TRACE_DARKNESS, dark: np.ndarray | None = None) -> np.ndarray:
    """Boolean ``(H, W)`` trace mask: grid, paper, shading and colour removed, dark ink kept.

    Colour separation: the trace is dark in *every* channel, a coloured grid only in some, so the
    smallest per-channel relative darkness keeps the trace and drops the grid. Relative darkness
    (against the local paper, see ``darkness``) is what makes the threshold adaptive: a trace in a
    wrinkle shadow is as dark relative to its surroundings as one on clean paper. For a grey grid
    (``grid.colour`` achromatic) the threshold is raised above the grid lines' own darkness.
    ``dark`` is ``darkness(image)`` when the caller already has it.
    """
    dark = darkness(image) if dark is None else dark
    dmin = channel_min(dark)
    if grid is not None and grid.found and max(grid.colour) - min(grid.colour) < 40:
        # Grey grid: its lines are dark in all channels too; keep only what is clearly darker.
        line = float(np.quantile(grid_strength(dark)[::4, ::4], 0.99))
        threshold = max(threshold, min(0.8, line + 0.15))
    return dmin > threshold


def denoise(mask: np.ndarray, px_per_mm: float, min_area_mm2: float = 0.15,
            border_mm: float = 2.0) -> np.ndarray:
    """Drop specks and page edges from a trace mask.

    Components (8-connected) under ``min_area_mm2`` (mm^2) are JPEG or scanner noise, not trace
    (a trace piece 0.25 mm wide and 1 mm long is already 0.25 mm^2). Ink within ``border_mm``
    (mm) of the image edge is dropped: there it is the scan's edge or rotation fill, and a long
    straight edge would otherwise look like a perfect flat trace.
    """
    mask = mask.copy()
    b = int(round(border_mm * px_per_mm))
    if b > 0:
        mask[:b], mask[-b:], mask[:, :b], mask[:, -b:] = False, False, False, False
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    min_px = max(2, int(round(min_area_mm2 * px_per_mm ** 2)))
    keep = stats[:, cv2.CC_STAT_AREA] >= min_px
    keep[0] = False  # label 0 is the background
    return keep[labels]


# --------------------------------------------------------------------------------------------
# Layout
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


def _smooth(p: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(p.astype(np.float64).reshape(-1, 1), (1, 0), sigmaX=0,
                            sigmaY=max(sigma, 0.5)).ravel()


def row_candidates(mask: np.ndarray, grid: GridInfo) -> list[tuple[float, float]]:
    """``[(y px, strength)]`` of horizontal ink bands: peaks of the row-wise ink projection.

    Projected over the central 60% of the width, which every layout fills with trace, so page
    borders and margin text do not count. Peaks closer than 8 mm are one row.
    """
    from scipy.signal import find_peaks

    h, w = mask.shape
    prof = _smooth(mask[:, int(0.2 * w):int(0.8 * w)].sum(axis=1), 0.5 * grid.px_per_mm_y)
    peaks, props = find_peaks(prof, distance=max(1, int(8 * grid.px_per_mm_y)),
                              height=0.02 * 0.6 * w)
    return [(float(p), float(hh)) for p, hh in zip(peaks, props["peak_heights"])]


def _row_ink(mask: np.ndarray, y: float, grid: GridInfo, half_mm: float = 4.0) -> np.ndarray:
    """Per-column bool: ink within +-``half_mm`` (mm) of ``y``, where trace spends most time."""
    h = mask.shape[0]
    r = int(half_mm * grid.px_per_mm_y)
    return mask[max(0, int(y) - r):min(h, int(y) + r + 1)].any(axis=0)


def _time_axis(inked_rows: list[np.ndarray], grid: GridInfo,
               duration_s: float) -> tuple[float, float]:
    """``(x_start, x_end)`` px of t = 0 and t = duration on the page.

    The span is fixed by the 25 mm/s paper speed and the measured px/mm; its position is the
    window of that width holding the most inked row-columns (``sum(f - 0.5)``, ``f`` the share of
    rows with ink near their baseline in each column). On ties (a calibration pulse left of the
    trace is inked too) the rightmost window wins, since every row ends with trace.
    """
    f = np.mean(inked_rows, axis=0) - 0.5
    w_exact = duration_s * PAPER.speed_mm_s * grid.px_per_mm_x
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
        x_start = 0.5 * (first + last) - 0.5 * (w_exact - grid.px_per_mm_x * PAPER.speed_mm_s / 500)
        # The pen's ink reaches farther before the first sample than after the last.
        x_start += 0.5 * (INK_LEAD_MM[0] - INK_LEAD_MM[1]) * grid.px_per_mm_x
        if abs(x_start - best) <= 2.0:  # a ragged end (trace gap, label) must not drag the axis
            return float(x_start), float(x_start + w_exact)
    return float(best), float(best + w_exact)


def detect_layout(mask: np.ndarray, grid: GridInfo, layout: str = "3x4+1",
                  duration_s: float = 10.0, strength: np.ndarray | None = None) -> LayoutInfo:
    """Find the rows and panels of ``layout`` on an upright trace ``mask``.

    ``layout="auto"`` tries every layout in ``ecgnb.layouts.LAYOUTS`` and keeps the most
    confident (ties go to the earlier, more common, entry). Raises ``LayoutError`` for an unknown
    layout name or a page whose ink rows do not match, and ``ImageError`` when there is neither a
    grid nor trace-like ink (not an ECG page). ``strength`` (``grid_strength`` of the upright
    page, optional) lets each row's 0 mV line follow its own grid lines' slope: deskew removes
    one rotation, but a page photographed or scanned askew also has perspective.
    """
    if layout == "auto":
        return _detect_auto(mask, grid, duration_s, strength)
    try:
        get_layout(layout)
    except ValueError as exc:
        raise LayoutError(str(exc)) from None
    cands = row_candidates(mask, grid)
    if not cands and not grid.found:
        raise ImageError("not an ECG page: no grid and no trace-like ink found")
    n = n_rows(layout)
    if len(cands) < n:
        raise LayoutError(f"layout {layout!r} needs {n} trace rows but the page shows "
                          f"{len(cands)}; try layout='auto' or check the image")
    rows = _pick_rows(mask, grid, cands, n)
    x_start, x_end = _time_axis([_row_ink(mask, r.baseline_y, grid, TIME_AXIS_HALF_MM)
                                 for r in rows], grid, duration_s)
    spacing = float(np.median(np.diff([r.baseline_y for r in rows]))) if n > 1 else None
    for r in rows:
        r.coverage = _coverage(mask, r.baseline_y, x_start, x_end, grid)
        r.calibration = detect_calibration(mask, r, grid, x_start)
        r.x_ref = 0.5 * (x_start + x_end)  # the ink peak is an average over the whole row
        if r.calibration is not None:
            r.baseline_y = r.calibration["base_y"]
            r.x_ref = 0.5 * (r.calibration["x0"] + r.calibration["x1"])
        if strength is not None:
            r.slope = row_slope(strength, r.baseline_y, x_start, x_end, grid, spacing)
    if strength is not None and n > 2:
        _row_time_axes(mask, strength, rows, x_start, x_end, grid, spacing)
    extra = [c for c in cands if all(abs(c[0] - r.baseline_y) > 8 * grid.px_per_mm_y
                                     for r in rows)]
    extra_cov = max((_coverage(mask, y, x_start, x_end, grid) for y, _ in extra), default=0.0)
    conf = float(min(r.coverage for r in rows) * (1.0 - 0.5 * (extra_cov > 0.8)))
    if min(r.coverage for r in rows) < 0.3:
        raise LayoutError(f"page does not look like layout {layout!r}: row ink coverage "
                          f"{[round(r.coverage, 2) for r in rows]}; try layout='auto'")
    if not grid.found and conf < 0.6:
        raise ImageError("not an ECG page: no grid and no continuous trace rows found")
    return LayoutInfo(name=layout, rows=rows, x_start=x_start, x_end=x_end,
                      panels=_panel_boxes(layout, rows, x_start, x_end, duration_s, mask.shape[0]),
                      confidence=conf)


def row_slope(strength: np.ndarray, y: float, x_start: float, x_end: float, grid: GridInfo,
              spacing: float | None = None, max_deg: float = ROW_SLOPE_MAX_DEG) -> float:
    """dy/dx (px/px) of the horizontal grid lines in a band around ``y`` (px), within ``max_deg``.

    The projection-profile search of ``estimate_skew`` on the grid evidence ``strength`` of the
    band between ``x_start`` and ``x_end`` (px), +-0.4 of the row ``spacing`` (px) high (16 mm
    without one). 0 when the band holds too little grid to tell.
    """
    half = 0.4 * spacing if spacing else 16 * grid.px_per_mm_y
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
    deg = _search_slope(ys.astype(np.float64), xs.astype(np.float64), w, n_bins,
                        -max_deg, max_deg, 0.02)
    return float(np.tan(np.radians(deg)))


def _robust_line(y: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``v`` replaced by a Theil-Sen line fit over ``y`` (median of pairwise slopes)."""
    i, j = np.triu_indices(y.size, 1)
    slope = float(np.median((v[j] - v[i]) / (y[j] - y[i])))
    return np.median(v - slope * y) + slope * y


def _row_time_axes(mask, strength, rows, x_start, x_end, grid, spacing) -> None:
    """Set each row's own ``x_start``/``x_end`` (px): perspective scales and shifts rows apart.

    Each row's trace has two sharp ends in its ink: the start (first ink after the gap that
    follows the calibration pulse) and the end (last ink, within ``ROW_END_TOL_MM`` of the
    page's ``x_end``); ink ends are half a pen width outside the first and last samples. A
    page's perspective makes both vary linearly with y, so each is smoothed by a robust line
    over the rows, which also overrides a row whose end is hidden or extended by other ink.
    A missing start (hidden gap) comes from the end and the row's grid px/mm, and vice versa;
    on a page without calibration pulses rows keep the page's axis (an end alone cannot tell a
    perspective shift from other ink there).
    """
    ppx = grid.px_per_mm_x
    ys = np.array([r.baseline_y for r in rows])
    width_mm = (x_end - x_start) / ppx
    first, last, scale = np.array([_row_ends(mask, strength, r, x_start, x_end, grid, spacing)
                                   for r in rows]).T
    # The pen (0.25 mm) reaches past the first and last samples (measured on clean pages).
    first = first + INK_LEAD_MM[0] * ppx
    last = last - INK_LEAD_MM[1] * ppx
    scale = _robust_line(ys, scale)
    starts = _fit_rows(ys, first, ROW_FIT_TOL_MM * ppx)
    ends = _fit_rows(ys, last, ROW_FIT_TOL_MM * ppx)
    if starts is None and (ends is None or not any(r.calibration for r in rows)):
        return
    if starts is None:
        starts = ends - width_mm * scale
    if ends is None:
        ends = starts + width_mm * scale
    # The page's axis is sub-pixel exact on a flat page: move rows only when they clearly differ.
    if max(np.abs(starts - x_start).max(), np.abs(ends - x_end).max()) < ROW_MIN_SHIFT_MM * ppx:
        return
    near = ROW_SHIFT_TOL_MM * ppx  # farther off, an end found is some other ink's (another layout)
    for r, xs, xe, s in zip(rows, starts, ends, scale):
        if (abs((xe - xs) / (width_mm * s) - 1) < ROW_WIDTH_TOL
                and abs(xs - x_start) < near and abs(xe - x_end) < near):
            r.x_start, r.x_end = float(xs), float(xe)


def _row_ends(mask, strength, row, x_start, x_end, grid, spacing) -> tuple[float, float, float]:
    """``(first, last, px_per_mm_x)`` of one row: its trace's first and last ink columns (px,
    NaN when not found) and the px/mm of the grid in its band (the page's if implausible)."""
    ppx = grid.px_per_mm_x
    a, b = int(max(0, row.baseline_y - 0.4 * spacing)), int(row.baseline_y + 0.4 * spacing)
    est, _ = grid_period(strength[a:b, int(max(0, x_start)):int(x_end)].mean(axis=0))
    scale = est if abs(est / ppx - 1) < ROW_SCALE_TOL else ppx
    ink = _row_ink(mask, row.baseline_y, grid, half_mm=2.0)
    tall = _row_ink(mask, row.baseline_y, grid, half_mm=5.0)
    first = _trace_start(ink, tall, row.calibration, x_start, grid)
    tol = ROW_END_TOL_MM * ppx
    inked = np.flatnonzero(ink[:int(x_end + tol) + 1])
    last = float(inked[-1]) if inked.size and inked[-1] > x_end - tol else np.nan
    return first, last, scale


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
                 grid: GridInfo) -> float:
    """First column (px) of a row's trace: ink after an empty gap right of the pulse; NaN if none.

    ``ink`` / ``tall``: per-column ink within 2 / 5 mm of the baseline. The gap must be empty
    in ``tall``: where the trace abuts the pulse, a QRS leaving the narrow band is no gap.
    Searched from the pulse's right stroke to ``TRACE_GAP_MAX_MM`` past it (the pulse's foot
    may run on for a mm or two; farther on, a gap is a QRS leaving the band); the trace must
    then be inked for most of the next 2 mm. Without a pulse, or when foot and trace touch (no
    gap), the start is not observable.
    """
    if cal is None:
        return np.nan
    ppx = grid.px_per_mm_x
    a = int(cal["x1"]) + 1
    b = int(min(ink.size - int(2 * ppx), cal["x1"] + TRACE_GAP_MAX_MM * ppx))
    gap = max(2, int(round(0.3 * ppx)))
    for c in range(a + gap, b):
        if ink[c] and not tall[c - gap:c].any() and ink[c:c + int(2 * ppx)].mean() > 0.8:
            return float(c) if abs(c - x_start) < ROW_END_TOL_MM * ppx else np.nan
    return np.nan


def _coverage(mask, y, x_start, x_end, grid) -> float:
    """Share of columns in ``[x_start, x_end]`` with ink within +-4 mm of ``y``."""
    inked = _row_ink(mask, y, grid)
    a, b = max(0, int(x_start)), min(mask.shape[1], int(x_end) + 1)
    return float(inked[a:b].mean()) if b > a else 0.0


def _pick_rows(mask, grid, cands, n) -> list[RowInfo]:
    """The ``n`` candidate rows with the most inked columns (trace rows span the page)."""
    scored = sorted(((float(_row_ink(mask, y, grid).mean()), y) for y, _ in cands), reverse=True)
    ys = sorted(y for _, y in scored[:n])
    spacing = float(np.median(np.diff(ys))) if n > 1 else 30 * grid.px_per_mm_y
    rows = []
    for i, y in enumerate(ys):
        # Search band: up to the neighbouring rows' baselines (tall QRS complexes reach them).
        up = ys[i - 1] if i > 0 else max(0.0, y - 1.0 * spacing)
        down = ys[i + 1] if i < n - 1 else min(mask.shape[0] - 1.0, y + 0.7 * spacing)
        inked = np.flatnonzero(_row_ink(mask, y, grid))
        rows.append(RowInfo(index=i, baseline_y=y, y0=up, y1=down,
                            ink_x0=float(inked[0]) if inked.size else 0.0,
                            ink_x1=float(inked[-1]) if inked.size else 0.0, coverage=0.0))
    return rows


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


def _detect_auto(mask, grid, duration_s, strength=None) -> LayoutInfo:
    """Try every known layout; keep the most confident (first in ``LAYOUTS`` on ties)."""
    results: dict[str, LayoutInfo] = {}
    errors = []
    for name in LAYOUTS:
        try:
            results[name] = detect_layout(mask, grid, name, duration_s, strength)
        except LayoutError as exc:
            errors.append(f"{name}: {exc}")
    if not results:
        raise LayoutError("no known layout fits this page:\n  " + "\n  ".join(errors))
    scores = {k: v.confidence for k, v in results.items()}
    best = max(results, key=lambda k: (round(scores[k], 2), -list(LAYOUTS).index(k)))
    out = results[best]
    out.candidates = scores
    return out


# --------------------------------------------------------------------------------------------
# Calibration pulse
# --------------------------------------------------------------------------------------------

def detect_calibration(mask: np.ndarray, row: RowInfo, grid: GridInfo,
                       x_start: float | None = None) -> dict | None:
    """Find the 1 mV x 0.2 s rectangular pulse at the start of ``row``; None if there is none.

    Searched from 15 mm left of ``x_start`` (px, t = 0) to 1 mm right of it,  12 mm above to 3 mm below the row's ink peak:
    the pulse is two vertical strokes joined by a flat top. Returns px positions (``x0``, ``x1``,
    ``top_y``, ``base_y``) and the measured ``height_mm``, ``width_mm`` and ``mm_per_mv`` (10 on a
    standard print; the pulse is 1 mV high).
    """
    ppx, ppy = grid.px_per_mm_x, grid.px_per_mm_y
    x_t0 = x_start if x_start is not None else row.ink_x0 + 10 * ppx
    xa, xb = int(max(0, x_t0 - 15 * ppx)), int(min(mask.shape[1], x_t0 + 1 * ppx))
    ya, yb = int(max(0, row.baseline_y - 14 * ppy)), int(min(mask.shape[0], row.baseline_y + 3 * ppy))
    if xb - xa < 3 * ppx or yb <= ya:
        return None
    sub = mask[ya:yb, xa:xb]
    tall = sub.sum(axis=0) >= 6 * ppy  # columns with >= 6 mm of ink: the pulse's vertical strokes
    strokes = _clusters(np.nonzero(tall)[0])
    # Pairs of strokes 3-8 mm apart (0.2 s at 25 mm/s is 5 mm); the pair nearest t = 0 wins.
    pairs = [(l0, r1) for i, (l0, _) in enumerate(strokes) for (_, r1) in strokes[i + 1:]
             if 3.0 <= (r1 - l0) / ppx <= 8.0]
    if not pairs:
        return None
    # A tall QRS right after the pulse makes a stroke too: prefer the pulse's own width.
    left, right = min(pairs, key=lambda p: (round(abs((p[1] - p[0]) / ppx - CAL_WIDTH_MM)), -p[1]))
    width_mm = (right - left) / ppx
    mid = sub[:, left + 2:right - 1]
    top_y = ya + _median_run_centre(mid, first=True)
    bottom = max(np.nonzero(sub[:, left])[0][-1], np.nonzero(sub[:, right])[0][-1])
    # The 0 mV level is the centre of the flat ink just outside the strokes (pulse foot or trace),
    # falling back to the strokes' bottom when nothing is drawn there.
    # The pulse rises from 0 mV at its left stroke; right of it the trace may start at once
    # (a QRS), so a right foot is used only when the left one is missing and it lies level
    # (``CAL_FOOT_TOL_MM``) with the left stroke's bottom pulled in by half the pen (the flat
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
        if not centres or abs(float(np.median(centres)) - stroke) > CAL_FOOT_TOL_MM * ppy:
            centres = [stroke]
    base_y = ya + (float(np.median(centres)) if centres else float(bottom))
    height_mm = (base_y - top_y) / ppy
    if height_mm < 4.0:
        return None
    return {"x0": float(xa + left), "x1": float(xa + right), "top_y": top_y, "base_y": base_y,
            "height_mm": height_mm, "width_mm": float(width_mm), "mm_per_mv": height_mm / 1.0}


def _ink_runs(col: np.ndarray) -> list[tuple[int, int]]:
    """Ink runs of one bool column as ``[(top, bottom)]`` px (``[(0, -1)]`` when it is blank)."""
    return _clusters(np.flatnonzero(col)) or [(0, -1)]


def _clusters(cols: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive column indices as ``[(first, last)]``."""
    if cols.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(cols) > 1)
    starts = np.concatenate([[cols[0]], cols[breaks + 1]])
    ends = np.concatenate([cols[breaks], [cols[-1]]])
    return list(zip(starts.tolist(), ends.tolist()))


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


# --------------------------------------------------------------------------------------------
# Perspective
# --------------------------------------------------------------------------------------------

RECTIFY_WINDOW_MM = 15.0     # mm, width of the (Hann) window a grid line position is read in
RECTIFY_BAND_MM = 20.0       # mm, height (width) of the band averaged for vertical (horizontal) lines
RECTIFY_STEP_MM = 10.0       # mm between window centres
RECTIFY_MIN_SHIFT_PX = 1.5   # px: a page whose rectification moves no corner more stays as it is
                             # (flat pages measure up to ~0.9 px: resampling would only blur them)
RECTIFY_MIN_INLIERS = 0.5    # share of line positions the fitted map must explain (0.7-0.97
                             # on rendered pages, under 0.4 where lines were mislabelled)
RECTIFY_TOL_MM = 0.2         # mm, a line position farther from the fitted map is not grid


def _line_positions(g: np.ndarray, period: float, axis: int) -> list[tuple[float, float, float]]:
    """``[(along, across, weight)]``: major grid lines found in windows of the evidence ``g``.

    For ``axis=0`` the lines are vertical: each band of ``RECTIFY_BAND_MM`` rows is averaged
    into a column profile and, in Hann windows along it, the phase of the profile's component
    at the major ``period`` (px) puts the major line nearest the window centre (its x,
    ``along``) at band centre y (``across``). ``axis=1`` does the same for horizontal lines on
    the transposed map. ``weight`` is that component's share of the window's evidence.
    """
    g = g if axis == 0 else g.T
    ppm = period / PAPER.major_mm
    band, step = int(RECTIFY_BAND_MM * ppm), RECTIFY_STEP_MM * ppm
    win = int(RECTIFY_WINDOW_MM * ppm) | 1
    hann = np.hanning(win + 2)[1:-1]
    x = np.arange(g.shape[1], dtype=np.float64)
    carrier = np.exp(-2j * np.pi * x / period)
    cum = np.vstack([np.zeros((1, g.shape[1])), np.cumsum(g, axis=0, dtype=np.float64)])
    out = []
    for yc in np.arange(band / 2, g.shape[0] - band / 2, step):
        a = int(round(yc - band / 2))
        prof = (cum[a + band] - cum[a]) / band
        re = np.convolve(prof * carrier.real, hann, mode="same")
        im = np.convolve(prof * carrier.imag, hann, mode="same")
        tot = np.convolve(prof, hann, mode="same")
        for xc in np.arange(win / 2, g.shape[1] - win / 2, step).astype(int):
            c = complex(re[xc], im[xc])
            if tot[xc] <= 1e-6:
                continue
            # profile ~ cos(2 pi (x - line) / period): the coefficient's angle is -2 pi line / period.
            line = -np.angle(c) * period / (2 * np.pi)
            line += period * np.round((xc - line) / period)
            out.append((float(line), float(yc), abs(c) / tot[xc]))
    return out


def _label_lines(pts: np.ndarray, period: float) -> np.ndarray:
    """Major-line index of each ``(along, across)`` position, consistent over the page.

    Walks out from the page centre along ``across`` (lines are near straight across the page),
    then along each band: a step of a few periods cannot be mistaken by a perspective of a few
    percent.
    """
    n = np.full(len(pts), np.nan)
    bands = np.unique(pts[:, 1])
    mid_x = np.median(pts[:, 0])
    # Anchor: in each band the window nearest the page's middle column, labelled band by band.
    anchors = {}
    order = np.argsort(np.abs(bands - np.median(bands)))
    prev = None
    for b in bands[order]:
        idx = np.flatnonzero(pts[:, 1] == b)
        j = idx[np.argmin(np.abs(pts[idx, 0] - mid_x))]
        if prev is None:
            lab = 0.0
        else:
            # Nearest already-labelled band predicts where this band's line of that label is.
            near = min(anchors, key=lambda k: abs(k - b))
            x_ref, l_ref = anchors[near]
            lab = l_ref + np.round((pts[j, 0] - x_ref) / period)
        anchors[b] = (pts[j, 0], lab)
        prev = b
        # Along the band, outwards from the anchor in both directions.
        xs = pts[idx, 0]
        o = np.argsort(xs)
        k0 = int(np.flatnonzero(idx[o] == j)[0])
        n[j] = lab
        for side in (range(k0 + 1, len(o)), range(k0 - 1, -1, -1)):
            x_last, l_last = pts[j, 0], lab
            for k in side:
                i = idx[o[k]]
                l_last = l_last + np.round((pts[i, 0] - x_last) / period)
                x_last = pts[i, 0]
                n[i] = l_last
    return n


def _fit_homography(vert: np.ndarray, horiz: np.ndarray) -> np.ndarray:
    """3x3 ``H`` mapping image px to grid mm from line constraints (weighted least squares).

    ``vert`` rows ``(x, y, U, w)``: the vertical line ``U`` (mm) passes through (x, y);
    ``horiz`` rows ``(x, y, V, w)`` likewise for horizontal lines. Each gives one linear
    equation in the 8 unknowns of ``H`` (``H[2, 2] = 1``).
    """
    rows, rhs, wts = [], [], []
    for x, y, u, w in vert:
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y]); rhs.append(u); wts.append(w)
    for x, y, v, w in horiz:
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y]); rhs.append(v); wts.append(w)
    a, b, w = np.array(rows), np.array(rhs), np.sqrt(np.array(wts))
    h = np.linalg.lstsq(a * w[:, None], b * w, rcond=None)[0]
    return np.append(h, 1.0).reshape(3, 3)


def _normaliser(p: np.ndarray) -> np.ndarray:
    """3x3 similarity moving points ``(n, 2)`` to zero mean and unit spread (conditioning)."""
    c, s = p.mean(axis=0), max(float(p.std()), 1e-9)
    return np.array([[1 / s, 0, -c[0] / s], [0, 1 / s, -c[1] / s], [0, 0, 1]])


def _apply(h: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``h`` (3x3) applied to points ``(n, 2)``."""
    q = np.column_stack([p, np.ones(len(p))]) @ h.T
    return q[:, :2] / q[:, 2:3]


def perspective_map(image: np.ndarray, dark: np.ndarray | None = None) -> np.ndarray | None:
    """3x3 homography taking the (deskewed) page ``image`` to one whose grid is square and
    axis-aligned everywhere, keeping its centre and mean px/mm; None when the page has no grid
    to measure or is already flat (no corner would move ``RECTIFY_MIN_SHIFT_PX``).

    Major grid lines are located in windows all over the page (``_line_positions``), labelled
    consistently (``_label_lines``) and a projective map from image px to grid mm is fitted to
    them, dropping lines farther than ``RECTIFY_TOL_MM`` from the fit (text, stains, ink).
    """
    g = grid_strength(darkness(image) if dark is None else dark)
    ppx, _ = grid_period(g.mean(axis=0))
    ppy, _ = grid_period(g.mean(axis=1))
    if ppx <= 0 or ppy <= 0 or abs(ppx / ppy - 1) > 0.05:
        return None
    sets = []
    for axis, ppm in ((0, ppx), (1, ppy)):
        period = PAPER.major_mm * ppm
        pts = np.array(_line_positions(g, period, axis)).reshape(-1, 3)
        pts = pts[pts[:, 2] > 0.5 * np.median(pts[:, 2])] if len(pts) else pts
        if len(pts) < 20:
            return None
        lab = _label_lines(pts[:, :2], period) * PAPER.major_mm
        xy = pts[:, :2] if axis == 0 else pts[:, 1::-1]
        sets.append(np.column_stack([xy, lab, pts[:, 2]]))
    vert, horiz = sets
    tn = _normaliser(np.vstack([vert[:, :2], horiz[:, :2]]))
    unit = 100.0  # mm: grid coordinates scaled near 1 as well
    keep_v, keep_h = np.ones(len(vert), bool), np.ones(len(horiz), bool)
    for _ in range(3):
        if keep_v.sum() < 10 or keep_h.sum() < 10:
            return None
        v, hz = vert[keep_v].copy(), horiz[keep_h].copy()
        v[:, :2], hz[:, :2] = _apply(tn, v[:, :2]), _apply(tn, hz[:, :2])
        v[:, 2] /= unit
        hz[:, 2] /= unit
        h = np.diag([unit, unit, 1.0]) @ _fit_homography(v, hz) @ tn
        keep_v = np.abs(_apply(h, vert[:, :2])[:, 0] - vert[:, 2]) < RECTIFY_TOL_MM
        keep_h = np.abs(_apply(h, horiz[:, :2])[:, 1] - horiz[:, 2]) < RECTIFY_TOL_MM
    if min(keep_v.mean(), keep_h.mean()) < RECTIFY_MIN_INLIERS:
        return None  # not one projective grid (wrinkles, folds) or lines mislabelled
    # grid mm -> output px: the mean px/mm, the page centre where it was.
    s = 0.5 * (ppx + ppy)
    rows, cols = image.shape[:2]
    centre = np.array([[cols / 2.0, rows / 2.0]])
    uc = _apply(h, centre)[0]
    out = np.array([[s, 0, centre[0, 0] - s * uc[0]], [0, s, centre[0, 1] - s * uc[1]], [0, 0, 1]]) @ h
    corners = np.array([[0, 0], [cols, 0], [cols, rows], [0, rows]], float)
    if np.abs(_apply(out, corners) - corners).max() < RECTIFY_MIN_SHIFT_PX:
        return None
    return out


def straighten(image: np.ndarray, max_deg: float = MAX_SKEW_DEG
               ) -> tuple[np.ndarray, float, np.ndarray]:
    """``(upright, angle, dark)``: ``deskew`` then, where the grid shows perspective, the
    ``perspective_map`` rectification, both applied as one resampling of ``image``.

    ``angle`` (deg, CCW) is the rotation ``deskew`` removed; ``dark`` is ``darkness(upright)``.
    On a rectified page every row's time axis is linear and its 0 mV line straight.
    """
    upright, angle = deskew(image, max_deg)
    dark = darkness(upright)
    warp = perspective_map(upright, dark)
    if warp is None:
        return upright, angle, dark
    h, w = image.shape[:2]
    rot = np.vstack([cv2.getRotationMatrix2D((w / 2.0, h / 2.0), -angle, 1.0), [0, 0, 1]])
    upright = cv2.warpPerspective(image, warp @ rot, (w, h), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
    return upright, angle, darkness(upright)
