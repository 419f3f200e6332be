"""``affectnetplus verify``: what is in a raw release, what is broken, and whether it is complete.

Reads every record through the reader (nothing is written) and reports, per part: a
table of counts per class x subset, the bad records and notes, the files that are not
records, and the per-class counts next to the published ones (see
:data:`~affectnetplus_hf.core.schema.PUBLISHED_COUNTS`), flagging a part that looks
incomplete. :attr:`VerifyReport.ok` is false when any record is bad.
:meth:`VerifyReport.to_json` is the same report as plain data (``affectnetplus verify --json``).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.choices import CheckImages, check_choice
from ..core.columns import label_subset_counts
from ..core.configs import AFFECTNET_PLUS, LABEL_NAMES, SUBSET_NAMES
from ..core.parallel import report_progress, run_jobs
from ..core.releases import release_info
from ..core.schema import SUBSETS
from .kind import iter_batches, open_release
from .reader import reason_class

__all__ = ["PartReport", "VerifyReport", "verify"]

_CHUNK = 5_000
_SHOWN = 20  # bad records listed per part in the text summary (all are in .bad)


@dataclass
class PartReport:
    """One part: counts and problems."""

    name: str
    path: str
    read: int = 0
    #: (expression name or NULL_LABEL, subset name or NULL_SUBSET) -> good records
    counts: Counter = field(default_factory=Counter)
    bad: list[dict] = field(default_factory=list)
    notes: Counter = field(default_factory=Counter)  # (field, reason class) -> count
    #: (field, reason class) -> the first note of that kind: path and full reason
    note_examples: dict = field(default_factory=dict)
    ignored: list[dict] = field(default_factory=list)
    #: the release kind (its published counts are the ones compared)
    kind: str = AFFECTNET_PLUS

    @property
    def good(self) -> int:
        return sum(self.counts.values())

    @property
    def published_total(self) -> int | None:
        return release_info(self.kind).published_totals.get(self.name)

    @property
    def published_counts(self) -> dict:
        return dict(release_info(self.kind).published_counts.get(self.name, {}))

    def looks_incomplete(self) -> bool:
        return self.read < (self.published_total or 0)


@dataclass
class VerifyReport:
    root: str
    parts: dict[str, PartReport] = field(default_factory=dict)
    missing_parts: list[str] = field(default_factory=list)
    #: which release the folder holds (:data:`~affectnetplus_hf.core.configs.RELEASE_KINDS`)
    kind: str = AFFECTNET_PLUS

    @property
    def bad(self) -> int:
        return sum(len(p.bad) for p in self.parts.values())

    @property
    def read(self) -> int:
        return sum(p.read for p in self.parts.values())

    @property
    def ok(self) -> bool:
        return self.bad == 0

    def to_json(self) -> dict:
        """The whole report as plain data: every bad record, note kind and ignored file."""
        return {
            "root": self.root,
            "release": self.kind,
            "ok": self.ok,
            "records": {"read": self.read, "good": sum(p.good for p in self.parts.values()), "bad": self.bad},
            "missing_parts": list(self.missing_parts),
            "parts": {name: _part_json(part) for name, part in self.parts.items()},
        }

    def to_text(self) -> str:
        lines = [f"{release_info(self.kind).title} release at {self.root}"]
        if self.missing_parts:
            lines.append(f"parts not present (partial extraction): {', '.join(self.missing_parts)}")
        for part in self.parts.values():
            lines += ["", _part_text(part)]
        lines += [
            "",
            f"TOTAL: {sum(p.read for p in self.parts.values())} records read, "
            f"{sum(p.good for p in self.parts.values())} good, {self.bad} bad"
            + (
                ""
                if self.ok
                else "  -> see the bad records above; re-extract those files, or export with the default --on-bad skip to leave them out"
            ),
        ]
        return "\n".join(lines)


def _part_json(part: PartReport) -> dict:
    counts: dict[str, dict[str, int]] = {}
    for (label, subset), n in sorted(part.counts.items()):
        counts.setdefault(label, {})[subset] = n
    expected = part.published_total
    return {
        "path": part.path,
        "read": part.read,
        "good": part.good,
        "bad": len(part.bad),
        "published": expected,
        "looks_incomplete": part.looks_incomplete() if expected else None,
        "counts": counts,
        "bad_records": part.bad,
        "notes": [
            {"field": name, "reason_class": reason, "count": n, **part.note_examples.get((name, reason), {})}
            for (name, reason), n in part.notes.most_common()
        ],
        "ignored": part.ignored,
    }


def _part_text(part: PartReport) -> str:
    used_subsets = [s for s in SUBSET_NAMES if any(k[1] == s for k in part.counts)] or list(SUBSETS)
    labels = [e for e in LABEL_NAMES if any(k[0] == e for k in part.counts)]
    out = [f"== {part.name}: {part.path}", f"records: {part.read} read, {part.good} good, {len(part.bad)} bad"]
    header = f"{'class':<12}" + "".join(f"{s:>13}" for s in used_subsets) + f"{'total':>10}"
    published = part.published_counts
    if published:
        header += f"{'published':>11}{'found %':>9}"
    out.append(header)
    for label in labels:
        values = [part.counts.get((label, s), 0) for s in used_subsets]
        line = f"{label:<12}" + "".join(f"{v:>13}" for v in values) + f"{sum(values):>10}"
        if published and label in published:
            line += f"{published[label]:>11}{100 * sum(values) / published[label]:>8.1f}%"
        out.append(line)
    totals = [sum(part.counts.get((label, s), 0) for label in labels) for s in used_subsets]
    out.append(f"{'total':<12}" + "".join(f"{v:>13}" for v in totals) + f"{sum(totals):>10}")
    expected = part.published_total
    if expected:
        verdict = (
            f"LOOKS INCOMPLETE: {part.read} of the {expected} published records are present ({100 * part.read / expected:.2f}%)"
            if part.looks_incomplete()
            else f"complete: {part.read} records (published {expected})"
        )
        out.append(verdict)
    if part.bad:
        reasons = Counter(reason_class(b["reason"]) for b in part.bad)
        out.append("bad records by reason: " + ", ".join(f"{r} x{n}" for r, n in reasons.most_common()))
        for item in part.bad[:_SHOWN]:
            where = item["path"] + (f":{item['line']}" if "line" in item else "")
            out.append(f"  BAD {where}: {item['reason']}")
        if len(part.bad) > _SHOWN:
            out.append(f"  ... and {len(part.bad) - _SHOWN} more")
    if part.notes:
        out.append(
            "notes (records kept; a value stored null, kept out of range, or a key ignored), by kind, with one example:"
        )
        for (name, reason), n in part.notes.most_common(10):
            example = part.note_examples.get((name, reason), {})
            out.append(f"  {name}: {reason} x{n}")
            if example:
                where = example["path"] + (f":{example['line']}" if "line" in example else "")
                out.append(f"      e.g. {where}: {example['reason']}")
        if len(part.notes) > 10:
            out.append(f"  ... and {len(part.notes) - 10} more kinds (affectnetplus verify --json lists them all)")
    if part.ignored:
        out.append(f"files and folders not read: {len(part.ignored)}")
        for item in part.ignored[:_SHOWN]:
            out.append(f"  {item['path']}: {item['reason']}")
        if len(part.ignored) > _SHOWN:
            out.append(f"  ... and {len(part.ignored) - _SHOWN} more (affectnetplus verify --json lists them all)")
    return "\n".join(out)


@dataclass(frozen=True)
class _ScanJob:
    """A chunk of one part's records for one worker."""

    part: str
    records: Sequence[Any]  # of the release kind's record type (see release.kind)
    check_images: CheckImages


