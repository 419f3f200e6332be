"""Export and verify throughput against a read+parse floor measured in the same run.

    python benchmarks/export_bench.py [--n 20000] [--num-proc 2] [--memory 20000,200000]

Generates synthetic releases (a drawn sample of 400 records per part, then copies of those
files under new ids, so generation stays quick) of ``--n`` and ``2 * --n`` records, then
measures, each with ``--num-proc`` processes and as a *marginal* rate,
``n / (time at 2n - time at n)``, so that start-up and fixed costs (pool start, card,
fingerprint) cancel:

* floor: processes that only read both files of every record (plain ``open``) and parse the
  JSON (``json.loads``), nothing else; the file list is made before the clock starts;
* ``export`` (list, read, check, type, write Parquet, card tables; no plots);
* ``verify`` (list, read, check, count).

It prints records/s and the ratio of each to the floor (issue 18's target: >= 0.5). Then,
for each size in ``--memory`` (generated too), it runs export and verify in a fresh process
and prints the peak RSS of the main process and of the largest worker: these must not grow
with the release's size beyond the per-shard working set.

Machines here are shared and noisy: only ratios within one run are meaningful; each timing
is the best of ``--repeat`` runs, interleaved. Next to the wall-clock ratio it prints the ratio of CPU
time per record (all processes), which other load on the machine disturbs far less; on an
idle machine the two agree when the work is spread evenly over the processes.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from affectnetplus_hf.exporter.writer import export  # noqa: E402
from affectnetplus_hf.release.layout import find_release  # noqa: E402
from affectnetplus_hf.release.sample import write_sample  # noqa: E402
from affectnetplus_hf.release.verification import verify  # noqa: E402

TARGET = 0.5


def make_release(root: Path, n: int) -> None:
    """~n records: 90% train, 5% validation, 5% unlabeled."""
    seed_n = 400
    write_sample(root, n=seed_n)
    sizes = {"train": int(n * 0.9), "validation": n // 20, "unlabeled": n - int(n * 0.9) - n // 20}
    release = find_release(root)
    for name, part in release.parts.items():
        for index in range(seed_n, sizes[name]):
            source = str(index % seed_n)
            shutil.copyfile(part.images_dir / f"{source}.jpg", part.images_dir / f"{index}.jpg")
            shutil.copyfile(part.annotations_dir / f"{source}.json", part.annotations_dir / f"{index}.json")


def release_at(work: Path, n: int) -> Path:
    raw = work / f"release-{n}" / "AffectNet+"
    if not raw.exists():
        start = time.perf_counter()
        make_release(raw, n)
        print(f"generated {n:,} records in {time.perf_counter() - start:.0f} s under {raw}", flush=True)
    return raw


# ----------------------------------------------------------------------------- the floor


def _read_parse(pairs: list[tuple[str, str]]) -> int:
    for image, annotation in pairs:
        with open(image, "rb") as handle:
            handle.read()
        with open(annotation, "rb") as handle:
            json.loads(handle.read())
    return len(pairs)


def floor(raw: Path, num_proc: int) -> float:
    """Seconds for ``num_proc`` forked processes to read and parse every record (list made first)."""
    pairs = []
    for part in find_release(raw).parts.values():
        for name in os.listdir(part.annotations_dir):
            stem = name[: -len(".json")]
            pairs.append((os.path.join(part.images_dir, stem + ".jpg"), os.path.join(part.annotations_dir, name)))
    chunks = [pairs[i::num_proc] for i in range(num_proc)]
    with multiprocessing.get_context("fork").Pool(num_proc) as pool:
        pool.map(abs, range(num_proc))  # processes started before the clock
        start = time.perf_counter()
        pool.map(_read_parse, chunks)
        return time.perf_counter() - start


# ----------------------------------------------------------------------------- timings


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the workers, once joined)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(fn, raw: Path, procs: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of every process) of one run."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    fn(raw, procs)
    result = time.perf_counter() - wall, cpu_seconds() - cpu
    shutil.rmtree(raw.parent / "export", ignore_errors=True)  # each export into a new folder, removed off the clock
    return result


def run_export(raw: Path, num_proc: int) -> None:
    out = raw.parent / "export"
    result = export(raw, out, num_proc=num_proc, progress=False, card_plots=False)
    if result.read != result.written + result.bad:  # pragma: no cover - the export checks it itself
        raise SystemExit(result.reconciliation())


def run_verify(raw: Path, num_proc: int) -> None:
    verify(raw, num_proc=num_proc, progress=False)


def marginal(n: int, at_n: float, at_2n: float) -> float:
    return n / (at_2n - at_n) if at_2n > at_n else float("inf")


# ----------------------------------------------------------------------------- memory

_MEMORY_PROBE = """
import resource, sys
sys.path.insert(0, {root!r})
what, raw, num_proc = sys.argv[1], sys.argv[2], int(sys.argv[3])
if what == "export":
    from affectnetplus_hf.exporter.writer import export
    export(raw, raw + "-memory-export", num_proc=num_proc, progress=False, card_plots=False)
