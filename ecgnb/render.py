"""Render a 12-lead signal as a clean paper-ECG page, with exact pixel ground truth.

The page is a grid of 1 mm minor and 5 mm major lines; every row holds panels laid out by
``ecgnb.layouts.panels``. The geometry is exact and documented so that a digitizer can be scored
against it:

* ``px_per_mm = dpi / 25.4``; a 1 mV step is exactly ``gain_mm_mv * px_per_mm`` px tall.
* Sample ``i`` of a record sampled at ``fs`` Hz is drawn at
  ``x = x_row_start + (i / fs) * speed_mm_s * px_per_mm`` and ``y = baseline_y - v * gain_mm_mv
  * px_per_mm`` (``v`` in mV), i.e. each row starts at time 0 of the record.
* Pixel coordinates follow OpenCV: the centre of pixel ``image[r, c]`` is at ``(x, y) = (c, r)``.
* The grid origin, every row start and every panel baseline lie on major grid lines.

Ground truth returned by :func:`render_page` (plain JSON types only)::

    {
      "image_size": [H, W],            # px
      "dpi": int, "px_per_mm": float,  # px per inch, px per mm
      "speed_mm_s": float, "gain_mm_mv": float,
      "layout": str, "fs": int, "n_samples": int, "lead_names": [12 str],
      "panels": [{
          "lead": str, "row": int, "col": int, "rhythm": bool,
          "bbox": [x0, y0, x1, y1],    # px; cell + label + trace extent, clipped to the image
          "baseline_y": float,         # px, y of 0 mV on the clean page (before augmentation)
          "x_start": float,            # px, x of sample `sample_start` on the clean page
          "sample_start": int, "sample_end": int,   # sample span drawn, end exclusive
          "trace": [[x, y], ...],      # px floats, one point per drawn sample, NOT clipped
      }, ...],
      "calibration": [{"row": int, "bbox": [x0, y0, x1, y1], "baseline_y": float}],  # px
      "grid": {"minor_px": float, "major_px": float, "origin": [x, y], "bbox": [x0, y0, x1, y1]},
      "header": {"fields": {str: str}, "lines": [str], "bbox": [x0, y0, x1, y1]} or {},
      "artefacts": {},                 # filled by ecgnb.augment.augment_page
      "style": {StyleConfig fields},   # only for a non-default print style
    }

The print style (grid colour and line widths, trace colour and width, font, label positions,
header text) is a ``ecgnb.config.StyleConfig``; ``random_style`` draws one. The default style is
the study's own look, bit for bit.

Trace points may lie outside the panel's row (large amplitudes overlap neighbouring rows, as on a
real printer) or even outside the image; they are kept exact and unclipped.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from ecgnb.config import GRID_COLOURS, PaperConfig, StyleConfig, StyleRangeConfig
from ecgnb.errors import SignalError
from ecgnb.layouts import Panel, n_rows, panels
from ecgnb.leads import LEAD_INDEX, LEAD_NAMES
from ecgnb.sources import validate_signal

# --- page furniture, all in mm -------------------------------------------------------------------
TOP_BAND_MM = 18.0      # white band above the grid that holds the header text
EDGE_MARGIN_MM = 3.0    # smallest white margin left/right/below the grid
CAL_WIDTH_S = 0.2       # s, width of the 1 mV calibration pulse
CAL_LEAD_MM = 1.0       # mm of flat line before and after the pulse
LABEL_HEIGHT_MM = 2.5   # mm, cap height of lead labels
LABEL_RISE_MM = 6.0     # mm, label text baseline above the trace baseline
TICK_HALF_MM = 1.5      # mm, half height of the separator tick between panels
BAR_HALF_MM = 3.5       # mm, half height of a separator bar (StyleConfig.separator = "bar")
BAR_WIDTH_MM = 0.6      # mm, its width
MIN_DURATION_S = 1.0    # s, shortest record we print (shorter panels are unreadable)

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FONT_CAP_PX = 22.0     # cap height of _FONT at fontScale 1, px
# StyleConfig.font -> (cv2 font, cap height at fontScale 1 in px)
FONTS: dict[str, tuple[int, float]] = {
    "simplex": (_FONT, _FONT_CAP_PX), "duplex": (cv2.FONT_HERSHEY_DUPLEX, _FONT_CAP_PX),
    "complex": (cv2.FONT_HERSHEY_COMPLEX, _FONT_CAP_PX),
    "triplex": (cv2.FONT_HERSHEY_TRIPLEX, _FONT_CAP_PX), "plain": (cv2.FONT_HERSHEY_PLAIN, 12.2),
}
LABEL_POSITIONS = ("above", "below", "corner")
HEADER_STYLES = ("standard", "detailed", "minimal")
SEPARATORS = ("tick", "bar", "none")
_SHIFT = 8              # fractional bits for cv2 drawing: 1/256 px resolution


@dataclass(frozen=True)
class Palette:
    """RGB colours (0-255) of one paper style. All are lighter than luminance 150 except ink."""

    paper: tuple[int, int, int]
    minor: tuple[int, int, int]
    major: tuple[int, int, int]


# Our own small palette family: light pinks and reds, one salmon, one warm orange.
PALETTES: dict[str, Palette] = {
    "rose": Palette(paper=(255, 253, 252), minor=(247, 207, 207), major=(236, 150, 150)),
    "salmon": Palette(paper=(255, 251, 247), minor=(250, 214, 200), major=(240, 160, 140)),
    "coral": Palette(paper=(254, 252, 250), minor=(245, 200, 196), major=(232, 140, 135)),
    "amber": Palette(paper=(255, 252, 245), minor=(250, 220, 195), major=(240, 170, 120)),
}
DEFAULT_PALETTE = "rose"
INK_COLOURS: tuple[tuple[int, int, int], ...] = ((15, 15, 20), (10, 15, 45), (30, 25, 25))

# Print styles seen on real ECG paper (StyleConfig.grid_colour); "black" and "grey" are laser
# printouts, "none" a plain-paper print without a grid.
GRID_PALETTES: dict[str, Palette] = {
    "red": Palette(paper=(255, 255, 255), minor=(248, 196, 196), major=(232, 112, 112)),
    "pink": Palette(paper=(255, 253, 253), minor=(250, 218, 228), major=(240, 165, 190)),
    "orange": Palette(paper=(255, 252, 246), minor=(252, 222, 190), major=(244, 172, 110)),
    "brown": Palette(paper=(252, 249, 243), minor=(228, 208, 188), major=(186, 146, 112)),
    "green": Palette(paper=(252, 255, 252), minor=(200, 236, 204), major=(118, 196, 132)),
    "blue": Palette(paper=(252, 253, 255), minor=(202, 222, 246), major=(120, 160, 224)),
    "grey": Palette(paper=(255, 255, 255), minor=(222, 222, 222), major=(165, 165, 165)),
    "black": Palette(paper=(255, 255, 255), minor=(175, 175, 175), major=(70, 70, 70)),
    "none": Palette(paper=(255, 255, 255), minor=(255, 255, 255), major=(255, 255, 255)),
}
assert tuple(GRID_PALETTES) == GRID_COLOURS, "GRID_PALETTES must match config.GRID_COLOURS"


# --- geometry ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PageGeometry:
    """Where things go on the page, in px (floats, exact). Built by :func:`page_geometry`."""

    height: int               # px, image rows
    width: int                # px, image columns
    px_per_mm: float
    grid_bbox: tuple[float, float, float, float]   # px, x0 y0 x1 y1 of the grid area
    minor_px: float
    major_px: float
    row_start_x: float        # px, x of time 0 in every row (a major line)
    cal_up_x: float           # px, x of the calibration pulse rising edge
    row_tops: tuple[float, ...]      # px, top of each row
    baselines: tuple[float, ...]     # px, y of 0 mV in each row (major lines)
    row_pitch: float          # px, height of a row


def _floor_to(value: float, step: float) -> float:
    """Largest multiple of ``step`` not above ``value`` (tolerates float noise)."""
    return math.floor(value / step + 1e-9) * step


def page_geometry(paper: PaperConfig, rows: int, duration_s: float) -> PageGeometry:
    """Lay out ``rows`` rows of ``duration_s`` seconds on the page described by ``paper``.

    Raises ``SignalError`` when the record does not fit the page width at ``paper.speed_mm_s``.
    """
    ppm, major = paper.px_per_mm, paper.major_mm
    grid_w = _floor_to(paper.page_w_mm - 2 * EDGE_MARGIN_MM, major)
    avail_h = paper.page_h_mm - TOP_BAND_MM - EDGE_MARGIN_MM
    grid_h = _floor_to(avail_h, major)
    ox = (paper.page_w_mm - grid_w) / 2.0
    oy = TOP_BAND_MM + (avail_h - grid_h) / 2.0
    # Rows start after the calibration pulse, on a major line.
    cal_w = CAL_WIDTH_S * paper.speed_mm_s
    row_start = math.ceil((cal_w + 4 * CAL_LEAD_MM) / major) * major
    need = row_start + duration_s * paper.speed_mm_s
    if need > grid_w + 1e-6:
        max_s = (grid_w - row_start) / paper.speed_mm_s
        raise SignalError(f"a {duration_s:g} s record needs {need:g} mm at "
                          f"{paper.speed_mm_s:g} mm/s but the page grid is {grid_w:g} mm wide; "
                          f"crop the signal to <= {max_s:g} s")
    pitch = max(major, _floor_to(grid_h / rows, major))
    first_top = oy + _floor_to((grid_h - rows * pitch) / 2.0, major)
    base_off = math.ceil(pitch / 2.0 / major) * major   # below mid-row: QRS mostly points up
    tops = tuple((first_top + r * pitch) * ppm for r in range(rows))
    return PageGeometry(
        height=int(round(paper.page_h_mm * ppm)), width=int(round(paper.page_w_mm * ppm)),
        px_per_mm=ppm, grid_bbox=(ox * ppm, oy * ppm, (ox + grid_w) * ppm, (oy + grid_h) * ppm),
        minor_px=paper.minor_mm * ppm, major_px=major * ppm,
        row_start_x=(ox + row_start) * ppm,
        cal_up_x=(ox + row_start - 2 * CAL_LEAD_MM - cal_w) * ppm,
        row_tops=tops, baselines=tuple(t + base_off * ppm for t in tops), row_pitch=pitch * ppm)


# --- grid background (cached) --------------------------------------------------------------------
def _line_coverage(n: int, start: float, stop: float, spacing: float, width: float) -> np.ndarray:
    """Fraction (0-1) of each of ``n`` pixels covered by lines of ``width`` px every ``spacing`` px.

    Lines sit at ``start + k * spacing`` up to ``stop``; pixel ``j`` spans ``[j - 0.5, j + 0.5]``.
    Exact area coverage gives sub-pixel-accurate, alias-free grid lines.
    """
    cov = np.zeros(n, dtype=np.float32)
    n_lines = int(math.floor((stop - start) / spacing + 1e-6)) + 1
    for k in range(n_lines):
        lo, hi = start + k * spacing - width / 2, start + k * spacing + width / 2
        j0, j1 = max(0, int(math.floor(lo + 0.5))), min(n - 1, int(math.floor(hi + 0.5)))
        for j in range(j0, j1 + 1):
            cov[j] += max(0.0, min(hi, j + 0.5) - max(lo, j - 0.5))
    return np.minimum(cov, 1.0)


def _grid_background(geom: PageGeometry, palette: Palette,
                     style: StyleConfig = StyleConfig()) -> np.ndarray:
    """Read-only ``(H, W, 3)`` uint8 page with the grid drawn (cached; copy before drawing)."""
    ppm = geom.px_per_mm
    minor_w = max(style.minor_width_mm * ppm, 0.6)    # px line widths
    major_w = max(style.major_width_mm * ppm, 1.0)
    return _grid_cached(geom.height, geom.width, geom.px_per_mm, geom.grid_bbox,
                        geom.minor_px, geom.major_px, palette, minor_w, major_w, style.minor_lines)


# Keyed on the grid alone (not rows/layout), so all layouts of one page size share an entry;
# 8 entries of 11 MB each at 200 dpi.
@functools.lru_cache(maxsize=8)
def _grid_cached(h: int, w: int, ppm: float, grid_bbox: tuple[float, float, float, float],
                 minor_px: float, major_px: float, palette: Palette, minor_w: float,
                 major_w: float, minor_lines: bool) -> np.ndarray:
    x0, y0, x1, y1 = grid_bbox
    cx_min = _line_coverage(w, x0, x1, minor_px, minor_w)
    cy_min = _line_coverage(h, y0, y1, minor_px, minor_w)
    cx_maj = _line_coverage(w, x0, x1, major_px, major_w)
    cy_maj = _line_coverage(h, y0, y1, major_px, major_w)
    inside_x = ((np.arange(w) >= x0 - 1) & (np.arange(w) <= x1 + 1)).astype(np.float32)
    inside_y = ((np.arange(h) >= y0 - 1) & (np.arange(h) <= y1 + 1)).astype(np.float32)
    # A pixel is a line pixel if either its column or its row crosses a line (inside the grid).
    a_min = np.maximum(cx_min[None, :] * inside_y[:, None], cy_min[:, None] * inside_x[None, :])
    a_maj = np.maximum(cx_maj[None, :] * inside_y[:, None], cy_maj[:, None] * inside_x[None, :])
    img = np.empty((h, w, 3), dtype=np.float32)
    img[:] = np.asarray(palette.paper, np.float32)
    if minor_lines:
        img += a_min[..., None] * (np.asarray(palette.minor, np.float32) - img)
    img += a_maj[..., None] * (np.asarray(palette.major, np.float32) - img)
    out = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    out.flags.writeable = False
    return out


# --- input checks --------------------------------------------------------------------------------
def _check_signal(signal: np.ndarray, fs: int) -> np.ndarray:
    """Return ``signal`` as float64 ``(n_samples, 12)`` or raise ``SignalError`` saying why."""
    validate_signal(signal, fs, name="signal")   # rate, shape, finite: one shared check
    sig = np.asarray(signal, dtype=float)
    if sig.shape[0] / fs < MIN_DURATION_S:
        raise SignalError(f"signal lasts {sig.shape[0] / fs:g} s ({sig.shape[0]} samples at "
                          f"{fs:g} Hz); "
                          f"the page needs at least {MIN_DURATION_S:g} s")
    return sig


# --- drawing helpers -----------------------------------------------------------------------------
def _to_fixed(points: np.ndarray) -> np.ndarray:
    """Float px ``(n, 2)`` -> int32 fixed point for cv2 drawing with ``shift=_SHIFT``.

    Points are clipped to +-1e5 px first so absurd amplitudes cannot overflow int32; this only
    affects drawing far off the page, never the truth.
    """
    return np.rint(np.clip(points, -1e5, 1e5) * (1 << _SHIFT)).astype(np.int32)


def _panel_points(column: np.ndarray, fs: float, s0: int, s1: int, x_row: float, baseline: float,
                  paper: PaperConfig) -> np.ndarray:
    """Exact float px ``(s1 - s0, 2)`` positions of samples ``s0..s1-1`` of one lead (mV)."""
    ppm = paper.px_per_mm
    t = np.arange(s0, s1, dtype=float) / fs
    x = x_row + t * paper.speed_mm_s * ppm
    y = baseline - column[s0:s1] * paper.gain_mm_mv * ppm
    return np.column_stack((x, y))


def _calibration_points(geom: PageGeometry, baseline: float, paper: PaperConfig) -> np.ndarray:
    """Float px corners of the 1 mV x 0.2 s pulse with 1 mm of flat line either side."""
    ppm, up = geom.px_per_mm, geom.cal_up_x
    down = up + CAL_WIDTH_S * paper.speed_mm_s * ppm
    top = baseline - paper.gain_mm_mv * ppm
    lead = CAL_LEAD_MM * ppm
    return np.array([[up - lead, baseline], [up, baseline], [up, top], [down, top],
                     [down, baseline], [down + lead, baseline]])


def _text_box(text: str, org: tuple[float, float], scale: float, thick: int,
              font: int = _FONT) -> list[float]:
    """bbox ``[x0, y0, x1, y1]`` px of ``text`` drawn by cv2.putText at ``org`` (bottom-left)."""
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    return [org[0], org[1] - th - thick, org[0] + tw + thick, org[1] + base]


def _union(a: list[float], b: list[float]) -> list[float]:
    return [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]


def _header_fields(header: dict | None, paper: PaperConfig, fs: float, rng) -> dict[str, str]:
    """Header text fields: made-up patient data (random when ``rng`` is given), then ``header``."""
    if rng is None:
        pid, day, hh, mm = 0, 1, 12, 0
    else:
        pid, day, hh, mm = (int(rng.integers(0, 10**6)), int(rng.integers(1, 29)),
                            int(rng.integers(7, 19)), int(rng.integers(0, 60)))
    fields = {"name": f"SYNTH-{pid % 997:03d}", "id": f"{pid:06d}",
              "date": f"2024-03-{day:02d} {hh:02d}:{mm:02d}",
              "speed": f"{paper.speed_mm_s:g} mm/s", "gain": f"{paper.gain_mm_mv:g} mm/mV",
              "fs": f"{fs:g} Hz"}
    fields.update({str(k): str(v) for k, v in (header or {}).items()})
    return fields


def _detailed_fields(rng) -> dict[str, str]:
    """Made-up demographics and interval measurements a cart prints (random with ``rng``)."""
    age, sex, rate, pr, qrs, qt = ((57, "F", 72, 160, 92, 380) if rng is None else
                                   (int(rng.integers(18, 90)), "FM"[int(rng.integers(2))],
                                    int(rng.integers(50, 110)), int(rng.integers(120, 210)),
                                    int(rng.integers(70, 120)), int(rng.integers(340, 440))))
    qtc = int(round(qt / math.sqrt(60.0 / rate)))
    return {"age": f"{age} yrs", "sex": sex, "vent. rate": f"{rate} bpm", "pr": f"{pr} ms",
            "qrs": f"{qrs} ms", "qt/qtc": f"{qt}/{qtc} ms"}


def _header_lines(fields: dict[str, str], style: str) -> list[str]:
    """The printed lines of a header of ``style`` (``HEADER_STYLES``)."""
    first = ("name", "id", "date")
    paper = ("speed", "gain", "fs")
    if style == "minimal":
        return ["   ".join(fields[k] for k in ("id", "date", "speed", "gain") if k in fields)]
    lines = ["   ".join(f"{k.capitalize()}: {fields[k]}" for k in first if k in fields),
             "   ".join(v if k in paper else f"{k}: {v}"
                        for k, v in fields.items() if k not in first)]
    if style == "detailed":
        extra = {k: v for k, v in fields.items() if k not in first}
        lines = [lines[0],
                 "   ".join(f"{k.capitalize()}: {extra.pop(k)}" for k in ("age", "sex")
                            if k in extra),
                 "   ".join(f"{k.upper() if len(k) < 4 else k.capitalize()}: {extra.pop(k)}"
                            for k in ("vent. rate", "pr", "qrs", "qt/qtc") if k in extra),
                 "   ".join(v if k in paper else f"{k}: {v}" for k, v in extra.items())
                 + "   Unconfirmed - simulated page, not for diagnosis"]
    return [ln for ln in lines if ln]


def _draw_header(img: np.ndarray, fields: dict[str, str], geom: PageGeometry, ink,
                 style: StyleConfig = StyleConfig()) -> dict:
    """Print ``fields`` in the top band (two lines in the standard style); return its truth."""
    ppm = geom.px_per_mm
    lines = _header_lines(fields, style.header_style)
    # Text size relative to the standard 3 mm caps, shrunk where the lines would leave the band.
    s = min(style.font_scale, (TOP_BAND_MM - 1.5 - 3.0) / (3.0 + 5.0 * (len(lines) - 1)))
    font, cap_px = FONTS[style.font]
    scale, thick = 3.0 * s * ppm / cap_px, max(1, int(round(0.3 * s * ppm)))
    box = None
    for i, line in enumerate(lines):
        org = (geom.grid_bbox[0], (3.0 + 3.0 * s + 5.0 * s * i) * ppm)
        cv2.putText(img, line, (int(round(org[0])), int(round(org[1]))), font, scale, ink, thick,
                    cv2.LINE_AA)
        b = _text_box(line, org, scale, thick, font)
        box = b if box is None else _union(box, b)
    return {"fields": fields, "lines": lines, "bbox": box}


def _styled_palette(palette: Palette, style: StyleConfig) -> Palette:
    """``palette`` with the style's paper colour and grid contrast (unchanged for the defaults)."""
    if style.paper_colour is None and style.grid_contrast == 1.0:
        return palette
    paper = np.asarray(palette.paper if style.paper_colour is None else style.paper_colour, float)

    def line(colour):   # the line keeps its darkening (its ratio to the paper), scaled by contrast
        ratio = np.asarray(colour, float) / np.maximum(np.asarray(palette.paper, float), 1.0)
        mixed = paper * (1.0 - style.grid_contrast * (1.0 - ratio))
        return tuple(int(v) for v in np.clip(np.rint(mixed), 0, 255))

    return Palette(paper=tuple(int(v) for v in paper), minor=line(palette.minor),
                   major=line(palette.major))


