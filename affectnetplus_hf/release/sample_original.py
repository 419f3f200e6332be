"""Write small synthetic original AffectNet releases: the 2017 CSV release and the 8-label one.

The sibling of :mod:`.sample` (same cartoon faces with SYNTHETIC written on them, drawn from
their own 68 landmarks; no real face). The 2017 sample pastes each face into a larger full
image and lists it with its face box, in JPEG or PNG, some grayscale, under the extensions
the release uses (.jpg, .jpeg, .JPG, .png); the 8-label sample writes 224 x 224 crops and the
four ``.npy`` files per record (string arrays, as the release has them; some landmarks as
strings too).

``faults`` plants breakages into records (the k-th fault of a part into its k-th record), as
:func:`.sample.write_sample` does; the returned :class:`OriginalSampleManifest` says which
record got which, the row every good record must give, and, for 2017, the CSV line of each
record.
"""

from __future__ import annotations

import csv
import hashlib
import io
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.configs import AFFECTNET_8LABELS, AFFECTNET_2017, AUTOMATIC_PART, RELEASE_PARTS
from ..core.schema import EXPRESSIONS
from .sample import _draw, face_landmarks

__all__ = ["FAULTS_2017", "FAULTS_8LABELS", "OriginalSampleManifest", "write_sample_2017", "write_sample_8labels"]

#: Fault name -> (what is planted, whether the record must be reported as bad).
FAULTS_2017: dict[str, tuple[str, bool]] = {
    "missing_image": ("the image the line names is deleted", True),
    "truncated_jpeg": ("the JPEG is cut to half its length", True),
    "short_landmarks": ("facial_landmarks has 135 numbers", True),
    "non_numeric_code": ("expression is 'abc'", True),
    "duplicate_path": (
        "one more line, at the end, names the same image with another expression (both lines bad)",
        True,
    ),
    "malformed_line": ("the line stops after its fourth field", True),
    "unlisted_image": ("one more image, which no list names (reported as ignored, never a row)", False),
    "sentinel": ("valence and arousal are -2 (stored null)", False),
    "out_of_range": ("valence is 5.0 (kept, noted)", False),
    "bad_face_box": ("face_width is 'wide' (face_box stored null, noted)", False),
}
FAULTS_8LABELS: dict[str, tuple[str, bool]] = {
    "missing_image": ("the image is deleted", True),
    "truncated_jpeg": ("the JPEG is cut to half its length", True),
    "missing_exp": ("<n>_exp.npy is deleted", True),
    "npy_abc": ("<n>_exp.npy holds 'abc'", True),
    "short_landmarks": ("<n>_lnd.npy holds 135 numbers", True),
    "pickled_npy": ("<n>_exp.npy holds a Python object (needs pickle; never loaded)", True),
    "huge_shape": ("<n>_lnd.npy's header declares 10**12 values (refused from the header)", True),
    "not_npy": ("<n>_val.npy is not an .npy file", True),
    "sentinel": ("valence and arousal are '-2' (stored null)", False),
    "out_of_range": ("valence is '5.0' (kept, noted)", False),
    "missing_lnd": ("<n>_lnd.npy is deleted (landmarks stored null, noted)", False),
    "stray_file": ("annotations/notes.txt beside the .npy files (reported as ignored)", False),
}

_HEADER = [
    "subDirectory_filePath",
    "face_x",
    "face_y",
    "face_width",
    "face_height",
    "facial_landmarks",
    "expression",
    "valence",
    "arousal",
]
_EXTENSIONS = (".jpg", ".png", ".jpeg", ".JPG")
_2017_LISTS = {
    "train": ("Manually_Annotated_file_lists", "training.csv", "Manually_Annotated", "Manually_Annotated_Images"),
    "validation": (
        "Manually_Annotated_file_lists",
        "validation.csv",
        "Manually_Annotated",
        "Manually_Annotated_Images",
    ),
    AUTOMATIC_PART: (
        "Automatically_Annotated_file_lists",
        "automatically_annotated.csv",
        "Automatically_Annotated",
        "Automatically_Annotated_Images",
    ),
}
_8_DIRS = {"train": "train_set", "validation": "val_set"}


