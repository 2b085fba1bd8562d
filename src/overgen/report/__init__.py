"""A folder of runs -> ``report.md`` + ``report.html``: the paper's tables and figures
rebuilt from ``metrics.json`` files alone, beside the paper's numbers.

``python -m overgen.report <dir> [<dir> ...] [--out <folder>]``
"""

from __future__ import annotations

import argparse
import sys

from overgen.report.collect import find_runs, missing_dirs
from overgen.report.render import write_report


def main(argv: list[str] | None = None) -> int:
    """Command line entry; returns 0, or 2 (message on stderr) when there is nothing to read."""
    parser = argparse.ArgumentParser(
        prog="python -m overgen.report",
        description="Build report.md and report.html from the metrics.json files under dirs.")
    parser.add_argument("dirs", nargs="+", help="run folders (a Hydra multirun dir, or several)")
    parser.add_argument("--out", help="output folder (default: the first dir)")
    args = parser.parse_args(argv)
    if missing_dirs("overgen.report", args.dirs):
        return 2
    runs = find_runs(args.dirs)
    if not runs:
        print(f"overgen.report: no readable metrics.json found under {', '.join(args.dirs)}",
              file=sys.stderr)
        return 2
    for path in write_report(runs, args.dirs, args.out or args.dirs[0]):
        print(path)
    return 0
