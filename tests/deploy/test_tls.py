"""HTTPS: the --ssl-* settings, the ASGI tls extension, mutual TLS, what a TLS port does with
plain HTTP and stalled handshakes, close_notify, static files over TLS, and one-line errors."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, SYNACK_PATH, Server
from tests.deploy.conftest import Certificates, make_certificates, tls_connect
from tests.helpers import Reader, get
from tests.supervisor.helpers import wait_for


def _https(server: Server, certs: Certificates, path: str = "/", **kwargs: object) -> httpx.Response:
    with httpx.Client(verify=certs.client_context(**kwargs)) as client:  # type: ignore[arg-type]
        return client.get(f"https://localhost:{server.port}{path}")


def test_https_scope_and_tls_extension(server_factory, certs: Certificates) -> None:
    server = server_factory(["deploy_app:app", "--ssl-certfile", str(certs.server_pem)])
    response = _https(server, certs)
    assert response.status_code == 200
    seen = response.json()
    assert seen["scheme"] == "https"
    tls = seen["tls"]
    assert tls["server_cert"] == certs.server_cert_text
    assert tls["client_cert_chain"] == [] and tls["client_cert_name"] is None
    assert tls["client_cert_error"] is None
    assert tls["tls_version"] in (0x0303, 0x0304)
    assert isinstance(tls["cipher_suite"], int) and 0 < tls["cipher_suite"] <= 0xFFFF
    assert "listening on https://" in server.stderr_text()


def test_alpn_http11_and_tls12_minimum(server_factory, certs: Certificates) -> None:
    server = server_factory(["deploy_app:app", "--ssl-certfile", str(certs.server_cert),
                             "--ssl-keyfile", str(certs.server_key)])
    context = certs.client_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with tls_connect(server.host, server.port, context) as sock:
        assert sock.selected_alpn_protocol() == "http/1.1"
        assert sock.version() == "TLSv1.2"
        sock.sendall(get(b"/"))
        response = Reader(sock).response()
        assert response.status == 200
        assert json.loads(response.body)["tls"]["tls_version"] == 0x0303


def test_curl_and_wsgi_url_scheme(server_factory, certs: Certificates) -> None:
    server = server_factory(["deploy_app:wsgi", "--ssl-certfile", str(certs.server_pem)])
    result = subprocess.run(
        ["curl", "-sS", "--http1.1", "--cacert", str(certs.ca_file), f"https://localhost:{server.port}/"],
        capture_output=True, timeout=30, check=True,
    )
    assert json.loads(result.stdout)["wsgi.url_scheme"] == "https"


def test_plain_http_on_the_tls_port_gets_400_and_a_clean_close(server_factory, certs: Certificates) -> None:
    server = server_factory(["deploy_app:app", "--ssl-certfile", str(certs.server_pem)])
    with server.connect() as sock:
        sock.sendall(get(b"/"))
        reader = Reader(sock)
        response = reader.response()
        assert response.status == 400
        assert b"https" in response.body
        reader.expect_eof()  # a FIN, not a reset and not a hang


@pytest.mark.parametrize("log_format", [["--log-format", "json"], ["--access-log-format", "{status}|{client}|{method}"]],
                         ids=["json", "custom"])
def test_plain_http_on_the_tls_port_is_logged_as_a_rejected_request(server_factory, certs: Certificates,
                                                                     tmp_path, log_format: list[str]) -> None:
    # The same entry as for a head the parser rejects: fields to query, not a text message.
    log = tmp_path / "access.log"
    server = server_factory(["deploy_app:app", "--ssl-certfile", str(certs.server_pem), "--access-log", str(log),
                             *log_format])
    with server.connect() as sock:
        sock.sendall(get(b"/"))
        assert Reader(sock).response().status == 400
    assert server.stop() == 0
    lines = log.read_text().splitlines()
    assert len(lines) == 1, lines
    if log_format[0] == "--log-format":
        entry = json.loads(lines[0])
        assert (entry["status"], entry["client"], entry["method"]) == (400, "127.0.0.1", None), entry
        assert "message" not in entry, entry
    else:
        assert lines == ["400|127.0.0.1|-"]


def test_neither_tls_nor_http_is_closed_cleanly(server_factory, certs: Certificates) -> None:
    server = server_factory(["deploy_app:app", "--ssl-certfile", str(certs.server_pem)])
    with server.connect() as sock:
        sock.sendall(b"\x00\x01garbage\r\n")
        Reader(sock).expect_eof()


@pytest.mark.parametrize("sent", [b"", b"\x16\x03\x01\x00"], ids=["nothing", "half-a-client-hello"])
def test_a_stalled_handshake_is_closed_after_the_head_timeout(server_factory, certs: Certificates,
                                                               sent: bytes) -> None:
    server = server_factory(["deploy_app:app", "--ssl-certfile", str(certs.server_pem), "--head-timeout", "1"])
    with server.connect(timeout=15) as sock:
        sock.sendall(sent)
        data, how = Reader(sock, timeout=15).read_until_closed()
        assert data == b""
    # The server still serves.
    assert _https(server, certs).status_code == 200


def test_close_notify_on_graceful_close(server_factory, certs: Certificates) -> None:
    server = server_factory(["deploy_app:app", "--ssl-certfile", str(certs.server_pem)])
    with tls_connect(server.host, server.port, certs.client_context()) as sock:
        sock.sendall(get(b"/download?size=100000", b"Connection: close\r\n"))
        reader = Reader(sock)
        response = reader.response()
        assert response.status == 200 and len(response.body) == 100000
        # suppress_ragged_eofs is off: a FIN without close_notify raises SSLEOFError here.
        assert reader.until_eof() == b""


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_static_file_over_tls(server_factory, certs: Certificates, tmp_path: Path, loop: str) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "big.bin").write_bytes(data)
    server = server_factory([str(tmp_path), "--ssl-certfile", str(certs.server_pem), "--loop", loop])
    response = _https(server, certs, "/big.bin")
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == hashlib.sha256(data).hexdigest()
    with tls_connect(server.host, server.port, certs.client_context()) as sock:
        sock.sendall(get(b"/big.bin", b"Range: bytes=1000-1999\r\n"))
        assert Reader(sock).response().body == data[1000:2000]


def test_mtls_required(server_factory, certs: Certificates) -> None:
    server = server_factory(["deploy_app:app", "--ssl-certfile", str(certs.server_pem),
                             "--ssl-ca-certs", str(certs.ca_file), "--ssl-cert-reqs", "required"])
    with pytest.raises((ssl.SSLError, ConnectionError, httpx.HTTPError)):
        # TLS 1.3 reports the refusal on the first read, TLS 1.2 in the handshake.
        _https(server, certs)
    tls = _https(server, certs, client_cert=True).json()["tls"]
    # RFC 4514: the last RDN first (trustme writes O, OU, CN).
    name = tls["client_cert_name"]
    assert name.startswith("CN=test client,OU=Testing cert ") and name.endswith(",O=Synack Tests"), name
    assert len(tls["client_cert_chain"]) >= 1
    assert tls["client_cert_chain"][0].startswith("-----BEGIN CERTIFICATE-----")
    assert tls["client_cert_error"] is None


def test_mtls_optional(server_factory, certs: Certificates) -> None:
    server = server_factory(["deploy_app:app", "--ssl-certfile", str(certs.server_pem),
                             "--ssl-ca-certs", str(certs.ca_file), "--ssl-cert-reqs", "optional"])
    assert _https(server, certs).json()["tls"]["client_cert_chain"] == []
    assert _https(server, certs, client_cert=True).json()["tls"]["client_cert_name"].startswith("CN=test client,")


def _encrypted_key(certs: Certificates, password: bytes) -> Path:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(certs.server_key.read_bytes(), password=None)
    path = certs.directory / "encrypted-key.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.BestAvailableEncryption(password)))
    return path


def _start_fails(args: list[str]) -> str:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([SYNACK_PATH, str(ROOT)]))
    result = subprocess.run([sys.executable, "-m", "synack", "--port", "0", *args], capture_output=True,
                            text=True, timeout=30, env=env, stdin=subprocess.DEVNULL)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_encrypted_key_with_its_password_serves(server_factory, certs: Certificates) -> None:
    key = _encrypted_key(certs, b"s3cret")
    server = server_factory(["deploy_app:app", "--ssl-certfile", str(certs.server_cert),
                             "--ssl-keyfile", str(key), "--ssl-keyfile-password", "s3cret"])
    assert _https(server, certs).status_code == 200


def test_tls_file_errors_are_one_line(certs: Certificates, tmp_path: Path) -> None:
    other = make_certificates(tmp_path / "other", "other")
    key = _encrypted_key(certs, b"s3cret")
    missing = str(tmp_path / "missing.pem")
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    cert, server_key = str(certs.server_cert), str(certs.server_key)
    cases = {
        "cannot read --ssl-certfile": ["--ssl-certfile", missing],
        "cannot read --ssl-keyfile": ["--ssl-certfile", cert, "--ssl-keyfile", missing],
        "does not match the certificate": ["--ssl-certfile", cert, "--ssl-keyfile", str(other.server_key)],
        "wrong --ssl-keyfile-password": ["--ssl-certfile", cert, "--ssl-keyfile", str(key),
                                         "--ssl-keyfile-password", "wrong"],
        "is encrypted: give --ssl-keyfile-password": ["--ssl-certfile", cert, "--ssl-keyfile", str(key)],
        "holds no certificate": ["--ssl-certfile", str(not_pem)],
        "cannot read --ssl-ca-certs": ["--ssl-certfile", cert, "--ssl-keyfile", server_key,
                                       "--ssl-ca-certs", missing, "--ssl-cert-reqs", "required"],
        "selects no cipher": ["--ssl-certfile", str(certs.server_pem), "--ssl-ciphers", "NO-SUCH-CIPHER"],
    }
    for expected, args in cases.items():
        line = _start_fails(args)
        assert expected in line, (expected, line)
        assert line.startswith("synack: error: ")


def test_tls_setting_combinations_are_usage_errors(certs: Certificates) -> None:
    from synack.config import Config, ConfigError

    with pytest.raises(ConfigError, match="--ssl-keyfile needs --ssl-certfile"):
        Config(ssl_keyfile="key.pem")
    with pytest.raises(ConfigError, match="--ssl-cert-reqs required needs --ssl-ca-certs"):
        Config(ssl_certfile="cert.pem", ssl_cert_reqs="required")
    with pytest.raises(ConfigError, match="must be one of none, optional, required"):
        Config(ssl_certfile="cert.pem", ssl_cert_reqs="sometimes")


def _presented_by(server: Server, certs: Certificates) -> bool:
    """Whether a new connection's handshake shows a certificate ``certs``' CA signed."""
    try:
        with tls_connect(server.host, server.port, certs.client_context(), timeout=5):
            return True
    except (ssl.SSLError, OSError):
        return False


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sighup_swaps_the_certificate_without_dropping_a_connection(server_factory, certs: Certificates,
                                                                     tmp_path: Path, workers: str) -> None:
    renewed = make_certificates(tmp_path / "renewed", "renewed")
    live = tmp_path / "live.pem"
    shutil.copy(certs.server_pem, live)
    server = server_factory(["deploy_app:app", "--ssl-certfile", str(live), "--workers", workers])
    with tls_connect(server.host, server.port, certs.client_context()) as sock:
        reader = Reader(sock, timeout=30)
        sock.sendall(get(b"/"))
        assert reader.response().status == 200
        # A request in flight on the kept-alive connection while the certificate changes.
        sock.sendall(get(b"/slow?seconds=1.5"))
        shutil.copy(renewed.server_pem, live)
        server.signal(signal.SIGHUP)
        response = reader.response()
        assert response.status == 200 and response.body == b"slow done"
    # (Closed once answered, as clients do: the old process need not linger for it.)
    assert wait_for(lambda: _presented_by(server, renewed), timeout=30), server.stderr_text()
    assert not _presented_by(server, certs)


def test_a_supervised_reload_leaves_an_idle_tls_connection_its_certificate(server_factory, certs: Certificates,
                                                                           tmp_path: Path) -> None:
    # The retiring worker keeps its idle keep-alive connections until their next request
    # (answered, with Connection: close) instead of closing them under a client that may be
    # sending: the connection opened before the SIGHUP still works, on the old certificate.
    renewed = make_certificates(tmp_path / "renewed", "renewed")
    live = tmp_path / "live.pem"
    shutil.copy(certs.server_pem, live)
    server = server_factory(["deploy_app:app", "--ssl-certfile", str(live), "--workers", "2",
                             "--keep-alive-timeout", "120"])
    with tls_connect(server.host, server.port, certs.client_context()) as sock:
        reader = Reader(sock, timeout=30)
        sock.sendall(get(b"/"))
        assert reader.response().status == 200
        before = sock.getpeercert(binary_form=True)
        shutil.copy(renewed.server_pem, live)
        server.signal(signal.SIGHUP)
        assert wait_for(lambda: "retiring the old ones" in server.stderr_text(), timeout=30), server.stderr_text()
        assert wait_for(lambda: _presented_by(server, renewed), timeout=30)
        sock.sendall(get(b"/"))
        response = reader.response()
        assert response.status == 200 and response.header(b"connection") == b"close"
        assert sock.getpeercert(binary_form=True) == before
        reader.expect_eof()
    assert before != ssl.PEM_cert_to_DER_cert(renewed.server_cert.read_text())


def test_sighup_with_a_broken_certificate_keeps_the_old_one(server_factory, certs: Certificates,
                                                            tmp_path: Path) -> None:
    other = make_certificates(tmp_path / "other", "other")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    shutil.copy(certs.server_cert, cert)
    shutil.copy(certs.server_key, key)
    server = server_factory(["deploy_app:app", "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)])
    shutil.copy(other.server_key, key)  # a key that does not match the certificate
    server.signal(signal.SIGHUP)
    assert wait_for(lambda: "not reloading" in server.stderr_text(), timeout=30)
    assert "does not match the certificate" in server.stderr_text()
    assert _https(server, certs).status_code == 200
