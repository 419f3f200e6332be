"""Push an export to a Hub-compatible server with the real huggingface_hub client.

Private by default, gated, every file once, stale shards of an earlier export removed,
retries that never duplicate, public only with the licence acknowledgement, and the token
nowhere but in the Authorization header.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from affectnetplus_hf.core.export_files import file_record, read_info
from affectnetplus_hf.errors import PublishError
from affectnetplus_hf.hub.publish import PLACEHOLDER_MARKER, exported_files, push
from tests.support.hub_fixtures import REPO_ID, make_export
from tests.support.hub_server import TOKEN_READ, TOKEN_WRITE

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    import affectnetplus_hf.hub.publish as hub_module

    monkeypatch.setattr(hub_module.time, "sleep", lambda seconds: None)


def _local_files(folder: Path) -> dict[str, bytes]:
    return {rel: (folder / rel).read_bytes() for rel in exported_files(folder)}


def _lfs_puts(server) -> list[str]:
    return [path for method, path, status in server.log if method == "PUT" and path.startswith("/lfs-upload/")]


def test_push_creates_a_private_gated_repo_holding_exactly_the_export(hub, exported):
    messages: list[str] = []
    result = push(exported, REPO_ID, progress=False, echo=messages.append)

    repo = hub.repo(REPO_ID)
    assert repo.private is True and result.private is True
    assert repo.gated == "manual" and result.gated == "manual"
    remote = hub.files(REPO_ID)
    remote.pop(".gitattributes")
    assert remote == _local_files(exported)
    assert not any(p.endswith(".jsonl") for p in remote)  # the bad-record report stays home
    assert sorted(result.uploaded) == sorted(_local_files(exported))
    assert any("private" in m for m in messages)
    info = json.loads(remote["export_info.json"])
    assert all(p.startswith(f"data/{info['fingerprint']}/") for p in remote if p.startswith("data/"))
    # The Hub reads the gating form from the card: the requester is asked about their licence.
    from huggingface_hub import HfApi

    card = HfApi().dataset_info(REPO_ID).card_data
    assert "licence" in card["extra_gated_prompt"].lower()
    assert any("licence" in field.lower() for field in card["extra_gated_fields"])


def _restamp(folder: Path, rel: str) -> None:
    """Record ``rel``'s current size and sha256 in the manifest, as if the export had written it so."""
    info = json.loads((folder / "export_info.json").read_text())
    info["files"][rel] = file_record(folder / rel).to_json()
    (folder / "export_info.json").write_text(json.dumps(info))


def test_a_card_without_gating_fields_cannot_go_public(hub, exported):
    card = (exported / "README.md").read_text()
    stripped = "\n".join(line for line in card.splitlines() if not line.startswith("extra_gated_prompt"))
    (exported / "README.md").write_text(stripped)
    _restamp(exported, "README.md")
    with pytest.raises(PublishError, match="extra_gated_prompt"):
        push(exported, REPO_ID, public=True, i_have_redistribution_rights=True, progress=False, echo=None)
    assert hub.log == []
    messages: list[str] = []
    push(exported, REPO_ID, progress=False, echo=messages.append)  # private: a warning, not a stop
    assert any("extra_gated_prompt" in m for m in messages)


def test_second_push_uploads_nothing_and_makes_no_data_commit(hub, exported, caplog):
    push(exported, REPO_ID, progress=False, echo=None)
    commits_before = len(hub.repo(REPO_ID).commits)
    puts_before = len(_lfs_puts(hub))
    requests_before = len(hub.log)

    with caplog.at_level(logging.WARNING):
        again = push(exported, REPO_ID, progress=False, echo=None)

    assert "empty commit" not in caplog.text  # no commit is even tried: nothing to print about it
    assert not any("/commit/main" in path for method, path, status in hub.log[requests_before:] if method == "POST")

    assert again.uploaded == [] and again.deleted == [] and again.commits == []
    assert sorted(again.unchanged) == sorted(_local_files(exported))
    assert len(_lfs_puts(hub)) == puts_before
    assert len(hub.repo(REPO_ID).commits) == commits_before


def test_push_of_a_new_export_removes_the_previous_fingerprint_folder(hub, exported, tmp_path):
    push(exported, REPO_ID, progress=False, echo=None)
    old = json.loads((exported / "export_info.json").read_text())["fingerprint"]
    newer = make_export(tmp_path / "second", n=9, seed=5)
    new = json.loads((newer / "export_info.json").read_text())["fingerprint"]
    assert new != old

    result = push(newer, REPO_ID, progress=False, echo=None)

    remote = hub.files(REPO_ID)
    assert not any(p.startswith(f"data/{old}/") for p in remote)
    assert result.deleted and all(p.startswith(f"data/{old}/") for p in result.deleted)
    remote.pop(".gitattributes")
    assert remote == _local_files(newer)


