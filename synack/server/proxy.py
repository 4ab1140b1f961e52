"""Trusted proxies: who may tell us the real client, scheme and host, and how we read it
(RFC 7239 ``Forwarded``; the de-facto ``X-Forwarded-For`` / ``-Proto`` / ``-Host`` / ``-Port``).

Theory of operation. Only a peer in ``--forwarded-allow-ips`` is believed (a UNIX-socket peer
is local and always trusted). Each proxy appends the address it got the request from, so the
chain is walked from the right: every address that is itself a trusted proxy is skipped, and
the first one that is not is the client (if all are trusted, the leftmost is). Whatever a
client put further left is its own claim and is ignored. A malformed value makes the whole
header ignored (the request is served as if it were absent), never an error.

``Forwarding.apply`` runs once per request in the driver, only for a request from a trusted
peer that carries one of these fields (``Request.forwarded``, found by the parser as it reads
the field names anyway): a request without any costs one attribute test.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Iterable

from ..h1 import Request, grammar, remember
from .exchange import Exchange

__all__ = ["Trust", "Forwarding", "trust_from", "DEFAULT_TRUSTED", "TRUSTED_ENV", "HEADER_MODES"]

#: Who is trusted when neither ``--forwarded-allow-ips`` nor ``FORWARDED_ALLOW_IPS`` says.
DEFAULT_TRUSTED = "127.0.0.1,::1"
#: The environment variable uvicorn and gunicorn read for the same setting.
TRUSTED_ENV = "FORWARDED_ALLOW_IPS"
#: How many distinct sets of proxy fields ``Forwarding`` remembers what they say (and how
#: many hosts ``Trust`` remembers whether its networks hold).
HOPS_CACHE_SIZE = 4096
#: ``--proxy-headers`` values.
HEADER_MODES = ("auto", "x-forwarded", "forwarded", "off")

_FORWARDED = b"forwarded"
_X_FOR, _X_PROTO, _X_HOST, _X_PORT = (b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host",
                                      b"x-forwarded-port")
_NAMES = {
    "auto": frozenset((_FORWARDED, _X_FOR, _X_PROTO, _X_HOST, _X_PORT)),
    "x-forwarded": frozenset((_X_FOR, _X_PROTO, _X_HOST, _X_PORT)),
    "forwarded": frozenset((_FORWARDED,)),
}
_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
Address = tuple[str, int]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: (client, scheme, host) as the proxies tell them; None where a header does not say.
_Hop = tuple[Address | None, str | None, bytes | None]


class Trust:
    """A set of trusted peers: IP addresses, networks (CIDR), or everyone (``*``)."""

    def __init__(self, everyone: bool, addresses: frozenset[str], networks: tuple[Network, ...]) -> None:
        self.everyone = everyone
        self._addresses = addresses
        self._networks = networks
        #: Hosts looked up in the networks lately → the verdict (``HOPS_CACHE_SIZE`` at most,
        #: emptied when full): every connection asks, and ``ipaddress`` is slow.
        self._verdicts: dict[str, bool] = {}

    def __contains__(self, host: str | None) -> bool:
        if host is None or self.everyone or host in self._addresses:
            return True  # (None: a UNIX-socket peer, local by construction)
        if not self._networks:
            return False
        verdict = self._verdicts.get(host)
        if verdict is None:
            verdict = self._in_networks(host)
            remember(self._verdicts, HOPS_CACHE_SIZE, host, verdict)
        return verdict

    def _in_networks(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        mapped = getattr(address, "ipv4_mapped", None)
        return any(address in network or (mapped is not None and mapped in network)
                   for network in self._networks)


def trust_from(spec: str | None) -> Trust:
    """Parse ``--forwarded-allow-ips`` (None: ``$FORWARDED_ALLOW_IPS``, else the default).

    Raises:
        ValueError: an entry is neither an IP address, a network nor ``*`` (the message names it).
    """
    if spec is None:
        spec = os.environ.get(TRUSTED_ENV) or DEFAULT_TRUSTED
    everyone = False
    addresses: set[str] = set()
    networks: list[Network] = []
    for entry in (part.strip() for part in spec.split(",")):
        if not entry:
            continue
        if entry == "*":
            everyone = True
            continue
        try:
            if "/" in entry:
                networks.append(ipaddress.ip_network(entry, strict=False))
            else:
                address = ipaddress.ip_address(entry)
                addresses.add(str(address))
                addresses.add(entry)
        except ValueError:
            raise ValueError(f"--forwarded-allow-ips: {entry!r} is not an IP address or network") from None
    return Trust(everyone, frozenset(addresses), tuple(networks))


class Forwarding:
    """What a trusted peer's proxy headers change about a request (``--proxy-headers``)."""

    def __init__(self, trust: Trust, mode: str = "auto") -> None:
        self.trust = trust
        self.mode = mode
        #: The field names this mode reads.
        self.names = _NAMES[mode]
        #: The proxy fields of recent requests, in order → what they say (``HOPS_CACHE_SIZE``
        #: at most, emptied when full). Behind a proxy the same client sends request after
        #: request with the same fields, and parsing an address with ``ipaddress`` costs more
        #: than the rest of a small request.
        self._hops: dict[tuple[tuple[bytes, bytes], ...], _Hop | None] = {}

    def apply(self, exchange: Exchange) -> None:
        """Set ``exchange``'s client, scheme and (through its head) host from its proxy
        headers; called only for requests from a trusted peer that carry one (the parser says
        so in ``Request.forwarded``)."""
        names = self.names
        key = tuple([field for field in exchange.head.fields if field[0] in names])
        hops = self._hops
        try:
            hop = hops[key]
        except KeyError:
            hop = self._read(key)
            remember(hops, HOPS_CACHE_SIZE, key, hop)  # (a result is immutable: tuples, str and bytes)
        if hop is not None:
            _set(exchange, *hop)

    def _read(self, fields: tuple[tuple[bytes, bytes], ...]) -> _Hop | None:
        """What the proxy ``fields`` (lowercased name, value; in order) say, or None."""
        found: dict[bytes, list[bytes]] = {}
        for name, value in fields:
            found.setdefault(name, []).append(value)
        if self.mode != "x-forwarded" and _FORWARDED in found:
            return self._from_forwarded(found[_FORWARDED])
        if self.mode != "forwarded":
            return self._from_x_forwarded(found)
        return None

    def _from_x_forwarded(self, found: dict[bytes, list[bytes]]) -> _Hop | None:
        chain = _list(found.get(_X_FOR))
        if not chain:
            return None
        addresses = [_parse_node(node) for node in chain]
        if any(address is None for address in addresses):
            return None  # malformed: ignore the header
        index = self._client_index([address[0] for address in addresses if address is not None])
        client = addresses[index]
        protos = _list(found.get(_X_PROTO))
        scheme = None
        if protos:
            # Aligned with the chain when each hop added one, else the nearest proxy's word.
            proto = protos[index] if len(protos) == len(chain) else protos[-1]
            scheme = _SCHEMES.get(proto.decode("latin-1").lower())
        host = _host(found.get(_X_HOST), found.get(_X_PORT))
        return client, scheme, host

    def _from_forwarded(self, values: list[bytes]) -> _Hop | None:
        elements = []
        for value in values:
            parsed = _parse_forwarded(value)
            if parsed is None:
                return None
            elements.extend(parsed)
        if not elements:
            return None
        nodes: list[Address] = []
        for element in elements:
            identifier = element.get("for")
            if identifier is None:
                return None
            node = _parse_node(identifier.encode("latin-1"), obfuscated_ok=True)
            if node is None:
                return None
            nodes.append(node)
        # The walk stops at an obfuscated or unknown node (RFC 7239 §6): it is not trusted.
        index = self._client_index([node[0] for node in nodes])
        element = elements[index]
        client = nodes[index] if nodes[index][0] else None
        proto = element.get("proto")
        scheme = _SCHEMES.get(proto.lower()) if proto is not None else None
        host_value = element.get("host")
        host = _host([host_value.encode("latin-1")], None) if host_value is not None else None
        return client, scheme, host

    def _client_index(self, hosts: list[str]) -> int:
        """Walking from the right, the index of the first host that is not a trusted proxy
        (0 when all are)."""
        trust = self.trust
        for index in range(len(hosts) - 1, 0, -1):
            host = hosts[index]
            if not host or host not in trust:
                return index
        return 0


