"""``--metrics``: a real server answers a known mix of requests, then ``GET /metrics`` on the
second listener must show exactly those counts, in a parseable Prometheus text exposition; in
a single process, and summed by the supervisor over two workers, through a worker's SIGKILL
and a reload, while slow scrapers hold connections to the supervisor."""

from __future__ import annotations

import collections
import os
import re
import signal
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from synack.config import Config, ConfigError
from synack.supervisor.metrics import MAX_CLIENTS
from tests.apps.ws_support import RawWebSocket, handshake
from tests.conftest import Server
from tests.helpers import RawClient, Reader, get, post
from tests.supervisor.helpers import wait_for

ServerFactory = Callable[..., Server]

_METRICS_LINE = re.compile(r"metrics on http://(\S+):(\d+)/metrics")
_SAMPLE = re.compile(r'([a-z_]+)(?:\{((?:[a-z_]+="[^"\\\n]*",?)*)\})? (\S+)')
_TYPE = re.compile(r"# TYPE ([a-z_]+) (counter|gauge|histogram)")


def _metrics_address(server: Server) -> tuple[str, int]:
    match = _METRICS_LINE.search(server.stderr_text())
    assert match, server.stderr_text()
    return match[1], int(match[2])


def _scrape(server: Server, target: bytes = b"/metrics") -> tuple[int, bytes]:
    with socket.create_connection(_metrics_address(server), timeout=10) as sock:
        sock.sendall(get(target))
        response = Reader(sock).response()
    return response.status, response.body


def _samples(server: Server) -> dict[str, float]:
    status, body = _scrape(server)
    assert status == 200, body
    return _parse(body.decode())


def _parse(text: str) -> dict[str, float]:
    """Every line a ``# HELP``, a ``# TYPE`` or a sample of a declared family; the samples
    keyed by ``name{labels}`` exactly as written."""
    samples: dict[str, float] = {}
    families: set[str] = set()
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        typed = _TYPE.fullmatch(line)
        if typed:
            families.add(typed[1])
            continue
        sample = _SAMPLE.fullmatch(line)
        assert sample, f"not a sample line: {line!r}"
        name = sample[1]
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in families or family in families, f"{name} has no # TYPE line before it"
        key = f"{name}{{{sample[2]}}}" if sample[2] is not None else name
        assert key not in samples, f"{key} twice"
        samples[key] = float(sample[3])
    return samples


