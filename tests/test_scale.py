"""The page's scale where no grid shows (``ecgnb.scale``)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from conftest import ecg_like

from ecgnb import render, scale
from ecgnb.config import PaperConfig, StyleConfig, TraceReadConfig

PPM = PaperConfig().px_per_mm    # the assumed 200 dpi


def fake_reading(found: bool, pulse_mm: list[float | None], score: float = 1.0, ink_px: float = 0.0):
    """A stand-in reading: a grid (found or not) at 200 dpi, rows whose pulses are
    ``pulse_mm`` tall as measured at that scale (None: no pulse) and whose ink is ``ink_px``
    long, and a credibility score."""
    rows = [SimpleNamespace(calibration=None if h is None else {"height_mm": h, "mm_per_mv": h},
                            ink_x0=100.0, ink_x1=100.0 + ink_px) for h in pulse_mm]
    return SimpleNamespace(grid=SimpleNamespace(found=found, px_per_mm_y=PPM),
                           layout=SimpleNamespace(rows=rows), notes=[], extra={}, score=score)


@pytest.fixture()
def judged_by_score(monkeypatch):
    monkeypatch.setattr(scale.orient, "judge", lambda r: {"score": r.score})


def test_pulses_set_the_scale_only_when_enough_of_them_agree():
    # 15 mm tall at 200 dpi: a 300-dpi page's 10 mm pulses.
    got = scale.pulse_px_per_mm(fake_reading(False, [15.0, 15.2, None, 14.9]))
    assert got == pytest.approx(15.0 * PPM / 10.0)
    assert scale.pulse_px_per_mm(fake_reading(False, [15.0, None])) is None    # one pulse only
    assert scale.pulse_px_per_mm(fake_reading(False, [15.0, 9.0])) is None     # two that disagree
    # An odd pulse (misread) beside two agreeing ones does not move the median far.
    assert scale.pulse_px_per_mm(fake_reading(False, [15.0, 15.1, 6.0])) == pytest.approx(15.0 * PPM / 10)


def test_a_gridless_page_is_read_again_at_its_pulses_scale(judged_by_score):
    image = np.zeros((300, 600, 3), np.uint8)
    shapes = []

    def read(page):
        shapes.append(page.shape)
        return fake_reading(False, [15.0, 15.0, 15.0]) if len(shapes) == 1 else fake_reading(False, [10, 10])

    got = scale.rescaled_reading(read, image)
    assert shapes == [(300, 600, 3), (200, 400, 3)]        # resized by 2/3 to 200 dpi
    assert got.extra["rescaled"]["source"] == "calibration pulses"
    assert "calibration pulses" in got.notes[0]


def test_a_page_with_a_grid_or_at_the_assumed_scale_is_read_once(judged_by_score):
    image = np.zeros((300, 600, 3), np.uint8)
    for first in (fake_reading(True, [15.0, 15.0]), fake_reading(False, [10.05, 10.0, 9.98])):
        calls = []
        got = scale.rescaled_reading(lambda page: calls.append(page) or first, image)
        assert got is first and len(calls) == 1


def test_without_pulses_the_rows_length_sets_the_scale(judged_by_score):
    image = np.zeros((300, 600, 3), np.uint8)
    readings = [fake_reading(False, [None, None], ink_px=3000.0), fake_reading(False, [None])]
    got = scale.rescaled_reading(lambda page: readings.pop(0), image)
    assert got.extra["rescaled"]["source"] == "rows' length"
    assert got.extra["rescaled"]["px_per_mm"] == pytest.approx(3000 / 250)   # 10 s at 25 mm/s


def test_without_pulses_or_rows_the_page_width_sets_the_scale_and_a_worse_reread_is_dropped(judged_by_score):
    paper = PaperConfig()
    image = np.zeros((100, int(round(paper.page_w_mm * 12)), 3), np.uint8)   # 12 px/mm wide
    readings = [fake_reading(False, [None], score=0.5), fake_reading(False, [None], score=0.9)]
    got = scale.rescaled_reading(lambda page: readings.pop(0), image, paper)
    assert got.extra["rescaled"]["source"] == "page width"
    assert got.extra["rescaled"]["px_per_mm"] == pytest.approx(12, abs=0.01)
    # The resized page reads clearly worse: the first reading stands.
    first = fake_reading(False, [None], score=0.9)
    readings = [first, fake_reading(False, [None], score=0.5)]
    assert scale.rescaled_reading(lambda page: readings.pop(0), image, paper) is first


def test_a_gridless_300_dpi_scan_with_wide_margins_reads_at_its_own_scale():
    import cv2
    from ecgnb.metrics import record_metrics
    from ecgnb.trace_reader import TraceNetDigitizer

    signal = ecg_like()
    image, truth = render.render_page(signal, 500, PaperConfig(dpi=300), np.random.default_rng(4),
                                      style=StyleConfig(grid_colour="none"))
    # 15 % of white either side: a page-width guess would be 30 % off.
    side = int(0.15 * image.shape[1])
    image = cv2.copyMakeBorder(image, 0, 0, side, side, cv2.BORDER_CONSTANT, value=(255, 255, 255))
    reading = TraceNetDigitizer().read(image)
    assert not reading.grid.found
    # Read as a 200-dpi page, no pulse is found; the rows' length gives a first scale, at which
    # the pulses are found and set it.
    assert reading.extra["rescaled"]["source"] == "calibration pulses"
    assert reading.extra["rescaled"]["px_per_mm"] == pytest.approx(300 / 25.4, rel=0.03)
    truth_signal = render.masked_signal(signal, truth)

    def snr(r):
        return float(np.nanmean(record_metrics(truth_signal, r.signal, 500)["snr_db"].replace(np.inf, np.nan)))

    assert snr(reading) > 12
    # Without it the page reads as a 200-dpi one, 1.5 times too tall and too long.
    as_200_dpi = TraceNetDigitizer(ink=TraceReadConfig(gridless_scale=False)).read(image)
    assert "rescaled" not in as_200_dpi.extra and snr(as_200_dpi) < snr(reading) - 6
