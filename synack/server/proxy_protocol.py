"""The HAProxy PROXY protocol (versions 1 and 2): the header a load balancer sends first on a
TCP connection to say whom it carries (``--proxy-protocol off|v1|v2|auto``).

Read in the preface (``server/preface.py``), before TLS and HTTP, and only from trusted peers
(``--forwarded-allow-ips``; a UNIX-socket peer is trusted): from anyone else the bytes are left
for HTTP, where a forged header is a 400. From a trusted peer a header is required: a missing
or malformed one closes the connection, and the read is bounded by the head timeout. Only the
header's own bytes are consumed; what follows stays in the socket for TLS or HTTP.

Specification: "The PROXY protocol, versions 1 & 2" (haproxy.org, proxy-protocol.txt).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct

from .preface import Refused, peek
from .protocol import Origin
from .proxy import Trust

__all__ = ["ProxyProtocol", "V1_MAX", "V2_SIGNATURE"]

#: Longest version 1 header, CRLF included (§2.1: 107 bytes).
V1_MAX = 107
V1_PREFIX = b"PROXY "
#: The 12 bytes every version 2 header starts with (§2.2).
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
#: Longest version 2 header accepted: the fixed 16 bytes, UNIX addresses (216) and room for
#: TLVs (cloud load balancers add a few); HAProxy's own limit is about the same.
V2_MAX = 16 + 216 + 1024
_PEEK = 536

_V2_PROXY, _V2_LOCAL = 0x21, 0x20
_FAMILIES = {0x11: (socket.AF_INET, 4), 0x12: (socket.AF_INET, 4),
             0x21: (socket.AF_INET6, 16), 0x22: (socket.AF_INET6, 16)}


class ProxyProtocol:
    """Which versions are accepted, and from whom."""

    def __init__(self, version: str, trust: Trust) -> None:
        self.version = version
        self.trust = trust

    def expected_from(self, sock: socket.socket) -> bool:
        """Whether ``sock``'s peer must send a header (it is trusted)."""
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return True
        try:
            host = sock.getpeername()[0]
        except OSError:
            return False
        return str(host) in self.trust

    async def read(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, deadline: float) -> Origin | None:
        """Consume the header and return the (client, server) it names; None for a
        ``LOCAL``/``UNKNOWN`` header (a health check: the socket's own addresses apply).

        Raises:
            Refused: missing, malformed or not finished by ``deadline`` (the socket is closed).
        """
        header = b""
        while True:
            # (Bytes consumed so far belong to the header; peek waits for more to arrive.)
            data = header + await peek(loop, sock, _PEEK, deadline)
            length = self._length(data)
            if length is None:
                sock.close()
                raise Refused("malformed PROXY protocol header")
            header += _consume(sock, min(length, len(data)) - len(header))
            if len(header) >= length:
                break
        try:
            return _parse_v2(header) if header.startswith(V2_SIGNATURE) else _parse_v1(header)
        except ValueError as error:
            sock.close()
            raise Refused(f"malformed PROXY protocol header: {error}") from None

    def _length(self, data: bytes) -> int | None:
        """The header's whole length once ``data`` shows it (else a bound on the bytes that
        surely belong to it, as len(data)); None when ``data`` cannot start a header."""
        if self.version != "v1" and _could_be(data, V2_SIGNATURE):
            if len(data) < 16:
                return len(data) + 1  # (more is needed; all of this is header)
            length = 16 + struct.unpack_from("!H", data, 14)[0]
            return length if length <= V2_MAX else None
        if self.version != "v2" and _could_be(data, V1_PREFIX):
            end = data.find(b"\r\n")
            if end >= 0:
                return end + 2 if end + 2 <= V1_MAX else None
            return len(data) + 1 if len(data) < V1_MAX else None
        return None

def _could_be(data: bytes, prefix: bytes) -> bool:
    return data[: len(prefix)] == prefix[: len(data)]


def _consume(sock: socket.socket, count: int) -> bytes:
    """Read exactly ``count`` bytes that a peek has shown are there."""
    if count <= 0:
        return b""
    data = sock.recv(count)
    if len(data) != count:  # (the kernel gave fewer than it showed: cannot happen on TCP)
        sock.close()
        raise Refused("PROXY protocol header cut short")
    return data


def _parse_v1(header: bytes) -> Origin | None:
    """``PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\\r\\n`` (§2.1). Raises ValueError."""
    parts = header[:-2].split(b" ")
    if len(parts) >= 2 and parts[1] == b"UNKNOWN":
        return None
    if len(parts) != 6 or parts[1] not in (b"TCP4", b"TCP6"):
        raise ValueError("not PROXY TCP4/TCP6 with four fields")
    family = 4 if parts[1] == b"TCP4" else 6
    source = ipaddress.ip_address(parts[2].decode("latin-1"))
    destination = ipaddress.ip_address(parts[3].decode("latin-1"))
    if source.version != family or destination.version != family:
        raise ValueError("addresses of the wrong family")
    return (str(source), _port(parts[4])), (str(destination), _port(parts[5]))


def _port(text: bytes) -> int:
    # §2.1: decimal, no leading zero (except "0" itself), 0-65535.
    if not text.isdigit() or len(text) > 5 or (len(text) > 1 and text[:1] == b"0") or int(text) > 65535:
        raise ValueError(f"bad port {text!r}")
    return int(text)


def _parse_v2(header: bytes) -> Origin | None:
    """The binary header (§2.2). Raises ValueError."""
    command, family = header[12], header[13]
    if command == _V2_LOCAL:
        return None
    if command != _V2_PROXY:
        raise ValueError(f"unknown version/command byte {command:#x}")
    known = _FAMILIES.get(family)
    if known is None:
        return None  # UNSPEC, UNIX or datagram: the socket's own addresses apply (§2.2)
    kind, size = known
    if len(header) < 16 + 2 * size + 4:
        raise ValueError("address block too short")
    body = header[16:]
    source = socket.inet_ntop(kind, body[:size])
    destination = socket.inet_ntop(kind, body[size : 2 * size])
    source_port, destination_port = struct.unpack_from("!HH", body, 2 * size)
    return (source, source_port), (destination, destination_port)
