"""Streaming with the transfer running ahead of the decoding (affectnetplus_hf.hub.readahead).

What a user relies on: the same rows in the same order and types as reading the export locally,
whichever way the bytes arrive (in pieces, over retried connections, through a footer longer than
the first request); a fetch that fails is raised, never a shorter stream; the dataset still
resumes and splits across workers; the Hub's token never follows a redirect to another host;
a Hub stream reads the one commit it started from. The servers are the tests' own
(tests/support/hub_server.py); nothing here measures time.
"""

from __future__ import annotations

import io
import random
import threading
import urllib.request

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from affectnetplus_hf.core.schema import FEATURES
from affectnetplus_hf.hub import readahead
from affectnetplus_hf.hub.readahead import ShardBuffer
from affectnetplus_hf.hub.remote import config_data_files, stream
from tests.support.hub_fixtures import row_key
from tests.support.hub_server import RangeFileServer


class _Body(io.RawIOBase):
    """Bytes ``start`` to ``end - 1`` of ``data``, ``step`` at a time; a request that starts before
    ``fail_at`` raises ``error`` on reaching it."""

    def __init__(self, data: bytes, start: int, end: int, step: int, fail_at: int | None, error: BaseException | None):
        super().__init__()
        self._data, self._start, self._pos, self._end, self._step = data, start, start, end, step
        self._fail_at = fail_at if fail_at is not None and start < fail_at else None
        self._error = error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._fail_at is not None and self._pos >= self._fail_at:
            assert self._error is not None
            raise self._error
        count = max(0, min(len(buffer), self._step, self._end - self._pos, len(self._data) - self._pos))
        if self._fail_at is not None:
            count = min(count, self._fail_at - self._pos)
        buffer[:count] = self._data[self._pos : self._pos + count]
        self._pos += count
        return count


def _ranges(
    data: bytes, *, step: int = 1000, fail_at: int | None = None, error: BaseException | None = None, times: int = -1
):
    """An ``open_range`` over ``data`` that records each request's (start, end); the first ``times``
    requests that start before ``fail_at`` fail there (every one when ``times`` is -1)."""
    asked: list[tuple[int, int]] = []
    failures = {"left": times}

    def open_range(start: int, end: int):
        asked.append((start, end))
        fails = fail_at is not None and start < fail_at and failures["left"] != 0
        if fails:
            failures["left"] -= 1
        return _Body(data, start, end, step, fail_at if fails else None, error)

    return open_range, asked


@pytest.fixture
def small_pieces(monkeypatch):
    """Shards of a few KB still go through the background path in many pieces."""
    monkeypatch.setattr(readahead, "TAIL_BYTES", 2048)
    monkeypatch.setattr(readahead, "CHUNK_BYTES", 4096)


def _parquet_bytes(row_groups: int = 5, rows: int = 40) -> tuple[bytes, pa.Table]:
    noise = random.Random(0)
    table = pa.table(
        {"i": list(range(row_groups * rows)), "blob": [noise.randbytes(300) for _ in range(row_groups * rows)]}
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=rows)
    return sink.getvalue(), table


def test_every_read_returns_the_files_bytes_at_any_offset(small_pieces):
    data = bytes(range(256)) * 200  # 51,200 bytes: tail of 2,048, the rest in 4,096-byte steps
    open_range, asked = _ranges(data)
    with ShardBuffer(open_range, len(data), name="blob") as shard:
        for start, size in [(len(data) - 10, 10), (0, 1), (5000, 20000), (len(data) - 3000, 3000), (49000, -1)]:
            shard.seek(start)
            assert bytes(shard.read(size)) == data[start : start + size if size >= 0 else None]
        assert shard.seek(-8, io.SEEK_END) == len(data) - 8 and bytes(shard.read()) == data[-8:]
    assert sorted(asked) == [(0, len(data) - 2048), (len(data) - 2048, len(data))]  # the tail; the rest in one request


def test_pyarrow_reads_every_row_group_as_written(small_pieces):
    data, table = _parquet_bytes()
    with ShardBuffer(_ranges(data)[0], len(data), name="t.parquet") as shard, pq.ParquetFile(shard) as parquet:
        assert parquet.num_row_groups == 5
        assert pa.concat_tables(parquet.read_row_group(g) for g in range(5)).equals(table)


