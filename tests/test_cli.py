"""The command line's contract: exit codes, --version, help, one quiet flag, JSON, no tracebacks."""

import json
import subprocess
import sys
from importlib.metadata import version

import pytest

from affectnetplus_hf.cli import (
    EXIT_BAD_RECORDS,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    build_parser,
    main,
)
from affectnetplus_hf.core.configs import NULL_LABEL, NULL_SUBSET

_COMMANDS = ("sample", "export", "verify", "push", "demo", "stats")


def test_version_comes_from_the_package_metadata(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"affectnetplus {version('affectnetplus-hf')}"


@pytest.mark.parametrize("command", _COMMANDS)
def test_every_subcommand_has_a_description_an_example_and_points_once_to_the_exit_codes(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    parser = build_parser()._subparsers._group_actions[0].choices[command]
    assert parser.description and len(parser.description) > 40
    assert f"examples:\n  affectnetplus {command}" in text
    assert text.count("exit status") == 1 and "3 internal error" in text and "'affectnetplus --help'" in text
    assert "unexpected internal error" not in text  # the table itself is written once, in the top-level help


def test_the_top_level_help_holds_the_exit_status_table(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for code in (0, 1, 2, 3, 130, 141):
        assert f"\n  {code}  " in text, code


@pytest.mark.parametrize("command", _COMMANDS)
def test_one_quiet_flag_everywhere_and_the_old_spelling_still_works(command):
    parser = build_parser()
    positional = {
        "sample": ["out"],
        "export": ["raw"],
        "verify": ["raw"],
        "push": ["folder", "me/repo"],
        "demo": [],
        "stats": ["src"],
    }[command]
    for flag in ("--quiet", "-q", "--no-progress"):
        assert parser.parse_args([command, *positional, flag]).quiet is True
    assert "--no-progress" not in parser._subparsers._group_actions[0].choices[command].format_help()


def test_exit_codes(make_release, tmp_path, capsys):
    clean = make_release(n=2)
    assert main(["verify", str(clean.root), "-q"]) == EXIT_OK
    broken = make_release(n=2, faults={"train": ["bad_json"]})
    assert main(["verify", str(broken.root), "-q"]) == EXIT_BAD_RECORDS
    assert main(["export", str(broken.root), str(tmp_path / "out"), "-q", "--num-proc", "1"]) == EXIT_BAD_RECORDS
    assert main(["export", str(broken.root), str(tmp_path / "out2"), "-q", "--on-bad", "error"]) == EXIT_BAD_RECORDS
    assert main(["verify", str(tmp_path / "nowhere")]) == EXIT_USAGE
    with pytest.raises(SystemExit) as info:
        main(["verify", "--no-such-option"])
    assert info.value.code == EXIT_USAGE


def test_an_unexpected_error_is_one_line_and_a_traceback_file(make_release, monkeypatch, capsys):
    import affectnetplus_hf.release.verification as verify_module

    def broken(*args, **kwargs):
        raise RuntimeError("something nobody expected")

    monkeypatch.setattr(verify_module, "verify", broken)
    assert main(["verify", str(make_release(n=1).root)]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "internal error: RuntimeError: something nobody expected" in err
    path = err.split("the traceback is in ")[1].split(";")[0]
    with open(path) as handle:
        saved = handle.read()
    assert "Traceback" in saved and "something nobody expected" in saved


def test_verify_json_is_machine_readable(make_release, capsys):
    manifest = make_release(n=3, faults={"train": ["bad_json", "non_finite"]})
    assert main(["verify", str(manifest.root), "--json", "-q", "--num-proc", "1"]) == EXIT_BAD_RECORDS
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["records"] == {"read": 9, "good": 8, "bad": 1}
    train = report["parts"]["train"]
    assert train["bad_records"][0]["path"].endswith("0.json") and "not valid JSON" in train["bad_records"][0]["reason"]
    assert any(n["field"] == "valence" and "finite" in n["reason"] for n in train["notes"])
    assert report["parts"]["unlabeled"]["counts"] == {NULL_LABEL: {NULL_SUBSET: 3}}


def test_nothing_to_export_stops_with_one_line_and_writes_the_report(make_release, tmp_path, capsys):
    manifest = make_release(n=2, parts=("validation",), faults={"validation": ["empty_image", "png_as_jpg"]})
    out = tmp_path / "affectnet_plus"
    assert main(["export", str(manifest.root), str(out), "-q"]) == EXIT_BAD_RECORDS
    err = capsys.readouterr().err
    assert "nothing to export: all 2 records are bad" in err and "was not created" in err
    assert not out.exists()
    lines = [json.loads(line) for line in (tmp_path / "affectnet_plus.report.jsonl").read_text().splitlines()]
    assert sorted(line["image_id"] for line in lines if line["kind"] == "bad_record") == ["0", "1"]
    for path in (manifest.root / "human_annotated" / "validation_set").rglob("*.*"):
        path.unlink()
    assert main(["export", str(manifest.root), str(out), "-q"]) == EXIT_USAGE
    assert "hold no record" in capsys.readouterr().err
    assert main(["verify", str(manifest.root), "-q"]) == EXIT_USAGE


def test_library_functions_do_not_print(make_release, tmp_path, capsys):
    from affectnetplus_hf.exporter.writer import export
    from affectnetplus_hf.release.verification import verify

    manifest = make_release(n=2, faults={"train": ["missing_image"]})
    verify(manifest.root, progress=False)
    export(manifest.root, tmp_path / "out", progress=False, card_plots=False)
    assert capsys.readouterr().out == ""


def test_odd_file_names_print_without_crashing(make_release, tmp_path):
    import os

    manifest = make_release(n=1, parts=("train",))
    images = manifest.root / "human_annotated" / "train_set" / "images"
    os.close(os.open(os.fsencode(images) + b"/\xff\xfe.jpg", os.O_CREAT | os.O_WRONLY))
    proc = subprocess.run(
        [sys.executable, "-m", "affectnetplus_hf", "verify", str(manifest.root), "-q"], capture_output=True, timeout=120
    )
    assert proc.returncode == EXIT_OK, proc.stderr
    assert b"not valid UTF-8" in proc.stdout and b"Traceback" not in proc.stderr


def test_nothing_to_export_keeps_an_earlier_export_as_it_was(make_release, tmp_path, capsys):
    out = tmp_path / "affectnet_plus"
    good = make_release(n=2, parts=("validation",))
    assert main(["export", str(good.root), str(out), "-q"]) == EXIT_OK
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    bad = make_release(n=2, parts=("validation",), faults={"validation": ["empty_image", "bad_json"]})
    assert main(["export", str(bad.root), str(out), "-q"]) == EXIT_BAD_RECORDS
    assert "was left as it was" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize(("parts", "config"), [(("unlabeled",), "unlabeled"), (("validation", "unlabeled"), "all")])
def test_export_suggests_the_config_that_holds_the_exported_rows(make_release, tmp_path, capsys, parts, config):
    manifest = make_release(n=2, parts=parts)
    assert main(["export", str(manifest.root), str(tmp_path / "out"), "-q", "--num-proc", "1"]) == 0
    suggestion = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("load it:"))
    assert f'load_dataset({json.dumps(str(tmp_path / "out"))}, "{config}")' in suggestion  # the path, never a bare name


def test_sample_quiet_prints_only_what_it_wrote(tmp_path, capsys):
    assert main(["sample", str(tmp_path / "s"), "--n", "2", "-q"]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("wrote a synthetic AffectNet+ release (6 records") and len(out.splitlines()) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["export", "raw", "--num-proc", "0"],
        ["verify", "raw", "--num-proc", "-1"],
        ["export", "raw", "--num-shards", "0"],
        ["sample", "out", "--n", "x"],
        ["demo", "--n", "0"],
    ],
)
def test_counts_below_one_are_usage_errors_naming_the_option(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == EXIT_USAGE and f"argument {argv[-2]}: expected a whole number of 1 or more" in err


def test_ctrl_c_is_one_line_saying_what_was_left_and_exit_130(make_release, monkeypatch, capsys):
    import affectnetplus_hf.cli as cli
    import affectnetplus_hf.exporter.writer as export_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(export_module, "export", interrupted)
    assert main(["export", str(make_release(n=1).root), "out", "-q"]) == EXIT_INTERRUPTED == 130
    err = capsys.readouterr().err
    assert err.startswith("affectnetplus export: interrupted; the output folder holds the previous export")
    assert len(err.strip().splitlines()) == 1
    monkeypatch.setattr(cli, "build_parser", interrupted)  # Ctrl-C while the command's modules load
    assert main(["verify", "x"]) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "affectnetplus: interrupted\n"


def test_the_command_imports_no_heavy_module_before_main_catches_ctrl_c():
    code = "import sys, affectnetplus_hf.cli; print(sorted(m for m in ('datasets', 'pyarrow', 'numpy', 'torch') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr


def test_printed_commands_survive_spaces_and_quotes_in_paths(make_release, tmp_path, capsys):
    import ast
    import shlex

    manifest = make_release(n=2, parts=("validation",))
    out = tmp_path / "my data" / 'it\'s "é" x'
    out.parent.mkdir()
    assert main(["export", str(manifest.root), str(out), "-q", "--num-proc", "1"]) == EXIT_OK
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("load it: "))
    words = shlex.split(line[len("load it: ") :])
    assert words[:2] == ["python", "-c"]
    call = ast.parse(words[2]).body[1].value.args[0]  # print(load_dataset(PATH, CONFIG))
    assert [ast.literal_eval(a) for a in call.args] == [str(out), "all"]
    assert main(["sample", str(tmp_path / "a b"), "--n", "1"]) == EXIT_OK
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("next: "))
    assert shlex.split(line)[1:4] == ["affectnetplus", "verify", str(tmp_path / "a b")]


def test_a_bare_os_error_says_the_path_what_happened_and_what_to_do(make_release, tmp_path, capsys):
    in_the_way = tmp_path / "afile"
    in_the_way.write_text("mine")
    assert main(["sample", str(in_the_way / "sub"), "--n", "1", "-q"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "[Errno" not in err and f"{in_the_way}/sub" in err and "Not a directory" in err
    assert "a file is in the way where a folder is needed: choose another path or move the file" in err
    assert in_the_way.read_text() == "mine"


def test_a_closed_standard_output_ends_quietly_with_141(make_release):
    """`affectnetplus verify RAW | head -0`: the reader left before the report was printed."""
    import subprocess
    import sys

    manifest = make_release(n=2, parts=("validation",))
    proc = subprocess.Popen(
        [sys.executable, "-m", "affectnetplus_hf", "verify", str(manifest.root), "-q", "--num-proc", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader is gone before anything is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "Broken pipe" not in err


def test_export_names_the_files_of_yours_it_kept(make_release, tmp_path, capsys):
    manifest = make_release(n=2, parts=("validation",))
    out = tmp_path / "affectnet_plus"
    assert main(["export", str(manifest.root), str(out), "-q", "--num-proc", "1"]) == 0
    (out / "NOTES.md").write_text("mine")
    capsys.readouterr()
    assert main(["export", str(manifest.root), str(out), "-q", "--num-proc", "1"]) == 0
    printed = capsys.readouterr().out
    assert f"kept 1 file(s) of yours in {out}" in printed and "NOTES.md" in printed
    assert (out / "NOTES.md").read_text() == "mine"
