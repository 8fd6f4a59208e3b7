"""Preprocessing: grid scale, deskew, layout and clear errors on bad input."""
from __future__ import annotations

import numpy as np
import pytest

from ecgnb import preprocess as pp
from ecgnb.config import PaperConfig
from ecgnb.errors import EcgnbError, ImageError, LayoutError, MissingInputError
from ecgnb.paths import EIK_DEV

render = pytest.importorskip("ecgnb.render")


def ecg_like(fs: int = 500, duration_s: float = 10.0, seed: int = 0) -> np.ndarray:
    """Deterministic ``(n, 12)`` mV signal with P, QRS and T waves at 72 bpm, per-lead gains."""
    t = np.arange(int(fs * duration_s)) / fs
    phase = (t % (60 / 72)) / (60 / 72)
    beat = (0.15 * np.exp(-((phase - 0.15) / 0.03) ** 2) + 1.0 * np.exp(-((phase - 0.3) / 0.012) ** 2)
            - 0.2 * np.exp(-((phase - 0.33) / 0.01) ** 2) + 0.3 * np.exp(-((phase - 0.55) / 0.05) ** 2))
    gains = np.random.default_rng(seed).uniform(-1.2, 1.5, 12)
    return beat[:, None] * gains[None, :]


@pytest.fixture(scope="module")
def page():
    image, truth = render.render_page(ecg_like(), 500, PaperConfig(), np.random.default_rng(1))
    return image, truth


def test_px_per_mm_on_rendered_page_within_2_percent(page):
    image, truth = page
    grid = pp.detect_grid(image)
    assert grid.found and grid.confidence > 0.5
    for est in (grid.px_per_mm, grid.px_per_mm_x, grid.px_per_mm_y):
        assert est == pytest.approx(truth["px_per_mm"], rel=0.02)


def test_px_per_mm_does_not_come_from_dpi():
    # A 300-dpi page must measure 11.8 px/mm, whatever 200-dpi default exists elsewhere.
    image, truth = render.render_page(ecg_like(), 500, PaperConfig(dpi=300), np.random.default_rng(2))
    assert pp.detect_grid(image).px_per_mm == pytest.approx(truth["px_per_mm"], rel=0.02)


@pytest.mark.skipif(not EIK_DEV.exists(), reason="shared eik-dev pages not present")
def test_px_per_mm_on_eik_page():
    image, _ = pp.deskew(pp.load_image(sorted(EIK_DEV.glob("*.jpg"))[0]))
    assert pp.detect_grid(image).px_per_mm == pytest.approx(200 / 25.4, rel=0.02)


@pytest.mark.parametrize("angle", [3.0, -2.2])
def test_deskew_recovers_known_rotation(page, angle):
    rotated = pp.rotate(page[0], angle)
    assert pp.estimate_skew(rotated) == pytest.approx(angle, abs=0.3)
    upright, found = pp.deskew(rotated)
    assert found == pytest.approx(angle, abs=0.3)
    assert abs(pp.estimate_skew(upright)) < 0.3


def test_remove_grid_keeps_trace_drops_grid(page):
    image, truth = page
    grid = pp.detect_grid(image)
    mask = pp.denoise(pp.remove_grid(image, grid), grid.px_per_mm)
    trace = np.round(np.asarray(truth["panels"][0]["trace"])).astype(int)
    x, y = trace[:, 0], trace[:, 1]
    near = np.zeros_like(mask)
    for dy in (-1, 0, 1):
        near[np.clip(y + dy, 0, mask.shape[0] - 1), x] = True
    assert (mask & near).sum() / len(x) > 0.8       # the trace is kept
    assert mask.mean() < 0.05                          # the grid and paper are not


def test_layout_and_calibration_on_rendered_page(page):
    image, truth = page
    grid = pp.detect_grid(image)
    mask = pp.denoise(pp.remove_grid(image, grid), grid.px_per_mm)
    lay = pp.detect_layout(mask, grid, "3x4+1")
    assert len(lay.rows) == 4 and len(lay.panels) == 13 and lay.confidence > 0.5
    tp = truth["panels"][0]
    assert lay.x_start == pytest.approx(tp["x_start"], abs=2.0)       # px
    for row, cal in zip(lay.rows, truth["calibration"]):
        assert row.baseline_y == pytest.approx(cal["baseline_y"], abs=1.5)
        assert row.calibration is not None
        assert row.calibration["mm_per_mv"] == pytest.approx(10.0, abs=0.6)


def test_auto_layout_reports_choice(page):
    image, _ = page
    grid = pp.detect_grid(image)
    lay = pp.detect_layout(pp.denoise(pp.remove_grid(image, grid), grid.px_per_mm), grid, "auto")
    assert lay.name == "3x4+1" and "3x4+1" in lay.candidates


def test_unknown_layout_name_is_layout_error(page):
    image, _ = page
    grid = pp.detect_grid(image)
    with pytest.raises(LayoutError, match="unknown layout"):
        pp.detect_layout(pp.remove_grid(image, grid), grid, "7x7")


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
    grid = pp.detect_grid(image)
    assert not grid.found and grid.notes
    with pytest.raises((ImageError, LayoutError)) as err:
        digitize_image(image)
    assert isinstance(err.value, EcgnbError)
    if kind == "uniform":
        assert "not an ECG page" in str(err.value)
