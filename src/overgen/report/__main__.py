"""``python -m overgen.report <dir> [<dir> ...] [--out <folder>]``."""

from overgen.report import main

raise SystemExit(main())
