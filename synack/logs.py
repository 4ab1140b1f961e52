"""Logging: logger names (synack.error, synack.access), the access-log line, and their setup.

The default access line (``access_line``) is built by one f-string. ``--access-log-format``
(named ``{fields}``) and ``--log-format json`` compile an ``AccessFormat`` instead, which the
driver calls through ``custom_access()``; ``--log-config`` hands the loggers to
``logging.config.dictConfig``.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import json
import logging
import logging.config
import os
import queue
import re
import string
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from typing import Any

__all__ = [
    "error_log", "access_log", "setup_logging", "LogSetupError", "access_line", "rejected_line", "escape",
    "format_peer", "AccessFormat", "AccessFormatError", "custom_access", "ACCESS_FIELDS", "JsonFormatter",
    "BackgroundHandler", "flush_access_log", "access_writer", "ACCESS_QUEUE", "fatal_line", "error_log_in_background",
    "ERROR_QUEUE",
]

error_log = logging.getLogger("synack.error")
access_log = logging.getLogger("synack.access")


class LogSetupError(Exception):
    """A log destination cannot be opened; the message says which and why."""


#: What the driver calls instead of ``access_line`` when a custom format or JSON is asked for.
_custom_access: AccessFormat | None = None
#: The error log's handler ``setup_logging`` made (``error_log_in_background`` wraps it).
_error_handler: logging.Handler | None = None


#: Access entries waiting for the writer thread, at most (``--access-log-queue``).
ACCESS_QUEUE = 10_000
#: Seconds the writer thread rests after writing a batch (entries wait at most about this long).
BATCH_PAUSE = 0.02


def setup_logging(level: str = "info", access: bool | str = "stderr", *, log_format: str = "text",
                  access_format: str | None = None, log_config: str | None = None,
                  access_queue: int = ACCESS_QUEUE) -> None:
    """Errors to stderr with a timestamp; access lines, as they are, to ``access``: "stderr",
    "-" (stdout), "off" (or False), or a file path (appended to).

    The access log writes at INFO, so ``level`` governs it too: ``warning`` turns it off.
    ``log_format`` "json" writes one JSON object per line in both logs; ``access_format``
    names the access line's fields (``ACCESS_FIELDS``); ``log_config`` is a dictConfig file
    (JSON, or TOML by its ``.toml`` suffix) applied last, so it may replace any of this.
    Access entries are written by a thread (``BackgroundHandler``): at most ``access_queue``
    wait, and those beyond are dropped and counted rather than blocking the event loop.

    Raises:
        LogSetupError: the access-log file cannot be opened, the format or the log config is invalid.
    """
    global _custom_access, _error_handler
    if log_format not in ("text", "json"):
        raise LogSetupError(f"--log-format must be text or json, got {log_format!r}")
    try:
        custom = AccessFormat(access_format, json_lines=log_format == "json") if (
            access_format is not None or log_format == "json") else None
    except AccessFormatError as error:
        raise LogSetupError(str(error)) from None
    error_handler = logging.StreamHandler(sys.stderr)
    error_handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(
        "[%(asctime)s] [%(process)d] %(levelname)s: %(message)s"))
    _error_handler = error_handler
    error_log.handlers[:] = [error_handler]
    error_log.setLevel(level.upper())
    error_log.propagate = False
    # asyncio reports what goes wrong in the loop (a task's exception nobody retrieved, a
    # transport's fatal error) on its own logger, which logging's last resort would print as
    # bare text: in JSON, those are error-log entries like any other.
    if log_format == "json":
        asyncio_log = logging.getLogger("asyncio")
        asyncio_log.handlers[:] = [_ToErrorLog()]
        asyncio_log.propagate = False
    destination = access if isinstance(access, str) else ("stderr" if access else "off")
    access_log.propagate = False
    _custom_access = custom
    if destination == "off":
        access_log.handlers[:] = []
        access_log.setLevel(logging.CRITICAL + 1)
    else:
        access_handler = _access_handler(destination)
        access_handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter("%(message)s"))
        access_log.handlers[:] = [BackgroundHandler(access_handler, access_queue)]
        access_log.setLevel(level.upper())
    if log_config is not None:
        _apply_log_config(log_config)


class _ToErrorLog(logging.Handler):
    """Hands another logger's records to the error log's handlers (keeping their logger name)."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= error_log.getEffectiveLevel():
            error_log.handle(record)


