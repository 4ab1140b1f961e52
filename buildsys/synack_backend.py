"""The PEP 517 build backend: setuptools', plus mypy as a build requirement when SYNACK_COMPILE=1.

mypy carries mypyc, which ``setup.py`` uses to compile the request path; the default
(pure-Python) build asks for nothing beyond setuptools.
"""

from __future__ import annotations

import os

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403 (every hook not overridden below)

#: What the compiled build needs besides setuptools (mypyc comes with mypy).
COMPILE_REQUIRES = ["mypy>=1.10"]


def get_requires_for_build_wheel(config_settings: dict[str, str | list[str]] | None = None) -> list[str]:
    if os.environ.get("SYNACK_COMPILE") != "1":
        return list(_setuptools.get_requires_for_build_wheel(config_settings))
    # Not setuptools' hook, which runs setup.py, whose compiled path imports mypyc before it
    # is installed; setup.py declares no setup_requires, so the hook would add nothing else.
    return list(COMPILE_REQUIRES)
