"""Preprocessing: grid scale, deskew, layout, clear errors on bad input, and its configuration
(``PreprocessConfig``, saved with the profile) and module structure."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import ecg_like
from test_structure import module_imports

from ecgnb import grid as gr
from ecgnb import layout_detect as ld
from ecgnb import preprocess as pp
from ecgnb import straighten as st
from ecgnb.config import PaperConfig, PreprocessConfig, get_profile
from ecgnb.errors import EcgnbError, ImageError, LayoutError, MissingInputError
from ecgnb.paths import EIK_DEV

from ecgnb import render


@pytest.fixture(scope="module")
def page():
    image, truth = render.render_page(ecg_like(), 500, PaperConfig(), np.random.default_rng(1))
    return image, truth


def test_px_per_mm_on_rendered_page_within_2_percent(page):
    image, truth = page
    grid = gr.detect_grid(image)
    assert grid.found and grid.confidence > 0.5
    for est in (grid.px_per_mm, grid.px_per_mm_x, grid.px_per_mm_y):
        assert est == pytest.approx(truth["px_per_mm"], rel=0.02)


def test_px_per_mm_does_not_come_from_dpi():
    # A 300-dpi page must measure 11.8 px/mm, whatever 200-dpi default exists elsewhere.
    image, truth = render.render_page(ecg_like(), 500, PaperConfig(dpi=300), np.random.default_rng(2))
    assert gr.detect_grid(image).px_per_mm == pytest.approx(truth["px_per_mm"], rel=0.02)


@pytest.mark.skipif(not EIK_DEV.exists(), reason="shared eik-dev pages not present")
def test_px_per_mm_on_eik_page():
    image, _ = st.deskew(pp.load_image(sorted(EIK_DEV.glob("*.jpg"))[0]))
    assert gr.detect_grid(image).px_per_mm == pytest.approx(200 / 25.4, rel=0.02)


@pytest.mark.parametrize("angle", [3.0, -2.2])
def test_deskew_recovers_known_rotation(page, angle):
    rotated = st.rotate(page[0], angle)
    assert st.estimate_skew(rotated) == pytest.approx(angle, abs=0.3)
    upright, found = st.deskew(rotated)
    assert found == pytest.approx(angle, abs=0.3)
    assert abs(st.estimate_skew(upright)) < 0.3


def test_remove_grid_keeps_trace_drops_grid(page):
    image, truth = page
    grid = gr.detect_grid(image)
    mask = gr.denoise(gr.remove_grid(image, grid), grid.px_per_mm)
    trace = np.round(np.asarray(truth["panels"][0]["trace"])).astype(int)
    x, y = trace[:, 0], trace[:, 1]
    near = np.zeros_like(mask)
    for dy in (-1, 0, 1):
        near[np.clip(y + dy, 0, mask.shape[0] - 1), x] = True
    assert (mask & near).sum() / len(x) > 0.8       # the trace is kept
    assert mask.mean() < 0.05                          # the grid and paper are not


def test_layout_and_calibration_on_rendered_page(page):
    image, truth = page
    grid = gr.detect_grid(image)
    mask = gr.denoise(gr.remove_grid(image, grid), grid.px_per_mm)
    lay = ld.detect_layout(mask, grid, "3x4+1")
    assert len(lay.rows) == 4 and len(lay.panels) == 13 and lay.confidence > 0.5
    tp = truth["panels"][0]
    assert lay.x_start == pytest.approx(tp["x_start"], abs=2.0)       # px
    for row, cal in zip(lay.rows, truth["calibration"]):
        assert row.baseline_y == pytest.approx(cal["baseline_y"], abs=1.5)
        assert row.calibration is not None
        assert row.calibration["mm_per_mv"] == pytest.approx(10.0, abs=0.6)


def test_a_pulse_of_odd_height_takes_its_0mv_line_from_its_top_and_the_others_height():
    def row(i, top, base):
        cal = {"top_y": top, "base_y": base}
        return ld.RowInfo(index=i, baseline_y=base, y0=0.0, y1=0.0, ink_x0=0.0, ink_x1=0.0,
                          coverage=1.0, calibration=cal)

    rows = [row(0, 100.0, 179.0), row(1, 400.0, 479.5), row(2, 700.0, 768.0), row(3, 1000.0, 1079.0)]
    ld.agree_pulses(rows, tol_px=4.0)
    assert [r.baseline_y for r in rows] == [179.0, 479.5, 779.0, 1079.0]   # 68 px vs median 79
    few = [row(0, 100.0, 179.0), row(1, 400.0, 468.0)]
    ld.agree_pulses(few, tol_px=4.0)                 # two pulses cannot outvote each other
    assert [r.baseline_y for r in few] == [179.0, 468.0]


def test_the_pulse_consensus_is_off_by_default_and_moves_only_odd_rows(page):
    image, truth = page
    grid = gr.detect_grid(image)
    mask = gr.denoise(gr.remove_grid(image, grid), grid.px_per_mm)
    plain = ld.detect_layout(mask, grid, "3x4+1")
    agreed = ld.detect_layout(mask, grid, "3x4+1",
                              cfg=dataclasses.replace(PreprocessConfig(), pulse_consensus=True))
    assert not PreprocessConfig().pulse_consensus
    for a, b, cal in zip(plain.rows, agreed.rows, truth["calibration"]):
        assert b.baseline_y == pytest.approx(cal["baseline_y"], abs=1.5)
        assert b.baseline_y == pytest.approx(a.baseline_y, abs=1.5)


def test_a_page_cut_off_below_its_lead_rows_is_read_from_them_with_a_note():
    image, truth = render.render_page(ecg_like(), 500, PaperConfig(header=False),
                                      np.random.default_rng(1))
    grid = gr.detect_grid(image)
    mask = gr.denoise(gr.remove_grid(image, grid), grid.px_per_mm)
    cals = truth["calibration"]
    cut = mask.copy()                   # a fifth of the rhythm strip is all that is left of it
    cut[int(cals[2]["baseline_y"] + 15 * grid.px_per_mm):, int(0.3 * mask.shape[1]):] = False
    lay = ld.detect_layout(cut, grid, "3x4+1")
    assert lay.name == "3x4" and len(lay.rows) == 3 and len(lay.panels) == 12
    assert "no rhythm strip" in lay.notes[0]
    for row, cal in zip(lay.rows, cals):
        assert row.baseline_y == pytest.approx(cal["baseline_y"], abs=1.5)
    with pytest.raises(LayoutError, match="row ink coverage"):     # asked not to: refused
        ld.detect_layout(cut, grid, "3x4+1", rhythm_optional=False)


def test_a_page_missing_a_lead_row_is_still_refused(page):
    image, truth = page
    grid = gr.detect_grid(image)
    mask = gr.denoise(gr.remove_grid(image, grid), grid.px_per_mm)
    y = truth["calibration"][0]["baseline_y"]
    cut = mask.copy()
    cut[:int(y + 8 * grid.px_per_mm)] = False          # the top lead row (I, aVR, V1, V4) is gone
    with pytest.raises(LayoutError):
        ld.detect_layout(cut, grid, "3x4+1")
    assert ld.detect_layout(mask, grid, "3x4+1").notes == []


def test_auto_layout_reports_choice(page):
    image, _ = page
    grid = gr.detect_grid(image)
    lay = ld.detect_layout(gr.denoise(gr.remove_grid(image, grid), grid.px_per_mm), grid, "auto")
    assert lay.name == "3x4+1" and "3x4+1" in lay.candidates


def test_unknown_layout_name_is_layout_error(page):
    image, _ = page
    grid = gr.detect_grid(image)
    with pytest.raises(LayoutError, match="unknown layout"):
        ld.detect_layout(gr.remove_grid(image, grid), grid, "7x7")


def test_missing_file_is_clear(tmp_path):
    with pytest.raises(MissingInputError, match="not found"):
        pp.load_image(tmp_path / "nope.png")


def test_corrupt_file_is_image_error(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    with pytest.raises(ImageError, match="not a readable image"):
        pp.load_image(bad)


@pytest.mark.parametrize("kind", ["uniform", "smooth"])
def test_non_ecg_image_is_image_error(kind):
    from ecgnb.digitize import digitize_image

    if kind == "uniform":
        image = np.full((850, 1100, 3), 200, np.uint8)
    else:  # a smooth photo-like gradient with blobs: no grid, no thin dark lines
        yy, xx = np.mgrid[0:850, 0:1100] / 100.0
        img = 127 + 60 * np.sin(xx) * np.cos(yy * 0.7) + 40 * np.sin(0.3 * xx + yy)
        image = np.repeat(img[:, :, None], 3, axis=2).clip(0, 255).astype(np.uint8)
    grid = gr.detect_grid(image)
    assert not grid.found and grid.notes
    with pytest.raises((ImageError, LayoutError)) as err:
        digitize_image(image)
    assert isinstance(err.value, EcgnbError)
    if kind == "uniform":
        assert "not an ECG page" in str(err.value)


def test_deskew_ignores_dark_scan_margins(page):
    # Dark, axis-aligned margin bands (a scan's framing) must not pin the estimate at 0 deg.
    rotated = st.rotate(page[0], 1.2)
    rotated[:40], rotated[-40:], rotated[:, :40] = 30, 30, 30
    assert st.estimate_skew(rotated) == pytest.approx(1.2, abs=0.2)


def test_row_slope_follows_tilted_grid(page):
    # A row's 0 mV line follows its own grid lines when perspective tilts it after deskew.
    image, _ = page
    grid = gr.detect_grid(image)
    tilted = st.rotate(image, 0.3)
    strength = gr.grid_strength(gr.darkness(tilted))
    y = image.shape[0] / 2
    slope = ld.row_slope(strength, y, 0.2 * image.shape[1], 0.8 * image.shape[1], grid)
    assert np.degrees(np.arctan(-slope)) == pytest.approx(0.3, abs=0.05)


def test_fit_rows_ignores_one_outlier_row():
    ys = np.array([100.0, 300.0, 500.0, 700.0])
    ends = np.array([1000.0, 1002.0, 1040.0, 1006.0])   # row 3's end hidden by handwriting
    fit = ld._fit_rows(ys, ends, tol=2.0)
    assert np.allclose(fit, [1000, 1002, 1004, 1006])
    assert ld._fit_rows(ys, np.array([1000.0, np.nan, 1040.0, np.nan]), tol=2.0) is None


def test_trace_end_skips_a_grid_stub_past_the_trace():
    # A copy's black vertical grid line 2.5 mm past the trace's end is ink, but not the trace's:
    # the row must end where its 2 mm-long inked stretch does.
    ppm = 8.0
    grid = gr.GridInfo(ppm, ppm, ppm, ppm, 5 * ppm, (0, 0, 0), 1.0, True)
    ink = np.zeros(2200, bool)
    ink[100:2000] = True
    ink[2020:2022] = True
    assert ld._trace_end(ink, 2000.0, grid, PreprocessConfig()) == 1999
    ink[1990:2000] = False    # a trace ending 1.25 mm early is still found ...
    assert ld._trace_end(ink, 2000.0, grid, PreprocessConfig()) == 1989
    ink[:] = False            # ... and no trace means no end
    ink[2020:2022] = True
    assert np.isnan(ld._trace_end(ink, 2000.0, grid, PreprocessConfig()))


def test_layout_rows_get_their_own_time_axis_under_perspective(page):
    # Perspective shifts rows apart in x; each row's panels must start where its trace does.
    image, truth = page
    h, w = image.shape[:2]
    src = np.float32([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]])
    dst = src + np.float32([[12, 0], [0, 0], [0, 0], [-12, 0]])
    matrix = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)
    dark = gr.darkness(warped)
    grid = gr.detect_grid(warped, dark)
    mask = gr.denoise(gr.remove_grid(warped, grid, dark=dark), grid.px_per_mm)
    lay = ld.detect_layout(mask, grid, "3x4+1", strength=gr.grid_strength(dark))
    for box in lay.panels:
        p = next(q for q in truth["panels"] if q["lead"] == box.lead and q["rhythm"] == box.rhythm)
        x_true = cv2.perspectiveTransform(np.float32([[p["trace"][0]]]), matrix)[0, 0, 0]
        assert box.x0 == pytest.approx(x_true, abs=0.4 * grid.px_per_mm_x)


def test_perspective_map_undoes_a_known_perspective(page):
    # Keystone (page farther at the top): rectification must bring every trace point back onto
    # a page related to the flat one by a plain scale and shift (x within 0.5 px).
    image, truth = page
    h, w = image.shape[:2]
    src = np.float32([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]])
    dst = src + np.float32([[15, 8], [-10, 4], [3, -6], [-6, 2]])
    matrix = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)
    fix = st.perspective_map(warped)
    assert fix is not None
    flat = np.vstack([np.asarray(p["trace"]) for p in truth["panels"]])
    back = cv2.perspectiveTransform(flat[None].astype(np.float64), fix @ matrix)[0]
    design = np.column_stack([flat, np.ones(len(flat))])
    coef = np.linalg.lstsq(design, back[:, 0], rcond=None)[0]
    assert np.abs(design @ coef - back[:, 0]).max() < 0.5
    # A flat page is left alone (resampling would only blur it).
    assert st.perspective_map(image) is None


# --- configuration: PreprocessConfig is saved with the profile and reaches every step ---

def test_profile_saves_preprocess_settings():
    d = get_profile("quick").to_dict()
    assert d["preprocess"] == dataclasses.asdict(PreprocessConfig())
    assert d["preprocess"]["max_skew_deg"] == 10.0 and d["preprocess"]["trace_darkness"] == 0.45


def test_smaller_max_skew_stops_deskew_removing_a_larger_rotation(page):
    rotated = st.rotate(page[0], 3.0)
    cfg = PreprocessConfig(max_skew_deg=1.0)
    reach = cfg.max_skew_deg + 1.2 * cfg.skew_steps_deg[0]   # the fine search may pass the edge
    upright, found = st.deskew(rotated, cfg=cfg)
    assert abs(found) <= reach + 1e-9                       # 1.6 deg of the 3 deg removed
    assert abs(st.estimate_skew(upright)) > 1.2             # the rest remains
    # Through straighten (what digitize calls) too.
    assert abs(st.straighten(rotated, cfg=cfg)[1]) <= reach + 1e-9


def test_grid_settings_and_paper_reach_detect_grid(page):
    image, _ = page
    assert not gr.detect_grid(image, cfg=PreprocessConfig(grid_confidence_min=1.01)).found
    blank = np.full((850, 1100, 3), 200, np.uint8)
    grid = gr.detect_grid(blank, paper=PaperConfig(dpi=300))   # no grid: the paper's dpi
    assert not grid.found and grid.px_per_mm == pytest.approx(300 / 25.4)
    assert "300 dpi" in grid.notes[0]


def test_preprocess_reexports_the_split_modules():
    # ecgnb.digitize, ecgnb.panels and notebooks use these through ``ecgnb.preprocess``.
    for name in ("straighten", "deskew", "estimate_skew", "rotate", "perspective_map"):
        assert getattr(pp, name) is getattr(st, name)
    for name in ("darkness", "channel_min", "channel_max", "grid_strength", "GridInfo",
                 "detect_grid", "remove_grid", "denoise"):
        assert getattr(pp, name) is getattr(gr, name)
    for name in ("RowInfo", "PanelBox", "LayoutInfo", "detect_layout", "detect_calibration",
                 "row_slope", "row_candidates"):
        assert getattr(pp, name) is getattr(ld, name)
    assert set(pp.__all__) <= set(dir(pp))
    assert not hasattr(pp, "PAPER"), "paper settings come from a PaperConfig argument, not a global"


def test_preprocess_modules_form_a_chain_without_cycles():
    # grid <- straighten <- layout_detect <- preprocess; none imports one that imports it back.
    imports = {m.__name__.split(".")[1]: module_imports(Path(m.__file__)) for m in (gr, st, ld)}
    assert imports["straighten"] >= {"grid"} and imports["layout_detect"] >= {"grid", "straighten"}
    assert not imports["grid"] & {"straighten", "layout_detect", "preprocess"}
    assert not imports["straighten"] & {"layout_detect", "preprocess"}
    assert "preprocess" not in imports["layout_detect"]


def _layout_of(image, **kw):
    dark = gr.darkness(image)
    grid = gr.detect_grid(image, dark)
    mask = gr.denoise(gr.remove_grid(image, grid, dark=dark), grid.px_per_mm)
    return grid, mask, gr.grid_strength(dark)


def test_traces_that_start_and_end_off_their_baseline_keep_a_sub_pixel_time_axis():
    # Traces that begin and end 1 mV up, falling back within 20 ms (a filter's settling): the
    # ink near the 0 mV line begins late and ends early, so the page's ink window alone put
    # t = 0 late by about a pixel (5 ms; 1.4 px on a reference val page).
    sig = ecg_like()
    t = np.arange(sig.shape[0]) / 500
    sig = sig + (np.exp(-t / 0.02) + np.exp(-(t[-1] - t) / 0.02))[:, None]
    image, truth = render.render_page(sig, 500, PaperConfig(), np.random.default_rng(1))
    grid, mask, strength = _layout_of(image)
    lay = ld.detect_layout(mask, grid, "3x4+1", strength=strength)
    x_true = truth["panels"][0]["x_start"]
    for box in lay.panels:
        if box.col == 0:
            assert box.x0 == pytest.approx(x_true, abs=0.5)       # px


def test_an_axis_that_slid_onto_the_pulses_is_moved_past_them(page):
    # A photo's cut or dark right edge hides the rows' last millimetres: the widest ink window
    # then starts on the calibration pulses, 0.2 s early, where the trace starts at the pulse's
    # right stroke (ECG-Image-Kit prints). Drawn here: 4 rows, pulse strokes at 100 and 139 px.
    image, _ = page
    grid = gr.detect_grid(image)
    ppx, ppy = grid.px_per_mm_x, grid.px_per_mm_y
    mask = np.zeros((1500, 2200), bool)
    rows = []
    for i, y in enumerate((300, 600, 900, 1200)):
        top = int(y - 10 * ppy)
        mask[top:y + 1, 100:102] = mask[top:y + 1, 139:141] = True   # strokes
        mask[top:top + 2, 100:141] = True                               # flat top
        mask[y - 1:y + 1, 139:1900] = True                              # trace, cut short
        for q in range(300, 1900, 160):                                 # QRS complexes
            mask[int(y - 8 * ppy):y, q:q + 2] = True
        rows.append(ld.RowInfo(index=i, baseline_y=float(y), y0=y - 100.0, y1=y + 100.0,
                               ink_x0=100.0, ink_x1=1900.0, coverage=1.0))
    x0, x1 = ld.axis_after_pulses(mask, rows, grid, 100.0, 100.0 + 250 * ppx)
    assert x0 == pytest.approx(140 - 0.22 * ppx, abs=1.5)             # at the right stroke
    assert x1 - x0 == pytest.approx(250 * ppx)
    assert ld.axis_after_pulses(mask, rows, grid, 139.0, 2100.0) == (139.0, 2100.0)  # kept
    # Slid only part way: the pulses are found, but their right strokes reach 0.6 mm past t = 0.
    start = 140 - 0.22 * ppx
    early = start - 0.6 * ppx
    x0, x1 = ld.axis_after_pulses(mask, rows, grid, early, early + 250 * ppx)
    assert x0 == pytest.approx(start, abs=1.0) and x1 - x0 == pytest.approx(250 * ppx)
    # Within pulse_slide_mm (0.5 mm) of the strokes the axis is left where it was.
    assert ld.axis_after_pulses(mask, rows, grid, start - 2.0, 2100.0) == (start - 2.0, 2100.0)


@pytest.mark.parametrize("colour, seed", [("orange", 0), ("pink", 1), ("red", 0)])
def test_a_copys_grid_of_five_mm_lines_is_measured(colour, seed):
    # A photocopy keeps only the 5 mm lines, each a dark double edge: the autocorrelation's
    # first strong peak (3 px, the edges) does not come back at twice its lag and is no period.
    # Before that check these copies read "no grid" and the 200-dpi guess (up to 1 % off).
    from ecgnb.config import CopyConfig, StyleConfig
    from ecgnb.photo import photocopy
    image, truth = render.render_page(ecg_like(), 500, PaperConfig(), np.random.default_rng(seed),
                                      style=StyleConfig(grid_colour=colour))
    copy, t = photocopy(image, truth, CopyConfig(), np.random.default_rng(seed))
    cfg = PreprocessConfig()
    up, _, dark = pp.straighten(copy, cfg=cfg)
    grid = gr.detect_grid(up, dark, cfg=cfg)
    assert grid.found
    assert grid.px_per_mm == pytest.approx(t["px_per_mm"], rel=0.003)
    assert not gr.detect_grid(up, dark, cfg=dataclasses.replace(cfg, period_repeat=0.0)).found
