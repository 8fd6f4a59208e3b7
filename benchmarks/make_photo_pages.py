"""Write phone photos (and black-and-white copies) of a profile's test records as a page folder.

Usage::

    python benchmarks/make_photo_pages.py --profile quick --n 20 [--out data/quick-photos]
        [--split test|val] [--preset phone|scan] [--no-bw] [--no-styles] [--seed 0]

Each page is a test-split record of the profile (``--split val``: a val-split one, for choosing
settings without looking at the test pages), cycled when there are fewer than ``--n``,
printed in a random style (``ecgnb.render.random_style``), then photographed
(``ecgnb.photo.photograph``); with B/W on, the same print is also photocopied
(``ecgnb.photo.photocopy``) and the colour print itself kept (kind ``print``), so that a B/W
page can be scored against its colour version. Pages are stored as the study's own (``ecgnb.io.save_page``: PNG,
WFDB truth signal with NaN where not drawn, JSON truth with the photo map), with an ``index.csv``
that ``ecgnb.evaluate.score_dataset`` reads::

    page, record, origin, split, severity, dpi, layout, path, kind, grid_colour, seconds

``severity`` is 1.0 (not a clean page), ``dpi`` the photo's mean scale over the page, ``kind``
``photo``, ``photocopy`` or ``print``, ``seconds`` the time to make and save it (a photo's includes
rendering the print). ``config.json`` is the resolved profile (as in ``data/<profile>/``);
``photo_config.json`` the photo, copy and style settings, the command and the timings. The folder
is built beside the old one and swapped in at the end. Runs on one core (~20 pages in under
2 minutes at 200 dpi).
"""
from __future__ import annotations

import os

# Pin every thread pool to one thread before numpy/cv2 load: a benchmark of one core.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import dataclasses
import shutil
import sys
import time
from pathlib import Path

import cv2
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ecgnb import io, paths  # noqa: E402
from ecgnb.config import CopyConfig, StyleConfig, StyleRangeConfig, get_profile  # noqa: E402
from ecgnb.dataset import page_rng, split_records, swap_in  # noqa: E402
from ecgnb.photo import PRESETS, photocopy, photograph  # noqa: E402
from ecgnb.render import masked_signal, random_style, render_page  # noqa: E402


def make_pages(profile, records: list, n: int, out_dir: Path, preset: str, bw: bool,
               styles: bool, seed: int, split: str = "test") -> pd.DataFrame:
    """Render, photograph (and copy) ``n`` pages of ``split`` records into ``out_dir/<split>``;
    return the index rows."""
    photo_cfg, copy_cfg, rows = PRESETS[preset], CopyConfig(), []
    for k in range(n):
        record = records[k % len(records)]
        name = f"{record.name}_photo{k:03d}"
        t0 = time.perf_counter()
        rng = page_rng(seed, name)
        style = random_style(rng, StyleRangeConfig()) if styles else StyleConfig()
        image, truth = render_page(record.signal, record.fs, profile.paper, rng,
                                   header={"id": record.name}, style=style)
        signal = masked_signal(record.signal, truth)
        jobs = [("photo", name, lambda: photograph(image, truth, photo_cfg, rng))]
        if bw:
            copy_name = f"{record.name}_copy{k:03d}"
            copy_rng = page_rng(seed, copy_name)
            jobs.append(("photocopy", copy_name,
                         lambda: photocopy(image, truth, copy_cfg, copy_rng)))
            # The colour print the copy was made from: B/W is judged against it.
            jobs.append(("print", f"{record.name}_print{k:03d}", lambda: (image, truth)))
        for kind, page, make in jobs:
            out, out_truth = make()
            out_truth["record"], out_truth["severity"] = record.name, 1.0
            io.save_page(out_dir / split, page, out, signal, record.fs, out_truth)
            rows.append(dict(page=page, record=record.name, origin=record.origin, split=split,
                             severity=1.0, dpi=out_truth["dpi"], layout=profile.paper.layout,
                             path=f"{split}/{page}", kind=kind, grid_colour=style.grid_colour,
                             seconds=round(time.perf_counter() - t0, 3)))
            t0 = time.perf_counter()
        made = ", ".join(f"{r['kind']} {r['seconds']:.2f} s" for r in rows[-len(jobs):])
        print(f"{k + 1}/{n} {name}: {made}", file=sys.stderr)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick", help="profile whose records are used")
    ap.add_argument("--split", choices=("test", "val"), default="test",
                    help="split the records come from (val: for choosing settings)")
    ap.add_argument("--n", type=int, default=20, help="photos to write (and as many B/W copies)")
    ap.add_argument("--out", type=Path, help="folder (default data/<profile>-photos)")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="phone")
    ap.add_argument("--no-bw", action="store_true", help="no black-and-white copies")
    ap.add_argument("--no-styles", action="store_true", help="the study's print style only")
    ap.add_argument("--seed", type=int, help="seed of the pages (default: the profile's)")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    profile = dataclasses.replace(get_profile(args.profile),
                                  data=dataclasses.replace(get_profile(args.profile).data,
                                                           show_progress=False))
    seed = profile.seed if args.seed is None else args.seed
    out_dir = Path(args.out or paths.data_dir(f"{args.profile}-photos")).resolve()
    start = time.perf_counter()
    records = split_records(profile, args.split, log=lambda msg: print(msg, file=sys.stderr))
    if not records:
        raise SystemExit(f"profile {args.profile} has no {args.split} records")
    sources_s = time.perf_counter() - start
    work = out_dir.with_name(out_dir.name + ".building")
    shutil.rmtree(work, ignore_errors=True)
    index = make_pages(profile, records, args.n, work, args.preset, not args.no_bw,
                       not args.no_styles, seed, args.split)
    index.to_csv(work / "index.csv", index=False)
    io.write_json(work / "config.json", profile.to_dict())
    total_s = time.perf_counter() - start
    io.write_json(work / "photo_config.json", {
        "command": " ".join(["benchmarks/make_photo_pages.py"]
                            + (argv if argv is not None else sys.argv[1:])),
        "profile": args.profile, "split": args.split, "seed": seed, "preset": args.preset,
        "photo": PRESETS[args.preset].to_dict(), "copy": CopyConfig().to_dict(),
        "styles": None if args.no_styles else StyleRangeConfig().to_dict(),
        "pages": len(index), "sources_s": round(sources_s, 2), "total_s": round(total_s, 2),
        "seconds_per_page": index.groupby("kind")["seconds"].mean().round(3).to_dict()})
    swap_in(work, out_dir)
    print(f"{len(index)} pages in {out_dir} ({total_s:.1f} s, {sources_s:.1f} s of it loading "
          f"records); per page: {index.groupby('kind')['seconds'].mean().round(2).to_dict()}")
    return index


if __name__ == "__main__":
    main()
