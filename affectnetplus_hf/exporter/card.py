"""Render the dataset card (``README.md``) of an exported folder.

The YAML header is built with ``datasets``' own serialisers (``MetadataConfigs`` and
``DatasetInfosDict.to_dataset_card_data``), so it parses back into exactly
:data:`~affectnetplus_hf.core.schema.FEATURES`. The prose comes from
``exporter/dataset_card/README.template.md``; every table is generated from the schema and from
the counts the export measured, never typed by hand.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import TypedDict

from ..core.configs import AFFECTNET_PLUS, DEFAULT_CONFIG, NULL_LABEL, NULL_SUBSET, config_spec, configs_for
from ..core.export_files import shard_glob
from ..core.releases import release_info
from ..core.schema import (
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

__all__ = ["GATING", "card_yaml", "config_data_files", "distinct_rows", "render_card", "template_path"]


class _Gating(TypedDict):
    extra_gated_prompt: str
    extra_gated_fields: dict[str, str]
    extra_gated_button_content: str


#: Gating fields: the Hub asks each requester for these before granting access.
GATING: _Gating = {
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


def template_path(kind: str = AFFECTNET_PLUS) -> Path:
    """The card template of release kind ``kind`` (AffectNet+ has its own; the original releases
    share one), shipped inside the package beside this module."""
    name = "README.template.md" if kind == AFFECTNET_PLUS else "README.original.template.md"
    return Path(__file__).resolve().parent / "dataset_card" / name


def _kind(info: dict) -> str:
    """The release kind an ``export_info.json`` names (exports before the original releases: AffectNet+)."""
    return info.get("release", AFFECTNET_PLUS)


def _gating(kind: str) -> _Gating:
    """:data:`GATING`, naming the licence of release kind ``kind``."""
    if kind == AFFECTNET_PLUS:
        return GATING
    return {
        "extra_gated_prompt": (
            f"{release_info(kind).title} is licensed by the AffectNet authors to each lab separately and may not be "
            "redistributed. Request access only if you hold your own AffectNet licence; the repository owner will check it."
        ),
        "extra_gated_fields": {
            "Name": "text",
            "Affiliation": "text",
            "Email used for your AffectNet licence request": "text",
            "Date your AffectNet licence was granted": "date_picker",
            "I hold my own AffectNet licence and will not redistribute the data": "checkbox",
        },
        "extra_gated_button_content": "I hold an AffectNet licence",
    }


def config_data_files(info: dict) -> dict[str, dict[str, str]]:
    """config -> split -> glob relative to the export root, for the parts that were exported."""
    data_dir = info["data_dir"]
    parts = info["parts"]
    configs: dict[str, dict[str, str]] = {}
    for spec in configs_for(_kind(info)):
        subset = spec.subset
        files = {}
        for split, part in spec.splits.items():
            if part not in parts:
                continue
            rows = parts[part]["rows"]
            if not (rows.get(subset, 0) if subset else sum(rows.values())):
                continue  # an empty split does not load: leave it out of the config
            files[split] = shard_glob(data_dir, part, parts[part].get("num_shards"), subset)
        if files:
            configs[spec.name] = files
    return configs


def _config_rows(info: dict) -> dict[str, dict[str, int]]:
    rows: dict[str, dict[str, int]] = {}
    for name, files in config_data_files(info).items():
        spec = config_spec(name, _kind(info))
        subset = spec.subset
        rows[name] = {}
        for split in files:
            counts = info["parts"][spec.splits[split]]["rows"]
            rows[name][split] = counts.get(subset, 0) if subset else sum(counts.values())
    return rows


def distinct_rows(info: dict) -> int:
    """Rows of the export, each counted once (the configs overlap: ``all`` holds the subset configs' rows)."""
    return sum(sum(part["rows"].values()) for part in info["parts"].values())


def _config_sizes(data_files: dict[str, dict[str, str]], root: Path) -> dict[str, dict]:
    """config -> ``{"splits": {split: num_bytes}, "download_size": bytes}`` measured on the files.

    ``num_bytes`` of a split is the uncompressed size of its rows as the Parquet footers
    record it (what ``datasets`` holds in memory, give or take Arrow's own overhead);
    ``download_size`` is the bytes of the config's Parquet files on disk.
    """
    import pyarrow.parquet as pq

    row_bytes: dict[Path, int] = {}  # per file, read once: the configs overlap (``all`` holds every file)

    def uncompressed(path: Path) -> int:
        if path not in row_bytes:
            meta = pq.read_metadata(path)
            row_bytes[path] = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        return row_bytes[path]

    sizes: dict[str, dict] = {}
    for name, files in data_files.items():
        splits, download = {}, 0
        for split, pattern in files.items():
            paths = sorted(root.glob(pattern))
            splits[split] = sum(uncompressed(path) for path in paths)
            download += sum(path.stat().st_size for path in paths)
        sizes[name] = {"splits": splits, "download_size": download}
    return sizes


def card_yaml(info: dict, root: str | Path | None = None) -> str:
    """The YAML header (without the ``---`` fences).

    With ``root`` (the exported folder, data files in place) each config's splits get
    their ``num_bytes`` and the config its ``dataset_size`` and ``download_size``,
    measured on the files; without it they are left out (``num_bytes: 0``).
    """
    import datasets
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCardData

    data_files = config_data_files(info)
    rows = _config_rows(info)
    kind = _kind(info)
    plus = kind == AFFECTNET_PLUS
    card_data = DatasetCardData(
        pretty_name=release_info(kind).title,
        license="other",
        license_name="affectnet-plus-research-license" if plus else "affectnet-research-license",
        license_link="http://mohammadmahoor.com/pages/databases/affectnet/",
        task_categories=["image-classification"],
        tags=[
            "facial-expression-recognition",
            "affective-computing",
            *(["soft-labels"] if plus else []),
            "valence-arousal",
            "landmarks",
        ],
        size_categories=[_size_category(distinct_rows(info))],
        **_gating(kind),
    )
    MetadataConfigs(
        {
            name: {
                "data_files": [{"split": split, "path": pattern} for split, pattern in files.items()],
                **({"default": True} if name == DEFAULT_CONFIG else {}),
            }
            for name, files in data_files.items()
        }
    ).to_dataset_card_data(card_data)
    sizes = _config_sizes(data_files, Path(root)) if root is not None else {}
    infos = DatasetInfosDict()
    for name in data_files:
        size = sizes.get(name, {"splits": {}, "download_size": None})
        infos[name] = datasets.DatasetInfo(
            config_name=name,
            features=FEATURES,
            splits=datasets.SplitDict(
                {
                    split: datasets.SplitInfo(name=split, num_examples=n, num_bytes=size["splits"].get(split, 0))
                    for split, n in rows[name].items()
                }
            ),
            download_size=size["download_size"],
            dataset_size=sum(size["splits"].values()) if size["splits"] else None,
        )
    infos.to_dataset_card_data(card_data)
    written = getattr(card_data, "dataset_info", None) or []  # absent when no config has a row
    for entry in written if isinstance(written, list) else [written]:  # one config: a dict, not a list
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


_SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
)


