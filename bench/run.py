#!/usr/bin/env python3
"""synack benchmark harness: synack side by side with its peers, one command.

    python bench/run.py                              # whole matrix, defaults
    python bench/run.py --only asgi_hello --servers synack,uvicorn-httptools
    python bench/run.py --duration 5 --rounds 1      # quick look
    python bench/run.py --list                       # workloads and servers

Every server runs as one worker with access logs off (``--access-log``: on, as most servers
have them by default, written to the server's log file), bound to 127.0.0.1 on a free port,
pinned to CPU 0 (``taskset -c 0``); wrk is pinned to CPU 1.  Each measurement starts the
server afresh, waits until it answers 200, checks one response's body, warms it up with
wrk for 2 s, checks that the machine is quiet, then runs ``wrk --latency``.  Rounds are
interleaved (round 1 of every server, then round 2, ...) so slow drift of the machine hits
all servers alike; the table shows the median requests/s and median p99 latency.

This is a benchmark, not a test: it asserts nothing and never runs under pytest.

Results: a markdown table on stdout, ``bench/results/latest.{json,md}`` (ignored by git),
and the committed ``bench/RESULTS.md`` (one section per workload and wrk setting, merged
into what is there; ``--results-md skip`` leaves it alone).

The harness only stops processes it started, by PID: SIGTERM, then SIGKILL after 5 s.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import http.client
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS_DIR = BENCH / "results"
RESULTS_MD = BENCH / "RESULTS.md"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PY = sys.executable
#: The in-place compiled build that ``synack-compiled`` runs (``bash bench/build_compiled.sh``);
#: ``--compiled-tree`` points elsewhere.
COMPILED_TREE = Path("/tmp/synack-compiled")

DEFAULTS = {"duration": 10, "connections": 64, "threads": 1, "rounds": 3}

# --------------------------------------------------------------------------------------
# Workloads
# --------------------------------------------------------------------------------------

HELLO = b"Hello, world!"
POST_SIZE = 64 * 1024


@dataclasses.dataclass(frozen=True)
class Workload:
    name: str
    kind: str  # "asgi", "wsgi" or "static"
    title: str
    path: str
    app: str | None = None  # module:attr for asgi/wsgi
    lua: str | None = None  # wrk script, relative to bench/
    method: str = "GET"
    body_size: int = 0  # request body of the validation request
    expect_body: bytes | None = None  # exact response body
    expect_size: int | None = None  # response body size (static files)
    default: bool = True  # part of the default matrix


WORKLOADS: dict[str, Workload] = {w.name: w for w in [
    Workload("asgi_hello", "asgi", 'GET / → 200 "Hello, world!" (raw ASGI app)', "/",
             app="bench.apps.hello_asgi:app", expect_body=HELLO),
    Workload("asgi_browser", "asgi", 'GET / with 8 browser header lines → 200 "Hello, world!" (raw ASGI app)',
             "/", app="bench.apps.hello_asgi:app", lua="browser_headers.lua", expect_body=HELLO, default=False),
    Workload("wsgi_hello", "wsgi", 'GET / → 200 "Hello, world!" (raw WSGI app)', "/",
             app="bench.apps.hello_wsgi:app", expect_body=HELLO),
    Workload("post_64k", "asgi", "POST / with a 64 KiB body → 200 with its length (ASGI echo)",
             "/", app="bench.apps.echo_asgi:app", lua="post_64k.lua", method="POST",
             body_size=POST_SIZE, expect_body=str(POST_SIZE).encode()),
    Workload("post_64k_wsgi", "wsgi", "POST / with a 64 KiB body → 200 with its length (WSGI echo)",
             "/", app="bench.apps.echo_wsgi:app", lua="post_64k.lua", method="POST",
             body_size=POST_SIZE, expect_body=str(POST_SIZE).encode(), default=False),
    Workload("static_1k", "static", "GET a 1 KiB static file", "/1k.bin", expect_size=1024),
    Workload("static_1m", "static", "GET a 1 MiB static file", "/1m.bin", expect_size=1024 * 1024),
]}
STATIC_FILES = {"1k.bin": 1024, "1m.bin": 1024 * 1024}

# --------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class Launch:
    argv: list[str]
    setup: Callable[[], None] | None = None  # e.g. write nginx.conf
    note: str = ""
    path_prefix: str = ""  # URL prefix the workload's path lives under (granian: /static)
    env: dict[str, str] = dataclasses.field(default_factory=dict)  # added to server_env()


@dataclasses.dataclass(frozen=True)
class Ctx:
    port: int
    workload: Workload
    static_dir: Path
    workdir: Path  # private scratch dir for this server start
    #: ``--access-log``: every server writes its access log (to its log file) as it would
    #: by default, instead of having it turned off.
    access_log: bool = False


@dataclasses.dataclass(frozen=True)
class Server:
    key: str
    label: str
    kinds: frozenset[str]
    needs: tuple[str, ...]  # python modules ("mod") or executables ("bin:name")
    launch: Callable[[Ctx], Launch]
    note: str = ""


def _target(ctx: Ctx) -> str:
    return ctx.workload.app if ctx.workload.app else str(ctx.static_dir)


def _synack(loop: str | None) -> Callable[[Ctx], Launch]:
    def launch(ctx: Ctx) -> Launch:
        argv = [PY, "-m", "synack", _target(ctx), "--access-log" if ctx.access_log else "--no-access-log",
                *(["-"] if ctx.access_log else []), "--host", "127.0.0.1", "--port", str(ctx.port)]
        if loop:
            argv += ["--loop", loop]
        return Launch(argv)
    return launch


def _synack_compiled(ctx: Ctx) -> Launch:
    # The compiled tree first on the path, and (PYTHONSAFEPATH) not the working directory,
    # which is this checkout and would import the pure modules instead.
    launch = _synack(None)(ctx)
    launch.env.update(PYTHONPATH=os.pathsep.join([str(COMPILED_TREE), str(ROOT)]), PYTHONSAFEPATH="1")
    return launch


def _compiled_missing() -> str | None:
    protocol = COMPILED_TREE / "synack" / "server" / f"protocol{sysconfig.get_config_var('EXT_SUFFIX')}"
    if not protocol.exists():
        return f"no compiled build for this Python in {COMPILED_TREE} (bash bench/build_compiled.sh)"
    return None


def _uvicorn(http: str, loop: str, app: str | None = None) -> Callable[[Ctx], Launch]:
    def launch(ctx: Ctx) -> Launch:
        logs = ["--log-level", "info"] if ctx.access_log else ["--no-access-log", "--log-level", "warning"]
        return Launch([PY, "-m", "uvicorn", app or _target(ctx), "--host", "127.0.0.1",
                       "--port", str(ctx.port), "--http", http, "--loop", loop, *logs])
    return launch


def _hypercorn(ctx: Ctx) -> Launch:
    # No --access-logfile: hypercorn writes no access log by default.
    logs = ["--access-logfile", "-"] if ctx.access_log else []
    return Launch([PY, "-m", "hypercorn", "--bind", f"127.0.0.1:{ctx.port}", "--workers", "1", *logs,
                   _target(ctx)])


def _granian_argv(ctx: Ctx, interface: str) -> list[str]:
    logs = ["--access-log", "--log-level", "info"] if ctx.access_log else ["--no-access-log", "--log-level", "warning"]
    return [PY, "-m", "granian", "--interface", interface, "--host", "127.0.0.1",
            "--port", str(ctx.port), "--workers", "1", "--http", "1", *logs]


def _granian(ctx: Ctx) -> Launch:
    return Launch(_granian_argv(ctx, ctx.workload.kind) + [_target(ctx)])


GRANIAN_STATIC_ROUTE = "/static"
STATIC_DIR_ENV = "SYNACK_BENCH_STATIC_DIR"  # read by bench/apps/static_starlette.py


def _granian_static(ctx: Ctx) -> Launch:
    # granian serves files (from Rust) only next to an app: the hello app answers every
    # path outside the static route, so the workload's path gets the route as a prefix.
    return Launch(_granian_argv(ctx, "asgi") + [
        "--static-path-route", GRANIAN_STATIC_ROUTE, "--static-path-mount", str(ctx.static_dir),
        "bench.apps.hello_asgi:app"], path_prefix=GRANIAN_STATIC_ROUTE)


def _uvicorn_static(ctx: Ctx) -> Launch:
    # Starlette's StaticFiles as the app; it reads its directory from the environment.
    launch = _uvicorn("httptools", "uvloop", "bench.apps.static_starlette:app")(ctx)
    launch.env[STATIC_DIR_ENV] = str(ctx.static_dir)
    return launch


def _gunicorn(worker: str) -> Callable[[Ctx], Launch]:
    def launch(ctx: Ctx) -> Launch:
        argv = [PY, "-m", "gunicorn", "--workers", "1", "--worker-class", worker,
                "--bind", f"127.0.0.1:{ctx.port}", "--log-level", "warning"]
        if worker == "gthread":
            argv += ["--threads", "4"]
        if ctx.access_log:
            argv += ["--access-logfile", "-"]
        return Launch(argv + [_target(ctx)])  # (gunicorn's access log is off by default)
    return launch


def _waitress(ctx: Ctx) -> Launch:
    # waitress logs no requests; default 4 threads.
    if ctx.access_log:
        raise Unavailable("writes no access log (it has no option for one)")
    return Launch([PY, "-m", "waitress", f"--listen=127.0.0.1:{ctx.port}", _target(ctx)])


NGINX_CONF = """\
worker_processes 1;
daemon off;
master_process on;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log {access_log};
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    client_body_temp_path {work}/client_body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


