"""The ``affectnetplus`` command: a thin face over the package's functions.

Each subcommand parses its arguments, calls one function of the package and prints what
happened and what to do next. Exit status: 0 success, 1 the data has bad records
(``verify``), 2 a usage or input error (the message says which file and what to do).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from .configs import CONFIG_NAMES
from .errors import AffectNetPlusError
from .export import DEFAULT_SHARD_RECORDS

__all__ = ["main"]


def _cmd_sample(args) -> int:
    from .sample import FAULTS, write_sample

    faults = {"train": list(FAULTS)} if args.with_faults else None
    manifest = write_sample(args.out, n=args.n, seed=args.seed, layout=args.layout, faults=faults)
    total = sum(len(ids) for ids in manifest.ids.values())
    print(f"wrote a synthetic AffectNet+ release ({total} records, {args.n} per part) to {Path(args.out).resolve()}")
    if faults:
        print(f"planted faults in train: {', '.join(FAULTS)}")
    print(f"next: affectnetplus verify {args.out}   or   affectnetplus export {args.out} ./affectnet_plus")
    return 0


def _print_export(result) -> None:
    print(result.reconciliation())
    print(f"wrote {result.out_dir}  (fingerprint {result.fingerprint})")
    for part, counts in result.partition_counts.items():
        print(f"  {part:<10} " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if result.bad:
        print(f"{result.bad} bad records skipped: " + ", ".join(f"{r} x{n}" for r, n in result.bad_reasons.items()))
    print(f"report (bad records, notes, ignored files): {result.report_path}")
    if result.bad:
        print("fix or re-extract the files listed there and export again to include them.")


def _cmd_export(args) -> int:
    from .export import export

    result = export(
        args.raw,
        args.out,
        num_proc=args.num_proc,
        shard_records=args.shard_records,
        num_shards=args.num_shards,
        on_bad=args.on_bad,
        check_images=args.check_images,
        progress=not args.no_progress,
    )
    _print_export(result)
    parent, name = result.out_dir.parent, result.out_dir.name
    print(f'load it: cd {parent} && python -c \'from datasets import load_dataset; print(load_dataset("{name}", "easy"))\'')
    return 0


def _cmd_verify(args) -> int:
    from .verify import verify

    report = verify(args.raw, num_proc=args.num_proc, check_images=args.check_images, progress=not args.no_progress)
    print(report.to_text())
    return 0 if report.ok else 1


def _cmd_demo(args) -> int:
    """Sample -> export -> load_dataset, end to end, with two planted faults to show reporting."""
    import datasets

    from .export import export
    from .sample import write_sample

    workdir = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="affectnetplus-demo-"))
    raw = workdir / "AffectNet+"
    out = workdir / "affectnet_plus"
    print(f"[1/3] writing a synthetic release ({args.n} records per part) to {raw}")
    write_sample(raw, n=args.n, faults={"train": ["truncated_jpeg", "missing_annotation", "bom_crlf", "sentinel"]})
    print(f"[2/3] exporting to {out}")
    result = export(raw, out, num_proc=args.num_proc, progress=not args.no_progress)
    _print_export(result)
    print("[3/3] loading every config with datasets.load_dataset")
    datasets.disable_progress_bars()
    cache = workdir / "hf_cache"
    for config in CONFIG_NAMES:
        ds = datasets.load_dataset(str(out), config, cache_dir=str(cache))
        print(f"  {config:<12} " + ", ".join(f"{split}: {len(d)} rows" for split, d in ds.items()))
    train = datasets.load_dataset(str(out), "all", split="train", cache_dir=str(cache))
    row, features = train[0], train.features
    pose = {k: round(v, 2) for k, v in row["head_pose"].items()} if row["head_pose"] else None
    print("  one row of 'all'/train:")
    print(f"    image_id={row['image_id']} image={row['image'].size} "
          f"human_label={features['human_label'].int2str(row['human_label'])} subset={features['subset'].int2str(row['subset'])}")
    print(f"    soft_label={[round(v, 3) for v in row['soft_label']]} (sum {sum(row['soft_label']):.2f}: scores, not a distribution)")
    print(f"    valence={row['valence']:.3f} arousal={row['arousal']:.3f} age={row['age']:.0f} "
          f"landmarks={len(row['landmarks'])}x{len(row['landmarks'][0])} head_pose={pose}")
    print(f"demo done. Everything is under {workdir}; the card is {out / 'README.md'}")
    return 0


def _cmd_push(args) -> int:
    from .hub import push

    result = push(
        args.folder,
        args.repo_id,
        token=args.token,
        public=args.public,
        i_have_redistribution_rights=args.i_have_redistribution_rights,
        revision=args.revision,
        gated=False if args.gated == "off" else args.gated,
        progress=not args.no_progress,
    )
    visibility = "private" if result.private else "PUBLIC"
    print(f"pushed {args.folder} to {result.url} ({visibility}, gated={result.gated}, revision {result.revision})")
    print(
        f'stream it: python -c \'from datasets import load_dataset; '
        f'print(next(iter(load_dataset("{result.repo_id}", "all", split="train", streaming=True)))["image_id"])\''
    )
    return 0


def _add_common(parser, num_proc_default: int = 1) -> None:
    parser.add_argument("--num-proc", type=int, default=num_proc_default, help="worker processes (default %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="affectnetplus",
        description="AffectNet+ as a typed Hugging Face dataset: verify a release, export it to Parquet, publish and inspect it.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cpus = max(1, min(8, os.cpu_count() or 1))

    p = sub.add_parser("sample", help="write a small synthetic release in the real layout")
    p.add_argument("out", help="folder to write the release into")
    p.add_argument("--n", type=int, default=40, help="records per part (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layout", choices=("release", "pdf"), default="release", help="folder spelling: release (human_annotated/train_set) or pdf (Human Annotated/Train Set)")
    p.add_argument("--with-faults", action="store_true", help="plant one of each known fault into train")
    p.set_defaults(func=_cmd_sample)

    p = sub.add_parser("export", help="export a raw release to a no-code Parquet dataset folder")
    p.add_argument("raw", help="folder the release was extracted into")
    p.add_argument("out", nargs="?", default="affectnet_plus", help="dataset folder to write (default ./%(default)s)")
    p.add_argument("--shard-records", type=int, default=DEFAULT_SHARD_RECORDS, help="target records per shard before rounding (default %(default)s)")
    p.add_argument("--num-shards", type=int, default=None, help="force this many shards per part")
    p.add_argument("--on-bad", choices=("skip", "error"), default="skip", help="skip and report bad records (default), or stop at the first")
    p.add_argument("--check-images", choices=("markers", "decode"), default="markers", help="JPEG check: start/end markers (fast) or a full decode")
    _add_common(p, cpus)
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("verify", help="count what is in a raw release and list what is broken")
    p.add_argument("raw", help="folder the release was extracted into")
    p.add_argument("--check-images", choices=("markers", "decode"), default="markers")
    _add_common(p, cpus)
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("push", help="upload an exported folder to a private, gated Hub dataset repo")
    p.add_argument("folder", help="the folder written by `affectnetplus export`")
    p.add_argument("repo_id", help="dataset repo to create or update, e.g. my-lab/affectnet_plus")
    p.add_argument("--token", help="Hub token with write access (default: HF_TOKEN, then `hf auth login`; prefer those: "
                   "a command-line token is visible to other users of the machine)")
    p.add_argument("--revision", help="branch to push to (created if missing; default main)")
    p.add_argument("--gated", choices=("manual", "auto", "off"), default="manual",
                   help="access requests: approved by you (manual, default), automatically (auto), or no gating (off)")
    p.add_argument("--public", action="store_true",
                   help="make the repo public (needs --i-have-redistribution-rights: the AffectNet+ licence forbids redistribution)")
    p.add_argument("--i-have-redistribution-rights", action="store_true",
                   help="state that the AffectNet+ authors allowed you to redistribute the data (only with --public)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_push)

    p = sub.add_parser("demo", help="run sample -> export -> load_dataset end to end on a synthetic release")
    p.add_argument("--dir", help="work folder (default: a new temporary folder)")
    p.add_argument("--n", type=int, default=40, help="records per part (default %(default)s)")
    _add_common(p)
    p.set_defaults(func=_cmd_demo)

    from .stats.command import add_parser as _add_stats_parser  # stats: numbers, tables, plots, report.html

    _add_stats_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (AffectNetPlusError, FileNotFoundError, ValueError) as exc:
        print(f"affectnetplus {args.command}: error: {exc}", file=sys.stderr)
        return 2
