"""Two real torch.distributed processes (gloo, CPU) stream the pushed export from the Hub server.

Each rank takes ``split_dataset_by_node(ds, rank, world_size)``; the ranks' rows must be
disjoint and together the whole split, both when the shard count divides by the world size
(whole shards per rank) and when it does not (datasets falls back to striding rows).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import datasets
import pytest

from affectnetplus_hf.hub.remote import shard_plan
from tests.support.hub_fixtures import REPO_ID, make_export, row_key
from tests.support.hub_server import TOKEN_WRITE, free_port

pytestmark = pytest.mark.slow

WORLD_SIZE = 2

_WORKER = textwrap.dedent(
    """
    import json, os, sys
    import torch.distributed as dist
    import datasets
    from datasets.distributed import split_dataset_by_node

    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    out = {}
    for config in sys.argv[2].split(","):
        ds = datasets.load_dataset(os.environ["REPO_ID"], config, split="train", streaming=True)
        ds = ds.cast_column("image", datasets.Image(decode=False))
        mine = split_dataset_by_node(ds, rank=rank, world_size=world_size)
        rows = [[r["image_id"], __import__("hashlib").sha256(r["image"]["bytes"]).hexdigest()] for r in mine]
        gathered = [None] * world_size
        dist.all_gather_object(gathered, rows)
        out[config] = {"num_shards": ds.num_shards, "per_rank": gathered}
    dist.barrier()
    if rank == 0:
        with open(sys.argv[1], "w") as handle:
            json.dump(out, handle)
    dist.destroy_process_group()
    """
)


def _run_ranks(tmp_path, server, configs: list[str]) -> dict:
    script = tmp_path / "rank.py"
    script.write_text(_WORKER)
    result = tmp_path / "ranks.json"
    port = free_port()
    procs = []
    for rank in range(WORLD_SIZE):
        env = {
            **os.environ,
            "RANK": str(rank),
            "WORLD_SIZE": str(WORLD_SIZE),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            # A fresh interpreter reads these at import time: no patching needed there.
            "HF_ENDPOINT": server.url,
            "HF_TOKEN": TOKEN_WRITE,
            "HF_HOME": str(tmp_path / f"hf_home_{rank}"),
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "REPO_ID": REPO_ID,
            "GLOO_SOCKET_IFNAME": "lo",
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, str(script), str(result), ",".join(configs)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = []
    for proc in procs:
        try:
            outputs.append(proc.communicate(timeout=240)[0])
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise
    assert all(p.returncode == 0 for p in procs), "\n".join(o[-3000:] for o in outputs)
    return json.loads(result.read_text())


@pytest.mark.parametrize("num_shards", [2, 3], ids=["shards-divide-world", "shards-do-not-divide"])
def test_split_dataset_by_node_gives_disjoint_ranks_covering_the_split(hub, tmp_path, hf_cache, num_shards):
    pytest.importorskip("torch.distributed")
    from affectnetplus_hf.hub.publish import push

    folder = make_export(tmp_path / "export", n=12, num_shards=num_shards)
    push(folder, REPO_ID, progress=False, echo=None)
    configs = ["all", "easy"]

    ranks = _run_ranks(tmp_path, hub, configs)

    for config in configs:
        local = datasets.load_dataset(str(folder), config, split="train").cast_column(
            "image", datasets.Image(decode=False)
        )
        expected = sorted([row["image_id"], row_key(row)[1]] for row in local)
        per_rank = [[tuple(r) for r in rows] for rows in ranks[config]["per_rank"]]
        assert all(per_rank), f"{config}: a rank got no rows"
        assert not set(per_rank[0]) & set(per_rank[1]), f"{config}: ranks overlap"
        assert sorted(list(r) for rows in per_rank for r in rows) == expected, f"{config}: rows lost or repeated"
        plan = shard_plan(ranks[config]["num_shards"], WORLD_SIZE)
        assert plan.by_shard == (ranks[config]["num_shards"] % WORLD_SIZE == 0)
    # With 2 shards per part every config's split divides by 2 ranks; with 3, "easy" does not.
    assert shard_plan(ranks["easy"]["num_shards"], WORLD_SIZE).by_shard == (num_shards % WORLD_SIZE == 0)