def _nginx_bin() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)


def _nginx(ctx: Ctx) -> Launch:
    conf = ctx.workdir / "nginx.conf"

    def setup() -> None:
        conf.write_text(NGINX_CONF.format(work=ctx.workdir, port=ctx.port, root=ctx.static_dir,
                                          access_log=ctx.workdir / "access.log" if ctx.access_log else "off"))

    return Launch([_nginx_bin() or "nginx", "-p", str(ctx.workdir), "-c", str(conf),
                   "-e", str(ctx.workdir / "error.log")], setup=setup)


def _http_server(ctx: Ctx) -> Launch:
    return Launch([PY, "-m", "http.server", str(ctx.port), "--bind", "127.0.0.1",
                   "--directory", str(ctx.static_dir)])


ASGI, WSGI, STATIC = frozenset({"asgi"}), frozenset({"wsgi"}), frozenset({"static"})
SERVERS: list[Server] = [
    Server("synack-uvloop", "synack (uvloop)", ASGI, ("synack", "uvloop"), _synack("uvloop")),
    Server("synack-asyncio", "synack (asyncio)", ASGI, ("synack",), _synack("asyncio")),
    Server("synack", "synack", WSGI | STATIC, ("synack",), _synack(None),
           note="default --loop (auto: uvloop when installed)"),
    Server("synack-compiled", "synack (compiled: mypyc)", ASGI | WSGI | STATIC, ("compiled",),
           _synack_compiled, note="default --loop; the tree of bench/build_compiled.sh"),
    Server("uvicorn-httptools", "uvicorn (httptools+uvloop)", ASGI,
           ("uvicorn", "httptools", "uvloop"), _uvicorn("httptools", "uvloop")),
    Server("uvicorn-h11", "uvicorn (h11+asyncio)", ASGI, ("uvicorn", "h11"),
           _uvicorn("h11", "asyncio")),
    Server("hypercorn", "hypercorn (asyncio)", ASGI, ("hypercorn",), _hypercorn),
    Server("granian", "granian", ASGI | WSGI, ("granian",), _granian),
    Server("granian-static", "granian (static route)", STATIC, ("granian",), _granian_static,
           note=f"--static-path-mount next to the hello ASGI app; files under "
                f"{GRANIAN_STATIC_ROUTE}/, served by granian's Rust side"),
    Server("uvicorn-starlette", "uvicorn (httptools+uvloop) + Starlette StaticFiles", STATIC,
           ("uvicorn", "httptools", "uvloop", "starlette"), _uvicorn_static,
           note="bench/apps/static_starlette.py"),
    Server("gunicorn-sync", "gunicorn (sync)", WSGI, ("gunicorn",), _gunicorn("sync"),
           note="sync worker closes every connection (no keep-alive)"),
    Server("gunicorn-gthread", "gunicorn (gthread, 4 threads)", WSGI, ("gunicorn",),
           _gunicorn("gthread")),
    Server("waitress", "waitress", WSGI, ("waitress",), _waitress),
    Server("nginx", "nginx", STATIC, ("bin:nginx",), _nginx),
    Server("http.server", "python -m http.server", STATIC, (), _http_server,
           note="HTTP/1.0, a connection per request; logs every request (no flag to stop it)"),
]
def with_args(server: Server, extra: list[str], key: str, label: str) -> Server:
    """A variant of `server` under a new key/label whose command line also has `extra`
    (e.g. ``--workers 2``): appended, or before the app for granian, which wants it last."""
    def launch(ctx: Ctx) -> Launch:
        base = server.launch(ctx)
        argv = list(base.argv)
        if server.key.startswith("granian"):
            argv[-1:-1] = extra
        else:
            argv += extra
        return dataclasses.replace(base, argv=argv)
    return dataclasses.replace(server, key=key, label=label, launch=launch)