def _apply_log_config(path: str) -> None:
    """``logging.config.dictConfig`` from a JSON file, or a TOML one (by its suffix)."""
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError as error:
        raise LogSetupError(f"cannot read --log-config {path}: {error.strerror or error}") from None
    try:
        if path.endswith(".toml"):
            settings: Any = tomllib.loads(raw.decode("utf-8"))
        else:
            settings = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise LogSetupError(f"--log-config {path} is not valid {'TOML' if path.endswith('.toml') else 'JSON'}:"
                            f" {error}") from None
    if not isinstance(settings, dict):
        raise LogSetupError(f"--log-config {path} must hold a dictConfig mapping (with version = 1)")
    settings.setdefault("version", 1)
    settings.setdefault("disable_existing_loggers", False)
    try:
        logging.config.dictConfig(settings)
    except (ValueError, TypeError, AttributeError, ImportError) as error:
        raise LogSetupError(f"--log-config {path}: {error}") from None


def access_writer() -> Callable[[str], None]:
    """What the driver hands each default access line to: ``access_log.info``, or, when the
    access log is still exactly what ``setup_logging`` made of it (synack's background
    handler in front of a plain stream or file handler writing ``%(message)s``, no filters),
    that handler's ``put_line``. The line then costs a queue put: no ``LogRecord`` (a few
    microseconds each, as long as the rest of a small request), and the writer thread
    writes a batch of lines in one ``write``. A ``--log-config`` (or an application) that
    changed the logger before the server started keeps the logging path.
    """
    return access_lane(json_lines=False) or access_log.info


def access_lane(json_lines: bool) -> Callable[[str], None] | None:
    """The ``put_line`` of synack's own access handler when the access logger is still what
    ``setup_logging`` made of it, writing ``%(message)s`` (or, with ``json_lines``, through
    ``JsonFormatter``); None otherwise (see ``access_writer``)."""
    handlers = access_log.handlers
    if len(handlers) == 1 and not access_log.filters and not access_log.disabled:
        handler = handlers[0]
        if type(handler) is BackgroundHandler and not handler.filters:
            target = handler.target
            formatter = target.formatter
            if json_lines:
                own_format = type(formatter) is JsonFormatter
            else:
                own_format = type(formatter) is logging.Formatter and formatter._fmt == "%(message)s"
            if (own_format and type(target) in (logging.StreamHandler, logging.FileHandler)
                    and not target.filters and target.level <= logging.INFO and handler.level <= logging.INFO):
                return handler.put_line
    return None


def custom_access() -> AccessFormat | None:
    """The compiled access format the driver uses instead of ``access_line``, or None for the
    default Combined Log Format line (the fast path)."""
    return _custom_access


