"""Classical (no learning) digitizer: page image -> 12-lead signal (``ClassicalDigitizer``).

Pipeline (each step in ``ecgnb.preprocess``): deskew, then rectify perspective from the grid's
own lines (``pp.straighten``) -> grid (px/mm) -> trace mask -> layout (rows, time axis, panels,
calibration pulses; each row's 0 mV line and time axis follow its own grid and trace ends, which
absorbs what rectification left) -> per panel, follow the trace column by
column with dynamic programming over ink runs, adding each pixel row's crossing on steep strokes
-> px to mV (10 mm/mV) and s (25 mm/s) -> resample to ``fs``.

Output signals are ``(n_samples, 12)`` mV in ``ecgnb.leads.LEAD_NAMES`` order, NaN where the page
shows no sample of that lead (a 3x4 page shows each short lead for 2.5 s only). The command
line that writes them to files is ``ecgnb.cli``.
"""
from __future__ import annotations

import numpy as np

from . import preprocess as pp
from .config import PaperConfig, PreprocessConfig
from .io import check_rgb
from .leads import LEAD_INDEX, LEAD_NAMES
from .orient import lead_consistency
from .reading import Reading, ReadOptions, overlay
from .separators import edge_marks, find_bars

EDGE_HOLD_S = 0.1     # s: at a panel's ends, samples this close to found ink repeat its value
BASELINE_PULL = 0.02  # DP cost per mm of distance from the row baseline (keeps to its own row)
SKIP_MM = 1.0         # DP cost (mm-equivalent) of skipping one column without ink on the path
COVER_FLOOR = 0.1    # share of full ink darkness counted as paper or grid, not pen
TICK_PX = 0.8         # px: columns this close to a separator tick between panels are not read
PEAK_TOL_PX = 0.0     # px: run ends this close to the highest neighbour's still count as a peak
                      # (0: on scanned pages any tolerance made ragged flat tops into peaks)
TALL_PX = 1.0         # px a run must exceed the pen width by before its ends may be a peak
STEEP_PX = 3.0        # px a run must exceed the pen width by for its rows to be read across
ROW_REACH_PX = 3      # px either side of a column searched for a stroke's ink along a row
STROKE_MASS = 1.2     # a row's ink over this many single-stroke widths is two strokes merged
INK_MIN = 0.02        # coverage below which a pixel along a stroke's row is blank
SPLIT_MIN_PX = 0.5    # px, a merged row's two crossings closer than this are the apex's one
ORDER_SLOPE = 1.0     # px/px, column points' slope past which a stretch is one steep stroke
OFF_ROW_SHARE = 0.25  # a path with more of its columns than this past half-way to a neighbour
                      # row's 0 mV line follows that row, not its own (a tall QRS crosses for a few)
CROSS_MAX_S = 0.03    # s, the widest stroke of another row's trace that a crossing may be
CROSS_LEVEL_MM = 1.0  # mm, the trace on either side of a crossing stays this level


# --------------------------------------------------------------------------------------------
# Following the trace in one panel
# --------------------------------------------------------------------------------------------

def column_runs(mask: np.ndarray) -> list[np.ndarray]:
    """Vertical ink runs of each column of ``mask`` ``(h, w)``: a list of ``(k, 2)`` [top, bottom]."""
    m = mask.astype(np.int8)
    pad = np.zeros((1, m.shape[1]), np.int8)
    d = np.diff(np.vstack([pad, m, pad]), axis=0)   # (h+1, w): +1 at run tops, -1 below bottoms
    sx, sy = np.nonzero(d.T == 1)
    _, ey = np.nonzero(d.T == -1)
    bounds = np.searchsorted(sx, np.arange(m.shape[1] + 1))
    runs = np.stack([sy, ey - 1], axis=1)
    return [runs[bounds[i]:bounds[i + 1]] for i in range(m.shape[1])]


def run_costs(runs: list[np.ndarray], cost: np.ndarray) -> list[np.ndarray]:
    """Mean of ``cost`` ``(h, w)`` (mm-equivalent per px) over each run's pixels: one ``(k,)``
    array per column of ``runs`` (``column_runs`` of a mask of the same shape)."""
    acc = np.vstack([np.zeros((1, cost.shape[1])), np.cumsum(cost, axis=0, dtype=float)])
    return [(acc[r[:, 1] + 1, x] - acc[r[:, 0], x]) / (r[:, 1] - r[:, 0] + 1)
            for x, r in enumerate(runs)]


