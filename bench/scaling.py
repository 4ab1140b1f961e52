#!/usr/bin/env python3
"""synack concurrency and scaling: asgi_hello under three changes of setting.

    python bench/scaling.py                          # all three experiments, defaults
    python bench/scaling.py --only concurrency --duration 5 --rounds 1
    python bench/scaling.py --only workers,latency

``concurrency``: wrk ``-c1024`` versus ``-c64`` (both ``-t1``) for synack (uvloop) and uvicorn
(httptools+uvloop), in the same run; the ratio req/s(c1024) / req/s(c64) per server (the
target for synack is ≥ 0.7).  Servers pinned to CPU 0, wrk to CPU 1.

``workers``: synack ``--workers 2`` versus ``--workers 1``.  A two-worker server cannot be
pinned to one core, so it runs unpinned *and so does wrk*: on this 2-core machine wrk and the
two workers share both cores.  ``--workers 1`` is measured twice, pinned as in bench/run.py and
unpinned like the two-worker run; the table reports ``--workers 2`` against both.

``latency``: ``wrk -t1 -c1`` (one connection, one request in flight) for synack and uvicorn,
p50 and p99 latency, pinned.

Each measurement is bench/run.py's: a fresh server, a checked first response, a warm-up, a
bounded wait for a quiet machine, then wrk; rounds are interleaved within an experiment and
the tables show medians.  Results: markdown on stdout and ``bench/results/scaling-latest.json``
(+ a timestamped copy, + ``scaling-latest.md``; ignored by git).  Stops only what it started.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import resource
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import (  # noqa: E402  (after the sys.path line, so `python bench/scaling.py` works)
    RESULTS_DIR, TASKSET, WORKLOADS, Server, _nofile, add_machine_args, chosen_names, fmt_ms, fmt_rps, git_rev,
    loadavg, log, machine, measure, measure_into, missing_reason, server_by_key, stop_all, versions,
    with_args,
)

EXPERIMENTS = ("concurrency", "workers", "latency")
CONCURRENCY_TARGET = 0.7
SYNACK, UVICORN = "synack-uvloop", "uvicorn-httptools"


@dataclasses.dataclass(frozen=True)
class Case:
    """One server at one setting: a row of an experiment's table."""

    key: str
    label: str
    server: Server
    connections: int
    threads: int = 1
    pinned: bool = True


def cases_for(experiment: str, args: argparse.Namespace) -> list[Case]:
    synack, uvicorn = server_by_key(SYNACK), server_by_key(UVICORN)
    if experiment == "concurrency":
        return [Case(f"{s.key} c{c}", s.label, s, c)
                for s in (synack, uvicorn) for c in (args.low, args.high)]
    if experiment == "workers":
        two = with_args(synack, ["--workers", "2"], "synack-uvloop-w2", "synack (uvloop) --workers 2")
        return [
            Case("w1 pinned", "synack (uvloop) --workers 1, pinned", synack, args.low),
            Case("w1 unpinned", "synack (uvloop) --workers 1, unpinned", synack, args.low,
                 pinned=False),
            Case("w2 unpinned", "synack (uvloop) --workers 2, unpinned", two, args.low,
                 pinned=False),
        ]
    return [Case(f"{s.key} c1", s.label, s, 1) for s in (synack, uvicorn)]


def case_args(args: argparse.Namespace, case: Case) -> argparse.Namespace:
    """bench/run.py's measurement settings for this case."""
    return argparse.Namespace(**{
        **vars(args),
        "connections": case.connections,
        "threads": case.threads,
        "server_cpu": args.server_cpu if case.pinned else None,
        "client_cpu": args.client_cpu if case.pinned else None,
    })


# --------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------


