"""WSGI (PEP 3333): environ, start_response, a streaming wsgi.input, a bounded thread pool,
and wsgi.file_wrapper backed by the driver's sendfile path.

The application runs in pool threads, never on the event loop. A thread talks to the loop only
through ``_Bridge``: the response is handed over in one piece when the app returns a list, or
chunk by chunk (with backpressure) when it streams.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import unquote_to_bytes

from ..server.exchange import Exchange

__all__ = ["WSGIHandler", "FileWrapper", "build_environ"]

error_log = logging.getLogger("synack.error")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# PEP 3333: hop-by-hop headers are the server's business, not the application's.
_HOP_BY_HOP = frozenset(
    ("connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
     "transfer-encoding", "upgrade")
)


class ThreadPool:
    """A bounded pool of daemon threads (a hung app can never block process exit)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()

    def submit(self, loop: asyncio.AbstractEventLoop, function: Callable[[], Any]) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            if self._idle == 0 and len(self._threads) < self.size:
                thread = threading.Thread(target=self._work, name=f"synack-wsgi-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
        self._jobs.put((loop, future, function))
        return future

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            job = self._jobs.get()
            with self._lock:
                self._idle -= 1
            if job is None:
                return
            loop, future, function = job
            try:
                result = function()
            except BaseException as error:  # handed to the loop, which decides what to log
                loop.call_soon_threadsafe(_set_exception, future, error)
            else:
                loop.call_soon_threadsafe(_set_result, future, result)

    def shutdown(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)


def _set_result(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _set_exception(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


class _Bridge:
    """Runs exchange coroutines on the loop from an app thread and waits for them."""

    __slots__ = ("loop",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()


class WSGIInput(io.RawIOBase):
    """``wsgi.input``: the request body, read from the connection as the app asks for it."""

    def __init__(self, exchange: Exchange, bridge: _Bridge) -> None:
        super().__init__()
        self._exchange = exchange
        self._bridge = bridge
        self._buffer = bytearray()
        self._done = exchange.body_done and not exchange.more_body

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

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while self._fill():
                pass
            data = bytes(self._buffer)
            self._buffer.clear()
            return data
        while len(self._buffer) < size and self._fill():
            pass
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def readinto(self, target: Any) -> int:
        data = self.read(len(target))
        target[: len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0 or (size is not None and 0 <= size <= len(self._buffer)):
                break
            if not self._fill():
                break
        end = self._buffer.find(b"\n")
        take = end + 1 if end >= 0 else len(self._buffer)
        if size is not None and size >= 0:
            take = min(take, size)
        data = bytes(self._buffer[:take])
        del self._buffer[:take]
        return data

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines: list[bytes] = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                return lines

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class FileWrapper:
    """``wsgi.file_wrapper``: a real file is sent with sendfile; anything else is iterated."""

    def __init__(self, filelike: Any, block_size: int = 256 * 1024) -> None:
        self.filelike = filelike
        self.block_size = block_size
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def fileno(self) -> int | None:
        try:
            descriptor: int = self.filelike.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            return None
        return descriptor

    def __iter__(self) -> Iterator[bytes]:
        while True:
            block = self.filelike.read(self.block_size)
            if not block:
                return
            yield block


def build_environ(exchange: Exchange, body: WSGIInput) -> dict[str, Any]:
    """The PEP 3333 environ for ``exchange``."""
    head = exchange.head
    target = head.target
    if target[:1] != b"/" and target != b"*":
        # absolute-form: keep only path and query
        rest = target.split(b"://", 1)[-1]
        slash = rest.find(b"/")
        target = rest[slash:] if slash >= 0 else b"/"
    raw_path, _, query = target.partition(b"?")
    path = unquote_to_bytes(raw_path).decode("latin-1")
    script_name = exchange.root_path
    if script_name and (path == script_name or path.startswith(script_name + "/")):
        path = path[len(script_name):]
    server = exchange.server or ("", 0)
    client = exchange.client
    environ: dict[str, Any] = {
        "REQUEST_METHOD": head.method.decode("latin-1"),
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path,
        "QUERY_STRING": query.decode("latin-1"),
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": "HTTP/" + head.http_version.decode("ascii"),
        "REMOTE_ADDR": client[0] if client else "",
        "REMOTE_PORT": str(client[1]) if client else "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": exchange.scheme,
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.file_wrapper": FileWrapper,
    }
    for name, value in head.headers:
        if name == b"content-type":
            environ["CONTENT_TYPE"] = value.decode("latin-1")
            continue
        if name == b"content-length":
            environ["CONTENT_LENGTH"] = value.decode("latin-1")
            continue
        if b"_" in name:
            continue  # would be indistinguishable from a dash after conversion: a spoofing vector
        key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
        text = value.decode("latin-1")
        if key in environ:
            separator = "; " if key == "HTTP_COOKIE" else ", "
            environ[key] += separator + text
        else:
            environ[key] = text
    return environ


class _Response:
    """start_response state and the write() callable for one request (runs in the app thread)."""

    __slots__ = ("status", "reason", "headers", "sent", "exchange", "bridge")

    def __init__(self, exchange: Exchange, bridge: _Bridge) -> None:
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] | None = None
        self.sent = False
        self.exchange = exchange
        self.bridge = bridge

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.headers is not None:
            raise AssertionError("start_response called a second time without exc_info")
        self.status, self.reason = _parse_status(status)
        self.headers = _encode_headers(headers)
        return self.write

    def _send_head_once(self) -> None:
        if self.sent:
            return
        if self.headers is None:
            raise AssertionError("the application sent body bytes before calling start_response")
        self.sent = True
        self.bridge.call(self.exchange.send_head(self.status, self.headers, self.reason))

    def write(self, data: bytes) -> None:
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"write() takes bytes, got {type(data).__name__}")
        self._send_head_once()
        if data:
            self.bridge.call(self.exchange.send_body(bytes(data), more=True))


def _parse_status(status: str) -> tuple[int, bytes]:
    if not isinstance(status, str):
        raise TypeError(f"status must be a str like '200 OK', got {status!r}")
    code, _, reason = status.partition(" ")
    if len(code) != 3 or not code.isdigit():
        raise ValueError(f"invalid status {status!r}: expected '200 OK' style")
    return int(code), reason.encode("latin-1")


def _encode_headers(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    result = []
    for name, value in headers:
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(f"header names and values must be str, got {name!r}: {value!r}")
        if name.lower() in _HOP_BY_HOP:
            raise ValueError(f"hop-by-hop header {name!r} is not allowed in a WSGI response")
        result.append((name.encode("latin-1"), value.encode("latin-1")))
    return result


class WSGIHandler:
    """Runs a WSGI application in a bounded thread pool for each exchange."""

    def __init__(self, app: WSGIApp, threads: int = 32) -> None:
        self.app = app
        self.pool = ThreadPool(threads)

    async def __call__(self, exchange: Exchange) -> None:
        loop = asyncio.get_running_loop()
        bridge = _Bridge(loop)
        body = WSGIInput(exchange, bridge)
        environ = build_environ(exchange, body)
        response = _Response(exchange, bridge)
        outcome = await self.pool.submit(loop, lambda: self._run(environ, response))
        if outcome is None:
            return
        kind, payload, closer = outcome
        try:
            if kind == "body":
                if not response.sent:
                    response.sent = True
                    await exchange.send_head(response.status, response.headers or [], response.reason)
                await exchange.send_body(payload, more=False)
            else:
                await self._send_file(exchange, response, payload)
        finally:
            if closer is not None:
                closer()

    async def _send_file(self, exchange: Exchange, response: _Response, wrapper: FileWrapper) -> None:
        descriptor = wrapper.fileno()
        assert descriptor is not None
        offset = os.lseek(descriptor, 0, os.SEEK_CUR)
        size = os.fstat(descriptor).st_size - offset
        headers = response.headers or []
        declared = next((v for n, v in headers if n.lower() == b"content-length"), None)
        count = min(size, int(declared)) if declared is not None and declared.isdigit() else size
        if declared is None:
            headers = [*headers, (b"content-length", b"%d" % count)]
        response.sent = True
        await exchange.send_head(response.status, headers, response.reason)
        await exchange.send_file(wrapper.filelike, offset, count)

    def _run(self, environ: dict[str, Any], response: _Response) -> tuple[str, Any, Any] | None:
        """In a pool thread: call the app and either hand back a whole body or stream it."""
        iterable = self.app(environ, response.start_response)
        closer = getattr(iterable, "close", None)
        handed_over = False
        try:
            if isinstance(iterable, FileWrapper) and iterable.fileno() is not None and not response.sent:
                if response.headers is None:
                    raise AssertionError("the application returned without calling start_response")
                handed_over = True
                return ("file", iterable, closer)
            if isinstance(iterable, (list, tuple)) and not response.sent:
                if response.headers is None:
                    raise AssertionError("the application returned without calling start_response")
                handed_over = True
                return ("body", b"".join(iterable), closer)
            self._stream(iterable, response)
            return None
        finally:
            if not handed_over and closer is not None:
                closer()

    def _stream(self, iterable: Iterable[bytes], response: _Response) -> None:
        exchange = response.exchange
        bridge = response.bridge
        for chunk in iterable:
            if not isinstance(chunk, (bytes, bytearray)):
                raise TypeError(f"the application yielded {type(chunk).__name__}, not bytes")
            if not chunk:
                continue
            response._send_head_once()
            bridge.call(exchange.send_body(bytes(chunk), more=True))
        if response.headers is None:
            raise AssertionError("the application returned without calling start_response")
        if not response.sent:
            response.sent = True
            bridge.call(exchange.send_head(response.status, response.headers, response.reason))
        bridge.call(exchange.end())

    async def shutdown(self) -> None:
        self.pool.shutdown()

