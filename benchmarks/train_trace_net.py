"""Train the per-pixel trace network (``ecgnb.trace_train``) and publish its checkpoint.

    python benchmarks/train_trace_net.py --profile reference --preset reference --publish
    python benchmarks/train_trace_net.py --profile reference --preset photo --publish

    python benchmarks/train_trace_net.py --profile reference --preset styles --publish

(the second fine-tunes the first's network, kept as ``models/trace_net_reference.pt``, with
photographed twins of train pages: ``TraceNetConfig.photo_pages``; the third fine-tunes the
second's, kept as ``models/trace_net_photo.pt``, with train records printed in random styles
as well: ``TraceNetConfig.style_pages``)

reads the train and val pages of ``data/<profile>`` (built by notebook 01; ``ECGNB_OUTPUT_ROOT``
may point at another tree holding them), trains in ``models/<profile>/trace_net/`` (resumable:
run the same command again to continue) and, with ``--publish``, copies its best checkpoint
(weights and settings only) to ``models/trace_net.pt``, which ``--method trace_net`` loads.
"""
from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ecgnb import paths  # noqa: E402
from ecgnb.trace_net import DEFAULT_CHECKPOINT, preset  # noqa: E402
from ecgnb.trace_train import load_pages, train_trace_net  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="reference", help="dataset whose train/val pages are used")
    ap.add_argument("--preset", default="reference", help="training size (TRACE_NET_PRESETS)")
    ap.add_argument("--run-dir", type=Path, default=None, help="default models/<profile>/trace_net")
    ap.add_argument("--train-limit", type=int, default=None, help="use only the first N train pages")
    ap.add_argument("--budget-s", type=float, default=None,
                    help="wall-time budget of this call, s (default: the preset's)")
    ap.add_argument("--fresh", action="store_true", help="start over instead of resuming")
    ap.add_argument("--publish", action="store_true", help=f"copy best.pt to {DEFAULT_CHECKPOINT}")
    args = ap.parse_args(argv)
    cfg = preset(args.preset)
    if args.budget_s is not None:       # a runtime setting: a resume may change it
        cfg = dataclasses.replace(cfg, time_budget_s=args.budget_s)
    run_dir = args.run_dir or paths.models_dir(args.profile) / "trace_net"
    t0 = time.monotonic()
    train = load_pages(args.profile, "train", args.train_limit, progress=True, soft=cfg.soft_target,
                       photos=cfg.photo_pages, seed=cfg.seed, styles=cfg.style_pages,
                       style_photo_share=cfg.style_photo_share)
    val = load_pages(args.profile, "val", cfg.val_pages, progress=True, soft=cfg.soft_target)
    print(f"{len(train)} train and {len(val)} val pages loaded in {time.monotonic() - t0:.0f} s")
    row = train_trace_net(train, val, cfg, run_dir, resume=not args.fresh)
    print(f"finished at step {row.get('step')}: val F1 {row.get('val_f1', float('nan')):.3f}")
    if args.publish:
        DEFAULT_CHECKPOINT.parent.mkdir(parents=True, exist_ok=True)
        tmp = DEFAULT_CHECKPOINT.with_suffix(".tmp")
        shutil.copyfile(run_dir / "best.pt", tmp)
        tmp.replace(DEFAULT_CHECKPOINT)
        print(f"published {run_dir / 'best.pt'} -> {DEFAULT_CHECKPOINT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
