"""The optional compiled build: which modules mypyc compiles, and which build is running.

``SYNACK_COMPILE=1 pip install .`` compiles the modules of ``COMPILED`` with mypyc (see
``setup.py``); without it, the same source installs as pure Python. The whole request path is
compiled together, because every call across the compiled/interpreted boundary costs what
compiling one side saves.

This module is never compiled itself (``setup.py`` reads ``COMPILED`` from its source), and it
imports nothing of synack, so any layer may import it.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from collections.abc import Callable
from typing import TypeVar

__all__ = ["COMPILED", "build", "mypyc_attr"]

#: The modules the compiled build compiles: the request path from bytes to the application.
COMPILED = (
    "synack.h1.__init__",
    "synack.h1.connection",
    "synack.h1.events",
    "synack.h1.grammar",
    "synack.h1.headers",
    "synack.h1.reader",
    "synack.h1.writer",
    "synack.httpdate",
    "synack.server.clock",
    "synack.server.context",
    "synack.server.exchange",
    "synack.server.protocol",
    "synack.server.request_id",
    "synack.server.sendfile",
    "synack.server.stream",
    "synack.apps.asgi",
    "synack.apps.wsgi",
    "synack.apps.static",
    "synack.apps.static_http",
    "synack.apps.static_path",
)

#: The module whose form says which build runs: the driver every request goes through.
_WITNESS = "synack.server.protocol"


def build() -> str:
    """``"compiled: mypyc"`` if the request path runs as extension modules, else ``"pure Python"``.

    Decided by where the import system finds the driver (without importing it), so it holds
    for what actually runs, whatever was asked for at install time.
    """
    spec = importlib.util.find_spec(_WITNESS)
    if spec is not None and isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
        return "compiled: mypyc"
    return "pure Python"


_Class = TypeVar("_Class")

try:
    from mypy_extensions import mypyc_attr
except ImportError:  # the pure build does not depend on mypy_extensions: the decorator only guides mypyc

    def mypyc_attr(*attrs: str, **kwattrs: object) -> Callable[[_Class], _Class]:
        """A no-op stand-in for ``mypy_extensions.mypyc_attr``."""
        return lambda cls: cls
