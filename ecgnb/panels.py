"""Panel crops: the unit of input of the learned digitizer (``ecgnb.model``).

A page is cut into one crop per lead panel, each keeping the page's time resolution: a crop is a
``(height, width)`` float32 map of trace ink (0 = paper, 1 = darkest ink; the grid's colour is
removed by ``ecgnb.preprocess.darkness``) sampled on a fixed physical grid around the panel's
0 mV line:

* rows: ``height`` rows evenly spanning ``+half_mm`` (top row) to ``-half_mm`` (bottom row) around
  the baseline, i.e. +-``half_mm / gain`` mV; row ``(height - 1) / 2`` is 0 mV.
* columns: ``cols_per_s`` columns per second of record; column ``j`` is at time
  ``t0_s + j / cols_per_s``. A 2.5 s panel at 200 col/s is 500 columns (the page itself has
  ~197 px/s at 200 dpi, so nothing is shrunk). Longer panels (the 10 s rhythm strip) are cut
  into ``window_s`` windows.

With ``trace_channel`` (the default) a crop has a second channel on the same sampling grid: the
trace the classical digitizer (``ecgnb.digitize``) followed in that panel, one mark per column
drawn in crop coordinates (``trace_crop``).
The model then reads the ink with the classical reading beside it and learns where to trust it.

The target of a crop is the signal (mV) of its lead over ``[t0_s, t0_s + window_s)``, at ``fs`` Hz
(``window_s * fs`` samples, sample ``k`` at time ``t0_s + k / fs``).

Crops come from the classical preprocessing (deskew, grid, trace mask, layout detection), the same
path at training and inference, so the model never sees anything the test pages would not give
it. ``use_truth`` cuts the crops at the renderer's ground-truth positions instead (for tests and
for checking the detected boxes).
"""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import paths
from . import preprocess as pp
from .config import CropConfig, TraceReadConfig  # noqa: F401  (CropConfig: defined with the profiles)
from .dataset import load_index
from .digitize import digitize_straightened
from .errors import EcgnbError, SignalError
from .io import check_rgb, load_page
from .leads import LEAD_INDEX

CACHE_VERSION = 3   # bump when crops change meaning, so old caches are rebuilt




@dataclass
class PanelCrop:
    """One crop of one panel window, and where it came from on the page."""

    crop: np.ndarray            # (height, width) float32 ink 0..1 (see the module docstring), or
                                # (2, height, width) with the classical trace (``trace_channel``)
    lead: str
    row: int                    # printed row (0 = top)
    col: int                    # column within the row (rhythm strips: 0)
    rhythm: bool
    t0_s: float                 # s, record time of column 0 / target sample 0
    t1_s: float                 # s, t0_s + window_s
    x0: float                   # px, page x (upright page) of t0_s
    x1: float                   # px, page x of t1_s
    baseline_y: float           # px, y of 0 mV at x0
    slope: float                # px/px, dy/dx of the 0 mV line
    px_per_mm_x: float          # px/mm along time (measured from the grid, or truth)
    px_per_mm_y: float          # px/mm along amplitude
    source: str = "detected"    # "detected" (classical layout) or "truth"

    def sample_span(self, fs: float) -> tuple[int, int]:
        """``(first, end)`` sample indices (end exclusive) of this crop at ``fs`` Hz."""
        s0 = int(round(self.t0_s * fs))
        return s0, s0 + int(round((self.t1_s - self.t0_s) * fs))


@dataclass
class PageAnalysis:
    """What the classical preprocessing found on a page: the basis of the crops."""

    upright: np.ndarray         # (H, W, 3) uint8, deskewed page
    ink: np.ndarray             # (H, W) float32 0..1, trace-ink darkness of the upright page
    skew_deg: float             # deg (CCW) removed by deskew
    grid: pp.GridInfo
    layout: pp.LayoutInfo
    classical: object = None    # ecgnb.reading.Reading of the classical digitizer, when it was run


