"""Rendering: page shape, exact geometry, truth on ink, determinism, input errors, drawn mask."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ecgnb.config import PaperConfig
from ecgnb.errors import SignalError
from ecgnb.layouts import LAYOUTS, panels
from ecgnb.leads import LEAD_INDEX
from ecgnb.render import drawn_mask, masked_signal, render_page

FS = 250                       # Hz; low rate keeps the tests fast, geometry does not depend on it
DPI = 100


def _signal(seconds: float = 10.0, fs: int = FS) -> np.ndarray:
    """(n, 12) mV: a different smooth wave per lead, within +-1.2 mV."""
    t = np.arange(int(seconds * fs)) / fs
    return np.stack([0.8 * np.sin(2 * np.pi * (1.1 + 0.1 * k) * t + k)
                     + 0.3 * np.sin(2 * np.pi * 6 * t + 0.5 * k) for k in range(12)], axis=1)


def _dark(image: np.ndarray, threshold: float = 128.0) -> np.ndarray:
    """Bool (H, W): ink pixels (luminance below ``threshold``; grid colours stay above 150)."""
    lum = image.astype(float) @ np.array([0.299, 0.587, 0.114])
    return lum < threshold


def _on_ink(dark: np.ndarray, points: np.ndarray, tol: int = 1) -> np.ndarray:
    """Bool per point: some dark pixel within ``tol`` px (Chebyshev) of the point's pixel."""
    h, w = dark.shape
    near = dark.copy()
    for dy in range(-tol, tol + 1):
        for dx in range(-tol, tol + 1):
            near |= np.roll(np.roll(dark, dy, axis=0), dx, axis=1)
    c = np.rint(points).astype(int)
    inside = (c[:, 0] >= 0) & (c[:, 0] < w) & (c[:, 1] >= 0) & (c[:, 1] < h)
    ok = np.zeros(len(points), bool)
    ok[inside] = near[c[inside, 1], c[inside, 0]]
    return ok


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_shape_dtype_and_panels_per_layout(layout):
    paper = PaperConfig(dpi=DPI, layout=layout)
    image, truth = render_page(_signal(), FS, paper)
    h, w = round(paper.page_h_mm * paper.px_per_mm), round(paper.page_w_mm * paper.px_per_mm)
    assert image.shape == (h, w, 3) and image.dtype == np.uint8
    assert truth["image_size"] == [h, w]
    assert len(truth["panels"]) == len(panels(layout))
    json.dumps(truth)                                    # plain JSON types only


def test_step_is_exactly_gain_times_px_per_mm():
    paper = PaperConfig(dpi=DPI)
    sig = np.zeros((10 * FS, 12))
    sig[5 * FS:, :] = 1.0                                # 1 mV step at t = 5 s
    image, truth = render_page(sig, FS, paper)
    rhythm = next(p for p in truth["panels"] if p["rhythm"])
    tr = np.asarray(rhythm["trace"])
    step_px = 10.0 * paper.px_per_mm
    assert np.allclose(tr[: 5 * FS, 1], rhythm["baseline_y"], atol=1e-9)
    assert np.allclose(rhythm["baseline_y"] - tr[5 * FS:, 1], step_px, atol=1e-9)
    # The ink is there: dark pixels on the 1 mV level half way through the step, none just
    # below it between baseline and step level.
    x = int(round(tr[7 * FS, 0]))
    y_top, y_base = int(round(tr[7 * FS, 1])), int(round(rhythm["baseline_y"]))
    dark = _dark(image)
    assert dark[y_top - 1:y_top + 2, x].any()
    assert not dark[y_top + 3:y_base - 3, x].any()


def test_time_axis_is_exact_and_baselines_on_major_lines():
    paper = PaperConfig(dpi=DPI)
    _, truth = render_page(_signal(), FS, paper)
    span = paper.speed_mm_s * paper.px_per_mm            # px per second
    gx, gy = truth["grid"]["origin"]
    major = truth["grid"]["major_px"]
    for p in truth["panels"]:
        tr = np.asarray(p["trace"])
        t = np.arange(p["sample_start"], p["sample_end"]) / FS
        assert np.allclose(tr[:, 0] - tr[0, 0], (t - t[0]) * span, atol=1e-9)
        assert tr[0, 0] == pytest.approx(p["x_start"])
        k = (p["baseline_y"] - gy) / major
        assert k == pytest.approx(round(k), abs=1e-9)
    x_row = truth["panels"][0]["x_start"]
    assert (x_row - gx) / major == pytest.approx(round((x_row - gx) / major), abs=1e-9)


