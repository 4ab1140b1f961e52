"""Static files in a real browser: headless Chromium renders a directory listing, and a page
whose image and (gzip-precompressed) script load from synack. CI installs chromium; a
missing browser is a failure, not a skip."""

from __future__ import annotations

import gzip
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from tests.apps.static_support import write
from tests.server.helpers import wait_for_stderr
from tests.conftest import Server

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--virtual-time-budget=3000",
]


def png(width: int, height: int) -> bytes:
    """A valid RGB PNG of the given size (stdlib only)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\xff\x80\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>image test</title></head>
<body>
<img id="picture" src="img/pixel%20art.png" alt="">
<p id="result">pending</p>
<script src="app.js"></script>
<script>
  const picture = document.getElementById("picture");
  const result = document.getElementById("result");
  function report() { result.textContent = "image " + picture.naturalWidth + "x" + picture.naturalHeight; }
  picture.addEventListener("load", report);
  picture.addEventListener("error", () => { result.textContent = "image error"; });
  if (picture.complete && picture.naturalWidth) report();
</script>
</body></html>
"""
SCRIPT = b'document.title = "script ran: " + "precompressed";\n'


def dump_dom(url: str, profile: Path) -> str:
    assert os.path.exists(CHROMIUM), (
        f"{CHROMIUM} is missing: install it (DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)"
    )
    result = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True, timeout=90, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return result.stdout.decode("utf-8", "replace")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    write(root / "alpha.txt", "alpha\n")
    write(root / "beta & gamma.txt", "beta\n")
    write(root / "ünïcode.txt", "u\n")
    write(root / "subdir" / "inner.txt", "inner\n")
    write(root / ".secret", "hidden\n")
    write(root / "page" / "index.html", PAGE)
    write(root / "page" / "img" / "pixel art.png", png(3, 2))
    write(root / "page" / "app.js", b"document.title = 'identity copy: should not run';\n")
    write(root / "page" / "app.js.gz", gzip.compress(SCRIPT, mtime=0))
    return root


def test_listing_renders_in_chromium(site: Path, server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server: Server = server_factory([str(site)])
    dom = dump_dom(server.url + "/", tmp_path / "profile")
    assert "<title>Index of /</title>" in dom
    for name in ("alpha.txt", "beta &amp; gamma.txt", "ünïcode.txt", "subdir/", "page/"):
        assert name in dom, name
    assert ".secret" not in dom
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)


def test_page_with_image_and_precompressed_script(site: Path, server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server: Server = server_factory([str(site)])
    dom = dump_dom(server.url + "/page", tmp_path / "profile")  # follows the 301 to /page/
    assert '<p id="result">image 3x2</p>' in dom, dom[-1500:]
    assert "<title>script ran: precompressed</title>" in dom  # the .gz sibling, decoded by the browser
    log = wait_for_stderr(server, '"GET /page/img/pixel%20art.png HTTP/1.1" 200')  # (written off the loop)
    assert "Traceback" not in log
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)