def test_stray_files_in_the_folder_are_never_published(hub, exported):
    (exported / "stats" / "my_notes.md").write_text("draft")
    (exported / "NOTES.md").write_text("mine")
    (exported / "my_experiments").mkdir()
    (exported / "my_experiments" / "run1.csv").write_text("a,b\n")
    messages: list[str] = []
    result = push(exported, REPO_ID, progress=False, echo=messages.append)
    remote = set(hub.files(REPO_ID))
    assert not remote & {"stats/my_notes.md", "NOTES.md", "my_experiments/run1.csv", "export_report.jsonl"}
    assert {"stats/my_notes.md", "NOTES.md", "my_experiments/run1.csv"} <= set(result.not_published)
    assert any("not sent" in m for m in messages)


def test_plots_a_new_export_no_longer_has_are_removed(hub, exported, tmp_path):
    push(exported, REPO_ID, progress=False, echo=None)
    plots = {p for p in hub.files(REPO_ID) if p.startswith("stats/")}
    assert plots  # the session export drew its plots
    newer = make_export(tmp_path / "second", n=9, seed=5, card_plots=False)
    result = push(newer, REPO_ID, progress=False, echo=None)
    assert plots <= set(result.deleted)
    assert not any(p.startswith("stats/") for p in hub.files(REPO_ID))


