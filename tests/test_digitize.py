"""The classical digitizer: SNR on a clean rendered page, output shape/NaN layout, trace following
(the command line that writes its readings: tests/test_cli.py)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import ecg_like

from ecgnb import digitize as dg
from ecgnb import preprocess as pp
from ecgnb.config import PaperConfig
from ecgnb.layouts import panels
from ecgnb.leads import LEAD_INDEX

from ecgnb import metrics, render

# Measured on this page: 11.3 dB mean per lead aligned, 10.1 dB unaligned (official), worst
# lead 8.7 dB; sharp 10 ms QRS peaks dominate the error. Margin of about 3 dB for platform
# differences (antialiasing, OpenCV versions).
MIN_MEAN_SNR_DB = 8.0


@pytest.fixture(scope="module")
def page():
    signal = ecg_like()
    image, truth = render.render_page(signal, 500, PaperConfig(), np.random.default_rng(3))
    return image, truth, render.masked_signal(signal, truth)


@pytest.fixture(scope="module")
def result(page):
    return dg.digitize_image(page[0])


def test_clean_page_snr(page, result):
    ref = page[2]
    table = metrics.record_metrics(ref, result.signal, 500)
    assert table["snr_db"].mean() > MIN_MEAN_SNR_DB, table.to_string()
    assert table["snr_db_unaligned"].mean() > MIN_MEAN_SNR_DB - 2, table.to_string()
    assert table["snr_db"].min() > 5.0, table.to_string()
    assert table["pearson_r"].min() > 0.85, table.to_string()


def test_output_shape_and_nan_pattern_follow_layout(page, result):
    sig = result.signal
    assert sig.shape == (5000, 12)
    drawn = ~np.isnan(page[2])
    got = ~np.isnan(sig)
    assert not (got & ~drawn).any(), "values where the page shows no sample"
    for p in panels("3x4+1"):
        col = got[int(p.t0_s * 500):int(p.t1_s * 500), LEAD_INDEX[p.lead]]
        assert col.mean() > 0.98, p
    assert got[:, LEAD_INDEX["II"]].all(), "lead II comes from the 10 s rhythm strip"


def test_diagnostics_are_plain_json(result):
    import json

    d = json.loads(json.dumps(result.diagnostics(), default=float))
    assert d["layout"]["name"] == "3x4+1" and len(d["panels"]) == 13
    assert abs(d["skew_deg"]) < 0.3


def test_follow_trace_is_not_forced_through_stray_ink_in_the_first_column():
    # A header letter's pixel in the panel's first column (far above the baseline) used to pull
    # every path through it; the trace must still be followed from where it starts.
    mask = np.zeros((200, 60), bool)
    mask[10, 0] = True          # stray ink in column 0 only
    mask[10:13, 1:20] = True    # header text continuing right, far from the baseline
    mask[150:153, 2:] = True    # the trace, on the baseline, from column 2
    choice = dg.follow_trace(dg.column_runs(mask), baseline=151.0, px_per_mm=8.0)
    pts = dg.trace_points(dg.column_runs(mask), choice, pen=3.0)
    assert len(pts) >= 55 and np.all(np.abs(pts[:, 1] - 151) < 2)


def test_run_costs_are_each_runs_mean_cost():
    mask = np.zeros((10, 2), bool)
    mask[1:5, 0] = mask[7:9, 0] = mask[2:4, 1] = True
    cost = np.zeros((10, 2), np.float32)
    cost[1, 0] = cost[7:9, 0] = 1.0
    costs = dg.run_costs(dg.column_runs(mask), cost)
    np.testing.assert_allclose(costs[0], [0.25, 1.0])
    np.testing.assert_allclose(costs[1], [0.0])


def test_a_path_charged_for_doubtful_ink_follows_the_s_wave_not_the_grid_line():
    # A flat trace 3 px thick on y = 49..51 whose S wave (columns 20..30) drops to y = 150;
    # a 1 px grid line on the 0 mV line (y = 50) stays inked through the S wave, apart from
    # the strokes below it, as a grid line kept with the trace's blob does on a printed photo.
    mask = np.zeros((200, 50), bool)
    mask[49:52, :21] = mask[49:52, 30:] = True
    for x in range(21, 30):                       # down over 21..25, up over 25..29
        mask[53:int(150 - 20 * abs(x - 25)) + 2, x] = True
    line = np.zeros_like(mask)
    line[50, 21:30] = True
    runs = dg.column_runs(mask | line)
    plain = dg.follow_trace(runs, 50.0, 8.0)      # the pull to the 0 mV line wins
    assert all(runs[x][plain[x]][1] == 50 for x in range(21, 30))
    costs = dg.run_costs(runs, line.astype(np.float32) * 0.5)
    charged = dg.follow_trace(runs, 50.0, 8.0, run_cost=costs)
    assert all(runs[x][charged[x]][1] > 60 for x in range(21, 30))
    assert all(runs[x][charged[x]][0] == 49 for x in list(range(21)) + list(range(30, 50)))


def test_a_path_that_followed_the_next_rows_trace_is_followed_again_on_its_own_row():
    # A box from y = 0 to 200 around its 0 mV line at y = 100; its own trace is faint, seen only
    # in columns 0..9 and 150..159 (y = 99..101); the next row's trace runs all along y = 198..200.
    mask = np.zeros((201, 160), bool)
    mask[99:102, :10] = mask[99:102, 150:] = True
    mask[198:201, :] = True
    box = pp.PanelBox(lead="III", row=2, col=0, rhythm=False, t0_s=0.0, t1_s=2.5, x0=0.0,
                      x1=159.0, y0=0.0, y1=200.0, baseline_y=100.0)
    grid = type("G", (), {"px_per_mm_y": 8.0})()
    _, runs, loose = dg.panel_path(mask, box, grid)
    assert dg.off_row_share(runs, loose, 100.0, 100.0) > 0.8      # on the next row's trace
    _, runs, kept = dg.panel_path(mask, box, grid, own_row=True)
    assert dg.off_row_share(runs, kept, 100.0, 100.0) == 0.0
    assert all(runs[x][kept[x]][0] == 99 for x in list(range(10)) + list(range(150, 160)))
    # A tall QRS crossing half-way for a few columns is no reason to follow again.
    qrs = mask.copy()
    qrs[:, 20:150] = False
    qrs[99:102, 10:150] = True
    qrs[99:170, 60:64] = True
    _, runs, once = dg.panel_path(qrs, box, grid, own_row=True)
    assert runs[62][once[62]][1] == 169


def test_another_rows_stroke_crossing_a_trace_is_not_read_as_its_own():
    # A flat trace at y = 99..101 in a box 0..200 (8 px/mm, 0.8 s over 159 px, as 25 mm/s
    # prints it): another row's spike, a line 2 columns wide, crosses it at x = 80..81 from
    # y = 5 to y = 195.
    mask = np.zeros((201, 160), bool)
    mask[99:102, :] = True
    crossed = mask.copy()
    crossed[5:196, 80:82] = True
    box = pp.PanelBox(lead="II", row=1, col=0, rhythm=False, t0_s=0.0, t1_s=0.8, x0=0.0,
                      x1=159.0, y0=0.0, y1=200.0, baseline_y=100.0)
    grid = type("G", (), {"px_per_mm_y": 8.0})()
    _, runs, taken = dg.panel_path(crossed, box, grid)
    assert runs[80][taken[80]].tolist() == [5, 195]             # the plain path takes the line
    _, runs, kept = dg.panel_path(crossed, box, grid, through_mm=1.5)
    assert kept[80] is None and kept[81] is None                 # read across from either side
    assert all(runs[x][kept[x]].tolist() == [99, 101] for x in range(160) if x not in (80, 81))
    assert dg.crossed_columns(runs, kept, 12.0, 8.0, 3) == []
    # The trace's own QRS leaves its level on one side first: its columns are all read.
    qrs = mask.copy()
    qrs[20:102, 80] = True          # Q-less upstroke to R at y = 20
    qrs[20:180, 81] = True          # R down to S at y = 180
    qrs[99:180, 82] = True          # S back up to the 0 mV line
    _, runs, own = dg.panel_path(qrs, box, grid, through_mm=1.5)
    assert [runs[x][own[x]].tolist() for x in (80, 81, 82)] == [[20, 101], [20, 179], [99, 179]]
    # A stroke wider than CROSS_MAX_S (0.03 s, 5 columns here) is not taken for a crossing.
    wide = mask.copy()
    wide[5:196, 80:86] = True
    _, runs, wide_path = dg.panel_path(wide, box, grid, through_mm=1.5)
    assert wide_path[80] is not None


def test_trace_points_are_sub_pixel_with_ink_coverage():
    # A flat anti-aliased pen 2 px thick centred at y = 50.3: rows 49 (0.2), 50, 51 (0.8) inked.
    cover = np.zeros((100, 20), np.float32)
    cover[49], cover[50], cover[51] = 0.2, 1.0, 0.8
    mask = cover > 0.45
    runs = dg.column_runs(mask)
    pts = dg.trace_points(runs, dg.follow_trace(runs, 50.0, 8.0), pen=2.0, cover=cover)
    assert len(pts) == 20 and np.allclose(pts[:, 1], 50.3, atol=0.05)


def test_drop_ticks_removes_only_the_separator_columns():
    lay = type("L", (), {})()
    box = pp.PanelBox(lead="aVR", row=0, col=1, rhythm=False, t0_s=2.5, t1_s=5.0, x0=100.0,
                      x1=200.0, y0=0.0, y1=50.0, baseline_y=25.0)
    lay.panels = [box, pp.PanelBox(lead="I", row=0, col=0, rhythm=False, t0_s=0.0, t1_s=2.5,
                                   x0=0.0, x1=100.0, y0=0.0, y1=50.0, baseline_y=25.0)]
    pts = np.stack([np.arange(100.0, 201.0), np.full(101, 25.0)], axis=1)
    kept = dg.drop_ticks(pts, box, lay)
    assert 100.0 not in kept[:, 0] and 200.0 in kept[:, 0] and len(kept) == 100


def test_stroke_points_time_a_steep_stroke_finer_than_a_column():
    # An anti-aliased pen stroke from (10.3, 10) to (14.1, 90): ~20 px of rise per column, so a
    # column point alone cannot say when each level was crossed; each pixel row's ink can.
    img = np.zeros((100, 30), np.uint8)
    cv2.line(img, (int(10.3 * 256), 10 * 256), (int(14.1 * 256), 90 * 256), 255, 2,
             cv2.LINE_AA, shift=8)
    cover = img.astype(np.float32) / 255
    runs = dg.column_runs(cover > 0.45)
    choice = dg.follow_trace(runs, 50.0, 8.0)
    pts = dg.stroke_points(runs, choice, pen=3.0, cover=cover)
    mid = (pts[:, 1] > 20) & (pts[:, 1] < 80)
    truth_x = 10.3 + (pts[mid, 1] - 10) * 3.8 / 80
    assert mid.sum() >= 40 and np.abs(pts[mid, 0] - truth_x).max() < 0.1
    merged = dg.merge_points(dg.trace_points(runs, choice, 3.0, cover), pts)
    assert np.all(np.diff(merged[:, 0]) >= 0) and len(merged) >= len(pts)


def test_of_several_coverages_the_reading_with_the_most_consistent_limb_leads_is_kept(monkeypatch):
    # read_traces stands in for the read-out: coverage "a" reads limb leads that break
    # Einthoven's law, "b" leads that obey it, "c" nothing at all.
    t = np.linspace(0, 2 * np.pi, 1250)
    lead_i, lead_iii = np.sin(t), np.cos(3 * t)

    def fake_read(mask, lay, grid, pen, cover, fs, duration_s, paper, keep_apex=False, paths=None,
                  path_cost=None, own_row=False, marks=None, margin_px=1.0, split_strokes=False,
                  through_mm=0.0):
        signal = np.full((5000, 12), np.nan)
        if cover != "c":
            signal[:1250, LEAD_INDEX["I"]] = lead_i
            signal[:1250, LEAD_INDEX["III"]] = lead_iii
            signal[:1250, LEAD_INDEX["II"]] = lead_i + lead_iii if cover == "b" else lead_i - lead_iii
        return signal, {"cover": cover}

    monkeypatch.setattr(dg, "read_traces", fake_read)
    args = (None, None, None, 1.0)
    signal, traces, extra = dg.read_traces_choosing(*args, {"a": "a", "b": "b", "c": "c"},
                                                    500, 10.0, PaperConfig())
    assert traces == {"cover": "b"} and extra["coverage"] == "b"
    assert extra["coverage_consistency"]["b"] == pytest.approx(1.0)
    assert extra["coverage_consistency"]["a"] < 0.5 and extra["coverage_consistency"]["c"] is None
    np.testing.assert_allclose(signal[:1250, LEAD_INDEX["II"]], lead_i + lead_iii)
    # A reading that cannot be judged loses to one that can; one array is read as it is.
    assert dg.read_traces_choosing(*args, {"c": "c", "a": "a"}, 500, 10.0, PaperConfig())[2]["coverage"] == "a"
    assert dg.read_traces_choosing(*args, {"c": "c"}, 500, 10.0, PaperConfig())[2]["coverage"] == "c"
    assert dg.read_traces_choosing(*args, "b", 500, 10.0, PaperConfig())[2] == {}


def test_readings_with_several_coverages_share_the_paths_and_read_as_alone(page):
    upright, _, dark = pp.straighten(page[0])
    grid = pp.detect_grid(upright, dark=dark)
    mask = pp.denoise(pp.remove_grid(upright, grid, dark=dark), grid.px_per_mm)
    lay = pp.detect_layout(mask, grid, "3x4+1")
    pen = dg.pen_width(mask, lay)
    covers = {"ink": dg.ink_coverage(dark, mask), "flat": mask.astype(np.float32)}
    args = (500, 10.0, PaperConfig())
    paths: dict = {}
    shared = {k: dg.read_traces(mask, lay, grid, pen, c, *args, paths=paths)[0] for k, c in covers.items()}
    alone = {k: dg.read_traces(mask, lay, grid, pen, c, *args)[0] for k, c in covers.items()}
    assert sorted(paths) == list(range(len(lay.panels)))
    for k in covers:
        np.testing.assert_array_equal(shared[k], alone[k])
    assert not np.allclose(np.nan_to_num(alone["ink"]), np.nan_to_num(alone["flat"]))


def test_a_narrow_apex_keeps_its_column_point_only_when_asked():
    # A QRS apex: the column at x = 5 tops out at y = 10; the strokes' row points beside it
    # (x = 5.2) start lower, where the up- and downstroke no longer merge in one row.
    cover = np.zeros((60, 11), np.float32)
    cover[50:53, :] = 1.0                         # the baseline, a pen 3 px thick
    cover[9:53, 5] = 1.0                          # the apex column's run, 44 px tall
    runs = dg.column_runs(cover > 0.45)
    choice = dg.follow_trace(runs, 51.0, 8.0)
    pts, extreme = dg.column_points(runs, choice, 3.0, cover)
    assert extreme.tolist() == [x == 5 for x in range(11)]
    strokes = np.array([[5.2, 20.0], [5.2, 30.0], [5.3, 40.0]])
    kept = dg.merge_points(pts, strokes, keep=extreme)
    dropped = dg.merge_points(pts, strokes)
    assert kept[:, 1].min() == pytest.approx(10.0, abs=0.2)   # the run's top edge, half a pen in
    assert dropped[:, 1].min() == 20.0 and len(kept) == len(dropped) + 1
    assert np.all(np.diff(kept[:, 0]) >= 0)


def _spike(feet_px: float = 6.0) -> np.ndarray:
    """Coverage ``(100, 34)`` 0..1 of an anti-aliased one-px pen drawing a narrow QRS spike, its
    apex at (12.3, 10) px and its feet at y = 90, ``feet_px`` apart, then a broader stroke
    rising from (20, 90) to (26, 10), whose rows hold one stroke each."""
    line = np.array([[0.0, 90.0], [12.3 - feet_px / 2, 90.0], [12.3, 10.0],
                     [12.3 + feet_px / 2, 90.0], [20.0, 90.0], [26.0, 10.0], [33.0, 10.0]])
    img = np.zeros((100, 34), np.uint8)
    cv2.polylines(img, [np.round(line * 256).astype(np.int32)], False, 255, 1, cv2.LINE_AA, 8)
    return img.astype(np.float32) / 255


def test_a_narrow_spikes_merged_rows_give_both_strokes_crossings():
    # Near the apex the up- and downstroke's ink join in one row; their common centre is
    # neither's, so those rows gave no point. Split, each stroke lies half its ink inside the
    # joined ink's edges.
    cover = _spike()
    runs = dg.column_runs(cover > 0.45)
    choice = dg.follow_trace(runs, 90.0, 8.0)
    plain = dg.stroke_points(runs, choice, pen=2.0, cover=cover)
    split = dg.stroke_points(runs, choice, pen=2.0, cover=cover, split_merged=True)
    before = set(map(tuple, plain))
    assert before <= set(map(tuple, split))                  # the single strokes' rows as before
    added = np.array([p for p in map(tuple, split) if p not in before])
    assert len(added) >= 30 and added[:, 0].max() < 16 and added[:, 1].max() < 60
    half = (added[:, 1] - 10) * 3 / 80                      # px, each stroke from the apex's x
    miss = np.minimum(abs(added[:, 0] - (12.3 - half)), abs(added[:, 0] - (12.3 + half)))
    assert miss.max() < 0.35 and miss.mean() < 0.5 * half.mean()   # the joint centre: half


def test_increasing_fit_pools_the_runs_that_decrease():
    np.testing.assert_allclose(dg.increasing_fit(np.array([1.0, 3.0, 2.0, 4.0, 0.0, 6.0])),
                               [1.0, 2.25, 2.25, 2.25, 2.25, 6.0])
    rng = np.random.default_rng(0)
    values = np.cumsum(rng.normal(0.2, 1.0, 50))
    fit = dg.increasing_fit(values)
    assert np.all(np.diff(fit) >= -1e-12) and fit.sum() == pytest.approx(values.sum())
    np.testing.assert_array_equal(dg.increasing_fit(np.sort(values)), np.sort(values))


def test_order_strokes_makes_a_steep_stroke_monotone_and_leaves_flat_stretches():
    # A stroke falling 20 px per px (y grows down the page) between two flat stretches; its row
    # points' x jitter by +-0.15 px, so sorted by x their y zig-zag.
    rng = np.random.default_rng(1)
    cols = np.array([[x, 50.0 if x <= 10 else (10.0 if x >= 13 else 50.0 - 20 * (x - 11))]
                     for x in range(25)], dtype=float)
    ys = np.arange(12.0, 49.0)
    stroke = np.stack([11 + (50 - ys) / 20 + rng.uniform(-0.15, 0.15, ys.size), ys], axis=1)
    flat = cols[(cols[:, 0] <= 10) | (cols[:, 0] >= 14)]
    pts = np.vstack([flat, stroke])
    pts = pts[np.argsort(pts[:, 0], kind="stable")]
    assert np.any(np.diff(pts[(pts[:, 0] > 10.5) & (pts[:, 0] < 13.5), 1]) > 0)   # zig-zags
    out = dg.order_strokes(pts, cols)
    on = (out[:, 0] > 10.5) & (out[:, 0] < 13.5)
    assert np.all(np.diff(out[on, 1]) < 0) and np.all(np.diff(out[:, 0]) >= 0)
    np.testing.assert_array_equal(np.sort(out[:, 1]), np.sort(pts[:, 1]))   # every level kept
    truth_x = 11 + (50 - out[on, 1]) / 20
    assert np.abs(out[on, 0] - truth_x).max() < 0.2
    np.testing.assert_array_equal(out[~on], pts[~on])
