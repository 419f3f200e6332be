"""The one schema of AffectNet+ rows: every other module derives from this file.

``COLUMNS`` is the single source of truth. ``FEATURES`` (the ``datasets.Features``),
the dataset card's column table, the collator keys and the documentation are all
computed from it, so a column is added or changed here and nowhere else.

Facts about the release that are not certain (see ``shared/affectnetplus-format.md``)
are stated in each column's ``notes``; the reader carries released values unchanged
instead of guessing what they mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import datasets

__all__ = [
    "AFFECTNET_CITATION",
    "AFFECTNETPLUS_CITATION",
    "ColumnDoc",
    "COLUMNS",
    "EXPRESSIONS",
    "FACE_BOX",
    "FEATURES",
    "HOMEPAGE",
    "LICENSE_NOTE",
    "MANUAL_DOWNLOAD_INSTRUCTIONS",
    "NUM_LANDMARKS",
    "NUM_SOFT_CLASSES",
    "ORIGINAL_RELEASE_COLUMNS",
    "PUBLISHED_COUNTS",
    "RACES",
    "SUBSETS",
    "GENDERS",
    "POSE_ANGLES",
]

#: Expression names in AffectNet code order: ``EXPRESSIONS[code]`` is the name of code ``code``.
EXPRESSIONS: tuple[str, ...] = (
    "neutral",
    "happy",
    "sad",
    "surprise",
    "fear",
    "disgust",
    "anger",
    "contempt",
    "none",
    "uncertain",
    "non_face",
)

#: Data-complexity subsets in released code order (0 easy, 1 challenging, 2 difficult).
SUBSETS: tuple[str, ...] = ("easy", "challenging", "difficult")

#: The soft label scores codes 0..7 (neutral .. contempt).
NUM_SOFT_CLASSES = 8

#: iBUG-68 landmarks; ``landmark-68`` is released flat as 136 numbers.
NUM_LANDMARKS = 68

#: Gender probability keys, as released.
GENDERS: tuple[str, ...] = ("female", "male")

#: Race probability keys; the release spells the last two with spaces
#: (``middle eastern``, ``latino hispanic``), the schema with underscores.
RACES: tuple[str, ...] = ("asian", "indian", "black", "white", "middle_eastern", "latino_hispanic")

#: Members of the ``face_box`` struct (the AffectNet 2017 lists' ``face_x, face_y, face_width,
#: face_height``), in pixels of the full image.
FACE_BOX: tuple[str, ...] = ("x", "y", "width", "height")

#: Head-pose angles in the order the ``head_pose`` struct and the ``N x 3`` tensors use.
POSE_ANGLES: tuple[str, ...] = ("yaw", "pitch", "roll")

HOMEPAGE = "http://mohammadmahoor.com/pages/databases/affectnet/"

LICENSE_NOTE = (
    "AffectNet+ is distributed by its authors under a research licence that each lab signs "
    "itself. The licence does not allow redistribution: keep any copy you publish private and "
    "gated to people who hold their own AffectNet+ licence."
)

#: One constant for the manual download instructions, used by the builder's error and the card.
MANUAL_DOWNLOAD_INSTRUCTIONS = """\
AffectNet+ cannot be downloaded automatically: it is licensed to each lab by its authors.
1. Request access at http://mohammadmahoor.com/pages/databases/affectnet/ (AffectNet+,
   arXiv 2410.22506) and sign the licence agreement.
2. Download the zip parts you are sent and extract them into one folder, e.g. /data/AffectNet+.
   It should contain some or all of:
       human_annotated/train_set/{images,annotations}/
       human_annotated/validation_set/{images,annotations}/
       no_human_annotated/{images,annotations}/
   (folder names are matched case-insensitively; spaces, '-' and '_' are treated alike).
3. Point this package at that folder:
       affectnetplus verify /data/AffectNet+
       affectnetplus export /data/AffectNet+ ./affectnet_plus
   or, in Python, AffectNetPlus(data_dir="/data/AffectNet+").download_and_prepare().
