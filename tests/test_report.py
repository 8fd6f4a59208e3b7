from __future__ import annotations

import numpy as np
import pytest
import pandas as pd

from ecgnb import report


def test_markdown_table_rounds_and_blanks_nan():
    table = pd.DataFrame({"lead": ["I", "II"], "snr_db": [12.3456, np.nan]}).set_index("lead")
    md = report.to_markdown(table)
    assert md.splitlines() == ["| lead | snr_db |", "|---|---|", "| I | 12.35 |", "| II |  |"]


def test_write_table_writes_csv_and_md(tmp_path):
    table = pd.DataFrame({"a": [1.0, 2.0]})
    csv, md = report.write_table(table, tmp_path / "t")
    assert pd.read_csv(csv)["a"].tolist() == [1.0, 2.0]
    assert md.read_text().startswith("| a |")


def test_update_readme_replaces_only_the_marked_block(tmp_path):
    rep = tmp_path / "reports"
    rep.mkdir()
    for _, stem, _ in report.README_TABLES:
        report.write_table(pd.DataFrame({"snr_db": [1.234]}), rep / stem)
    methods = pd.Index(["classical", "multimodal"], name="method")
    report.write_table(pd.DataFrame({"snr_db": [14.0, 15.5], "snr_db_unaligned": [12.0, 13.0]},
                                    index=methods), rep / "05_test_summary")
    report.write_table(pd.DataFrame({"snr_db_unaligned": [11.0, 12.5], "paper_snr_db": 9.53},
                                    index=methods), rep / "05_paper_protocol")
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.RESULTS_START}\nSTALE-TABLE\n{report.RESULTS_END}\noutro\n")
    report.update_readme(readme, "quick", rep)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n")
    assert "STALE-TABLE" not in text and "| 1.23 |" in text
    # the headline's numbers come from the tables, and say which side of the baseline we are
    assert "(`multimodal`) reaches 15.50 dB aligned / 13.00 dB unaligned" in text
    assert "above the classical digitizer's 14.00 / 12.00 dB" in text
    assert "scores 12.50 dB against the paper's 9.53 dB" in text
    # a gap under report.PARITY_DB is not called a lead
    report.write_table(pd.DataFrame({"snr_db": [15.4, 15.5], "snr_db_unaligned": [12.0, 13.0]},
                                    index=methods), rep / "05_test_summary")
    assert "level with the classical digitizer's 15.40" in report.headline(rep)


def test_update_readme_needs_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("no markers")
    import pytest
    with pytest.raises(ValueError, match="no results markers"):
        report.update_readme(readme, "quick", tmp_path)


def test_update_readme_says_which_study_to_run_when_its_results_are_missing(tmp_path):
    import pytest
    from ecgnb.errors import MissingInputError
    readme = tmp_path / "README.md"
    text = f"intro\n{report.RESULTS_START}\nold\n{report.RESULTS_END}\n"
    readme.write_text(text)
    with pytest.raises(MissingInputError, match="make study PROFILE=reference"):
        report.update_readme(readme, "reference", tmp_path / "reports")
    assert readme.read_text() == text


def test_photos_table_only_when_the_benchmark_ran(tmp_path):
    from ecgnb.report import photos_table
    assert photos_table(tmp_path) == ""
    bench = tmp_path / "benchmarks"
    bench.mkdir()
    (bench / "photos.md").write_text("| method | snr_db |\n|---|---|\n| rectified | 3.9 |\n")
    text = photos_table(tmp_path)
    assert "bench_photos.py" in text and "| rectified | 3.9 |" in text
    assert "photos_geometry.md" not in text          # absent tables are not announced
    (bench / "photos_geometry.md").write_text("| kind | median_mm |\n|---|---|\n| photo | 0.27 |\n")
    assert "| photo | 0.27 |" in photos_table(tmp_path)


@pytest.mark.parametrize("table, stem, command, row", [
    ("trace_net_table", "trace_net", "--name trace_net", "| eik-dev | trace_net |"),
    ("trace_checkpoints_table", "trace_checkpoints", "bench_trace_checkpoints.py",
     "| photos-dev | models/trace_net.pt |"),
    ("trace_model_table", "trace_model", "bench_trace_model.py", "| eik-dev | trace_multimodal |"),
])
def test_a_benchmarks_table_only_when_it_ran_with_its_command(tmp_path, table, stem, command, row):
    make = getattr(report, table)
    assert make(tmp_path) == ""
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / f"{stem}.md").write_text(f"| set | method |\n|---|---|\n{row}\n")
    text = make(tmp_path)
    assert command in text and row in text


def test_the_trace_model_table_says_when_its_front_has_changed_since(tmp_path):
    from ecgnb.report import front_mismatch
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    assert front_mismatch(tmp_path) == ""
    rows = "set,method,snr_db\neik-dev,trace_net,10.751\nphotos-dev,trace_net,3.25\n"
    (folder / "trace_model.csv").write_text(rows + "eik-dev,trace_multimodal,10.76\n")
    (folder / "trace_net.csv").write_text(rows)
    assert front_mismatch(tmp_path) == ""
    (folder / "trace_net.csv").write_text("set,method,snr_db\neik-dev,trace_net,11.16\n"
                                          "photos-dev,trace_net,3.254\n")
    text = front_mismatch(tmp_path)
    assert "eik-dev 10.75 here, 11.16 now" in text and "photos-dev" not in text


def test_severity_means_averages_per_setting_and_severity_and_over_all_pages():
    per_page = pd.DataFrame({"setting": ["a", "a", "a", "b"], "severity": [0.0, 0.5, 0.5, 0.0],
                             "snr_db": [10.0, 4.0, 6.0, 1.0], "snr_db_unaligned": [8.0, 2.0, 2.0, 0.0]})
    out = report.severity_means(per_page, "setting")
    assert out.loc[("a", "all"), "snr_db"] == pytest.approx(20 / 3)
    assert out.loc[("a", "0.50"), ["snr_db", "snr_db_unaligned", "pages"]].tolist() == [5.0, 2.0, 2]
    assert out.loc[("b", "all"), "pages"] == 1 and ("b", "0.50") not in out.index
