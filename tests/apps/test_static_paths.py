"""Static files, path safety against a real server: a traversal corpus that tries to read a
secret placed just outside the root, symlinks out (refused) and within (allowed), dotfiles,
special files, permissions, and odd request-target forms. No response may ever carry the
secret, and the server must never log a traceback."""

from __future__ import annotations

import html
import os
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.apps.static_support import (
    SECRET,
    RestrictedServer,
    build_request,
    fetch,
    serve_for_module,
    write,
)
from tests.conftest import Server


def build_tree(base: Path) -> Path:
    """``base/root`` is served; secrets sit next to it and in ``base/outside``."""
    root = base / "root"
    write(base / "secret.txt", SECRET + b" file next to the root\n")
    write(base / "outside" / "secret.txt", SECRET + b" in a sibling directory\n")
    write(base / "rootlike" / "secret.txt", SECRET + b" in a directory whose name extends the root's\n")
    write(root / "hello.txt", "hello\n")
    write(root / "sub" / "page.txt", "page in sub\n")
    write(root / "sub" / "index.txt", "sub index\n")
    write(root / ".env", SECRET + b" dotfile\n")
    write(root / ".git" / "config", SECRET + b" git config\n")
    write(root / "sub" / ".hidden", SECRET + b" hidden in sub\n")
    write(root / "..;" / "x", "tomcat-style name, but a real directory\n")
    os.symlink("../secret.txt", root / "escape_file")
    os.symlink("../outside", root / "escape_dir")
    os.symlink(str(base / "outside" / "secret.txt"), root / "escape_absolute")
    os.symlink("/etc", root / "etc_link")
    os.symlink("../rootlike", root / "prefix_escape")  # "/x/root" vs "/x/rootlike": a prefix check bug
    os.symlink("sub/page.txt", root / "inside_link")  # stays inside: allowed
    os.symlink("..", root / "sub" / "up")  # back to the root: allowed
    os.symlink(".git/config", root / "visible_git")  # into a dot directory: refused
    os.symlink("missing", root / "dangling")
    os.symlink("loop_b", root / "loop_a")
    os.symlink("loop_a", root / "loop_b")
    return root


@pytest.fixture(scope="module")
def tree() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="synack-static-"))
    try:
        yield build_tree(base)
    finally:
        shutil.rmtree(base)


@pytest.fixture(scope="module")
def server(tree: Path) -> Iterator[Server]:
    yield from serve_for_module(tree)


# Targets that try to leave the root (or confuse the path), sent byte for byte.
TRAVERSAL = [
    "/../secret.txt",
    "/../../secret.txt",
    "/../outside/secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/.%2e/secret.txt",
    "/%2e./secret.txt",
    "/%2e%2e%2fsecret.txt",
    "/%2e%2e%2Fsecret.txt",
    "/..%2fsecret.txt",
    "/..%2Fsecret.txt",
    "/%2e%2e%2f%2e%2e%2fsecret.txt",
    "/sub/..%2f..%2fsecret.txt",
    "/..%5csecret.txt",
    "/%2e%2e%5csecret.txt",
    "/%5c..%5csecret.txt",
    "/..\\secret.txt",
    "/sub\\..\\..\\secret.txt",
    "/%252e%252e/secret.txt",
    "/%252e%252e%252fsecret.txt",
    "/..%252fsecret.txt",
    "/%%32%65%%32%65/secret.txt",
    "/%u002e%u002e/secret.txt",
    "//etc/passwd",
    "///etc/passwd",
    "/%2fetc/passwd",
    "/%2Fetc%2Fpasswd",
    "/a/../../secret.txt",
    "/sub/../../secret.txt",
    "/sub/%2e%2e/%2e%2e/secret.txt",
    "/./../secret.txt",
    "/sub/./../../secret.txt",
    "/%00",
    "/%00/../secret.txt",
    "/hello.txt%00.html",
    "/..%00/secret.txt",
    "/%c0%ae%c0%ae/secret.txt",
    "/%c0%ae%c0%ae%c0%afsecret.txt",
    "/..%c0%afsecret.txt",
    "/%c0%af",
    "/%c1%9c",
    "/%e0%80%ae%e0%80%ae/secret.txt",
    "/%f0%80%80%ae%f0%80%80%ae/secret.txt",
    "/%ef%bc%8e%ef%bc%8e/secret.txt",
    "/....//secret.txt",
    "/.../secret.txt",
    "/..;/secret.txt",
    "/escape_file",
    "/escape_dir/secret.txt",
    "/escape_dir/",
    "/escape_dir",
    "/escape_absolute",
    "/etc_link/passwd",
    "/etc_link/",
    "/prefix_escape/secret.txt",
    "/sub/up/../secret.txt",
    "/sub/up/escape_file",
    "/inside_link/../../secret.txt",
    "http://test/../secret.txt",
    "http://test/%2e%2e/secret.txt",
    "http://test//etc/passwd",
    "/sub/up/sub/up/%2e%2e/secret.txt",
]


def test_corpus_is_big_enough() -> None:
    assert len(TRAVERSAL) >= 40


@pytest.mark.parametrize("target", TRAVERSAL)
def test_traversal_never_escapes(server: Server, target: str) -> None:
    reply = fetch(server, target)
    assert reply.status in (400, 404), reply.raw[:300]
    assert SECRET not in reply.raw
    assert b"root:" not in reply.raw  # /etc/passwd


