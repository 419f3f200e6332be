"""The ``affectnetplus`` command: a thin face over the package's functions.

Each subcommand parses its arguments, calls one function of the package and prints what
happened and what to do next. The library reports through ``logging`` (logger
``affectnetplus_hf``) and callbacks; only this module prints, and it shows the library's
log messages on stderr (warnings only with ``--quiet``).

Exit status, the same for every subcommand (:data:`EXIT_STATUS_HELP`, shown by ``--help``):
0 success, 1 bad records found, 2 usage or input error, 3 unexpected internal error (one
line on stderr naming a file that holds the traceback; never a raw traceback).
"""

from __future__ import annotations

import _thread
import argparse
import contextlib
import errno
import logging
import os
import shlex
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ._version import __version__
from .errors import AffectNetPlusError, BadRecordError, NothingToExportError

__all__ = [
    "EXIT_BAD_RECORDS",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PIPE_CLOSED",
    "EXIT_STATUS_HELP",
    "EXIT_USAGE",
    "build_parser",
    "main",
]

EXIT_OK = 0
EXIT_BAD_RECORDS = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130  # the shell's code for SIGINT
EXIT_PIPE_CLOSED = 141  # the shell's code for SIGPIPE

EXIT_STATUS_HELP = """\
exit status (every command):
  0  success: every record read was good (verify) or written (export); stats written (stats
     counts the bad records of a raw release and exits 0 unless every record is bad)
  1  bad records found (verify, export): verify listed them; export skipped them and listed them in
     OUT/export_report.jsonl (or stopped at the first with --on-bad error; or every record was
     bad: then OUT is left as it was and the report is OUT.report.jsonl beside it); stats: every
     record is bad, nothing written
  2  usage or input error: a wrong option, no release at the folder (or one that cannot be read),
     a release with no record, a file that cannot be written, a worker process killed from
     outside (out of memory, say); the message says which file and what to do
  3  unexpected internal error: one line on stderr and the path of a file holding the
     traceback; please report it with that file
  130  interrupted (Ctrl-C): one line saying what was left as it was
  143, 129  stopped by SIGTERM (kill, the end of a batch job) or SIGHUP (the terminal closed):
       the same as 130, and the line names the signal
  141  standard output was closed by its reader (piped into head, say); the
       command's work was done or stopped as for exit 130; nothing more is printed"""

#: What an interrupted command leaves behind, told on the line it prints.
_INTERRUPTED = {
    "export": "the output folder holds the previous export, or the new one if the interrupt came after the "
    "final swap, whole either way (never part of one); run the export again",
    "verify": "nothing was written; run verify again",
    "push": "the repo serves the previous export, the new one, or on a first push nothing yet, never part of "
    "one; run push again to finish (it resumes)",
    "stats": "the statistics folder may be incomplete; run stats again",
    "sample": "the sample folder may be incomplete; remove it and run sample again",
    "demo": "remove its folder and run the demo again",
}

# ----------------------------------------------------------------------------- commands


#: ``sample --kind`` -> the release kind it writes
_SAMPLE_KINDS = {"affectnetplus": "affectnet_plus", "2017": "affectnet_2017", "8labels": "affectnet_8labels"}


def _cmd_sample_original(args) -> int:
    from .core.releases import release_info
    from .release.sample_original import FAULTS_8LABELS, FAULTS_2017, write_sample_8labels, write_sample_2017

    table, write = (FAULTS_2017, write_sample_2017) if args.kind == "2017" else (FAULTS_8LABELS, write_sample_8labels)
    faults = {"train": list(table)} if args.with_faults else None
    if faults and args.n < len(table):
        raise ValueError(
            f"--with-faults plants {len(table)} faults, one per record: use --n {len(table)} or more (got --n {args.n})"
        )
    manifest = write(args.out, n=args.n, seed=args.seed, faults=faults)
    total = sum(len(ids) for ids in manifest.ids.values())
    title = release_info(_SAMPLE_KINDS[args.kind]).title
    print(f"wrote a synthetic {title} release ({total} records, {args.n} per part) to {Path(args.out).resolve()}")
    if args.quiet:
        return EXIT_OK
    if faults:
        print(f"planted faults in train: {', '.join(table)}")
    out = shlex.quote(args.out)
    print(f"next: affectnetplus verify {out}   or   affectnetplus export {out} ./affectnet_{args.kind}")
    return EXIT_OK


