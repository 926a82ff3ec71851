"""The schema table is what the loader reads and what docs/configuration.md says: every row is
read, its default passes its own rule, a new key is one new row, and the reference is the one
the table prints."""

from __future__ import annotations

import ast
import dataclasses
from collections import Counter
from typing import Any

import pytest

from patroni_citus.config import Passwords, SettingsError, checks, load_settings, schema
from patroni_citus.config.reference import COMMAND, reference
from patroni_citus.config.schema import DEBIAN, KEYS, PASSWORD_KEYS, Derived, Key
from tests.programrun import PROJECT_DIR

CONFIG_PACKAGE = PROJECT_DIR / "patroni_citus" / "config"
# A value of the wrong type for each kind a row may have, and what the reader says to it.
WRONG: dict[Any, tuple[Any, str]] = {
    bool: ("maybe", "must be true or false"),
    int: ("many", "must be an integer"),
    str: ([], "must be a string"),
    (str,): ([], "must be a string"),
    dict: ([], "must be an object"),
    list: ({}, "must be list"),
    (float, int): ("most", "must be float or an integer"),
}


def test_the_reference_is_the_one_the_schema_prints():
    written = (PROJECT_DIR / "docs" / "configuration.md").read_text()
    assert written == reference(), f"docs/configuration.md is out of date: run `{COMMAND}`"


def test_a_new_key_is_one_row(monkeypatch):
    row = Key("etcd.snapshotCount", int, 10000, "snapshots kept", checks.between(1, 10**6))
    monkeypatch.setattr(schema, "KEYS", (*schema.KEYS, row))
    load_settings({"etcd": {"snapshotCount": "5000"}}, {})  # read, not an unknown key
    with pytest.raises(SettingsError) as info:
        load_settings({"etcd": {"snapshotCount": 0}}, {})
    assert info.value.problems == [
        "patroni-citus:etcd.snapshotCount = 0: must be between 1 and 1000000"
    ]
    assert "| `etcd.snapshotCount` | integer | `10000` |  | snapshots kept |" in reference()


def test_a_path_has_one_row_or_one_per_configuration():
    repeated = [path for path, n in Counter(k.path for k in KEYS).items() if n > 1]
    for path in repeated:
        assert all(k.when is not None for k in KEYS if k.path == path), path


@pytest.mark.parametrize("key", [k for k in KEYS if k.rule is not None], ids=lambda k: k.path)
def test_a_literal_default_passes_its_rule(key: Key):
    if isinstance(key.default, Derived) or key.default is None or key.unset == "required":
        return
    assert key.rule is not None and key.rule(key.default) is None


def test_the_password_keys_are_the_model_fields():
    assert sorted(PASSWORD_KEYS.values()) == sorted(f.name for f in dataclasses.fields(Passwords))
    assert all(k.secret for k in KEYS if k.path in PASSWORD_KEYS)


def _config(key: Key, value: Any) -> tuple[dict[str, Any], str]:
    """A config setting `value` at the row's path, and the key a problem with it names."""
    path = key.path.replace("[]", "[0]").replace("*", "citus-coord-1")
    debian = key.when is not None and key.when.shown == DEBIAN
    config: dict[str, Any] = {"image": {"flavour": "debian"}} if debian else {}
    node = config
    parts = path.split(".")
    for part in parts[:-1]:
        if part.endswith("[0]"):
            node = node.setdefault(part[:-3], [{"name": "one"}])[0]
        else:
            node = node.setdefault(part, {})
    node[parts[-1]] = value
    return config, path


@pytest.mark.parametrize("key", [k for k in KEYS if not k.secret], ids=lambda k: k.path)
def test_every_row_is_read(key: Key):
    value, rule = WRONG[key.kind]
    config, path = _config(key, value)
    with pytest.raises(SettingsError) as info:
        load_settings(config, {})
    assert any(p.startswith(f"patroni-citus:{path} = ") and rule in p for p in info.value.problems)


def _imported(source: str) -> set[str]:
    """The top-level packages a module imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_nothing_in_the_config_layer_but_its_adapter_imports_pulumi():
    for module in CONFIG_PACKAGE.glob("*.py"):
        if module.name != "stack.py":
            assert "pulumi" not in _imported(module.read_text()), module.name
    assert "pulumi" in _imported((CONFIG_PACKAGE / "stack.py").read_text())
