"""Render the dataset card (``README.md``) of an exported folder.

The YAML header is built with ``datasets``' own serialisers (``MetadataConfigs`` and
``DatasetInfosDict.to_dataset_card_data``), so it parses back into exactly
:data:`~affectnetplus_hf.schema.FEATURES`. The prose comes from
``dataset_card/README.template.md``; every table is generated from the schema and from
the counts the export measured, never typed by hand.
"""

from __future__ import annotations

import string
from pathlib import Path

from .builder import BUILDER_CONFIGS, config_parts
from .schema import (
    AFFECTNET_CITATION,
    AFFECTNETPLUS_CITATION,
    COLUMNS,
    EXPRESSIONS,
    FEATURES,
    LICENSE_NOTE,
    MANUAL_DOWNLOAD_INSTRUCTIONS,
    NUM_SOFT_CLASSES,
    SUBSETS,
)

__all__ = ["GATING", "card_yaml", "config_data_files", "render_card", "template_path"]

NO_SUBSET = "nosubset"  # the export's partition of rows without a subset (see export.py)

#: Gating fields: the Hub asks each requester for these before granting access.
GATING = {
    "extra_gated_prompt": (
        "AffectNet+ is licensed by its authors to each lab separately and may not be "
        "redistributed. Request access only if you hold your own AffectNet+ licence; "
        "the repository owner will check it."
    ),
    "extra_gated_fields": {
        "Name": "text",
        "Affiliation": "text",
        "Email used for your AffectNet+ licence request": "text",
        "Date your AffectNet+ licence was granted": "date_picker",
        "I hold my own AffectNet+ licence and will not redistribute the data": "checkbox",
    },
    "extra_gated_button_content": "I hold an AffectNet+ licence",
}


def template_path() -> Path:
    """The card template: packaged inside the wheel, or at the repository root in a checkout."""
    here = Path(__file__).resolve().parent
    for folder in (here / "dataset_card", here.parent / "dataset_card"):
        candidate = folder / "README.template.md"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"dataset card template README.template.md not found under {here} or {here.parent}")


def config_data_files(info: dict) -> dict[str, dict[str, str]]:
    """config -> split -> glob relative to the export root, for the parts that were exported."""
    data_dir = info["data_dir"]
    parts = info["parts"]
    configs: dict[str, dict[str, str]] = {}
    for config in BUILDER_CONFIGS:
        splits, subset = config_parts(config.name)
        files = {}
        for split, part in splits.items():
            if part not in parts:
                continue
            rows = parts[part]["rows"]
            if not (rows.get(subset, 0) if subset else sum(rows.values())):
                continue  # an empty split does not load: leave it out of the config
            files[split] = f"{data_dir}/{part}/{subset + '-' if subset else ''}*.parquet"
        if files:
            configs[config.name] = files
    return configs


def _config_rows(info: dict) -> dict[str, dict[str, int]]:
    rows: dict[str, dict[str, int]] = {}
    for name, files in config_data_files(info).items():
        splits, subset = config_parts(name)
        rows[name] = {}
        for split in files:
            counts = info["parts"][splits[split]]["rows"]
            rows[name][split] = counts.get(subset, 0) if subset else sum(counts.values())
    return rows


def card_yaml(info: dict) -> str:
    """The YAML header (without the ``---`` fences)."""
    import datasets
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCardData

    data_files = config_data_files(info)
    rows = _config_rows(info)
    card_data = DatasetCardData(
        pretty_name="AffectNet+",
        license="other",
        license_name="affectnet-plus-research-license",
        license_link="http://mohammadmahoor.com/pages/databases/affectnet/",
        task_categories=["image-classification"],
        tags=["facial-expression-recognition", "affective-computing", "soft-labels", "valence-arousal", "landmarks"],
        size_categories=[_size_category(sum(sum(s.values()) for s in rows.values()))],
        **GATING,
    )
    MetadataConfigs(
        {
            name: {
                "data_files": [{"split": split, "path": pattern} for split, pattern in files.items()],
                **({"default": True} if name == "all" else {}),
            }
            for name, files in data_files.items()
        }
    ).to_dataset_card_data(card_data)
    infos = DatasetInfosDict(
        {
            name: datasets.DatasetInfo(
                config_name=name,
                features=FEATURES,
                splits=datasets.SplitDict(
                    {split: datasets.SplitInfo(name=split, num_examples=n) for split, n in rows[name].items()}
                ),
            )
            for name in data_files
        }
    )
    infos.to_dataset_card_data(card_data)
    infos = getattr(card_data, "dataset_info", None) or []  # absent when no config has a row
    for entry in infos if isinstance(infos, list) else [infos]:  # one config: a dict, not a list
        entry["features"] = _old_list_spelling(entry["features"])
    return card_data.to_yaml()


