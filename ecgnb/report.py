"""Tables for the report: every table is written as CSV (for machines) and Markdown (for people)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .io import write_text_atomic


def to_markdown(table: pd.DataFrame, digits: int = 2) -> str:
    """A GitHub Markdown table of ``table`` (index included), floats to ``digits`` decimals."""
    frame = table.reset_index() if _has_named_index(table) else table
    def cell(v):
        if isinstance(v, (float, np.floating)):
            return "" if np.isnan(v) else f"{v:.{digits}f}"
        return str(v)
    head = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows]) + "\n"


def _has_named_index(table: pd.DataFrame) -> bool:
    return any(name is not None for name in table.index.names)


def write_table(table: pd.DataFrame, stem: Path, digits: int = 2) -> tuple[Path, Path]:
    """Write ``stem.csv`` and ``stem.md`` atomically; return both paths."""
    stem = Path(stem)
    csv = write_text_atomic(stem.with_suffix(".csv"),
                            table.to_csv(index=_has_named_index(table)))
    md = write_text_atomic(stem.with_suffix(".md"), to_markdown(table, digits))
    return csv, md
