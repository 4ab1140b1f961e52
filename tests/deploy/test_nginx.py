"""synack behind a real nginx (deploy/nginx/synack.conf, TLS terminating in nginx): the app sees
the real client and https; forged headers are not believed; bodies pass intact both ways;
upstream keep-alive is reused, and no request fails when synack closes an idle upstream."""

from __future__ import annotations

import hashlib
import json
import random
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server
from tests.deploy.conftest import Certificates
from tests.deploy.proxies import nginx
from tests.helpers import Reader, get

#: Another loopback address for "the real client", so that it differs from nginx's 127.0.0.1.
CLIENT = "127.0.0.2"


@pytest.fixture
def behind_nginx(server_factory, certs: Certificates, tmp_path: Path) -> Iterator[tuple[Server, int]]:
    server = server_factory(["deploy_app:app", "--log-level", "debug", "--no-access-log"])
    with nginx(tmp_path, server.port, certs.server_cert, certs.server_key) as port:
        yield server, port


def _tls_get(port: int, certs: Certificates, path: bytes = b"/", headers: bytes = b"") -> dict:
    raw = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(CLIENT, 0))
    with certs.client_context().wrap_socket(raw, server_hostname="localhost") as sock:
        sock.sendall(get(path, headers))
        response = Reader(sock).response()
    assert response.status == 200, response
    return json.loads(response.body)


def test_the_app_sees_the_real_client_and_https(behind_nginx, certs: Certificates) -> None:
    server, port = behind_nginx
    seen = _tls_get(port, certs)
    assert seen["client"][0] == CLIENT
    assert seen["scheme"] == "https"
    assert seen["host"] == f"test:{port}"  # the Host the client sent, with the port it reached
    # A client's own X-Forwarded-For is what it claims: nginx appends the real address, and
    # walking from the right stops there.
    assert _tls_get(port, certs, headers=b"X-Forwarded-For: 198.51.100.66\r\n")["client"][0] == CLIENT


def test_a_direct_client_forging_headers_is_not_believed(behind_nginx) -> None:
    server, _ = behind_nginx
    with socket.create_connection((server.host, server.port), timeout=10, source_address=(CLIENT, 0)) as sock:
        sock.sendall(get(b"/", b"X-Forwarded-For: 198.51.100.66\r\nX-Forwarded-Proto: https\r\n"))
        seen = json.loads(Reader(sock).response().body)
    assert seen["client"][0] == CLIENT and seen["scheme"] == "http"


def test_bodies_pass_intact_and_upstream_connections_are_reused(behind_nginx, certs: Certificates) -> None:
    server, port = behind_nginx
    opened_before = server.stderr_text().count("connection open from")
    data = random.Random(13).randbytes(3 * 1024 * 1024 + 5)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(data), 100_000):
            yield data[start:start + 100_000]

    with httpx.Client(verify=certs.client_context(), base_url=f"https://localhost:{port}", timeout=30) as client:
        upload = client.post("/upload", content=chunks())  # chunked: no Content-Length
        assert upload.status_code == 200 and upload.text == hashlib.sha256(data).hexdigest()
        size = 8 * 1024 * 1024 + 3
        download = client.get(f"/download?size={size}")
        assert download.status_code == 200 and len(download.content) == size
        from tests.fixtures.apps.deploy_app import pattern
        assert hashlib.sha256(download.content).digest() == hashlib.sha256(pattern(size)).digest()
        for _ in range(60):
            assert client.get("/").status_code == 200
    opened = server.stderr_text().count("connection open from") - opened_before
    assert 1 <= opened <= 5, f"{opened} upstream connections for 62 requests"


def test_no_request_fails_when_synack_closes_idle_upstream_connections(server_factory, certs: Certificates,
                                                                        tmp_path: Path) -> None:
    # nginx stops reusing an idle upstream connection after 0.5 s, synack closes it after 1 s
    # (at its next once-a-second sweep: between 1 and 2 s idle). The README's rule: the
    # proxy's idle timeout below synack's keep-alive timeout. Idle gaps on both sides of each
    # timeout, then bursts of GETs and POSTs (nginx retries no POST).
    server = server_factory(["deploy_app:app", "--keep-alive-timeout", "1", "--no-access-log"])
    rng = random.Random(7)
    failures = []
    with nginx(tmp_path, server.port, certs.server_cert, certs.server_key,
               {"keepalive_timeout 4s;": "keepalive_timeout 500ms;"}) as port:
        with httpx.Client(verify=certs.client_context(), base_url=f"https://localhost:{port}", timeout=30) as client:
            for gap in (0.5, 0.95, 1.05, 2.0):  # around nginx's 0.5 s and synack's 1 s, and past both
                time.sleep(gap + rng.uniform(-0.025, 0.025))  # the idle gap under test
                for index in range(500):
                    try:
                        response = (client.post("/upload", content=b"x" * 1000) if index % 2
                                    else client.get("/"))
                        if response.status_code != 200:
                            failures.append(response.status_code)
                    except httpx.HTTPError as error:
                        failures.append(repr(error))
    assert failures == []
