"""``--workers auto``: the CPUs this process may use, from its affinity and its cgroup's CPU
quota (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), whichever is smaller."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from synack.config import available_cpus
from tests.test_operate import _env


def _cgroup(tmp_path: Path, files: dict[str, str], membership: str) -> tuple[str, str]:
    for name, text in files.items():
        target = tmp_path / "fs" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    own = tmp_path / "self-cgroup"
    own.write_text(membership)
    return str(tmp_path / "fs"), str(own)


AFFINITY = len(os.sched_getaffinity(0))


@pytest.mark.parametrize("files, membership, expected", [
    ({"app/cpu.max": "150000 100000\n"}, "0::/app\n", min(AFFINITY, 2)),  # 1.5 CPUs rounds up
    ({"app/cpu.max": "50000 100000\n"}, "0::/app\n", 1),
    ({"app/cpu.max": "max 100000\n"}, "0::/app\n", AFFINITY),
    ({"cpu.max": "100000 100000\n", "app/cpu.max": "max 100000\n"}, "0::/app\n", 1),  # an ancestor's quota
    ({"cpu,cpuacct/app/cpu.cfs_quota_us": "100000\n", "cpu,cpuacct/app/cpu.cfs_period_us": "100000\n"},
     "4:cpu,cpuacct:/app\n", 1),  # cgroup v1
    ({"cpu,cpuacct/app/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/app/cpu.cfs_period_us": "100000\n"},
     "4:cpu,cpuacct:/app\n", AFFINITY),
    ({}, "0::/\n", AFFINITY),
])
def test_the_cgroup_quota_caps_the_count(tmp_path: Path, files: dict[str, str], membership: str,
                                          expected: int) -> None:
    root, own = _cgroup(tmp_path, files, membership)
    assert available_cpus(root, own) == expected


def test_workers_auto_follows_the_cpu_affinity() -> None:
    """A server started on one CPU (sched_setaffinity) runs one worker with --workers auto."""
    result = subprocess.run(
        [sys.executable, "-c", "import os, sys; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))});"
         " sys.argv[0] = 'synack'; from synack.cli import main; sys.exit(main(sys.argv[1:]))",
         "--workers", "auto", "--print-config"],
        env=_env(), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"^workers = 1$", result.stdout, re.MULTILINE), result.stdout


@pytest.mark.skipif(AFFINITY < 2, reason="needs two CPUs")
def test_workers_auto_serves_with_one_worker_per_cpu(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(["--workers", "auto", "--no-access-log", "hello:app"], env={"WEB_CONCURRENCY": ""})
    expected = available_cpus()
    assert f"with {expected} worker(s) under a supervisor" in server.stderr_text()


@pytest.mark.parametrize("source", ["flag", "env", "web_concurrency"])
def test_auto_from_every_source(source: str) -> None:
    args, env = ["--print-config"], _env()
    if source == "flag":
        args += ["-w", "AUTO"]
    elif source == "env":
        env["SYNACK_WORKERS"] = "auto"
    else:
        env["WEB_CONCURRENCY"] = "auto"
    result = subprocess.run([sys.executable, "-m", "synack", *args], env=env, capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert f"\nworkers = {available_cpus()}\n" in result.stdout
