"""synack.server: the asyncio driver — the only package that touches sockets, the loop and clocks."""
