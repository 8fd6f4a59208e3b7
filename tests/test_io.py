from __future__ import annotations

import numpy as np
import pytest

from ecgnb import io
from ecgnb.errors import ImageError, MissingInputError, SignalError


def test_wfdb_round_trip_keeps_nan_and_microvolts(tmp_path, rng):
    sig = rng.normal(scale=0.8, size=(5000, 12))
    sig[1250:, 0] = np.nan                       # lead I drawn only in the first 2.5 s
    io.write_wfdb(tmp_path / "rec", sig, 500)
    back, fs, names = io.read_wfdb(tmp_path / "rec")
    assert fs == 500 and names[3] == "aVR" and back.shape == sig.shape
    np.testing.assert_array_equal(np.isnan(back), np.isnan(sig))
    assert np.nanmax(np.abs(back - sig)) <= 0.5e-3 + 1e-12   # 1 uV steps


def test_wfdb_refuses_values_that_cannot_be_mv(tmp_path):
    with pytest.raises(SignalError, match="mV"):
        io.write_wfdb(tmp_path / "rec", np.full((10, 12), 100.0), 500)


def test_wfdb_refuses_wrong_shape(tmp_path):
    with pytest.raises(SignalError, match=r"\(n_samples, 12\)"):
        io.write_wfdb(tmp_path / "rec", np.zeros((10, 3)), 500)


def test_read_image_errors(tmp_path):
    with pytest.raises(MissingInputError):
        io.read_image(tmp_path / "nope.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ImageError, match="not a readable image"):
        io.read_image(bad)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ImageError):
        io.read_image(empty)


def test_save_and_load_page(tmp_path, rng):
    image = rng.integers(0, 255, size=(40, 60, 3), dtype=np.uint8)
    sig = rng.normal(size=(100, 12))
    truth = {"panels": [], "px_per_mm": np.float64(7.87)}
    written = io.save_page(tmp_path, "p1", image, sig, 500, truth)
    assert all(p.exists() for p in written.values())
    img2, sig2, truth2 = io.load_page(tmp_path, "p1")
    np.testing.assert_array_equal(img2, image)
    assert truth2["px_per_mm"] == pytest.approx(7.87)
    assert not list(tmp_path.glob(".staging-*"))


def test_failed_save_leaves_nothing(tmp_path, rng):
    image = rng.integers(0, 255, size=(40, 60, 3), dtype=np.uint8)
    with pytest.raises(SignalError):
        io.save_page(tmp_path, "p1", image, np.full((10, 12), np.inf), 500, {})
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_load_page_missing_names_the_notebook(tmp_path):
    with pytest.raises(MissingInputError, match="01_synthesis"):
        io.load_page(tmp_path, "absent")


def test_write_json_is_atomic_on_error(tmp_path):
    target = tmp_path / "x.json"
    io.write_json(target, {"a": 1})
    with pytest.raises(TypeError):
        io.write_json(target, {"a": object()})
    assert io.read_json(target) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
