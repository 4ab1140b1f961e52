"""Config: every setting declared once, validated, and sliced per layer.

Each setting is one dataclass field whose metadata carries its help text (and, where it
applies, choices, metavar, minimum): the core's size bounds are the fields of ``h1.Limits``,
the driver's time bounds the fields of ``server.timeouts.Timeouts``, and every other setting
is a field of ``Config`` below. ``SETTINGS`` lists them all, flat, under the names that
``Config.from_mapping`` takes (``max_head_bytes``, ``head_timeout``, ``port``) and that the
command line turns into flags (``--max-head-bytes``, …). ``Config`` holds a whole ``Limits``
and ``Timeouts``, so ``config.limits`` and ``config.timeouts`` are the slices the layers get.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .h1.limits import Limits
from .server.timeouts import Timeouts

__all__ = ["Config", "ConfigError", "Setting", "SETTINGS", "Address", "parse_address", "parse_mount",
           "available_cpus"]


class ConfigError(ValueError):
    """A setting is invalid; the message says which one and what to fix."""


def _setting(default: Any, help: str, group: str, *, choices: tuple[str, ...] | None = None,
             metavar: str | None = None, positional: bool = False, minimum: int | None = None,
             short: str | None = None, negative: str | None = None, auto: bool = False) -> Any:
    metadata = {"help": help, "group": group, "choices": choices, "metavar": metavar,
                "positional": positional, "minimum": minimum, "short": short, "negative": negative,
                "auto": auto}
    return field(default=default, metadata=metadata)


def _section(kind: type) -> Any:
    # A whole layer slice (Limits, Timeouts): its own fields are the settings.
    return field(default_factory=kind, metadata={"section": kind})


@dataclass(frozen=True)
class Config:
    """All of synack's settings. Build with ``Config(...)``, ``from_mapping`` or the CLI.

    Raises:
        ConfigError: a value has the wrong type, is out of range, or conflicts with another.
    """

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
    threads: int = _setting(32, "WSGI: size of the thread pool that runs the app", "app", minimum=1)
    check: bool = _setting(
        False, "load the app and exit, without serving: 0 if it loads, else 1 and the error", "app"
    )
    # reload (development: synack/reloader.py; needs the optional watchfiles package)
    reload: bool = _setting(
        False, "development: reload when a watched file changes (the SIGHUP path: a file that does not load"
        " leaves the old code serving and its error logged); needs synack[reload] (watchfiles)", "reload",
    )
    reload_dir: tuple[str, ...] = _setting(
        (), "a directory --reload watches, repeatable; none: --app-dir (the current directory)", "reload",
        metavar="DIR",
    )
    reload_include: tuple[str, ...] = _setting(
        (), "a glob of file names (or paths under a --reload-dir) whose change reloads, repeatable, besides"
        " *.py; it also wins over the default excludes", "reload", metavar="GLOB",
    )
    reload_exclude: tuple[str, ...] = _setting(
        (), "a glob of names (a file or any directory above it) or paths whose change never reloads,"
        " repeatable, besides .* *.py[cod] *~ __pycache__", "reload", metavar="GLOB",
    )
    mount: tuple[str, ...] = _setting(
        (), "serve the static directory DIR at the URL prefix PREFIX, in front of the app (repeatable;"
        " the --listing, --dotfiles, --index and --cache-control settings apply)", "static", metavar="PREFIX=DIR",
    )
    listing: bool = _setting(True, "static files: HTML listings for directories without an index", "static")
    dotfiles: bool = _setting(False, "static files: serve names starting with a dot (.git, .env)", "static")
    index: str = _setting("index.html", "static files: index file name for directories", "static", metavar="NAME")
    cache_control: str = _setting("", "static files: Cache-Control header value (empty to omit)", "static",
                                  metavar="VALUE")

    # listen
    bind: tuple[str, ...] = _setting(
        (), "an address to listen on, repeatable: HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N"
        " (replaces --host/--port/--uds/--fd)", "listen", metavar="ADDRESS", short="-b",
    )
    host: str = _setting("127.0.0.1", "address to listen on (0.0.0.0 for all IPv4, :: for IPv6)", "listen")
    port: int = _setting(3000, "TCP port to listen on (0 picks a free port)", "listen", minimum=0)
    uds: str | None = _setting(None, "listen on this UNIX socket path instead of TCP", "listen", metavar="PATH")
    fd: int | None = _setting(None, "serve an inherited listening socket file descriptor", "listen", minimum=0)
    backlog: int = _setting(2048, "listen backlog (pending connections the kernel queues)", "listen", minimum=1)
    uds_mode: str = _setting("", "permissions of UNIX sockets synack creates, in octal (660); empty: the umask's",
                             "listen", metavar="MODE")

    # tls
    ssl_certfile: str | None = _setting(None, "serve HTTPS with this certificate (PEM; the chain may follow it)",
                                        "tls", metavar="PATH")
    ssl_keyfile: str | None = _setting(None, "the certificate's private key (PEM), if not in --ssl-certfile",
                                       "tls", metavar="PATH")
    ssl_keyfile_password: str | None = _setting(None, "password of an encrypted --ssl-keyfile", "tls",
                                                metavar="PASSWORD")
    ssl_ca_certs: str | None = _setting(None, "CA certificates (PEM) that client certificates are checked against",
                                        "tls", metavar="PATH")
    ssl_cert_reqs: str = _setting("none", "client certificates (mutual TLS): not asked for, optional or required",
                                  "tls", choices=("none", "optional", "required"))
    ssl_ciphers: str | None = _setting(None, "OpenSSL cipher list for TLS 1.2 (default: Python's secure list)",
                                       "tls", metavar="CIPHERS")

    # proxy
    forwarded_allow_ips: str | None = _setting(
        None,
        "peers trusted to name the client, scheme and host (proxy headers, PROXY protocol):"
        " IP addresses and CIDR networks, comma-separated, or * (default: $FORWARDED_ALLOW_IPS,"
        " else 127.0.0.1,::1; a UNIX-socket peer is always trusted)",
        "proxy", metavar="ADDRESSES",
    )
    proxy_headers: str = _setting(
        "auto", "which headers a trusted peer names the client with (auto: Forwarded if present,"
        " else X-Forwarded-For/-Proto/-Host/-Port)", "proxy", choices=("auto", "x-forwarded", "forwarded", "off"),
    )
    proxy_protocol: str = _setting(
        "off", "expect a HAProxy PROXY protocol header (v1, v2 or either) on each connection from a trusted"
        " peer", "proxy", choices=("off", "v1", "v2", "auto"),
    )

    # The core's Limits and the driver's Timeouts: their fields are declared there.
    limits: Limits = _section(Limits)
    timeouts: Timeouts = _section(Timeouts)

    # server
    workers: int = _setting(1, "worker processes (more than 1 starts a pre-fork supervisor); auto: the CPUs"
                            " this process may use (its affinity and its cgroup's CPU quota)", "server",
                            minimum=1, short="-w", metavar="N|auto", auto=True)
    worker_timeout: float | None = _setting(
        None, "a worker whose event loop is stuck this many seconds (a blocking call in an async app) has"
        " its Python stack logged and is killed and replaced; runs a supervisor", "server", metavar="SECONDS",
    )
    max_requests: int = _setting(0, "a worker retires gracefully after this many requests, once its"
                                 " replacement serves (0: never); runs a supervisor", "server", metavar="N")
    max_requests_jitter: int = _setting(0, "add up to this many requests, at random per worker, to"
                                        " --max-requests (so workers do not retire together)", "server",
                                        metavar="N")
    max_worker_memory: int = _setting(0, "a worker whose memory (RSS) exceeds this many MiB is replaced the"
                                      " same way (0: no limit); runs a supervisor", "server", metavar="MIB")
    loop: str = _setting("auto", "event loop implementation", "server", choices=("auto", "asyncio", "uvloop"))
    max_connections: int = _setting(10_000, "most concurrent connections; further clients wait in the backlog",
                                    "server", minimum=1)
    server_header: str = _setting("synack", "value of the Server response header (empty to omit)", "server")
    shutdown_delay: float = _setting(
        0.0, "on SIGTERM, keep serving this many seconds before draining (for load balancers and"
        " Kubernetes endpoints that still route for a moment); a second SIGTERM ends the wait", "server",
        minimum=0,
    )

    pid: str | None = _setting(None, "write the server's process id to this file (removed at exit)", "server",
                               metavar="FILE")

    # websocket (ASGI apps; synack/apps/websocket.py)
    ws: str = _setting("auto", "WebSocket support for ASGI apps: auto (when the websockets package is installed),"
                       " websockets (require it) or none", "websocket", choices=("auto", "websockets", "none"))
    ws_max_size: int = _setting(16 * 1024 * 1024, "largest WebSocket message in bytes, after decompression"
                                " (→ close 1009)", "websocket", minimum=1)
    ws_ping_interval: float = _setting(20.0, "seconds between WebSocket keepalive pings (0: none)", "websocket",
                                       minimum=0)
    ws_ping_timeout: float = _setting(20.0, "seconds a WebSocket peer has to answer a ping (→ close 1011)",
                                      "websocket")
    ws_close_timeout: float = _setting(10.0, "seconds a WebSocket close handshake may take", "websocket")
    ws_per_message_deflate: bool = _setting(True, "negotiate WebSocket compression (permessage-deflate)"
                                            " when the client offers it", "websocket")

    # log
    access_log: str = _setting(
        "stderr", "where each request is logged (Combined Log Format and the duration):"
        " stderr, - for stdout, a FILE, or off (--no-access-log)", "log", metavar="DEST", negative="off",
    )
    access_log_format: str | None = _setting(
        None, "the access line's fields, named in braces: {client} {time} {request_line} {method} {path}"
        " {query} {status} {bytes} {duration_us} {referer} {user_agent} {request_id} {pid}"
        " {header:NAME} {response_header:NAME} (default: Combined Log Format and the duration)",
        "log", metavar="FORMAT",
    )
    access_log_queue: int = _setting(10_000, "access entries that may wait for a slow destination; more are"
                                     " dropped and counted (the event loop never waits on a write)", "log",
                                     minimum=1, metavar="N")
    log_format: str = _setting("text", "text lines, or one JSON object per line (both logs; the access"
                               " entry's fields, duration_us among them)", "log", choices=("text", "json"))
    log_config: str | None = _setting(None, "a logging.config.dictConfig file (JSON, or TOML if it ends in"
                                      " .toml), applied after synack's own setup", "log", metavar="FILE")
    request_id: str = _setting(
        "auto", "give the app each request's X-Request-ID (a trusted peer's, else a new one) in the ASGI"
        " scope's state and WSGI HTTP_X_REQUEST_ID; auto: when the access log records it (--log-format json"
        " or {request_id} in --access-log-format)", "log", choices=("auto", "on", "off"),
    )
    metrics: str | None = _setting(
        None, "serve GET /metrics (Prometheus text format) on a second listener at HOST:PORT; with"
        " --workers, the supervisor serves the sums of every worker's counters, those of exited workers"
        " included", "log",
        metavar="HOST:PORT",
    )
    log_level: str = _setting("info", "log level, for the error log and the access log (which logs at info)",
                              "log", choices=("critical", "error", "warning", "info", "debug"))

    def __post_init__(self) -> None:
        for setting in SETTINGS:
            setting.check(setting.read(self))
        self._check_together()

    def _check_together(self) -> None:
        """Rules that involve more than one setting, or more than a type and a range."""
        if self.port > 65535:
            raise ConfigError(f"--port must be between 0 and 65535, got {self.port}")
        if self.limits.max_request_line > self.limits.max_head_bytes:
            raise ConfigError("--max-request-line cannot exceed --max-head-bytes")
        if self.uds is not None and self.fd is not None:
            raise ConfigError("--uds and --fd cannot be used together")
        if self.bind:
            for address in self.bind:
                parse_address(address)
            moved = [_flag(name) for name in ("host", "port", "uds", "fd") if getattr(self, name) != _DEFAULTS[name]]
            if moved:
                raise ConfigError(f"--bind cannot be combined with {', '.join(moved)}: give every address as --bind")
        for text in self.mount:
            parse_mount(text)
        if not self.reload:
            given = [_flag(name) for name in ("reload_dir", "reload_include", "reload_exclude") if getattr(self, name)]
            if given:
                raise ConfigError(f"{', '.join(given)} needs --reload")
        if self.uds_mode and not _OCTAL_MODE.fullmatch(self.uds_mode):
            raise ConfigError(f"--uds-mode must be octal permissions like 660 or 0600, got {self.uds_mode!r}")
        if not self.access_log:
            raise ConfigError("--access-log must be stderr, -, off or a file path, got ''")
        if not self.index or "/" in self.index:
            raise ConfigError("--index must be a plain file name")
        self._check_tls()
        self._check_metrics()
        for name in ("cache_control", "server_header"):
            if any(ord(c) < 0x20 or ord(c) > 0x7E for c in getattr(self, name)):
                raise ConfigError(f"{_flag(name)} must be printable ASCII")

    def _check_metrics(self) -> None:
        if self.metrics is None:
            return
        if self.metrics.startswith(("unix:", "fd://")) or not _TCP_ADDRESS.fullmatch(self.metrics):
            raise ConfigError(f"--metrics must be HOST:PORT or [IPV6]:PORT, got {self.metrics!r}")
        parse_address(self.metrics)  # (the port's range)

    def _check_tls(self) -> None:
        if self.ssl_certfile is None:
            for name in ("ssl_keyfile", "ssl_keyfile_password", "ssl_ca_certs", "ssl_ciphers"):
                if getattr(self, name) is not None:
                    raise ConfigError(f"{_flag(name)} needs --ssl-certfile")
            if self.ssl_cert_reqs != "none":
                raise ConfigError("--ssl-cert-reqs needs --ssl-certfile")
        elif self.ssl_cert_reqs != "none" and self.ssl_ca_certs is None:
            raise ConfigError(f"--ssl-cert-reqs {self.ssl_cert_reqs} needs --ssl-ca-certs to check client certificates")

    @property
    def supervised(self) -> bool:
        """Whether a supervisor runs the workers: several of them, or one it watches or replaces."""
        return (self.workers > 1 or self.worker_timeout is not None or self.max_requests > 0
                or self.max_worker_memory > 0)

    @property
    def mounts(self) -> tuple[tuple[str, str], ...]:
        """``--mount`` as (URL prefix, directory) pairs."""
        return tuple(parse_mount(text) for text in self.mount)

    @property
    def request_id_for_apps(self) -> bool:
        """Whether apps get each request's id (``--request-id``; auto: when the access log has it)."""
        if self.request_id != "auto":
            return self.request_id == "on"
        logged = self.log_format == "json" or "{request_id}" in (self.access_log_format or "")
        return logged and self.access_log != "off"

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> Config:
        """Build from setting names, as on the command line with underscores.

        ``{"port": 8000, "max_body_bytes": 0, "head_timeout": 5}``; a whole ``limits`` or
        ``timeouts`` object may be given instead of its single settings.

        Raises:
            ConfigError: an unknown key (named), a wrong type or value, or a whole section
                given together with one of its single settings.
        """
        for key in mapping:
            if key not in _BY_NAME and key not in _SECTIONS:
                raise ConfigError(_unknown(key))
        values: dict[str, Any] = {}
        parts: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
        for key, value in mapping.items():
            if key in _SECTIONS:
                continue
            setting = _BY_NAME[key]
            value = setting.normal(value)
            if setting.none_value is not None and value == setting.none_value and type(value) is int:
                value = None
            if setting.section is None:
                values[setting.attribute] = value
            else:
                parts[setting.section][setting.attribute] = value
        for name, kind in _SECTIONS.items():
            values[name] = _build_section(name, kind, mapping.get(name), parts[name])
        return cls(**values)


