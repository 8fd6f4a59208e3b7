"""Command line: ``python -m ecgnb study|digitize|readme`` (see ``-h`` of each)."""
from __future__ import annotations

import argparse
import sys

from .config import PROFILES


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m ecgnb", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    study = sub.add_parser("study", help="run the notebooks in order with papermill")
    study.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    study.add_argument("--only", nargs="*", help="run only notebooks whose name starts so (e.g. 01)")
    readme = sub.add_parser("readme", help="regenerate the README's results tables from reports/")
    readme.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    sub.add_parser("digitize", help="digitize ECG images (see `python -m ecgnb digitize -h`)",
                   add_help=False)
    if argv[:1] == ["digitize"]:
        from .cli import main as digitize_main   # argparse of its own; imports cv2 only when needed
        return digitize_main(argv[1:])
    args = parser.parse_args(argv)
    if args.command == "readme":
        from . import paths, report
        from .errors import MissingInputError
        try:
            report.update_readme(paths.ROOT / "README.md", args.profile, paths.report_dir(args.profile))
        except MissingInputError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"README.md results updated from reports/{args.profile}/")
        return 0
    from .pipeline import main_study
    return main_study(args.profile, args.only)


if __name__ == "__main__":
    sys.exit(main())
