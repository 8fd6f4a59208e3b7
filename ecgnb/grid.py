"""Grid and ink: relative-darkness maps, the printed grid's scale, and the trace mask.

Read top to bottom: darkness against the local paper (``darkness``), per-channel reductions,
grid evidence (``grid_strength``), the grid period of a projection profile (``grid_period``),
the grid itself (``GridInfo``, ``detect_grid``), then the trace mask (``remove_grid``,
``denoise``). Conventions as in ``ecgnb.preprocess``: ``image`` is ``(H, W, 3)`` uint8 RGB, masks
are ``(H, W)`` bool (True = trace ink), lengths are px unless a name says ``_mm``. Thresholds come
from ``ecgnb.config.PreprocessConfig`` (``cfg``, None: the defaults), the grid spacing from
``ecgnb.config.PaperConfig`` (``paper``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from .config import PaperConfig, PreprocessConfig


# --------------------------------------------------------------------------------------------
# Darkness maps: the building block of skew, grid and trace detection
# --------------------------------------------------------------------------------------------

def _closing_kernel(shape: tuple[int, ...], cfg: PreprocessConfig) -> int:
    """Odd kernel size (px) wider than any trace or grid line: the short side over
    ``cfg.background_kernel_div``, at least ``cfg.background_kernel_min_px``.

    Fixed from the image size because px/mm is not known yet (3.6 mm on a 200-dpi letter page):
    wider than a dense, noisy trace band (which a narrower kernel would mistake for paper), and
    narrower than wrinkle shadows, which must stay in the background.
    """
    k = max(cfg.background_kernel_min_px, int(round(min(shape[:2]) / cfg.background_kernel_div)))
    return k | 1


def darkness(image: np.ndarray, *, cfg: PreprocessConfig | None = None) -> np.ndarray:
    """Per-channel relative darkness ``1 - I / background`` in 0..1, ``(H, W, 3)`` float32.

    The background is a grey closing (max then min filter) of each channel: thin dark lines vanish
    from it while paper colour, shading and wrinkle shadows stay, so the ratio is contrast against
    the local paper, not absolute brightness.
    """
    cfg = PreprocessConfig() if cfg is None else cfg
    k = _closing_kernel(image.shape, cfg)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    # Closing the uint8 page gives the very values a float closing would (max and min of
    # integers) about ten times sooner; the ratio is then taken in place.
    src = image if image.dtype == np.uint8 else image.astype(np.float32)
    bg = np.maximum(cv2.morphologyEx(src, cv2.MORPH_CLOSE, kernel).astype(np.float32), 1.0)
    out = image.astype(np.float32)
    np.divide(out, bg, out=out)
    np.subtract(1.0, out, out=out)
    return np.clip(out, 0.0, 1.0, out=out)


def channel_min(a: np.ndarray) -> np.ndarray:
    """``a.min(axis=2)`` for 3 channels, several times faster than numpy's strided reduction."""
    return np.minimum(np.minimum(a[..., 0], a[..., 1]), a[..., 2])


def channel_max(a: np.ndarray) -> np.ndarray:
    """``a.max(axis=2)`` for 3 channels (see ``channel_min``)."""
    return np.maximum(np.maximum(a[..., 0], a[..., 1]), a[..., 2])


def grid_strength(dark: np.ndarray, *, cfg: PreprocessConfig | None = None) -> np.ndarray:
    """``(H, W)`` float32 map of grid-line evidence from a ``darkness`` map.

    A coloured grid is dark in some channels but not all (red: dark in G and B, not in R); the
    spread ``max - min`` over channels measures that. For grey grids the spread is 0, so faint
    achromatic lines (darker than noise, ``cfg.grey_grid_darkness``, lighter than trace ink,
    ``cfg.trace_darkness``) count too.
    """
    cfg = PreprocessConfig() if cfg is None else cfg
    dmax, dmin = channel_max(dark), channel_min(dark)
    colour = dmax - dmin
    grey = np.where((dmin > cfg.grey_grid_darkness) & (dmin < cfg.trace_darkness), dmin, 0.0)
    return np.maximum(colour, grey).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Grid period
