"""The ``digitize`` command: images and PDFs in; one WFDB record, CSV, overlay and JSON per page out.

Everything is checked before the first page is read (options, the output folder, the method and
its checkpoint, every page's output name); then each page is loaded (``ecgnb.inputs``), read the
right way up by the registered digitizer (``ecgnb.orient``, ``ecgnb.digitizers``), judged, and
its five files moved into place all together or not at all (``ecgnb.io.commit_files``).

Exit statuses (also in the README):

- 0: every page was read, without a warning;
- 3: every page was written, some with warnings (printed as ``warning: <page>: ...``);
- 1: some page failed or was refused (nothing written for it); the others were written;
- 2: bad options, or nothing to read; nothing was written;
- 130 / 143: interrupted by SIGINT / SIGTERM; the pages done are complete, the rest not begun.
"""
from __future__ import annotations

import argparse
import csv
import re
import signal
import sys
import traceback
import unicodedata
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from . import digitizers, orient
from . import inputs as page_inputs
from .errors import EcgnbError
from .io import (clean_stale_staging, commit_files, deferred_signals, staging_dir, write_json,
                 write_png, write_wfdb)
from .layouts import LAYOUTS
from .leads import LEAD_NAMES
from .reading import Reading, ReadOptions, overlay

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_WARNINGS = 0, 1, 2, 3
FS_RANGE_HZ = (1.0, 10_000.0)       # Hz: output rates accepted by --fs
PDF_DPI_RANGE = (50.0, 1200.0)      # dpi accepted by --pdf-dpi
DOUBT_CONFIDENCE = 0.5              # a reading less confident than this is flagged
CONSISTENCY_MIN = 0.5               # limb leads less consistent than this (orient) are flagged
MIN_LEADS_READ = 6                  # a page with fewer leads read than this is refused, and
                                    # one with no grid found and limb leads disagreeing
ROTATE_CHOICES = ("auto", "0", "90", "180", "270")


class OptionError(EcgnbError, ValueError):
    """An option or input of the command is unusable; found before the first page."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM during a batch; ``report`` holds the pages done (complete on disk)."""

    def __init__(self, signum: int, report: list[dict] | None = None, total: int = 0):
        super().__init__(signal.Signals(signum).name)
        self.signum, self.report, self.total = signum, report or [], total


# --------------------------------------------------------------------------------------------
# Messages in command-line terms
# --------------------------------------------------------------------------------------------

_PY_SETTING = re.compile(r"\b(layout|fs|method|checkpoint|pdf_dpi|rotate)="
                         r"(?:'([^']*)'|\"([^\"]*)\"|(\.\.\.)|([\w.+-]*))")


def cli_terms(message: str) -> str:
    """``message`` with Python settings as options (``layout='auto'`` -> ``--layout auto``,
    ``checkpoint=...`` -> ``--checkpoint PATH``), on one line."""
    def option(m: re.Match) -> str:
        value = m.group(2) or m.group(3) or m.group(5) or ("PATH" if m.group(4) else "")
        return f"--{m.group(1).replace('_', '-')} {value}".rstrip()

    return "; ".join(ln.strip() for ln in _PY_SETTING.sub(option, message).splitlines() if ln.strip())


def describe(exc: BaseException) -> str:
    """One line for a page's failure: our errors say what to do; others are marked as bugs."""
    if isinstance(exc, (EcgnbError, OSError)):
        return cli_terms(str(exc))
    return f"internal error, please report it: {type(exc).__name__}: {cli_terms(str(exc))}"


# --------------------------------------------------------------------------------------------
# Checks before the first page
# --------------------------------------------------------------------------------------------