def _old_list_spelling(node):
    """Spell lists of plain values ``sequence:`` in the YAML features, as ``datasets`` < 4 reads them.

    ``datasets`` 4+ writes ``list: float32`` (+ ``length: 8``), which 3.x reads as a
    variable-length ``[Value]`` (dropping the fixed length of ``soft_label``); both
    read ``sequence: float32`` as ``Sequence`` / ``List`` of that value, so the card
    gives exactly ``FEATURES`` on either. Lists of structs are left alone (the old
    ``sequence`` of a struct meant a struct of lists).
    """
    if isinstance(node, list):
        return [_old_list_spelling(item) for item in node]
    if isinstance(node, dict):
        return {
            ("sequence" if key == "list" and isinstance(value, str) else key): _old_list_spelling(value)
            for key, value in node.items()
        }
    return node


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return label
    return "1M<n<10M"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _class_subset_tables(info: dict) -> str:
    tables = []
    subsets = [*SUBSETS, "null"]
    for part, by_class in info["class_subset_counts"].items():
        used = [s for s in subsets if any(by_class.get(c, {}).get(s) for c in by_class)]
        if not used:
            continue
        lines = [f"**{part}**", "", "| class | " + " | ".join(used) + " | total |", "|---|" + "---:|" * (len(used) + 1)]
        for label in [*EXPRESSIONS, "null"]:
            if label not in by_class:
                continue
            values = [by_class[label].get(s, 0) for s in used]
            lines.append(f"| {label} | " + " | ".join(str(v) for v in values) + f" | {sum(values)} |")
        totals = [sum(by_class[c].get(s, 0) for c in by_class) for s in used]
        lines.append("| **total** | " + " | ".join(str(v) for v in totals) + f" | {sum(totals)} |")
        tables.append("\n".join(lines))
    return "\n\n".join(tables) if tables else "_No rows were exported._"


def render_card(info: dict, local_name: str = "affectnet_plus", stats_section: str = "") -> str:
    """The whole ``README.md`` for an export described by ``info`` (its ``export_info.json``)."""
    rows = _config_rows(info)
    descriptions = {c.name: c.description for c in BUILDER_CONFIGS}
    config_lines = [
        f"| {name} | {split} | {n} | {_md(descriptions[name])} |" for name, splits in rows.items() for split, n in splits.items()
    ]
    column_lines = [
        f"| `{c.name}` | {_md(c.shape)} | {_md(c.dtype)} | {_md(c.units)} | "
        f"{_md(c.description)}{' Nullable.' if c.nullable else ''} | `{c.source}` |"
        for c in COLUMNS
    ]
    expression_lines = [
        f"| {code} | {name} | {'yes, index ' + str(code) if code < NUM_SOFT_CLASSES else 'no'} |"
        for code, name in enumerate(EXPRESSIONS)
    ]
    body = string.Template(template_path().read_text()).substitute(
        pretty_suffix="typed Parquet export",
        package_version=info.get("package_version", ""),
        license_note=LICENSE_NOTE,
        manual_download_instructions=MANUAL_DOWNLOAD_INSTRUCTIONS.rstrip(),
        config_rows="\n".join(config_lines),
        fingerprint=info["fingerprint"],
        column_rows="\n".join(column_lines),
        expression_rows="\n".join(expression_lines),
        class_subset_tables=_class_subset_tables(info),
        stats_section=("\n" + stats_section.strip() + "\n") if stats_section.strip() else "",
        local_name=local_name,
        citation_affectnetplus=AFFECTNETPLUS_CITATION,
        citation_affectnet=AFFECTNET_CITATION,
    )
    return f"---\n{card_yaml(info)}\n---\n\n{body}"
