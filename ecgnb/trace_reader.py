"""The trace-network digitizer: the classical geometry, the trace ink from ``ecgnb.trace_net``.

The page is made upright as the classical digitizer does (``geometry="straighten"``: deskew and
the grid's own perspective) or flattened as the rectified method does (``"flatten"``: photos
and bent paper); ``"auto"`` (the default) reads first the way the page suggests (flattened
where a page outline stands out against a background, as in a photo; else straightened) and
keeps that reading when it is confident and its limb leads agree, else also reads it the other
way and keeps the more credible of the two (``ecgnb.orient.most_credible``).

The ink is the network's (probability above ``TraceReadConfig.threshold``), joined by every
blob of the colour rules' ink that the network marks in part (``voted_ink``; not a solid
shadow or stain joined to it, ``TraceReadConfig.solid_mm``): a trace's flat
stretch lying on a grid line, which a network that has learnt "long straight lines are grid"
may drop, is kept with the rest of its blob, and labels, text and grid the network rejects go.
Where the colour rules see no grid, or a grid as dark as the trace (a black-grid copy), the
network's ink is used alone. The network estimates how much of each pixel the pen covers
(``trace_net.coverage_from_probability``), from which the classical reader's column-by-column
path and its sub-pixel centres and edges are read (``ecgnb.digitize``); by default the page is
read out twice, with that coverage and with the page's own darkness inside the network's mask,
and the reading whose limb leads obey Einthoven's law better is kept (``TraceReadConfig.coverage``).
Layout, 0 mV lines and time axes come from that mask; the traces are read from it with vertical
gaps under ``TraceReadConfig.bridge_mm`` filled (``bridged``: a thin, steep QRS stroke that the
network marks in pieces is read whole, not cut at its first break), and small holes (no slits) the
page prints dark filled (``filled_holes``: a copy's black grid line that the network cut out of
a thick QRS, pinholes in a thick stroke; ``TraceReadConfig.hole_mm``). A narrow apex keeps its
column point, the rows' calibration pulses agree on one height, a panel's path keeps to its
own row and separator bars at the panels' edges are not read as trace (``with_reader_settings``).
Each lead's reading is low-passed at ``TraceReadConfig.lowpass_hz`` (``low_passed``): the
column-to-column jitter of the read-out lies above the frequencies an ECG carries most of.
A page on which no grid is found is read again at the scale of its own calibration pulses
(``ecgnb.scale.rescaled_reading``): a gridless scan at 300 dpi is not read as a 200-dpi page.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import torch
from scipy.signal import butter, filtfilt

from . import orient
from . import preprocess as pp
from .config import RectifyConfig, TraceReadConfig
from .digitize import digitize_straightened, ink_coverage
from .io import check_rgb
from .reading import Reading, ReadOptions
from .grid import grey_grid
from .rectified import RectifiedDigitizer, black_grid, darkness_ink
from .rectify import find_page
from .scale import rescaled_reading
from .trace_net import coverage_from_probability, inference_copy, load_trace_net, trace_probability


def voted_ink(base: np.ndarray, net: np.ndarray, share: float, solid_px: int = 0) -> np.ndarray:
    """``net`` plus every 8-connected blob of ``base`` (both ``(H, W)`` bool) whose pixels are
    at least ``share`` in ``net``; ``solid_px`` >= 2: without the solid areas of ``base`` (where
    a square of that side fits once its one-pixel holes are filled) that the network does not
    mark: a shadow or a stain joined to the trace, whose path would zigzag through it."""
    if solid_px >= 2:
        kernel = np.ones((solid_px | 1, solid_px | 1), np.uint8)   # odd: an even one shifts
        filled = cv2.morphologyEx(base.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
        solid = cv2.morphologyEx(filled, cv2.MORPH_OPEN, kernel).astype(bool)
        base = base & ~(solid & ~net)
    n, labels = cv2.connectedComponents(base.astype(np.uint8), connectivity=8)
    size = np.bincount(labels.ravel(), minlength=n)
    marked = np.bincount(labels[net].ravel(), minlength=n)
    keep = marked >= share * np.maximum(size, 1)
    keep[0] = False
    return keep[labels] | net


def bridged(mask: np.ndarray, gap_px: int) -> np.ndarray:
    """``mask`` ``(H, W)`` bool with every vertical gap of under ``gap_px`` px between two inked
    pixels of a column filled (a morphological closing along columns; ``gap_px`` < 2: as it is)."""
    if gap_px < 2:
        return mask
    # Padded with blank rows so that ink at the page's edge neither grows nor shrinks.
    padded = np.pad(mask.astype(np.uint8), ((gap_px, gap_px), (0, 0)))
    closed = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, np.ones((gap_px, 1), np.uint8))
    return closed[gap_px:-gap_px].astype(bool)


LOWPASS_ORDER = 2      # Butterworth order of ``low_passed`` (run forwards and backwards)


HOLE_WIDTH_MM = 2.0   # mm, widest hole filled (TraceReadConfig.hole_mm): a thick QRS's width


def filled_holes(mask: np.ndarray, height_px: int, width_px: int,
                 inked: np.ndarray | None = None) -> np.ndarray:
    """``mask`` ``(H, W)`` bool with every hole (a 4-connected blank area that ink encloses)
    at most ``height_px`` tall, ``width_px`` wide and no more than twice as tall as wide filled,
    where ``inked`` ``(H, W)`` bool (None: everywhere) holds most of its pixels (``height_px``
    < 1: as it is).

    A thick pen's QRS crossed by a grid line as dark as the trace (a photocopy) comes out of
    the network with that line's pixels cut from the stroke: the column's ink then stops at the
    line and the apex beyond it is lost; the network also leaves pinholes in a thick stroke.
    Such a cut or pinhole is printed dark and no slit; one between a narrow QRS's strokes or
    beside a separator is tall and narrow, and a cell of the 1 mm grid that the trace and kept
    grid lines enclose is blank paper."""
    if height_px < 1:
        return mask
    n, labels, stats, _ = cv2.connectedComponentsWithStats((~mask).astype(np.uint8), connectivity=4)
    h, w = mask.shape
    x, y, bw, bh = (stats[:, k] for k in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP,
                                           cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
    fill = (x > 0) & (y > 0) & (x + bw < w) & (y + bh < h) & (bh <= height_px) & (bw <= width_px)
    fill &= bh <= 2 * bw    # a slit between two strokes is tall and narrow
    if inked is not None:
        dark = np.bincount(labels[inked], minlength=n)
        fill &= dark >= 0.5 * stats[:, cv2.CC_STAT_AREA]
    fill[0] = False     # label 0 is the ink itself
    return mask | fill[labels]


def low_passed(signal: np.ndarray, fs: float, cutoff_hz: float) -> np.ndarray:
    """``signal`` ``(n, leads)`` mV at ``fs`` Hz, each lead's finite stretches low-passed at
    ``cutoff_hz`` (zero phase: a Butterworth filter forwards and backwards, so no delay); NaN
    stays NaN. Unchanged where ``cutoff_hz`` is 0 or not below the Nyquist frequency, and a
    stretch too short to filter (a few samples) is kept as it is.

    The read-out takes one value per image column (5 ms at 200 dpi); the pen's edges, the
    paper's texture and JPEG blocks move that value by a fraction of a pixel from column to
    column, a jitter whose power lies at frequencies where an ECG has little. Reference val
    pages and simulated val-split photos, photocopies and prints, aligned dB (one reading each,
    filtered afterwards): see ``reports/benchmarks/lowpass_val.md``."""
    out = np.array(signal, dtype=float, copy=True)
    if cutoff_hz <= 0 or cutoff_hz >= fs / 2:
        return out
    b, a = butter(LOWPASS_ORDER, cutoff_hz / (fs / 2))
    pad = 3 * max(len(a), len(b))     # filtfilt's own edge padding needs more samples than this
    for k in range(out.shape[1]):
        finite = np.isfinite(out[:, k])
        edges = np.flatnonzero(np.diff(np.r_[0, finite.astype(np.int8), 0]))
        for start, stop in zip(edges[::2], edges[1::2]):
            if stop - start > pad:
                out[start:stop, k] = filtfilt(b, a, out[start:stop, k])
    return out


GREY_SHARE = 0.01   # a page with fewer of its pixels between black and white than this is binary


def is_binary(image: np.ndarray) -> bool:
    """Whether the RGB page ``(H, W, 3)`` uint8 is black and white only (a thresholded scan or
    copy): under ``GREY_SHARE`` of its pixels' darkest channel lies strictly between 8 and 247."""
    grey = image.min(axis=2)
    return bool(np.mean((grey > 8) & (grey < 247)) < GREY_SHARE)