def _cmd_sample(args) -> int:
    if args.kind != "affectnetplus":
        if args.layout != "release":
            raise ValueError(
                f"--layout {args.layout} is for AffectNet+ samples; --kind {args.kind} writes its release's own layout"
            )
        return _cmd_sample_original(args)
    from .release.sample import FAULTS, write_sample

    faults = {"train": list(FAULTS)} if args.with_faults else None
    if faults and args.n < len(FAULTS):
        raise ValueError(
            f"--with-faults plants {len(FAULTS)} faults, one per record: use --n {len(FAULTS)} or more (got --n {args.n})"
        )
    manifest = write_sample(args.out, n=args.n, seed=args.seed, layout=args.layout, faults=faults)
    total = sum(len(ids) for ids in manifest.ids.values())
    print(f"wrote a synthetic AffectNet+ release ({total} records, {args.n} per part) to {Path(args.out).resolve()}")
    if args.quiet:
        return EXIT_OK
    if faults:
        print(f"planted faults in train: {', '.join(FAULTS)}")
    out = shlex.quote(args.out)
    print(f"next: affectnetplus verify {out}   or   affectnetplus export {out} ./affectnet_plus")
    return EXIT_OK


def _print_export(result) -> None:
    from .core.releases import release_info

    print(f"exported the {release_info(result.release).title} release")
    print(result.reconciliation())
    print(f"wrote {result.out_dir}  (fingerprint {result.fingerprint})")
    for part, counts in result.partition_counts.items():
        print(f"  {part:<10} " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if result.bad:
        print(f"{result.bad} bad records skipped: " + ", ".join(f"{r} x{n}" for r, n in result.bad_reasons.items()))
    print(f"report (bad records, notes, files not read): {result.report_path}")
    if result.kept_files:
        shown = ", ".join(result.kept_files[:5]) + (
            f", ... ({len(result.kept_files)} in all)" if len(result.kept_files) > 5 else ""
        )
        print(f"kept {len(result.kept_files)} file(s) of yours in {result.out_dir} (not written by an export): {shown}")
    if result.bad:
        print("fix or re-extract the files listed there and export again to include them.")


def _cmd_export(args) -> int:
    from .core.configs import RELEASE_PARTS, config_reading
    from .exporter.writer import export

    result = export(
        args.raw,
        args.out,
        num_proc=args.num_proc,
        shard_records=args.shard_records,
        num_shards=args.num_shards,
        on_bad=args.on_bad,
        check_images=args.check_images,
        progress=not args.quiet,
    )
    _print_export(result)
    parts = RELEASE_PARTS[result.release]
    config = next(
        (config_reading(p, result.release) for p in parts if result.partition_counts.get(p)),
        config_reading(parts[-1], result.release),
    )
    # the folder's whole path: a bare name would let `datasets` serve another cached export of that name
    code = f"from datasets import load_dataset; print(load_dataset({_py(str(result.out_dir))}, {_py(config)}))"
    print(f"load it: python -c {shlex.quote(code)}")
    return EXIT_BAD_RECORDS if result.bad else EXIT_OK


def _cmd_verify(args) -> int:
    from .release.verification import verify

    report = verify(args.raw, num_proc=args.num_proc, check_images=args.check_images, progress=not args.quiet)
    if args.json:
        import json

        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        print(report.to_text())
    if report.read == 0:
        print(
            f"affectnetplus verify: error: {report.root}: no record found "
            + (
                "(no images/<id>.jpg and no annotations/<id>.json in the parts above)"
                if report.kind == "affectnet_plus"
                else "in the parts above"
            )
            + "; re-extract the release",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return EXIT_OK if report.ok else EXIT_BAD_RECORDS


def _py(text: str) -> str:
    """A Python string literal of ``text`` with double quotes (for the commands printed)."""
    import json

    return json.dumps(text, ensure_ascii=False)  # a JSON string is a Python literal too


def _fmt(value, spec: str) -> str:
    return "null" if value is None else format(value, spec)


def _cmd_demo(args) -> int:
    """Sample -> export -> load_dataset -> statistics, end to end, with planted faults to show reporting."""
    import datasets

    from .core.configs import CONFIG_NAMES, DEFAULT_CONFIG
    from .exporter.writer import export
    from .stats import write_stats

    workdir = Path(args.dir).absolute() if args.dir else Path(tempfile.mkdtemp(prefix="affectnetplus-demo-"))
    raw = workdir / "AffectNet+"
    if raw.exists():
        raise FileExistsError(
            f"{raw}: already exists (an earlier demo?); expected a new --dir, so that the demo's release is exactly "
            f"its sample: remove {workdir} or choose another --dir"
        )
    out = workdir / "affectnet_plus"
    stats_dir = workdir / "affectnet_plus_stats"
    from .release.sample import write_sample

    print(f"[1/4] writing a synthetic release ({args.n} records per part) to {raw}")
    write_sample(raw, n=args.n, faults={"train": ["truncated_jpeg", "missing_annotation", "bom_crlf", "sentinel"]})
    print(f"[2/4] exporting to {out} (2 planted bad records are skipped and reported)")
    result = export(raw, out, num_proc=args.num_proc, progress=not args.quiet)
    _print_export(result)
    print("[3/4] loading every config with datasets.load_dataset")
    datasets.disable_progress_bars()
    cache = workdir / "hf_cache"
    for config in CONFIG_NAMES:
        ds = datasets.load_dataset(str(out), config, cache_dir=str(cache))
        print(f"  {config:<12} " + ", ".join(f"{split}: {len(d)} rows" for split, d in ds.items()))
    train = datasets.load_dataset(str(out), DEFAULT_CONFIG, split="train", cache_dir=str(cache))
    row, features = train[0], train.features
    pose = {k: round(v, 2) for k, v in row["head_pose"].items()} if row["head_pose"] else None
    label = features["human_label"].int2str(row["human_label"]) if row["human_label"] is not None else None
    subset = features["subset"].int2str(row["subset"]) if row["subset"] is not None else None
    print("  one row of 'all'/train:")
    print(f"    image_id={row['image_id']} image={row['image'].size} human_label={label} subset={subset}")
    print(
        f"    soft_label={[round(v, 3) for v in row['soft_label']]} (sum {sum(row['soft_label']):.2f}: scores, not a distribution)"
    )
    landmarks = f"{len(row['landmarks'])}x{len(row['landmarks'][0])}" if row["landmarks"] else None
    print(
        f"    valence={_fmt(row['valence'], '.3f')} arousal={_fmt(row['arousal'], '.3f')} age={_fmt(row['age'], '.0f')} "
        f"landmarks={landmarks} head_pose={pose}"
    )
    print(f"[4/4] statistics of the export (tables and plots) into {stats_dir}")
    notes: list[str] = []
    stats = write_stats(str(out), stats_dir, progress=not args.quiet, echo=notes.append)
    for note in notes:
        print(f"  {note}")
    if stats.plot_note:
        print(
            "  for the plots: pip install 'affectnetplus-hf[stats]' (scripts/demo.sh installs it), then run the demo again"
        )
    print(f"  {len(stats.plots)} plots, {len(stats.tables) // 2} tables")
    print(f"demo done. Everything is under {workdir}")
    print(f"  statistics report: {stats.report_path}")
    print(f"  dataset card:      {out / 'README.md'}")
    return EXIT_OK


def _cmd_push(args) -> int:
    from .core.configs import DEFAULT_CONFIG
    from .hub.publish import push

    result = push(
        args.folder,
        args.repo_id,
        token=args.token,
        public=args.public,
        i_have_redistribution_rights=args.i_have_redistribution_rights,
        revision=args.revision,
        gated=False if args.gated == "off" else args.gated,
        progress=not args.quiet,
    )
    visibility = "private" if result.private else "PUBLIC"
    print(f"pushed {args.folder} to {result.url} ({visibility}, gated={result.gated}, revision {result.revision})")
    code = (
        f"from datasets import load_dataset; print(next(iter(load_dataset({_py(result.repo_id)}, {_py(DEFAULT_CONFIG)}, "
        'split="train", streaming=True)))["image_id"])'
    )
    print(f"stream it: python -c {shlex.quote(code)}")
    return EXIT_OK


# ----------------------------------------------------------------------------- parser


def _add_quiet(parser: argparse.ArgumentParser, add_quiet: bool = True) -> None:
    """``--quiet``/``-q`` (no progress bars, library messages only when they are warnings),
    and ``--no-progress``, its former spelling, kept as a hidden alias."""
    if add_quiet:
        parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars; only warnings and results")
    parser.add_argument("--no-progress", dest="quiet", action="store_true", help=argparse.SUPPRESS)


def _positive(text: str, maximum: int | None = None, why: str = "") -> int:
    """argparse type of a count: a whole number of 1 or more (at most ``maximum``, which ``why`` explains)."""
    expected = "a whole number of 1 or more" + (
        f", at most {maximum:,}" + (f" ({why})" if why else "") if maximum else ""
    )
    try:
        value = int(text)
    except ValueError:  # also a number of more than 4300 digits
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise argparse.ArgumentTypeError(f"expected {expected}, got {shown!r}") from None
    if value < 1 or (maximum is not None and value > maximum):
        shown = str(value) if len(str(value)) <= 40 else f"a number of {len(str(value))} digits"
        raise argparse.ArgumentTypeError(f"expected {expected}, got {shown}")
    return value


def _count(maximum: int, why: str):
    """An argparse type: :func:`_positive` with a ceiling, so that no count makes a command run or
    allocate beyond what the release (or the machine) holds."""

    def parse(text: str) -> int:
        return _positive(text, maximum, why)

    parse.__name__ = "count"  # argparse names the type in some messages
    return parse


def _add_num_proc(parser: argparse.ArgumentParser, default: int) -> None:
    from .core.parallel import MAX_NUM_PROC

    parser.add_argument(
        "--num-proc", type=_count(MAX_NUM_PROC, "worker processes"), default=default,
        help=f"worker processes, at most {MAX_NUM_PROC} (default %(default)s)",
    )  # fmt: skip


#: The line each command's --help ends with: the codes, and where the full table is (said once, in `affectnetplus --help`).
EXIT_STATUS_POINTER = (
    "exit status: 0 success, 1 bad records found, 2 usage or input error, 3 internal error, "
    "130 interrupted, 141 output closed;\n  'affectnetplus --help' (or docs/cli.md) says what each means"
)


def _epilog(examples: str) -> str:
    return "examples:\n" + examples + "\n\n" + EXIT_STATUS_POINTER


def _subcommand(sub, name: str, summary: str, description: str, examples: str) -> argparse.ArgumentParser:
    return sub.add_parser(
        name,
        help=summary,
        description=description,
        epilog=_epilog(examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def build_parser() -> argparse.ArgumentParser:
    from .core.choices import CheckImages, Gating, OnBad, choices_of
    from .exporter.writer import (  # imported here: the package's heavy imports run inside main's try
        DEFAULT_SHARD_RECORDS,
        MAX_NUM_SHARDS,
    )
    from .release.sample import MAX_SAMPLE_RECORDS

    parser = argparse.ArgumentParser(
        prog="affectnetplus",
        description="AffectNet+ as a typed Hugging Face dataset: verify a release, export it to Parquet, "
        "publish and inspect it. 'affectnetplus COMMAND --help' describes each command.",
        epilog="examples:\n"
        "  affectnetplus demo                                   # everything, on a synthetic release\n"
        "  affectnetplus verify /data/AffectNet+                # what is there, what is broken\n"
        "  affectnetplus export /data/AffectNet+ ./affectnet_plus\n\n" + EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cpus = max(1, min(8, os.cpu_count() or 1))

    p = _subcommand(
        sub,
        "sample",
        "write a small synthetic release in the real layout",
        "Write a synthetic AffectNet+ release in the real folder layout and JSON format: cartoon faces\n"
        "drawn from their own 68 landmarks, with SYNTHETIC written on them (no real face). With\n"
        "--with-faults, one record of train gets each fault a real download has (see sample.FAULTS).\n"
        "--kind 2017 writes the AffectNet 2017 release instead (CSV lists, full JPEG/PNG images),\n"
        "--kind 8labels the 8-label release (224 x 224 crops, .npy annotations); their faults are\n"
        "sample_original.FAULTS_2017 and FAULTS_8LABELS.",
        "  affectnetplus sample ./AffectNet+-sample --n 40\n"
        "  affectnetplus sample ./AffectNet-2017 --kind 2017 --with-faults\n"
        "  affectnetplus sample ./broken --with-faults && affectnetplus verify ./broken",
    )
    p.add_argument("out", help="folder to write the release into")
    sample_n = _count(MAX_SAMPLE_RECORDS, "records per part of a synthetic release")
    p.add_argument(
        "--n", type=sample_n, default=40, help=f"records per part, at most {MAX_SAMPLE_RECORDS:,} (default %(default)s)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--layout",
        choices=("release", "pdf"),
        default="release",
        help="folder spelling: release (human_annotated/train_set) or pdf (Human Annotated/Train Set)",
    )
    p.add_argument(
        "--kind",
        choices=tuple(_SAMPLE_KINDS),
        default="affectnetplus",
        help="which release to write: affectnetplus (default), 2017 or 8labels",
    )
    p.add_argument("--with-faults", action="store_true", help="plant one of each known fault into train")
    _add_quiet(p)
    p.set_defaults(func=_cmd_sample)

    p = _subcommand(
        sub,
        "export",
        "export a raw release to a no-code Parquet dataset folder",
        "Read every record of the release under RAW and write OUT: typed Parquet shards by part and\n"
        "subset, a dataset card (README.md) with configs, features, counts and statistics, and\n"
        "export_info.json. Bad records are skipped and listed with path and reason in\n"
        "OUT/export_report.jsonl (with the notes and the files not read); the last line\n"
        "printed reconciles: records read = written + reported bad. OUT is replaced at the end\n"
        "by one swap; files in OUT that the previous export did not write are kept (files\n"
        "written while it runs too); folders beside OUT are never touched by name; an\n"
        "interrupted export leaves the previous one as it was. When nothing can be exported\n"
        "(every record bad) OUT is left as it was and the report is OUT.report.jsonl beside it.",
        "  affectnetplus export /data/AffectNet+ ./affectnet_plus --num-proc 8\n"
        "  affectnetplus export /data/AffectNet+ ./affectnet_plus --on-bad error --check-images decode",
    )
    p.add_argument("raw", help="folder the release was extracted into")
    p.add_argument("out", nargs="?", default="affectnet_plus", help="dataset folder to write (default ./%(default)s)")
    p.add_argument(
        "--shard-records",
        type=_positive,
        default=DEFAULT_SHARD_RECORDS,
        help="target records per shard before rounding (default %(default)s)",
    )
    p.add_argument(
        "--num-shards", type=_count(MAX_NUM_SHARDS, "shards per part"), default=None,
        help=f"this many shards per part, at most {MAX_NUM_SHARDS:,} and at most one per record of the part",
    )  # fmt: skip
    p.add_argument(
        "--on-bad",
        choices=choices_of(OnBad),
        default="skip",
        help="error: stop at the first bad record; skip: report each and go on (default)",
    )
    p.add_argument(
        "--check-images",
        choices=choices_of(CheckImages),
        default="markers",
        help="JPEG check: start/end markers (fast, default) or a full decode",
    )
    _add_num_proc(p, cpus)
    _add_quiet(p)
    p.set_defaults(func=_cmd_export)

    p = _subcommand(
        sub,
        "verify",
        "count what is in a raw release and list what is broken",
        "Read every record of the release under RAW (nothing is written) and print, per part: the\n"
        "counts per class x subset next to the published counts (a part with fewer records is\n"
        "flagged LOOKS INCOMPLETE), the bad records with path and reason, the notes (values\n"
        "stored null or kept out of range) and the files and folders not read. --json prints the\n"
        "same report as JSON, listing every bad record, note kind and file not read.",
        "  affectnetplus verify /data/AffectNet+\n  affectnetplus verify /data/AffectNet+ --json -q > verify.json",
    )
    p.add_argument("raw", help="folder the release was extracted into")
    p.add_argument(
        "--check-images",
        choices=choices_of(CheckImages),
        default="markers",
        help="JPEG check: start/end markers (fast, default) or a full decode",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    _add_num_proc(p, cpus)
    _add_quiet(p)
    p.set_defaults(func=_cmd_verify)

    p = _subcommand(
        sub,
        "push",
        "upload an exported folder to a private, gated Hub dataset repo",
        "Upload a folder written by 'affectnetplus export' to a Hugging Face dataset repo, private\n"
        "and gated by default (the AffectNet+ licence forbids redistribution). Files of an earlier\n"
        "export are replaced; files the export did not write are kept.",
        "  affectnetplus push ./affectnet_plus my-lab/affectnet_plus\n"
        "  HF_TOKEN=... affectnetplus push ./affectnet_plus my-lab/affectnet_plus --revision v2 --gated auto",
    )
    p.add_argument("folder", help="the folder written by `affectnetplus export`")
    p.add_argument("repo_id", help="dataset repo to create or update, e.g. my-lab/affectnet_plus")
    p.add_argument(
        "--token",
        help="Hub token with write access (default: HF_TOKEN, then `hf auth login`; prefer those: "
        "a command-line token is visible to other users of the machine)",
    )
    p.add_argument("--revision", help="branch to push to (created if missing; default main)")
    p.add_argument(
        "--gated",
        choices=(*choices_of(Gating), "off"),
        default="manual",
        help="access requests: approved by you (manual, default), automatically (auto), or no gating (off)",
    )
    p.add_argument(
        "--public",
        action="store_true",
        help="make the repo public (needs --i-have-redistribution-rights: the AffectNet+ licence forbids redistribution)",
    )
    p.add_argument(
        "--i-have-redistribution-rights",
        action="store_true",
        help="state that the AffectNet+ authors allowed you to redistribute the data (only with --public)",
    )
    _add_quiet(p)
    p.set_defaults(func=_cmd_push)

    p = _subcommand(
        sub,
        "demo",
        "run sample -> export -> load_dataset -> statistics end to end",
        "On a synthetic release with planted faults: export it, load every config with\n"
        "datasets.load_dataset, and write the statistics report beside the export. Ends with the\n"
        "paths of report.html and of the dataset card. Exits 0 (its bad records are planted).",
        "  affectnetplus demo\n  affectnetplus demo --dir ./demo --n 200 -q",
    )
    p.add_argument("--dir", help="work folder (default: a new temporary folder)")
    p.add_argument(
        "--n", type=sample_n, default=40, help=f"records per part, at most {MAX_SAMPLE_RECORDS:,} (default %(default)s)"
    )
    _add_num_proc(p, 1)
    _add_quiet(p)
    p.set_defaults(func=_cmd_demo)

    from .stats.command import add_parser as _add_stats_parser  # stats: numbers, tables, plots, report.html

    p = _add_stats_parser(sub)
    p.epilog = _epilog(
        "  affectnetplus stats ./affectnet_plus --out ./affectnet_plus_stats\n"
        "  affectnetplus stats /data/AffectNet+ --split validation --no-plots -q"
    )
    _add_quiet(p, add_quiet=False)
    return parser


# ----------------------------------------------------------------------------- main


class _LogHandler(logging.StreamHandler):
    """The package's log records on stderr, one line each (the stream looked up per record,
    so tests that capture stderr see them)."""

    def __init__(self):
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


_HANDLER = _LogHandler()


def _setup_logging(quiet: bool) -> None:
    logger = logging.getLogger("affectnetplus_hf")
    if _HANDLER not in logger.handlers:
        logger.addHandler(_HANDLER)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False


def _crash(command: str, exc: BaseException) -> int:
    """Write the traceback to a file and print one line naming it."""
    import traceback

    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    where = None
    try:
        fd, where = tempfile.mkstemp(prefix="affectnetplus-error-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as handle:
            # the command name and version only: arguments may hold a token
            handle.write(f"affectnetplus {__version__} {command}, python {sys.version.split()[0]}\n\n{text}")
    except OSError:
        where = None
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    print(
        f"affectnetplus {command}: internal error: {type(exc).__name__}: {first}; "
        + (f"the traceback is in {where}; " if where else "the traceback could not be written to a file; ")
        + "please report it with that file (exit status 3)",
        file=sys.stderr,
    )
    return EXIT_INTERNAL


#: errno -> what to do, for an operating-system error that reaches the command unexplained.
_OS_HINTS: dict[int | None, str] = {
    errno.EEXIST: "a file is in the way where a folder is needed: choose another path or move the file",
    errno.ENOTDIR: "a file is in the way where a folder is needed: choose another path or move the file",
    errno.EISDIR: "a folder is where a file was expected: check the path",
    errno.EACCES: "you may not read or write there: check its permissions or choose another path",
    errno.EPERM: "you may not read or write there: check its permissions or choose another path",
    errno.EROFS: "the disk is read-only: choose another path",
    errno.ENOSPC: "the disk is full: free some space or choose another disk",
    errno.ENOENT: "it does not exist: check the path (create the folder above it first)",
}


def _error(command: str, exc: BaseException) -> None:
    text = str(exc)
    if isinstance(exc, OSError) and not isinstance(exc, AffectNetPlusError) and exc.strerror:
        # a bare OSError ("[Errno 17] File exists: 'x'"): the path, what happened, what to do
        where = f"{exc.filename}: " if exc.filename is not None else ""
        hint = _OS_HINTS.get(exc.errno, "check the path and run again")
        text = f"{where}{exc.strerror}; {hint}"
    print(f"affectnetplus {command}: error: {text}", file=sys.stderr)


class _Interrupts:
    """Ctrl-C during a command: always exit 130 with one line, never a traceback, never lost.

    For the command's run it installs a SIGINT handler that notes the interrupt before raising
    ``KeyboardInterrupt``, and a ``sys.unraisablehook``. An interrupt that lands in a
    ``__del__`` or a weakref callback cannot be raised there (Python prints "Exception ignored"
    and goes on): the hook keeps it quiet and a thread raises it again in the main thread a
    few milliseconds later, until it lands where it stops the command. A command that returns
    although it was interrupted (a library caught the ``KeyboardInterrupt``) still exits 130.
    Once the line is printed a further Ctrl-C changes nothing; when run as the program, a
    Ctrl-C after the command returned (while the interpreter exits) ends it at once with
    status 130, leaving no atexit handler to print a traceback from. Outside the main thread
    it does nothing.
    """

    _RETRY_S = 0.002

    def __init__(self, program: bool):
        self.program = program
        self.interrupted = False
        self.pending = False  # an interrupt was lost in a finalizer and is to be raised again
        self.retrying = False  # the retry thread has raised it again, and _on_sigint has not run since
        self.closed = False
        self.retry: threading.Thread | None = None
        self.wake = threading.Event()
        self.command: str | None = None
        self.reported = False
        self.stopped_by: int | None = None  # SIGTERM or SIGHUP, when one of them stopped the command
        self.previous_stops: dict[int, Any] = {}
        self.active = threading.current_thread() is threading.main_thread()

    def __enter__(self) -> _Interrupts:
        if self.active:
            self.previous_handler = signal.signal(signal.SIGINT, self._on_sigint)
            self.previous_hook = sys.unraisablehook
            sys.unraisablehook = self._on_unraisable
            if self.program:  # as the program, `kill` and a closed terminal stop it as Ctrl-C does (exit 128 + n)
                from .core.parallel import STOP_SIGNALS

                self.previous_stops = {number: signal.signal(number, self._on_stop) for number in STOP_SIGNALS}
        return self

    def _on_stop(self, signum, frame) -> None:
        """SIGTERM or SIGHUP: an interrupt, delivered as Ctrl-C is (held back where Ctrl-C is, the
        same cleanup), reported with that signal's name and exit status."""
        if self.stopped_by is None:
            self.stopped_by = signum
        signal.raise_signal(signal.SIGINT)  # runs the SIGINT handler in place now, at the next check

    def _on_sigint(self, signum, frame) -> None:
        if self.retrying:
            self.retrying = False
            if not self.pending:  # a retry of an interrupt raised since: nothing more to do
                return
        self.interrupted = True
        while frame is not None:  # inside the hook below, raising would be lost as well: again later
            if frame.f_code is _Interrupts._on_unraisable.__code__:
                self._again()
                return
            frame = frame.f_back
        self.pending = False
        raise KeyboardInterrupt

    def _on_unraisable(self, info) -> None:
        if info.exc_type is not None and issubclass(info.exc_type, KeyboardInterrupt):
            self._again()
            return
        self.previous_hook(info)

    def _again(self) -> None:
        self.pending = True
        self.wake.set()
        if self.retry is None:
            self.retry = threading.Thread(target=self._retry, name="affectnetplus-interrupt", daemon=True)
            self.retry.start()

    def _retry(self) -> None:
        while not self.closed:
            self.wake.wait()
            self.wake.clear()
            time.sleep(self._RETRY_S)  # time for the finalizer (or the hook) to return
            while self.pending and not self.closed:
                if not self.retrying:  # one at a time: a second one queued could land in the command's cleanup
                    self.retrying = True
                    _thread.interrupt_main()  # calls _on_sigint in the main thread, which clears pending
                time.sleep(self._RETRY_S)

    def report(self) -> int:
        """Print the one line (once) and return :data:`EXIT_INTERRUPTED` (128 + the signal's number
        for SIGTERM or SIGHUP); later Ctrl-Cs change nothing."""
        self.closed = True
        if self.active:
            signal.signal(signal.SIGINT, lambda signum, frame: None)
        if not self.reported:
            self.reported = True
            what = _INTERRUPTED.get(self.command) if self.command else None
            command = self.command
            by = f" ({signal.Signals(self.stopped_by).name})" if self.stopped_by is not None else ""
            with contextlib.suppress(Exception):
                print(
                    f"affectnetplus{' ' + command if command else ''}: interrupted{by}" + (f"; {what}" if what else ""),
                    file=sys.stderr,
                )
        return EXIT_INTERRUPTED if self.stopped_by is None else 128 + self.stopped_by

    def _on_late_sigint(self, signum, frame) -> None:
        self.report()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(EXIT_INTERRUPTED)

    def __exit__(self, *exc) -> None:
        self.closed = True
        self.wake.set()  # the retry thread ends
        if not self.active:
            return
        sys.unraisablehook = self.previous_hook
        previous = (
            signal.SIG_DFL if self.previous_handler is None else self.previous_handler
        )  # None: set outside Python
        signal.signal(signal.SIGINT, self._on_late_sigint if self.program else previous)
        for number, handler in self.previous_stops.items():  # after the command: they end it as before
            signal.signal(number, signal.SIG_DFL if handler is None else handler)


def main(argv: list[str] | None = None) -> int:
    """The ``affectnetplus`` command; ``argv`` None means the program's own arguments (``sys.argv``),
    and then a Ctrl-C while the interpreter exits still ends it with status 130."""
    return run_program(argv, program=argv is None)


def run_program(argv: list[str] | None, *, program: bool) -> int:
    """:func:`main` for ``argv``; ``program``: this process is the command (see :class:`_Interrupts`)."""
    for stream in (sys.stdout, sys.stderr):  # file names that are not valid UTF-8 print escaped, never crash
        if hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (ValueError, OSError):
                pass
    with _Interrupts(program=program) as interrupts:
        try:  # Ctrl-C while the parser's modules load is an interrupt too, not a traceback
            args = build_parser().parse_args(argv)  # usage errors: argparse prints them and exits 2
            interrupts.command = args.command
            _setup_logging(getattr(args, "quiet", False))
            code = _run(args)
        except KeyboardInterrupt:
            code = None
        while True:
            try:  # a second Ctrl-C landing right here: the same line, the same status
                return interrupts.report() if code is None or interrupts.interrupted else code
            except KeyboardInterrupt:
                code = None


def _run(args) -> int:
    try:
        return args.func(args)
    except BrokenPipeError:  # `affectnetplus ... | head`: the reader left; say nothing more
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        except (OSError, ValueError):
            pass
        return EXIT_PIPE_CLOSED
    except BadRecordError as exc:  # --on-bad error
        _error(args.command, exc)
        return EXIT_BAD_RECORDS
    except NothingToExportError as exc:
        _error(args.command, exc)
        return EXIT_BAD_RECORDS if exc.bad else EXIT_USAGE
    except (AffectNetPlusError, OSError, ValueError) as exc:
        _error(args.command, exc)
        return EXIT_USAGE
    except Exception as exc:
        return _crash(args.command, exc)
