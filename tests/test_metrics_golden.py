"""ecgnb.metrics against the official Challenge-2024 scorer's own output, lead by lead.

The golden set (``../shared/data/official-snr-golden``, see its README) holds 312 (pair, lead)
rows: 16 real pairs (8 ECG-Image-Kit pages x 2 ecgnb methods, 12 leads) and 30 synthetic
cases (4 leads), each scored by evaluation-2024 commit 9af7dfb run as a program, with and
without ``--no_shift``. Every value must agree within 0.05 dB, and NaN exactly where the
official value is NaN. The aligned value of the ``shift_tie`` rows is skipped: their
cross-correlation peak is a tie that moved between numpy/scipy versions.
"""
from __future__ import annotations

import csv
import math
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
import wfdb

from conftest import require_shared
from ecgnb import metrics, paths

GOLDEN = paths.SHARED / "official-snr-golden"
TOLERANCE_DB = 0.05


def lead_column(signal: np.ndarray, names: list[str], lead: str) -> np.ndarray:
    """The column of ``signal`` whose lead name matches ``lead``, ignoring case (as the scorer)."""
    folded = [name.casefold() for name in names]
    return signal[:, folded.index(lead.casefold())]


@lru_cache(maxsize=None)
def _read(record: str) -> tuple[np.ndarray, tuple[str, ...], float]:
    signal, fields = wfdb.rdsamp(str(GOLDEN / record))
    return signal, tuple(fields["sig_name"]), float(fields["fs"])


def _golden_float(text: str) -> float:
    return float("nan") if text.strip().lower() == "nan" else float(text)


@pytest.fixture(scope="module")
def scored() -> pd.DataFrame:
    """One row per golden (pair, lead): official values beside ecgnb's."""
    require_shared(GOLDEN)
    offsets = {(r["record"], r["lead"]): r for r in csv.DictReader(open(GOLDEN / "offsets.csv"))}
    rows = []
    for row in csv.DictReader(open(GOLDEN / "expected.csv")):
        ref, ref_names, fs = _read(row["ref_record"])
        est, est_names, est_fs = _read(row["est_record"])
        assert est_fs == fs, row
        x = lead_column(ref, list(ref_names), row["lead"])
        y = lead_column(est, list(est_names), row["lead"])   # may be shorter: padded inside
        m = metrics.lead_metrics(x, y, fs)
        lag, offset = metrics.correlation_peak(x, y)
        diag = offsets[(row["record"], row["lead"])]
        rows.append({
            "record": row["record"], "lead": row["lead"], "tie": row["shift_tie"] == "True",
            "official_shift": _golden_float(row["snr_shift_9af7dfb"]),
            "official_noshift": _golden_float(row["snr_noshift_9af7dfb"]),
            "ours_shift": m["snr_db"], "ours_noshift": m["snr_db_unaligned"],
            "official_lag": int(diag["shift_samples"]), "official_offset": float(diag["shift_mv"]),
            "official_applied": diag["applied"] == "True", "lag": lag, "offset": offset,
            "applied": (m["shift_s"], m["offset_mv"]) != (0.0, 0.0),
        })
    return pd.DataFrame(rows)


def _compare(table: pd.DataFrame, ours: str, official: str) -> tuple[list[str], np.ndarray]:
    """Failures (text) and the finite |differences| of one column pair."""
    failures, diffs = [], []
    for row in table.itertuples():
        got, want = getattr(row, ours), getattr(row, official)
        if math.isnan(want) or math.isnan(got):
            if not (math.isnan(want) and math.isnan(got)):
                failures.append(f"{row.record} {row.lead}: ours {got} vs official {want} (NaN)")
            continue
        diffs.append(abs(got - want))
        if abs(got - want) > TOLERANCE_DB:
            failures.append(f"{row.record} {row.lead}: ours {got:.6f} vs official {want:.6f} dB")
    return failures, np.array(diffs)


def _report(name: str, table: pd.DataFrame, diffs: np.ndarray) -> None:
    n_nan = len(table) - diffs.size
    print(f"\n{name}: {len(table)} rows ({diffs.size} finite, {n_nan} NaN in both); "
          f"|ours - official| mean {diffs.mean():.2e} dB, max {diffs.max():.2e} dB")


def test_golden_set_is_complete(scored):
    assert len(scored) == 312
    assert scored["record"].str.startswith("synth/").sum() == 120
    assert scored["tie"].sum() == 9


def test_unaligned_snr_matches_official_no_shift(scored):
    failures, diffs = _compare(scored, "ours_noshift", "official_noshift")
    _report("no shift", scored, diffs)
    assert not failures, "\n".join(failures)
    assert diffs.size > 250
    assert diffs.mean() < 1e-3     # the golden values have 6 decimals: ~2.5e-7 expected


def test_aligned_snr_matches_official_shift(scored):
    testable = scored[~scored["tie"]]
    failures, diffs = _compare(testable, "ours_shift", "official_shift")
    _report("shift", testable, diffs)
    assert not failures, "\n".join(failures)
    assert diffs.size > 250
    assert diffs.mean() < 1e-3


def test_flat_tie_leads_are_nan_whatever_the_lag(scored):
    # JS20004 V2/V4/V6 are all-zero in the source record: NaN with or without alignment.
    flat = scored[scored["tie"] & scored["record"].str.contains("JS20004")]
    assert len(flat) == 5
    assert flat["ours_shift"].isna().all() and flat["official_shift"].isna().all()


def test_alignment_is_the_official_lag_and_offset(scored):
    testable = scored[~scored["tie"]]
    lag_wrong = testable[testable["lag"] != testable["official_lag"]]
    assert lag_wrong.empty, lag_wrong[["record", "lead", "lag", "official_lag"]].to_string()
    np.testing.assert_allclose(testable["offset"], testable["official_offset"], atol=1e-6)
    # applied where the official applied a non-zero alignment
    moved = testable["official_applied"] & ((testable["official_lag"] != 0)
                                            | (testable["official_offset"] != 0))
    assert (testable["applied"] == moved).all()


def test_mean_snr_of_the_real_pages_is_the_official_score(scored):
    # The official README's means over the 8 real pages (NaN leads ignored, as the scorer).
    official = {"real-baseline": (9.589, 7.576), "real-model": (10.123, 8.009)}
    for method, (shift, noshift) in official.items():
        rows = scored[scored["record"].str.startswith(method + "/")]
        assert rows["ours_shift"].notna().sum() == 93
        assert rows["ours_shift"].mean() == pytest.approx(shift, abs=1e-3)
        assert rows["ours_noshift"].mean() == pytest.approx(noshift, abs=1e-3)


def test_record_metrics_gives_the_same_values_for_a_whole_page(scored):
    ref, names, fs = _read("ref/real/E07505-0")
    est, est_names, _ = _read("est/real-model/E07505-0")
    assert [n.casefold() for n in names] == [n.casefold() for n in est_names]
    table = metrics.record_metrics(ref, est, fs, lead_names=names)
    want = scored[scored["record"] == "real-model/E07505-0"].set_index("lead")
    np.testing.assert_allclose(table["snr_db"], want.loc[list(names), "official_shift"], atol=1e-5)
    np.testing.assert_allclose(table["snr_db_unaligned"], want.loc[list(names), "official_noshift"],
                               atol=1e-5)
