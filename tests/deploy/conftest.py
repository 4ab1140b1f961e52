"""Certificates for the deployment tests, made by ``trustme`` (never committed files), and TLS
clients over plain blocking sockets."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest

trustme = pytest.importorskip("trustme")


@dataclass
class Certificates:
    """One CA, a server certificate for localhost/127.0.0.1/::1 it signed, and a client one."""

    directory: Path
    ca: object
    #: The CA certificate (PEM), for clients and for --ssl-ca-certs.
    ca_file: Path
    #: Private key followed by the certificate chain (one file for --ssl-certfile).
    server_pem: Path
    server_cert: Path
    server_key: Path
    #: The server certificate's PEM, as the ASGI tls extension reports it.
    server_cert_text: str
    client_pem: Path

    def client_context(self, client_cert: bool = False) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.set_alpn_protocols(["http/1.1"])
        if client_cert:
            context.load_cert_chain(str(self.client_pem))
        return context


def make_certificates(directory: Path, name: str = "synack") -> Certificates:
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name=f"{name} test CA")
    server = ca.issue_cert("localhost", "127.0.0.1", "::1")
    client = ca.issue_cert("client@example.test", common_name="test client", organization_name="Synack Tests")
    paths = {key: directory / f"{key}.pem" for key in ("ca", "server", "server-cert", "server-key", "client")}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    server.private_key_and_cert_chain_pem.write_to_path(str(paths["server"]))
    server.cert_chain_pems[0].write_to_path(str(paths["server-cert"]))
    server.private_key_pem.write_to_path(str(paths["server-key"]))
    client.private_key_and_cert_chain_pem.write_to_path(str(paths["client"]))
    return Certificates(directory, ca, paths["ca"], paths["server"], paths["server-cert"], paths["server-key"],
                        server.cert_chain_pems[0].bytes().decode("ascii"), paths["client"])


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


def tls_connect(host: str, port: int, context: ssl.SSLContext, timeout: float = 10.0,
                server_hostname: str = "localhost") -> ssl.SSLSocket:
    """A TLS connection whose EOF without close_notify raises (suppress_ragged_eofs off)."""
    raw = socket.create_connection((host, port), timeout=timeout)
    try:
        return context.wrap_socket(raw, server_hostname=server_hostname, suppress_ragged_eofs=False)
    except BaseException:
        raw.close()
        raise
