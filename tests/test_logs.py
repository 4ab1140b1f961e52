"""Logs people can query, with a real ``python -m synack``: ``--access-log-format`` with named
fields, ``--log-format json`` (both logs, one object per line), ``--log-config`` (dictConfig
from JSON or TOML)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_operate import _env, _listener, _run_to_end


def _requests_on_one_connection(args: list[str], requests: list[bytes]) -> tuple[list[bytes], str, str]:
    """Serve the raw ``requests``, sent one after another on one connection, then stop; the
    response bodies, stdout, stderr."""
    import signal
    import socket

    from tests.helpers import Reader

    listener = _listener()
    process = subprocess.Popen(
        [sys.executable, "-m", "synack", "--fd", str(listener.fileno()), *args], env=_env(),
        pass_fds=(listener.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        with socket.create_connection(listener.getsockname(), timeout=10) as sock:
            reader = Reader(sock)
            bodies = []
            for request in requests:
                sock.sendall(request)
                bodies.append(reader.response().body)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
        listener.close()
    return bodies, out.decode(), err.decode()


def _run_with_headers(args: list[str], request: bytes) -> tuple[bytes, str, str]:
    """Serve one raw ``request`` (sent as is on a fresh connection), stop; response, stdout, stderr."""
    bodies, out, err = _requests_on_one_connection(args, [request])
    return bodies[0], out, err


REQUEST = (b"GET /fields?x=1&y=%22 HTTP/1.1\r\nHost: t\r\nReferer: http://r/\r\nUser-Agent: probe/1\r\n"
           b"X-Trace: a\"b\\c\r\nConnection: close\r\n\r\n")


def test_named_fields_in_a_custom_access_format() -> None:
    template = ('{client}|{request_line}|{method}|{path}|{query}|{status}|{bytes}|{duration_us}|{referer}'
                '|{user_agent}|{header:x-trace}|{header:x-absent}|{response_header:Content-Type}|{pid}|{{lit}}')
    body, out, err = _run_with_headers(["--access-log", "-", "--access-log-format", template, "hello:app"], REQUEST)
    assert body == b"Hello, world!"
    lines = out.splitlines()
    assert len(lines) == 1, out
    fields = lines[0].split("|")
    assert fields[:7] == ["127.0.0.1", "GET /fields?x=1&y=%22 HTTP/1.1", "GET", "/fields", "x=1&y=%22", "200", "13"]
    assert re.fullmatch(r"\d+", fields[7])
    assert fields[8:13] == ["http://r/", "probe/1", 'a\\"b\\\\c', "-", "text/plain"]
    assert re.fullmatch(r"\d+", fields[13]) and fields[13] != str(os.getpid())
    assert fields[14] == "{lit}"


def test_json_logs_parse_line_by_line() -> None:
    body, out, err = _run_with_headers(["--log-format", "json", "hello:app"], REQUEST)
    assert body == b"Hello, world!"
    entries = [json.loads(line) for line in err.splitlines()]  # every line, error and access, is JSON
    access = [entry for entry in entries if entry["logger"] == "synack.access"]
    errors = [entry for entry in entries if entry["logger"] == "synack.error"]
    assert len(access) == 1, err
    entry = access[0]
    assert entry["method"] == "GET" and entry["path"] == "/fields" and entry["query"] == "x=1&y=%22"
    assert entry["status"] == 200 and entry["bytes"] == 13 and entry["client"] == "127.0.0.1"
    assert isinstance(entry["duration_us"], int) and entry["duration_us"] >= 0
    assert entry["user_agent"] == "probe/1" and entry["referer"] == "http://r/"
    assert any("listening on" in error["message"] for error in errors)
    assert all(error["level"] in ("info", "warning", "error") and "time" in error for error in errors)


def _exchange(address: tuple[str, int], request: bytes) -> bytes:
    """Send ``request`` on a fresh connection; the status line of the answer (read to the close)."""
    import socket

    with socket.create_connection(address, timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer.partition(b"\r\n")[0]


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]])
def test_every_log_line_is_json(workers: list[str]) -> None:
    """With --log-format json, every line either log writes is one JSON object: requests the
    driver rejects before the app (400, 408, 413, 431, as entries with a status field), an app's
    traceback (inside the object), asyncio's own reports, startup and shutdown messages, and
    with --workers the supervisor's."""
    import signal

    listener = _listener()
    address = listener.getsockname()
    process = subprocess.Popen(
        [sys.executable, "-m", "synack", "--fd", str(listener.fileno()), *workers, "--log-format", "json",
         "--access-log", "-", "--head-timeout", "1", "--max-body-bytes", "10", "--max-head-bytes", "9000",
         "op_json_logs:app"], env=_env(),
        pass_fds=(listener.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    close = b"Host: t\r\nConnection: close\r\n\r\n"
    try:
        statuses = [
            _exchange(address, b"NOT HTTP\r\n\r\n"),
            _exchange(address, b"GET / HTTP/1.1\r\nHost: t\r\n"),  # the head never ends: 408
            _exchange(address, b"POST / HTTP/1.1\r\nContent-Length: 100\r\n" + close + b"x" * 100),
            _exchange(address, b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 10_000 + b"\r\n" + close),
            _exchange(address, b"GET /raise HTTP/1.1\r\n" + close),
            _exchange(address, b"GET /orphan-task HTTP/1.1\r\n" + close),
        ]
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
        listener.close()
    assert [status.split(b" ")[1] for status in statuses] == [b"400", b"408", b"413", b"431", b"500", b"200"]
    access = [json.loads(line) for line in out.decode().splitlines()]
    errors = [json.loads(line) for line in err.decode().splitlines()]
    assert sorted(entry["status"] for entry in access) == [200, 400, 408, 413, 431, 500], access
    rejected = [entry for entry in access if entry["status"] in (400, 408, 413, 431)]
    assert all(entry["client"] == "127.0.0.1" and entry["method"] is None for entry in rejected), rejected
    messages = [entry.get("message", "") for entry in errors]
    crash = [entry for entry in errors if "json-logs-boom" in entry.get("exception", "")]
    assert len(crash) == 1 and crash[0]["exception"].startswith("Traceback (most recent call last)")
    assert any(entry["logger"] == "asyncio" and "nobody-retrieves-this" in entry.get("exception", "")
               for entry in errors), errors
    assert any("listening on" in message for message in messages)
    assert any(message.startswith("drained in") for message in messages)
    if workers:
        assert any("starting 2 worker(s)" in message for message in messages)
        assert any(message.startswith("SIGTERM: stopping") for message in messages)


def test_a_fatal_startup_error_is_json_too() -> None:
    result = subprocess.run([sys.executable, "-m", "synack", "--log-format", "json", "no_such_module:app"],
                            env=_env(), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 1
    entry = json.loads(result.stderr)  # one object (and nothing else)
    assert entry["level"] == "error" and entry["message"].startswith("synack: error: could not import module")


def test_json_access_format_names_its_fields() -> None:
    _, out, _ = _run_with_headers(
        ["--access-log", "-", "--log-format", "json", "--access-log-format", "{status} {header:x-trace}",
         "hello:app"], REQUEST)
    entry = json.loads(out)
    assert entry["status"] == 200 and entry["header_x_trace"] == 'a"b\\c'
    assert "path" not in entry


def test_a_control_byte_cannot_split_a_json_line() -> None:
    request = b"GET /x HTTP/1.1\r\nHost: t\r\nUser-Agent: a\x85b\xe2\x80\xa8c\r\nConnection: close\r\n\r\n"
    _, out, _ = _run_with_headers(["--access-log", "-", "--log-format", "json", "hello:app"], request)
    assert len(out.splitlines()) == 1
    assert json.loads(out)["user_agent"] == "a\x85b\xe2\x80\xa8c"


@pytest.mark.parametrize("suffix", ["json", "toml"])
def test_log_config_file(tmp_path: Path, suffix: str) -> None:
    target = tmp_path / "routed.log"
    settings = {
        "version": 1,
        "formatters": {"mine": {"format": "MINE %(name)s %(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(target), "formatter": "mine"}},
        "loggers": {"synack.access": {"handlers": ["file"], "level": "INFO", "propagate": False}},
    }
    config = tmp_path / f"logging.{suffix}"
    if suffix == "json":
        config.write_text(json.dumps(settings))
    else:
        config.write_text(f'''version = 1
[formatters.mine]
format = "MINE %(name)s %(message)s"
[handlers.file]
class = "logging.FileHandler"
filename = {json.dumps(str(target))}
formatter = "mine"
[loggers."synack.access"]
handlers = ["file"]
level = "INFO"
propagate = false
''')
    _, out, err = _run_to_end(["--log-config", str(config), "hello:app"], _listener(), [b"/routed"])
    lines = target.read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith("MINE synack.access 127.0.0.1 - - [") and "GET /routed" in lines[0]
    assert "GET /routed" not in err and "listening on" in err


@pytest.mark.parametrize("args, message", [
    (["--access-log-format", "{nope}"], "synack: error: --access-log-format: unknown field {nope}; the fields are"),
    (["--access-log-format", "{status"], "synack: error: --access-log-format '{status':"),
    (["--access-log-format", "{header}"], "synack: error: --access-log-format: {header:NAME} needs a field name"),
    (["--log-config", "/no/such/file.json"], "synack: error: cannot read --log-config /no/such/file.json:"),
])
def test_bad_log_settings_are_one_line(args: list[str], message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "synack", *args, "hello:app"], env=_env(),
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode != 0
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(message), result.stderr


def test_a_log_config_that_is_not_json_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "broken.json"
    config.write_text("{not json")
    result = subprocess.run([sys.executable, "-m", "synack", "--log-config", str(config), "hello:app"], env=_env(),
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 1
    assert result.stderr.startswith(f"synack: error: --log-config {config} is not valid JSON:"), result.stderr
    assert len(result.stderr.splitlines()) == 1


# ---------------------------------------------------------------------- X-Request-ID


def _with_id(value: bytes | None) -> bytes:
    field = b"X-Request-ID: " + value + b"\r\n" if value is not None else b""
    return b"GET /id HTTP/1.1\r\nHost: t\r\n" + field + b"\r\n"


@pytest.mark.parametrize("app", ["op_request_id:app", "op_request_id:wsgi"])
def test_request_id_taken_from_a_trusted_peer_or_generated(app: str) -> None:
    requests = [_with_id(b"from-proxy-42"), _with_id(None), _with_id(None), _with_id(b"has space"),
                _with_id(b"x" * 201)]
    bodies, out, _ = _requests_on_one_connection(
        ["--access-log", "-", "--access-log-format", "{request_id}", app], requests)
    assert bodies[0] == b"from-proxy-42"  # loopback is trusted by default (--forwarded-allow-ips)
    generated = bodies[1:]
    assert len(set(generated)) == 4 and all(re.fullmatch(rb"[0-9a-f]{16}-[0-9a-f]+", body) for body in generated)
    assert out.splitlines() == [body.decode() for body in bodies]  # the log shows what the app saw


def test_request_ids_differ_across_workers() -> None:
    from synack.server.request_id import RequestIds

    first, second = RequestIds(), RequestIds()
    assert first.prefix != second.prefix
    assert first.new() != first.new()


@pytest.mark.parametrize("args", [["--forwarded-allow-ips", "192.0.2.1"], ["--proxy-headers", "off"]])
def test_an_untrusted_peer_cannot_choose_its_request_id(args: list[str]) -> None:
    bodies, out, _ = _requests_on_one_connection(
        [*args, "--access-log", "-", "--access-log-format", "{request_id}", "op_request_id:app"],
        [_with_id(b"forged"), _with_id(b"forged")])
    assert b"forged" not in bodies and len(set(bodies)) == 2
    assert out.splitlines() == [body.decode() for body in bodies]


def test_a_request_id_is_taken_only_when_trusted_and_well_formed() -> None:
    from synack.server.request_id import RequestIds

    ids = RequestIds()
    assert ids.for_request({b"x-request-id": b"abc-1"}, trusted=True) == "abc-1"
    assert ids.for_request({b"x-request-id": b"abc-1"}, trusted=False) != "abc-1"
    assert ids.for_request({b"x-request-id": b"a b"}, trusted=True) != "a b"


@pytest.mark.parametrize("args, given", [
    (["--request-id", "on", "--no-access-log"], True),
    (["--log-format", "json"], True),  # auto: the JSON access entry records it
    ([], False),  # auto: the default access line does not, and nothing else asks
    (["--request-id", "off", "--log-format", "json"], False),
])
def test_when_the_app_gets_a_request_id(args: list[str], given: bool) -> None:
    bodies, _, _ = _requests_on_one_connection([*args, "op_request_id:app"], [_with_id(b"chosen")])
    assert (bodies[0] == b"chosen") is given, bodies  # (without it the app fails: a 500)


@pytest.mark.parametrize("given", ["from-proxy-7", None])
def test_a_websocket_gets_its_request_id_and_the_access_entry_shows_it(given: str | None) -> None:
    """The WebSocket scope's state holds the handshake's X-Request-ID (a trusted peer's, else a
    new one), as the HTTP scope's does, and both access entries of the upgraded connection (the
    101, and its end) record the same id as JSON fields."""
    import asyncio
    import signal

    from websockets.asyncio.client import connect

    listener = _listener()
    host, port = listener.getsockname()
    process = subprocess.Popen(
        [sys.executable, "-m", "synack", "--fd", str(listener.fileno()), "--access-log", "-",
         "--log-format", "json", "op_request_id:app"], env=_env(),
        pass_fds=(listener.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )

    async def first_message() -> str:
        headers = {"X-Request-ID": given} if given is not None else {}
        async with connect(f"ws://{host}:{port}/ws", additional_headers=headers) as ws:
            return str(await ws.recv())

    try:
        seen = asyncio.run(asyncio.wait_for(first_message(), 30))
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
        listener.close()
    if given is not None:
        assert seen == given  # loopback is trusted by default (--forwarded-allow-ips)
    else:
        assert re.fullmatch(r"[0-9a-f]{16}-[0-9a-f]+", seen), seen
    entries = [json.loads(line) for line in out.decode().splitlines()]
    # The handshake's entry, then the one written when the WebSocket ends (with its close code).
    assert [(entry["status"], entry["path"], entry["request_id"], entry.get("websocket_close"))
            for entry in entries] == [(101, "/ws", seen, None), (101, "/ws", seen, 1000)]


# ---------------------------------------------------------------------- a slow destination


def test_an_access_log_nobody_reads_never_blocks_the_server() -> None:
    """The access log goes to a pipe the test does not read while it sends 3000 requests:
    the pipe fills after a few hundred lines, the queue (100) after as many again, and the
    rest are dropped and counted; every request is answered. Once the pipe is read (at stop),
    the lines written plus the count of those dropped are exactly the requests sent."""
    import signal
    import socket

    from tests.helpers import Reader

    listener = _listener()
    process = subprocess.Popen(
        [sys.executable, "-m", "synack", "--fd", str(listener.fileno()), "--access-log", "-",
         "--access-log-queue", "100", "hello:app"], env=_env(),
        pass_fds=(listener.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    sent = 0
    try:
        with socket.create_connection(listener.getsockname(), timeout=10) as sock:
            reader = Reader(sock)
            batch = b"GET /unread-pipe HTTP/1.1\r\nHost: t\r\n\r\n" * 50
            for _ in range(60):  # 3000 requests, pipelined 50 at a time
                sock.sendall(batch)
                for _ in range(50):
                    assert reader.response().status == 200
                    sent += 1
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
        listener.close()
    assert sent == 3000
    written = [line for line in out.decode().splitlines() if "GET /unread-pipe" in line]
    reports = re.findall(r"access log: (\d+) entries dropped in all", err.decode())
    assert reports, err.decode()
    dropped = int(reports[-1])
    assert dropped > 0 and len(written) + dropped == sent, (len(written), dropped)


def test_an_error_log_nobody_reads_never_blocks_the_server() -> None:
    """stderr is a pipe the test does not read while 1500 requests each log a traceback: the
    pipe fills after a hundred or so, the error log's queue (``logs.ERROR_QUEUE``, 1000) after
    as many more, and the rest are dropped and counted; every request is answered meanwhile.
    Once the pipe is read, the writer catches up and reports the count: the tracebacks written
    plus those dropped are exactly the requests sent."""
    import signal
    import threading
    import time

    from synack.logs import ERROR_QUEUE

    sent = ERROR_QUEUE + 500
    listener = _listener()
    address = listener.getsockname()
    process = subprocess.Popen(
        [sys.executable, "-m", "synack", "--fd", str(listener.fileno()), "--no-access-log", "op_json_logs:app"],
        env=_env(), pass_fds=(listener.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    stderr = process.stderr
    read: list[bytes] = []
    reader = threading.Thread(target=lambda: read.extend(iter(lambda: os.read(stderr.fileno(), 65536), b"")))
    report = re.compile(rb"error log: (\d+) entries dropped in all")
    try:
        statuses = [_exchange(address, b"GET /raise HTTP/1.1\r\nHost: t\r\n\r\n") for _ in range(sent)]
        assert statuses == [b"HTTP/1.1 500 Internal Server Error"] * sent
        reader.start()  # now the pipe is read: the writer catches up, then reports what it dropped
        for _ in range(300):  # (at most 30 s)
            if report.search(b"".join(read)):
                break
            time.sleep(0.1)
    finally:
        if reader.ident is None:  # (a request failed: read the pipe all the same, so the server can stop)
            reader.start()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        reader.join(timeout=60)
        stderr.close()
        listener.close()
    err = b"".join(read).decode()
    written = err.count("RuntimeError: json-logs-boom")
    reports = report.findall(err.encode())
    assert reports, err[-2000:]
    dropped = int(reports[-1])
    assert dropped > 0 and written + dropped == sent, (written, dropped)


def test_a_burst_of_access_lines_is_written_whole_and_in_order(tmp_path: Path) -> None:
    # Default access lines skip logging's records and are written in batches by the writer
    # thread; a rejected request's entry, from the driver's other path, keeps its place.
    from tests.test_operate import ACCESS

    log_file = tmp_path / "access.log"
    count = 300
    requests = [b"GET /r%d HTTP/1.1\r\nHost: t\r\n\r\n" % index for index in range(count)]
    _, out, err = _requests_on_one_connection(["--access-log", str(log_file), "hello:app"], requests)
    bodies, _, _ = _requests_on_one_connection(["--access-log", str(log_file), "hello:app"],
                                               [b"GET /last HTTP/1.1\r\nHost: t\r\n\r\n", b"NOT HTTP\r\n\r\n"])
    lines = log_file.read_text().splitlines()
    assert len(lines) == count + 2, lines[-5:]
    assert [ACCESS.match(line)["path"] for line in lines[:count + 1]] == [  # type: ignore[index]
        f"r{index}" for index in range(count)] + ["last"]
    assert re.fullmatch(r'127\.0\.0\.1 - - \[[^]]+\] "-" 400 - "-" "-" -', lines[-1]), lines[-1]
    assert "GET /r" not in err and out == ""


def test_the_access_fast_lane_is_taken_only_for_synacks_own_handlers(tmp_path: Path) -> None:
    # A default access line goes straight onto the writer thread's queue only while the access
    # logger is exactly what setup_logging made; anything else configured keeps logging's path.
    import logging

    from synack import logs

    saved = {name: (logger.handlers[:], logger.level, logger.propagate, logger.filters[:])
             for name, logger in (("access", logs.access_log), ("error", logs.error_log))}
    saved_globals = (logs._custom_access, logs._error_handler)
    made: list[logs.BackgroundHandler] = []

    def setup(name: str, **kwargs: str) -> logs.BackgroundHandler:
        logs.setup_logging("info", str(tmp_path / name), **kwargs)
        handler = logs.access_log.handlers[0]
        assert isinstance(handler, logs.BackgroundHandler)
        made.append(handler)
        return handler

    try:
        own = setup("a.log")
        assert logs.access_writer() == own.put_line
        logs.access_log.addFilter(lambda record: True)
        assert logs.access_writer() == logs.access_log.info
        logs.access_log.filters.clear()
        own.target.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        assert logs.access_writer() == logs.access_log.info
        json_handler = setup("b.log", log_format="json")
        assert logs.access_writer() == logs.access_log.info  # (the default line is not JSON)
        assert logs.access_lane(json_lines=True) == json_handler.put_line
        json_handler.target.setFormatter(logging.Formatter("%(message)s"))
        assert logs.access_lane(json_lines=True) is None
        setup("c.log")
        logs.access_log.addHandler(logging.NullHandler())
        assert logs.access_writer() == logs.access_log.info
    finally:
        logs.flush_access_log()
        for handler in made:
            handler.target.close()
        for name, logger in (("access", logs.access_log), ("error", logs.error_log)):
            logger.handlers[:], level, logger.propagate, logger.filters[:] = saved[name]
            logger.setLevel(level)
        logs._custom_access, logs._error_handler = saved_globals


def test_the_default_json_fields_are_what_their_getters_read() -> None:
    # The default JSON entry is read by one function (_default_values) instead of a getter
    # per field: it must give exactly what the getters give, in the same order.
    import types

    from synack import logs
    from synack.h1 import Limits
    from synack.h1.reader import parse_head

    fields = logs.AccessFormat(None, json_lines=True).parts
    heads = [b"GET /a%20b?x=1 HTTP/1.1\r\nHost: h\r\nReferer: http://r/\xe9\r\nUser-Agent: u a",
             b"POST /p HTTP/1.0\r\nHost: h", b"GET / HTTP/1.1\r\nHost: h\r\nuser-agent: x\r\nuser-agent: y"]
    for head in heads:
        request = parse_head(head, Limits())
        for entry in (logs.AccessEntry(("192.0.2.1", 5), "t", request, 200, 13, 99,
                                       types.SimpleNamespace(request_id="id-1")),
                      logs.AccessEntry(None, "t", request, 404, 0, None, None),
                      logs.AccessEntry(None, "t", logs._UNPARSED, 400, 0, None, None)):
            expected = {}
            for part in fields:
                assert isinstance(part, tuple)
                value = part[1](entry)
                expected[part[0]] = value.decode("latin-1") if isinstance(value, bytes) else value
            got = logs._default_values(entry)
            assert list(got) == list(expected) and got == expected
