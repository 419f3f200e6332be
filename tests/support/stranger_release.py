"""A release written the way a stranger would, from the format page alone.

Shares no code with ``affectnetplus_hf.release.sample``: random-noise JPEGs from numpy, values
drawn and rounded differently, keys in another order, and each fault from the format
page's "What a reader must survive" planted by hand. Returns what a correct reader must
produce, computed here from the values written, so a test can compare every field.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import numpy as np
from PIL import Image

from affectnetplus_hf.core.configs import PARTS, UNLABELED_PART

SPELLINGS = {
    "release": (
        "human_annotated/train_set",
        "human_annotated/validation_set",
        "no_human_annotated",
        "images",
        "annotations",
    ),
    "pdf": (
        "Human Annotated/Train Set",
        "Human Annotated/Validation Set",
        "No Human Annotated",
        "Images",
        "Annotations",
    ),
}
RACE_KEYS = ["white", "asian", "latino hispanic", "black", "indian", "middle eastern"]


def _jpeg(rng: np.random.Generator) -> bytes:
    pixels = rng.integers(0, 255, size=(224, 224, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=75)
    return buffer.getvalue()


def write_stranger_release(root: Path, spelling: str, n: int = 16, seed: int = 7):
    """Write the release; return ``expected[(part, id)] = row dict or ("bad", reason words)``."""
    train, val, unl, images, annotations = SPELLINGS[spelling]
    rnd = random.Random(seed)
    nrng = np.random.default_rng(seed)
    expected = {}
    for part, folder in zip(PARTS, (train, val, unl), strict=False):
        (root / folder / images).mkdir(parents=True)
        (root / folder / annotations).mkdir(parents=True)
        for k in range(n):
            image_id = str(1000 + 7 * k)
            image = _jpeg(nrng)
            label = None if part == UNLABELED_PART else rnd.randrange(11)
            subset = None if part == UNLABELED_PART else rnd.randrange(3)
            soft = [round(rnd.uniform(0, 0.6), 4) for _ in range(8)]
            landmarks = [rnd.randrange(0, 224) for _ in range(136)]
            gender_f = round(rnd.random(), 2)
            race = {key: round(rnd.random() / 6, 2) for key in RACE_KEYS}
            meta = {
                "landmark-68": landmarks,
                "pose": {
                    "roll": round(rnd.uniform(-0.3, 0.3), 3),
                    "yaw": round(rnd.uniform(-0.3, 0.3), 3),
                    "pitch": round(rnd.uniform(-0.3, 0.3), 3),
                },
                "race": race,
                "gender": {"male": round(1 - gender_f, 2), "female": gender_f},
                "arousal": round(rnd.uniform(-1, 1), 6),
                "valence": round(rnd.uniform(-1, 1), 6),
                "age": rnd.randrange(1, 90),
            }
            if k % 3 == 0:
                meta["landmark-29"] = [rnd.randrange(0, 224) for _ in range(58)]
            doc = {"subset": subset, "meta-data": meta, "soft-label": soft, "human-label": label}
            fault = k if part == "train" else None
            text = json.dumps(doc)
            row = {
                "image_id": image_id,
                "human_label": label,
                "subset": subset,
                "soft_label": soft,
                "valence": meta["valence"],
                "arousal": meta["arousal"],
                "age": meta["age"],
                "gender": {"female": gender_f, "male": round(1 - gender_f, 2)},
                "race": {key.replace(" ", "_"): value for key, value in race.items()},
                "head_pose": dict(meta["pose"]),
                "landmarks": [landmarks[i : i + 2] for i in range(0, 136, 2)],
                "landmarks_29": meta.get("landmark-29"),
                "image_bytes": image,
            }
            write_image, write_json = True, True
            data = text.encode()
            if fault == 0:  # an extraction stopped half way: JPEG cut short
                image = image[: len(image) // 3]
                row = ("bad", "JPEG cut short")
            elif fault == 1:  # annotation without its image
                write_image = False
                row = ("bad", "image missing")
            elif fault == 2:  # image without its annotation
                write_json = False
                row = ("bad", "annotation missing")
            elif fault == 3:  # JSON cut short
                data = data[:40]
                row = ("bad", "not valid JSON")
            elif fault == 4:  # a null where a number was expected
                meta["valence"] = None
                meta["age"] = None
                data = json.dumps(doc).encode()
                row["valence"], row["age"] = None, None
            elif fault == 5:  # an int where a float was expected
                meta["arousal"] = 1
                doc["soft-label"] = [0, 1, 0, 0, 0, 0, 0, 1]
                data = json.dumps(doc).encode()
                row["arousal"], row["soft_label"] = 1.0, [0.0, 1.0, 0, 0, 0, 0, 0, 1.0]
            elif fault == 6:  # a missing pose
                del meta["pose"]
                data = json.dumps(doc).encode()
                row["head_pose"] = None
            elif fault == 7:  # saved by another tool: BOM + CRLF
                data = b"\xef\xbb\xbf" + json.dumps(doc, indent=4).replace("\n", "\r\n").encode()
            elif fault == 8:  # AffectNet's -2 sentinel
                meta["valence"] = -2
                data = json.dumps(doc).encode()
                row["valence"] = None
            elif fault == 9:  # a missing landmark-29 where others have it
                meta.pop("landmark-29", None)
                data = json.dumps(doc).encode()
                row["landmarks_29"] = None
            elif fault == 10:  # Infinity and 1e400 where numbers were expected: null
                data = (
                    json.dumps(doc)
                    .replace(json.dumps(meta["valence"]), "Infinity", 1)
                    .replace(f'"age": {meta["age"]}', '"age": 1e400')
                    .encode()
                )
                row["valence"], row["age"] = None, None
            elif fault == 11:  # a stray empty second spelling of meta-data: the metadata stays
                data = (json.dumps(doc)[:-1] + ', "Meta Data": {}}').encode()
            elif fault == 12:  # values outside the documented ranges: kept as released
                meta["valence"], meta["age"] = 5.0, -40
                data = json.dumps(doc).encode()
                row["valence"], row["age"] = 5.0, -40
            elif fault == 13:  # bytes after the JPEG's end-of-image marker: kept as released
                image = image + b"\xff\xff trailing bytes"
                row["image_bytes"] = image
            if write_image:
                (root / folder / images / f"{image_id}.jpg").write_bytes(image)
            if write_json:
                (root / folder / annotations / f"{image_id}.json").write_bytes(data)
            expected[(part, image_id)] = row
    return expected
