from __future__ import annotations

import numpy as np
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
