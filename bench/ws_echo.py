#!/usr/bin/env python3
"""WebSocket benchmark: echo message rate and memory per idle WebSocket, synack vs uvicorn.

    python bench/ws_echo.py                       # everything, defaults below
    python bench/ws_echo.py rate --size 16 --duration 5 --rounds 1
    python bench/ws_echo.py idle --connections 2000
    python bench/ws_echo.py --servers synack,uvicorn

``rate``: each server (one worker, access log off, ``bench/apps/ws_echo_asgi.py``, pinned to
CPU 0) is started afresh; the client (pinned to CPU 1, uvloop when installed) opens 64
WebSockets without compression and keeps one binary message of ``--size`` bytes in flight on
each: it sends a pre-masked frame, waits for the whole echo, checks its length, sends again.
After a warm-up, messages echoed per second over ``--duration`` seconds are counted; rounds
are interleaved across servers and the median is shown. The client is a bare asyncio
Protocol (no WebSocket library) so it costs far less than the servers do.

``idle``: after a warm-up, the server's RSS (VmRSS, process tree) is read, N WebSockets are
opened (handshake done, no compression, then idle), RSS is read again after a settle pause:
(after − before) / N is the memory per idle WebSocket. One echo on every connection then
checks they are all still open. Kernel socket buffers are not in RSS.

Like the rest of bench/, this asserts nothing, only stops processes it started (by PID), and
sends traffic to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import resource
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
APP = "bench.apps.ws_echo_asgi:app"
TASKSET = ["taskset", "-c", "0"] if subprocess.run(["which", "taskset"], capture_output=True).returncode == 0 else []

SERVERS: dict[str, list[str]] = {
    # synack: uvloop when installed (the default --loop auto), one worker.
    "synack": [sys.executable, "-m", "synack", APP, "--port", "{port}", "--no-access-log",
               "--max-connections", "20000", "--log-level", "warning"],
    # uvicorn with the websockets library (its default --ws auto) and uvloop/httptools.
    "uvicorn": [sys.executable, "-m", "uvicorn", APP, "--port", "{port}", "--no-access-log",
                "--ws", "websockets", "--loop", "uvloop", "--http", "httptools", "--log-level", "warning",
                "--limit-concurrency", "20000", "--backlog", "4096"],
    # uvicorn's sans-I/O websockets protocol (newer, not its default).
    "uvicorn-sansio": [sys.executable, "-m", "uvicorn", APP, "--port", "{port}", "--no-access-log",
                       "--ws", "websockets-sansio", "--loop", "uvloop", "--http", "httptools",
                       "--log-level", "warning", "--limit-concurrency", "20000", "--backlog", "4096"],
}

KEY = base64.b64encode(b"0123456789abcdef")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


class Proc:
    """A server we started; stopped by PID only."""

    def __init__(self, name: str, extra: list[str]) -> None:
        self.port = free_port()
        argv = [part.format(port=self.port) for part in SERVERS[name]] + extra
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.process = subprocess.Popen(TASKSET + argv, cwd=str(ROOT), env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{name} exited: {self.process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{name} did not start")

    def rss_kib(self) -> int:
        total = 0
        pids = [self.process.pid]
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        if children.exists():
            pids += [int(pid) for pid in children.read_text().split()]
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process.stderr is not None:
            self.process.stderr.close()


# ---------------------------------------------------------------------- the client


def client_frame(payload: bytes) -> bytes:
    """A masked binary frame (RFC 6455 §5.2), built once and sent again and again."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x82, 0x80 | size)
    elif size < 65536:
        head = struct.pack("!BBH", 0x82, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x82, 0x80 | 127, size)
    repeated = (mask * (size // 4 + 1))[:size]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(size, "big") if size else b""
    return head + mask + masked


def echo_length(size: int) -> int:
    return size + (2 if size < 126 else 4 if size < 65536 else 10)


class EchoClient(asyncio.Protocol):
    """One WebSocket: handshake, then one message in flight at a time."""

    def __init__(self, port: int, frame: bytes, expect: int, counter: list[int]) -> None:
        self.request = (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY.decode()}\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n").encode()
        self.frame = frame
        self.expect = expect
        self.counter = counter
        self.buffer = bytearray()
        self.handshaken = False
        self.got = 0
        self.running = True
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.echoed: asyncio.Future[None] | None = None
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if not self.handshaken:
            self.buffer += data
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buffer.startswith(b"HTTP/1.1 101"):
                self.ready.set_exception(RuntimeError(f"handshake refused: {bytes(self.buffer[:100])!r}"))
                return
            self.handshaken = True
            rest = len(self.buffer) - end - 4
            self.buffer.clear()
            self.ready.set_result(None)
            if rest:
                self.got += rest
            return
        self.got += len(data)
        if self.got >= self.expect:
            if self.got != self.expect:
                raise RuntimeError(f"echo of {self.got} bytes, expected {self.expect}")
            self.got = 0
            self.counter[0] += 1
            if self.echoed is not None and not self.echoed.done():
                self.echoed.set_result(None)
            if self.running:
                self.transport.write(self.frame)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed during handshake"))
        if self.echoed is not None and not self.echoed.done():
            self.echoed.set_exception(ConnectionError("closed"))

    def start(self) -> None:
        self.transport.write(self.frame)


async def open_clients(port: int, count: int, frame: bytes, expect: int, counter: list[int]) -> list[EchoClient]:
    loop = asyncio.get_running_loop()
    clients: list[EchoClient] = []
    semaphore = asyncio.Semaphore(256)

    async def one() -> None:
        async with semaphore:
            _, client = await loop.create_connection(lambda: EchoClient(port, frame, expect, counter),
                                                     "127.0.0.1", port)
            await asyncio.wait_for(client.ready, 30)
            clients.append(client)

    await asyncio.gather(*(one() for _ in range(count)))
    return clients


async def measure_rate(port: int, size: int, connections: int, duration: float, warmup: float) -> float:
    counter = [0]
    clients = await open_clients(port, connections, client_frame(os.urandom(size)), echo_length(size), counter)
    for client in clients:
        client.start()
    await asyncio.sleep(warmup)
    start_count, start = counter[0], time.perf_counter()
    await asyncio.sleep(duration)
    rate = (counter[0] - start_count) / (time.perf_counter() - start)
    for client in clients:
        client.running = False
        client.transport.close()
    return rate


async def measure_idle(proc: Proc, connections: int, settle: float) -> dict[str, float]:
    counter = [0]
    frame = client_frame(b"ping")
    warm = await open_clients(proc.port, 64, frame, echo_length(4), counter)
    for client in warm:
        client.transport.close()
    await asyncio.sleep(settle)
    before = proc.rss_kib()
    clients = await open_clients(proc.port, connections, frame, echo_length(4), counter)
    await asyncio.sleep(settle)
    after = proc.rss_kib()
    loop = asyncio.get_running_loop()
    for client in clients:
        client.running = False
        client.echoed = loop.create_future()
        client.start()
    await asyncio.wait_for(asyncio.gather(*(client.echoed for client in clients if client.echoed)), 60)
    for client in clients:
        client.transport.close()
    return {"before_kib": before, "after_kib": after, "kib_per_ws": (after - before) / connections,
            "checked": counter[0]}


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


def run_rate(args: argparse.Namespace) -> None:
    results: dict[tuple[str, int], list[float]] = {}
    costs: dict[tuple[str, int], list[float]] = {}
    for round_number in range(args.rounds):
        for size in args.size:
            for name in args.servers:
                proc = Proc(name, [])
                try:
                    loop = new_loop()
                    try:
                        cpu_before = proc.cpu_seconds()
                        usage = resource.getrusage(resource.RUSAGE_SELF)
                        rate = loop.run_until_complete(
                            measure_rate(proc.port, size, args.connections, args.duration, args.warmup))
                        cpu = proc.cpu_seconds() - cpu_before
                        after = resource.getrusage(resource.RUSAGE_SELF)
                        client_cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
                    finally:
                        loop.close()
                finally:
                    proc.stop()
                results.setdefault((name, size), []).append(rate)
                # Server CPU per message (warm-up included on both sides of the ratio): steadier
                # than the rate on a machine that other work shares.
                costs.setdefault((name, size), []).append(cpu / (rate * (args.warmup + args.duration)) * 1e6)
                log(f"round {round_number + 1} {name} {size} B: {rate:,.0f} msg/s (server cpu {cpu:.1f}s, client cpu {client_cpu:.1f}s, over {args.warmup + args.duration:.0f}s)")
    print(f"\n| server | message | msg/s (median of {args.rounds}) | vs uvicorn | server CPU µs / msg | vs uvicorn |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for size in args.size:
        base = statistics.median(results[("uvicorn", size)]) if ("uvicorn", size) in results else None
        base_cost = statistics.median(costs[("uvicorn", size)]) if ("uvicorn", size) in costs else None
        for name in args.servers:
            median = statistics.median(results[(name, size)])
            cost = statistics.median(costs[(name, size)])
            ratio = f"{median / base:.2f}x" if base else "-"
            cost_ratio = f"{base_cost / cost:.2f}x" if base_cost else "-"
            print(f"| {name} | {size:,} B | {median:,.0f} | {ratio} | {cost:.1f} | {cost_ratio} |")


def run_idle(args: argparse.Namespace) -> None:
    print("\n| server | idle WebSockets | RSS before | RSS after | KiB / WebSocket |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in args.servers:
        proc = Proc(name, [])
        try:
            loop = new_loop()
            try:
                figures = loop.run_until_complete(measure_idle(proc, args.connections, args.settle))
            finally:
                loop.close()
        finally:
            proc.stop()
        print(f"| {name} | {args.connections:,} | {figures['before_kib'] / 1024:.1f} MiB |"
              f" {figures['after_kib'] / 1024:.1f} MiB | {figures['kib_per_ws']:.1f} |")
        sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="?", choices=("all", "rate", "idle"), default="all")
    parser.add_argument("--servers", default="synack,uvicorn", type=lambda text: text.split(","))
    parser.add_argument("--size", default=[16, 65536], type=lambda text: [int(x) for x in text.split(",")])
    parser.add_argument("--connections", type=int, default=None,
                        help="64 for rate, 10,000 for idle")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--settle", type=float, default=2.0)
    args = parser.parse_args()
    for name in args.servers:
        if name not in SERVERS:
            parser.error(f"unknown server {name!r}: choose from {', '.join(SERVERS)}")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})  # the client on CPU 1, the servers on CPU 0
    connections = args.connections
    if args.what in ("all", "rate"):
        args.connections = connections or 64
        run_rate(args)
    if args.what in ("all", "idle"):
        args.connections = connections or 10_000
        run_idle(args)


if __name__ == "__main__":
    main()
