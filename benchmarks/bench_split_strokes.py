"""Whether the trace network's reader reads steep QRS strokes finer, scored on a split.

    .venv/bin/python benchmarks/bench_split_strokes.py                 # reference val split
    .venv/bin/python benchmarks/bench_split_strokes.py --copy binary   # its black-and-white copies

Reads every page of ``data/<profile>/<split>`` with ``--method trace_net`` twice, with
``config.TraceReadConfig.split_strokes`` "never" and "always" (``PreprocessConfig.split_strokes``:
a narrow QRS's merged rows give both strokes' crossings, each steep stroke's row crossings read
in order). ``--copy binary`` reads each page's black-and-white copy instead: every pixel whose
darkest channel is under 0.92 of the paper's level goes black, the rest white (a thresholded scan
or fax that keeps the grid; ``trace_reader.is_binary`` holds, and the default "grey" reads it as "never").
Writes ``reports/benchmarks/split_strokes_<split>[_binary].{csv,md}``: mean aligned and unaligned
SNR (dB) per setting and severity (``all``: every page). The setting was chosen on the val split.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ecgnb import evaluate, paths, report  # noqa: E402
from ecgnb.trace_reader import TraceNetDigitizer  # noqa: E402
from ecgnb.config import TraceReadConfig  # noqa: E402
from ecgnb.reading import ReadOptions  # noqa: E402

OUT = ROOT / "reports" / "benchmarks"
BLACK_BELOW = 0.92    # share of the paper's level under which a binary copy's pixel is black


def binary_copy(image: np.ndarray) -> np.ndarray:
    """The black-and-white copy ``(H, W, 3)`` uint8 of an RGB page (see the module docstring)."""
    grey = image.min(axis=2)
    paper = np.percentile(grey[::7, ::7], 95)     # most of a page is paper
    black = grey < BLACK_BELOW * paper
    return np.repeat(np.where(black, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)


def score(split_strokes: str, pages: pd.DataFrame, data_dir: Path, binary: bool) -> pd.DataFrame:
    """Per-page mean SNRs (dB) of one setting."""
    reader = TraceNetDigitizer(ink=TraceReadConfig(split_strokes=split_strokes))
    options = ReadOptions(layout="3x4+1", fs=500.0)

    def digitize(image):
        return reader.read(binary_copy(image) if binary else image, options)

    table = evaluate.score_dataset(digitize, pages, data_dir, 500, desc=f"split_strokes={split_strokes}")
    per_page = table.groupby(["page", "severity"])[["snr_db", "snr_db_unaligned"]].mean()
    return per_page.reset_index().assign(split_strokes=split_strokes)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="reference")
    ap.add_argument("--split", default="val", choices=("val", "test"))
    ap.add_argument("--copy", default="colour", choices=("colour", "binary"))
    args = ap.parse_args(argv)
    binary = args.copy == "binary"
    pages = evaluate.load_split(args.profile, args.split)
    per_page = pd.concat([score(setting, pages, paths.data_dir(args.profile), binary)
                          for setting in ("never", "always")], ignore_index=True)
    summary = report.severity_means(per_page, "split_strokes")
    summary.insert(0, "split", f"{args.profile} {args.split}, {args.copy} pages")
    report.write_table(summary, OUT / f"split_strokes_{args.split}{'_binary' if binary else ''}")
    print(summary.round(2).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
