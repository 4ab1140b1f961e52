"""The dependency rules of DESIGN.md, checked by scanning imports with the AST."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "synack"

# Pure stdlib modules the sans-I/O core may use.
H1_ALLOWED_STDLIB = {"re", "dataclasses", "enum", "typing", "http", "collections", "__future__"}


def _imports(path: Path) -> list[str]:
    """Absolute module names imported by ``path`` (relative imports resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if path.name == "__init__.py":
        module = module.rsplit(".", 1)[0] if module.endswith(".__init__") else module
        package = module
    else:
        package = module.rsplit(".", 1)[0]
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base)
                target = f"{prefix}.{node.module}" if node.module else prefix
                if node.module is None:
                    names.extend(f"{prefix}.{alias.name}" for alias in node.names)
                else:
                    names.append(target)
            else:
                names.append(node.module or "")
    return names


def _modules(subpackage: str) -> list[Path]:
    return sorted((PACKAGE / subpackage).rglob("*.py"))


def test_scanner_sees_imports() -> None:
    # Guard against a scanner that finds nothing (which would make every rule pass).
    names = _imports(PACKAGE / "server" / "protocol.py")
    assert "asyncio" in names
    assert any(name.startswith("synack.h1") for name in names)


@pytest.mark.parametrize("path", _modules("h1"), ids=lambda p: p.name)
def test_h1_is_sans_io(path: Path) -> None:
    for name in _imports(path):
        top = name.split(".")[0]
        if top == "synack":
            assert name.startswith("synack.h1"), f"{path.name} imports {name}"
        else:
            assert top in H1_ALLOWED_STDLIB, f"{path.name} imports {name} (h1 must stay sans-I/O)"


@pytest.mark.parametrize("path", _modules("server"), ids=lambda p: p.name)
def test_server_does_not_import_upper_layers(path: Path) -> None:
    for name in _imports(path):
        for forbidden in ("synack.apps", "synack.supervisor", "synack.cli", "synack.run", "synack.config"):
            assert not name.startswith(forbidden), f"{path.name} imports {name}"


@pytest.mark.parametrize("path", _modules("apps"), ids=lambda p: p.name)
def test_apps_use_only_the_exchange_contract(path: Path) -> None:
    for name in _imports(path):
        if name.startswith("synack.server"):
            assert name == "synack.server.exchange", f"{path.name} imports {name}"
        assert not name.startswith(("synack.cli", "synack.run", "synack.supervisor")), name


def _stdlib(name: str) -> bool:
    return name.split(".")[0] in sys.stdlib_module_names or name == "__future__"


def _check_only(path: Path, allowed: tuple[str, ...]) -> None:
    """``path`` imports the stdlib and, from synack, only ``allowed`` modules (or below them)."""
    for name in _imports(path):
        if name.split(".")[0] == "synack":
            assert any(name == ok or name.startswith(ok + ".") for ok in allowed), f"{path.name} imports {name}"
        else:
            assert _stdlib(name), f"{path.name} imports {name} (only the stdlib besides {allowed})"


SUPERVISOR_MAY_IMPORT = ("synack.config", "synack.logs", "synack.server.listeners", "synack.server.metrics",
                         "synack.server.worker", "synack.supervisor")


@pytest.mark.parametrize("path", _modules("supervisor"), ids=lambda p: p.name)
def test_supervisor_sees_processes_not_http(path: Path) -> None:
    # Never h1 or apps: the master forks workers and never imports the app; the one request
    # it answers, a scrape of --metrics, server/metrics.py reads for it.
    _check_only(path, SUPERVISOR_MAY_IMPORT)


def test_supervisor_rule_can_fail() -> None:
    # The arbiter does import the worker's side of their pipes: the scanner must see it.
    assert "synack.server.worker" in _imports(PACKAGE / "supervisor" / "arbiter.py")


def test_config_imports_only_the_slices_it_builds() -> None:
    _check_only(PACKAGE / "config.py", ("synack.h1.limits", "synack.server.timeouts"))
    assert "synack.h1.limits" in _imports(PACKAGE / "config.py")


def test_exchange_imports_only_h1() -> None:
    # The seam: Exchange sees a ServerConnection and a Channel, never the driver's modules
    # (synack.compiled, for mypyc's class attributes, imports nothing of synack).
    _check_only(PACKAGE / "server" / "exchange.py", ("synack.h1", "synack.compiled"))
    assert any(name.startswith("synack.h1") for name in _imports(PACKAGE / "server" / "exchange.py"))


def test_compiled_imports_nothing_of_synack() -> None:
    # Every layer may import it (mypyc_attr) and setup.py runs it alone (COMPILED): it must
    # stay a leaf, and outside the stdlib it tries only mypy_extensions (with a fallback).
    for name in _imports(PACKAGE / "compiled.py"):
        assert name.split(".")[0] != "synack", name
        assert _stdlib(name) or name == "mypy_extensions", name


def _exits_or_prints(node: ast.AST) -> str | None:
    """What ``node`` does that only cli.py may: print, exit, or write to the terminal."""
    if isinstance(node, ast.Raise) and node.exc is not None:
        raised = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        if isinstance(raised, ast.Name) and raised.id == "SystemExit":
            return "raise SystemExit"
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    if isinstance(func, ast.Name) and func.id in ("print", "exit", "quit"):
        return f"{func.id}()"
    if isinstance(func, ast.Attribute):
        owner = func.value
        if func.attr == "exit" and isinstance(owner, ast.Name) and owner.id == "sys":
            return "sys.exit()"
        if (func.attr == "write" and isinstance(owner, ast.Attribute) and owner.attr in ("stdout", "stderr")
                and isinstance(owner.value, ast.Name) and owner.value.id == "sys"):
            return f"sys.{owner.attr}.write()"
    return None


def test_only_cli_exits_or_prints() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name in ("cli.py", "__main__.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            found = _exits_or_prints(node)
            if found:
                offenders.append(f"{path.relative_to(PACKAGE)}:{getattr(node, 'lineno', '?')} {found}")
    assert offenders == []


def test_exit_and_print_rule_can_fail() -> None:
    tree = ast.parse(
        "print(1)\nsys.exit(2)\nsys.stderr.write('x')\nraise SystemExit(3)\nexit()\n"
    )
    found = [_exits_or_prints(node) for node in ast.walk(tree)]
    assert {"print()", "sys.exit()", "sys.stderr.write()", "raise SystemExit", "exit()"} <= set(found)
    assert "sys.stderr.write()" in {_exits_or_prints(node) for node in ast.walk(ast.parse((PACKAGE / "cli.py").read_text()))}


def test_nothing_imports_cli() -> None:
    for path in PACKAGE.rglob("*.py"):
        if path.name in ("__main__.py",):
            continue
        for name in _imports(path):
            assert name != "synack.cli", f"{path} imports synack.cli"


def test_httpdate_is_pure_stdlib() -> None:
    # Shared by the driver's clock and the static engine: a leaf that imports nothing of synack.
    _check_only(PACKAGE / "httpdate.py", ())
    assert "time" in _imports(PACKAGE / "httpdate.py") or "calendar" in _imports(PACKAGE / "httpdate.py")
