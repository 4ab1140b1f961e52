#!/usr/bin/env python3
"""HTTPS benchmark: synack against uvicorn with the same certificate, same run.

    python bench/tls.py                        # both workloads, 10 s x 3 rounds each
    python bench/tls.py --duration 5 --rounds 1

Workloads: ``hello`` (the ASGI hello-world, bench/apps/hello_asgi.py) and ``static_1m`` (a
1 MiB static file: synack's own static engine, uvicorn with Starlette's StaticFiles, as in
bench/run.py). Both servers run one process with access logs off, pinned to CPU 0
(``taskset -c 0``), with uvloop; wrk (built with OpenSSL) is pinned to CPU 1 and keeps its
connections alive, so this measures TLS record processing around each request, not
handshakes. The certificate (ECDSA P-256, from ``trustme``) is made afresh in a temporary
directory. Rounds are interleaved (synack, uvicorn, synack, ...); the table shows medians.

TLS is OpenSSL's cost for both servers (both use the stdlib ``ssl`` through asyncio/uvloop
transports); what differs is everything around it. Kernel TLS (``SSL_OP_ENABLE_KTLS``) does
not apply: asyncio and uvloop drive OpenSSL through memory BIOs, never on the socket.

A benchmark, not a test: it asserts nothing. Only processes it started are stopped, by PID.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PY = sys.executable
WORKLOADS = {"hello": "/", "static_1m": "/1m.bin"}


def make_certificate(directory: Path) -> tuple[Path, Path]:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    pem = directory / "server.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    return pem, directory / "ca.pem"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def command(server: str, workload: str, port: int, pem: Path, static: Path) -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if server == "synack":
        app = "bench.apps.hello_asgi:app" if workload == "hello" else str(static)
        return [PY, "-m", "synack", app, "--port", str(port), "--no-access-log", "--loop", "uvloop",
                "--ssl-certfile", str(pem)], env
    app = "bench.apps.hello_asgi:app" if workload == "hello" else "bench.apps.static_starlette:app"
    # (Only for uvicorn: synack reads SYNACK_* variables as its settings.)
    env["SYNACK_BENCH_STATIC_DIR"] = str(static)
    return [PY, "-m", "uvicorn", app, "--port", str(port), "--no-access-log", "--loop", "uvloop",
            "--http", "httptools", "--log-level", "warning", "--ssl-certfile", str(pem)], env


def wait_ready(port: int, path: str, ca: Path, process: subprocess.Popen[bytes]) -> None:
    context = ssl.create_default_context(cafile=str(ca))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=5)
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            connection.close()
            if response.status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server not ready in 30 s")


def run_wrk(port: int, path: str, duration: int, connections: int) -> tuple[float, str]:
    url = f"https://127.0.0.1:{port}{path}"
    subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", "-d2s", url],
                   capture_output=True, check=True)  # warm-up
    result = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{duration}s",
                             "--latency", url], capture_output=True, text=True, check=True)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", result.stdout).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+(\S+)", result.stdout)
    return rate, p99.group(1) if p99 else "?"


def measure(server: str, workload: str, args: argparse.Namespace, pem: Path, ca: Path, static: Path) -> tuple[float, str]:
    port = free_port()
    argv, env = command(server, workload, port, pem, static)
    process = subprocess.Popen(["taskset", "-c", "0", *argv], env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, WORKLOADS[workload], ca, process)
        return run_wrk(port, WORKLOADS[workload], args.duration, args.connections)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--only", choices=sorted(WORKLOADS), action="append")
    args = parser.parse_args()
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"bench/tls.py needs {tool} (bench/install.sh)")
    with tempfile.TemporaryDirectory(prefix="synack-tls-bench-") as temp:
        directory = Path(temp)
        pem, ca = make_certificate(directory)
        static = directory / "static"
        static.mkdir()
        (static / "1m.bin").write_bytes(os.urandom(1024 * 1024))
        print("| workload | server | requests/s (median) | p99 (median round) |")
        print("|---|---|---:|---:|")
        for workload in args.only or sorted(WORKLOADS):
            results: dict[str, list[tuple[float, str]]] = {"synack": [], "uvicorn": []}
            for _ in range(args.rounds):
                for server in results:
                    results[server].append(measure(server, workload, args, pem, ca, static))
            for server, rounds in results.items():
                rates = [rate for rate, _ in rounds]
                median = statistics.median(rates)
                p99 = min(rounds, key=lambda item: abs(item[0] - median))[1]
                print(f"| {workload} | {server} | {median:,.0f} | {p99} |")


if __name__ == "__main__":
    main()