def _size_category(n: int) -> str:
    """The Hub's ``size_categories`` label for ``n`` rows."""
    for limit, label in _SIZE_CATEGORIES:
        if n < limit:
            return label
    return "100M<n<1B"  # the next Hub label; AffectNet+ has 960k rows


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _null_last(keys, names: tuple[str, ...], null_name: str) -> list[tuple[str, str]]:
    """``(key, shown name)`` pairs: the known names in schema order, then the key of the
    null group (any key that is not a name), shown as ``null_name``."""
    keys = list(keys)
    return [(k, k) for k in names if k in keys] + [(k, null_name) for k in sorted(keys) if k not in names]


def _class_subset_tables(info: dict) -> str:
    tables = []
    for part, by_class in info["class_subset_counts"].items():
        subset_keys = {s for counts in by_class.values() for s, n in counts.items() if n}
        used = _null_last(subset_keys, SUBSETS, NULL_SUBSET)
        if not used:
            continue
        header = " | ".join(shown for _, shown in used)
        lines = [f"**{part}**", "", f"| class | {header} | total |", "|---|" + "---:|" * (len(used) + 1)]
        for label, shown in _null_last(by_class, EXPRESSIONS, NULL_LABEL):
            values = [by_class[label].get(s, 0) for s, _ in used]
            lines.append(f"| {shown} | " + " | ".join(str(v) for v in values) + f" | {sum(values)} |")
        totals = [sum(by_class[c].get(s, 0) for c in by_class) for s, _ in used]
        lines.append("| **total** | " + " | ".join(str(v) for v in totals) + f" | {sum(totals)} |")
        tables.append("\n".join(lines))
    return "\n\n".join(tables) if tables else "_No rows were exported._"


