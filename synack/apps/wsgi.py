"""WSGI (PEP 3333): environ, start_response, a streaming wsgi.input, a bounded thread pool,
and wsgi.file_wrapper backed by the driver's sendfile path.

Theory of operation: the application runs in pool threads, never on the event loop, each call
in a fresh copy of the ``contextvars`` context this module was imported in. The driver hands
the request over with ``WSGIHandler.begin`` (``Handler.begin``: no task and no future per
request); the jobs submitted during one pass of the loop reach the threads together at its
end, and finished jobs come back through ``_Bridge.post``, batched (one loop wakeup for all
that finish before it runs), where ``_finished`` writes the response and settles the request.
While the app runs, its thread talks to the loop only through ``_Bridge.call``
(``run_coroutine_threadsafe`` on Exchange coroutines, waiting for each), so backpressure
reaches the app: a slow client blocks the thread that writes to it, not the loop.

The response leaves the thread in one of three ways:

* a list or tuple body: joined, ``close()`` called, and handed to the loop in one piece (one
  write with an exact Content-Length, and the thread is free at once);
* a ``wsgi.file_wrapper`` around a regular file: handed to the loop, which sends it with
  sendfile (the one path that finishes in a task) and then calls ``close()``;
* anything else: iterated in the thread, each chunk sent as it is produced (chunked coding
  when the app gave no Content-Length), then ``close()``.

``close()`` is called on every path, including app errors and client disconnects.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import io
import os
import stat
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from time import monotonic as _monotonic
from typing import Any, Final
from urllib.parse import unquote_to_bytes

from ..compiled import mypyc_attr
from ..h1 import remember
from ..logs import error_log
from ..server.exchange import ClientDisconnected, Exchange, Settle

__all__ = ["WSGIHandler", "FileWrapper", "WSGIInput", "ThreadPool", "build_environ"]

#: ``b"_" in name`` first tries b"_" as an int and clears the TypeError: an int is much cheaper.
_UNDERSCORE: Final = ord("_")
_PERCENT: Final = ord("%")
_PROTOCOLS: Final = {b"1.1": "HTTP/1.1", b"1.0": "HTTP/1.0"}

#: Most entries in each of the bounded tables below: filled as values are met, emptied when
#: full, so a client (or an app) cannot grow them without bound.
_TABLE_MAX: Final = 512


#: Request field name → its environ key (``HTTP_…``), or None for a field the environ does
#: not carry under ``HTTP_`` (the parser's names are lowercased: one entry per name).
_KEYS: Final[dict[bytes, str | None]] = {}


def _environ_key(name: bytes) -> str | None:
    if name == b"content-type" or name == b"content-length":
        key = None  # CONTENT_TYPE and CONTENT_LENGTH, without HTTP_
    elif _UNDERSCORE in name:
        # "X-Auth_User" would become HTTP_X_AUTH_USER, indistinguishable from
        # "X-Auth-User" that a proxy vetted: a spoofing vector (nginx, Apache drop these).
        key = None
    else:
        key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
    remember(_KEYS, _TABLE_MAX, name, key)
    return key

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# PEP 3333 §"Other HTTP Features": hop-by-hop headers are the server's business. An app's
# "Connection: close" is honoured (the core closes after the response), the rest are errors.
_HOP_BY_HOP: Final = frozenset(
    ("keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
     "transfer-encoding", "upgrade")
)


# ---------------------------------------------------------------------- thread pool


#: Each job runs in a fresh copy of the context this module was imported in (``copy()`` is
#: O(1)): what an app sets in one request is never seen by the next on the same thread.
_BASE_CONTEXT: Final = contextvars.copy_context()


#: How long the oldest waiting job may wait before the pool wakes more threads (seconds): the
#: threads awake are then blocked in the app, or too few for the load.
BACKLOG_WAIT = 0.002

#: A hand-out that would wake a parked thread for fewer jobs than ``GATHER_JOBS`` waits for
#: the loop's next pass instead (at most ``GATHER_PASSES`` times, and only while each pass
#: brings more): one thread woken for a bigger batch. Each wake of a thread costs a pair of
#: context switches on the loop's core; gathering halved them under load (WSGI hello, wrk
#: -c64: 0.19 → 0.10 per request). With one request in flight, the next pass brings nothing,
#: so the thread is woken one pass later than before.
GATHER_JOBS = 32
GATHER_PASSES = 3

#: A submitted job: (bridge, function, argument, done, context).
_Submitted = tuple["_Bridge", Callable[[Any], Any], Any, Callable[[Any, Any, BaseException | None], None],
                   contextvars.Context]
#: A job as it waits in the pool: when it was handed out, and the job.
_Job = tuple[float, _Submitted]


class ThreadPool:
    """A bounded pool of daemon threads, started on demand (a hung app never blocks exit).

    At most ``size`` jobs run at once; more wait in a queue. A blocked job holds one thread
    and nothing else.

    Threads are woken sparingly: a batch of jobs (one loop pass's, or a few passes' while it
    is small: ``GATHER_JOBS``) wakes one parked thread,
    the one parked last, whose memory is warmest; the threads awake take jobs until none is
    left, then park. More are woken only when the oldest job has waited ``BACKLOG_WAIT`` (a
    timer on the loop checks while jobs wait), then one per waiting job: apps that block get
    their threads a moment later, fast apps run on the few threads that keep up. Waking a
    thread per job, as ``queue.SimpleQueue`` does on Python 3.13 (it hands each item to a
    parked thread of its own), has the loop and the threads pass the GIL back and forth:
    measured on 3.13 under wrk -c64 with 32 threads, 3.1 futex calls and 2 context switches
    per request and 37k req/s, against 0.2, 0.2 and 47k this way (3.11 and 3.12: the same
    rate either way).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        #: Waiting jobs, oldest first, and a None per thread once shutting down.
        self._jobs: collections.deque[_Job | None] = collections.deque()
        self._threads: list[threading.Thread] = []
        #: The locks of the parked threads, held: releasing one wakes its thread (a stack:
        #: the thread parked last is woken first).
        self._parked: list[threading.Lock] = []
        #: Jobs submitted during the loop's current pass, not yet handed to the threads.
        self._submitted: list[_Submitted] = []
        #: Whether ``_hand_out`` is scheduled, and how many passes it has waited for more jobs.
        self._handing_out = False
        self._gathered = 0
        self._timer: asyncio.TimerHandle | None = None

    def submit(self, bridge: _Bridge, function: Callable[[Any], Any], argument: Any,
               done: Callable[[Any, Any, BaseException | None], None]) -> None:
        """Run ``function(argument)`` in a pool thread, then ``done(argument, result, error)``
        on ``bridge``'s loop (``error`` is what the function raised, or None). Called on the
        loop only.

        ``done`` runs even when the request was cancelled meanwhile (the graceful timeout):
        the thread cannot be stopped, and what it hands over (an open file) must be closed.

        The job reaches the threads at the end of the loop's current pass, with every other
        job submitted in it (``_hand_out``; a few passes later while a small batch gathers,
        see ``GATHER_JOBS``). Handing each over at once would wake a thread
        in the middle of the pass: it then takes the GIL at the loop's next socket call, and
        the loop and the threads pass it back and forth (measured: 4.7 context switches per
        request instead of 0.3, and a third fewer requests a second).
        """
        self._submitted.append((bridge, function, argument, done, _BASE_CONTEXT.copy()))
        if not self._handing_out:
            self._handing_out = True
            bridge.loop.call_soon(self._hand_out, bridge.loop)

    def _hand_out(self, loop: asyncio.AbstractEventLoop) -> None:
        self._handing_out = False
        submitted, self._submitted = self._submitted, []
        now = _monotonic()
        jobs = self._jobs
        for job in submitted:
            jobs.append((now, job))
        parked = self._parked
        if parked and submitted and len(jobs) < GATHER_JOBS and self._gathered < GATHER_PASSES:
            # A thread to wake, few jobs yet, and more came this pass: gather the next pass's
            # too before waking it (a thread already awake takes jobs meanwhile anyway).
            self._gathered += 1
            self._handing_out = True
            loop.call_soon(self._hand_out, loop)
        else:
            self._gathered = 0  # (every hand-out that does not wait ends a gathering)
            if parked:
                if jobs:
                    parked.pop().release()  # one more thread per batch; the ones awake take jobs too
            elif not self._threads:
                self._wake(1)  # the first
        if jobs and self._timer is None:
            self._timer = loop.call_later(BACKLOG_WAIT, self._check_backlog, loop)

    def _check_backlog(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the loop, while jobs wait: wake a thread per job once the oldest has waited
        ``BACKLOG_WAIT``."""
        self._timer = None
        try:
            oldest = self._jobs[0]
        except IndexError:
            return  # all taken
        if oldest is None:
            return  # shutting down
        if _monotonic() - oldest[0] >= BACKLOG_WAIT:
            self._wake(len(self._jobs))
        self._timer = loop.call_later(BACKLOG_WAIT, self._check_backlog, loop)

    def _wake(self, count: int) -> None:
        """Wake up to ``count`` parked threads, starting new ones (up to ``size``) if too few
        are parked. On the loop only."""
        parked = self._parked
        for _ in range(count):
            if parked:
                parked.pop().release()
            elif len(self._threads) < self.size:
                thread = threading.Thread(target=self._work, name=f"synack-wsgi-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
            else:
                return

    def _work(self) -> None:
        jobs, parked = self._jobs, self._parked
        lock = threading.Lock()
        lock.acquire()  # (held while this thread runs: parking waits for _wake to release it)
        while True:
            try:
                item = jobs.popleft()
            except IndexError:
                # Park. Each step is atomic under the GIL; the loop appends jobs *before* it
                # counts the parked threads, so a job appended between the popleft above and
                # the append below is seen by the check that follows.
                parked.append(lock)
                if jobs:
                    try:
                        parked.remove(lock)  # take it ourselves
                    except ValueError:
                        lock.acquire()  # _wake popped this lock first: absorb its release
                    continue
                lock.acquire()
                continue
            if item is None:
                return
            bridge, function, argument, done, context = item[1]
            error: BaseException | None = None
            result: Any = None
            try:
                result = context.run(function, argument)
            except BaseException as caught:  # handed to the loop, which decides what to log
                error = caught
            bridge.post(done, argument, result, error)
            del item, argument, result, error

    def shutdown(self) -> None:
        """Ask every thread to exit once the jobs queued before are done."""
        for _ in self._threads:
            self._jobs.append(None)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        parked = self._parked
        while parked:
            parked.pop().release()


class _Bridge:
    """One per loop: carries work between the app threads and the loop.

    ``call`` runs an exchange coroutine on the loop and waits for it (so a slow client blocks
    the thread that writes to it); ``post`` hands a finished job back, batched: under load,
    many jobs finish while the loop is busy, and each ``call_soon_threadsafe`` is a write to
    the loop's self-pipe and a wakeup, so one pending drain serves all that finish before it
    runs.
    """

    __slots__ = ("loop", "_finished", "_pending")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._finished: collections.deque[tuple[Callable[[Any, Any, BaseException | None], None], Any, Any,
                                                BaseException | None]] = collections.deque()
        #: Whether a drain is scheduled and has not yet started taking jobs.
        self._pending = False

    def call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def post(self, done: Callable[[Any, Any, BaseException | None], None], argument: Any, result: Any,
             error: BaseException | None) -> None:
        """From a pool thread: ``done(argument, result, error)`` soon, on the loop.

        No job is ever left behind. Each step below (``deque.append``, reading or writing
        ``_pending``) is atomic under the GIL, and ``_drain`` clears ``_pending`` *before* it
        counts the jobs it takes. The job is appended before ``_pending`` is read here. If
        that read sees True, the drain that will clear it has not cleared it yet, so it will
        count this job. If it sees False, this thread schedules a drain itself. The only race,
        two threads both seeing False, schedules two drains; the second finds fewer jobs or
        none, which is harmless.
        """
        self._finished.append((done, argument, result, error))
        if not self._pending:
            self._pending = True
            try:
                self.loop.call_soon_threadsafe(self._drain)
            except RuntimeError:
                pass  # the loop is closed: the server is gone

    def _drain(self) -> None:
        self._pending = False
        finished = self._finished
        # Only the jobs there now: one posted while these run has scheduled its own drain
        # (or will be counted by one), and the loop gets back to I/O in between.
        for _ in range(len(finished)):
            done, argument, result, error = finished.popleft()
            try:
                done(argument, result, error)
            except Exception:  # one broken completion must not strand the others
                error_log.exception("error while completing a WSGI response")


# ---------------------------------------------------------------------- wsgi.input


@mypyc_attr(native_class=False)  # a compiled subclass of io.RawIOBase fails to load on 3.12
class WSGIInput(io.RawIOBase):
    """``wsgi.input``: the request body, read from the connection as the app asks for it.

    Nothing is buffered ahead of the app's reads, so a large upload streams through. The body
    ends at its real end (``wsgi.input_terminated``), also for chunked requests.

    Raises (from the read methods):
        BodyError: the body was malformed or over the limit; the client has been answered.
        ClientDisconnected: the client went away mid-body.
    """

    def __init__(self, exchange: Exchange, bridge: _Bridge) -> None:
        super().__init__()
        self._exchange = exchange
        self._bridge = bridge
        self._buffer = bytearray()
        self._done = not exchange.more_body

    def readable(self) -> bool:
        return True

    def _fill(self) -> bool:
        if self._done:
            return False
        chunk = self._bridge.call(self._exchange.receive())
        if not chunk:
            self._done = True
            return False
        self._buffer += chunk
        return True

    def _take(self, size: int) -> bytes:
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while self._fill():
                pass
            return self._take(len(self._buffer))
        # Block until ``size`` bytes or the end, like a file (apps read(CONTENT_LENGTH) once).
        while len(self._buffer) < size and self._fill():
            pass
        return self._take(size)

    def read1(self, size: int = -1) -> bytes:
        """At most ``size`` bytes, waiting only if none are buffered."""
        if not self._buffer:
            self._fill()
        return self._take(len(self._buffer) if size is None or size < 0 else size)

    def readinto(self, target: Any) -> int:
        data = self.read(len(target))
        target[: len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        limit = size if size is not None and size >= 0 else None
        searched = 0
        while True:
            end = self._buffer.find(b"\n", searched)
            if end >= 0:
                take = end + 1
                break
            searched = len(self._buffer)
            if limit is not None and searched >= limit:
                take = searched
                break
            if not self._fill():
                take = len(self._buffer)
                break
        if limit is not None:
            take = min(take, limit)
        return self._take(take)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        lines: list[bytes] = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


# ---------------------------------------------------------------------- wsgi.file_wrapper


class FileWrapper:
    """``wsgi.file_wrapper``: a regular file is sent with sendfile; anything else is iterated.

    The file is sent from its current position; a Content-Length from the app caps the count.
    """

    def __init__(self, filelike: Any, block_size: int = 256 * 1024) -> None:
        self.filelike = filelike
        self.block_size = block_size
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def fileno(self) -> int | None:
        """The descriptor of a regular file, or None (then the wrapper is iterated)."""
        try:
            descriptor: int = self.filelike.fileno()
            if stat.S_ISREG(os.fstat(descriptor).st_mode):
                return descriptor
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            pass
        return None

    def __iter__(self) -> Iterator[bytes]:
        read = self.filelike.read
        while True:
            block = read(self.block_size)
            if not block:
                return
            yield block


# ---------------------------------------------------------------------- environ


#: Every environ starts as a copy of this (a copy is a few times cheaper than building a dict
#: of the same size key by key); ``build_environ`` overwrites the per-request values, so the
#: keys keep this order.
_TEMPLATE: Final[dict[str, Any]] = {
    "REQUEST_METHOD": "", "SCRIPT_NAME": "", "PATH_INFO": "", "QUERY_STRING": "", "RAW_URI": "",
    "REQUEST_URI": "", "SERVER_NAME": "", "SERVER_PORT": "", "SERVER_PROTOCOL": "",
    "SERVER_SOFTWARE": "synack", "REMOTE_ADDR": "", "REMOTE_PORT": "",
    "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": None, "wsgi.errors": None,
    "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
    "wsgi.input_terminated": True, "wsgi.file_wrapper": None,
}
_METHOD_NAMES: Final = {method: method.decode() for method in (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS")}


def build_environ(exchange: Exchange, body: Any, request_id: bool = False) -> dict[str, Any]:
    """The PEP 3333 environ for ``exchange``, with ``body`` as ``wsgi.input``.

    ``PATH_INFO`` is the percent-decoded path as bytes decoded with latin-1 (PEP 3333's
    "bytes-as-unicode"), so ``path.encode("latin-1").decode("utf-8")`` recovers UTF-8.
    ``SCRIPT_NAME`` is ``--root-path``: the prefix a proxy stripped (as the ASGI root_path).
    """
    head = exchange.head
    server = exchange.server or ("localhost", 0)
    client = exchange.client
    path = head.path
    target = head.target.decode("latin-1")
    environ = _TEMPLATE.copy()
    environ["REQUEST_METHOD"] = _METHOD_NAMES.get(head.method) or head.method.decode("latin-1")
    environ["SCRIPT_NAME"] = exchange.root_path
    # Path and query as the core split them (absolute-form included, RFC 9112 §3.2.2);
    # HTTP_HOST below is already the effective host.
    environ["PATH_INFO"] = (unquote_to_bytes(path) if _PERCENT in path else path).decode("latin-1")
    environ["QUERY_STRING"] = head.query.decode("latin-1")
    environ["RAW_URI"] = environ["REQUEST_URI"] = target
    environ["SERVER_NAME"] = server[0]
    environ["SERVER_PORT"] = str(server[1])
    environ["SERVER_PROTOCOL"] = _PROTOCOLS.get(head.http_version) or "HTTP/" + head.http_version.decode("ascii")
    if client:
        environ["REMOTE_ADDR"] = client[0]
        environ["REMOTE_PORT"] = str(client[1])
    environ["wsgi.url_scheme"] = exchange.scheme
    environ["wsgi.input"] = body
    environ["wsgi.errors"] = sys.stderr
    environ["wsgi.file_wrapper"] = FileWrapper
    if head.content_length is not None:
        # The length the core framed the body by: "Content-Length: 3, 3" (RFC 9110 §8.6,
        # accepted as one value) is "3" here, and a chunked body has none (PEP 3333 allows
        # CONTENT_LENGTH to be absent; wsgi.input_terminated says how to read it).
        environ["CONTENT_LENGTH"] = str(head.content_length)
    keys = _KEYS
    for name, value in head.fields:
        key = keys[name] if name in keys else _environ_key(name)
        if key is None:
            if name == b"content-type":
                environ["CONTENT_TYPE"] = value.decode("latin-1")
            continue  # Content-Length is framed above; names with "_" are dropped
        text = value.decode("latin-1")
        previous = environ.get(key)
        if previous is None:
            environ[key] = text
        else:
            # RFC 9110 §5.3: repeated fields combine with ", ". Cookie is the exception: its
            # separator is "; " (RFC 9113 §8.2.3), and ", " would corrupt the last cookie.
            environ[key] = previous + ("; " if key == "HTTP_COOKIE" else ", ") + text
    if request_id:
        # A trusted peer's X-Request-ID, else a new one (an untrusted client's is replaced).
        environ["HTTP_X_REQUEST_ID"] = exchange.request_id
    return environ


# ---------------------------------------------------------------------- start_response


class _Response:
    """start_response state and the write() callable for one request (runs in the app thread)."""

    __slots__ = ("status", "reason", "headers", "sent", "exchange", "bridge", "settle", "environ")

    def __init__(self, exchange: Exchange, bridge: _Bridge, settle: Settle, environ: dict[str, Any]) -> None:
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] | None = None
        #: Whether the head has been handed to the exchange.
        self.sent = False
        self.exchange = exchange
        self.bridge = bridge
        #: The driver's end-of-request callback (``Handler.begin``).
        self.settle = settle
        self.environ = environ

    def start_response(self, status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.sent:
                    # PEP 3333: too late to change the response; re-raise for the app to see.
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # avoid a reference cycle through the traceback
        elif self.headers is not None:
            raise AssertionError("start_response() called a second time without exc_info")
        self.status, self.reason = _parse_status(status)
        self.headers = _encode_headers(headers)
        return self.write

    def require_start(self) -> list[tuple[bytes, bytes]]:
        if self.headers is None:
            raise AssertionError("the application returned without calling start_response()")
        return self.headers

    def send_head_once(self) -> None:
        if self.sent:
            return
        headers = self.require_start()
        self.sent = True
        self.bridge.call(self.exchange.send_head(self.status, headers, self.reason))

    def write(self, data: bytes) -> None:
        """PEP 3333's legacy ``write()``: the bytes are on their way when it returns."""
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"write() takes bytes, got {type(data).__name__}")
        self.send_head_once()
        if data:
            self.bridge.call(self.exchange.send_body(bytes(data), more=True))


