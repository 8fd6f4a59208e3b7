"""Which ink coverage the trace network's reader centres its trace on, scored on a split.

    .venv/bin/python benchmarks/bench_trace_coverage.py                  # reference val split
    .venv/bin/python benchmarks/bench_trace_coverage.py --split test

Reads every page of ``data/<profile>/<split>`` with ``--method trace_net`` three times, once per
``config.TraceReadConfig.coverage``: ``network`` (the network's estimate), ``darkness`` (the
page's own, inside the network's mask) and ``choose`` (both, the reading whose limb leads obey
Einthoven's law better kept). Writes ``reports/benchmarks/trace_coverage_<split>.{csv,md}``: mean
aligned and unaligned SNR (dB) per coverage and severity (``all``: every page), and for ``choose``
how many pages kept the darkness (``kept_darkness``; the others kept the network's). The choice was
made on the val split; the test split only checks it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ecgnb import evaluate, paths, report  # noqa: E402
from ecgnb.config import TraceReadConfig  # noqa: E402
from ecgnb.reading import ReadOptions  # noqa: E402
from ecgnb.trace_reader import COVERAGES, TraceNetDigitizer  # noqa: E402

OUT = ROOT / "reports" / "benchmarks"


def score(coverage: str, pages: pd.DataFrame, data_dir: Path) -> tuple[pd.DataFrame, list]:
    """Per-page mean SNRs (dB) of one coverage setting, and the coverage each page kept."""
    reader = TraceNetDigitizer(ink=TraceReadConfig(coverage=coverage))
    options, kept = ReadOptions(layout="3x4+1", fs=500.0), []

    def digitize(image):
        reading = reader.read(image, options)
        kept.append(reading.extra.get("coverage", coverage))
        return reading

    table = evaluate.score_dataset(digitize, pages, data_dir, 500, desc=coverage)
    per_page = table.groupby(["page", "severity"])[["snr_db", "snr_db_unaligned"]].mean()
    return per_page.reset_index().assign(coverage=coverage), kept


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="reference")
    ap.add_argument("--split", default="val", choices=("val", "test"))
    args = ap.parse_args(argv)
    pages = evaluate.load_split(args.profile, args.split)
    frames, kept = [], {}
    for coverage in COVERAGES:
        frame, kept[coverage] = score(coverage, pages, paths.data_dir(args.profile))
        frames.append(frame)
    summary = report.severity_means(pd.concat(frames, ignore_index=True), "coverage")
    counts = pd.Series(kept["choose"]).value_counts()
    summary["kept_darkness"] = [int(counts.get("darkness", 0)) if (c, s) == ("choose", "all") else None
                                for c, s in summary.index]
    summary.insert(0, "split", f"{args.profile} {args.split}")
    report.write_table(summary, OUT / f"trace_coverage_{args.split}")
    print(summary.round(2).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
