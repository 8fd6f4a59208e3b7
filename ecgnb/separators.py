"""Printed marks at the panels' edges that are not trace: lead separators and pulse strokes.

Many printers (and ECG-Image-Kit) mark each hand-over between two panels of a row with a
vertical bar: a thin tick on the 0 mV line or a thick bar up to several mm tall, centred where
the new lead starts. The trace's path runs up and down such a bar, and the calibration pulse's
right stroke where a row's first panel starts, so a panel's first or last few samples read a
spike of up to 1 mV. ``find_bars`` finds the bars in the ink mask, ``edge_marks`` adds the
pulse strokes; ``ecgnb.digitize`` drops the trace points over them (the panel's edge samples
then hold the nearest trace value).

A separator is told from a QRS stroke by its shape: a run of ink at least
``cfg.sep_min_mm`` tall whose columns (at most ``cfg.sep_width_max_mm`` of them) all share one
top and one bottom, with no column of similar height beside it. A steep QRS stroke is slanted:
its columns' runs step up or down from one column to the next.
"""
from __future__ import annotations

import numpy as np

from .config import PreprocessConfig
from .grid import GridInfo
from .layout_detect import LayoutInfo, PanelBox


def _longest_runs(band: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(top, bottom)`` row of the longest ink run of each column of ``band`` ``(h, w)`` bool;
    ``top = bottom = -1`` for a blank column."""
    h, w = band.shape
    top, bottom = np.full(w, -1), np.full(w, -1)
    for c in range(w):
        col = np.concatenate([[0], band[:, c].astype(np.int8), [0]])
        d = np.diff(col)
        starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1
        if starts.size:
            k = int(np.argmax(ends - starts))
            top[c], bottom[c] = starts[k], ends[k]
    return top, bottom


def find_bar(mask: np.ndarray, x: float, y: float, grid: GridInfo,
             cfg: PreprocessConfig = PreprocessConfig()) -> tuple[float, float] | None:
    """``(left, right)`` px (inclusive columns) of a separator bar within
    ``cfg.sep_search_mm`` of ``x`` in the band of ``cfg.sep_band_mm`` around ``y`` (px), or None.

    A bar is a group of adjacent columns whose longest ink runs are at least
    ``cfg.sep_min_mm`` tall and (but for the outermost two) agree on their top and bottom within
    ``cfg.sep_flat_mm`` or half the group's width (a round cap), at most ``cfg.sep_width_max_mm``
    wide, flanked on both sides by columns whose runs are under half its height. The group
    nearest ``x`` wins.
    """
    ppx, ppy = grid.px_per_mm_x, grid.px_per_mm_y
    reach = cfg.sep_search_mm * ppx
    xa = max(0, int(np.floor(x - reach)) - 1)
    xb = int(min(mask.shape[1], np.ceil(x + reach) + 2))
    ya = int(max(0, y - cfg.sep_band_mm * ppy))
    yb = int(min(mask.shape[0], y + cfg.sep_band_mm * ppy + 1))
    if xb - xa < 3 or yb - ya < 3:
        return None
    top, bottom = _longest_runs(mask[ya:yb, xa:xb])
    height = bottom - top + 1
    tall = (top >= 0) & (height >= cfg.sep_min_mm * ppy)
    best = None
    c = 0
    while c < tall.size:
        if not tall[c]:
            c += 1
            continue
        e = c
        while e + 1 < tall.size and tall[e + 1]:
            e += 1
        group = slice(c, e + 1)
        h = int(np.min(height[group]))
        # The anti-aliased outer columns of a wide bar are a pixel shorter and a round cap
        # shortens the core by up to half its width: judged on the core, with that allowance.
        core = slice(c + 1, e) if e - c >= 2 else group
        tol = max(cfg.sep_flat_mm * ppy, 0.5 * (e - c + 1))
        flat = np.ptp(top[core]) <= tol and np.ptp(bottom[core]) <= tol
        narrow = (e - c + 1) <= cfg.sep_width_max_mm * ppx
        # Flanks: the columns just outside the group hold only the trace (short runs).
        flanks = [height[k] if top[k] >= 0 else 0 for k in (c - 1, e + 1) if 0 <= k < tall.size]
        alone = len(flanks) == 2 and max(flanks) < 0.5 * h
        if flat and narrow and alone:
            left, right = float(xa + c), float(xa + e)
            dist = abs(0.5 * (left + right) - x)
            if dist <= reach and (best is None or dist < best[0]):
                best = (dist, left, right)
        c = e + 1
    return None if best is None else (best[1], best[2])


def find_bars(mask: np.ndarray, layout: LayoutInfo, grid: GridInfo,
              cfg: PreprocessConfig = PreprocessConfig()) -> dict[tuple[int, int], tuple[float, float]]:
    """``{(row, col): (left, right)}`` px of the separator bar found at the left edge of each
    short panel ``col > 0`` (``find_bar`` on the row's 0 mV line there)."""
    bars = {}
    for box in layout.panels:
        if box.rhythm or box.col == 0 or (box.row, box.col) in bars:
            continue
        bar = find_bar(mask, box.x0, box.baseline_at(box.x0), grid, cfg)
        if bar is not None:
            bars[(box.row, box.col)] = bar
    return bars


def edge_marks(layout: LayoutInfo, bars: dict[tuple[int, int], tuple[float, float]]
               ) -> dict[int, list[tuple[float, float]]]:
    """``{panel index: [(left, right), ...]}`` px ranges of non-trace marks at each panel's
    edges: the separator ``bars`` (``find_bars``) at a short panel's inner edges and the
    calibration pulse's right stroke where it reaches past a row's first panel's (or rhythm
    strip's) start."""
    marks: dict[int, list[tuple[float, float]]] = {}
    for i, box in enumerate(layout.panels):
        found = [] if box.rhythm else [bars[k] for k in ((box.row, box.col), (box.row, box.col + 1))
                                       if k in bars]
        stroke = _pulse_stroke(layout, box)
        if stroke is not None:
            found.append(stroke)
        if found:
            marks[i] = found
    return marks


def _pulse_stroke(layout: LayoutInfo, box: PanelBox) -> tuple[float, float] | None:
    """The calibration pulse's columns (px) when they reach the first panel of its row."""
    if box.col != 0:
        return None
    cal = layout.rows[box.row].calibration
    if not cal or cal["x1"] + 1.0 < box.x0:
        return None
    return float(cal["x0"]), float(cal["x1"])
