from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import require_shared
import pandas as pd

from ecgnb import evaluate, paths
from ecgnb.leads import LEAD_NAMES
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


def _long_table():
    """Two methods x two pages x 12 leads with known SNRs (method b is 3 dB better)."""
    rows = []
    for m, bonus in (("a", 0.0), ("b", 3.0)):
        for p, base in (("p1", 5.0), ("p2", 10.0)):
            for k, lead in enumerate(LEAD_NAMES):
                rows.append({"method": m, "page": p, "lead": lead, "severity": 0.0,
                             "snr_db": base + bonus + k, "snr_db_unaligned": base + bonus + k - 2,
                             "mse": 0.01, "mae": 0.05, "pearson_r": 0.9})
    return pd.DataFrame(rows)


def test_paper_protocol_is_lead_ii_without_alignment():
    table = _long_table()
    out = evaluate.paper_protocol(table)
    k = LEAD_NAMES.index("II")
    # lead II only: mean over the two pages of (base + bonus + k - 2)
    assert out.loc["a", "snr_db_unaligned"] == pytest.approx(7.5 + k - 2)
    assert out.loc["b", "snr_db_unaligned"] == pytest.approx(10.5 + k - 2)
    assert out.loc["a", "leads"] == 2 and (out["paper_snr_db"] == evaluate.PAPER_SNR_DB).all()


def test_summaries_rank_pages_and_leads():
    table = _long_table()
    summary = evaluate.method_summary(table)
    assert summary.loc["b", "snr_db"] - summary.loc["a", "snr_db"] == pytest.approx(3.0)
    assert summary.loc["a", "leads_below_0db_pct"] == 0
    lead = evaluate.per_lead(table)
    assert list(lead.columns) == [*LEAD_NAMES, "all"]
    assert lead.loc["a", "I"] == pytest.approx(7.5)
    picked = evaluate.pick_pages(table, "a")
    assert picked["good"] == "p2" and picked["worst"] == "p1"
    worst = evaluate.worst_leads(table, "a", 3)
    assert list(worst["snr_db"]) == [5.0, 6.0, 7.0]


def test_dpi_pages_draw_the_named_records_at_each_dpi():
    from ecgnb import config

    profile = config.with_overrides(config.get_profile("quick"), n_synthetic=2, use_real=False)
    pages = list(evaluate.dpi_pages(profile, ["syn00001"], [100, 200]))
    assert [(r, d) for r, d, _, _ in pages] == [("syn00001", 100), ("syn00001", 200)]
    w100, w200 = pages[0][2].shape[1], pages[1][2].shape[1]
    assert abs(w200 / w100 - 2) < 0.01
    # the reference is the drawn part: NaN outside each lead's panel, same at every dpi
    assert np.array_equal(np.isnan(pages[0][3]), np.isnan(pages[1][3]))
    with pytest.raises(evaluate.MissingInputError):
        list(evaluate.dpi_pages(profile, ["no-such-record"], [200]))


def test_failure_gallery_and_histogram_draw():
    import matplotlib.pyplot as plt

    from ecgnb import plots

    t = np.arange(100) / 500
    item = {"image": np.zeros((20, 50, 3), np.uint8), "t": t, "reference": np.sin(t),
            "estimate": np.cos(t), "title": "x"}
    for fig in (plots.plot_failure_gallery([item] * 3), plots.plot_failure_gallery([]),
                plots.plot_snr_hist(_long_table()),
                plots.plot_robustness(evaluate.method_summary(_long_table(), ["method", "severity"]),
                                      "severity")):
        assert fig.axes
        plt.close(fig)


def test_page_signals_and_index_rows_read_a_built_dataset(tmp_path):
    from ecgnb import config
    from ecgnb.dataset import build_dataset, load_index

    profile = config.with_overrides(config.get_profile("quick"), n_synthetic=2, use_real=False)
    profile = dataclasses.replace(profile, data=dataclasses.replace(
        profile.data, severities=(0.0,), show_progress=False))
    build_dataset(profile, tmp_path / "tiny", log=lambda *_: None)
    page = load_index("tiny", tmp_path / "tiny")["page"].iloc[0]
    rows = evaluate.load_index_rows(pd.DataFrame({"page": [page, page]}), tmp_path / "tiny")
    assert list(rows.index) == [page]
    flat = lambda image: np.zeros((5000, 12))   # noqa: E731  (a digitizer that reads nothing)
    reference, estimate = evaluate.page_signals(page, flat, tmp_path / "tiny")
    assert reference.shape == estimate.shape == (5000, 12) and np.isfinite(reference).any()
    with pytest.raises(evaluate.MissingInputError):
        evaluate.page_signals(page, flat, tmp_path / "absent")


def test_photo_pages_pair_each_photo_with_its_signal():
    from conftest import require_shared

    from ecgnb import paths
    require_shared(paths.PHOTOS_DEV)
    pages = evaluate.photo_pages()
    assert len(pages) == 13
    name, image_path, reference = pages[0]
    assert image_path.exists() and reference.shape == (5000, 12)
    drawn = np.isfinite(reference)
    assert drawn[:, 1].all() and 0.2 < drawn[:, 0].mean() < 0.3   # II all 10 s; I one 2.5 s window


def test_per_page_marks_refused_pages():
    table = pd.DataFrame({"page": ["a", "a", "b", "b"], "method": ["m"] * 4,
                          "snr_db": [10.0, 12.0, 0.0, 0.0], "error": ["", "", "ImageError: x", "ImageError: x"]})
    out = evaluate.per_page(table)
    assert out.loc["a", "m"] == 11.0 and not out.loc["a", "m_refused"] and out.loc["b", "m_refused"]


def _bench(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, paths.ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_trace_model_bench_reads_each_page_once_and_times_the_front_in(monkeypatch):
    """``bench_trace_model``: the front analyses a page once for every model, its refusal is
    every model's, and a model's seconds per page include the front's."""
    from ecgnb.config import CropConfig
    from ecgnb.reading import ReadOptions

    bench = _bench("bench_trace_model")
    calls = []

    def analyse(image, layout, duration_s, crop):
        calls.append(image.shape)
        if image.shape[0] == 2:
            raise ImageError("not an ECG page")
        return "analysis"

    monkeypatch.setattr(bench.panels, "analyse_for", analyse)
    front = bench.SharedFront(CropConfig(front="trace_net"), ReadOptions())
    page, blank = np.zeros((4, 4, 3), np.uint8), np.zeros((2, 4, 3), np.uint8)
    assert front(page) == "analysis" and front(page.copy()) == "analysis" and len(calls) == 1
    for _ in range(2):
        with pytest.raises(ImageError):
            front(blank)
    assert len(calls) == 2

    rows = [dict(set="s", method=m, page=p, lead=lead, snr_db=1.0, snr_db_unaligned=0.5, mae=0.1,
                 mse=0.01, pearson_r=0.9, error="", seconds=sec)
            for m, sec in (("trace_net", 4.0), ("trace_multimodal", 0.5)) for p in ("a", "b")
            for lead in LEAD_NAMES]
    out = bench.summarize(pd.DataFrame(rows))
    assert out.loc[("s", "trace_net"), "seconds_per_page"] == 4.0
    assert out.loc[("s", "trace_multimodal"), "seconds_per_page"] == 4.5
