"""Benchmark a digitizer: time per page on one core, and SNR per lead.

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_digitize.py            # timing + SNR on the eik-dev pages
    .venv/bin/python benchmarks/bench_digitize.py --render 8 # also 8 pages of our own renderer
                                                             # at severities 0, 0.5 and 1
    .venv/bin/python benchmarks/bench_digitize.py --method model  # the learned model
                                                             # (models/default.pt)

Timing pins OpenCV, OpenMP and BLAS to one thread (set before numpy/cv2 are imported), so the
number is the cost of one page on one core. SNR uses ``ecgnb.metrics`` (Challenge-2024 SNR,
reported unaligned = official, and aligned = +-0.5 s / +-1 mV, see that module).
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported: one core, comparable timings

import argparse  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ecgnb import digitizers, metrics  # noqa: E402
from ecgnb.leads import LEAD_INDEX, LEAD_NAMES, canonical_lead  # noqa: E402
from ecgnb.paths import EIK_DEV, REAL_ECG  # noqa: E402
from ecgnb.preprocess import load_image  # noqa: E402

cv2.setNumThreads(1)
DIGITIZE = None   # image -> Reading of the registered method that --method names (set in main)


def eik_truth(json_path: Path) -> np.ndarray:
    """Reference ``(5000, 12)`` mV of an eik-dev page, NaN where the page shows no sample.

    The record is found by name in ``REAL_ECG/*/``; the drawn sample ranges come from the
    ECG-Image-Kit annotation (``start_sample`` / ``end_sample`` per lead).
    """
    import wfdb

    record = json_path.name.split("-")[0]
    hea = next(REAL_ECG.glob(f"*/{record}.hea"))
    rec = wfdb.rdrecord(str(hea.with_suffix("")))
    sig = np.asarray(rec.p_signal, dtype=float)
    order = [LEAD_INDEX[canonical_lead(n)] for n in rec.sig_name]
    full = np.empty_like(sig)
    full[:, order] = sig
    ann = json.load(gzip.open(json_path))
    drawn = np.zeros(full.shape, dtype=bool)
    for lead in ann["leads"]:
        drawn[lead["start_sample"]:lead["end_sample"], LEAD_INDEX[canonical_lead(lead["lead_name"])]] = True
    full[~drawn] = np.nan
    return full


def score(reference: np.ndarray, estimate: np.ndarray, fs: float) -> pd.DataFrame:
    return metrics.record_metrics(reference, estimate, fs)


def run_eik(limit: int | None = None) -> tuple[dict[str, pd.DataFrame], list[float]]:
    """Digitize the eik-dev pages; return per-record metric tables and seconds per page."""
    frames, times = {}, []
    for jpg in sorted(EIK_DEV.glob("*.jpg"))[:limit]:
        image = load_image(jpg)
        t = time.perf_counter()
        res = DIGITIZE(image)
        times.append(time.perf_counter() - t)
        frames[jpg.stem] = score(eik_truth(jpg.with_name(jpg.stem + ".json.gz")), res.signal, 500)
    return frames, times


def run_render(n_pages: int, severities=(0.0, 0.5, 1.0)
               ) -> tuple[dict[float, dict[str, pd.DataFrame]], dict[float, list[float]]]:
    """Render ``n_pages`` real records (none of the hidden holdout's) with ``ecgnb.render``
    at 200 dpi (+ ``augment``) and digitize them; per severity, the per-record metric tables
    and the seconds per page."""
    from ecgnb.augment import augment_page
    from ecgnb.config import PaperConfig
    from ecgnb.render import masked_signal, render_page
    from ecgnb.sources import holdout_names
    import wfdb

    held = holdout_names()
    heas = [h for h in sorted(REAL_ECG.glob("*/*.hea")) if h.stem not in held]
    out: dict[float, dict[str, pd.DataFrame]] = {s: {} for s in severities}
    times: dict[float, list[float]] = {s: [] for s in severities}
    for k, hea in enumerate(heas[:n_pages]):
        rec = wfdb.rdrecord(str(hea.with_suffix("")))
        if rec.fs != 500:
            continue
        order = [LEAD_INDEX[canonical_lead(n)] for n in rec.sig_name]
        sig = np.empty_like(rec.p_signal)
        sig[:, order] = rec.p_signal
        rng = np.random.default_rng(k)
        image, truth = render_page(sig, 500, PaperConfig(), rng)
        ref = masked_signal(sig, truth)
        for sev in severities:
            img = image if sev == 0 else augment_page(image, truth, sev, np.random.default_rng(100 + k))[0]
            t = time.perf_counter()
            try:
                est = DIGITIZE(img).signal
            except Exception as exc:  # noqa: BLE001 - a benchmark reports failures, never stops
                print(f"  {hea.stem} severity {sev}: {type(exc).__name__}: {exc}")
                est = np.full_like(ref, np.nan)
            times[sev].append(time.perf_counter() - t)
            out[sev][hea.stem] = score(ref, est, 500)
    return out, times


def table(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per-lead means (``metrics.summarize``) plus ``all_finite``: the mean without +-inf leads.

    A lead whose reference is all zero (a flat lead in the source record) scores -inf for any
    non-zero output, which makes every plain mean -inf; ``all_finite`` shows the rest.
    """
    cols = ["snr_db", "snr_db_unaligned", "mae", "pearson_r"]
    out = metrics.summarize(frames)[cols]
    long = pd.concat(frames.values())[cols].replace([np.inf, -np.inf], np.nan)
    out.loc["all_finite"] = long.mean()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="only the first N eik-dev pages")
    ap.add_argument("--render", type=int, default=0, help="also score N pages of ecgnb.render")
    ap.add_argument("--method", choices=digitizers.names() + list(digitizers.ALIASES),
                    default="classical", help="a registered method (ecgnb.digitizers); the crop "
                    "model reads models/default.pt")
    args = ap.parse_args(argv)
    global DIGITIZE
    import torch

    torch.set_num_threads(1)   # one core, whichever method
    DIGITIZE = digitizers.get(args.method).read   # loads a checkpoint once, before timing
    print(f"method: {digitizers.canonical(args.method)}")
    pd.set_option("display.width", 120)
    if EIK_DEV.exists():
        # One untimed page first: torch and OpenCV pay one-off set-up costs on their first call.
        DIGITIZE(load_image(sorted(EIK_DEV.glob("*.jpg"))[0]))
        frames, times = run_eik(args.limit)
        print(f"eik-dev: {len(times)} pages, {np.mean(times):.2f} s/page mean, "
              f"{np.median(times):.2f} median, {np.max(times):.2f} s max (one core, after one "
              "untimed warm-up page)")
        print("s per page:", " ".join(f"{t:.2f}" for t in times))
        print(table(frames).round(2).to_string())
        rec = {k: float(np.nanmean(v['snr_db'])) for k, v in frames.items()}
        print("per record mean snr_db:", {k: round(v, 2) for k, v in rec.items()})
    if args.render:
        results, times = run_render(args.render)
        for sev, frames in results.items():
            print(f"\nrender severity {sev}: {len(frames)} pages of 200 dpi, "
                  f"{np.mean(times[sev]):.2f} s/page mean, {np.median(times[sev]):.2f} median, "
                  f"{np.max(times[sev]):.2f} s max (one core)")
            print(table(frames).round(2).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
