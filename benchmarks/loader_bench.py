"""How fast does AffectNet+ reach PyTorch? Three loaders on one synthetic export, in one run.

    python benchmarks/loader_bench.py                 # 20,000 images (about 3 minutes on 2 cores)
    python benchmarks/loader_bench.py --n 3000        # a quick look
    python benchmarks/loader_bench.py --repeats 3     # the targets as medians of 3 runs (on a shared machine)

Each loader delivers a *ready* batch of ``--batch-size`` 224 x 224 images as a uint8
``N x 3 x H x W`` tensor plus the annotation tensors (soft label, human label, subset,
valence, arousal, age, gender, race, head pose, landmarks) and the ids, with
``--workers`` DataLoader workers, shuffled:

(a) ``files``    the per-file ``Dataset`` FER repositories write: one JPEG + one JSON per
                 item, PIL decode, ``default_collate``;
(b) ``hf-torch`` ``datasets``' own ``dataset.with_format("torch")`` + ``default_collate``;
(c) ``ours``     ``affectnetplus_hf.torch.make_loader`` (Arrow batches, decode into
                 shared memory).

The targets (issue 18) compare ours with bare decoding, at two sizes, in one run:

* full size: ``make_loader(ds, 256, num_workers=2)`` against ``--workers`` processes side
  by side doing nothing but decode the same JPEG bytes into a reused buffer;
* reduced size: ``make_loader(..., size=--size)`` (default 112) against the same processes
  decoding with DCT scaling (``min_height`` / ``min_width``, i.e. ``min_size``).

Each bare figure is measured right before and right after its loader and the two
averaged, so both sides of a ratio see the same load. Two ratios per size: wall-clock
rate (target >= 0.9) and CPU seconds per image (the loader's workers + main process
against the bare processes'; target: at most 1.1x, robust to other load on the machine).
Rates are images per second in the main process over whole epochs, repeated until
``--min-seconds``: ours from its second epoch (nothing in flight when the clocks start),
the baselines from their first batch (worker start-up excluded). The two
baselines (a) and (b) are compared with ours at full size.

A third CPU ratio, not a target, says where the rest goes: against the same processes
decoding each image into its own slot of a ``--batch-size``-image buffer, as a batch
must be filled. One image's buffer stays in the CPU's cache; a batch (38 MB at 224 px)
does not, and writing it to memory costs decoding time the reused buffer never pays.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

TARGET_BARE = 0.9  # ours / bare decoding, wall clock
TARGET_CPU = 1.1  # ours / bare decoding, CPU seconds per image
TARGET_BASELINE = 3.0


# ---------------------------------------------------------------- (a) per-file baseline
#: The columns baseline (a) delivers; baseline (b) is given the same.
_FILES_COLUMNS = [
    "image",
    "image_id",
    "human_label",
    "soft_label",
    "subset",
    "valence",
    "arousal",
    "age",
    "gender",
    "race",
    "head_pose",
    "landmarks",
]


class FilesDataset(Dataset):
    """What FER repositories do: list image files, open JPEG + JSON per item with PIL."""

    def __init__(self, images_dir: Path, annotations_dir: Path):
        self.images = sorted(images_dir.glob("*.jpg"))
        self.annotations_dir = annotations_dir

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        from PIL import Image

        path = self.images[index]
        with Image.open(path) as image:
            pixels = torch.from_numpy(np.asarray(image.convert("RGB"))).permute(2, 0, 1)
        with open(self.annotations_dir / f"{path.stem}.json") as handle:
            ann = json.load(handle)
        meta = ann["meta-data"]

        def number(v):
            return float("nan") if v is None else float(v)

        return {
            "image": pixels,
            "image_id": path.stem,
            "human_label": -1 if ann["human-label"] is None else int(ann["human-label"]),
            "soft_label": torch.tensor(ann["soft-label"], dtype=torch.float32),
            "subset": -1 if ann["subset"] is None else int(ann["subset"]),
            "valence": number(meta.get("valence")),
            "arousal": number(meta.get("arousal")),
            "age": number(meta.get("age")),
            "gender": torch.tensor([number(meta["gender"][k]) for k in ("female", "male")]),
            "race": torch.tensor([number(v) for v in meta["race"].values()]),
            "head_pose": torch.tensor([number(meta["pose"][k]) for k in ("yaw", "pitch", "roll")]),
            "landmarks": torch.tensor(meta["landmark-68"], dtype=torch.float32).view(68, 2),
        }


# ---------------------------------------------------------------- data
def build(work: Path, n: int, workers: int):
    """Raw synthetic release + export + load_dataset, reused when already there."""
    import datasets

    from affectnetplus_hf.exporter.writer import export
    from affectnetplus_hf.release.sample import write_sample

    raw, out = work / "raw", work / "export"
    stamp = work / "built.json"
    if not (stamp.exists() and json.loads(stamp.read_text()).get("n") == n):
        for path in (raw, out):
            if path.exists():
                import shutil

                shutil.rmtree(path)
        t = time.perf_counter()
        write_sample(raw, n=n, parts=("train",))
        print(f"  wrote {n} synthetic records (224x224 JPEG + JSON) in {time.perf_counter() - t:.0f} s")
        t = time.perf_counter()
        export(raw, out, num_proc=max(1, workers), progress=False, card_plots=False)
        print(f"  exported to Parquet in {time.perf_counter() - t:.0f} s")
        stamp.write_text(json.dumps({"n": n}))
    t = time.perf_counter()
    dataset = datasets.load_dataset(str(out), "all", split="train", cache_dir=str(work / "hf-cache"))
    dataset = dataset.cast_column("image", datasets.Image(decode=False))
    print(f"  load_dataset(export, 'all', split='train'): {len(dataset)} rows in {time.perf_counter() - t:.0f} s")
    images = raw / "human_annotated" / "train_set" / "images"
    return dataset, images, images.parent / "annotations"


# ---------------------------------------------------------------- timing
_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _worker_pids(loader) -> list[int]:
    iterator = getattr(loader, "_iterator", None)
    return [w.pid for w in getattr(iterator, "_workers", [])]


def rate(loader, min_seconds: float, batch_key: str = "image", warm_epoch: bool = False) -> dict:
    """Images per second over whole epochs, at least min_seconds; and the CPU seconds per
    image spent by the workers and the main process meanwhile.

    Timed from the first batch on (worker start-up excluded); with ``warm_epoch`` (a loader
    with persistent workers), from the start of the second epoch instead, when no batch is
    in flight: timed from the first batch, the CPU the workers spent on the batches they
    had prefetched by then is not counted, but those batches are."""
    images, start, epochs, cpu_start = 0, None, 0, None
    if warm_epoch:
        for _ in loader:
            pass
        cpu_start = sum(_cpu_seconds(p) for p in _worker_pids(loader)) + time.process_time()
        start = time.perf_counter()
    while True:
        for batch in loader:
            count = batch[batch_key].shape[0]
            if start is None:
                # worker start-up and the first batch are not counted
                pids = _worker_pids(loader)
                cpu_start = sum(_cpu_seconds(p) for p in pids) + time.process_time()
                start = time.perf_counter()
                continue
            images += count
        epochs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            cpu = sum(_cpu_seconds(p) for p in _worker_pids(loader)) + time.process_time() - cpu_start
            return {
                "images_per_s": images / elapsed,
                "cpu_s_per_image": cpu / max(images, 1),
                "epochs": epochs,
                "images": images,
            }


def _decode_for(args) -> tuple[int, float]:
    name, jpegs, seconds, min_size, slots = args
    from affectnetplus_hf.torch.decoders import get_decoder

    decoder = get_decoder(name)
    first = decoder.decode(jpegs[0], min_size=min_size)
    buffer = np.empty((slots, *first.shape), dtype=first.dtype)
    count, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        for i, data in enumerate(jpegs):
            decoder.decode(data, out=buffer[i % slots], min_size=min_size)
        count += len(jpegs)
    return count, time.process_time() - cpu


def bare_decode(jpegs, name: str, processes: int, min_size=None, seconds: float = 3.0, slots: int = 1) -> dict:
    """``processes`` processes side by side doing nothing but decode ``jpegs`` into a reused
    buffer (DCT-scaled to at least ``min_size`` when given): images per second together
    (what the machine gives bare decoding right now) and CPU seconds per image.

    ``slots``: the buffer holds that many images and each image goes to the next slot,
    as into a batch (``slots=1``: one image's buffer, which stays in the CPU's cache)."""
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(processes) as pool:
        start = time.perf_counter()
        results = pool.map(_decode_for, [(name, jpegs, seconds, min_size, slots)] * processes)
        wall = time.perf_counter() - start
    count = sum(c for c, _ in results)
    return {"images_per_s": count / wall, "cpu_s_per_image": sum(t for _, t in results) / count}


def against_bare(make, jpegs, name: str, workers: int, min_size, min_seconds: float, batch_size: int) -> dict:
    """Ours (the loader ``make()`` returns) between two bare-decoding measurements, each of
    them into one image's buffer (the target's reference) and into a batch-sized one."""
    processes = max(workers, 1)
    before = bare_decode(jpegs, name, processes, min_size)
    before_batch = bare_decode(jpegs, name, processes, min_size, slots=batch_size)
    loader = make()
    ours = rate(loader, min_seconds, warm_epoch=True)
    del loader
    after = bare_decode(jpegs, name, processes, min_size)
    after_batch = bare_decode(jpegs, name, processes, min_size, slots=batch_size)
    bare = {key: (before[key] + after[key]) / 2 for key in before}
    bare_batch = {key: (before_batch[key] + after_batch[key]) / 2 for key in before}
    return {
        "ours": ours,
        "bare": bare,
        "bare_before": before,
        "bare_after": after,
        "bare_into_batch": bare_batch,
        "rate_ratio": ours["images_per_s"] / bare["images_per_s"],
        "cpu_ratio": ours["cpu_s_per_image"] / bare["cpu_s_per_image"],
        "cpu_ratio_into_batch": ours["cpu_s_per_image"] / bare_batch["cpu_s_per_image"],
    }


def _median_run(measured: list[dict]) -> dict:
    """The ratios' medians over repeated :func:`against_bare` runs (and their ranges); ``ours``
    and ``bare`` of the run with the median CPU ratio."""
    import statistics

    middle = sorted(measured, key=lambda m: m["cpu_ratio"])[(len(measured) - 1) // 2]
    summary = {**middle, "runs": measured}
    for key in ("rate_ratio", "cpu_ratio", "cpu_ratio_into_batch"):
        values = [m[key] for m in measured]
        summary[key] = statistics.median(values)
        summary[f"{key}_range"] = (min(values), max(values))
    return summary


def _range(m: dict, key: str) -> str:
    low, high = m[f"{key}_range"]
    return f" [{low:.2f}-{high:.2f}]" if len(m["runs"]) > 1 else ""


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            return next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        import platform

        return platform.processor() or platform.machine()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="images in the synthetic export (default 20000)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers for every loader (default 2)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument(
        "--size", type=int, default=112, help="the reduced size measured (default 112: half the synthetic 224)"
    )
    parser.add_argument("--min-seconds", type=float, default=8.0, help="time each loader at least this long")
    parser.add_argument(
        "--repeats", type=int, default=1, help="measure ours against bare decoding this many times (medians printed)"
    )
    parser.add_argument("--work-dir", type=Path, default=None, help="keep/reuse the synthetic data here")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    parser.add_argument("--skip-baselines", action="store_true", help="measure only the decoders and ours")
    args = parser.parse_args(argv)

    from affectnetplus_hf.torch import make_loader
    from affectnetplus_hf.torch.decoders import available_decoders, measure_decoders

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="affectnetplus-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(
        f"machine: {_cpu_model()}, {len(os.sched_getaffinity(0))} usable cores, torch {torch.__version__}, cuda={torch.cuda.is_available()}"
    )
    print(f"data: {work}")
    dataset, images_dir, annotations_dir = build(work, args.n, args.workers)

    results: dict = {
        "n": len(dataset),
        "workers": args.workers,
        "batch_size": args.batch_size,
        "cores": len(os.sched_getaffinity(0)),
    }
    sample = [row["bytes"] for row in dataset.select(range(min(2000, len(dataset))))["image"]]
    print("\nsingle-core decode of the same 224x224 JPEGs into a reused buffer (images/s):")
    decoders = measure_decoders(sample, available_decoders(), min_seconds=2.0)
    for name, value in decoders.items():
        print(f"  {name:<11} {value:8.0f}")
    best = max(decoders, key=decoders.get)
    results["decoders"] = decoders
    results["fastest"] = best

    common = dict(batch_size=args.batch_size, num_workers=args.workers, persistent_workers=args.workers > 0)
    print(
        f"\nours against {args.workers} processes doing nothing but decode the same bytes (ready uint8 batch of {args.batch_size} + annotation tensors, shuffled):"
    )
    reduced = (args.size, args.size)
    jpegs = sample[:500]
    runs: dict[str, list[dict]] = {"full": [], "reduced": []}
    for round_ in range(args.repeats):
        for key, size, min_size, label in (
            ("full", None, None, "full size (224)"),
            ("reduced", args.size, reduced, f"size={args.size} (bare: DCT-scaled, min_size={reduced})"),
        ):
            m = against_bare(
                lambda size=size: make_loader(dataset, args.batch_size, num_workers=args.workers, seed=0, size=size),
                jpegs,
                best,
                args.workers,
                min_size,
                args.min_seconds,
                args.batch_size,
            )
            runs[key].append(m)
            print(
                f"  {label}{f', run {round_ + 1} of {args.repeats}' if args.repeats > 1 else ''}"
                f"\n    ours {m['ours']['images_per_s']:8.0f} images/s, {m['ours']['cpu_s_per_image'] * 1e6:5.0f} us CPU/image ({m['ours']['epochs']} epochs)"
                f"\n    bare {m['bare']['images_per_s']:8.0f} images/s, {m['bare']['cpu_s_per_image'] * 1e6:5.0f} us CPU/image "
                f"({m['bare_before']['images_per_s']:.0f} before, {m['bare_after']['images_per_s']:.0f} after ours)"
                f"\n    bare into a {args.batch_size}-image buffer {m['bare_into_batch']['images_per_s']:8.0f} images/s, "
                f"{m['bare_into_batch']['cpu_s_per_image'] * 1e6:5.0f} us CPU/image (each image to its own slot, as a batch needs)"
            )
    sizes = {key: _median_run(measured) for key, measured in runs.items()}
    results["sizes"] = sizes
    ours = sizes["full"]["ours"]
    results["ours"] = ours

    if not args.skip_baselines:
        files = DataLoader(FilesDataset(images_dir, annotations_dir), shuffle=True, **common)
        a = rate(files, args.min_seconds)
        print(
            f"  (a) files     {a['images_per_s']:8.0f} images/s  ({a['epochs']} epochs; {a['cpu_s_per_image'] * 1e6:.0f} us CPU/image)"
        )
        results["files"] = a
        del files

        import datasets

        # the columns (a) delivers: face_box and auto_label, null for AffectNet+, do not collate by default
        hf = dataset.cast_column("image", datasets.Image()).select_columns(_FILES_COLUMNS).with_format("torch")
        hf_loader = DataLoader(hf, shuffle=True, **common)
        b = rate(hf_loader, args.min_seconds)
        print(
            f"  (b) hf-torch  {b['images_per_s']:8.0f} images/s  ({b['epochs']} epochs; {b['cpu_s_per_image'] * 1e6:.0f} us CPU/image)"
        )
        results["hf_torch"] = b
        del hf_loader

    print("\nratios (the targets; both sides measured in this run, on this machine):")
    if args.repeats > 1:
        print(f"  (each the median of {args.repeats} runs, the range in brackets)")
    for key, label in (("full", "full size"), ("reduced", f"size={args.size}")):
        m = sizes[key]
        ok_rate, ok_cpu = m["rate_ratio"] >= TARGET_BARE, m["cpu_ratio"] <= TARGET_CPU
        print(
            f"  {label:<10} ours / bare decode  {m['rate_ratio']:5.3f}{_range(m, 'rate_ratio')} images/s (target >= {TARGET_BARE:.2f}: {'met' if ok_rate else 'MISSED'}), "
            f"{m['cpu_ratio']:5.3f}x{_range(m, 'cpu_ratio')} CPU/image (target <= {TARGET_CPU:.2f}x: {'met' if ok_cpu else 'MISSED'}); "
            f"{m['cpu_ratio_into_batch']:5.2f}x{_range(m, 'cpu_ratio_into_batch')} the CPU of bare decoding into a batch-sized buffer"
        )
    faster = sizes["reduced"]["ours"]["images_per_s"] / ours["images_per_s"]
    results["reduced_over_full"] = faster
    print(f"  size={args.size} / full size {faster:5.2f}   (asking for smaller images should never cost more)")
    for key, label in (("files", "(a) files"), ("hf_torch", "(b) hf-torch")):
        if key in results:
            ratio = ours["images_per_s"] / results[key]["images_per_s"]
            results[f"ours_over_{key}"] = ratio
            print(
                f"  ours / {label:<14} {ratio:5.2f}x  (target >= {TARGET_BASELINE:.0f}x: {'met' if ratio >= TARGET_BASELINE else 'MISSED'})"
            )
            ratio = results[key]["cpu_s_per_image"] / ours["cpu_s_per_image"]
            results[f"cpu_{key}_over_ours"] = ratio
            print(f"  {label} / ours CPU per image {ratio:5.2f}x")
    load = os.getloadavg()[0]
    results["load_average_1min"] = load
    if load > len(os.sched_getaffinity(0)) * 0.75:
        print(
            f"note: load average {load:.1f} on {len(os.sched_getaffinity(0))} cores during the run: other processes shared the CPUs"
        )

    if torch.cuda.is_available():
        try:
            import torchvision  # noqa: F401

            from affectnetplus_hf.torch import DevicePrefetcher

            gpu_loader = make_loader(dataset, args.batch_size, num_workers=args.workers, output="jpeg", seed=0)
            g = rate(DevicePrefetcher(gpu_loader, "cuda"), args.min_seconds)["images_per_s"]
            print(f"\nGPU decode path (torchvision.io.decode_jpeg on cuda): {g:.0f} images/s")
            results["gpu_decode"] = g
        except ImportError:
            print("\nGPU decode path: not measured (torchvision is not installed)")
    else:
        print("\nGPU decode path: not measured (no CUDA device here)")

    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