def server_by_key(key: str) -> Server:
    found = [s for s in SERVERS if s.key == key]
    if not found:
        raise KeyError(f"no server {key!r}; choices: {', '.join(s.key for s in SERVERS)}")
    return found[0]


SYNACK_REF = ("synack-uvloop", "synack")  # first present is the "vs synack" reference
UVICORN_REF = ("uvicorn-httptools", "uvicorn-starlette")  # likewise for "vs uvicorn"


def missing_reason(server: Server) -> str | None:
    for need in server.needs:
        if need == "compiled":
            if reason := _compiled_missing():
                return reason
        elif need.startswith("bin:"):
            name = need[4:]
            if (name == "nginx" and _nginx_bin() is None) or (name != "nginx" and not shutil.which(name)):
                return f"{name} not installed (bash bench/install.sh)"
        elif importlib.util.find_spec(need) is None:
            return f"python package {need!r} not installed (bash bench/install.sh)"
    return None


# --------------------------------------------------------------------------------------
# /proc helpers: CPU accounting, process trees
# --------------------------------------------------------------------------------------


def read_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the comm field (index 0 = state), or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()


def proc_jiffies(pid: int) -> int:
    f = read_stat(pid)
    if f is None:
        return 0
    # utime, stime, cutime, cstime (cu/cs: reaped children, e.g. a restarted worker)
    return int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])


def descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, starttime) of every live descendant of pid."""
    children: dict[int, list[tuple[int, str]]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            f = read_stat(int(entry))
            if f is not None:
                children.setdefault(int(f[1]), []).append((int(entry), f[19]))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def tree_jiffies(pid: int) -> int:
    return sum(tree_jiffies_by_pid(pid).values())


def tree_jiffies_by_pid(pid: int) -> dict[int, int]:
    """CPU jiffies of pid and of each live descendant (a master and its workers)."""
    return {p: proc_jiffies(p) for p in [pid] + [p for p, _ in descendants(pid)]}


def cpu_times() -> tuple[float, int]:
    """(monotonic time, busy jiffies of all CPUs).

    Busy = user+nice+system+irq+softirq+steal (idle and iowait are not busy); steal
    counts because a hypervisor taking our CPU is noise too.
    """
    with open("/proc/stat") as f:
        parts = f.readline().split()
    v = [int(x) for x in parts[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = v
    return time.monotonic(), user + nice + system + irq + softirq + steal


def self_jiffies() -> int:
    t = os.times()
    return round((t.user + t.system) * CLK_TCK)


def loadavg() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return -1.0


# --------------------------------------------------------------------------------------
# Processes: started here, stopped here, by PID
# --------------------------------------------------------------------------------------

LIVE: dict[int, "Proc"] = {}
TASKSET = shutil.which("taskset")


class Proc:
    def __init__(self, argv: list[str], log: Path, cpu: int | None, env: dict[str, str]):
        self.argv = argv
        self.log_path = log
        cmd = ([TASKSET, "-c", str(cpu)] if TASKSET and cpu is not None else []) + argv
        with open(log, "wb") as out:
            # Own session: a Ctrl-C in the terminal reaches the harness only, which then
            # stops this process itself.  taskset execs, so the PID is the server's.
            self.popen = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, cwd=ROOT, env=env,
                                          start_new_session=True)
        self.pid = self.popen.pid
        LIVE[self.pid] = self

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait_exit_unreaped(self, timeout: float) -> bool:
        """Wait for exit without reaping (so /proc/PID/stat still has its CPU times)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return True
            if info is not None:
                return True
            time.sleep(0.05)
        return False

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text[-lines:])

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM, SIGKILL after `grace` s; then the same for any descendant left behind."""
        kids = descendants(self.pid) if self.alive() else []
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if not self.alive():
                break
            try:
                os.kill(self.pid, sig)
                self.popen.wait(timeout=grace)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        # Workers (gunicorn, granian, nginx) normally exit with their master.  Any that
        # did not are still ours only if PID *and* start time match what was recorded.
        def leftover() -> list[tuple[int, str]]:
            return [(p, st) for p, st in kids
                    if (s := read_stat(p)) is not None and s[19] == st and s[0] != "Z"]

        deadline = time.monotonic() + grace
        while leftover() and time.monotonic() < deadline:
            time.sleep(0.1)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            left = leftover()
            if not left:
                break
            for p, _ in left:
                try:
                    os.kill(p, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + grace
            while leftover() and time.monotonic() < deadline:
                time.sleep(0.1)
        LIVE.pop(self.pid, None)


def stop_all() -> None:
    for proc in list(LIVE.values()):
        proc.stop()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request(port: int, method: str, path: str, body: bytes | None = None,
            timeout: float = 2.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Connection": "close"}
        if body is not None:
            headers["Content-Type"] = "application/octet-stream"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# --------------------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------------------

TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def parse_ms(text: str) -> float:
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text)
    if not m:
        raise ValueError(f"cannot parse wrk time {text!r}")
    return float(m.group(1)) * TIME_UNITS[m.group(2)]


def parse_wrk(out: str) -> dict[str, Any]:
    rps = re.search(r"^Requests/sec:\s+([0-9.]+)", out, re.M)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    total = re.search(r"^\s+(\d+) requests in ([0-9.]+\w+)", out, re.M)
    if not (rps and p50 and p99 and total):
        raise ValueError("wrk output not understood: " + " | ".join(out.strip().splitlines()[-4:]))
    result: dict[str, Any] = {
        "rps": float(rps.group(1)),
        "p50_ms": parse_ms(p50.group(1)),
        "p99_ms": parse_ms(p99.group(1)),
        "requests": int(total.group(1)),
        "socket_errors": {},
        "non_2xx_3xx": 0,
    }
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if sock:
        result["socket_errors"] = {k: int(v) for k, v in zip(
            ("connect", "read", "write", "timeout"), sock.groups()) if int(v)}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        result["non_2xx_3xx"] = int(non2xx.group(1))
    return result


def wrk_argv(args: argparse.Namespace, w: Workload, port: int, path: str,
             duration: int) -> list[str]:
    argv = [shutil.which("wrk") or "wrk", f"-t{args.threads}", f"-c{args.connections}",
            f"-d{duration}s", "--latency"]
    if w.lua:
        argv += ["-s", str(BENCH / w.lua)]
    return argv + [f"http://127.0.0.1:{port}{path}"]


def run_wrk(args: argparse.Namespace, w: Workload, port: int, path: str, duration: int,
            log: Path, server: Proc | None = None) -> tuple[str, dict[str, float]]:
    """Run wrk to completion (bounded); returns its output and CPU use in cores: server
    (all its processes), server_busiest (its busiest process), wrk, other."""
    env = dict(os.environ)
    t0, busy0 = cpu_times()
    by_pid0 = tree_jiffies_by_pid(server.pid) if server else {}
    self0 = self_jiffies()
    proc = Proc(wrk_argv(args, w, port, path, duration), log, args.client_cpu, env)
    try:
        if not proc.wait_exit_unreaped(duration + 30):
            raise RuntimeError(f"wrk did not finish within {duration + 30:g} s")
        wrk_cpu = proc_jiffies(proc.pid)
        t1, busy1 = cpu_times()
        by_pid1 = tree_jiffies_by_pid(server.pid) if server else {}
        self1 = self_jiffies()
    finally:
        proc.stop()
    out = log.read_text(errors="replace")
    if proc.popen.returncode not in (0, None):
        raise RuntimeError(f"wrk exited with {proc.popen.returncode}: {proc.log_tail()}")
    span = max(t1 - t0, 1e-3) * CLK_TCK
    srv0, srv1 = sum(by_pid0.values()), sum(by_pid1.values())
    per_proc = [j - by_pid0.get(p, 0) for p, j in by_pid1.items()]
    cpu = {
        "server": (srv1 - srv0) / span,
        "server_busiest": max(per_proc, default=0) / span,
        "wrk": wrk_cpu / span,
        "other": max(0.0, (busy1 - busy0) - (srv1 - srv0) - wrk_cpu - (self1 - self0)) / span,
    }
    return out, cpu


# --------------------------------------------------------------------------------------
# Quiet check
# --------------------------------------------------------------------------------------


def other_cpu(window: float, ours: list[Proc]) -> float:
    """Cores used over `window` s by processes other than this harness and `ours`."""
    t0, busy0 = cpu_times()
    mine0 = self_jiffies() + sum(tree_jiffies(p.pid) for p in ours)
    time.sleep(window)
    t1, busy1 = cpu_times()
    mine1 = self_jiffies() + sum(tree_jiffies(p.pid) for p in ours)
    return max(0.0, (busy1 - busy0) - (mine1 - mine0)) / ((t1 - t0) * CLK_TCK)


def wait_quiet(args: argparse.Namespace, ours: list[Proc]) -> dict[str, Any]:
    """Sample 1 s windows until other processes use < threshold cores, for at most
    args.quiet_wait s.  The 1-min load average is recorded with it; it is not the gate
    because it trails by a minute and still carries this harness's own previous round."""
    start = time.monotonic()
    samples = []
    while True:
        busy = other_cpu(1.0, ours)
        samples.append(round(busy, 3))
        if busy < args.quiet_threshold:
            return {"noisy": False, "other_cores": busy, "load1": loadavg(),
                    "waited_s": round(time.monotonic() - start, 1)}
        if time.monotonic() - start >= args.quiet_wait:
            return {"noisy": True, "other_cores": busy, "load1": loadavg(),
                    "waited_s": round(time.monotonic() - start, 1), "samples": samples}
        if len(samples) == 1:
            log(f"    machine busy: other processes use {busy:.2f} cores; waiting up to "
                f"{args.quiet_wait:g} s")


# --------------------------------------------------------------------------------------
# One measurement
# --------------------------------------------------------------------------------------


