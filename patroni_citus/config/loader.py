"""Validates a stack's config and builds the frozen settings, reporting every problem at once.

`load_settings` takes any mapping (the Pulumi adapter is `patroni_citus.config.stack`), so every
rule is testable without Pulumi. It walks the schema table (`schema`) section by section, runs the
rules between keys (`rules`) as their sections are read, and builds the settings only from
values that all pass. Each problem names the key, the value (redacted where the key or its
section is secret) and the rule.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any, Mapping, Optional

from . import checks
from .hosts import pins, place, spread
from .model import (
    BackupSettings,
    CitusSettings,
    ClusterSettings,
    CrashWatcherSettings,
    DockerHost,
    EndpointSettings,
    EngineSettings,
    EtcdSettings,
    HostSettings,
    ImageSettings,
    MonitoringSettings,
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
from .reader import SECRET_SHOWN, Reader, SettingsError, Values, config_key
from .rules import CROSS_RULES, SETTINGS_RULES, network
from .schema import OBSERVABILITY_DEFAULTS, PASSWORD_KEYS, PASSWORDS, SECTIONS
from .walker import walk

MAX_NESTING = 16


class Unreadable:
    """A config value the Pulumi adapter could not decode (invalid or absurdly nested JSON)."""

    def __init__(self, reason: str):
        self.reason = reason


def load_settings(
    config: Mapping[str, Any],
    secrets: Mapping[str, Any],
    plaintext: frozenset[str] = frozenset(),
    secret_sections: frozenset[str] = frozenset(),
) -> Settings:
    """Validates the stack config and returns frozen settings, or raises SettingsError listing
    every problem found. `config` maps top-level keys (without the project prefix) to values;
    `secrets` maps password keys to their decrypted values (or None); `plaintext` names the
    password keys stored without encryption; `secret_sections` the other keys stored
    encrypted."""
    problems: list[str] = []
    config = _top_level(config, secret_sections, problems)
    values = Values(problems, secret_sections)
    for section in SECTIONS:
        secret = section in secret_sections
        walk(Reader(section, config.get(section), values, secret), values)
        for after, rule in CROSS_RULES:
            if after == section:
                rule(values)
    passwords = _read_passwords(secrets, plaintext, problems)
    if problems:
        raise SettingsError(problems)
    settings = _settings(values, passwords)
    for stage in SETTINGS_RULES:
        for settings_rule in stage:
            settings_rule(settings, values)
        if problems:
            raise SettingsError(problems)
    if not settings.hosts.engines:
        return settings
    names = [e.name for e in settings.hosts.engines]
    placement = place(names, spread(settings), pins(values))
    return dataclasses.replace(
        settings, hosts=dataclasses.replace(settings.hosts, placement=placement)
    )


def _top_level(
    config: Mapping[str, Any], secret_sections: frozenset[str], problems: list[str]
) -> dict[str, Any]:
    known: dict[str, Any] = {}
    for key in sorted(config, key=str):
        value = config[key]
        if isinstance(value, Unreadable):
            problems.append(f"{config_key(key)}: {value.reason}")
        elif key not in SECTIONS:
            section, dot, _ = str(key).partition(".")
            hint = (
                f"; to set a nested value use `pulumi config set --path {key} VALUE`"
                if dot and section in SECTIONS
                else " (see docs/configuration.md)"
            )
            problems.append(f"{config_key(str(key))}: unknown key{hint}")
        elif not checks.depth(value, MAX_NESTING):
            problems.append(f"{config_key(key)}: nested more than {MAX_NESTING} levels deep")
        else:
            if key in secret_sections:
                problems.append(
                    f"{config_key(key)} = {SECRET_SHOWN}: is stored as a secret; only "
                    f"{', '.join(PASSWORD_KEYS)} may be: the program does not keep other "
                    "values encrypted (outputs, labels, commands)"
                )
            known[key] = value
    return known


def _read_passwords(
    secrets: Mapping[str, Any], plaintext: frozenset[str], problems: list[str]
) -> Passwords:
    read: dict[str, Optional[str]] = {}
    for key in PASSWORDS:
        value = secrets.get(key.path)
        rule = key.rule(value) if key.rule is not None and value is not None else None
        if key.path in plaintext:
            problems.append(
                f"{config_key(key.path)} = [not shown]: is stored in plain text in the "
                f"stack file; set it with `pulumi config set --secret {key.path}`"
            )
        elif rule:
            # Never echo a secret: name the key and the rule only.
            problems.append(f"{config_key(key.path)} = {SECRET_SHOWN}: {rule}")
        read[PASSWORD_KEYS[key.path]] = value if rule is None else None
    return Passwords(**read)


def _settings(v: Values, passwords: Passwords) -> Settings:
    """The settings from values that all passed their rules: one builder per section."""
    hosts = _hosts(v)
    return Settings(
        cluster=ClusterSettings(v["cluster.scope"], "/" + v["cluster.namespace"].strip("/") + "/"),
        network=network(v),
        etcd=EtcdSettings(
            v["etcd.members"],
            v["etcd.apiVersion"],
            v["etcd.image"],
            v["etcd.clusterToken"],
            v["etcd.autoCompactionRetention"],
        ),
        citus=CitusSettings(
            v["citus.enabled"],
            v["citus.database"],
            v["citus.coordinatorMembers"],
            v["citus.workerGroups"],
            v["citus.membersPerGroup"],
            v["citus.rebalanceOnJoin"],
        ),
        patroni=_patroni(v),
        vip=VipSettings(
            v["vip.enabled"],
            ipaddress.IPv4Address(v["vip.address"]) if v["vip.address"] else None,
            v["vip.netmask"],
            v["vip.interface"],
            v["vip.group"],
            v["vip.intervalMs"],
        ),
        image=_image(v),
        passwords=passwords,
        retain_volumes=v["volumes.retainOnDelete"],
        observability=_observability(v),
        engine=EngineSettings(v["engine.socket"]),
        crash_watcher=CrashWatcherSettings(v["crashWatcher.enabled"]),
        # With several hosts each HAProxy instance runs on its own host.
        endpoints=_endpoints(v, one_per_host=hosts.several),
        pooler=PoolerSettings(
            v["pooler.enabled"],
            v["pooler.hostIp"],
            v["pooler.port"],
            v["pooler.poolSize"],
            v["pooler.maxClientConnections"],
            v["pooler.user"],
            v["pooler.authUser"],
        ),
        monitoring=_monitoring(v),
        backups=_backups(v),
        hosts=hosts,
    )


def _hosts(v: Values) -> HostSettings:
    engines = tuple(
        DockerHost(
            v[f"{engine}.name"],
            v[f"{engine}.endpoint"],
            v[f"{engine}.certPath"],
            tuple(v[f"{engine}.sshOpts"]),
            v[f"{engine}.address"],
        )
        for engine in v.get("hosts.engines", ())
    )
    return HostSettings(engines, v["hosts.swarmManager"])


def _patroni(v: Values) -> PatroniSettings:
    return PatroniSettings(
        v["patroni.members"],
        v["patroni.ttl"],
        v["patroni.loopWait"],
        v["patroni.retryTimeout"],
        v["patroni.maximumLagOnFailover"],
        v["patroni.synchronousMode"],
        v["patroni.failsafeMode"],
        dict(v["patroni.parameters"]),
        ResourceLimits(
            v["patroni.resources.memoryMb"],
            v["patroni.resources.cpus"],
            v["patroni.resources.shmSizeMb"],
        ),
        v["patroni.superuser"],
        v["patroni.replicationUser"],
        v["patroni.restApiUser"],
    )


def _image(v: Values) -> ImageSettings:
    return ImageSettings(
        v["image.name"],
        v["image.baseImage"],
        v["image.flavour"],
        v["image.postgresMajor"],
        v.get("image.citusVersion", ""),
        v.get("image.citusPackageVersion"),
        v.get("image.patroniVersion"),
        v["image.vipManagerVersion"],
        v["image.localDebs"],
    )


def _observability(v: Values) -> ObservabilitySettings:
    return ObservabilitySettings(
        v["observability.enabled"],
        **{
            service: ServiceSettings(
                v[f"observability.{service}.enabled"],
                v[f"observability.{service}.image"],
                v[f"observability.{service}.hostIp"],
                v[f"observability.{service}.hostPort"],
            )
            for service in OBSERVABILITY_DEFAULTS
        },
    )


def _endpoints(v: Values, one_per_host: bool) -> EndpointSettings:
    return EndpointSettings(
        v["endpoints.enabled"],
        v["endpoints.instances"],
        v["endpoints.hostIp"],
        v["endpoints.readWritePort"],
        v["endpoints.readOnlyPort"],
        v["endpoints.maxReplicaLagBytes"],
        one_per_host=one_per_host,
    )


def _monitoring(v: Values) -> MonitoringSettings:
    return MonitoringSettings(
        v["monitoring.enabled"],
        v["monitoring.hostIp"],
        v["monitoring.hostPort"],
        checks.seconds(v["monitoring.scrapeInterval"]) or 15,
        v["monitoring.retention"],
        v["monitoring.maxReplicationLagBytes"],
        float(v["monitoring.diskUsageRatio"]),
        v["monitoring.user"],
    )


def _backups(v: Values) -> BackupSettings:
    restore = None
    if "backups.restore.type" in v:
        restore = RestoreSettings(
            v["backups.restore.source"], v["backups.restore.type"], v["backups.restore.target"]
        )
    return BackupSettings(
        v["backups.enabled"],
        v["backups.repositoryVolume"],
        checks.seconds(v["backups.fullInterval"]) or 0,
        checks.seconds(v["backups.incrementalInterval"]) or 0,
        v["backups.retentionFull"],
        restore,
    )
