"""Synthetic generator: lead relations, determinism, shape, plausible physiology."""
import json

import numpy as np
import pytest

from ecgnb import synth
from ecgnb.config import SignalConfig
from ecgnb.leads import LEAD_INDEX, LEAD_NAMES, relation_errors


@pytest.fixture(scope="module")
def records():
    return synth.synth_records(40, seed=123)


def _qrs_peak(signal, params, lead, fs=500):
    """Mean QRS (R-peak +-60 ms) of the sinus beats in one lead, baseline at -60 ms (mV)."""
    half = int(0.06 * fs)
    idx = [int(round(t * fs)) for t in params["r_peaks_s"] if t not in params["ectopic_s"]]
    idx = [i for i in idx if half <= i < signal.shape[0] - half]
    col = signal[:, LEAD_INDEX[lead]]
    return np.mean([col[i - half:i + half] - col[i - half] for i in idx], axis=0)


def test_limb_lead_relations_hold_on_many_seeds(records):
    for name, signal, _ in records:
        worst = max(relation_errors(signal).values())
        assert worst < 0.01, f"{name}: limb-lead relation off by {worst:.3%} of RMS"


def test_shape_rate_and_duration():
    cfg = SignalConfig(fs=250, duration_s=4.0)
    signal, params = synth.synth_record(np.random.default_rng(0), cfg)
    assert signal.shape == (1000, len(LEAD_NAMES))
    assert signal.dtype == float and np.isfinite(signal).all()
    assert params["fs"] == 250 and params["duration_s"] == 4.0


def test_low_rate_has_no_aliased_mains():
    signal, params = synth.synth_record(np.random.default_rng(3), SignalConfig(fs=100))
    assert signal.shape == (1000, 12) and params["powerline_mv"] == 0.0


def test_same_seed_same_record_and_different_seed_different():
    a, pa = synth.synth_record(np.random.default_rng(7))
    b, pb = synth.synth_record(np.random.default_rng(7))
    c, _ = synth.synth_record(np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert pa == pb
    assert not np.allclose(a, c)


def test_record_k_does_not_depend_on_n(records):
    few = synth.synth_records(3, seed=123)
    for (n1, s1, p1), (n2, s2, p2) in zip(few, records[:3]):
        assert n1 == n2
        np.testing.assert_array_equal(s1, s2)
        assert p1 == p2
    assert [r[0] for r in few] == ["syn00000", "syn00001", "syn00002"]
    other_seed = synth.synth_records(1, seed=124)[0][1]
    assert not np.allclose(other_seed, few[0][1])


def test_params_are_json_and_within_ranges(records):
    ranges = synth.SynthRanges()
    for name, _, params in records:
        json.dumps(params)   # must not raise
        assert ranges.hr_bpm[0] <= params["heart_rate_bpm"] <= ranges.hr_bpm[1], name
        assert ranges.axis_deg[0] <= params["axis_deg"] <= ranges.axis_deg[1], name
        assert params["index"] == int(name[3:]) and params["seed"] == 123


def test_measured_heart_rate_matches_drawn(records):
    for name, signal, params in records:
        hr = synth.signal_stats(signal, 500)["heart_rate_bpm"]
        assert 40 <= hr <= 140, f"{name}: {hr:.0f} bpm"
        assert abs(hr - params["heart_rate_bpm"]) < 0.1 * params["heart_rate_bpm"], name


def test_amplitudes_are_realistic(records):
    limb = np.array([np.abs(s[:, :6] - np.median(s[:, :6], axis=0)).max() for _, s, _ in records])
    assert np.median(limb) < 2.0 and limb.max() < 4.5       # mV, limb leads mostly within +-2
    r_v45 = np.array([max(_qrs_peak(s, p, "V4").max(), _qrs_peak(s, p, "V5").max())
                      for _, s, p in records])
    assert 0.8 < np.median(r_v45) < 2.0                       # mV, R in V4/V5 about 1-2 mV


def test_v1_negative_and_r_wave_progression(records):
    v1_negative, r_by_lead = [], []
    for _, s, p in records:
        v1 = _qrs_peak(s, p, "V1")
        v1_negative.append(-v1.min() > v1.max())
        r_by_lead.append([_qrs_peak(s, p, f"V{k}").max() for k in range(1, 7)])
    assert np.mean(v1_negative) >= 0.9
    r = np.median(r_by_lead, axis=0)    # R amplitude (mV) V1..V6 over the records
    assert r[0] < r[1] < r[2] < max(r[3], r[4]), f"no R-wave progression: {np.round(r, 2)}"


def test_ectopic_beats_occur_sometimes():
    params = [p for _, _, p in synth.synth_records(60, seed=5)]
    share = np.mean([bool(p["ectopic_s"]) for p in params])
    assert 0.02 < share < 0.4


def test_stats_table_one_row_per_record(records):
    table = synth.stats_table(records[:4], fs=500, label="synthetic")
    assert list(table.index) == ["syn00000", "syn00001", "syn00002", "syn00003"]
    assert (table["group"] == "synthetic").all()
    for column in ("heart_rate_bpm", "n_beats", "rms_V1", "p2p_aVF", "frac_below_1Hz",
                   "frac_above_40Hz"):
        assert table[column].notna().all(), column
    assert ((table["frac_below_1Hz"] >= 0) & (table["frac_above_40Hz"] <= 1)).all()
    tuples = synth.stats_table([(n, s, 500) for n, s, _ in records[:2]])
    assert np.allclose(tuples["heart_rate_bpm"], table["heart_rate_bpm"].iloc[:2])
    with pytest.raises(ValueError, match="pass fs"):
        synth.stats_table(records[:1])