def check_options(layout: str = "3x4+1", fs: float = 500, pdf_dpi: float = page_inputs.PDF_DPI,
                  rotate: str | int = "auto") -> ReadOptions:
    """The ``ReadOptions`` of the batch; ``OptionError`` naming the option when one is unusable."""
    try:
        fs = float(fs)
    except (TypeError, ValueError):
        raise OptionError(f"--fs must be a number of Hz, got {fs!r}") from None
    if not (np.isfinite(fs) and FS_RANGE_HZ[0] <= fs <= FS_RANGE_HZ[1]):
        raise OptionError(f"--fs must be a sampling rate from {FS_RANGE_HZ[0]:g} to "
                          f"{FS_RANGE_HZ[1]:g} Hz, got {fs:g}")
    if layout != "auto" and layout not in LAYOUTS:
        raise OptionError(f"unknown --layout {layout!r}; known: {', '.join(LAYOUTS)}, "
                          "or auto (try each and keep the best)")
    try:
        dpi = float(pdf_dpi)
    except (TypeError, ValueError):
        dpi = float("nan")
    if not (np.isfinite(dpi) and PDF_DPI_RANGE[0] <= dpi <= PDF_DPI_RANGE[1]):
        raise OptionError(f"--pdf-dpi must be from {PDF_DPI_RANGE[0]:g} to {PDF_DPI_RANGE[1]:g}, "
                          f"got {pdf_dpi}")
    if str(rotate) not in ROTATE_CHOICES:
        raise OptionError(f"--rotate must be one of {', '.join(ROTATE_CHOICES)}, got {rotate!r}")
    return ReadOptions(layout=layout, fs=fs)


def prepare_out_dir(out_dir: Path) -> Path:
    """Create ``out_dir`` if absent and check that records can be staged in it."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OptionError(f"--out {out_dir} is a file; give a folder (created if absent)")
    try:
        with staging_dir(out_dir):
            pass
    except OSError as exc:
        raise OptionError(f"--out {out_dir} is not a writable folder ({exc.strerror or exc})") from None
    return out_dir


def make_reader(method: str, settings: dict):
    """The registered digitizer, made once (a checkpoint is loaded here, before any page)."""
    try:
        return digitizers.get(method, **settings)
    except TypeError as exc:
        if not settings:
            raise
        given = ", ".join(f"--{k}" for k in settings)
        raise OptionError(f"--method {method} does not take {given} ({exc})") from None


# --------------------------------------------------------------------------------------------
# One page
# --------------------------------------------------------------------------------------------

def write_csv(path: Path, signal: np.ndarray, fs: float) -> Path:
    """CSV with ``time_s`` and one column per lead (mV); NaN written as empty cells."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["time_s", *LEAD_NAMES])
        for i, row in enumerate(signal):
            w.writerow([f"{i / fs:.4f}", *("" if np.isnan(v) else f"{v:.4f}" for v in row)])
    return path


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def stage_outputs(reading: Reading, page: page_inputs.Page, tmp: Path, record: dict) -> list[Path]:
    """Write the record's five files into staging folder ``tmp``, the JSON last.

    ``NAME.hea/.dat`` (WFDB, mV), ``NAME.csv``, ``NAME_overlay.png``, ``NAME_digitize.json``
    (``record``: source, input notes, orientation, verdict; plus the reading's diagnostics).
    """
    name = page.name
    staged = write_wfdb(tmp / name, reading.signal, reading.fs,
                        comments=[f"digitized from {_ascii(page.path.name)} by ecgnb ({reading.method})"])
    staged.append(write_csv(tmp / f"{name}.csv", reading.signal, reading.fs))
    staged.append(write_png(tmp / f"{name}_overlay.png", overlay(reading)))
    json_path = tmp / f"{name}{page_inputs.RECORD_JSON}"
    outputs = [p.name for p in staged] + [json_path.name]
    diagnostics = reading.diagnostics()
    staged.append(write_json(json_path, {**record, **diagnostics, "warnings": record["warnings"],
                                         "outputs": outputs}))
    return staged


