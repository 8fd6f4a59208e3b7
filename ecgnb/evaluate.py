"""Scoring digitizers on pages with known ground truth: our dataset and ECG-Image-Kit pages.

A *digitizer* here is any callable ``image (H, W, 3) uint8 -> signal (n_samples, 12) mV`` at the
study's fs (NaN where it read nothing); the Challenge's small fixed interface, so any method is
scored the same way. Results are long tables: one row per (page, lead) with the columns of
``ecgnb.metrics.record_metrics`` plus the page's record, split, severity and seconds taken.
"""
from __future__ import annotations

import dataclasses
import gzip
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import digitizers, io, paths
from .dataset import load_index, load_page
from .errors import EcgnbError, MissingInputError
from .leads import LEAD_NAMES, canonical_lead
from .metrics import record_metrics
from .reading import ReadOptions
from .sources import read_record

Digitizer = Callable[[np.ndarray], object]


def page_diagnostics(result) -> dict:
    """Flat per-page diagnostics of an ``ecgnb.reading.Reading`` (empty for a bare array).

    ``px_per_mm`` (grid, from the page itself), ``skew_deg``, ``layout_confidence`` and the
    median ``mm_per_mv`` of the calibration pulses found (10 on a standard print).
    """
    if not hasattr(result, "diagnostics"):
        return {}
    d = result.diagnostics()
    pulses = [c["mm_per_mv"] for c in d.get("calibration", []) if c and "mm_per_mv" in c]
    return {"px_per_mm": d["grid"]["px_per_mm"], "skew_deg": d["skew_deg"],
            "layout_confidence": d["layout"]["confidence"],
            "mm_per_mv": float(np.median(pulses)) if pulses else np.nan}


def score_page(digitize: Digitizer, image: np.ndarray, reference: np.ndarray, fs: int) -> pd.DataFrame:
    """Per-lead metrics of one page; a digitizer error scores as an all-missing output.

    ``digitize`` returns a signal ``(n, 12)`` mV or an object with ``.signal`` (and optionally
    ``.diagnostics()``, kept as extra columns). A failure is scored as a missing output, which the
    Challenge scorer gives 0 dB per lead (no sample matched), so it costs SNR instead of vanishing
    from the average; ``error`` keeps the reason.
    """
    start = time.perf_counter()
    error, extra = "", {}
    try:
        result = digitize(image)
        estimate = getattr(result, "signal", result)
        extra = page_diagnostics(result)
    except EcgnbError as exc:
        estimate, error = np.full_like(reference, np.nan), f"{type(exc).__name__}: {exc}"
    table = record_metrics(reference, estimate, fs)
    return table.assign(seconds=time.perf_counter() - start, error=error, **extra)


def score_dataset(digitize: Digitizer, index: pd.DataFrame, data_dir: Path, fs: int,
                  progress: bool = True, desc: str = "scoring") -> pd.DataFrame:
    """Score ``digitize`` on every page of ``index`` (rows of ``data/<profile>/index.csv``)."""
    frames = []
    for row in tqdm(list(index.itertuples()), desc=desc, disable=not progress):
        rel = Path(row.path)
        image, reference, truth = io.load_page(Path(data_dir) / rel.parent, rel.name)
        frames.append(score_page(digitize, image, reference, fs).assign(
            page=row.page, record=row.record, origin=row.origin, split=row.split,
            severity=row.severity, true_px_per_mm=truth["px_per_mm"]))
    return pd.concat(frames, ignore_index=True)


def eik_reference(annotation: dict, signal: np.ndarray) -> np.ndarray:
    """``signal`` (n, 12) mV with NaN outside the samples an ECG-Image-Kit page draws per lead."""
    out = np.full_like(signal, np.nan)
    for lead in annotation["leads"]:
        k = LEAD_NAMES.index(canonical_lead(lead["lead_name"]))
        s0, s1 = int(lead["start_sample"]), int(lead["end_sample"])
        out[s0:s1, k] = signal[s0:s1, k]
    return out


