"""Starlette's StaticFiles as a bare ASGI app (the uvicorn static-file peer).

The directory comes from the environment variable SYNACK_BENCH_STATIC_DIR, which bench/run.py
sets when it starts the server (uvicorn has no way to pass arguments to an app).
"""

from __future__ import annotations

import os

from starlette.staticfiles import StaticFiles

ENV = "SYNACK_BENCH_STATIC_DIR"

try:
    DIRECTORY = os.environ[ENV]
except KeyError:
    raise RuntimeError(f"{ENV} must name the directory to serve") from None

app = StaticFiles(directory=DIRECTORY)
