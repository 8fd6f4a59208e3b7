"""Marks at panel edges that are not trace (``ecgnb.separators``): separator bars, pulse strokes."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import ecg_like

from ecgnb import digitize as dg
from ecgnb import metrics, render, separators
from ecgnb.config import PaperConfig, PreprocessConfig, StyleConfig
from ecgnb.grid import GridInfo

PPM = 8.0   # px/mm of the drawn masks


def _grid() -> GridInfo:
    return GridInfo(px_per_mm=PPM, px_per_mm_x=PPM, px_per_mm_y=PPM, minor_px=PPM,
                    major_px=5 * PPM, colour=(255, 0, 0), confidence=1.0, found=True)


def _trace_mask(bar_x: int | None = None, width: int = 5) -> np.ndarray:
    """A flat trace on y = 100 px with a bar 7 mm tall, ``width`` px wide, left column ``bar_x``."""
    mask = np.zeros((200, 400), bool)
    mask[99:102, :] = True
    if bar_x is not None:
        mask[100 - 28:100 + 29, bar_x:bar_x + width] = True
    return mask


def test_a_separator_bar_is_found_where_it_is_and_nowhere_else():
    mask = _trace_mask(bar_x=203)
    assert separators.find_bar(mask, 200.0, 100.0, _grid()) == (203.0, 207.0)
    # Farther than sep_search_mm (1 mm = 8 px) from the edge looked at: not this edge's.
    assert separators.find_bar(mask, 190.0, 100.0, _grid()) is None
    assert separators.find_bar(_trace_mask(), 200.0, 100.0, _grid()) is None
    # Wider than sep_width_max_mm (1.2 mm = 9.6 px): a blot, not a bar.
    assert separators.find_bar(_trace_mask(bar_x=196, width=12), 200.0, 100.0, _grid()) is None


def test_a_steep_qrs_stroke_at_a_panel_edge_is_not_taken_for_a_bar():
    mask = np.zeros((200, 400), np.uint8)
    mask[99:102, :198] = 1
    mask[99:102, 214:] = 1
    # Up 6 mm in 5 px, down 9 mm in 6 px, back to the baseline: a QRS beside the edge at x = 200.
    pts = np.array([[197, 100], [202, 52], [208, 124], [214, 100]], np.int32)
    cv2.polylines(mask, [pts], False, 1, 2)
    assert separators.find_bar(mask.astype(bool), 200.0, 100.0, _grid()) is None


def test_drop_ticks_drops_the_points_over_a_mark_and_keeps_the_rest():
    lay = type("L", (), {})()
    box = dg.pp.PanelBox(lead="aVR", row=0, col=1, rhythm=False, t0_s=2.5, t1_s=5.0, x0=100.0,
                         x1=200.0, y0=0.0, y1=50.0, baseline_y=25.0)
    lay.panels = [box]
    pts = np.stack([np.arange(100.0, 201.0), np.full(101, 25.0)], axis=1)
    kept = dg.drop_ticks(pts, box, lay, [(98.0, 104.0)], margin_px=1.0)
    assert kept[0, 0] == 106.0 and len(kept) == 101 - 6


@pytest.fixture(scope="module")
def bar_page():
    signal = ecg_like()
    image, truth = render.render_page(signal, 500, PaperConfig(), np.random.default_rng(3),
                                      style=StyleConfig(separator="bar"))
    return image, render.masked_signal(signal, truth)


def _edge_error(reading, ref, n: int = 8) -> float:
    """Largest |error| (mV) over the first and last ``n`` samples of the short panels."""
    err = []
    for t0 in (1250, 2500, 3750):
        for k in ("I", "aVR", "V1", "V4"):        # the first row: no rhythm strip fills it in
            j = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"].index(k)
            for sl in (slice(t0, t0 + n), slice(t0 - n, t0)):
                e, r = reading.signal[sl, j], ref[sl, j]
                ok = ~np.isnan(e) & ~np.isnan(r)
                if ok.any():
                    err.append(np.max(np.abs(e[ok] - r[ok])))
    return float(max(err))


def test_a_page_with_separator_bars_reads_without_spikes_at_the_panel_edges(bar_page):
    image, ref = bar_page
    plain = dg.digitize_image(image)
    marked = dg.digitize_image(image, cfg=PreprocessConfig(edge_marks=True))
    # Without the marks the path runs up and down the 7 mm bars (0.35 mV either way).
    assert _edge_error(plain, ref) > 0.2
    assert _edge_error(marked, ref) < 0.12
    snr = metrics.record_metrics(ref, marked.signal, 500)["snr_db"].mean()
    assert snr >= metrics.record_metrics(ref, plain.signal, 500)["snr_db"].mean()



def test_a_pulse_reaching_into_a_rows_first_panel_or_rhythm_strip_is_a_mark():
    def box(col, rhythm=False, row=0):
        return dg.pp.PanelBox(lead="II", row=row, col=col, rhythm=rhythm, t0_s=0.0, t1_s=2.5,
                              x0=100.0 + 100 * col, x1=200.0 + 100 * col, y0=0.0, y1=50.0,
                              baseline_y=25.0)
    rows = [dg.pp.RowInfo(index=0, baseline_y=25.0, y0=0.0, y1=50.0, ink_x0=60.0, ink_x1=500.0,
                          coverage=1.0, calibration={"x0": 62.0, "x1": 101.0}),
            dg.pp.RowInfo(index=1, baseline_y=75.0, y0=50.0, y1=100.0, ink_x0=60.0, ink_x1=500.0,
                          coverage=1.0, calibration={"x0": 55.0, "x1": 95.0})]
    lay = dg.pp.LayoutInfo(name="3x4+1", rows=rows, x_start=100.0, x_end=500.0,
                           panels=[box(0), box(1), box(0, rhythm=True, row=1)], confidence=1.0)
    marks = separators.edge_marks(lay, {(0, 1): (198.0, 203.0)})
    assert marks[0] == [(198.0, 203.0), (62.0, 101.0)]      # bar at its right edge, the pulse
    assert marks[1] == [(198.0, 203.0)]
    assert 2 not in marks            # the strip's pulse ends 5 px before it starts
    rows[1].calibration = {"x0": 60.0, "x1": 100.5}
    assert separators.edge_marks(lay, {})[2] == [(60.0, 100.5)]
