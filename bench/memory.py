#!/usr/bin/env python3
"""synack memory benchmark: memory per idle keep-alive connection, and a leak soak.

    python bench/memory.py idle                      # synack vs uvicorn, 10,000 connections
    python bench/memory.py idle --connections 2000 --servers synack-uvloop
    python bench/memory.py soak                      # 600 s of mixed wrk load on synack
    python bench/memory.py soak --duration 60 --interval 5

``idle``: each server (one worker, ASGI hello app, pinned to CPU 0) is started afresh and
warmed up with a few connections; its RSS (VmRSS of /proc/PID/status, summed over the
process tree) is read, then this script opens N keep-alive connections, sends one GET on
each and reads the checked response, so every connection is a served, idle keep-alive
connection.  After a settle pause RSS is read again: (after − before) / N is the memory the
server spends per idle connection (the target is ≤ 20 KiB).  Then one more GET on every
connection checks they are all still open.  Kernel socket buffers are not in RSS.

``soak``: one synack server (bench/apps/mixed_asgi.py) under wrk with bench/soak.lua
(hello GETs, 64 KiB POST echoes, and every tenth request with ``Connection: close`` for
connection churn) for --duration seconds, its RSS sampled every --interval seconds.  Reported:
RSS before the load, first/last/max sample, and the growth over the second half of the run
(flat = no leak).

Both print a markdown table and write ``bench/results/memory-{idle,soak}-latest.json`` (and a
timestamped copy; ignored by git).  Like bench/run.py this asserts nothing, only stops
processes it started (by PID), and sends traffic to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import resource
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import (  # noqa: E402  (after the sys.path line, so `python bench/memory.py` works)
    BENCH, CLK_TCK, add_machine_args, HELLO, POST_SIZE, RESULTS_DIR, SERVERS, TASKSET, WORKLOADS, Proc, Server,
    Unavailable, Workload, descendants, server_by_key, with_args, fmt_ms, fmt_rps, git_rev, log, loadavg,
    machine, missing_reason, parse_wrk, request, start_server, stop_all, tree_jiffies, versions,
)

TARGET_KIB_PER_CONN = 20.0
FLAT_KIB = 1024  # soak: second-half growth within ±1 MiB counts as flat
SOAK_APP = "bench.apps.mixed_asgi:app"
SOAK_LUA = "soak.lua"

# --------------------------------------------------------------------------------------
# Servers: the run.py launchers plus flags that keep idle connections open
# --------------------------------------------------------------------------------------

IDLE_KEEP_ALIVE_S = 600  # far longer than a measurement


def idle_flags(key: str, connections: int) -> list[str] | None:
    """Extra argv for `key` so N idle keep-alive connections stay open; None: unsupported."""
    if key.startswith("synack"):
        return ["--keep-alive-timeout", str(IDLE_KEEP_ALIVE_S),
                "--max-connections", str(connections + 1000)]
    if key.startswith("uvicorn"):
        return ["--timeout-keep-alive", str(IDLE_KEEP_ALIVE_S)]
    if key == "granian":
        # HTTP/1 keep-alive has no idle timeout in granian, but every open connection holds
        # one of its --backpressure slots (default: backlog 1024 / workers).
        return ["--backlog", "2048", "--backpressure", str(connections + 1000)]
    return None


# --------------------------------------------------------------------------------------
# Memory of a process tree
# --------------------------------------------------------------------------------------


def status_kib(pid: int, field: str) -> int:
    """A 'kB' field of /proc/PID/status (VmRSS, RssAnon, ...), 0 if the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def tree_pids(pid: int) -> list[int]:
    return [pid] + [p for p, _ in descendants(pid)]


def tree_kib(pid: int, field: str = "VmRSS") -> int:
    """Sum of `field` over pid and its descendants (a master and its workers)."""
    return sum(status_kib(p, field) for p in tree_pids(pid))


def tree_fds(pid: int) -> int:
    total = 0
    for p in tree_pids(pid):
        try:
            total += len(os.listdir(f"/proc/{p}/fd"))
        except OSError:
            pass
    return total


def memory_snapshot(pid: int) -> dict[str, int]:
    return {"rss_kib": tree_kib(pid), "rss_anon_kib": tree_kib(pid, "RssAnon"),
            "fds": tree_fds(pid), "processes": len(tree_pids(pid))}


