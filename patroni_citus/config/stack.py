"""Reads this project's stack config from the Pulumi runtime into `Settings`, once."""

from __future__ import annotations

import json
from typing import Any

from pulumi.runtime import config as runtime_config

from . import (
    CONFIG_NAMESPACE,
    PASSWORD_KEYS,
    Settings,
    Unreadable,
    config_key,
    load_settings,
)


def _project_keys() -> set[str]:
    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    prefix = f"{CONFIG_NAMESPACE}:"
    return {key[len(prefix) :] for key in keys if key.startswith(prefix)}


def _parse(value: Any) -> Any:
    """The engine hands structured values over as JSON text; plain strings stay strings."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except RecursionError:
        return Unreadable("is nested too deeply to read")
    except ValueError:
        return value


def _password(value: Any) -> Any:
    """A password is text, even one that reads as a JSON number; only `--path` objects and
    lists are taken apart (and then refused)."""
    parsed = _parse(value)
    return parsed if isinstance(parsed, (dict, list, Unreadable)) else value


def _is_secret(key: str) -> bool:
    return bool(runtime_config.is_config_secret(config_key(key)))


def read_settings() -> Settings:
    """Validates the whole stack config; raises SettingsError listing every problem."""
    keys = _project_keys()
    raw = {
        key: _parse(runtime_config.get_config(config_key(key)))
        for key in keys
        if key not in PASSWORD_KEYS
    }
    # A password set with `--path` arrives as an object: parsed, so it is refused as one.
    secrets = {
        key: _password(runtime_config.get_config(config_key(key)))
        for key in PASSWORD_KEYS
        if key in keys
    }
    plaintext = frozenset(key for key in PASSWORD_KEYS if key in keys and not _is_secret(key))
    secret_sections = frozenset(key for key in raw if _is_secret(key))
    return load_settings(raw, secrets, plaintext, secret_sections)
