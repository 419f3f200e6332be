"""Mixup and CutMix for AffectNet+ batches: images, soft labels and valence/arousal with one lambda.

Both pair each row ``i`` with row ``index[i]`` of a random permutation and draw one
``lam ~ Beta(alpha, alpha)`` per batch. Then, with the **same** ``lam``:

* ``soft_label = lam * soft_label + (1 - lam) * soft_label[index]``,
* ``valence`` / ``arousal`` likewise; a mixed value is ``NaN`` (and its ``*_valid`` mask
  false) when either side is null,
* the image: a blend (mixup) or a pasted box from the partner (CutMix; ``lam`` is then
  recomputed as the exact fraction of pixels kept from row ``i``).

The soft label is mixed as given: mix distributions (``to_distribution`` or a
renormalising view first) to get a distribution. ``human_label`` cannot be mixed; the
result carries ``mix_index`` (``N`` int64) and ``mix_lambda`` so a hard-label loss can be
``lam * CE(y) + (1 - lam) * CE(y[index])``. Other annotations (landmarks, pose, ...) are
those of row ``i``. Returns ``(batch, lam)`` with ``lam`` a Python float; the input batch
is not modified. Draws come from ``generator`` (``torch.Generator``) for reproducibility.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["cutmix", "mix_pairs", "mixup"]

_MIXED = ("soft_label", "valence", "arousal")


def _draw(n: int, alpha: float, generator: torch.Generator | None, device) -> tuple[torch.Tensor, float]:
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    gen_device = generator.device if generator is not None else "cpu"
    index = torch.randperm(n, generator=generator, device=gen_device).to(device)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=gen_device).item())
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    return index, lam


def mix_pairs(batch: dict, index: torch.Tensor, lam: float) -> dict:
    """Mix the soft label and valence/arousal of rows with rows ``index`` by ``lam`` (no image)."""
    out = dict(batch)
    for key in _MIXED:
        if key in batch:
            value = batch[key]
            out[key] = lam * value + (1.0 - lam) * value.index_select(0, index)
            if f"{key}_valid" in batch:
                valid = batch[f"{key}_valid"]
                out[f"{key}_valid"] = valid & valid.index_select(0, index)
    out["mix_index"] = index
    out["mix_lambda"] = torch.tensor(lam)
    return out


def mixup(batch: dict, alpha: float = 0.2, *, generator: torch.Generator | None = None) -> tuple[dict, float]:
    """Blend images ``lam * x + (1 - lam) * x[index]`` (floating images only) and mix labels."""
    image = batch["image"]
    if not image.is_floating_point():
        raise TypeError("mixup needs float images: run it after DevicePrefetcher (which converts and normalises)")
    index, lam = _draw(image.shape[0], alpha, generator, image.device)
    out = mix_pairs(batch, index, lam)
    out["image"] = image * lam + image.index_select(0, index) * (1.0 - lam)
    return out, lam


def cutmix(batch: dict, alpha: float = 1.0, *, generator: torch.Generator | None = None) -> tuple[dict, float]:
    """Paste a box of each partner image ``x[index]``; the box has area ``(1 - lam)`` of the
    image (clipped at the borders, after which ``lam`` is recomputed exactly)."""
    image = batch["image"]
    n, _, h, w = image.shape
    index, lam = _draw(n, alpha, generator, image.device)
    gen_device = generator.device if generator is not None else "cpu"
    centre = torch.rand(2, generator=generator, device=gen_device).tolist()
    cut = math.sqrt(1.0 - lam)
    ch, cw = int(round(h * cut)), int(round(w * cut))
    cy, cx = int(centre[0] * h), int(centre[1] * w)
    y0, y1 = max(cy - ch // 2, 0), min(cy + ch - ch // 2, h)
    x0, x1 = max(cx - cw // 2, 0), min(cx + cw - cw // 2, w)
    lam = 1.0 - (y1 - y0) * (x1 - x0) / (h * w)
    out = mix_pairs(batch, index, lam)
    mixed = image.clone()
    mixed[:, :, y0:y1, x0:x1] = image.index_select(0, index)[:, :, y0:y1, x0:x1]
    out["image"] = mixed
    out["cutmix_box"] = (y0, y1, x0, x1)
    return out, lam