def eik_pages(folder: Path = paths.EIK_DEV, real_folder: Path = paths.REAL_ECG,
              fs: int = 500) -> list[tuple[str, Path, np.ndarray]]:
    """``(name, image path, reference)`` of each ECG-Image-Kit page in ``folder``.

    The reference is the source record from ``real_folder`` at ``fs`` Hz, NaN where not drawn.
    """
    if not Path(folder).exists():
        raise MissingInputError(f"{folder} not found: the ECG-Image-Kit pages lie in "
                                "../shared/data/eik-dev beside the checkout")
    out = []
    for image_path in sorted(Path(folder).glob("*.jpg")):
        record = image_path.stem.rsplit("-", 1)[0]
        annotation = json.loads(gzip.open(image_path.with_suffix(".json.gz")).read())
        matches = list(Path(real_folder).glob(f"*/{record}.hea"))
        if not matches:
            raise MissingInputError(f"source record {record} of {image_path.name} not found "
                                    f"under {real_folder}")
        annotation_fs = float(annotation["sampling_frequency"])
        signal = read_record(matches[0].with_suffix(""), fs=int(annotation_fs)).signal
        reference = eik_reference(annotation, signal)
        if int(annotation_fs) != fs:
            raise MissingInputError(f"{image_path.name} is drawn at {annotation_fs} Hz; "
                                    f"score it at that rate, not {fs} Hz")
        out.append((image_path.stem, image_path, reference))
    return out


def score_eik(digitize: Digitizer, fs: int = 500, progress: bool = True) -> pd.DataFrame:
    """Score ``digitize`` on the ECG-Image-Kit development pages (one row per page and lead)."""
    frames = []
    for name, image_path, reference in tqdm(eik_pages(fs=fs), desc="eik pages",
                                            disable=not progress):
        frames.append(score_page(digitize, io.read_image(image_path), reference, fs)
                      .assign(page=name, record=name.rsplit("-", 1)[0], origin="ecg-image-kit"))
    return pd.concat(frames, ignore_index=True)


def photo_pages(folder: Path = paths.PHOTOS_DEV, fs: int = 500) -> list[tuple[str, Path, np.ndarray]]:
    """``(name, image path, reference)`` of each phone photo in ``folder`` (``photos-dev``).

    Each ``<record>-0.jpg`` has its signal beside it as WFDB ``<record>.hea/.dat`` (mV, NaN where
    the page shows no sample). For measurement only: nothing may be trained or tuned on them.
    """
    if not Path(folder).exists():
        raise MissingInputError(f"{folder} not found: the phone photos lie in "
                                "../shared/data/photos-dev beside the checkout")
    out = []
    for image_path in sorted(Path(folder).glob("*.jpg")):
        record = Path(folder) / image_path.stem.rsplit("-", 1)[0]
        if not record.with_suffix(".hea").exists():
            raise MissingInputError(f"signal {record}.hea of {image_path.name} not found")
        signal, record_fs, names = io.read_wfdb(record)
        if int(record_fs) != fs:
            raise MissingInputError(f"{record.name} is sampled at {record_fs} Hz; score it at that "
                                    f"rate, not {fs} Hz")
        reference = np.full((signal.shape[0], len(LEAD_NAMES)), np.nan)
        reference[:, [LEAD_NAMES.index(canonical_lead(n)) for n in names]] = signal
        out.append((image_path.stem, image_path, reference))
    return out


def score_photos(digitize: Digitizer, fs: int = 500, progress: bool = True) -> pd.DataFrame:
    """Score ``digitize`` on the phone photos of ``photos-dev`` (one row per photo and lead).

    A refused photo scores as an all-missing output (0 dB), as ``score_page`` does for any page.
    """
    frames = []
    for name, image_path, reference in tqdm(photo_pages(fs=fs), desc="photos", disable=not progress):
        frames.append(score_page(digitize, io.read_image(image_path), reference, fs)
                      .assign(page=name, record=name.rsplit("-", 1)[0], origin="photo"))
    return pd.concat(frames, ignore_index=True)


