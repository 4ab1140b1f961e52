#!/usr/bin/env bash
# Install the benchmark peers and load generator. Idempotent: re-running only
# installs what is missing (pip and apt both skip satisfied requirements).
#
#   bash bench/install.sh
set -euo pipefail

PYTHON="${PYTHON:-python}"

# Python peers. uvicorn[standard] brings httptools and uvloop.
"$PYTHON" -m pip install --quiet --disable-pip-version-check \
    "uvicorn[standard]" h11 hypercorn granian gunicorn waitress

# synack itself (editable, so bench runs the working tree) with uvloop.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if ! "$PYTHON" -c "import synack" >/dev/null 2>&1; then
    "$PYTHON" -m pip install --quiet --disable-pip-version-check -e "$here[fast]"
fi

# System tools: wrk (load), nginx (static peer), taskset (util-linux, CPU pinning).
need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v taskset >/dev/null 2>&1 || need+=(util-linux)
if [ "${#need[@]}" -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
    # Debian starts nginx as a service on install; the bench runs its own copy.
fi

echo "bench peers installed:"
"$PYTHON" - <<'PY'
import importlib.metadata as md
for name in ("uvicorn", "httptools", "uvloop", "h11", "hypercorn", "granian", "gunicorn", "waitress"):
    try:
        print(f"  {name} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"  {name} MISSING")
PY
for tool in wrk nginx taskset; do
    printf '  %s %s\n' "$tool" "$(command -v "$tool" || ls /usr/sbin/$tool 2>/dev/null || echo MISSING)"
done
