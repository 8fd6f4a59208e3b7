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
PX_PER_MM_RANGE = (2.0, 24.0)  # px/mm, plausible scan resolutions (about 50-600 dpi)
TRACE_DARKNESS = 0.45        # relative darkness (0..1) above which a grey/black pixel is trace ink
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
    """Odd kernel size (px) wider than any trace or grid line: about 1/150 of the short side.

    Fixed from the image size because px/mm is not known yet (1.4 mm on a 200-dpi letter page).
    """
    k = max(7, int(round(min(shape[:2]) / 150)))
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


def grid_strength(dark: np.ndarray) -> np.ndarray:
    """``(H, W)`` float32 map of grid-line evidence from a ``darkness`` map.

    A coloured grid is dark in some channels but not all (red: dark in G and B, not in R); the
    spread ``max - min`` over channels measures that. For grey grids the spread is 0, so faint
    achromatic lines (darker than noise, lighter than trace ink) count too.
    """
    dmax, dmin = dark.max(axis=2), dark.min(axis=2)
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
        gray = _line_evidence(gray)
    small = cv2.resize(gray, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
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


def _line_evidence(image: np.ndarray) -> np.ndarray:
    """Grid evidence plus trace ink, ``(H, W)`` float32: what skew estimation aligns."""
    dark = darkness(image)
    return np.maximum(grid_strength(dark), dark.min(axis=2))


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

    Rotation only; perspective is not corrected (the grid period is measured separately along x
    and y, which absorbs mild anisotropic scaling).
    """
    angle = estimate_skew(_line_evidence(image), max_deg)
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
    # Is ``first`` the minor period (then 5x is a stronger peak) or already the major one?
    minor = first
    if first / 5 >= lo:
        p5, h5 = _peak(ac, first / 5, 0.15 * first / 5)
        if h5 > 0.1 and h5 > ac[int(round(first / 10))]:
            minor = p5
    major, strength = _peak(ac, 5 * minor, 0.1 * 5 * minor)
    if minor > hi or major <= 0:
        return 0.0, 0.0
    # Refine on the farthest whole multiple of the major period that fits in a quarter profile.
    k = max(1, int(ac.size / 4 // major))
    far, _ = _peak(ac, k * major, 0.3 * minor)
    return far / k / PAPER.major_mm * PAPER.minor_mm * 5 / 5 if False else far / (k * PAPER.major_mm), strength


def detect_grid(image: np.ndarray) -> GridInfo:
    """Measure the grid of an upright page: px/mm along x and y, line colour and confidence.

    px/mm comes from the autocorrelation of the grid-evidence map projected on each axis. With no
    periodic grid (grey, faint, absent) ``found`` is False, confidence is low and px/mm falls back to
    a 200-dpi page so callers can still proceed, and ``notes`` says so.
    """
    g = grid_strength(darkness(image))
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