def follow_trace(runs: list[np.ndarray], baseline: float, px_per_mm: float,
                 skip_mm: float = SKIP_MM, max_states: int = 16,
                 run_cost: list[np.ndarray] | None = None) -> list[int | None]:
    """Pick one ink run per column (index into ``runs[x]``, None where the path skips a column).

    Dynamic programming (Viterbi) over runs: moving from one run to the next costs the vertical
    gap between them in mm (0 when they touch, as a continuous trace does), plus a small pull
    towards the row baseline so the path stays on its own row when rows overlap. A column may
    be skipped for ``skip_mm`` (mm-equivalent) -- the path keeps its last run -- so a faint or
    broken trace is bridged instead of jumping to a neighbouring row's ink. A path may start at
    any column, paying ``skip_mm`` for each column before it. ``run_cost`` (one ``(k,)`` array
    per column, mm-equivalent; see ``run_costs``) is paid for taking each run: doubtful ink
    (a grid line's stretch kept beside the trace) then loses to a trace that leaves the
    baseline, which the pull alone would not let it.
    """
    # States: (top px, bottom px, cost, back-pointer into previous states, run index or -1).
    top = bot = cost = None
    history: list[tuple[np.ndarray, np.ndarray]] = []  # per column: (back-pointers, run index)
    for x, r in enumerate(runs):
        own = 0.0 if run_cost is None else run_cost[x]
        if top is None:
            if r.size:
                top, bot = r[:, 0].astype(float), r[:, 1].astype(float)
                cost = (skip_mm * x + BASELINE_PULL * np.abs(0.5 * (top + bot) - baseline) / px_per_mm
                        + own)
                history.append((np.full(len(r), -1), np.arange(len(r))))
            else:
                history.append((np.zeros(0, int), np.zeros(0, int)))
            continue
        n_prev = top.size
        carry_cost = cost + skip_mm
        if r.size:
            gap = np.maximum(0.0, np.maximum(r[None, :, 0] - bot[:, None], top[:, None] - r[None, :, 1]))
            total = cost[:, None] + gap / px_per_mm
            bp = np.argmin(total, axis=0)
            best = total[bp, np.arange(len(r))]
            # A path may also start here, as if it had skipped every column so far: without
            # this, stray ink in the first column (a header letter) forces every path through it.
            fresh = skip_mm * x < best
            bp, best = np.where(fresh, -1, bp), np.minimum(best, skip_mm * x)
            centre = 0.5 * (r[:, 0] + r[:, 1])
            new_cost = best + BASELINE_PULL * np.abs(centre - baseline) / px_per_mm + own
            top = np.concatenate([r[:, 0].astype(float), top])
            bot = np.concatenate([r[:, 1].astype(float), bot])
            cost = np.concatenate([new_cost, carry_cost])
            back = np.concatenate([bp, np.arange(n_prev)])
            run_idx = np.concatenate([np.arange(len(r)), np.full(n_prev, -1)])
        else:
            cost, back, run_idx = carry_cost, np.arange(n_prev), np.full(n_prev, -1)
        if cost.size > max_states:  # prune: only the cheapest paths can still win
            keep = np.argsort(cost, kind="stable")[:max_states]
            top, bot, cost, back, run_idx = top[keep], bot[keep], cost[keep], back[keep], run_idx[keep]
        history.append((back, run_idx))
    choice: list[int | None] = [None] * len(runs)
    if cost is None:
        return choice
    j = int(np.argmin(cost))
    for x in range(len(runs) - 1, -1, -1):
        back, run_idx = history[x]
        if back.size == 0:
            continue
        choice[x] = int(run_idx[j]) if run_idx[j] >= 0 else None
        j = int(back[j])
        if j < 0:
            break
    return choice