def test_a_failed_fetch_is_raised_by_the_read_that_needs_its_bytes(small_pieces):
    data = bytes(range(256)) * 200
    gone = FileNotFoundError("blob: HTTP 404 Not Found")
    open_range, asked = _ranges(data, fail_at=20_000, error=gone)
    with ShardBuffer(open_range, len(data), name="blob") as shard:
        assert bytes(shard.read(10_000)) == data[:10_000]  # arrived before the failure
        with pytest.raises(FileNotFoundError, match="HTTP 404"):
            shard.read(20_000)
    assert len(asked) == 2  # a missing file is not retried


def test_a_failed_fetch_fails_the_parquet_read(small_pieces, monkeypatch):
    monkeypatch.setattr(readahead, "TAIL_BYTES", 65536)  # pyarrow's first read: the file opens, row group 0 reads
    data, _ = _parquet_bytes(row_groups=20)
    open_range, _ = _ranges(data, fail_at=len(data) // 2, error=FileNotFoundError("t.parquet: HTTP 404 Not Found"))
    with ShardBuffer(open_range, len(data), name="t.parquet") as shard, pq.ParquetFile(shard) as parquet:
        parquet.read_row_group(0)
        with pytest.raises(FileNotFoundError, match="HTTP 404"):  # the row groups past the failure
            for group in range(1, parquet.num_row_groups):
                parquet.read_row_group(group)


def test_a_dropped_connection_resumes_where_the_bytes_stopped(small_pieces, monkeypatch):
    monkeypatch.setattr(datasets.config, "STREAMING_READ_RETRY_INTERVAL", 0)
    data = bytes(range(256)) * 200
    open_range, asked = _ranges(data, fail_at=9000, error=ConnectionResetError("reset by peer"), times=1)
    with ShardBuffer(open_range, len(data), name="blob") as shard:
        assert bytes(shard.read()) == data
    assert sorted(asked) == [(0, len(data) - 2048), (9000, len(data) - 2048), (len(data) - 2048, len(data))]


def test_a_body_shorter_than_listed_is_an_error(small_pieces):
    data = bytes(range(256)) * 200
    open_range, _ = _ranges(data[:30_000])  # the server's file is shorter than the export says
    with pytest.raises(OSError, match="smaller than the export lists"):
        ShardBuffer(open_range, len(data), name="blob")


def test_close_stops_the_background_fetch(small_pieces):
    data = bytes(range(256)) * 200
    release, closed = threading.Event(), threading.Event()
    served: list[int] = []

    class Slow(_Body):
        def readinto(self, buffer) -> int:
            if self._start == 0:  # the body, not the tail
                if self._pos >= 4000:
                    release.wait()
                served.append(self._pos)
            return super().readinto(buffer)

        def close(self) -> None:
            closed.set()
            super().close()

    with ShardBuffer(lambda s, e: Slow(data, s, e, 1000, None, None), len(data), name="blob") as shard:
        assert bytes(shard.read(3000)) == data[:3000]
    release.set()
    shard._thread.join(timeout=30)
    assert not shard._thread.is_alive() and closed.is_set()
    assert max(served) <= 4000  # nothing past the read it was blocked in when closed


def test_redirects_to_another_host_drop_the_token():
    handler = readahead._SameOriginAuth()
    request = urllib.request.Request(
        "https://hub.example/datasets/x/resolve/abc/data.parquet",
        headers={"Authorization": "Bearer hf_secret", "Range": "bytes=0-9"},
    )
    elsewhere = handler.redirect_request(request, None, 302, "Found", {}, "https://cdn.example/blob?sig=1")
    assert "Authorization" not in elsewhere.headers and elsewhere.headers["Range"] == "bytes=0-9"
    same = handler.redirect_request(request, None, 302, "Found", {}, "https://hub.example/other")
    assert same.headers["Authorization"] == "Bearer hf_secret"


class _Shards:
    """``make(file)`` for :class:`readahead._Ahead`: an in-memory shard per file, each make recorded."""

    def __init__(self, missing: str | None = None):
        self.made: list[str] = []
        self.missing = missing

    def __call__(self, file: str) -> ShardBuffer:
        self.made.append(file)
        data = file.encode() * 10_000
        if file == self.missing:  # as ShardBuffer raises when the tail's request gets a 404
            raise FileNotFoundError(f"{file}: HTTP 404 Not Found")
        return ShardBuffer(_ranges(data)[0], len(data), name=file)


def _read_all(ahead, file: str) -> ShardBuffer:
    shard = ahead.shard(file)
    assert bytes(shard.read()) == file.encode() * 10_000
    for thread in (shard._thread, shard._after):  # its bytes are in, and what it fetches ahead is made
        if thread is not None:
            thread.join(timeout=30)
    return shard


def test_the_next_shard_is_fetched_once_while_the_current_one_is_read(small_pieces):
    files = [f"s{i}" for i in range(5)]
    make = _Shards()
    ahead = readahead._Ahead({f: (0, i) for i, f in enumerate(files)}, make)
    _read_all(ahead, "s0")
    _read_all(ahead, "s1")
    assert make.made == ["s0", "s1", "s2"]  # after two asks one apart, s2 came before it was asked for
    _read_all(ahead, "s2")
    assert make.made == ["s0", "s1", "s2", "s3"]  # s2 was not fetched twice
    _read_all(ahead, "s3")
    _read_all(ahead, "s4")
    assert make.made == files  # nothing past the end


def test_strided_asks_fetch_the_stride_ahead_and_shuffled_asks_nothing(small_pieces):
    files = [f"s{i}" for i in range(8)]
    make = _Shards()
    ahead = readahead._Ahead({f: (0, i) for i, f in enumerate(files)}, make)
    for file in ("s1", "s3"):  # a DataLoader worker's share of 2 workers
        _read_all(ahead, file)
    assert make.made[-1] == "s5"
    for file in ("s6", "s2"):  # then a shuffled order: s5 is dropped, nothing more is predicted
        _read_all(ahead, file)
    assert make.made == ["s1", "s3", "s5", "s6", "s2"]


def test_a_shard_fetched_ahead_in_vain_is_closed(small_pieces):
    make = _Shards()
    ahead = readahead._Ahead({f"s{i}": (0, i) for i in range(4)}, make)
    _read_all(ahead, "s0")
    _read_all(ahead, "s1")
    unused = ahead._ahead[2][0]
    _read_all(ahead, "s3")
    assert unused.name == "s2" and unused.closed


def test_a_shard_whose_fetch_ahead_failed_raises_when_asked_for(small_pieces):
    make = _Shards(missing="s2")
    ahead = readahead._Ahead({f"s{i}": (0, i) for i in range(3)}, make)
    _read_all(ahead, "s0")
    _read_all(ahead, "s1")
    with pytest.raises(FileNotFoundError, match="s2: HTTP 404"):
        ahead.shard("s2")
    assert make.made == ["s0", "s1", "s2", "s2"]  # fetched again, and its error raised


# ------------------------------------------------------------------ through a web server


def _keys(ds) -> list[tuple]:
    return [row_key(row) for row in ds.cast_column("image", datasets.Image(decode=False))]


def _ids(ds) -> list[str]:
    return [row["image_id"] for row in ds.select_columns(["image_id"])]


@pytest.mark.slow
def test_http_rows_arrive_in_order_with_the_tail_and_one_request_per_shard(exported, hf_cache, small_pieces):
    with RangeFileServer(exported) as server:
        remote = stream(server.url, "all", split="train")
        assert remote.features == FEATURES
        assert _keys(remote) == _keys(datasets.load_dataset(str(exported), "all", split="train"))
        shards = config_data_files(server.url, "all")["train"]
        for url in shards:
            path = url[len(server.url) :]
            gets = [r for method, p, r in server.requests if method == "GET" and p == path and r != "bytes=0-0"]
            size = (exported / path.lstrip("/")).stat().st_size
            assert sorted(gets) == [f"bytes=0-{size - 2049}", f"bytes={size - 2048}-{size - 1}"]  # body, tail


@pytest.mark.slow
def test_a_shard_gone_mid_stream_is_an_error_not_a_shorter_stream(exported, hf_cache):
    with RangeFileServer(exported) as server:
        shards = config_data_files(server.url, "all")["train"]
        assert len(shards) >= 2
        rows = iter(stream(server.url, "all", split="train").select_columns(["image_id"]))
        next(rows)
        last = exported / shards[-1][len(server.url) + 1 :]
        last.rename(last.with_suffix(".gone"))
        with pytest.raises(FileNotFoundError, match=last.name):
            for _ in rows:
                pass


@pytest.mark.slow
def test_http_stream_resumes_and_splits_as_before(exported, hf_cache, small_pieces):
    from datasets.distributed import split_dataset_by_node

    with RangeFileServer(exported) as server:
        everything = _ids(stream(server.url, "all", split="train"))
        ds = stream(server.url, "all", split="train").select_columns(["image_id"])
        iterator = iter(ds)
        head = [next(iterator)["image_id"] for _ in range(5)]
        state = ds.state_dict()
        resumed = stream(server.url, "all", split="train").select_columns(["image_id"])
        resumed.load_state_dict(state)
        assert head + [row["image_id"] for row in resumed] == everything

        full = stream(server.url, "all", split="train")
        assert full.num_shards % 2 == 0
        ranks = [_ids(split_dataset_by_node(full, rank=rank, world_size=2)) for rank in range(2)]
        assert sorted(ranks[0] + ranks[1]) == sorted(everything) and not set(ranks[0]) & set(ranks[1])


@pytest.mark.slow
def test_http_stream_feeds_a_dataloader_with_two_workers(exported, hf_cache):
    torch = pytest.importorskip("torch")
    with RangeFileServer(exported) as server:
        ds = stream(server.url, "all", split="train").select_columns(["image_id"])
        expected = _ids(ds)
        loader = torch.utils.data.DataLoader(
            ds, batch_size=3, num_workers=2, collate_fn=lambda b: [r["image_id"] for r in b]
        )
        got = [image_id for batch in loader for image_id in batch]
        assert sorted(got) == sorted(expected) and len(got) == len(set(got))


# ------------------------------------------------------------------ through the Hub server


@pytest.mark.slow
def test_a_hub_stream_reads_the_commit_it_started_from(pushed, small_pieces):
    from huggingface_hub import HfApi

    server, repo_id, folder = pushed
    ds = stream(repo_id, "all", split="train")
    shards = config_data_files(str(folder), "all")["train"]
    HfApi().delete_file(shards[-1][len(str(folder)) + 1 :], repo_id, repo_type="dataset")  # a later commit
    assert _keys(ds) == _keys(datasets.load_dataset(str(folder), "all", split="train"))
    ranged = [path for path, header in server.ranges if header and path.endswith(".parquet")]
    assert ranged  # the bytes came from the server by byte ranges


@pytest.mark.slow
def test_a_hub_503_mid_stream_is_retried_and_a_403_is_raised(pushed, monkeypatch):
    server, repo_id, folder = pushed
    monkeypatch.setattr(datasets.config, "STREAMING_READ_RETRY_INTERVAL", 0)
    want = _ids(datasets.load_dataset(str(folder), "all", split="train"))
    server.inject("GET", r"/resolve/.*\.parquet$", 503, times=2, skip=3)
    assert _ids(stream(repo_id, "all", split="train")) == want  # every row, once, in order
    server.inject("GET", r"/resolve/.*\.parquet$", 403, times=100, skip=3)  # e.g. access revoked mid-stream
    with pytest.raises(OSError, match="HTTP 403"):
        _ids(stream(repo_id, "all", split="train"))


@pytest.mark.slow
def test_a_hub_stream_follows_the_redirect_to_a_cdn_without_the_token(pushed, small_pieces):
    """The Hub answers a ``resolve`` of an LFS file with a redirect to a CDN on another host, as
    the real one does: the bytes come from there, by ranges, and the token stays with the Hub."""
    server, repo_id, folder = pushed
    with RangeFileServer(server.root / "blobs") as cdn:
        server.lfs_redirect = cdn.url + "/"
        try:
            got = _keys(stream(repo_id, "all", split="train"))
        finally:
            server.lfs_redirect = None
    assert got == _keys(datasets.load_dataset(str(folder), "all", split="train"))
    ranged = [(path, header) for method, path, header in cdn.requests if method == "GET" and header]
    assert ranged and all("X-Amz-Signature=test-signature" in path for path, _ in ranged)
    assert cdn.authorized and not any(cdn.authorized)  # the token never reached the other host
    assert any(status == 302 for _, _, status in server.log)  # and the Hub was asked first
