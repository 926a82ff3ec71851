"""Typed stack settings: read once from stack config, validated, frozen.

Components take these dataclasses and never read config themselves. The seams:
`model` (the dataclasses), `addressing` (the address plan), `schema` (every key as data),
`reader` and `walker` (typed, redacted reading of the table), `checks` and `postgres` (value
rules), `rules` (rules between keys), `loader` (the settings built), `reference` (the
generated docs/configuration.md).
"""

from .addressing import Group, Member
from .loader import Unreadable, load_settings
from .model import (
    BackupSettings,
    CitusSettings,
    ClusterSettings,
    ConnectionBounds,
    CrashWatcherSettings,
    DockerHost,
    EndpointSettings,
    EngineSettings,
    EtcdApi,
    EtcdSettings,
    Flavour,
    HostSettings,
    ImageSettings,
    MonitoringSettings,
    NetworkSettings,
    ObservabilitySettings,
    Passwords,
    PatroniSettings,
    PoolerSettings,
    ResourceLimits,
    RestoreSettings,
    ServiceSettings,
    Settings,
    VipSettings,
)
from .reader import CONFIG_NAMESPACE, SettingsError, config_key
from .schema import OBSERVABILITY_DEFAULTS, PASSWORD_KEYS

__all__ = [
    "BackupSettings",
    "CONFIG_NAMESPACE",
    "ConnectionBounds",
    "EndpointSettings",
    "MonitoringSettings",
    "PoolerSettings",
    "RestoreSettings",
    "CitusSettings",
    "ClusterSettings",
    "CrashWatcherSettings",
    "DockerHost",
    "EngineSettings",
    "EtcdApi",
    "EtcdSettings",
    "Flavour",
    "Group",
    "HostSettings",
    "ImageSettings",
    "Member",
    "NetworkSettings",
    "OBSERVABILITY_DEFAULTS",
    "ObservabilitySettings",
    "PASSWORD_KEYS",
    "Passwords",
    "PatroniSettings",
    "ResourceLimits",
    "ServiceSettings",
    "Settings",
    "SettingsError",
    "Unreadable",
    "VipSettings",
    "config_key",
    "load_settings",
]