def verdict(reading: Reading, judged: dict) -> tuple[str, list[str], str | None]:
    """``(status, warnings, refusal)`` of a reading: ``ok``, ``doubtful`` (written with
    warnings) or ``refused`` (``refusal`` says why; nothing is written)."""
    warnings = list(reading.warnings)
    if reading.confidence < DOUBT_CONFIDENCE and not warnings:
        warnings.append(f"low confidence ({reading.confidence:.2f}): check the overlay")
    cons = judged.get("consistency")
    if cons is not None and cons < CONSISTENCY_MIN:
        warnings.append(f"the limb leads disagree (Einthoven consistency {cons:.2f}, about 1 on a "
                        "true recording): leads may be misread or misplaced; check the overlay")
    warnings = [cli_terms(w) for w in warnings]
    n_read = int(np.isfinite(reading.signal).any(axis=0).sum())
    if n_read < MIN_LEADS_READ:
        return "refused", warnings, (f"nothing usable read: a trace was found for {n_read} of "
                                     f"{len(reading.lead_names)} leads ({'; '.join(warnings)})")
    if not reading.grid.found and cons is not None and cons < CONSISTENCY_MIN:
        return "refused", warnings, ("nothing usable read: no grid found and the limb leads "
                                     f"disagree (consistency {cons:.2f}); a grayscale copy of a "
                                     "colour-grid page reads so: scan it in colour")
    return ("doubtful" if warnings else "ok"), warnings, None


def new_entry(page: page_inputs.Page) -> dict:
    """A page's report entry before it is read (``interrupted`` until it ends either way)."""
    return {"image": page.label, "source": str(page.path), "pdf_page": page.pdf_page,
            "name": page.name, "status": "interrupted", "error": None, "outputs": [],
            "warnings": []}


def digitize_page(reader, page: page_inputs.Page, entry: dict, out_dir: Path, options: ReadOptions,
                  pdf_dpi: float = page_inputs.PDF_DPI, rotate: str | int = "auto") -> dict:
    """Load, read, judge and write one page, filling ``entry``; a failure is recorded, not raised.

    The entry is updated in the same signal-free step that moves the files into place, so an
    interrupted batch reports exactly the records that exist.
    """
    try:
        image, notes = page_inputs.load(page, pdf_dpi)
        rot = rotate if rotate == "auto" else int(rotate)
        reading, turn, tried = orient.read_upright(reader, image, options, rot)
        judged = next(t for t in tried if t["rotated_deg"] == turn)
        # A reader that flattens a photo may turn the page itself: report the whole turn.
        deg = (turn + reading.extra.get("page_turn_deg", 0)) % 360
        status, warnings, refusal = verdict(reading, judged)
        common = dict(layout=reading.layout.name, layout_confidence=reading.layout.confidence,
                      confidence=reading.confidence, warnings=warnings, rotated_deg=deg,
                      resampled=notes["resampled"])
        if refusal:
            entry.update(status="failed", error=refusal, **common)
            return entry
        record = {"source": str(page.path.resolve()), "source_name": page.path.name,
                  "source_page": page.pdf_page, "record": page.name, "status": status,
                  "input": notes, "rotated_deg": deg, "orientation": tried, "warnings": warnings}
        with staging_dir(out_dir) as tmp:
            staged = stage_outputs(reading, page, tmp, record)
            with deferred_signals():
                files = commit_files(staged, out_dir)
                entry.update(status=status, outputs=[str(f) for f in files], **common)
    except Exception as exc:  # noqa: BLE001 -- one page's failure, whatever it is, never ends a batch
        entry.update(status="failed", error=describe(exc))
        if not isinstance(exc, (EcgnbError, OSError)):
            entry["traceback"] = traceback.format_exc()
    return entry


# --------------------------------------------------------------------------------------------
# A batch
# --------------------------------------------------------------------------------------------

def _skip_notes(batch: page_inputs.Batch) -> list[str]:
    """One line per (folder, reason) of what was skipped, and one per renamed page."""
    groups: dict[tuple[str, str], list[str]] = {}
    for s in batch.skipped:
        groups.setdefault((str(s.path.parent), s.reason), []).append(s.path.name)
    lines = []
    for (folder, reason), names in groups.items():
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        lines.append(f"note: skipped in {folder}: {shown}: {reason}")
    return lines + [f"note: {p.note}" for p in batch.pages if p.note]


