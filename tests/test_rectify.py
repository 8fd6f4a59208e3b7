"""Rectification (ecgnb.rectify) and the rectified digitizer (ecgnb.rectified): the lattice's
spacing and phase, the flattening against the simulation's own geometry, the colour-free ink
mask, and whole readings of a photo and a photocopy."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from conftest import ecg_like
from ecgnb import digitizers, orient
from ecgnb.config import CopyConfig, PaperConfig, PhotoConfig, RectifyConfig
from ecgnb.grid import GridInfo, darkness
from ecgnb.metrics import record_metrics
from ecgnb.photo import photocopy, photograph
from ecgnb.reading import ReadOptions
from ecgnb.rectified import lattice_mask, line_offset
from ecgnb.rectify import (_is_major, _phasor_field, _unwrap, find_page, flatten, flatten_error,
                           lattice_field, line_period)
from ecgnb.render import masked_signal, render_page

# A phone photo of moderate difficulty: tilt, a curl and a bow, no fold, 3-4 MP.
PHOTO = PhotoConfig(dpi_range=(150.0, 170.0), max_megapixels=4.0, tilt_deg_max=20.0,
                    curl_deg_max=20.0, fold_p=0.0, quarter_turn_p=(1.0, 0.0, 0.0, 0.0),
                    backgrounds=("wood",))


@pytest.fixture(scope="module")
def page():
    signal = ecg_like()
    image, truth = render_page(signal, 500, PaperConfig(), np.random.default_rng(3))
    return image, truth, masked_signal(signal, truth)


@pytest.fixture(scope="module")
def photo(page):
    image, truth, _ = page
    return photograph(image, truth, PHOTO, np.random.default_rng(5))


def _comb(n: int, period: float, offset: float, width: float = 1.0) -> np.ndarray:
    x = np.arange(n)
    d = (x - offset) % period
    return (np.minimum(d, period - d) <= width).astype(float)


@pytest.mark.parametrize("period", [5.7, 12.3, 28.6, 40.0])
def test_line_period_finds_the_spacing_not_a_multiple(period):
    p, strength = line_period(_comb(1600, period, 3.0), 4.0, 90.0)
    assert p == pytest.approx(period, rel=0.005)
    assert strength > 0.2


def test_line_period_with_a_guess_ignores_rows_of_trace():
    # 5 mm lines every 28.6 px plus strong "rows" every 3 x that spacing.
    profile = _comb(1600, 28.6, 0.0) + 3 * _comb(1600, 85.8, 40.0, width=6)
    assert line_period(profile, 4.0, 90.0, guess_px=28.0)[0] == pytest.approx(28.6, rel=0.01)


def test_one_or_five_mm_from_the_page_size():
    assert _is_major(28.0, guess_px=30.0)
    assert not _is_major(5.9, guess_px=30.0)


def test_unwrap_recovers_a_ramp():
    yy, xx = np.mgrid[0:20, 0:30]
    truth = 0.9 * xx + 0.4 * yy
    wrapped = np.angle(np.exp(1j * truth))
    out = _unwrap(wrapped, np.ones_like(truth))
    assert np.allclose(out - out[0, 0], truth - truth[0, 0], atol=1e-9)


def test_line_offset_reads_the_phase():
    assert line_offset(_comb(800, 39.37, 11.0), 39.37) == pytest.approx(11.0, abs=0.3)


def test_clean_page_is_left_as_it_is(page):
    image, truth, _ = page
    flat = flatten(image)
    assert flat.lattice is not None and flat.confidence > 0.5
    err = flatten_error(flat, truth)
    assert err["median_mm"] < 0.05 and err["p95_mm"] < 0.15
    assert err["trace_time_median_mm"] < 0.02
    assert flat.px_per_mm == pytest.approx(200 / 25.4)


def test_photo_is_found_and_flattened(photo):
    image, truth = photo
    corners = find_page(image)
    assert corners is not None
    flat = flatten(image)
    err = flatten_error(flat, truth)
    assert err["page_covered"] > 0.8
    assert err["median_mm"] < 0.3, err
    assert err["p95_mm"] < 1.0, err
    assert 0 < err["trace_time_median_mm"] < 0.1, err   # on the traces, along time
    d = flat.diagnostics()
    assert d["lattice"]["coverage"] > 0.5 and len(d["corners"]) == 4 and d["outline"] == "threshold"


@pytest.mark.parametrize("ramp, shift_mm, read_mm",
                         [(False, 0.3, 0.3), (False, -0.2, -0.2), (False, 0.7, -0.3), (True, 0.7, 0.7)])
def test_fine_pass_reads_the_one_mm_lines(ramp, shift_mm, read_mm):
    # 1 mm lines every 7.87 px, moved by shift_mm in the right part of the page only: the field
    # says so there and 0 on the left. A step reads to the nearest line (0.7 mm as -0.3); a
    # shift growing smoothly across the middle half (a bend the coarse passes left) is followed
    # node to node and reads 0.7, not a whole region slipped by a line (a mm of time or voltage).
    ppm, h, w = 200 / 25.4, 240, 960
    ys, xs = np.mgrid[0:h, 0:w].astype(float)
    share = np.clip((xs - w / 4) / (w / 2), 0, 1) if ramp else (xs > w / 2).astype(float)
    d = (xs - share * shift_mm * ppm) % ppm
    ev = (np.minimum(d, ppm - d) <= 1.0).astype(np.float32)
    d = ys % ppm
    ev = np.maximum(ev, (np.minimum(d, ppm - d) <= 1.0)).astype(np.float32)
    dx, dy = _phasor_field(ev, ppm, 2 * ppm, 2.5 * ppm, 0.15)
    cols = dx.shape[1]
    assert np.median(dx[:, : cols // 5]) == pytest.approx(0.0, abs=0.05 * ppm)
    assert np.median(dx[:, -cols // 5:]) == pytest.approx(read_mm * ppm, abs=0.05 * ppm)
    assert np.abs(dy).max() < 0.05 * ppm


def test_one_mm_lines_along_one_axis_and_five_along_the_other_are_one_grid():
    # Minor lines that stand out only between the vertical major lines (a slanted pink grid):
    # x finds 1 mm, y only 5 mm; both are the grid's 5 mm lattice.
    h, w = 900, 1200
    ys, xs = np.mgrid[0:h, 0:w].astype(float)
    comb = lambda v, p: (np.minimum(v % p, p - v % p) <= 1.0).astype(np.float32)   # noqa: E731
    ev = np.maximum.reduce([comb(xs, 30.0), 0.6 * comb(xs, 6.0), comb(ys, 30.5)])
    lat = lattice_field(ev, 30.0)
    assert lat is not None
    assert lat.period_x == pytest.approx(30.0, rel=0.01) and lat.period_y == pytest.approx(30.5, rel=0.01)
    assert lat.mm == 5.0


def test_refinement_keeps_a_photo_flat_and_maps_many_points(photo):
    # The full-resolution passes may not undo the working copy's flattening, and the map
    # they leave answers for more points than cv2.remap takes in one row (32767).
    image, truth = photo
    plain = flatten(image, RectifyConfig(refine_passes=0, fine_lines=False))
    refined = flatten(image)
    assert flatten_error(refined, truth)["p95_mm"] < 1.5 * flatten_error(plain, truth)["p95_mm"] + 0.05
    pts = np.random.default_rng(0).uniform(0, 500, (40000, 2))
    assert np.allclose(refined.to_photo(pts)[-5:], refined.to_photo(pts[-5:]), atol=1e-3)


def test_a_stain_cutting_a_scans_corner_does_not_skew_its_flattening(page):
    # A dark blot over the top-right corner of a scan (the page fills the frame) makes the
    # paper's outline a skewed quad; the lattice would then have to undo that skew (3.8 grid
    # spacings of warping, 0.27 mm p95 error left), while the whole frame needs none.
    image, truth, _ = page
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    blot = ((xx - w) / (0.08 * w)) ** 2 + (yy / (0.6 * h)) ** 2 < 1
    stained = image.copy()
    stained[blot] = (stained[blot] * 0.25).astype(np.uint8)
    assert find_page(stained) is not None
    flat = flatten(stained)
    assert flat.corners is None and flat.outline == "frame"
    err = flatten_error(flat, truth)
    assert err["page_covered"] > 0.99 and err["p95_mm"] < 0.05, err


def _on_desk(image: np.ndarray, rgb: tuple[int, int, int]):
    """``(photo, (yy, xx), (oy, ox), corners)``: ``image`` on a plain desk of colour ``rgb`` 15 %
    larger each side, the photo's px grid, the page's offset and its true corners (TL, TR, BR,
    BL)."""
    h, w = image.shape[:2]
    oy, ox = int(0.15 * h), int(0.15 * w)
    desk = np.full((h + 2 * oy, w + 2 * ox, 3), rgb, np.uint8)
    desk[oy:oy + h, ox:ox + w] = image
    corners = np.array([[ox, oy], [ox + w, oy], [ox + w, oy + h], [ox, oy + h]], float)
    return desk, np.mgrid[0:desk.shape[0], 0:desk.shape[1]], (oy, ox), corners


def _in_shadow(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A grey desk, a soft cast shadow (half the light, 40 px penumbra) over the page's lower
    left, from 45 % down its left side to 35 % along its bottom; and the true corners."""
    desk, (yy, xx), (oy, ox), corners = _on_desk(image, (110, 118, 126))
    h, w = image.shape[:2]
    a, b = np.array([ox, oy + 0.45 * h]), np.array([ox + 0.35 * w, oy + h])
    n = np.array([b[1] - a[1], a[0] - b[0]]) / np.hypot(*(b - a))
    light = 1.0 - 0.5 / (1.0 + np.exp(((xx - a[0]) * n[0] + (yy - a[1]) * n[1]) / 40.0))
    return _tilted((desk * light[..., None]).astype(np.uint8), corners)


