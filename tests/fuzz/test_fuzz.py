"""The fuzz targets in the ordinary test run: every seed and regression case replays through
its target (no atheris needed), and each target runs coverage-guided under atheris for a
fixed number of inputs (a few seconds each; skipped when atheris is not installed — it has
wheels for Linux x86-64 only). Longer runs: see README.md."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SYNACK_PATH
from tests.fuzz import targets
from tests.fuzz.fuzz import TARGET_NAMES, seed_files

ROOT = Path(__file__).resolve().parent.parent.parent
#: Inputs per target in the bounded run: about 2-4 s each on a developer machine.
BOUNDED_RUNS = {"h1": 25_000, "path": 20_000, "ranges": 100_000, "conditional": 40_000, "static": 50_000}
#: A ceiling on each bounded run, for a slow or loaded machine (libFuzzer stops cleanly).
BOUNDED_SECONDS = 5

CASES = [(name, path) for name in TARGET_NAMES for path in seed_files(name)]


def test_every_target_has_seeds() -> None:
    assert set(targets.TARGETS) == set(TARGET_NAMES)
    for name in TARGET_NAMES:
        assert any(case_name == name for case_name, _ in CASES), name


@pytest.mark.parametrize("name, path", CASES, ids=[f"{name}:{path.parent.name}/{path.name}" for name, path in CASES])
def test_seeds_and_regressions_replay(name: str, path: Path) -> None:
    targets.TARGETS[name](path.read_bytes())


# The test extra installs atheris wherever it has wheels (Linux x86-64): there, missing is a
# failure; elsewhere the bounded run cannot happen (the seeds and regressions above still replay).
@pytest.mark.skipif(not (sys.platform == "linux" and platform.machine() == "x86_64"),
                    reason="atheris has wheels for Linux x86-64 only")
@pytest.mark.parametrize("name", TARGET_NAMES)
def test_bounded_fuzz_run(name: str, tmp_path: Path) -> None:
    # libFuzzer ends the process without running atexit hooks: the targets' temporary trees go
    # under tmp_path, which pytest removes, instead of piling up in /tmp.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([SYNACK_PATH, str(ROOT)]), TMPDIR=str(tmp_path))
    command = [sys.executable, "-m", "tests.fuzz.fuzz", name, "--corpus", str(tmp_path / "corpus"),
               f"-runs={BOUNDED_RUNS[name]}", f"-max_total_time={BOUNDED_SECONDS}", "-seed=1",
               f"-artifact_prefix={tmp_path}/", "-print_final_stats=1"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    crashes = sorted(tmp_path.glob("crash-*")) + sorted(tmp_path.glob("timeout-*"))
    found = "\n".join(f"{crash.name}: {crash.read_bytes()!r}" for crash in crashes)
    assert result.returncode == 0 and not crashes, f"{found}\n{result.stderr[-4000:]}"
    assert "Done " in result.stderr, result.stderr[-2000:]
