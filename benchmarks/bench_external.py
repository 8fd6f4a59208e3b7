"""Every registered digitizer on the shared external sets (and, optionally, a profile's test split).

    .venv/bin/python benchmarks/bench_external.py                      # eik-dev + photos-dev
    .venv/bin/python benchmarks/bench_external.py --split reference    # + the reference test split
    .venv/bin/python benchmarks/bench_external.py --methods classical rectified
    .venv/bin/python benchmarks/bench_external.py --methods trace_net --split reference --name trace_net

Writes ``reports/benchmarks/external.{csv,md}`` (one row per set and method: mean aligned and
unaligned SNR (dB, the Challenge 2024 scorer of ``ecgnb.metrics``), MAE (mV), pages, refused pages,
seconds per page) and ``external_per_page.{csv,md}`` (mean aligned SNR per page). The external
sets are for measurement only. The crop model reads ``models/default.pt``. Seconds are wall time
on this machine, with whatever else it runs (read them as upper bounds).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ecgnb import digitizers, evaluate, report  # noqa: E402
from ecgnb.errors import MissingInputError  # noqa: E402

OUT = ROOT / "reports" / "benchmarks"


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (set, method): means over (page, lead), refused pages, seconds per page."""
    out = evaluate.method_summary(table, ["set", "method"])[["snr_db", "snr_db_unaligned", "mae", "pages"]]
    per_page = table.groupby(["set", "method", "page"])
    out["refused"] = per_page["error"].first().ne("").groupby(["set", "method"]).sum()
    out["seconds_per_page"] = per_page["seconds"].first().groupby(["set", "method"]).mean()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="*", default=digitizers.names(),
                    help="registered methods (default: all)")
    ap.add_argument("--split", metavar="PROFILE", help="also the test split of data/PROFILE")
    ap.add_argument("--name", default="external",
                    help="table name under reports/benchmarks (default external; e.g. trace_net "
                         "for a run of one new method beside the committed table)")
    args = ap.parse_args(argv)
    sets = ["eik-dev", "photos-dev"] + ([f"{args.split} test"] if args.split else [])
    frames = []
    for method in args.methods:
        digitize = evaluate.method(method)        # loads a checkpoint once per method
        for name in sets:
            try:
                table = evaluate.score_named_set(name, digitize, args.split)
                frames.append(table.assign(set=name, method=method))
            except MissingInputError as exc:
                print(f"{name} skipped: {exc}")
    if not frames:
        sys.exit("nothing scored: the shared sets are absent")
    table = pd.concat(frames, ignore_index=True)
    summary = summarize(table)
    report.write_set_scores(summary, table, OUT / args.name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
