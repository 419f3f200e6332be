"""How fast does AffectNet+ reach PyTorch? Three loaders on one synthetic export, in one run.

    python benchmarks/loader_bench.py                 # 20,000 images (about 3 minutes on 2 cores)
    python benchmarks/loader_bench.py --n 3000        # a quick look

Each loader delivers a *ready* batch of ``--batch-size`` 224 x 224 images as a uint8
``N x 3 x H x W`` tensor plus the annotation tensors (soft label, human label, subset,
valence, arousal, age, gender, race, head pose, landmarks) and the ids, with
``--workers`` DataLoader workers, shuffled:

(a) ``files``    the per-file ``Dataset`` FER repositories write: one JPEG + one JSON per
                 item, PIL decode, ``default_collate``;
(b) ``hf-torch`` ``datasets``' own ``dataset.with_format("torch")`` + ``default_collate``;
(c) ``ours``     ``affectnetplus_hf.torch.make_loader`` (Arrow batches, decode into
                 shared memory).

The ceiling is the fastest installed decoder's single-core rate (decoding the same
images into a reused buffer, nothing else) times the worker count: what the workers
could deliver if decoding were all they did. Rates are images per second in the main
process, timed from the first batch (worker start-up excluded) over whole epochs,
repeated until ``--min-seconds``. Ratios are printed against that ceiling and the two
baselines, all measured in this process on this machine.
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

TARGET_CEILING = 0.85
TARGET_BASELINE = 3.0


# ---------------------------------------------------------------- (a) per-file baseline
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


def rate(loader, min_seconds: float, batch_key: str = "image") -> dict:
    """Images per second from the first batch on, over whole epochs, at least min_seconds;
    and the CPU seconds per image spent by the workers and the main process meanwhile."""
    images, start, epochs, cpu_start = 0, None, 0, None
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
            return {"images_per_s": images / elapsed, "cpu_s_per_image": cpu / max(images, 1), "epochs": epochs, "images": images}


def _decode_for(args) -> int:
    name, jpegs, seconds = args
    from affectnetplus_hf.torch.decoders import get_decoder

    decoder = get_decoder(name)
    buffer = np.empty_like(decoder.decode(jpegs[0]))
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for data in jpegs:
            decoder.decode(data, out=buffer)
        count += len(jpegs)
    return count


def parallel_decode_rate(jpegs, name: str, processes: int, seconds: float = 3.0) -> float:
    """Images per second of ``processes`` processes doing nothing but decode, side by side:
    what the machine gives bare decoding right now (equal to single-core rate x processes
    only when that many cores are free)."""
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(processes) as pool:
        start = time.perf_counter()
        counts = pool.map(_decode_for, [(name, jpegs, seconds)] * processes)
        return sum(counts) / (time.perf_counter() - start)


def decoder_cpu_cost(jpegs, name: str, min_seconds: float = 2.0) -> float:
    """CPU seconds per image of one decoder alone, into a reused buffer."""
    from affectnetplus_hf.torch.decoders import get_decoder

    decoder = get_decoder(name)
    buffer = np.empty_like(decoder.decode(jpegs[0]))
    count, start, wall = 0, time.process_time(), time.perf_counter()
    while time.perf_counter() - wall < min_seconds:
        for data in jpegs:
            decoder.decode(data, out=buffer)
        count += len(jpegs)
    return (time.process_time() - start) / count


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="images in the synthetic export (default 20000)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers for every loader (default 2)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--min-seconds", type=float, default=8.0, help="time each loader at least this long")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep/reuse the synthetic data here")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    parser.add_argument("--skip-baselines", action="store_true", help="measure only the decoders and ours")
    args = parser.parse_args(argv)

    from affectnetplus_hf.torch import make_loader
    from affectnetplus_hf.torch.decoders import available_decoders, measure_decoders

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="affectnetplus-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {len(os.sched_getaffinity(0))} usable cores, torch {torch.__version__}, cuda={torch.cuda.is_available()}")
    print(f"data: {work}")
    dataset, images_dir, annotations_dir = build(work, args.n, args.workers)

    results: dict = {"n": len(dataset), "workers": args.workers, "batch_size": args.batch_size, "cores": len(os.sched_getaffinity(0))}
    sample = [row["bytes"] for row in dataset.select(range(min(2000, len(dataset))))["image"]]
    print("\nsingle-core decode of the same 224x224 JPEGs into a reused buffer (images/s):")
    decoders = measure_decoders(sample, available_decoders(), min_seconds=2.0)
    for name, value in decoders.items():
        print(f"  {name:<11} {value:8.0f}")
    best = max(decoders, key=decoders.get)
    results["decoders"] = decoders
    results["fastest"] = best

    common = dict(batch_size=args.batch_size, num_workers=args.workers, persistent_workers=args.workers > 0)
    print(f"\nloaders, {args.workers} workers (ready uint8 batch of {args.batch_size} + annotation tensors, shuffled):")
    # the ceiling is measured right before and after ours, and the higher figure kept
    ceiling_before = measure_decoders(sample, [best], min_seconds=2.0)[best] * args.workers
    ours_loader = make_loader(dataset, args.batch_size, num_workers=args.workers, seed=0)
    ours = rate(ours_loader, args.min_seconds)
    del ours_loader
    ceiling_after = measure_decoders(sample, [best], min_seconds=2.0)[best] * args.workers
    ceiling = max(ceiling_before, ceiling_after)
    cost = decoder_cpu_cost(sample, best)
    side_by_side = parallel_decode_rate(sample[:500], best, max(args.workers, 1))
    results.update(
        ceiling=ceiling,
        ceiling_before=ceiling_before,
        ceiling_after=ceiling_after,
        decode_cpu_s_per_image=cost,
        bare_decode_side_by_side=side_by_side,
        ours=ours,
    )
    print(f"  ceiling       {ceiling:8.0f} images/s  ({best} single-core rate x {args.workers} workers; {ceiling_before:.0f} before, {ceiling_after:.0f} after ours)")
    print(f"  bare decode   {side_by_side:8.0f} images/s  ({args.workers} processes doing nothing but decode, side by side, right after)")
    print(f"  (c) ours      {ours['images_per_s']:8.0f} images/s  ({ours['epochs']} epochs; {ours['cpu_s_per_image'] * 1e6:.0f} us CPU/image, bare decode {cost * 1e6:.0f})")

    if not args.skip_baselines:
        files = DataLoader(FilesDataset(images_dir, annotations_dir), shuffle=True, **common)
        a = rate(files, args.min_seconds)
        print(f"  (a) files     {a['images_per_s']:8.0f} images/s  ({a['epochs']} epochs; {a['cpu_s_per_image'] * 1e6:.0f} us CPU/image)")
        results["files"] = a
        del files

        import datasets

        hf = dataset.cast_column("image", datasets.Image()).remove_columns(["landmarks_29"]).with_format("torch")
        hf_loader = DataLoader(hf, shuffle=True, **common)
        b = rate(hf_loader, args.min_seconds)
        print(f"  (b) hf-torch  {b['images_per_s']:8.0f} images/s  ({b['epochs']} epochs; {b['cpu_s_per_image'] * 1e6:.0f} us CPU/image)")
        results["hf_torch"] = b
        del hf_loader

    print("\nratios (wall clock, the targets):")
    share = ours["images_per_s"] / ceiling
    results["ours_over_ceiling"] = share
    print(f"  ours / ceiling         {share:5.2f}   (target >= {TARGET_CEILING:.2f}: {'met' if share >= TARGET_CEILING else 'MISSED'})")
    for key, label in (("files", "(a) files"), ("hf_torch", "(b) hf-torch")):
        if key in results:
            ratio = ours["images_per_s"] / results[key]["images_per_s"]
            results[f"ours_over_{key}"] = ratio
            print(f"  ours / {label:<14} {ratio:5.2f}x  (target >= {TARGET_BASELINE:.0f}x: {'met' if ratio >= TARGET_BASELINE else 'MISSED'})")
    print(f"  ours / bare decode in {args.workers} processes {ours['images_per_s'] / side_by_side:5.2f}   (what the CPUs gave this run)")
    results["ours_over_side_by_side"] = ours["images_per_s"] / side_by_side
    print("CPU cost per delivered image (robust to other load on the machine):")
    efficiency = cost / ours["cpu_s_per_image"]
    results["cpu_efficiency"] = efficiency
    print(f"  bare decode / ours     {efficiency:5.2f}   (1.00 = the loader costs nothing beyond decoding)")
    for key, label in (("files", "(a) files"), ("hf_torch", "(b) hf-torch")):
        if key in results:
            ratio = results[key]["cpu_s_per_image"] / ours["cpu_s_per_image"]
            results[f"cpu_{key}_over_ours"] = ratio
            print(f"  {label} / ours {ratio:5.2f}x")
    load = os.getloadavg()[0]
    results["load_average_1min"] = load
    if load > len(os.sched_getaffinity(0)) * 0.75:
        print(f"note: load average {load:.1f} on {len(os.sched_getaffinity(0))} cores during the run: other processes shared the CPUs")

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
