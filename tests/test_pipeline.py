"""The papermill driver: failures name the notebook and cell; the manifest records provenance."""
from __future__ import annotations

import nbformat
import pytest

from ecgnb import config, paths, pipeline


def _notebook(path, source):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('profile = "quick"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(source)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_failing_notebook_names_cell_and_error(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "REPORTS", tmp_path / "reports")
    nb = _notebook(tmp_path / "99_broken.ipynb", "raise ValueError('bad input page')")
    with pytest.raises(pipeline.StudyError) as err:
        pipeline.run_notebook(nb, "quick")
    message = str(err.value)
    assert "99_broken.ipynb" in message and "cell" in message
    assert "ValueError: bad input page" in message
    assert (tmp_path / "reports" / "quick" / "executed" / "99_broken.ipynb").exists()


def test_missing_declared_output_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "REPORTS", tmp_path / "reports")
    monkeypatch.setitem(pipeline.NOTEBOOK_OUTPUTS, "98_silent", ["reports/{profile}/never.png"])
    nb = _notebook(tmp_path / "98_silent.ipynb", "x = 1")
    with pytest.raises(pipeline.StudyError, match="did not write: reports/quick/never.png"):
        pipeline.run_notebook(nb, "quick")


def test_manifest_maps_artefacts(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "REPORTS", tmp_path / "reports")
    monkeypatch.setattr(paths, "OUTPUT_ROOT", tmp_path)
    (tmp_path / "reports" / "quick").mkdir(parents=True)
    (tmp_path / "reports" / "quick" / "fig.png").write_bytes(b"png")
    run = pipeline.NotebookRun("01_synthesis", 1.5, ["reports/quick/fig.png"])
    path = pipeline.write_manifest(config.get_profile("quick").to_dict(), [run], "quick")
    manifest = __import__("json").loads(path.read_text())
    entry = manifest["artefacts"]["reports/quick/fig.png"]
    assert entry["notebook"] == "notebooks/01_synthesis.ipynb" and len(entry["sha256"]) == 64
    assert manifest["config"]["name"] == "quick" and "torch" in manifest["packages"]
    assert "git_commit" in manifest and manifest["machine"] == pipeline.machine_id()
    # a later run merges in; each notebook keeps the commit it started from
    later = pipeline.NotebookRun("02_digitizer", 2.0, [], commit="abc1234", dirty=False)
    manifest = __import__("json").loads(
        pipeline.write_manifest(config.get_profile("quick").to_dict(), [later], "quick").read_text())
    assert set(manifest["notebooks"]) == {"01_synthesis", "02_digitizer"}
    assert manifest["notebooks"]["02_digitizer"]["git_commit"] == "abc1234"
    assert "reports/quick/fig.png" in manifest["artefacts"]


def test_unknown_profile_and_notebook_filter():
    with pytest.raises(ValueError, match="known profiles"):
        config.get_profile("huge")
    with pytest.raises(pipeline.StudyError, match="no notebook matches"):
        pipeline.notebooks(["77"])


def test_profile_overrides_are_resolved():
    base = config.get_profile("quick")
    cfg = config.with_overrides(base, seed=7, n_synthetic=3, severities=[0.0], dpi=100)
    assert (cfg.seed, cfg.data.n_synthetic, cfg.data.severities, cfg.paper.dpi) == (7, 3, (0.0,), 100)
    assert config.with_overrides(base) == base
