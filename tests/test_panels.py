"""Panel crops: shapes, detected vs true positions, targets, the cached split arrays."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import ecg_like

from ecgnb import panels as P
from ecgnb.config import DataConfig, PaperConfig, get_profile
from ecgnb.dataset import build_dataset, load_index
from ecgnb.io import write_png
from ecgnb.layouts import panels as layout_panels
from ecgnb.render import masked_signal, render_page

CFG = P.CropConfig()


@pytest.fixture(scope="module")
def page():
    signal = ecg_like()
    image, truth = render_page(signal, 500, PaperConfig(), np.random.default_rng(3))
    return image, masked_signal(signal, truth), truth


@pytest.fixture(scope="module")
def detected(page):
    return P.extract_panels(page[0])


def _rows_of(crop: np.ndarray) -> np.ndarray:
    """mV read off a crop by its darkest row per column (a crude digitizer for checks)."""
    return ((CFG.height - 1) / 2 - np.argmax(crop, axis=0)) * CFG.mv_per_row


def test_crops_shape_and_spans(detected):
    # 12 short panels + a 10 s rhythm strip cut into 4 windows of 2.5 s.
    assert len(detected) == 16
    assert all(c.crop.shape == (2, CFG.height, CFG.width) and c.crop.dtype == np.float32
               for c in detected)
    assert all(0.0 <= c.crop.min() and c.crop.max() <= 1.0 for c in detected)
    expected = {(p.lead, p.t0_s) for p in layout_panels("3x4+1") if not p.rhythm}
    expected |= {("II", t) for t in (0.0, 2.5, 5.0, 7.5)}
    assert {(c.lead, c.t0_s) for c in detected} == expected
    assert sum(c.rhythm for c in detected) == 4
    assert all(abs(c.t1_s - c.t0_s - CFG.window_s) < 1e-9 for c in detected)


def test_detected_panels_agree_with_truth(page, detected):
    image, signal, truth = page
    true = P.extract_panels(image, use_truth=truth)
    assert [(c.lead, c.t0_s, c.rhythm) for c in true] == [(c.lead, c.t0_s, c.rhythm) for c in detected]
    for d, t in zip(detected, true):
        assert abs(d.x0 - t.x0) < 2.0, f"{d.lead} at {d.t0_s}s: x0 {d.x0:.1f} vs true {t.x0:.1f} px"
        assert abs(d.baseline_y - t.baseline_y) < 2.0, \
            f"{d.lead} at {d.t0_s}s: baseline {d.baseline_y:.1f} vs true {t.baseline_y:.1f} px"
        assert np.corrcoef(d.crop[0].ravel(), t.crop.ravel())[0, 1] > 0.9


def test_targets_match_the_ink(page, detected):
    _, signal, _ = page
    for c in detected:
        y = P.crop_target(signal, c, 500, CFG)
        assert y is not None and y.shape == (CFG.n_samples,) and y.dtype == np.float32
        s0, s1 = c.sample_span(500)
        assert s1 - s0 == CFG.n_samples
        np.testing.assert_array_equal(y, signal[s0:s1, P.LEAD_INDEX[c.lead]].astype(np.float32))
        # column j is at t0 + j / cols_per_s, i.e. target sample j * fs / cols_per_s
        at_cols = np.interp(np.arange(CFG.width) * CFG.fs / CFG.cols_per_s, np.arange(y.size), y)
        for channel, what in enumerate(("ink", "classical trace")):
            err = np.abs(_rows_of(c.crop[channel]) - at_cols)
            assert np.median(err) < 0.05, f"{c.lead} at {c.t0_s}s: {what} is {np.median(err):.3f} mV off"


def test_windows_not_drawn_are_not_targets(page, detected):
    _, signal, _ = page
    short_i = next(c for c in detected if c.lead == "I")
    moved = dataclasses.replace(short_i, t0_s=2.5, t1_s=5.0)   # lead I is drawn 0-2.5 s only
    assert P.crop_target(signal, moved, 500, CFG) is None
    past = dataclasses.replace(short_i, t0_s=9.0, t1_s=11.5)   # beyond the record
    assert P.crop_target(signal, past, 500, CFG) is None
    # Other target rates are resampled.
    y = P.crop_target(signal, short_i, 500, P.CropConfig(fs=250))
    assert y.shape == (625,)


def test_build_panel_arrays_cache_and_skips(tmp_path):
    profile = dataclasses.replace(
        get_profile("quick"), name="tiny",
        data=DataConfig(n_synthetic=3, use_real=False, severities=(0.0,), split=(1.0, 0.0, 0.0),
                        show_progress=False))
    build_dataset(profile, tmp_path / "tiny", log=lambda *_: None)
    index = load_index("tiny", tmp_path / "tiny")
    assert (index["split"] == "train").sum() == 3
    bad = index.iloc[0]
    write_png(tmp_path / "tiny" / f"{bad.path}.png", np.full((1700, 2200, 3), 255, np.uint8))
    logs = []
    X, Y, meta = P.build_panel_arrays("tiny", "train", data_dir=tmp_path / "tiny",
                                      progress=False, log=logs.append)
    assert X.shape == (32, 2, CFG.height, CFG.width) and X.dtype == np.float32
    assert Y.shape == (32, CFG.n_samples) and Y.dtype == np.float32 and np.isfinite(Y).all()
    assert len(meta) == 32 and set(meta["page"]) == set(index["page"]) - {bad.page}
    assert list(meta.attrs["skipped"]) == [bad.page] and meta.attrs["pages"] == 3
    assert meta.attrs["crop"] == CFG.to_dict()
    assert any(bad.page in line for line in logs), "skipped pages must be reported"
    cache = P.panel_cache_path("tiny", "train", tmp_path / "tiny")
    assert cache.exists()
    stamp = cache.stat().st_mtime_ns
    X2, Y2, meta2 = P.build_panel_arrays("tiny", "train", data_dir=tmp_path / "tiny", progress=False)
    assert cache.stat().st_mtime_ns == stamp, "second call should read the cache"
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(Y, Y2)
    assert meta2[["page", "lead", "t0_s"]].equals(meta[["page", "lead", "t0_s"]])
    assert meta2.attrs["skipped"] == meta.attrs["skipped"]


def test_raw_crops_sit_at_the_template_positions_and_keep_the_grid(page):
    image, signal, truth = page
    raw = P.extract_panels(image, cfg=dataclasses.replace(CFG, preprocess=False))
    true = P.extract_panels(image, use_truth=truth)
    assert [c.lead for c in raw] == [c.lead for c in true]
    for r, t in zip(raw, true):
        # a clean page is where the template puts it: same time origin and 0 mV line (px)
        assert abs(r.x0 - t.x0) < 1.0 and abs(r.baseline_y - t.baseline_y) < 1.0
    # no grid removal: the printed grid adds ink all over the raw crop
    assert np.mean([c.crop.mean() for c in raw]) > 1.3 * np.mean([c.crop.mean() for c in true])
    # the trace is still where the target says
    err = [np.abs(_rows_of(c.crop)[::10] - P.crop_target(signal, c, 500, CFG)[::25]).mean()
           for c in raw if not c.rhythm]
    assert np.median(err) < 0.1


def test_raw_crops_are_cached_apart():
    assert P.panel_cache_path("quick", "train", preprocess=False).name == "panels_raw_train.npz"
    assert P.panel_cache_path("quick", "train").name == "panels_train.npz"
    assert P.panel_cache_path("quick", "train", trace=False).name == "panels_ink_train.npz"
    assert P.panel_cache_path("quick", "train", front="trace_net").name == "panels_tracenet_train.npz"
    assert P.panel_cache_path("quick", "val", trace=False, front="trace_net").name == \
        "panels_tracenet_ink_val.npz"


def test_an_unknown_crop_front_is_refused():
    image = np.full((400, 600, 3), 255, np.uint8)
    with pytest.raises(ValueError, match="unknown crop front 'nope'"):
        P.analyse_for(image, "3x4+1", 10.0, dataclasses.replace(CFG, front="nope"))