CROSS_MM = 1.5    # mm, PreprocessConfig.through_mm of this reader (chosen before measuring)


def with_reader_settings(options: ReadOptions, split_strokes: bool = True) -> ReadOptions:
    """``options`` with this reader's settings of the shared front end (the classical reader,
    whose figures the committed study reports, reads as before): a narrow QRS apex keeps its
    column point (``PreprocessConfig.keep_apex``; reference val pages, aligned / unaligned dB:
    15.96 / 13.92 without, 16.12 / 14.00 with), and a row whose calibration pulse is of odd
    height takes its 0 mV line from the pulse's top and the page's median pulse height
    (``PreprocessConfig.pulse_consensus``; see ``reports/benchmarks/trace_net.md``), and a
    panel whose path followed a neighbouring row's trace is followed again kept to its own row
    (``PreprocessConfig.own_row``; photos-dev, where a faint row's gaps let the path onto the
    next row's trace, aligned dB 4.01 without, 4.26 with; reference val pages unchanged), and
    the trace points over separator bars and the pulse's stroke at panel edges are dropped
    (``PreprocessConfig.edge_marks``, ``ecgnb.separators``; reference val pages, aligned /
    unaligned dB: 16.37 / 15.32 without, 16.39 / 15.36 with), and a narrow QRS's merged rows
    give both strokes' crossings, each steep stroke read in order
    (``PreprocessConfig.split_strokes``, where ``split_strokes``; the reader sets it but on a
    black-and-white page, ``is_binary``, whose ink edges carry no sub-pixel position to order a
    stroke's rows by: see ``reports/benchmarks/split_strokes_val.md``), and a column where
    another row's stroke crosses the trace, reaching ``CROSS_MM`` past it both ways, is read
    from the trace either side (``PreprocessConfig.through_mm``; a pacing spike or a tall
    neighbouring QRS drawn through the rhythm strip was read as the strip's own: eik-dev
    aligned dB 12.40 without, 12.63 with; reference val 17.19 both; photos-dev 6.53 both), and
    a row's trace ends where 2 mm of its ink do, not at a grid line's stub past it
    (``PreprocessConfig.end_run``)."""
    pre = dataclasses.replace(options.preprocess, keep_apex=True, pulse_consensus=True, own_row=True,
                              edge_marks=True, split_strokes=split_strokes, through_mm=CROSS_MM,
                              end_run=True)
    return dataclasses.replace(options, preprocess=pre)


