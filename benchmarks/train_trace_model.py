"""Train the multimodal model on the trace network's front and publish it (``--method trace_model``).

    python benchmarks/train_trace_model.py --profile reference --publish

The crops of the train and val splits of ``data/<profile>`` (notebook 01; ``ECGNB_OUTPUT_ROOT``
may point at another tree holding them) are cut by the per-pixel trace network's reader
(``CropConfig.front = "trace_net"``: its trace probability and its reading of the trace, cached
in ``data/<profile>/panels_tracenet_<split>.npz``). Then the variants of ``ecgnb.train``'s
``TRACE_VARIANTS`` train with the profile's model and training settings, each in
``models/<profile>/trace_model/<variant>/`` (resumable: the same command continues them;
several ``--variants`` may run as separate processes at once):

* ``trace_multimodal``: the paper's design (image and signal encoders, one latent, one decoder);
* ``trace_image_only``: the ablation without the signal encoder;
* ``trace_no_align``: both encoders, but the image latent is not pulled to the signal latent.

``--publish`` copies the best ``trace_multimodal`` checkpoint (weights and settings only) to
``models/trace_model.pt``. ``benchmarks/bench_trace_model.py`` scores them all.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ecgnb import config, panels, paths, train  # noqa: E402
from ecgnb.model import TRACE_MODEL_CHECKPOINT, publish_checkpoint  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="reference", help="dataset and settings (config.PROFILES)")
    ap.add_argument("--variants", nargs="*", default=list(train.TRACE_VARIANTS),
                    help=f"variants to train (default {' '.join(train.TRACE_VARIANTS)})")
    ap.add_argument("--budget-s", type=float, default=None, help="wall-time budget per variant, s")
    ap.add_argument("--epochs", type=int, default=None,
                    help="epochs (the learning-rate schedule spans them; default: the profile's)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: the profile's)")
    ap.add_argument("--workers", type=int, default=2, help="processes cutting the crops")
    ap.add_argument("--publish", action="store_true",
                    help=f"copy trace_multimodal's best.pt to {TRACE_MODEL_CHECKPOINT}")
    args = ap.parse_args(argv)
    profile = config.get_profile(args.profile)
    train_cfg = dataclasses.replace(profile.train, **{k: v for k, v in
                                                      (("epochs", args.epochs), ("threads", args.threads))
                                                      if v is not None})
    crop = dataclasses.replace(profile.crop, front="trace_net")
    arrays = tuple(panels.build_panel_arrays(profile.name, split, crop, workers=args.workers)
                   for split in ("train", "val"))
    print(f"crops: train {arrays[0][0].shape[0]}, val {arrays[1][0].shape[0]}", flush=True)
    run_root = paths.models_dir(profile.name) / "trace_model"
    summaries = train.train_variants(profile.model, train_cfg, *arrays, run_root, args.variants,
                                     time_budget_s=args.budget_s)
    for name, s in summaries.items():
        print(f"{name}: best val crop SNR {s['best_val_snr_db']:.2f} dB at epoch {s['best_epoch']}, "
              f"{s['epochs_run']} epochs, {s['seconds']:.0f} s", flush=True)
    if args.publish:
        if "trace_multimodal" not in summaries:
            sys.exit("--publish needs the trace_multimodal variant")
        target = publish_checkpoint(run_root / "trace_multimodal" / "best.pt", TRACE_MODEL_CHECKPOINT)
        print(f"published {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