else:
    from affectnetplus_hf.release.verification import verify
    verify(raw, num_proc=num_proc, progress=False)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def peak_rss(what: str, raw: Path, num_proc: int) -> tuple[float, float]:
    """Peak RSS in MB of the main process and of the largest worker, in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE.format(root=str(ROOT)), what, str(raw), str(num_proc)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    main_kb, child_kb = int(out[-2]), int(out[-1])
    return main_kb / 1024, child_kb / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--n", type=int, default=20_000, help="records of the smaller release (the larger has twice as many)"
    )
    parser.add_argument("--num-proc", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2, help="each timing is the best of this many runs")
    parser.add_argument(
        "--memory", default="20000,200000", help="release sizes whose peak RSS is measured ('' for none)"
    )
    parser.add_argument(
        "--keep", help="folder to build in and keep, releases reused between runs (default: a temporary folder)"
    )
    args = parser.parse_args()

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="export-bench-"))
    n, procs = args.n, args.num_proc
    small, large = release_at(work, n), release_at(work, 2 * n)
    for raw in (small, large):  # page cache warm for everyone, workers' imports paid
        floor(raw, procs)
    run_export(small, procs)
    shutil.rmtree(small.parent / "export")

    steps = {"floor": floor, "export": run_export, "verify": run_verify}
    runs: dict[tuple[str, Path], list] = {(name, raw): [] for name in steps for raw in (small, large)}
    for _ in range(args.repeat):  # interleaved, so that load from elsewhere falls on every step alike
        for name, fn in steps.items():
            for raw in (small, large):
                runs[name, raw].append(timed(fn, raw, procs))
    rates, cpu = {}, {}
    for name in steps:
        (wall_n, _), (wall_2n, _) = min(runs[name, small]), min(runs[name, large])
        rates[name] = marginal(n, wall_n, wall_2n)
        cpu[name] = (min(c for _, c in runs[name, large]) - min(c for _, c in runs[name, small])) / n
        print(
            f"{name:>6}: {wall_n:6.2f} s at {n:,}, {wall_2n:6.2f} s at {2 * n:,} -> {rates[name]:8,.0f} records/s marginal; "
            f"CPU {cpu[name] * 1e6:5.0f} us/record marginal, all processes",
            flush=True,
        )
    print(f"floor (read both files + json.loads, {procs} processes): {rates['floor']:,.0f} records/s")
    for name in ("export", "verify"):
        ratio = rates[name] / rates["floor"]
        print(
            f"{name} / floor: {ratio:.2f} by wall-clock rate (target >= {TARGET}: {'OK' if ratio >= TARGET else 'BELOW'}); "
            f"{cpu['floor'] / cpu[name]:.2f} by CPU per record (what a loaded machine still measures)"
        )
    print(
        f"full release (959,906 records) in about {959_906 / rates['export'] / 60:.1f} min to export, "
        f"{959_906 / rates['verify'] / 60:.1f} min to verify (marginal rates; plus fixed costs)"
    )

    sizes = [int(s) for s in args.memory.split(",") if s.strip()]
    for size in sizes:
        raw = release_at(work, size)
        for what in ("export", "verify"):
            main_mb, worker_mb = peak_rss(what, raw, procs)
            print(
                f"peak RSS, {what} of {size:,} records, {procs} processes: main {main_mb:,.0f} MB, largest worker {worker_mb:,.0f} MB",
                flush=True,
            )
        shutil.rmtree(str(raw) + "-memory-export", ignore_errors=True)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
