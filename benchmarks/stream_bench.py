"""Streaming throughput: the same export read from local Parquet vs over loopback HTTP.

    python benchmarks/stream_bench.py [--n 20000] [--repeat 3] [--mode bytes|decode|arrow ...]

Builds a synthetic release of ``--n`` records (400 drawn records, then copies under new
ids), exports it, pushes it to the Hub-compatible test server (``tests/support/hub_server.py``,
imported by path; it is test infrastructure, not part of the package) and streams the
``all`` config's train split with ``datasets.load_dataset(..., streaming=True)``:

* local:  ``load_dataset(<export folder>, "all", streaming=True)`` (the baseline);
* hub:    ``load_dataset("<repo id>", "all", streaming=True)`` through the server, with the
          real ``huggingface_hub`` / ``datasets`` clients (HfFileSystem, HTTP Range reads);
* http:   ``affectnetplus_hf.hub.remote.stream("http://127.0.0.1:PORT/")`` from a plain static
          file server with Range support (fsspec's HTTP filesystem).

Every row is read whole: as Python rows with the raw JPEG bytes (``--mode bytes``), with
decoded images (``--mode decode``), or as Arrow batches (``--mode arrow``, which leaves the
I/O path most exposed: no per-row Python work hides it). It prints
rows/s and MB/s (Parquet bytes of the split / seconds) for each, best of ``--repeat``, and
each remote path's ratio to local. Machines here are noisy: only ratios within one run are
meaningful. Target (issue 3): remote >= 80% of local.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
_HOME = tempfile.mkdtemp(prefix="stream-bench-hf-")
os.environ["HF_HOME"] = _HOME  # before datasets / huggingface_hub are imported


def _load_test_server():
    """``tests.support.hub_server`` (a package module: it imports its store, routes and client set-up
    relatively; ROOT is on ``sys.path``)."""
    return importlib.import_module("tests.support.hub_server")


class _Patch:
    """The two monkeypatch methods point_clients_at uses, without pytest."""

    def setattr(self, obj, name, value):
        setattr(obj, name, value)

    def setenv(self, name, value):
        os.environ[name] = value


def make_release(root: Path, n: int) -> None:
    """~n records: 90% train, 5% validation, 5% unlabeled."""
    from affectnetplus_hf.release.layout import find_release
    from affectnetplus_hf.release.sample import write_sample

    seed_n = min(400, n)
    write_sample(root, n=seed_n)
    sizes = {"train": int(n * 0.9), "validation": n // 20, "unlabeled": n - int(n * 0.9) - n // 20}
    for name, part in find_release(root).parts.items():
        for index in range(seed_n, sizes[name]):
            source = str(index % seed_n)
            shutil.copyfile(part.images_dir / f"{source}.jpg", part.images_dir / f"{index}.jpg")
            shutil.copyfile(part.annotations_dir / f"{source}.json", part.annotations_dir / f"{index}.json")


def consume(ds, decode: bool | str) -> int:
    """Read every row of ``ds``: Python rows (``decode`` False/True) or Arrow batches (``"arrow"``)."""
    import datasets

    if decode == "arrow":
        rows = 0
        for table in ds.with_format("arrow").iter(batch_size=256):
            _ = table.column("image").nbytes  # touch the buffers
            rows += table.num_rows
        return rows
    if not decode:
        ds = ds.cast_column("image", datasets.Image(decode=False))
    rows = 0
    for row in ds:
        image = row["image"]
        if decode:
            image.load()
        rows += 1
    return rows


def timed_runs(readers: dict, repeat: int, decode: bool) -> dict[str, tuple[float, float, int]]:
    """name -> (best setup seconds, best streaming seconds, rows); runs interleaved to share noise."""
    best = {name: [float("inf"), float("inf"), 0] for name in readers}
    for _ in range(repeat):
        for name, open_ds in readers.items():
            start = time.perf_counter()
            ds = open_ds()
            ready = time.perf_counter()
            rows = consume(ds, decode)
            done = time.perf_counter()
            best[name][0] = min(best[name][0], ready - start)
            best[name][1] = min(best[name][1], done - ready)
            best[name][2] = rows
    return {name: tuple(values) for name, values in best.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000, help="records in the synthetic release (default %(default)s)")
    parser.add_argument("--num-shards", type=int, default=None, help="shards per part (default: the export's own rule)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each reader, best kept (default %(default)s)")
    parser.add_argument(
        "--mode",
        choices=("bytes", "decode", "arrow"),
        action="append",
        help="how rows are read: Python rows with raw JPEG bytes (bytes), with decoded PIL images "
        "(decode), or Arrow batches of 256 (arrow); repeatable (default: bytes and arrow)",
    )
    parser.add_argument("--keep", help="work folder to keep (default: a temporary folder, removed)")
    args = parser.parse_args(argv)

    import datasets

    from affectnetplus_hf.core.export_files import INFO_FILE, read_info, shard_paths
    from affectnetplus_hf.exporter.writer import export
    from affectnetplus_hf.hub.publish import push
    from affectnetplus_hf.hub.remote import stream

    datasets.disable_progress_bars()
    hub_server = _load_test_server()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="stream-bench-"))
    try:
        raw, out = work / "AffectNet+", work / "affectnet_plus"
        if not (out / INFO_FILE).exists():
            print(f"building a {args.n}-record release and exporting it ...", flush=True)
            make_release(raw, args.n)
            export(raw, out, num_shards=args.num_shards, num_proc=min(2, os.cpu_count() or 1), progress=False)
        info = read_info(out)
        train = [
            out / rel for rel in shard_paths({**info, "parts": {"train": info["parts"]["train"]}})
        ]  # the train part's shards
        megabytes = sum(p.stat().st_size for p in train) / 1e6

        with hub_server.running_hub(work / "hub") as hub, hub_server.RangeFileServer(out) as web:
            hub_server.point_clients_at(hub.url, _Patch())
            os.environ["HF_TOKEN"] = hub_server.TOKEN_WRITE
            repo_id = f"{importlib.import_module('tests.support.hub_store').ORG}/affectnet_plus"
            push(out, repo_id, progress=False, echo=None)

            readers = {
                "local": lambda: datasets.load_dataset(str(out), "all", split="train", streaming=True),
                "hub": lambda: datasets.load_dataset(repo_id, "all", split="train", streaming=True),
                "http": lambda: stream(web.url, "all", split="train"),
            }
            modes = args.mode or ["bytes", "arrow"]
            timed_runs(readers, 1, "arrow")  # warm-up: page cache, clients' caches
            all_results = {
                mode: timed_runs(readers, args.repeat, {"bytes": False, "decode": True}.get(mode, mode))
                for mode in modes
            }

        worst = 1.0
        labels = {
            "bytes": "Python rows, raw JPEG bytes",
            "decode": "Python rows, decoded images",
            "arrow": "Arrow batches of 256",
        }
        for mode, results in all_results.items():
            rows = {name: r for name, (_, _, r) in results.items()}
            assert len(set(rows.values())) == 1, f"readers disagree on the row count: {rows}"
            print(
                f"\nstreaming 'all'/train: {rows['local']} rows, {megabytes:.1f} MB of Parquet in {len(train)} files; "
                f"{labels[mode]}; best of {args.repeat}"
            )
            print(f"{'reader':<8}{'setup s':>9}{'stream s':>10}{'rows/s':>9}{'MB/s':>8}{'vs local':>10}")
            base = results["local"][1]
            for name, (setup, seconds, count) in results.items():
                print(
                    f"{name:<8}{setup:>9.2f}{seconds:>10.2f}{count / seconds:>9.0f}{megabytes / seconds:>8.1f}{base / seconds:>9.0%}"
                )
            worst = min(worst, *(base / results[name][1] for name in ("hub", "http")))
        print(
            f"\nremote / local streaming rate: worst {worst:.0%} (target >= 80%); setup (resolving files) is listed apart"
        )
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(_HOME, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
