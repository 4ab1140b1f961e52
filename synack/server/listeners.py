"""Listeners: bind TCP (IPv4/IPv6) and UNIX sockets, or adopt inherited file descriptors; and
close them without resetting what the kernel already accepted."""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import stat
import struct
import sys

__all__ = [
    "BindError", "bind_tcp", "bind_unix", "from_fd", "describe",
    "refuse_new_connections", "handshakes_in_progress",
]

# A classic BPF socket filter that drops TCP segments with SYN set and ACK clear (a new
# connection attempt) and passes everything else. On a listening socket it runs before the
# kernel answers a SYN and before a handshake's final ACK is matched, with offset 0 at the
# TCP header, whose byte 13 holds the flags (RFC 9293 §3.1: ACK 0x10, SYN 0x02).
_BPF_LD_B_ABS, _BPF_ALU_AND_K, _BPF_JEQ_K, _BPF_RET_K = 0x30, 0x54, 0x15, 0x06
_DROP_NEW_ATTEMPTS = [
    (_BPF_LD_B_ABS, 0, 0, 13),  # A = flags
    (_BPF_ALU_AND_K, 0, 0, 0x12),  # A &= SYN | ACK
    (_BPF_JEQ_K, 0, 1, 0x02),  # SYN alone? next instruction, else skip it
    (_BPF_RET_K, 0, 0, 0),  # drop
    (_BPF_RET_K, 0, 0, 0xFFFFFFFF),  # keep
]
_SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)  # asm-generic value
_TCP_SYN_RECV = "03"  # the state column of /proc/net/tcp (include/net/tcp_states.h)


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


def bind_unix(path: str, backlog: int = 2048, mode: int | None = None) -> socket.socket:
    """A listening UNIX stream socket at ``path``, with permissions ``mode`` if given. A
    socket file left by a server that is gone is replaced; one a server listens on is not."""
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            if _someone_listens(path):
                raise BindError(f"cannot listen on {path}: another server is listening there"
                                " (stop it or pick another path)")
            os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as error:
        raise BindError(_explain(error, path)) from None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        if mode is not None:
            os.chmod(path, mode)
        sock.listen(backlog)
    except OSError as error:
        sock.close()
        raise BindError(_explain(error, path)) from None
    sock.setblocking(False)
    return sock


def _someone_listens(path: str) -> bool:
    """Whether a server accepts connections on the UNIX socket file ``path`` (a refused
    connection means the file is stale: its server is gone)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError as error:
        # A full backlog (EAGAIN) or a timeout: someone is there, just busy.
        return error.errno != errno.ECONNREFUSED
    else:
        return True
    finally:
        probe.close()


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


def refuse_new_connections(sock: socket.socket) -> bool:
    """Make the kernel drop new connection attempts to the listening TCP socket ``sock``.

    Connections already accepted by the kernel stay in the listen queue, and handshakes
    under way still complete into it, so ``accept()`` can empty the queue before the socket
    is closed: closing it with connections queued would reset them. A dropped attempt is
    retried by the client about a second later and refused once the listener is gone. A
    listener shared with other processes stops taking new connections for all of them.

    Returns False where this is not supported (not Linux, not TCP); nothing changes then.
    """
    if not sys.platform.startswith("linux") or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    program = b"".join(struct.pack("=HBBI", *instruction) for instruction in _DROP_NEW_ATTEMPTS)
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = struct.pack("HP", len(_DROP_NEW_ATTEMPTS), ctypes.addressof(buffer))
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)
    except OSError:
        return False
    return True


def handshakes_in_progress(sock: socket.socket) -> int:
    """How many connections to the listening TCP socket ``sock`` have begun their handshake
    and not finished it (state SYN_RECV), from ``/proc/net/tcp``; 0 where unknown."""
    table = {socket.AF_INET: "/proc/net/tcp", socket.AF_INET6: "/proc/net/tcp6"}.get(sock.family)
    if table is None:
        return 0
    try:
        port = sock.getsockname()[1]
        with open(table, encoding="ascii") as file:
            lines = file.readlines()[1:]
    except OSError:
        return 0
    suffix = f":{port:04X}"
    count = 0
    for line in lines:
        fields = line.split()
        if len(fields) > 3 and fields[3] == _TCP_SYN_RECV and fields[1].endswith(suffix):
            count += 1
    return count


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
