"""Landmark and pose transforms move with the pixels: flips, resizes, crops and rotations."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from affectnetplus_hf.core.schema import POSE_ANGLES  # noqa: E402
from affectnetplus_hf.release.sample import face_landmarks  # noqa: E402
from affectnetplus_hf.torch import BatchAugment, JpegCollator  # noqa: E402
from affectnetplus_hf.torch.geometry import (  # noqa: E402
    IBUG68_FLIP_PERMUTATION,
    flip_head_pose,
    flip_landmarks,
    resize_points,
)
from tests.support.torch_support import jpeg, rows_dataset  # noqa: E402

PERM = IBUG68_FLIP_PERMUTATION
# iBUG-68 parts on the image's left (the subject's right) and right, midline excluded
LEFT = [*range(0, 8), *range(17, 22), 31, 32, *range(36, 42), 48, 49, 50, 58, 59, 60, 61, 67]
RIGHT = [*range(9, 17), *range(22, 27), 34, 35, *range(42, 48), 52, 53, 54, 55, 56, 63, 64, 65]
MIDLINE = [8, 27, 28, 29, 30, 33, 51, 57, 62, 66]


def eye_line_angle(points: torch.Tensor) -> torch.Tensor:
    """In-picture angle (y down) of the line from the left eye's centre to the right one's."""
    left, right = points[..., 36:42, :].mean(-2), points[..., 42:48, :].mean(-2)
    d = right - left
    return torch.atan2(d[..., 1], d[..., 0])


def faces(count: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = random.Random(seed)
    points, rolls = zip(*(face_landmarks(rng, expression) for expression in range(count)), strict=False)
    return torch.tensor(points, dtype=torch.float32), torch.tensor(rolls, dtype=torch.float32)


def test_permutation_is_an_involution_that_swaps_sides():
    assert sorted(PERM) == list(range(68))
    assert all(PERM[PERM[i]] == i for i in range(68))
    assert [i for i in range(68) if PERM[i] == i] == sorted(MIDLINE)
    for a, b in (
        (0, 16),
        (7, 9),
        (17, 26),
        (21, 22),
        (31, 35),
        (36, 45),
        (39, 42),
        (37, 44),
        (41, 46),
        (48, 54),
        (60, 64),
        (65, 67),
    ):
        assert PERM[a] == b and PERM[b] == a
    assert sorted(PERM[i] for i in LEFT) == sorted(RIGHT)


def test_flipped_face_keeps_ibug_anatomy():
    """After a mirror, index 36 must again be the outer corner of the eye on the image's
    left, and so on: of every mirror pair, the image-left index lies left of its partner."""
    points, _ = faces()
    flipped = flip_landmarks(points, 224)
    pairs = torch.tensor([(a, PERM[a]) for a in LEFT])
    for face in (points, flipped):
        assert bool((face[:, pairs[:, 0], 0] < face[:, pairs[:, 1], 0]).all())
    # mirroring alone (no re-ordering) gets every pair the wrong way round
    mirrored = points.clone()
    mirrored[..., 0] = 223 - mirrored[..., 0]
    assert bool((mirrored[:, pairs[:, 0], 0] > mirrored[:, pairs[:, 1], 0]).all())
    # the mirrored face is the original's reflection: same point set, same midline points
    assert torch.allclose(flipped.sort(dim=1).values, mirrored.sort(dim=1).values)
    assert torch.equal(flipped[:, MIDLINE], mirrored[:, MIDLINE])


def test_flip_twice_is_identity():
    points, rolls = faces()
    pose = torch.stack([torch.linspace(-0.3, 0.3, len(rolls)), torch.linspace(0.2, -0.1, len(rolls)), rolls], dim=1)
    assert torch.allclose(flip_landmarks(flip_landmarks(points, 224), 224), points, atol=1e-4)
    whole = points.round()  # released landmarks are whole pixels: there the round trip is exact
    assert torch.equal(flip_landmarks(flip_landmarks(whole, 224), 224), whole)
    assert torch.equal(flip_head_pose(flip_head_pose(pose)), pose)
    once = flip_head_pose(pose)
    yaw, pitch, roll = (POSE_ANGLES.index(k) for k in ("yaw", "pitch", "roll"))
    assert torch.equal(once[:, yaw], -pose[:, yaw])
    assert torch.equal(once[:, pitch], pose[:, pitch])
    assert torch.equal(once[:, roll], -pose[:, roll])
    nan = torch.full((1, 68, 2), float("nan"))
    assert bool(flip_landmarks(nan, 224).isnan().all())


def test_flipped_landmarks_point_at_the_flipped_pixels():
    """Each landmark drawn as a pixel coloured with its index: after flipping the image and
    the landmarks, flipped landmark k sits on the pixel drawn for landmark PERM[k]."""
    points, _ = faces(count=3, seed=5)
    pixels = torch.round(points).long()
    for face in pixels:
        image = torch.full((1, 3, 224, 224), 255, dtype=torch.int64)
        unique = {}
        for k, (x, y) in enumerate(face.tolist()):
            unique.setdefault((x, y), []).append(k)
            image[0, 0, y, x] = k
        flipped_image = image.flip(-1)
        flipped_points = flip_landmarks(face.float(), 224).round().long()
        checked = 0
        for k, (x, y) in enumerate(flipped_points.tolist()):
            source = PERM[k]
            if len(unique[tuple(face[source].tolist())]) > 1:
                continue  # two landmarks on one pixel: the colour names only one
            assert flipped_image[0, 0, y, x].item() == source
            checked += 1
        assert checked > 50


def test_flipped_sample_face_matches_flipped_image_and_pose(tmp_path):
    """The synthetic faces are drawn from their landmarks (lines through them) and their
    roll is the eye line's angle. After BatchAugment flips the decoded image, the flipped
    landmarks lie on the drawn lines of the flipped picture, the eye line of the flipped
    landmarks turns by -roll, and so does the flipped head pose."""
    ds = rows_dataset(tmp_path, n=6)
    batch = JpegCollator()(ds.with_format("arrow")[:])
    images = batch["image"].float()
    out = BatchAugment(flip_p=1.0, crop_scale=(1, 1), crop_ratio=(1, 1), degrees=0, erase_p=0, seed=0)(
        dict(batch, image=images)
    )
    assert bool(out["flipped"].all())
    assert torch.equal(out["image"], images.flip(-1))
    lines = [*range(17, 27), *range(36, 48), *range(48, 60)]  # brows, eyes, outer lips: drawn as dark lines
    darkest = -torch.nn.functional.max_pool2d(-out["image"].mean(1, keepdim=True), 3, stride=1, padding=1)[:, 0]
    for i in range(images.shape[0]):
        xy = out["landmarks"][i].round().long()
        # every flipped landmark shows the pixel its mirror partner showed before the flip
        before = images[i][:, batch["landmarks"][i, list(PERM), 1].long(), batch["landmarks"][i, list(PERM), 0].long()]
        assert torch.equal(out["image"][i][:, xy[:, 1], xy[:, 0]], before)
        # and the drawn lines run through them in the flipped picture
        on_ink = darkest[i, xy[lines, 1], xy[lines, 0]] < 110
        assert on_ink.float().mean() > 0.9, f"face {i}: flipped landmarks are off the flipped drawing"
    roll = POSE_ANGLES.index("roll")
    before = eye_line_angle(batch["landmarks"])
    after = eye_line_angle(out["landmarks"])
    assert torch.allclose(before, batch["head_pose"][:, roll], atol=0.03)  # landmarks and pose agree...
    assert torch.allclose(after, -before, atol=1e-5)  # ...the flip turns the picture's eye line to -roll...
    assert torch.allclose(out["head_pose"][:, roll], -batch["head_pose"][:, roll])  # ...and the pose alike
    assert torch.allclose(out["head_pose"][:, 0], -batch["head_pose"][:, 0])  # yaw negated


def test_resize_moves_landmarks_with_pixels():
    image = np.zeros((224, 224, 3), dtype=np.uint8)
    image[100:104, 60:64] = 255  # a 4 x 4 block centred on x = 61.5, y = 101.5
    landmarks = np.zeros((68, 2), dtype=np.float32)
    landmarks[:] = (61.5, 101.5)
    batch = JpegCollator(size=(112, 56))(
        [{"image": {"bytes": jpeg(image), "path": None}, "image_id": "a", "landmarks": landmarks}]
    )
    assert batch["image"].shape == (1, 3, 112, 56)
    x, y = batch["landmarks"][0, 0].tolist()
    assert (x, y) == pytest.approx(((61.5 + 0.5) * 56 / 224 - 0.5, (101.5 + 0.5) / 2 - 0.5))
    # the brightest pixel is the one under the moved landmark
    brightness = batch["image"][0].float().mean(0)
    peak_y, peak_x = divmod(int(brightness.argmax()), 56)
    assert abs(peak_x - x) <= 1 and abs(peak_y - y) <= 1
    assert resize_points(np.array([[[-0.5, -0.5]]]), (224, 224), (7, 7))[0, 0].tolist() == [
        -0.5,
        -0.5,
    ]  # edges stay edges


def _dots(points: torch.Tensor, size: int = 224) -> torch.Tensor:
    """A dark float image with a smooth bright blob at every point."""
    ys = torch.arange(size, dtype=torch.float32)[:, None]
    xs = torch.arange(size, dtype=torch.float32)[None, :]
    image = torch.zeros(size, size)
    for x, y in points.tolist():
        image = torch.maximum(image, torch.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 2.0**2)))
    return image.expand(3, size, size)


@pytest.mark.parametrize("output_size", [None, (160, 128)])
def test_crop_and_rotation_move_landmarks_with_pixels(output_size):
    points = torch.tensor([[40.0 + 13 * (k % 11), 40.0 + 13 * (k // 11)] for k in range(68)])  # a grid
    images = torch.stack([_dots(points)] * 4)
    landmarks = points.expand(4, 68, 2).clone()
    augment = BatchAugment(
        flip_p=0.5,
        crop_scale=(0.5, 0.8),
        crop_ratio=(0.8, 1.25),
        degrees=25,
        erase_p=0,
        output_size=output_size,
        seed=7,
    )
    out = augment({"image": images, "landmarks": landmarks})
    oh, ow = output_size or (224, 224)
    assert out["image"].shape == (4, 3, oh, ow)
    inside = 0
    for i in range(4):
        for x, y in out["landmarks"][i].tolist():
            if 3 <= x <= ow - 4 and 3 <= y <= oh - 4:
                inside += 1
                value = out["image"][i, 0, round(y), round(x)].item()
                assert value > 0.75, f"image {i}: no blob under moved landmark ({x:.1f}, {y:.1f}), value {value:.2f}"
    assert inside > 100
    # and the transform is not the identity
    assert not torch.allclose(out["landmarks"], landmarks, atol=1.0)


def test_rotation_turns_roll_when_asked(tmp_path):
    ds = rows_dataset(tmp_path, n=4)
    batch = JpegCollator()(ds.with_format("arrow")[:])
    batch["image"] = batch["image"].float()
    roll = POSE_ANGLES.index("roll")
    out = BatchAugment(
        flip_p=0, crop_scale=(0.9, 0.9), crop_ratio=(1, 1), degrees=30, erase_p=0, rotate_roll=True, seed=1
    )(batch)
    turned = eye_line_angle(out["landmarks"]) - eye_line_angle(batch["landmarks"])
    assert turned.abs().max() > 0.05
    assert torch.allclose(out["head_pose"][:, roll] - batch["head_pose"][:, roll], turned, atol=1e-4)
    kept = BatchAugment(flip_p=0, degrees=30, erase_p=0, seed=1)(batch)
    assert torch.equal(kept["head_pose"], batch["head_pose"])


def test_eye_line_angle_helper_reads_roll():
    points, rolls = faces()
    assert torch.allclose(eye_line_angle(points), rolls, atol=1e-5)
    assert math.isclose(float(eye_line_angle(flip_landmarks(points, 224))[0]), -float(rolls[0]), abs_tol=1e-5)
