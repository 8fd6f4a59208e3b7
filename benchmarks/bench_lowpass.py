"""Which low-pass cutoff the trace network's read-out keeps, scored on val sets only.

    ECGNB_OUTPUT_ROOT=<tree> .venv/bin/python benchmarks/make_photo_pages.py --profile quick \\
        --n 16 --split val --out <tree>/data/quick-photos-val
    ECGNB_OUTPUT_ROOT=<tree> .venv/bin/python benchmarks/bench_lowpass.py \\
        --photos-folder <tree>/data/quick-photos-val

Reads every page of the reference val split and of a folder of simulated photos, photocopies
and prints of val-split records once with ``--method trace_net`` and its low-pass off
(``config.TraceReadConfig.lowpass_hz`` 0), then low-passes each reading at every cutoff of
``CUTOFFS_HZ`` (``trace_reader.low_passed``) and scores it. A refused page scores 0 dB per lead.
Writes ``reports/benchmarks/lowpass_val.{csv,md}``: mean aligned and unaligned SNR (dB) per set
and cutoff, and per cutoff the mean over the four sets (``mean of the sets``), the rule by which
the default was chosen: the cutoff with the highest such mean. No test page, eik-dev or
photos-dev page is read.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ecgnb import evaluate, io, paths, report  # noqa: E402
from ecgnb.config import TraceReadConfig  # noqa: E402
from ecgnb.errors import EcgnbError  # noqa: E402
from ecgnb.metrics import record_metrics  # noqa: E402
from ecgnb.reading import ReadOptions  # noqa: E402
from ecgnb.trace_reader import TraceNetDigitizer, low_passed  # noqa: E402

OUT = ROOT / "reports" / "benchmarks"
CUTOFFS_HZ = (0.0, 40.0, 50.0, 60.0, 80.0, 100.0)    # 0: off
FS = 500
KIND_NAMES = {"photo": "simulated val photos", "photocopy": "simulated val photocopies",
              "print": "simulated val prints"}


def read_page(reader: TraceNetDigitizer, row, data_dir: Path, options: ReadOptions
              ) -> tuple[np.ndarray, np.ndarray]:
    """``(reading, reference)`` mV of the page of one index row; a refused page reads NaN
    (every lead scores 0 dB)."""
    rel = Path(row.path)
    image, reference, _ = io.load_page(Path(data_dir) / rel.parent, rel.name)
    try:
        return reader.read(image, options).signal, reference
    except EcgnbError:
        return np.full_like(reference, np.nan), reference


def val_pages(folder: Path) -> pd.DataFrame:
    """The index of a folder of simulated pages (``make_photo_pages.py``); exits unless every
    page is of a val-split record (settings are chosen on val pages only)."""
    photos = pd.read_csv(folder / "index.csv")
    if set(photos["split"]) != {"val"}:
        raise SystemExit(f"{folder} holds pages of {sorted(set(photos['split']))}, not only val: "
                         "make it with make_photo_pages.py --split val")
    return photos


def score_pages(reader: TraceNetDigitizer, pages: pd.DataFrame, data_dir: Path, set_of) -> pd.DataFrame:
    """Per page and cutoff: mean aligned / unaligned SNR (dB) over the leads; ``set_of(row)``
    names each page's set."""
    options = ReadOptions(layout="3x4+1", fs=float(FS))
    rows = []
    for row in tqdm(list(pages.itertuples()), desc=str(data_dir.name)):
        raw, reference = read_page(reader, row, data_dir, options)
        for cutoff in CUTOFFS_HZ:
            table = record_metrics(reference, low_passed(raw, FS, cutoff), FS)
            rows.append({"set": set_of(row), "lowpass_hz": cutoff, "page": row.page,
                         "snr_db": table["snr_db"].mean(),
                         "snr_db_unaligned": table["snr_db_unaligned"].mean()})
    return pd.DataFrame(rows)


def summary(per_page: pd.DataFrame, key: str = "lowpass_hz") -> pd.DataFrame:
    """Mean per set and value of ``key`` (a column of ``per_page``), then per value the mean
    over the sets."""
    by_set = per_page.groupby(["set", key]).agg(
        snr_db=("snr_db", "mean"), snr_db_unaligned=("snr_db_unaligned", "mean"),
        pages=("page", "size")).reset_index()
    overall = by_set.groupby(key).agg(
        snr_db=("snr_db", "mean"), snr_db_unaligned=("snr_db_unaligned", "mean"),
        pages=("pages", "sum")).reset_index().assign(set="mean of the sets")
    return pd.concat([by_set, overall], ignore_index=True)[
        ["set", key, "snr_db", "snr_db_unaligned", "pages"]]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="reference")
    ap.add_argument("--photos-folder", type=Path, required=True,
                    help="simulated pages of val-split records (make_photo_pages.py --split val)")
    args = ap.parse_args(argv)
    folder = args.photos_folder
    photos = val_pages(folder)
    reader = TraceNetDigitizer(ink=TraceReadConfig(lowpass_hz=0.0))
    per_page = pd.concat([
        score_pages(reader, evaluate.load_split(args.profile, "val"), paths.data_dir(args.profile),
                    lambda row: f"{args.profile} val"),
        score_pages(reader, photos, folder, lambda row: KIND_NAMES[row.kind]),
    ], ignore_index=True)
    table = summary(per_page)
    report.write_table(table, OUT / "lowpass_val")
    print(table.round(2).to_string())
    means = table[table["set"] == "mean of the sets"].set_index("lowpass_hz")["snr_db"]
    print(f"highest mean of the sets: {means.idxmax():g} Hz ({means.max():.2f} dB); "
          f"the reader's default: {TraceReadConfig().lowpass_hz:g} Hz")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
