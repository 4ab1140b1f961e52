"""Static files, the path rules: request-target → safe path segments → a file under the root.

Two gates, both of which must pass before a byte is read:

1. ``parse_path`` works on the URL path alone (the ``Request.path`` the HTTP core split off the
   request-target, absolute-form included). It percent-decodes exactly once and refuses what
   could mean something else after decoding or on another OS: ``.`` and ``..`` segments,
   encoded slashes and backslashes (``%2F``, ``%5C``), raw backslashes, NUL, and bytes that
   are not strict UTF-8 (overlong forms such as ``%C0%AE`` are invalid UTF-8).
2. ``Resolver`` works on the file system. Symlinks are allowed, but every symlink met is
   resolved with ``realpath`` and must stay under the (resolved) root; the final open uses
   ``O_NOFOLLOW`` on the resolved path, and where ``/proc`` exists the opened descriptor's
   own path is checked again, so a symlink swapped in between resolution and open cannot
   lead outside. Only regular files and directories are opened at all.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

__all__ = ["Target", "StaticError", "Opened", "Resolver", "parse_path"]


class StaticError(Exception):
    """The request cannot be served; ``status`` says how to answer (400, 403, 404, 500, 503)."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message or str(status))
        self.status = status


@dataclass(frozen=True, slots=True)
class Target:
    """A request-target reduced to what the file system needs."""

    #: Decoded, validated path segments, without empty ones (``//`` collapses).
    parts: tuple[str, ...]
    #: Whether the path ended with ``/`` (directories are canonical with one).
    trailing_slash: bool
    #: The raw query (after ``?``), kept for redirects.
    query: bytes


# Single bytes are looked for as ints (``b"%" in path`` costs several times ``0x25 in path``).
_BACKSLASH, _PERCENT = ord("\\"), ord("%")
_ENCODED_SEPARATOR = re.compile(rb"%(?:2[fF]|5[cC])")
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def parse_path(path: bytes, query: bytes = b"") -> Target:
    """Decode and validate a request's path (``Request.path``: still percent-encoded, without
    the query); ``query`` is kept for redirects.

    Raises:
        StaticError: 400 for malformed percent-encoding, invalid UTF-8 or a path that is not
            one (the asterisk-form "*"); 404 for paths that try to leave or confuse the root.
    """
    if not path.startswith(b"/"):
        raise StaticError(400, "request-target is not a path")
    if _BACKSLASH in path:
        raise StaticError(404, "backslash path separator")
    if _PERCENT in path:
        if _ENCODED_SEPARATOR.search(path):
            raise StaticError(404, "encoded path separator")
        if _BAD_ESCAPE.search(path):
            raise StaticError(400, "malformed percent-encoding")
        raw = unquote_to_bytes(path)  # exactly once: "%252e" stays the three characters "%2e"
    else:
        raw = path
    if 0 in raw:
        raise StaticError(404, "NUL in path")
    try:
        text = raw.decode("utf-8")  # strict: overlong forms and surrogates are errors
    except UnicodeDecodeError:
        raise StaticError(400, "path is not valid UTF-8") from None
    parts = tuple(part for part in text.split("/") if part)
    if any(part in (".", "..") for part in parts):
        raise StaticError(404, "dot segment in path")
    return Target(parts, text.endswith("/"), query)


def is_hidden(parts: tuple[str, ...] | list[str]) -> bool:
    """Whether any segment is a dotfile name (``.git``, ``.env``)."""
    return any(part.startswith(".") for part in parts)


class Opened:
    """An open descriptor with its fstat, closed by ``close()`` or a ``with`` block."""

    __slots__ = ("fd", "stat", "path", "directory")

    def __init__(self, fd: int, status: os.stat_result, path: str, directory: str) -> None:
        self.fd = fd
        self.stat = status
        #: The resolved path that was opened.
        self.path = path
        #: The resolved directory the URL's last segment was found in (where precompressed
        #: siblings are looked for), which differs from the file's own when it is a symlink.
        self.directory = directory

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.stat.st_mode)

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)

    def detach(self) -> int:
        fd, self.fd = self.fd, -1
        return fd

    def __enter__(self) -> Opened:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_OPEN_FLAGS = (
    os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | getattr(os, "O_NOFOLLOW", 0)
    # A FIFO would block open() until a writer appears; O_NONBLOCK makes it return at once
    # (and fstat then rejects it). Reads of regular files ignore the flag.
    | getattr(os, "O_NONBLOCK", 0)
)
_NOT_FOUND_ERRNOS = frozenset(
    (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.ENAMETOOLONG, errno.EINVAL, errno.ENXIO,
     errno.ENODEV, errno.EISDIR)
)
_PROC_FD = "/proc/self/fd/" if os.path.isdir("/proc/self/fd") else ""