def _build_section(name: str, kind: type, whole: Any, single: dict[str, Any]) -> Any:
    if whole is None:
        return kind(**single)
    if single:
        names = ", ".join(sorted(_flag(_SECTION_SETTING[name, attribute]) for attribute in single))
        raise ConfigError(f"{name!r} conflicts with {names}: give the whole {name} or single settings")
    if not isinstance(whole, kind):
        raise ConfigError(f"{name!r} must be a {kind.__name__}, got {type(whole).__name__}")
    return whole


def _unknown(key: object) -> str:
    message = f"unknown setting {key!r}"
    if isinstance(key, str):
        close = difflib.get_close_matches(key, [*_BY_NAME, *_SECTIONS], n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
    return message


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting, flat: where it lives in ``Config`` and how it is checked and shown."""

    #: The name in ``from_mapping`` (``head_timeout``); the flag is ``--head-timeout``.
    name: str
    #: ``None`` for a field of Config itself, else the Config field holding it ("limits").
    section: str | None
    #: The field name where it lives (``head`` in ``Timeouts``).
    attribute: str
    #: bool, int, float or str.
    kind: type
    #: Whether ``None`` is a valid value.
    optional: bool
    default: Any
    help: str
    group: str
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    positional: bool = False
    #: Smallest whole number allowed (ints only).
    minimum: int | None = None
    #: The number that stands for ``None`` (max_body_bytes: 0 means no limit).
    none_value: int | None = None
    #: A one-letter alias of the flag (``-w``).
    short: str | None = None
    #: For a string setting that can be turned off: the value ``--no-<flag>`` (or false) gives.
    negative: str | None = None
    #: A whole number that may be given as ``auto`` (the CPUs available: ``available_cpus()``).
    auto: bool = False

    @property
    def flag(self) -> str:
        return _flag(self.name)

    def normal(self, value: Any) -> Any:
        """``value`` in this setting's own type where another spelling is accepted: a list
        for a repeatable setting, true/false for a string setting that can be turned off."""
        if self.kind is tuple and isinstance(value, list):
            return tuple(value)
        if self.auto and isinstance(value, str) and value.strip().lower() == "auto":
            return available_cpus()
        if self.negative is not None and isinstance(value, bool):
            return self.default if value else self.negative
        return value

    def read(self, config: Config) -> Any:
        owner = config if self.section is None else getattr(config, self.section)
        return getattr(owner, self.attribute)

    def check(self, value: Any) -> None:
        """Raises ConfigError unless ``value`` has this setting's type and range."""
        if value is None and self.optional:
            return
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ConfigError(f"{self.flag} must be true or false, got {value!r}")
        elif self.kind is int:
            if not isinstance(value, int) or isinstance(value, bool) or value < (self.minimum or 0):
                raise ConfigError(f"{self.flag} must be a whole number >= {self.minimum or 0}, got {value!r}")
        elif self.kind is tuple:
            if not isinstance(value, tuple) or not all(isinstance(item, str) for item in value):
                raise ConfigError(f"{self.flag} must be a list of strings, got {value!r}")
        elif self.kind is float:
            # Seconds: > 0, or >= ``minimum`` when one is given (0 can mean "never").
            low = self.minimum
            if (not isinstance(value, (int, float)) or isinstance(value, bool)
                    or not math.isfinite(value) or (value <= 0 if low is None else value < low)):
                bound = "> 0" if low is None else f">= {low}"
                raise ConfigError(f"{self.flag} must be a number of seconds {bound}, got {value!r}")
        elif not isinstance(value, str):
            raise ConfigError(f"{self.flag} must be a string, got {value!r}")
        if self.choices and value not in self.choices:
            raise ConfigError(f"{self.flag} must be one of {', '.join(self.choices)}, got {value!r}")


def _kind(annotation: Any) -> tuple[type, bool]:
    """``int | None`` → (int, True); ``float`` → (float, False); ``tuple[str, ...]`` → (tuple, False)."""
    if typing.get_origin(annotation) is tuple:
        return tuple, False
    if isinstance(annotation, types.UnionType):
        kinds = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        assert len(kinds) == 1, annotation
        return kinds[0], True
    assert isinstance(annotation, type), annotation
    return annotation, False


def _settings_of(owner: type, section: str | None) -> list[Setting]:
    hints = typing.get_type_hints(owner)
    settings: list[Setting] = []
    for item in dataclasses.fields(owner):
        meta = item.metadata
        if "section" in meta:
            settings.extend(_settings_of(meta["section"], item.name))
            continue
        kind, optional = _kind(hints[item.name])
        settings.append(Setting(
            name=meta["flag"][2:].replace("-", "_") if meta.get("flag") else item.name,
            section=section,
            attribute=item.name,
            kind=kind,
            optional=optional,
            default=item.default,
            help=meta["help"],
            group=meta.get("group", section or ""),
            choices=meta.get("choices"),
            metavar=meta.get("metavar"),
            positional=meta.get("positional", False),
            minimum=meta.get("minimum"),
            none_value=meta.get("none_value"),
            short=meta.get("short"),
            negative=meta.get("negative"),
            auto=meta.get("auto", False),
        ))
    return settings


#: Every setting, in the order ``--help`` shows them.
SETTINGS: tuple[Setting, ...] = tuple(_settings_of(Config, None))
_BY_NAME = {setting.name: setting for setting in SETTINGS}
_SECTIONS: dict[str, type] = {
    item.name: item.metadata["section"] for item in dataclasses.fields(Config) if "section" in item.metadata
}
_SECTION_SETTING = {(s.section, s.attribute): s.name for s in SETTINGS if s.section is not None}
assert len(_BY_NAME) == len(SETTINGS), "two settings share a name"
_DEFAULTS = {setting.name: setting.default for setting in SETTINGS}
_OCTAL_MODE = re.compile(r"0?[0-7]{3}")


@dataclass(frozen=True, slots=True)
class Address:
    """One ``--bind`` address: ``kind`` is "tcp" (``host``, ``port``), "unix" (``path``) or
    "fd" (``fd``)."""

    kind: str
    host: str = ""
    port: int = 0
    path: str = ""
    fd: int = -1


_TCP_ADDRESS = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]]*)):(?P<port>[0-9]{1,5})")