"""

AFFECTNETPLUS_CITATION = """\
@article{fard2024affectnetplus,
  title   = {AffectNet+: A Database for Enhancing Facial Expression Recognition with Soft-Labels},
  author  = {Fard, Ali Pourramezan and Hosseini, Mohammad Mehdi and Sweeny, Timothy D. and Mahoor, Mohammad H.},
  journal = {arXiv preprint arXiv:2410.22506},
  year    = {2024}
}"""

AFFECTNET_CITATION = """\
@article{mollahosseini2017affectnet,
  title   = {AffectNet: A Database for Facial Expression, Valence, and Arousal Computing in the Wild},
  author  = {Mollahosseini, Ali and Hasani, Behzad and Mahoor, Mohammad H.},
  journal = {IEEE Transactions on Affective Computing},
  volume  = {10},
  number  = {1},
  pages   = {18--31},
  year    = {2019}
}"""

#: Published per-class image counts of ``human_annotated`` (format page, confirmed).
#: ``PUBLISHED_COUNTS[part][expression] -> count``.
PUBLISHED_COUNTS: dict[str, dict[str, int]] = {
    "train": dict(
        zip(
            EXPRESSIONS,
            (74_874, 134_415, 25_459, 14_090, 6_378, 3_803, 24_882, 3_750, 33_088, 11_645, 82_415),
            strict=False,
        )
    ),
    "validation": {name: 500 for name in EXPRESSIONS},
    "unlabeled": {},  # 539,607 records in all; no per-class counts (no human label)
}

#: Published record totals per part.
PUBLISHED_TOTALS: dict[str, int] = {"train": 414_799, "validation": 5_500, "unlabeled": 539_607}


@dataclass(frozen=True)
class ColumnDoc:
    """One column: its feature and what a reader cannot see in the feature itself."""

    name: str
    feature: object
    shape: str
    dtype: str
    units: str
    description: str
    source: str
    nullable: bool = False


def _f32() -> datasets.Value:
    return datasets.Value("float32")


COLUMNS: tuple[ColumnDoc, ...] = (
    ColumnDoc(
        "image",
        datasets.Image(),
        "224 x 224 x 3 (as released)",
        "JPEG bytes",
        "RGB pixels",
        "The face crop, stored as the exact JPEG bytes of the release (never re-encoded).",
        "images/<id>.jpg",
    ),
    ColumnDoc(
        "image_id",
        datasets.Value("string"),
        "scalar",
        "string",
        "-",
        "File stem shared by the image and its annotation (an integer in the release, kept as text).",
        "file name",
    ),
    ColumnDoc(
        "human_label",
        datasets.ClassLabel(names=list(EXPRESSIONS)),
        "scalar",
        "int64 class",
        "AffectNet expression code 0..10",
        "Expression chosen by the human annotator; null in the unlabeled part.",
        "human-label",
        nullable=True,
    ),
    ColumnDoc(
        "soft_label",
        datasets.Sequence(_f32(), length=NUM_SOFT_CLASSES),
        "8",
        "float32",
        "per-class score, index = code 0..7",
        "Per-class scores for neutral..contempt, as released. They do not sum to 1 (seen 1.4..2.2). Null in the original AffectNet releases.",
        "soft-label",
        nullable=True,
    ),
    ColumnDoc(
        "subset",
        datasets.ClassLabel(names=list(SUBSETS)),
        "scalar",
        "int64 class",
        "0 easy, 1 challenging, 2 difficult",
        "Data-complexity subset as released (never recomputed); null where a file has none.",
        "subset",
        nullable=True,
    ),
    ColumnDoc(
        "valence",
        _f32(),
        "scalar",
        "float32",
        "[-1, 1]",
        "Valence. AffectNet's -2 'not applicable' sentinel is stored as null.",
        "meta-data.valence",
        nullable=True,
    ),
    ColumnDoc(
        "arousal",
        _f32(),
        "scalar",
        "float32",
        "[-1, 1]",
        "Arousal. AffectNet's -2 'not applicable' sentinel is stored as null.",
        "meta-data.arousal",
        nullable=True,
    ),
    ColumnDoc(
        "age",
        _f32(),
        "scalar",
        "float32",
        "years (estimated)",
        "Estimated age; whole numbers in the release, stored as float so fractions survive.",
        "meta-data.age",
        nullable=True,
    ),
    ColumnDoc(
        "gender",
        {name: _f32() for name in GENDERS},
        "struct(female, male)",
        "float32",
        "probability, sums to 1",
        "Estimated gender probabilities.",
        "meta-data.gender",
        nullable=True,
    ),
    ColumnDoc(
        "race",
        {name: _f32() for name in RACES},
        "struct(" + ", ".join(RACES) + ")",
        "float32",
        "probability",
        "Estimated race probabilities (release keys 'middle eastern', 'latino hispanic' become underscores).",
        "meta-data.race",
        nullable=True,
    ),
    ColumnDoc(
        "head_pose",
        {name: _f32() for name in POSE_ANGLES},
        "struct(yaw, pitch, roll)",
        "float32",
        "as released; units unconfirmed (values within +-0.35, likely radians)",
        "Estimated head pose; null where the file has none.",
        "meta-data.pose",
        nullable=True,
    ),
    ColumnDoc(
        "landmarks",
        datasets.Array2D(shape=(NUM_LANDMARKS, 2), dtype="float32"),
        "68 x 2",
        "float32",
        "(x, y) pixels in the 224 x 224 crop, origin top-left, iBUG-68 point order",
        "68 facial landmarks, reshaped from the flat [x0, y0, x1, y1, ...] release list.",
        "meta-data.landmark-68",
        nullable=True,
    ),
    ColumnDoc(
        "landmarks_29",
        datasets.Sequence(_f32()),
        "variable (58 expected)",
        "float32",
        "as released (likely 29 COFW-style points, flat x, y)",
        "The extra landmark list, unchanged; null where absent.",
        "meta-data.landmark-29",
        nullable=True,
    ),
    ColumnDoc(
        "face_box",
        {name: datasets.Value("int32") for name in FACE_BOX},
        "struct(x, y, width, height)",
        "int32",
        "pixels of the full image, origin top-left",
        "The face's box in the full image (crop [x, y, x + width, y + height]); null in releases of face crops.",
        "AffectNet 2017 lists: face_x, face_y, face_width, face_height",
        nullable=True,
    ),
    ColumnDoc(
        "auto_label",
        datasets.ClassLabel(names=list(EXPRESSIONS)),
        "scalar",
        "int64 class",
        "AffectNet expression code 0..10",
        "Expression predicted by a model (AffectNet 2017's automatically annotated list); null elsewhere.",
        "AffectNet 2017 automatically_annotated.csv: expression",
        nullable=True,
    ),
)

#: The whole schema as ``datasets.Features``; column order is the order of ``COLUMNS``.
FEATURES = datasets.Features({column.name: column.feature for column in COLUMNS})

COLUMN_NAMES: tuple[str, ...] = tuple(FEATURES)

#: Columns only the original AffectNet releases fill (null in every AffectNet+ row). They came
#: after the first exports, so rows or exports without them are read as if they were null.
ORIGINAL_RELEASE_COLUMNS: tuple[str, ...] = ("face_box", "auto_label")
