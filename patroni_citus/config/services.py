"""Readers of the service layer's sections: `endpoints` (HAProxy), `pooler` (PgBouncer),
`monitoring` (Prometheus) and `backups` (pgBackRest). Each is off unless asked for."""

from __future__ import annotations

import re
from typing import Optional

from . import checks
from .model import (
    MAX_SERVICE_INSTANCES,
    RESTORE_TYPES,
    BackupSettings,
    CitusSettings,
    EndpointSettings,
    MonitoringSettings,
    PoolerSettings,
    RestoreSettings,
)
from .reader import Check, Reader

_DURATION = re.compile(r"^([1-9][0-9]{0,5})(s|m|h|d)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# What pgBackRest's --target takes for --type=time and PostgreSQL for recovery_target_time; a
# zone is required so the point does not depend on the server's TimeZone.
_TIMESTAMP = re.compile(
    r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}(:?\d{2})?)$"
)
# citus_create_restore_point and pg_create_restore_point take names shorter than 64 bytes.
_RESTORE_POINT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$")
_PROMETHEUS_RETENTION = re.compile(r"^[1-9][0-9]{0,4}(h|d|w|y)$")


def seconds(text: str) -> Optional[int]:
    """'90s', '15m', '6h', '7d' in seconds; None when the text is not such a duration."""
    match = _DURATION.fullmatch(text)
    return int(match.group(1)) * _SECONDS[match.group(2)] if match else None


def duration(low_s: int) -> Check:
    def rule(value: str) -> Optional[str]:
        parsed = seconds(value)
        if parsed is None:
            return "must be a duration: a whole number followed by s, m, h or d (e.g. '6h')"
        return None if parsed >= low_s else f"must be at least {low_s} seconds"

    return rule


def _host_ip(r: Reader, allow_public: bool) -> str:
    host_ip = r.value("hostIp", "127.0.0.1", str, checks.address)
    if host_ip != "127.0.0.1" and not allow_public:
        r.fail(
            "hostIp",
            host_ip,
            f"publishes beyond loopback; set {r.section}.allowPublicPorts to true if that "
            "is intended",
        )
    return host_ip


def read_endpoints(r: Reader) -> EndpointSettings:
    enabled = r.value("enabled", False, bool)
    allow_public = r.value("allowPublicPorts", False, bool)
    # Two by default: one HAProxy is a single point of failure; clients list both.
    instances = r.value("instances", 2, int, checks.between(1, MAX_SERVICE_INSTANCES))
    host_ip = _host_ip(r, allow_public)
    port = checks.between(1, 65535 - EndpointSettings.PORT_STRIDE * MAX_SERVICE_INSTANCES)
    read_write = r.value("readWritePort", 5000, int, port)
    read_only = r.value("readOnlyPort", 5001, int, port)
    lag = r.value("maxReplicaLagBytes", 16 * 1024 * 1024, int, checks.between(0, 2**40))
    r.finish()
    settings = EndpointSettings(enabled, instances, host_ip, read_write, read_only, lag)
    if enabled and _overlapping({read_write, read_only}, instances):
        r.fail(
            "readOnlyPort",
            read_only,
            f"collides with readWritePort {read_write} for one of the {instances} instances "
            f"(instance i publishes at port + {EndpointSettings.PORT_STRIDE} * i)",
        )
    return settings


def _overlapping(bases: set[int], instances: int) -> bool:
    ports = _ports(bases, instances)
    return len(set(ports)) < len(ports)


def _ports(bases: set[int], instances: int) -> list[int]:
    """The host ports published from these bases by every instance."""
    return [b + EndpointSettings.PORT_STRIDE * i for b in bases for i in range(instances)]


