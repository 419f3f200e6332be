"""Score every image of an export's ``unlabeled`` config with a torch model on Ray, write the
predictions as Parquet keyed by ``image_id``, then join them back onto the export.

    python examples/ray_score.py ./affectnet_plus predictions/ --num-cpus 2      # a local Ray instance
    python examples/ray_score.py my-lab/affectnet_plus /shared/predictions \\
        --address auto --actors 16 --actor-gpus 1                                # a running cluster

The same script runs on one machine or on a cluster: only the Ray address changes
(``--address``, or ``RAY_ADDRESS``). See docs/ray.md for how the work is split.

Exit status: 0 every image scored and joined once; 1 the join found images lost, duplicated or
unknown (it names them); 2 bad usage or input (not an export, an output folder that already holds
files, or actors that would hold every CPU of a local instance); 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter

import numpy as np


# --8<-- [start:model]
def build_model():
    """A tiny stand-in classifier (8 expression scores); a real job loads its weights here."""
    import torch

    torch.manual_seed(0)  # every actor builds the same weights
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, kernel_size=3, stride=2),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 8),
    ).eval()


class Scorer:
    """Built once per actor (the model stays loaded); called on each batch of decoded images."""

    def __init__(self, device: str = "cpu"):
        import torch

        self.torch, self.device = torch, device
        self.model = build_model().to(device)

    def __call__(self, batch: dict[str, np.ndarray]):
        import pyarrow as pa

        torch = self.torch
        images = torch.from_numpy(batch["image"]).to(self.device).float().div_(255)
        with torch.inference_mode():
            scores = self.model(images).softmax(dim=1).cpu().numpy()
        # an Arrow table, so that `scores` is stored as a plain list<float>[8] that `datasets` reads
        return pa.table(
            {
                "image_id": pa.array(batch["image_id"], pa.string()),
                "prediction": pa.array(scores.argmax(axis=1), pa.int64()),
                "scores": pa.FixedSizeListArray.from_arrays(pa.array(scores.ravel(), pa.float32()), scores.shape[1]),
            }
        )


# --8<-- [end:model]


# --8<-- [start:score]
def score(source, out, *, size=224, batch_size=64, actors=2, actor_cpus=1.0, actor_gpus=0.0):
    """Read the export's ``unlabeled`` images, decode them in tasks, score them in an actor pool
    of ``actors`` Scorers, and write ``image_id``, ``prediction``, ``scores`` as Parquet to ``out``."""
    from affectnetplus_hf.cluster import DecodeBatch, read_export

    ds = read_export(source, "unlabeled", columns=["image_id", "image"])
    ds = ds.map_batches(DecodeBatch(size=size), batch_format="pyarrow", batch_size=batch_size)
    ds = ds.map_batches(
        Scorer,
        fn_constructor_kwargs={"device": "cuda" if actor_gpus else "cpu"},
        batch_format="numpy",
        batch_size=batch_size,
        concurrency=actors,
        num_cpus=actor_cpus,
        num_gpus=actor_gpus,
    )
    ds.write_parquet(out)


# --8<-- [end:score]


# --8<-- [start:join]
def join(source, out):
    """The export's ``unlabeled`` rows with their ``prediction`` and ``scores``, in the export's
    order: each image joined to exactly one prediction, or :class:`JoinError` naming the rest."""
    from datasets import concatenate_datasets, load_dataset

    images = load_dataset(source, "unlabeled", split="train")
    predictions = load_dataset("parquet", data_files=f"{out}/*.parquet", split="train")
    ids, predicted = images["image_id"], predictions["image_id"]
    twice = sorted(i for i, n in Counter(predicted).items() if n > 1)
    lost, unknown = sorted(set(ids) - set(predicted)), sorted(set(predicted) - set(ids))
    if twice or lost or unknown or len(set(ids)) != len(ids):
        raise JoinError(
            f"{len(lost)} images lost {lost[:5]}, {len(twice)} predicted more than once {twice[:5]}, "
            f"{len(unknown)} predictions of images not in the export {unknown[:5]}"
        )
    row_of = {image_id: row for row, image_id in enumerate(predicted)}
    ordered = predictions.select([row_of[image_id] for image_id in ids]).remove_columns("image_id")
    joined = concatenate_datasets([images, ordered], axis=1)
    print(f"joined {len(joined)} of {len(images)} images: 0 lost, 0 duplicated")
    return joined


# --8<-- [end:join]


class JoinError(Exception):
    """The predictions do not match the export's images one to one."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="the export: a local folder (shared by every node) or a Hub repo id")
    parser.add_argument("out", help="an empty or new folder for the predictions (shared by every node)")
    parser.add_argument("--address", default=None, help="Ray address (default RAY_ADDRESS, else a local instance)")
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs of a local instance (default: all)")
    parser.add_argument("--actors", type=int, default=2, help="Scorer actors (default 2)")
    parser.add_argument("--actor-cpus", type=float, default=1.0, help="CPUs each actor holds (default 1)")
    parser.add_argument("--actor-gpus", type=float, default=0.0, help="GPUs each actor holds (default 0: CPU)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--size", type=int, default=224, help="images are resized to size x size")
    args = parser.parse_args(argv)

    import fsspec
    import ray

    from affectnetplus_hf.cluster import export_shards
    from affectnetplus_hf.errors import AffectNetPlusError

    try:
        export_shards(args.source, "unlabeled")  # a clear message for a wrong source, before Ray starts
    except AffectNetPlusError as err:
        print(err, file=sys.stderr)
        return 2
    fs, path = fsspec.core.url_to_fs(args.out)
    if fs.exists(path) and fs.ls(path):
        print(
            f"{args.out}: holds files already; expected an empty or new folder for the predictions "
            "(a second run would add its files beside them). Choose another folder.",
            file=sys.stderr,
        )
        return 2
    try:
        if args.address or args.num_cpus is None:
            ray.init(address=args.address)
        else:
            ray.init(num_cpus=args.num_cpus)
        cpus = ray.cluster_resources().get("CPU", 0)
        if not (args.address or os.environ.get("RAY_ADDRESS")) and args.actors * args.actor_cpus >= cpus:
            print(
                f"--actors {args.actors} x --actor-cpus {args.actor_cpus} would hold all {cpus:g} CPUs of this Ray "
                "instance, leaving none to read and write the files: the job would wait forever. Lower "
                "--actor-cpus (e.g. 0.5) or --actors.",
                file=sys.stderr,
            )
            return 2
        score(
            args.source,
            args.out,
            size=args.size,
            batch_size=args.batch_size,
            actors=args.actors,
            actor_cpus=args.actor_cpus,
            actor_gpus=args.actor_gpus,
        )
        join(args.source, args.out)
    except JoinError as err:
        print(f"{args.out}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "interrupted; the predictions folder may hold part of the files: remove it before a new run",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
