"""Micro-benchmark of synack's per-request CPU cost, without sockets: a fake transport feeds
requests straight into HttpProtocol.data_received on a real event loop and counts the CPU time
per exchange. For comparing synack's own revisions, not peers.

    python bench/micro_driver.py [--workload asgi_hello|post_64k|static_1k|wsgi_hello]
                                 [--requests 50000] [--headers 1|8] [--loop asyncio|uvloop]
                                 [--access-log FILE]  (default: the access log is off)

Under ``valgrind --tool=callgrind`` the instruction count of two runs with different
``--requests`` gives instructions per request, repeatable whatever else the machine does
(see bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time

from synack.apps.asgi import ASGIHandler
from synack.h1 import Limits
from synack.server.context import ServerContext
from synack.server.protocol import HttpProtocol
from synack.server.proxy import Forwarding, trust_from
from synack.server.timeouts import Timeouts


async def hello(scope, receive, send):  # type: ignore[no-untyped-def]
    # As bench/apps/hello_asgi.py (and as frameworks do): the length is given.
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")]})
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


async def echo_length(scope, receive, send):  # type: ignore[no-untyped-def]
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = str(size).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


def wsgi_hello(environ, start_response):  # type: ignore[no-untyped-def]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello, world!"]


def make_handler(workload: str):  # type: ignore[no-untyped-def]
    if workload == "asgi_hello":
        return ASGIHandler(hello, lifespan="off")
    if workload == "post_64k":
        return ASGIHandler(echo_length, lifespan="off")
    if workload == "wsgi_hello":
        from synack.apps.wsgi import WSGIHandler

        return WSGIHandler(wsgi_hello, threads=8)
    import atexit
    import shutil
    import tempfile

    from synack.apps.static import StaticFiles, StaticSettings

    root = tempfile.mkdtemp(prefix="synack-micro-")
    atexit.register(shutil.rmtree, root, True)
    with open(f"{root}/1k.bin", "wb") as file:
        file.write(b"s" * 1024)
    return StaticFiles(root, StaticSettings())


def make_request(workload: str, headers: int) -> tuple[bytes, bytes]:
    """(request head up to the blank line, body)."""
    target = {"static_1k": b"/1k.bin", "post_64k": b"/echo"}.get(workload, b"/hello?x=1")
    method = b"POST" if workload == "post_64k" else b"GET"
    extra = HEADERS_8 if headers > 1 else b""
    body = b"p" * 65536 if workload == "post_64k" else b""
    if body:
        extra += b"Content-Length: 65536\r\n"
    return method + b" " + target + b" HTTP/1.1\r\nHost: 127.0.0.1:3000\r\n" + extra + b"\r\n", body


def _metrics(on: bool) -> dict[str, object]:
    """The ``metrics`` argument of ServerContext when counting (none with an older synack)."""
    if not on:
        return {}
    from synack.server.metrics import Metrics

    return {"metrics": Metrics()}


async def main(requests: int, headers: int, workload: str, access: str | None = None,
               metrics: bool = False) -> None:
    gc.collect()  # as the worker does once the app has started (server/worker.py)
    gc.freeze()
    loop = asyncio.get_running_loop()
    if access is not None:
        from synack.logs import setup_logging

        setup_logging("info", access)
    # As the server runs by default: proxy headers from 127.0.0.1 (the fake peer) are read, so
    # this measures their cost on requests that carry none.
    context = ServerContext(loop, make_handler(workload), Limits(), Timeouts(), access_log=access is not None,
                            forwarding=Forwarding(trust_from(None)), **_metrics(metrics))
    connections = 64  # like wrk -c64: one loop pass serves a batch of ready connections
    protocols = []
    transports = []
    for _ in range(connections):
        protocol = HttpProtocol(context)
        transport = FakeTransport()
        protocol.connection_made(transport)
        protocols.append(protocol)
        transports.append(transport)
    head, body = make_request(workload, headers)
    # A body arrives as a read of its own after the head (as a 64 KiB POST does off a socket).
    pieces = [head + body[:16384], body[16384:]] if body else [head]
    settle = 3 if workload == "wsgi_hello" else 0  # (the thread pool answers on a later pass)
    rounds = requests // connections

    async def one_round() -> None:
        for piece in pieces:
            for protocol in protocols:
                protocol.data_received(piece)
            await asyncio.sleep(0)
        for _ in range(settle):
            await asyncio.sleep(0.0005)

    for _ in range(20):  # warm up
        await one_round()
    before = sum(t.responses for t in transports)
    start_cpu = time.process_time()
    for _ in range(rounds):
        await one_round()
    cpu = time.process_time() - start_cpu
    for _ in range(100):
        await asyncio.sleep(0.001)
        if sum(t.responses for t in transports) - before >= rounds * connections:
            break
    done = sum(t.responses for t in transports) - before
    requests = rounds * connections
    assert done >= requests - connections, (done, requests)
    print(f"{workload}: {cpu / requests * 1e6:.2f} µs CPU per request ({requests} requests, {headers} header lines)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--headers", type=int, default=1)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--workload", choices=("asgi_hello", "post_64k", "static_1k", "wsgi_hello"),
                        default="asgi_hello")
    parser.add_argument("--access-log", metavar="FILE", default=None,
                        help="log each request to FILE (/dev/null to count only the formatting)")
    parser.add_argument("--metrics", action="store_true", help="count each request as --metrics does")
    arguments = parser.parse_args()
    if arguments.loop == "uvloop":
        import uvloop

        uvloop.install()
    asyncio.run(main(arguments.requests, arguments.headers, arguments.workload, arguments.access_log,
                     arguments.metrics))
