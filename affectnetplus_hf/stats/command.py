"""The ``affectnetplus stats`` subcommand: ``affectnetplus stats SOURCE --out DIR``.

:func:`add_parser` adds it to the package CLI's subparsers; :func:`run` executes parsed
arguments; ``python -m affectnetplus_hf.stats SOURCE --out DIR`` runs it alone.
"""

from __future__ import annotations

import argparse
import sys

from ..core.configs import ALL_PARTS

__all__ = ["add_parser", "configure_parser", "main", "run"]

DESCRIPTION = """\
Statistics of AffectNet+: counts per split x class x subset, soft-label agreement with
the human label, age / gender / race, valence / arousal, null counts and the mean
landmark shape. Writes DIR/stats.json, DIR/tables.md, DIR/tables/*.csv|md,
DIR/plots/*.png (needs matplotlib: pip install 'affectnetplus-hf[stats]') and
DIR/report.html, one page readable offline, and DIR/stats_manifest.json, the files it
wrote with their sha256. A later run replaces only those files, and only while unchanged:
a file of yours (or one you edited) where a file of the statistics goes stops the run
with exit 2 before anything is written. Reads SOURCE streaming (images are never
decoded), so memory stays flat on the full release."""


def configure_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "source",
        metavar="SOURCE",
        help="an exported folder (affectnetplus export), a Hub repo id (owner/name), or a raw release folder",
    )
    parser.add_argument(
        "--out", "-o", metavar="DIR", default="affectnetplus_stats", help="output folder (default: %(default)s)"
    )
    parser.add_argument(
        "--split",
        action="append",
        dest="splits",
        choices=ALL_PARTS,
        help="only this split (repeat for several; default: all)",
    )
    parser.add_argument("--no-plots", action="store_true", help="write numbers, tables and the report without plots")
    parser.add_argument(
        "--link-plots",
        action="store_true",
        help="make report.html link plots/*.png instead of embedding them (a smaller page that must stay beside plots/)",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no summary")
    parser.set_defaults(func=run)
    return parser


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``stats`` to an ``argparse`` subparsers object; returns the new parser."""
    parser = subparsers.add_parser(
        "stats",
        help="statistics, tables, plots and report.html of an export, a Hub repo or a raw release",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return configure_parser(parser)


def run(args: argparse.Namespace) -> int:
    """Execute parsed arguments; returns the exit status: 0 when the statistics were
    written (bad records of a raw release are counted in them), 2 with a message on bad
    input, when SOURCE holds no row, or when DIR holds files of yours that the statistics
    would overwrite (nothing is written then), 1 when it holds records but every one is bad."""
    import shlex

    from ..errors import AffectNetPlusError
    from .compute import compute_summary
    from .tables import left_out_sentence
    from .write import check_out_dir, write_stats_files

    def echo(message: str) -> None:
        print(message, file=sys.stderr)

    try:
        check_out_dir(args.out)  # a file of yours in the way: said now, not after the whole pass
        stats = compute_summary(args.source, splits=args.splits, progress=not args.quiet)
    except (AffectNetPlusError, FileNotFoundError) as exc:
        echo(f"affectnetplus stats: {exc}")
        return 2
    bad = {k: v for k, v in stats.source.bad_records.items() if v}
    listed = f"(affectnetplus verify {shlex.quote(str(args.source))} lists them with path and reason)"
    if stats.rows.total == 0:
        which = f" in split {', '.join(args.splits)}" if args.splits else ""
        found = f"all {sum(bad.values()):,} records{which} are bad {listed}" if bad else f"it holds no row{which}"
        echo(
            f"affectnetplus stats: {args.source}: no statistics to compute: {found}; nothing was written to {args.out}"
        )
        return 1 if bad else 2
    try:
        output = write_stats_files(stats, args.out, plots=not args.no_plots, embed=not args.link_plots, echo=echo)
    except AffectNetPlusError as exc:
        echo(f"affectnetplus stats: {exc}")
        return 2
    if not args.quiet:
        rows = ", ".join(f"{s} {stats.rows.by_split[s]:,}" for s in stats.splits)
        print(f"{stats.rows.total:,} rows ({rows}) from {stats.source.name} [{stats.source.kind}]")
        if bad:
            print("bad records skipped: " + ", ".join(f"{k} {v:,}" for k, v in bad.items()) + f" {listed}")
        left_out = left_out_sentence(stats)
        if left_out:
            print(left_out)
        print(f"wrote {output.report_path} ({len(output.plots)} plots, {len(output.tables) // 2} tables)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="affectnetplus stats", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    configure_parser(parser)
    return run(parser.parse_args(argv))
