"""Rectification: from a phone photo or a scan to a flat, upright page at a known px/mm.

A bent or photographed page has no single homography, so the page is flattened in two steps, both
from what every ECG page shows: the paper and its grid.

1. ``find_page``: the paper is the largest bright, unsaturated blob of the frame; its outline's
   four corners give a homography to a landscape rectangle (``page_homography``). Where the page
   fills the frame (a scan) or is not found, the frame itself is the rectangle. Where the grid
   under that outline is missing or badly bent, the frame is tried, then the blob grown past a
   cast shadow (``_grown``) and the pixels of the paper's colour (``_colour_blob``) (``flatten``).
2. ``lattice_field``: on that roughly flat working copy, the 5 mm grid lines are locally
   periodic. The local phase of their period (complex demodulation: ink times
   ``exp(-2 pi i y / P)``, Gaussian-averaged) says, node by node, how far the lines sit from a
   perfect lattice; unwrapped (quality first) and smoothed, it is a displacement field that takes
   every line to a multiple of ``P``, whatever the bend, fold or remaining perspective.
3. ``flatten``: the homography and the field, composed, are one ``cv2.remap`` of the original
   photo to a page at ``cfg.out_dpi`` whose grid is straight and regular.
4. ``refine``: the lattice measured again on that flat page at its full resolution, then its
   1 mm lines where they show, each composed into the map (a tenth of a mm off is already
   ~4 ms of time: a QRS read beside its truth).

Which way up the page is (0 or 180 deg once landscape) is left to ``ecgnb.orient``; the grid
colour does not matter here (the lattice is read from the darkest channel or from the colour
spread, whichever is more periodic). Conventions: images ``(H, W, 3)`` uint8 RGB, points
``(x, y)`` px; ``cfg`` is ``ecgnb.config.RectifyConfig``.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from .config import PreprocessConfig, RectifyConfig
from .grid import channel_min, darkness, grid_strength

TRACE_SHARE_OF_DARKEST = 0.8   # ink darker than this share of the page's darkest (99.5th
                               # percentile) counts as trace when weighting the lattice evidence

# --------------------------------------------------------------------------------------------
# The paper
# --------------------------------------------------------------------------------------------


def _order_corners(quad: np.ndarray) -> np.ndarray:
    """Four points as top-left, top-right, bottom-right, bottom-left, the long side on top."""
    c = quad.mean(axis=0)
    ang = np.arctan2(quad[:, 1] - c[1], quad[:, 0] - c[0])
    q = quad[np.argsort(ang)]                      # clockwise in image coordinates (y down)
    q = np.roll(q, -int(np.argmin(q.sum(axis=1))), axis=0)   # start at the top-left-most
    top = np.linalg.norm(q[1] - q[0]) + np.linalg.norm(q[2] - q[3])
    side = np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])
    if side > top:                                 # portrait as seen: turn so the long side is on top
        q = np.roll(q, -1, axis=0)
    return q.astype(np.float64)


OUTLINES = ("threshold", "grown", "colour")   # find_page's ways of telling paper from background


def find_page(image: np.ndarray, cfg: RectifyConfig = RectifyConfig(),
              how: str = "threshold") -> np.ndarray | None:
    """Corners ``(4, 2)`` photo px (TL, TR, BR, BL, landscape) of the paper, or None.

    Paper is brighter and less saturated than a desk, cloth or shadow around it: Otsu's threshold
    on ``V - S`` (HSV) of a small copy, closed so that grid and trace do not cut it, largest blob,
    holes filled. None when no blob covers ``cfg.page_area_min`` of the frame or one covers more
    than ``cfg.page_area_max`` (the page fills it: a scan). ``how`` (``OUTLINES``): "threshold"
    that blob; "grown" it grown past a cast shadow (``_grown``); "colour" the pixels whose colour
    is nearer the paper's than the background's (``_colour_blob``), for a bright cloth or desk
    the threshold cannot tell from paper.
    """
    if how not in OUTLINES:
        raise ValueError(f"unknown outline {how!r}; known: {', '.join(OUTLINES)}")
    h, w = image.shape[:2]
    s = cfg.find_long_px / max(h, w)
    small = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV).astype(np.int16)
    score = np.clip(hsv[..., 2] - hsv[..., 1], 0, 255).astype(np.uint8)
    level, mask = cv2.threshold(cv2.GaussianBlur(score, (5, 5), 0), 0, 255,
                                cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    k = max(3, int(round(cfg.find_long_px / 80))) | 1
    rect = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, rect)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, rect)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
    if n < 2:
        return None
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    blob = (labels == best).astype(np.uint8)
    if how == "grown":
        blob = _grown(blob, score, level, k)
    elif how == "colour":
        blob = _colour_blob(blob, small, k)
    area = blob.sum() / float(blob.size)
    if not cfg.page_area_min <= area <= cfg.page_area_max:
        return None
    contours, _ = cv2.findContours(blob, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = cv2.convexHull(max(contours, key=cv2.contourArea))
    corners = _order_corners(_quad_of(hull) / s)
    # A lit part of the page or a sliver between shadows is not a page: its sides must keep
    # roughly the paper's proportions (perspective and a cut-off edge allow some leeway).
    top = np.linalg.norm(corners[1] - corners[0]) + np.linalg.norm(corners[2] - corners[3])
    side = np.linalg.norm(corners[3] - corners[0]) + np.linalg.norm(corners[2] - corners[1])
    paper = max(cfg.paper_mm) / min(cfg.paper_mm)
    if not paper / cfg.page_aspect_tol <= top / max(side, 1e-6) <= paper * cfg.page_aspect_tol:
        return None
    return corners


def _frame_border(shape: tuple[int, int], px: int) -> np.ndarray:
    """Boolean mask of the ``px`` outermost rows and columns of a frame."""
    border = np.zeros(shape, bool)
    border[:px, :] = border[-px:, :] = border[:, :px] = border[:, -px:] = True
    return border


def _grown(blob: np.ndarray, score: np.ndarray, level: float, k: int) -> np.ndarray:
    """The paper blob (uint8 0/1) grown by a watershed on ``score`` (``V - S``, uint8), from the
    blob shrunk by ``k`` px against the frame's border where it lies under ``level``: a cast
    shadow darkens paper and desk alike, so one threshold cuts the shadowed paper off, but its
    edge is soft, while the paper's own edge is a sharp step the flooding stops at. Closing by
    ``k`` px first keeps grid and trace from being edges. The blob as it is where no part of the
    border is background (the page reaches the frame all round)."""
    rect = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    closed = cv2.GaussianBlur(cv2.morphologyEx(score, cv2.MORPH_CLOSE, rect), (5, 5), 0)
    markers = np.zeros(blob.shape, np.int32)
    markers[cv2.erode(blob, cv2.getStructuringElement(cv2.MORPH_RECT, (3 * k, 3 * k))) > 0] = 1
    markers[_frame_border(blob.shape, 2) & (blob == 0) & (closed < level)] = 2
    if not (markers == 1).any() or not (markers == 2).any():
        return blob
    flooded = cv2.watershed(cv2.cvtColor(closed, cv2.COLOR_GRAY2BGR), markers)
    return cv2.morphologyEx((flooded == 1).astype(np.uint8), cv2.MORPH_OPEN, rect)


def _colour_blob(blob: np.ndarray, small: np.ndarray, k: int) -> np.ndarray:
    """The pixels of ``small`` (RGB, closed by ``k`` px so that ink is gone) whose Lab colour is
    likelier under the paper's Gaussian than the background's, the part joined to the paper: the
    paper's colour from the middle third of the threshold blob ``blob`` (uint8 0/1; where a bright
    cloth joined it, its middle is still paper), the background's from the frame's border, all of
    it (a cloth joined to the blob reaches the border too). A light cloth can be as bright and
    grey as paper but not of its colour. The blob as it is where either sample is too small."""
    rect = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    lab = cv2.cvtColor(cv2.morphologyEx(small, cv2.MORPH_CLOSE, rect), cv2.COLOR_RGB2LAB)
    lab = lab.reshape(-1, 3).astype(np.float32)
    ys, xs = np.nonzero(blob)
    y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
    middle = np.zeros(blob.shape, bool)
    middle[(2 * y0 + y1) // 3:(y0 + 2 * y1) // 3 + 1, (2 * x0 + x1) // 3:(x0 + 2 * x1) // 3 + 1] = True
    middle &= blob > 0
    outside = _frame_border(blob.shape, 3)
    if middle.sum() < 50 or outside.sum() < 50:
        return blob
    paper = (_colour_cost(lab, lab[middle.ravel()]) < _colour_cost(lab, lab[outside.ravel()]))
    paper = cv2.morphologyEx(paper.reshape(blob.shape).astype(np.uint8), cv2.MORPH_OPEN, rect)
    n, labels = cv2.connectedComponents(paper, connectivity=4)
    ids, counts = np.unique(labels[middle], return_counts=True)
    counts, ids = counts[ids > 0], ids[ids > 0]
    if ids.size == 0:
        return blob
    return cv2.morphologyEx((labels == ids[np.argmax(counts)]).astype(np.uint8), cv2.MORPH_CLOSE, rect)


def _colour_cost(pixels: np.ndarray, sample: np.ndarray) -> np.ndarray:
    """Negative log-likelihood (up to a constant) of ``pixels`` ``(n, 3)`` under a Gaussian fitted
    to ``sample`` (median centre; 2 Lab units of spread added, so a flat sample stays usable)."""
    centre = np.median(sample, axis=0)
    cov = np.cov((sample - centre).T) + 4.0 * np.eye(3)
    d = pixels - centre
    return 0.5 * (np.einsum("ij,jk,ik->i", d, np.linalg.inv(cov), d) + np.log(np.linalg.det(cov)))


def _quad_of(hull: np.ndarray) -> np.ndarray:
    """Four corners of a convex outline: the polygon simplified until four vertices remain;
    the minimum-area rectangle where no tolerance gives four."""
    peri = cv2.arcLength(hull, True)
    for eps in np.linspace(0.01, 0.1, 19):
        approx = cv2.approxPolyDP(hull, eps * peri, True)
        if len(approx) == 4:
            return approx.reshape(4, 2).astype(np.float64)
        if len(approx) < 4:
            break
    return cv2.boxPoints(cv2.minAreaRect(hull)).astype(np.float64)


def page_homography(corners: np.ndarray | None, shape: tuple[int, int],
                    long_px: int) -> tuple[np.ndarray, tuple[int, int]]:
    """``(H, (w, h))``: homography from photo px to a working rectangle whose long side is
    ``long_px`` (or the outline's own, if shorter), and that rectangle's size. The rectangle's aspect is the outline's mean sides
    (the lattice fixes any error in it); without corners, the frame itself, scaled."""
    fh, fw = shape[:2]
    if corners is None:
        corners = _order_corners(np.array([[0, 0], [fw, 0], [fw, fh], [0, fh]], float))
    c = corners
    top = 0.5 * (np.linalg.norm(c[1] - c[0]) + np.linalg.norm(c[2] - c[3]))
    side = 0.5 * (np.linalg.norm(c[3] - c[0]) + np.linalg.norm(c[2] - c[1]))
    # Never enlarge: resampling up leaves a periodic pattern that could pass for a grid.
    s = min(1.0, long_px / max(top, side))
    w, h = int(round(top * s)), int(round(side * s))
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
    return cv2.getPerspectiveTransform(c.astype(np.float32), dst.astype(np.float32)), (w, h)


# --------------------------------------------------------------------------------------------
# The lattice
# --------------------------------------------------------------------------------------------

def lattice_evidence(work: np.ndarray, cfg: PreprocessConfig | None = None,
                     trace_px: int = 3, rcfg: RectifyConfig = RectifyConfig(),
                     guess_px: float | None = None, prefer: str | None = None
                     ) -> tuple[np.ndarray, np.ndarray, str]:
    """``(evidence, weight, kind)``: ``(H, W)`` float32 line evidence of a working copy, the
    weight each pixel gets in the local phase, and which evidence it is.

    ``"colour"``: ``ecgnb.grid.grid_strength``, the colour spread of the darkness (a coloured
    grid) or faint achromatic lines lighter than ink (a grey grid, a grey copy of a red one). JPEG's halved colour
    resolution leaves coloured fringes on a black trace, so trace ink (dark in every channel) and
    ``trace_px`` around it get no weight: a QRS stroke would otherwise pull the vertical lines'
    phase and squeeze time around it. ``"ink"``: the darkest channel, a black or grey grid, where
    grid and trace cannot be told apart by colour (weight 1; the field's smoothing absorbs the
    trace). The kind whose projections are more periodic wins, unless ``prefer`` names one.
    """
    pre = PreprocessConfig() if cfg is None else cfg
    dark = darkness(work, cfg=pre)
    ink = channel_min(dark)
    options = {"colour": grid_strength(dark, cfg=pre), "ink": ink}
    lo, hi = rcfg.lattice_px_range
    scores = {k: line_period(ev.mean(axis=0), lo, hi, guess_px)[1]
              + line_period(ev.mean(axis=1), lo, hi, guess_px)[1]
              for k, ev in options.items()}
    kind = max(scores, key=scores.get) if prefer is None else prefer
    weight = np.ones(ink.shape, np.float32)
    if kind == "colour":
        # Trace ink is the darkest ink; a photo's grid lines can be dark in every channel too
        # (over the plain trace threshold), so the bar is also set by the darkest ink seen.
        level = max(pre.trace_darkness, TRACE_SHARE_OF_DARKEST * float(np.quantile(ink[::2, ::2], 0.995)))
        trace = (ink > level).astype(np.uint8)
        k = 2 * trace_px + 1
        trace = cv2.dilate(trace, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        weight[trace > 0] = 0.0
    return options[kind].astype(np.float32), weight, kind


def _spectrum(profile: np.ndarray) -> tuple[np.ndarray, float]:
    """Power spectrum of a detrended, windowed profile, zero-padded 8x; and its bin width
    (cycles per px)."""
    p = profile.astype(np.float64)
    p = p - cv2.blur(p.reshape(1, -1), (101, 1)).ravel()
    n = 8 * p.size
    power = np.abs(np.fft.rfft(p * np.hanning(p.size), n)) ** 2
    return power, 1.0 / n


def _comb_score(power: np.ndarray, df: float, period: float, harmonics: int = 6) -> float:
    """Mean power at the harmonics ``k / period`` less that at the half-way points
    ``(k - 1/2) / period``: high for the true spacing of a comb of lines, about half for twice
    it, about nothing for half of it (the comb's own lines fall on its half-way points)."""
    ks = np.arange(1, harmonics + 1)
    at = lambda f: power[np.clip(np.round(f / df).astype(int), 0, power.size - 1)]   # noqa: E731
    f = ks / period
    f = f[f < 0.45]
    if f.size == 0:
        return 0.0
    return float(at(f).mean() - at(f - 0.5 / period).mean())


def line_period(profile: np.ndarray, lo_px: float, hi_px: float,
                guess_px: float | None = None, spread: float = 1.8) -> tuple[float, float]:
    """``(period px, strength 0..1)``: the spacing of the finest regular lines of a projection
    profile, between ``lo_px`` and ``hi_px`` (a harmonic comb search on its spectrum, refined to
    0.1 %); strength is the share of the profile's varying power the comb explains.

    With ``guess_px`` (the 5 mm spacing the page's size suggests) only spacings within a factor
    ``spread`` of it or of a fifth of it are tried: rows of trace and text put power at several
    times the grid's spacing, which a free search could take for it.
    """
    power, df = _spectrum(profile)
    if power[1:].sum() <= 0:
        return 0.0, 0.0
    cands = np.exp(np.linspace(np.log(lo_px), np.log(hi_px), 400))
    if guess_px:
        near = lambda c: np.abs(np.log(cands / c)) <= np.log(spread)   # noqa: E731
        cands = cands[near(guess_px) | near(guess_px / 5)]
        if cands.size == 0:
            return 0.0, 0.0
    scores = np.array([_comb_score(power, df, p) for p in cands])
    best = cands[int(np.argmax(scores))]
    fine = best * np.exp(np.linspace(-0.02, 0.02, 81))
    fscore = np.array([_comb_score(power, df, p) for p in fine])
    period = float(fine[int(np.argmax(fscore))])
    # Explained share: power within one bin of the first harmonics over the total.
    ks = np.arange(1, 7) / period
    ks = ks[ks < 0.45]
    idx = np.round(ks / df).astype(int)
    near = sum(power[max(0, i - 8):i + 9].sum() for i in idx)
    return period, float(np.clip(near / power[16:].sum(), 0, 1))


def _is_major(period: float, guess_px: float) -> bool:
    """Is a lattice spacing the 5 mm one (else 1 mm)? The one nearer (in ratio) to
    ``guess_px``, the 5 mm spacing a whole letter/A4 page would show."""
    return abs(np.log(period / guess_px)) < abs(np.log(5 * period / guess_px))


def _unwrap(phase: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Quality-guided 2-D phase unwrapping on a node grid: start at the best node, always grow
    into the frontier node of highest quality, each taking the neighbour's value plus the
    wrapped difference."""
    rows, cols = phase.shape
    out = np.zeros_like(phase)
    done = np.zeros(phase.shape, bool)
    start = np.unravel_index(int(np.argmax(quality)), phase.shape)
    out[start], done[start] = phase[start], True
    heap: list = []

    def push(r, c):
        for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            rr, cc = r + dr, c + dc
            if 0 <= rr < rows and 0 <= cc < cols and not done[rr, cc]:
                heapq.heappush(heap, (-quality[rr, cc], rr, cc, r, c))

    push(*start)
    while heap:
        _, r, c, pr, pc = heapq.heappop(heap)
        if done[r, c]:
            continue
        d = np.angle(np.exp(1j * (phase[r, c] - phase[pr, pc])))
        out[r, c], done[r, c] = out[pr, pc] + d, True
        push(r, c)
    return out


def _smooth_fill(values: np.ndarray, weight: np.ndarray, sigma: float, fill_sigma: float) -> np.ndarray:
    """Normalised Gaussian smoothing of ``values`` by ``weight``; where the weight near a node is
    small, the wider ``fill_sigma`` smoothing fills in."""
    def norm_conv(s):
        k = int(2 * np.ceil(3 * s) + 1)
        num = cv2.GaussianBlur(values * weight, (k, k), s, borderType=cv2.BORDER_REPLICATE)
        den = cv2.GaussianBlur(weight, (k, k), s, borderType=cv2.BORDER_REPLICATE)
        return num, den
    num, den = norm_conv(sigma)
    num2, den2 = norm_conv(fill_sigma)
    wide = num2 / np.maximum(den2, 1e-9)
    if den2.max() <= 1e-9:
        return np.zeros_like(values)
    fine = num / np.maximum(den, 1e-9)
    a = np.clip(den / (0.3 * float(den.max()) + 1e-9), 0, 1)   # fine where well supported
    return a * fine + (1 - a) * wide


@dataclass
class Lattice:
    """The grid of a working copy: its line spacings and the displacement field that
    regularises it."""

    period_x: float            # px, the lattice spacing along x on the working copy
    period_y: float            # px, along y
    mm: float                  # mm that spacing is: 1 (minor lines seen) or 5 (major only)
    step: float                # px between field nodes
    dx: np.ndarray             # (rows, cols) px: vertical lines sit at x = k * period_x + dx
    dy: np.ndarray             # (rows, cols) px: horizontal lines sit at y = k * period_y + dy
    contrast: np.ndarray       # (rows, cols) 0..1, min of both directions' line contrast per node
    coverage: float            # share of nodes with both directions' contrast above the threshold
    strength: float            # 0..1, share of the profiles' power the lattice explains (min of x, y)
    evidence: str = "colour"   # "colour": a coloured grid; "ink": black/grey, no colour to separate


def lattice_field(ev: np.ndarray, guess_px: float | None,
                  cfg: RectifyConfig = RectifyConfig(), kind: str = "colour",
                  weight: np.ndarray | None = None) -> Lattice | None:
    """The grid's displacement field on a working copy's line evidence ``ev`` (pixels weighted
    by ``weight``, None: all 1); None if no periodic grid shows along both axes."""
    lo, hi = cfg.lattice_px_range
    if weight is not None:
        ev = ev * weight
    px, sx = line_period(ev.mean(axis=0), lo, hi, guess_px)
    py, sy = line_period(ev.mean(axis=1), lo, hi, guess_px)
    (px, sx), (py, sy) = _one_spacing(ev, (px, sx), (py, sy), cfg.lattice_xy_ratio_max)
    if px <= 0 or py <= 0 or max(px, py) / min(px, py) > cfg.lattice_xy_ratio_max \
            or min(sx, sy) < cfg.lattice_strength_min:
        return None
    # Both axes show the same grid: a 1 mm spacing on one and 5 mm on the other is one grid.
    major = _is_major(np.sqrt(px * py), guess_px)
    step = max(cfg.node_step_periods * 0.5 * (px + py), cfg.node_min_px)
    dx, dy, contrast = _displacements(ev, px, py, step, cfg)
    for _ in range(cfg.passes - 1):
        # Measure again on the evidence flattened so far; what is left composes with the field.
        flat = _warp(ev, dx, dy, step)
        rx, ry, contrast = _displacements(flat, px, py, step, cfg)
        ny, nx = dx.shape
        cx = (np.arange(nx) + 0.5) * step
        cy = (np.arange(ny) + 0.5) * step
        gx, gy = np.meshgrid(cx, cy)
        sx_, sy_ = (gx + rx).astype(np.float32), (gy + ry).astype(np.float32)
        dx, dy = rx + _field_at(dx, step, sx_, sy_), ry + _field_at(dy, step, sx_, sy_)
    dx, dy = _prefer_smooth(dx, dy, contrast, cfg.smooth_rms_px)
    return Lattice(period_x=px, period_y=py, mm=5.0 if major else 1.0, step=step, dx=dx, dy=dy,
                   contrast=contrast, coverage=float((contrast > cfg.line_min_contrast).mean()),
                   strength=float(min(sx, sy)), evidence=kind)


def _one_spacing(ev: np.ndarray, x: tuple[float, float], y: tuple[float, float],
                 ratio_max: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """``((px, sx), (py, sy))``, the line spacing and strength found along x and y, made one
    grid's: where one axis found the 1 mm lines and the other the 5 mm ones (spacings about 5x
    apart: the minor lines stand out along one axis only, as on a pink grid seen at a slant),
    the finer axis is searched again within ``ratio_max`` of the coarser spacing."""
    (px, _), (py, _) = x, y
    if px <= 0 or py <= 0 or not 5 / ratio_max <= max(px, py) / min(px, py) <= 5 * ratio_max:
        return x, y
    coarse = max(px, py)
    if px < py:
        return line_period(ev.mean(axis=0), coarse / ratio_max, coarse * ratio_max), y
    return x, line_period(ev.mean(axis=1), coarse / ratio_max, coarse * ratio_max)


def _prefer_smooth(dx: np.ndarray, dy: np.ndarray, contrast: np.ndarray,
                   rms_px: float) -> tuple[np.ndarray, np.ndarray]:
    """The field, or its weighted quadratic fit when that leaves under ``rms_px`` (px RMS): a flat
    scan or copy then gets an exact smooth warp instead of the trace's noise in the phases, while
    a bent photo, whose field the fit cannot follow, keeps its own."""
    rows, cols = dx.shape
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float64)
    xx, yy = xx / max(cols, 1), yy / max(rows, 1)
    basis = np.stack([np.ones_like(xx), xx, yy, xx * xx, xx * yy, yy * yy], axis=-1).reshape(-1, 6)
    w = np.sqrt(np.clip(contrast, 0, None)).ravel()
    if w.sum() <= 0:
        return dx, dy
    fits = []
    for d in (dx, dy):
        coef, *_ = np.linalg.lstsq(basis * w[:, None], d.ravel() * w, rcond=None)
        fit = (basis @ coef).reshape(d.shape)
        rms = float(np.sqrt(np.sum(w ** 2 * (d - fit).ravel() ** 2) / np.sum(w ** 2)))
        fits.append((fit, rms))
    if max(r for _, r in fits) < rms_px:
        return fits[0][0].astype(dx.dtype), fits[1][0].astype(dy.dtype)
    return dx, dy


def _displacements(ev: np.ndarray, px: float, py: float, step: float,
                   cfg: RectifyConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dx, dy, contrast)`` on nodes every ``step`` px: where the lattice's vertical and
    horizontal lines sit off ``k * px`` and ``k * py`` (px, unwrapped and smoothed local phase),
    and the lines' local contrast (0..1, the smaller of both directions)."""
    gx, gy = _nodes(ev.shape, step)
    out = {}
    for axis, period in (("y", py), ("x", px)):
        sigma = max(cfg.phase_sigma_periods * period, cfg.phase_sigma_min_px)
        z, contrast = _local_phase(ev, axis, period, sigma, gx, gy)
        disp = -_unwrap(np.angle(z), contrast) * period / (2 * np.pi)
        weight = (contrast ** 2 * (contrast > cfg.line_min_contrast)).astype(np.float64)
        out[axis] = (_smooth_fill(disp, weight, cfg.smooth_nodes, cfg.fill_nodes), contrast)
    return out["x"][0], out["y"][0], np.minimum(out["x"][1], out["y"][1])


def _nodes(shape: tuple[int, int], step: float) -> tuple[np.ndarray, np.ndarray]:
    """``(gx, gy)`` int px of the field's nodes, every ``step`` px from ``step / 2``."""
    h, w = shape
    ny, nx = np.arange(step / 2, h, step), np.arange(step / 2, w, step)
    gy, gx = np.meshgrid(ny.astype(int), nx.astype(int), indexing="ij")
    return gx, gy


def _local_phase(ev: np.ndarray, axis: str, period: float, sigma: float, gx: np.ndarray,
                 gy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(z, contrast)`` at nodes ``(gx, gy)``: the complex demodulation of ``ev`` at ``period``
    px along ``axis`` ("x": vertical lines, "y": horizontal ones), Gaussian-averaged over
    ``sigma`` px, and its contrast ``|z| / mean ink`` (0..1)."""
    h, w = ev.shape
    coord = (np.arange(w, dtype=np.float32)[None, :] if axis == "x"
             else np.arange(h, dtype=np.float32)[:, None])
    arg = (-2 * np.pi / period) * coord
    re, im = _low_pass(ev * np.cos(arg), sigma), _low_pass(ev * np.sin(arg), sigma)
    z = _sample(re, gx, gy) + 1j * _sample(im, gx, gy)
    return z, np.abs(z) / np.maximum(_sample(_low_pass(ev, sigma), gx, gy), 1e-6)


def _low_pass(a: np.ndarray, sigma: float) -> tuple[np.ndarray, int]:
    """``(blurred, factor)``: ``a`` averaged down by ``factor`` (about a quarter of ``sigma``),
    then Gaussian-blurred with the rest of ``sigma``: the same low-pass as a full-size blur at a
    fraction of the cost, since only its values at the field's nodes are used."""
    f = max(1, int(sigma / 4))
    h, w = a.shape
    small = cv2.resize(a, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA) if f > 1 else a
    s = sigma / f
    k = int(2 * np.ceil(3 * s) + 1)
    return cv2.GaussianBlur(small, (k, k), s), f


def _sample(blurred: tuple[np.ndarray, int], gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Values of a ``_low_pass`` result at full-size px ``(gx, gy)`` (bilinear)."""
    img, f = blurred
    fx = ((gx + 0.5) / f - 0.5).astype(np.float32)
    fy = ((gy + 0.5) / f - 0.5).astype(np.float32)
    return cv2.remap(img, fx, fy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _warp(ev: np.ndarray, dx: np.ndarray, dy: np.ndarray, step: float) -> np.ndarray:
    """``ev`` resampled so its lattice lines move to the regular positions (``u + d(u)``)."""
    h, w = ev.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx = gx + _field_at(dx, step, gx, gy)
    my = gy + _field_at(dy, step, gx, gy)
    return cv2.remap(ev, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _field_at(field_: np.ndarray, step: float, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear value of a node field (node (r, c) at ``((c + .5) step, (r + .5) step)``)."""
    fx = np.clip(x / step - 0.5, 0, field_.shape[1] - 1).astype(np.float32)
    fy = np.clip(y / step - 0.5, 0, field_.shape[0] - 1).astype(np.float32)
    return cv2.remap(field_.astype(np.float32), fx, fy, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


# --------------------------------------------------------------------------------------------
# The flat page
# --------------------------------------------------------------------------------------------

@dataclass
class FlatPage:
    """A photo or scan flattened to a page with a straight, regular grid."""

    image: np.ndarray          # (H, W, 3) uint8 RGB, the flat page
    px_per_mm: float           # px/mm of the flat page (x and y), from the lattice
    corners: np.ndarray | None  # (4, 2) photo px of the paper's corners, None: the frame
    map_x: np.ndarray          # (h, w) photo x of every ``map_step`` flat px (coarse source map)
    map_y: np.ndarray          # (h, w) photo y
    map_step: int              # flat px between map nodes
    lattice: Lattice | None    # None: no grid seen, the page is only the homography
    confidence: float          # 0..1, share of the page whose grid lines were seen
    notes: list[str] = field(default_factory=list)
    outline: str = "frame"     # how the paper's outline was found (``OUTLINES``); "frame": none

    def to_photo(self, points: np.ndarray) -> np.ndarray:
        """Flat-page px ``(n, 2)`` -> photo px ``(n, 2)`` through the stored source map."""
        p = np.asarray(points, np.float32).reshape(-1, 2)
        # cv2.remap takes at most 32767 columns: the points go as rows of up to 4096.
        n, cols = len(p), 4096
        if n == 0:
            return np.zeros((0, 2))
        q = np.vstack([p, np.zeros(((-n) % cols, 2), np.float32)]) / self.map_step
        fx, fy = q[:, 0].reshape(-1, cols), q[:, 1].reshape(-1, cols)
        x = cv2.remap(self.map_x, fx, fy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        y = cv2.remap(self.map_y, fx, fy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return np.stack([x.ravel()[:n], y.ravel()[:n]], axis=1).astype(np.float64)

    def diagnostics(self) -> dict:
        """Plain-JSON summary: corners, scale, lattice periods and coverage, confidence, notes."""
        lat = self.lattice
        return {"corners": None if self.corners is None else np.round(self.corners, 1).tolist(),
                "outline": self.outline,
                "flat_size": [int(self.image.shape[1]), int(self.image.shape[0])],
                "px_per_mm": self.px_per_mm, "confidence": self.confidence,
                "lattice": None if lat is None else {
                    "period_x_px": lat.period_x, "period_y_px": lat.period_y,
                    "coverage": lat.coverage, "strength": lat.strength, "evidence": lat.evidence,
                    "max_shift_px": float(max(np.ptp(lat.dx), np.ptp(lat.dy)))},
                "notes": list(self.notes)}


def _phasor_field(ev: np.ndarray, period: float, step: float, sigma: float,
                  min_contrast: float) -> tuple[np.ndarray, np.ndarray]:
    """``(dx, dy)`` px on nodes every ``step`` px: where the lines of spacing ``period`` sit off
    ``k * period``. The local phase is averaged as unit phasors weighted by the lines' contrast,
    then followed from node to node (``_unwrap``, best-seen first) and the whole field moved by
    the whole spacings that bring its median nearest 0: the page is within half a spacing of
    the lines on the whole, but a region the coarse passes left over half a spacing off would,
    taken node by node to the nearest line, slip by a whole one (a mm: 40 ms or 0.1 mV). 0 where
    they do not show (contrast under ``min_contrast`` all around)."""
    gx, gy = _nodes(ev.shape, step)
    out = []
    for axis in ("x", "y"):
        z, contrast = _local_phase(ev, axis, period, sigma, gx, gy)
        weight = (contrast * (contrast > min_contrast)).astype(np.float64)
        unit = z / np.maximum(np.abs(z), 1e-9) * weight
        re_s, im_s = (cv2.GaussianBlur(a, (0, 0), 1.0) for a in (unit.real, unit.imag))
        support = cv2.GaussianBlur(weight, (0, 0), 1.0)
        phase = _unwrap(np.angle(re_s + 1j * im_s), support)
        seen = support > 0.02
        if seen.any():
            phase -= 2 * np.pi * np.round(np.median(phase[seen]) / (2 * np.pi))
        d = -phase * period / (2 * np.pi)
        out.append(np.where(seen, d, 0.0).astype(np.float32))
    return out[0], out[1]


def _moved(flat: FlatPage, image: np.ndarray, rx: np.ndarray, ry: np.ndarray,
           step: float) -> FlatPage:
    """``flat`` with every flat px ``u`` taken from where ``u + r(u)`` was (node field ``r``
    every ``step`` px): its source map composed with ``r`` and the photo remapped once."""
    rows, cols = flat.map_x.shape
    gy, gx = np.mgrid[0:rows, 0:cols].astype(np.float32) * flat.map_step
    sx, sy = gx + _field_at(rx, step, gx, gy), gy + _field_at(ry, step, gx, gy)
    src = flat.to_photo(np.stack([sx.ravel(), sy.ravel()], axis=1))
    map_x = src[:, 0].reshape(rows, cols).astype(np.float32)
    map_y = src[:, 1].reshape(rows, cols).astype(np.float32)
    full_x, full_y = dense_map(map_x, map_y, flat.map_step, flat.image.shape[:2])
    return replace(flat, image=cv2.remap(image, full_x, full_y, cv2.INTER_LINEAR,
                                         borderMode=cv2.BORDER_REPLICATE),
                   map_x=map_x, map_y=map_y)


def refine(flat: FlatPage, image: np.ndarray, cfg: RectifyConfig = RectifyConfig(),
           pre: PreprocessConfig | None = None) -> FlatPage:
    """The lattice measured again on the flat page, at its full resolution, and what is left
    composed into its map (``cfg.refine_passes`` times); then, with ``cfg.fine_lines``, the
    1 mm lines pull the page onto themselves wherever they show. The working copy's field
    leaves ~0.2 mm of error on the traces of simulated photos, i.e. ~10 ms of time; within a
    panel such errors stretch a QRS off its truth. Only a photographed page is refined (its
    outline found against a background): a scan or copy filling the frame lies flat, and there
    the passes follow the lines' own jitter (ECG-Image-Kit's scans read 1-4 dB worse with them).
    Nor is a page whose lattice was seen on too little of it (``cfg.refine_min_confidence``)."""
    lat = flat.lattice
    if lat is None or flat.corners is None or flat.confidence < cfg.refine_min_confidence:
        return flat
    ppm = flat.px_per_mm

    def evidence(page: FlatPage) -> np.ndarray:
        ev, weight, _ = lattice_evidence(page.image, pre, rcfg=cfg, guess_px=5 * ppm, prefer=lat.evidence)
        return ev * weight

    period = 5.0 * ppm
    step = max(cfg.node_step_periods * period, cfg.node_min_px)
    # A lattice of 1 mm lines is not unwrapped again at full resolution: a slip of one line
    # there is a mm of error (the fine pass below follows those lines from node to node).
    for _ in range(cfg.refine_passes if lat.mm > 1 else 0):
        rx, ry, _ = _displacements(evidence(flat), period, period, step, cfg)
        # The flat page's lines sit near multiples of the period: a residual about 0 (its
        # median off by a whole period where the unwrapping started a period away).
        flat = _moved(flat, image, rx - np.median(rx), ry - np.median(ry), step)
    if cfg.fine_lines:
        step = cfg.fine_step_mm * ppm
        rx, ry = _phasor_field(evidence(flat), ppm, step, cfg.fine_sigma_mm * ppm, cfg.fine_min_contrast)
        flat = _moved(flat, image, rx, ry, step)
    return flat


def _other_outline(image: np.ndarray, corners: np.ndarray, lat: Lattice | None, cfg: RectifyConfig,
                   pre: PreprocessConfig | None):
    """``(how, corners, working lattice)`` of the outline other than ``corners`` (``OUTLINES``
    but the threshold's) whose grid shows, or needs far less warping than ``lat``, and needs the
    least; None if none does."""
    best = None
    for how in OUTLINES[1:]:
        other = find_page(image, cfg, how)
        if other is None or np.allclose(other, corners):
            continue
        tried = _working_lattice(image, other, cfg, pre)
        if _more_regular(tried[2], lat, cfg) and (best is None or _bend(tried[2]) < _bend(best[2][2])):
            best = how, other, tried
    return best


def flatten(image: np.ndarray, cfg: RectifyConfig = RectifyConfig(),
            pre: PreprocessConfig | None = None) -> FlatPage:
    """Flatten a photo or scan ``(H, W, 3)`` uint8 RGB into a ``FlatPage`` at ``cfg.out_dpi``.

    Never refuses: without a page outline the frame is used, without a grid the homography alone
    (the notes and a low confidence say so, and the reader decides).
    """
    notes: list[str] = []
    corners = find_page(image, cfg)
    outline = "threshold" if corners is not None else "frame"
    hom, (ww, wh), lat = _working_lattice(image, corners, cfg, pre)
    if corners is not None and (lat is None or _bend(lat) > cfg.outline_check_periods):
        # The outline may be wrong. A scan filling the frame (a stain cutting its corner, a dark
        # scanner edge) lies flat in it: the frame, where its grid shows or needs far less
        # warping. Else a photo's outline cut by a shadow or joined by a bright cloth: of the
        # other outlines, the one whose grid shows, or needs far less warping, and needs the least.
        frame = _working_lattice(image, None, cfg, pre)
        best = ("frame", None, frame) if _more_regular(frame[2], lat, cfg) else \
            _other_outline(image, corners, lat, cfg, pre)
        if best is not None:
            outline, corners, (hom, (ww, wh), lat) = best
    out_ppm = cfg.out_dpi / 25.4
    if lat is None:
        notes.append("no periodic grid found: the page is read as "
                     + ("straightened by its outline" if corners is not None else "given")
                     + f", at an assumed {cfg.paper_mm[0]:.0f} mm width")
        kx = ky = out_ppm * cfg.paper_mm[0] / ww
        conf = 0.0
        if corners is None:
            notes.append("no page outline found against a background: the whole frame is read")
    else:
        kx, ky = lat.mm * out_ppm / lat.period_x, lat.mm * out_ppm / lat.period_y
        conf = float(np.clip(lat.coverage / 0.5, 0, 1) * np.clip(lat.strength / 0.3, 0, 1))
        if conf < 0.5:
            notes.append(f"grid lines seen on {100 * lat.coverage:.0f}% of the page only: the "
                         "flattening may be off where they were not")
    ow, oh = int(round(ww * kx)), int(round(wh * ky))
    scale = min(1.0, np.sqrt(cfg.max_out_mp * 1e6 / max(1, ow * oh)))
    if scale < 1.0:
        notes.append(f"flat page limited to {cfg.max_out_mp:g} MP")
        ow, oh, kx, ky, out_ppm = int(ow * scale), int(oh * scale), kx * scale, ky * scale, out_ppm * scale
    map_x, map_y = _source_map(hom, lat, kx, ky, ow, oh, cfg.map_step_px)
    full_x, full_y = dense_map(map_x, map_y, cfg.map_step_px, (oh, ow))
    flat = cv2.remap(image, full_x, full_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return refine(FlatPage(image=flat, px_per_mm=out_ppm, corners=corners, map_x=map_x,
                           map_y=map_y, map_step=cfg.map_step_px, lattice=lat, confidence=conf,
                           notes=notes, outline=outline),
                  image, cfg, pre)


def dense_map(map_x: np.ndarray, map_y: np.ndarray, step: int,
              hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A coarse source map (node ``(i, j)`` holds the source px of output px ``(j*step, i*step)``)
    made dense: ``(x, y)`` float32 ``(h, w)`` source px of every output px (bilinear), for
    ``cv2.remap``."""
    h, w = hw
    fx = np.ascontiguousarray(np.broadcast_to(np.arange(w, dtype=np.float32)[None, :] / step, (h, w)))
    fy = np.ascontiguousarray(np.broadcast_to(np.arange(h, dtype=np.float32)[:, None] / step, (h, w)))
    return tuple(cv2.remap(m.astype(np.float32), fx, fy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                 for m in (map_x, map_y))


def _more_regular(new: Lattice | None, old: Lattice | None, cfg: RectifyConfig) -> bool:
    """True if lattice ``new`` shows the grid where ``old`` does not, or needs under
    ``cfg.outline_check_ratio`` of its warping while seen on ``cfg.outline_check_coverage`` of
    its coverage (a bogus outline's homography leaves the lattice to undo a skew)."""
    return new is not None and (old is None or (
        _bend(new) < cfg.outline_check_ratio * _bend(old)
        and new.coverage >= cfg.outline_check_coverage * old.coverage))


def _bend(lat: Lattice) -> float:
    """How far the lattice's displacement field departs from a regular grid: the larger
    range of ``dx`` and ``dy``, in lattice spacings (0 on a flat, square-on page)."""
    return float(max(np.ptp(lat.dx) / lat.period_x, np.ptp(lat.dy) / lat.period_y))


def _working_lattice(image: np.ndarray, corners: np.ndarray | None, cfg: RectifyConfig,
                     pre: PreprocessConfig | None):
    """``(homography, (w, h), lattice or None)`` of the working copy the outline (or, None, the
    frame) maps to."""
    hom, (ww, wh) = page_homography(corners, image.shape, cfg.work_long_px)
    work = cv2.warpPerspective(image, hom, (ww, wh), flags=cv2.INTER_AREA,
                               borderMode=cv2.BORDER_REPLICATE)
    # 5 mm on the working copy if the outline (or the frame) is a whole letter/A4 page: only to
    # tell a 1 mm lattice from a 5 mm one, a factor 5 apart.
    guess = 5.0 * ww / cfg.paper_mm[0]
    ev, weight, kind = lattice_evidence(work, pre, rcfg=cfg, guess_px=guess)
    lat = lattice_field(ev, guess, cfg, kind, weight)
    if lat is None:     # the other evidence may show the grid the more periodic one did not
        other = "ink" if kind == "colour" else "colour"
        ev, weight, kind = lattice_evidence(work, pre, rcfg=cfg, guess_px=guess, prefer=other)
        lat = lattice_field(ev, guess, cfg, kind, weight)
    return hom, (ww, wh), lat


def _source_map(hom: np.ndarray, lat: Lattice | None, kx: float, ky: float, ow: int, oh: int,
                step: int) -> tuple[np.ndarray, np.ndarray]:
    """Photo px of every ``step``-th flat px: flat -> working copy (scale, then the lattice
    displacement) -> photo (inverse homography). Node (i, j) is flat px (j*step, i*step)."""
    xo = np.arange(0, ow + step, step, dtype=np.float64)
    yo = np.arange(0, oh + step, step, dtype=np.float64)
    gx, gy = np.meshgrid(xo / kx, yo / ky)
    if lat is not None:
        dx = _field_at(lat.dx, lat.step, gx.astype(np.float32), gy.astype(np.float32))
        dy = _field_at(lat.dy, lat.step, gx.astype(np.float32), gy.astype(np.float32))
        gx, gy = gx + dx, gy + dy
    pts = np.stack([gx.ravel(), gy.ravel()], axis=1).reshape(-1, 1, 2)
    src = cv2.perspectiveTransform(pts, np.linalg.inv(hom)).reshape(gx.shape + (2,))
    return src[..., 0].astype(np.float32), src[..., 1].astype(np.float32)


# --------------------------------------------------------------------------------------------
# Checking a flattening against a simulated photo's truth
# --------------------------------------------------------------------------------------------

def flatten_error(flat: FlatPage, truth: dict, step_mm: float = 2.0,
                  margin_mm: float = 5.0) -> dict:
    """Residual geometric error of ``flat`` against the map of a simulated photo (``truth``
    from ``ecgnb.photo``): px and mm, median and 95th percentile, plus the share of the page
    covered.

    Points every ``step_mm`` of the flat page go to the photo (``FlatPage.to_photo``) and back
    to the clean page (``ecgnb.photo.to_page``); a perfect flattening makes the clean-page
    points an exact scaled, shifted (perhaps turned) copy of the flat ones, so the error is what
    an affine fit flat -> clean page leaves (in clean-page mm; px of the flat page). Only points
    landing on the page, ``margin_mm`` inside its edges, count. ``trace_time_*_mm``: that error
    along the time axis alone, at the points within 1 mm of a lead's trace (what a reading feels:
    0.1 mm is 4 ms).
    """
    from .photo import to_page    # the simulation is only needed to check against it
    ppm = flat.px_per_mm
    h, w = flat.image.shape[:2]
    gx, gy = np.meshgrid(np.arange(0, w, step_mm * ppm), np.arange(0, h, step_mm * ppm))
    pts = np.stack([gx.ravel(), gy.ravel()], axis=1)
    page = to_page(flat.to_photo(pts), truth)
    photo = truth.get("photo")                   # absent: a clean render, the page itself
    page_ppm = float(photo["page_px_per_mm"] if photo else truth["px_per_mm"])
    ph, pw = photo["page_size"] if photo else truth["image_size"]
    m = margin_mm * page_ppm
    ok = np.isfinite(page).all(axis=1)
    ok &= (page[:, 0] > m) & (page[:, 0] < pw - m) & (page[:, 1] > m) & (page[:, 1] < ph - m)
    if ok.sum() < 10:
        return {"n_points": int(ok.sum()), "page_covered": 0.0}
    a = np.hstack([pts[ok], np.ones((int(ok.sum()), 1))])
    coef, *_ = np.linalg.lstsq(a, page[ok], rcond=None)
    resid = a @ coef - page[ok]
    resid_mm = np.linalg.norm(resid, axis=1) / page_ppm
    covered = ok.sum() * (step_mm ** 2) / ((pw / page_ppm - 2 * margin_mm) * (ph / page_ppm - 2 * margin_mm))
    on = _near_traces(truth, (int(ph), int(pw)), page_ppm)[page[ok][:, 1].astype(int), page[ok][:, 0].astype(int)]
    time_mm = np.abs(resid[on, 0]) / page_ppm if on.any() else np.full(1, np.nan)
    return {"n_points": int(ok.sum()), "page_covered": float(min(1.0, covered)),
            "median_mm": float(np.median(resid_mm)), "p95_mm": float(np.quantile(resid_mm, 0.95)),
            "median_px": float(np.median(resid_mm) * ppm), "p95_px": float(np.quantile(resid_mm, 0.95) * ppm),
            "trace_time_median_mm": float(np.median(time_mm)),
            "trace_time_p95_mm": float(np.quantile(time_mm, 0.95))}


def _near_traces(truth: dict, page_hw: tuple[int, int], page_ppm: float,
                 half_mm: float = 1.0) -> np.ndarray:
    """``(h, w)`` bool of the clean page: within ``half_mm`` of a lead's trace (the truth's
    traces, in the photo's px where photographed, taken back to the page)."""
    from .photo import to_page
    mask = np.zeros(page_hw, np.uint8)
    for panel in truth.get("panels", []):
        if len(panel.get("trace", [])) > 1:
            line = to_page(np.asarray(panel["trace"], float), truth)
            line = line[np.isfinite(line).all(axis=1)]
            if len(line) > 1:
                cv2.polylines(mask, [np.round(line).astype(np.int32)], False, 1,
                              max(1, int(round(2 * half_mm * page_ppm))))
    return mask > 0