def run_experiment(args: argparse.Namespace, experiment: str, scratch: Path
                   ) -> list[dict[str, Any]]:
    cases = cases_for(experiment, args)
    rows: list[dict[str, Any]] = [
        {"key": c.key, "label": c.label, "connections": c.connections, "threads": c.threads,
         "pinned": c.pinned, "rounds": [], "reason": missing_reason(c.server)} for c in cases]
    w = WORKLOADS["asgi_hello"]
    for round_no in range(1, args.rounds + 1):
        for case, row in zip(cases, rows):
            if row["reason"]:
                continue
            head = f"[round {round_no}/{args.rounds}] {experiment:<11} {case.key:<24}"
            r = measure_into(row, head, lambda: measure(case_args(args, case), case.server, w,
                                                        scratch / "static", scratch, round_no))
            if r is None:
                continue
            log(f"{head} {fmt_rps(r['rps']):>9} req/s  p50 {fmt_ms(r['p50_ms']):>9}  "
                f"p99 {fmt_ms(r['p99_ms']):>9}  cpu server {r['cpu']['server']:.2f} "
                f"wrk {r['cpu']['wrk']:.2f} other {r['cpu']['other']:.2f}"
                + (f"  errors {r['socket_errors']}" if r["socket_errors"] else "")
                + ("  NOISY" if r["noisy"] else ""))
    for row in rows:
        summarize(row)
    return rows


def summarize(row: dict[str, Any]) -> None:
    ok = [r for r in row["rounds"] if "rps" in r]
    row["status"] = "ok" if ok else "n/a"
    if not ok:
        return
    row["median_rps"] = statistics.median(r["rps"] for r in ok)
    row["median_p50_ms"] = statistics.median(r["p50_ms"] for r in ok)
    row["median_p99_ms"] = statistics.median(r["p99_ms"] for r in ok)
    row["server_cpu"] = statistics.median(r["cpu"]["server"] for r in ok)
    row["server_busiest"] = statistics.median(r["cpu"]["server_busiest"] for r in ok)
    row["wrk_cpu"] = statistics.median(r["cpu"]["wrk"] for r in ok)
    row["noisy"] = any(r["noisy"] for r in ok)
    errors: dict[str, int] = {}
    for r in ok:
        for k, v in r["socket_errors"].items():
            errors[k] = errors.get(k, 0) + v
        if r["non_2xx_3xx"]:
            errors["non-2xx"] = errors.get("non-2xx", 0) + r["non_2xx_3xx"]
    row["errors"] = errors
    row["failed_rounds"] = len(row["rounds"]) - len(ok)


# --------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------


def notes(row: dict[str, Any]) -> str:
    if row["status"] != "ok":
        errs = [r["error"] for r in row["rounds"] if "error" in r]
        return "n/a: " + (row.get("reason") or (errs[0] if errs else "no successful round"))
    out = []
    if row["noisy"]:
        out.append("**NOISY**")
    if row["failed_rounds"]:
        out.append(f"{row['failed_rounds']} round(s) failed")
    if row["errors"]:
        out.append("wrk errors: " + ", ".join(f"{k} {v:,}" for k, v in row["errors"].items()))
    if row["pinned"] and row["wrk_cpu"] >= 0.9:
        out.append(f"client-bound? wrk used {row['wrk_cpu']:.0%} of its core")
    return "; ".join(out)


def cells(row: dict[str, Any]) -> str:
    if row["status"] != "ok":
        return "n/a | n/a | n/a | – | –"
    return (f"{fmt_rps(row['median_rps'])} | {fmt_latency(row['median_p50_ms'])} | "
            f"{fmt_latency(row['median_p99_ms'])} | {row['server_cpu']:.0%} | {row['wrk_cpu']:.0%}")


def fmt_latency(ms: float) -> str:
    """Microseconds below 1 ms (single-connection latencies are ~100 µs), else run.py's."""
    return f"{ms * 1000:.0f} µs" if ms < 1 else fmt_ms(ms)