def run_edges(seg: np.ndarray, cols: np.ndarray, cover: np.ndarray | None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sub-pixel ``(top, bottom, centroid)`` (px) of one ink run per column.

    ``seg`` ``(n, 2)`` holds each run's [top, bottom] pixel rows, in columns ``cols`` of
    ``cover`` ``(h, w)``, the ink coverage (0..1) of each pixel; None: binary, the run only.
    The anti-aliased pen covers the pixels at and just outside a run's ends only partly, so each
    edge moves by the uncovered (inside) or covered (outside) share of those pixels; the
    centroid is coverage-weighted over the run and one pixel either side.
    """
    a, b = seg[:, 0].astype(int), seg[:, 1].astype(int)
    if cover is None:
        return a - 0.5, b + 0.5, 0.5 * (a + b)
    h = cover.shape[0]

    def at(y):
        return np.where((y >= 0) & (y < h), cover[np.clip(y, 0, h - 1), cols], 0.0)

    top = a - 0.5 + (1 - at(a)) - at(a - 1)
    bot = b + 0.5 - (1 - at(b)) + at(b + 1)
    # Running sums down the traced columns only (the same sums as over the whole crop).
    sub = cover[:, cols]
    at_col = np.arange(cols.size)
    rows = np.arange(h, dtype=float)[:, None]
    s0 = np.vstack([np.zeros((1, cols.size)), np.cumsum(sub, axis=0)])
    s1 = np.vstack([np.zeros((1, cols.size)), np.cumsum(sub * rows, axis=0)])
    lo, hi = np.clip(a - 1, 0, h), np.clip(b + 2, 0, h)
    mass = s0[hi, at_col] - s0[lo, at_col]
    centroid = np.where(mass > 1e-6, (s1[hi, at_col] - s1[lo, at_col]) / np.maximum(mass, 1e-6),
                        0.5 * (a + b))
    return top, bot, centroid


def trace_points(runs: list[np.ndarray], choice: list[int | None], pen: float,
                 cover: np.ndarray | None = None) -> np.ndarray:
    """Polyline ``(n, 2)`` of (x, y) px, one point per traced column, keeping peaks
    (``column_points`` without its flags)."""
    return column_points(runs, choice, pen, cover)[0]


def column_points(runs: list[np.ndarray], choice: list[int | None], pen: float,
                  cover: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(points, extreme)``: polyline ``(n, 2)`` of (x, y) px, one point per traced column,
    and ``(n,)`` bool, True where the point is a peak's or a trough's extreme.

    A column's run spans everything the trace covers in that column, widened by the pen. On
    flat and sloped stretches the trace passes through the run's (coverage-weighted) centre,
    but at a peak (the run's top is higher than both neighbours') or a trough (bottom lower
    than both) the extreme, pulled in by half the pen width, is the signal's value there.
    ``cover`` ``(h, w)`` (ink coverage 0..1 of the mask's pixels) gives sub-pixel edges and
    centres and the pen width is then measured from it; without it ``pen`` (px, the binary
    run length of flat stretches) is used.
    """
    cols = np.array([x for x, j in enumerate(choice) if j is not None], dtype=int)
    if not cols.size:
        return np.zeros((0, 2)), np.zeros(0, bool)
    seg = np.array([runs[x][choice[x]] for x in cols], dtype=float)
    top, bot, y = run_edges(seg, cols, cover)
    thick = bot - top
    if cover is not None:  # the pen's own vertical extent: thickness of the flattest half
        pen = float(np.median(thick[thick <= np.median(thick)]))
    a = top + pen / 2
    b = np.maximum(bot - pen / 2, a)
    a = np.minimum(a, b)
    a_prev, a_next = np.r_[a[0], a[:-1]], np.r_[a[1:], a[-1]]
    b_prev, b_next = np.r_[b[0], b[:-1]], np.r_[b[1:], b[-1]]
    tall = thick > pen + TALL_PX  # pen noise and gentle slopes are no peak: keep their centre
    # A tolerance would let an apex spread over two columns top both; stroke points (see
    # ``stroke_points``) now place such an apex in time, so none is used by default.
    peak = tall & (a <= np.minimum(a_prev, a_next) + PEAK_TOL_PX)
    trough = tall & (b >= np.maximum(b_prev, b_next) - PEAK_TOL_PX)
    # A column holding both a peak and a trough: keep the end farther from the neighbours' level.
    both = peak & trough
    ref = 0.5 * (np.r_[y[0], y[:-1]] + np.r_[y[1:], y[-1]])
    y = np.where(peak, a, y)
    y = np.where(trough, b, y)
    y = np.where(both, np.where(ref - a > b - ref, a, b), y)
    return np.stack([cols.astype(float), y], axis=1), peak | trough


def stroke_points(runs: list[np.ndarray], choice: list[int | None], pen: float,
                  cover: np.ndarray, split_merged: bool = False) -> np.ndarray:
    """Extra ``(n, 2)`` (x, y) px points on steep strokes, finer in time than one column.

    Where the trace crosses many pixel rows within one column (a QRS stroke), the column's
    single point says little about *when* each level was passed; each pixel row of the run
    does: its ink's coverage-weighted horizontal centre is where the stroke crosses that row.
    Only runs longer than ``pen`` (px, binary flat-run length) + ``STEEP_PX`` are read, and only
    their rows at least half a pen inside the run's ends (nearer, the pen's round cap sets the
    ink). Along a row only ink connected to the column within ``ROW_REACH_PX`` counts.
    ``cover`` ``(h, w)`` is ink coverage 0..1. ``split_merged``: a row whose ink holds the up-
    and downstroke of a narrow QRS merged gives both strokes' crossings (``merged_crossings``);
    else it gives none.
    """
    h, w = cover.shape
    xs, ys = [], []
    for x, j in enumerate(choice):
        if j is None:
            continue
        a, b = runs[x][j]
        if b - a + 1 <= pen + STEEP_PX:
            continue
        y = np.arange(int(np.ceil(a + pen / 2)), int(np.floor(b - pen / 2)) + 1)
        xs.append(np.full(y.size, x))
        ys.append(y)
    if not xs:
        return np.zeros((0, 2))
    x, y = np.concatenate(xs), np.concatenate(ys)
    offs = np.arange(-ROW_REACH_PX, ROW_REACH_PX + 1)
    cc = x[:, None] + offs[None, :]
    wgt = np.where((cc >= 0) & (cc < w), cover[y[:, None], np.clip(cc, 0, w - 1)], 0.0)
    # Walk outwards from the column and stop at the first blank pixel: a neighbouring stroke's
    # ink beyond it is not this crossing's.
    c = ROW_REACH_PX
    for side in (range(c - 1, -1, -1), range(c + 1, 2 * c + 1)):
        alive = np.ones(len(x), bool)
        for k in side:
            alive &= wgt[:, k] > INK_MIN
            wgt[:, k] *= alive
    mass = wgt.sum(axis=1)
    xc = (wgt * cc).sum(axis=1) / np.maximum(mass, 1e-6)
    # A single stroke's ink across a row is about one pen width (coverage-summed; the lighter
    # half of all rows' ink is that); clearly more is the up- and downstroke of a narrow QRS
    # merged in this row, and their common centre is neither's.
    single = np.median(mass[mass <= np.median(mass)])
    ok = (mass > 0.3) & (mass < STROKE_MASS * single)
    pts = np.stack([xc[ok], y[ok].astype(float)], axis=1)
    if split_merged:
        pts = np.vstack([pts, merged_crossings(wgt, cc, y, mass >= STROKE_MASS * single, single)])
    # One point per (row, centre): neighbouring columns reach the same row crossing.
    _, first = np.unique(np.round(pts * 4), axis=0, return_index=True)
    return pts[np.sort(first)]


def merged_crossings(wgt: np.ndarray, cc: np.ndarray, y: np.ndarray, merged: np.ndarray,
                     single: float) -> np.ndarray:
    """``(n, 2)`` (x, y) px: both strokes' crossings of the ``merged`` rows of ``stroke_points``.

    ``wgt`` ``(n, k)`` is each row's connected ink coverage over columns ``cc`` ``(n, k)`` px,
    ``y`` ``(n,)`` the rows, ``single`` one stroke's ink across a row (px). The up- and
    downstroke lie half a stroke's ink inside the joined ink's sub-pixel left and right edges
    (an edge pixel is covered from inside by its share). Rows whose ink reaches the end of the
    search, or whose two crossings lie within ``SPLIT_MIN_PX`` (the apex, which its column
    point gives), give none.
    """
    inked = wgt > INK_MIN
    rows = np.flatnonzero(merged & inked.any(axis=1) & ~inked[:, 0] & ~inked[:, -1])
    if not rows.size:
        return np.zeros((0, 2))
    k = np.arange(wgt.shape[1])
    first = np.where(inked[rows], k, k.size).min(axis=1)
    last = np.where(inked[rows], k, -1).max(axis=1)
    left = cc[rows, first] + 0.5 - wgt[rows, first] + single / 2
    right = cc[rows, last] - 0.5 + wgt[rows, last] - single / 2
    two = right - left > SPLIT_MIN_PX
    yy = y[rows][two].astype(float)
    return np.vstack([np.stack([left[two], yy], axis=1), np.stack([right[two], yy], axis=1)])


def increasing_fit(values: np.ndarray) -> np.ndarray:
    """The non-decreasing sequence nearest ``values`` ``(n,)`` in least squares (pool adjacent
    violators: each run that decreases is replaced by its mean)."""
    means, sizes = [], []
    for v in values:
        means.append(float(v))
        sizes.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            n = sizes[-2] + sizes[-1]
            means[-2:] = [(means[-2] * sizes[-2] + means[-1] * sizes[-1]) / n]
            sizes[-2:] = [n]
    return np.repeat(means, sizes)


def order_strokes(points: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``points`` ``(n, 2)`` (x, y) px, sorted by x, with each steep stroke made monotone.

    A steep stroke's row points lie within a pixel or two of one x, each placed to a tenth of a
    pixel or so; sorted by that x they zig-zag up and down the stroke, and the signal read
    between them (2.5 samples per column at 200 dpi) jumps with them. Within each run of
    consecutive points where the column points ``cols`` ``(m, 2)`` rise or fall more steeply
    than ``ORDER_SLOPE`` px/px, the points are taken in order of y along that direction and
    their x made non-decreasing with the least change (``increasing_fit``): each keeps its own
    level, and the stroke passes the levels in turn, as a trace does.
    """
    if len(cols) < 3 or len(points) < 3:
        return points
    slope = np.interp(points[:, 0], cols[:, 0], np.gradient(cols[:, 1], cols[:, 0]))
    sign = np.where(slope > ORDER_SLOPE, 1, np.where(slope < -ORDER_SLOPE, -1, 0))
    out = points.copy()
    edges = np.flatnonzero(np.diff(np.r_[2, sign, 2]) != 0)
    for a, b in zip(edges[:-1], edges[1:]):
        if sign[a] != 0 and b - a >= 2:
            along = np.argsort(sign[a] * points[a:b, 1], kind="stable")
            stroke = points[a:b][along]
            out[a:b] = np.stack([increasing_fit(stroke[:, 0]), stroke[:, 1]], axis=1)
    return out[np.argsort(out[:, 0], kind="stable")]


def panel_signal(points: np.ndarray, box: pp.PanelBox, grid: pp.GridInfo, fs: float,
                 paper: PaperConfig = PaperConfig()) -> tuple[np.ndarray, np.ndarray]:
    """``(sample indices, mV)`` of one panel from its polyline (page px, upright).

    x -> time linearly across the box (its row's own time axis, ``paper.speed_mm_s`` mm/s at the
    page's px/mm when the row has none); y -> mV relative to the panel's (sloped) 0 mV line with
    ``paper.gain_mm_mv`` (mm/mV). Samples farther than ``EDGE_HOLD_S`` from any traced
    point at the panel's ends stay NaN.
    """
    n0, n1 = int(round(box.t0_s * fs)), int(round(box.t1_s * fs))
    idx = np.arange(n0, n1)
    xs = box.x0 + (idx / fs - box.t0_s) * (box.x1 - box.x0) / (box.t1_s - box.t0_s)
    if len(points) < 2:
        return idx, np.full(idx.size, np.nan)
    mv = (box.baseline_at(points[:, 0]) - points[:, 1]) / (paper.gain_mm_mv * grid.px_per_mm_y)
    out = np.interp(xs, points[:, 0], mv)
    hold = EDGE_HOLD_S * paper.speed_mm_s * grid.px_per_mm_x
    out[(xs < points[0, 0] - hold) | (xs > points[-1, 0] + hold)] = np.nan
    return idx, out


def off_row_share(runs: list[np.ndarray], choice: list[int | None], baseline: float,
                  reach: float) -> float:
    """Share of the path's columns (``choice`` into ``runs``) whose run centre lies more than
    ``reach / 2`` px from ``baseline`` (px); 0 for an empty path."""
    centres = np.array([0.5 * (runs[x][j][0] + runs[x][j][1]) for x, j in enumerate(choice)
                        if j is not None])
    return float(np.mean(np.abs(centres - baseline) > 0.5 * reach)) if centres.size else 0.0


def own_row_costs(runs: list[np.ndarray], baseline: float, reach: float,
                  skip_mm: float = SKIP_MM) -> list[np.ndarray]:
    """Per run, ``skip_mm * (d / reach) ** 2`` for its centre ``d`` px from ``baseline``: ink
    ``reach`` px away (a neighbouring row's 0 mV line) costs as much as skipping the column."""
    return [skip_mm * ((0.5 * (r[:, 0] + r[:, 1]) - baseline) / reach) ** 2 for r in runs]


def crossed_columns(runs: list[np.ndarray], choice: list[int | None], through_px: float,
                    level_px: float, max_cols: int) -> list[int]:
    """Columns where another trace's vertical stroke crosses this one: the path's run there
    reaches over ``through_px`` px both above and below the level of a trace that comes in
    and goes out on either side at one level (its neighbouring columns' runs under
    ``2 * through_px`` px tall, their centres within ``level_px`` px), for at most ``max_cols``
    columns in a row. The run holds both traces, and its ends are the other trace's, not this
    one's: a trace's own QRS leaves its level on one side in its first and last columns."""
    cols = [x for x, j in enumerate(choice) if j is not None]
    if len(cols) < 3:
        return []
    seg = np.array([runs[x][choice[x]] for x in cols], dtype=float)
    centre, thick = seg.mean(axis=1), seg[:, 1] - seg[:, 0] + 1
    short = thick < 2 * through_px
    out, i = [], 1
    while i < len(cols) - 1:
        if short[i] or not short[i - 1]:
            i += 1
            continue
        j = i
        while j < len(cols) - 1 and not short[j] and j - i < max_cols:
            j += 1
        # cols[i:j] are tall, cols[i - 1] and cols[j] short and next to them in x
        if (short[j] and cols[j] - cols[i - 1] == j - i + 1
                and abs(centre[j] - centre[i - 1]) <= level_px):
            level = np.interp(cols[i:j], [cols[i - 1], cols[j]], [centre[i - 1], centre[j]])
            if np.all((seg[i:j, 0] <= level - through_px) & (seg[i:j, 1] >= level + through_px)):
                out.extend(cols[i:j])
        i = j
    return out


def panel_path(mask: np.ndarray, box: pp.PanelBox, grid: pp.GridInfo,
               cost: np.ndarray | None = None, own_row: bool = False,
               through_mm: float = 0.0) -> tuple:
    """``(window, runs, choice)``: the page px ``(y0, y1, x0, x1)`` of ``box`` in the upright
    ``mask``, the ink runs of its columns (``column_runs``) and the run the trace takes in
    each (``follow_trace``, each run paying the mean of ``cost`` ``(H, W)`` over its pixels
    where given). ``own_row``: a path with over ``OFF_ROW_SHARE`` of its columns past half-way
    to the box's farther edge (a neighbouring row's 0 mV line) is followed again, each run also
    paying ``own_row_costs``. ``through_mm`` > 0: the columns where another row's stroke
    crosses the trace (``crossed_columns``, reaching ``through_mm`` mm past it both ways) are
    left out of the path, so the trace is read across them from its columns either side. It
    depends on the mask (and cost) alone, so readings of one mask with several coverages share
    it."""
    h, w = mask.shape
    x0, x1 = max(0, int(np.floor(box.x0))), min(w, int(np.ceil(box.x1)) + 1)
    y0, y1 = max(0, int(box.y0)), min(h, int(box.y1) + 1)
    runs = column_runs(mask[y0:y1, x0:x1])
    own = None if cost is None else run_costs(runs, cost[y0:y1, x0:x1])
    baseline = float(box.baseline_at(0.5 * (box.x0 + box.x1))) - y0
    choice = follow_trace(runs, baseline, grid.px_per_mm_y, run_cost=own)
    reach = max(baseline, (y1 - y0) - baseline)
    if own_row and reach > 0 and off_row_share(runs, choice, baseline, reach) > OFF_ROW_SHARE:
        pull = own_row_costs(runs, baseline, reach)
        if own is not None:
            pull = [a + b for a, b in zip(pull, own)]
        choice = follow_trace(runs, baseline, grid.px_per_mm_y, run_cost=pull)
    if through_mm > 0:
        ppm, px_per_s = grid.px_per_mm_y, (box.x1 - box.x0) / (box.t1_s - box.t0_s)
        for x in crossed_columns(runs, choice, through_mm * ppm, CROSS_LEVEL_MM * ppm,
                                 max(1, int(CROSS_MAX_S * px_per_s))):
            choice[x] = None
    return (y0, y1, x0, x1), runs, choice


def extract_panel(mask: np.ndarray, box: pp.PanelBox, grid: pp.GridInfo, pen: float,
                  cover: np.ndarray | None = None, keep_apex: bool = False,
                  path: tuple | None = None, split_strokes: bool = False) -> np.ndarray:
    """Polyline ``(n, 2)`` (x, y) page px of the trace inside ``box`` of the upright ``mask``.

    ``cover`` (same shape as ``mask``, see ``ink_coverage``) makes the points sub-pixel;
    ``keep_apex``: peaks' and troughs' column points stay beside the strokes' row points
    (``merge_points``); ``path``: this box's ``panel_path``, if already found;
    ``split_strokes``: rows of a narrow QRS give both strokes' crossings and each steep
    stroke's points are put in order (``stroke_points``, ``order_strokes``).
    """
    (y0, y1, x0, x1), runs, choice = path or panel_path(mask, box, grid)
    sub = None if cover is None else cover[y0:y1, x0:x1]
    pts, extreme = column_points(runs, choice, pen, sub)
    if sub is not None and len(pts):
        extra = stroke_points(runs, choice, pen, sub, split_merged=split_strokes)
        if len(extra):
            merged = merge_points(pts, extra, keep=extreme if keep_apex else None)
            pts = order_strokes(merged, pts) if split_strokes else merged
    return pts + np.array([x0, y0], dtype=float) if len(pts) else pts


def merge_points(cols: np.ndarray, extra: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """Column points ``cols`` and stroke points ``extra`` (both ``(n, 2)`` x, y px) as one
    polyline sorted by x, without the column points that have a stroke point within 0.5 px,
    except those ``keep`` marks ``(n,)`` bool (a peak's or trough's extreme)."""
    # A column's single point on a stroke is coarser than the stroke's own row points; not at
    # a narrow QRS apex, whose rows hold the up- and downstroke merged and give no row point,
    # so the column's extreme is the only point on the apex.
    xe = np.sort(extra[:, 0])
    near = np.searchsorted(xe, cols[:, 0] + 0.5) - np.searchsorted(xe, cols[:, 0] - 0.5)
    cols = cols[(near == 0) | (False if keep is None else keep)]
    allp = np.vstack([cols, extra])
    return allp[np.argsort(allp[:, 0], kind="stable")]


def drop_ticks(points: np.ndarray, box: pp.PanelBox, layout: pp.LayoutInfo,
               marks: list[tuple[float, float]] = (), margin_px: float = 1.0) -> np.ndarray:
    """``points`` without the columns of the separator ticks at ``box``'s inner edges.

    A printer marks each hand-over between panels of a row with a short vertical stroke on the
    baseline; in that column the trace's run swallows the stroke, so the column says nothing
    reliable about the trace (its neighbours do). Edges are px; within ``TICK_PX`` of them a
    point is dropped, and so is every point within ``margin_px`` of a ``marks`` range
    ``(left, right)`` px (``ecgnb.separators.edge_marks``: a wide bar, the pulse's stroke).
    """
    if not len(points):
        return points
    for left, right in marks:
        points = points[(points[:, 0] < left - margin_px) | (points[:, 0] > right + margin_px)]
    cols = {p.col for p in layout.panels if p.row == box.row and not p.rhythm}
    edges = ([box.x0] if box.col > 0 else []) + ([box.x1] if box.col + 1 in cols else [])
    if box.rhythm or not edges:
        return points
    near = np.min(np.abs(points[:, :1] - np.array(edges)[None, :]), axis=1) < TICK_PX
    return points[~near]


def ink_coverage(dark: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(H, W)`` float32 share (0..1) of each pixel covered by trace ink.

    The darkest channel's relative darkness (``pp.darkness``) scaled between the paper-and-grid
    level (a red grid line is nearly white in its lightest channel) and the darkness of fully
    inked pixels (90th percentile inside ``mask``): the anti-aliased pen's partial coverage.
    """
    ink = pp.channel_min(dark)
    full = float(np.quantile(ink[mask], 0.9)) if mask.any() else 1.0
    floor = COVER_FLOOR * full
    return np.clip((ink - floor) / max(full - floor, 1e-3), 0.0, 1.0).astype(np.float32)


def pen_width(mask: np.ndarray, layout: pp.LayoutInfo) -> float:
    """Typical vertical thickness (px) of flat trace segments: the median short run near baselines."""
    lens = []
    for r in layout.rows:
        y = int(r.baseline_y)
        band = mask[max(0, y - 20):y + 21, int(max(0, layout.x_start)):int(layout.x_end)]
        for run in column_runs(band):
            lens.extend((run[:, 1] - run[:, 0] + 1).tolist())
    lens = np.asarray(lens)
    return float(np.median(lens[lens <= np.quantile(lens, 0.5)])) if lens.size else 1.0


# --------------------------------------------------------------------------------------------
# One page
# --------------------------------------------------------------------------------------------

def digitize_image(image: np.ndarray, layout: str = "3x4+1", fs: float = 500,
                   duration_s: float = 10.0, paper: PaperConfig = PaperConfig(),
                   cfg: PreprocessConfig | None = None) -> Reading:
    """Digitize one RGB page ``(H, W, 3)`` uint8 into a ``(round(fs*duration_s), 12)`` mV signal.

    Lead II (or any lead with a rhythm strip) is taken from its full-length strip; the short panel
    only fills samples the strip missed. ``paper`` gives the printed scales (mm/s, mm/mV, the
    calibration pulse), ``cfg`` the preprocessing settings. Raises ``ImageError`` (not an ECG
    page) or ``LayoutError`` (page does not match ``layout``).
    """
    check_rgb(image)
    upright, skew, dark = pp.straighten(image, cfg=cfg, paper=paper)  # dark: shared by grid and trace
    return digitize_straightened(upright, skew, dark, layout, fs, duration_s, paper, cfg)


def read_traces(mask: np.ndarray, lay, grid: pp.GridInfo, pen: float, cover: np.ndarray,
                fs: float, duration_s: float, paper: PaperConfig,
                keep_apex: bool = False, paths: dict | None = None,
                path_cost: np.ndarray | None = None, own_row: bool = False,
                marks: dict | None = None, margin_px: float = 1.0,
                split_strokes: bool = False, through_mm: float = 0.0) -> tuple[np.ndarray, dict]:
    """``(signal, traces)``: every panel of ``lay`` read from ``mask`` with pen coverage
    ``cover`` (0..1 per px); ``signal`` is ``(round(fs * duration_s), 12)`` mV, NaN where no
    panel shows a lead, ``traces`` the points found per panel index (``keep_apex``: see
    ``extract_panel``; ``paths``: a dict of each panel index's ``panel_path``, used where it
    holds one and filled where not, so that readings with other coverages reuse them;
    ``path_cost`` and ``own_row``: see ``panel_path``; ``marks``: ``{panel index: [(left,
    right), ...]}`` px ranges whose points are dropped, see ``drop_ticks``; ``split_strokes``: see
    ``extract_panel``; ``through_mm``: see ``panel_path``)."""
    n = int(round(fs * duration_s))
    signal = np.full((n, len(LEAD_NAMES)), np.nan)
    traces = {}
    paths = {} if paths is None else paths
    # Rhythm strips first, so they own their lead; short panels fill only what is still NaN.
    order = sorted(range(len(lay.panels)), key=lambda i: not lay.panels[i].rhythm)
    for i in order:
        box = lay.panels[i]
        if i not in paths:
            paths[i] = panel_path(mask, box, grid, path_cost, own_row, through_mm)
        pts = extract_panel(mask, box, grid, pen, cover, keep_apex, paths[i], split_strokes)
        pts = drop_ticks(pts, box, lay, (marks or {}).get(i, ()), margin_px)
        traces[i] = pts
        idx, mv = panel_signal(pts, box, grid, fs, paper)
        keep = idx < n
        col = signal[:, LEAD_INDEX[box.lead]]
        target = idx[keep]
        fill = np.isnan(col[target])
        col[target[fill]] = mv[keep][fill]
    return signal, traces


def read_traces_choosing(mask: np.ndarray, lay, grid: pp.GridInfo, pen: float, covers,
                         fs: float, duration_s: float, paper: PaperConfig,
                         keep_apex: bool = False, path_cost: np.ndarray | None = None,
                         own_row: bool = False, marks: dict | None = None,
                         margin_px: float = 1.0, split_strokes: bool = False,
                         through_mm: float = 0.0) -> tuple[np.ndarray, dict, dict]:
    """``read_traces`` with one coverage array, or with each of a ``{name: coverage}`` dict,
    keeping the reading whose limb leads obey Einthoven's law best (``orient.lead_consistency``;
    the first on a tie or where no relation can be judged). Different estimates of the pen's
    coverage err on different pages (a network's saturates on clean prints, the darkness is
    noisy on degraded ones), and the law tells which one read a page better without its truth.
    ``extra`` names the coverage kept and each one's consistency (plain JSON; empty for one array)."""
    if not isinstance(covers, dict):
        return (*read_traces(mask, lay, grid, pen, covers, fs, duration_s, paper, keep_apex,
                             path_cost=path_cost, own_row=own_row, marks=marks,
                             margin_px=margin_px, split_strokes=split_strokes,
                             through_mm=through_mm), {})
    best, scores = None, {}
    paths: dict = {}      # the trace's path through the mask's runs: the same for every coverage
    for name, cover in covers.items():
        signal, traces = read_traces(mask, lay, grid, pen, cover, fs, duration_s, paper, keep_apex,
                                     paths=paths, path_cost=path_cost, own_row=own_row,
                                     marks=marks, margin_px=margin_px,
                                     split_strokes=split_strokes, through_mm=through_mm)
        score = lead_consistency(signal, fs)
        scores[name] = None if score is None else round(score, 4)
        value = -np.inf if score is None else score
        if best is None or value > best[0]:
            best = (value, name, signal, traces)
    return best[2], best[3], {"coverage": best[1], "coverage_consistency": scores}


def digitize_straightened(upright: np.ndarray, skew: float, dark: np.ndarray,
                          layout: str = "3x4+1", fs: float = 500, duration_s: float = 10.0,
                          paper: PaperConfig = PaperConfig(),
                          cfg: PreprocessConfig | None = None, grid: pp.GridInfo | None = None,
                          ink_mask=None, coverage=None, readout_mask=None, path_cost=None) -> Reading:
    """``digitize_image`` after ``preprocess.straighten`` (``upright``, ``skew`` deg, ``dark``),
    for callers that need the straightened page's darkness too (``ecgnb.panels``).

    A caller that knows more than the page's colours may pass the ``grid`` (else
    ``detect_grid``) and ``ink_mask(upright, dark, grid) -> (H, W) bool`` (else the colour
    separation ``remove_grid``); the mask is denoised either way (``ecgnb.rectified`` does both).
    ``coverage(upright, dark, mask) -> (H, W)`` float 0..1 replaces ``ink_coverage`` (the share
    of each pixel the pen covers; ``ecgnb.trace_reader`` passes its network's estimate), or
    returns ``{name: coverage}`` to read with each and keep the most consistent
    (``read_traces_choosing``; its choice in ``Reading.extra``). ``readout_mask(mask, grid, dark) ->
    (H, W) bool`` changes the mask the traces are read from, after the layout, 0 mV lines and
    time axes were found on the mask itself. ``path_cost(upright) -> (H, W)`` float (mm-equivalent
    per px) is what a trace pays for passing through each pixel's run (``follow_trace``).
    """
    if grid is None:
        grid = pp.detect_grid(upright, dark, cfg=cfg, paper=paper)
    ink = (pp.remove_grid(upright, grid, dark=dark, cfg=cfg) if ink_mask is None
           else ink_mask(upright, dark, grid))
    mask = pp.denoise(ink, grid.px_per_mm, cfg=cfg)
    lay = pp.detect_layout(mask, grid, layout, duration_s, strength=pp.grid_strength(dark, cfg=cfg),
                           cfg=cfg, paper=paper)
    pen = pen_width(mask, lay)
    covers = ink_coverage(dark, mask) if coverage is None else coverage(upright, dark, mask)
    readout = mask if readout_mask is None else readout_mask(mask, grid, dark)
    cfg = cfg or PreprocessConfig()
    cost = None if path_cost is None else path_cost(upright)
    marks = edge_marks(lay, find_bars(readout, lay, grid, cfg)) if cfg.edge_marks else None
    signal, traces, extra = read_traces_choosing(readout, lay, grid, pen, covers, fs, duration_s,
                                                 paper, cfg.keep_apex, cost, cfg.own_row,
                                                 marks, cfg.sep_margin_px, cfg.split_strokes,
                                                 cfg.through_mm)
    return Reading(signal=signal, fs=float(fs), lead_names=LEAD_NAMES, method=ClassicalDigitizer.name,
                   skew_deg=skew, grid=grid, layout=lay, upright=upright, traces=traces, extra=extra)


def steps(image: np.ndarray, layout: str = "3x4+1") -> list[tuple[np.ndarray, None, str]]:
    """The preprocessing steps of one page as ``(image, None, title)`` for ``plots.plot_pages``.

    Input, upright page (skew removed), trace mask (grid and background removed, specks
    dropped), and the digitizer's panels and traces drawn over the upright page.
    """
    upright, skew, dark = pp.straighten(image)
    grid = pp.detect_grid(upright, dark)
    mask = pp.denoise(pp.remove_grid(upright, grid, dark=dark), grid.px_per_mm)
    result = digitize_image(image, layout=layout)
    ink = np.repeat((255 - 255 * mask.astype(np.uint8))[:, :, None], 3, axis=2)
    return [(image, None, "input page"),
            (upright, None, f"deskewed by {skew:+.2f} deg, perspective rectified"),
            (ink, None, f"trace mask (grid {grid.px_per_mm:.3f} px/mm, confidence {grid.confidence:.2f})"),
            (overlay(result), None, f"layout {result.layout.name} (confidence "
                                    f"{result.layout.confidence:.2f}), traces found")]


class ClassicalDigitizer:
    """The classical digitizer behind the one interface (``ecgnb.reading.Digitizer``); no state."""

    name = "classical"

    def read(self, image: np.ndarray, options: ReadOptions = ReadOptions()) -> Reading:
        """``digitize_image`` with the caller's layout, fs (Hz) and duration (s)."""
        return digitize_image(image, layout=options.layout, fs=options.fs,
                              duration_s=options.duration_s, paper=options.paper,
                              cfg=options.preprocess)
