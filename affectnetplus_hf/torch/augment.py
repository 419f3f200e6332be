"""Batched augmentation on the device: flip, random resized crop with a small rotation, random erasing.

:class:`BatchAugment` works on a whole batch at once (one ``grid_sample`` for all crops,
masks for all erasures): no Python loop over images, so it runs where the batch is (GPU
when there is one). It moves the annotations with the pixels, through
:mod:`~affectnetplus_hf.torch.geometry`:

* horizontal flip (probability ``flip_p`` per image): pixels ``x -> W - 1 - x``,
  ``landmarks`` mirrored and re-ordered with the iBUG-68 permutation, ``head_pose`` yaw
  and roll negated;
* random resized crop + rotation (when ``crop_scale``/``degrees``/``translate``/
  ``output_size`` ask for one): one affine per image, bilinear, ``landmarks``
  transformed by the same affine (they may fall outside the output). Head pose is left
  as is, except with ``rotate_roll=True``, which adds the in-picture rotation to roll
  (right only if roll is an image-frame angle in radians, as in the synthetic sample;
  the release's convention is unconfirmed);
* random erasing (probability ``erase_p``): a rectangle of ``erase_scale`` of the area and
  aspect in ``erase_ratio`` set to ``erase_value`` (``0.0``: the mean colour once
  normalised, ``"random"``: standard normal noise). Annotations unchanged.

Images must be floating point ``N x 3 x H x W``. Randomness comes from ``generator`` if
given, else from a ``torch.Generator`` seeded with ``seed`` (one per device, created on
first use), else from torch's global generator. Same seed, same device, same batches ->
same output.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..core.schema import POSE_ANGLES
from . import geometry

__all__ = ["BatchAugment"]

_ROLL = POSE_ANGLES.index("roll")


def _pair(value, name: str, low: float = 0.0) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (min, max) pair, got {value!r}") from None
    if not low <= a <= b:
        raise ValueError(f"{name} must satisfy {low} <= min <= max, got {value!r}")
    return a, b


def _probability(value, name: str) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return value


class BatchAugment:
    """Seeded batched augmentation of an AffectNet+ batch dict (see module docstring)."""

    def __init__(
        self,
        *,
        flip_p: float = 0.5,
        crop_scale: tuple[float, float] = (0.8, 1.0),
        crop_ratio: tuple[float, float] = (0.9, 1.1),
        degrees: float = 10.0,
        translate: float = 0.0,
        output_size: int | tuple[int, int] | None = None,
        erase_p: float = 0.25,
        erase_scale: tuple[float, float] = (0.02, 0.15),
        erase_ratio: tuple[float, float] = (0.3, 3.3),
        erase_value: float | str = 0.0,
        padding_mode: str = "zeros",
        rotate_roll: bool = False,
        seed: int | None = None,
    ):
        self.flip_p = _probability(flip_p, "flip_p")
        self.crop_scale = _pair(crop_scale, "crop_scale")
        if self.crop_scale[1] > 1.0 or self.crop_scale[0] <= 0:
            raise ValueError(f"crop_scale must lie in (0, 1], got {crop_scale!r}")
        self.crop_ratio = _pair(crop_ratio, "crop_ratio")
        if self.crop_ratio[0] <= 0:
            raise ValueError(f"crop_ratio must be positive, got {crop_ratio!r}")
        if not 0 <= degrees <= 180:
            raise ValueError(f"degrees must be in [0, 180], got {degrees}")
        self.degrees = float(degrees)
        if not 0 <= translate <= 0.5:
            raise ValueError(f"translate must be in [0, 0.5] (a fraction of the crop size), got {translate}")
        self.translate = float(translate)
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        self.output_size = None if output_size is None else (int(output_size[0]), int(output_size[1]))
        self.erase_p = _probability(erase_p, "erase_p")
        self.erase_scale = _pair(erase_scale, "erase_scale")
        self.erase_ratio = _pair(erase_ratio, "erase_ratio")
        if self.erase_ratio[0] <= 0:
            raise ValueError(f"erase_ratio must be positive, got {erase_ratio!r}")
        if not (erase_value == "random" or isinstance(erase_value, (int, float))):
            raise ValueError(f"erase_value must be a number or 'random', got {erase_value!r}")
        self.erase_value = erase_value
        if padding_mode not in ("zeros", "border", "reflection"):
            raise ValueError(f"padding_mode must be 'zeros', 'border' or 'reflection', got {padding_mode!r}")
        self.padding_mode = padding_mode
        self.rotate_roll = bool(rotate_roll)
        self.seed = seed
        self._generators: dict[str, torch.Generator] = {}

    def __repr__(self) -> str:
        fields = (
            "flip_p",
            "crop_scale",
            "crop_ratio",
            "degrees",
            "translate",
            "output_size",
            "erase_p",
            "erase_scale",
            "erase_value",
            "seed",
        )
        return "BatchAugment(" + ", ".join(f"{f}={getattr(self, f)!r}" for f in fields) + ")"

    def generator(self, device: torch.device) -> torch.Generator | None:
        """This augmenter's generator for ``device`` (``None`` when unseeded)."""
        if self.seed is None:
            return None
        key = str(device)
        if key not in self._generators:
            self._generators[key] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[key]

    def _affine_wanted(self, in_size: tuple[int, int]) -> bool:
        return (
            self.crop_scale != (1.0, 1.0)
            or self.crop_ratio != (1.0, 1.0)
            or self.degrees > 0
            or self.translate > 0
            or (self.output_size is not None and self.output_size != in_size)
        )

    def __call__(self, batch: dict, generator: torch.Generator | None = None) -> dict:
        image = batch["image"]
        if not image.is_floating_point() or image.dim() != 4:
            raise TypeError(f"BatchAugment needs float images N x C x H x W, got {image.dtype} {tuple(image.shape)}")
        device = image.device
        g = generator if generator is not None else self.generator(device)
        n, _, h, w = image.shape
        out = dict(batch)
        if n == 0:
            return out

        if self.flip_p > 0:
            flip = torch.rand(n, generator=g, device=device) < self.flip_p
            out["image"] = torch.where(flip[:, None, None, None], image.flip(-1), image)
            if "landmarks" in out:
                lm = out["landmarks"]
                out["landmarks"] = torch.where(flip[:, None, None], geometry.flip_landmarks(lm, w), lm)
            if "head_pose" in out:
                pose = out["head_pose"]
                out["head_pose"] = torch.where(flip[:, None], geometry.flip_head_pose(pose), pose)
            out["flipped"] = flip

        if self._affine_wanted((h, w)):
            oh, ow = self.output_size or (h, w)
            matrices, turn = geometry.random_affine_matrices(
                n,
                (h, w),
                (oh, ow),
                scale=self.crop_scale,
                ratio=self.crop_ratio,
                degrees=self.degrees,
                translate=self.translate,
                generator=g,
                device=device,
            )
            theta = geometry.affine_theta(matrices, (h, w), (oh, ow)).to(out["image"].dtype)
            grid = F.affine_grid(theta, [n, image.shape[1], oh, ow], align_corners=False)
            out["image"] = F.grid_sample(
                out["image"], grid, mode="bilinear", padding_mode=self.padding_mode, align_corners=False
            )
            if "landmarks" in out:
                out["landmarks"] = geometry.transform_points(out["landmarks"], matrices).to(batch["landmarks"].dtype)
            if self.rotate_roll and "head_pose" in out:
                pose = out["head_pose"].clone()
                pose[:, _ROLL] = pose[:, _ROLL] + turn.to(pose.dtype)
                out["head_pose"] = pose
            h, w = oh, ow

        if self.erase_p > 0:
            out["image"] = self._erase(out["image"], g)
        return out

    def _erase(self, image: torch.Tensor, g) -> torch.Tensor:
        n, c, h, w = image.shape
        device = image.device

        def uniform(low, high):
            return low + (high - low) * torch.rand(n, generator=g, device=device)

        apply = torch.rand(n, generator=g, device=device) < self.erase_p
        area = uniform(*self.erase_scale) * (h * w)
        aspect = torch.exp(uniform(math.log(self.erase_ratio[0]), math.log(self.erase_ratio[1])))
        eh = torch.sqrt(area * aspect).clamp(1, h)
        ew = torch.sqrt(area / aspect).clamp(1, w)
        y0 = uniform(0.0, 1.0) * (h - eh)
        x0 = uniform(0.0, 1.0) * (w - ew)
        ys = torch.arange(h, device=device, dtype=eh.dtype)[None, :, None]
        xs = torch.arange(w, device=device, dtype=ew.dtype)[None, None, :]
        inside = (
            (ys >= y0[:, None, None].floor())
            & (ys < (y0 + eh)[:, None, None].floor())
            & (xs >= x0[:, None, None].floor())
            & (xs < (x0 + ew)[:, None, None].floor())
            & apply[:, None, None]
        )[:, None]
        if self.erase_value == "random":
            fill = torch.randn(image.shape, generator=g, device=device, dtype=image.dtype)
        else:
            fill = torch.full((), float(self.erase_value), device=device, dtype=image.dtype)
        return torch.where(inside, fill, image)
