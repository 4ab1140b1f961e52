"""Listeners: bind TCP (IPv4/IPv6) and UNIX sockets, or adopt inherited file descriptors."""

from __future__ import annotations

import errno
import os
import socket
import stat

__all__ = ["BindError", "bind_tcp", "bind_unix", "from_fd", "describe"]


class BindError(Exception):
    """A listener could not be created; the message says what to fix."""


def bind_tcp(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``::`` or an IPv6 literal for IPv6)."""
    try:
        infos = socket.getaddrinfo(
            host or None, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
        )
    except socket.gaierror as error:
        raise BindError(f"cannot resolve host {host!r}: {error.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            # "::" means IPv6 only here; bind 0.0.0.0 separately for IPv4.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as error:
        sock.close()
        raise BindError(_explain(error, _format(host, port))) from None
    sock.setblocking(False)
    return sock


def bind_unix(path: str, backlog: int = 2048) -> socket.socket:
    """A listening UNIX stream socket at ``path`` (a stale socket file is replaced)."""
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as error:
        raise BindError(_explain(error, path)) from None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(backlog)
    except OSError as error:
        sock.close()
        raise BindError(_explain(error, path)) from None
    sock.setblocking(False)
    return sock


def from_fd(fd: int) -> socket.socket:
    """Adopt an inherited listening socket (systemd socket activation, supervisors)."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as error:
        raise BindError(f"file descriptor {fd} is not a usable socket: {error.strerror}") from None
    if sock.type != socket.SOCK_STREAM:
        raise BindError(f"file descriptor {fd} is not a stream socket")
    sock.setblocking(False)
    return sock


def describe(sock: socket.socket, scheme: str = "http") -> str:
    """A URL-ish description of a listening socket for the ready line."""
    address = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return f"unix:{address}"
    host, port = address[0], address[1]
    return f"{scheme}://{_format(host, port)}"


def _format(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _explain(error: OSError, where: str) -> str:
    if error.errno == errno.EADDRINUSE:
        return f"cannot listen on {where}: address already in use (stop the other server or pick another --port)"
    if error.errno == errno.EACCES:
        return f"cannot listen on {where}: permission denied (ports below 1024 need privileges; pick another --port)"
    if error.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {where}: address not available on this machine (check --host)"
    return f"cannot listen on {where}: {error.strerror or error}"