def _pick_style(rng, style: StyleConfig = StyleConfig()) -> tuple[Palette, tuple[int, int, int]]:
    """Paper palette and ink colour. Fields the style leaves ``None`` are the study's: the
    defaults without ``rng``, else a draw from our family (palette first, then ink)."""
    if style.grid_colour is not None:
        palette = GRID_PALETTES[style.grid_colour]
    elif rng is None:
        palette = PALETTES[DEFAULT_PALETTE]
    else:
        names = sorted(PALETTES)
        palette = PALETTES[names[int(rng.integers(len(names)))]]
    if style.trace_colour is not None:
        ink = tuple(int(v) for v in style.trace_colour)
    elif rng is None:
        ink = INK_COLOURS[0]
    else:
        ink = INK_COLOURS[int(rng.integers(len(INK_COLOURS)))]
    return _styled_palette(palette, style), ink


def _check_style(style: StyleConfig) -> None:
    """Raise ``ValueError`` naming the known choices for an unknown style choice."""
    for value, known, what in ((style.grid_colour, GRID_COLOURS + (None,), "grid_colour"),
                               (style.font, tuple(FONTS), "font"),
                               (style.label_position, LABEL_POSITIONS, "label_position"),
                               (style.header_style, HEADER_STYLES, "header_style"),
                               (style.separator, SEPARATORS, "separator")):
        if value not in known:
            raise ValueError(f"unknown StyleConfig.{what} {value!r}; known: "
                             f"{', '.join(str(k) for k in known)}")


