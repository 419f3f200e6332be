"""Run by tests/test_torch_resume.py in fresh processes: one loader per case, interrupted or resumed.

``python torch_resume_run.py EXPORT CASES.json stop OUT.json STATES_DIR``: for every case,
the ``image_id`` batches of an uninterrupted run, whose ``state_dict()`` after batch ``k``
of epoch ``e`` is saved on the way (and, with ``state_first``, the state before the first
batch). ``... resume OUT.json STATES_DIR``:
a loader built the same way loads the state and yields the rest of the run. Every run logs
the batches its collator decoded, so the test can tell that skipped batches were not decoded.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import datasets
import torch

from affectnetplus_hf.torch import Curriculum, JpegCollator, make_loader


class LoggingCollator(JpegCollator):
    """Appends every decoded batch's image ids to a file (works from worker processes)."""

    def __init__(self, log: Path, **kwargs):
        super().__init__(**kwargs)
        self.log = str(log)

    def __call__(self, batch):
        out = super().__call__(batch)
        ids = out.batch["image_id"] if hasattr(out, "batch") else out["image_id"]
        with open(self.log, "a") as handle:
            handle.write(json.dumps(ids) + "\n")
        return out


def build(export: str, case: dict, log: Path):
    split = datasets.load_dataset(
        export, "all", split="train", streaming=case["streaming"], cache_dir=str(Path(export).parent / "cache")
    )
    kwargs = dict(case["kwargs"])
    if "curriculum" in kwargs:
        kwargs["curriculum"] = Curriculum.parse(kwargs["curriculum"])
    collator = LoggingCollator(log, size=32, reuse_memory=True)
    return make_loader(split, case["batch_size"], collator=collator, **kwargs)


def main() -> int:
    export, cases, mode, out, states = (
        sys.argv[1],
        json.loads(Path(sys.argv[2]).read_text()),
        sys.argv[3],
        sys.argv[4],
        Path(sys.argv[5]),
    )
    datasets.disable_progress_bars()
    result = {}
    for case in cases:
        name, epochs = case["name"], case["epochs"]
        if mode == "stop":
            # one uninterrupted run; its state is saved after batch k of epoch e on the way
            stop_epoch, stop_batch = case["stop"]
            loader = build(export, case, states / f"{name}.full.log")
            if case.get("state_first"):
                # a checkpoint before the first batch: the loader makes its iterator (workers
                # start reading) before iter(); give them time to, so a race would show
                torch.save(loader.state_dict(), states / f"{name}.start.pt")
                time.sleep(0.5)
            full = []
            for epoch in range(epochs):
                full.append([])
                for k, batch in enumerate(loader):
                    full[-1].append(batch["image_id"])
                    if (epoch, k + 1) == (stop_epoch, stop_batch):
                        torch.save(loader.state_dict(), states / f"{name}.pt")
            result[name] = {"full": full}
        else:
            log = states / f"{name}.resume.log"
            loader = build(export, case, log)
            loader.load_state_dict(torch.load(states / f"{name}.pt", weights_only=False))
            rest = []
            for _ in range(epochs - case["stop"][0]):
                rest.append([batch["image_id"] for batch in loader])
            decoded = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
            result[name] = {"rest": rest, "decoded": decoded}
            if case.get("state_first"):  # resumed from the checkpoint taken before the first batch
                loader = build(export, case, states / f"{name}.start.log")
                loader.load_state_dict(torch.load(states / f"{name}.start.pt", weights_only=False))
                result[name]["from_start"] = [[batch["image_id"] for batch in loader] for _ in range(epochs)]
    Path(out).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
