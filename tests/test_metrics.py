"""Golden tests for ecgnb.metrics; every expected number is worked out by hand in a comment."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ecgnb.errors import SignalError
from ecgnb.metrics import (
    RECORD_COLUMNS, align_lead, find_alignment, lead_metrics, record_metrics, shift_samples,
    snr_db, summarize,
)

NAN = float("nan")


# --- snr_db -----------------------------------------------------------------------------------

def test_snr_golden_one_wrong_sample():
    # signal = 1+1+1+1 = 4; noise = (0-(-1))^2 = 1; SNR = 10 log10(4) = 6.0206 dB
    assert snr_db([1, -1, 1, -1], [1, -1, 1, 0]) == pytest.approx(6.020599913, abs=1e-9)


def test_snr_reference_nan_is_not_scored():
    # valid samples 0, 1, 3: signal = 1+1+4 = 6; noise = 0+0+(1-2)^2 = 1; 10 log10(6) = 7.7815 dB.
    # The 5 mV drawn at sample 2 (reference NaN) is ignored.
    assert snr_db([1, -1, NAN, 2], [1, -1, 5, 1]) == pytest.approx(7.781512504, abs=1e-9)


def test_snr_official_mode_counts_output_where_reference_nan():
    # Official compute_snr: reference NaN -> 0, so signal = 6 and noise = 0+0+5^2+1 = 26:
    # 10 log10(6/26) = -6.3682 dB.
    got = snr_db([1, -1, NAN, 2], [1, -1, 5, 1], exclude_unplotted=False)
    assert got == pytest.approx(-6.368220976, abs=1e-9)


def test_snr_missing_output_is_zero_penalty():
    # estimate NaN -> 0 mV: signal = 4*4 = 16; noise = (0-2)^2 = 4; 10 log10(4) = 6.0206 dB
    assert snr_db([2, 2, 2, 2], [2, NAN, 2, 2]) == pytest.approx(6.020599913, abs=1e-9)


def test_snr_all_output_missing_is_zero_db():
    # all estimate NaN -> 0: noise equals signal, 10 log10(1) = 0 dB
    assert snr_db([1, -2, 3], [NAN, NAN, NAN]) == pytest.approx(0.0, abs=1e-12)


def test_snr_perfect_is_inf_and_zero_signal_is_minus_inf():
    assert snr_db([0.5, -0.25, 1.0], [0.5, -0.25, 1.0]) == math.inf   # noise 0: Challenge's inf
    assert snr_db([0.0, 0.0], [1.0, 0.0]) == -math.inf                # signal 0, noise 1
    assert snr_db([0.0, 0.0], [0.0, 0.0]) == math.inf                 # both 0: official -> inf


def test_snr_no_valid_reference_is_nan():
    assert math.isnan(snr_db([NAN, NAN], [1.0, 2.0]))


def test_snr_does_not_modify_inputs():
    # The official compute_snr overwrites NaN in its arguments; ours must not.
    ref, est = np.array([1.0, NAN, 2.0]), np.array([NAN, 1.0, 2.0])
    snr_db(ref, est, exclude_unplotted=False)
    assert np.isnan(ref[1]) and np.isnan(est[0])


# --- alignment --------------------------------------------------------------------------------

def test_shift_samples_delays_and_fills_nan():
    np.testing.assert_array_equal(shift_samples([1.0, 2, 3, 4], 1), [NAN, 1, 2, 3])
    np.testing.assert_array_equal(shift_samples([1.0, 2, 3, 4], -2), [3, 4, NAN, NAN])
    assert np.isnan(shift_samples([1.0, 2], 5)).all()


def test_alignment_golden_shift_and_offset():
    # fs = 4 Hz, so ±0.5 s = ±2 samples. The estimate is the reference delayed by one sample
    # and raised by 0.5 mV.
    ref = np.array([0, 0, 1, 3, 1, 0, 0, 0.0])
    est = np.array([0, 0, 0, 1, 3, 1, 0, 0.0]) + 0.5
    assert find_alignment(ref, est, fs=4) == (-1, -0.5)
    # Advanced one sample and lowered 0.5 mV; the last sample has no source -> NaN.
    np.testing.assert_array_equal(align_lead(ref, est, fs=4), [0, 0, 1, 3, 1, 0, 0, NAN])
    m = lead_metrics(ref, est, fs=4)
    # Unaligned: signal = 1+9+1 = 11; ref-est = [-.5,-.5,.5,1.5,-2.5,-1.5,-.5,-.5],
    # noise = 6*0.25 + 2.25 + 6.25 + 2.25 = 12.0 -> 10 log10(11/12) = -0.3779 dB.
    assert m["snr_db_unaligned"] == pytest.approx(-0.377885609, abs=1e-9)
    # Aligned: the NaN sample scores 0 mV where the reference is 0 -> noise 0 -> inf.
    assert m["snr_db"] == math.inf
    assert (m["shift_s"], m["offset_mv"]) == (-0.25, -0.5)


def test_alignment_lag_ignores_baseline_level():
    # Same shapes as above on a 2 mV baseline. Raw (not mean-removed) correlation would favour
    # lag 0, where 8 samples of the 2 mV baseline overlap instead of 7; centring finds -1.
    ref = np.array([0, 0, 1, 3, 1, 0, 0, 0.0]) + 2.0
    est = np.array([0, 0, 0, 1, 3, 1, 0, 0.0]) + 2.5
    assert find_alignment(ref, est, fs=4) == (-1, -0.5)


def _ecg_like(fs: float, seconds: float) -> np.ndarray:
    """A beat-like lead (mV): 1.2 mV QRS spikes at 1.2 Hz plus a slow 0.2 mV wave."""
    t = np.arange(int(fs * seconds)) / fs
    qrs = 1.2 * np.exp(-(((t % 0.83) - 0.4) ** 2) / (2 * 0.012**2))
    return qrs + 0.2 * np.sin(2 * np.pi * 0.9 * t)


def test_alignment_recovers_integer_shift_and_offset_at_500_hz():
    fs = 500.0
    ref = _ecg_like(fs, 2.5)
    est = shift_samples(ref, 37) + 0.3            # 74 ms late, 0.3 mV high
    lag, offset = find_alignment(ref, est, fs)
    assert lag == -37
    assert offset == pytest.approx(-0.3, abs=1e-12)
    m = lead_metrics(ref, est, fs)
    # After alignment the only error is the last 37 samples, which have no source and score
    # as 0 mV: noise = sum(ref[-37:]**2) exactly.
    expected = 10 * np.log10(np.sum(ref**2) / np.sum(ref[-37:] ** 2))
    assert m["snr_db"] == pytest.approx(expected, abs=1e-6)
    assert m["snr_db"] > 15.0
    assert m["snr_db_unaligned"] < 0.0
    assert m["snr_db"] - m["snr_db_unaligned"] > 15.0


def test_alignment_does_not_search_beyond_max_shift():
    fs = 500.0
    ref = _ecg_like(fs, 4.0)
    est = shift_samples(ref, 300)                 # 0.6 s late: outside ±0.5 s
    lag, _ = find_alignment(ref, est, fs)
    assert abs(lag) <= 250
    assert find_alignment(ref, est, fs, max_shift_s=0.7)[0] == -300


def test_offset_beyond_one_mv_is_not_fully_removed():
    # estimate = reference + 1.5 mV; the offset is clipped at -1 mV, leaving +0.5 mV:
    # noise = 4 * 0.25 = 1, signal = 4 -> 6.0206 dB; unaligned noise = 4 * 2.25 = 9 ->
    # 10 log10(4/9) = -3.5218 dB.
    ref = np.array([1, -1, 1, -1.0])
    m = lead_metrics(ref, ref + 1.5, fs=4)
    assert m["offset_mv"] == -1.0
    assert m["snr_db"] == pytest.approx(6.020599913, abs=1e-9)
    assert m["snr_db_unaligned"] == pytest.approx(-3.521825181, abs=1e-9)


def test_flat_or_missing_estimate_is_not_moved():
    ref = np.array([0, 1, 0, -1.0])
    assert find_alignment(ref, [NAN] * 4, fs=4) == (0, 0.0)


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
    assert m["n_valid"] == 4


def test_lead_metrics_golden_aligned():
    # Lag 0 wins (centred correlation 3 vs at most 2 elsewhere); offset = mean(ref-est) = -0.25:
    # aligned = [.75,-1.25,.75,-.25], diff = [-.25,-.25,-.25,.75]: MSE = (3*.0625+.5625)/4
    # = 0.1875, MAE = (3*.25+.75)/4 = 0.375, SNR = 10 log10(4/0.75) = 7.2700 dB; r unchanged.
    m = lead_metrics([1, -1, 1, -1], [1, -1, 1, 0], fs=4)
    assert (m["shift_s"], m["offset_mv"]) == (0.0, -0.25)
    assert m["mse"] == pytest.approx(0.1875, abs=1e-12)
    assert m["mae"] == pytest.approx(0.375, abs=1e-12)
    assert m["snr_db"] == pytest.approx(7.269987279, abs=1e-9)
    assert m["pearson_r"] == pytest.approx(0.904534034, abs=1e-9)


def test_lead_metrics_scores_only_valid_samples():
    # Valid samples 0, 1, 3 (ref 1, -1, 2; est 1, -1, NaN->0): diff = [0, 0, -2]:
    # MSE = 4/3, MAE = 2/3; n_valid = 3.
    m = lead_metrics([1, -1, NAN, 2], [1, -1, 7, NAN], fs=4, align=False)
    assert m["n_valid"] == 3
    assert m["mse"] == pytest.approx(4 / 3, abs=1e-12)
    assert m["mae"] == pytest.approx(2 / 3, abs=1e-12)


# --- record_metrics and summarize -------------------------------------------------------------

def test_record_metrics_one_row_per_lead():
    ref = np.array([[1, 2], [-1, 2], [1, 2], [-1, 2.0]])
    est = np.array([[1, 2], [-1, NAN], [1, 2], [0, 2.0]])
    table = record_metrics(ref, est, fs=4, lead_names=("I", "II"), align=False)
    assert list(table.columns) == list(RECORD_COLUMNS)
    assert list(table["lead"]) == ["I", "II"]
    # lead I: 6.0206 dB (first test); lead II: signal 16, noise 4 -> 6.0206 dB
    np.testing.assert_allclose(table["snr_db"], [6.020599913, 6.020599913], atol=1e-9)
    assert list(table["n_valid"]) == [4, 4]


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


def test_summarize_accepts_long_table_and_keeps_inf():
    long = pd.DataFrame({"record": ["r1", "r1", "r2"], "lead": ["V1", "I", "I"],
                         "snr_db": [math.inf, 2.0, 4.0]})
    s = summarize(long)
    assert list(s.index) == ["all", "I", "V1"]    # LEAD_NAMES order
    assert s.loc["all", "snr_db"] == math.inf     # as np.nanmean does in the Challenge
    assert s.loc["I", "snr_db"] == pytest.approx(3.0)


def test_summarize_end_to_end_matches_record_metrics():
    ref = np.array([[1, 2], [-1, 2], [1, 2], [-1, 2.0]])
    per_record = {"x": record_metrics(ref, ref * 0.5, 4, ("I", "II"), align=False)}
    # est = ref/2: noise = signal/4 -> 10 log10(4) = 6.0206 dB in both leads
    assert summarize(per_record).loc["all", "snr_db"] == pytest.approx(6.020599913, abs=1e-9)


# --- input checks -----------------------------------------------------------------------------

@pytest.mark.parametrize("call, message", [
    (lambda: snr_db([1, 2, 3], [1, 2]), "samples"),
    (lambda: snr_db(np.zeros((3, 2)), np.zeros((3, 2))), "1-D"),
    (lambda: snr_db([1.0, math.inf], [1.0, 1.0]), "inf"),
    (lambda: record_metrics(np.zeros(4), np.zeros(4), 4), "2-D"),
    (lambda: record_metrics(np.zeros((4, 2)), np.zeros((4, 3)), 4), "shape"),
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
