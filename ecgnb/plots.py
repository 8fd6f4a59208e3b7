"""Figures: one function per figure, each returning a matplotlib Figure; ``save_figure`` writes it.

Functions use pyplot so notebooks show the figure inline; scripts and tests run with the Agg
backend (set ``MPLBACKEND=Agg``, as the test suite does), so no display is ever needed.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .leads import LEAD_NAMES

TRACE_COLOURS = plt.get_cmap("tab20").colors


def save_figure(fig, path: Path, dpi: int = 120) -> Path:
    """Save ``fig`` as PNG at ``path`` atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def plot_12lead(signal: np.ndarray, fs: float, title: str = "",
                lead_names: tuple[str, ...] = LEAD_NAMES):
    """The 12 leads of ``signal`` ``(n_samples, 12)`` mV against time (s), two columns."""
    t = np.arange(signal.shape[0]) / fs
    fig, axes = plt.subplots(6, 2, figsize=(12, 8), sharex=True)
    for k, ax in enumerate(axes.T.ravel()):
        ax.plot(t, signal[:, k], lw=0.7, color="k")
        ax.set_ylabel(f"{lead_names[k]}\nmV", rotation=0, ha="right", va="center", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("time (s)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_stats_comparison(table: pd.DataFrame, group: str = "origin"):
    """Synthetic vs real summary statistics: heart rate, per-lead RMS and peak-to-peak (mV).

    ``table`` has one row per record, a ``group`` column and the columns of
    ``ecgnb.synth.stats_table`` (``heart_rate_bpm``, ``rms_<lead>``, ``p2p_<lead>``).
    """
    groups = list(table[group].unique())
    fig, axes = plt.subplots(1, 3, figsize=(15, 4), gridspec_kw={"width_ratios": [1, 3, 3]})
    axes[0].boxplot([table.loc[table[group] == g, "heart_rate_bpm"].dropna() for g in groups])
    axes[0].set_xticks(range(1, len(groups) + 1), groups, rotation=20)
    axes[0].set_ylabel("heart rate (bpm)")
    for ax, prefix, label in ((axes[1], "rms_", "RMS (mV)"), (axes[2], "p2p_", "peak-to-peak (mV)")):
        width = 0.8 / len(groups)
        for g_i, g in enumerate(groups):
            sub = table[table[group] == g]
            means = [sub[f"{prefix}{lead}"].median() for lead in LEAD_NAMES]
            ax.bar(np.arange(12) + g_i * width, means, width, label=g)
        ax.set_xticks(np.arange(12) + 0.4 - width / 2, LEAD_NAMES)
        ax.set_ylabel(f"median {label}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def overlay_truth(ax, image: np.ndarray, truth: dict, boxes: bool = True) -> None:
    """Show ``image`` on ``ax`` with each panel's ground-truth pixel trace and box drawn over it."""
    ax.imshow(image)
    for k, panel in enumerate(truth["panels"]):
        colour = TRACE_COLOURS[k % len(TRACE_COLOURS)]
        trace = np.asarray(panel["trace"], dtype=float)
        if trace.size:
            ax.plot(trace[:, 0], trace[:, 1], lw=0.6, color=colour)
        if boxes:
            x0, y0, x1, y1 = panel["bbox"]
            ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=0.6,
                                       ec=colour, ls="--"))
    ax.set_axis_off()


def plot_pages(pages: list[tuple[np.ndarray, dict | None, str]], ncols: int = 2,
               truth: bool = True):
    """A grid of pages ``(image, truth, title)``; ground truth overlaid where given and ``truth``."""
    nrows = int(np.ceil(len(pages) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(6 * ncols, 4.7 * nrows), squeeze=False)
    for ax, (image, page_truth, title) in zip(axes.ravel(), pages):
        if truth and page_truth is not None:
            overlay_truth(ax, image, page_truth)
        else:
            ax.imshow(image)
            ax.set_axis_off()
        ax.set_title(title)
    for ax in axes.ravel()[len(pages):]:
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def plot_reconstruction(reference: np.ndarray, estimate: np.ndarray, fs: float, title: str = "",
                        lead_names: tuple[str, ...] = LEAD_NAMES):
    """Reference (black) and estimate (red) per lead, in mV against time (s), drawn span only."""
    t = np.arange(reference.shape[0]) / fs
    fig, axes = plt.subplots(6, 2, figsize=(13, 9))
    for k, ax in enumerate(axes.T.ravel()):
        shown = np.isfinite(reference[:, k])
        if shown.any():
            lo, hi = t[shown][0], t[shown][-1]
            ax.set_xlim(lo, hi)
        ax.plot(t, reference[:, k], lw=0.9, color="k", label="reference")
        ax.plot(t, estimate[:, k], lw=0.7, color="tab:red", label="digitized")
        ax.set_ylabel(f"{lead_names[k]}\nmV", rotation=0, ha="right", va="center", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, loc="upper right")
    for ax in axes[-1]:
        ax.set_xlabel("time (s)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_snr_by(summary: pd.DataFrame, x: str, label: str = "SNR (dB)"):
    """Mean SNR (aligned and unaligned) against ``x`` (a column of ``summary`` or its index)."""
    frame = summary.reset_index() if x not in summary.columns else summary
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(frame[x], frame["snr_db"], "o-", label="aligned (Challenge 2024)")
    ax.plot(frame[x], frame["snr_db_unaligned"], "s--", label="unaligned")
    ax.set_xlabel(x)
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_snr_per_lead(table: pd.DataFrame, by: str | None = None):
    """Box plot of per-page SNR (dB) for each lead; one box colour per group of ``by``."""
    fig, ax = plt.subplots(figsize=(12, 4))
    finite = table.replace([np.inf, -np.inf], np.nan)
    groups = [None] if by is None else sorted(finite[by].unique())
    width = 0.8 / len(groups)
    for g_i, g in enumerate(groups):
        sub = finite if g is None else finite[finite[by] == g]
        data = [sub.loc[sub["lead"] == lead, "snr_db"].dropna() for lead in LEAD_NAMES]
        pos = np.arange(12) + g_i * width
        bp = ax.boxplot(data, positions=pos, widths=width * 0.9, patch_artist=True,
                        showfliers=False)
        for box in bp["boxes"]:
            box.set_facecolor(TRACE_COLOURS[(2 * g_i) % len(TRACE_COLOURS)])
        if g is not None:
            bp["boxes"][0].set_label(f"{by} = {g}")
    ax.set_xticks(np.arange(12) + 0.4 - width / 2, LEAD_NAMES)
    ax.set_ylabel("SNR (dB)")
    ax.grid(alpha=0.3, axis="y")
    if by is not None:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_crops(X: np.ndarray, Y: np.ndarray, meta: pd.DataFrame, n: int = 4, half_mv: float = 1.6):
    """``n`` panel crops (ink, rows x columns) with their target signal (mV) drawn over them.

    A second channel (the classical digitizer's trace) is tinted blue over the ink.
    """
    fig, axes = plt.subplots(n, 1, figsize=(12, 2.2 * n), squeeze=False)
    for k, ax in enumerate(axes[:, 0]):
        h, w = X[k, 0].shape
        ax.imshow(X[k, 0], cmap="gray_r", aspect="auto", extent=(0, w, h, 0))
        if X.shape[1] > 1:
            tint = np.zeros((h, w, 4))
            tint[..., 2], tint[..., 3] = 1.0, 0.8 * X[k, 1]
            ax.imshow(tint, aspect="auto", extent=(0, w, h, 0))
            ax.plot([], [], color="blue", lw=2, label="classical trace (channel 2)")
        cols = np.linspace(0, w, Y.shape[1])
        ax.plot(cols, (h - 1) / 2 * (1 - Y[k] / half_mv), color="tab:red", lw=0.8, label="target (mV)")
        ax.set_title(f"{meta.iloc[k]['page']}  lead {meta.iloc[k]['lead']}", fontsize=9)
        ax.set_axis_off()
    axes[0, 0].legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def plot_losses(history: list[float], title: str = "one-batch overfit"):
    """Loss per step (log scale)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.semilogy(history)
    ax.set_xlabel("step")
    ax.set_ylabel("image-path MSE (mV²)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_training_curves(logs: dict[str, pd.DataFrame], baseline_db: float | None = None):
    """Training loss and validation SNR (dB) per epoch for each run in ``logs`` (its log.csv)."""
    fig, (ax_loss, ax_snr) = plt.subplots(1, 2, figsize=(12, 4))
    for name, log in logs.items():
        ax_loss.semilogy(log["epoch"], log["loss"], "o-", label=name)
        ax_snr.plot(log["epoch"], log["val_snr_db"], "o-", label=name)
    if baseline_db is not None:
        ax_snr.axhline(baseline_db, color="k", ls="--", label="classical digitizer")
    ax_loss.set_ylabel("training loss")
    ax_snr.set_ylabel("validation SNR (dB, crops)")
    for ax in (ax_loss, ax_snr):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_snr_hist(table: pd.DataFrame, by: str = "method", bins: int = 40):
    """Histogram of per-(page, lead) SNR (dB), one outline per group of ``by``."""
    finite = table.replace([np.inf, -np.inf], np.nan).dropna(subset=["snr_db"])
    fig, ax = plt.subplots(figsize=(7, 4))
    edges = np.histogram_bin_edges(finite["snr_db"], bins=bins)
    for name, sub in finite.groupby(by, sort=False):
        ax.hist(sub["snr_db"], bins=edges, histtype="step", lw=1.5,
                label=f"{name} (median {sub['snr_db'].median():.1f} dB)")
    ax.set_xlabel("SNR per lead (dB, Challenge 2024)")
    ax.set_ylabel("leads")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_robustness(summary: pd.DataFrame, x: str, label: str | None = None):
    """Mean SNR (dB, aligned solid, unaligned dashed) against ``x``, one colour per method.

    ``summary`` has a ``(method, x)`` index or columns, e.g. ``method_summary(t, ["method", x])``.
    """
    frame = summary.reset_index()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for k, (name, sub) in enumerate(frame.groupby("method", sort=False)):
        sub = sub.sort_values(x)
        colour = f"C{k}"
        ax.plot(sub[x], sub["snr_db"], "o-", color=colour, label=f"{name}")
        ax.plot(sub[x], sub["snr_db_unaligned"], "s--", color=colour, alpha=0.6)
    ax.plot([], [], "k-", label="aligned (solid)")
    ax.plot([], [], "k--", alpha=0.6, label="unaligned (dashed)")
    ax.set_xlabel(label or x)
    ax.set_ylabel("mean SNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_failure_gallery(items: list[dict], ncols: int = 2):
    """Worst leads: each item's page snippet above its reference (black) and estimate (red).

    Item keys: ``image`` (RGB snippet of the printed panel), ``t`` (s), ``reference`` and
    ``estimate`` (mV, same length as ``t``), ``title``.
    """
    n = len(items)
    if n == 0:
        fig, ax = plt.subplots(figsize=(6, 1))
        ax.text(0.5, 0.5, "no failures to show", ha="center", va="center")
        ax.axis("off")
        return fig
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(2 * nrows, ncols, figsize=(7 * ncols, 3.4 * nrows),
                             gridspec_kw={"height_ratios": [1, 1] * nrows}, squeeze=False)
    for k in range(nrows * ncols):
        r, c = 2 * (k // ncols), k % ncols
        ax_img, ax_sig = axes[r, c], axes[r + 1, c]
        if k >= n:
            ax_img.axis("off")
            ax_sig.axis("off")
            continue
        it = items[k]
        ax_img.imshow(it["image"])
        ax_img.set_title(it["title"], fontsize=8)
        ax_img.axis("off")
        ax_sig.plot(it["t"], it["reference"], "k", lw=0.9, label="reference")
        ax_sig.plot(it["t"], it["estimate"], color="tab:red", lw=0.7, label="digitized")
        ax_sig.set_xlabel("time (s)", fontsize=8)
        ax_sig.set_ylabel("mV", fontsize=8)
        ax_sig.grid(alpha=0.3)
    axes[1, 0].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig
