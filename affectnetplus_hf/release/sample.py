"""Write a small synthetic AffectNet+ release in the real layout and JSON format.

The images are drawn cartoon faces on flat colour with the word SYNTHETIC across them:
no real face is ever shipped or generated. Each face is drawn *from* its 68 landmarks,
so landmarks, head-pose roll and the picture agree (a flip test can check one against
the other). Values follow the format page: soft labels with 4 decimals that do not sum
to 1, subsets from the rank of the human label in the soft label, whole-number ages,
probabilities with 2 decimals, integer landmark pixels.

``faults`` plants the breakages a real download has, each into its own record, and the
returned :class:`SampleManifest` says which record got which, so tests can check that
every one is reported or carried as expected.
"""

from __future__ import annotations

import io
import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

from ..core.configs import PARTS, UNLABELED_PART
from ..core.landmarks import IBUG68_CONTOURS
from ..core.schema import EXPRESSIONS, NUM_SOFT_CLASSES

__all__ = ["FAULTS", "MAX_SAMPLE_RECORDS", "SampleManifest", "face_landmarks", "write_sample"]

#: Most records per part a sample writes (about 1.2 GB per part: a sample is for trying the
#: package, the real release has at most about 400,000 per part).
MAX_SAMPLE_RECORDS = 100_000

#: Fault name -> (what is planted, whether the record must be reported as bad).
FAULTS: dict[str, tuple[str, bool]] = {
    "truncated_jpeg": ("the JPEG is cut to half its length", True),
    "empty_image": ("the JPEG file has 0 bytes", True),
    "missing_image": ("the image file is deleted", True),
    "missing_annotation": ("the JSON file is deleted", True),
    "bad_json": ("the JSON is cut short", True),
    "short_soft_label": ("soft-label has 7 numbers", True),
    "bom_crlf": ("the JSON is saved with a UTF-8 BOM and CRLF line ends", False),
    "null_numbers": ("age, valence and one gender probability are null", False),
    "int_for_float": ("valence, arousal and soft-label entries are written as ints", False),
    "missing_pose": ("meta-data has no pose", False),
    "missing_landmark29": ("meta-data has no landmark-29", False),
    "sentinel": ("valence and arousal are -2 (AffectNet's 'not applicable')", False),
    "string_numbers": ("age and valence are numeric strings", False),
    "non_finite": ("valence is Infinity, arousal -Infinity, age 1e400 (stored null, noted)", False),
    "huge_int": ("a soft-label entry is 1 followed by 400 zeros (too large for a float)", True),
    "deep_nesting": ("meta-data.age is a list nested 5,000 levels deep", True),
    "duplicate_key": ('an empty "Meta Data": {} follows meta-data (two spellings of one key)', False),
    "out_of_range": ("valence 5.0, age -40, gender probabilities -3 and 9 (kept, noted)", False),
    "partial_struct": ("gender has no male key and race is {}", False),
    "jpeg_padding": ("the JPEG has bytes after its end-of-image marker (decodes fine)", False),
    "png_as_jpg": ("the image is a PNG saved as .jpg", True),
}

# JSON text that json.dumps cannot write: placeholder string -> raw text, for the faults above.
_RAW_JSON = {
    '"__inf__"': "Infinity",
    '"__-inf__"': "-Infinity",
    '"__1e400__"': "1e400",
    '"__huge__"': "1" + "0" * 400,
    '"__deep__"': "[" * 5000 + "]" * 5000,
}

_RACE_KEYS = ("asian", "indian", "black", "white", "middle eastern", "latino hispanic")
_LAYOUTS = {
    "release": ("human_annotated", "train_set", "validation_set", "no_human_annotated", "images", "annotations"),
    "pdf": ("Human Annotated", "Train Set", "Validation Set", "No Human Annotated", "Images", "Annotations"),
}


@dataclass
class SampleManifest:
    """What :func:`write_sample` wrote: per part, the ids and the planted faults."""

    root: Path
    ids: dict[str, list[str]] = field(default_factory=dict)
    faults: dict[tuple[str, str], str] = field(default_factory=dict)  # (part, image_id) -> fault

    def bad_ids(self, part: str) -> set[str]:
        return {i for (p, i), fault in self.faults.items() if p == part and FAULTS[fault][1]}

    def good_ids(self, part: str) -> list[str]:
        bad = self.bad_ids(part)
        return [i for i in self.ids.get(part, []) if i not in bad]


def face_landmarks(rng: random.Random, expression: int) -> tuple[list[tuple[float, float]], float]:
    """68 iBUG-ordered points of a cartoon face in a 224 x 224 crop, and its roll in radians.

    Point 0 is the jaw end on the image's left (the subject's right), as in iBUG-68.
    """
    cx, cy = 112 + rng.uniform(-6, 6), 104 + rng.uniform(-6, 6)
    rx, ry = 66 + rng.uniform(-5, 5), 82 + rng.uniform(-5, 5)
    pts: list[tuple[float, float]] = []
    for i in range(17):  # jaw 0..16, left temple -> chin -> right temple
        t = math.pi - i * math.pi / 16
        pts.append((cx + rx * math.cos(t), cy + 10 + ry * 0.9 * math.sin(t)))
    brow_lift = {3: -6, 4: -4, 2: 3, 6: 4}.get(expression, 0)
    for side in (-1, 1):  # brows 17..21 (image left, outer->inner), 22..26 (inner->outer)
        xs = (
            [cx - 52, cx - 42, cx - 32, cx - 22, cx - 12] if side < 0 else [cx + 12, cx + 22, cx + 32, cx + 42, cx + 52]
        )
        for j, x in enumerate(xs):
            arch = 4 * math.sin(math.pi * (j + 0.5) / 5)
            pts.append((x, cy - 42 - arch + brow_lift))
    for j in range(4):  # nose bridge 27..30
        pts.append((cx, cy - 30 + j * 11))
    for j in range(5):  # nose base 31..35
        pts.append((cx - 14 + j * 7, cy + 14 + (2 if j in (1, 3) else 0) + (3 if j == 2 else 0)))
    eye_open = 7 if expression in (3, 4) else 4
    for ex in (cx - 30, cx + 30):  # eyes 36..41 and 42..47: corner, 2 top, corner, 2 bottom
        pts += [
            (ex - 12, cy - 22),
            (ex - 5, cy - 22 - eye_open),
            (ex + 5, cy - 22 - eye_open),
            (ex + 12, cy - 22),
            (ex + 5, cy - 22 + eye_open * 0.7),
            (ex - 5, cy - 22 + eye_open * 0.7),
        ]
    smile = {1: 8, 2: -7, 6: -4, 5: -3, 7: 3}.get(expression, 0)
    gap = {3: 14, 4: 8, 1: 4}.get(expression, 0)
    my = cy + 38
    width = 26 if expression != 3 else 16
    top = [
        (cx - width, my - smile),
        (cx - 14, my - 5),
        (cx - 5, my - 7),
        (cx, my - 6),
        (cx + 5, my - 7),
        (cx + 14, my - 5),
        (cx + width, my - smile),
    ]
    pts += top  # 48..54
    pts += [
        (cx + 14, my + 7 + gap),
        (cx + 5, my + 9 + gap),
        (cx, my + 9 + gap),
        (cx - 5, my + 9 + gap),
        (cx - 14, my + 7 + gap),
    ]  # 55..59
    pts += [(cx - width + 5, my - smile * 0.8), (cx - 6, my - 2), (cx, my - 2), (cx + 6, my - 2)]  # 60..63
    pts += [(cx + width - 5, my - smile * 0.8), (cx + 6, my + gap), (cx, my + gap), (cx - 6, my + gap)]  # 64..67
    roll = rng.uniform(-0.2, 0.2)
    c, s = math.cos(roll), math.sin(roll)
    rotated = [(cx + (x - cx) * c - (y - cy) * s, cy + (x - cx) * s + (y - cy) * c) for x, y in pts]
    return rotated, roll


def _draw(points: list[tuple[float, float]], rng: random.Random, label: str) -> bytes:
    from PIL import Image, ImageDraw

    bg = tuple(rng.randrange(40, 200) for _ in range(3))
    image = Image.new("RGB", (224, 224), bg)
    draw = ImageDraw.Draw(image)
    skin = tuple(min(255, 150 + rng.randrange(0, 90)) for _ in range(3))
    jaw_first, jaw_stop, _ = IBUG68_CONTOURS[0]
    jaw = points[jaw_first:jaw_stop]
    top = [(x, 2 * points[27][1] - y - 60) for x, y in reversed(jaw)]
    draw.polygon(jaw + top, fill=skin, outline=(40, 40, 40))
    ink = (30, 30, 30)
    for a, b, closed in IBUG68_CONTOURS[1:]:  # the jaw is the outline of the skin polygon above
        seq = points[a:b] + ([points[a]] if closed else [])
        draw.line(seq, fill=ink, width=2)
    draw.text((6, 4), "SYNTHETIC", fill=(255, 255, 255))
    draw.text((6, 206), label, fill=(255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()


def _soft_label(rng: random.Random, expression: int | None, subset: int | None) -> list[float]:
    scores = [rng.uniform(0.02, 0.35) for _ in range(NUM_SOFT_CLASSES)]
    if expression is not None and expression < NUM_SOFT_CLASSES and subset is not None:
        order = sorted(range(NUM_SOFT_CLASSES), key=lambda k: -scores[k])
        others = [k for k in order if k != expression]
        rank = {0: 0, 1: rng.choice((1, 2)), 2: rng.choice((4, 5, 6, 7))}[subset]
        ranked = others[:rank] + [expression] + others[rank:]
        values = sorted(scores, reverse=True)
        values[0] += rng.uniform(0.3, 0.6)
        scores = [0.0] * NUM_SOFT_CLASSES
        for k, value in zip(ranked, values, strict=False):
            scores[k] = value
    return [round(v, 4) for v in scores]


def _probabilities(rng: random.Random, keys, decimals: int = 2) -> dict:
    raw = [rng.random() ** 2 for _ in keys]
    total = sum(raw)
    values = [round(v / total, decimals) for v in raw]
    values[-1] = round(1 - sum(values[:-1]), decimals)
    return dict(zip(keys, values, strict=False))


def _annotation(
    rng: random.Random, expression: int | None, subset: int | None, points, roll: float, with_29: bool
) -> dict:
    meta = {
        "age": rng.randrange(3, 80),
        "valence": round(rng.uniform(-1, 1), 6),
        "arousal": round(rng.uniform(-1, 1), 6),
        "gender": _probabilities(rng, ("female", "male")),
        "race": _probabilities(rng, _RACE_KEYS),
        "pose": {
            "yaw": round(rng.uniform(-0.3, 0.3), 2),
            "pitch": round(rng.uniform(-0.3, 0.3), 2),
            "roll": round(roll, 2),
        },
        "landmark-68": [int(round(v)) for xy in points for v in xy],
    }
    if with_29:
        meta["landmark-29"] = [int(round(v)) for xy in points[17:46] for v in xy]
    return {
        "human-label": expression,
        "soft-label": _soft_label(rng, expression, subset),
        "subset": subset,
        "meta-data": meta,
    }


def _apply_fault(fault: str, annotation: dict) -> None:
    meta = annotation["meta-data"]
    if fault == "short_soft_label":
        annotation["soft-label"] = annotation["soft-label"][:7]
    elif fault == "null_numbers":
        meta["age"] = None
        meta["valence"] = None
        meta["gender"]["male"] = None
    elif fault == "int_for_float":
        meta["valence"], meta["arousal"] = 0, 1
        annotation["soft-label"] = [1 if i == 0 else 0 for i in range(NUM_SOFT_CLASSES)]
    elif fault == "missing_pose":
        meta.pop("pose")
    elif fault == "missing_landmark29":
        meta.pop("landmark-29", None)
    elif fault == "sentinel":
        meta["valence"], meta["arousal"] = -2, -2.0
    elif fault == "string_numbers":
        meta["age"] = str(meta["age"])
        meta["valence"] = str(meta["valence"])
    elif fault == "non_finite":
        meta["valence"], meta["arousal"], meta["age"] = "__inf__", "__-inf__", "__1e400__"
    elif fault == "huge_int":
        annotation["soft-label"][0] = "__huge__"
    elif fault == "deep_nesting":
        meta["age"] = "__deep__"
    elif fault == "out_of_range":
        meta["valence"], meta["age"], meta["gender"] = 5.0, -40, {"female": -3, "male": 9}
    elif fault == "partial_struct":
        meta["gender"].pop("male")
        meta["race"] = {}


def write_sample(
    root: str | Path,
    n: int = 40,
    seed: int = 0,
    parts: tuple[str, ...] = PARTS,
    faults: dict[str, list[str]] | None = None,
    layout: str = "release",
) -> SampleManifest:
    """Write a synthetic release of ``n`` records per part under ``root``.

    Raises ``FileExistsError`` when a part folder it would write already holds files (other
    parts may exist: a sample can add the part a release lacks).

    ``faults`` maps a part to fault names from :data:`FAULTS`; the k-th fault of a part is
    planted into that part's k-th record. ``layout`` is ``"release"`` (the lowercase,
    underscore folder names seen on real disks) or ``"pdf"`` (``Human Annotated/Train Set/
    Images``). Output is deterministic for a given ``seed``.
    """
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be one of {sorted(_LAYOUTS)}, got {layout!r}")
    if not 1 <= n <= MAX_SAMPLE_RECORDS:
        raise ValueError(f"n: expected a whole number of records per part from 1 to {MAX_SAMPLE_RECORDS:,}, got {n}")
    faults = faults or {}
    for part, names in faults.items():
        unknown = [f for f in names if f not in FAULTS]
        if unknown:
            raise ValueError(f"unknown fault(s) {unknown} for part {part!r}; valid: {sorted(FAULTS)}")
        if len(names) > n:
            raise ValueError(f"{len(names)} faults for part {part!r} but only n={n} records")
    human, train_name, val_name, unlabeled_name, images_name, annotations_name = _LAYOUTS[layout]
    folders = dict(
        zip(PARTS, (Path(human, train_name), Path(human, val_name), Path(unlabeled_name)), strict=False)
    )  # in PARTS order
    root = Path(root)
    for part in parts:  # an earlier sample's files would mix in (a fault that leaves a file out would not show)
        base = root / folders[part]
        if base.is_dir() and any(path.is_file() for path in base.rglob("*")):
            raise FileExistsError(
                f"{base}: already holds files (an earlier sample?); expected a new or empty folder, so that the "
                "sample holds exactly the records and faults it reports: remove it or choose another folder"
            )
    manifest = SampleManifest(root=root)
    for _part_index, part in enumerate(parts):
        rng = random.Random(f"{seed}-{part}")
        base = root / folders[part]
        (base / images_name).mkdir(parents=True, exist_ok=True)
        (base / annotations_name).mkdir(parents=True, exist_ok=True)
        part_faults = faults.get(part, [])
        manifest.ids[part] = []
        for index in range(n):
            image_id = str(index)
            manifest.ids[part].append(image_id)
            if part == UNLABELED_PART:
                expression, subset = None, None
            else:
                expression = index % len(EXPRESSIONS)
                subset = index % 3
            points, roll = face_landmarks(rng, expression if expression is not None else 0)
            label = "unlabeled" if expression is None else EXPRESSIONS[expression]
            image_bytes = _draw(points, rng, label)
            annotation = _annotation(rng, expression, subset, points, roll, with_29=index % 2 == 0)
            fault = part_faults[index] if index < len(part_faults) else None
            if fault:
                manifest.faults[(part, image_id)] = fault
                _apply_fault(fault, annotation)
            text = json.dumps(annotation)
            for placeholder, raw in _RAW_JSON.items():
                text = text.replace(placeholder, raw)
            if fault == "duplicate_key":
                text = text[:-1] + ', "Meta Data": {}}'
            if fault == "bom_crlf":
                data = b"\xef\xbb\xbf" + json.dumps(annotation, indent=2).replace("\n", "\r\n").encode()
            elif fault == "bad_json":
                data = text.encode()[: len(text) // 2]
            else:
                data = text.encode()
            if fault == "truncated_jpeg":
                image_bytes = image_bytes[: len(image_bytes) // 2]
            elif fault == "empty_image":
                image_bytes = b""
            elif fault == "jpeg_padding":
                image_bytes += b"\xff" * 16 + b"padding written by some tool"
            elif fault == "png_as_jpg":
                from PIL import Image

                buffer = io.BytesIO()
                Image.open(io.BytesIO(image_bytes)).save(buffer, format="PNG")
                image_bytes = buffer.getvalue()
            if fault != "missing_image":
                (base / images_name / f"{image_id}.jpg").write_bytes(image_bytes)
            if fault != "missing_annotation":
                (base / annotations_name / f"{image_id}.json").write_bytes(data)
    return manifest
