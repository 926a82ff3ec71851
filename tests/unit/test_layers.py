"""The layers of patroni_citus hold: config and plan are pure (no Pulumi), the resources take
their own typed inputs (never the whole Settings), and only patroni_citus/conventions.py
reaches into the policy pack."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "patroni_citus"
# The Pulumi config adapter is the one config module that reads the Pulumi runtime.
PULUMI_ADAPTER = PACKAGE / "config" / "stack.py"


def modules(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).glob("*.py"))


def imported(path: Path) -> set[str]:
    """Every module `path` imports, absolute, with relative imports resolved in the package."""
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize(
    "path",
    [p for p in modules("config") + modules("plan") if p != PULUMI_ADAPTER],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_config_and_plan_never_import_pulumi(path: Path) -> None:
    pulumi = sorted(n for n in imported(path) if n.split(".")[0].startswith("pulumi"))
    assert not pulumi, f"{path.name} is pure and imports {pulumi}"


@pytest.mark.parametrize("path", modules("resources"), ids=lambda p: p.name)
def test_resources_never_take_the_whole_settings(path: Path) -> None:
    assert "patroni_citus.config.Settings" not in imported(path), (
        f"{path.name}: a component takes its own Args (a plan record), not Settings"
    )


def test_only_one_module_imports_the_policy_pack() -> None:
    importers = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if any(name.split(".")[0] == "policies" for name in imported(path))
    )
    assert importers == ["conventions.py"]


def test_every_component_has_typed_args_and_its_own_type_token() -> None:
    for path in modules("resources"):
        tree = ast.parse(path.read_text())
        components = [
            node
            for node in tree.body
            if isinstance(node, ast.ClassDef)
            and any(ast.unparse(base) == "pulumi.ComponentResource" for base in node.bases)
        ]
        assert len(components) <= 1, f"{path.name}: one component per file"
        for component in components:
            classes = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
            assert f"{component.name}Args" in classes, f"{component.name} has no Args"
            assert f'"patroni-citus:index:{component.name}"' in path.read_text()
