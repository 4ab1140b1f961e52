"""Precompressed siblings are found through a per-directory cache; it must never go stale:
a sibling added, removed or renamed between two requests is seen by the second."""

from __future__ import annotations

import gzip
import os

from tests.helpers import Reader


def _get(server, path: str, accept: bytes = b"gzip") -> tuple[int, dict[bytes, bytes], bytes]:
    with server.connect() as sock:
        sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nAccept-Encoding: " + accept
                     + b"\r\nConnection: close\r\n\r\n")
        response = Reader(sock).response()
    return response.status, dict(response.headers), response.body


def test_added_and_removed_siblings_are_seen_at_once(server_factory, tmp_path) -> None:
    (tmp_path / "app.js").write_bytes(b"console.log('plain');\n" * 20)
    server = server_factory([str(tmp_path), "--no-access-log"])
    status, headers, body = _get(server, "/app.js")
    assert status == 200 and b"content-encoding" not in headers and b"vary" not in headers

    compressed = gzip.compress(b"console.log('gz');\n", mtime=0)
    (tmp_path / "app.js.gz").write_bytes(compressed)
    status, headers, body = _get(server, "/app.js")
    assert headers.get(b"content-encoding") == b"gzip"
    assert headers.get(b"vary") == b"accept-encoding"
    assert body == compressed

    os.rename(tmp_path / "app.js.gz", tmp_path / "other.gz")
    status, headers, body = _get(server, "/app.js")
    assert b"content-encoding" not in headers
    assert body == b"console.log('plain');\n" * 20