def _beside_a_cloth(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A dark desk, a light grey-green striped cloth under the page's lower left reaching the
    frame's edge; and the true corners."""
    desk, (yy, xx), (oy, ox), corners = _on_desk(image, (70, 60, 50))
    h, w = image.shape[:2]
    cloth = ((yy > oy + 0.5 * h) & (xx < ox + 0.5 * w)) & ~(
        (yy >= oy) & (yy < oy + h) & (xx >= ox) & (xx < ox + w))
    stripes = 8 * np.sign(np.sin(2 * np.pi * (xx + yy) / 40.0))[cloth][:, None]
    desk[cloth] = np.clip(np.array([212.0, 230.0, 200.0]) + stripes, 0, 255).astype(np.uint8)
    return _tilted(desk, corners)


def _tilted(photo: np.ndarray, corners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``photo`` seen from below its bottom edge (the top 25 % narrower: a camera tilted ~30 deg,
    so that the frame's own grid is far from regular) and the page's corners moved along."""
    h, w = photo.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = np.float32([[0.125 * w, 0], [0.875 * w, 0], [w, h], [0, h]])
    hom = cv2.getPerspectiveTransform(src, dst)
    out = cv2.warpPerspective(photo, hom, (w, h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    return out, cv2.perspectiveTransform(corners.reshape(-1, 1, 2).astype(np.float32), hom).reshape(-1, 2)


@pytest.mark.parametrize("scene, how", [(_in_shadow, "grown"), (_beside_a_cloth, "colour")])
def test_an_outline_the_threshold_misses_is_found_another_way(page, scene, how):
    # A cast shadow darkens paper and desk alike: Otsu's one threshold cuts the shadowed paper
    # off, but the blob grown by a watershed stops at the paper's sharp edge. A light cloth as
    # bright and grey as paper joins its blob, but is not of its colour. Either way the lattice
    # under the threshold's outline is skewed, and flatten takes the other one.
    image, _, _ = page
    photo, true = scene(image)
    size = np.hypot(*image.shape[:2])
    miss = lambda c: np.max(np.linalg.norm(c - true, axis=1)) / size   # noqa: E731
    assert miss(find_page(photo)) > 0.05
    assert miss(find_page(photo, how=how)) < 0.01
    flat = flatten(photo)
    assert flat.corners is not None and miss(flat.corners) < 0.01
    assert flat.lattice is not None and flat.diagnostics()["outline"] == how


def test_an_unknown_outline_is_refused(page):
    with pytest.raises(ValueError, match="unknown outline"):
        find_page(page[0], how="edges")


def test_no_grid_gives_no_lattice_and_says_so():
    rng = np.random.default_rng(0)
    image = (230 + rng.integers(0, 20, (900, 1200, 3))).astype(np.uint8)
    flat = flatten(image)
    assert flat.lattice is None and flat.confidence == 0.0
    assert any("no periodic grid" in n for n in flat.notes)


def test_lattice_mask_keeps_the_trace_drops_a_black_grid():
    ppm = 200 / 25.4
    h, w = 400, 800
    img = np.full((h, w, 3), 245, np.uint8)
    for k in np.arange(3, w, ppm):                 # black 1 mm grid, 1 px lines
        img[:, int(round(k))] = 20
    for k in np.arange(5, h, ppm):
        img[int(round(k)), :] = 20
    x = np.arange(40, w - 40)
    y = np.round(200 + 60 * np.sin(x / 37.0)).astype(int)   # a black trace, a pen 3 px wide
    import cv2
    cv2.polylines(img, [np.stack([x, y], axis=1).astype(np.int32).reshape(-1, 1, 2)], False,
                  (0, 0, 0), 3)
    grid = GridInfo(px_per_mm=ppm, px_per_mm_x=ppm, px_per_mm_y=ppm, minor_px=ppm, major_px=5 * ppm,
                    colour=(20, 20, 20), confidence=1.0, found=True)
    mask = lattice_mask(img, darkness(img), grid)
    on_trace = mask[y, x].mean()
    trace_band = np.zeros((h, w), bool)
    for dy in range(-4, 5):
        trace_band[np.clip(y + dy, 0, h - 1), x] = True
    off_trace = mask[~trace_band].mean()
    # Where the trace crosses a line as black as itself (every 1 mm here) a few px are lost: the
    # reader bridges them. Off the trace nothing of the grid may stay.
    assert on_trace > 0.7
    assert off_trace < 0.01


def test_black_grid_tells_a_copys_grid_from_a_coloured_print(page):
    # On a dark copy the grid's lines are as dark as the trace (the trace network's reader then
    # takes its own ink alone: level 0.65 here); on the colour print they are not (0.06).
    from ecgnb.rectified import black_grid
    image, truth, _ = page
    dark_copy = dataclasses.replace(CopyConfig(), fade_p=0.0, threshold=(0.88, 0.88))
    copy, _ = photocopy(image, truth, dark_copy, np.random.default_rng(0))
    ppm = 200 / 25.4
    grid = GridInfo(px_per_mm=ppm, px_per_mm_x=ppm, px_per_mm_y=ppm, minor_px=ppm,
                    major_px=5 * ppm, colour=(60, 60, 60), confidence=1.0, found=True)
    assert black_grid(darkness(copy), grid)
    assert not black_grid(darkness(image), grid)


def test_rectified_reads_a_photo_better_than_classical(page, photo):
    _, _, signal = page
    image, _ = photo
    reading = digitizers.get("rectified").read(image, ReadOptions())
    assert reading.method == "rectified" and "rectify" in reading.extra
    snr = np.nanmean(record_metrics(signal, reading.signal, 500)["snr_db"].replace(np.inf, np.nan))
    assert snr > 8.0
    cons = orient.lead_consistency(reading.signal, 500)
    assert cons is not None and cons > 0.5


def test_rectified_reads_a_black_and_white_copy(page):
    image, truth, signal = page
    copy, _ = photocopy(image, truth, dataclasses.replace(CopyConfig(), fade_p=0.0),
                        np.random.default_rng(2))
    snr = {}
    for name in ("classical", "rectified"):
        reading = digitizers.get(name).read(copy, ReadOptions())
        snr[name] = np.nanmean(record_metrics(signal, reading.signal, 500)["snr_db"])
    # Black grid and black trace: colour cannot separate them, the lattice can (about 2 dB
    # against -7 dB on this low-amplitude page; the colour print reads at about 14 dB).
    assert snr["rectified"] > 0.5 and snr["rectified"] > snr["classical"] + 5, snr


def test_settings_are_plain_json():
    d = RectifyConfig().to_dict()
    assert d["out_dpi"] == 200 and isinstance(d["lattice_px_range"], tuple)


@pytest.mark.parametrize("deg", [0, 90, 180, 270])
def test_quarter_turn_makes_the_pages_left_to_right_run_left_to_right(deg):
    from ecgnb.orient import turned
    from ecgnb.rectified import quarter_turn

    # An upright landscape page's corners (TL, TR), then the image turned by deg ccw:
    # turning it back takes (360 - deg) % 360.
    h, w = 40, 60
    marks = np.zeros((h, w), np.uint8)
    marks[0, 0], marks[0, w - 1] = 1, 2
    seen = turned(marks, deg)
    tl = np.argwhere(seen == 1)[0][::-1]
    tr = np.argwhere(seen == 2)[0][::-1]
    assert quarter_turn(np.array([tl, tr])) == (360 - deg) % 360
