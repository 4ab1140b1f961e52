"""Request ids (``X-Request-ID``): the one a trusted peer sent, else a new one.

A new id is this worker's random prefix and a counter (``5f0c9a13e2b14d7a-1f``): unique
across workers and restarts without a call into the OS per request. Ids are made only when
something asks (the access log names ``{request_id}``, JSON logs, the app's scope or environ).

Trust: until the proxy-trust setting (``--forwarded-allow-ips``) is on this branch, a peer is
trusted when it is on a loopback address or a UNIX socket, or when it spoke the PROXY protocol
(which synack only reads from trusted peers).
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import re
from typing import Any

__all__ = ["RequestIds", "HEADER"]

#: The request field (lower case, as the parser stores names).
HEADER = b"x-request-id"
#: What a taken id may hold: visible ASCII, at most 200 characters (longer or stranger values
#: are replaced by a new id, so a client cannot stuff the logs through it).
_ACCEPTABLE = re.compile(rb"[\x21-\x7e]{1,200}")


class RequestIds:
    """This worker's request ids."""

    def __init__(self) -> None:
        self.prefix = os.urandom(8).hex() + "-"
        self._counter = itertools.count(1)
        self._trusted: dict[str, bool] = {}

    def new(self) -> str:
        return f"{self.prefix}{next(self._counter):x}"

    def for_request(self, headers: Any, peer: tuple[str, int] | None, proxied: bool) -> str:
        """The id of a request with ``headers`` from ``peer`` (the socket's other end; None on a
        UNIX socket; ``proxied`` when a PROXY protocol header named the client)."""
        given = headers.get(HEADER)
        if given is not None and (proxied or self.trusted(peer)) and _ACCEPTABLE.fullmatch(given):
            return str(given.decode("ascii"))
        return self.new()

    def trusted(self, peer: tuple[str, int] | None) -> bool:
        if peer is None:
            return True
        host = peer[0]
        known = self._trusted.get(host)
        if known is None:
            try:
                known = ipaddress.ip_address(host.partition("%")[0]).is_loopback
            except ValueError:
                known = False
            if len(self._trusted) < 1024:
                self._trusted[host] = known
        return known
