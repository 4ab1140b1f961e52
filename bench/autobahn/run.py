#!/usr/bin/env python3
"""Autobahn|Testsuite conformance run: the fuzzing client against synack serving the echo app.

    bash bench/autobahn/install.sh            # once: wstest 0.8.2 under Python 2.7
    python bench/autobahn/run.py              # sections 1-7, 9, 10, 12, 13 (about 10-30 min)
    python bench/autobahn/run.py --cases 1.*,2.*   # a quick look

synack (one worker, ``bench/apps/ws_echo_asgi.py``, the default --ws settings) listens on a free
127.0.0.1 port; wstest connects to it case by case and writes its HTML/JSON report into
``bench/autobahn/reports/`` (ignored by git). The summary printed at the end, one row per
section with the count of each outcome (OK, NON-STRICT, INFORMATIONAL, UNIMPLEMENTED, FAILED),
is what the README shows. A benchmark-style command: it is not part of the test suite. Only
the processes it started are stopped, by PID.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PY27 = os.environ.get("PY27", "/root/.pyenv/versions/2.7.18/bin/python")
PREFIX = HERE / ".py27"
REPORTS = HERE / "reports"
DEFAULT_CASES = "1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*,10.*,12.*,13.*"
OUTCOMES = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_synack(port: int, extra: list[str]) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [sys.executable, "-m", "synack", "bench.apps.ws_echo_asgi:app", "--port", str(port),
         "--no-access-log", "--log-level", "warning", *extra],
        cwd=str(ROOT), env=env, stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            if process.poll() is not None:
                raise SystemExit("synack exited before listening")
            time.sleep(0.1)
    stop(process)
    raise SystemExit("synack did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def summarize(index: dict[str, dict[str, dict[str, str]]]) -> str:
    sections: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    failed: list[str] = []
    for agent_cases in index.values():
        for case, result in agent_cases.items():
            behavior = result.get("behavior", "?")
            close = result.get("behaviorClose", "?")
            outcome = "FAILED" if "FAILED" in (behavior, close) else behavior
            sections[case.split(".")[0]][outcome] += 1
            if outcome == "FAILED":
                failed.append(case)
    lines = ["| section | cases | " + " | ".join(OUTCOMES) + " |",
             "| --- | ---: | " + " | ".join("---:" for _ in OUTCOMES) + " |"]
    for section in sorted(sections, key=int):
        counts = sections[section]
        lines.append(f"| {section} | {sum(counts.values())} | "
                     + " | ".join(str(counts.get(outcome, 0)) for outcome in OUTCOMES) + " |")
    if failed:
        lines.append("")
        lines.append("FAILED: " + ", ".join(sorted(failed)))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=DEFAULT_CASES, help="comma-separated case patterns")
    parser.add_argument("--exclude", default="", help="comma-separated case patterns to skip")
    parser.add_argument("--server-arg", action="append", default=[], help="extra synack argument")
    args = parser.parse_args()
    check = subprocess.run([PY27, str(HERE / "wstest27.py"), "--check", str(PREFIX)], capture_output=True,
                           env={"PATH": os.environ.get("PATH", "")})
    if check.returncode != 0:
        raise SystemExit("wstest is not installed: run bash bench/autobahn/install.sh")
    port = free_port()
    REPORTS.mkdir(exist_ok=True)
    spec = {
        "outdir": str(REPORTS),
        "servers": [{"agent": "synack", "url": f"ws://127.0.0.1:{port}"}],
        "cases": args.cases.split(","),
        "exclude-cases": [case for case in args.exclude.split(",") if case],
        "exclude-agent-cases": {},
    }
    spec_path = REPORTS / "fuzzingclient.json"
    spec_path.write_text(json.dumps(spec, indent=2))
    server = start_synack(port, args.server_arg)
    try:
        started = time.monotonic()
        subprocess.run([PY27, str(HERE / "wstest27.py"), str(PREFIX), "-m", "fuzzingclient", "-s", str(spec_path)],
                       cwd=str(REPORTS), env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/")},
                       stdout=subprocess.DEVNULL, check=True, timeout=3600)
        elapsed = time.monotonic() - started
    finally:
        stop(server)
    index = json.loads((REPORTS / "index.json").read_text())
    print(f"Autobahn|Testsuite 0.8.2 fuzzingclient against synack, cases {args.cases}, {elapsed:.0f} s\n")
    print(summarize(index))


if __name__ == "__main__":
    main()
