"""Straightening the page: remove its rotation (deskew), then its perspective (rectification).

Read top to bottom: the projection-profile slope search (``search_slope``, also used per row by
``ecgnb.layout_detect.row_slope``), skew (``estimate_skew``, ``rotate``, ``deskew``), the grid
lines' perspective (``perspective_map`` and its helpers), and ``straighten``, which applies both
as one resampling. Angles are degrees, counter-clockwise positive (as
``cv2.getRotationMatrix2D``); lengths are px unless a name says ``_mm``. Thresholds come from
``ecgnb.config.PreprocessConfig`` (``cfg``, None: the defaults), the grid spacing from
``ecgnb.config.PaperConfig`` (``paper``). Builds on ``ecgnb.grid`` (darkness, grid evidence).
"""
from __future__ import annotations

import cv2
import numpy as np

from .config import PaperConfig, PreprocessConfig
from .grid import channel_min, darkness, grid_period, grid_strength


# --------------------------------------------------------------------------------------------
# Slope search (projection profiles)
# --------------------------------------------------------------------------------------------

def _profile_sharpness(ys: np.ndarray, xs: np.ndarray, w: np.ndarray, slope: float,
                       n_bins: int) -> float:
    """Sum of squared row sums after shearing points by ``slope`` (px/px): high when lines align."""
    yy = np.round(ys - xs * slope).astype(np.int64)
    yy -= yy.min()
    h = np.bincount(yy, weights=w, minlength=n_bins)
    return float(np.dot(h, h))


def search_slope(ys: np.ndarray, xs: np.ndarray, w: np.ndarray, n_bins: int, lo_deg: float,
                 hi_deg: float, step_deg: float) -> float:
    """Angle (deg, of ``dy/dx``) in ``[lo_deg, hi_deg]`` whose shear best aligns the points.

    ``ys``, ``xs`` (px) and weights ``w`` are line-evidence pixels; every ``step_deg`` is tried
    (``_profile_sharpness``, ``n_bins`` rows of projection) and the best refined by a parabola
    through it and its neighbours.
    """
    angles = np.arange(lo_deg, hi_deg + step_deg / 2, step_deg)
    scores = [_profile_sharpness(ys, xs, w, np.tan(np.radians(a)), n_bins) for a in angles]
    i = int(np.argmax(scores))
    if 0 < i < len(angles) - 1:  # parabolic refinement between the three best steps
        s0, s1, s2 = scores[i - 1], scores[i], scores[i + 1]
        den = s0 - 2 * s1 + s2
        if den < 0:
            return float(angles[i] + 0.5 * step_deg * (s0 - s2) / den)
    return float(angles[i])


# --------------------------------------------------------------------------------------------
# Skew
# --------------------------------------------------------------------------------------------

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


