"""Tests for ecgnb.metrics: the official Challenge-2024 SNR (evaluation-2024 commit 9af7dfb).

Every expected SNR is worked out by hand in a comment, or built so that the alignment is known
exactly. ``tests/test_metrics_golden.py`` checks the same code against the official program's
own output.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.ndimage import gaussian_filter
from scipy.signal import fftconvolve

from ecgnb import metrics
from ecgnb.errors import SignalError
from ecgnb.metrics import (
    RECORD_COLUMNS, align_lead, correlation_peak, find_alignment, lead_metrics, record_metrics,
    shift_samples, snr_db, summarize,
)

NAN = float("nan")
DB_4 = 10 * math.log10(4)          # 6.0206 dB


# --- snr_db -----------------------------------------------------------------------------------

def test_snr_golden_one_wrong_sample():
    # mean(ref^2) = 1; mean(err^2) = (0-(-1))^2 / 4 = 1/4; 10 log10(4) = 6.0206 dB; alpha = 1
    assert snr_db([1, -1, 1, -1], [1, -1, 1, 0]) == pytest.approx(6.020599913, abs=1e-9)


def test_snr_reference_nan_is_not_scored_and_costs_nothing():
    # Scored samples 0, 1, 3: mean(ref^2) = 6/3, mean(err^2) = (1-2)^2/3 -> 10 log10(6) =
    # 7.7815 dB; alpha = 3 used / 3 finite reference samples = 1. The 5 mV at sample 2
    # (reference NaN) is ignored.
    assert snr_db([1, -1, NAN, 2], [1, -1, 5, 1]) == pytest.approx(7.781512504, abs=1e-9)


def test_snr_missing_output_is_dropped_with_alpha_penalty():
    # Sample 1 missing: over 0, 2, 3 mean(ref^2) = 4, mean(err^2) = (2-1)^2/3 -> 10 log10(12)
    # = 10.7918 dB, times alpha 3/4 = 8.0939 dB. (Scored as 0 mV, the old way, it would be
    # 10 log10(16 / 5) = 5.05 dB.)
    assert snr_db([2, 2, 2, 2], [2, NAN, 2, 1]) == pytest.approx(8.093859345, abs=1e-9)


def test_snr_alpha_pulls_a_negative_snr_towards_zero():
    # One sample of four: 10 log10(1 / (3-1)^2) = -6.0206 dB, times alpha 1/4 = -1.5051 dB
    assert snr_db([1, 1, 1, 1], [3, NAN, NAN, NAN]) == pytest.approx(-DB_4 / 4, abs=1e-9)


def test_snr_all_output_missing_is_zero_db_and_no_reference_is_nan():
    assert snr_db([1, -2, 3], [NAN, NAN, NAN]) == 0.0
    assert math.isnan(snr_db([NAN, NAN], [1.0, 2.0]))


def test_snr_zero_noise_or_zero_reference_is_nan():
    assert math.isnan(snr_db([0.5, -0.25, 1.0], [0.5, -0.25, 1.0]))   # perfect: noise 0
    assert math.isnan(snr_db([0.0, 0.0], [1.0, 0.0]))                 # reference power 0
    assert math.isnan(snr_db([0.0, 0.0], [0.0, 0.0]))


def test_snr_shorter_estimate_is_padded_with_nan():
    # Estimate covers 2 of 4 reference samples: mean(ref^2) = 1, mean(err^2) = (0-(-1))^2/2
    # -> 10 log10(2) = 3.0103 dB, times alpha 2/4 = 1.5051 dB.
    assert snr_db([1, -1, 1, -1], [1, 0]) == pytest.approx(10 * math.log10(2) / 2, abs=1e-9)
    # A longer estimate's extra samples meet reference NaN and are not scored.
    assert snr_db([1, -1, 1, -1], [1, -1, 1, 0, 9, 9]) == pytest.approx(DB_4, abs=1e-9)


def test_snr_does_not_modify_inputs():
    ref, est = np.array([1.0, NAN, 2.0]), np.array([NAN, 1.0, 2.0])
    snr_db(ref, est)
    assert np.isnan(ref[1]) and np.isnan(est[0])


# --- alignment --------------------------------------------------------------------------------

def _trace(n: int, seed: int = 0, top: int = 215) -> np.ndarray:
    """A smooth random lead (mV), not periodic, on a 1/128 mV grid from 0 to top/128 mV.

    Every value, sum and level below is then exact in binary. With ``top = 215`` and an
    estimate 40/128 = 0.3125 mV higher, the common range is 255/128 mV: one image row is
    1/128 mV and the estimate's image is the reference's moved by exactly 40 rows.
    """
    walk = np.cumsum(np.random.default_rng(seed).standard_normal(n + 40))
    smooth = np.convolve(walk, np.ones(40) / 40, mode="valid")[:n]
    scaled = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return np.round(scaled * top) / 128


def test_shift_samples_delays_and_fills_nan():
    np.testing.assert_array_equal(shift_samples([1.0, 2, 3, 4], 1), [NAN, 1, 2, 3])
    np.testing.assert_array_equal(shift_samples([1.0, 2, 3, 4], -2), [3, 4, NAN, NAN])
    assert np.isnan(shift_samples([1.0, 2], 5)).all()


def test_alignment_recovers_late_and_high_estimate_and_drops_shifted_in_samples():
    ref = _trace(1250)
    est = shift_samples(ref, 37) + 0.3125       # 37 samples (74 ms) late, 0.3125 mV high
    lag, offset = correlation_peak(ref, est)
    assert lag == 37                            # official sign: positive = estimate late
    assert offset == 0.3125                     # 40 rows of 1/128 mV
    assert find_alignment(ref, est, fs=500) == (lag, offset)
    aligned = align_lead(ref, est, fs=500)
    np.testing.assert_array_equal(aligned[:-37], ref[:-37])
    assert np.isnan(aligned[-37:]).all()        # shifted in: missing, not 0 mV
    m = lead_metrics(ref, est, fs=500)
    # The aligned estimate equals the reference on the 1213 samples it covers: zero noise,
    # so the official SNR is NaN (not inf); the other metrics see a perfect match there.
    assert math.isnan(m["snr_db"])
    assert m["n_valid"] == 1250 - 37
    assert m["mse"] == 0.0 and m["pearson_r"] == pytest.approx(1.0)
    assert (m["shift_s"], m["offset_mv"]) == (37 / 500, offset)
    # Unaligned: the estimate's first 37 samples are NaN (dropped, alpha 1213/1250).
    r, e = ref[37:], ref[:-37] + 0.3125
    unaligned = 10 * np.log10(np.mean(r**2) / np.mean((r - e) ** 2)) * 1213 / 1250
    assert m["snr_db_unaligned"] == pytest.approx(unaligned, abs=1e-9)


def test_aligned_snr_with_noise_is_the_shifted_snr_times_alpha():
    ref = _trace(1250, seed=1)
    noise = 0.02 * np.random.default_rng(2).standard_normal(1250)
    est = shift_samples(ref, -20) + noise + 0.3125  # 20 samples early (it leads), 0.3125 mV high
    m = lead_metrics(ref, est, fs=500)
    assert m["shift_s"] == -20 / 500
    assert m["offset_mv"] == pytest.approx(0.3125, abs=0.02)  # whole rows of ~1/128 mV
    # 9af7dfb: the estimate moves 20 samples later, the first 20 are shifted-in NaN; the
    # estimate's last 20 samples fall beyond the reference and are not scored.
    r, e = ref[20:], est[:-20] - m["offset_mv"]
    expected = 10 * np.log10(np.mean(r**2) / np.mean((r - e) ** 2)) * (1250 - 20) / 1250
    assert m["snr_db"] == pytest.approx(expected, abs=1e-9)
    assert m["n_valid"] == 1230
    assert m["mse"] == pytest.approx(np.mean((r - e) ** 2), abs=1e-12)


def test_lag_beyond_half_a_second_is_found_but_not_used():
    ref = _trace(4000, seed=3)
    est = shift_samples(ref, 300)               # 0.6 s late: beyond round(0.5 * 500) = 250
    assert correlation_peak(ref, est) == (300, 0.0)
    assert find_alignment(ref, est, fs=500) == (0, 0.0)      # rejected, not clipped to 250
    assert find_alignment(ref, est, fs=500, max_shift_s=0.6) == (300, 0.0)
    m = lead_metrics(ref, est, fs=500)
    assert m["snr_db"] == m["snr_db_unaligned"] == snr_db(ref, est)
    assert (m["shift_s"], m["offset_mv"]) == (0.0, 0.0)


def test_offset_beyond_one_mv_is_not_removed_at_all():
    # Range 0..(216 + 192)/128 mV: a row is 3.1875/255 = 0.0125 mV, so the estimate's image
    # is the reference's moved by exactly 120 rows: offset 1.5 mV > 1 mV, scored as given
    # (the old clipping would have removed 1 mV of it).
    ref = _trace(1250, seed=4, top=216)
    est = ref + 1.5
    assert correlation_peak(ref, est) == (0, 1.5)
    m = lead_metrics(ref, est, fs=500)
    expected = 10 * np.log10(np.mean(ref**2) / 1.5**2)
    assert m["snr_db"] == m["snr_db_unaligned"] == pytest.approx(expected, abs=1e-9)
    assert m["offset_mv"] == 0.0
    # With a 2 mV limit it is removed entirely: zero noise -> NaN (not inf).
    assert math.isnan(lead_metrics(ref, est, fs=500, max_offset_mv=2.0)["snr_db"])


def test_nothing_to_align_is_not_moved():
    ref = np.array([0, 1, 0, -1.0])
    assert correlation_peak(ref, [NAN] * 4) == (0, 0.0)
    assert correlation_peak([NAN] * 4, ref) == (0, 0.0)
    assert correlation_peak([2.0, 2.0], [2.0, NAN]) == (0, 0.0)   # one constant: no image
    m = lead_metrics(ref, [NAN] * 4, fs=4)
    assert (m["snr_db"], m["snr_db_unaligned"], m["n_valid"]) == (0.0, 0.0, 0)


# --- the fast correlation equals the official full-image one ------------------------------------

def _full_image(x: np.ndarray, lo: float, hi: float, n: int) -> np.ndarray:
    image = np.zeros((256, n))
    cols = np.flatnonzero(np.isfinite(x))
    levels = np.clip(np.round(255 * (x[cols] - lo) / (hi - lo) + 1).astype(int), 1, 256)
    image[levels - 1, cols] = 1
    return gaussian_filter(image, 0.5)


def _naive_peak(x: np.ndarray, y: np.ndarray) -> tuple[int, float]:
    """The official step 1 written plainly: full images, full 2-D FFT correlation, first max."""
    lo, hi = min(np.nanmin(x), np.nanmin(y)), max(np.nanmax(x), np.nanmax(y))
    n = max(x.size, y.size)
    corr = fftconvolve(_full_image(x, lo, hi, n), _full_image(y, lo, hi, n)[::-1, ::-1])
    row, col = np.unravel_index(np.argmax(corr), corr.shape)
    return int(n - 1 - col), (255 - row) * (hi - lo) / 255


def _window(x: np.ndarray, start: int, stop: int) -> np.ndarray:
    out = np.full_like(x, np.nan)
    out[start:stop] = x[start:stop]
    return out


@pytest.mark.parametrize("ref_window, est_window, est_len, lag", [
    ((0, 150), (0, 150), 600, 0),          # window at the start: image edge at column 0
    ((200, 350), (200, 350), 600, 7),      # interior window
    ((450, 600), (450, 600), 600, -5),     # window at the end: image edge at column T-1
    ((0, 600), (0, 600), 600, 12),         # full strip
    ((200, 350), (0, 600), 600, 3),        # estimate drawn beyond the reference window
    ((0, 600), (0, 480), 480, -9),         # shorter estimate
])
def test_cropped_correlation_peak_equals_the_full_image_one(ref_window, est_window, est_len, lag):
    rng = np.random.default_rng(abs(lag) + ref_window[0])
    full = _trace(620, seed=lag + 10)
    ref = _window(full[10:610], *ref_window)
    est = shift_samples(full + 0.05 * rng.standard_normal(620), lag)[10:610] + 0.2
    est = _window(est, *est_window)[:est_len]
    assert correlation_peak(ref, est) == pytest.approx(_naive_peak(ref, est), abs=1e-12)


def test_cropped_blurred_image_equals_gaussian_filter_of_the_full_image():
    # Minimum and maximum at the first and last samples: the blur is mirrored at all 4 edges.
    x = _trace(300, seed=5)
    x[0], x[-1], x[150] = 0.0, 2.25, NAN
    image, row0, col0 = metrics._blurred_image(x, 0.0, 2.25)
    full = _full_image(x, 0.0, 2.25, 300)
    assert (row0, col0) == (0, 0) and image.shape == full.shape
    np.testing.assert_allclose(image, full, rtol=0, atol=1e-15)
    # A window inside: the crop holds every non-zero pixel of the full image.
    win = _window(x, 100, 140)
    image, row0, col0 = metrics._blurred_image(win, 0.0, 2.25)
    full = _full_image(win, 0.0, 2.25, 300)
    assert col0 == 98 and image.shape[1] == 44
    np.testing.assert_allclose(image, full[row0:row0 + image.shape[0], 98:142], atol=1e-15)
    assert full.sum() == pytest.approx(image.sum(), abs=1e-12)


# --- lead_metrics -----------------------------------------------------------------------------

def test_lead_metrics_golden_unaligned():
    # diff = [0,0,0,1]: MSE = 1/4, MAE = 1/4. Pearson: ref mean 0, est mean 0.25,
    # est - mean = [.75,-1.25,.75,-.25]; cov sum = .75+1.25+.75+.25 = 3; |ref_c|^2 = 4,
    # |est_c|^2 = .5625+1.5625+.5625+.0625 = 2.75; r = 3/sqrt(11) = 0.904534.
    m = lead_metrics([1, -1, 1, -1], [1, -1, 1, 0], fs=4, align=False)
    assert m["mse"] == pytest.approx(0.25, abs=1e-12)
    assert m["mae"] == pytest.approx(0.25, abs=1e-12)
    assert m["pearson_r"] == pytest.approx(0.904534034, abs=1e-9)
    assert m["snr_db"] == m["snr_db_unaligned"] == pytest.approx(6.020599913, abs=1e-9)
    assert (m["n_valid"], m["shift_s"], m["offset_mv"]) == (4, 0.0, 0.0)


def test_lead_metrics_uses_only_samples_finite_in_both():
    # Scored samples 0, 1 (sample 2: reference NaN; sample 3: estimate NaN): ref [1, -1],
    # est [1, 0]: MSE = MAE = 1/2, r = 1 (two points); SNR = 10 log10(1 / 0.5) = 3.0103 dB
    # times alpha 2/3 = 2.0069 dB.
    m = lead_metrics([1, -1, NAN, 2], [1, 0, 7, NAN], fs=4, align=False)
    assert m["n_valid"] == 2
    assert m["mse"] == pytest.approx(0.5, abs=1e-12)
    assert m["mae"] == pytest.approx(0.5, abs=1e-12)
    assert m["pearson_r"] == pytest.approx(1.0, abs=1e-12)
    assert m["snr_db"] == pytest.approx(10 * math.log10(2) * 2 / 3, abs=1e-9)


# --- record_metrics and summarize -------------------------------------------------------------

def test_record_metrics_one_row_per_lead():
    ref = np.array([[1, 2], [-1, 2], [1, 2], [-1, 2.0]])
    est = np.array([[1, 2], [-1, NAN], [1, 2], [0, 1.0]])
    table = record_metrics(ref, est, fs=4, lead_names=("I", "II"), align=False)
    assert list(table.columns) == list(RECORD_COLUMNS)
    assert list(table["lead"]) == ["I", "II"]
    # lead I: 6.0206 dB (first test); lead II: 8.0939 dB (missing-output test)
    np.testing.assert_allclose(table["snr_db"], [6.020599913, 8.093859345], atol=1e-9)
    assert list(table["n_valid"]) == [4, 3]


def test_record_metrics_pads_a_shorter_estimate():
    ref = np.array([[1, 2], [-1, 2], [1, 2], [-1, 2.0]])
    table = record_metrics(ref, ref[:2] * 0.5, fs=4, lead_names=("I", "II"), align=False)
    # est = ref/2 on 2 of 4 samples: 10 log10(4) = 6.0206 dB times alpha 1/2
    np.testing.assert_allclose(table["snr_db"], [DB_4 / 2, DB_4 / 2], atol=1e-9)


def test_summarize_is_nanmean_over_records_and_leads():
    a = pd.DataFrame({"lead": ["I", "II"], "snr_db": [10.0, 20.0]})
    b = pd.DataFrame({"lead": ["I", "II"], "snr_db": [NAN, 40.0]})
    s = summarize({"rec_a": a, "rec_b": b})
    # Challenge score: nanmean(10, 20, NaN, 40) = 70/3 = 23.333, not the mean of lead means (20).
    assert s.loc["all", "snr_db"] == pytest.approx(70 / 3, abs=1e-12)
    assert s.loc["I", "snr_db"] == pytest.approx(10.0)
    assert s.loc["II", "snr_db"] == pytest.approx(30.0)
    assert list(s.index) == ["all", "I", "II"]
    assert (s.loc["all", "n_scored"], s.loc["I", "n_scored"], s.loc["all", "n_records"]) == (3, 1, 2)


def test_summarize_accepts_long_table_in_lead_order():
    long = pd.DataFrame({"record": ["r1", "r1", "r2"], "lead": ["V1", "I", "I"],
                         "snr_db": [NAN, 2.0, 4.0]})
    s = summarize(long)
    assert list(s.index) == ["all", "I", "V1"]    # LEAD_NAMES order
    assert s.loc["all", "snr_db"] == pytest.approx(3.0)
    assert math.isnan(s.loc["V1", "snr_db"]) and s.loc["V1", "n_scored"] == 0


def test_summarize_end_to_end_matches_record_metrics():
    ref = np.array([[1, 2], [-1, 2], [1, 2], [-1, 2.0]])
    per_record = {"x": record_metrics(ref, ref * 0.5, 4, ("I", "II"), align=False)}
    # est = ref/2: noise = signal/4 -> 10 log10(4) = 6.0206 dB in both leads
    assert summarize(per_record).loc["all", "snr_db"] == pytest.approx(6.020599913, abs=1e-9)


# --- input checks -----------------------------------------------------------------------------

@pytest.mark.parametrize("call, message", [
    (lambda: snr_db(np.zeros((3, 2)), np.zeros((3, 2))), "1-D"),
    (lambda: snr_db([1.0, math.inf], [1.0, 1.0]), "inf"),
    (lambda: record_metrics(np.zeros(4), np.zeros(4), 4), "2-D"),
    (lambda: record_metrics(np.zeros((4, 2)), np.zeros((4, 3)), 4), "numbers of leads"),
    (lambda: record_metrics(np.zeros((4, 2)), np.zeros((4, 2)), 4), "lead names"),
    (lambda: lead_metrics([1.0, 2.0], [1.0, 2.0], fs=0), "fs"),
    (lambda: align_lead([1.0, 2.0], [1.0, 2.0], fs=-5), "fs"),
    (lambda: align_lead([1.0, 2.0], [1.0, 2.0], fs=4, max_offset_mv=-1), "limits"),
])
def test_bad_inputs_raise_clear_value_errors(call, message):
    with pytest.raises(SignalError, match=message) as info:
        call()
    assert isinstance(info.value, ValueError)


def test_summarize_rejects_table_without_record_column():
    with pytest.raises(ValueError, match="record"):
        summarize(pd.DataFrame({"lead": ["I"], "snr_db": [1.0]}))