class BackgroundHandler(logging.Handler):
    """Hands records to a writer thread through a bounded queue, so a slow disk or a pipe
    nobody reads never blocks the event loop. Records beyond ``capacity`` are dropped and
    counted; the count goes to the error log once the writer catches up, and at exit.

    The thread starts with the first record in each process (a forked worker starts its own).
    ``name`` says which log it is in the report of what was dropped; ``pause`` is how long
    the writer rests after a batch; with ``detach``, a record's message and traceback are
    formatted when it is queued, so the queue holds text rather than the frames of a traceback.
    """

    def __init__(self, target: logging.Handler, capacity: int = ACCESS_QUEUE, *, name: str = "access log",
                 pause: float = BATCH_PAUSE, detach: bool = False) -> None:
        super().__init__()
        self.target = target
        self.capacity = capacity
        self.log_name = name
        self.pause = pause
        self.detach = detach
        self.dropped = 0
        self._reported = 0
        self._queue: queue.SimpleQueue[logging.LogRecord | str | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def handle(self, record: logging.LogRecord) -> bool:  # (no filters, no lock: one queue put)
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        if self._pid != _pid:
            self._start()
        if self._queue.qsize() >= self.capacity:
            self.dropped += 1
            return
        if self.detach:
            self._detach(record)
        self._queue.put(record)

    def put_line(self, line: str) -> None:
        """Queue an access line that is already text: no ``LogRecord`` is made for it, and
        the writer thread writes consecutive lines in one piece (see ``access_writer``)."""
        if self._pid != _pid:
            self._start()
        if self._queue.qsize() >= self.capacity:
            self.dropped += 1
            return
        self._queue.put(line)

    def _detach(self, record: logging.LogRecord) -> None:
        # What logging.handlers.QueueHandler.prepare does, but with the traceback kept apart
        # from the message (exc_text: the JSON formatter's "exception").
        record.msg = record.getMessage()
        record.args = None
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = (self.target.formatter or logging.Formatter()).formatException(record.exc_info)
            record.exc_info = None

    def _start(self) -> None:
        # In a forked child the parent's thread is gone: a fresh queue and a thread of our own.
        self._queue = queue.SimpleQueue()
        self.dropped = self._reported = 0
        self._pid = _pid
        self._thread = threading.Thread(target=self._write, name=f"synack-{self.log_name.replace(' ', '-')}",
                                        daemon=True)
        self._thread.start()
        _background.add(self)

    def _write(self) -> None:
        target, entries = self.target, self._queue
        lines: list[str] = []
        while True:
            record = entries.get()  # (waits only when the queue is empty)
            while record is not None:
                if isinstance(record, str):
                    lines.append(record)  # written with the lines that follow it
                else:
                    if lines:
                        self._write_lines(lines)
                    try:
                        target.handle(record)
                    except Exception:  # (logging reports its own write errors; never let the thread die)
                        pass
                if entries.empty():
                    break
                record = entries.get_nowait()
            if lines:
                self._write_lines(lines)
            if record is None:
                return  # (None: flush() asked the thread to stop)
            if self.dropped > self._reported:
                self._report()
            # Let entries gather before the next batch: one wake-up of this thread for many
            # requests instead of one per request.
            if self.pause:
                time.sleep(self.pause)

    def _write_lines(self, lines: list[str]) -> None:
        """Write a batch of text lines with one write and one flush, as the target's own
        ``emit`` would write each (``access_writer`` checked that it is a plain stream handler
        formatting ``%(message)s``); if that fails, each line goes through the target's
        ``handle``, so a failure is reported as logging reports it."""
        target = self.target
        assert isinstance(target, logging.StreamHandler)
        text = target.terminator.join(lines) + target.terminator
        target.acquire()
        try:
            target.stream.write(text)
            target.flush()
            written = True
        except Exception:
            written = False
        finally:
            target.release()
        if not written:
            for line in lines:
                try:
                    target.handle(logging.LogRecord(access_log.name, logging.INFO, __file__, 0, line, None, None))
                except Exception:
                    pass
        lines.clear()

    def _report(self) -> None:
        dropped, self._reported = self.dropped, self.dropped
        error_log.warning("%s: %d entries dropped in all: the destination did not keep up"
                          " (at most %d wait to be written)", self.log_name, dropped, self.capacity)

    def flush(self, timeout: float = 5.0) -> None:
        """Write what is queued (waiting at most ``timeout`` seconds), then stop the thread;
        report what was dropped and what could not be written."""
        thread = self._thread
        if thread is None or self._pid != _pid:
            return
        self._thread = None
        self._pid = 0
        _background.discard(self)
        self._queue.put(None)
        thread.join(timeout)
        if thread.is_alive():
            error_log.warning("%s: %d entries dropped, %d not written at exit: the destination"
                              " did not keep up", self.log_name, self.dropped, self._queue.qsize())
        elif self.dropped > self._reported:
            self._report()
        try:
            self.target.flush()
        except Exception:
            pass


#: The handlers whose thread runs in this process.
_background: set[BackgroundHandler] = set()
_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()
    _background.clear()


os.register_at_fork(after_in_child=_forked)


def flush_access_log(timeout: float = 5.0) -> None:
    """Write out the queued entries (at exit, before a re-exec): the access log's, and the
    error log's if it is still in the background."""
    for handler in list(_background):
        handler.flush(timeout)


atexit.register(flush_access_log)


#: Error-log records that may wait for a slow stderr in a worker. Fewer than access entries
#: (errors are rarer, and a traceback is larger), and not a setting: past this many, the
#: destination is not keeping up with one error per request either.
ERROR_QUEUE = 1_000


@contextlib.contextmanager
def error_log_in_background(capacity: int = ERROR_QUEUE) -> Iterator[None]:
    """While the event loop serves, synack's own error-log handler writes through a
    ``BackgroundHandler`` too, so a traceback per request to a stderr nobody reads never
    blocks the loop (beyond ``capacity`` records, they are dropped and counted).

    On the way out, whatever is queued is written (a crash or a failed startup included)
    and the handler writes directly again: what is logged after the loop (a fatal error,
    the supervisor's reports) is printed at once. Only workers use it: the arbiter forks,
    and a writer thread caught mid-write at a fork would leave the child's stderr locked.
    A handler that ``--log-config`` put in place of synack's is left as it is.
    """
    own = _error_handler
    if own is None or own not in error_log.handlers:
        yield
        return
    background = BackgroundHandler(own, capacity, name="error log", pause=0.0, detach=True)
    error_log.handlers[:] = [background if handler is own else handler for handler in error_log.handlers]
    try:
        yield
    finally:
        error_log.handlers[:] = [own if handler is background else handler for handler in error_log.handlers]
        background.flush()


def _access_handler(destination: str) -> logging.Handler:
    if destination == "stderr":
        return logging.StreamHandler(sys.stderr)
    if destination == "-":
        return logging.StreamHandler(sys.stdout)
    try:
        return logging.FileHandler(destination, encoding="utf-8")
    except OSError as error:
        raise LogSetupError(f"cannot open the access log {destination}: {error.strerror or error}") from None


# Bytes shown as they are in a log line: printable ASCII except the quote and the backslash,
# which frame and escape the quoted fields. Everything else (controls, DEL, and every byte
# >= 0x80, some of which str.splitlines() would treat as a line break once decoded) is written
# as \xHH, as nginx does, so a client can never forge or split a log line.
_ESCAPES = {byte: f"\\x{byte:02X}" for byte in range(256) if not 0x20 <= byte < 0x7F}
_ESCAPES[ord('"')] = '\\"'
_ESCAPES[ord("\\")] = "\\\\"


#: Bytes that need no escaping: printable ASCII but the quote and the backslash.
_PLAIN = re.compile(rb'[ !#-\[\]-~]*').fullmatch


def escape(raw: bytes) -> str:
    """``raw`` as safe log text: printable ASCII kept, every other byte as ``\\xHH``."""
    if _PLAIN(raw) is not None:
        return raw.decode()  # the usual case: nothing to escape (one C call to know it)
    return raw.decode("latin-1").translate(_ESCAPES)


def format_peer(peer: tuple[str, int] | None) -> str:
    """``host:port`` (``[v6]:port``) of a peer, or ``unix socket`` when it has no address."""
    if peer is None:
        return "unix socket"
    host, port = peer
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def access_line(
    client: tuple[str, int] | None,
    log_time: str,
    request_line: bytes,
    status: int,
    size: int,
    referer: bytes | None,
    agent: bytes | None,
    duration_us: int | None = None,
) -> str:
    """One access-log line in the Combined Log Format, every client-supplied field escaped,
    then the time from the request head to the end of the response (``1234us``)."""
    host = client[0] if client else "-"
    return (
        f'{host} - - [{log_time}] "{escape(request_line)}" {status} {size if size else "-"}'
        f' "{"-" if not referer or referer == b"-" else escape(referer)}"'
        f' "{"-" if not agent or agent == b"-" else escape(agent)}" {"-" if duration_us is None else f"{duration_us}us"}'
    )


def rejected_line(client: tuple[str, int] | None, log_time: str, status: int) -> str:
    """The access-log line for a request rejected before its head could be parsed."""
    host = client[0] if client else "-"
    return f'{host} - - [{log_time}] "-" {status} - "-" "-" -'


# ---------------------------------------------------------------------- named access formats


class AccessFormatError(ValueError):
    """An ``--access-log-format`` names an unknown field or is malformed."""


#: The fields ``--access-log-format`` may name, as ``{name}``; besides them,
#: ``{header:NAME}`` (a request field) and ``{response_header:NAME}``.
ACCESS_FIELDS = {
    "client": "the client's address (host)",
    "time": "the local time, as in the Common Log Format",
    "request_line": "method, target and version",
    "method": "the request method",
    "path": "the path, without the query",
    "query": "the query, without the '?'",
    "status": "the response status",
    "bytes": "response body bytes sent",
    "duration_us": "microseconds from the request head to the end of the response",
    "referer": "the Referer field",
    "user_agent": "the User-Agent field",
    "request_id": "the X-Request-ID (a trusted peer's, else generated)",
    "pid": "the worker's process id",
}
_HEADER_FIELDS = ("header", "response_header")
#: The fields of a JSON access entry when no --access-log-format names them.
_JSON_FIELDS = ("client", "method", "path", "query", "request_line", "status", "bytes", "duration_us",
                "referer", "user_agent", "request_id", "pid")


class AccessEntry:
    """One finished request, as the driver describes it to an ``AccessFormat``."""

    __slots__ = ("client", "log_time", "request", "status", "size", "duration_us", "exchange")

    def __init__(self, client: tuple[str, int] | None, log_time: str, request: Any, status: int, size: int,
                 duration_us: int | None, exchange: Any) -> None:
        self.client = client
        self.log_time = log_time
        self.request = request
        self.status = status
        self.size = size
        self.duration_us = duration_us
        #: The request's ``Exchange`` (for response fields and the request id), or None.
        self.exchange = exchange


class _Unparsed:
    """The request of an entry whose head could not be parsed: every field of it is missing."""

    method = target = http_version = path = query = None
    headers: dict[bytes, bytes] = {}


_UNPARSED = _Unparsed()


def _request_line(entry: AccessEntry) -> bytes | None:
    request = entry.request
    if request is _UNPARSED:
        return None
    return bytes(request.method + b" " + request.target + b" HTTP/" + request.http_version)


def _request_field(name: bytes) -> Callable[[AccessEntry], bytes | None]:
    return lambda entry: entry.request.headers.get(name)


def _response_field(name: bytes) -> Callable[[AccessEntry], bytes | None]:
    def read(entry: AccessEntry) -> bytes | None:
        exchange = entry.exchange
        if exchange is None:
            return None
        for field_name, value in exchange.response_headers:
            if field_name.lower() == name:
                return bytes(value)
        return None

    return read


def _request_id(entry: AccessEntry) -> str | None:
    exchange = entry.exchange
    return exchange.request_id if exchange is not None else None


_GETTERS: dict[str, Callable[[AccessEntry], Any]] = {
    "client": lambda entry: entry.client[0] if entry.client else None,
    "time": lambda entry: entry.log_time,
    "request_line": _request_line,
    "method": lambda entry: entry.request.method,
    "path": lambda entry: entry.request.path,
    "query": lambda entry: entry.request.query,
    "status": lambda entry: entry.status,
    "bytes": lambda entry: entry.size,
    "duration_us": lambda entry: entry.duration_us,
    "referer": lambda entry: entry.request.headers.get(b"referer"),
    "user_agent": lambda entry: entry.request.headers.get(b"user-agent"),
    "request_id": _request_id,
    "pid": lambda entry: os.getpid(),
}


class AccessFormat:
    """A compiled ``--access-log-format`` (``{client} "{request_line}" {status} {duration_us}``),
    written as text (client bytes escaped, a missing value as ``-``) or, with ``json_lines``,
    as one JSON object per line holding the named fields (all of ``_JSON_FIELDS`` by default).

    Raises:
        AccessFormatError: an unknown field, a stray brace or a header field without a name.
    """

    def __init__(self, template: str | None, *, json_lines: bool = False) -> None:
        self.json_lines = json_lines
        #: Where finished lines go without a ``LogRecord`` (``access_lane``), once the server
        #: has checked that the access logger is still synack's own; None: through logging.
        self.lane: Callable[[str], None] | None = None
        #: Literal text and (key, getter) pairs, in order.
        self.parts: list[str | tuple[str, Callable[[AccessEntry], Any]]] = []
        #: The default JSON fields, read by one function instead of a getter each.
        self._default = template is None
        if template is None:
            self.parts = [(name, _GETTERS[name]) for name in _JSON_FIELDS]
            return
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as error:
            raise AccessFormatError(f"--access-log-format {template!r}: {error} (write {{{{ for a brace)") from None
        for literal, name, spec, conversion in parsed:
            if literal:
                self.parts.append(literal)
            if name is None:
                continue
            self.parts.append(self._field(name, spec or "", conversion))

    @staticmethod
    def _field(name: str, spec: str, conversion: str | None) -> tuple[str, Callable[[AccessEntry], Any]]:
        if conversion is not None:
            raise AccessFormatError(f"--access-log-format: {{{name}!{conversion}}}: conversions are not supported")
        if name in _HEADER_FIELDS:
            if not spec:
                raise AccessFormatError(f"--access-log-format: {{{name}:NAME}} needs a field name")
            field = spec.lower().encode("latin-1")
            getter = _request_field(field) if name == "header" else _response_field(field)
            return f"{name}_{spec.lower().replace('-', '_')}", getter
        if name not in _GETTERS:
            known = ", ".join(sorted([*_GETTERS, "header:NAME", "response_header:NAME"]))
            raise AccessFormatError(f"--access-log-format: unknown field {{{name}}}; the fields are {known}")
        if spec:
            raise AccessFormatError(f"--access-log-format: {{{name}:{spec}}}: only header fields take a name")
        return name, _GETTERS[name]

    def __call__(self, client: tuple[str, int] | None, log_time: str, request: Any, status: int, size: int,
                 duration_us: int, exchange: Any) -> None:
        """Log one request (the driver's hook)."""
        self._log(AccessEntry(client, log_time, request, status, size, duration_us, exchange))

    def rejected(self, client: tuple[str, int] | None, log_time: str, status: int) -> None:
        """Log a request rejected before its head could be parsed (``rejected_line``'s case):
        only the client, the time and the status are known; the request's fields are empty."""
        self._log(AccessEntry(client, log_time, _UNPARSED, status, 0, None, None))

    def websocket_closed(self, client: tuple[str, int] | None, log_time: str, request: Any, duration_us: int,
                         exchange: Any, code: int) -> None:
        """Log the end of a WebSocket (the 101's second entry): its lifetime as the duration,
        and the close code (``websocket_close`` in JSON, ``websocket closed CODE`` in text)."""
        self._log(AccessEntry(client, log_time, request, 101, 0, duration_us, exchange), code)

    def _log(self, entry: AccessEntry, websocket_close: int | None = None) -> None:
        lane = self.lane
        if self.json_lines:
            fields = self.values(entry)
            if websocket_close is not None:
                fields["websocket_close"] = websocket_close
            if lane is not None:
                # What JsonFormatter writes for the record logging would have made.
                lane(_json_line(time.time(), "info", access_log.name, _pid, fields))
            else:
                access_log.info("%s %s", fields.get("request_line", ""), entry.status, extra={"access": fields})
        elif lane is not None:
            text = self.text(entry)
            lane(text if websocket_close is None else f"{text} websocket closed {websocket_close}")
        elif websocket_close is not None:
            access_log.info("%s websocket closed %d", self.text(entry), websocket_close)
        else:
            access_log.info(self.text(entry))

    def values(self, entry: AccessEntry) -> dict[str, Any]:
        """The named fields' values: numbers as numbers, client bytes decoded (Latin-1)."""
        if self._default:
            return _default_values(entry)
        values: dict[str, Any] = {}
        for part in self.parts:
            if isinstance(part, tuple):
                value = part[1](entry)
                values[part[0]] = value.decode("latin-1") if isinstance(value, bytes) else value
        return values

    def text(self, entry: AccessEntry) -> str:
        pieces: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                pieces.append(part)
                continue
            value = part[1](entry)
            if value is None or value == b"":
                pieces.append("-")
            elif isinstance(value, bytes):
                pieces.append(escape(value))
            elif isinstance(value, str):
                pieces.append(escape(value.encode("utf-8", "replace")))
            else:
                pieces.append(str(value))
        return "".join(pieces)


def _latin1(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def _default_values(entry: AccessEntry) -> dict[str, Any]:
    """``AccessFormat.values`` for the default JSON fields (``_JSON_FIELDS``, in that order),
    in one call: what each getter of ``_GETTERS`` gives, decoded as ``values`` decodes it."""
    request, client, exchange = entry.request, entry.client, entry.exchange
    if request is _UNPARSED:
        method = path = query = request_line = referer = agent = None
    else:
        headers = request.headers
        method = request.method.decode("latin-1")
        path = request.path.decode("latin-1")
        query = request.query.decode("latin-1")
        request_line = _latin1(_request_line(entry))
        referer = _latin1(headers.get(b"referer"))
        agent = _latin1(headers.get(b"user-agent"))
    return {
        "client": client[0] if client else None,
        "method": method,
        "path": path,
        "query": query,
        "request_line": request_line,
        "status": entry.status,
        "bytes": entry.size,
        "duration_us": entry.duration_us,
        "referer": referer,
        "user_agent": agent,
        "request_id": exchange.request_id if exchange is not None else None,
        "pid": _pid,
    }


def fatal_line(message: str, log_format: str) -> str:
    """The line ``cli.py`` prints when synack cannot start (``synack: error: ...``): with
    ``--log-format json`` one JSON object like the error log's, so that every line is JSON."""
    if log_format != "json":
        return f"synack: error: {message}\n"
    record = logging.LogRecord(error_log.name, logging.ERROR, __file__, 0, "synack: error: %s", (message,), None)
    return JsonFormatter().format(record) + "\n"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, pid, and the message,
    the exception's traceback, or an access entry's fields (``duration_us`` among them)."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "access", None)
        extra: dict[str, Any] = dict(fields) if isinstance(fields, dict) else {"message": record.getMessage()}
        if record.exc_info:
            extra["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            extra["exception"] = record.exc_text
        if record.stack_info:
            extra["stack"] = self.formatStack(record.stack_info)
        return _json_line(record.created, record.levelname.lower(), record.name, record.process, extra)


#: The last whole second ``_iso_time`` formatted, and its text up to the seconds.
_second: tuple[int, str] = (-1, "")


def _iso_time(created: float) -> str:
    """``created`` in ISO 8601, UTC, to the millisecond (``2026-11-30T01:02:03.456Z``); the
    date and time up to the second are formatted once per second."""
    global _second
    whole = int(created)
    second, text = _second
    if whole != second:
        text = datetime.datetime.fromtimestamp(whole, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        _second = (whole, text)
    return f"{text}.{int((created - whole) * 1000):03d}Z"


def _json_line(created: float, level: str, logger: str, pid: int | None, fields: dict[str, Any]) -> str:
    """One JSON log line: time, level, logger and pid, then ``fields`` (JsonFormatter's shape)."""
    entry: dict[str, Any] = {"time": _iso_time(created), "level": level, "logger": logger, "pid": pid}
    entry.update(fields)
    return _JSON.encode(entry)


#: ``json.dumps(…, ensure_ascii=True, default=str)``, made once (dumps makes an encoder per call).
_JSON = json.JSONEncoder(ensure_ascii=True, default=str)
