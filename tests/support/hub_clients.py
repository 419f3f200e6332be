"""Point the real ``huggingface_hub`` and ``datasets`` clients at a test server.

TEST INFRASTRUCTURE ONLY (see :mod:`tests.support.hub_server`).
"""

from __future__ import annotations

from urllib.parse import urlsplit


def point_clients_at(endpoint: str, monkeypatch) -> None:
    """Make ``huggingface_hub`` and ``datasets`` (already imported) talk to ``endpoint``.

    Both libraries read ``HF_ENDPOINT`` once, at import time, into module constants, so
    setting the environment variable later changes nothing. These are every copy the two
    installed versions keep (huggingface_hub 2.4, datasets 5.2; found by reading their sources):

    * ``huggingface_hub.constants.ENDPOINT``: the default of ``HfApi`` / ``HfFileSystem``;
    * ``huggingface_hub.constants.HUGGINGFACE_CO_URL_TEMPLATE``: ``hf_hub_url`` builds
      ``resolve`` URLs from it, then swaps its prefix for the endpoint (huggingface_hub 0.26,
      the floor, reads the copy ``file_download`` imported by name);
    * ``huggingface_hub.constants.HF_URL_HOSTS`` and ``huggingface_hub.utils._http._HUB_ORIGINS``:
      the hosts treated as the Hub (URL parsing, following redirects with the auth header);
    * ``datasets.config.HF_ENDPOINT`` and ``datasets.config.HUB_DATASETS_URL``: every ``HfApi``
      and ``HfFileSystem`` that ``datasets`` builds passes ``endpoint=config.HF_ENDPOINT``.

    The environment variable is set too, for code that reads it late (and for subprocesses).
    """
    import datasets.config as dconfig
    import huggingface_hub.constants as hconst
    import huggingface_hub.utils._http as hhttp

    endpoint = endpoint.rstrip("/")
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setattr(hconst, "ENDPOINT", endpoint)
    template = endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    monkeypatch.setattr(hconst, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    import huggingface_hub.file_download as hdownload

    if hasattr(hdownload, "HUGGINGFACE_CO_URL_TEMPLATE"):  # huggingface_hub 0.26 keeps its own copy there
        monkeypatch.setattr(hdownload, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    host = urlsplit(endpoint).hostname
    # huggingface_hub 0.26 (the floor, docs/compatibility.md) has neither set: no host check to widen
    if hasattr(hconst, "HF_URL_HOSTS"):
        monkeypatch.setattr(hconst, "HF_URL_HOSTS", frozenset(hconst.HF_URL_HOSTS | {host}))
    if hasattr(hhttp, "_HUB_ORIGINS"):
        monkeypatch.setattr(hhttp, "_HUB_ORIGINS", frozenset(hhttp._HUB_ORIGINS | {hhttp._url_origin(endpoint)}))
    monkeypatch.setattr(dconfig, "HF_ENDPOINT", endpoint)
    monkeypatch.setattr(dconfig, "HUB_DATASETS_URL", endpoint + "/datasets/{repo_id}/resolve/{revision}/{path}")
