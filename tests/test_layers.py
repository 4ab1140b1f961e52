"""The dependency rules of DESIGN.md, checked by scanning imports with the AST."""

from __future__ import annotations

import ast
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


def test_only_cli_exits_or_prints() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name in ("cli.py", "__main__.py"):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                if isinstance(func, ast.Name) and func.id == "print":
                    offenders.append(f"{path.name}:{node.lineno} print()")
                if isinstance(func, ast.Attribute) and func.attr == "exit" and getattr(func.value, "id", "") == "sys":
                    offenders.append(f"{path.name}:{node.lineno} sys.exit()")
    assert offenders == []


def test_nothing_imports_cli() -> None:
    for path in PACKAGE.rglob("*.py"):
        if path.name in ("__main__.py",):
            continue
        for name in _imports(path):
            assert name != "synack.cli", f"{path} imports synack.cli"
