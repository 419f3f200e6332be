"""The package's one repo-id rule: a Hub dataset repo is ``namespace/name`` that
``huggingface_hub.utils.validate_repo_id`` accepts (``x/y--z`` is refused and ``x/_y``
accepted, as on the Hub). ``push`` refuses a bad id with the reason; ``stream`` and
``stats`` read a source that passes (and is not a local path) as a Hub repo."""

from __future__ import annotations

import os

__all__ = ["is_repo_id", "repo_id_problem"]


def repo_id_problem(text: str) -> str | None:
    """Why ``text`` is not a Hub repo id (``namespace/name``), or ``None`` when it is one."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not isinstance(text, str):
        return f"not a string but {type(text).__name__}"
    if text.count("/") != 1:
        return f"it has {text.count('/')} '/', not the one between namespace and name"
    try:
        validate_repo_id(text)
    except HFValidationError as err:
        return str(err)
    return None


def is_repo_id(source: str) -> bool:
    """Whether ``source`` names a Hub dataset repo: ``namespace/name``, not a local path, and
    accepted by :func:`repo_id_problem` (the package's one repo-id rule)."""
    return not os.path.exists(source) and repo_id_problem(source) is None
