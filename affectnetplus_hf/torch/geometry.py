"""Geometry of faces in image batches: the iBUG-68 mirror, resizing, crops and affines.

Every landmark and pose transform of the package is written here, once; the collator
(resize), the augmentation (flip, crop, rotation) and the tests all call these functions.

Coordinate frame
----------------
Landmarks are ``(x, y)`` in **pixel-index coordinates**: the centre of pixel column ``j``
is ``x = j`` and the centre of row ``i`` is ``y = i``; an image ``W`` pixels wide covers
``x`` in ``[-0.5, W - 0.5]``. This is the frame of the release (whole pixels in the
224 x 224 crop), of PIL's ``ImageDraw`` (the synthetic sample is drawn from its
landmarks) and of OpenCV. It is also the frame in which ``grid_sample`` with
``align_corners=False`` samples pixel centres, so a point and the pixel under it move
together through every transform below:

* horizontal flip: pixel column ``j`` goes to ``W - 1 - j``, so ``x -> W - 1 - x``;
* resize by ``W -> W'``: pixel *edges* scale, so ``x -> (x + 0.5) * W' / W - 0.5``;
* affine maps (crop, rotation) act on edge coordinates ``u = x + 0.5`` in pixels.

Head pose ``(yaw, pitch, roll)`` (order of :data:`affectnetplus_hf.core.schema.POSE_ANGLES`)
changes sign in yaw and roll under a mirror; pitch is unchanged. The units are as
released (probably radians); a sign change does not depend on them.

Every function takes and returns ``torch`` tensors of any leading batch shape; the
point functions also work on NumPy arrays. ``NaN`` landmarks (a record without
landmarks) stay ``NaN``.
"""

from __future__ import annotations

import math

import torch

from ..core.landmarks import IBUG68_FLIP_PERMUTATION, IBUG68_MIRROR_PAIRS  # re-exported: the torch API names them
from ..core.schema import NUM_LANDMARKS, POSE_ANGLES

__all__ = [
    "IBUG68_FLIP_PERMUTATION",
    "IBUG68_MIRROR_PAIRS",
    "affine_inverse",
    "affine_theta",
    "flip_head_pose",
    "flip_landmarks",
    "random_affine_matrices",
    "resize_points",
    "transform_points",
]

_YAW = POSE_ANGLES.index("yaw")
_ROLL = POSE_ANGLES.index("roll")


def flip_landmarks(points, width: float):
    """Mirror ``points`` (``[..., 68, 2]``, pixel-index ``x, y``) in an image ``width`` wide.

    ``x -> width - 1 - x`` (the pixel under a point stays under it when the image is
    flipped with ``image.flip(-1)``) and the points are re-ordered with
    :data:`IBUG68_FLIP_PERMUTATION`, so that index 36 is again the outer corner of the
    eye on the image's left. Works on tensors and NumPy arrays; returns a new array.
    """
    if points.shape[-2:] != (NUM_LANDMARKS, 2):
        raise ValueError(f"flip_landmarks expects points of shape [..., {NUM_LANDMARKS}, 2], got {tuple(points.shape)}")
    flipped = points[..., list(IBUG68_FLIP_PERMUTATION), :] * 1  # "* 1": a copy for tensors and arrays alike
    flipped[..., 0] = (width - 1) - flipped[..., 0]
    return flipped


def flip_head_pose(pose):
    """Mirror head pose ``[..., 3]`` (yaw, pitch, roll): yaw and roll change sign."""
    if pose.shape[-1] != len(POSE_ANGLES):
        raise ValueError(
            f"flip_head_pose expects [..., {len(POSE_ANGLES)}] ({', '.join(POSE_ANGLES)}), got {tuple(pose.shape)}"
        )
    out = pose * 1
    out[..., _YAW] = -out[..., _YAW]
    out[..., _ROLL] = -out[..., _ROLL]
    return out


def resize_points(points, from_size, to_size):
    """Move pixel-index points from an image of ``from_size`` to one of ``to_size``.

    Sizes are ``(height, width)``, scalars or per-row arrays broadcastable against
    ``points[..., 0]`` (e.g. shape ``[N, 1]`` for ``[N, 68, 2]`` points).
    ``x -> (x + 0.5) * W' / W - 0.5`` and the same for ``y``: pixel edges scale,
    matching PIL's and ``torch.nn.functional.interpolate``'s (``align_corners=False``)
    resampling.
    """
    (h0, w0), (h1, w1) = from_size, to_size
    out = points * 1
    out[..., 0] = (points[..., 0] + 0.5) * (w1 / w0) - 0.5
    out[..., 1] = (points[..., 1] + 0.5) * (h1 / h0) - 0.5
    return out