def parse_address(text: str) -> Address:
    """``HOST:PORT``, ``[IPV6]:PORT``, ``unix:PATH`` or ``fd://N`` as an ``Address``.

    Raises:
        ConfigError: ``text`` is none of these (the message shows the forms).
    """
    if text.startswith("unix:"):
        if len(text) > len("unix:"):
            return Address("unix", path=text[len("unix:"):])
    elif text.startswith("fd://"):
        number = text[len("fd://"):]
        if number.isdigit() and number.isascii():
            return Address("fd", fd=int(number))
    else:
        match = _TCP_ADDRESS.fullmatch(text)
        if match and int(match["port"]) <= 65535:
            host = match["v6"] if match["v6"] is not None else match["host"]
            return Address("tcp", host=host or "0.0.0.0", port=int(match["port"]))
    raise ConfigError(
        f"--bind {text!r} is not an address: use HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N"
        " (ports 0-65535)"
    )


def parse_mount(text: str) -> tuple[str, str]:
    """``/assets=./public`` as (``/assets``, ``./public``).

    Raises:
        ConfigError: not PREFIX=DIR with PREFIX a URL path other than ``/``.
    """
    prefix, equals, directory = text.partition("=")
    prefix = prefix.rstrip("/")
    if not equals or not directory or not prefix.startswith("/") or any(
            ord(char) <= 0x20 or ord(char) >= 0x7F or char in "?#" for char in prefix):
        raise ConfigError(f"--mount {text!r}: use PREFIX=DIR, PREFIX a URL path such as /static"
                          " (not /: give the directory as the app instead)")
    return prefix, directory


