"""The one repo-id rule (huggingface_hub's), used alike by push, stream and stats."""

from __future__ import annotations

import pytest

from affectnetplus_hf.core.repo_id import is_repo_id, repo_id_problem


@pytest.mark.parametrize("text", ["my-lab/affectnet_plus", "x/_y", "Org.1/set-2"])
def test_an_id_the_hub_accepts_is_accepted(text):
    assert repo_id_problem(text) is None
    assert is_repo_id(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("x/y--z", "--"),
        ("x/y..z", ".."),
        ("x/y.", "cannot start or end"),
        ("affectnet_plus", "0 '/'"),
        ("a/b/c", "2 '/'"),
    ],
)
def test_an_id_the_hub_refuses_is_refused_with_the_reason(text, reason):
    assert reason in repo_id_problem(text)
    assert not is_repo_id(text)


def test_the_library_is_the_rule(monkeypatch):
    import huggingface_hub.utils

    def refuse_all(repo_id):
        raise huggingface_hub.utils.HFValidationError(f"refused {repo_id}")

    monkeypatch.setattr(huggingface_hub.utils, "validate_repo_id", refuse_all)
    assert repo_id_problem("my-lab/affectnet_plus") == "refused my-lab/affectnet_plus"
