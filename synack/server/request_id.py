"""Request ids (``X-Request-ID``): the one a trusted peer sent, else a new one.

A new id is this worker's random prefix and a counter (``5f0c9a13e2b14d7a-1f``): unique
across workers and restarts without a call into the OS per request. Ids are made only when
something asks (the access log names ``{request_id}``, JSON logs, the app's scope or environ).

Trust is the proxy headers' (``--forwarded-allow-ips``, read while ``--proxy-headers`` is not
off): a trusted peer's id is kept, and a PROXY protocol hop (read from trusted peers only) is
trusted too. With ``--proxy-headers off`` every id is made here.
"""

from __future__ import annotations

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

    def new(self) -> str:
        return f"{self.prefix}{next(self._counter):x}"

    def for_request(self, headers: Any, trusted: bool) -> str:
        """The id of a request with ``headers``: its own when ``trusted`` and well-formed, else a new one."""
        if trusted:
            given = headers.get(HEADER)
            if given is not None and _ACCEPTABLE.fullmatch(given):
                return str(given.decode("ascii"))
        return self.new()
