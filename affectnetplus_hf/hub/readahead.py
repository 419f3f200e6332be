"""Stream Parquet shards from a remote store with the transfer running ahead of the decoding.

``datasets``' own Parquet streaming reads a remote shard in two blocking steps, the footer and
then the whole data region in one request, and decodes only once both are in: transfer and
decoding never overlap. Every byte also passes a Python HTTP client that hands it over in
small pieces, each taking the GIL (``huggingface_hub``'s for the Hub, aiohttp for http(s)),
and fsspec's read-ahead caches copy each whole-region read once or twice more.
``benchmarks/stream_bench.py`` measures it; docs/performance.md has the figures.

Here each shard is one :class:`ShardBuffer`: one buffer of the shard's size, and a background
thread that fills it front to back from one ranged request, while pyarrow reads the shard from
that buffer as an ordinary file whose reads wait for bytes still on their way. The footer is
fetched first, beside the body, so row group 0 decodes as soon as its bytes are in, while the
rest still arrives. http(s) and Hub files are read with the standard library's HTTP client,
straight into the buffer (``readinto``: the GIL is released while the socket is read, once per
up to :data:`CHUNK_BYTES`); other fsspec URLs (s3, gcs, ...) through fsspec, a chunk per
request. :class:`ReadaheadParquet` is ``datasets``' Parquet builder with only the reading of a
shard replaced, so rows, their order and types, sharding, shuffling and ``state_dict`` resuming
are those of ``load_dataset("parquet", ..., streaming=True)``.

Once a shard's bytes are all in, the shard the reader will most likely ask for next (see
:class:`_Ahead`) is fetched the same way while the current one is still decoded, which hides the
request each new shard costs before its first row group can decode.

What it costs: a shard's bytes in memory per open shard, up to two per reader with the one
fetched ahead (the stock reader also holds the data region it read in one piece), and a thread
per shard being fetched. A failed fetch is raised by the read that needed its bytes, in the
iterating thread. Connection errors, HTTP 5xx and 429 are retried (as ``datasets`` retries:
``datasets.config.STREAMING_READ_MAX_RETRIES``), resuming where the bytes stopped; any other
HTTP 4xx, a missing file or a file of another size than the export lists is not.
"""

from __future__ import annotations

import functools
import http.client
import io
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

import numpy
from datasets.packaged_modules.parquet.parquet import Parquet

__all__ = ["CHUNK_BYTES", "TAIL_BYTES", "ReadaheadParquet", "ShardBuffer", "range_reader"]

#: Most bytes one read of the body brings before the readers are told (about one row group).
CHUNK_BYTES = 4 << 20
#: Bytes fetched from the end of a shard first, for its footer (about 7.5 KB + 3 KB per row group in
#: the export's shards; pyarrow reads the last 64 KB, then the rest of a longer footer).
TAIL_BYTES = 1 << 20
#: Seconds without a byte before an HTTP request fails (and is retried).
TIMEOUT_S = 60.0


class _Body(Protocol):
    """Bytes of one ranged request: ``readinto`` until it returns 0; a context manager that closes it."""

    def readinto(self, buffer: Any, /) -> int | None: ...
    def __enter__(self) -> Any: ...
    def __exit__(self, kind: Any, value: Any, traceback: Any, /) -> Any: ...


#: ``open_range(start, end)``: the bytes ``start`` to ``end - 1`` of one file.
OpenRange = Callable[[int, int], _Body]


class _Retry(Exception):
    """A failure worth another request: the connection, a timeout, HTTP 5xx or 429."""