def test_shards_go_in_several_commits_and_the_card_last(hub, exported):
    result = push(exported, REPO_ID, progress=False, echo=None, max_files_per_commit=3)

    data = [p for p in exported_files(exported) if p.startswith("data/")]
    expected_commits = 1 + -(-len(data) // 3) + 1  # placeholder card, shards, card
    assert len(result.commits) == expected_commits
    repo = hub.repo(REPO_ID)
    first, last = repo.commits[result.commits[0]], repo.commits[result.commits[-1]]
    before_last = repo.commits[last.parent]
    assert not any(p.startswith("data/") for p in first.files)  # the placeholder comes before any data
    card_before_last = hub.blob_path(before_last.files["README.md"].sha256).read_text()
    assert PLACEHOLDER_MARKER in card_before_last and set(data) <= set(before_last.files)
    assert hub.blob_path(last.files["README.md"].sha256).read_bytes() == (exported / "README.md").read_bytes()
    # gating went on before the first commit, so before the first data byte
    requests = [(method, path) for method, path, status in hub.log]
    first_settings = next(i for i, (m, p) in enumerate(requests) if m == "PUT" and p.endswith("/settings"))
    first_commit = next(i for i, (m, p) in enumerate(requests) if m == "POST" and "/commit/" in p)
    assert first_settings < first_commit


@pytest.mark.parametrize("after", [False, True], ids=["failed-commit", "lost-response"])
def test_a_commit_that_fails_or_loses_its_answer_is_retried_without_duplicates(hub, exported, after):
    hub.inject("POST", r"/commit/main$", 503, times=1, after=after)
    messages: list[str] = []

    push(exported, REPO_ID, progress=False, echo=messages.append)

    assert any("retry 1/3" in m for m in messages)
    remote = hub.files(REPO_ID)
    remote.pop(".gitattributes")
    assert remote == _local_files(exported)
    repo = hub.repo(REPO_ID)
    # Each file was added by exactly one commit: walk the history and count introductions.
    introduced: dict[str, int] = {}
    commit = repo.head
    chain = []
    while commit is not None:
        chain.append(commit)
        commit = repo.commits.get(commit.parent) if commit.parent else None
    for newer, older in zip(chain, chain[1:], strict=False):
        for path, entry in newer.files.items():
            if path not in older.files or older.files[path].sha256 != entry.sha256:
                introduced[path] = introduced.get(path, 0) + 1
    assert introduced.pop("README.md") == 2  # the placeholder card, then the card
    assert introduced and all(n == 1 for n in introduced.values())
    uploaded = _lfs_puts(hub)
    assert len(uploaded) == len(set(uploaded))


def test_public_needs_the_acknowledgement_and_says_why(hub, exported):
    with pytest.raises(PublishError) as err:
        push(exported, REPO_ID, public=True, progress=False, echo=None)
    assert "redistribut" in str(err.value) and "--i-have-redistribution-rights" in str(err.value)
    assert hub.log == [] and hub.repos == {}  # nothing reached the server

    messages: list[str] = []
    result = push(
        exported, REPO_ID, public=True, i_have_redistribution_rights=True, progress=False, echo=messages.append
    )
    assert result.private is False
    assert hub.repo(REPO_ID).private is False and hub.repo(REPO_ID).gated == "manual"
    assert any("WARNING" in m and "redistribut" in m for m in messages)
    # Gating went on before the repo was made public.
    settings = [path for method, path, status in hub.log if method == "PUT" and path.endswith("/settings")]
    assert len(settings) == 2


def test_an_existing_public_repo_is_refused_for_a_private_push(hub, exported):
    from huggingface_hub import HfApi

    HfApi().create_repo(REPO_ID, repo_type="dataset", private=False)
    with pytest.raises(PublishError, match="PUBLIC"):
        push(exported, REPO_ID, progress=False, echo=None)
    assert set(hub.files(REPO_ID)) == {".gitattributes"}


def test_an_incomplete_export_is_refused_before_any_request(hub, exported):
    shard = next(p for p in exported_files(exported) if p.startswith("data/"))
    (exported / shard).unlink()
    with pytest.raises(PublishError, match="missing"):
        push(exported, REPO_ID, progress=False, echo=None)
    assert hub.log == []


def test_no_token_anywhere_is_a_clear_error(hub, exported, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(PublishError, match="HF_TOKEN"):
        push(exported, REPO_ID, progress=False, echo=None)
    assert hub.log == []


def test_the_login_cache_token_is_used(hub, exported, monkeypatch):
    import huggingface_hub.constants as hconst

    monkeypatch.delenv("HF_TOKEN")
    Path(hconst.HF_TOKEN_PATH).parent.mkdir(parents=True, exist_ok=True)
    Path(hconst.HF_TOKEN_PATH).write_text(TOKEN_WRITE)
    push(exported, REPO_ID, progress=False, echo=None)
    assert hub.repo(REPO_ID).private is True


@pytest.mark.parametrize(
    "token, status",
    [(TOKEN_READ, 403), ("hf_UnknownTokenDoNotLeak9876543210zyxwv", 401)],
    ids=["read-only-token", "unknown-token"],
)
def test_the_token_never_appears_in_output_logs_errors_or_files(
    hub, exported, monkeypatch, capfd, caplog, token, status
):
    from huggingface_hub.utils import logging as hf_logging

    monkeypatch.delenv("HF_TOKEN")
    hf_logging.set_verbosity_debug()  # the most the library ever logs (curl commands included)
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    try:
        # A good push with --token, then a push that the server refuses.
        push(exported, REPO_ID, token=TOKEN_WRITE, progress=True, echo=texts.append)
        with pytest.raises(PublishError) as err:
            push(exported, "my-lab/second", token=token, progress=True, echo=texts.append)
    finally:
        hf_logging.set_verbosity_warning()
    assert f"({status})" in str(err.value)
    out, errout = capfd.readouterr()
    texts += [out, errout, caplog.text, str(err.value), repr(err.value), str(err.value.__cause__ or "")]
    for secret in (TOKEN_WRITE, token):
        assert all(secret not in text for text in texts)
        for path in [*hub.stored_paths(), *exported.rglob("*")]:
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path
    assert hub.log  # the requests did reach the server


def test_cli_push(hub, exported, capsys):
    from affectnetplus_hf.cli import main

    assert main(["push", str(exported), REPO_ID, "--public", "--no-progress"]) == 2
    assert "redistribut" in capsys.readouterr().err
    assert hub.repos == {}

    assert main(["push", str(exported), REPO_ID, "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert REPO_ID in captured.out + captured.err
    assert hub.repo(REPO_ID).private is True
    assert TOKEN_WRITE not in captured.out + captured.err


def test_push_to_a_branch_leaves_main_alone(hub, exported):
    result = push(exported, REPO_ID, revision="v1", progress=False, echo=None)
    assert result.revision == "v1"
    assert set(hub.files(REPO_ID, revision="main")) == {".gitattributes"}
    on_branch = hub.files(REPO_ID, revision="v1")
    on_branch.pop(".gitattributes")
    assert on_branch == _local_files(exported)


# ----------------------------------------------------------------------------- never a partial dataset


def _ids_or_failure(repo_id: str, cache: Path) -> list[str] | None:
    """The train image ids ``load_dataset`` returns for the repo, or None if it fails loudly.

    Asked twice, as a user would: with the config ``all`` and with no config at all (what
    auto-detection would serve from bare shards). Both must agree.
    """
    import datasets

    answers = []
    for config in ("all", None):
        try:
            ds = datasets.load_dataset(repo_id, config, split="train", cache_dir=str(cache / str(config)))
        except Exception as err:  # a loud failure is allowed; which one does not matter
            assert not isinstance(err, AssertionError)
            answers.append(None)
        else:
            answers.append(sorted(ds["image_id"]))
    assert answers[0] == answers[1] or None in answers, "the default config and `all` serve different rows"
    return answers[1] if answers[0] is None else answers[0]


def _local_ids(folder: Path) -> list[str]:
    import datasets

    return sorted(datasets.load_dataset(str(folder), "all", split="train")["image_id"])


@pytest.mark.parametrize("after", [False, True], ids=["failed-commit", "lost-response"])
def test_a_first_push_stopped_at_any_commit_is_never_loadable_as_a_subset(hub, exported, hf_cache, after):
    whole = _local_ids(exported)
    stopped_at = []
    for n in range(20):
        repo_id = f"my-lab/first-{n}"
        hub.inject("POST", rf"/{repo_id}/commit/main$", 503, skip=n, after=after)
        try:
            push(exported, repo_id, progress=False, echo=None, retries=0, max_files_per_commit=2)
        except PublishError:
            stopped_at.append(n)
            got = _ids_or_failure(repo_id, hf_cache / repo_id)
            assert got is None or got == whole, f"stopped at commit {n + 1}: {len(got)} of {len(whole)} rows"
            repo = hub.repo(repo_id)
            if any(p.startswith("data/") for p in repo.head.files):
                assert repo.private and repo.gated == "manual"  # before the first data byte
            push(exported, repo_id, progress=False, echo=None)  # running it again finishes it
            assert _ids_or_failure(repo_id, hf_cache / (repo_id + "-done")) == whole
        else:
            hub.faults.clear()
            assert _ids_or_failure(repo_id, hf_cache / repo_id) == whole
            break
    assert len(stopped_at) >= 4  # placeholder, at least two shard commits, the card


@pytest.mark.parametrize("after", [False, True], ids=["failed-commit", "lost-response"])
def test_a_repush_stopped_at_any_commit_serves_the_old_export_or_the_new_one(hub, exported, tmp_path, hf_cache, after):
    newer = make_export(tmp_path / "second", n=9, seed=5)
    old, new = _local_ids(exported), _local_ids(newer)
    assert old != new
    for n in range(20):
        repo_id = f"my-lab/again-{n}"
        push(exported, repo_id, progress=False, echo=None)
        hub.inject("POST", rf"/{repo_id}/commit/main$", 503, skip=n, after=after)
        try:
            push(newer, repo_id, progress=False, echo=None, retries=0, max_files_per_commit=2)
        except PublishError:
            got = _ids_or_failure(repo_id, hf_cache / repo_id)
            assert got in (old, new), f"stopped at commit {n + 1}: neither the old nor the new export"
        else:
            hub.faults.clear()
            assert _ids_or_failure(repo_id, hf_cache / repo_id) == new
            break
    assert n >= 3


def test_foreign_files_in_the_repo_are_left_alone_and_named(hub, exported, tmp_path):
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi()
    api.create_repo(REPO_ID, repo_type="dataset", private=True)
    theirs = {
        "data/other_dataset/train.parquet": b"PAR1 theirs PAR1",
        "stats/my_notes.md": b"notes",
        "notes.txt": b"hi",
    }
    api.create_commit(
        REPO_ID,
        operations=[CommitOperationAdd(path_in_repo=p, path_or_fileobj=c) for p, c in theirs.items()],
        commit_message="their files",
        repo_type="dataset",
    )
    messages: list[str] = []
    first = push(exported, REPO_ID, progress=False, echo=messages.append)
    newer = make_export(tmp_path / "second", n=9, seed=5, card_plots=False)
    second = push(newer, REPO_ID, progress=False, echo=messages.append)

    remote = hub.files(REPO_ID)
    assert all(remote[p] == c for p, c in theirs.items())
    assert first.left_alone == second.left_alone == sorted(theirs)
    assert not set(second.deleted) & set(theirs)
    assert any("left alone 3 file(s)" in m and "stats/my_notes.md" in m for m in messages)


def test_a_card_the_package_did_not_write_is_not_overwritten(hub, exported):
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(REPO_ID, repo_type="dataset", private=True)
    api.upload_file(
        path_or_fileobj=b"# my own dataset\n", path_in_repo="README.md", repo_id=REPO_ID, repo_type="dataset"
    )
    commits = len(hub.repo(REPO_ID).commits)
    with pytest.raises(PublishError, match="README.md") as err:
        push(exported, REPO_ID, progress=False, echo=None)
    assert "Nothing was uploaded" in str(err.value)
    assert len(hub.repo(REPO_ID).commits) == commits and hub.files(REPO_ID)["README.md"] == b"# my own dataset\n"


@pytest.mark.parametrize("change", ["truncated", "edited"])
def test_a_shard_changed_after_the_export_is_refused_before_any_request(hub, exported, change):
    shard = next(p for p in exported_files(exported) if p.startswith("data/"))
    content = (exported / shard).read_bytes()
    if change == "truncated":
        (exported / shard).write_bytes(content[: len(content) // 2])
    else:  # same size, one byte different
        (exported / shard).write_bytes(content[:100] + bytes([content[100] ^ 1]) + content[101:])
    with pytest.raises(PublishError) as err:
        push(exported, REPO_ID, progress=False, echo=None)
    assert shard in str(err.value) and "re-run `affectnetplus export`" in str(err.value)
    assert hub.log == []


@pytest.mark.parametrize("repo_id", ["x/y--z", "affectnet_plus", "a/b/c", "./x"])
def test_a_repo_id_the_hub_refuses_is_refused_before_any_request(hub, exported, repo_id):
    with pytest.raises(PublishError, match="expected 'namespace/name'"):
        push(exported, repo_id, progress=False, echo=None)
    assert hub.log == []


@pytest.mark.parametrize("published_first", [False, True], ids=["first-push", "re-push"])
def test_shards_of_interrupted_pushes_are_removed_by_the_next_push_not_left_as_foreign(
    hub, exported, tmp_path, published_first
):
    """An interrupted push, then another export pushed (twice over): the shards the interrupted
    pushes sent are ours, so the push that finishes removes them instead of naming them as files
    'this package did not publish' and leaving the data in the repo for good."""
    from affectnetplus_hf.hub.publish import PENDING_FILE

    repo_id = "my-lab/interrupted"
    second = make_export(tmp_path / "second", n=9, seed=5)
    third = make_export(tmp_path / "third", n=7, seed=7)
    if published_first:
        push(exported, repo_id, progress=False, echo=None)
        stopped = [second, third]
        last = exported
    else:
        stopped = [exported, second]
        last = third
    for folder in stopped:
        hub.inject("POST", rf"/{repo_id}/commit/main$", 503, skip=2 if not published_first else 1, times=10)
        with pytest.raises(PublishError):
            push(folder, repo_id, progress=False, echo=None, retries=0, max_files_per_commit=3)
        hub.faults.clear()
        assert PENDING_FILE in hub.files(repo_id)
    result = push(last, repo_id, progress=False, echo=None)
    remote = set(hub.files(repo_id)) - {".gitattributes"}
    assert remote == set(exported_files(last)), sorted(remote - set(exported_files(last)))
    assert result.left_alone == [] and PENDING_FILE not in result.deleted
    assert any(p.startswith("data/") and "/" + read_info(last)["fingerprint"] + "/" not in p for p in result.deleted)


def test_a_pending_record_the_package_did_not_write_is_a_conflict(hub, exported):
    from huggingface_hub import HfApi

    from affectnetplus_hf.hub.publish import PENDING_FILE

    api = HfApi()
    api.create_repo(REPO_ID, repo_type="dataset", private=True)
    api.upload_file(path_or_fileobj=b"my own notes", path_in_repo=PENDING_FILE, repo_id=REPO_ID, repo_type="dataset")
    with pytest.raises(PublishError, match=PENDING_FILE):
        push(exported, REPO_ID, progress=False, echo=None)
    assert hub.files(REPO_ID)[PENDING_FILE] == b"my own notes"


def test_a_repo_published_by_the_format_1_package_is_refused_not_overwritten(hub, exported, tmp_path):
    """The package before the manifest published an export_info.json without `files` or a
    marker: it records no sha256, so nothing proves the repo's card, plots and shards are still
    what it published. Push replaces none of them and says what to do."""
    from huggingface_hub import HfApi

    push(exported, REPO_ID, progress=False, echo=None)
    info = read_info(exported)
    info.pop("files")
    info.pop("generator")
    info["format_version"] = 1
    HfApi().upload_file(
        path_or_fileobj=json.dumps(info).encode(), path_in_repo="export_info.json", repo_id=REPO_ID, repo_type="dataset"
    )
    before, commits = hub.files(REPO_ID), len(hub.repo(REPO_ID).commits)
    newer = make_export(tmp_path / "second", n=9, seed=5)
    with pytest.raises(PublishError) as err:
        push(newer, REPO_ID, progress=False, echo=None)
    assert "README.md" in str(err.value) and "remove those files from the repo yourself" in str(err.value)
    assert hub.files(REPO_ID) == before and len(hub.repo(REPO_ID).commits) == commits


def _reexport_into(folder: Path, tmp_path: Path, seed: int) -> str:
    """Export another synthetic release into ``folder`` (what a user re-running export does)."""
    from affectnetplus_hf.exporter.writer import export
    from affectnetplus_hf.release.sample import write_sample

    raw = write_sample(tmp_path / f"raw-{seed}" / "AffectNet+", n=5, seed=seed)
    return export(raw.root, folder, num_shards=2, progress=False, card_plots=False).fingerprint


def test_a_reexport_while_the_card_commit_waits_publishes_the_checked_export_whole(
    hub, exported, tmp_path, hf_cache, monkeypatch
):
    """The card and export_info that go up are the ones checked at the start, not whatever the
    folder holds by then: else a re-export in between publishes a card naming shards never sent."""
    import affectnetplus_hf.hub.publish as hub_module

    pushed_ids = _local_ids(exported)
    fingerprint = read_info(exported)["fingerprint"]
    real = hub_module._commit_card

    def reexport_first(session, local, plan):
        _reexport_into(exported, tmp_path, seed=9)
        return real(session, local, plan)

    monkeypatch.setattr(hub_module, "_commit_card", reexport_first)
    push(exported, REPO_ID, progress=False, echo=None)
    assert json.loads(hub.files(REPO_ID)["export_info.json"])["fingerprint"] == fingerprint
    assert _ids_or_failure(REPO_ID, hf_cache / "after") == pushed_ids


def test_a_reexport_while_shards_go_up_stops_the_push_and_the_repo_keeps_the_old_export(
    hub, exported, tmp_path, hf_cache, monkeypatch
):
    import affectnetplus_hf.hub.publish as hub_module

    push(exported, REPO_ID, progress=False, echo=None)
    old_ids = _local_ids(exported)
    _reexport_into(exported, tmp_path, seed=3)
    real, calls = hub_module._commit, []

    def reexport_after_first_shard_commit(session, operations, message):
        answer = real(session, operations, message)
        calls.append(message)
        if "shards 1/" in message:
            _reexport_into(exported, tmp_path, seed=4)
        return answer

    monkeypatch.setattr(hub_module, "_commit", reexport_after_first_shard_commit)
    with pytest.raises(PublishError) as err:
        push(exported, REPO_ID, progress=False, echo=None, max_files_per_commit=3)
    assert "re-exported" in str(err.value) and str(exported) in str(err.value)
    assert _ids_or_failure(REPO_ID, hf_cache / "after") == old_ids


def test_a_failed_commit_says_what_the_repo_serves_meanwhile(hub, exported):
    hub.inject("POST", rf"/{REPO_ID}/commit/main$", 503, skip=1, times=5)
    with pytest.raises(PublishError) as err:
        push(exported, REPO_ID, progress=False, echo=None, retries=0)
    message = str(err.value)
    assert "commit shards 1/1 failed" in message and "push resumes" in message
    assert f"{REPO_ID} serves the export it served before (none, on a first push: loading fails)" in message


def test_push_reports_through_logging_and_the_cli_quiet_keeps_only_warnings(hub, exported, capsys, caplog):
    """Progress lines go to the ``affectnetplus_hf.hub.publish`` logger at INFO (not print), so
    ``affectnetplus push -q`` shows no progress; without -q the CLI shows it on stderr."""
    from affectnetplus_hf.cli import main

    with caplog.at_level(logging.INFO, logger="affectnetplus_hf.hub.publish"):
        push(exported, REPO_ID, progress=False)
    assert any(r.levelno == logging.INFO and r.getMessage().startswith("Pushing") for r in caplog.records)
    capsys.readouterr()

    assert main(["push", str(exported), REPO_ID, "-q"]) == 0
    assert "Pushing" not in capsys.readouterr().err
    assert main(["push", str(exported), REPO_ID]) == 0
    assert "Pushing" in capsys.readouterr().err
