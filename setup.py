"""The optional compiled build; everything else about the package is in pyproject.toml.

With ``SYNACK_COMPILE=1``, mypyc compiles the modules listed in ``synack/compiled.py`` into
extension modules installed beside their sources (the import system prefers the extension).
Without it, no extension is built: the pure-Python package needs no compiler and no mypy.
"""

from __future__ import annotations

import os
import runpy
from pathlib import Path
from typing import Any

from setuptools import setup


def _ext_modules() -> list[Any]:
    if os.environ.get("SYNACK_COMPILE") != "1":
        return []
    from mypyc.build import mypycify  # a build requirement only on this path (buildsys/backend.py)

    here = Path(__file__).parent
    modules: tuple[str, ...] = runpy.run_path(str(here / "synack" / "compiled.py"))["COMPILED"]
    paths = [module.replace(".", "/") + ".py" for module in modules]
    # The build environment has none of the optional packages (uvloop, websockets) that modules
    # outside the request path import: their types do not matter to the compiled modules, and
    # `mypy --strict` in the test suite is the type check of the whole package. mypyc checks
    # against the running Python, where an ignore needed for 3.11 (pyproject.toml) may be unused.
    options = ["--ignore-missing-imports", "--follow-imports=silent", "--no-warn-unused-ignores"]
    return mypycify([*options, *paths], opt_level="3", group_name="synack")


setup(ext_modules=_ext_modules())