def per_page(table: pd.DataFrame) -> pd.DataFrame:
    """Mean aligned SNR (dB) per page (rows) and method (columns), and whether it was refused."""
    finite = table.replace([np.inf, -np.inf], np.nan)
    out = finite.pivot_table(index="page", columns="method", values="snr_db", aggfunc="mean")
    refused = table.groupby(["page", "method"])["error"].first().ne("").unstack("method")
    return out.join(refused.add_suffix("_refused"))


def summary_by(table: pd.DataFrame, by: str | list[str]) -> pd.DataFrame:
    """Mean of each metric over (page, lead) rows grouped by ``by``.

    nanmean as in the Challenge, except that ±inf (a perfect or an empty lead) is left out too,
    so one such lead cannot make a whole group inf.
    """
    cols = ["snr_db", "snr_db_unaligned", "mse", "mae", "pearson_r"]
    finite = table.replace([np.inf, -np.inf], np.nan)
    out = finite.groupby(by)[cols].mean()
    out["pages"] = table.groupby(by)["page"].nunique()
    return out


def geometry_check(table: pd.DataFrame, by: str = "severity") -> pd.DataFrame:
    """How well the page's own grid and calibration pulses gave the scale, grouped by ``by``.

    ``px_per_mm_error_pct``: mean |detected - true| / true px/mm, in %; ``mm_per_mv``: median
    calibration-pulse height (10 mm/mV on a standard print); ``pulse_found``: share of pages
    where at least one pulse was found.
    """
    pages = table.drop_duplicates("page").copy()
    pages["px_per_mm_error_pct"] = 100 * (pages["px_per_mm"] - pages["true_px_per_mm"]).abs() \
        / pages["true_px_per_mm"]
    grouped = pages.groupby(by)
    return pd.DataFrame({"px_per_mm_error_pct": grouped["px_per_mm_error_pct"].mean(),
                         "mm_per_mv": grouped["mm_per_mv"].median(),
                         "pulse_found": grouped["mm_per_mv"].apply(lambda s: s.notna().mean()),
                         "seconds_per_page": grouped["seconds"].mean(),
                         "pages": grouped.size()})


