"""Small files are answered from a cache of open descriptors (``StaticFiles.respond_now``):
a plain GET/HEAD of a file seen before costs two stats and a pread (no pread once the file's
last change is over a second old: its bytes are kept), with no task; the stats once per batch
of answers, for every request of the batch that names the file. The cache
must never change what a client gets: every change to the file, its permissions, the
symlinks on its path or its precompressed siblings is seen by the very next request, a file
outside the root never leaks through it, and it holds a bounded number of descriptors."""

from __future__ import annotations

import ctypes
import gzip
import os
import socket
import time
from pathlib import Path

import pytest

from tests.helpers import Reader, Response


def _request(server, target: str, method: bytes = b"GET", extra: bytes = b"") -> Response:
    with server.connect() as sock:
        sock.sendall(method + b" " + target.encode() + b" HTTP/1.1\r\nHost: x\r\n" + extra
                     + b"Connection: close\r\n\r\n")
        return Reader(sock).response(method)


def _bump_times(path: Path) -> None:
    # Coarse file-system timestamps could hide two writes within one tick; the cache keys on
    # ctime, which any write, chmod or rename moves, so make sure the clock has moved.
    time.sleep(0.02)


def _server_descriptors(server, root: Path) -> list[str]:
    """The server's open descriptors that point into ``root``."""
    fd_dir = Path(f"/proc/{server.process.pid}/fd")
    targets = []
    for entry in fd_dir.iterdir():
        try:
            target = os.readlink(entry)
        except OSError:
            continue
        if target.startswith(str(root)):
            targets.append(target)
    return targets


