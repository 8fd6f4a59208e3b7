"""Run the study's notebooks through papermill in the quick profile, as `make study` does."""
from __future__ import annotations

import json

import nbformat
import pandas as pd
import pytest

from ecgnb import leads, paths, pipeline
from ecgnb.dataset import load_index, load_page

pytestmark = pytest.mark.slow


def test_source_notebooks_are_clean_and_parameterised():
    for nb_path in pipeline.notebooks():
        nb = nbformat.read(nb_path, as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{nb_path.name} needs exactly one 'parameters' cell"
        assert "profile" in tagged[0].source
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, \
                    f"{nb_path.name}: strip outputs (executed copies belong under reports/)"
                assert "def " not in cell.source and "class " not in cell.source, \
                    f"{nb_path.name}: logic belongs in ecgnb/, not in notebook cells"


@pytest.fixture(scope="module")
def quick_01():
    """The whole quick study, run once for this module (01 builds the data the others read)."""
    manifest = pipeline.run_study("quick")
    return json.loads(manifest.read_text())


def test_every_notebook_writes_its_declared_artefacts(quick_01):
    for nb in pipeline.notebooks():
        assert nb.stem in pipeline.NOTEBOOK_OUTPUTS, f"{nb.name} declares no artefacts"
        for rel in pipeline.NOTEBOOK_OUTPUTS[nb.stem]:
            rel = rel.format(profile="quick")
            assert (paths.OUTPUT_ROOT / rel).exists(), rel
            assert quick_01["artefacts"][rel]["notebook"] == f"notebooks/{nb.name}"
        assert (paths.report_dir("quick") / "executed" / nb.name).exists()


def test_baseline_scores_are_real_numbers(quick_01):
    table = pd.read_csv(paths.report_dir("quick") / "02_baseline_by_severity.csv")
    clean = table.loc[table["severity"] == 0.0].iloc[0]
    # the classical digitizer must read clean quick pages far better than a flat line (0 dB)
    assert clean["snr_db"] > 8 and clean["pearson_r"] > 0.8


def test_quick_dataset_is_split_by_record_and_complete(quick_01):
    index = load_index("quick")
    assert set(index["split"]) == {"train", "val", "test"}
    assert index.groupby("record")["split"].nunique().max() == 1, "a record spans two splits"
    assert (index["origin"] == "synthetic").sum() > 0
    page = index.iloc[0]
    image, signal, truth = load_page("quick", page["page"])
    assert image.dtype.name == "uint8" and signal.shape[1] == 12
    assert truth["layout"] == "3x4+1" and len(truth["panels"]) == 13
    # lead I is drawn for 2.5 s of the 10 s; lead II (rhythm strip) throughout
    assert abs(pd.Series(~pd.isna(signal[:, 0])).mean() - 0.25) < 0.01
    assert not pd.isna(signal[:, leads.LEAD_INDEX["II"]]).any()


def test_quick_dataset_never_uses_holdout_records(quick_01):
    manifest = paths.REAL_ECG / "manifest.csv"
    if not manifest.exists():
        pytest.skip(f"{manifest} not found: no real records to check")
    table = pd.read_csv(manifest)
    holdout = set(table.loc[table["used_in_hidden_holdout"].astype(str) == "True", "record"])
    assert holdout and not holdout & set(load_index("quick")["record"])


def _committed(rel: str) -> str | None:
    """Text of ``rel`` at git HEAD, or None (not a git checkout, or not committed)."""
    import subprocess
    try:
        return subprocess.run(["git", "show", f"HEAD:{rel}"], cwd=paths.ROOT, check=True,
                              capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None


def test_quick_tables_reproduce_the_committed_ones(quick_01):
    """Re-running the quick study gives the committed metric tables to 2 decimals (same machine)."""
    from io import StringIO

    import numpy as np

    manifest = _committed("reports/quick/manifest.json")
    if manifest is None:
        pytest.skip("no committed reports/quick/manifest.json to compare with (not a git checkout?)")
    made = json.loads(manifest)
    made_on = made.get("machine")
    if made_on != pipeline.machine_id():
        pytest.skip(f"the committed tables were made on another machine ({made_on}); "
                    f"this is {pipeline.machine_id()}")
    # Another OpenCV draws and resamples pages a little differently: the tables then move in
    # the 2nd decimal, which says nothing about our code.
    ours = pipeline.package_versions()
    other = {k: (v, ours.get(k)) for k, v in (made.get("packages") or {}).items() if ours.get(k) != v}
    if other:
        pytest.skip("the committed tables were made with other package versions: "
                    + ", ".join(f"{k} {a} (here {b})" for k, (a, b) in sorted(other.items())))
    compared = 0
    for path in sorted(paths.report_dir("quick").glob("0*_*.csv")):
        rel = f"reports/quick/{path.name}"
        old = _committed(rel)
        if old is None or path.name == "05_scores.csv":   # per-row scores: the tables summarise them
            continue
        old, new = pd.read_csv(StringIO(old)), pd.read_csv(path)
        timing = [c for c in new.columns if "seconds" in c or c == "train_s"]
        old, new = old.drop(columns=timing, errors="ignore"), new.drop(columns=timing)
        assert list(old.columns) == list(new.columns) and len(old) == len(new), rel
        num = new.select_dtypes("number").columns
        keys = [c for c in new.columns if c not in num]
        if keys:   # row order follows the dataset's page order, which is not a result
            old = old.sort_values(keys, kind="stable", ignore_index=True)
            new = new.sort_values(keys, kind="stable", ignore_index=True)
        assert (old.drop(columns=num).astype(str).values == new.drop(columns=num).astype(str).values).all(), rel
        a, b = old[num].to_numpy(float), new[num].to_numpy(float)
        with np.errstate(invalid="ignore"):
            same = (a == b) | (np.abs(a - b) < 0.01) | (np.isnan(a) & np.isnan(b))
        assert same.all(), f"{rel} differs from the committed table beyond 2 decimals"
        compared += 1
    assert compared >= 10
