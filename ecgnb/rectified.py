"""The rectified digitizer: flatten the photo or scan (``ecgnb.rectify``), then read the flat page.

Reading the flat page is the classical reader (``ecgnb.digitize``) with what the flattening
already knows handed in instead of guessed again: the page is straight (no deskew or
perspective step), its scale is the flat page's px/mm, and where the grid has no colour (black or
grey: a photocopy, a black-and-white print) the trace is told from the grid by the lattice, not
by colour (``lattice_mask``). Which way up (0 or 180 deg, the flat page is landscape) follows
``ecgnb.orient``: the turn whose reading obeys the limb-lead relations and shows calibration
pulses.
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from . import orient
from .config import RectifyConfig
from .digitize import digitize_image, digitize_straightened
from .grid import GridInfo, channel_min, darkness, detect_grid
from .reading import Reading, ReadOptions
from .rectify import FlatPage, flatten


def line_offset(profile: np.ndarray, period: float) -> float:
    """px in ``[0, period)`` where lines repeating every ``period`` px sit in a 1-D profile (the
    phase of its Fourier coefficient at that period)."""
    x = np.arange(profile.size)
    z = np.sum((profile - profile.mean()) * np.exp(-2j * np.pi * x / period))
    return float((-np.angle(z) / (2 * np.pi) * period) % period)


def _near_lines(n: int, offset: float, spacing: float, half_px: float) -> np.ndarray:
    """``(n,)`` bool: which of ``n`` px lie within ``half_px`` of a line at ``offset + k * spacing``."""
    d = (np.arange(n) - offset) % spacing
    return np.minimum(d, spacing - d) <= half_px


def _openings(ink: np.ndarray, run_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Grey openings of ``ink`` along x and along y with a run ``run_px`` long (at least 3 px):
    what stays is straight horizontal, respectively vertical, runs at their own darkness."""
    run = max(3, int(round(run_px)))
    horiz = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (run, 1)))
    vert = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, run)))
    return horiz, vert


def lattice_mask(upright: np.ndarray, dark: np.ndarray, grid: GridInfo,
                 cfg: RectifyConfig = RectifyConfig(), trace_darkness: float = 0.45) -> np.ndarray:
    """``(H, W)`` bool trace ink of a flat page, whatever the grid's colour.

    On a flat page every grid line is a straight horizontal or vertical run at a known spacing
    (1 mm, ``grid.px_per_mm``). A grey opening ``cfg.lattice_line_mm`` long keeps those runs at
    their own darkness, even where the trace crosses them; kept only on the lattice's line
    positions, it is the grid model, so a flat stretch of trace between lines is never taken
    for grid. Ink is what is darker than that model by ``cfg.lattice_margin`` and darker than
    ``trace_darkness``; a small closing (``cfg.bridge_mm``) bridges the trace where it crossed a
    line as dark as itself (black grid on a photocopy). Remnants of lines the flattening left
    slightly bent are removed by an opening ``cfg.thin_line_mm`` wide, so on a black grid a
    trace no bolder than the grid's lines is lost with them.
    """
    ink = channel_min(dark)
    ppm = grid.px_per_mm
    horiz, vert = _openings(ink, cfg.lattice_line_mm * ppm)
    # Keep only what is thin across the run: a flat stretch of trace lying on a line is
    # bolder than the line and must stay ink.
    t = max(2, int(round(cfg.thin_line_mm * ppm))) + 1
    horiz = horiz - cv2.morphologyEx(horiz, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, t)))
    vert = vert - cv2.morphologyEx(vert, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (t, 1)))
    half = cfg.line_band_mm * ppm
    # Every line, 1 mm or 5 mm, sits on the 1 mm lattice: its phase places them all.
    rows = _near_lines(ink.shape[0], line_offset(horiz.mean(axis=1), ppm), ppm, half)
    cols = _near_lines(ink.shape[1], line_offset(vert.mean(axis=0), ppm), ppm, half)
    model = np.maximum(horiz * rows[:, None], vert * cols[None, :])
    mask = ((ink - model) > cfg.lattice_margin) & (ink > trace_darkness)
    # What is left of the lines where the page is not perfectly flat is a line's width at most;
    # a trace drawn bolder than the grid survives an opening that width wide.
    t = int(round(cfg.thin_line_mm * ppm))
    if t >= 2:
        mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN,
                                cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (t + 1, t + 1))).astype(bool)
    k = max(1, int(round(cfg.bridge_mm * ppm)))
    if k > 1:
        mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE,
                                cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))).astype(bool)
    return mask


