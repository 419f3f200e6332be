"""What each release kind is, as data: its name, parts, published counts, licence and the
meaning of each column in it.

Three releases share one schema (:data:`~affectnetplus_hf.core.schema.FEATURES`): AffectNet+,
AffectNet 2017 (the CSV lists and full images) and the 8-label release (224 x 224 crops and
``.npy`` annotations). A column a release lacks is null in its rows; :attr:`ReleaseInfo.column_notes`
says, per release, where each column comes from, and the card shows it. Facts about the
original releases, with how sure they are: ``shared/affectnet-original-format.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .configs import AFFECTNET_8LABELS, AFFECTNET_2017, AFFECTNET_PLUS, RELEASE_KINDS, RELEASE_PARTS
from .schema import (
    AFFECTNET_CITATION,
    AFFECTNETPLUS_CITATION,
    EXPRESSIONS,
    LICENSE_NOTE,
    PUBLISHED_COUNTS,
    PUBLISHED_TOTALS,
)

__all__ = ["RELEASES", "ReleaseInfo", "release_info"]


@dataclass(frozen=True)
class ReleaseInfo:
    """One release kind: what a user and the card are told about it."""

    kind: str
    title: str
    #: one paragraph for the card: what the release holds
    description: str
    #: where the release's parts are on disk, as ``verify`` and the not-found message say it
    layout: str
    parts: tuple[str, ...]
    published_totals: Mapping[str, int]
    #: part -> expression name -> published count (absent where none is published)
    published_counts: Mapping[str, Mapping[str, int]]
    license_note: str
    citation: str
    #: column -> what it holds in this release; a column not named here is null in every row
    #: (AffectNet+ names none: its column docs in the schema say it all)
    column_notes: Mapping[str, str] = field(default_factory=dict)
    #: the ``image`` column's shape and encoding in this release, as the card says them
    image_shape: str = "224 x 224 x 3 (as released)"
    image_dtype: str = "JPEG bytes"


_NOT_REDISTRIBUTABLE = (
    "{title} is distributed by the AffectNet authors under a research licence that each lab signs itself. "
    "The licence does not allow redistribution: keep any copy you publish private and gated to people who "
    "hold their own AffectNet licence."
)

RELEASES: Mapping[str, ReleaseInfo] = MappingProxyType(
    {
        AFFECTNET_PLUS: ReleaseInfo(
            kind=AFFECTNET_PLUS,
            title="AffectNet+",
            description="AffectNet+ (arXiv 2410.22506): face crops with a human label, a soft label, a subset, valence/arousal, landmarks, head pose, age, gender and race estimates.",
            layout="human_annotated/train_set, human_annotated/validation_set and no_human_annotated, each with images/ and annotations/",
            parts=RELEASE_PARTS[AFFECTNET_PLUS],
            published_totals=PUBLISHED_TOTALS,
            published_counts=PUBLISHED_COUNTS,
            license_note=LICENSE_NOTE,
            citation=AFFECTNETPLUS_CITATION + "\n\n" + AFFECTNET_CITATION,
        ),
        AFFECTNET_2017: ReleaseInfo(
            kind=AFFECTNET_2017,
            title="AffectNet 2017",
            description=(
                "AffectNet (Mollahosseini, Hasani, Mahoor; IEEE TAC 2017) as first released: full, uncropped "
                "images of many sizes (JPEG or PNG, some grayscale) listed in CSV files with a face box, 68 "
                "landmarks, an expression code (0..10) and valence/arousal. The manually annotated lists are "
                "config `all`; the automatically annotated list, whose expression is a model's prediction, is "
                "config `automatic`."
            ),
            layout=(
                "Manually_Annotated_file_lists/training.csv and validation.csv with Manually_Annotated_Images/, "
                "Automatically_Annotated_file_lists/automatically_annotated.csv with Automatically_Annotated_Images/"
            ),
            parts=RELEASE_PARTS[AFFECTNET_2017],
            published_totals=MappingProxyType({"train": 414_799, "validation": 5_500}),
            published_counts=MappingProxyType(
                {"train": PUBLISHED_COUNTS["train"], "validation": PUBLISHED_COUNTS["validation"]}
            ),
            license_note=_NOT_REDISTRIBUTABLE.format(title="AffectNet"),
            citation=AFFECTNET_CITATION,
            image_shape="H x W x 3 or H x W (as released: many sizes, some grayscale)",
            image_dtype="JPEG or PNG bytes",
            column_notes=MappingProxyType(
                {
                    "image": "The full image, its file's bytes unchanged (JPEG or PNG; many sizes; some grayscale).",
                    "image_id": "`subDirectory_filePath` as the list writes it (`689/737db2...ca.jpg`).",
                    "human_label": "`expression` of training.csv / validation.csv (codes 0..10); null in `automatic`.",
                    "valence": "`valence`; -2 (Uncertain, Non-Face) stored as null.",
                    "arousal": "`arousal`; -2 (Uncertain, Non-Face) stored as null.",
                    "landmarks": "`facial_landmarks` (136 numbers joined by `;`) as 68 (x, y) in full-image pixels.",
                    "face_box": "`face_x`, `face_y`, `face_width`, `face_height` in full-image pixels.",
                    "auto_label": "`expression` of automatically_annotated.csv, a model's prediction; null in `all`.",
                }
            ),
        ),
        AFFECTNET_8LABELS: ReleaseInfo(
            kind=AFFECTNET_8LABELS,
            title="AffectNet 8-label",
            description=(
                "The widely circulated reduced AffectNet release: 224 x 224 face crops with one `.npy` file per "
                "field (expression 0..7, valence, arousal, 68 landmarks in crop pixels). Its train set appears to "
                "be training.csv restricted to codes 0..7; no public mapping of its numeric names to AffectNet's "
                "file names exists."
            ),
            layout="train_set/ and val_set/, each with images/<n>.jpg and annotations/<n>_exp.npy (and _val, _aro, _lnd)",
            parts=RELEASE_PARTS[AFFECTNET_8LABELS],
            published_totals=MappingProxyType({"train": 287_651, "validation": 3_999}),
            published_counts=MappingProxyType(
                {
                    # train: training.csv's counts of codes 0..7 (they sum to 287,651) [inferred]
                    "train": MappingProxyType({name: PUBLISHED_COUNTS["train"][name] for name in EXPRESSIONS[:8]}),
                    "validation": MappingProxyType(
                        {name: 499 if name == "contempt" else 500 for name in EXPRESSIONS[:8]}
                    ),
                }
            ),
            license_note=_NOT_REDISTRIBUTABLE.format(
                title="The 8-label AffectNet release (a reduced form of AffectNet)"
            ),
            citation=AFFECTNET_CITATION,
            column_notes=MappingProxyType(
                {
                    "image": "The 224 x 224 face crop `images/<n>.jpg`, its bytes unchanged.",
                    "image_id": "`<n>`, the file stem shared by the image and its `.npy` files.",
                    "human_label": "`<n>_exp.npy` (codes 0..7 in this release).",
                    "valence": "`<n>_val.npy`; -2 stored as null.",
                    "arousal": "`<n>_aro.npy`; -2 stored as null.",
                    "landmarks": "`<n>_lnd.npy` (136 numbers) as 68 (x, y) in the crop's pixels.",
                }
            ),
        ),
    }
)


def release_info(kind: str) -> ReleaseInfo:
    """The :class:`ReleaseInfo` of ``kind``; an unknown kind raises ``ValueError`` listing the valid ones."""
    try:
        return RELEASES[kind]
    except KeyError:
        raise ValueError(f"unknown release kind {kind!r}; valid: {list(RELEASE_KINDS)}") from None
