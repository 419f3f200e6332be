"""``affectnetplus stats`` output: report.html names only PNG files that exist, tables agree
with the numbers, the card section links only drawn plots, and no matplotlib means no plots
but everything else."""

from __future__ import annotations

import base64
import csv
import io
import json
import sys
from html.parser import HTMLParser

import pytest

from affectnetplus_hf.core.configs import NULL_SUBSET
from affectnetplus_hf.core.schema import SUBSETS
from affectnetplus_hf.stats import PLOTS, card_section, compute_stats, write_card_plots, write_stats_files
from affectnetplus_hf.stats.command import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images: list[dict] = []
        self.hrefs: list[str] = []
        self.external: list[str] = []
        self.tables = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])
        if tag == "table":
            self.tables += 1
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            if tag in ("img", "script", "link", "iframe") and value.startswith(("http:", "https:", "//")):
                self.external.append(value)
        if tag in ("script", "link"):
            self.external.append(tag)


def _assert_png(data: bytes, what: str) -> None:
    from PIL import Image

    assert data.startswith(PNG_SIGNATURE), f"{what} is not a PNG"
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
        assert image.format == "PNG" and image.size[0] > 100 and image.size[1] > 100, what


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """``affectnetplus stats`` on a built-in sample release, run once for this module."""
    from affectnetplus_hf.release.sample import write_sample

    base = tmp_path_factory.mktemp("stats-cli")
    manifest = write_sample(base / "AffectNet+", n=14, seed=1, faults={"validation": ["bad_json"]})
    out = base / "out"
    status = main([str(manifest.root), "--out", str(out), "--quiet"])
    return manifest, out, status