# --------------------------------------------------------------------------------------------
# Sampling a crop
# --------------------------------------------------------------------------------------------

def ink_map(image: np.ndarray, dark: np.ndarray | None = None, blur_px: float = 1.0) -> np.ndarray:
    """``(H, W)`` float32 trace ink 0..1: the smallest per-channel relative darkness.

    A coloured grid is dark in some channels only, so it nearly vanishes here; the trace is dark in
    all. ``dark`` is ``preprocess.darkness(image)`` when the caller has it. A light vertical blur
    (``blur_px`` sigma) keeps a 2 px pen line visible after the crop's vertical downsampling.
    """
    dark = pp.darkness(image) if dark is None else dark
    ink = pp.channel_min(dark).astype(np.float32)
    ink = vertical_blur(ink, blur_px)
    return ink


def vertical_blur(a: np.ndarray, blur_px: float) -> np.ndarray:
    """``a`` blurred along rows only (Gaussian, ``blur_px`` sigma); unchanged when ``blur_px`` <= 0."""
    if blur_px <= 0:
        return a
    k = 2 * int(np.ceil(3 * blur_px)) + 1
    return cv2.GaussianBlur(a, (1, k), sigmaX=0, sigmaY=blur_px)


def crop_offsets_mm(cfg: CropConfig) -> np.ndarray:
    """``(height,)`` mm above the 0 mV line of each crop row (top row ``+half_mm``)."""
    return np.linspace(cfg.half_mm, -cfg.half_mm, cfg.height)