def _oracle_panel(panel: dict, truth: dict, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Sample indices and mV of one clean panel read once per image column from its true trace."""
    trace = np.asarray(panel["trace"], dtype=float)                     # (n, 2) x, y px
    px_per_s = truth["speed_mm_s"] * truth["px_per_mm"]
    px_per_mv = truth["gain_mm_mv"] * truth["px_per_mm"]
    columns = np.arange(np.ceil(trace[0, 0]), np.floor(trace[-1, 0]) + 1)  # px, column centres
    mv = (panel["baseline_y"] - np.interp(columns, trace[:, 0], trace[:, 1])) / px_per_mv
    t = panel["sample_start"] / fs + (columns - panel["x_start"]) / px_per_s   # s
    idx = np.arange(panel["sample_start"], panel["sample_end"])
    return idx, np.interp(idx / fs, t, mv)


def column_oracle(truth: dict, fs: float) -> np.ndarray:
    """The best any column-wise reader can do on a clean page: ``(n_samples, 12)`` mV.

    Reads the *true* trace at each image column centre (about 197 columns per second at
    200 dpi), converts with the true geometry and resamples to ``fs``, as a digitizer would.
    Its SNR is the page's resolution limit for such readers. Clean pages only: after
    augmentation the truth no longer gives the clean geometry.
    """
    if truth.get("artefacts", {}).get("kinds"):
        raise ValueError("column_oracle needs a clean page (no artefacts applied)")
    out = np.full((truth["n_samples"], len(LEAD_NAMES)), np.nan)
    for panel in sorted(truth["panels"], key=lambda p: not p["rhythm"]):  # rhythm strips first
        idx, mv = _oracle_panel(panel, truth, fs)
        col = out[:, LEAD_NAMES.index(panel["lead"])]
        fill = np.isnan(col[idx])
        col[idx[fill]] = mv[fill]
    return out


def score_truth_oracle(index: pd.DataFrame, data_dir: Path, fs: int) -> pd.DataFrame:
    """``column_oracle`` scored on the clean pages of ``index`` (one row per page and lead)."""
    frames = []
    for row in index[index["severity"] == 0].itertuples():
        rel = Path(row.path)
        image, reference, truth = io.load_page(Path(data_dir) / rel.parent, rel.name)
        frames.append(score_page(lambda im: column_oracle(truth, fs), image, reference, fs)
                      .assign(page=row.page, record=row.record, origin=row.origin))
    return pd.concat(frames, ignore_index=True)


def score_named_set(name: str, digitize: Digitizer, profile: str | None = None) -> pd.DataFrame:
    """Long score table of one named set: ``eik-dev``, ``photos-dev`` or anything else, read as
    the test split of ``data/<profile>`` (at 500 Hz, as the shared sets)."""
    if name == "eik-dev":
        return score_eik(digitize)
    if name == "photos-dev":
        return score_photos(digitize)
    return score_dataset(digitize, load_split(profile, "test"), paths.data_dir(profile), 500)


def load_split(profile_name: str, split: str, data_dir: Path | None = None) -> pd.DataFrame:
    """Rows of the dataset index that belong to ``split``, sorted by page name.

    Sorted so that anything drawn from them (a seeded sample, the first records) does not depend
    on the order in which the dataset was built.
    """
    index = load_index(profile_name, data_dir)
    return index[index["split"] == split].sort_values("page", ignore_index=True)


def method(name: str, layout: str = "3x4+1", fs: float = 500, profile=None,
           **settings) -> Digitizer:
    """The registered digitizer ``name`` (``ecgnb.digitizers``, made once with ``settings``,
    e.g. ``checkpoint=``) as a ``Digitizer`` reading pages of ``layout`` at ``fs`` Hz, with the
    paper scales and preprocessing settings of ``profile`` (an ``ecgnb.config.Profile``; None:
    the defaults)."""
    reader = digitizers.get(name, **settings)
    options = ReadOptions(layout=layout, fs=float(fs))
    if profile is not None:
        options = dataclasses.replace(options, paper=profile.paper, preprocess=profile.preprocess)
    return lambda image: reader.read(image, options)


def compare_methods(methods: dict[str, Digitizer], index: pd.DataFrame, data_dir: Path,
                    fs: int) -> pd.DataFrame:
    """One row per method: mean metrics over the pages of ``index`` and leads, s per page."""
    rows = {}
    for name, digitize in methods.items():
        table = score_dataset(digitize, index, data_dir, fs, desc=name)
        rows[name] = summary_by(table.assign(method=name), "method").iloc[0]
        rows[name]["seconds_per_page"] = table.groupby("page")["seconds"].first().mean()
    return pd.DataFrame(rows).T.rename_axis("method")


# --------------------------------------------------------------------------------------------
# Notebook 05: every method on the test split, robustness, the paper's protocol
# --------------------------------------------------------------------------------------------

# Mean SNR (dB) the paper reports for its reconstructions (Nemati & Jafari Tadi); set beside
# ours under its protocol (lead II, no alignment), not a result of this code.
PAPER_SNR_DB = 9.53


def score_methods(methods: dict[str, Digitizer], index: pd.DataFrame, data_dir: Path, fs: int,
                  progress: bool = True) -> pd.DataFrame:
    """Long table of every method on every page of ``index``: ``score_dataset`` rows + ``method``."""
    return pd.concat([score_dataset(fn, index, data_dir, fs, progress, desc=name).assign(method=name)
                      for name, fn in methods.items()], ignore_index=True)


def dpi_pages(profile, records: list[str], dpis: list[int], severity: float = 0.0):
    """Yield ``(record, dpi, image, reference)``: the named source records drawn at each dpi.

    The records are regenerated from the profile (``ecgnb.dataset.collect_sources``), drawn with
    the profile's paper at ``dpi`` and, for ``severity`` > 0, the study's artefacts; the
    reference is the drawn part of the signal (mV, NaN elsewhere).
    """
    import dataclasses

    from .dataset import collect_sources, make_page, page_rng

    sources = {r.name: r for r in collect_sources(profile, log=lambda *_: None)}
    missing = sorted(set(records) - set(sources))
    if missing:
        raise MissingInputError(f"records not in profile {profile.name!r}: {missing}")
    for name in records:
        for dpi in dpis:
            at_dpi = dataclasses.replace(profile, paper=dataclasses.replace(profile.paper, dpi=int(dpi)))
            rng = page_rng(profile.seed, f"{name}-dpi{dpi}-s{severity}")
            image, reference, _ = make_page(sources[name], severity, at_dpi, rng)
            yield name, int(dpi), image, reference


def score_dpi(methods: dict[str, Digitizer], profile, records: list[str], dpis: list[int],
              fs: int, severity: float = 0.0, progress: bool = True) -> pd.DataFrame:
    """Long table (``method``, ``dpi``, ``record``, lead metrics) of every method at every dpi."""
    frames = []
    pages = list(dpi_pages(profile, records, dpis, severity))
    for name, fn in methods.items():
        for rec, dpi, image, ref in tqdm(pages, desc=f"dpi {name}", disable=not progress):
            frames.append(score_page(fn, image, ref, fs).assign(
                method=name, dpi=dpi, record=rec, page=f"{rec}-dpi{dpi}", severity=severity))
    return pd.concat(frames, ignore_index=True)


def method_summary(table: pd.DataFrame, by: str | list[str] = "method") -> pd.DataFrame:
    """``summary_by`` plus the median SNR and the share of leads with SNR < 0 dB (failures)."""
    out = summary_by(table, by)
    finite = table.replace([np.inf, -np.inf], np.nan)
    out["snr_db_median"] = finite.groupby(by)["snr_db"].median()
    out["leads_below_0db_pct"] = 100 * finite.groupby(by)["snr_db"].apply(lambda s: (s < 0).mean())
    return out


def per_lead(table: pd.DataFrame, metric: str = "snr_db") -> pd.DataFrame:
    """Mean ``metric`` per method (rows) and lead (columns, ``LEAD_NAMES`` order) plus ``all``."""
    finite = table.replace([np.inf, -np.inf], np.nan)
    out = finite.pivot_table(index="method", columns="lead", values=metric, aggfunc="mean")
    out = out.reindex(columns=[c for c in LEAD_NAMES if c in out.columns])
    out["all"] = finite.groupby("method")[metric].mean()
    return out


def paper_protocol(table: pd.DataFrame, lead: str = "II") -> pd.DataFrame:
    """The paper's protocol: lead ``lead`` only, SNR without alignment, per method.

    Columns: mean and median unaligned SNR (dB), the aligned SNR for reference, leads scored,
    and ``paper_snr_db`` (the paper's reported mean, ``PAPER_SNR_DB``). The paper's exact test
    set and alignment are not public, so the numbers are comparable in protocol, not in data.
    """
    sub = table[table["lead"] == lead].replace([np.inf, -np.inf], np.nan)
    g = sub.groupby("method")
    return pd.DataFrame({"snr_db_unaligned": g["snr_db_unaligned"].mean(),
                         "snr_db_unaligned_median": g["snr_db_unaligned"].median(),
                         "snr_db_aligned": g["snr_db"].mean(),
                         "mse": g["mse"].mean(), "mae": g["mae"].mean(),
                         "leads": g["snr_db_unaligned"].count(),
                         "paper_snr_db": PAPER_SNR_DB})


def page_scores(table: pd.DataFrame, method: str) -> pd.Series:
    """Mean SNR (dB) over the leads of each page for ``method``, ascending."""
    sub = table[table["method"] == method].replace([np.inf, -np.inf], np.nan)
    return sub.groupby("page")["snr_db"].mean().sort_values()


def pick_pages(table: pd.DataFrame, method: str) -> dict[str, str]:
    """The ``good`` (best), ``median`` and ``worst`` page of ``method`` by mean page SNR."""
    s = page_scores(table, method).dropna()
    if s.empty:
        raise ValueError(f"no scored pages for method {method!r}")
    return {"good": s.index[-1], "median": s.index[len(s) // 2], "worst": s.index[0]}


def worst_leads(table: pd.DataFrame, method: str, n: int = 6) -> pd.DataFrame:
    """The ``n`` (page, lead) rows of ``method`` with the lowest SNR (dB)."""
    sub = table[table["method"] == method].replace([np.inf, -np.inf], np.nan)
    return sub.dropna(subset=["snr_db"]).nsmallest(n, "snr_db")


def failure_items(table: pd.DataFrame, method: str, digitize: Digitizer, data_dir: Path,
                  fs: int, n: int = 6) -> list[dict]:
    """Gallery items (``plots.plot_failure_gallery``) of the ``n`` worst leads of ``method``.

    Each page is digitized again (digitizers are deterministic) to get its estimate; the snippet
    is the lead's printed panel (its ground-truth box, the rhythm strip for a lead printed twice).
    """
    index = load_index_rows(table, data_dir)
    items = []
    for row in worst_leads(table, method, n).itertuples():
        rel = Path(index.loc[row.page, "path"])
        image, reference, truth = io.load_page(Path(data_dir) / rel.parent, rel.name)
        result = digitize(image)
        estimate = getattr(result, "signal", result)
        k = LEAD_NAMES.index(row.lead)
        boxes = [p for p in truth["panels"] if p["lead"] == row.lead]
        box = max(boxes, key=lambda p: p["bbox"][2] - p["bbox"][0])["bbox"]
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        shown = np.isfinite(reference[:, k])
        t = np.arange(reference.shape[0]) / fs
        items.append({"image": image[max(0, y0):y1 + 1, max(0, x0):x1 + 1], "t": t[shown],
                      "reference": reference[shown, k], "estimate": estimate[shown, k],
                      "title": f"{row.page} lead {row.lead}: {row.snr_db:.1f} dB ({method})"})
    return items


def load_index_rows(table: pd.DataFrame, data_dir: Path) -> pd.DataFrame:
    """The dataset index rows (by page) of the pages in ``table``."""
    index = load_index(Path(data_dir).name, data_dir).set_index("page")
    return index.loc[sorted(set(table["page"]))]


def page_signals(page: str, digitize: Digitizer, data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(reference, estimate)`` mV of one dataset page, digitized again by ``digitize``."""
    image, reference, _ = load_page(Path(data_dir).name, page, data_dir)
    result = digitize(image)
    return reference, getattr(result, "signal", result)


def score_eik_methods(methods: dict[str, Digitizer], fs: int = 500,
                      progress: bool = True) -> pd.DataFrame:
    """``score_eik`` of every method, one long table with a ``method`` column.

    Raises ``MissingInputError`` when the ECG-Image-Kit pages (or their records) are absent.
    """
    return pd.concat([score_eik(fn, fs, progress).assign(method=name)
                      for name, fn in methods.items()], ignore_index=True)


def score_photos_methods(methods: dict[str, Digitizer], fs: int = 500,
                         progress: bool = True) -> pd.DataFrame:
    """``score_photos`` of every method, one long table with a ``method`` column.

    Raises ``MissingInputError`` when the photos (or their signals) are absent.
    """
    return pd.concat([score_photos(fn, fs, progress).assign(method=name)
                      for name, fn in methods.items()], ignore_index=True)
