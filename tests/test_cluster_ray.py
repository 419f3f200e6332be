"""Ray Data over an export, on a local Ray instance with 2 CPUs (affectnetplus_hf.cluster, examples/ray_score.py).

The read keeps every row exactly once across Ray's blocks with the Arrow types of FEATURES, from a
local folder and from a Hub repo; DecodeBatch gives make_loader's uint8 images for the same rows;
the docs' recipe scores every unlabeled image in an actor pool and its predictions join back onto
``load_dataset``'s rows one to one, each with the score the model gives that image.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("torch")

import datasets  # noqa: E402

from affectnetplus_hf.core.schema import FEATURES  # noqa: E402
from affectnetplus_hf.errors import PublishError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _recipe():
    """examples/ray_score.py as a module (its Scorer is shipped to the actors by reference)."""
    spec = importlib.util.spec_from_file_location("ray_score", ROOT / "examples" / "ray_score.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["ray_score"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for the module; its workers import this checkout and the recipe."""
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "examples"), *([old] if old else [])])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def _block_ids(ds) -> list[list[str]]:
    """The image ids of each block Ray read."""
    return [ray.get(ref).column("image_id").to_pylist() for ref in ds.to_arrow_refs()]


def _sha(image: dict) -> str:
    return hashlib.sha256(image["bytes"]).hexdigest()


# ----------------------------------------------------------------------------- without a Ray job


def test_importing_the_package_never_imports_ray():
    code = "import sys, affectnetplus_hf; affectnetplus_hf.FEATURES; assert 'ray' not in sys.modules, 'ray imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_a_missing_split_config_or_folder_is_named(session_export, tmp_path):
    from affectnetplus_hf.cluster import export_shards

    with pytest.raises(
        PublishError, match=r"split 'validation' is not in config 'unlabeled'.*expected one of \['train'\]"
    ):
        export_shards(session_export, "unlabeled", "validation")
    with pytest.raises(PublishError, match=r"config 'hard' is not in .*README.md; expected one of"):
        export_shards(session_export, "hard")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PublishError, match=r"README.md: not found; expected an exported AffectNet\+ folder"):
        export_shards(tmp_path / "empty", "all")
    with pytest.raises(PublishError, match=r"not a local folder, a URL or a Hub repo id"):
        export_shards(tmp_path / "no" / "such" / "folder", "all")


def test_the_shards_are_the_exports_own_files(session_export):
    from affectnetplus_hf.cluster import export_shards

    paths, filesystem = export_shards(session_export, "easy", "validation")
    assert filesystem is None
    assert [Path(p).relative_to(session_export.resolve()).parts[-2:] for p in paths] == [
        ("validation", "easy-00000-of-00002.parquet"),
        ("validation", "easy-00001-of-00002.parquet"),
    ]


# ----------------------------------------------------------------------------- Ray jobs


@pytest.mark.slow
def test_the_read_keeps_every_row_once_across_blocks_with_the_types_of_features(local_ray, session_export, monkeypatch):
    from affectnetplus_hf.cluster import read_export

    # blocks of a few kB, so that the 6 shards' 12 rows are cut into several (Ray merges small files)
    monkeypatch.setattr(ray.data.DataContext.get_current(), "target_max_block_size", 4096)
    ds = read_export(session_export, "all", "train")
    assert ds.schema().base_schema == FEATURES.arrow_schema
    blocks = _block_ids(ds)
    assert len([b for b in blocks if b]) > 1, blocks  # the rows really are spread over several blocks
    seen = Counter(image_id for block in blocks for image_id in block)
    local = datasets.load_dataset(str(session_export), "all", split="train")
    assert seen == Counter(local["image_id"]) and set(seen.values()) == {1}