def render_card(
    info: dict, local_name: str = "affectnet_plus", stats_section: str = "", root: str | Path | None = None
) -> str:
    """The whole ``README.md`` for an export described by ``info`` (its ``export_info.json``);
    ``root``: the exported folder, to measure the size fields (see :func:`card_yaml`)."""
    rows = _config_rows(info)
    kind = _kind(info)
    if kind != AFFECTNET_PLUS:
        return _render_original_card(info, kind, rows, local_name, stats_section, root)
    descriptions = {spec.name: spec.description for spec in configs_for(kind)}
    config_lines = [
        f"| {name} | {split} | {n} | {_md(descriptions[name])} |"
        for name, splits in rows.items()
        for split, n in splits.items()
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
    return f"---\n{card_yaml(info, root)}\n---\n\n{body}"


def _render_original_card(info: dict, kind: str, rows: dict, local_name: str, stats_section: str, root) -> str:
    """The card of an original AffectNet release: what each column holds in it, from
    :attr:`~affectnetplus_hf.core.releases.ReleaseInfo.column_notes` (a column it does not name is
    null in every row)."""
    release = release_info(kind)
    descriptions = {spec.name: spec.description for spec in configs_for(kind)}
    config_lines = [
        f"| {name} | {split} | {n} | {_md(descriptions[name])} |"
        for name, splits in rows.items()
        for split, n in splits.items()
    ]
    published = ", ".join(f"{part} {n:,}" for part, n in release.published_totals.items())
    shapes = {"image": (release.image_shape, release.image_dtype)}
    column_lines = [
        f"| `{c.name}` | {_md(shapes.get(c.name, (c.shape, c.dtype))[0])} | {_md(shapes.get(c.name, (c.shape, c.dtype))[1])} | "
        + (
            _md(release.column_notes[c.name])
            if c.name in release.column_notes
            else "not in this release: null in every row"
        )
        + " |"
        for c in COLUMNS
    ]
    expression_lines = [f"| {code} | {name} |" for code, name in enumerate(EXPRESSIONS)]
    body = string.Template(template_path(kind).read_text()).substitute(
        title=release.title,
        description=release.description,
        package_version=info.get("package_version", ""),
        license_note=release.license_note,
        published_counts=published or "none published",
        config_rows="\n".join(config_lines),
        default_config=DEFAULT_CONFIG,
        fingerprint=info["fingerprint"],
        column_rows="\n".join(column_lines),
        expression_rows="\n".join(expression_lines),
        class_subset_tables=_class_subset_tables(info),
        stats_section=("\n" + stats_section.strip() + "\n") if stats_section.strip() else "",
        local_name=local_name,
        citation=release.citation,
    )
    return f"---\n{card_yaml(info, root)}\n---\n\n{body}"
