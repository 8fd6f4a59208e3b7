"""The one digitizer interface: every registered method reads the same page the same way."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import ecg_like

from ecgnb import digitizers, render
from ecgnb.config import PaperConfig
from ecgnb.model import DEFAULT_CHECKPOINT, TRACE_MODEL_CHECKPOINT
from ecgnb.trace_net import DEFAULT_CHECKPOINT as TRACE_CHECKPOINT
from ecgnb.reading import Reading, ReadOptions


@pytest.fixture(scope="module")
def page():
    signal = ecg_like()
    image, truth = render.render_page(signal, 500, PaperConfig(), np.random.default_rng(5))
    return image, render.masked_signal(signal, truth)


def test_names_and_aliases():
    assert digitizers.names() == ["classical", "crop_model", "rectified", "trace_net", "trace_model"]
    assert digitizers.canonical("baseline") == "classical"
    assert digitizers.canonical("model") == "crop_model"
    with pytest.raises(ValueError, match="unknown method 'nope'.*classical"):
        digitizers.get("nope")


@pytest.mark.parametrize("name", digitizers.names())
def test_every_method_reads_a_page_through_the_interface(name, page):
    if name == "crop_model" and not DEFAULT_CHECKPOINT.exists():
        pytest.skip(f"{DEFAULT_CHECKPOINT} not committed")
    if name == "trace_net" and not TRACE_CHECKPOINT.exists():
        pytest.skip(f"{TRACE_CHECKPOINT} not committed")
    if name == "trace_model" and not TRACE_MODEL_CHECKPOINT.exists():
        pytest.skip(f"{TRACE_MODEL_CHECKPOINT} not committed")
    reader = digitizers.get(name)              # the crop model loads models/default.pt here, once
    assert reader.name == name
    for fs in (500, 250):
        reading = reader.read(page[0], ReadOptions(fs=fs))
        assert isinstance(reading, Reading) and reading.method == name
        assert reading.signal.shape == (10 * fs, 12) and reading.fs == fs
        drawn = np.isfinite(reading.signal).mean()
        assert drawn > 0.3, f"{name} read only {drawn:.0%} of the samples"
    d = json.loads(json.dumps(reading.diagnostics(), default=float))
    assert d["method"] == name and d["layout"]["name"] == "3x4+1"
    assert 0.5 < d["confidence"] <= 1 and d["warnings"] == [], d["warnings"]


def test_a_blank_grid_page_reading_carries_warnings(page):
    from ecgnb import digitize

    reading = digitize.digitize_image(page[0])
    reading.signal[:, 3] = np.nan   # as if aVR had not been read
    assert any("aVR" in w for w in reading.warnings)
