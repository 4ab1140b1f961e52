"""Static files, big directory listings (issue 10 Low #16): the page is capped at
``listing_limit`` entries with a note saying how many were left out, and it is built off the
event loop, so other requests are answered while a big directory is read."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from synack.apps.static import StaticSettings
from synack.apps.static_listing import LISTING_LIMIT, Listing, read_directory, render_listing
from tests.apps.static_support import GatedServer, build_request, fetch, read_reply, write

BIG = 50_000


def _names_in(page: bytes) -> list[str]:
    return re.findall(r'<a href="([^"]+)">', page.decode())


# ---------------------------------------------------------------- the cap, as pure functions


def _small_tree(root: Path) -> int:
    for name in ("b.txt", "a.txt", "d.txt", "c.txt", ".hidden"):
        write(root / name, name)
    (root / "zdir").mkdir()
    (root / "adir").mkdir()
    os.symlink("a.txt", root / "link.txt")
    os.symlink("missing", root / "dangling")
    return os.open(root, os.O_RDONLY | os.O_DIRECTORY)


def test_read_directory_shows_the_first_entries_in_listing_order(tmp_path: Path) -> None:
    fd = _small_tree(tmp_path)
    try:
        listing = read_directory(fd, False, lambda name: True, limit=3)
        assert [entry.name for entry in listing.entries] == ["adir", "zdir", "a.txt"]
        assert listing.omitted == 5  # b, c, d, link.txt and the dangling link (not stat-ed)
        everything = read_directory(fd, False, lambda name: True, limit=100)
        assert [entry.name for entry in everything.entries] == [
            "adir", "zdir", "a.txt", "b.txt", "c.txt", "d.txt", "link.txt"]
        assert everything.omitted == 0
        hidden_too = read_directory(fd, True, lambda name: name != "link.txt", limit=100)
        assert [entry.name for entry in hidden_too.entries] == [
            "adir", "zdir", ".hidden", "a.txt", "b.txt", "c.txt", "d.txt"]
    finally:
        os.close(fd)


def test_the_page_says_how_many_were_left_out(tmp_path: Path) -> None:
    fd = _small_tree(tmp_path)
    try:
        capped = render_listing("/d/", read_directory(fd, False, lambda name: True, limit=2), True)
        whole = render_listing("/d/", read_directory(fd, False, lambda name: True, limit=100), True)
    finally:
        os.close(fd)
    assert _names_in(capped) == ["../", "adir/", "zdir/"]
    assert b"Only the first 2 entries are listed; 6 more are not shown." in capped
    assert b"not shown" not in whole


def test_the_limit_is_a_setting_with_a_documented_default() -> None:
    assert StaticSettings().listing_limit == LISTING_LIMIT == 5000
    with pytest.raises(ValueError):
        StaticSettings(listing_limit=0)


def test_an_empty_listing_renders() -> None:
    page = render_listing("/", Listing([]), False)
    assert _names_in(page) == [] and b"not shown" not in page


# ---------------------------------------------------------------- 50,000 entries on a real server


@pytest.fixture(scope="module")
def big_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("biglisting")
    big = root / "big"
    big.mkdir()
    for index in range(BIG):
        os.close(os.open(big / f"file-{index:05d}.txt", os.O_CREAT | os.O_WRONLY, 0o644))
    (big / "subdir").mkdir()
    write(root / "small.txt", "small\n")
    return root


@contextmanager
def _gated_server(root: Path, tmp_path: Path) -> Iterator[tuple[socket.socket, GatedServer]]:
    """A server of ``root`` whose directory reads wait at a gate: a UNIX socket the test
    accepts on (the read says "entered", then waits for a byte). Its log must hold no
    traceback once it is closed."""
    gate_path = str(tmp_path / "gate")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as gate:
        gate.bind(gate_path)
        gate.listen(8)
        gate.settimeout(20)
        server = GatedServer([str(root)], gate_path)
        try:
            yield gate, server
        finally:
            log = server.stderr_text()
            server.close()
    assert "Traceback" not in log


def test_a_big_listing_does_not_hold_the_event_loop(big_root: Path, tmp_path: Path) -> None:
    """While a 50,000-entry listing is being read (held at a gate inside the directory read),
    a small GET on another connection is answered, and the listing has sent nothing yet:
    the read runs off the event loop. Before the fix the loop itself sat at the gate and the
    small GET timed out."""
    with _gated_server(big_root, tmp_path) as (gate, server):
        with server.connect(20) as listing_socket:
            listing_socket.sendall(build_request("GET", "/big/"))
            inside, _ = gate.accept()  # the listing's directory read has started
            with inside:
                inside.settimeout(20)
                assert inside.recv(16) == b"entered"
                small = fetch(server, "/small.txt", timeout=20)  # a timeout here: the loop is held
                assert (small.status, small.body) == (200, b"small\n")
                listing_socket.setblocking(False)
                with pytest.raises(BlockingIOError):
                    listing_socket.recv(1)  # not one byte of the listing before the gate opens
                listing_socket.settimeout(20)
                inside.sendall(b"g")
                reply = read_reply(listing_socket, "GET", bytearray())
    assert reply.status == 200
    names = _names_in(reply.body)
    assert names[:3] == ["../", "subdir/", "file-00000.txt"]
    assert len(names) == 1 + LISTING_LIMIT
    assert names[-1] == f"file-{LISTING_LIMIT - 2:05d}.txt"
    shown, more = LISTING_LIMIT, BIG + 1 - LISTING_LIMIT
    assert f"Only the first {shown:,} entries are listed; {more:,} more are not shown.".encode() in reply.body


def test_a_cancelled_listing_leaks_no_descriptor(big_root: Path, tmp_path: Path) -> None:
    """The client leaves while its listing is being read: the thread works on its own
    descriptor (the request's may be closed under it at any time) and closes it when done,
    and the server keeps serving."""
    big = str(big_root / "big")
    with _gated_server(big_root, tmp_path) as (gate, server):
        listing_socket = server.connect(20)
        listing_socket.sendall(build_request("GET", "/big/"))
        inside, _ = gate.accept()
        with inside:
            assert inside.recv(16) == b"entered"
            listing_socket.close()  # the client is gone mid-listing
            assert fetch(server, "/small.txt", timeout=20).status == 200
            assert _open_paths(server.process.pid).count(big) == 2  # the request's and the thread's
            inside.sendall(b"g")
        finished, _ = gate.accept()
        with finished:
            finished.settimeout(20)
            assert finished.recv(16) == b"done"
        # The thread's descriptor is closed; the request's own goes when the driver has
        # finished with the abandoned response (whenever that is, it is not this code's).
        assert _open_paths(server.process.pid).count(big) <= 1
        assert fetch(server, "/small.txt", timeout=20).status == 200


def _open_paths(pid: int) -> list[str]:
    paths = []
    for entry in os.listdir(f"/proc/{pid}/fd"):
        try:
            paths.append(os.readlink(f"/proc/{pid}/fd/{entry}"))
        except OSError:
            pass  # closed while we looked
    return paths
