"""Reads this project's stack config from the Pulumi runtime into `Settings`, once."""

from __future__ import annotations

import json
from typing import Any

from pulumi.runtime import config as runtime_config

from .settings import PASSWORD_KEYS, Settings, load_settings

PROJECT = "patroni-citus"


def _project_keys() -> set[str]:
    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    prefix = f"{PROJECT}:"
    return {key[len(prefix):] for key in keys if key.startswith(prefix)}


def _parse(value: Any) -> Any:
    # The engine hands structured values over as JSON text.
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def read_settings() -> Settings:
    """Validates the whole stack config; raises SettingsError listing every problem."""
    keys = _project_keys()
    raw = {key: _parse(runtime_config.get_config(f"{PROJECT}:{key}"))
           for key in keys if key not in PASSWORD_KEYS}
    secrets = {key: runtime_config.get_config(f"{PROJECT}:{key}") for key in PASSWORD_KEYS}
    plaintext = frozenset(key for key in PASSWORD_KEYS if key in keys
                          and not runtime_config.is_config_secret(f"{PROJECT}:{key}"))
    return load_settings(raw, secrets, plaintext)
