"""Every closed set of string options the package takes, written once, and the one check of them.

Each choice is a ``Literal`` type (for the annotations users' type checkers read) whose
values :func:`check_choice` derives with ``typing.get_args``, so the accepted values and
the error message can never disagree with the annotation.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

__all__ = [
    "CheckImages",
    "Crop",
    "CurriculumBy",
    "Gating",
    "MemoryFormat",
    "OnBad",
    "Output",
    "check_choice",
    "choices_of",
]

OnBad = Literal["error", "skip"]
"""What to do with a record (export, builder) or an image (loader) that cannot be used:
stop with an error naming it, or leave it out and report it."""

CheckImages = Literal["markers", "decode"]
"""How hard export and verify check each JPEG: its start/end markers only, or a full decode."""

Gating = Literal["auto", "manual"]
"""How a pushed repo grants access: the Hub's automatic approval, or the owner's by hand."""

MemoryFormat = Literal["channels_last", "contiguous"]
"""The loader's image layout: NHWC in memory (``channels_last``) or NCHW (``contiguous``)."""

Output = Literal["pixels", "jpeg"]
"""What the collator puts in ``batch["image"]``: decoded uint8 pixels, or the JPEG bytes for GPU decoding."""

Crop = Literal["face"]
"""How the loader cuts each image (``None``, the default, takes it as stored): ``"face"`` cuts a
full image (AffectNet 2017) to its ``face_box``."""

CurriculumBy = Literal["epoch", "step"]
"""What a loader curriculum's stages start at: an epoch number, or a loader step counted over the whole run."""


def choices_of(kind: Any) -> tuple[str, ...]:
    """The values of a ``Literal`` choice, in the order written."""
    return tuple(get_args(kind))


def check_choice(name: str, value: object, kind: Any) -> None:
    """Raise ``ValueError`` naming the option, the accepted values and the value received."""
    allowed = choices_of(kind)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
