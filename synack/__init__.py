"""synack: an HTTP/1.1 web server for Python, written from the TCP socket up.

Public API: ``serve()``, ``Config`` and ``__version__``.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .config import Config  # noqa: E402


def serve(config: Config) -> int:
    """Run synack with ``config`` until SIGTERM/SIGINT; returns the exit code.

    SIGHUP stops gracefully too: reloading in place re-executes the ``synack`` command line,
    which a program calling ``serve()`` does not have (``--workers`` > 1 reloads its workers).
    """
    from .run import run

    return run(config)


__all__ = ["serve", "Config", "__version__"]