def line_runs(ink: np.ndarray, px_per_mm: float, cfg: RectifyConfig = RectifyConfig()) -> np.ndarray:
    """``(H, W)`` float32: the darkness of straight horizontal or vertical runs at least
    ``cfg.line_probe_mm`` long (a grey opening each way): the grid's lines, and the few flat
    stretches of trace."""
    return np.maximum(*_openings(ink, cfg.line_probe_mm * px_per_mm))


def _darkest_lines(profile: np.ndarray, ppm: float, half: float) -> np.ndarray:
    """``(n,)`` bool: px within ``half`` of the darkest of the five 1 mm line classes (the 5 mm
    lines; any class when all are alike) of a 1-D projection ``profile``."""
    off = line_offset(profile, ppm)
    near = _near_lines(profile.size, off, ppm, half)
    cls = np.round((np.arange(profile.size) - off) / ppm).astype(int) % 5
    means = [profile[near & (cls == c)].mean() if (near & (cls == c)).any() else -1 for c in range(5)]
    return near & (cls == int(np.argmax(means)))


def grid_line_level(lines: np.ndarray, px_per_mm: float, cfg: RectifyConfig = RectifyConfig()) -> float:
    """Relative darkness (0..1) of the grid's 5 mm lines from ``line_runs`` of a flat page.

    Every line sits on the 1 mm lattice (``line_offset`` of the runs' projections), the 5 mm
    lines on the darkest fifth of it; the ``cfg.line_level_quantile`` of the run darkness within
    ``cfg.level_band_mm`` of them is theirs, the trace crossing them being a small share (a
    photo's red grid can be dark in every channel, a photocopy's as black as its trace).
    """
    half = cfg.level_band_mm * px_per_mm
    rows = _darkest_lines(lines.mean(axis=1), px_per_mm, half)
    cols = _darkest_lines(lines.mean(axis=0), px_per_mm, half)
    band = np.concatenate([lines[rows].ravel(), lines[:, cols].ravel()])
    return float(np.quantile(band, cfg.line_level_quantile)) if band.size else 0.0


def black_grid(dark: np.ndarray, grid: GridInfo, cfg: RectifyConfig = RectifyConfig()) -> bool:
    """Whether the grid's straight line runs are as dark as a trace (``cfg.dark_grid_level``):
    no darkness rule can tell them apart (a black grid, a grid a copier turned black)."""
    ink = channel_min(dark)
    level = grid_line_level(line_runs(ink, grid.px_per_mm, cfg), grid.px_per_mm, cfg)
    return level >= cfg.dark_grid_level


def darkness_ink(dark: np.ndarray, grid: GridInfo, cfg: RectifyConfig = RectifyConfig(),
                 trace_darkness: float = 0.45) -> np.ndarray | None:
    """``(H, W)`` bool trace ink of a flat page told from its grid by darkness, or None where
    the grid's lines are as dark as the trace (``cfg.dark_grid_level``: a black grid).

    Ink is what is darker than ``trace_darkness`` in every channel (the trace; a light or
    coloured grid is not), except pixels of straight line runs no darker than the grid's own
    lines plus ``cfg.lattice_margin`` (a grid dark in every channel, as in a dim photo).
    """
    ink = channel_min(dark)
    lines = line_runs(ink, grid.px_per_mm, cfg)
    level = grid_line_level(lines, grid.px_per_mm, cfg)
    if level >= cfg.dark_grid_level:
        return None
    gridlike = (lines > cfg.line_floor) & (ink <= level + cfg.lattice_margin)
    return (ink > trace_darkness) & ~gridlike


def flat_ink(upright: np.ndarray, dark: np.ndarray, grid: GridInfo,
             cfg: RectifyConfig = RectifyConfig(), trace_darkness: float = 0.45) -> np.ndarray:
    """``(H, W)`` bool trace ink of a flat page, whatever the grid's colour: by darkness
    (``darkness_ink``), or where darkness cannot tell the lines from the trace (a black grid)
    by the lattice's geometry (``lattice_mask``)."""
    ink = darkness_ink(dark, grid, cfg, trace_darkness)
    return lattice_mask(upright, dark, grid, cfg, trace_darkness) if ink is None else ink


def flat_grid(flat: FlatPage, image: np.ndarray, dark: np.ndarray, options: ReadOptions) -> GridInfo:
    """The grid of a flat page: its colour from ``detect_grid``, its scale from the flattening
    (exact by construction where the lattice was seen)."""
    found = detect_grid(image, dark, cfg=options.preprocess, paper=options.paper)
    if flat.lattice is None:
        return found
    ppm = flat.px_per_mm
    return dataclasses.replace(found, px_per_mm=ppm, px_per_mm_x=ppm, px_per_mm_y=ppm, minor_px=ppm,
                               major_px=5 * ppm, found=True,
                               confidence=max(found.confidence, flat.confidence), notes=[])


