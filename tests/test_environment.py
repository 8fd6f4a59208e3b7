"""The conda route (environment.yml) and the pip route (pyproject.toml) list the same packages."""
from __future__ import annotations

import re
import tomllib

from ecgnb import paths


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower()


def _pip_requirements() -> dict[str, str]:
    project = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["dev"]
    return {_name(r): r.replace(" ", "") for r in reqs}


def _conda_pip_requirements() -> dict[str, str]:
    lines = (paths.ROOT / "environment.yml").read_text().splitlines()
    reqs = [ln.strip()[2:].strip() for ln in lines if ln.strip().startswith("- ")]
    pip_start = reqs.index("pip:")
    return {_name(r): r.replace(" ", "") for r in reqs[pip_start + 1:] if r != "-e ."}


def test_same_packages_and_pins():
    assert _pip_requirements() == _conda_pip_requirements()


def test_torch_pinned_and_headless_opencv():
    pip = _pip_requirements()
    assert pip["torch"] == "torch==2.13.*", "torch must stay pinned to the CPU build on disk"
    assert "opencv-python-headless" in pip and "opencv-python" not in pip