def digitize_files(inputs: list[Path], out_dir: Path, method: str = digitizers.DEFAULT,
                   layout: str = "3x4+1", fs: float = 500, progress: bool = True, *,
                   pdf_dpi: float = page_inputs.PDF_DPI, rotate: str | int = "auto",
                   log: Callable[[str], None] | None = None, **settings) -> list[dict]:
    """Digitize every page of ``inputs`` (images, PDFs, folders of them) into ``out_dir``.

    ``method`` is a name of ``ecgnb.digitizers`` (made once, with ``settings``, before any page).
    Returns one dict per page: ``{"image", "source", "pdf_page", "name", "status": "ok" |
    "doubtful" | "failed", "error", "outputs", "warnings", "layout", "layout_confidence",
    "confidence", "rotated_deg", "resampled"}``. A failed page never stops the batch and leaves
    no file of its own. ``log`` gets each note and warning as it arises.

    Raises ``OptionError`` (bad option, unusable ``out_dir``, no page to read) or the method's
    ``EcgnbError`` (e.g. a missing checkpoint) before the first page; ``Interrupted`` (a
    ``KeyboardInterrupt`` carrying the report so far) on SIGINT, or SIGTERM under ``main``.
    """
    from tqdm import tqdm

    say = log or (lambda message: None)
    options = check_options(layout, fs, pdf_dpi, rotate)
    out_dir = Path(out_dir)
    batch = page_inputs.plan(inputs, out_dir if out_dir.is_dir() else None)
    for line in _skip_notes(batch):
        say(line)
    if not batch.pages:
        raise OptionError("nothing to read: no image or PDF in " + " ".join(map(str, inputs)))
    if out_dir.exists() and not out_dir.is_dir():
        prepare_out_dir(out_dir)                  # the error, before a checkpoint is loaded
    reader = make_reader(method, settings)
    prepare_out_dir(out_dir)
    if stale := clean_stale_staging(out_dir):
        say(f"note: removed {len(stale)} unfinished record folder(s) of an earlier run that was "
            f"killed, in {out_dir}")
    report: list[dict] = []
    try:
        with tqdm(batch.pages, desc="digitize", unit="page", disable=not progress) as bar:
            for page in bar:
                entry = new_entry(page)
                report.append(entry)
                digitize_page(reader, page, entry, out_dir, options, pdf_dpi, rotate)
                if entry["status"] == "failed":
                    continue                              # its reason is in the failure line
                if entry.get("rotated_deg"):
                    say(f"note: {page.label}: read turned by {entry['rotated_deg']} degrees")
                for w in entry["warnings"]:
                    say(f"warning: {page.label}: {w}")
    except KeyboardInterrupt as exc:
        raise Interrupted(getattr(exc, "signum", signal.SIGINT), report, len(batch.pages)) from None
    return report


