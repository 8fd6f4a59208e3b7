"""What the ``digitize`` command reads: the named files and folders as a list of pages, each
with the output name it will be written under, and each page loaded as an RGB image.

``plan`` decides everything before the first page is read: which files are pages (an image, or
every page of a PDF), what a folder holds that is skipped and why (other files, sub-folders,
ecgnb's own outputs), and one output name per page that WFDB and every OS accept and that no
other page of the batch, nor another source's record already in the output folder, uses.
``load`` turns one page into an ``(H, W, 3)`` uint8 RGB image at a readable scale and says
what it did to get there (alpha composited, 16 bit reduced, resampled, PDF dpi).
"""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .errors import ImageError, MissingInputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".jpe", ".tif", ".tiff", ".bmp", ".webp")
PDF_SUFFIXES = (".pdf",)
# The files one record NAME is written as (ecgnb.cli); NAME_digitize.json is written last.
OUTPUT_SUFFIXES = (".hea", ".dat", ".csv", "_overlay.png", "_digitize.json")
RECORD_JSON = "_digitize.json"

PDF_DPI = 200            # dpi a PDF page is rasterized at unless told otherwise
MIN_SIDE_PX = 200        # px: a page shorter than this on a side holds no readable ECG
SMALL_SIDE_PX = 1600     # px: a longest side below this (under ~145 dpi on letter paper) ...
UPSCALE_TO_PX = 2200     # px: ... is upscaled to this (200 dpi letter); grids under ~6 px/mm
                         # were not found on ECG-Image-Kit pages at 120 dpi, and were at 2x
LARGE_SIDE_PX = 4000     # px: a longest side above this (over ~360 dpi on letter) ...
DOWNSCALE_TO_PX = 3300   # px: ... is reduced to this (300 dpi letter): memory and time stay
                         # bounded, and the scale is read from the grid anyway
MAX_NAME_CHARS = 100     # an output name longer than this is cut
# Names Windows reserves for devices, whatever the extension.
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
             *(f"lpt{i}" for i in range(10))}


# --------------------------------------------------------------------------------------------
# Output names
# --------------------------------------------------------------------------------------------