#: Status lines and header names already checked (→ parsed status, encoded name), so an
#: app's usual handful costs a lookup each. Only exact ``str`` keys are stored: a subclass
#: could compare equal and behave differently.
_STATUSES: Final[dict[str, tuple[int, bytes]]] = {}
_NAMES: Final[dict[str, bytes]] = {}


def _parse_status(status: str) -> tuple[int, bytes]:
    parsed = _STATUSES.get(status) if type(status) is str else None
    if parsed is not None:
        return parsed
    if not isinstance(status, str):
        raise TypeError(f"status must be a str like '200 OK', got {status!r}")
    code, _, reason = status.partition(" ")
    if len(code) != 3 or not code.isdigit() or code[0] == "0":
        raise ValueError(f"invalid status {status!r}: expected '200 OK' style")
    parsed = int(code), reason.strip().encode("latin-1")
    if type(status) is str:
        remember(_STATUSES, _TABLE_MAX, status, parsed)
    return parsed


def _encode_headers(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    if not isinstance(headers, list):
        raise TypeError(f"response headers must be a list of (name, value) tuples, got {type(headers).__name__}")
    names = _NAMES
    result = []
    for name, value in headers:
        if not isinstance(value, str):
            raise TypeError(f"header names and values must be str, got {name!r}: {value!r}")
        encoded = names.get(name) if type(name) is str else None
        if encoded is None:
            encoded = _encode_name(name, value)
        # Strip surrounding whitespace, as gunicorn does: Django's WSGI handler sends cookies
        # as ``cookie.output(header="")``, which begins with a space (RFC 9110 §5.5 OWS).
        result.append((encoded, value.strip(" \t").encode("latin-1")))
    return result


def _encode_name(name: str, value: str) -> bytes:
    if not isinstance(name, str):
        raise TypeError(f"header names and values must be str, got {name!r}: {value!r}")
    if name.lower() in _HOP_BY_HOP:
        raise ValueError(f"hop-by-hop header {name!r} is not allowed in a WSGI response (PEP 3333)")
    encoded = name.encode("latin-1")
    if type(name) is str:
        remember(_NAMES, _TABLE_MAX, name, encoded)
    return encoded


# ---------------------------------------------------------------------- handler


def _call_close(closer: Callable[[], Any] | None) -> None:
    if closer is None:
        return
    try:
        closer()
    except Exception:
        error_log.exception("error in the response iterable's close()")


class WSGIHandler:
    """Runs a WSGI application in a bounded thread pool for each exchange.

    Args:
        app: the WSGI callable.
        threads: most requests running the app at once (``--threads``).
    """

    def __init__(self, app: WSGIApp, threads: int = 32, request_id: bool = False) -> None:
        self.app = app
        #: Set ``HTTP_X_REQUEST_ID`` to the request's id (``--request-id``).
        self.request_id = request_id
        self.pool = ThreadPool(threads)
        self._bridge: _Bridge | None = None

    def begin(self, exchange: Exchange, settle: Settle) -> None:
        """Hand the request to a pool thread; ``_finished`` answers it on the loop (no task
        or future per request: see ``Handler.begin``)."""
        loop = asyncio.get_running_loop()
        bridge = self._bridge
        if bridge is None or bridge.loop is not loop:  # (one per worker: made once)
            bridge = self._bridge = _Bridge(loop)
        # A request without a body reads from an empty BytesIO: ten times cheaper to make
        # than a WSGIInput, and it behaves the same (every read returns b"").
        body = WSGIInput(exchange, bridge) if exchange.more_body else io.BytesIO()
        response = _Response(exchange, bridge, settle, build_environ(exchange, body, self.request_id))
        self.pool.submit(bridge, self._run, response, self._finished)

    async def __call__(self, exchange: Exchange) -> None:
        """``begin`` as a coroutine, for a caller that awaits handlers instead of calling
        ``begin``."""
        settled: asyncio.Future[Awaitable[None] | BaseException | None] = asyncio.get_running_loop().create_future()

        def settle(_: Exchange, outcome: Awaitable[None] | BaseException | None) -> None:
            if not settled.done():
                settled.set_result(outcome)
            elif isinstance(outcome, Coroutine):
                outcome.close()  # the caller was cancelled meanwhile: the rest is not run

        self.begin(exchange, settle)
        outcome = await settled
        if isinstance(outcome, BaseException):
            raise outcome
        if outcome is not None:
            await outcome

    def _finished(self, response: _Response, outcome: tuple[str, Any, Any] | None,
                  error: BaseException | None) -> None:
        """On the loop, once the app's thread is done: send what it handed over, then settle."""
        exchange, settle = response.exchange, response.settle
        if error is not None or outcome is None:  # failed, or streamed (and closed) by the thread
            settle(exchange, error)
            return
        kind, payload, closer = outcome
        if exchange.gone:
            # Cancelled while the app ran (the graceful timeout aborted the connection), or
            # the client left: nothing to send, but a file handed over is still closed.
            _call_close(closer)
            settle(exchange, ClientDisconnected("client disconnected"))
            return
        if kind == "file":
            settle(exchange, self._send_file_then_close(exchange, response, payload, closer))
            return
        try:
            response.sent = True
            exchange.respond(response.status, response.require_start(), payload, response.reason)  # one write
        except Exception as failure:  # a response that breaks HTTP: the app's fault (a 500)
            settle(exchange, failure)
            return
        settle(exchange, None)

    async def _send_file_then_close(self, exchange: Exchange, response: _Response, wrapper: FileWrapper,
                                    closer: Callable[[], Any] | None) -> None:
        try:
            await self._send_file(exchange, response, wrapper)
        finally:
            _call_close(closer)

    async def _send_file(self, exchange: Exchange, response: _Response, wrapper: FileWrapper) -> None:
        descriptor = wrapper.fileno()
        assert descriptor is not None
        offset = os.lseek(descriptor, 0, os.SEEK_CUR)
        size = max(0, os.fstat(descriptor).st_size - offset)
        headers = response.require_start()
        declared = next((value for name, value in headers if name.lower() == b"content-length"), None)
        if declared is None:
            count = size
            headers = [*headers, (b"content-length", b"%d" % count)]
        else:
            count = min(size, int(declared)) if declared.isdigit() else size
        response.sent = True
        await exchange.send_head(response.status, headers, response.reason)
        if exchange.head.method == b"HEAD" or response.status in (204, 304):
            await exchange.send_body(b"", more=False)
            return
        await exchange.send_file(wrapper.filelike, offset, count)

    def _run(self, response: _Response) -> tuple[str, Any, Any] | None:
        """In a pool thread: call the app, then hand back a whole body or a file, or stream."""
        iterable = self.app(response.environ, response.start_response)
        kind = type(iterable)
        # An exact list or tuple (the usual body) has no close(): no lookup (a miss raises
        # and clears an exception inside getattr).
        closer = None if kind is list or kind is tuple else getattr(iterable, "close", None)
        handed_over = False
        try:
            if not response.sent:
                if isinstance(iterable, (list, tuple)):
                    response.require_start()
                    body = b"".join(iterable)
                    # PEP 3333 asks for close() "upon completion of the request"; the body is
                    # complete here, and closing in the app's own thread keeps thread-local
                    # cleanup (e.g. Django's request_finished) where the app expects it.
                    return ("body", body, None)
                if isinstance(iterable, FileWrapper) and iterable.fileno() is not None:
                    response.require_start()
                    handed_over = True
                    return ("file", iterable, closer)
            self._stream(iterable, response)
            return None
        finally:
            if not handed_over:
                _call_close(closer)

    def _stream(self, iterable: Iterable[bytes], response: _Response) -> None:
        exchange = response.exchange
        call = response.bridge.call
        for chunk in iterable:
            if not isinstance(chunk, (bytes, bytearray)):
                raise TypeError(f"the application yielded {type(chunk).__name__}, not bytes")
            if not chunk:
                continue  # PEP 3333: an empty chunk must not end or block the response
            response.send_head_once()
            call(exchange.send_body(bytes(chunk), more=True))
        response.send_head_once()
        call(exchange.end())

    async def shutdown(self) -> None:
        self.pool.shutdown()

