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

    from affectnetplus_hf.export import export
    from affectnetplus_hf.sample import write_sample

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
        export(raw, out, num_proc=max(1, workers), progress=False)
        print(f"  exported to Parquet in {time.perf_counter() - t:.0f} s")
        stamp.write_text(json.dumps({"n": n}))
    t = time.perf_counter()
    dataset = datasets.load_dataset(str(out), "all", split="train", cache_dir=str(work / "hf-cache"))
    dataset = dataset.cast_column("image", datasets.Image(decode=False))
    print(f"  load_dataset(export, 'all', split='train'): {len(dataset)} rows in {time.perf_counter() - t:.0f} s")
    images = raw / "human_annotated" / "train_set" / "images"
    return dataset, images, images.parent / "annotations"


# ---------------------------------------------------------------- timing
def rate(loader, min_seconds: float, batch_key: str = "image") -> tuple[float, int]:
    """Images per second from the first batch on, over whole epochs, at least min_seconds."""
    images, start, epochs = 0, None, 0
    while True:
        for batch in loader:
            count = batch[batch_key].shape[0]
            if start is None:
                start = time.perf_counter()  # worker start-up and the first batch are not counted
                continue
            images += count
        epochs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return images / elapsed, epochs


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

    results: dict = {"n": len(dataset), "workers": args.workers, "batch_size": args.batch_size}
    sample = [row["bytes"] for row in dataset.select(range(min(2000, len(dataset))))["image"]]
    print("\nsingle-core decode of the same 224x224 JPEGs (images/s):")
    decoders = measure_decoders(sample, available_decoders(), min_seconds=2.0)
    for name, value in decoders.items():
        print(f"  {name:<11} {value:8.0f}")
    best = max(decoders, key=decoders.get)
    ceiling = decoders[best] * args.workers
    results["decoders"] = decoders
    results["ceiling"] = ceiling
    print(f"ceiling = {best} x {args.workers} workers = {ceiling:.0f} images/s")

    common = dict(batch_size=args.batch_size, num_workers=args.workers, persistent_workers=args.workers > 0)
    print("\nloaders (ready uint8 batch + annotation tensors, shuffled):")
    ours_loader = make_loader(dataset, args.batch_size, num_workers=args.workers, seed=0)
    ours, epochs = rate(ours_loader, args.min_seconds)
    print(f"  (c) ours      {ours:8.0f} images/s  ({epochs} epochs)")
    results["ours"] = ours
    del ours_loader

    if not args.skip_baselines:
        files = DataLoader(FilesDataset(images_dir, annotations_dir), shuffle=True, **common)
        a, epochs = rate(files, args.min_seconds)
        print(f"  (a) files     {a:8.0f} images/s  ({epochs} epochs)")
        results["files"] = a
        del files

        import datasets

        hf = dataset.cast_column("image", datasets.Image()).remove_columns(["landmarks_29"]).with_format("torch")
        hf_loader = DataLoader(hf, shuffle=True, **common)
        b, epochs = rate(hf_loader, args.min_seconds)
        print(f"  (b) hf-torch  {b:8.0f} images/s  ({epochs} epochs)")
        results["hf_torch"] = b
        del hf_loader

    print("\nratios:")
    share = ours / ceiling
    print(f"  ours / ceiling   {share:6.2f}   (target >= {TARGET_CEILING:.2f}: {'met' if share >= TARGET_CEILING else 'MISSED'})")
    for key, label in (("files", "(a) files"), ("hf_torch", "(b) hf-torch")):
        if key in results:
            ratio = ours / results[key]
            print(f"  ours / {label:<12} {ratio:5.2f}x  (target >= {TARGET_BASELINE:.0f}x: {'met' if ratio >= TARGET_BASELINE else 'MISSED'})")
            results[f"ours_over_{key}"] = ratio
    results["ours_over_ceiling"] = share

    if torch.cuda.is_available():
        try:
            import torchvision  # noqa: F401

            from affectnetplus_hf.torch import DevicePrefetcher

            gpu_loader = make_loader(dataset, args.batch_size, num_workers=args.workers, output="jpeg", seed=0)
            g, _ = rate(DevicePrefetcher(gpu_loader, "cuda"), args.min_seconds)
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
