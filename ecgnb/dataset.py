"""The paired image/signal dataset of a profile: sources, splits by record, rendering, index.

Layout on disk (``data/<profile>/``)::

    config.json              resolved profile that built it
    index.csv                one row per page: page, record, origin, split, severity, path
    train/ val/ test/        pages stored by ``ecgnb.io.save_page`` (png + WFDB + json)

The whole folder is built beside the old one and swapped in at the end, so an interrupted
build never leaves a half-written dataset in place.
"""
from __future__ import annotations

import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import io, paths
from .augment import augment_page
from .config import Profile
from .errors import MissingInputError
from .render import masked_signal, render_page
from .sources import scan_real_records
from .synth import signal_stats, synth_records

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SourceRecord:
    """One 12-lead signal to render: ``signal`` ``(n_samples, 12)`` mV at ``fs`` Hz."""

    name: str
    signal: np.ndarray
    fs: int
    origin: str                 # "synthetic" or the real dataset's folder name
    split_hint: str | None = None


def collect_sources(profile: Profile, real_folder: Path = paths.REAL_ECG,
                    log=print) -> list[SourceRecord]:
    """Synthetic records for ``profile`` plus, where available, the free real records.

    Real records marked ``used_in_hidden_holdout`` are never returned (see ``ecgnb.sources``).
    """
    sig = profile.signal
    out = [SourceRecord(name, s, sig.fs, "synthetic")
           for name, s, _ in synth_records(profile.data.n_synthetic, profile.seed, sig)]
    if profile.data.use_real:
        folder = real_folder
        if profile.data.real_folder:
            folder = Path(profile.data.real_folder)
            folder = folder if folder.is_absolute() else paths.ROOT / folder
        try:
            real = real_records(folder, sig.fs, sig.duration_s)[:profile.data.max_real]
        except MissingInputError as exc:
            log(f"real records skipped: {exc}")
            real = []
        out += [SourceRecord(r.name, r.signal, r.fs, r.source, r.split_hint) for r in real]
    return out


def real_records(folder: Path, fs: int, duration_s: float) -> list:
    """The free records of ``folder``, sorted by name; holdout records are never read.

    The holdout list is ``folder/manifest.csv`` or, for a folder without one (a PTB-XL
    download), the shared ``../shared/data/real-ecg/manifest.csv``; with neither, the folder
    is refused (``MissingInputError``) rather than read unchecked.
    """
    manifest = Path(folder) / "manifest.csv"
    if not manifest.exists():
        manifest = paths.REAL_ECG / "manifest.csv"
    kept, skipped = scan_real_records(folder, fs, duration_s, manifest_path=manifest)
    return sorted(kept, key=lambda r: r.name)


def assign_splits(records: list[SourceRecord], fractions: tuple[float, float, float],
                  seed: int) -> dict[str, str]:
    """Map record name -> split, by record, separately per origin so every split mixes sources.

    A record's own ``split_hint`` (PTB-XL ``strat_fold``) wins over the random draw.
    """
    out: dict[str, str] = {}
    for origin in sorted({r.origin for r in records}):
        names = sorted(r.name for r in records if r.origin == origin and r.split_hint is None)
        order = np.random.default_rng([seed, zlib.crc32(origin.encode())]).permutation(len(names))
        n_train = int(round(fractions[0] * len(names)))
        n_val = int(round(fractions[1] * len(names)))
        for rank, k in enumerate(order):
            out[names[k]] = SPLITS[0] if rank < n_train else SPLITS[1] if rank < n_train + n_val \
                else SPLITS[2]
    out.update({r.name: r.split_hint for r in records if r.split_hint is not None})
    return out


def split_records(profile: Profile, split: str, log=print) -> list[SourceRecord]:
    """The profile's source records of one split (``assign_splits``), sorted by name."""
    records = collect_sources(profile, log=log)
    splits = assign_splits(records, profile.data.split, profile.seed)
    return sorted((r for r in records if splits[r.name] == split), key=lambda r: r.name)


def page_name(record: str, severity: float) -> str:
    """File stem of a page: record name and severity in percent (``syn00003_s050``)."""
    return f"{record}_s{int(round(severity * 100)):03d}"


