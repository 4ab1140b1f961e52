"""Config: every setting declared once (type, default, help, flag), validated, and sliced
into ``Limits`` for the core and ``Timeouts``/``WorkerSettings`` for the driver."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .h1.limits import Limits
from .server.timeouts import Timeouts

__all__ = ["Config", "ConfigError", "FIELD_GROUPS"]


class ConfigError(ValueError):
    """A setting is invalid; the message says which one and what to fix."""


def _setting(default: Any, help: str, group: str, *, flag: str | None = None,
             choices: tuple[str, ...] | None = None, metavar: str | None = None,
             positional: bool = False) -> Any:
    return field(
        default=default,
        metadata={
            "help": help,
            "group": group,
            "flag": flag,
            "choices": choices,
            "metavar": metavar,
            "positional": positional,
        },
    )


FIELD_GROUPS = ("app", "static", "listen", "limits", "timeouts", "server", "log")

_LIMITS = Limits()
_TIMEOUTS = Timeouts()


@dataclass(frozen=True)
class Config:
    """All of synack's settings. Build with ``Config(...)``, ``from_mapping`` or the CLI."""

    # app
    app: str | None = _setting(
        None,
        "what to serve: a directory (static files) or module:attribute (an ASGI or WSGI app);"
        " default: the current directory",
        "app", positional=True, metavar="APP|DIR",
    )
    root_path: str = _setting("", "URL prefix the app is mounted under (ASGI root_path, WSGI SCRIPT_NAME)", "app")
    interface: str = _setting("auto", "application interface (auto detects ASGI 3, ASGI 2 or WSGI)", "app",
                              choices=("auto", "asgi", "wsgi"))
    factory: bool = _setting(False, "treat APP as a factory: call it with no arguments to get the app", "app")
    app_dir: str = _setting(".", "directory added to sys.path before importing APP", "app", metavar="DIR")
    lifespan: str = _setting("auto", "ASGI lifespan events (auto: use them if the app supports them)", "app",
                             choices=("auto", "on", "off"))
    threads: int = _setting(32, "WSGI: size of the thread pool that runs the app", "app")
    listing: bool = _setting(True, "static files: HTML listings for directories without an index", "static")
    dotfiles: bool = _setting(False, "static files: serve names starting with a dot (.git, .env)", "static")
    index: str = _setting("index.html", "static files: index file name for directories", "static", metavar="NAME")
    cache_control: str = _setting("", "static files: Cache-Control header value (empty to omit)", "static",
                                  metavar="VALUE")

    # listen
    host: str = _setting("127.0.0.1", "address to listen on (0.0.0.0 for all IPv4, :: for IPv6)", "listen")
    port: int = _setting(3000, "TCP port to listen on (0 picks a free port)", "listen")
    uds: str | None = _setting(None, "listen on this UNIX socket path instead of TCP", "listen", metavar="PATH")
    fd: int | None = _setting(None, "serve an inherited listening socket file descriptor", "listen")
    backlog: int = _setting(2048, "listen backlog (pending connections the kernel queues)", "listen")

    # limits (the core's Limits)
    max_request_line: int = _setting(_LIMITS.max_request_line, "longest request line, in bytes (→ 414)", "limits")
    max_head_bytes: int = _setting(_LIMITS.max_head_bytes, "largest request head, in bytes (→ 431)", "limits")
    max_header_count: int = _setting(_LIMITS.max_header_count, "most header fields in a request (→ 431)", "limits")
    max_field_bytes: int = _setting(_LIMITS.max_field_bytes, "largest single header line, in bytes (→ 431)", "limits")
    max_chunk_ext_bytes: int = _setting(_LIMITS.max_chunk_ext_bytes, "longest chunk-size line with extensions (→ 400)", "limits")
    max_trailer_bytes: int = _setting(_LIMITS.max_trailer_bytes, "largest chunked trailer section (→ 431)", "limits")
    max_body_bytes: int = _setting(
        _LIMITS.max_body_bytes or 0, "largest request body, in bytes; 0 for no limit (→ 413)", "limits"
    )
    allow_bare_lf: bool = _setting(False, "risk: accept bare LF line endings in request heads", "limits")
    allow_obs_fold: bool = _setting(False, "risk: accept obsolete folded header lines", "limits")

    # timeouts (the driver's Timeouts)
    head_timeout: float = _setting(_TIMEOUTS.head, "seconds to receive a whole request head (→ 408)", "timeouts")
    body_timeout: float = _setting(_TIMEOUTS.body_idle, "seconds to wait for more request body (→ 408)", "timeouts")
    keep_alive_timeout: float = _setting(_TIMEOUTS.keep_alive, "seconds an idle keep-alive connection stays open", "timeouts")
    write_timeout: float = _setting(_TIMEOUTS.write, "seconds to wait for a slow client to read", "timeouts")
    linger_timeout: float = _setting(_TIMEOUTS.linger, "seconds to discard input after the final response before closing", "timeouts")
    graceful_timeout: float = _setting(_TIMEOUTS.graceful, "seconds in-flight requests get to finish on SIGTERM/SIGINT", "timeouts")
    lifespan_timeout: float = _setting(_TIMEOUTS.lifespan, "seconds ASGI lifespan startup or shutdown may take", "timeouts")

    # server
    workers: int = _setting(1, "worker processes (more than 1 starts a pre-fork supervisor)", "server")
    loop: str = _setting("auto", "event loop implementation", "server", choices=("auto", "asyncio", "uvloop"))
    max_connections: int = _setting(10_000, "most concurrent connections; further clients wait in the backlog", "server")
    server_header: str = _setting("synack", "value of the Server response header (empty to omit)", "server")

    # log
    access_log: bool = _setting(True, "log each request in Combined Log Format", "log")
    log_level: str = _setting("info", "error log level", "log", choices=("critical", "error", "warning", "info", "debug"))

    def __post_init__(self) -> None:
        self._validate()

    def _validate(self) -> None:
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            expected = item.type
            if item.name.startswith("max_") or item.name in ("port", "backlog", "fd"):
                if value is None and item.name == "fd":
                    continue
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise ConfigError(f"{_flag(item.name)} must be a whole number >= 0, got {value!r}")
            if item.name.endswith("_timeout"):
                if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                    raise ConfigError(f"{_flag(item.name)} must be a number of seconds > 0, got {value!r}")
            choices = item.metadata.get("choices")
            if choices and value not in choices:
                raise ConfigError(f"{_flag(item.name)} must be one of {', '.join(choices)}, got {value!r}")
            del expected
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port must be between 0 and 65535, got {self.port}")
        for name in ("max_request_line", "max_head_bytes", "max_header_count", "max_field_bytes",
                     "max_chunk_ext_bytes", "max_trailer_bytes", "max_connections", "backlog"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{_flag(name)} must be at least 1")
        if self.max_request_line > self.max_head_bytes:
            raise ConfigError("--max-request-line cannot exceed --max-head-bytes")
        if self.workers < 1:
            raise ConfigError("--workers must be at least 1")
        if self.threads < 1:
            raise ConfigError("--threads must be at least 1")
        if not self.index or "/" in self.index:
            raise ConfigError("--index must be a plain file name")
        if any(ord(c) < 0x20 or ord(c) > 0x7E for c in self.cache_control):
            raise ConfigError("--cache-control must be printable ASCII")
        if self.uds is not None and self.fd is not None:
            raise ConfigError("--uds and --fd cannot be used together")
        if any(ord(c) < 0x20 or ord(c) > 0x7E for c in self.server_header):
            raise ConfigError("--server-header must be printable ASCII")

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any]) -> Config:
        """Build from a dict; unknown keys are an error (not silently ignored)."""
        names = {item.name for item in dataclasses.fields(cls)}
        unknown = sorted(set(mapping) - names)
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
        return cls(**mapping)

    @property
    def limits(self) -> Limits:
        return Limits(
            max_request_line=self.max_request_line,
            max_head_bytes=self.max_head_bytes,
            max_header_count=self.max_header_count,
            max_field_bytes=self.max_field_bytes,
            max_chunk_ext_bytes=self.max_chunk_ext_bytes,
            max_trailer_bytes=self.max_trailer_bytes,
            max_body_bytes=self.max_body_bytes or None,
            allow_bare_lf=self.allow_bare_lf,
            allow_obs_fold=self.allow_obs_fold,
        )

    @property
    def timeouts(self) -> Timeouts:
        return Timeouts(
            head=self.head_timeout,
            body_idle=self.body_timeout,
            keep_alive=self.keep_alive_timeout,
            write=self.write_timeout,
            linger=self.linger_timeout,
            graceful=self.graceful_timeout,
            lifespan=self.lifespan_timeout,
        )


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")
