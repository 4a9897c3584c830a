"""``musicrec report BUNDLE``: a bundle's build report as text, JSON or one HTML file with pictures."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("report", help="a bundle's build report: text, --json, or --html FILE with pictures",
                       description="Verify and load a bundle and print its build report. --html FILE writes one "
                                   "self-contained HTML file: the report's tables and figures (the mood map, each "
                                   "mood's profile, genre and family confusion matrices, the reliability diagram, "
                                   "per-genre accuracy, PCA explained variance, index recall). Needs the report "
                                   "extra (matplotlib) for --html.")
    p.add_argument("bundle", type=Path, help="bundle directory (or a symlink such as bundles/current)")
    p.add_argument("--html", type=_file_name, metavar="FILE",
                   help="write the report with pictures to FILE (missing parent directories are created)")
    p.add_argument("--json", action="store_true", help="print the manifest (the report's facts) as JSON")
    p.set_defaults(func=cmd_report)


def _file_name(text: str) -> str:
    """A file name argument, as typed (a trailing "/" is the output check's to refuse); an empty one is refused as
    such (it read as ".", "is a directory")."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty; give a file name")
    return text


def cmd_report(args: argparse.Namespace) -> int:
    if args.html is not None:
        try:
            import matplotlib  # noqa: F401  (checked first: a bundle load takes seconds)
        except ImportError:
            from engine import install_hint
            print(f"musicrec report: error: --html needs matplotlib: {install_hint('report')}", file=sys.stderr)
            return 2
    from engine import bundle_report_html, format_report, load_bundle, write_output

    from ._outputs import check_output_file

    # before the load: a directory there is refused as musicrec index does, and so is a path inside the bundle
    check_output_file("--html", args.html, bundles=[Path(os.path.realpath(args.bundle))])
    bundle = load_bundle(args.bundle)
    if args.json:
        print(json.dumps(bundle.manifest, indent=2))
    elif args.html is None:
        print(format_report(bundle.manifest, moods=bundle.moods.clusters_, where=str(bundle.path / "manifest.json"),
                            width=getattr(args, "width", None)))  # narrowed to the terminal, as index prints it
    if args.html is not None:
        page = bundle_report_html(bundle)
        try:
            write_output(args.html, page)
        except OSError as exc:  # permissions, a full disk
            print(f"musicrec report: error: --html {args.html}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        print(f"wrote {args.html} ({len(page.encode()) / 1024:,.0f} KiB, {page.count('<img ')} figures)",
              file=sys.stderr)
    return 0