def sample_crop(ink: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``ink`` at float px ``(map_x, map_y)`` (both ``(h, w)``); 0 outside."""
    return cv2.remap(ink, map_x.astype(np.float32), map_y.astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)


def _windows(t0: float, t1: float, window_s: float) -> list[float]:
    """Start times (s) of the whole ``window_s`` windows in ``[t0, t1)``."""
    n = int(np.floor((t1 - t0) / window_s + 1e-6))
    return [t0 + k * window_s for k in range(n)]


def crops_from_layout(analysis: PageAnalysis, cfg: CropConfig = CropConfig()) -> list[PanelCrop]:
    """One crop per ``window_s`` window of every detected panel (upright-page coordinates)."""
    g = analysis.grid
    dy_mm = crop_offsets_mm(cfg)
    out = []
    for i, box in enumerate(analysis.layout.panels):
        px_per_s = (box.x1 - box.x0) / (box.t1_s - box.t0_s)
        for ta in _windows(box.t0_s, box.t1_s, cfg.window_s):
            xs = box.x0 + (ta - box.t0_s + np.arange(cfg.width) / cfg.cols_per_s) * px_per_s  # (W,)
            ys = box.baseline_at(xs)[None, :] - dy_mm[:, None] * g.px_per_mm_y               # (H, W)
            X = np.broadcast_to(xs, ys.shape)
            crop = sample_crop(analysis.ink, X, ys)
            xa = box.x0 + (ta - box.t0_s) * px_per_s
            if cfg.channels == 2:
                if analysis.classical is None:
                    raise ValueError("trace_channel crops need analyse_page's classical traces")
                line = trace_crop(analysis.classical.traces.get(i, np.zeros((0, 2))), xa, px_per_s,
                                  box, g.px_per_mm_y, cfg)
                crop = np.stack([crop, line])                                      # (2, H, W)
            out.append(PanelCrop(crop=crop, lead=box.lead, row=box.row, col=box.col,
                                 rhythm=box.rhythm, t0_s=ta, t1_s=ta + cfg.window_s, x0=float(xa),
                                 x1=float(xa + cfg.window_s * px_per_s),
                                 baseline_y=float(box.baseline_at(xa)), slope=float(box.slope),
                                 px_per_mm_x=g.px_per_mm_x, px_per_mm_y=g.px_per_mm_y))
    return out


def crops_from_truth(image: np.ndarray, truth: dict, cfg: CropConfig = CropConfig()) -> list[PanelCrop]:
    """Crops at the renderer's ground-truth panel positions, on the page as given (not deskewed).

    Ink only (one channel, ``(height, width)``), whatever ``cfg.trace_channel`` says: these crops
    check positions, they do not feed a model.

    Positions are built on the clean page (``x_start``, ``baseline_y``, ``px_per_mm``) and mapped
    through ``truth["artefacts"]["homography"]`` when the page was augmented.
    """
    ppm, fs = float(truth["px_per_mm"]), float(truth["fs"])
    speed = float(truth.get("speed_mm_s", cfg.speed_mm_s))
    hom = truth.get("artefacts", {}).get("homography")
    hom = None if hom is None else np.asarray(hom, float)
    ink = ink_map(image, blur_px=cfg.blur_px)
    dy_mm = crop_offsets_mm(cfg)
    out = []
    for p in truth["panels"]:
        t_first = p["sample_start"] / fs
        t_end = p["sample_end"] / fs
        for ta in _windows(t_first, t_end, cfg.window_s):
            xs = p["x_start"] + (ta - t_first + np.arange(cfg.width) / cfg.cols_per_s) * speed * ppm
            X = np.broadcast_to(xs, (cfg.height, cfg.width))
            Y = np.broadcast_to(p["baseline_y"] - dy_mm[:, None] * ppm, X.shape)
            if hom is not None:
                pts = np.stack([X.ravel(), Y.ravel(), np.ones(X.size)], axis=1) @ hom.T
                X = (pts[:, 0] / pts[:, 2]).reshape(X.shape)
                Y = (pts[:, 1] / pts[:, 2]).reshape(X.shape)
            crop = sample_crop(ink, X, Y)
            out.append(PanelCrop(crop=crop, lead=p["lead"], row=int(p["row"]), col=int(p["col"]),
                                 rhythm=bool(p["rhythm"]), t0_s=ta, t1_s=ta + cfg.window_s,
                                 x0=float(X[0, 0]), x1=float(X[0, 0] + cfg.window_s * speed * ppm),
                                 baseline_y=float(p["baseline_y"]), slope=0.0, px_per_mm_x=ppm,
                                 px_per_mm_y=ppm, source="truth"))
    return out


# --------------------------------------------------------------------------------------------
# One page
# --------------------------------------------------------------------------------------------

def analyse_page(image: np.ndarray, layout: str = "3x4+1", duration_s: float = 10.0,
                 blur_px: float = CropConfig.blur_px) -> PageAnalysis:
    """Classical preprocessing and digitizing of one RGB page (``ecgnb.digitize.digitize_image``).

    Straightens the page (deskew + perspective), measures the grid, finds the layout and follows
    every trace; the crops are cut from the straightened page and may carry the traces as a
    second channel. Raises ``ImageError`` (not an ECG page) or ``LayoutError``.
    """
    check_rgb(image)
    upright, skew, dark = pp.straighten(image)
    result = digitize_straightened(upright, skew, dark, layout, duration_s=duration_s)
    return PageAnalysis(upright=upright, ink=ink_map(upright, dark, blur_px),
                        skew_deg=result.skew_deg, grid=result.grid, layout=result.layout,
                        classical=result)


def trace_crop(points: np.ndarray, xa: float, px_per_s: float, box, px_per_mm_y: float,
               cfg: CropConfig, sigma_rows: float = 0.7) -> np.ndarray:
    """``(height, width)`` float32 0..1: one panel's classical reading, one mark per crop column.

    ``points`` are the trace's ``(n, 2)`` x, y px on the upright page, ``xa`` the page x of the
    crop's first column and ``px_per_s`` the panel's px per second. Each column where the trace
    runs gets a small vertical Gaussian (``sigma_rows``) centred on the trace's row interpolated
    at that column, so the reading keeps its sub-row precision and its peaks (a drawn polyline
    would fill a steep stroke and blur which row belongs to the column) and no neighbour's trace
    shows. ``ecgnb.model.TraceReading`` reads it back as the column's centroid.
    """
    canvas = np.zeros((cfg.height, cfg.width), np.float32)
    pts = np.asarray(points, float)
    if len(pts) < 2:
        return canvas
    pts = pts[np.argsort(pts[:, 0], kind="stable")]
    col = (pts[:, 0] - xa) / px_per_s * cfg.cols_per_s
    mm = (box.baseline_at(pts[:, 0]) - pts[:, 1]) / px_per_mm_y          # mm above the 0 mV line
    row = (cfg.half_mm - mm) / (2 * cfg.half_mm) * (cfg.height - 1)
    j = np.arange(cfg.width)
    on = (j >= col[0]) & (j <= col[-1])
    r = np.interp(j, col, row)                                           # (W,) crop rows
    rows = np.arange(cfg.height)[:, None]
    canvas[:, on] = np.exp(-0.5 * ((rows - r[None, on]) / sigma_rows) ** 2)
    return canvas


def analyse_page_raw(image: np.ndarray, layout: str = "3x4+1", duration_s: float = 10.0,
                     blur_px: float = CropConfig.blur_px) -> PageAnalysis:
    """No preprocessing (the ablation): the page as given, panels where the template puts them.

    Nothing is measured on the page: no deskew, no grid removal or detection, no layout search.
    The scale is the nominal one of a US-letter page (``dpi`` = image width / 11 in) and the
    panel boxes are those ``ecgnb.render.page_geometry`` lays out for ``layout``; the ink map is
    plain grey darkness, so the grid stays in the crops.
    """
    from .config import PaperConfig
    from .layouts import n_rows, panels as layout_panels
    from .render import page_geometry

    check_rgb(image)
    paper = PaperConfig(layout=layout)
    paper = dataclasses.replace(paper, dpi=image.shape[1] / (paper.page_w_mm / 25.4))
    geom = page_geometry(paper, n_rows(layout), duration_s)
    ppm, span = geom.px_per_mm, paper.speed_mm_s * geom.px_per_mm
    boxes = [pp.PanelBox(lead=p.lead, row=p.row, col=p.col, rhythm=p.rhythm, t0_s=p.t0_s,
                         t1_s=p.t1_s, x0=geom.row_start_x + p.t0_s * span,
                         x1=geom.row_start_x + p.t1_s * span, y0=geom.row_tops[p.row],
                         y1=geom.row_tops[p.row] + geom.row_pitch, baseline_y=geom.baselines[p.row])
             for p in layout_panels(layout, duration_s)]
    grid = pp.GridInfo(px_per_mm=ppm, px_per_mm_x=ppm, px_per_mm_y=ppm, minor_px=ppm,
                       major_px=5 * ppm, colour=(0, 0, 0), confidence=0.0, found=False,
                       notes=["not measured: no preprocessing (template geometry)"])
    lay = pp.LayoutInfo(name=layout, rows=[], x_start=geom.row_start_x,
                        x_end=geom.row_start_x + duration_s * span, panels=boxes, confidence=0.0)
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    ink = 1.0 - gray / 255.0
    ink = vertical_blur(ink, blur_px)
    return PageAnalysis(upright=image, ink=ink, skew_deg=0.0, grid=grid, layout=lay)


FRONTS = ("classical", "trace_net")   # CropConfig.front


_TRACE_READERS: dict = {}   # one trace-network reader per process (its checkpoint loads once)


def trace_net_reader(checkpoint: str | Path | None = None):
    """The trace-network digitizer that cuts ``front="trace_net"`` crops (made once per process,
    keeping each page's probability until the next page). Its signal is not low-passed
    (``TraceReadConfig.lowpass_hz`` 0): the crops take its polylines, and its JSON, which the
    model's reading carries, then says truly that the model's signal was not filtered."""
    key = str(checkpoint)
    if key not in _TRACE_READERS:
        from .trace_reader import TraceNetDigitizer
        _TRACE_READERS[key] = TraceNetDigitizer(checkpoint, keep_probability=True,
                                                ink=TraceReadConfig(lowpass_hz=0.0))
    return _TRACE_READERS[key]


def analyse_page_trace_net(image: np.ndarray, layout: str = "3x4+1", duration_s: float = 10.0,
                           blur_px: float = CropConfig.blur_px, reader=None) -> PageAnalysis:
    """The trace network as the front of the crops: its reader (``ecgnb.trace_reader``)
    flattens or straightens the page, finds the layout and follows every trace; the crops are
    cut from the network's trace probability on that page (the ink) beside its reading (the
    trace channel). Raises the reader's ``ImageError`` / ``LayoutError``."""
    from .reading import ReadOptions

    check_rgb(image)
    reader = reader or trace_net_reader()
    result = reader.read(image, ReadOptions(layout=layout, duration_s=duration_s))
    prob = reader.probability(result.upright).astype(np.float32)
    return PageAnalysis(upright=result.upright, ink=vertical_blur(prob, blur_px),
                        skew_deg=result.skew_deg, grid=result.grid, layout=result.layout,
                        classical=result)


def analyse_for(image: np.ndarray, layout: str, duration_s: float, cfg: CropConfig) -> PageAnalysis:
    """``analyse_page`` (``cfg.front`` classical) or ``analyse_page_trace_net`` (trace_net);
    ``analyse_page_raw`` when ``cfg.preprocess`` is off."""
    if cfg.front not in FRONTS:
        raise ValueError(f"unknown crop front {cfg.front!r}; known: {', '.join(FRONTS)}")
    if not cfg.preprocess:
        return analyse_page_raw(image, layout, duration_s, cfg.blur_px)
    fn = analyse_page_trace_net if cfg.front == "trace_net" else analyse_page
    return fn(image, layout, duration_s, cfg.blur_px)


def extract_panels(image: np.ndarray, layout: str = "3x4+1", use_truth: dict | None = None,
                   cfg: CropConfig = CropConfig(), duration_s: float = 10.0) -> list[PanelCrop]:
    """Crops of every panel window of a page ``(H, W, 3)`` uint8 RGB.

    By default from the classical preprocessing (``analyse_page``); with ``use_truth`` (the
    renderer's truth dict) at the true panel positions. Crops are ``(cfg.height, cfg.width)``.
    """
    if use_truth is not None:
        return crops_from_truth(image, use_truth, cfg)
    return crops_from_layout(analyse_for(image, layout, duration_s, cfg), cfg)


def crop_target(signal: np.ndarray, crop: PanelCrop, fs_signal: float,
                cfg: CropConfig = CropConfig()) -> np.ndarray | None:
    """``(cfg.n_samples,)`` mV of ``crop``'s lead over its window at ``cfg.fs``; None if not all drawn.

    ``signal`` is ``(n_samples, 12)`` mV at ``fs_signal`` Hz with NaN where the page shows nothing;
    a window with any NaN (or running past the record) is not a usable target.
    """
    col = signal[:, LEAD_INDEX[crop.lead]]
    t = crop.t0_s + np.arange(cfg.n_samples) / cfg.fs                  # (T,) s
    if fs_signal == cfg.fs:
        s0 = int(round(crop.t0_s * fs_signal))
        if s0 < 0 or s0 + cfg.n_samples > col.size:
            return None
        y = col[s0:s0 + cfg.n_samples]
    else:
        k = t * fs_signal
        if k[0] < 0 or k[-1] > col.size - 1:
            return None
        y = np.interp(k, np.arange(col.size), col)
    return None if np.isnan(y).any() else y.astype(np.float32)


# --------------------------------------------------------------------------------------------
# A whole split, cached
# --------------------------------------------------------------------------------------------

META_COLUMNS = ("page", "record", "severity", "lead", "row", "col", "rhythm", "t0_s", "t1_s",
                "x0", "baseline_y", "px_per_mm_x", "px_per_mm_y")


def _page_crops(job: tuple) -> dict:
    """Worker: crops, targets and meta rows of one page (errors returned, not raised)."""
    root, row, layout, cfg_dict, use_truth = job
    cfg = CropConfig(**cfg_dict)
    rel = Path(row["path"])
    image, signal, truth = load_page(Path(root) / rel.parent, rel.name)
    try:
        crops = extract_panels(image, layout, truth if use_truth else None, cfg,
                               duration_s=truth["n_samples"] / truth["fs"])
    except EcgnbError as exc:
        return {"page": row["page"], "error": f"{type(exc).__name__}: {exc}"}
    xs, ys, meta, dropped = [], [], [], 0
    for c in crops:
        y = crop_target(signal, c, float(truth["fs"]), cfg)
        if y is None:
            dropped += 1
            continue
        crop = c.crop if c.crop.ndim == 3 else c.crop[None]                # (C, H, W)
        xs.append(np.round(np.clip(crop, 0, 1) * 255).astype(np.uint8))
        ys.append(y)
        meta.append({"page": row["page"], "record": row["record"], "severity": row["severity"],
                     **{k: getattr(c, k) for k in META_COLUMNS[3:]}})
    return {"page": row["page"], "x": xs, "y": ys, "meta": meta, "dropped": dropped}


def _one_thread() -> None:
    """Worker start: the trace network on one thread per worker (the workers share the cores)."""
    import torch
    torch.set_num_threads(1)


def _code_hash(front: str = "classical") -> str:
    """Hash of the code that decides where crops are cut: this module, the preprocessing (all
    its parts) and the classical digitizer (its reading is the trace channel); for the
    ``trace_net`` front also its reader, the flattening and the committed network.

    Part of the cache key: a fix to layout detection must not leave training on stale crops.
    """
    import hashlib
    import inspect
    import sys

    h = hashlib.sha1()
    from . import digitize, grid, layout_detect, straighten

    for mod in (pp, grid, straighten, layout_detect, digitize, sys.modules[__name__]):
        h.update(inspect.getsource(mod).encode())
    if front == "trace_net":    # its reader and network decide the crops too
        from . import rectified, rectify, trace_net, trace_reader
        for mod in (rectify, rectified, trace_net, trace_reader):
            h.update(inspect.getsource(mod).encode())
        h.update(hashlib.sha1(trace_net.DEFAULT_CHECKPOINT.read_bytes()).digest())
    return h.hexdigest()[:16]


def panel_cache_path(profile_name: str, split: str, data_dir: Path | None = None,
                     use_truth: bool = False, preprocess: bool = True, trace: bool = True,
                     front: str = "classical") -> Path:
    """``data/<profile>/panels_<split>.npz``; ``panels_truth_``, ``panels_raw_`` and
    ``panels_ink_`` for truth crops, crops without preprocessing and crops without the trace
    channel, and ``panels_tracenet_`` (``panels_tracenet_ink_``) for the trace network's
    front, so the variants of notebook 04 keep their caches apart."""
    root = Path(data_dir or paths.data_dir(profile_name))
    tag = "truth_" if use_truth else "raw_" if not preprocess else "" if trace else "ink_"
    if front == "trace_net" and preprocess and not use_truth:
        tag = "tracenet_" + tag
    return root / f"panels_{tag}{split}.npz"


def _save_npz_atomic(path: Path, **arrays) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez_compressed(tmp, **arrays)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_panel_arrays(profile_name: str, split: str, cfg: CropConfig = CropConfig(),
                       layout: str = "3x4+1", data_dir: Path | None = None, cache: bool = True,
                       progress: bool = True, max_pages: int | None = None, workers: int = 1,
                       use_truth: bool = False, log=print
                       ) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Crops and targets of every page of one split: ``(X, Y, meta)``.

    ``X`` is ``(N, 1, cfg.height, cfg.width)`` float32 ink 0..1, ``Y`` ``(N, cfg.n_samples)``
    float32 mV, ``meta`` one row per crop (``META_COLUMNS``). ``meta.attrs`` holds ``crop`` (the
    ``CropConfig`` as a dict), ``pages``, ``skipped`` (``{page: reason}``, pages where the layout
    was not found) and ``dropped`` (crops whose target window was not fully drawn).

    Cached in ``panel_cache_path`` (compressed npz, written atomically); a cache made with other
    settings or another page list is rebuilt. ``workers`` > 1 preprocesses pages in parallel.
    """
    root = Path(data_dir or paths.data_dir(profile_name))
    index = load_index(profile_name, data_dir)
    index = index[index["split"] == split].sort_values("page")
    if max_pages is not None:
        index = index.iloc[:max_pages]
    if index.empty:
        raise SignalError(f"the {profile_name} dataset has no pages in split {split!r}")
    key = json.dumps({"version": CACHE_VERSION, "crop": cfg.to_dict(), "layout": layout,
                      "use_truth": use_truth, "pages": index["page"].tolist(),
                      "code": _code_hash(cfg.front)}, sort_keys=True)
    path = panel_cache_path(profile_name, split, data_dir, use_truth, cfg.preprocess,
                            cfg.trace_channel, cfg.front)
    if cache and path.exists():
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) == key:
                return _from_cache(z)
        log(f"{path.name}: settings or pages changed, rebuilding")
    jobs = [(str(root), row._asdict(), layout, cfg.to_dict(), use_truth)
            for row in index.itertuples(index=False)]
    bar = dict(total=len(jobs), desc=f"panels {profile_name}/{split}", disable=not progress)
    if workers > 1:
        import multiprocessing as mp
        init = _one_thread if cfg.front == "trace_net" else None
        with mp.get_context("spawn").Pool(workers, initializer=init) as pool:
            results = list(tqdm(pool.imap(_page_crops, jobs), **bar))
    else:
        results = [_page_crops(j) for j in tqdm(jobs, **bar)]
    skipped = {r["page"]: r["error"] for r in results if "error" in r}
    ok = [r for r in results if "error" not in r]
    xs = [x for r in ok for x in r["x"]]
    ys = [y for r in ok for y in r["y"]]
    meta = pd.DataFrame([m for r in ok for m in r["meta"]], columns=list(META_COLUMNS))
    dropped = int(sum(r["dropped"] for r in ok))
    if skipped:
        log(f"{split}: layout not found on {len(skipped)}/{len(jobs)} pages, skipped: "
            + ", ".join(sorted(skipped)))
    x8 = np.stack(xs) if xs else np.zeros((0, 1, cfg.height, cfg.width), np.uint8)
    y = np.stack(ys) if ys else np.zeros((0, cfg.n_samples), np.float32)
    attrs = {"crop": cfg.to_dict(), "pages": len(jobs), "skipped": skipped, "dropped": dropped}
    if cache:
        _save_npz_atomic(path, key=np.array(key), x=x8, y=y, meta=np.array(meta.to_json()),
                         attrs=np.array(json.dumps(attrs)))
    meta.attrs.update(attrs)
    return x8.astype(np.float32) / 255.0, y, meta


def _from_cache(z) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    from io import StringIO
    meta = pd.read_json(StringIO(str(z["meta"])))
    meta = meta.reindex(columns=list(META_COLUMNS))
    meta.attrs.update(json.loads(str(z["attrs"])))
    return z["x"].astype(np.float32) / 255.0, z["y"].astype(np.float32), meta