def os_error_status(error: OSError) -> int:
    """The HTTP status for a file-system error: 403, 404, 503 (out of descriptors) or 500."""
    if isinstance(error, PermissionError) or error.errno in (errno.EACCES, errno.EPERM):
        return 403
    if error.errno in _NOT_FOUND_ERRNOS:
        return 404
    if error.errno in (errno.EMFILE, errno.ENFILE):
        return 503
    return 500


class Resolver:
    """Opens paths under one root directory, never anything outside it."""

    def __init__(self, root: str, dotfiles: bool) -> None:
        self.root = os.path.realpath(root)
        self._prefix = self.root if self.root.endswith(os.sep) else self.root + os.sep
        self.dotfiles = dotfiles

    def contains(self, real: str) -> bool:
        """Whether the resolved path ``real`` is the root or under it."""
        return real == self.root or real.startswith(self._prefix)

    def _check(self, real: str) -> None:
        if not self.contains(real):
            raise StaticError(404, "resolves outside the root")
        if not self.dotfiles and real != self.root and is_hidden(real[len(self._prefix):].split(os.sep)):
            raise StaticError(404, "resolves to a dotfile")

    def allows(self, path: str) -> bool:
        """Whether ``path`` (a symlink, say) resolves to something this resolver would open."""
        try:
            self._check(os.path.realpath(path))
        except StaticError:
            return False
        return True

    def child(self, real_dir: str, name: str) -> str | None:
        """The resolved path of regular file ``name`` in the resolved ``real_dir``, or None.

        One ``lstat`` when ``name`` is not a symlink: cheap enough to probe for
        precompressed siblings on every request.
        """
        path = os.path.join(real_dir, name)
        try:
            status = os.lstat(path)
            if stat.S_ISLNK(status.st_mode):
                path = os.path.realpath(path)
                self._check(path)
                status = os.stat(path)
        except (OSError, StaticError):
            return None
        return path if stat.S_ISREG(status.st_mode) else None

    def open(self, parts: tuple[str, ...]) -> Opened:
        """Open the regular file or directory at ``parts`` under the root.

        The path is walked one component at a time from the (resolved) root: one ``lstat``
        per segment, and a symlink is resolved with ``realpath`` and must land under the
        root. Cheaper than ``realpath`` of the whole path, which re-checks every component
        of the root itself, and it yields the resolved parent directory on the way.

        Raises:
            StaticError: 404 when it is missing, outside the root, hidden or not a regular
                file or directory; 403 when permission is denied.
        """
        directory = path = self.root
        mode = stat.S_IFDIR
        try:
            for part in parts:
                if not stat.S_ISDIR(mode):
                    raise StaticError(404, "not a directory")
                directory = path
                path = directory + os.sep + part if directory != os.sep else os.sep + part
                mode = os.lstat(path).st_mode
                if stat.S_ISLNK(mode):
                    path = os.path.realpath(path)
                    self._check(path)
                    mode = os.stat(path).st_mode
        except OSError as error:
            raise StaticError(os_error_status(error), str(error)) from None
        return self._open(path, mode, directory)

    def open_real(self, real: str) -> Opened:
        """Open an already resolved path (from ``child``), checking containment again."""
        self._check(real)
        try:
            mode = os.stat(real, follow_symlinks=False).st_mode
        except OSError as error:
            raise StaticError(os_error_status(error), str(error)) from None
        return self._open(real, mode, os.path.dirname(real))

    def _open(self, path: str, mode: int, directory: str) -> Opened:
        # Device nodes, FIFOs and sockets are refused before open(), which can have side
        # effects on devices; fstat() then re-checks what was actually opened.
        if not _servable(mode):
            raise StaticError(404, "not a regular file or directory")
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except OSError as error:
            raise StaticError(os_error_status(error), str(error)) from None
        opened = Opened(fd, os.fstat(fd), path, directory)
        try:
            if not _servable(opened.stat.st_mode):
                raise StaticError(404, "not a regular file or directory")
            if _PROC_FD:
                self._check(_descriptor_path(fd, path))
        except BaseException:
            opened.close()
            raise
        return opened


def _servable(mode: int) -> bool:
    return stat.S_ISREG(mode) or stat.S_ISDIR(mode)


def _descriptor_path(fd: int, fallback: str) -> str:
    # What the kernel says the descriptor points at: the last word on containment, immune to
    # a directory being replaced by a symlink after realpath() looked at it.
    try:
        path = os.readlink(_PROC_FD + str(fd))
    except OSError:
        return fallback
    return path[: -len(" (deleted)")] if path.endswith(" (deleted)") else path