@pytest.mark.slow
def test_decoded_images_equal_make_loaders_for_the_same_rows(local_ray, session_export):
    import numpy as np

    from affectnetplus_hf.cluster import DecodeBatch, read_export
    from affectnetplus_hf.torch import make_loader

    rows = read_export(session_export, "unlabeled").map_batches(
        DecodeBatch(size=40), batch_format="pyarrow", batch_size=5
    )
    got = {row["image_id"]: row for row in rows.take_all()}
    local = datasets.load_dataset(str(session_export), "unlabeled", split="train")
    want = {}
    for batch in make_loader(local, 5, size=40, num_workers=0, shuffle=False):
        for i, image_id in enumerate(batch["image_id"]):
            want[image_id] = {key: value[i].numpy() for key, value in batch.items() if key != "image_id"}
    assert got.keys() == want.keys() and len(got) == len(local)
    for image_id, expected in want.items():
        assert got[image_id]["image"].dtype == np.uint8 and got[image_id]["image"].shape == (3, 40, 40)
        for key, value in expected.items():
            np.testing.assert_array_equal(got[image_id][key], value, err_msg=f"{image_id} {key}")


@pytest.mark.slow
def test_the_recipe_scores_every_unlabeled_image_once_and_joins_exactly(local_ray, session_export, tmp_path, capsys):
    import numpy as np
    import torch

    from affectnetplus_hf.torch import make_loader

    recipe = _recipe()
    out = tmp_path / "predictions"
    recipe.score(str(session_export), str(out), size=32, batch_size=4, actors=2, actor_cpus=0.5)
    joined = recipe.join(str(session_export), str(out))
    images = datasets.load_dataset(str(session_export), "unlabeled", split="train")
    assert "joined 12 of 12 images: 0 lost, 0 duplicated" in capsys.readouterr().out
    assert joined["image_id"] == images["image_id"] and len(joined) == 12
    assert {_sha(a) for a in joined.cast_column("image", datasets.Image(decode=False))["image"]} == {
        _sha(a) for a in images.cast_column("image", datasets.Image(decode=False))["image"]
    }
    # each row carries the score the model gives its own image
    model = recipe.build_model()
    for batch in make_loader(images, 4, size=32, num_workers=0, shuffle=False):
        with torch.inference_mode():
            expected = model(batch["image"].float().div(255)).softmax(dim=1).numpy()
        for image_id, scores in zip(batch["image_id"], expected, strict=False):
            row = joined[joined["image_id"].index(image_id)]
            np.testing.assert_allclose(row["scores"], scores, rtol=1e-5, atol=1e-6)
            assert row["prediction"] == int(scores.argmax())

    # a prediction written twice, or one lost, is named by the join
    extra = next(out.glob("*.parquet"))
    (out / "again.parquet").write_bytes(extra.read_bytes())
    with pytest.raises(recipe.JoinError, match=r"0 images lost .*, [1-9]\d* predicted more than once"):
        recipe.join(str(session_export), str(out))


def test_the_recipe_refuses_a_wrong_source_and_an_output_folder_that_holds_files(tmp_path, session_export, capsys):
    recipe = _recipe()
    (tmp_path / "predictions").mkdir()
    (tmp_path / "predictions" / "mine.txt").write_text("keep me")
    assert recipe.main([str(session_export), str(tmp_path / "predictions")]) == 2
    assert "holds files already" in capsys.readouterr().err
    assert (tmp_path / "predictions" / "mine.txt").read_text() == "keep me"
    assert recipe.main([str(tmp_path / "no-export"), str(tmp_path / "new")]) == 2
    assert "not a local folder, a URL or a Hub repo id" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


@pytest.mark.slow
def test_a_hub_repo_reads_the_pushed_rows_at_one_commit(local_ray, pushed):
    from huggingface_hub import HfApi

    from affectnetplus_hf.cluster import export_shards, read_export

    _, repo_id, folder = pushed
    paths, _ = export_shards(repo_id, "easy", "train")
    sha = HfApi().dataset_info(repo_id).sha
    assert paths and all(p.startswith(f"datasets/{repo_id}@{sha}/data/") for p in paths)
    ds = read_export(repo_id, "easy", "train")
    assert ds.schema().base_schema == FEATURES.arrow_schema
    got = Counter((row["image_id"], _sha(row["image"])) for row in ds.take_all())
    local = datasets.load_dataset(str(folder), "easy", split="train").cast_column("image", datasets.Image(decode=False))
    assert got == Counter((row["image_id"], _sha(row["image"])) for row in local)
