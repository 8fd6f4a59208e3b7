"""The one interface every digitizer plugs into: options in, a ``Reading`` out.

A digitizer is an object with a ``name`` and ``read(image, options) -> Reading``: an RGB page
``(H, W, 3)`` uint8 and ``ReadOptions`` (layout, fs, duration) in, one ``Reading`` out (signal
``(n_samples, 12)`` mV at ``fs`` Hz, lead names, what the preprocessing found, the traces for an
overlay, a confidence and warnings). Heavy state (a model checkpoint) is loaded when the
digitizer is made, so one object reads a whole batch. ``ecgnb.digitizers`` is the registry
that makes them by name; this module imports no implementation, so every implementation can
import it without a cycle.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np

from .config import PaperConfig, PreprocessConfig

# Below these a reading is flagged (values chosen on our own renders' failures, not on dev pages).
LAYOUT_CONFIDENCE_MIN = 0.5   # layout confidence (0..1) under which the panels may be misplaced
GRID_CONFIDENCE_MIN = 0.4     # grid confidence (0..1) under which px/mm may be wrong
MM_PER_MV_TOL = 0.2           # relative departure of a calibration pulse from 10 mm/mV that is odd


@dataclass(frozen=True)
class ReadOptions:
    """What the caller tells a digitizer about the page and the output it wants."""

    layout: str = "3x4+1"     # key of ecgnb.layouts.LAYOUTS, or "auto"
    fs: float = 500.0         # Hz, sampling rate of the output signal
    duration_s: float = 10.0  # s, length of the record the page shows
    paper: PaperConfig = PaperConfig()   # printed scales: mm/s, mm/mV, calibration pulse (its
                                         # layout and dpi are not used: the page gives them)
    preprocess: PreprocessConfig = PreprocessConfig()  # thresholds of the classical front end


@dataclass
class Reading:
    """One digitized page, whatever the method.

    ``grid`` and ``layout`` are ``ecgnb.preprocess`` ``GridInfo``/``LayoutInfo`` (all px, on
    ``upright``), ``traces`` maps a panel (or crop) index to its ``(n, 2)`` x, y px polyline on
    ``upright``; ``extra`` holds method-specific plain-JSON diagnostics (``n_crops``...).
    """

    signal: np.ndarray              # (n_samples, 12) mV, NaN where the page shows no sample
    fs: float                       # Hz
    lead_names: tuple[str, ...]
    method: str                     # registry name of the digitizer that made it
    skew_deg: float                 # deg (CCW) removed by deskew
    grid: object                    # ecgnb.preprocess.GridInfo
    layout: object                  # ecgnb.preprocess.LayoutInfo
    upright: np.ndarray | None = None  # (H, W, 3) uint8, the straightened page
    traces: dict[int, np.ndarray] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # doubts the method adds (the flattening's...)

    def diagnostics(self) -> dict:
        """Plain-JSON summary: method, grid, skew, layout, calibration, panels, confidence, warnings."""
        conf, warns = assess(self)
        return {"method": self.method, **self.extra,
                **geometry_diagnostics(self.skew_deg, self.grid, self.layout),
                "confidence": conf, "warnings": warns}

    @property
    def confidence(self) -> float:
        """0..1: how far the preprocessing's findings can be trusted (see ``assess``)."""
        return assess(self)[0]

    @property
    def warnings(self) -> list[str]:
        """Plain-language reasons to doubt this reading (empty when none)."""
        return assess(self)[1]


class Digitizer(Protocol):
    """What the registry hands out: a named reader of pages."""

    name: str

    def read(self, image: np.ndarray, options: ReadOptions = ReadOptions()) -> Reading:
        """Digitize one RGB page ``(H, W, 3)`` uint8; raise ``EcgnbError`` subclasses on refusal."""
        ...


def geometry_diagnostics(skew_deg: float, grid, layout) -> dict:
    """Plain-JSON view of what preprocessing found on a page (deg, px/mm, px boxes)."""
    g, lay = grid, layout
    return {
        "skew_deg": skew_deg,
        "grid": {"px_per_mm": g.px_per_mm, "px_per_mm_x": g.px_per_mm_x,
                 "px_per_mm_y": g.px_per_mm_y, "colour": list(g.colour),
                 "confidence": g.confidence, "found": g.found, "notes": g.notes},
        "layout": {"name": lay.name, "confidence": lay.confidence,
                   "candidates": lay.candidates, "x_start": lay.x_start, "x_end": lay.x_end},
        "calibration": [r.calibration for r in lay.rows],
        "panels": [{"lead": p.lead, "row": p.row, "col": p.col, "rhythm": p.rhythm,
                    "bbox": [p.x0, p.y0, p.x1, p.y1], "baseline_y": p.baseline_y}
                   for p in lay.panels],
    }


def assess(reading: Reading) -> tuple[float, list[str]]:
    """``(confidence 0..1, warnings)`` of a reading from what its preprocessing found.

    The confidence is the smaller of the layout's and the grid's (0 when the grid was not found);
    each warning names a sign of a doubtful reading in words a user can act on.
    """
    g, lay = reading.grid, reading.layout
    warns = []
    if not g.found:
        warns.append("no grid found: the scale (px/mm) is a guess, so mV and time may be off")
    elif g.confidence < GRID_CONFIDENCE_MIN:
        warns.append(f"weak grid (confidence {g.confidence:.2f}): the scale may be off")
    if lay.confidence < LAYOUT_CONFIDENCE_MIN:
        warns.append(f"layout {lay.name} found with low confidence ({lay.confidence:.2f}): panels "
                     "may be misplaced; check the overlay or pass --layout")
    pulses = [c["mm_per_mv"] for c in (r.calibration for r in lay.rows) if c and "mm_per_mv" in c]
    if lay.rows and not pulses:
        warns.append("no calibration pulse found: the amplitude assumes 10 mm/mV")
    elif pulses and abs(float(np.median(pulses)) / 10.0 - 1) > MM_PER_MV_TOL:
        warns.append(f"calibration pulses read {float(np.median(pulses)):.1f} mm/mV, not 10: "
                     "the page may be scaled or printed at another gain")
    drawn = np.isfinite(reading.signal).any(axis=0)
    if not drawn.all():
        missing = [n for n, ok in zip(reading.lead_names, drawn) if not ok]
        warns.append(f"no trace read for lead(s) {', '.join(missing)}")
    warns.extend(getattr(lay, "notes", []))
    warns.extend(reading.notes)
    conf = 0.0 if not g.found else float(min(lay.confidence, g.confidence))
    return conf, warns


def overlay(reading: Reading) -> np.ndarray:
    """The upright page, faded, with panel boxes and 0 mV lines (blue) and traces (green), RGB."""
    img = (reading.upright if reading.upright is not None else np.zeros((10, 10, 3), np.uint8)).copy()
    img = (0.6 * img + 0.4 * 255).astype(np.uint8)  # fade the page so the overlay stands out
    for box in reading.layout.panels:
        cv2.rectangle(img, (int(box.x0), int(box.y0)), (int(box.x1), int(box.y1)), (60, 60, 220), 1)
        cv2.line(img, (int(box.x0), int(box.baseline_y)), (int(box.x1), int(box.baseline_y)),
                 (60, 60, 220), 1)
    for pts in reading.traces.values():
        if len(pts) > 1:
            cv2.polylines(img, [np.round(pts).astype(np.int32).reshape(-1, 1, 2)], False,
                          (0, 170, 0), 1, lineType=cv2.LINE_AA)
    return img