def available_cpus(cgroup_root: str = "/sys/fs/cgroup", own_cgroups: str = "/proc/self/cgroup") -> int:
    """The CPUs this process may use: its affinity (``sched_getaffinity``), capped by the CPU
    quota of its cgroup and their ancestors (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us`` /
    ``cpu.cfs_period_us``), rounded up; at least 1. (``--workers auto`` in a container.)"""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    quota = _cgroup_quota(cgroup_root, own_cgroups)
    if quota is not None:
        count = min(count, math.ceil(quota))
    return max(1, count)


def _cgroup_quota(root: str, own_cgroups: str) -> float | None:
    """The smallest CPU quota (in CPUs) on this process's cgroup path, or None for no limit."""
    try:
        with open(own_cgroups, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except OSError:
        return None
    limits: list[float] = []
    for line in lines:
        _, controllers, path = line.split(":", 2) if line.count(":") >= 2 else ("", "", "")
        if controllers == "":  # cgroup v2: the unified hierarchy
            limits += _quotas(os.path.join(root, "unified") if os.path.isdir(os.path.join(root, "unified"))
                              else root, path, _v2_quota)
        elif "cpu" in controllers.split(","):
            for directory in (os.path.join(root, controllers), os.path.join(root, "cpu")):
                if os.path.isdir(directory):
                    limits += _quotas(directory, path, _v1_quota)
                    break
    return min(limits) if limits else None


def _quotas(mount: str, path: str, read: Any) -> list[float]:
    """The quota of each cgroup from ``path`` up to the root of ``mount`` that has one."""
    found: list[float] = []
    parts = [part for part in path.split("/") if part]
    for depth in range(len(parts), -1, -1):
        quota = read(os.path.join(mount, *parts[:depth]))
        if quota is not None:
            found.append(quota)
    return found


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as file:
            return file.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _v2_quota(directory: str) -> float | None:
    text = _read(os.path.join(directory, "cpu.max"))  # "max 100000" or "150000 100000"
    if text is None:
        return None
    quota, _, period = text.partition(" ")
    try:
        return int(quota) / int(period or "100000") if quota != "max" else None
    except (ValueError, ZeroDivisionError):
        return None


def _v1_quota(directory: str) -> float | None:
    quota, period = _read(os.path.join(directory, "cpu.cfs_quota_us")), _read(os.path.join(directory, "cpu.cfs_period_us"))
    try:
        if quota is None or period is None or int(quota) <= 0:
            return None  # -1: no limit
        return int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None
