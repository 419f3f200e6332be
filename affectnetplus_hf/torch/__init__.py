"""Feed AffectNet+ to PyTorch fast (install the ``torch`` extra: ``pip install affectnetplus-hf[torch]``).

``import affectnetplus_hf`` never imports this package; importing it imports torch.

Worker side (CPU, in DataLoader workers)
    :func:`make_loader`           resumable DataLoader over a ``datasets.Dataset`` / ``IterableDataset``
                                  (``torchdata`` ``StatefulDataLoader``; :class:`EpochPlan`, :class:`Curriculum`)
    :class:`JpegCollator`         JPEG bytes -> uint8 ``N x 3 x H x W`` + annotation tensors
    :mod:`.decoders`              simplejpeg / PyTurboJPEG / Pillow, fastest installed
Device side
    :class:`DevicePrefetcher`     side-stream copies, float + normalise, batched augmentation
    :class:`BatchAugment`         flip (iBUG-68 aware), resized crop + rotation, erasing
    :mod:`.geometry`              the landmark/pose maps, written once
Training tools
    :func:`mixup`, :func:`cutmix` soft label and valence/arousal mixed with the same lambda
    :func:`soft_cross_entropy`, :func:`soft_kl_div`   explicit ``normalize=``
    :data:`SEVEN_CLASS`, :data:`EIGHT_CLASS`, :func:`view_batch`, :func:`view_dataset`
    :func:`class_balanced_weights`, :func:`balanced_sampler`
    :mod:`.metrics`               accuracy, mean class accuracy, macro-F1 per subset/group, KL/JS, RMSE, CCC
    :func:`evaluate_protocol`     AffectNet-7 / AffectNet-8 validation protocols (:mod:`.protocols`)
    :class:`MultiTaskLoss`        every annotated head, masked where null; fixed / uncertainty / EMA balancing
Studies by demographic group
    :mod:`.groups`                race, gender, age band of a row (most probable estimate)
    :func:`resample`              a training subset with a target race / gender / age-band mix
    :func:`fairness_report`       per-group accuracy / macro-F1, demographic parity, equalized odds, bootstrap CIs

A typical loop::

    from datasets import load_dataset
    from affectnetplus_hf.torch import make_loader, DevicePrefetcher, BatchAugment, soft_cross_entropy

    train = load_dataset("./affectnet_plus", "all", split="train")  # a path, never a bare name
    loader = make_loader(train, 256, view=8, seed=0)
    prefetcher = DevicePrefetcher(loader, "auto", augment=BatchAugment(seed=0))  # CUDA if present
    model = model.to(prefetcher.device)
    for batch in prefetcher:
        loss = soft_cross_entropy(model(batch["image"]), batch["soft_label"], normalize="none")
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "affectnetplus_hf.torch needs PyTorch: install the extra with `pip install affectnetplus-hf[torch]` "
        "(or install torch itself first, e.g. the CPU build)"
    ) from exc

from .augment import BatchAugment
from .batch_plan import BATCH_KEYS, select_rows
from .collate import JpegCollator, SkippedRow
from .curriculum import Curriculum
from .decoders import DECODERS, MAX_IMAGE_PIXELS, available_decoders, get_decoder
from .device import IMAGENET_MEAN, IMAGENET_STD, DevicePrefetcher, resolve_device
from .epoch_plan import EpochPlan
from .fairness import fairness_report, format_fairness
from .geometry import IBUG68_FLIP_PERMUTATION, flip_head_pose, flip_landmarks
from .groups import AGE_BAND_EDGES, dataset_groups, group_index, group_names
from .loader import ResumableLoader, make_loader
from .losses import SoftTargetCrossEntropy, SoftTargetKLDiv, soft_cross_entropy, soft_kl_div, to_distribution
from .metrics import (
    accuracy,
    ccc,
    classification_report,
    group_report,
    js_divergence,
    kl_divergence,
    macro_f1,
    mean_class_accuracy,
    rmse,
)
from .mixup import cutmix, mixup
from .multitask import HEADS, MultiTaskLoss
from .protocols import EXPECTED_VALIDATION_COUNTS, PROTOCOLS, evaluate_protocol
from .resample import Resampled, resample
from .sampling import balanced_sampler, class_balanced_weights, class_counts
from .views import EIGHT_CLASS, SEVEN_CLASS, ClassView, class_view, view_batch, view_dataset

__all__ = [
    "AGE_BAND_EDGES",
    "BATCH_KEYS",
    "DECODERS",
    "EIGHT_CLASS",
    "EXPECTED_VALIDATION_COUNTS",
    "HEADS",
    "IBUG68_FLIP_PERMUTATION",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MAX_IMAGE_PIXELS",
    "PROTOCOLS",
    "SEVEN_CLASS",
    "SkippedRow",
    "BatchAugment",
    "ClassView",
    "Curriculum",
    "DevicePrefetcher",
    "EpochPlan",
    "JpegCollator",
    "MultiTaskLoss",
    "Resampled",
    "ResumableLoader",
    "SoftTargetCrossEntropy",
    "SoftTargetKLDiv",
    "accuracy",
    "available_decoders",
    "balanced_sampler",
    "ccc",
    "class_balanced_weights",
    "class_counts",
    "class_view",
    "classification_report",
    "cutmix",
    "dataset_groups",
    "evaluate_protocol",
    "fairness_report",
    "flip_head_pose",
    "flip_landmarks",
    "format_fairness",
    "get_decoder",
    "group_index",
    "group_names",
    "group_report",
    "js_divergence",
    "kl_divergence",
    "macro_f1",
    "make_loader",
    "mean_class_accuracy",
    "mixup",
    "resample",
    "resolve_device",
    "rmse",
    "select_rows",
    "soft_cross_entropy",
    "soft_kl_div",
    "to_distribution",
    "view_batch",
    "view_dataset",
]