def _set(exchange: Exchange, client: Address | None, scheme: str | None, host: bytes | None) -> None:
    exchange.client = client
    if scheme is not None:
        exchange.scheme = scheme
    if host is not None:
        exchange.head = _with_host(exchange, host)


def _with_host(exchange: Exchange, host: bytes) -> Request:
    """A copy of the request head whose Host (field and ``host``) is ``host``: what WSGI's
    HTTP_HOST and an ASGI app reading the Host field then see."""
    head = exchange.head
    fields = [(name, host if name == b"host" else value) for name, value in head.fields]
    raw = [(name, host if name.lower() == b"host" else value) for name, value in head.raw_fields]
    if head.host is None:
        fields.append((b"host", host))
        raw.append((b"Host", host))
    return dataclasses.replace(head, fields=fields, _raw=raw, host=host, _headers=None)


def _list(values: Iterable[bytes] | None) -> list[bytes]:
    """The comma-separated elements of one or more field lines (RFC 9110 §5.3), trimmed."""
    if not values:
        return []
    return [item.strip(b" \t") for value in values for item in value.split(b",") if item.strip(b" \t")]


def _parse_node(node: bytes, obfuscated_ok: bool = False) -> Address | None:
    """``1.2.3.4``, ``1.2.3.4:80``, ``::1``, ``[::1]:80`` → (host, port 0 if none). RFC 7239
    §6 nodes may also be ``unknown`` or ``_obfuscated``: ("", 0) when ``obfuscated_ok``."""
    text = node.decode("latin-1").strip()
    port = 0
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":") or not _port_ok(rest[1:]):
                return None
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        if not _port_ok(port_text):
            return ("", 0) if obfuscated_ok and port_text.startswith("_") and _ip_ok(host) else None
        port = int(port_text)
    else:
        host = text
    try:
        return (str(ipaddress.ip_address(host)), port)
    except ValueError:
        pass
    if obfuscated_ok and (host == "unknown" or host.startswith("_")):
        return ("", 0)
    return None


