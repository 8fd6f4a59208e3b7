"""Augmentation: identity at severity 0, truth follows geometry, determinism, errors, sizes."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from ecgnb.augment import KINDS, augment_page
from ecgnb.config import PaperConfig
from ecgnb.errors import ImageError
from ecgnb.render import render_page

FS, DPI = 250, 100


@pytest.fixture(scope="module")
def page():
    t = np.arange(10 * FS) / FS
    sig = np.stack([0.6 * np.sin(2 * np.pi * (1.1 + 0.1 * k) * t + k)
                    + 0.25 * np.sin(2 * np.pi * 6 * t + 0.5 * k) for k in range(12)], axis=1)
    return render_page(sig, FS, PaperConfig(dpi=DPI), rng=np.random.default_rng(0))


def _on_ink_fraction(image: np.ndarray, truth: dict, threshold: float = 140.0,
                     tol: int = 1) -> float:
    """Fraction of in-image truth trace points with a dark pixel within ``tol`` px."""
    lum = image.astype(float) @ np.array([0.299, 0.587, 0.114])
    dark = lum < threshold
    near = dark.copy()
    for dy in range(-tol, tol + 1):
        for dx in range(-tol, tol + 1):
            near |= np.roll(np.roll(dark, dy, axis=0), dx, axis=1)
    pts = np.concatenate([np.asarray(p["trace"]) for p in truth["panels"]])
    c = np.rint(pts).astype(int)
    h, w = dark.shape
    inside = (c[:, 0] >= 0) & (c[:, 0] < w) & (c[:, 1] >= 0) & (c[:, 1] < h)
    return float(near[c[inside, 1], c[inside, 0]].mean())


def test_severity_zero_is_identity(page):
    image, truth = page
    out, out_truth = augment_page(image, truth, 0.0, np.random.default_rng(1))
    assert np.array_equal(out, image) and out is not image
    assert out_truth == truth and out_truth is not truth


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_keeps_size_and_records_parameters(page, kind):
    image, truth = page
    before = copy.deepcopy(truth)
    out, out_truth = augment_page(image, truth, 1.0, np.random.default_rng(2), kinds=(kind,))
    assert out.shape == image.shape and out.dtype == np.uint8
    assert out_truth["artefacts"]["kinds"] == [kind] and kind in out_truth["artefacts"]
    assert truth == before                                      # input truth not mutated
    json.dumps(out_truth)


def test_rotated_truth_still_on_ink(page):
    image, truth = page
    out, out_truth = augment_page(image, truth, 1.0, np.random.default_rng(3),
                                  kinds=("perspective",))
    art = out_truth["artefacts"]
    assert abs(art["perspective"]["rotation_deg"]) > 0.5       # it really moved
    assert np.allclose(art["homography"], art["perspective"]["matrix"])
    assert _on_ink_fraction(out, out_truth) > 0.99
    assert _on_ink_fraction(out, truth) < 0.6                   # the unwarped truth would miss


def test_margin_shifts_truth_by_offset(page):
    image, truth = page
    out, out_truth = augment_page(image, truth, 1.0, np.random.default_rng(4), kinds=("margin",))
    dx, dy = out_truth["artefacts"]["margin"]["offset_px"]
    a, b = np.asarray(truth["panels"][0]["trace"]), np.asarray(out_truth["panels"][0]["trace"])
    assert np.allclose(b - a, [dx, dy])
    assert _on_ink_fraction(out, out_truth) > 0.99


def test_all_kinds_compose_and_stay_readable(page):
    image, truth = page
    out, out_truth = augment_page(image, truth, 1.0, np.random.default_rng(5))
    art = out_truth["artefacts"]
    assert art["kinds"] == list(KINDS)
    matrix = np.asarray(art["homography"])
    # The composite homography maps each clean-page trace to its augmented position.
    clean = np.asarray(truth["panels"][3]["trace"])
    hom = np.column_stack((clean, np.ones(len(clean)))) @ matrix.T
    assert np.allclose(hom[:, :2] / hom[:, 2:], out_truth["panels"][3]["trace"], atol=1e-6)
    # Strong but readable: most trace points still sit on something darker than the paper.
    assert _on_ink_fraction(out, out_truth, threshold=120.0, tol=2) > 0.9


def test_deterministic_by_seed(page):
    image, truth = page
    a = augment_page(image, truth, 0.7, np.random.default_rng(9))
    b = augment_page(image, truth, 0.7, np.random.default_rng(9))
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    c = augment_page(image, truth, 0.7, np.random.default_rng(10))
    assert not np.array_equal(a[0], c[0])


def test_errors(page):
    image, truth = page
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="known kinds"):
        augment_page(image, truth, 0.5, rng, kinds=("coffee",))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        augment_page(image, truth, 1.5, rng)
    with pytest.raises(ImageError):
        augment_page(image[:100], truth, 0.5, rng)
    with pytest.raises(ImageError):
        augment_page(image.astype(np.float32), truth, 0.5, rng)