def _line_evidence(image: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """Grid evidence plus trace ink, ``(H, W)`` float32: what skew estimation aligns."""
    dark = darkness(image, cfg=cfg)
    return np.maximum(grid_strength(dark, cfg=cfg), channel_min(dark))


def estimate_skew(gray: np.ndarray, *, cfg: PreprocessConfig | None = None) -> float:
    """Rotation of the page content in degrees (counter-clockwise positive), within
    ``cfg.max_skew_deg``.

    ``gray`` is a ``(H, W)`` line-evidence map (any dark-line image works; ``deskew`` passes
    the RGB page, whose grid evidence plus trace ink is used) or an ``(H, W, 3)`` RGB image.
    Projection-profile method: shear the strongest line pixels by each candidate slope and keep
    the slope whose horizontal projection is sharpest (grid lines and trace baselines all
    collapse into few rows), in coarse then fine steps (``cfg.skew_steps_deg``). A band of
    ``cfg.skew_border_frac`` of each side is ignored (scan framing).
    """
    cfg = PreprocessConfig() if cfg is None else cfg
    max_deg = cfg.max_skew_deg
    coarse_step, fine_step = cfg.skew_steps_deg
    # Half resolution is plenty for line directions and 4x cheaper.
    if gray.ndim == 3:
        gray = _line_evidence(cv2.resize(gray, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA),
                              cfg)
    else:
        gray = cv2.resize(gray, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    small = _blank_border(gray, cfg.skew_border_frac)
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
    coarse = search_slope(ys, xs, w, n_bins, -max_deg, max_deg, coarse_step)
    span = 1.2 * coarse_step
    fine = search_slope(ys, xs, w, n_bins, coarse - span, coarse + span, fine_step)
    # A line rotated counter-clockwise rises to the right: y decreases with x (negative slope).
    return -fine


def rotate(image: np.ndarray, angle_deg: float) -> np.ndarray:
    """Rotate ``image`` counter-clockwise by ``angle_deg`` about its centre, same size.

    Corners filled by replicating the border, so no black wedges look like ink.
    """
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle_deg, 1.0)
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def deskew(image: np.ndarray, *, cfg: PreprocessConfig | None = None
           ) -> tuple[np.ndarray, float]:
    """Return ``(upright image, angle)``: ``angle`` (deg, CCW) is the skew that was removed.

    Rotation only; perspective is corrected by ``straighten`` (the grid period is measured
    separately along x and y, which absorbs mild anisotropic scaling, and ``detect_layout`` gives
    each row its own 0 mV slope and time axis). A skew under ``cfg.skew_min_deg`` is left alone
    (angle 0); none beyond ``cfg.max_skew_deg`` is found.
    """
    cfg = PreprocessConfig() if cfg is None else cfg
    angle = estimate_skew(image, cfg=cfg)
    if abs(angle) < cfg.skew_min_deg:  # below what the search resolves: avoid a resampling blur
        return image, 0.0
    return rotate(image, -angle), angle


# --------------------------------------------------------------------------------------------
# Perspective
# --------------------------------------------------------------------------------------------

def _line_positions(g: np.ndarray, period: float, axis: int, cfg: PreprocessConfig,
                    paper: PaperConfig) -> list[tuple[float, float, float]]:
    """``[(along, across, weight)]``: major grid lines found in windows of the evidence ``g``.

    For ``axis=0`` the lines are vertical: each band of ``cfg.rectify_band_mm`` rows is averaged
    into a column profile and, in Hann windows (``cfg.rectify_window_mm`` wide, every
    ``cfg.rectify_step_mm``) along it, the phase of the profile's component at the major
    ``period`` (px) puts the major line nearest the window centre (its x, ``along``) at band
    centre y (``across``). ``axis=1`` does the same for horizontal lines on the transposed map.
    ``weight`` is that component's share of the window's evidence.
    """
    g = g if axis == 0 else g.T
    ppm = period / paper.major_mm
    band, step = int(cfg.rectify_band_mm * ppm), cfg.rectify_step_mm * ppm
    win = int(cfg.rectify_window_mm * ppm) | 1
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


def perspective_map(image: np.ndarray, dark: np.ndarray | None = None, *,
                    cfg: PreprocessConfig | None = None,
                    paper: PaperConfig = PaperConfig()) -> np.ndarray | None:
    """3x3 homography taking the (deskewed) page ``image`` to one whose grid is square and
    axis-aligned everywhere, keeping its centre and mean px/mm; None when the page has no grid
    to measure or is already flat (no corner would move ``cfg.rectify_min_shift_px``).

    Major grid lines are located in windows all over the page (``_line_positions``), labelled
    consistently (``_label_lines``) and a projective map from image px to grid mm is fitted to
    them, dropping lines farther than ``cfg.rectify_tol_mm`` from the fit (text, stains, ink).
    ``dark`` is ``darkness(image)`` when the caller already has it.
    """
    cfg = PreprocessConfig() if cfg is None else cfg
    g = grid_strength(darkness(image, cfg=cfg) if dark is None else dark, cfg=cfg)
    ppx, _ = grid_period(g.mean(axis=0), cfg=cfg, paper=paper)
    ppy, _ = grid_period(g.mean(axis=1), cfg=cfg, paper=paper)
    if ppx <= 0 or ppy <= 0 or abs(ppx / ppy - 1) > cfg.rectify_xy_tol:
        return None
    sets = []
    for axis, ppm in ((0, ppx), (1, ppy)):
        period = paper.major_mm * ppm
        pts = np.array(_line_positions(g, period, axis, cfg, paper)).reshape(-1, 3)
        pts = pts[pts[:, 2] > 0.5 * np.median(pts[:, 2])] if len(pts) else pts
        if len(pts) < 20:
            return None
        lab = _label_lines(pts[:, :2], period) * paper.major_mm
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
        keep_v = np.abs(_apply(h, vert[:, :2])[:, 0] - vert[:, 2]) < cfg.rectify_tol_mm
        keep_h = np.abs(_apply(h, horiz[:, :2])[:, 1] - horiz[:, 2]) < cfg.rectify_tol_mm
    if min(keep_v.mean(), keep_h.mean()) < cfg.rectify_min_inliers:
        return None  # not one projective grid (wrinkles, folds) or lines mislabelled
    # grid mm -> output px: the mean px/mm, the page centre where it was.
    s = 0.5 * (ppx + ppy)
    rows, cols = image.shape[:2]
    centre = np.array([[cols / 2.0, rows / 2.0]])
    uc = _apply(h, centre)[0]
    out = np.array([[s, 0, centre[0, 0] - s * uc[0]], [0, s, centre[0, 1] - s * uc[1]], [0, 0, 1]]) @ h
    corners = np.array([[0, 0], [cols, 0], [cols, rows], [0, rows]], float)
    if np.abs(_apply(out, corners) - corners).max() < cfg.rectify_min_shift_px:
        return None
    return out


# --------------------------------------------------------------------------------------------
# Both at once
# --------------------------------------------------------------------------------------------

def straighten(image: np.ndarray, *, cfg: PreprocessConfig | None = None,
               paper: PaperConfig = PaperConfig()) -> tuple[np.ndarray, float, np.ndarray]:
    """``(upright, angle, dark)``: ``deskew`` then, where the grid shows perspective, the
    ``perspective_map`` rectification, both applied as one resampling of ``image``.

    ``angle`` (deg, CCW) is the rotation ``deskew`` removed; ``dark`` is ``darkness(upright)``.
    On a rectified page every row's time axis is linear and its 0 mV line straight.
    """
    cfg = PreprocessConfig() if cfg is None else cfg
    upright, angle = deskew(image, cfg=cfg)
    dark = darkness(upright, cfg=cfg)
    warp = perspective_map(upright, dark, cfg=cfg, paper=paper)
    if warp is None:
        return upright, angle, dark
    h, w = image.shape[:2]
    rot = np.vstack([cv2.getRotationMatrix2D((w / 2.0, h / 2.0), -angle, 1.0), [0, 0, 1]])
    upright = cv2.warpPerspective(image, warp @ rot, (w, h), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
    return upright, angle, darkness(upright, cfg=cfg)