@dataclass
class OriginalSampleManifest:
    """What a synthetic original release holds: per part the ids, the planted faults, and the
    values each good record's row must have (``image`` is the file's path)."""

    root: Path
    kind: str
    faults_table: dict[str, tuple[str, bool]]
    ids: dict[str, list[str]] = field(default_factory=dict)
    faults: dict[tuple[str, str], str] = field(default_factory=dict)
    rows: dict[tuple[str, str], dict] = field(default_factory=dict)
    #: (part, image_id) -> the CSV line that names it (2017 only)
    lines: dict[tuple[str, str], int] = field(default_factory=dict)
    #: bad records beyond one per faulty record: (part, image_id, line) of the extra lines
    extra_bad: list[tuple[str, str, int]] = field(default_factory=list)
    #: files that must be reported as ignored
    ignored: list[Path] = field(default_factory=list)

    def bad_ids(self, part: str) -> set[str]:
        return {i for (p, i), fault in self.faults.items() if p == part and self.faults_table[fault][1]}

    def good_ids(self, part: str) -> list[str]:
        bad = self.bad_ids(part)
        return [i for i in self.ids.get(part, []) if i not in bad]


def _check(
    root: Path, faults: dict[str, list[str]] | None, table: dict, n: int, parts: tuple[str, ...], valid_parts
) -> dict:
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    unknown_parts = [p for p in parts if p not in valid_parts]
    if unknown_parts:
        raise ValueError(f"unknown part(s) {unknown_parts}; valid: {list(valid_parts)}")
    faults = faults or {}
    for part, names in faults.items():
        unknown = [f for f in names if f not in table]
        if unknown:
            raise ValueError(f"unknown fault(s) {unknown} for part {part!r}; valid: {sorted(table)}")
        if len(names) > n:
            raise ValueError(f"{len(names)} faults for part {part!r} but only n={n} records")
    if root.exists() and any(path.is_file() for path in root.rglob("*")):
        raise FileExistsError(
            f"{root}: already holds files (an earlier sample?); expected a new or empty folder, so that the sample "
            "holds exactly the records and faults it reports: remove it or choose another folder"
        )
    return faults


def _face(rng: random.Random, expression: int) -> tuple[bytes, list[tuple[float, float]]]:
    points, _ = face_landmarks(rng, min(expression, 7))
    return _draw(points, rng, EXPRESSIONS[expression]), points


def _encode(image, ext: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG" if ext.lower() == ".png" else "JPEG", quality=90)
    return buffer.getvalue()


def _va(rng: random.Random, expression: int) -> tuple[float, float]:
    if expression in (9, 10):  # Uncertain and Non-Face: AffectNet's -2
        return -2.0, -2.0
    return round(rng.uniform(-1, 1), 6), round(rng.uniform(-1, 1), 6)


def write_sample_2017(
    root: str | Path,
    n: int = 12,
    seed: int = 0,
    parts: tuple[str, ...] = RELEASE_PARTS[AFFECTNET_2017],
    faults: dict[str, list[str]] | None = None,
) -> OriginalSampleManifest:
    """Write a synthetic AffectNet 2017 release of ``n`` lines per list under ``root``, nested as
    real extractions are (``Manually_Annotated/Manually_Annotated_Images/``)."""
    from PIL import Image

    root = Path(root)
    faults = _check(root, faults, FAULTS_2017, n, parts, RELEASE_PARTS[AFFECTNET_2017])
    manifest = OriginalSampleManifest(root=root, kind=AFFECTNET_2017, faults_table=FAULTS_2017)
    for part in parts:
        lists_dir, list_name, wrapper, images_name = _2017_LISTS[part]
        images_dir = root / wrapper / images_name
        images_dir.mkdir(parents=True, exist_ok=True)
        (root / lists_dir).mkdir(parents=True, exist_ok=True)
        rng = random.Random(f"{seed}-2017-{part}")
        lines: list[list[str]] = [_HEADER]
        extra: list[list[str]] = []
        part_faults = faults.get(part, [])
        manifest.ids[part] = []
        for index in range(n):
            fault = part_faults[index] if index < len(part_faults) else None
            expression = index % len(EXPRESSIONS)
            ext = ".jpg" if fault == "truncated_jpeg" else _EXTENSIONS[index % len(_EXTENSIONS)]
            name = (
                hashlib.sha224(f"{seed}-{part}-{index}".encode()).hexdigest() + ext
            )  # 56 hex digits, as the release's
            image_id = f"{index % 3 + 1}/{name}"
            crop, points = _face(rng, expression)
            width, height = rng.randrange(240, 360), rng.randrange(240, 330)
            x, y = rng.randrange(0, width - 224 + 1), rng.randrange(0, height - 224 + 1)
            canvas = Image.new("RGB", (width, height), tuple(rng.randrange(0, 255) for _ in range(3)))
            canvas.paste(Image.open(io.BytesIO(crop)).convert("RGB"), (x, y))
            if index % 5 == 3:
                canvas = canvas.convert("L")  # some AffectNet images are grayscale
            data = _encode(canvas, ext)
            marks = [round(v + (x if k == 0 else y), 2) for xy in points for k, v in enumerate(xy)]
            valence, arousal = _va(rng, expression)
            code: str = str(expression)
            box = [str(x), str(y), "224", "224"]
            if fault == "sentinel":
                valence = arousal = -2.0
            elif fault == "out_of_range":
                valence = 5.0
            elif fault == "truncated_jpeg":
                data = data[: len(data) // 2]
            elif fault == "non_numeric_code":
                code = "abc"
            elif fault == "bad_face_box":
                box[2] = "wide"
            marks_text = ";".join(f"{v:.2f}" for v in (marks[:-1] if fault == "short_landmarks" else marks))
            fields = [image_id, *box, marks_text, code, f"{valence:g}", f"{arousal:g}"]
            if fault == "malformed_line":
                fields = fields[:4]
            lines.append(fields)
            if fault != "missing_image":
                (images_dir / image_id).parent.mkdir(parents=True, exist_ok=True)
                (images_dir / image_id).write_bytes(data)
            if fault == "duplicate_path":
                extra.append([*fields[:6], str((expression + 1) % len(EXPRESSIONS)), *fields[7:]])
            if fault == "unlisted_image":
                stray = images_dir / "1" / (hashlib.sha224(f"{seed}-{part}-stray".encode()).hexdigest() + ".jpg")
                stray.parent.mkdir(parents=True, exist_ok=True)
                stray.write_bytes(_encode(canvas, ".jpg"))
                manifest.ignored.append(stray)
            manifest.ids[part].append(image_id)
            manifest.lines[(part, image_id)] = index + 2  # line 1 is the header
            if fault:
                manifest.faults[(part, image_id)] = fault
            automatic = part == AUTOMATIC_PART
            manifest.rows[(part, image_id)] = {
                "image": images_dir / image_id,
                "image_id": image_id,
                "human_label": None if automatic else expression,
                "auto_label": expression if automatic else None,
                "valence": None if valence == -2 else float(f"{valence:g}"),
                "arousal": None if arousal == -2 else float(f"{arousal:g}"),
                "landmarks": np.asarray(marks, dtype=np.float32).reshape(68, 2),
                "face_box": None if fault == "bad_face_box" else {"x": x, "y": y, "width": 224, "height": 224},
            }
        for k, fields in enumerate(extra):
            manifest.extra_bad.append((part, fields[0], len(lines) + k + 1))
        with open(root / lists_dir / list_name, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle, lineterminator="\n").writerows(lines + extra)
    return manifest


def _save_npy(path: Path, value) -> None:
    with open(path, "wb") as handle:
        np.save(handle, value, allow_pickle=isinstance(value, np.ndarray) and value.dtype.hasobject)


def write_sample_8labels(
    root: str | Path,
    n: int = 12,
    seed: int = 0,
    parts: tuple[str, ...] = RELEASE_PARTS[AFFECTNET_8LABELS],
    faults: dict[str, list[str]] | None = None,
) -> OriginalSampleManifest:
    """Write a synthetic 8-label release of ``n`` records per part under ``root``."""
    root = Path(root)
    faults = _check(root, faults, FAULTS_8LABELS, n, parts, RELEASE_PARTS[AFFECTNET_8LABELS])
    manifest = OriginalSampleManifest(root=root, kind=AFFECTNET_8LABELS, faults_table=FAULTS_8LABELS)
    for part in parts:
        base = root / _8_DIRS[part]
        images, annotations = base / "images", base / "annotations"
        images.mkdir(parents=True, exist_ok=True)
        annotations.mkdir(parents=True, exist_ok=True)
        rng = random.Random(f"{seed}-8labels-{part}")
        part_faults = faults.get(part, [])
        manifest.ids[part] = []
        for index in range(n):
            fault = part_faults[index] if index < len(part_faults) else None
            image_id = str(index)
            expression = index % 8
            data, points = _face(rng, expression)
            marks = [round(v, 3) for xy in points for v in xy]
            valence, arousal = _va(rng, expression)
            if fault == "sentinel":
                valence = arousal = -2.0
            elif fault == "out_of_range":
                valence = 5.0
            elif fault == "truncated_jpeg":
                data = data[: len(data) // 2]
            if fault != "missing_image":
                (images / f"{image_id}.jpg").write_bytes(data)
            exp = np.array(str(expression)) if index % 2 == 0 else np.array([str(expression)])
            if fault == "npy_abc":
                exp = np.array("abc")
            elif fault == "pickled_npy":
                exp = np.array([{"expression": expression}], dtype=object)
            if fault != "missing_exp":
                _save_npy(annotations / f"{image_id}_exp.npy", exp)
            if fault == "not_npy":
                (annotations / f"{image_id}_val.npy").write_bytes(b"this is not an npy file\n")
            else:
                _save_npy(annotations / f"{image_id}_val.npy", np.array(f"{valence:g}"))
            _save_npy(annotations / f"{image_id}_aro.npy", np.array(f"{arousal:g}"))
            lnd = np.asarray(marks[:-1] if fault == "short_landmarks" else marks, dtype=np.float64)
            if index % 3 == 2:
                lnd = lnd.astype(str)  # some copies store landmarks as strings
            if fault == "huge_shape":
                with open(annotations / f"{image_id}_lnd.npy", "wb") as handle:
                    np.lib.format.write_array_header_1_0(
                        handle, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)}
                    )
                    handle.write(b"\x00" * 64)
            elif fault != "missing_lnd":
                _save_npy(annotations / f"{image_id}_lnd.npy", lnd)
            if fault == "stray_file":
                (annotations / "notes.txt").write_text("not part of the release\n")
                manifest.ignored.append(annotations / "notes.txt")
            manifest.ids[part].append(image_id)
            if fault:
                manifest.faults[(part, image_id)] = fault
            manifest.rows[(part, image_id)] = {
                "image": images / f"{image_id}.jpg",
                "image_id": image_id,
                "human_label": expression,
                "auto_label": None,
                "valence": None if valence == -2 else float(f"{valence:g}"),
                "arousal": None if arousal == -2 else float(f"{arousal:g}"),
                "landmarks": None if fault == "missing_lnd" else np.asarray(marks, dtype=np.float32).reshape(68, 2),
                "face_box": None,
            }
    return manifest