# --------------------------------------------------------------------------------------------

def _autocorr(profile: np.ndarray, trend_px: int) -> np.ndarray:
    """Normalised autocorrelation (lag 0 = 1) of a 1-D profile after removing its slow trend
    (a ``trend_px`` box filter)."""
    p = profile.astype(np.float64)
    trend = cv2.blur(p.reshape(1, -1), (trend_px, 1)).ravel()
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


def grid_period(profile: np.ndarray, *, cfg: PreprocessConfig | None = None,
                paper: PaperConfig = PaperConfig()) -> tuple[float, float]:
    """``(px_per_mm, strength)`` from one projection profile of the grid-evidence map.

    The minor period is the smallest strong autocorrelation peak in the plausible range
    (``cfg.px_per_mm_range``). The estimate is then refined on far multiples of the major
    (``paper.major_mm``) period, where a 0.1 px peak error is a tiny fraction. ``strength`` is
    the autocorrelation at the major period; ``(0, 0)`` when there is no periodic grid.
    """
    cfg = PreprocessConfig() if cfg is None else cfg
    ac = _autocorr(profile, cfg.autocorr_trend_px)
    lo, hi = cfg.px_per_mm_range
    lags = np.arange(int(lo), min(int(hi * 5) + 2, ac.size - 2))
    is_peak = (ac[lags] > ac[lags - 1]) & (ac[lags] >= ac[lags + 1]) & (ac[lags] > 0.1)
    cand = lags[is_peak]
    if cand.size == 0:
        return 0.0, 0.0
    best = ac[cand].max()
    strong = cand[ac[cand] >= 0.35 * best]
    # A grid's period repeats: its autocorrelation peaks again at twice the lag. A peak that
    # does not (a few px of paper or toner texture on a copy) is no period.
    periodic = [c for c in strong if 2 * c + 2 >= ac.size
                or _peak(ac, 2 * c, max(1.0, 0.1 * c))[1] >= cfg.period_repeat * ac[c]]
    first = float(periodic[0] if periodic else strong[0])
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
    return far / (k * paper.major_mm), strength


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
    found: bool                 # False: no usable grid; px_per_mm is then the paper's dpi (fallback)
    notes: list[str] = field(default_factory=list)  # why confidence is low, if it is


def _grid_colour(image: np.ndarray, g: np.ndarray) -> tuple[int, int, int]:
    """Median RGB of the 2% strongest grid-evidence pixels."""
    thr = np.quantile(g[::4, ::4], 0.98)
    sel = image[g >= max(thr, 1e-3)]
    if sel.size == 0:
        return (255, 255, 255)
    return tuple(int(v) for v in np.median(sel, axis=0))


def detect_grid(image: np.ndarray, dark: np.ndarray | None = None, *,
                cfg: PreprocessConfig | None = None,
                paper: PaperConfig = PaperConfig()) -> GridInfo:
    """Measure the grid of an upright page: px/mm along x and y, line colour and confidence.

    px/mm comes from the autocorrelation of the grid-evidence map projected on each axis. With no
    periodic grid (grey, faint, absent) ``found`` is False, confidence is low and px/mm falls back to
    ``paper.px_per_mm`` (a 200-dpi page by default) so callers can still proceed, and ``notes``
    says so. ``dark`` is ``darkness(image)`` when the caller already has it.
    """
    cfg = PreprocessConfig() if cfg is None else cfg
    g = grid_strength(darkness(image, cfg=cfg) if dark is None else dark, cfg=cfg)
    ppm_x, sx = grid_period(g.mean(axis=0), cfg=cfg, paper=paper)
    ppm_y, sy = grid_period(g.mean(axis=1), cfg=cfg, paper=paper)
    notes: list[str] = []
    if ppm_x > 0 and ppm_y > 0:
        agree = max(0.0, 1.0 - abs(ppm_x - ppm_y) / max(ppm_x, ppm_y) / cfg.grid_xy_tol)
        conf = float(np.clip(min(sx, sy) / cfg.grid_strength_full, 0, 1) * agree)
    else:
        conf = 0.0
    found = conf >= cfg.grid_confidence_min
    if not found:
        notes.append(f"no periodic grid found; assuming {paper.dpi} dpi "
                     f"({paper.px_per_mm:.2f} px/mm)")
        ppm_x = ppm_y = paper.px_per_mm
    ppm = 0.5 * (ppm_x + ppm_y)
    return GridInfo(px_per_mm=ppm, px_per_mm_x=ppm_x, px_per_mm_y=ppm_y, minor_px=ppm,
                    major_px=5 * ppm, colour=_grid_colour(image, g), confidence=conf,
                    found=found, notes=notes)


