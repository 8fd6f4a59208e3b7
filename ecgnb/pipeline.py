"""The papermill driver: run the study's notebooks in order for one profile.

Each notebook runs with only ``profile`` injected into its ``parameters`` cell; the executed copy
goes to ``reports/<profile>/executed/``. The driver stops at the first failing notebook and says
which cell failed and why, checks that each notebook produced the artefacts it declares in
``NOTEBOOK_OUTPUTS``, and writes ``reports/<profile>/manifest.json`` mapping every artefact to
the notebook, configuration, git commit and package versions that made it.
"""
from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from . import io, paths
from .config import get_profile

# What each notebook must write; "{profile}" is filled in. Paths are relative to the project root.
NOTEBOOK_OUTPUTS: dict[str, list[str]] = {
    "01_synthesis": [
        "data/{profile}/index.csv",
        "data/{profile}/config.json",
        "reports/{profile}/01_synthetic_12lead.png",
        "reports/{profile}/01_synth_vs_real.png",
        "reports/{profile}/01_synth_vs_real.csv",
        "reports/{profile}/01_pages_by_severity.png",
        "reports/{profile}/01_dataset_summary.csv",
    ],
    "02_digitizer": [
        "reports/{profile}/02_preprocessing_clean.png",
        "reports/{profile}/02_preprocessing_severe.png",
        "reports/{profile}/02_reconstruction.png",
        "reports/{profile}/02_snr_by_severity.png",
        "reports/{profile}/02_snr_per_lead.png",
        "reports/{profile}/02_baseline_scores.csv",
        *[f"reports/{{profile}}/02_{t}.{ext}" for t in ("baseline_by_severity", "baseline_by_origin",
                                                        "baseline_per_lead", "baseline_real_per_lead", "geometry",
                                                        "resolution_limit",
                                                        "eik_per_lead")
          for ext in ("csv", "md")],
    ],
    "03_model": [
        "reports/{profile}/03_panel_crops.png",
        "reports/{profile}/03_overfit.png",
        *[f"reports/{{profile}}/03_{t}.{ext}" for t in ("parameters", "shapes") for ext in ("csv", "md")],
    ],
    "04_training": [
        "reports/{profile}/04_training_curves.png",
        "reports/{profile}/04_variants.csv",
        "reports/{profile}/04_variants.md",
    ],
    "05_evaluation": [
        "reports/{profile}/05_scores.csv",
        *[f"reports/{{profile}}/05_{f}.png" for f in (
            "snr_per_lead", "snr_hist", "robustness_severity", "robustness_dpi", "overlay_good",
            "overlay_median", "overlay_worst", "failures")],
        *[f"reports/{{profile}}/05_{t}.{ext}" for t in (
            "test_summary", "per_lead_snr", "per_lead_mae", "by_severity", "by_dpi", "by_origin",
            "eik", "photos", "photos_per_photo", "paper_protocol") for ext in ("csv", "md")],
    ],
}

PACKAGES = ("numpy", "scipy", "matplotlib", "wfdb", "neurokit2", "opencv-python-headless",
            "torch", "papermill", "pandas")


class StudyError(RuntimeError):
    """A notebook of the study failed; the message names the notebook, cell and error."""


@dataclass
class NotebookRun:
    name: str
    seconds: float
    outputs: list[str]
    commit: str | None = None     # git commit when the notebook started (None: read at writing)
    dirty: bool | None = None     # uncommitted changes then


