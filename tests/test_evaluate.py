from __future__ import annotations

import numpy as np
import pytest

from conftest import require_shared
from ecgnb import evaluate, paths
from ecgnb.errors import ImageError


def test_failed_digitizer_scores_as_missing_output(rng):
    reference = rng.normal(size=(1000, 12))
    def broken(image):
        raise ImageError("not an ECG page")
    table = evaluate.score_page(broken, np.zeros((4, 4, 3), np.uint8), reference, 500)
    assert len(table) == 12
    np.testing.assert_allclose(table["snr_db_unaligned"], 0.0, atol=1e-9)   # est 0 -> SNR 0 dB
    assert (table["error"] == "ImageError: not an ECG page").all()


def test_better_estimate_scores_higher(rng):
    reference = rng.normal(size=(1000, 12))
    noisy = evaluate.score_page(lambda im: reference + rng.normal(scale=0.3, size=reference.shape),
                                None, reference, 500)
    close = evaluate.score_page(lambda im: reference + rng.normal(scale=0.03, size=reference.shape),
                                None, reference, 500)
    assert close["snr_db"].mean() == pytest.approx(noisy["snr_db"].mean() + 20, abs=1.0)


def test_eik_reference_masks_undrawn_samples():
    signal = np.ones((5000, 12))
    annotation = {"leads": [{"lead_name": "AVR", "start_sample": "1250", "end_sample": "2500"}]}
    ref = evaluate.eik_reference(annotation, signal)
    assert np.isfinite(ref[1250:2500, 3]).all() and np.isnan(ref[:1250, 3]).all()
    assert np.isnan(ref[:, 0]).all()


def test_eik_pages_match_their_records():
    require_shared(paths.EIK_DEV)
    pages = evaluate.eik_pages()
    assert len(pages) == 8
    name, image_path, reference = pages[0]
    drawn = np.isfinite(reference).mean(axis=0)
    assert drawn[1] == pytest.approx(1.0) and drawn[0] == pytest.approx(0.25)


def test_column_oracle_reads_a_slow_signal_almost_exactly():
    from ecgnb.config import PaperConfig
    from ecgnb.render import masked_signal, render_page
    t = np.arange(5000) / 500
    signal = np.stack([0.5 * np.sin(2 * np.pi * (1 + k / 10) * t) for k in range(12)], axis=1)
    image, truth = render_page(signal, 500, PaperConfig(), np.random.default_rng(0))
    reference = masked_signal(signal, truth)
    table = evaluate.score_page(lambda im: evaluate.column_oracle(truth, 500), image, reference, 500)
    assert table["snr_db_unaligned"].min() > 40      # slow waves lose nothing to column sampling


def test_column_oracle_refuses_augmented_pages():
    with pytest.raises(ValueError, match="clean page"):
        evaluate.column_oracle({"artefacts": {"kinds": ["blur"]}}, 500)
