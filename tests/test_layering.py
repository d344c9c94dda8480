"""Lower layers never import upper ones (DESIGN §8).

Each module's vcpd imports (absolute and relative, including imports inside
functions) are read with ``ast`` and checked against the allowed set of its
layer; a service may not import a sibling service; production code never
imports vcpd.testing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

L0 = {"vcpd", "vcpd.errors", "vcpd.keys", "vcpd.config", "vcpd.logs"}
ALLOWED: dict[str, set[str]] = {
    "vcpd.errors": set(),
    "vcpd.logs": set(),
    "vcpd.keys": {"vcpd.errors"},
    "vcpd.config": {"vcpd.errors", "vcpd.keys"},
    "vcpd.vcinit": {"vcpd.errors", "vcpd.keys", "vcpd.config"},
    "vcpd.math": {"vcpd.errors"},
    "vcpd.wire": {"vcpd.errors", "vcpd.math"},
    "vcpd.store": {"vcpd.errors"},
    "vcpd.protocol": L0 | {"vcpd.math", "vcpd.wire"},
    "vcpd.net": L0 | {"vcpd.wire"},
    "vcpd.services": L0 | {"vcpd.math", "vcpd.wire", "vcpd.store", "vcpd.protocol"},
    "vcpd.api": L0 | {"vcpd.math", "vcpd.wire", "vcpd.protocol", "vcpd.services"},
    "vcpd.client": L0 | {"vcpd.math", "vcpd.wire", "vcpd.net"},
    "vcpctl": {"vcpd", "vcpd.errors", "vcpd.keys", "vcpd.config", "vcpd.vcinit", "vcpd.client"},
}
TOP = {"vcpd.node", "vcpd.daemon", "vcpd.__main__", "vcpd.testing", "vcpd.procvc"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                if node.module is None:
                    found.update(f"{target}.{alias.name}" for alias in node.names)
                else:
                    found.add(target)
            elif node.module:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "vcpd" or name.startswith(("vcpd.", "vcpctl"))}


def _group(module: str) -> str | None:
    for group in sorted(ALLOWED, key=len, reverse=True):
        if module == group or module.startswith(group + "."):
            return group
    return None


def _real_modules(names: set[str]) -> set[str]:
    """Map ``vcpd.math.field.PrimeField`` style names to the module they live in."""
    result = set()
    for name in names:
        parts = name.split(".")
        while parts:
            candidate = ROOT.joinpath(*parts)
            if candidate.with_suffix(".py").exists() or (candidate / "__init__.py").exists():
                result.add(".".join(parts))
                break
            parts.pop()
    return result


SOURCES = sorted(p for p in (ROOT / "vcpd").rglob("*.py")) + sorted((ROOT / "vcpctl").rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_imports_only_lower_layers(path: Path) -> None:
    module = _module_name(path)
    imported = _real_modules(_imports(path))
    if module in TOP or module in {"vcpd", "vcpctl.__main__"}:
        if module not in {"vcpd.testing", "vcpd.procvc"}:
            return
    if module not in {"vcpd.testing", "vcpd.procvc"}:
        assert "vcpd.testing" not in imported and "vcpd.procvc" not in imported, f"{module} imports vcpd.testing (test doubles only)"
    if module in TOP:
        assert not imported & {"vcpd.node", "vcpd.daemon"}, f"{module} imports the daemon"
        return
    group = _group(module)
    assert group is not None, f"{module} belongs to no layer; add it to ALLOWED in {__file__}"
    allowed = ALLOWED[group]
    for target in imported:
        target_group = _group(target) or target
        if target_group == group:
            continue
        assert target_group in allowed or target in allowed, (
            f"{module} (layer {group}) may not import {target}; allowed: {sorted(allowed)}"
        )


def test_services_do_not_import_each_other() -> None:
    services = ROOT / "vcpd" / "services"
    for path in sorted(services.rglob("*.py")):
        own = _module_name(path)
        for target in _real_modules(_imports(path)):
            if target.startswith("vcpd.services.") and target not in {"vcpd.services.ports", own}:
                own_service = own.split(".")[2] if own.count(".") >= 2 else ""
                assert target.split(".")[2] == own_service, f"{own} imports sibling service {target}"


def test_checker_sees_a_violation(tmp_path: Path) -> None:
    """The checker itself must catch a lower layer importing an upper one."""
    bad = ROOT / "vcpd" / "math" / "_layering_probe.py"
    bad.write_text("from vcpd.net import mesh\n")
    try:
        with pytest.raises(AssertionError, match="may not import"):
            test_module_imports_only_lower_layers(bad)
    finally:
        bad.unlink()
