"""Static files: safe path resolution and file responses (minimal; the full engine follows)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import unquote

from ..server.exchange import Exchange

__all__ = ["StaticFiles", "StaticSettings"]


@dataclass(frozen=True)
class StaticSettings:
    listing: bool = True
    dotfiles: bool = False
    index: str = "index.html"
    cache_control: str = ""


class StaticFiles:
    """Serves files under ``root``."""

    def __init__(self, root: str, settings: StaticSettings) -> None:
        self.root = os.path.realpath(root)
        self.settings = settings

    async def __call__(self, exchange: Exchange) -> None:
        path = unquote(exchange.head.target.partition(b"?")[0].decode("ascii"))
        if ".." in path.split("/") or "\x00" in path:
            await _text(exchange, 404, "not found")
            return
        full = os.path.realpath(os.path.join(self.root, path.lstrip("/")))
        if not (full == self.root or full.startswith(self.root + os.sep)):
            await _text(exchange, 404, "not found")
            return
        if os.path.isdir(full):
            full = os.path.join(full, self.settings.index)
        try:
            file = open(full, "rb")
        except OSError:
            await _text(exchange, 404, "not found")
            return
        with file:
            size = os.fstat(file.fileno()).st_size
            await exchange.send_head(200, [(b"content-length", b"%d" % size)])
            await exchange.send_file(file, 0, size)


async def _text(exchange: Exchange, status: int, message: str) -> None:
    await exchange.send_head(status, [(b"content-type", b"text/plain; charset=utf-8")])
    await exchange.send_body(message.encode() + b"\n")
