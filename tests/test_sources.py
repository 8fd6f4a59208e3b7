"""Reading real WFDB records: lead mapping, resampling, refusals, holdout exclusion."""
import numpy as np
import pandas as pd
import pytest
import wfdb

from ecgnb import paths, sources
from ecgnb.errors import MissingInputError, SignalError
from ecgnb.leads import LEAD_NAMES, relation_errors

UPPER_NAMES = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def _real_folder():
    if not paths.REAL_ECG.is_dir():
        pytest.skip(f"../shared/data/real-ecg not found: expected at {paths.REAL_ECG}")
    return paths.REAL_ECG


def _write(folder, name, signal, fs=500, names=UPPER_NAMES, units="mV", gain=1000.0):
    """Write a tiny WFDB record (format 16, ``gain`` ADC units per unit) and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(name, fs=fs, units=[units] * len(names), sig_name=list(names),
                p_signal=signal, fmt=["16"] * len(names), adc_gain=[gain] * len(names),
                baseline=[0] * len(names), write_dir=str(folder))
    return folder / name


def _ramp(n=5000, n_leads=12):
    """(n, n_leads) mV: each column a sine of its own frequency, so the order is checkable."""
    t = np.arange(n) / 500
    return np.stack([0.5 * np.sin(2 * np.pi * (k + 1) * 0.5 * t) for k in range(n_leads)], axis=1)


def test_reads_shared_record():
    rec = sources.read_record(_real_folder() / "georgia" / "E07505")
    assert rec.name == "E07505" and rec.source == "georgia" and rec.fs == 500
    assert rec.signal.shape == (5000, 12) and np.isfinite(rec.signal).all()
    assert max(relation_errors(rec.signal).values()) < 0.05   # stored leads, rounded to 1 uV
    assert np.abs(rec.signal).max() < 5                         # mV


def test_upper_case_lead_names_are_mapped(tmp_path):
    sig = _ramp()
    shuffled = [11, 0, 5, 1, 2, 3, 4, 6, 7, 8, 9, 10]             # columns written out of order
    path = _write(tmp_path, "upper", sig[:, shuffled], names=[UPPER_NAMES[i] for i in shuffled])
    rec = sources.read_record(path)
    np.testing.assert_allclose(rec.signal, sig, atol=1e-3)      # 1 uV ADC step
    assert rec.source == tmp_path.name and rec.split_hint is None


def test_microvolts_are_converted(tmp_path):
    path = _write(tmp_path, "micro", 1000 * _ramp(), units="uV", gain=1.0)
    np.testing.assert_allclose(sources.read_record(path).signal, _ramp(), atol=2e-3)


def test_resamples_100_to_500_hz():
    rec = sources.read_record(_real_folder() / "ptb-xl" / "00001_lr", fs=500)
    raw = wfdb.rdrecord(str(_real_folder() / "ptb-xl" / "00001_lr")).p_signal
    assert rec.fs == 500 and rec.signal.shape == (5000, 12)
    np.testing.assert_allclose(rec.signal[::5], raw, atol=0.05)   # original samples kept
    assert max(relation_errors(rec.signal).values()) < 0.05


def test_resamples_synthetic_tone(tmp_path):
    t100 = np.arange(1000) / 100
    sig = np.tile(np.sin(2 * np.pi * 2.0 * t100)[:, None], (1, 12))
    rec = sources.read_record(_write(tmp_path, "lr", sig, fs=100), fs=500, duration_s=10.0)
    t500 = np.arange(5000) / 500
    # the last 4 samples lie after the last 100 Hz sample (9.99 s): extrapolated, not checked
    np.testing.assert_allclose(rec.signal[:-4, 0], np.sin(2 * np.pi * 2.0 * t500[:-4]), atol=0.02)


def test_cuts_to_duration(tmp_path):
    rec = sources.read_record(_write(tmp_path, "long", _ramp(6000)), duration_s=10.0)
    assert rec.signal.shape == (5000, 12)


def test_missing_leads_named(tmp_path):
    names = ["I", "II"] + [f"V{k}" for k in range(1, 7)]
    path = _write(tmp_path, "eight", _ramp(n_leads=8), names=names)
    with pytest.raises(SignalError, match=r"eight: missing lead\(s\) III, aVR, aVL, aVF"):
        sources.read_record(path)


def test_nan_refused(tmp_path):
    sig = _ramp()
    sig[100:110, 3] = np.nan
    with pytest.raises(SignalError, match=r"withnan: 10 NaN.*aVR.*drop this record"):
        sources.read_record(_write(tmp_path, "withnan", sig))


def test_too_short_refused(tmp_path):
    with pytest.raises(SignalError, match=r"short: 4.00 s long, shorter than the 10 s"):
        sources.read_record(_write(tmp_path, "short", _ramp(2000)))


def test_bad_units_refused(tmp_path):
    with pytest.raises(SignalError, match=r"unit 'mmhg'"):
        sources.read_record(_write(tmp_path, "bp", _ramp(), units="mmHg"))


def test_bad_rate_refused(tmp_path):
    path = _write(tmp_path, "ok", _ramp())
    for fs in (0, -500, 333.3):
        with pytest.raises(SignalError, match="not a positive whole number"):
            sources.read_record(path, fs=fs)


def test_missing_file_refused(tmp_path):
    with pytest.raises(MissingInputError, match=r"nothere: no WFDB header"):
        sources.read_record(tmp_path / "nothere")
    path = _write(tmp_path, "nodat", _ramp())
    (tmp_path / "nodat.dat").unlink()
    with pytest.raises(MissingInputError, match=r"nodat: signal file missing"):
        sources.read_record(path)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((5000, 11)), r"shape \(5000, 11\)"),
    (np.zeros(5000), r"shape \(5000,\)"),
    (np.full((5000, 12), np.inf), "NaN/inf"),
    (np.zeros((100, 12)), "shorter than the 10 s"),
])
def test_validate_signal_refuses(bad, message):
    with pytest.raises(SignalError, match=message):
        sources.validate_signal(bad, 500, duration_s=10.0, name="page 3")
    sources.validate_signal(np.zeros((5000, 12)), 500.0, duration_s=10.0)   # fine


def test_holdout_never_returned():
    folder = _real_folder()
    holdout = sources.holdout_names()
    assert {"00001_lr", "E07500", "HR06009", "JS00001", "JS20003"} <= holdout
    assert len(holdout) == 21
    kept, skipped = sources.scan_real_records(folder)
    names = {r.name for r in kept}
    assert names.isdisjoint(holdout)
    assert holdout <= set(skipped)
    assert ("E07509" in names) != ("E07510" in names)              # byte-identical pair: one kept
    assert all(r.signal.shape == (5000, 12) and r.fs == 500 for r in kept)
    assert len(names) == len(kept)
    assert {r.name for r in sources.free_real_records(folder)} == names


def test_free_records_need_the_folder_and_manifest(tmp_path):
    with pytest.raises(MissingInputError, match="expected in"):
        sources.free_real_records(tmp_path / "absent")
    _write(tmp_path / "mine", "r1", _ramp())
    with pytest.raises(MissingInputError, match="manifest"):
        sources.free_real_records(tmp_path / "mine")
    kept, skipped = sources.scan_real_records(tmp_path / "mine", no_holdout=True)
    assert [r.name for r in kept] == ["r1"] and skipped == {}


def test_skips_duplicates_flat_and_broken(tmp_path):
    folder = tmp_path / "set"
    _write(folder / "a", "r1", _ramp())
    _write(folder / "b", "r2", _ramp())                            # same samples as r1
    flat = _ramp()
    flat[:, 8] = 0.0
    _write(folder / "a", "r3", flat)
    _write(folder / "a", "r4", _ramp(1000))                        # 2 s only
    _write(folder / "a", "r5", _ramp())
    pd.DataFrame({"record": ["r5"], "path": ["a/r5"],
                  "used_in_hidden_holdout": [True]}).to_csv(folder / "manifest.csv", index=False)
    kept, skipped = sources.scan_real_records(folder)
    assert [r.name for r in kept] == ["r1"] and kept[0].source == "a"
    assert skipped["r2"].startswith("duplicate of r1")
    assert "flat lead(s) V3" in skipped["r3"]
    assert "shorter than" in skipped["r4"]
    assert "holdout" in skipped["r5"]


def test_ptbxl_layout(tmp_path):
    for rel in ("records500/00000/00001_hr", "records500/00000/00002_hr",
                "records500/00000/00003_hr"):
        _write(tmp_path / rel.rsplit("/", 1)[0], rel.rsplit("/", 1)[1], _ramp())
    _write(tmp_path / "records100" / "00000", "00001_lr", _ramp(1000))   # not listed: 100 Hz copy
    pd.DataFrame({"ecg_id": [1, 2, 3], "strat_fold": [3, 9, 10],
                  "filename_lr": [f"records100/00000/0000{k}_lr" for k in (1, 2, 3)],
                  "filename_hr": [f"records500/00000/0000{k}_hr" for k in (1, 2, 3)]}
                 ).to_csv(tmp_path / "ptbxl_database.csv", index=False)
    listed = sources.list_records(tmp_path)
    assert [p.name for p in listed] == ["00001_hr", "00002_hr", "00003_hr"]
    assert sources.split_hints(tmp_path) == {"00001_hr": "train", "00002_hr": "val",
                                             "00003_hr": "test"}
    kept, _ = sources.scan_real_records(tmp_path, no_holdout=True)
    # identical test signals: only the first survives de-duplication, with its split and source
    assert [(r.name, r.split_hint, r.source) for r in kept] == [("00001_hr", "train", "ptb-xl")]


def test_flat_folder_listing_is_recursive():
    listed = sources.list_records(_real_folder())
    assert len(listed) == 52
    assert _real_folder() / "georgia" / "E07505" in listed


def test_list_records_missing_folder(tmp_path):
    with pytest.raises(MissingInputError, match="does not exist"):
        sources.list_records(tmp_path / "nope")


def test_other_folder_keeps_the_shared_holdout(tmp_path):
    """A folder without its own manifest (a PTB-XL download) is still checked against ours."""
    _real_folder()
    from ecgnb import config
    from ecgnb.dataset import collect_sources, real_records

    folder = tmp_path / "ptb-xl"
    ramp = _ramp()
    for k, name in enumerate(("JS00001", "r1", "r2", "r3")):    # JS00001 is a holdout record
        _write(folder, name, ramp * (1 + k))
    assert [r.name for r in real_records(folder, 500, 10.0)] == ["r1", "r2", "r3"]
    profile = config.Profile(name="t", data=config.DataConfig(n_synthetic=1, real_folder=str(folder),
                                                                max_real=2))
    assert [r.name for r in collect_sources(profile)] == ["syn00000", "r1", "r2"]