@pytest.fixture
def served(server_factory, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    return root, lambda *args: server_factory([str(root), "--no-access-log", *args])


def test_repeated_gets_are_identical_and_the_file_stays_open(served) -> None:
    root, start = served
    (root / "a.txt").write_bytes(b"alpha\n" * 10)
    server = start()
    first = _request(server, "/a.txt")
    second = _request(server, "/a.txt")
    third = _request(server, "/a.txt", b"HEAD")
    assert first.status == second.status == third.status == 200
    assert first.body == second.body == b"alpha\n" * 10 and third.body == b""
    drop_date = lambda response: [field for field in response.headers if field[0] != b"date"]  # noqa: E731
    assert drop_date(first) == drop_date(second) == drop_date(third)
    assert str(root / "a.txt") in _server_descriptors(server, root)


def test_in_place_rewrite_of_the_same_size_is_seen(served) -> None:
    root, start = served
    path = root / "a.txt"
    path.write_bytes(b"version-1\n")
    server = start()
    first = _request(server, "/a.txt")
    assert _request(server, "/a.txt").body == b"version-1\n"
    _bump_times(path)
    with open(path, "r+b") as file:  # same inode, same size
        file.write(b"version-2\n")
    second = _request(server, "/a.txt")
    assert second.body == b"version-2\n"
    assert second.header(b"etag") != first.header(b"etag")


def test_growth_and_truncation_are_seen_with_the_right_length(served) -> None:
    root, start = served
    path = root / "a.txt"
    path.write_bytes(b"x" * 100)
    server = start()
    _request(server, "/a.txt")
    _request(server, "/a.txt")
    _bump_times(path)
    with open(path, "ab") as file:
        file.write(b"y" * 50)
    grown = _request(server, "/a.txt")
    assert grown.header(b"content-length") == b"150" and grown.body == b"x" * 100 + b"y" * 50
    _bump_times(path)
    os.truncate(path, 10)
    shrunk = _request(server, "/a.txt")
    assert shrunk.header(b"content-length") == b"10" and shrunk.body == b"x" * 10


def test_replacement_by_rename_and_deletion_are_seen(served) -> None:
    root, start = served
    (root / "a.txt").write_bytes(b"old\n")
    server = start()
    _request(server, "/a.txt")
    assert _request(server, "/a.txt").body == b"old\n"
    (root / "new.tmp").write_bytes(b"new\n")
    os.replace(root / "new.tmp", root / "a.txt")
    assert _request(server, "/a.txt").body == b"new\n"
    os.unlink(root / "a.txt")
    assert _request(server, "/a.txt").status == 404
    assert str(root / "a.txt") not in _server_descriptors(server, root)


def _read_calls(pid: int) -> int:
    """How many read system calls (read, pread, readv) the process has made so far."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("syscr:"):
            return int(line.split()[1])
    raise AssertionError("no syscr in /proc/PID/io")


def _reads_for_gets(server, target: str, count: int) -> int:
    """Read system calls the server makes for ``count`` keep-alive GETs of ``target``."""
    with server.connect() as sock:
        reader = Reader(sock)
        before = _read_calls(server.process.pid)
        for _ in range(count):
            sock.sendall(b"GET " + target.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            assert reader.response().status == 200
        return _read_calls(server.process.pid) - before


def test_a_settled_file_is_served_from_memory_and_changes_are_still_seen(served) -> None:
    # Bytes read within a second of the file's last change are not kept (a write in the same
    # coarse clock tick could leave ctime unchanged); once the change is older, the bytes are
    # kept and each GET costs no read of the file, and any later change still moves ctime.
    root, start = served
    path = root / "a.txt"
    path.write_bytes(b"version-1\n")
    server = start()
    for _ in range(10):  # (a loaded machine may need another try to stay within the second)
        path.write_bytes(b"version-1\n")  # a change now: not settled for a second
        written = time.monotonic()
        assert _request(server, "/a.txt").body == b"version-1\n"  # opened and its descriptor kept
        fresh = _reads_for_gets(server, "/a.txt", 40)
        if time.monotonic() - written < 0.8:
            break
    else:
        raise AssertionError("40 requests never fitted in the unsettled second")
    assert fresh >= 40  # a pread for each
    time.sleep(max(0.0, written + 1.2 - time.monotonic()))
    assert _request(server, "/a.txt").body == b"version-1\n"  # read once more, and kept
    settled = _reads_for_gets(server, "/a.txt", 40)
    assert settled <= fresh - 35, (fresh, settled)
    _bump_times(path)
    with open(path, "r+b") as file:  # same inode, same size
        file.write(b"version-2\n")
    assert _request(server, "/a.txt").body == b"version-2\n"
    (root / "new.tmp").write_bytes(b"version-3\n")
    os.replace(root / "new.tmp", path)
    assert _request(server, "/a.txt").body == b"version-3\n"


def _without_dac_override() -> None:
    # As root the server could read a mode-000 file anyway: drop the capabilities that let
    # it (PR_CAPBSET_DROP of CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH before exec).
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for capability in (1, 2):
            if libc.prctl(24, capability, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_permission_revoked_after_caching_is_not_served_from_the_old_descriptor(served, server_factory) -> None:
    root, _ = served
    path = root / "a.txt"
    path.write_bytes(b"secret-ish\n")
    server = server_factory([str(root), "--no-access-log"], preexec_fn=_without_dac_override)
    _request(server, "/a.txt")
    assert _request(server, "/a.txt").status == 200
    _bump_times(path)
    path.chmod(0o000)
    try:
        response = _request(server, "/a.txt")
        assert response.status == 403 and b"secret-ish" not in response.body
    finally:
        path.chmod(0o644)


def test_symlink_retargeted_inside_the_root_is_followed(served) -> None:
    root, start = served
    (root / "one").mkdir()
    (root / "two").mkdir()
    (root / "one" / "f.txt").write_bytes(b"from one\n")
    (root / "two" / "f.txt").write_bytes(b"from two\n")
    os.symlink("one", root / "link")
    server = start()
    assert _request(server, "/link/f.txt").body == b"from one\n"
    assert _request(server, "/link/f.txt").body == b"from one\n"
    os.symlink("two", root / "link.new")
    os.replace(root / "link.new", root / "link")
    assert _request(server, "/link/f.txt").body == b"from two\n"


def test_symlink_retargeted_outside_the_root_never_leaks(served, tmp_path) -> None:
    root, start = served
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f.txt").write_bytes(b"TOP SECRET\n")
    (root / "inside").mkdir()
    (root / "inside" / "f.txt").write_bytes(b"public\n")
    os.symlink("inside", root / "link")
    server = start()
    assert _request(server, "/link/f.txt").body == b"public\n"
    assert _request(server, "/link/f.txt").body == b"public\n"
    os.symlink(str(outside), root / "link.new")
    os.replace(root / "link.new", root / "link")
    for _ in range(3):
        response = _request(server, "/link/f.txt")
        assert response.status == 404 and b"TOP SECRET" not in response.body


def test_a_sibling_that_appears_is_negotiated_at_once(served) -> None:
    root, start = served
    (root / "app.js").write_bytes(b"console.log(1);\n" * 10)
    server = start()
    gzip_ok = b"Accept-Encoding: gzip\r\n"
    assert _request(server, "/app.js", extra=gzip_ok).header(b"content-encoding") is None
    assert _request(server, "/app.js", extra=gzip_ok).header(b"content-encoding") is None
    compressed = gzip.compress(b"console.log(1);\n" * 10, mtime=0)
    (root / "app.js.gz").write_bytes(compressed)
    negotiated = _request(server, "/app.js", extra=gzip_ok)
    assert negotiated.header(b"content-encoding") == b"gzip" and negotiated.body == compressed
    plain = _request(server, "/app.js")
    assert plain.header(b"vary") == b"accept-encoding" and plain.header(b"content-encoding") is None


def test_ranges_and_preconditions_still_apply_to_cached_files(served) -> None:
    root, start = served
    (root / "a.txt").write_bytes(b"0123456789")
    server = start()
    etag = _request(server, "/a.txt").header(b"etag")
    assert etag is not None
    partial = _request(server, "/a.txt", extra=b"Range: bytes=2-4\r\n")
    assert partial.status == 206 and partial.body == b"234"
    assert _request(server, "/a.txt", extra=b"If-None-Match: " + etag + b"\r\n").status == 304
    assert _request(server, "/a.txt", extra=b"If-Match: \"other\"\r\n").status == 412
    assert _request(server, "/a.txt", b"POST").status == 405


def test_index_files_are_cached_and_changes_seen(served) -> None:
    root, start = served
    (root / "docs").mkdir()
    (root / "docs" / "index.html").write_bytes(b"<p>one</p>")
    server = start()
    assert _request(server, "/docs/").body == b"<p>one</p>"
    assert _request(server, "/docs/").body == b"<p>one</p>"
    (root / "docs" / "index.html").unlink()
    listing = _request(server, "/docs/")
    assert listing.status == 200 and b"<p>one</p>" not in listing.body and b"<html" in listing.body.lower()


def test_a_long_pipeline_of_cached_files_is_answered_in_order(served) -> None:
    # Answered synchronously one after another: the driver must loop, not recurse.
    root, start = served
    for index in range(3):
        (root / f"{index}.txt").write_bytes(b"file %d\n" % index)
    server = start()
    for index in range(3):
        _request(server, f"/{index}.txt")
    count = 2000
    burst = b"".join(b"GET /%d.txt HTTP/1.1\r\nHost: x\r\n\r\n" % (index % 3) for index in range(count))
    with server.connect() as sock:
        sock.sendall(burst)
        reader = Reader(sock, timeout=30)
        for index in range(count):
            response = reader.response()
            assert response.status == 200 and response.body == b"file %d\n" % (index % 3), index
    assert server.process.poll() is None


def test_descriptors_held_are_bounded(served) -> None:
    root, start = served
    count = 400
    for index in range(count):
        (root / f"{index}.txt").write_bytes(b"%d" % index)
    server = start()
    with server.connect() as sock:
        sock.settimeout(30)
        reader = Reader(sock, timeout=30)
        for index in range(count):
            sock.sendall(b"GET /%d.txt HTTP/1.1\r\nHost: x\r\n\r\n" % index)
            assert reader.response().body == b"%d" % index
    held = _server_descriptors(server, root)
    assert 0 < len(held) <= 256
    # ... and what was evicted is still served correctly.
    assert _request(server, "/0.txt").body == b"0" and _request(server, f"/{count - 1}.txt").body == b"%d" % (count - 1)


def test_few_descriptors_are_cached_under_a_low_descriptor_limit(server_factory, tmp_path) -> None:
    import resource

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40))  # 40 // 16: at most 2 entries

    for index in range(5):
        (tmp_path / f"{index}.txt").write_bytes(b"%d" % index)
    server = server_factory([str(tmp_path), "--no-access-log"], preexec_fn=low_limit)
    for _ in range(3):
        for index in range(5):
            assert _request(server, f"/{index}.txt").body == b"%d" % index
    assert 0 < len(_server_descriptors(server, tmp_path)) <= 2


def test_the_client_leaving_mid_pipeline_is_harmless(served) -> None:
    root, start = served
    (root / "a.txt").write_bytes(b"a" * 1000)
    server = start()
    _request(server, "/a.txt")
    sock = server.connect()
    sock.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n" * 500)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()  # reset with responses unread
    assert _request(server, "/a.txt").body == b"a" * 1000


# ----------------------------------------------------------------- one check per batch of answers
# In process, on the driver harness: requests fed in one pass are answered in one batch.


class _CountingStat:
    """``os.stat`` counting the calls that name paths under ``root``."""

    def __init__(self, root: Path) -> None:
        self.real = os.stat
        self.prefix = os.fsencode(root)
        self.calls = 0

    def __call__(self, path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if os.fsencode(path).startswith(self.prefix):
            self.calls += 1
        return self.real(path, *args, **kwargs)


def test_a_batch_checks_a_cached_file_once_and_the_next_batch_sees_a_change(tmp_path, monkeypatch) -> None:
    from synack.apps.static import StaticFiles, StaticSettings
    from synack.server.exchange import ANSWER_BATCH
    from tests.server.harness import Harness, count_responses, run, settle

    (tmp_path / "a.txt").write_bytes(b"version-1\n")
    request = b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"

    async def body() -> None:
        files = StaticFiles(str(tmp_path), StaticSettings())
        harness = Harness(files)
        connections = [harness.connect() for _ in range(6)]
        protocol, transport = connections[0]
        protocol.data_received(request)  # the full path, which caches the open file
        await settle()
        assert transport.take().endswith(b"\r\n\r\nversion-1\n")
        stat = _CountingStat(tmp_path)
        monkeypatch.setattr(os, "stat", stat)
        for protocol, _ in connections:  # one pass: six requests, two of them pipelined
            protocol.data_received(request * (3 if protocol is connections[0][0] else 1))
        await settle()
        answers = [transport.take() for _, transport in connections]
        assert [count_responses(answer) for answer in answers] == [3, 1, 1, 1, 1, 1]
        assert all(answer.count(b"\r\n\r\nversion-1\n") == count_responses(answer) for answer in answers)
        assert stat.calls == 2  # the file and its directory, once for all eight
        assert ANSWER_BATCH.number == 0  # between batches
        (tmp_path / "a.txt").write_bytes(b"version-two\n")  # another size: another file
        for protocol, _ in connections:
            protocol.data_received(request)
        await settle()
        answers = [transport.take() for _, transport in connections]
        assert all(answer.endswith(b"\r\n\r\nversion-two\n") for answer in answers), answers
        assert stat.calls > 2  # checked again in the new batch (and found changed)
        calls = stat.calls
        for protocol, _ in connections:  # cached anew by the full path: one check again
            protocol.data_received(request)
        await settle()
        assert all(transport.take().endswith(b"version-two\n") for _, transport in connections)
        assert stat.calls - calls <= 2 + 2 * len(connections)  # (re-cached within this batch)
        calls = stat.calls
        for protocol, _ in connections:
            protocol.data_received(request)
        await settle()
        assert all(transport.take().endswith(b"version-two\n") for _, transport in connections)
        assert stat.calls - calls == 2

    run(body)


def test_outside_a_batch_every_answer_checks_the_file(tmp_path, monkeypatch) -> None:
    # respond_now called directly (ANSWER_BATCH.number is 0) reuses no earlier check.
    from synack.apps.static import StaticFiles, StaticSettings
    from synack.server.exchange import ANSWER_BATCH
    from tests.server.harness import Harness, run, settle

    (tmp_path / "a.txt").write_bytes(b"alpha\n")

    async def body() -> None:
        files = StaticFiles(str(tmp_path), StaticSettings())
        harness = Harness(files)
        protocol, transport = harness.connect()
        protocol.data_received(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        await settle()
        transport.take()
        stat = _CountingStat(tmp_path)
        monkeypatch.setattr(os, "stat", stat)
        entry = files._open_files[b"/a.txt"]
        assert ANSWER_BATCH.number == 0
        entry.checked = 0
        for expected in (2, 4, 6):
            protocol.data_received(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            # The driver answers in its batch; answer the queued request directly instead.
            answers, harness.context.answers[:] = list(harness.context.answers), []
            for _, exchange in answers:
                assert files.respond_now(exchange)
            assert stat.calls == expected
        await settle()

    run(body)