class Unavailable(Exception):
    """The server cannot run this workload here (not installed, exits, wrong answer)."""


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("PYTHONDEVMODE", None)
    env.pop("PYTHONASYNCIODEBUG", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def start_server(args: argparse.Namespace, server: Server, w: Workload, static_dir: Path,
                 scratch: Path, tag: str) -> tuple[Proc, int, str]:
    """Start `server` for `w`, wait until it answers, check one answer.

    Returns the process, its port and the URL path of the workload on that server.
    """
    workdir = scratch / f"{server.key}-{w.name}-{tag}"
    workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o755)
    port = free_port()
    launch = server.launch(Ctx(port, w, static_dir, workdir, args.access_log))
    if launch.setup:
        launch.setup()
    path = launch.path_prefix + w.path
    proc = Proc(launch.argv, workdir / "server.log", args.server_cpu,
                server_env() | launch.env)
    deadline = time.monotonic() + args.start_timeout
    last = "no answer"
    while True:
        if not proc.alive():
            code = proc.popen.returncode
            tail = proc.log_tail()
            proc.stop()
            raise Unavailable(f"exited with status {code} at start: {tail or '(no output)'}")
        try:
            status, _ = request(port, "GET", path, timeout=1.0)
            if status == 200:
                break
            last = f"GET {path} answered {status}"
        except (OSError, http.client.HTTPException) as e:
            last = f"{type(e).__name__}: {e}"
        if time.monotonic() > deadline:
            tail = proc.log_tail()
            proc.stop()
            raise Unavailable(f"not ready within {args.start_timeout:g} s ({last}) {tail}".strip())
        time.sleep(0.1)
    # One real request, its answer checked, before any load.
    try:
        body = b"x" * w.body_size if w.method == "POST" else None
        status, got = request(port, w.method, path, body=body, timeout=5.0)
    except (OSError, http.client.HTTPException) as e:
        proc.stop()
        raise Unavailable(f"validation request failed: {type(e).__name__}: {e}") from None
    wrong = None
    if status != 200:
        wrong = f"status {status}"
    elif w.expect_body is not None and got != w.expect_body:
        wrong = f"body {got[:40]!r}, expected {w.expect_body!r}"
    elif w.expect_size is not None and len(got) != w.expect_size:
        wrong = f"{len(got)} body bytes, expected {w.expect_size}"
    if wrong:
        proc.stop()
        raise Unavailable(f"wrong answer to {w.method} {path}: {wrong}")
    return proc, port, path


