"""Time the two test tiers and record them for the README (``reports/benchmarks/test_suite.json``).

    .venv/bin/python benchmarks/bench_tests.py            # both tiers: make unit, then make test
    .venv/bin/python benchmarks/bench_tests.py --tier unit

Each tier runs as its own pytest process (what ``make unit`` / ``make test`` run); a tier is
recorded only when it passes. Timed here rather than inside the suite, so no test writes a
tracked file.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ecgnb import io, pipeline  # noqa: E402

TIERS = {"unit": ["-m", "not slow"], "test": []}   # make unit / make test
OUT = ROOT / "reports" / "benchmarks" / "test_suite.json"


def run_tier(name: str) -> dict:
    """Run one tier; return ``{seconds, passed, skipped, date, machine}`` (SystemExit if it fails)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *TIERS[name]], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    print(f"make {name}: {tail} ({seconds / 60:.1f} min)")
    if proc.returncode != 0:
        sys.exit(f"make {name} failed (exit {proc.returncode}); nothing recorded\n{proc.stdout[-3000:]}")
    count = {k: int(n) for n, k in re.findall(r"(\d+) (passed|skipped|deselected)", tail)}
    return {"seconds": round(seconds, 1), "passed": count.get("passed", 0),
            "skipped": count.get("skipped", 0), "date": date.today().isoformat(),
            "machine": pipeline.machine_id()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tier", choices=sorted(TIERS), action="append",
                    help="tier(s) to time (default: both)")
    args = ap.parse_args(argv)
    record = io.read_json(OUT) if OUT.exists() else {}
    record = {k: v for k, v in record.items() if k in TIERS}   # older files held one flat run
    for name in args.tier or list(TIERS):
        record[name] = run_tier(name)
    io.write_json(OUT, record)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