def random_style(rng: np.random.Generator,
                 cfg: StyleRangeConfig = StyleRangeConfig()) -> StyleConfig:
    """Draw one print style from ``cfg``'s choices and ranges (uniformly)."""
    def pick(options):
        return options[int(rng.integers(len(options)))]

    def between(lo_hi):
        return float(rng.uniform(*lo_hi))

    tint = rng.integers(0, cfg.paper_tint_max + 1, 3) if cfg.paper_tint_max > 0 else np.zeros(3)
    return StyleConfig(
        grid_colour=pick(cfg.grid_colours),
        paper_colour=tuple(int(255 - t) for t in tint),
        grid_contrast=between(cfg.grid_contrast),
        minor_lines=bool(rng.random() < cfg.minor_lines_p),
        minor_width_mm=between(cfg.minor_width_mm), major_width_mm=between(cfg.major_width_mm),
        trace_colour=tuple(int(v) for v in pick(cfg.trace_colours)),
        trace_width_mm=between(cfg.trace_width_mm),
        font=pick(cfg.fonts), font_scale=between(cfg.font_scale),
        label_position=pick(cfg.label_positions), header_style=pick(cfg.header_styles),
        separator=pick(cfg.separators) if len(cfg.separators) > 1 else cfg.separators[0])


# --- public API ----------------------------------------------------------------------------------
def render_page(signal: np.ndarray, fs: int, paper: PaperConfig = PaperConfig(),
                rng: np.random.Generator | None = None,
                header: dict | None = None,
                style: StyleConfig = StyleConfig()) -> tuple[np.ndarray, dict]:
    """Draw ``signal`` on a paper-ECG page and return ``(image, truth)``.

    Parameters
    ----------
    signal : ``(n_samples, 12)`` float, mV, leads in ``LEAD_NAMES`` order; lasts ``n / fs`` s.
    fs : sampling rate, Hz.
    paper : page settings (dpi, mm/s, mm/mV, layout, ...).
    rng : varies paper palette, ink colour and made-up header data; ``None`` gives the default look.
    header : extra or overriding header fields (printed only when ``paper.header``).
    style : print style (grid colour, line widths, trace, font, labels, header text); the
        default is the study's look and draws from ``rng`` exactly as before styles existed.

    Returns
    -------
    image : ``(H, W, 3)`` uint8 RGB with ``H, W = page_h_mm, page_w_mm * dpi / 25.4`` (rounded).
    truth : JSON-ready dict described in the module docstring.
    """
    sig = _check_signal(signal, fs)
    n = sig.shape[0]
    duration = n / fs
    layout_panels = panels(paper.layout, duration)        # ValueError for an unknown layout
    geom = page_geometry(paper, n_rows(paper.layout), duration)
    _check_style(style)
    palette, ink = _pick_style(rng, style)
    img = _grid_background(geom, palette, style).copy()
    width_mm = paper.trace_width_mm if style.trace_width_mm is None else style.trace_width_mm
    thick = max(1, int(round(width_mm * geom.px_per_mm)))

    panel_truth, polys = [], []
    for p in layout_panels:
        pt, pts = _panel_truth(p, sig, fs, geom, paper)
        panel_truth.append(pt)
        polys.append(_to_fixed(pts))
    cal_truth = []
    if paper.calibration_pulse:
        for r, base in enumerate(geom.baselines):
            pts = _calibration_points(geom, base, paper)
            polys.append(_to_fixed(pts))
            cal_truth.append({"row": r, "bbox": [float(pts[1, 0]), float(pts[2, 1]),
                                                 float(pts[4, 0]), float(base)],
                              "baseline_y": float(base)})
    cv2.polylines(img, polys, False, ink, thick, cv2.LINE_AA, _SHIFT)
    _draw_separators(img, layout_panels, panel_truth, geom, paper, ink, style.separator)
    for p, pt in zip(layout_panels, panel_truth):
        pt["bbox"] = _clip_box(_union(pt["bbox"], _draw_label(img, p, pt, geom, ink, style)),
                               geom)
    head = {}
    if paper.header:
        fields = _header_fields(header, paper, fs, rng)
        if style.header_style == "detailed":
            fields = {**fields, **_detailed_fields(rng), **{str(k): str(v)
                                                          for k, v in (header or {}).items()}}
        head = _draw_header(img, fields, geom, ink, style)

    truth = {
        "image_size": [geom.height, geom.width], "dpi": int(paper.dpi),
        "px_per_mm": float(geom.px_per_mm), "speed_mm_s": float(paper.speed_mm_s),
        "gain_mm_mv": float(paper.gain_mm_mv), "layout": paper.layout,
        "fs": int(fs) if float(fs).is_integer() else float(fs), "n_samples": int(n),
        "lead_names": list(LEAD_NAMES), "panels": panel_truth, "calibration": cal_truth,
        "grid": {"minor_px": float(geom.minor_px), "major_px": float(geom.major_px),
                 "origin": [float(geom.grid_bbox[0]), float(geom.grid_bbox[1])],
                 "bbox": [float(v) for v in geom.grid_bbox]},
        "header": head, "artefacts": {},
    }
    if style != StyleConfig():
        truth["style"] = {k: list(v) if isinstance(v, tuple) else v
                          for k, v in style.to_dict().items()}
    return img, truth


