"""Trace-network checkpoints read by the same reader, on our own sets and the shared ones.

    .venv/bin/python benchmarks/bench_trace_checkpoints.py
        [--checkpoints models/trace_net_reference.pt models/trace_net_photo.pt models/trace_net.pt]
        [--photos-folder <tree>/data/quick-photos]

Reads with ``--method trace_net`` and each checkpoint: the reference val split (where settings
are chosen), the simulated photos, photocopies and prints of ``make_photo_pages.py`` (quick
test-split records; skipped where the folder is absent), eik-dev and photos-dev (measurement
only). Writes ``reports/benchmarks/trace_checkpoints.{csv,md}``: mean aligned and unaligned SNR
(dB) over leads and pages, and refused pages, per checkpoint and set. A refused page scores 0 dB.
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
from ecgnb.config import get_profile  # noqa: E402

OUT = ROOT / "reports" / "benchmarks"
DEFAULT_CHECKPOINTS = ("models/trace_net_reference.pt", "models/trace_net_photo.pt", "models/trace_net.pt")
KINDS = {"photo": "photos", "photocopy": "photocopies", "print": "prints"}   # set names


def summary(table: pd.DataFrame, group: str | None = None) -> pd.DataFrame:
    """Mean aligned / unaligned dB and refused pages of a long score table (per ``group``)."""
    finite = table.replace([np.inf, -np.inf], np.nan)
    by = [group] if group else (lambda _: "all")
    out = finite.groupby(by)[["snr_db", "snr_db_unaligned"]].mean()
    refused = finite.groupby(["page"] + ([group] if group else []))["error"].first().fillna("").ne("")
    out["pages"] = finite.groupby(by)["page"].nunique()
    out["refused"] = refused.groupby(level=group).sum() if group else int(refused.sum())
    return out


def one_checkpoint(checkpoint: str, photos_folder: Path | None) -> pd.DataFrame:
    """Rows ``set, snr_db, snr_db_unaligned, pages, refused`` of one checkpoint."""
    digitize = evaluate.method("trace_net", profile=get_profile("reference"),
                               checkpoint=str(ROOT / checkpoint))
    val = evaluate.score_dataset(digitize, evaluate.load_split("reference", "val"),
                                 paths.data_dir("reference"), 500, desc=f"{checkpoint} val")
    parts = {"reference val": summary(val)}
    if photos_folder is not None and (photos_folder / "index.csv").exists():
        index = pd.read_csv(photos_folder / "index.csv")
        sim = evaluate.score_dataset(digitize, index, photos_folder, 500, desc=f"{checkpoint} photos")
        sim = sim.merge(index[["page", "kind"]], on="page")
        for kind, row in summary(sim, "kind").iterrows():
            parts[f"simulated {KINDS.get(kind, kind)}"] = row.to_frame().T
    for name in ("eik-dev", "photos-dev"):
        parts[name] = summary(evaluate.score_named_set(name, digitize))
    rows = pd.concat(parts.values(), keys=parts.keys()).droplevel(1)
    return rows.rename_axis("set").reset_index().assign(checkpoint=checkpoint)


def tidy(table: pd.DataFrame) -> pd.DataFrame:
    """The table's columns in order, counts as integers, sorted by set and checkpoint."""
    table = table[["set", "checkpoint", "snr_db", "snr_db_unaligned", "pages", "refused"]]
    table = table.astype({"pages": int, "refused": int})
    return table.sort_values(["set", "checkpoint"], kind="stable", ignore_index=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", nargs="+", default=list(DEFAULT_CHECKPOINTS))
    ap.add_argument("--photos-folder", type=Path, default=paths.data_dir("quick-photos"))
    args = ap.parse_args(argv)
    table = pd.concat([one_checkpoint(c, args.photos_folder) for c in args.checkpoints],
                      ignore_index=True)
    table = tidy(table)
    report.write_table(table, OUT / "trace_checkpoints")
    print(table.round(2).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