def measure_into(row: dict[str, Any], head: str,
                 measure_round: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
    """Run one measurement for a table row and append it (or its error) to ``row["rounds"]``.
    A server that turns out to be unavailable gets ``row["reason"]`` (later rounds skip it).
    Returns the measurement, or None when there is none to report."""
    try:
        r = measure_round()
    except Unavailable as e:
        row["reason"] = str(e)  # deterministic: skip later rounds
        log(f"{head} n/a: {e}")
        return None
    except RuntimeError as e:
        row["rounds"].append({"error": str(e)})
        log(f"{head} failed: {e}")
        return None
    row["rounds"].append(r)
    return r


def measure(args: argparse.Namespace, server: Server, w: Workload, static_dir: Path,
            scratch: Path, round_no: int) -> dict[str, Any]:
    tag = f"r{round_no}"
    proc, port, path = start_server(args, server, w, static_dir, scratch, tag)
    try:
        workdir = proc.log_path.parent
        if args.warmup > 0:
            run_wrk(args, w, port, path, args.warmup, workdir / "warmup.txt")
            if not proc.alive():
                raise Unavailable(f"died during warm-up: {proc.log_tail()}")
        quiet = wait_quiet(args, [proc])
        out, cpu = run_wrk(args, w, port, path, args.duration, workdir / "wrk.txt", server=proc)
        if not proc.alive():
            raise Unavailable(f"died under load: {proc.log_tail()}")
        try:
            result = parse_wrk(out)
        except ValueError as e:
            raise Unavailable(str(e)) from None
        if result["requests"] == 0:
            raise Unavailable("no request completed under load")
        result["cpu"] = {k: round(v, 3) for k, v in cpu.items()}
        result["quiet"] = quiet
        result["noisy"] = quiet["noisy"] or cpu["other"] >= args.quiet_threshold
        result["wrk_output"] = out
        return result
    finally:
        proc.stop()


# --------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def fmt_rps(v: float) -> str:
    return f"{v:,.0f}"


def fmt_ms(v: float) -> str:
    return f"{v:.2f} ms" if v < 10 else f"{v:.1f} ms"


def summarize(rows: list[dict[str, Any]]) -> None:
    """Medians per row, then ratios to the synack and uvicorn reference rows."""
    for row in rows:
        ok = [r for r in row["rounds"] if "rps" in r]
        if ok:
            rps = [r["rps"] for r in ok]
            row["median_rps"] = statistics.median(rps)
            row["median_p99_ms"] = statistics.median(r["p99_ms"] for r in ok)
            row["spread_pct"] = (100 * (max(rps) - min(rps)) / row["median_rps"]
                                 if len(rps) > 1 and row["median_rps"] else None)
            row["server_cpu"] = statistics.median(r["cpu"]["server"] for r in ok)
            row["wrk_cpu"] = statistics.median(r["cpu"]["wrk"] for r in ok)
            row["noisy"] = any(r["noisy"] for r in ok)
            row["status"] = "ok"
        else:
            row["status"] = "n/a"
    by_key = {row["key"]: row for row in rows if row["status"] == "ok"}
    synack = next((by_key[k] for k in SYNACK_REF if k in by_key), None)
    uvicorn = next((by_key[k] for k in UVICORN_REF if k in by_key), None)
    for row in rows:
        if row["status"] != "ok":
            continue
        row["vs_synack"] = row["median_rps"] / synack["median_rps"] if synack else None
        row["vs_uvicorn"] = row["median_rps"] / uvicorn["median_rps"] if uvicorn else None
    for row in rows:
        row["synack_ref"] = synack["key"] if synack else None
        row["uvicorn_ref"] = uvicorn["key"] if uvicorn else None


def row_notes(row: dict[str, Any], threshold: float) -> str:
    notes = []
    if row["status"] != "ok":
        errors = [r["error"] for r in row["rounds"] if "error" in r]
        return "n/a: " + (row.get("reason") or (errors[0] if errors else "no successful round"))
    if row["noisy"]:
        worst = max(max(r["quiet"]["other_cores"], r["cpu"]["other"]) for r in row["rounds"]
                    if "rps" in r)
        notes.append(f"**NOISY** (other processes used up to {worst:.2f} cores)")
    failed = [r for r in row["rounds"] if "rps" not in r]
    if failed:
        notes.append(f"{len(failed)}/{len(row['rounds'])} rounds failed: {failed[0]['error']}")
    errs: dict[str, int] = {}
    for r in row["rounds"]:
        for k, v in r.get("socket_errors", {}).items():
            errs[k] = errs.get(k, 0) + v
        if r.get("non_2xx_3xx"):
            errs["non-2xx"] = errs.get("non-2xx", 0) + r["non_2xx_3xx"]
    if errs:
        notes.append("wrk errors: " + ", ".join(f"{k} {v:,}" for k, v in errs.items()))
    if row.get("wrk_cpu", 0) >= 0.9:
        notes.append(f"client-bound? wrk used {row['wrk_cpu']:.0%} of its core")
    if row.get("note"):
        notes.append(row["note"])
    return "; ".join(notes)


def ratio(v: float | None, is_ref: bool) -> str:
    if v is None:
        return "–"
    return f"**{v:.2f}×**" if is_ref else f"{v:.2f}×"


def workload_table(w: Workload, rows: list[dict[str, Any]], threshold: float) -> str:
    lines = [
        "| server | req/s | p99 | vs synack | vs uvicorn | spread | server CPU | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        if row["status"] != "ok":
            lines.append(f"| {row['label']} | n/a | n/a | – | – | – | – | "
                         f"{row_notes(row, threshold)} |")
            continue
        spread = "–" if row["spread_pct"] is None else f"{row['spread_pct']:.1f}%"
        lines.append(
            f"| {row['label']} | {fmt_rps(row['median_rps'])} | {fmt_ms(row['median_p99_ms'])} | "
            f"{ratio(row['vs_synack'], row['key'] == row['synack_ref'])} | "
            f"{ratio(row['vs_uvicorn'], row['key'] == row['uvicorn_ref'])} | {spread} | "
            f"{row['server_cpu']:.0%} | {row_notes(row, threshold).replace('|', '/')} |")
    return "\n".join(lines)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for name in ("synack", "uvicorn", "httptools", "uvloop", "h11", "hypercorn", "granian",
                 "gunicorn", "waitress"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    for name, argv in (("wrk", ["wrk", "-v"]), ("nginx", [_nginx_bin() or "nginx", "-v"])):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=5)
            text = (out.stdout + out.stderr).strip().splitlines()[0]
            m = re.search(r"(?:wrk|nginx/)\s*(\S+)", text)
            found[name] = m.group(1) if m else text
        except (OSError, subprocess.SubprocessError, IndexError):
            pass
    return found


def git_rev() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "synack"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + (" + uncommitted changes in synack/" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "python_impl": platform.python_implementation(),
        "kernel": platform.release(),
    }


def settings_key(args: argparse.Namespace) -> str:
    return (f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s, "
            f"{args.rounds} round{'s' if args.rounds != 1 else ''}"
            f"{', access logs on' if getattr(args, 'access_log', False) else ''}")


def is_default(args: argparse.Namespace) -> bool:
    return all(getattr(args, k) == v for k, v in DEFAULTS.items())


def report_md(meta: dict[str, Any], results: dict[str, list[dict[str, Any]]],
              args: argparse.Namespace, heading: str = "##") -> dict[str, str]:
    """Markdown per workload (each self-contained: when, where, how, table)."""
    m = meta["machine"]
    parts = {}
    for name, rows in results.items():
        w = WORKLOADS[name]
        noisy = any(r.get("noisy") for r in rows)
        text = [
            f"{heading} {name} — {settings_key(args)}{' — NOISY' if noisy else ''}",
            "",
            f"{w.title}.  Measured {meta['date']} with `{meta['command']}`.  ",
            f"Machine: nproc {m['nproc']}, {m['cpu_model']}, Python {m['python']}, "
            f"Linux {m['kernel']}; synack {meta['synack_git']}.  ",
            f"Settings: {run_settings(args)}.",
            "",
        ]
        if noisy:
            text += ["> **NOISY**: other processes were using the CPU during at least one "
                     "measurement below (see notes); these numbers are not trustworthy.", ""]
        text.append(workload_table(w, rows, args.quiet_threshold))
        parts[name] = "\n".join(text)
    return parts


def run_settings(args: argparse.Namespace) -> str:
    pin = (f"server on CPU {args.server_cpu}, wrk on CPU {args.client_cpu} (taskset)"
           if TASKSET else "NOT pinned (taskset missing)")
    return (f"`wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency` after a "
            f"{args.warmup} s warm-up, {args.rounds} round{'s' if args.rounds != 1 else ''} "
            f"(medians), {pin}, NOISY at ≥ {args.quiet_threshold:g} core used by others "
            f"(after waiting up to {args.quiet_wait:g} s for quiet)")


LEGEND = (
    "Each server: one worker/process, access log off, 127.0.0.1, pinned to one CPU and wrk to "
    "the other; a fresh start per round (rounds interleaved across servers), a checked first "
    "response, a wrk warm-up, then the measured wrk run.  *req/s* and *p99* (wrk's 99% "
    "latency line) are medians over rounds.  *vs synack* / *vs uvicorn*: the row's req/s ÷ "
    "the reference row's req/s in the same run (bold = the reference; > 1 = faster than it); "
    "synack's reference is synack (uvloop) where that row exists, uvicorn's is uvicorn "
    "(httptools+uvloop), for static files uvicorn (httptools+uvloop) serving Starlette's "
    "StaticFiles.  *spread*: (max − min) / median of req/s over rounds.  *server CPU*: "
    "cores the server's processes used during the measured run (1 core is the ceiling when "
    "pinned).  **NOISY**: processes outside the benchmark used the CPU just before or during a "
    "measurement of that row (the harness waits for quiet first, bounded); do not quote "
    "NOISY numbers.")


def write_results_md(meta: dict[str, Any], parts: dict[str, str], args: argparse.Namespace) -> None:
    """Merge this run's sections into bench/RESULTS.md, keyed by workload + wrk settings."""
    begin = re.compile(r"^<!-- section: (.+?) -->$", re.M)
    sections: dict[str, str] = {}
    if args.results_md == "merge" and RESULTS_MD.exists():
        text = RESULTS_MD.read_text()
        for match in begin.finditer(text):
            end = text.find("<!-- end section -->", match.end())
            if end != -1:
                sections[match.group(1)] = text[match.end():end].strip()
    for name, part in parts.items():
        sections[f"{name} | {settings_key(args)}"] = part

    order = list(WORKLOADS)

    def sort_key(key: str) -> tuple[int, int, str]:
        name, _, setting = key.partition(" | ")
        default = setting == settings_key(argparse.Namespace(**DEFAULTS))
        return (order.index(name) if name in order else len(order), 0 if default else 1, key)

    m = meta["machine"]
    out = [
        "# synack benchmark results",
        "",
        "Written by `python bench/run.py` (install the peers first with `bash bench/install.sh`). "
        "Each section below is one workload at one wrk setting, replaced whenever a run "
        "measures that same pair again; each says when, on what and with which command it "
        "was measured.  Raw per-round numbers of the last run: `bench/results/latest.json` "
        "(not committed).",
        "",
        f"Last written {meta['date']} on: nproc {m['nproc']}, CPU {m['cpu_model']}, "
        f"Python {m['python']} ({m['python_impl']}), Linux {m['kernel']}.  ",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".",
        "",
        LEGEND,
        "",
    ]
    for key in sorted(sections, key=sort_key):
        out += [f"<!-- section: {key} -->", sections[key], "<!-- end section -->", ""]
    RESULTS_MD.write_text("\n".join(out).rstrip() + "\n")


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def add_machine_args(p: argparse.ArgumentParser, quiet: bool = True) -> None:
    """The options every bench script shares: CPU pinning, the quiet-machine gate (when the
    script measures with it) and the server start timeout."""
    p.add_argument("--server-cpu", type=int, default=0, help="CPU the server is pinned to")
    p.add_argument("--client-cpu", type=int, default=1, help="CPU wrk is pinned to")
    if quiet:
        p.add_argument("--quiet-threshold", type=float, default=0.30,
                       help="cores other processes may use before the machine counts as busy")
        p.add_argument("--quiet-wait", type=float, default=30.0,
                       help="seconds to wait for a busy machine to calm down before measuring "
                            "anyway and flagging the result NOISY")
    p.add_argument("--start-timeout", type=float, default=20.0,
                   help="seconds a server gets to answer its first request")


def chosen_names(p: argparse.ArgumentParser, values: list[str], choices: list[str],
                 what: str) -> list[str]:
    """Names from a repeatable, comma-separated option; an unknown one is a usage error."""
    names = [n for item in values for n in item.split(",") if n]
    unknown = [n for n in names if n not in choices]
    if unknown:
        p.error(f"unknown {what}(s) {', '.join(unknown)}; choices: {', '.join(choices)}")
    return names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    global COMPILED_TREE  # (--compiled-tree: read by the synack-compiled entry)
    p = argparse.ArgumentParser(
        description="Benchmark synack against its peers with wrk (see module docstring).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--duration", type=int, default=DEFAULTS["duration"],
                   help="whole seconds of each measured wrk run")
    p.add_argument("--connections", type=int, default=DEFAULTS["connections"],
                   help="wrk connections (-c)")
    p.add_argument("--threads", type=int, default=DEFAULTS["threads"], help="wrk threads (-t)")
    p.add_argument("--rounds", type=int, default=DEFAULTS["rounds"],
                   help="measurements per server and workload (medians are reported)")
    p.add_argument("--warmup", type=int, default=2,
                   help="whole seconds of wrk warm-up per server start (0: none)")
    p.add_argument("--only", action="append", default=[], metavar="WORKLOAD",
                   help="run only these workloads (repeat or comma-separate); "
                        f"choices: {', '.join(WORKLOADS)}")
    p.add_argument("--servers", default="", metavar="NAME,NAME",
                   help="run only these servers; a name also selects its variants "
                        "(synack → synack-uvloop, synack-asyncio, synack)")
    add_machine_args(p)
    p.add_argument("--results-md", choices=("merge", "replace", "skip"), default="merge",
                   help="bench/RESULTS.md: merge this run's sections in, replace the file, "
                        "or leave it alone")
    p.add_argument("--keep-tmp", action="store_true", help="keep server logs and wrk output")
    p.add_argument("--access-log", action="store_true",
                   help="every server writes its access log (to stdout, or a file for nginx, on the"
                        " same disk), as most do by default; servers that cannot are left out")
    p.add_argument("--list", action="store_true", help="list workloads and servers, then exit")
    p.add_argument("--compiled-tree", type=Path, default=COMPILED_TREE, metavar="DIR",
                   help="the compiled build synack-compiled runs (bench/build_compiled.sh DIR)")
    args = p.parse_args(argv)
    COMPILED_TREE = args.compiled_tree.resolve()
    names = chosen_names(p, args.only, list(WORKLOADS), "workload")
    args.workloads = names or [n for n, w in WORKLOADS.items() if w.default]
    wanted = [n for n in args.servers.split(",") if n]
    keys = [s.key for s in SERVERS]
    unknown = [n for n in wanted if not any(k == n or k.startswith(n + "-") for k in keys)]
    if unknown:
        p.error(f"unknown server(s) {', '.join(unknown)}; choices: {', '.join(keys)}")
    args.server_filter = wanted
    if args.rounds < 1 or args.duration < 1 or args.warmup < 0 or args.connections < 1 or args.threads < 1:
        p.error("--rounds, --duration, --connections and --threads must be positive, --warmup >= 0")
    if args.connections < args.threads:
        p.error("--connections must be at least --threads")
    return args


def selected(args: argparse.Namespace, w: Workload) -> list[Server]:
    out = []
    for s in SERVERS:
        if w.kind not in s.kinds:
            continue
        if args.server_filter and not any(s.key == n or s.key.startswith(n + "-")
                                          for n in args.server_filter):
            continue
        out.append(s)
    return out


def make_static(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    pattern = bytes(range(256))
    for name, size in STATIC_FILES.items():
        path = root / name
        path.write_bytes((pattern * (size // 256 + 1))[:size])
        os.chmod(path, 0o644)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for w in WORKLOADS.values():
            names = ", ".join(s.key for s in SERVERS if w.kind in s.kinds)
            print(f"{w.name}{'' if w.default else ' (not in the default matrix)'}: {w.title}\n"
                  f"    servers: {names}")
        return 0
    if not shutil.which("wrk"):
        log("bench: wrk is not installed; run `bash bench/install.sh` first")
        return 2
    ncpu = os.cpu_count() or 1
    if ncpu < 2 or max(args.server_cpu, args.client_cpu) >= ncpu:
        log(f"bench: warning: {ncpu} CPU(s); server and wrk cannot each get their own core")

    command = "python bench/run.py" + "".join(" " + shlex.quote(a) for a in
                                              (sys.argv[1:] if argv is None else argv))
    meta: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "machine": machine(),
        "versions": versions(),
        "synack_git": git_rev(),
        "settings": {"duration_s": args.duration, "connections": args.connections,
                     "threads": args.threads, "rounds": args.rounds, "warmup_s": args.warmup,
                     "server_cpu": args.server_cpu if TASKSET else None,
                     "client_cpu": args.client_cpu if TASKSET else None,
                     "quiet_threshold_cores": args.quiet_threshold,
                     "quiet_wait_s": args.quiet_wait},
        "load1_at_start": loadavg(),
    }
    resource.setrlimit(resource.RLIMIT_NOFILE, _nofile())

    # Rows, in table order; unavailable servers are known before any load.
    results: dict[str, list[dict[str, Any]]] = {}
    for name in args.workloads:
        w = WORKLOADS[name]
        rows = []
        for s in selected(args, w):
            row: dict[str, Any] = {"key": s.key, "label": s.label, "rounds": [], "note": s.note}
            reason = missing_reason(s)
            if reason:
                row["reason"] = reason
            rows.append(row)
        results[name] = rows

    scratch = Path(tempfile.mkdtemp(prefix="synack-bench-"))
    os.chmod(scratch, 0o755)  # nginx workers (user nobody) read the static files
    static_dir = scratch / "static"
    make_static(static_dir)
    log(f"bench: {command}\nbench: scratch dir {scratch}; load1 {meta['load1_at_start']:.2f}")
    servers_by_key = {s.key: s for s in SERVERS}

    def on_term(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    interrupted = False
    try:
        for round_no in range(1, args.rounds + 1):
            for name in args.workloads:
                w = WORKLOADS[name]
                for row in results[name]:
                    if row.get("reason"):
                        continue
                    server = servers_by_key[row["key"]]
                    head = f"[round {round_no}/{args.rounds}] {name:<10} {server.key:<18}"
                    r = measure_into(row, head, lambda: measure(args, server, w, static_dir,
                                                                scratch, round_no))
                    if r is None:
                        continue
                    log(f"{head} {fmt_rps(r['rps']):>9} req/s  p99 {fmt_ms(r['p99_ms']):>9}  "
                        f"cpu server {r['cpu']['server']:.2f} wrk {r['cpu']['wrk']:.2f} "
                        f"other {r['cpu']['other']:.2f}"
                        + (f"  (waited {r['quiet']['waited_s']:g} s for quiet)"
                           if r["quiet"]["waited_s"] > 1.5 else "")
                        + ("  NOISY" if r["noisy"] else ""))
    except KeyboardInterrupt:
        interrupted = True
        log("bench: interrupted; stopping servers and reporting what was measured")
    finally:
        stop_all()
        if not args.keep_tmp:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            log(f"bench: logs kept in {scratch}")

    for rows in results.values():
        summarize(rows)
    any_noisy = any(r.get("noisy") for rows in results.values() for r in rows)
    meta["noisy"] = any_noisy
    meta["interrupted"] = interrupted
    parts = report_md(meta, results, args)

    m = meta["machine"]
    md = [
        f"# synack benchmark — {meta['date']}",
        "",
        f"Machine: nproc {m['nproc']}, CPU {m['cpu_model']}, Python {m['python']} "
        f"({m['python_impl']}), Linux {m['kernel']}.  ",
        f"Command: `{command}`; synack {meta['synack_git']}.  ",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".  ",
        f"Settings: {run_settings(args)}.",
        "",
        LEGEND,
        "",
    ]
    if any_noisy:
        md += ["> **NOISY** — the machine was busy during part of this run (rows marked "
               "NOISY); do not quote those numbers.", ""]
    if interrupted:
        md += ["> **INTERRUPTED** — the run was stopped early; rows are partial.", ""]
    md.append("\n\n".join(parts.values()))
    text = "\n".join(md) + "\n"
    print(text)

    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    payload = {"meta": meta, "workloads": results}
    for path in (RESULTS_DIR / "latest.json", RESULTS_DIR / f"{stamp}.json"):
        path.write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS_DIR / "latest.md").write_text(text)
    if args.results_md != "skip" and not interrupted:
        write_results_md(meta, parts, args)
    log(f"bench: wrote {RESULTS_DIR / 'latest.json'}, {RESULTS_DIR / 'latest.md'}"
        + ("" if args.results_md == "skip" or interrupted else f", {RESULTS_MD}"))
    if any_noisy:
        log("bench: WARNING: NOISY — the machine was busy; see the flagged rows")
    return 1 if interrupted else 0


def _nofile() -> tuple[int, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else min(65536, hard)
    return (max(soft, want), hard)


if __name__ == "__main__":
    sys.exit(main())
