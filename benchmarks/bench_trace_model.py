"""The multimodal model on the trace network's front, and its ablations, on the test split and
the shared external sets.

    ECGNB_OUTPUT_ROOT=... python benchmarks/bench_trace_model.py --profile reference

scores, on ``<profile>`` test, eik-dev and photos-dev:

* ``trace_net``: the front alone (the per-pixel trace network's reader, the command's default);
* every variant of ``ecgnb.train.TRACE_VARIANTS`` trained by ``benchmarks/train_trace_model.py``
  (``models/<profile>/trace_model/<variant>/best.pt``; ``trace_multimodal`` is what
  ``models/trace_model.pt`` publishes).

The front reads each page once; every model reads the crops of that reading (so the variants
differ only in the model). Writes ``reports/benchmarks/trace_model.{csv,md}`` (one row per set
and method: mean aligned and unaligned SNR, dB; MAE, mV; pages; refused pages; seconds per page,
the front's reading included; the epochs each model was trained for) and ``trace_model_per_page.{csv,md}``. The classical digitizer and
today's crop model on the same sets are in ``external.md``; notebook 04's table has their
ablations on the classical front.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ecgnb import config, evaluate, panels, paths, report, train  # noqa: E402
from ecgnb.errors import EcgnbError, MissingInputError  # noqa: E402
from ecgnb.model import TraceModelDigitizer  # noqa: E402
from ecgnb.reading import ReadOptions  # noqa: E402

OUT = ROOT / "reports" / "benchmarks"


class SharedFront:
    """The trace network's analysis of each page, made once and kept for the models (with its
    error, re-raised to each of them, when the front refuses the page) and the seconds it took."""

    def __init__(self, crop, options: ReadOptions):
        self.crop, self.options, self.pages, self.seconds = crop, options, {}, {}

    def __call__(self, image):
        key = hashlib.sha1(image.tobytes()).hexdigest() + str(image.shape)
        if key not in self.pages:
            start = time.perf_counter()
            try:
                self.pages[key] = panels.analyse_for(image, self.options.layout,
                                                     self.options.duration_s, self.crop)
            except EcgnbError as exc:
                self.pages[key] = exc
            self.seconds[key] = time.perf_counter() - start
        found = self.pages[key]
        if isinstance(found, Exception):
            raise found
        return found

    def clear(self) -> None:
        self.pages, self.seconds = {}, {}


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (set, method): means over (page, lead), refused pages, seconds per page (a
    model's own plus the front's reading of the page, which ``trace_net``'s row times)."""
    out = evaluate.method_summary(table, ["set", "method"])[["snr_db", "snr_db_unaligned", "mae", "pages"]]
    per_page = table.groupby(["set", "method", "page"])
    out["refused"] = per_page["error"].first().ne("").groupby(["set", "method"]).sum()
    secs = per_page["seconds"].first().reset_index()
    front = secs[secs["method"] == "trace_net"].set_index(["set", "page"])["seconds"]
    shared = front.reindex(pd.MultiIndex.from_frame(secs[["set", "page"]])).to_numpy()
    secs["seconds"] += np.where(secs["method"] != "trace_net", shared, 0.0)
    out["seconds_per_page"] = secs.groupby(["set", "method"])["seconds"].mean()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="reference", help="test split and trained variants of this profile")
    ap.add_argument("--variants", nargs="*", default=list(train.TRACE_VARIANTS))
    ap.add_argument("--sets", nargs="*", default=["test", "eik-dev", "photos-dev"])
    ap.add_argument("--name", default="trace_model", help="table name under reports/benchmarks")
    args = ap.parse_args(argv)
    profile = config.get_profile(args.profile)
    run_root = paths.models_dir(profile.name) / "trace_model"
    models = {v: TraceModelDigitizer(run_root / v / "best.pt") for v in args.variants}
    options = ReadOptions(layout="3x4+1", fs=500)
    front = SharedFront(next(iter(models.values())).crop_cfg, options)
    methods = {"trace_net": lambda image: front(image).classical,
               **{v: (lambda image, m=m: m.read_analysis(front(image), options)) for v, m in models.items()}}
    frames = []
    for set_name in args.sets:
        label = f"{profile.name} test" if set_name == "test" else set_name
        try:
            for method, digitize in methods.items():   # trace_net first: it runs the front
                table = evaluate.score_named_set(set_name, digitize, profile.name)
                frames.append(table.assign(set=label, method=method))
        except MissingInputError as exc:
            print(f"{label} skipped: {exc}")
        front.clear()
    if not frames:
        sys.exit("nothing scored")
    table = pd.concat(frames, ignore_index=True)
    summary = summarize(table)
    for v in models:      # how long each variant trained, from its own checkpoint
        ckpt = torch.load(run_root / v / "best.pt", map_location="cpu", weights_only=True)
        summary.loc[summary.index.get_level_values("method") == v, "epochs"] = ckpt["train_cfg"]["epochs"]
    report.write_set_scores(summary, table, OUT / args.name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