def read_pooler(r: Reader, endpoints: EndpointSettings) -> PoolerSettings:
    enabled = r.value("enabled", False, bool)
    allow_public = r.value("allowPublicPorts", False, bool)
    host_ip = _host_ip(r, allow_public)
    port = r.value(
        "port",
        6432,
        int,
        checks.between(1, 65535 - EndpointSettings.PORT_STRIDE * MAX_SERVICE_INSTANCES),
    )
    pool_size = r.value("poolSize", 20, int, checks.between(1, 10_000))
    max_clients = r.value("maxClientConnections", 1000, int, checks.between(1, 100_000))
    user = r.value("user", "app", str, checks.pg_role)
    auth_user = r.value("authUser", "pgbouncer", str, checks.pg_role)
    if enabled and not endpoints.enabled:
        r.fail("enabled", enabled, "needs endpoints.enabled: PgBouncer pools the read-write port")
    if user == auth_user:
        r.fail("authUser", auth_user, "must differ from pooler.user")
    r.finish()
    if enabled and endpoints.enabled and host_ip == endpoints.host_ip:
        bases = {endpoints.read_write_port, endpoints.read_only_port}
        published = _ports(bases, endpoints.instances)
        if set(published) & set(_ports({port}, endpoints.instances)):
            r.fail("port", port, "collides with an endpoints port on the same hostIp")
    return PoolerSettings(enabled, host_ip, port, pool_size, max_clients, user, auth_user)


def read_monitoring(r: Reader) -> MonitoringSettings:
    enabled = r.value("enabled", False, bool)
    allow_public = r.value("allowPublicPorts", False, bool)
    host_ip = _host_ip(r, allow_public)
    host_port = r.value("hostPort", 9090, int, checks.between(1, 65535))
    scrape = r.value("scrapeInterval", "15s", str, duration(1))
    retention = r.value(
        "retention",
        "15d",
        str,
        checks.matches(_PROMETHEUS_RETENTION, "a whole number followed by h, d, w or y"),
    )
    lag = r.value("maxReplicationLagBytes", 16 * 1024 * 1024, int, checks.between(1, 2**40))
    disk = r.value("diskUsageRatio", 0.85, (float, int), _ratio)
    user = r.value("user", "monitor", str, checks.pg_role)
    r.finish()
    return MonitoringSettings(
        enabled,
        host_ip,
        host_port,
        seconds(scrape) or 15,
        retention,
        lag,
        float(disk),
        user,
    )


def _ratio(value: float) -> Optional[str]:
    return None if 0 < value < 1 else "must be between 0 and 1 (exclusive)"


def read_backups(r: Reader, scope: str, citus: CitusSettings) -> BackupSettings:
    enabled = r.value("enabled", False, bool)
    volume = r.value("repositoryVolume", f"{scope}-backups", str, checks.volume_name)
    full = r.value("fullInterval", "7d", str, duration(60))
    incremental = r.value("incrementalInterval", "1d", str, duration(60))
    retention = r.value("retentionFull", 2, int, checks.between(1, 100))
    restore = _read_restore(r.section_reader("restore"), scope, citus) if r.has("restore") else None
    if restore is not None and not enabled:
        r.fail("enabled", enabled, "must be true to restore: the restored cluster archives too")
    r.finish()
    full_s, incremental_s = seconds(full) or 0, seconds(incremental) or 0
    if full_s and incremental_s > full_s:
        r.fail("incrementalInterval", incremental, f"must not be longer than fullInterval {full}")
    return BackupSettings(enabled, volume, full_s, incremental_s, retention, restore)


def _read_restore(r: Reader, scope: str, citus: CitusSettings) -> RestoreSettings:
    source = r.value("source", "", str, checks.scope_name)
    kind = r.value("type", "latest", str, checks.one_of(*RESTORE_TYPES))
    target = r.value("target", None, (str,))
    if not source:
        r.fail("source", source, "is required: the scope of the cluster whose backups to restore")
    elif source == scope:
        r.fail(
            "source",
            source,
            "must differ from cluster.scope: the restored cluster archives to its own stanza "
            "(it keeps the source's system identifier, and its timelines would clash)",
        )
    if kind in ("time", "name") and target is None:
        r.fail("target", target, f"is required with type {kind}")
    if kind in ("latest", "immediate") and target is not None:
        r.fail("target", target, f"does not apply to type {kind}")
    if kind == "time" and target is not None and not _TIMESTAMP.fullmatch(target):
        r.fail(
            "target",
            target,
            "must be a timestamp with a time zone, e.g. '2026-11-22 08:35:14.012+00'",
        )
    if kind == "name" and target is not None and not _RESTORE_POINT.fullmatch(target):
        r.fail("target", target, "must be a restore point name (letters, digits, _.:-, < 64)")
    if kind == "time" and citus.enabled:
        r.fail(
            "type",
            kind,
            "is not consistent across Citus groups (clocks and two-phase commits differ per "
            "group); restore to a Citus restore point with type name",
        )
    r.finish()
    return RestoreSettings(source, kind, target)  # type: ignore[arg-type]
