"""The command line: `python -m ecgnb` dispatch, and `ecgnb digitize` (ecgnb.cli) end to end.

Pages are rendered with ``ecgnb.render`` from a signal that obeys Einthoven's law (as real
recordings do), so the orientation check can tell an upright reading from a turned one. Tests of
the batch logic (names, clashes, skips, verdicts) use ``fake_reader``, which hands back one real
reading of that page without reading again; pages whose pixels matter are read for real.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import wfdb

from conftest import ecg_like, require_shared

from ecgnb import cli, digitizers, inputs, io, orient, paths, render
from ecgnb.__main__ import main
from ecgnb.config import PaperConfig
from ecgnb.leads import LEAD_INDEX
from ecgnb.reading import ReadOptions

RECORD_FILES = (".hea", ".dat", ".csv", "_overlay.png", "_digitize.json")


def einthoven(signal: np.ndarray) -> np.ndarray:
    """``signal`` with III and the augmented leads derived from I and II, as on a real ECG."""
    s = signal.copy()
    lead_i, lead_ii = s[:, LEAD_INDEX["I"]], s[:, LEAD_INDEX["II"]]
    s[:, LEAD_INDEX["III"]] = lead_ii - lead_i
    s[:, LEAD_INDEX["aVR"]] = -(lead_i + lead_ii) / 2
    s[:, LEAD_INDEX["aVL"]] = lead_i - lead_ii / 2
    s[:, LEAD_INDEX["aVF"]] = lead_ii - lead_i / 2
    return s


@pytest.fixture(scope="module")
def page():
    """``(image RGB, truth signal with NaN where not drawn)`` of a clean 3x4+1 page."""
    signal = einthoven(ecg_like(seed=1))
    image, truth = render.render_page(signal, 500, PaperConfig(), np.random.default_rng(3))
    return image, render.masked_signal(signal, truth)


@pytest.fixture(scope="module")
def reading(page):
    return digitizers.get("classical").read(page[0], ReadOptions())


class FakeReader:
    """Returns a copy of one reading (optionally altered) for any page, without reading."""

    name = "classical"

    def __init__(self, reading, alter=None):
        self.reading, self.alter, self.calls = reading, alter, 0

    def read(self, image, options):
        self.calls += 1
        r = copy.deepcopy(self.reading)
        return self.alter(r) if self.alter else r


@pytest.fixture
def fake_reader(monkeypatch, reading):
    """Make ``digitizers.get`` hand out a ``FakeReader``; returns a function to alter it."""
    holder = {"reader": FakeReader(reading)}
    monkeypatch.setattr(digitizers, "get", lambda name, **settings: holder["reader"])

    def set_alter(alter):
        holder["reader"] = FakeReader(reading, alter)
        return holder["reader"]
    return set_alter


def write_page(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    io.write_png(path, image)
    return path


def run(argv, capsys):
    """``(exit status, stdout, stderr)`` of ``cli.main(argv)`` (argparse errors included)."""
    try:
        status = cli.main([*map(str, argv), "--no-progress"])
    except SystemExit as exc:
        status = exc.code
    out = capsys.readouterr()
    return status, out.out, out.err


def complete_records(out, others=()):
    """Names of the records in ``out``; asserts each has all five files and none is partial
    (files named in ``others`` are not record files)."""
    names = {p.name[:-len("_digitize.json")] for p in out.glob("*_digitize.json")}
    for f in out.iterdir():
        if f.name.startswith(".") or f.name in others:
            continue
        base = next((f.name[:-len(s)] for s in RECORD_FILES if f.name.endswith(s)), None)
        assert base in names, f"{f.name} belongs to no complete record"
    for n in names:
        assert all((out / f"{n}{s}").exists() for s in RECORD_FILES), n
    return names


def pearson(a, b):
    m = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[m], b[m])[0, 1])


def mean_corr(signal, truth):
    return float(np.mean([pearson(signal[:, j], truth[:, j]) for j in range(12)]))


# --------------------------------------------------------------------------------------------
# python -m ecgnb
# --------------------------------------------------------------------------------------------

def test_digitize_missing_file_fails_cleanly(tmp_path, capsys):
    status = main(["digitize", str(tmp_path / "absent.png"), "--out", str(tmp_path / "out"),
                   "--no-progress"])
    captured = capsys.readouterr()
    assert status == cli.EXIT_FAILED
    assert "absent.png" in captured.err + captured.out
    out = tmp_path / "out"
    assert not out.exists() or not list(out.glob("absent*")), "no partial output for a failed image"


def test_unknown_profile_is_refused():
    with pytest.raises(SystemExit):
        main(["study", "--profile", "nope"])


def test_module_entry_point_help():
    out = subprocess.run([sys.executable, "-m", "ecgnb", "-h"], capture_output=True, text=True)
    assert out.returncode == 0 and "digitize" in out.stdout and "study" in out.stdout


# --------------------------------------------------------------------------------------------
# Basic outputs and failures (moved from test_digitize.py)
# --------------------------------------------------------------------------------------------

def test_cli_writes_wfdb_csv_and_overlay(tmp_path, page, capsys):
    src = write_page(tmp_path / "page1.png", page[0])
    out = tmp_path / "out"
    status, stdout, err = run([src, "--out", out], capsys)
    assert status == cli.EXIT_OK, err
    assert complete_records(out) == {"page1"}
    sig, fs, names = io.read_wfdb(out / "page1")
    assert fs == 500 and sig.shape == (5000, 12) and names[0] == "I"
    assert mean_corr(sig, page[1]) > 0.9
    header = (out / "page1.csv").read_text().splitlines()[0]
    assert header.startswith("time_s,I,II,III,aVR")
    d = json.loads((out / "page1_digitize.json").read_text())
    assert d["rotated_deg"] == 0 and d["warnings"] == [] and d["input"]["resampled"] == 1.0
    assert not list(out.glob(".staging-*")), "no staging folders left behind"
    assert "digitized 1 of 1 pages" in stdout


def test_batch_with_corrupt_file_reports_and_continues(tmp_path, page, fake_reader, capsys):
    folder = tmp_path / "in"
    write_page(folder / "a_good.png", page[0])
    (folder / "b_bad.jpg").write_bytes(b"\xff\xd8\xff garbage, not a jpeg")
    (folder / "notes.txt").write_text("not an image")
    (folder / "sub").mkdir()
    out = tmp_path / "out"
    status, stdout, err = run([folder, "--out", out], capsys)
    assert status == cli.EXIT_FAILED
    assert "failed: " in err and "b_bad.jpg" in err and "not a readable image" in err
    assert "notes.txt: not an image or PDF" in err and "sub: sub-folder, not entered" in err
    assert complete_records(out) == {"a_good"}, "no partial output for the failed image"
    assert "digitized 1 of 2 pages" in stdout and "1 failed" in stdout
    assert not list(out.glob(".staging-*"))


def test_digitize_files_report(tmp_path, page, fake_reader):
    src = write_page(tmp_path / "p.png", page[0])
    report = cli.digitize_files([src, tmp_path / "missing.png"], tmp_path / "o", progress=False)
    assert [r["status"] for r in report] == ["ok", "failed"]
    assert "not found" in report[1]["error"]
    assert report[0]["outputs"] and report[0]["name"] == "p"


# --------------------------------------------------------------------------------------------
# 1. Output names
# --------------------------------------------------------------------------------------------

def test_safe_names():
    assert inputs.safe_name("scan.v2") == "scan_v2"
    assert inputs.safe_name("my scan (1)") == "my_scan_1"
    assert inputs.safe_name("électro") == "electro"
    assert inputs.safe_name("--rm -rf") == "rm_-rf"
    assert inputs.safe_name("CON") == "CON_" and inputs.safe_name("心电图") == "page"
    assert len(inputs.safe_name("x" * 300)) == inputs.MAX_NAME_CHARS


def test_awkward_file_names_give_readable_records(tmp_path, page, fake_reader, capsys):
    folder = tmp_path / "in"
    for name in ("scan.v2.jpg", "my scan (1).jpg", "électro.jpg"):
        folder.mkdir(exist_ok=True)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(page[0], cv2.COLOR_RGB2BGR))
        (folder / name).write_bytes(buf.tobytes())
    out = tmp_path / "out"
    status, _, err = run([folder, "--out", out], capsys)
    assert status == cli.EXIT_OK, err
    assert complete_records(out) == {"scan_v2", "my_scan_1", "electro"}
    for name, original in (("scan_v2", "scan.v2.jpg"), ("my_scan_1", "my scan (1).jpg"),
                           ("electro", "électro.jpg")):
        rec = wfdb.rdrecord(str(out / name))
        assert rec.p_signal.shape == (5000, 12) and rec.sig_name[0] == "I"
        d = json.loads((out / f"{name}_digitize.json").read_text(encoding="utf-8"))
        assert d["source_name"] == original and d["record"] == name


# --------------------------------------------------------------------------------------------
# 2. Clashes: decided before the first page, never an overwrite
# --------------------------------------------------------------------------------------------

def test_clashing_names_are_numbered_before_reading(tmp_path):
    for sub in ("a", "b", "c"):
        (tmp_path / sub).mkdir()
    paths_ = [tmp_path / "a" / "x.jpg", tmp_path / "b" / "x.jpg", tmp_path / "c" / "X.png",
              tmp_path / "x_2.png"]
    for p in paths_:
        p.write_bytes(b"")
    names = [p.name for p in inputs.plan(paths_).pages]
    assert names == ["x", "x_3", "X_4", "x_2"], "case-insensitive, never another page's own name"
    # A record already in the output folder from another source is not overwritten either.
    out = tmp_path / "out"
    io.write_json(out / "x_digitize.json", {"source": str(tmp_path / "elsewhere.jpg")})
    again = inputs.plan([paths_[0]], out).pages[0]
    assert again.name == "x_2" and "elsewhere.jpg" in again.note
    io.write_json(out / "x_digitize.json", {"source": str(paths_[0])})
    assert inputs.plan([paths_[0]], out).pages[0].name == "x", "a rerun rewrites its own record"


def test_two_inputs_with_one_name_write_two_records(tmp_path, page, fake_reader, capsys):
    a = write_page(tmp_path / "a" / "x.png", page[0])
    b = write_page(tmp_path / "b" / "x.png", page[0])
    out = tmp_path / "out"
    status, _, err = run([a, b, "--out", out], capsys)
    assert status == cli.EXIT_OK, err
    assert complete_records(out) == {"x", "x_2"}
    assert f"{b} is written as x_2" in err
    sources = {json.loads((out / f"{n}_digitize.json").read_text())["source"] for n in ("x", "x_2")}
    assert sources == {str(a.resolve()), str(b.resolve())}


# --------------------------------------------------------------------------------------------
# 3. Options checked before the first page; exit 2, one line
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("extra, says", [
    (["--fs", "0"], "--fs must be"), (["--fs", "-5"], "--fs must be"),
    (["--fs", "nan"], "--fs must be"), (["--fs", "inf"], "--fs must be"),
    (["--fs", "abc"], "--fs"), (["--layout", "4x3"], "unknown --layout '4x3'"),
    (["--pdf-dpi", "0"], "--pdf-dpi"), (["--rotate", "45"], "--rotate"),
    (["--out", "FILE"], "is a file"), (["--out", "FILE/sub"], "is not a writable folder"),
])
def test_bad_options_stop_before_the_first_page(tmp_path, page, monkeypatch, capsys, extra, says):
    src = write_page(tmp_path / "p.png", page[0])
    (tmp_path / "FILE").write_text("")
    monkeypatch.setattr(cli, "digitize_page", lambda *a, **k: pytest.fail("a page was read"))
    extra = [str(tmp_path / e) if e.startswith("FILE") else e for e in extra]
    status, stdout, err = run([src, "--out", tmp_path / "out", *extra], capsys)
    assert status == cli.EXIT_USAGE
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in err, err


def test_nothing_to_read_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    status, _, err = run([tmp_path / "empty", "--out", tmp_path / "out"], capsys)
    assert status == cli.EXIT_USAGE and "nothing to read" in err
    assert not (tmp_path / "out").exists(), "nothing written when there is nothing to do"


def test_missing_checkpoint_is_found_up_front(tmp_path, page, monkeypatch, capsys):
    from ecgnb import model

    if not hasattr(model, "CropModelDigitizer"):
        pytest.skip("ecgnb.model has no CropModelDigitizer yet (registry entry crop_model)")
    monkeypatch.setattr(model, "DEFAULT_CHECKPOINT", tmp_path / "no-checkpoint.pt")
    monkeypatch.setattr(cli, "digitize_page", lambda *a, **k: pytest.fail("a page was read"))
    srcs = [write_page(tmp_path / f"p{i}.png", page[0]) for i in range(2)]
    status, _, err = run([*srcs, "--out", tmp_path / "o", "--method", "model"], capsys)
    assert status == cli.EXIT_USAGE and "notebook 04" in err and "Traceback" not in err
    assert "--checkpoint PATH" in err and "checkpoint=" not in err
    assert not list((tmp_path / "o").glob("p*")), "no output for any image"


def test_out_folder_is_created(tmp_path, page, fake_reader, capsys):
    src = write_page(tmp_path / "p.png", page[0])
    status, _, err = run([src, "--out", tmp_path / "a" / "b" / "out"], capsys)
    assert status == cli.EXIT_OK, err
    assert (tmp_path / "a" / "b" / "out" / "p.hea").exists()


# --------------------------------------------------------------------------------------------
# 4. No silent junk: image modes, orientation, doubtful and refused pages
# --------------------------------------------------------------------------------------------

def test_alpha_gray_and_16_bit_images_become_rgb_on_white(tmp_path):
    rgb = np.zeros((300, 400, 3), np.uint8)
    rgb[:, :200] = (10, 20, 200)                                 # a red-ish half (RGB)
    bgra = np.dstack([rgb[:, :, ::-1], np.full((300, 400), 255, np.uint8)])
    bgra[:, 200:] = (0, 0, 0, 0)                                 # transparent, black underneath
    cv2.imwrite(str(tmp_path / "rgba.png"), bgra)
    img, info = inputs.read_image(tmp_path / "rgba.png")
    assert img.dtype == np.uint8 and img.shape == (300, 400, 3)
    assert (img[:, 200:] == 255).all(), "transparent pixels are white paper, not black"
    assert tuple(img[0, 0]) == (10, 20, 200) and info["alpha"] == "composited on white"
    g16 = np.full((300, 400), 65535, np.uint16)
    g16[:, :100] = 257 * 40
    cv2.imwrite(str(tmp_path / "g16.png"), g16)
    img, info = inputs.read_image(tmp_path / "g16.png")
    assert info["bit_depth"] == 16 and tuple(img[0, 0]) == (40, 40, 40) and tuple(img[0, 399]) == (255,) * 3
    from PIL import Image                    # gray + alpha (OpenCV cannot write it)

    la = np.dstack([np.full((300, 400), 90, np.uint8), np.zeros((300, 400), np.uint8)])
    la[:, :50, 1] = 255                      # opaque gray on the left, transparent elsewhere
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    img, _ = inputs.read_image(tmp_path / "la.png")
    assert tuple(img[0, 0]) == (90,) * 3 and tuple(img[0, 100]) == (255,) * 3


def test_rgba_page_with_black_transparent_paper_reads(tmp_path, page, capsys):
    image = page[0]
    paper = image.min(axis=2) > 200                              # light pixels: paper and grid
    bgra = np.dstack([image[:, :, ::-1], np.full(image.shape[:2], 255, np.uint8)])
    bgra[paper] = 0                                              # transparent black
    cv2.imwrite(str(tmp_path / "rgba.png"), bgra)
    status, _, err = run([tmp_path / "rgba.png", "--out", tmp_path / "out", "--rotate", "0"], capsys)
    assert status in (cli.EXIT_OK, cli.EXIT_WARNINGS), err
    sig, _, _ = io.read_wfdb(tmp_path / "out" / "rgba")
    assert mean_corr(sig, page[1]) > 0.85


@pytest.mark.parametrize("turn", [90, 180])
def test_turned_page_is_read_upright(tmp_path, page, capsys, turn):
    src = write_page(tmp_path / "p.png", orient.turned(page[0], turn))
    out = tmp_path / "out"
    status, _, err = run([src, "--out", out], capsys)
    assert status in (cli.EXIT_OK, cli.EXIT_WARNINGS), err
    d = json.loads((out / "p_digitize.json").read_text())
    assert d["rotated_deg"] == (360 - turn) % 360, d["orientation"]
    assert f"read turned by {(360 - turn) % 360} degrees" in err
    sig, _, _ = io.read_wfdb(out / "p")
    assert mean_corr(sig, page[1]) > 0.9


def test_eik_page_upside_down_is_read_upright(tmp_path, capsys):
    require_shared(paths.EIK_DEV)
    image, _ = inputs.read_image(paths.EIK_DEV / "E07505-0.jpg")
    write_page(tmp_path / "e.png", orient.turned(image, 180))
    status, _, err = run([tmp_path / "e.png", "--out", tmp_path / "out"], capsys)
    assert status in (cli.EXIT_OK, cli.EXIT_WARNINGS), err
    assert json.loads((tmp_path / "out" / "e_digitize.json").read_text())["rotated_deg"] == 180
    truth = wfdb.rdrecord(str(paths.REAL_ECG / "georgia" / "E07505")).p_signal
    sig, _, _ = io.read_wfdb(tmp_path / "out" / "e")
    assert mean_corr(sig, truth[:len(sig)]) > 0.8


def test_lead_consistency_tells_true_leads_from_others(page, reading):
    assert orient.lead_consistency(page[1], 500) > 0.99
    assert orient.lead_consistency(reading.signal, 500) > orient.ACCEPT_CONSISTENCY
    shuffled = page[1][:, [6, 7, 8, 9, 10, 11, 0, 1, 2, 3, 4, 5]]
    assert orient.lead_consistency(shuffled, 500) < cli.CONSISTENCY_MIN


def test_doubtful_page_is_written_with_its_warnings(tmp_path, page, fake_reader, capsys):
    def drop_avr(r):
        r.signal[:, LEAD_INDEX["aVR"]] = np.nan
        return r
    fake_reader(drop_avr)
    src = write_page(tmp_path / "p.png", page[0])
    status, stdout, err = run([src, "--out", tmp_path / "out"], capsys)
    assert status == cli.EXIT_WARNINGS
    assert f"warning: {src}: no trace read for lead(s) aVR" in err
    d = json.loads((tmp_path / "out" / "p_digitize.json").read_text())
    assert d["status"] == "doubtful" and any("aVR" in w for w in d["warnings"])
    assert "1 with warnings" in stdout


def test_page_with_nothing_usable_is_refused(tmp_path, page, fake_reader, capsys):
    def drop_most(r):
        r.signal[:, 2:] = np.nan
        return r
    fake_reader(drop_most)
    src = write_page(tmp_path / "p.png", page[0])
    status, _, err = run([src, "--out", tmp_path / "out"], capsys)
    assert status == cli.EXIT_FAILED
    assert f"failed: {src}: nothing usable read: a trace was found for 2 of 12 leads" in err
    assert not list((tmp_path / "out").glob("p*")), "a refused page writes nothing"


# --------------------------------------------------------------------------------------------
# 5. PDFs, folders, and the tool's own outputs
# --------------------------------------------------------------------------------------------

def test_pdf_pages_and_folder_contents(tmp_path, page, capsys):
    from PIL import Image

    folder = tmp_path / "in"
    folder.mkdir()
    im = Image.fromarray(page[0])
    im.save(folder / "doc.pdf", resolution=200.0, save_all=True, append_images=[im])
    cv2.imwrite(str(folder / "scan.bmp"), cv2.cvtColor(page[0], cv2.COLOR_RGB2BGR))
    (folder / "readme.txt").write_text("x")
    (folder / "old").mkdir()
    out = tmp_path / "out"
    status, _, err = run([folder, "--out", out, "--rotate", "0"], capsys)
    assert status == cli.EXIT_OK, err
    assert complete_records(out) == {"doc_p1", "doc_p2", "scan"}
    d = json.loads((out / "doc_p2_digitize.json").read_text())
    assert d["source_page"] == 2 and d["input"]["pdf_dpi"] == 200 and d["input"]["render_dpi"] == 200
    assert d["input"]["size_px"] == [page[0].shape[1], page[0].shape[0]]
    sig, _, _ = io.read_wfdb(out / "doc_p1")
    assert mean_corr(sig, page[1]) > 0.9
    assert "readme.txt: not an image or PDF" in err and "old: sub-folder, not entered" in err


def test_output_folder_given_as_input_is_not_read_back(tmp_path, page, fake_reader, capsys):
    folder = tmp_path / "scans"
    write_page(folder / "p.png", page[0])
    for _ in range(2):
        status, _, err = run([folder, "--out", folder], capsys)
        assert status == cli.EXIT_OK, err
    assert complete_records(folder, others=["p.png"]) == {"p"}, "p_overlay.png was not digitized"
    assert "p_overlay.png" in err and "written by ecgnb" in err
    assert not list(folder.glob("*overlay_overlay*"))


# --------------------------------------------------------------------------------------------
# 6. All-or-nothing records, signals
# --------------------------------------------------------------------------------------------

def _staged(tmp, names):
    for n in names:
        (tmp / n).write_text(f"new {n}")
    return [tmp / n for n in names]


def test_commit_failing_part_way_leaves_the_old_record(tmp_path, monkeypatch):
    names = ["r.hea", "r.dat", "r.csv", "r_overlay.png", "r_digitize.json"]
    for n in names:
        (tmp_path / n).write_text(f"old {n}")
    real_replace, calls = os.replace, {"n": 0}

    def flaky(src, dst):
        calls["n"] += 1
        if calls["n"] == 8:                    # 5 moved aside, 2 moved in, the 3rd fails
            raise OSError("disk full")
        real_replace(src, dst)
    monkeypatch.setattr(os, "replace", flaky)
    with pytest.raises(OSError, match="disk full"):
        with io.staging_dir(tmp_path) as tmp:
            io.commit_files(_staged(tmp, names), tmp_path)
    monkeypatch.setattr(os, "replace", real_replace)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names), "no staging folder left"
    assert all((tmp_path / n).read_text() == f"old {n}" for n in names)


def test_stale_staging_of_a_killed_run_is_rolled_back(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    names = ["r.hea", "r.dat", "r.csv", "r_overlay.png", "r_digitize.json"]
    tmp = tmp_path / f"{io.STAGING_PREFIX}{dead}-abc"
    tmp.mkdir()
    (tmp / ".commit.json").write_text(json.dumps({"names": names}))
    _staged(tmp, names[2:])                                     # killed after 2 of 5 moves
    for n in names[:2]:
        (tmp_path / n).write_text(f"new {n}")
    (tmp_path / "done.hea").write_text("a complete record elsewhere")
    live = tmp_path / f"{io.STAGING_PREFIX}{os.getpid()}-live"
    live.mkdir()
    assert io.clean_stale_staging(tmp_path) == [tmp]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["done.hea", live.name])


def _signal_test(tmp_path, page, signum):
    folder = tmp_path / "in"
    for i in range(6):
        write_page(folder / f"p{i}.png", page[0])
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "ecgnb", "digitize", str(folder), "--out",
                             str(out), "--no-progress", "--rotate", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=paths.ROOT)
    deadline = time.time() + 240
    while not list(out.glob("*_digitize.json")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)                            # somewhere inside the next page
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=120)
    names = complete_records(out)
    assert not list(out.glob(".staging-*")), "no staging folder left"
    return proc.returncode, stdout, stderr, names


def test_sigterm_leaves_complete_records_and_a_summary(tmp_path, page):
    code, stdout, stderr, names = _signal_test(tmp_path, page, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, stderr
    assert "interrupted by SIGTERM" in stdout and "Traceback" not in stderr
    assert 1 <= len(names) < 6


def test_sigint_ends_with_the_summary_and_130(tmp_path, page):
    code, stdout, stderr, names = _signal_test(tmp_path, page, signal.SIGINT)
    assert code == 130, stderr
    assert f"interrupted by SIGINT: digitized {len(names)} of 6 pages" in stdout
    assert "Traceback" not in stderr and 1 <= len(names) < 6


# --------------------------------------------------------------------------------------------
# 7. Messages in command-line terms
# --------------------------------------------------------------------------------------------

def test_python_settings_become_options():
    assert cli.cli_terms("needs 4 rows; try layout='auto' or check") == "needs 4 rows; try --layout auto or check"
    assert cli.cli_terms("or pass checkpoint=...") == "or pass --checkpoint PATH"
    assert cli.cli_terms("no known layout fits:\n  a\n  b") == "no known layout fits:; a; b"


def test_layout_failure_speaks_options(tmp_path, page, capsys):
    src = write_page(tmp_path / "p.png", page[0])
    status, _, err = run([src, "--out", tmp_path / "out", "--layout", "12x1", "--rotate", "0"], capsys)
    assert status == cli.EXIT_FAILED
    assert "--layout auto" in err and "layout='auto'" not in err, err


# --------------------------------------------------------------------------------------------
# 8. Very large pages
# --------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_large_page_is_downscaled_in_bounded_memory(tmp_path, page):
    resource = pytest.importorskip("resource")
    if sys.platform != "linux":
        pytest.skip("ru_maxrss is in kB on Linux only")
    big = cv2.resize(page[0], (8000, 6000), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(tmp_path / "big.jpg"), cv2.cvtColor(big, cv2.COLOR_RGB2BGR))
    del big
    out = tmp_path / "out"
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=False); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    res = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "ecgnb", "digitize",
                          str(tmp_path / "big.jpg"), "--out", str(out), "--no-progress",
                          "--rotate", "0"], capture_output=True, text=True, cwd=paths.ROOT)
    peak_mb = int(res.stdout.strip().splitlines()[-1]) / 1024
    d = json.loads((out / "big_digitize.json").read_text())
    assert d["input"]["size_px"] == [8000, 6000]
    assert d["input"]["resampled"] == pytest.approx(inputs.DOWNSCALE_TO_PX / 8000, rel=1e-3)
    assert peak_mb < 2000, f"peak {peak_mb:.0f} MB"
    sig, _, _ = io.read_wfdb(out / "big")
    assert mean_corr(sig, page[1]) > 0.9
    shutil.rmtree(out)
