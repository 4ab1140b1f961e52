"""The compiled build's module list (``synack/compiled.py``) against the source tree.

The compiled run of .ci/run proves that the listed modules compile and behave; these checks
catch, in every run, a list that names a module no longer there or one that must stay
interpreted.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from synack.compiled import COMPILED
from synack.config import Config

PACKAGE_PARENT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("module", COMPILED)
def test_each_compiled_module_exists(module: str) -> None:
    assert (PACKAGE_PARENT / (module.replace(".", "/") + ".py")).is_file(), module


def test_settings_declarations_stay_interpreted() -> None:
    # config reads the annotations of these dataclasses; a compiled dataclass loses
    # ``int | None`` in them (mypyc writes the runtime type it stores).
    sections = [field.metadata["section"] for field in dataclasses.fields(Config) if "section" in field.metadata]
    assert sections, "Config has no sections: the check would pass vacuously"
    for section in sections:
        assert section.__module__ not in COMPILED, section
    assert Config.__module__ not in COMPILED
