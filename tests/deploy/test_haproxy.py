"""synack behind a real HAProxy (deploy/haproxy/haproxy.cfg): HTTP mode with X-Forwarded-For,
TCP mode with PROXY protocol v2 (and v1); forged headers are not believed; bodies pass intact;
server-side keep-alive is reused."""

from __future__ import annotations

import hashlib
import json
import random
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server
from tests.deploy.proxies import haproxy
from tests.helpers import Reader, get

CLIENT = "127.0.0.2"


@pytest.fixture(params=["v2", "v1"])
def behind_haproxy(request, server_factory, tmp_path: Path) -> Iterator[tuple[Server, Server, int, int]]:
    version = request.param
    plain = server_factory(["deploy_app:app", "--log-level", "debug", "--no-access-log"])
    proxied = server_factory(["deploy_app:app", "--proxy-protocol", version, "--no-access-log"])
    extra = {} if version == "v2" else {"send-proxy-v2": "send-proxy"}
    with haproxy(tmp_path, plain.port, proxied.port, extra) as (web, tcp):
        yield plain, proxied, web, tcp


def _seen(port: int, headers: bytes = b"", preface: bytes = b"") -> tuple[int, dict]:
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(CLIENT, 0)) as sock:
        sock.sendall(preface + get(b"/", headers))
        response = Reader(sock).response()
    return response.status, json.loads(response.body) if response.status == 200 else {}


def test_the_app_sees_the_real_client(behind_haproxy) -> None:
    _, _, web, tcp = behind_haproxy
    for port in (web, tcp):
        status, seen = _seen(port)
        assert status == 200 and seen["client"][0] == CLIENT and seen["scheme"] == "http", (port, seen)


def test_forged_headers_are_not_believed(behind_haproxy) -> None:
    _, proxied, web, tcp = behind_haproxy
    # HTTP mode: HAProxy appends the real address to the client's X-Forwarded-For.
    assert _seen(web, b"X-Forwarded-For: 198.51.100.66\r\n")[1]["client"][0] == CLIENT
    # TCP mode: the client's own X-Forwarded-For is not believed (it is not a trusted peer)...
    assert _seen(tcp, b"X-Forwarded-For: 198.51.100.66\r\n")[1]["client"][0] == CLIENT
    # ...and a PROXY header it sends after HAProxy's is just bytes that are not HTTP.
    status, _ = _seen(tcp, preface=b"PROXY TCP4 198.51.100.66 192.0.2.1 1234 80\r\n")
    assert status == 400
    # Directly to synack, from an untrusted address, a forged PROXY header is not believed.
    with socket.create_connection((proxied.host, proxied.port), timeout=10, source_address=(CLIENT, 0)) as sock:
        sock.sendall(b"PROXY TCP4 198.51.100.66 192.0.2.1 1234 80\r\n" + get(b"/"))
        assert Reader(sock).response().status == 400


def test_bodies_pass_intact_and_server_connections_are_reused(behind_haproxy) -> None:
    plain, _, web, tcp = behind_haproxy
    data = random.Random(5).randbytes(2 * 1024 * 1024 + 9)
    size = 4 * 1024 * 1024 + 1
    from tests.fixtures.apps.deploy_app import pattern
    expected = hashlib.sha256(pattern(size)).hexdigest()
    opened_before = plain.stderr_text().count("connection open from")
    for port in (web, tcp):
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            chunks = (data[start:start + 65536] for start in range(0, len(data), 65536))
            upload = client.post("/upload", content=chunks)
            assert upload.text == hashlib.sha256(data).hexdigest()
            assert hashlib.sha256(client.get(f"/download?size={size}").content).hexdigest() == expected
    # HTTP mode: the server connection is kept alive between requests (with "http-reuse safe"
    # a client connection's first request gets a server connection of its own).
    with httpx.Client(base_url=f"http://127.0.0.1:{web}") as client:
        for _ in range(40):
            assert client.get("/").status_code == 200
    opened = plain.stderr_text().count("connection open from") - opened_before
    assert 1 <= opened <= 4, f"{opened} server connections for 42 requests on 2 client connections"
