"""Gridless pages at several dpi, read by the trace network's reader with and without the
gridless scale (``ecgnb.scale``, ``TraceReadConfig.gridless_scale``).

    ECGNB_OUTPUT_ROOT=... python benchmarks/bench_gridless.py --profile quick --n 6

Each of the first ``--n`` test-split records of the profile is printed without a grid (the
study's print style otherwise) at each of ``--dpi`` (default 150, 200 and 300) and read as the
command reads an image (no dpi given: the reader assumes the profile's 200). A page the reader
refuses scores 0 dB, as in ``ecgnb.evaluate``. Writes ``reports/benchmarks/gridless.{csv,md}``:
per dpi and setting, mean aligned and unaligned SNR (dB) over pages and leads, pages, refused
pages, and the median scale the reading used against the print's (``scale_error_pct``: the
rescaled reading's px/mm, else the assumed 200 dpi, against the true px/mm; %).
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ecgnb import digitizers, evaluate, report  # noqa: E402
from ecgnb.config import StyleConfig, TraceReadConfig, get_profile  # noqa: E402
from ecgnb.dataset import page_rng, split_records  # noqa: E402
from ecgnb.reading import ReadOptions  # noqa: E402
from ecgnb.render import masked_signal, render_page  # noqa: E402

OUT = ROOT / "reports" / "benchmarks"


def score_page(reader, image: np.ndarray, signal: np.ndarray, fs: float, options: ReadOptions,
               true_ppm: float) -> dict:
    """Mean aligned / unaligned SNR (dB) of one page (``evaluate.score_page``: a refused page
    scores 0 dB), whether it was refused, and the scale the reading used against the true one (%)."""
    readings = []
    table = evaluate.score_page(lambda page: readings.append(reader.read(page, options)) or readings[-1],
                                image, signal, fs).replace([np.inf, -np.inf], np.nan)
    refused = bool(table["error"].iloc[0])
    used = readings[-1].extra.get("rescaled", {}).get("px_per_mm", options.paper.px_per_mm) \
        if readings else np.nan
    return {"snr_db": float(table["snr_db"].mean()),
            "snr_db_unaligned": float(table["snr_db_unaligned"].mean()), "refused": int(refused),
            "scale_error_pct": np.nan if refused else 100.0 * (used / true_ppm - 1.0)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick", help="profile whose test records are printed")
    ap.add_argument("--n", type=int, default=6, help="records (pages per dpi)")
    ap.add_argument("--dpi", type=int, nargs="+", default=[150, 200, 300])
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    profile = get_profile(args.profile)
    records = split_records(profile, "test", log=lambda msg: print(msg, file=sys.stderr))[:args.n]
    if not records:
        raise SystemExit(f"profile {args.profile} has no test records")
    readers = {on: digitizers.get("trace_net", ink=TraceReadConfig(gridless_scale=on))
               for on in (False, True)}
    options = ReadOptions(layout=profile.paper.layout)
    rows = []
    for dpi in args.dpi:
        paper = dataclasses.replace(profile.paper, dpi=dpi)
        for record in records:
            name = f"{record.name}_gridless{dpi}"
            image, truth = render_page(record.signal, record.fs, paper, page_rng(profile.seed, name),
                                       header={"id": record.name}, style=StyleConfig(grid_colour="none"))
            signal = masked_signal(record.signal, truth)
            for on, reader in readers.items():
                got = score_page(reader, image, signal, record.fs,
                                 dataclasses.replace(options, fs=float(record.fs)), truth["px_per_mm"])
                rows.append({"dpi": dpi, "gridless_scale": on, "page": name, **got})
                print(f"{name} gridless_scale={on}: {got['snr_db']:.2f} dB", file=sys.stderr)
    pages = pd.DataFrame(rows)
    table = pages.groupby(["dpi", "gridless_scale"]).agg(
        snr_db=("snr_db", "mean"), snr_db_unaligned=("snr_db_unaligned", "mean"),
        pages=("page", "count"), refused=("refused", "sum"),
        scale_error_pct=("scale_error_pct", "median")).reset_index()
    report.write_table(table, OUT / "gridless")
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