@dataclass(frozen=True)
class _ScanResult:
    """What :func:`_scan` hands back (pickled, from a worker process); :func:`verify` adds it to its part."""

    part: str
    read: int
    #: (expression name or NULL_LABEL, subset name or NULL_SUBSET) -> good records
    counts: Counter[tuple[str, str]]
    #: the bad records' report lines
    bad: list[dict[str, Any]]
    #: (field, reason class) -> notes
    notes: Counter[tuple[str, str]]
    #: (field, reason class) -> the first such note's path and full reason
    examples: dict[tuple[str, str], dict[str, Any]]


def _scan(job: _ScanJob) -> _ScanResult:
    counts: Counter[tuple[str, str]] = Counter()
    bad: list[dict[str, Any]] = []
    notes: Counter[tuple[str, str]] = Counter()
    examples: dict[tuple[str, str], dict[str, Any]] = {}
    for batch in iter_batches(job.records, check_images=job.check_images):
        for note in batch.notes:
            key = (note.field, reason_class(note.reason))
            notes[key] += 1
            if key not in examples:
                examples[key] = {
                    "path": note.path,
                    "reason": note.reason,
                    **({"line": note.line} if note.line is not None else {}),
                }
        bad += [record.to_report() for record in batch.bad]
        if batch.table.num_rows:
            counts.update(label_subset_counts(batch.table))
        report_progress(batch.read)
    return _ScanResult(job.part, len(job.records), counts, bad, notes, examples)


def verify(
    raw_dir: str | os.PathLike,
    *,
    num_proc: int = 1,
    check_images: CheckImages = "markers",
    progress: bool = True,
) -> VerifyReport:
    """Read the whole release under ``raw_dir`` and return what was found."""
    from tqdm.auto import tqdm

    check_choice("check_images", check_images, CheckImages)
    release = open_release(raw_dir)
    parts = release.info.parts
    report = VerifyReport(
        root=str(release.root), missing_parts=[p for p in parts if p not in release.parts], kind=release.kind
    )
    jobs: list[_ScanJob] = []
    for name in parts:
        if name not in release.parts:
            continue
        records, ignored = release.list_records(name)
        report.parts[name] = PartReport(
            name=name,
            path=str(release.parts[name]),
            ignored=[{"path": str(i.path), "reason": i.reason} for i in ignored],
            kind=release.kind,
        )
        jobs += [_ScanJob(name, records[i : i + _CHUNK], check_images) for i in range(0, len(records), _CHUNK)]
    total = sum(len(job.records) for job in jobs)
    with tqdm(total=total, unit="rec", desc="verify", disable=not progress) as bar:
        results = run_jobs(_scan, jobs, num_proc, bar.update)
    for chunk in results:  # in job order: a part's chunks in record order
        part = report.parts[chunk.part]
        part.read += chunk.read
        part.counts.update(chunk.counts)
        part.bad += chunk.bad
        part.notes.update(chunk.notes)
        for key, example in chunk.examples.items():
            part.note_examples.setdefault(key, example)
    return report