def safe_name(text: str) -> str:
    """An output name made from ``text``: ASCII letters, digits, ``_`` and ``-`` only.

    Accents are dropped (``électro`` -> ``electro``), every other run of characters becomes one
    ``_`` (``my scan (1)`` -> ``my_scan_1``, ``scan.v2`` -> ``scan_v2``); it never starts with
    ``-`` (a shell option), is never a Windows device name, never empty (``page``).
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", ascii_text).strip("_").lstrip("-")
    name = name[:MAX_NAME_CHARS].rstrip("_") or "page"
    return f"{name}_" if name.lower() in _RESERVED else name


def _source_key(path: Path, pdf_page: int | None) -> tuple[str, int | None]:
    return str(Path(path).resolve()), pdf_page


def record_source(out_dir: Path, name: str) -> tuple[str, int | None] | None:
    """``(resolved source path, PDF page)`` of record ``name`` already in ``out_dir``, or None.

    A record whose JSON cannot be read counts as made from an unknown source (``("", None)``).
    """
    path = Path(out_dir) / f"{name}{RECORD_JSON}"
    if not path.exists():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return _source_key(Path(info["source"]), info.get("source_page"))
    except (OSError, ValueError, KeyError, TypeError):
        return "", None


# --------------------------------------------------------------------------------------------
# Expanding inputs into pages
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Page:
    """One page to digitize: an image file, or page ``pdf_page`` (1-based) of a PDF."""

    path: Path
    name: str                    # output record name: safe and unique in the batch
    pdf_page: int | None = None
    note: str | None = None      # why ``name`` is not the natural one (a clash), if it is not

    @property
    def label(self) -> str:
        """How messages name this page: its path, plus the page number of a PDF."""
        return f"{self.path} page {self.pdf_page}" if self.pdf_page else str(self.path)


@dataclass(frozen=True)
class Skipped:
    """A file or folder found in an input folder and not read, with the reason."""

    path: Path
    reason: str


@dataclass
class Batch:
    """What one run reads, decided before its first page."""

    pages: list[Page] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def is_pdf(path: Path) -> bool:
    """True for a ``.pdf`` name, or a file that starts as a PDF does."""
    path = Path(path)
    if path.suffix.lower() in PDF_SUFFIXES:
        return True
    try:
        with open(path, "rb") as fh:
            return fh.read(5) == b"%PDF-"
    except OSError:
        return False


def ecgnb_record_of(path: Path) -> str | None:
    """The record name if ``path`` is one of the files ecgnb wrote for it, else None.

    A file is ecgnb's when its name is ``NAME`` + an output suffix and ``NAME_digitize.json``
    lies beside it (so a scan the user called ``x_overlay.png`` is still read).
    """
    path = Path(path)
    for suffix in OUTPUT_SUFFIXES:
        if path.name.endswith(suffix) and len(path.name) > len(suffix):
            base = path.name[:-len(suffix)]
            if (path.parent / f"{base}{RECORD_JSON}").exists():
                return base
    return None


def pdf_page_count(path: Path) -> int:
    """Number of pages of a PDF; ``ImageError`` if it cannot be opened."""
    import pypdfium2 as pdfium

    try:
        doc = pdfium.PdfDocument(str(path))
    except (pdfium.PdfiumError, OSError) as exc:
        raise ImageError(f"{path} is not a readable PDF ({exc})") from None
    try:
        return len(doc)
    finally:
        doc.close()


def _folder_entries(folder: Path, found: list, skipped: list[Skipped]) -> None:
    """Append the pages of ``folder`` (not recursive) to ``found``, the rest to ``skipped``."""
    for q in sorted(folder.iterdir()):
        if q.name.startswith("."):
            if not q.name.startswith(".staging-"):           # ecgnb's own, cleaned elsewhere
                skipped.append(Skipped(q, "hidden"))
        elif q.is_dir():
            skipped.append(Skipped(q, "sub-folder, not entered (name it to read it)"))
        elif (record := ecgnb_record_of(q)) is not None:
            skipped.append(Skipped(q, f"written by ecgnb (record {record})"))
        elif q.suffix.lower() in IMAGE_SUFFIXES + PDF_SUFFIXES:
            found.append(q)
        else:
            skipped.append(Skipped(q, "not an image or PDF (" + (q.suffix or "no suffix") + ")"))


def _expand_pdfs(paths: list[Path]) -> list[tuple[Path, int | None]]:
    """``(path, PDF page or None)`` per page; a PDF that cannot be opened stays one entry
    (``None``), which fails when it is loaded."""
    out: list[tuple[Path, int | None]] = []
    for p in paths:
        if p.exists() and is_pdf(p):
            try:
                out.extend((p, k) for k in range(1, pdf_page_count(p) + 1))
                continue
            except ImageError:
                pass
        out.append((p, None))
    return out


def _natural_name(path: Path, pdf_page: int | None) -> str:
    base = safe_name(path.stem if path.suffix else path.name)
    return f"{base[:MAX_NAME_CHARS - 6]}_p{pdf_page}" if pdf_page else base


def assign_names(entries: list[tuple[Path, int | None]], out_dir: Path | None = None) -> list[Page]:
    """One ``Page`` per ``(path, pdf_page)`` with a name no other page of the list uses.

    Names are compared ignoring case (macOS and Windows folders do). The first page keeps its
    natural name, later ones with the same get ``_2``, ``_3``... (never another page's natural
    name). A record already in ``out_dir`` made from another source is not overwritten either.
    """
    naturals = [_natural_name(p, k) for p, k in entries]
    reserved = {n.lower() for n in naturals}
    taken: dict[str, str] = {}           # lower-case name -> label of the page that has it
    pages = []
    for (path, k), natural in zip(entries, naturals):
        me = _source_key(path, k)
        name, n, why = natural, 1, None
        while True:
            key = name.lower()
            other = record_source(out_dir, name) if out_dir is not None else None
            if key in taken:
                why = why or f"{natural} is {taken[key]}'s"
            elif name != natural and key in reserved:
                pass
            elif other is not None and other != me:
                why = why or f"{out_dir / name} is a record of {other[0] or 'another source'}"
            else:
                break
            n += 1
            name = f"{natural}_{n}"
        page = Page(path, name, k)
        if name != natural:
            page = Page(path, name, k, note=f"{page.label} is written as {name}: {why}")
        taken[name.lower()] = page.label
        pages.append(page)
    return pages


def plan(inputs: list[Path], out_dir: Path | None = None) -> Batch:
    """Expand ``inputs`` (files and folders) into the pages of one run, each with its name.

    A named file is read whatever its suffix (a missing or unreadable one fails when loaded);
    a folder gives its images and PDFs, sorted, without entering sub-folders. Files ecgnb wrote
    are skipped either way, so an output folder given as input is not read back.
    """
    found: list[Path] = []
    skipped: list[Skipped] = []
    for p in map(Path, inputs):
        if p.is_dir():
            _folder_entries(p, found, skipped)
        elif (record := ecgnb_record_of(p)) is not None:
            skipped.append(Skipped(p, f"written by ecgnb (record {record})"))
        else:
            found.append(p)
    return Batch(assign_names(_expand_pdfs(found), out_dir), skipped)


# --------------------------------------------------------------------------------------------
# Loading a page as RGB
# --------------------------------------------------------------------------------------------

def _to_rgb8(raw: np.ndarray) -> tuple[np.ndarray, dict]:
    """An ``IMREAD_UNCHANGED`` array (gray/BGR/BGRA, 8/16 bit or float) as RGB uint8."""
    info = {"bit_depth": int(raw.dtype.itemsize * 8), "channels": int(1 if raw.ndim == 2 else raw.shape[2])}
    if raw.dtype == np.uint16:
        raw = cv2.convertScaleAbs(raw, alpha=1 / 257)
    elif raw.dtype != np.uint8:                      # float TIFF: 0..1, or 0..255
        scale = 255.0 if float(np.nanmax(raw)) <= 1.0 else 1.0
        raw = cv2.convertScaleAbs(np.nan_to_num(raw), alpha=scale)
    img = raw if raw.ndim == 3 else raw[:, :, None]
    c = img.shape[2]
    if c in (2, 4):                                  # gray+alpha or BGRA: composite on white
        colour = img[:, :, :c - 1].astype(np.uint16)
        alpha = img[:, :, c - 1:].astype(np.uint16)
        img = ((colour * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)
        info["alpha"] = "composited on white"
    if img.shape[2] == 1:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB), info
    return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_BGR2RGB), info


def read_image(path: Path) -> tuple[np.ndarray, dict]:
    """Read an image file as RGB ``(H, W, 3)`` uint8 and what was done to it.

    JPEGs are decoded in colour with their EXIF orientation applied; other formats unchanged
    (``IMREAD_UNCHANGED``) and then converted: gray to RGB, 16 bit to 8, transparent pixels
    composited on white (not left black).
    """
    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"image {path} not found")
    data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    if data.size == 0:
        raise ImageError(f"{path} is empty (0 bytes)")
    if data[:3].tobytes() == b"\xff\xd8\xff":
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
        if bgr is not None:
            return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), {"bit_depth": 8, "channels": 3}
    raw = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if raw is None or raw.size == 0:
        raise ImageError(f"{path} is not a readable image (corrupt, or a format OpenCV cannot "
                         "read; convert it to PNG or JPEG)")
    return _to_rgb8(raw)


def render_pdf_page(path: Path, pdf_page: int, dpi: float = PDF_DPI) -> tuple[np.ndarray, dict]:
    """Rasterize page ``pdf_page`` (1-based) of a PDF at ``dpi`` on white, RGB uint8.

    A page whose longest side would be outside ``SMALL_SIDE_PX``..``LARGE_SIDE_PX`` at ``dpi``
    is rendered at the dpi that gives ``UPSCALE_TO_PX``/``DOWNSCALE_TO_PX`` instead (sharper
    than resampling afterwards); the dpi used is returned as ``render_dpi``.
    """
    import pypdfium2 as pdfium

    try:
        doc = pdfium.PdfDocument(str(path))
    except (pdfium.PdfiumError, OSError) as exc:
        raise ImageError(f"{path} is not a readable PDF ({exc})") from None
    try:
        page = doc[pdf_page - 1]
        longest_in = max(page.get_size()) / 72.0                 # PDF units are 1/72 inch
        used = float(dpi)
        if longest_in * dpi > LARGE_SIDE_PX:
            used = DOWNSCALE_TO_PX / longest_in
        elif longest_in * dpi < SMALL_SIDE_PX:
            used = UPSCALE_TO_PX / longest_in
        bitmap = page.render(scale=used / 72.0, fill_color=(255, 255, 255, 255), rev_byteorder=True)
        rgb = np.array(bitmap.to_numpy()[:, :, :3])               # RGB(x) -> RGB, own memory
    except pdfium.PdfiumError as exc:
        raise ImageError(f"{path} page {pdf_page} could not be rendered ({exc})") from None
    finally:
        doc.close()
    return rgb, {"pdf_dpi": float(dpi), "render_dpi": round(used, 2)}


def fit_scale(image: np.ndarray) -> tuple[np.ndarray, float]:
    """``(image, factor)``: pages outside the readable size range resampled into it.

    Longest side above ``LARGE_SIDE_PX``: reduced to ``DOWNSCALE_TO_PX`` (INTER_AREA); below
    ``SMALL_SIDE_PX``: enlarged to ``UPSCALE_TO_PX`` (INTER_CUBIC); else unchanged (factor 1).
    """
    longest = max(image.shape[:2])
    if longest > LARGE_SIDE_PX:
        factor, interp = DOWNSCALE_TO_PX / longest, cv2.INTER_AREA
    elif longest < SMALL_SIDE_PX:
        factor, interp = UPSCALE_TO_PX / longest, cv2.INTER_CUBIC
    else:
        return image, 1.0
    size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
    return cv2.resize(image, size, interpolation=interp), factor


def load(page: Page, pdf_dpi: float = PDF_DPI) -> tuple[np.ndarray, dict]:
    """One page as RGB ``(H, W, 3)`` uint8 at a readable scale, and plain-JSON notes on it.

    The notes hold ``size_px`` (as read, [w, h]), ``resampled`` (the factor applied, 1 if none)
    and what ``read_image``/``render_pdf_page`` report. ``ImageError`` for a page too small.
    """
    if page.pdf_page is not None:
        image, info = render_pdf_page(page.path, page.pdf_page, pdf_dpi)
    elif is_pdf(page.path):
        pdf_page_count(page.path)                 # raises the reason it cannot be opened
        raise ImageError(f"{page.path} has no pages")
    else:
        image, info = read_image(page.path)
    h, w = image.shape[:2]
    if min(h, w) < MIN_SIDE_PX:
        raise ImageError(f"{page.label}: {w}x{h} px is too small for an ECG page; scan at 100 dpi "
                         "or more")
    image, factor = fit_scale(image)
    return image, {**info, "size_px": [w, h], "resampled": round(factor, 4)}