def random_affine_matrices(
    n: int,
    in_size: tuple[int, int],
    out_size: tuple[int, int],
    *,
    scale: tuple[float, float] = (1.0, 1.0),
    ratio: tuple[float, float] = (1.0, 1.0),
    degrees: float = 0.0,
    translate: float = 0.0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random resized crops with a small rotation, as ``N x 3 x 3`` pixel-edge matrices.

    Each matrix ``M`` maps output *edge* coordinates ``u_out = x_out + 0.5`` (pixels of the
    ``out_size`` image) to input edge coordinates: ``u_in = M @ [u_out, 1]``. The crop
    covers a fraction of the input area drawn from ``scale`` with an aspect ratio (width /
    height) drawn log-uniformly from ``ratio`` (clamped to fit), placed uniformly where it
    fits, shifted by up to ``translate`` x its size and rotated by an angle drawn from
    ``[-degrees, degrees]`` about its centre.

    Returns ``(M, turn)``: ``turn`` (``N``, radians) is how much every direction in the
    picture turns, as an image-frame angle ``atan2(dy, dx)`` with ``y`` pointing down
    (positive = clockwise on screen). A roll measured that way (as in the synthetic
    sample) becomes ``roll + turn``.
    """
    h_in, w_in = in_size
    h_out, w_out = out_size
    g = dict(generator=generator, device=device)
    area = h_in * w_in * _uniform(n, *scale, **g)
    log_ratio = _uniform(n, math.log(ratio[0]), math.log(ratio[1]), **g)
    aspect = torch.exp(log_ratio)
    crop_w = torch.sqrt(area * aspect).clamp(max=w_in)
    crop_h = torch.sqrt(area / aspect).clamp(max=h_in)
    cx = crop_w / 2 + _uniform(n, 0.0, 1.0, **g) * (w_in - crop_w)
    cy = crop_h / 2 + _uniform(n, 0.0, 1.0, **g) * (h_in - crop_h)
    if translate:
        cx = cx + _uniform(n, -translate, translate, **g) * crop_w
        cy = cy + _uniform(n, -translate, translate, **g) * crop_h
    angle = _uniform(n, -degrees, degrees, **g) * (math.pi / 180.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    sx, sy = crop_w / w_out, crop_h / h_out
    # u_in = c + R @ S @ (u_out - c_out), c_out = (w_out / 2, h_out / 2)
    m = torch.zeros(n, 3, 3, device=area.device, dtype=area.dtype)
    m[:, 0, 0] = cos * sx
    m[:, 0, 1] = -sin * sy
    m[:, 1, 0] = sin * sx
    m[:, 1, 1] = cos * sy
    m[:, 0, 2] = cx - (m[:, 0, 0] * w_out / 2 + m[:, 0, 1] * h_out / 2)
    m[:, 1, 2] = cy - (m[:, 1, 0] * w_out / 2 + m[:, 1, 1] * h_out / 2)
    m[:, 2, 2] = 1.0
    return m, -angle


def _uniform(n, low, high, generator=None, device=None) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, device=device)


def _normalizer(size: tuple[int, int], like: torch.Tensor) -> torch.Tensor:
    """Edge pixel coordinates -> [-1, 1] coordinates of ``grid_sample(align_corners=False)``."""
    h, w = size
    return torch.tensor(
        [[2.0 / w, 0.0, -1.0], [0.0, 2.0 / h, -1.0], [0.0, 0.0, 1.0]], dtype=like.dtype, device=like.device
    )


def affine_inverse(matrices: torch.Tensor) -> torch.Tensor:
    """Inverse of ``N x 3 x 3`` affine matrices (last row ``0 0 1``), in closed form."""
    a, b, c = matrices[:, 0, 0], matrices[:, 0, 1], matrices[:, 0, 2]
    d, e, f = matrices[:, 1, 0], matrices[:, 1, 1], matrices[:, 1, 2]
    det = a * e - b * d
    out = torch.zeros_like(matrices)
    out[:, 0, 0], out[:, 0, 1] = e / det, -b / det
    out[:, 1, 0], out[:, 1, 1] = -d / det, a / det
    out[:, 0, 2] = -(out[:, 0, 0] * c + out[:, 0, 1] * f)
    out[:, 1, 2] = -(out[:, 1, 0] * c + out[:, 1, 1] * f)
    out[:, 2, 2] = 1.0
    return out


def affine_theta(matrices: torch.Tensor, in_size: tuple[int, int], out_size: tuple[int, int]) -> torch.Tensor:
    """``N x 2 x 3`` ``theta`` for ``torch.nn.functional.affine_grid(..., align_corners=False)``
    from pixel-edge matrices made by :func:`random_affine_matrices`."""
    n_in = _normalizer(in_size, matrices)
    n_out_inv = affine_inverse(_normalizer(out_size, matrices)[None])[0]
    return (n_in @ matrices @ n_out_inv)[:, :2, :]


def transform_points(points: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """Move input-image points ``[N, K, 2]`` (pixel-index) into the output image of ``matrices``.

    The matrices map output to input (as ``grid_sample`` does), so points go through the
    inverse: ``u_out = M^-1 @ [x_in + 0.5, 1]``, ``x_out = u_out - 0.5``.
    """
    inverse = affine_inverse(matrices.to(points.dtype))
    edge = points + 0.5
    out = edge @ inverse[:, :2, :2].transpose(1, 2) + inverse[:, None, :2, 2]
    return out - 0.5