def fmt_kib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"


# --------------------------------------------------------------------------------------
# Idle keep-alive connections: the client
# --------------------------------------------------------------------------------------


def hello_request(port: int) -> bytes:
    return f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 response with a Content-Length body: (status, body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    return status, await reader.readexactly(length)


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def exchange(conn: Conn, request_bytes: bytes, timeout: float) -> None:
    reader, writer = conn
    writer.write(request_bytes)
    status, body = await asyncio.wait_for(read_response(reader), timeout)
    if status != 200 or body != HELLO:
        raise ValueError(f"status {status}, body {body[:40]!r}")


class Budget:
    """Time left for one step (at most `step` s) before an overall deadline `total` s away."""

    def __init__(self, step: float, total: float) -> None:
        self.step = step
        self.deadline = time.monotonic() + total

    def left(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise asyncio.TimeoutError("overall time budget (--open-timeout) used up")
        return min(self.step, remaining)


async def open_served(port: int, count: int, parallel: int, budget: Budget
                      ) -> tuple[list[Conn], dict[str, int]]:
    """Open `count` connections (at most `parallel` connecting at once), one checked GET on
    each, within `budget`; returns the open connections and failures by kind."""
    gate = asyncio.Semaphore(parallel)
    request_bytes = hello_request(port)
    failures: dict[str, int] = {}

    async def one() -> Conn | None:
        async with gate:
            conn: Conn | None = None
            try:
                connect = asyncio.open_connection("127.0.0.1", port)
                conn = await asyncio.wait_for(connect, budget.left())
                await exchange(conn, request_bytes, budget.left())
                return conn
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
                kind = type(e).__name__
                failures[kind] = failures.get(kind, 0) + 1
                if conn is not None:
                    conn[1].close()
                return None

    results = await asyncio.gather(*(one() for _ in range(count)))
    return [c for c in results if c is not None], failures


async def recheck(conns: list[Conn], port: int, parallel: int, budget: Budget) -> int:
    """One more GET on every connection; how many answered (were still open)."""
    gate = asyncio.Semaphore(parallel)
    request_bytes = hello_request(port)

    async def one(conn: Conn) -> bool:
        async with gate:
            try:
                await exchange(conn, request_bytes, budget.left())
                return True
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
                return False

    return sum(await asyncio.gather(*(one(c) for c in conns)))


async def close_all(conns: list[Conn]) -> None:
    for _, writer in conns:
        writer.close()
    await asyncio.gather(*(w.wait_closed() for _, w in conns), return_exceptions=True)


async def idle_session(args: argparse.Namespace, proc: Proc, port: int) -> dict[str, Any]:
    """Warm up, measure RSS, open N served keep-alive connections, measure again."""
    def budget() -> Budget:
        return Budget(args.request_timeout, args.open_timeout)

    warm, _ = await open_served(port, args.warm, args.parallel, budget())
    await close_all(warm)
    await asyncio.sleep(args.settle)
    before = memory_snapshot(proc.pid)

    t0 = time.monotonic()
    conns: list[Conn] = []
    failures: dict[str, int] = {}
    try:
        conns, failures = await open_served(port, args.connections, args.parallel, budget())
        open_s = time.monotonic() - t0
        await asyncio.sleep(args.settle)
        held = memory_snapshot(proc.pid)
        alive = await recheck(conns, port, args.parallel, budget())
        after_recheck = memory_snapshot(proc.pid)
    finally:
        await close_all(conns)
    await asyncio.sleep(args.settle)
    closed = memory_snapshot(proc.pid)

    served = len(conns)
    delta = held["rss_kib"] - before["rss_kib"]
    return {
        "connections_requested": args.connections,
        "connections_served": served,
        "failures": failures,
        "open_s": round(open_s, 2),
        "before": before,
        "held": held,
        "after_recheck": after_recheck,
        "after_close": closed,
        "alive_at_recheck": alive,
        "rss_delta_kib": delta,
        "kib_per_conn": delta / served if served else None,
        "anon_kib_per_conn": ((held["rss_anon_kib"] - before["rss_anon_kib"]) / served
                              if served else None),
        "kib_per_conn_after_recheck": ((after_recheck["rss_kib"] - before["rss_kib"]) / served
                                       if served else None),
    }


def measure_idle(args: argparse.Namespace, server: Server, scratch: Path,
                 round_no: int) -> dict[str, Any]:
    flags = idle_flags(server.key, args.connections) or []
    launched = with_args(server, flags, server.key, server.label)
    proc, port, _ = start_server(args, launched, WORKLOADS["asgi_hello"], scratch / "static",
                                 scratch, f"idle-r{round_no}")
    try:
        result = asyncio.run(idle_session(args, proc, port))
        if not proc.alive():
            raise Unavailable(f"died while holding connections: {proc.log_tail()}")
        result["server_flags"] = flags
        result["server_log_tail"] = proc.log_tail(5)
        return result
    finally:
        proc.stop()


# --------------------------------------------------------------------------------------
# Soak: sustained mixed load, RSS sampled
# --------------------------------------------------------------------------------------

SOAK_WORKLOAD = Workload("soak", "asgi", "mixed ASGI load: hello GETs + 64 KiB POST echoes",
                         "/", app=SOAK_APP, expect_body=HELLO, default=False)


def half_growth(samples: list[dict[str, float]], duration: float) -> dict[str, Any]:
    """RSS growth over the second half of the run: last sample − the first sample at or after
    half time, and the least-squares slope of those second-half samples (KiB per minute)."""
    second = [s for s in samples if s["t_s"] >= duration / 2]
    if len(second) < 2:
        return {"growth_kib": None, "slope_kib_per_min": None, "samples": len(second)}
    ts = [s["t_s"] for s in second]
    rss = [s["rss_kib"] for s in second]
    mean_t, mean_r = statistics.fmean(ts), statistics.fmean(rss)
    var = sum((t - mean_t) ** 2 for t in ts)
    slope = sum((t - mean_t) * (r - mean_r) for t, r in zip(ts, rss)) / var if var else 0.0
    return {"growth_kib": rss[-1] - rss[0], "slope_kib_per_min": slope * 60,
            "from_t_s": ts[0], "to_t_s": ts[-1], "samples": len(second)}


def measure_soak(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    server = server_by_key("synack-uvloop")
    proc, port, path = start_server(args, server, SOAK_WORKLOAD, scratch / "static", scratch,
                                    "soak")
    wrk: Proc | None = None
    try:
        status, body = request(port, "POST", "/echo", body=b"x" * POST_SIZE, timeout=5.0)
        if (status, body) != (200, str(POST_SIZE).encode()):
            raise Unavailable(f"POST /echo answered {status} {body[:40]!r}")
        idle = memory_snapshot(proc.pid)
        argv = [shutil.which("wrk") or "wrk", f"-t{args.threads}", f"-c{args.connections}",
                f"-d{args.duration}s", "--latency", "-s", str(BENCH / SOAK_LUA),
                f"http://127.0.0.1:{port}{path}"]
        workdir = proc.log_path.parent
        jiff0 = tree_jiffies(proc.pid)
        wrk = Proc(argv, workdir / "wrk.txt", args.client_cpu, dict(os.environ))
        start = time.monotonic()
        samples: list[dict[str, float]] = []
        deadline = start + args.duration + 30
        next_sample = start + args.interval
        while wrk.alive() and time.monotonic() < deadline:
            time.sleep(max(0.0, min(next_sample, deadline) - time.monotonic()))
            if not proc.alive():
                raise RuntimeError(f"synack died under the soak: {proc.log_tail()}")
            if time.monotonic() >= next_sample and wrk.alive():
                snap = memory_snapshot(proc.pid)
                sample = {"t_s": round(time.monotonic() - start, 1), **snap}
                samples.append(sample)
                log(f"  soak t={sample['t_s']:>6.1f} s  RSS {fmt_kib(snap['rss_kib'])}  "
                    f"fds {snap['fds']}")
                next_sample += args.interval
        if wrk.alive():
            raise RuntimeError(f"wrk still running {args.duration + 30} s after the start")
        server_cores = (tree_jiffies(proc.pid) - jiff0) / (
            max(time.monotonic() - start, 1e-3) * CLK_TCK)
        out = (workdir / "wrk.txt").read_text(errors="replace")
        if wrk.popen.returncode not in (0, None):
            raise RuntimeError(f"wrk exited with {wrk.popen.returncode}: {wrk.log_tail()}")
        load = parse_wrk(out)
        time.sleep(args.settle)
        after = memory_snapshot(proc.pid)
        rss = [s["rss_kib"] for s in samples]
        return {
            "idle_before_load": idle,
            "samples": samples,
            "first_kib": rss[0] if rss else None,
            "last_kib": rss[-1] if rss else None,
            "max_kib": max(rss) if rss else None,
            "second_half": half_growth(samples, args.duration),
            "after_load": after,
            "wrk": load,
            "wrk_output": out,
            "server_cores": round(server_cores, 3),
            "server_log_tail": proc.log_tail(5),
        }
    finally:
        if wrk is not None:
            wrk.stop()
        proc.stop()


# --------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------


def idle_table(rows: list[dict[str, Any]], connections: int) -> str:
    lines = [
        f"| server | RSS before | RSS with {connections:,} conns | KiB / conn | "
        f"≤ {TARGET_KIB_PER_CONN:g} KiB? | served | open after settle | "
        "KiB / conn after a 2nd request | RSS after close | notes |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        ok = [r for r in row["rounds"] if r.get("kib_per_conn") is not None]
        if not ok:
            lines.append(f"| {row['label']} | n/a | n/a | n/a | – | – | – | – | – | "
                         f"{row.get('reason') or 'no successful round'} |")
            continue
        per = statistics.median(r["kib_per_conn"] for r in ok)
        per2 = statistics.median(r["kib_per_conn_after_recheck"] for r in ok)
        r = ok[len(ok) // 2] if len(ok) > 1 else ok[0]
        notes = []
        fails: dict[str, int] = {}
        for rr in ok:
            for k, v in rr["failures"].items():
                fails[k] = fails.get(k, 0) + v
        if fails:
            notes.append("client failures: " + ", ".join(f"{k} {v}" for k, v in fails.items()))
        notes.append(f"flags: {' '.join(r['server_flags']) or '–'}")
        if len(ok) > 1:
            notes.append(f"median of {len(ok)} rounds: "
                         + ", ".join(f"{x['kib_per_conn']:.1f}" for x in ok))
        lines.append(
            f"| {row['label']} | {fmt_kib(r['before']['rss_kib'])} | "
            f"{fmt_kib(r['held']['rss_kib'])} | {per:.1f} | "
            f"{'yes' if per <= TARGET_KIB_PER_CONN else '**no**'} | "
            f"{r['connections_served']:,} | {r['alive_at_recheck']:,} | {per2:.1f} | "
            f"{fmt_kib(r['after_close']['rss_kib'])} | {'; '.join(notes)} |")
    return "\n".join(lines)


def soak_table(result: dict[str, Any], duration: int) -> str:
    half = result["second_half"]
    load = result["wrk"]
    errors = dict(load["socket_errors"])
    if load["non_2xx_3xx"]:
        errors["non-2xx"] = load["non_2xx_3xx"]
    growth, slope = half["growth_kib"], half["slope_kib_per_min"]
    verdict = ("–" if growth is None else
               "flat" if abs(growth) <= FLAT_KIB else f"**grew {fmt_kib(growth)}**")
    lines = [
        "| RSS idle | first sample | last sample | max | 2nd-half growth | 2nd-half slope | "
        "verdict | requests | req/s | p99 | wrk errors | server CPU |",
        "|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---:|",
        f"| {fmt_kib(result['idle_before_load']['rss_kib'])} | {fmt_kib(result['first_kib'])} | "
        f"{fmt_kib(result['last_kib'])} | {fmt_kib(result['max_kib'])} | "
        f"{'–' if growth is None else f'{growth:+,} KiB'} | "
        f"{'–' if slope is None else f'{slope:+.1f} KiB/min'} | "
        f"{verdict} | {load['requests']:,} | {fmt_rps(load['rps'])} | {fmt_ms(load['p99_ms'])} | "
        f"{', '.join(f'{k} {v:,}' for k, v in errors.items()) or 'none'} | "
        f"{result['server_cores']:.0%} |",
    ]
    return "\n".join(lines)


def write_results(name: str, payload: dict[str, Any], md: str) -> None:
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    for path in (RESULTS_DIR / f"memory-{name}-latest.json", RESULTS_DIR / f"memory-{name}-{stamp}.json"):
        path.write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS_DIR / f"memory-{name}-latest.md").write_text(md)
    log(f"bench: wrote {RESULTS_DIR / f'memory-{name}-latest.json'} and .md")


def meta(command: str, settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "machine": machine(),
        "versions": versions(),
        "synack_git": git_rev(),
        "settings": settings,
        "rlimit_nofile": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
        "load1_at_start": loadavg(),
    }


def header(m: dict[str, Any], title: str) -> list[str]:
    mach = m["machine"]
    return [
        f"## {title} — {m['date']}",
        "",
        f"Command: `{m['command']}`; synack {m['synack_git']}.  ",
        f"Machine: nproc {mach['nproc']}, {mach['cpu_model']}, Python {mach['python']}, "
        f"Linux {mach['kernel']}.  RLIMIT_NOFILE (client and servers) {m['rlimit_nofile'][0]}.",
        "",
    ]


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def run_idle(args: argparse.Namespace, scratch: Path, command: str) -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if args.connections + args.warm + 256 > soft:
        log(f"bench: RLIMIT_NOFILE is {soft}; --connections {args.connections} needs more "
            f"(the hard limit caps it: ulimit -Hn)")
        return 2
    rows = []
    for key in args.server_keys:
        server = server_by_key(key)
        rows.append({"key": key, "label": server.label, "rounds": [],
                     "reason": missing_reason(server)})
    for round_no in range(1, args.rounds + 1):
        for row in rows:
            if row["reason"]:
                continue
            head = f"[round {round_no}/{args.rounds}] idle {row['key']:<18}"
            try:
                r = measure_idle(args, server_by_key(row["key"]), scratch, round_no)
            except Unavailable as e:
                row["reason"] = str(e)
                log(f"{head} n/a: {e}")
                continue
            except (RuntimeError, asyncio.TimeoutError) as e:
                row["rounds"].append({"error": f"{type(e).__name__}: {e}"})
                log(f"{head} failed: {type(e).__name__}: {e}")
                continue
            row["rounds"].append(r)
            per = r["kib_per_conn"]
            log(f"{head} {r['connections_served']:,} served in {r['open_s']:.1f} s, "
                f"RSS {fmt_kib(r['before']['rss_kib'])} → {fmt_kib(r['held']['rss_kib'])}: "
                f"{'n/a' if per is None else f'{per:.1f}'} KiB/conn; "
                f"{r['alive_at_recheck']:,} still open; fds {r['held']['fds']:,}")
    m = meta(command, {"connections": args.connections, "rounds": args.rounds,
                       "warm_connections": args.warm, "settle_s": args.settle,
                       "parallel_connects": args.parallel, "keep_alive_s": IDLE_KEEP_ALIVE_S,
                       "server_cpu": args.server_cpu if TASKSET else None})
    md = "\n".join(header(m, f"idle keep-alive memory — {args.connections:,} connections") + [
        "ASGI hello app, one worker, server pinned to CPU "
        f"{args.server_cpu}; RSS = VmRSS summed over the server's process tree, read after "
        f"{args.warm} warm-up connections and {args.settle:g} s of settling, then again "
        f"{args.settle:g} s after every connection got its response.  *KiB / conn* = "
        "(RSS with conns − RSS before) / served connections (median over rounds); "
        f"target ≤ {TARGET_KIB_PER_CONN:g} KiB.  *open after settle*: connections that "
        "answered a second GET.  Kernel socket memory is not included.",
        "",
        idle_table(rows, args.connections),
    ]) + "\n"
    print(md)
    write_results("idle", {"meta": m, "servers": rows}, md)
    return 0


def run_soak(args: argparse.Namespace, scratch: Path, command: str) -> int:
    if not os.path.exists(BENCH / SOAK_LUA):
        log(f"bench: {BENCH / SOAK_LUA} is missing")
        return 2
    log(f"bench: soak for {args.duration} s, RSS every {args.interval:g} s")
    try:
        result = measure_soak(args, scratch)
    except (Unavailable, RuntimeError, ValueError) as e:
        log(f"bench: soak failed: {type(e).__name__}: {e}")
        return 1
    m = meta(command, {"duration_s": args.duration, "interval_s": args.interval,
                       "connections": args.connections, "threads": args.threads,
                       "server_cpu": args.server_cpu if TASKSET else None,
                       "client_cpu": args.client_cpu if TASKSET else None})
    md = "\n".join(header(m, f"soak — {args.duration} s of mixed load on synack") + [
        f"synack (uvloop), one worker, `{SOAK_APP}` pinned to CPU {args.server_cpu}; "
        f"`wrk -t{args.threads} -c{args.connections} -d{args.duration}s -s bench/{SOAK_LUA}` "
        f"on CPU {args.client_cpu}: per 10 requests 5 GET / (hello), 4 POST /echo with a "
        "64 KiB body, 1 GET / with `Connection: close` (connection churn).  RSS (VmRSS) "
        f"sampled every {args.interval:g} s under load; *2nd-half growth* = last sample − first "
        f"sample at or after {args.duration / 2:g} s; flat = within ±{FLAT_KIB // 1024} MiB.",
        "",
        soak_table(result, args.duration),
    ]) + "\n"
    print(md)
    write_results("soak", {"meta": m, "result": result}, md)
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="synack memory benchmark (see module docstring).",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_machine_args(p, quiet=False)
    p.add_argument("--settle", type=float, default=2.0,
                   help="seconds to wait before each RSS reading")
    p.add_argument("--keep-tmp", action="store_true", help="keep server logs")
    sub = p.add_subparsers(dest="mode", required=True)

    idle = sub.add_parser("idle", help="memory per idle keep-alive connection",
                          formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    idle.add_argument("--connections", type=int, default=10_000, help="keep-alive connections")
    idle.add_argument("--servers", default="synack-uvloop,uvicorn-httptools", metavar="KEY,KEY",
                      help="servers (run.py keys): synack-uvloop, synack-asyncio, "
                           "uvicorn-httptools, uvicorn-h11, granian")
    idle.add_argument("--rounds", type=int, default=1, help="fresh server starts per server")
    idle.add_argument("--warm", type=int, default=64,
                      help="connections (one request each, then closed) before the baseline")
    idle.add_argument("--parallel", type=int, default=512,
                      help="connections being opened at once (the listen backlog is 1024-2048)")
    idle.add_argument("--request-timeout", type=float, default=30.0,
                      help="seconds for one connect or one response")
    idle.add_argument("--open-timeout", type=float, default=180.0,
                      help="seconds for opening (or rechecking) all connections")

    soak = sub.add_parser("soak", help="RSS of synack under sustained mixed load",
                          formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    soak.add_argument("--duration", type=int, default=600, help="seconds of load")
    soak.add_argument("--interval", type=float, default=10.0, help="seconds between RSS samples")
    soak.add_argument("--connections", type=int, default=64, help="wrk connections (-c)")
    soak.add_argument("--threads", type=int, default=1, help="wrk threads (-t)")
    args = p.parse_args(argv)

    if args.mode == "idle":
        keys = [k for k in args.servers.split(",") if k]
        known = {s.key for s in SERVERS}
        bad = [k for k in keys if k not in known or idle_flags(k, 0) is None]
        if bad:
            p.error(f"unsupported server(s) for idle: {', '.join(bad)}")
        args.server_keys = keys
        if args.connections < 1 or args.rounds < 1 or args.parallel < 1:
            p.error("--connections, --rounds and --parallel must be positive")
    else:
        if args.duration < 2 * args.interval or args.interval <= 0:
            p.error("--duration must be at least two --interval")
    return args


def raise_nofile() -> None:
    """Raise the soft RLIMIT_NOFILE to the hard limit (≤ 1M); servers and wrk inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 1 << 20 if hard == resource.RLIM_INFINITY else min(hard, 1 << 20)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python bench/memory.py" + "".join(
        " " + shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    raise_nofile()
    scratch = Path(tempfile.mkdtemp(prefix="synack-bench-memory-"))
    (scratch / "static").mkdir()

    def on_term(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    log(f"bench: {command}\nbench: scratch dir {scratch}; load1 {loadavg():.2f}")
    runner: Callable[[argparse.Namespace, Path, str], int] = (
        run_idle if args.mode == "idle" else run_soak)
    try:
        return runner(args, scratch, command)
    except KeyboardInterrupt:
        log("bench: interrupted; stopping servers")
        return 1
    finally:
        stop_all()
        if args.keep_tmp:
            log(f"bench: logs kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