# --------------------------------------------------------------------------------------------
# Trace separation
# --------------------------------------------------------------------------------------------

def grey_grid(grid: GridInfo, cfg: PreprocessConfig) -> bool:
    """Whether a found grid's colour is achromatic (grey or black: dark in every channel)."""
    return grid.found and max(grid.colour) - min(grid.colour) < cfg.grey_grid_spread


def remove_grid(image: np.ndarray, grid: GridInfo | None = None, dark: np.ndarray | None = None,
                *, cfg: PreprocessConfig | None = None) -> np.ndarray:
    """Boolean ``(H, W)`` trace mask: grid, paper, shading and colour removed, dark ink kept.

    Colour separation: the trace is dark in *every* channel, a coloured grid only in some, so the
    smallest per-channel relative darkness (above ``cfg.trace_darkness``) keeps the trace and drops
    the grid. Relative darkness (against the local paper, see ``darkness``) is what makes the
    threshold adaptive: a trace in a wrinkle shadow is as dark relative to its surroundings as one
    on clean paper. For a grey grid (``grid.colour`` achromatic) the threshold is raised above the
    grid lines' own darkness. ``dark`` is ``darkness(image)`` when the caller already has it.
    """
    cfg = PreprocessConfig() if cfg is None else cfg
    dark = darkness(image, cfg=cfg) if dark is None else dark
    dmin = channel_min(dark)
    threshold = cfg.trace_darkness
    if grid is not None and grey_grid(grid, cfg):
        # Grey grid: its lines are dark in all channels too; keep only what is clearly darker.
        line = float(np.quantile(grid_strength(dark, cfg=cfg)[::4, ::4], 0.99))
        threshold = max(threshold, min(cfg.grey_grid_threshold_max, line + cfg.grey_grid_margin))
    return dmin > threshold


def denoise(mask: np.ndarray, px_per_mm: float, *,
            cfg: PreprocessConfig | None = None) -> np.ndarray:
    """Drop specks and page edges from a trace mask; ``px_per_mm`` is the grid's scale.

    Components (8-connected) under ``cfg.speck_area_mm2`` (mm^2) are JPEG or scanner noise, not
    trace (a trace piece 0.25 mm wide and 1 mm long is already 0.25 mm^2). Ink within
    ``cfg.edge_mm`` (mm) of the image edge is dropped: there it is the scan's edge or rotation
    fill, and a long straight edge would otherwise look like a perfect flat trace.
    """
    cfg = PreprocessConfig() if cfg is None else cfg
    mask = mask.copy()
    b = int(round(cfg.edge_mm * px_per_mm))
    if b > 0:
        mask[:b], mask[-b:], mask[:, :b], mask[:, -b:] = False, False, False, False
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    min_px = max(2, int(round(cfg.speck_area_mm2 * px_per_mm ** 2)))
    keep = stats[:, cv2.CC_STAT_AREA] >= min_px
    keep[0] = False  # label 0 is the background
    return keep[labels]
