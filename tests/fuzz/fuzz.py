"""Run one fuzz target under atheris (coverage-guided, libFuzzer): see README.md.

    python -m tests.fuzz.fuzz TARGET [--corpus DIR] [libFuzzer flags such as -runs=N]

The synack package is instrumented for coverage; the target's seeds (``seeds/TARGET``, the
regression cases in ``regressions/TARGET`` and, for ``h1`` and ``static``, the request files
of ``tests/h1/corpus``) are copied into the working corpus directory, which libFuzzer then
grows. A crash leaves ``crash-*`` in the artifact directory (``-artifact_prefix=``); turn it
into a regression case (README.md says how).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent.parent
H1_CORPUS = REPOSITORY / "tests" / "h1" / "corpus"
TARGET_NAMES = ("h1", "path", "ranges", "conditional", "static")


def seed_files(target: str) -> list[Path]:
    """Every seed of ``target``: its own seeds, its regression cases, and the h1 corpus."""
    files = sorted((HERE / "seeds" / target).glob("*")) + sorted((HERE / "regressions" / target).glob("*"))
    if target in ("h1", "static"):
        files += sorted(H1_CORPUS.glob("*/*.http"))
    return [file for file in files if file.is_file()]


def prepare_corpus(target: str, corpus: Path) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    for index, source in enumerate(seed_files(target)):
        destination = corpus / f"seed-{index:04d}-{source.name}"
        if not destination.exists():
            shutil.copyfile(source, destination)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("target", choices=TARGET_NAMES)
    parser.add_argument("--corpus", type=Path, default=None,
                        help="working corpus directory (default: $TMPDIR/synack-fuzz/TARGET)")
    options, libfuzzer_flags = parser.parse_known_args(argv)
    corpus = options.corpus or Path(tempfile.gettempdir()) / "synack-fuzz" / options.target
    if not any(not flag.startswith("-") for flag in libfuzzer_flags):
        prepare_corpus(options.target, corpus)

    import atheris

    # (atheris's "RegEx" hook is not enabled: its pattern proxy does not take search()'s
    # ``pos`` argument, which h1 uses. The dictionaries give the fuzzer the tokens instead.)
    with atheris.instrument_imports(include=["synack"]):
        from tests.fuzz import targets
    target = targets.TARGETS[options.target]
    dictionary = HERE / "dictionaries" / f"{options.target}.dict"
    flags = list(libfuzzer_flags)
    if dictionary.exists() and not any(flag.startswith("-dict=") for flag in flags):
        flags.append(f"-dict={dictionary}")
    if not any(flag.startswith("-max_len=") for flag in flags):
        flags.append("-max_len=4096")
    # Input files given (to replay or minimise one): libFuzzer runs just those.
    inputs = [] if any(not flag.startswith("-") for flag in flags) else [str(corpus)]
    atheris.Setup([sys.argv[0], *flags, *inputs], target)
    atheris.Fuzz()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main(sys.argv[1:])
