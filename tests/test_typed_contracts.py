"""The typed values stages hand each other: the statistics summary, and the option sets
written once in ``core.choices`` and checked with one message."""

from __future__ import annotations

import argparse
import json

import pytest

from affectnetplus_hf.core.choices import CheckImages, Gating, OnBad, choices_of
from affectnetplus_hf.release.layout import find_release, list_records
from affectnetplus_hf.release.reader import iter_rows
from affectnetplus_hf.release.verification import verify
from affectnetplus_hf.stats import (
    StatsSummary,
    build_tables,
    card_section,
    compute_stats,
    compute_summary,
    write_stats_files,
)


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    from affectnetplus_hf.release.sample import write_sample

    root = tmp_path_factory.mktemp("typed") / "AffectNet+"
    write_sample(root, n=12, seed=5)
    return root


def test_the_typed_summary_is_the_plain_statistics_and_reads_back_from_stats_json(raw, tmp_path):
    summary = compute_summary(raw)
    plain = compute_stats(raw)
    assert summary.to_json() == plain
    assert summary.agreement.by_subset["easy"].top1_rate == plain["agreement"]["by_subset"]["easy"]["top1_rate"]
    assert summary.rows.total == plain["rows"]["total"] == sum(summary.rows.by_split.values())

    out = write_stats_files(summary, tmp_path / "stats", plots=False)
    on_disk = json.loads(out.json_path.read_text())
    assert on_disk == plain and out.stats == plain
    again = StatsSummary.from_json(on_disk)
    assert again == summary
    assert build_tables(on_disk) == build_tables(summary)  # a stats.json read back makes the same tables
    assert card_section(on_disk) == card_section(summary)


def test_plain_data_that_is_not_the_statistics_is_refused_naming_the_key(raw):
    plain = compute_stats(raw)
    del plain["agreement"]["overall"]
    with pytest.raises(ValueError, match=r"stats\.agreement: missing key\(s\) \['overall'\]"):
        build_tables(plain)


def test_verify_and_the_reader_refuse_an_unknown_image_check_naming_option_values_and_value(raw):
    with pytest.raises(ValueError, match="check_images must be one of 'markers', 'decode'; got 'full'"):
        verify(raw, check_images="full", progress=False)  # type: ignore[arg-type]
    records, _ = list_records(find_release(raw).parts["train"])
    with pytest.raises(ValueError, match="check_images must be one of 'markers', 'decode'; got 'full'"):
        next(iter_rows(records, check_images="full"))  # type: ignore[arg-type]


def test_verify_in_parallel_reports_what_one_process_reports(raw):
    one = verify(raw, progress=False).to_json()
    assert verify(raw, num_proc=2, progress=False).to_json() == one  # scan results pickled back from workers
    assert one["records"]["read"] == 36


def test_the_cli_offers_exactly_the_choices_the_library_accepts():
    from affectnetplus_hf.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    options = {
        (command, option): action.choices
        for command, p in sub.choices.items()
        for action in p._actions
        for option in action.option_strings
    }
    assert options[("export", "--on-bad")] == choices_of(OnBad)
    assert options[("export", "--check-images")] == options[("verify", "--check-images")] == choices_of(CheckImages)
    assert options[("push", "--gated")] == (*choices_of(Gating), "off")
