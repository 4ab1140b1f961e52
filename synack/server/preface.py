"""What a connection sends before HTTP: the PROXY protocol header and the first byte of a
TLS handshake, read from the socket before any transport owns it.

Runs in the worker between ``accept`` and ``connect_accepted_socket``, only when a listener
serves TLS or the PROXY protocol (plain HTTP skips it entirely). Everything here is bounded by
the head timeout, counted from the accept: a client that sends nothing, or half a PROXY
header, is closed when it runs out. Bytes are peeked (``MSG_PEEK``) so that the TLS layer
still sees the whole ClientHello; only the PROXY header itself is consumed.

A plain-HTTP request on a TLS port is answered ``400`` in plain text (as nginx does) and closed
gracefully (FIN, then the client's input is read and discarded), so ``curl http://`` on the
wrong port gets a reason instead of a hang or a reset.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

from ..h1 import ServerConnection, error_response
from ..logs import error_log, format_peer, rejected_line
from .context import ServerContext
from .protocol import LINGER_TOTAL, Origin

__all__ = ["Refused", "read_preface", "TLS_HANDSHAKE"]

#: The first byte of a TLS record carrying a handshake message (RFC 8446 §5.1,
#: ContentType.handshake): every ClientHello starts with it.
TLS_HANDSHAKE = 0x16

#: Reads the PROXY protocol header from the socket, given the peer address and the deadline;
#: returns the addresses it carries (None: keep the socket's own). See ``server/proxy.py``.
ProxyReader = Callable[[asyncio.AbstractEventLoop, socket.socket, float], Awaitable["Origin | None"]]


class Refused(Exception):
    """The connection ended during its preface (timed out, malformed, or plain HTTP on the
    TLS port and answered); the socket is closed or being closed."""


async def read_preface(context: ServerContext, sock: socket.socket, deadline: float,
                       proxy: ProxyReader | None) -> Origin | None:
    """Read what precedes HTTP on ``sock``: the PROXY header (when ``proxy`` is given) and, on
    a TLS listener, check that a TLS handshake follows.

    Returns:
        The client and server addresses from a PROXY header, or None to use the socket's.

    Raises:
        Refused: the connection was closed (or answered and is being closed) here.
    """
    loop = context.loop
    origin = None
    if proxy is not None:
        origin = await proxy(loop, sock, deadline)
    if context.tls is not None:
        first = await peek(loop, sock, 1, deadline)
        if first[0] != TLS_HANDSHAKE:
            await _answer_plain_http(context, sock, first, origin)
            raise Refused("not a TLS handshake")
    return origin


async def peek(loop: asyncio.AbstractEventLoop, sock: socket.socket, count: int, deadline: float) -> bytes:
    """At least one and at most ``count`` bytes from ``sock``, left unread in the socket.

    Raises:
        Refused: end of file, an error, or ``deadline`` passed first (the socket is closed).
    """
    while True:
        try:
            data = sock.recv(count, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            await readable(loop, sock, deadline)
            continue
        except OSError as error:
            sock.close()
            raise Refused(str(error)) from None
        if not data:
            sock.close()
            raise Refused("closed by the client")
        return data


async def readable(loop: asyncio.AbstractEventLoop, sock: socket.socket, deadline: float) -> None:
    """Wait until ``sock`` has input (or EOF). Raises Refused (socket closed) at ``deadline``."""
    remaining = deadline - loop.time()
    if remaining <= 0:
        sock.close()
        raise Refused("timed out")
    waiter: asyncio.Future[None] = loop.create_future()
    fd = sock.fileno()
    loop.add_reader(fd, _set_once, waiter)
    try:
        await asyncio.wait_for(waiter, remaining)
    except asyncio.TimeoutError:
        timed_out = True
    else:
        timed_out = False
    finally:
        loop.remove_reader(fd)  # (before any close: the number is reused by the next accept)
    if timed_out:
        sock.close()
        raise Refused("timed out")


def _set_once(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def _answer_plain_http(context: ServerContext, sock: socket.socket, first: bytes,
                             origin: Origin | None) -> None:
    client = origin[0] if origin is not None else _peer(sock)
    if not (b"A" <= first[:1] <= b"Z"):
        # Neither TLS nor an HTTP method: nothing to answer.
        error_log.debug("connection from %s sent neither TLS nor HTTP; closing", format_peer(client))
        await linger_close(context, sock)
        return
    error_log.info("plain HTTP request from %s on a TLS port; answering 400", format_peer(client))
    answer = error_response(ServerConnection(context.limits), 400,
                            "this port speaks HTTPS: use an https:// URL")
    if context.access_log:
        custom = context.access_custom
        if custom is not None:  # (--access-log-format, or JSON: a status field, not a message)
            custom.rejected(client, context.log_time, 400)
        else:
            context.access_write(rejected_line(client, context.log_time, 400))
    try:
        await context.loop.sock_sendall(sock, answer)
    except OSError:
        sock.close()
        return
    await linger_close(context, sock)


async def linger_close(context: ServerContext, sock: socket.socket) -> None:
    """FIN, then read and discard input until the client is quiet for the linger timeout (at
    most ``LINGER_TOTAL``), then close: never a reset that could eat what was sent."""
    loop = context.loop
    end = loop.time() + LINGER_TOTAL
    try:
        sock.shutdown(socket.SHUT_WR)
        while True:
            quiet = min(loop.time() + context.timeouts.linger, end)
            try:
                await readable(loop, sock, quiet)
            except Refused:
                return  # (closed by readable)
            if not sock.recv(65536):
                break
    except OSError:
        pass
    finally:
        sock.close()


def _peer(sock: socket.socket) -> tuple[str, int] | None:
    try:
        address = sock.getpeername()
    except OSError:
        return None
    if isinstance(address, tuple) and len(address) >= 2:
        return (str(address[0]), int(address[1]))
    return None
