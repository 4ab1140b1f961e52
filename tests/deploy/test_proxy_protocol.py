"""The PROXY protocol (--proxy-protocol v1|v2|auto): the real client from a trusted peer's
header, before TLS and over UNIX sockets; missing, malformed or stalled headers close the
connection; an untrusted peer's header is not believed."""

from __future__ import annotations

import json
import socket
import struct
from pathlib import Path

import pytest

from tests.conftest import Server
from tests.deploy.conftest import Certificates
from tests.helpers import Reader, get
from tests.supervisor.helpers import wait_for

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1 = b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\n"


def v2(command: int = 0x21, family: int = 0x11, addresses: bytes | None = None, tlv: bytes = b"") -> bytes:
    if addresses is None:
        addresses = socket.inet_aton("203.0.113.7") + socket.inet_aton("192.0.2.1") + struct.pack("!HH", 56324, 443)
    body = addresses + tlv
    return V2_SIGNATURE + bytes([command, family]) + struct.pack("!H", len(body)) + body


def _seen(server: Server, preface: bytes, request: bytes = b"") -> dict:
    with server.connect() as sock:
        sock.sendall(preface + (request or get(b"/")))
        response = Reader(sock).response()
    assert response.status == 200, response
    return json.loads(response.body)


def _closed_without_answer(server: Server, data: bytes) -> None:
    with server.connect(timeout=15) as sock:
        sock.sendall(data)
        received, _ = Reader(sock, timeout=15).read_until_closed()
    assert received == b""


def test_v1_gives_the_real_client(server_factory) -> None:
    server = server_factory(["deploy_app:app", "--proxy-protocol", "v1"])
    seen = _seen(server, V1)
    assert seen["client"] == ["203.0.113.7", 56324]
    assert seen["server"] == ["192.0.2.1", 443]
    # (The access line is written just after the response: wait for it.)
    assert wait_for(lambda: "203.0.113.7 - - [" in server.stderr_text())
    # Several requests on the connection: the header is read once.
    with server.connect() as sock:
        sock.sendall(V1 + get(b"/") + get(b"/"))
        reader = Reader(sock)
        assert [json.loads(reader.response().body)["client"][0] for _ in range(2)] == ["203.0.113.7"] * 2


def test_v2_ipv4_ipv6_local_and_tlvs(server_factory) -> None:
    server = server_factory(["deploy_app:app", "--proxy-protocol", "v2"])
    assert _seen(server, v2(tlv=b"\x04\x00\x03abc"))["client"] == ["203.0.113.7", 56324]
    six = socket.inet_pton(socket.AF_INET6, "2001:db8::7") + socket.inet_pton(socket.AF_INET6, "2001:db8::1")
    assert _seen(server, v2(family=0x21, addresses=six + struct.pack("!HH", 4000, 443)))["client"] == ["2001:db8::7", 4000]
    # LOCAL (a health check from the balancer itself): the socket's own addresses.
    assert _seen(server, v2(command=0x20, family=0x00, addresses=b""))["client"][0] == "127.0.0.1"


def test_auto_takes_either_and_the_header_may_arrive_in_pieces(server_factory) -> None:
    server = server_factory(["deploy_app:app", "--proxy-protocol", "auto"])
    assert _seen(server, V1)["client"][0] == "203.0.113.7"
    assert _seen(server, v2())["client"][0] == "203.0.113.7"
    for header in (V1, v2()):
        with server.connect() as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for piece in (header[:3], header[3:14], header[14:], get(b"/")):
                sock.sendall(piece)
            assert json.loads(Reader(sock).response().body)["client"][0] == "203.0.113.7"


@pytest.mark.parametrize("data", [
    get(b"/"),  # no header at all
    b"PROXY TCP4 203.0.113.7 192.0.2.1 56324\r\n" + get(b"/"),
    b"PROXY TCP4 ::1 192.0.2.1 56324 443\r\n" + get(b"/"),
    b"PROXY TCP4 203.0.113.7 192.0.2.1 056324 443\r\n" + get(b"/"),
    b"PROXY " + b"x" * 120 + b"\r\n",
    V2_SIGNATURE + b"\x22\x11\x00\x0c" + b"\x00" * 12 + get(b"/"),
], ids=["missing", "short", "family", "leading-zero", "too-long", "v2-bad-command"])
def test_missing_or_malformed_headers_close_the_connection(server_factory, data: bytes) -> None:
    server = server_factory(["deploy_app:app", "--proxy-protocol", "auto"])
    _closed_without_answer(server, data)
    assert _seen(server, V1)["client"][0] == "203.0.113.7"  # and the server goes on


def test_a_stalled_header_is_closed_after_the_head_timeout(server_factory) -> None:
    server = server_factory(["deploy_app:app", "--proxy-protocol", "v1", "--head-timeout", "1"])
    _closed_without_answer(server, b"PROXY TCP4 203.")


def test_an_untrusted_peers_header_is_not_believed(server_factory) -> None:
    server = server_factory(["deploy_app:app", "--proxy-protocol", "v1", "--forwarded-allow-ips", "10.0.0.1"])
    with server.connect() as sock:
        sock.sendall(V1 + get(b"/"))
        response = Reader(sock).response()
    assert response.status == 400  # the header is just bytes that are not HTTP
    # Without it the peer is served as itself.
    assert _seen(server, b"")["client"][0] == "127.0.0.1"


def test_the_proxied_client_is_not_trusted_with_proxy_headers(server_factory) -> None:
    server = server_factory(["deploy_app:app", "--proxy-protocol", "v1"])
    seen = _seen(server, V1, get(b"/", b"X-Forwarded-For: 198.51.100.66\r\nX-Forwarded-Proto: https\r\n"))
    assert seen["client"][0] == "203.0.113.7" and seen["scheme"] == "http"


def test_proxy_protocol_before_tls(server_factory, certs: Certificates) -> None:
    server = server_factory(["deploy_app:app", "--proxy-protocol", "v2", "--ssl-certfile", str(certs.server_pem)])
    raw = socket.create_connection((server.host, server.port), timeout=10)
    raw.sendall(v2())
    with certs.client_context().wrap_socket(raw, server_hostname="localhost") as sock:
        sock.sendall(get(b"/"))
        seen = json.loads(Reader(sock).response().body)
    assert seen["client"][0] == "203.0.113.7" and seen["scheme"] == "https"


def test_proxy_protocol_on_a_unix_socket(server_factory, tmp_path: Path) -> None:
    path = str(tmp_path / "synack.sock")
    server = server_factory(["deploy_app:app", "--uds", path, "--proxy-protocol", "v1"])
    assert _seen(server, V1)["client"] == ["203.0.113.7", 56324]
