"""The ``digitize`` command: images in, one WFDB record, CSV, overlay and JSON per image out.

Argument parsing, the batch loop and writing the outputs live here; reading a page is the
registered digitizer's job (``ecgnb.digitizers``), so every method is run the same way.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from . import digitizers
from . import preprocess as pp
from .errors import EcgnbError
from .io import commit_files, staging_dir, write_json, write_png, write_wfdb
from .leads import LEAD_NAMES
from .reading import Reading, ReadOptions, overlay

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def expand_inputs(inputs: list[Path]) -> list[Path]:
    """Files as given, folders replaced by their images (png/jpg/jpeg/tif, sorted, not recursive)."""
    out: list[Path] = []
    for p in map(Path, inputs):
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES))
        else:
            out.append(p)
    return out


def write_csv(path: Path, signal: np.ndarray, fs: float) -> Path:
    """CSV with ``time_s`` and one column per lead (mV); NaN written as empty cells."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["time_s", *LEAD_NAMES])
        for i, row in enumerate(signal):
            w.writerow([f"{i / fs:.4f}", *("" if np.isnan(v) else f"{v:.4f}" for v in row)])
    return path


def write_outputs(reading: Reading, stem: str, out_dir: Path, source: Path) -> list[Path]:
    """Write ``stem.hea/.dat`` (WFDB, mV), ``stem.csv``, ``stem_overlay.png`` and
    ``stem_digitize.json`` (diagnostics) into ``out_dir``, atomically (staged then renamed)."""
    with staging_dir(out_dir) as tmp:
        staged = write_wfdb(tmp / stem, reading.signal, reading.fs,
                            comments=[f"digitized from {source.name} by ecgnb ({reading.method})"])
        staged.append(write_csv(tmp / f"{stem}.csv", reading.signal, reading.fs))
        staged.append(write_png(tmp / f"{stem}_overlay.png", overlay(reading)))
        staged.append(write_json(tmp / f"{stem}_digitize.json",
                                 {"source": str(source), **reading.diagnostics()}))
        return commit_files(staged, out_dir)


def digitize_files(inputs: list[Path], out_dir: Path, method: str = "classical",
                   layout: str = "3x4+1", fs: float = 500, progress: bool = True,
                   **settings) -> list[dict]:
    """Digitize every image in ``inputs`` (files or folders) into ``out_dir``.

    ``method`` is a name of ``ecgnb.digitizers`` (made once, with ``settings``, for the whole
    batch). Returns one dict per image: ``{"image", "status": "ok" | "failed", "error",
    "outputs", "layout", "layout_confidence", "confidence", "warnings"}``. One image failing
    never stops the batch and leaves no output of its own.
    """
    from tqdm import tqdm

    reader = digitizers.get(method, **settings)
    options = ReadOptions(layout=layout, fs=float(fs))
    out_dir = Path(out_dir)
    report = []
    for path in tqdm(expand_inputs(inputs), desc="digitize", unit="page", disable=not progress):
        entry = {"image": str(path), "status": "failed", "error": None, "outputs": []}
        try:
            reading = reader.read(pp.load_image(path), options)
            files = write_outputs(reading, path.stem, out_dir, path)
            entry.update(status="ok", outputs=[str(f) for f in files], layout=reading.layout.name,
                         layout_confidence=reading.layout.confidence,
                         confidence=reading.confidence, warnings=reading.warnings)
        except (EcgnbError, OSError, ValueError) as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
        report.append(entry)
    return report


def build_parser() -> argparse.ArgumentParser:
    """The ``digitize`` command's argument parser."""
    p = argparse.ArgumentParser(
        prog="ecgnb digitize",
        description="Digitize paper-ECG images into WFDB + CSV signals (mV) with overlay PNGs.")
    p.add_argument("inputs", nargs="+", type=Path, metavar="IMAGE_OR_FOLDER",
                   help="image files (png/jpg/jpeg/tif) or folders of them")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    choices = digitizers.names() + list(digitizers.ALIASES)
    p.add_argument("--method", choices=choices, default="classical",
                   help="registered methods: " + ", ".join(digitizers.names())
                        + " (default classical; aliases: "
                        + ", ".join(f"{a} = {m}" for a, m in digitizers.ALIASES.items()) + ")")
    p.add_argument("--layout", default="3x4+1",
                   help="page layout (a key of ecgnb.layouts.LAYOUTS, or 'auto'); default 3x4+1")
    p.add_argument("--fs", type=float, default=500, help="output sampling rate, Hz (default 500)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run ``ecgnb digitize``; print an error report; return 0 if every image worked, else 1."""
    args = build_parser().parse_args(argv)
    try:
        report = digitize_files(args.inputs, args.out, method=args.method, layout=args.layout,
                                fs=args.fs, progress=not args.no_progress)
    except (EcgnbError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = [r for r in report if r["status"] != "ok"]
    print(f"digitized {len(report) - len(failed)}/{len(report)} images into {args.out}")
    for r in report:
        for w in r.get("warnings") or []:
            print(f"warning: {r['image']}: {w}", file=sys.stderr)
    if not report:
        print("error: no images found in the given inputs", file=sys.stderr)
        return 1
    if failed:
        print("failed images:", file=sys.stderr)
        for r in failed:
            print(f"  {r['image']}: {r['error']}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
