"""Digitizers on simulated phone photos, B/W photocopies and their colour prints; the
flattening's geometric error against the simulation's truth; seconds per photo on one core.

    .venv/bin/python benchmarks/make_photo_pages.py --profile quick --n 12   # the pages first
    .venv/bin/python benchmarks/bench_photos.py [--folder data/quick-photos] [--methods ...] [--name photos]

Writes ``reports/benchmarks/photos.{csv,md}`` (``--name``; per method and page kind: mean aligned and
unaligned SNR in dB, pages, refused, median seconds per page, megapixels),
``photos_bw.{csv,md}`` (per method: the B/W copies' SNR against their own colour prints, paired
page by page) and ``photos_geometry.{csv,md}`` (``ecgnb.rectify.flatten_error`` per page kind:
median over pages of the per-page median error and of the per-page 95th percentile, mm and px
of the flat page, and the seconds ``flatten`` takes per megapixel). One thread, as a user's one
core; seconds are wall time on this machine with whatever else it runs.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import sys
import time
from pathlib import Path

import cv2
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ecgnb import evaluate, io, paths, report  # noqa: E402
from ecgnb.rectify import flatten, flatten_error  # noqa: E402

OUT = ROOT / "reports" / "benchmarks"


def score(methods: list[str], index: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """Per page and method: mean aligned / unaligned SNR (dB), refusal, seconds, kind, MP."""
    rows = []
    for name in methods:
        table = evaluate.score_dataset(evaluate.method(name), index, folder, 500, desc=name)
        per = table.groupby("page").agg(snr_db=("snr_db", "mean"),
                                        snr_db_unaligned=("snr_db_unaligned", "mean"),
                                        refused=("error", lambda e: bool((e != "").any())),
                                        seconds=("seconds", "first"))
        rows.append(per.reset_index().assign(method=name))
    out = pd.concat(rows, ignore_index=True).merge(index[["page", "kind", "megapixels"]], on="page")
    return out


def geometry(index: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """``flatten_error`` and ``flatten`` seconds of every page."""
    rows = []
    for row in index.itertuples():
        rel = Path(row.path)
        image, _, truth = io.load_page(folder / rel.parent, rel.name)
        start = time.perf_counter()
        flat = flatten(image)
        seconds = time.perf_counter() - start
        rows.append({"page": row.page, "kind": row.kind, "megapixels": row.megapixels,
                     "flatten_s": seconds, "lattice": flat.lattice is not None,
                     **flatten_error(flat, truth)})
    return pd.DataFrame(rows)


def pair_bw(pages: pd.DataFrame) -> pd.DataFrame:
    """Per method: mean SNR of the B/W copies and of the colour prints they were made from."""
    p = pages.assign(number=pages["page"].str.extract(r"(\d+)$")[0],
                     record=pages["page"].str.replace(r"_(copy|print|photo)\d+$", "", regex=True))
    copies = p[p.kind == "photocopy"].set_index(["method", "record", "number"])["snr_db"]
    prints = p[p.kind == "print"].set_index(["method", "record", "number"])["snr_db"]
    both = pd.concat({"bw_snr_db": copies, "colour_snr_db": prints}, axis=1).dropna()
    out = both.groupby("method").mean()
    out["bw_minus_colour_db"] = out["bw_snr_db"] - out["colour_snr_db"]
    out["pairs"] = both.groupby("method").size()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", type=Path, default=paths.data_dir("quick-photos"))
    ap.add_argument("--methods", nargs="*", default=["classical", "rectified", "trace_net"])
    ap.add_argument("--name", default="photos",
                    help="report name: reports/benchmarks/NAME{,_bw,_geometry}.{md,csv} "
                         "(e.g. photos_val for the val-split pages a setting is chosen on)")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    folder = Path(args.folder)
    if not (folder / "index.csv").exists():
        sys.exit(f"{folder}/index.csv not found: make the pages first with "
                 "benchmarks/make_photo_pages.py --profile quick --n 12")
    index = pd.read_csv(folder / "index.csv")
    index["megapixels"] = [
        (lambda s: s[0] * s[1] / 1e6)(io.read_json(folder / f"{p}.json")["image_size"])
        for p in index["path"]]
    pages = score(args.methods, index, folder)
    summary = pages.groupby(["method", "kind"]).agg(
        snr_db=("snr_db", "mean"), snr_db_unaligned=("snr_db_unaligned", "mean"),
        pages=("page", "size"), refused=("refused", "sum"), seconds_median=("seconds", "median"),
        megapixels_median=("megapixels", "median"))
    report.write_table(summary, OUT / args.name)
    report.write_table(pair_bw(pages), OUT / f"{args.name}_bw")
    geo = geometry(index[index.kind != "print"], folder)
    geo_summary = geo.groupby("kind").agg(
        pages=("page", "size"), with_lattice=("lattice", "sum"),
        median_mm=("median_mm", "median"), p95_mm=("p95_mm", "median"),
        median_px=("median_px", "median"), p95_px=("p95_px", "median"),
        worst_p95_mm=("p95_mm", "max"), trace_time_median_mm=("trace_time_median_mm", "median"),
        trace_time_p95_mm=("trace_time_p95_mm", "median"), flatten_s_per_mp=("flatten_s", "sum"))
    geo_summary["flatten_s_per_mp"] /= geo.groupby("kind")["megapixels"].sum()
    report.write_table(geo_summary, OUT / f"{args.name}_geometry")
    print(summary.round(2).to_string())
    print(pair_bw(pages).round(2).to_string())
    print(geo_summary.round(3).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
