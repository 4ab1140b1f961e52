"""Micro-benchmark of synack's per-request CPU cost, without sockets: a fake transport feeds
requests straight into HttpProtocol.data_received on a real event loop and counts the CPU time
per exchange (ASGI hello-world, WSGI excluded). For comparing synack's own revisions, not peers.

    python bench/micro_driver.py [--requests 50000] [--headers 1|8] [--loop asyncio|uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from synack.apps.asgi import ASGIHandler
from synack.h1 import Limits
from synack.server.protocol import HttpProtocol, ServerContext
from synack.server.timeouts import Timeouts


async def hello(scope, receive, send):  # type: ignore[no-untyped-def]
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"Hello, world!"})


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = 0
        self.responses = 0

    def write(self, data: bytes) -> None:  # type: ignore[override]
        self.written += len(data)
        self.responses += 1

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 5555), "sockname": ("127.0.0.1", 3000)}.get(name, default)

    def is_closing(self) -> bool:
        return False

    def can_write_eof(self) -> bool:
        return True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


HEADERS_8 = (
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36\r\n"
    b"Accept: text/html,application/xhtml+xml\r\nAccept-Encoding: gzip, deflate, br\r\n"
    b"Accept-Language: en-US,en;q=0.9\r\nCookie: a=b; c=d\r\nConnection: keep-alive\r\n"
    b"Cache-Control: no-cache\r\n"
)


async def main(requests: int, headers: int) -> None:
    loop = asyncio.get_running_loop()
    context = ServerContext(loop, ASGIHandler(hello, lifespan="off"), Limits(), Timeouts(), access_log=False)
    connections = 64  # like wrk -c64: one loop pass serves a batch of ready connections
    protocols = []
    transports = []
    for _ in range(connections):
        protocol = HttpProtocol(context)
        transport = FakeTransport()
        protocol.connection_made(transport)
        protocols.append(protocol)
        transports.append(transport)
    request = b"GET /hello?x=1 HTTP/1.1\r\nHost: 127.0.0.1:3000\r\n" + (HEADERS_8 if headers > 1 else b"") + b"\r\n"
    rounds = requests // connections
    for _ in range(20):  # warm up
        for protocol in protocols:
            protocol.data_received(request)
        await asyncio.sleep(0)
    before = sum(t.responses for t in transports)
    start_cpu = time.process_time()
    for _ in range(rounds):
        for protocol in protocols:
            protocol.data_received(request)
        await asyncio.sleep(0)
    cpu = time.process_time() - start_cpu
    await asyncio.sleep(0)
    done = sum(t.responses for t in transports) - before
    requests = rounds * connections
    assert done >= requests - connections, (done, requests)
    print(f"{cpu / requests * 1e6:.2f} µs CPU per request ({requests} requests, {headers} header lines)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--headers", type=int, default=1)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    arguments = parser.parse_args()
    if arguments.loop == "uvloop":
        import uvloop

        uvloop.install()
    asyncio.run(main(arguments.requests, arguments.headers))