class _SameOriginAuth(urllib.request.HTTPRedirectHandler):
    """Follow redirects, dropping ``Authorization`` when one leads to another origin (the Hub sends
    its files' bytes from a CDN); urllib's own handler would forward it."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        old, there = urlsplit(req.full_url), urlsplit(newurl)
        if new is not None and (old.scheme, old.netloc) != (there.scheme, there.netloc):
            for key in ("Authorization", "Cookie", "Proxy-authorization"):
                new.headers.pop(key, None)
                new.unredirected_hdrs.pop(key, None)
        return new


@functools.cache
def _opener() -> urllib.request.OpenerDirector:
    """One per process: loading the CA bundle takes tens of milliseconds."""
    import ssl

    try:
        import certifi  # what huggingface_hub's client trusts
    except ImportError:
        context = ssl.create_default_context()
    else:
        context = ssl.create_default_context(cafile=certifi.where())
    return urllib.request.build_opener(_SameOriginAuth(), urllib.request.HTTPSHandler(context=context))


def _http_range(url: str, headers: dict[str, str]) -> OpenRange:
    """Ranged GETs of ``url`` with ``headers``, through the standard library (env proxies honoured)."""
    opener = _opener()

    def get(start: int, end: int) -> _Body:
        request = urllib.request.Request(
            url, headers={**headers, "Range": f"bytes={start}-{end - 1}", "Accept-Encoding": "identity"}
        )
        try:
            response = opener.open(request, timeout=TIMEOUT_S)
        except urllib.error.HTTPError as err:
            if err.code >= 500 or err.code == 429:  # the server's trouble, or too many requests: later
                raise _Retry(f"{url}: HTTP {err.code} {err.reason}") from err
            if err.code == 404:
                raise FileNotFoundError(f"{url}: HTTP 404 {err.reason}") from None
            raise OSError(f"{url}: HTTP {err.code} {err.reason}") from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            if isinstance(reason, (ConnectionError, TimeoutError)):  # refused, reset, timed out
                raise _Retry(f"{url}: {reason}") from err
            raise OSError(f"{url}: {reason}") from err
        if response.status != 206 and not (start == 0 and response.length == end):
            response.close()
            raise OSError(
                f"{url}: the server ignored HTTP Range (asked for bytes {start}-{end - 1}, got HTTP "
                f"{response.status}); streaming Parquet needs 206 Partial Content."
            )
        return response

    return get


def _http_size(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, headers={**headers, "Accept-Encoding": "identity"}, method="HEAD")
    with _opener().open(request, timeout=TIMEOUT_S) as response:
        return int(response.headers["Content-Length"])


class _FsspecRange(io.RawIOBase):
    """Bytes ``start`` to ``end - 1`` of an fsspec file, one ``cat_file`` request per :data:`CHUNK_BYTES`."""

    def __init__(self, fs: Any, path: str, start: int, end: int):
        super().__init__()
        self._fs, self._path, self._pos, self._end = fs, path, start, end

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        end = min(self._end, self._pos + len(view), self._pos + CHUNK_BYTES)
        if end <= self._pos:
            return 0
        data = self._fs.cat_file(self._path, start=self._pos, end=end)
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)


def range_reader(url: str, storage_options: dict | None = None) -> tuple[OpenRange, Callable[[], int]]:
    """``(open_range(start, end), size())`` for ``url``, any fsspec URL with ``storage_options``.

    ``hf://`` files are read from their ``resolve`` URL with the Hub's headers (the token of
    ``storage_options["token"]``, else the environment's or the login's); http(s) URLs with no
    storage options but ``headers`` with those headers; both through :func:`_http_range`.
    Everything else goes through fsspec.
    """
    import fsspec

    options = dict(storage_options or {})
    protocol = urlsplit(url).scheme
    if protocol in ("http", "https") and set(options) <= {"headers"}:
        headers = dict(options.get("headers") or {})
        return _http_range(url, headers), lambda: _http_size(url, headers)
    fs, path = fsspec.core.url_to_fs(url, **options)
    if protocol == "hf":
        from huggingface_hub.utils import build_hf_headers

        headers = build_hf_headers(token=options.get("token"))
        return _http_range(fs.url(path), headers), lambda: fs.size(path)
    return (lambda start, end: _FsspecRange(fs, path, start, end)), lambda: fs.size(path)


def _pull(open_range: OpenRange, view: memoryview, start: int, publish: Callable[[int], bool], name: str) -> None:
    """Fill ``view`` with the bytes from ``start`` on, reporting each step to ``publish(bytes so far)``
    (which returns False to stop); retries a failed request from where the bytes stopped."""
    from datasets import config

    tries = max(1, int(getattr(config, "STREAMING_READ_MAX_RETRIES", 20)))
    pause = float(getattr(config, "STREAMING_READ_RETRY_INTERVAL", 5))
    done, failures = 0, 0
    while done < len(view):
        try:
            with open_range(start + done, start + len(view)) as body:
                while done < len(view):
                    count = body.readinto(view[done : done + CHUNK_BYTES])
                    if not count:
                        raise OSError(
                            f"{name}: the body ended at byte {start + done} of {start + len(view)}; the file is "
                            "smaller than the export lists (changed since the export?)."
                        )
                    done += count
                    if not publish(done):
                        return
        except (_Retry, ConnectionError, TimeoutError, http.client.IncompleteRead) as err:
            failures += 1
            if failures >= tries:
                raise OSError(f"{name}: {tries} tries failed, the last: {err}") from err
            time.sleep(pause)


class ShardBuffer(io.RawIOBase):
    """A read-only, seekable file over the ``size`` bytes of one remote file, filled in the background.

    On creation the last :data:`TAIL_BYTES` are read (in the calling thread) while a background
    thread reads the rest from the front, with ``open_range`` (see :func:`range_reader`). A read
    returns at once when its bytes are in, else waits for them; an error of the background
    thread is raised by the first read that needs bytes it did not bring. :meth:`close` stops
    the background thread at its next step. Reads return ``memoryview`` slices of the one
    buffer, which pyarrow keeps without copying.
    """

    def __init__(self, open_range: OpenRange, size: int, *, name: str = ""):
        super().__init__()
        if size < 0:
            raise ValueError(f"size must be >= 0, got {size}")
        self.name = name
        self._size = size
        # uninitialised: zeroing a shard's worth of pages here would hold the GIL for milliseconds; the
        # pages are first touched by the socket reads of the thread below, which run without it
        self._buf = numpy.empty(size, dtype=numpy.uint8).data
        self._tail = max(0, size - TAIL_BYTES)  # [0, tail) arrives in order from the thread; [tail, size) now
        self._filled = 0
        self._error: BaseException | None = None
        self._stopped = False
        self._complete = False
        self._then: Callable[[], None] | None = None
        self._after: threading.Thread | None = None  # runs ``then`` when it came after the last byte
        self._pos = 0
        self._arrived = threading.Condition()
        self._thread = threading.Thread(target=self._fill, args=(open_range,), name=f"readahead {name}", daemon=True)
        self._thread.start()
        try:
            _pull(open_range, self._buf[self._tail :], self._tail, lambda _: True, name)
        except BaseException:
            self.close()
            raise

    def _publish(self, filled: int) -> bool:
        with self._arrived:
            self._filled = filled
            self._arrived.notify_all()
            return not self._stopped

    def _fill(self, open_range: OpenRange) -> None:
        try:
            _pull(open_range, self._buf[: self._tail], 0, self._publish, self.name)
        except BaseException as err:  # handed to the reader, raised there
            with self._arrived:
                self._error = err
                self._arrived.notify_all()
            return
        with self._arrived:
            self._complete = not self._stopped
            then = self._then if self._complete else None
        if then is not None:
            then()

    def when_filled(self, then: Callable[[], None]) -> None:
        """Call ``then()`` in a background thread once every byte is in (never if a fetch fails or
        the shard is closed first)."""
        with self._arrived:
            if not self._complete:
                self._then = then
                return
        self._after = threading.Thread(target=then, name=f"after {self.name}", daemon=True)
        self._after.start()

    def _wait(self, end: int) -> None:
        if end <= self._filled:
            return
        with self._arrived:
            while self._filled < end and self._error is None and not self._stopped:
                self._arrived.wait()
            if self._filled < end:
                if self._error is not None:
                    raise self._error
                raise ValueError(f"{self.name}: read of a closed shard")

    # ------------------------------------------------------------------ the file interface pyarrow uses

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def size(self) -> int:
        return self._size

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError(f"{self.name}: negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def read(self, size: int | None = -1) -> memoryview:
        if self.closed:
            raise ValueError(f"{self.name}: read of a closed shard")
        start = min(self._pos, self._size)
        end = self._size if size is None or size < 0 else min(self._size, start + size)
        if start < self._tail:  # bytes from the tail on are in since creation
            self._wait(min(end, self._tail))
        self._pos = end
        return self._buf[start:end]

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(memoryview(buffer).cast("B")))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def close(self) -> None:
        with self._arrived:
            self._stopped = True
            self._arrived.notify_all()
        super().close()


def _key(file_index: int, batch_index: int) -> Any:
    """The example key the stock Parquet builder gives (``Key`` since datasets 4, a string before)."""
    try:
        from datasets.builder import Key
    except ImportError:
        return f"{file_index}_{batch_index}"
    return Key(file_index, batch_index)


class _Ahead:
    """The shard a reader will most likely ask for next, fetched once the one it reads is in.

    ``datasets`` asks for a stream's shards one at a time, so the next one is predicted from the
    asks so far: two asks a stride apart in one split's file list (1 for a single reader,
    ``num_workers`` for a ``DataLoader`` worker's share) predict the file that stride further.
    Shuffled shard orders predict nothing. A fetched-ahead shard that is not asked for next is
    dropped (at most one shard fetched in vain); one whose fetch fails is fetched again when asked
    for, so that its error is raised then. Belongs to one process (a forked ``DataLoader`` worker
    starts its own).
    """

    def __init__(self, order: dict[str, tuple[int, int]], make: Callable[[str], ShardBuffer]):
        self.pid = os.getpid()
        self._order = order  # URL -> (split, position in the split's file list)
        self._files = {place: url for url, place in order.items()}
        self._make = make
        self._lock = threading.Lock()
        self._asked: list[tuple[int, int]] = []
        # the file fetched ahead, set once its buffer exists (or its fetch failed), and the buffer
        self._ahead: tuple[str, threading.Event, list[ShardBuffer]] | None = None

    def shard(self, file: str) -> ShardBuffer:
        """``file``'s buffer: the one fetched ahead when it is that file, else a new one."""
        with self._lock:
            ahead, self._ahead = self._ahead, None
        shard = None
        if ahead is not None:
            name, made, box = ahead
            made.wait()
            if name == file and box:
                shard = box[0]
            elif box:
                box[0].close()
        if shard is None:
            shard = self._make(file)
        following = self._predict(file)
        if following is not None:
            shard.when_filled(lambda: self._fetch(following))
        return shard

    def _predict(self, file: str) -> str | None:
        place = self._order.get(file)
        if place is None:
            return None
        with self._lock:
            asked = self._asked = [*self._asked[-1:], place]
            if len(asked) < 2 or asked[0][0] != place[0]:
                return None
            stride = place[1] - asked[0][1]
        return self._files.get((place[0], place[1] + stride)) if stride > 0 else None

    def _fetch(self, file: str) -> None:
        made, box = threading.Event(), []  # type: ignore[var-annotated]
        with self._lock:
            if self._ahead is not None:
                return
            self._ahead = (file, made, box)
        try:
            box.append(self._make(file))
        except Exception:  # fetched again when asked for; the error is raised then
            pass
        finally:
            made.set()