@pytest.mark.parametrize("layout", ["3x4+1", "12x1"])
def test_every_truth_point_is_on_ink(layout):
    image, truth = render_page(_signal(), FS, PaperConfig(dpi=DPI, layout=layout),
                               rng=np.random.default_rng(0))
    dark = _dark(image)
    assert dark.mean() < 0.1                             # ink is sparse, so the check has teeth
    for p in truth["panels"]:
        ok = _on_ink(dark, np.asarray(p["trace"]))
        assert ok.all(), f"{p['lead']}: {np.count_nonzero(~ok)} truth points off ink"


def test_ink_check_rejects_shifted_truth():
    """Negative control for the test above: points 1 mm + 2 px off are mostly not on ink."""
    image, truth = render_page(_signal(), FS, PaperConfig(dpi=DPI))
    tr = np.asarray(truth["panels"][0]["trace"]) + [0.0, 1.0 * truth["px_per_mm"] + 2]
    assert _on_ink(_dark(image), tr).mean() < 0.5


def test_large_amplitudes_overlap_rows_and_truth_stays_unclipped():
    sig = np.zeros((10 * FS, 12))
    sig[FS:FS + 5, :] = 5.0                              # 5 mV spikes reach into the row above
    sig[2 * FS, 0] = 1e6                                 # absurd sample: drawn off-page, no crash
    image, truth = render_page(sig, FS, PaperConfig(dpi=DPI))
    first = truth["panels"][0]
    assert np.asarray(first["trace"])[:, 1].min() < 0    # exact, above the image top
    assert first["bbox"][1] == 0.0                        # bbox is clipped to the image
    assert image.dtype == np.uint8


def test_calibration_pulse_is_10mm_by_5mm():
    paper = PaperConfig(dpi=DPI)
    _, truth = render_page(_signal(), FS, paper)
    assert len(truth["calibration"]) == 4
    x0, y0, x1, y1 = truth["calibration"][0]["bbox"]
    assert x1 - x0 == pytest.approx(5.0 * paper.px_per_mm)
    assert y1 - y0 == pytest.approx(10.0 * paper.px_per_mm)
    bare_paper = PaperConfig(dpi=DPI, calibration_pulse=False, header=False)
    _, bare = render_page(_signal(), FS, bare_paper)
    assert bare["calibration"] == [] and bare["header"] == {}


def test_deterministic_by_seed():
    a = render_page(_signal(), FS, PaperConfig(dpi=DPI), rng=np.random.default_rng(7))
    b = render_page(_signal(), FS, PaperConfig(dpi=DPI), rng=np.random.default_rng(7))
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]


@pytest.mark.parametrize("signal, fs, match", [
    (np.full((2500, 12), np.nan), FS, "NaN"),
    (np.zeros((2500, 11)), FS, r"\(n_samples, 12\)"),
    (np.zeros((12, 2500)), FS, "transpose"),
    (np.zeros(2500), FS, r"\(n_samples, 12\)"),
    (np.zeros((100, 12)), FS, "at least"),
    (np.zeros((2500, 12)), 0, "positive"),
    (np.zeros((60 * FS, 12)), FS, "crop the signal"),
])
def test_bad_signals_raise_clear_errors(signal, fs, match):
    with pytest.raises(SignalError, match=match):
        render_page(signal, fs, PaperConfig(dpi=DPI))


def test_unknown_layout_raises():
    with pytest.raises(ValueError, match="known layouts"):
        render_page(_signal(), FS, PaperConfig(dpi=DPI, layout="5x5"))


def test_drawn_mask_3x4_plus_1():
    sig = _signal()
    _, truth = render_page(sig, FS, PaperConfig(dpi=DPI))
    mask = drawn_mask(truth)
    n = sig.shape[0]
    assert mask.shape == (n, 12)
    assert mask[:, LEAD_INDEX["II"]].all()                       # rhythm strip
    lead_i = mask[:, LEAD_INDEX["I"]]
    assert lead_i[: n // 4].all() and not lead_i[n // 4:].any()   # 0 - 2.5 s only
    v6 = mask[:, LEAD_INDEX["V6"]]
    assert v6[3 * n // 4:].all() and not v6[: 3 * n // 4].any()
    masked = masked_signal(sig, truth)
    assert np.isnan(masked[n // 4:, LEAD_INDEX["I"]]).all()
    assert np.array_equal(masked[mask], sig[mask])
    with pytest.raises(SignalError):
        masked_signal(sig[:100], truth)