GEOMETRIES = ("auto", "straighten", "flatten")
COVERAGES = ("choose", "network", "darkness")   # TraceReadConfig.coverage
SPLITS = ("grey", "always", "never")             # TraceReadConfig.split_strokes


class TraceNetDigitizer(RectifiedDigitizer):
    """Reads a page with the per-pixel trace network's ink (see the module docstring)."""

    name = "trace_net"

    def __init__(self, checkpoint: str | Path | None = None, geometry: str = "auto",
                 rectify: RectifyConfig | None = None, threads: int | None = None,
                 ink: TraceReadConfig | None = None, keep_probability: bool = False):
        if geometry not in GEOMETRIES:
            raise ValueError(f"unknown geometry {geometry!r}; known: {', '.join(GEOMETRIES)}")
        self.ink = TraceReadConfig() if ink is None else ink
        if self.ink.coverage not in COVERAGES:
            raise ValueError(f"unknown coverage {self.ink.coverage!r}; known: {', '.join(COVERAGES)}")
        if self.ink.split_strokes not in SPLITS:
            raise ValueError(f"unknown split_strokes {self.ink.split_strokes!r}; known: {', '.join(SPLITS)}")
        super().__init__(rectify)
        model, self.net_cfg = load_trace_net(checkpoint)
        self.model = inference_copy(model)
        self.geometry, self.threads = geometry, threads
        # (page, probability) of the upright pages of the current reading; the page itself is
        # held, so no other array can take its id. ``keep_probability``: kept until the next
        # reading (the crops of ``ecgnb.panels`` cut the network's probability of the page read).
        self._seen: list[tuple[np.ndarray, np.ndarray]] = []
        self.keep_probability = keep_probability

    def probability(self, upright: np.ndarray) -> np.ndarray:
        """``(H, W)`` trace probability of an upright page (computed once per page per reading)."""
        for page, prob in self._seen:
            if page is upright:
                return prob
        if self.threads:
            torch.set_num_threads(self.threads)
        prob = trace_probability(self.model, upright, self.net_cfg)
        self._seen.append((upright, prob))
        return prob

    def ink_hooks(self, options: ReadOptions, flat: bool = True) -> tuple:
        """``(ink_mask, coverage, readout_mask, path_cost)`` for the reader: the network's ink,
        voted with the colour rules' ink of a ``flat`` page (``darkness_ink``) or a straightened
        one (``remove_grid``) where they found a grid, and alone where the grid is as dark as
        the trace or was not found; the coverages to choose from; the traces read from that
        ink with short vertical gaps bridged (``TraceReadConfig.bridge_mm``); and the trace's
        path paying ``TraceReadConfig.weak_mm`` per column through ink the network itself does
        not mark (what the vote or a bridge added), so that a grid line kept beside the trace
        does not carry it along the 0 mV line past a deep QRS."""
        def ink_mask(upright, dark, grid):
            net = self.probability(upright) > self.ink.threshold
            if not grid.found:
                return net
            if flat:
                base = darkness_ink(dark, grid, self.cfg, options.preprocess.trace_darkness)
            elif grey_grid(grid, options.preprocess) and black_grid(dark, grid, self.cfg):
                base = None     # the colour rules would keep the grid lines the trace touches
            else:
                base = pp.remove_grid(upright, grid, dark=dark, cfg=options.preprocess)
            solid = int(round(self.ink.solid_mm * grid.px_per_mm))
            return net if base is None else voted_ink(base, net, self.ink.vote_share, solid)

        def coverage(upright, dark, mask):
            found = {"darkness": lambda: ink_coverage(dark, mask),
                     "network": lambda: coverage_from_probability(self.probability(upright), self.net_cfg)}
            if self.ink.coverage == "choose":
                return {name: make() for name, make in found.items()}
            return found[self.ink.coverage]()

        def readout_mask(mask, grid, dark):
            ppm = grid.px_per_mm
            printed = dark.min(axis=2) >= options.preprocess.grey_grid_darkness
            holes = filled_holes(mask, int(round(self.ink.hole_mm * ppm)),
                                 int(round(HOLE_WIDTH_MM * ppm)), printed)
            return bridged(holes, int(round(self.ink.bridge_mm * ppm)))

        def path_cost(upright):
            weak = self.probability(upright) <= self.ink.threshold
            return weak.astype(np.float32) * np.float32(self.ink.weak_mm)

        return ink_mask, coverage, readout_mask, path_cost

    def read_as_given(self, image: np.ndarray, options: ReadOptions) -> Reading:
        """The classical deskew and perspective, then the network's ink."""
        upright, skew, dark = pp.straighten(image, cfg=options.preprocess, paper=options.paper)
        ink_mask, coverage, readout_mask, path_cost = self.ink_hooks(options, flat=False)
        return digitize_straightened(upright, skew, dark, options.layout, options.fs,
                                     options.duration_s, options.paper, options.preprocess,
                                     ink_mask=ink_mask, coverage=coverage, readout_mask=readout_mask,
                                     path_cost=path_cost)

    def _auto(self, image: np.ndarray, options: ReadOptions) -> tuple[Reading, str, list[dict]]:
        """The likelier geometry first (flatten where a page outline stands out against a
        background, as in a photo; else straighten), kept when credible; else also the other,
        the more credible kept (the first unless the other is clearly better)."""
        order = ("flatten", "straighten") if find_page(image, self.cfg) is not None \
            else ("straighten", "flatten")
        reads = {"straighten": lambda: self.read_as_given(image, options),
                 "flatten": lambda: super(TraceNetDigitizer, self).read(image, options)}
        return orient.most_credible([(g, reads[g]) for g in order], "geometry")

    def read(self, image: np.ndarray, options: ReadOptions = ReadOptions()) -> Reading:
        """Digitize one RGB page ``(H, W, 3)`` uint8: ``(round(fs * duration_s), 12)`` mV; a page
        without a grid is read at the scale of its calibration pulses (``ecgnb.scale``)."""
        check_rgb(image)
        split = self.ink.split_strokes == "always" or (self.ink.split_strokes == "grey"
                                                      and not is_binary(image))
        options = with_reader_settings(options, split_strokes=split)
        self._seen = []
        try:
            if not self.ink.gridless_scale:
                return self._read_once(image, options)
            return rescaled_reading(lambda page: self._read_once(page, options), image,
                                    options.paper, options.preprocess, options.duration_s)
        finally:
            if not self.keep_probability:   # a page's probability is not kept past its reading
                self._seen = []

    def _read_once(self, image: np.ndarray, options: ReadOptions) -> Reading:
        """One reading of ``image`` in the digitizer's geometry, as it is (no rescaling)."""
        tried = None
        if self.geometry == "auto":
            reading, geometry, tried = self._auto(image, options)
        elif self.geometry == "flatten":
            reading, geometry = super().read(image, options), "flatten"
        else:
            reading, geometry = self.read_as_given(image, options), "straighten"
        reading.method = self.name
        reading.signal = low_passed(reading.signal, reading.fs, self.ink.lowpass_hz)
        reading.extra["lowpass_hz"] = self.ink.lowpass_hz     # in the page's JSON: how it was read
        reading.extra["geometry"] = geometry
        if tried is not None:
            reading.extra["geometries"] = tried
        return reading