def notebooks(only: list[str] | None = None) -> list[Path]:
    """The study's notebooks in order (``notebooks/NN_*.ipynb``), optionally filtered by prefix."""
    found = sorted(paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if only:
        found = [p for p in found if any(p.stem.startswith(o) for o in only)]
        if not found:
            raise StudyError(f"no notebook matches {only}; have: "
                             + ", ".join(p.stem for p in sorted(paths.NOTEBOOKS.glob('*.ipynb'))))
    return found


def declared_outputs(stem: str, profile: str) -> list[Path]:
    """Absolute paths of the artefacts that notebook ``stem`` declares for ``profile``."""
    return [paths.OUTPUT_ROOT / p.format(profile=profile) for p in NOTEBOOK_OUTPUTS.get(stem, [])]


def run_notebook(nb: Path, profile: str, log=print) -> NotebookRun:
    """Execute one notebook with papermill; raise ``StudyError`` naming the failing cell."""
    import papermill as pm   # heavy import, only when running the study

    out = paths.report_dir(profile) / "executed" / nb.name
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.time()
    commit, dirty = git_state()   # the code this run imports, not whatever HEAD is when it ends
    try:
        pm.execute_notebook(str(nb), str(out), parameters={"profile": profile},
                            kernel_name="python3", cwd=str(nb.parent), progress_bar=True)
    except pm.PapermillExecutionError as exc:
        raise StudyError(f"{nb.name} failed in cell {exc.cell_index} (execution count "
                         f"{exc.exec_count}): {exc.ename}: {exc.evalue}\n"
                         f"see the executed copy: {out}") from None
    missing = [str(p.relative_to(paths.OUTPUT_ROOT)) for p in declared_outputs(nb.stem, profile)
               if not p.exists() or p.stat().st_mtime < start]
    if missing:
        raise StudyError(f"{nb.name} ran but did not write: {', '.join(missing)}")
    return NotebookRun(nb.stem, time.time() - start,
                       [str(p.relative_to(paths.OUTPUT_ROOT)) for p in declared_outputs(nb.stem, profile)],
                       commit, dirty)


def run_study(profile: str, only: list[str] | None = None, log=print) -> Path:
    """Run the notebooks in order for ``profile``; return the manifest path."""
    cfg = get_profile(profile)
    nbs = notebooks(only)
    manifest = None
    for k, nb in enumerate(nbs, 1):
        log(f"[{k}/{len(nbs)}] {nb.name} (profile {profile})")
        run = run_notebook(nb, profile, log)
        log(f"      done in {run.seconds:.0f} s")
        # after each notebook, so a later failure keeps the provenance of what did run
        manifest = write_manifest(cfg.to_dict(), [run], profile)
    return manifest


def write_manifest(config: dict, runs: list[NotebookRun], profile: str) -> Path:
    """Merge these runs into ``reports/<profile>/manifest.json`` (artefact -> provenance)."""
    path = paths.report_dir(profile) / "manifest.json"
    manifest = io.read_json(path) if path.exists() else {"artefacts": {}, "notebooks": {}}
    commit, dirty = git_state()
    for run in runs:
        manifest["notebooks"][run.name] = {"seconds": round(run.seconds, 1),
                                           "git_commit": run.commit or commit,
                                           "git_dirty": dirty if run.dirty is None else run.dirty,
                                           "executed": f"reports/{profile}/executed/{run.name}.ipynb"}
        for rel in run.outputs:
            manifest["artefacts"][rel] = {"notebook": f"notebooks/{run.name}.ipynb",
                                          "sha256": sha256(paths.OUTPUT_ROOT / rel)}
    manifest.update(profile=profile, config=config, git_commit=commit, git_dirty=dirty,
                    created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    python=platform.python_version(), packages=package_versions(),
                    machine=machine_id())
    return io.write_json(path, manifest)


def machine_id() -> str:
    """CPU model, architecture and core count: tables reproduce to 2 decimals on one machine."""
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os
    return f"{platform.machine()} {model} x{os.cpu_count()}"


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def git_state() -> tuple[str, bool]:
    """``(commit, has uncommitted changes)`` of the checkout, or ``('unknown', True)``."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.ROOT, check=True,
                                capture_output=True, text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], cwd=paths.ROOT, check=True,
                                    capture_output=True, text=True).stdout.strip())
        return commit, dirty
    except (OSError, subprocess.CalledProcessError):
        return "unknown", True


def package_versions() -> dict[str, str]:
    """Installed versions of the packages the study depends on."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def main_study(profile: str, only: list[str] | None = None) -> int:
    """Command-line entry: run the study, print a clear failure, return an exit status."""
    try:
        manifest = run_study(profile, only)
    except (StudyError, ValueError) as exc:
        print(f"study failed: {exc}", file=sys.stderr)
        return 1
    print(f"study complete; manifest: {manifest}")
    return 0