@pytest.mark.parametrize("target", ["/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt",
                                    "/%252e%252e/secret.txt", "//etc/passwd", "/escape_file",
                                    "/escape_dir/secret.txt", "/%c0%ae%c0%ae/secret.txt"])
def test_traversal_through_curl(server: Server, target: str) -> None:
    result = subprocess.run(
        ["curl", "-s", "--path-as-is", "-o", "-", "-w", "\n%{http_code}", server.url + target],
        capture_output=True, timeout=20,
    )
    assert SECRET not in result.stdout
    assert result.stdout.rsplit(b"\n", 1)[-1] in (b"400", b"404")


def test_traversal_leaves_no_traceback(server: Server) -> None:
    for target in TRAVERSAL:
        fetch(server, target)
    assert "Traceback" not in server.stderr_text()


@pytest.mark.parametrize("target, body", [
    ("/inside_link", b"page in sub\n"),
    ("/sub/up/hello.txt", b"hello\n"),
    ("/sub/up/sub/up/sub/page.txt", b"page in sub\n"),
    ("/hello.txt?../../secret.txt", b"hello\n"),
    ("/%68ello.txt", b"hello\n"),
    ("http://test/hello.txt", b"hello\n"),
])
def test_allowed_paths(server: Server, target: str, body: bytes) -> None:
    reply = fetch(server, target)
    assert reply.status == 200
    assert reply.body == body


@pytest.mark.parametrize("target", ["/.env", "/.git/config", "/.git/", "/.git", "/sub/.hidden", "/%2eenv",
                                    "/visible_git", "/dangling", "/loop_a", "/sub/up/.env", "/..;/x"])
def test_dotfiles_and_broken_links_are_404(server: Server, target: str) -> None:
    reply = fetch(server, target)
    assert reply.status == 404
    assert SECRET not in reply.raw


def test_listing_hides_dotfiles_and_escaping_links(server: Server) -> None:
    reply = fetch(server, "/")
    assert reply.status == 200
    text = reply.body.decode()
    for hidden in (".env", ".git", "escape_file", "escape_dir", "escape_absolute", "etc_link",
                   "prefix_escape", "visible_git", "dangling", "loop_a"):
        assert f'href="{hidden}' not in text, hidden
    for shown in ("hello.txt", "sub/", "inside_link"):
        assert f'href="{shown}"' in text, shown


def test_dotfiles_served_when_enabled(tree: Path, server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(["--dotfiles", str(tree)])
    assert fetch(server, "/.env").status == 200
    assert fetch(server, "/.git/config").status == 200
    assert ".env" in fetch(server, "/").body.decode()
    # Enabling dotfiles never enables escaping the root.
    for target in ("/../secret.txt", "/escape_file", "/escape_dir/secret.txt", "/prefix_escape/secret.txt"):
        reply = fetch(server, target)
        assert reply.status == 404 and SECRET not in reply.raw, target


def test_special_files_are_404(tmp_path: Path, server_factory) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "root"
    root.mkdir()
    os.mkfifo(root / "fifo")  # would block open() forever without O_NONBLOCK
    os.symlink("/dev/zero", root / "zero")  # outside anyway
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(root / "sock"))
    try:
        server = server_factory([str(root)])
        for target in ("/fifo", "/zero", "/sock"):
            reply = fetch(server, target, timeout=5)
            assert reply.status == 404, target
        assert "fifo" not in fetch(server, "/").body.decode()
        assert "Traceback" not in server.stderr_text()
    finally:
        unix.close()


def test_permission_denied_is_403(tmp_path: Path) -> None:
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.fail("running as root needs setpriv (util-linux) to drop CAP_DAC_OVERRIDE")
    root = tmp_path / "root"
    write(root / "locked.txt", SECRET + b" unreadable\n")
    write(root / "closed" / "inner.txt", SECRET + b" in an unreadable dir\n")
    write(root / "nolist" / "file.txt", "listable? no; readable? yes\n")
    write(root / "open.txt", "fine\n")
    os.chmod(root / "locked.txt", 0o000)
    os.chmod(root / "closed", 0o000)
    os.chmod(root / "nolist", 0o311)  # search but not read: files reachable, no listing
    server = RestrictedServer([str(root)])
    try:
        assert fetch(server, "/open.txt").status == 200
        for target in ("/locked.txt", "/closed/", "/closed/inner.txt", "/nolist/"):
            reply = fetch(server, target)
            assert reply.status == 403, (target, reply.raw[:200])
            assert SECRET not in reply.raw
        assert fetch(server, "/nolist/file.txt").status == 200
        assert "Traceback" not in server.stderr_text()
    finally:
        server.close()
        os.chmod(root / "closed", 0o755)
        os.chmod(root / "nolist", 0o755)


def test_file_with_trailing_slash_is_404(server: Server) -> None:
    assert fetch(server, "/hello.txt/").status == 404


@pytest.mark.parametrize("name", ["space name.txt", "ünï©ødé.txt", "a&b<c>\"'.txt", "per%cent.txt",
                                  "hash#tag.txt", "q?mark.txt", "colon:name.txt", "semi;colon.txt"])
def test_awkward_names_round_trip_through_the_listing(tmp_path: Path, server_factory, name: str) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "root"
    write(root / name, name.encode())
    server = server_factory([str(root)])
    listing = fetch(server, "/").body.decode()
    hrefs = [html.unescape(href) for href in re.findall(r'href="([^"]+)"', listing)]
    assert len(hrefs) == 1
    assert html.escape(name) in listing
    reply = fetch(server, "/" + hrefs[0])
    assert reply.status == 200 and reply.body == name.encode()