class ReadaheadParquet(Parquet):
    """``datasets``' Parquet builder, reading each shard through a :class:`ShardBuffer`.

    ``shard_sizes`` (URL -> bytes, from the export's ``export_info.json``) spares a request per
    shard and makes a shard of another size an error; ``fetch_options`` are the storage options
    of :func:`range_reader`. Yields one table per row group, as the stock builder does for the
    export's shards. While a shard is decoded after its bytes are in, the next one is fetched
    when the order of the asks predicts it (:class:`_Ahead`): up to two shards in memory per
    reader. With ``columns``, ``filters``, ``batch_size``, ``fragment_scan_options``,
    ``on_bad_files`` other than ``"error"`` or row-group subsets (``IterableDataset.reshard``)
    the stock builder reads, fetching only what those need.
    """

    def __init__(
        self, *args: Any, shard_sizes: dict[str, int] | None = None, fetch_options: dict | None = None, **kwargs: Any
    ):
        super().__init__(*args, **kwargs)
        self._shard_sizes = dict(shard_sizes or {})
        self._fetch_options = dict(fetch_options or {})
        self._ahead: _Ahead | None = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_ahead"] = None  # threads and buffers stay in their process
        return state

    def _new_shard(self, file: str) -> ShardBuffer:
        opener, size = range_reader(file, self._fetch_options)
        known = self._shard_sizes.get(file)
        return ShardBuffer(opener, known if known is not None else size(), name=file)

    def _shard(self, file: str) -> ShardBuffer:
        if self._ahead is None or self._ahead.pid != os.getpid():
            data_files = self.config.data_files or {}
            order = {
                url: (split, place) for split, urls in enumerate(data_files.values()) for place, url in enumerate(urls)
            }
            self._ahead = _Ahead(order, self._new_shard)
        return self._ahead.shard(file)

    def _stock_reading(self, more: dict) -> bool:
        config = self.config
        return (
            any(group is not None for group in more.get("row_groups_list") or [])
            or config.columns is not None
            or config.filters is not None
            or config.batch_size is not None
            or getattr(config, "fragment_scan_options", None) is not None
            or getattr(config, "on_bad_files", "error") != "error"
        )

    def _generate_tables(self, files, **more):
        if self._stock_reading(more):
            yield from super()._generate_tables(files, **more)
            return
        import pyarrow.parquet as pq

        # datasets 4 hands a flat list of URLs; 3.x a list of iterables of them (one per data file)
        flat = (url for item in files for url in ([item] if isinstance(item, str) else item))
        for file_index, file in enumerate(flat):
            with self._shard(file) as shard, pq.ParquetFile(shard) as parquet:
                for group in range(parquet.num_row_groups):
                    yield _key(file_index, group), self._cast_table(parquet.read_row_group(group))
