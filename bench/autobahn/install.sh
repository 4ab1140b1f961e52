#!/usr/bin/env bash
# Install the Autobahn|Testsuite fuzzing client (0.8.2, the last release that runs; it needs
# Python 2.7) into a scratch prefix, bench/autobahn/.py27 (ignored by git). Idempotent.
#
#   bash bench/autobahn/install.sh          # then: python bench/autobahn/run.py
#
# The 25.x releases on the index do not import under Python 3, so the period dependencies are
# pinned: Twisted < 21, autobahn 0.10.9, txaio 1.1.0, PyHamcrest < 2, setuptools < 45.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY27="${PY27:-/root/.pyenv/versions/2.7.18/bin/python}"
prefix="$here/.py27"
if [ ! -x "$PY27" ]; then
    echo "Python 2.7 not found at $PY27 (set PY27=/path/to/python2.7)" >&2
    exit 1
fi
if PYTHONPATH="" "$PY27" "$here/wstest27.py" --check "$prefix" >/dev/null 2>&1; then
    echo "autobahntestsuite already installed in $prefix"
    exit 0
fi
"$PY27" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --prefix "$prefix" \
    "autobahntestsuite==0.8.2" "autobahn==0.10.9" "txaio==1.1.0" "Twisted<21" \
    "PyHamcrest<2" "setuptools<45" "zope.interface<5" "six<1.17" "pyOpenSSL<20" "cryptography<3.4" \
    "service_identity<19" "attrs<21" "Automat<21" "constantly<16" "incremental<22" "hyperlink<21" \
    "idna<3" "PyHamcrest<2" "characteristic" "pyasn1<0.5" "pyasn1-modules<0.3" "cffi<1.16" \
    "pycparser<2.22" "enum34" "ipaddress" "unittest2" "jinja2<3" "MarkupSafe<2" "klein<21" \
    "Werkzeug<1" "wsaccel" "mock<4" "pbr<6" "funcsigs" "linecache2" "traceback2" "argparse"
PYTHONPATH="" "$PY27" "$here/wstest27.py" --check "$prefix"
echo "autobahntestsuite installed in $prefix"