def test_cli_writes_report_tables_json(cli_run):
    manifest, out, status = cli_run
    assert status == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["rows"] == {"train": 14, "validation": 13, "unlabeled": 14, "total": 41}
    assert stats["source"]["bad_records"]["validation"] == 1
    assert (out / "report.html").is_file() and (out / "tables.md").is_file()
    # the counts table agrees with stats.json, cell by cell
    with open(out / "tables" / "counts.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        if row["class"] == "all":
            assert int(row["total"]) == stats["rows"][row["split"]]
            continue
        for subset in (*SUBSETS, NULL_SUBSET):
            assert int(row[subset]) == stats["counts"][row["split"]][row["class"]][subset]
    assert {r["split"] for r in rows} == {"train", "validation", "unlabeled"}
    assert "| split | class | easy |" in (out / "tables" / "counts.md").read_text()


def test_report_names_only_existing_valid_pngs(cli_run):
    _, out, _ = cli_run
    page = (out / "report.html").read_text()
    parser = _Links()
    parser.feed(page)
    assert parser.external == []  # readable offline: nothing fetched from elsewhere
    assert len(parser.images) == len(PLOTS)
    named = set()
    for image in parser.images:
        file = out / image["data-file"]
        assert file.is_file(), image["data-file"]
        _assert_png(file.read_bytes(), image["data-file"])
        src = image["src"]
        assert src.startswith("data:image/png;base64,")
        embedded = base64.b64decode(src.split(",", 1)[1])
        assert embedded == file.read_bytes()
        named.add(image["data-file"])
    png_links = {h for h in parser.hrefs if h.endswith(".png")}
    assert png_links == named
    assert named == {f"plots/{p.file}" for p in PLOTS}
    for href in parser.hrefs:
        if not href.startswith("#"):
            assert (out / href).is_file(), href
    assert parser.tables >= 10


def test_report_with_linked_plots(cli_run, tmp_path):
    _, out, _ = cli_run
    stats = json.loads((out / "stats.json").read_text())
    output = write_stats_files(stats, tmp_path / "linked", embed=False)
    parser = _Links()
    parser.feed(output.report_path.read_text())
    assert len(parser.images) == len(PLOTS)
    for image in parser.images:
        assert image["src"] == image["data-file"]
        _assert_png((output.out_dir / image["src"]).read_bytes(), image["src"])


def test_without_matplotlib_everything_but_plots_is_written(cli_run, tmp_path, monkeypatch, capsys, caplog):
    _, out, _ = cli_run
    stats = json.loads((out / "stats.json").read_text())
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    output = write_stats_files(stats, tmp_path / "noplots")
    assert output.plots == {} and "matplotlib" in output.plot_note
    assert "affectnetplus-hf[stats]" in caplog.text  # logged as a warning, not printed
    assert not capsys.readouterr().out
    caplog.clear()
    page = output.report_path.read_text()
    assert "<img" not in page and "matplotlib" in page and "<table>" in page
    assert not (tmp_path / "noplots" / "plots").exists()
    # an export's card: no plots, a printed note, tables still there, no dangling image links
    assert write_card_plots(stats, tmp_path / "export") == {}
    assert "plots skipped" in caplog.text
    section = card_section(stats, {})
    assert "![" not in section and "| subset |" in section


def test_card_section_links_drawn_plots(cli_run, tmp_path):
    _, out, _ = cli_run
    stats = json.loads((out / "stats.json").read_text())
    export_dir = tmp_path / "export"
    plots = write_card_plots(stats, export_dir)
    assert set(plots) == {p.name for p in PLOTS}
    section = card_section(stats, plots)
    assert section.startswith("## Statistics\n")
    links = [line.split("](", 1)[1].rstrip(")") for line in section.splitlines() if line.startswith("![")]
    assert sorted(links) == sorted(f"stats/{p.file}" for p in PLOTS)
    for link in links:
        _assert_png((export_dir / link).read_bytes(), link)
    # headline numbers come straight from the stats
    easy = stats["agreement"]["by_subset"]["easy"]
    assert f"| easy | {easy['rows']:,} |" in section
    assert f"{100 * easy['top1_rate']:.1f}%" in section


def test_cli_bad_source_exits_2(tmp_path, capsys):
    assert main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "Hub repo id" in err
    assert not (tmp_path / "o").exists()


def test_cli_no_plots_and_split(release, tmp_path, capsys):
    out = tmp_path / "o"
    assert main([str(release.root), "--out", str(out), "--no-plots", "--split", "train"]) == 0
    printed = capsys.readouterr().out
    assert "12 rows (train 12)" in printed and "report.html" in printed
    stats = json.loads((out / "stats.json").read_text())
    assert stats["splits"] == ["train"] and stats == compute_stats(release.root, splits=["train"]) | {
        "source": stats["source"]
    }
    assert not (out / "plots").exists()
    assert "turned off" in (out / "report.html").read_text()


def _card_images(readme: str) -> list[str]:
    return [line.split("](", 1)[1].rstrip(")") for line in readme.splitlines() if line.startswith("![")]


def test_export_card_embeds_statistics_and_plots(release, tmp_path, hf_cache):
    import datasets

    from affectnetplus_hf.exporter.writer import export

    out = tmp_path / "affectnet_plus"
    export(release.root, out, progress=False)
    readme = (out / "README.md").read_text()
    assert "\n## Statistics\n" in readme
    images = _card_images(readme)
    assert sorted(images) == sorted(f"stats/{p.file}" for p in PLOTS)
    for link in images:
        _assert_png((out / link).read_bytes(), link)
    # the card's numbers are those of the exported rows
    stats = compute_stats(out)
    cell = stats["agreement"]["by_subset"]["difficult"]
    assert f"| difficult | {cell['rows']:,} | {cell['entropy_rows']:,} | {cell['mean_entropy']:.3f} |" in readme
    # the plots beside the card do not disturb loading
    loaded = datasets.load_dataset(str(out), "all", split="validation")
    assert len(loaded) == stats["rows"]["validation"]


def test_export_without_matplotlib_skips_plots_with_a_note(release, tmp_path, monkeypatch, caplog):
    from affectnetplus_hf.exporter.writer import export

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "affectnet_plus"
    result = export(release.root, out, progress=False)
    assert result.written == 36
    assert "plots skipped" in caplog.text  # the export logs (a warning), it does not print
    readme = (out / "README.md").read_text()
    assert "## Statistics" in readme and _card_images(readme) == []
    assert not (out / "stats").exists()


def test_cli_on_a_source_without_rows_stops_with_one_line(make_release, tmp_path, capsys):
    """All records bad: exit 1 and a pointer to the list; no row at all: exit 2; nothing written."""
    manifest = make_release(n=2, parts=("validation",), faults={"validation": ["empty_image", "bad_json"]})
    out = tmp_path / "o"
    assert main([str(manifest.root), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert (
        "no statistics to compute: all 2 records are bad (affectnetplus verify" in err and "lists them with path" in err
    )
    assert len(err.strip().splitlines()) == 1 and not out.exists()
    assert main([str(manifest.root), "--out", str(out), "--quiet", "--split", "train"]) == 2
    assert "it holds no row in split train; nothing was written" in capsys.readouterr().err and not out.exists()


def test_cli_names_where_the_bad_records_are_listed(make_release, tmp_path, capsys):
    manifest = make_release(n=3, parts=("validation",), faults={"validation": ["bad_json"]})
    assert main([str(manifest.root), "--out", str(tmp_path / "o"), "--no-plots"]) == 0
    assert "bad records skipped: validation 1 (affectnetplus verify" in capsys.readouterr().out