def _panel_truth(p: Panel, sig: np.ndarray, fs: float, geom: PageGeometry,
                 paper: PaperConfig) -> tuple[dict, np.ndarray]:
    """Truth entry (bbox without label yet) and float px points of one panel."""
    n = sig.shape[0]
    s0, s1 = int(round(p.t0_s * fs)), min(n, int(round(p.t1_s * fs)))
    base = geom.baselines[p.row]
    pts = _panel_points(sig[:, LEAD_INDEX[p.lead]], fs, s0, s1, geom.row_start_x, base, paper)
    span = paper.speed_mm_s * geom.px_per_mm
    cell = [geom.row_start_x + p.t0_s * span, geom.row_tops[p.row],
            geom.row_start_x + p.t1_s * span, geom.row_tops[p.row] + geom.row_pitch]
    ext = [float(pts[:, 0].min()), float(pts[:, 1].min()),
           float(pts[:, 0].max()), float(pts[:, 1].max())]
    truth = {"lead": p.lead, "row": p.row, "col": p.col, "rhythm": p.rhythm,
             "bbox": _union(cell, ext), "baseline_y": float(base), "x_start": float(pts[0, 0]),
             "sample_start": s0, "sample_end": s1, "trace": pts.tolist()}
    return truth, pts


def _clip_box(box: list[float], geom: PageGeometry) -> list[float]:
    """Clip a bbox to the image (px, pixel-centre coordinates)."""
    return [float(min(max(box[0], 0), geom.width - 1)), float(min(max(box[1], 0), geom.height - 1)),
            float(min(max(box[2], 0), geom.width - 1)), float(min(max(box[3], 0), geom.height - 1))]