# --------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``digitize`` command's argument parser."""
    p = _Parser(prog="ecgnb digitize",
                description="Digitize paper-ECG images and PDFs into WFDB + CSV signals (mV), "
                            "with an overlay PNG and a JSON of diagnostics per page.",
                epilog="exit status: 0 all pages read without warnings; 3 all written, some with "
                       "warnings; 1 some page failed; 2 bad options or nothing to read; "
                       "130/143 interrupted (SIGINT/SIGTERM)")
    p.add_argument("inputs", nargs="+", type=Path, metavar="IMAGE_PDF_OR_FOLDER",
                   help="image files (" + "/".join(s[1:] for s in page_inputs.IMAGE_SUFFIXES)
                        + "), PDFs, or folders of them (sub-folders are not entered)")
    p.add_argument("--out", required=True, type=Path, metavar="DIR",
                   help="output folder (created if absent)")
    p.add_argument("--method", choices=digitizers.names() + list(digitizers.ALIASES),
                   default=digitizers.DEFAULT,
                   help="registered methods: " + ", ".join(digitizers.names())
                        + f" (default {digitizers.DEFAULT}; aliases: "
                        + ", ".join(f"{a} = {m}" for a, m in digitizers.ALIASES.items()) + ")")
    p.add_argument("--checkpoint", type=Path, metavar="PATH",
                   help="model checkpoint of --method crop_model (default models/default.pt), "
                        "trace_net (default models/trace_net.pt) or trace_model (default "
                        "models/trace_model.pt)")
    p.add_argument("--layout", default="3x4+1",
                   help="page layout: " + ", ".join(LAYOUTS) + ", or auto; default 3x4+1")
    p.add_argument("--fs", type=float, default=500,
                   help=f"output sampling rate, Hz ({FS_RANGE_HZ[0]:g} to {FS_RANGE_HZ[1]:g}; "
                        "default 500)")
    p.add_argument("--pdf-dpi", type=float, default=page_inputs.PDF_DPI, metavar="DPI",
                   help=f"dpi PDF pages are rasterized at (default {page_inputs.PDF_DPI})")
    p.add_argument("--rotate", choices=ROTATE_CHOICES, default="auto",
                   help="degrees (counter-clockwise) to turn every page before reading; auto "
                        "(default) tries the other turns when a page reads badly")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


@contextmanager
def interrupts_raise() -> Iterator[None]:
    """SIGINT and SIGTERM raise ``Interrupted`` (so cleanup runs) while the block runs."""
    def handler(signum, frame):
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)


def summary(report: list[dict], out_dir: Path, total: int, interrupted: str | None = None) -> str:
    """The closing line: how many pages were written, with warnings, failed, not begun."""
    count = {s: sum(r["status"] == s for r in report) for s in ("ok", "doubtful", "failed")}
    line = f"digitized {count['ok'] + count['doubtful']} of {total} pages into {out_dir}"
    if count["doubtful"]:
        line += f" ({count['doubtful']} with warnings)"
    if count["failed"]:
        line += f"; {count['failed']} failed"
    if interrupted:
        done = count["ok"] + count["doubtful"] + count["failed"]
        line = f"interrupted by {interrupted}: {line}; {total - done} not done"
    return line


def exit_status(report: list[dict]) -> int:
    """0 all pages clean, 3 all written with some warnings, 1 some failed, 2 no pages."""
    if not report:
        return EXIT_USAGE
    if any(r["status"] != "ok" and r["status"] != "doubtful" for r in report):
        return EXIT_FAILED
    return EXIT_WARNINGS if any(r["status"] == "doubtful" for r in report) else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run ``ecgnb digitize``; print notes, warnings, failures and a summary; see module doc."""
    from tqdm import tqdm

    args = build_parser().parse_args(argv)
    settings = {"checkpoint": args.checkpoint} if args.checkpoint else {}
    report, total, interrupted = [], 0, None
    with interrupts_raise():
        try:
            report = digitize_files(args.inputs, args.out, method=args.method, layout=args.layout,
                                    fs=args.fs, progress=not args.no_progress,
                                    pdf_dpi=args.pdf_dpi, rotate=args.rotate,
                                    log=lambda m: tqdm.write(m, file=sys.stderr), **settings)
            total = len(report)
        except Interrupted as exc:
            report, total, interrupted = exc.report, exc.total, signal.Signals(exc.signum).name
        except (EcgnbError, ValueError) as exc:
            print(f"error: {cli_terms(str(exc))}", file=sys.stderr)
            return EXIT_USAGE
    for r in report:
        if r["status"] == "failed":
            print(f"failed: {r['image']}: {r['error']}", file=sys.stderr)
    print(summary(report, args.out, total, interrupted))
    if interrupted:
        return 128 + signal.Signals[interrupted].value
    return exit_status(report)


if __name__ == "__main__":
    raise SystemExit(main())
