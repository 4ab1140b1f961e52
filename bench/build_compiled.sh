#!/usr/bin/env bash
# The compiled build in place, for bench/run.py's synack-compiled entry: a copy of this
# checkout's tracked files in DIR (default /tmp/synack-compiled: outside the checkout, where
# mypy would take the copy's modules for the checkout's own) whose request path
# mypyc compiles (setup.py with SYNACK_COMPILE=1) for the Python that runs the benchmark.
#
#   bash bench/build_compiled.sh                    # python3 (needs mypy and setuptools)
#   PYTHON=python3.12 bash bench/build_compiled.sh /tmp/synack-compiled
#   python bench/run.py --servers synack,granian    # synack-compiled runs beside synack
#
# Rebuild after changing the source: the copy does not follow the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/tmp/synack-compiled}
python=${PYTHON:-python3}
if ! "$python" -c "import mypyc.build, setuptools" 2>/dev/null; then
    echo "build_compiled: $python has no mypy (mypyc) or setuptools: $python -m pip install mypy setuptools" >&2
    exit 1
fi
rm -rf "$dir"
mkdir -p "$dir"
git ls-files -z | xargs -0 cp --parents -t "$dir"
cd "$dir"
SYNACK_COMPILE=1 "$python" setup.py -q build_ext --inplace >build.log 2>&1 || {
    tail -20 build.log >&2
    exit 1
}
PYTHONSAFEPATH=1 PYTHONPATH=. "$python" -m synack --version
