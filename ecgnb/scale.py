"""The page's scale where no grid shows: from its calibration pulses, its rows' length or its width.

A page without a grid (printed gridless, or a photocopy that dropped a light grid) gives the
reader no px/mm, and ``ecgnb.grid.detect_grid`` assumes the profile's dpi (200). A scan at
300 dpi then reads 1.5 times too tall and too long, and a copy shrunk to 97 % drifts by 40 ms
across a panel. Every standard print still carries its scale: the calibration pulses are
1 mV at 10 mm/mV, i.e. 10 mm tall (``pulse_px_per_mm``); where the pulses are not found at the
assumed scale, a row of trace is 10 s at 25 mm/s long (``rows_px_per_mm``), and a whole scanned
page about one letter width wide (``PaperConfig.page_w_mm``). ``rescaled_reading`` reads the page
once, and where no grid was found and that scale disagrees with the assumed one, reads it again
resized to the assumed dpi (twice at most), keeping the resized reading unless it is clearly less
credible.
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from . import orient
from .config import PaperConfig, PreprocessConfig
from .reading import Reading

PULSES_MIN = 2          # pulses that must agree before their height sets the scale
PULSE_AGREE = 0.04      # ... within this share of their median height
SCALE_TOL = 0.01        # a scale within 1 % of the assumed one is read as it is
SCALE_RANGE = (0.25, 4.0)   # the resize factors considered (50 to 800 dpi for a 200-dpi profile)
REREADS = 2             # resized readings at most (a rows' length guess, then its pulses)


def pulse_px_per_mm(reading: Reading, paper: PaperConfig = PaperConfig(),
                    cfg: PreprocessConfig = PreprocessConfig()) -> float | None:
    """px/mm of the page read from its calibration pulses' height (``cfg.cal_pulse_mv`` at
    ``paper.gain_mm_mv``), or None unless at least ``PULSES_MIN`` pulses agree within
    ``PULSE_AGREE`` of their median."""
    ppm_y = reading.grid.px_per_mm_y
    heights = np.array([c["height_mm"] * ppm_y for c in (r.calibration for r in reading.layout.rows)
                        if c and "height_mm" in c], float)    # px
    if heights.size < PULSES_MIN:
        return None
    mid = float(np.median(heights))
    if np.sum(np.abs(heights / mid - 1) <= PULSE_AGREE) < PULSES_MIN:
        return None
    return mid / (cfg.cal_pulse_mv * paper.gain_mm_mv)


def rows_px_per_mm(reading: Reading, duration_s: float = 10.0,
                   paper: PaperConfig = PaperConfig()) -> float | None:
    """px/mm of the page from its rows' inked length (median over rows), were it the
    ``duration_s`` of trace at ``paper.speed_mm_s``; None without rows. The ink includes the
    calibration pulse, so this reads a few % high: a first guess for the pulses to refine."""
    lengths = [r.ink_x1 - r.ink_x0 for r in reading.layout.rows if r.ink_x1 > r.ink_x0]
    if not lengths:
        return None
    return float(np.median(lengths)) / (duration_s * paper.speed_mm_s)


def width_px_per_mm(image: np.ndarray, paper: PaperConfig = PaperConfig()) -> float:
    """px/mm of ``image`` (H, W, 3) were it a whole landscape page ``paper.page_w_mm`` wide."""
    return image.shape[1] / paper.page_w_mm


def resized(image: np.ndarray, factor: float) -> np.ndarray:
    """``image`` resized by ``factor`` (area averaging when shrinking)."""
    interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=interp)


def rescaled_reading(read: Callable[[np.ndarray], Reading], image: np.ndarray,
                     paper: PaperConfig = PaperConfig(),
                     cfg: PreprocessConfig = PreprocessConfig(), duration_s: float = 10.0) -> Reading:
    """``read(image)``; where that reading found no grid and the page's own scale (its pulses,
    ``pulse_px_per_mm``; without pulses, its rows' length, ``rows_px_per_mm``, else its width,
    ``width_px_per_mm``) differs from the assumed ``paper.px_per_mm`` by more than
    ``SCALE_TOL``, ``read`` of the image resized to the assumed scale; once more where the resized page's pulses still disagree (a rows' length
    guess is refined by the pulses it lets the reader find). A resized reading is kept unless its
    ``orient.judge`` score is lower than the first's by more than ``orient.PREFER_AS_GIVEN``
    (or it fails); its px (``upright``, traces) refer to the resized page, and its notes say so."""
    first = read(image)
    if first.grid.found:
        return first
    floor = orient.judge(first)["score"] - orient.PREFER_AS_GIVEN
    current, kept, factor, found = first, first, 1.0, None
    for attempt in range(REREADS):
        measured, source = pulse_px_per_mm(current, paper, cfg), "calibration pulses"
        if measured is not None:
            measured /= factor                   # px/mm of the image as given
        elif attempt == 0:
            measured, source = rows_px_per_mm(first, duration_s, paper), "rows' length"
            if measured is None:
                measured, source = width_px_per_mm(image, paper), "page width"
        else:
            break
        new = paper.px_per_mm / measured
        if abs(new / factor - 1) <= SCALE_TOL or not SCALE_RANGE[0] <= new <= SCALE_RANGE[1]:
            break
        try:
            current = read(resized(image, new))
        except ValueError:      # a refusal of the resized page: the readings so far stand
            break
        factor = new
        if orient.judge(current)["score"] >= floor:
            kept, found = current, (source, measured, new)
    if found is not None:
        source, measured, new = found
        kept.notes.append(f"no grid: the scale was taken from the {source} ({measured:.2f} px/mm, "
                          f"about {measured * 25.4:.0f} dpi) and the page resized by {new:.3f} "
                          "to read it; px in this reading refer to the resized page")
        kept.extra["rescaled"] = {"source": source, "px_per_mm": round(measured, 3),
                                  "factor": round(new, 4)}
    return kept