def read_flat(flat: FlatPage, options: ReadOptions, cfg: RectifyConfig = RectifyConfig(),
              turn: int = 0, ink_mask=None, coverage=None, readout_mask=None,
              path_cost=None) -> Reading:
    """Read a flat page (turned ``turn`` deg) with the classical reader, grid and mask from the
    flattening; raises the reader's ``ImageError`` / ``LayoutError`` on a refusal.

    ``ink_mask`` and ``coverage`` (see ``digitize_straightened``) replace the colour-free mask
    (``flat_ink``, used where a lattice was seen) and the darkness coverage; ``readout_mask``
    changes the mask the traces are read from and ``path_cost`` what the trace's path pays
    through each pixel."""
    image = orient.turned(flat.image, turn)
    dark = darkness(image, cfg=options.preprocess)
    grid = flat_grid(flat, image, dark, options)
    if ink_mask is None and flat.lattice is not None:
        ink_mask = lambda up, dk, g: flat_ink(up, dk, g, cfg, options.preprocess.trace_darkness)  # noqa: E731
    return digitize_straightened(image, 0.0, dark, options.layout, options.fs, options.duration_s,
                                 options.paper, options.preprocess, grid=grid, ink_mask=ink_mask,
                                 coverage=coverage, readout_mask=readout_mask, path_cost=path_cost)


def quarter_turn(points: np.ndarray) -> int:
    """Degrees (0, 90, 180, 270) counter-clockwise that turn an image so that the page's
    left-to-right, from ``points[0]`` to ``points[1]`` (photo px ``(x, y)``, y down), runs left
    to right, to the nearest quarter turn."""
    dx, dy = np.asarray(points[1], float) - np.asarray(points[0], float)
    seen = int(round(np.degrees(np.arctan2(-dy, dx)) / 90.0)) * 90   # deg ccw, as displayed
    return (-seen) % 360


class RectifiedDigitizer:
    """Photos and scans: ``ecgnb.rectify.flatten``, then the classical reader on the flat page."""

    name = "rectified"

    def __init__(self, rectify: RectifyConfig | None = None):
        self.cfg = RectifyConfig() if rectify is None else rectify

    def read(self, image: np.ndarray, options: ReadOptions = ReadOptions()) -> Reading:
        """Flatten ``image`` and read it upright; the flattening's findings go in ``extra``
        (``"rectify"``; ``"page_turn_deg"``: how far, counter-clockwise, the image was turned to
        read it upright) and its doubts in the reading's warnings."""
        flat = flatten(image, self.cfg, options.preprocess)
        if flat.lattice is None and flat.corners is None:
            reading = self.read_as_given(image, options)
            turn_info = {"page_turn_deg": 0}
        else:
            reading, turn, tried = self._upright(flat, options)
            mid = flat.map_x.shape[0] // 2     # the flat page's left-to-right, in photo px
            quarter = quarter_turn(np.array([[flat.map_x[mid, 0], flat.map_y[mid, 0]],
                                            [flat.map_x[mid, -1], flat.map_y[mid, -1]]]))
            turn_info = {"page_turn_deg": (quarter + turn) % 360, "orientations": tried}
        reading.method = self.name
        reading.extra.update({"rectify": flat.diagnostics(), **turn_info})
        reading.notes.extend(flat.notes)
        return reading

    def read_as_given(self, image: np.ndarray, options: ReadOptions) -> Reading:
        """Nothing to flatten by: the classical reader, with its own deskew, as given."""
        return digitize_image(image, options.layout, options.fs, options.duration_s,
                              options.paper, options.preprocess)

    def ink_hooks(self, options: ReadOptions) -> tuple:
        """``(ink_mask, coverage, readout_mask, path_cost)`` for ``read_flat``; Nones: the
        colour-free mask, read as the classical reader reads it."""
        return None, None, None, None

    def _upright(self, flat: FlatPage, options: ReadOptions) -> tuple[Reading, int, list[dict]]:
        """Read as flattened; where that is doubtful also turned by 180 deg, keep the more
        credible (``orient.most_credible``; as flattened unless the turn is clearly better)."""
        hooks = self.ink_hooks(options)
        attempts = [(turn, lambda turn=turn: read_flat(flat, options, self.cfg, turn, *hooks))
                    for turn in (0, 180)]
        return orient.most_credible(attempts, "rotated_deg")