def ratio(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    if a["status"] != "ok" or b["status"] != "ok" or not b["median_rps"]:
        return None
    return float(a["median_rps"] / b["median_rps"])


def fmt_ratio(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}×"


HEAD = "| req/s | p50 | p99 | server CPU | wrk CPU |"
RULE = "---:|---:|---:|---:|---:|"


def concurrency_md(rows: list[dict[str, Any]], args: argparse.Namespace,
                   summary: dict[str, Any]) -> str:
    lines = [f"| server | wrk -c {HEAD} c{args.high} / c{args.low} | notes |",
             f"|---|---:|{RULE}---:|---|"]
    by_key = {r["key"]: r for r in rows}
    for key in (SYNACK, UVICORN):
        low, high = by_key[f"{key} c{args.low}"], by_key[f"{key} c{args.high}"]
        r = ratio(high, low)
        summary[f"{key} c{args.high}/c{args.low}"] = r
        mark = ("" if r is None or key != SYNACK else
                f" ({'meets' if r >= CONCURRENCY_TARGET else '**below**'} ≥ {CONCURRENCY_TARGET})")
        for row, shown in ((low, ""), (high, fmt_ratio(r) + mark)):
            lines.append(f"| {row['label']} | {row['connections']} | {cells(row)} | {shown} | "
                         f"{notes(row)} |")
    return "\n".join(lines)


def workers_md(rows: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    by_key = {r["key"]: r for r in rows}
    two = by_key["w2 unpinned"]
    lines = [f"| setting {HEAD} busiest process | w2 ÷ this | notes |",
             f"|---|{RULE}---:|---:|---|"]
    for row in rows:
        r = ratio(two, row) if row is not two else None
        if row is not two:
            summary[f"workers 2 / {row['key']}"] = r
        busiest = f"{row['server_busiest']:.0%}" if row["status"] == "ok" else "–"
        lines.append(f"| {row['label']} | {cells(row)} | {busiest} | "
                     f"{fmt_ratio(r) if row is not two else '–'} | {notes(row)} |")
    return "\n".join(lines)


def latency_md(rows: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    lines = [f"| server {HEAD} notes |", f"|---|{RULE}---|"]
    for row in rows:
        if row["status"] == "ok":
            summary[f"{row['key']} p50_ms"] = row["median_p50_ms"]
            summary[f"{row['key']} p99_ms"] = row["median_p99_ms"]
        lines.append(f"| {row['label']} | {cells(row)} | {notes(row)} |")
    return "\n".join(lines)


def report(args: argparse.Namespace, meta: dict[str, Any],
           results: dict[str, list[dict[str, Any]]]) -> tuple[str, dict[str, Any]]:
    m = meta["machine"]
    summary: dict[str, Any] = {}
    pin = f"server on CPU {args.server_cpu}, wrk on CPU {args.client_cpu}" if TASKSET else "unpinned"
    out = [
        f"# synack scaling — {meta['date']}",
        "",
        f"Command: `{meta['command']}`; synack {meta['synack_git']}.  ",
        f"Machine: nproc {m['nproc']}, {m['cpu_model']}, Python {m['python']}, Linux "
        f"{m['kernel']}.  RLIMIT_NOFILE (wrk and servers inherit it): {meta['rlimit_nofile'][0]}.  ",
        f"asgi_hello (raw ASGI app), `wrk -t1 -d{args.duration}s --latency` after a "
        f"{args.warmup} s warm-up, {args.rounds} round(s) interleaved (medians); {pin} unless "
        "said otherwise; server CPU and wrk CPU in cores.",
        "",
    ]
    if "concurrency" in results:
        out += [f"## concurrency: c{args.high} vs c{args.low}", "",
                f"Pinned; target for synack: c{args.high} / c{args.low} ≥ {CONCURRENCY_TARGET}.",
                "", concurrency_md(results["concurrency"], args, summary), ""]
    if "workers" in results:
        out += ["## workers: --workers 2 vs --workers 1", "",
                f"wrk -c{args.low}.  The two-worker server cannot be pinned to one core, so it "
                "and wrk run unpinned and share the machine's cores (wrk takes part of the CPU "
                "the second worker would need); `--workers 1` is shown pinned (bench/run.py's "
                "setting) and unpinned (the same conditions as `--workers 2`).  *busiest "
                "process*: CPU of the server's busiest process (for `--workers 2`: a worker "
                "near 100 % while the server total is near 100 % means one worker served "
                "nearly every connection).", "",
                workers_md(results["workers"], summary), ""]
    if "latency" in results:
        out += ["## single-connection latency: wrk -t1 -c1", "",
                "Pinned; one connection, one request in flight: p50/p99 are the round-trip "
                "time of one request through the loopback.", "",
                latency_md(results["latency"], summary), ""]
    if any(r.get("noisy") for rows in results.values() for r in rows):
        out += ["> **NOISY**: other processes used the CPU during some rows; do not quote "
                "them.", ""]
    return "\n".join(out), summary


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="synack concurrency and scaling (see docstring).",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--only", action="append", default=[], metavar="EXPERIMENT",
                   help=f"run only these (repeat or comma-separate): {', '.join(EXPERIMENTS)}")
    p.add_argument("--duration", type=int, default=10, help="whole seconds of each wrk run")
    p.add_argument("--rounds", type=int, default=3, help="measurements per row (medians)")
    p.add_argument("--warmup", type=int, default=2, help="whole seconds of wrk warm-up")
    p.add_argument("--low", type=int, default=64, help="the usual wrk -c")
    p.add_argument("--high", type=int, default=1024, help="the many-connections wrk -c")
    add_machine_args(p)
    p.add_argument("--keep-tmp", action="store_true", help="keep server logs and wrk output")
    args = p.parse_args(argv)
    names = chosen_names(p, args.only, list(EXPERIMENTS), "experiment")
    args.experiments = names or list(EXPERIMENTS)
    if min(args.duration, args.rounds, args.low, args.high) < 1 or args.warmup < 0:
        p.error("--duration, --rounds, --low and --high must be positive, --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not shutil.which("wrk"):
        log("bench: wrk is not installed; run `bash bench/install.sh` first")
        return 2
    resource.setrlimit(resource.RLIMIT_NOFILE, _nofile())
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft < args.high + 256:
        log(f"bench: RLIMIT_NOFILE {soft} is too low for wrk -c{args.high} (ulimit -Hn)")
        return 2
    command = "python bench/scaling.py" + "".join(
        " " + shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    meta: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command, "machine": machine(), "versions": versions(),
        "synack_git": git_rev(), "rlimit_nofile": [soft], "load1_at_start": loadavg(),
        "settings": {k: v for k, v in vars(args).items() if k != "only"},
    }
    scratch = Path(tempfile.mkdtemp(prefix="synack-bench-scaling-"))
    (scratch / "static").mkdir()

    def on_term(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    log(f"bench: {command}\nbench: scratch dir {scratch}; load1 {meta['load1_at_start']:.2f}")
    results: dict[str, list[dict[str, Any]]] = {}
    interrupted = False
    try:
        for experiment in args.experiments:
            results[experiment] = run_experiment(args, experiment, scratch)
    except KeyboardInterrupt:
        interrupted = True
        log("bench: interrupted; stopping servers")
    finally:
        stop_all()
        if args.keep_tmp:
            log(f"bench: logs kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    if interrupted:
        return 1

    text, summary = report(args, meta, results)
    print(text)
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    payload = {"meta": meta, "summary": summary, "experiments": results}
    for path in (RESULTS_DIR / "scaling-latest.json", RESULTS_DIR / f"scaling-{stamp}.json"):
        path.write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS_DIR / "scaling-latest.md").write_text(text + "\n")
    log(f"bench: wrote {RESULTS_DIR / 'scaling-latest.json'} and scaling-latest.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