def page_rng(seed: int, name: str) -> np.random.Generator:
    """Generator of one page, from the profile seed and the page name only (order-independent)."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def make_page(record: SourceRecord, severity: float, profile: Profile,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict]:
    """Render one page: ``(image, truth signal mV with NaN where not drawn, truth dict)``."""
    image, truth = render_page(record.signal, record.fs, profile.paper, rng,
                               header={"id": record.name})
    if severity > 0:
        image, truth = augment_page(image, truth, severity, rng)
    truth["record"], truth["severity"] = record.name, float(severity)
    return image, masked_signal(record.signal, truth), truth


def build_dataset(profile: Profile, out_dir: Path | None = None,
                  records: list[SourceRecord] | None = None, log=print) -> pd.DataFrame:
    """Render every record of ``profile`` at every severity into ``out_dir``; return the index.

    ``records`` defaults to ``collect_sources(profile)``.
    """
    out_dir = Path(out_dir or paths.data_dir(profile.name))
    records = collect_sources(profile, log=log) if records is None else records
    splits = assign_splits(records, profile.data.split, profile.seed)
    work = out_dir.with_name(out_dir.name + ".building")
    shutil.rmtree(work, ignore_errors=True)
    rows = []
    jobs = [(r, s) for r in records for s in profile.data.severities]
    for record, severity in tqdm(jobs, desc="rendering pages", disable=not profile.data.show_progress):
        name = page_name(record.name, severity)
        split = splits[record.name]
        image, signal, truth = make_page(record, severity, profile, page_rng(profile.seed, name))
        io.save_page(work / split, name, image, signal, record.fs, truth)
        rows.append(dict(page=name, record=record.name, origin=record.origin, split=split,
                         severity=float(severity), dpi=profile.paper.dpi,
                         layout=profile.paper.layout, path=f"{split}/{name}"))
    index = pd.DataFrame(rows)
    index.to_csv(work / "index.csv", index=False)
    io.write_json(work / "config.json", profile.to_dict())
    swap_in(work, out_dir)
    return index


def swap_in(work: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by ``work`` with two renames, so readers see old or new, never half."""
    old = out_dir.with_name(out_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out_dir.exists():
        out_dir.rename(old)
    work.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)


def load_index(profile_name: str, data_dir: Path | None = None) -> pd.DataFrame:
    """The page index of a built dataset; a clear error names the notebook that builds it."""
    path = Path(data_dir or paths.data_dir(profile_name)) / "index.csv"
    if not path.exists():
        raise MissingInputError(f"{path} not found: run notebooks/01_synthesis.ipynb "
                                f"(or `python -m ecgnb study --profile {profile_name}`) first")
    return pd.read_csv(path)


def load_page(profile_name: str, page: str, data_dir: Path | None = None):
    """``(image, signal, truth)`` of one page of a built dataset (see ``ecgnb.io.load_page``)."""
    index = load_index(profile_name, data_dir).set_index("page")
    if page not in index.index:
        raise MissingInputError(f"page {page!r} is not in the {profile_name} dataset")
    rel = Path(index.loc[page, "path"])
    root = Path(data_dir or paths.data_dir(profile_name))
    return io.load_page(root / rel.parent, rel.name)


def stats_by_origin(records: list[SourceRecord]) -> pd.DataFrame:
    """Per-record signal statistics (``ecgnb.synth.signal_stats``) with an ``origin`` column."""
    rows = [{"record": r.name, "origin": r.origin, **signal_stats(r.signal, r.fs)} for r in records]
    return pd.DataFrame(rows)


def example_pages(index: pd.DataFrame, data_dir: Path, record: str | None = None
                  ) -> list[tuple[np.ndarray, dict, str]]:
    """``(image, truth, title)`` of one record's pages at every severity (first record by default)."""
    record = record or index["record"].iloc[0]
    out = []
    for row in index[index["record"] == record].sort_values("severity").itertuples():
        rel = Path(row.path)
        image, _, truth = io.load_page(Path(data_dir) / rel.parent, rel.name)
        out.append((image, truth, f"{row.page}: severity {row.severity:.2f}"))
    return out
