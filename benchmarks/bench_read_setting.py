"""Which value of one reader setting the trace network keeps, scored on val sets only.

    ECGNB_OUTPUT_ROOT=<tree> .venv/bin/python benchmarks/make_photo_pages.py --profile quick \\
        --n 16 --split val --out <tree>/data/quick-photos-val
    ECGNB_OUTPUT_ROOT=<tree> .venv/bin/python benchmarks/bench_read_setting.py \\
        --photos-folder <tree>/data/quick-photos-val --field hole_mm --values 0 0.9

Reads every page of the reference val split and of a folder of simulated photos, photocopies
and prints of val-split records with ``--method trace_net`` once per value of one numeric
field of ``config.TraceReadConfig`` (the others at their defaults) and scores each reading.
A refused page scores 0 dB per lead. Writes ``reports/benchmarks/<field>_val.{csv,md}``: mean
aligned and unaligned SNR (dB) per set and value, and per value the mean over the four sets
(``mean of the sets``), the rule by which a default is chosen. No test page, eik-dev or
photos-dev page is read.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import pandas as pd
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_lowpass import FS, KIND_NAMES, OUT, read_page, summary, val_pages  # noqa: E402
from ecgnb import evaluate, paths, report  # noqa: E402
from ecgnb.config import TraceReadConfig  # noqa: E402
from ecgnb.metrics import record_metrics  # noqa: E402
from ecgnb.reading import ReadOptions  # noqa: E402
from ecgnb.trace_reader import TraceNetDigitizer  # noqa: E402


def score_pages(reader: TraceNetDigitizer, pages: pd.DataFrame, data_dir: Path, set_of,
                field: str, value: float) -> list[dict]:
    """Per page: mean aligned / unaligned SNR (dB) over the leads; ``set_of(row)`` names each
    page's set."""
    options = ReadOptions(layout="3x4+1", fs=float(FS))
    rows = []
    for row in tqdm(list(pages.itertuples()), desc=f"{data_dir.name} {field}={value:g}"):
        signal, reference = read_page(reader, row, data_dir, options)
        table = record_metrics(reference, signal, FS)
        rows.append({"set": set_of(row), field: value, "page": row.page,
                     "snr_db": table["snr_db"].mean(),
                     "snr_db_unaligned": table["snr_db_unaligned"].mean()})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="reference")
    ap.add_argument("--photos-folder", type=Path, required=True,
                    help="simulated pages of val-split records (make_photo_pages.py --split val)")
    ap.add_argument("--field", required=True, help="a numeric field of config.TraceReadConfig")
    ap.add_argument("--values", type=float, nargs="+", required=True)
    args = ap.parse_args(argv)
    numeric = {f.name for f in dataclasses.fields(TraceReadConfig) if f.type in ("float", "int")}
    if args.field not in numeric:
        raise SystemExit(f"--field {args.field!r} is not a numeric TraceReadConfig field; "
                         f"known: {', '.join(sorted(numeric))}")
    folder = args.photos_folder
    photos = val_pages(folder)
    rows = []
    for value in args.values:
        reader = TraceNetDigitizer(ink=dataclasses.replace(TraceReadConfig(), **{args.field: value}))
        rows += score_pages(reader, evaluate.load_split(args.profile, "val"),
                            paths.data_dir(args.profile), lambda row: f"{args.profile} val",
                            args.field, value)
        rows += score_pages(reader, photos, folder, lambda row: KIND_NAMES[row.kind], args.field, value)
    table = summary(pd.DataFrame(rows), args.field)
    report.write_table(table, OUT / f"{args.field}_val")
    print(table.round(2).to_string())
    means = table[table["set"] == "mean of the sets"].set_index(args.field)["snr_db"]
    print(f"highest mean of the sets: {means.idxmax():g} ({means.max():.2f} dB); "
          f"the reader's default: {getattr(TraceReadConfig(), args.field):g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
