"""``--metrics``: a real server answers a known mix of requests, then ``GET /metrics`` on the
second listener must show exactly those counts, in a parseable Prometheus text exposition."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from synack.config import Config, ConfigError
from tests.conftest import ROOT, Server
from tests.helpers import RawClient, Reader, get, post

ServerFactory = Callable[..., Server]

_METRICS_LINE = re.compile(r"metrics on http://(\S+):(\d+)/metrics")
_SAMPLE = re.compile(r'([a-z_]+)(?:\{((?:[a-z_]+="[^"\\\n]*",?)*)\})? (\S+)')
_TYPE = re.compile(r"# TYPE ([a-z_]+) (counter|gauge|histogram)")


def _scrape(server: Server, target: bytes = b"/metrics") -> tuple[int, bytes]:
    match = _METRICS_LINE.search(server.stderr_text())
    assert match, server.stderr_text()
    with socket.create_connection((match[1], int(match[2])), timeout=10) as sock:
        sock.sendall(get(target))
        response = Reader(sock).response()
    return response.status, response.body


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
    ({"metrics": "127.0.0.1:9100", "workers": 2}, "single process"),
    ({"metrics": "127.0.0.1:9100", "max_requests": 10}, "single process"),
    ({"metrics": "unix:/tmp/m.sock"}, "HOST:PORT"),
    ({"metrics": "nothing"}, "HOST:PORT"),
    ({"metrics": "127.0.0.1:99999"}, "0-65535"),
])
def test_bad_metrics_settings_are_config_errors(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config(**settings)  # type: ignore[arg-type]


def test_metrics_with_workers_is_a_one_line_cli_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "synack", "--metrics", "127.0.0.1:0", "-w", "2", "hello:app"],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode != 0
    assert "--metrics works with a single process only" in result.stderr
    assert "Traceback" not in result.stderr
