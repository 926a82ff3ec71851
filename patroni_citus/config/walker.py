"""Reads a section by walking its rows of the schema table: every value typed, checked and
recorded by its full path, then every key no row names refused."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional

from .reader import Reader, Values
from .schema import LISTS, OPTIONAL_SECTIONS, Derived, Key, general, rows


def walk(r: Reader, values: Values) -> None:
    """Reads every row of r's section, each subsection where its first row stands."""
    prefix = len(general(r.section)) + 1
    opened: set[str] = set()
    for key in rows(r.section):
        name, dot, _ = key.path[prefix:].partition(".")
        if not dot and name == "*":
            _read_map(r, key, values)
        elif not dot:
            read_key(r, key, values)
        elif name not in opened:
            opened.add(name)
            _walk_subsection(r, name, values)
    r.finish()


def _read_map(r: Reader, key: Key, values: Values) -> None:
    """Every name set in a map section, read by its `*` row; their paths recorded at its path."""
    names = sorted(map(str, r.raw))
    values.read[r.section] = tuple(f"{r.section}.{name}" for name in names)
    for name in names:
        read_key(r, key, values, name)


def _walk_subsection(r: Reader, name: str, values: Values) -> None:
    path = f"{r.section}.{name}"
    if name.endswith("[]"):
        _walk_list(r, name[:-2], values)
    elif general(path) not in OPTIONAL_SECTIONS or r.has(name):
        walk(r.section_reader(name), values)


def _walk_list(r: Reader, name: str, values: Values) -> None:
    """A list of objects: its items' paths are recorded at the list's path."""
    path = f"{r.section}.{name}"
    most, what = LISTS[general(path)]
    items = r.raw.pop(name, None)
    if items is None:
        return
    if not isinstance(items, list) or not items or len(items) > most:
        r.fail(name, items, f"must be a list of 1 to {most} {what}")
        return
    read = []
    for index, item in enumerate(items):
        item_reader = Reader(f"{path}[{index}]", item, values, r.secret)
        if isinstance(item, Mapping):
            walk(item_reader, values)
            read.append(item_reader.section)
    values.read[path] = tuple(read)


def read_key(r: Reader, key: Key, values: Values, name: Optional[str] = None) -> None:
    """Reads one row's value (under `name` for a map's `*` row) into `values`."""
    name = key.name if name is None else name
    path = f"{r.section}.{name}"
    if key.when is not None and not key.when.test(values):
        if key.when.refusal is not None:
            r.refuse(name, key.when.refusal)
        return
    if r.has(name):
        values.given[path] = r.raw[name]
    default = key.default.of(values) if isinstance(key.default, Derived) else key.default
    values.read[path] = r.value(name, default, key.kind, key.rule)
