"""Render speed on ONE core: clean pages/s, pages/s with every artefact at severity 1, PNG encode.

Usage::

    python benchmarks/bench_render.py --pages 20 --dpi 200 [--out reports/benchmarks/render.json]

Signals come from ``ecgnb.synth.synth_record`` (10 s, 500 Hz); ``--signal sines`` uses a fixed
sum-of-sines 12-lead signal instead, so the benchmark does not depend on the synthesizer.
"""
from __future__ import annotations

import os

# Pin every thread pool to one thread before numpy/cv2 load: the target is single-core speed.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ecgnb.augment import augment_page  # noqa: E402
from ecgnb.config import PaperConfig, SignalConfig  # noqa: E402
from ecgnb.render import render_page  # noqa: E402


def pin_one_core() -> str:
    """Limit cv2, torch (if already loaded) and this process to a single core; say what was done."""
    cv2.setNumThreads(1)
    if "torch" in sys.modules:              # importing torch only to pin it would cost seconds
        sys.modules["torch"].set_num_threads(1)
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"cpu {core}"
    return "threads=1 (no affinity call on this OS)"


def sines_signal(fs: int = 500, seconds: float = 10.0) -> np.ndarray:
    """Deterministic ``(n, 12)`` mV test signal: a slow wave plus a sharp 'QRS-like' harmonic."""
    t = np.arange(int(fs * seconds)) / fs
    return np.stack([0.5 * np.sin(2 * np.pi * 1.2 * t + k)
                     + 0.8 * np.sin(2 * np.pi * 1.2 * t + 0.3 * k) ** 15
                     for k in range(12)], axis=1)


def make_signals(kind: str, n: int) -> list[np.ndarray]:
    """``n`` signals at 500 Hz from the synthesizer, or copies of the sum-of-sines signal."""
    if kind == "synth":
        from ecgnb.synth import synth_record
        return [synth_record(np.random.default_rng(i), SignalConfig(fs=500))[0] for i in range(n)]
    return [sines_signal()] * n


def time_pages(signals, paper: PaperConfig, severity: float) -> tuple[float, list]:
    """Seconds per page (render + augment) and the pages made."""
    pages = []
    t0 = time.perf_counter()
    for i, sig in enumerate(signals):
        rng = np.random.default_rng(i)
        image, truth = render_page(sig, 500, paper, rng)
        if severity > 0:
            image, truth = augment_page(image, truth, severity, rng)
        pages.append(image)
    return (time.perf_counter() - t0) / len(signals), pages


def time_png(pages) -> float:
    """Seconds per page to PNG-encode (cv2 default compression level)."""
    t0 = time.perf_counter()
    for image in pages:
        ok, _ = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        assert ok, "PNG encode failed"
    return (time.perf_counter() - t0) / len(pages)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=20, help="pages per measurement")
    ap.add_argument("--dpi", type=int, default=200, help="page resolution, px per inch")
    ap.add_argument("--layout", default="3x4+1", help="key of ecgnb.layouts.LAYOUTS")
    ap.add_argument("--signal", choices=("synth", "sines"), default="synth")
    ap.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = ap.parse_args(argv)

    pinned = pin_one_core()
    paper = PaperConfig(dpi=args.dpi, layout=args.layout)
    signals = make_signals(args.signal, args.pages)
    time_pages(signals[:1], paper, 1.0)                      # warm-up: grid cache, imports
    clean_s, clean_pages = time_pages(signals, paper, 0.0)
    aug_s, aug_pages = time_pages(signals, paper, 1.0)
    png_s = time_png(clean_pages + aug_pages)

    result = {"pages": args.pages, "dpi": args.dpi, "layout": args.layout, "signal": args.signal,
              "image_size": list(clean_pages[0].shape[:2]), "pinned": pinned,
              "clean_pages_per_s": 1.0 / clean_s, "clean_ms_per_page": 1e3 * clean_s,
              "augmented_pages_per_s": 1.0 / aug_s, "augmented_ms_per_page": 1e3 * aug_s,
              "png_encode_ms_per_page": 1e3 * png_s,
              "python": platform.python_version(), "opencv": cv2.__version__,
              "numpy": np.__version__, "machine": platform.machine()}
    print(f"render benchmark: {args.pages} pages, {args.dpi} dpi, {args.layout}, "
          f"{result['image_size'][1]}x{result['image_size'][0]} px, {pinned}")
    print(f"{'step':<34}{'ms/page':>10}{'pages/s':>10}")
    for name, sec in (("render, clean", clean_s), ("render + all artefacts, sev 1", aug_s),
                      ("PNG encode (cv2, separate)", png_s)):
        print(f"{name:<34}{1e3 * sec:>10.1f}{1.0 / sec:>10.2f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=2) + "\n")
        tmp.replace(args.out)                                # atomic: no half-written JSON
        print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
