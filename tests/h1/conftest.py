"""h1 test configuration.

When a hypothesis test fails, hypothesis's pytest plugin imports its patch writer, which pulls
in libcst, which subclasses the deprecated ``mypy_extensions.TypedDict``. Under the project's
``filterwarnings = error`` that DeprecationWarning turns a plain test failure into a pytest
INTERNALERROR that hides the falsifying example. Import the patch writer once here, with that
one warning silenced, so a failure reads as a failure.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "mypy_extensions.TypedDict", DeprecationWarning)
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:  # no libcst: hypothesis skips writing patches, nothing to do
        pass