def _ip_ok(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _port_ok(text: str) -> bool:
    return text.isdigit() and len(text) <= 5 and 0 < int(text) <= 65535


def _host(hosts: list[bytes] | None, ports: list[bytes] | None) -> bytes | None:
    """The forwarded host (the nearest proxy's, if several), with the forwarded port when it
    has none; None when absent or not a valid Host value (RFC 9110 §7.2)."""
    host_list = _list(hosts)
    if not host_list:
        return None
    host = host_list[-1]
    if not host or not grammar.valid_host(host):
        return None
    port_list = _list(ports)
    if port_list and not host.endswith(b"]") and b":" not in host.rpartition(b"]")[2]:
        port = port_list[-1]
        if _port_ok(port.decode("latin-1")):
            host = host + b":" + port
    return host


def _parse_forwarded(value: bytes) -> list[dict[str, str]] | None:
    """RFC 7239 §4: ``Forwarded: for=a;proto=https, for="[::1]:80"`` → one dict per element
    (parameter names lowercased); None when malformed."""
    elements: list[dict[str, str]] = []
    text = value.decode("latin-1")
    position, length = 0, len(text)
    element: dict[str, str] = {}
    while position < length:
        while position < length and text[position] in " \t":
            position += 1
        equals = text.find("=", position)
        if equals < 0:
            return None
        name = text[position:equals].strip().lower()
        if not name or not name.isascii() or not all(c.isalnum() or c in "!#$%&'*+-.^_`|~" for c in name):
            return None
        position = equals + 1
        if position < length and text[position] == '"':
            parsed = _quoted(text, position)
            if parsed is None:
                return None
            parameter, position = parsed
        else:
            end = position
            while end < length and text[end] not in ";,":
                end += 1
            parameter = text[position:end].strip()
            position = end
        if name in element:
            return None  # RFC 7239 §4: each parameter at most once per element
        element[name] = parameter
        while position < length and text[position] in " \t":
            position += 1
        if position < length:
            separator = text[position]
            position += 1
            if separator == ",":
                elements.append(element)
                element = {}
            elif separator != ";":
                return None
    if element:
        elements.append(element)
    return elements


def _quoted(text: str, start: int) -> tuple[str, int] | None:
    """A quoted-string (RFC 9110 §5.6.4) starting at ``text[start] == '"'``: (value, end)."""
    characters = []
    position = start + 1
    while position < len(text):
        char = text[position]
        if char == "\\" and position + 1 < len(text):
            characters.append(text[position + 1])
            position += 2
            continue
        if char == '"':
            return "".join(characters), position + 1
        characters.append(char)
        position += 1
    return None