def _draw_label(img: np.ndarray, p: Panel, pt: dict, geom: PageGeometry, ink,
                style: StyleConfig = StyleConfig()) -> list[float]:
    """Print the lead name at the panel start (above its baseline by default); return its bbox."""
    ppm, s = geom.px_per_mm, style.font_scale
    font, cap_px = FONTS[style.font]
    scale, thick = LABEL_HEIGHT_MM * s * ppm / cap_px, max(1, int(round(0.25 * s * ppm)))
    if style.label_position == "below":       # text top 3.5 mm under the baseline
        y = pt["baseline_y"] + (3.5 + LABEL_HEIGHT_MM * s) * ppm
    elif style.label_position == "corner":    # top-left corner of the panel's cell
        y = geom.row_tops[p.row] + (1.5 + LABEL_HEIGHT_MM * s) * ppm
    else:
        y = pt["baseline_y"] - LABEL_RISE_MM * ppm
    org = (pt["x_start"] + 1.0 * ppm, y)
    cv2.putText(img, p.lead, (int(round(org[0])), int(round(org[1]))), font, scale, ink, thick,
                cv2.LINE_AA)
    return _text_box(p.lead, org, scale, thick, font)


def _draw_separators(img: np.ndarray, layout_panels: list[Panel], panel_truth: list[dict],
                     geom: PageGeometry, paper: PaperConfig, ink, kind: str = "tick") -> None:
    """Vertical marks where one panel hands over to the next: a short tick on the baseline
    (``kind="tick"``), a tall bar centred on the new lead's first sample (``"bar"``), or none."""
    if kind == "none":
        return
    span = paper.speed_mm_s * geom.px_per_mm
    half = (TICK_HALF_MM if kind == "tick" else BAR_HALF_MM) * geom.px_per_mm
    width = 1 if kind == "tick" else max(1, int(round(BAR_WIDTH_MM * geom.px_per_mm)))
    for p, pt in zip(layout_panels, panel_truth):
        if p.col == 0:
            continue
        x = geom.row_start_x + p.t0_s * span
        y = geom.baselines[p.row] if kind == "tick" else float(pt["trace"][0][1])
        seg = _to_fixed(np.array([[x, y - half], [x, y + half]]))
        cv2.polylines(img, [seg], False, ink, width, cv2.LINE_AA, _SHIFT)


def drawn_mask(truth: dict) -> np.ndarray:
    """``(n_samples, 12)`` bool: True where the page shows that sample of that lead."""
    mask = np.zeros((truth["n_samples"], len(truth["lead_names"])), dtype=bool)
    index = {name: j for j, name in enumerate(truth["lead_names"])}
    for p in truth["panels"]:
        mask[p["sample_start"]:p["sample_end"], index[p["lead"]]] = True
    return mask


def masked_signal(signal: np.ndarray, truth: dict) -> np.ndarray:
    """Copy of ``signal`` (mV) with NaN wherever the page shows no sample of that lead."""
    sig = np.array(signal, dtype=float)
    mask = drawn_mask(truth)
    if sig.shape != mask.shape:
        raise SignalError(f"signal shape {sig.shape} does not match the page truth {mask.shape}; "
                          "pass the signal the page was rendered from")
    sig[~mask] = np.nan
    return sig