def test_counters_equal_the_requests_sent(server_factory: ServerFactory, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"0123456789")
    server = server_factory([str(tmp_path), "--port", "0", "--no-access-log", "--metrics", "127.0.0.1:0"])
    with RawClient(server) as client:
        for _ in range(5):
            client.get("/a.txt")
            assert client.response().status == 200
        for _ in range(3):
            client.get("/missing")
            assert client.response().status == 404
        client.send(get(b"/a.txt").replace(b"GET", b"HEAD", 1))
        assert client.response(b"HEAD").status == 200
        client.send(post(b"/a.txt", b"x"))
        assert client.response().status == 405
        client.send(get(b"/a.txt").replace(b"GET", b"BREW", 1))
        assert client.response().status == 405
    with RawClient(server) as client:
        client.send(b"GARBAGE\r\n\r\n")
        assert client.response().status == 400
    with RawClient(server) as client:
        client.send(b"GET / HTTP/1.1\r\nHost: test\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
        assert client.response().status == 431
    status, body = _scrape(server)
    assert status == 200
    samples = _parse(body.decode())
    assert samples['synack_requests_total{method="GET",status="2xx"}'] == 5
    assert samples['synack_requests_total{method="GET",status="4xx"}'] == 3
    assert samples['synack_requests_total{method="HEAD",status="2xx"}'] == 1
    assert samples['synack_requests_total{method="POST",status="4xx"}'] == 1
    assert samples['synack_requests_total{method="other",status="4xx"}'] == 1
    assert len([key for key in samples if key.startswith("synack_requests_total")]) == 5
    assert samples["synack_request_duration_seconds_count"] == 11
    assert samples['synack_request_duration_seconds_bucket{le="+Inf"}'] == 11
    buckets = [value for key, value in samples.items() if key.startswith("synack_request_duration_seconds_bucket")]
    assert buckets == sorted(buckets), "histogram buckets are cumulative"
    assert samples["synack_request_duration_seconds_sum"] >= 0
    assert samples['synack_rejected_requests_total{status="400"}'] == 1
    assert samples['synack_rejected_requests_total{status="431"}'] == 1
    assert samples["synack_requests_in_flight"] == 0
    assert samples["synack_response_body_bytes_total"] >= 5 * 10  # the 200s' bodies, plus the error pages'
    assert samples["synack_request_body_bytes_total"] == 0  # (the static files read no body)
    assert "synack_worker_restarts_total" not in body.decode()  # (no supervisor, no restarts)


def test_open_connections_and_other_paths(server_factory: ServerFactory, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"x")
    server = server_factory([str(tmp_path), "--port", "0", "--no-access-log", "--metrics", "127.0.0.1:0"])
    with RawClient(server) as first, RawClient(server) as second:
        for client in (first, second):
            client.get("/a.txt")
            assert client.response().status == 200
        status, body = _scrape(server)
        assert status == 200
        assert _parse(body.decode())["synack_open_connections"] == 2
    assert _scrape(server, b"/")[0] == 404


def test_an_upgrade_counts_as_a_1xx_response(server_factory: ServerFactory) -> None:
    server = server_factory(["ws_apps:echo", "--port", "0", "--no-access-log", "--metrics", "127.0.0.1:0"])
    with RawWebSocket(server, handshake()) as client:
        assert client.opened().status == 101
        assert _samples(server)['synack_requests_total{method="GET",status="1xx"}'] == 1
        assert _samples(server)["synack_open_connections"] == 1


def test_metrics_off_opens_no_second_listener(server_factory: ServerFactory, tmp_path: Path) -> None:
    server = server_factory([str(tmp_path), "--port", "0", "--no-access-log"])
    log = server.stderr_text()
    assert "metrics on" not in log
    assert log.count("listening on") == 1
    listening = _listening_ports(server.process.pid)
    assert listening == {server.port}, listening


def _listening_ports(pid: int) -> set[int]:
    """The TCP ports the process ``pid`` listens on (from /proc: its sockets' inodes)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = str(fd.readlink()) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.mark.parametrize("settings, message", [
    ({"metrics": "unix:/tmp/m.sock"}, "HOST:PORT"),
    ({"metrics": "nothing"}, "HOST:PORT"),
    ({"metrics": "127.0.0.1:99999"}, "0-65535"),
])
def test_bad_metrics_settings_are_config_errors(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config(**settings)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- under the supervisor

_WORKER_LISTENING = re.compile(r"\[(\d+)\] INFO: listening on")


class _Sent:
    """What the test sent to ``metrics_app:app`` (one request per connection; the body of
    each answer is the pid of the worker that served it), to compare with the scrape."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.requests: collections.Counter[tuple[str, int]] = collections.Counter()  # (method, status class)
        self.received = 0  # request body bytes
        self.body_bytes = 0  # response body bytes
        self.pids: collections.Counter[int] = collections.Counter()

    def one(self, method: bytes = b"GET", body: bytes = b"", status: int = 200) -> int:
        target = b"/?status=%d" % status
        request = (post(target, body) if body else get(target)).replace(b"POST", method, 1).replace(b"GET", method, 1)
        with self.server.connect() as sock:
            sock.sendall(request)
            response = Reader(sock).response(method)
        assert response.status == status, response
        self.requests[method.decode(), status // 100] += 1
        self.received += len(body)
        pid = int(response.body) if method != b"HEAD" else 0
        # (As in the access log, a HEAD response counts the body a GET would have had.)
        self.body_bytes += int(response.header(b"content-length") or b"0") if method == b"HEAD" else len(response.body)
        self.pids[pid] += 1
        return pid

    def counted(self) -> dict[str, float]:
        """The first scrape that counts everything sent (each worker publishes its counters
        once a second), checked: one that counts more fails."""
        samples: dict[str, float] = {}

        def up_to_date() -> bool:
            nonlocal samples
            samples = _samples(self.server)
            try:
                self.check(samples)
            except AssertionError:
                return False
            return True

        wait_for(up_to_date)
        self.check(samples)
        return samples

    def check(self, samples: dict[str, float]) -> None:
        """The scrape counts exactly what was sent."""
        requests = {key: value for key, value in samples.items() if key.startswith("synack_requests_total")}
        assert requests == {f'synack_requests_total{{method="{method}",status="{status_class}xx"}}': count
                            for (method, status_class), count in self.requests.items()}, requests
        total = sum(self.requests.values())
        assert samples["synack_request_duration_seconds_count"] == total
        assert samples['synack_request_duration_seconds_bucket{le="+Inf"}'] == total
        assert samples["synack_response_body_bytes_total"] == self.body_bytes
        assert samples["synack_request_body_bytes_total"] == self.received


def _supervised(server_factory: ServerFactory, *args: str) -> Server:
    server = server_factory(["metrics_app:app", "--workers", "2", "--port", "0", "--no-access-log",
                             "--metrics", "127.0.0.1:0", *args])
    assert wait_for(lambda: len(_listening_workers(server)) == 2), server.stderr_text()
    return server


def _listening_workers(server: Server) -> set[int]:
    return {int(pid) for pid in _WORKER_LISTENING.findall(server.stderr_text())}


def test_a_slow_response_lands_in_its_duration_bucket(server_factory: ServerFactory) -> None:
    server = server_factory(["metrics_app:app", "--no-access-log", "--metrics", "127.0.0.1:0"])
    with RawClient(server) as client:
        client.get("/?sleep=0.3")
        assert client.response().status == 200
    with RawClient(server) as client:
        client.get("/")
        assert client.response().status == 200
    samples = _samples(server)
    bucket = 'synack_request_duration_seconds_bucket{{le="{}"}}'.format
    # The slow one took at least 0.3 s: above the 0.25 s bound, counted only from the next.
    assert samples[bucket("0.25")] <= 1 and samples[bucket("+Inf")] == 2, samples
    assert samples["synack_request_duration_seconds_sum"] >= 0.3


def test_counters_equal_the_requests_sent_across_two_workers(server_factory: ServerFactory) -> None:
    server = _supervised(server_factory)
    sent = _Sent(server)
    # Until both workers have served some (each request on a new connection, which either
    # worker may accept), at most 400 requests: a mix of methods, bodies and statuses.
    for round_ in range(100):
        sent.one()
        sent.one(b"POST", b"x" * (round_ % 7 + 1))
        sent.one(b"GET", status=404 if round_ % 2 else 503)
        sent.one(b"HEAD")
        if round_ == 0:
            sent.one(b"GET", status=799)  # (a class of its own: h1 allows any three digits)
        if len(sent.pids.keys() - {0}) == 2 and round_ >= 25:
            break
    assert len(sent.pids.keys() - {0}) == 2, sent.pids
    before_kill = sent.counted()
    assert before_kill['synack_worker_restarts_total{cause="crash"}'] == 0

    # SIGKILL one worker (its counts are published: nothing was sent since): its counts stay
    # counted, and the restart shows with its cause.
    victim = sorted(sent.pids.keys() - {0})[0]
    os.kill(victim, signal.SIGKILL)
    assert wait_for(lambda: len(_listening_workers(server) - sent.pids.keys()) == 1), server.stderr_text()
    after_kill = _samples(server)
    sent.check(after_kill)
    assert after_kill['synack_worker_restarts_total{cause="crash"}'] == 1
    _never_less(before_kill, after_kill)
    before_reload = sent.counted()

    # A reload replaces both workers, which publish their last counts as they exit: the
    # requests just before it are counted too, and the two workers show as reloads.
    for _ in range(20):
        sent.one()
    old_workers = _listening_workers(server) - {victim}
    server.signal(signal.SIGHUP)
    assert wait_for(lambda: "reload: 2 new worker(s) serving" in server.stderr_text()), server.stderr_text()
    assert wait_for(lambda: all(f"[{pid}] INFO: drained in" in server.stderr_text() for pid in old_workers))
    after_reload = sent.counted()
    assert after_reload['synack_worker_restarts_total{cause="reload"}'] == 2
    _never_less(before_reload, after_reload)
    for _ in range(10):
        sent.one(b"PUT", b"y")
    sent.counted()


def _never_less(before: dict[str, float], after: dict[str, float]) -> None:
    for key, value in before.items():
        if not key.startswith(("synack_requests_in_flight", "synack_open_connections")):
            assert after[key] >= value, key


def test_gauges_sum_the_live_workers(server_factory: ServerFactory) -> None:
    server = _supervised(server_factory)
    held = [server.connect() for _ in range(6)]
    try:
        # (Each worker samples its gauges once a second.)
        assert wait_for(lambda: _samples(server)["synack_open_connections"] == 6), _samples(server)
    finally:
        for sock in held:
            sock.close()
    assert wait_for(lambda: _samples(server)["synack_open_connections"] == 0), _samples(server)
    assert _samples(server)["synack_requests_in_flight"] == 0


def test_slow_scrapers_do_not_block_the_supervisor(server_factory: ServerFactory) -> None:
    server = _supervised(server_factory)
    address = _metrics_address(server)
    # As many silent connections as the supervisor serves at once, and one with half a head.
    silent = [socket.create_connection(address, timeout=10) for _ in range(MAX_CLIENTS)]
    partial = socket.create_connection(address, timeout=10)
    partial.sendall(b"GET /metrics HTTP/1.1\r\nHo")
    try:
        sent = _Sent(server)
        for _ in range(10):
            sent.one()
        sent.counted()  # answered, while all of them wait
        # The oldest silent ones made room for the newer: closed by the supervisor.
        assert Reader(silent[0]).read_until_closed()[0] == b""
        # The partial head, completed, is answered.
        partial.sendall(b"st: test\r\n\r\n")
        response = Reader(partial).response()
        assert response.status == 200
        sent.check(_parse(response.body.decode()))
    finally:
        for sock in (*silent, partial):
            sock.close()


def test_supervisor_answers_only_get_metrics(server_factory: ServerFactory) -> None:
    server = _supervised(server_factory)
    assert _scrape(server, b"/")[0] == 404
    address = _metrics_address(server)
    for request, status in ((b"POST /metrics HTTP/1.1\r\nHost: test\r\n\r\n", 405),
                            (b"nonsense\r\n\r\n", 400),
                            (b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 431)):
        with socket.create_connection(address, timeout=10) as sock:
            sock.sendall(request)
            assert Reader(sock).response().status == status
    # The supervisor's listener is its own: the workers do not hold it.
    assert _listening_ports(server.process.pid) >= {address[1], server.port}
    for worker in _listening_workers(server):
        assert address[1] not in _listening_ports(worker)
