"""Real nginx and HAProxy for the deployment tests: started in the foreground on loopback
ports from the files in deploy/ (ports and paths substituted), stopped by their PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.supervisor.helpers import wait_for

DEPLOY = ROOT / "deploy"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def require(program: str) -> str:
    path = shutil.which(program) or next(
        (candidate for candidate in (f"/usr/sbin/{program}", f"/sbin/{program}") if os.access(candidate, os.X_OK)),
        None,
    )
    if path is None:
        # A failure, not a skip: the test command (.ci/run) installs it, so missing means broken.
        pytest.fail(f"{program} is not installed (.ci/run installs it with apt)")
    return path


def substitute(text: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        assert old in text, f"{old!r} not found in the deploy file"
        text = text.replace(old, new)
    return text


@contextmanager
def running_process(args: list[str], ports: list[int], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``args`` in the foreground until each of ``ports`` accepts; stop it by its PID."""
    with open(log, "wb") as output:
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
    try:
        ready = wait_for(lambda: process.poll() is not None or all(accepting(port) for port in ports))
        assert ready and process.poll() is None, log.read_text(errors="replace")
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


@contextmanager
def nginx(directory: Path, upstream_port: int, certificate: Path, key: Path,
          extra: dict[str, str] | None = None) -> Iterator[int]:
    """deploy/nginx/synack.conf in front of synack at ``upstream_port``; yields nginx's port."""
    program = require("nginx")
    port = free_port()
    site = substitute((DEPLOY / "nginx" / "synack.conf").read_text(), {
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream_port};",
        "listen 443 ssl;": f"listen 127.0.0.1:{port} ssl;",
        "/etc/ssl/synack/fullchain.pem": str(certificate),
        "/etc/ssl/synack/privkey.pem": str(key),
        **(extra or {}),
    })
    (directory / "synack.conf").write_text(site)
    temp = "\n".join(f"  {kind}_temp_path {directory}/{kind};" for kind in
                     ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (directory / "nginx.conf").write_text(f"""
worker_processes 1;
error_log stderr warn;
pid {directory}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
  access_log off;
{temp}
  include {directory}/synack.conf;
}}
""")
    args = [program, "-p", str(directory), "-e", "stderr", "-c", str(directory / "nginx.conf"), "-g", "daemon off;"]
    with running_process(args, [port], directory / "nginx.log"):
        yield port


@contextmanager
def haproxy(directory: Path, http_upstream: int, proxy_upstream: int,
            extra: dict[str, str] | None = None) -> Iterator[tuple[int, int]]:
    """deploy/haproxy/haproxy.cfg: yields the (HTTP-mode, TCP-mode with PROXY) ports."""
    program = require("haproxy")
    web, tcp = free_port(), free_port()
    config = substitute((DEPLOY / "haproxy" / "haproxy.cfg").read_text(), {
        "bind 127.0.0.1:8080": f"bind 127.0.0.1:{web}",
        "bind 127.0.0.1:8081": f"bind 127.0.0.1:{tcp}",
        "server synack1 127.0.0.1:8000": f"server synack1 127.0.0.1:{http_upstream}",
        "server synack1 127.0.0.1:8001": f"server synack1 127.0.0.1:{proxy_upstream}",
        **(extra or {}),
    })
    path = directory / "haproxy.cfg"
    path.write_text(config)
    with running_process([program, "-db", "-f", str(path)], [web, tcp], directory / "haproxy.log"):
        yield web, tcp
