"""`python -m ecgnb` dispatches to the study driver and the digitize command."""
from __future__ import annotations

import subprocess
import sys

import pytest

from ecgnb.__main__ import main


def test_digitize_missing_file_fails_cleanly(tmp_path, capsys):
    status = main(["digitize", str(tmp_path / "absent.png"), "--out", str(tmp_path / "out"),
                   "--no-progress"])
    captured = capsys.readouterr()
    assert status != 0
    assert "absent.png" in captured.err + captured.out
    out = tmp_path / "out"
    assert not out.exists() or not list(out.glob("absent*")), "no partial output for a failed image"


def test_unknown_profile_is_refused():
    with pytest.raises(SystemExit):
        main(["study", "--profile", "nope"])


def test_module_entry_point_help():
    out = subprocess.run([sys.executable, "-m", "ecgnb", "-h"], capture_output=True, text=True)
    assert out.returncode == 0 and "digitize" in out.stdout and "study" in out.stdout
