"""Statistics throughput and memory against floors measured in the same run.

    python benchmarks/stats_bench.py [--copies 100]

Exports a drawn sample (400 records per part), then hard-links each of its shards
``--copies`` times under new shard names (the card's configs glob them), and measures:

* floor: stream the exported folder in Arrow format over the statistics columns, nothing else;
* ``compute_stats`` on the folder: rows/s, ratio to the floor, peak RSS at 1 copy and at all;
* the export's in-pass statistics: export time with them / with them switched off.

Machines here are noisy: only ratios within one run are meaningful.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from affectnetplus_hf.core.configs import ROW_CONFIGS  # noqa: E402
from affectnetplus_hf.core.export_files import read_info, shard_name  # noqa: E402
from affectnetplus_hf.exporter.writer import export  # noqa: E402
from affectnetplus_hf.release.sample import write_sample  # noqa: E402
from affectnetplus_hf.stats import compute as stats_compute  # noqa: E402
from affectnetplus_hf.stats.sources import STATS_COLUMNS  # noqa: E402

_CHILD = """
import resource, sys, time
sys.path.insert(0, {root!r})
from affectnetplus_hf.stats import compute_stats
t = time.perf_counter(); stats = compute_stats({folder!r}); dt = time.perf_counter() - t
print(stats["rows"]["total"], dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _floor(folder: Path) -> tuple[int, float]:
    import datasets

    rows, start = 0, time.perf_counter()
    for config in ROW_CONFIGS:
        for split in datasets.load_dataset(str(folder), config, streaming=True, columns=list(STATS_COLUMNS)).values():
            for table in split.with_format("arrow").iter(batch_size=1000):
                rows += table.num_rows
    return rows, time.perf_counter() - start


def _child(folder: Path) -> tuple[int, float, int]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD.format(root=str(ROOT), folder=str(folder))],
        capture_output=True,
        text=True,
        check=True,
    )
    rows, seconds, rss = out.stdout.split()
    return int(rows), float(seconds), int(rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=100)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="stats-bench-"))
    try:
        raw, small = work / "raw", work / "small"
        write_sample(raw, n=400)

        timings = {"with": [], "without": []}
        original = stats_compute.StatsAccumulator.update  # the export feeds each written Arrow batch to it
        for _ in range(3):
            for mode in ("with", "without"):
                stats_compute.StatsAccumulator.update = (
                    original if mode == "with" else (lambda self, split, columns: None)
                )
                start = time.perf_counter()
                export(raw, small, progress=False, card_plots=False)
                timings[mode].append(time.perf_counter() - start)
        stats_compute.StatsAccumulator.update = original
        ratio = sorted(timings["with"])[1] / sorted(timings["without"])[1]
        print(f"export with in-pass statistics / without: {ratio:.2f} (median of 3, 1,200 records; small, so noisy)")

        big = work / "big"
        shutil.copytree(small, big)
        info = read_info(big)
        for part, spec in info["parts"].items():
            folder = big / info["data_dir"] / part
            for partition in spec["partitions"]:
                for shard in range(spec["num_shards"]):
                    source = folder / shard_name(partition, shard, spec["num_shards"])
                    for i in range(1, args.copies):  # new names the card's glob matches: partition-i-of-copies
                        os.link(
                            source,
                            folder
                            / shard_name(partition, spec["num_shards"] * i + shard, spec["num_shards"] * args.copies),
                        )

        rows_floor, floor_s = _floor(big)
        rows_small, _, rss_small = _child(small)
        rows_big, stats_s, rss_big = _child(big)
        assert rows_big == rows_floor, (rows_big, rows_floor)
        print(f"floor (stream Arrow batches, nothing else): {rows_floor / floor_s:,.0f} rows/s")
        print(
            f"compute_stats: {rows_big / stats_s:,.0f} rows/s over {rows_big:,} rows = {floor_s / stats_s:.2f} of the floor"
        )
        print(
            f"peak RSS: {rss_small / 1024:.0f} MiB at {rows_small:,} rows, {rss_big / 1024:.0f} MiB at {rows_big:,} rows"
        )
        print(f"(this process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
