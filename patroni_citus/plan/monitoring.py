"""Pure rendering for the Monitoring component: Prometheus' scrape jobs and configuration, its
alert rules, and the PostgreSQL exporters' credential files. Nothing here is secret except
what exporter_files returns."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable

from .. import conventions
from ..config import Settings
from . import render
from .render import Credentials
from .volumes import VolumePlan, volume_plan

# Where the Prometheus container finds what the component uploads.
CONFIG_DIR = "/etc/pc-prometheus"
CONFIG_FILE = f"{CONFIG_DIR}/prometheus.yml"
RULES_FILE = f"{CONFIG_DIR}/alerts.yml"
TSDB_PATH = f"{conventions.PROMETHEUS_DATA_MOUNT}/metrics2"  # Debian's default, in the image

# `for:` of each alert as a multiple of the scrape interval (= the evaluation interval), so one
# set of rules holds at any interval: at 15 s, 2 -> 30 s, 4 -> 1 m, 8 -> 2 m, 20 -> 5 m. A
# multiple of at least 2 means one failed scrape never alerts on its own.
FOR_MULTIPLES = {
    "PatroniMultipleLeaders": 2,
    "PatroniNoLeader": 4,
    "PatroniMemberDown": 4,
    "PatroniReplicationLag": 8,
    "PostgresReplicationStopped": 8,
    "PostgresExporterCannotConnect": 4,
    "ScrapeTargetDown": 4,
    "EtcdNoQuorum": 2,
    "EtcdNoLeader": 2,
    "EtcdMemberDown": 4,
    "DiskFilling": 20,
    "BackupTooOld": 4,
    "BackupExporterFailing": 4,
    "PostgresArchivingFailing": 4,
}
# How many scrape intervals the archiver's failure counter is looked back over.
ARCHIVING_WINDOW_MULTIPLE = 20
# A backup is overdue once its age exceeds its schedule's interval times this: room for the
# backup's own run time and a late start.
BACKUP_AGE_MARGIN = 1.5


@dataclass(frozen=True)
class ScrapeJob:
    name: str
    # (address, target labels) per target; every target also carries `cluster`.
    targets: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    metrics_path: str = "/metrics"


def scrape_jobs(settings: Settings) -> list[ScrapeJob]:
    """What Prometheus scrapes: Patroni's REST API and the PostgreSQL exporter of every member
    (labelled with its Citus group and name), etcd, and the optional services' exporters."""
    scope = settings.cluster.scope
    members = [
        (str(m.address), {"citus_group": str(g.number), "member": m.name})
        for g in settings.groups
        for m in g.members
    ]

    def job(name: str, port: int, targets: list[tuple[str, dict[str, str]]]) -> ScrapeJob:
        return ScrapeJob(
            name, [(f"{host}:{port}", {"cluster": scope, **labels}) for host, labels in targets]
        )

    jobs = [job("patroni", conventions.REST_API_PORT, members)]
    if settings.monitoring.enabled:
        jobs.append(job("postgres", conventions.POSTGRES_EXPORTER_PORT, members))
    etcd = [(str(m.address), {"member": m.name}) for m in settings.etcd_members]
    jobs.append(job("etcd", conventions.ETCD_CLIENT_PORT, etcd))
    if settings.monitoring.enabled and settings.observability.active("cadvisor"):
        # By name on the metrics network it shares with Prometheus, which exists only then
        # (Observability).
        jobs.append(job("cadvisor", conventions.CADVISOR_PORT, [(f"{scope}-cadvisor", {})]))
    if settings.endpoints.enabled:
        haproxy: list[tuple[str, dict[str, str]]] = [
            (str(settings.service_address("haproxy", i)), {})
            for i in range(settings.endpoints.instances)
        ]
        jobs.append(job("haproxy", conventions.HAPROXY_METRICS_PORT, haproxy))
    if settings.backups.enabled:
        backups: list[tuple[str, dict[str, str]]] = [(f"{scope}-backup-exporter", {})]
        jobs.append(job("pgbackrest", conventions.PGBACKREST_EXPORTER_PORT, backups))
    return jobs


def prometheus_targets(settings: Settings) -> list[dict[str, Any]]:
    """The scrape targets in Prometheus' file_sd format (one entry per target, `job` among its
    labels): what the stack's Prometheus scrapes, or another Prometheus could."""
    return [
        {"targets": [address], "labels": {"job": job.name, **labels}}
        for job in scrape_jobs(settings)
        for address, labels in job.targets
    ]


def prometheus_config(settings: Settings) -> dict[str, Any]:
    interval = settings.monitoring.scrape_interval_s
    return {
        "global": {
            "scrape_interval": f"{interval}s",
            # Prometheus refuses a timeout longer than the interval.
            "scrape_timeout": f"{min(interval, 10)}s",
            "evaluation_interval": f"{interval}s",
        },
        "rule_files": [RULES_FILE],
        "scrape_configs": [
            {
                "job_name": job.name,
                "metrics_path": job.metrics_path,
                "static_configs": [
                    {"targets": [address], "labels": labels} for address, labels in job.targets
                ],
            }
            for job in scrape_jobs(settings)
        ],
    }


def prometheus_command(settings: Settings) -> list[str]:
    return [
        "prometheus",
        f"--config.file={CONFIG_FILE}",
        f"--storage.tsdb.path={TSDB_PATH}",
        f"--storage.tsdb.retention.time={settings.monitoring.retention}",
        f"--web.listen-address=0.0.0.0:{conventions.PROMETHEUS_PORT}",
    ]


def _for(settings: Settings, alert: str) -> str:
    return f"{FOR_MULTIPLES[alert] * settings.monitoring.scrape_interval_s}s"


def _rule(
    settings: Settings,
    alert: str,
    expr: str,
    severity: str,
    summary: str,
    description: str,
) -> dict[str, Any]:
    return {
        "alert": alert,
        "expr": expr,
        "for": _for(settings, alert),
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "description": description},
    }


def _patroni_rules(settings: Settings) -> list[dict[str, Any]]:
    lag = settings.monitoring.max_replication_lag_bytes
    group = "{{ $labels.cluster }} group {{ $labels.citus_group }}"
    member = "{{ $labels.member }} ({{ $labels.cluster }} group {{ $labels.citus_group }})"
    return [
        _rule(
            settings,
            "PatroniNoLeader",
            # A group whose every member is down has no patroni_primary series at all: count
            # it from `up` so it still yields 0.
            "(sum by (cluster, citus_group) (patroni_primary) or 0 * count by (cluster, "
            'citus_group) (up{job="patroni"})) < 1',
            "critical",
            f"No Patroni leader in {group}",
            "No member of the group reports itself primary: writes to it fail.",
        ),
        _rule(
            settings,
            "PatroniMultipleLeaders",
            "sum by (cluster, citus_group) (patroni_primary) > 1",
            "critical",
            f"{{{{ $value }}}} Patroni leaders in {group}",
            "More than one member of the group reports itself primary (split brain).",
        ),
        _rule(
            settings,
            "PatroniMemberDown",
            'up{job="patroni"} == 0 or patroni_postgres_running == 0',
            "warning",
            f"Patroni member {member} is down",
            "Its Patroni REST API does not answer, or its PostgreSQL is not running: the "
            "group has one standby less to fail over to.",
        ),
        _rule(
            settings,
            "PatroniReplicationLag",
            # The leader's WAL position minus each replica's replayed position, per group.
            "max by (cluster, citus_group) (patroni_xlog_location) - on (cluster, citus_group) "
            "group_right () (patroni_xlog_replayed_location and on (instance) patroni_replica "
            f"== 1) > {lag}",
            "warning",
            f"Replica {member} is {{{{ $value | humanize1024 }}}}B behind its leader",
            f"Replayed WAL lags the leader's by more than {lag} bytes "
            "(monitoring.maxReplicationLagBytes).",
        ),
        _rule(
            settings,
            "PostgresReplicationStopped",
            "(patroni_postgres_streaming == 0 or patroni_xlog_paused == 1) and on (instance) "
            "patroni_replica == 1 and on (instance) patroni_postgres_running == 1",
            "warning",
            f"Replica {member} is not replicating",
            "Its PostgreSQL runs but receives no WAL stream from the leader, or its replay "
            "is paused (pg_wal_replay_pause).",
        ),
    ]


def _service_rules(settings: Settings) -> list[dict[str, Any]]:
    jobs = [j.name for j in scrape_jobs(settings) if j.name not in ("patroni", "etcd")]
    rules = [
        _rule(
            settings,
            "PostgresExporterCannotConnect",
            "pg_up == 0 and on (cluster, member) patroni_postgres_running == 1",
            "warning",
            "The PostgreSQL exporter of {{ $labels.member }} cannot log in",
            "PostgreSQL runs but the exporter's connection as the monitoring role fails "
            "(see the member's log).",
        )
    ]
    if jobs:
        rules.append(
            _rule(
                settings,
                "ScrapeTargetDown",
                f'up{{job=~"{"|".join(jobs)}"}} == 0',
                "warning",
                "{{ $labels.job }} target {{ $labels.instance }} is down",
                "Prometheus cannot scrape it.",
            )
        )
    return rules


def _etcd_rules(settings: Settings) -> list[dict[str, Any]]:
    quorum = settings.etcd.members // 2 + 1
    return [
        _rule(
            settings,
            "EtcdNoQuorum",
            f'sum by (cluster) (up{{job="etcd"}}) < {quorum}',
            "critical",
            "etcd of {{ $labels.cluster }} has lost its quorum",
            f"Fewer than {quorum} of {settings.etcd.members} etcd members answer: Patroni "
            "cannot renew leader keys, and leaders demote unless failsafe mode holds them.",
        ),
        _rule(
            settings,
            "EtcdNoLeader",
            "etcd_server_has_leader == 0",
            "critical",
            "etcd member {{ $labels.member }} has no leader",
            "The member answers but sees no etcd leader: writes to the DCS fail.",
        ),
        _rule(
            settings,
            "EtcdMemberDown",
            'up{job="etcd"} == 0',
            "warning",
            "etcd member {{ $labels.member }} is down",
            "Its client URL does not answer.",
        ),
    ]


def _disk_rules(settings: Settings) -> list[dict[str, Any]]:
    if not settings.observability.active("cadvisor"):
        return []
    ratio = settings.monitoring.disk_usage_ratio
    # cadvisor attributes no named volume to its container; the root cgroup's filesystem is
    # the one holding /var/lib/docker, volumes included.
    usage = 'container_fs_usage_bytes{job="cadvisor", id="/"}'
    limit = 'container_fs_limit_bytes{job="cadvisor", id="/"}'
    return [
        _rule(
            settings,
            "DiskFilling",
            f"{usage} / {limit} > {ratio}",
            "warning",
            "The Docker host's disk {{ $labels.device }} is {{ $value | humanizePercentage }} full",
            f"Usage of the filesystem holding the engine's data (and every volume) exceeds "
            f"{ratio} (monitoring.diskUsageRatio).",
        )
    ]


def _backup_rules(settings: Settings) -> list[dict[str, Any]]:
    backups = settings.backups
    if not backups.enabled:
        return []
    age = "pgbackrest_backup_since_last_completion_seconds"
    full = round(backups.full_interval_s * BACKUP_AGE_MARGIN)
    incremental = round(backups.incremental_interval_s * BACKUP_AGE_MARGIN)
    window = ARCHIVING_WINDOW_MULTIPLE * settings.monitoring.scrape_interval_s
    return [
        _rule(
            settings,
            "BackupTooOld",
            # pgBackRest's exporter reports an incremental's age as that of the newest backup
            # of any type, so the second half fires only when no backup at all is recent.
            f'{age}{{backup_type="full"}} > {full} or {age}{{backup_type="incr"}} > {incremental}',
            "critical",
            "The last {{ $labels.backup_type }} backup of stanza {{ $labels.stanza }} is "
            "{{ $value | humanizeDuration }} old",
            f"Older than {BACKUP_AGE_MARGIN} times its schedule (backups.fullInterval "
            f"{backups.full_interval_s}s, backups.incrementalInterval "
            f"{backups.incremental_interval_s}s).",
        ),
        _rule(
            settings,
            "BackupExporterFailing",
            "pgbackrest_exporter_status == 0",
            "warning",
            "The pgBackRest exporter cannot read the repository",
            "Backup ages are unknown while it fails.",
        ),
        _rule(
            settings,
            "PostgresArchivingFailing",
            f"increase(pg_stat_archiver_failed_count[{window}s]) > 0",
            "critical",
            "WAL archiving fails on {{ $labels.member }}",
            "archive_command failed recently: point-in-time recovery stops at the last "
            "archived segment, and pg_wal grows on the leader.",
        ),
    ]


def alert_rules(settings: Settings) -> dict[str, Any]:
    """Prometheus' rule file; each rule's `for:` is FOR_MULTIPLES of the scrape interval."""
    groups = [
        ("patroni", _patroni_rules(settings)),
        ("services", _service_rules(settings)),
        ("etcd", _etcd_rules(settings)),
        ("host", _disk_rules(settings)),
        ("backups", _backup_rules(settings)),
    ]
    return {"groups": [{"name": name, "rules": rules} for name, rules in groups if rules]}


def exporter_files(settings: Settings, credentials: Credentials) -> str:
    """What each member's exporter resource writes into it (scripts/member_config.py write):
    the role's name first, the password last, since pc-exporter starts once both exist."""
    return json.dumps(
        [
            [conventions.POSTGRES_EXPORTER_USER_PATH, settings.monitoring.user],
            [conventions.POSTGRES_EXPORTER_PASSWORD_PATH, credentials.monitoring],
        ]
    )


# --- the Monitoring component's plan ---------------------------------------------------------

# Bounds the writing of a member's exporter credentials (the member is ready by then).
EXPORTER_TIMEOUT_S = 120


@dataclass(frozen=True)
class ExporterPlan:
    member: str
    write_command: str
    # Monitoring switched off: pc-exporter stops the exporter once its files are gone.
    remove_command: str


@dataclass(frozen=True)
class PrometheusPlan:
    container_name: str
    address: str  # on the cluster network
    volume: VolumePlan
    command: tuple[str, ...]
    config: str  # YAML, uploaded to CONFIG_FILE
    rules: str  # YAML, uploaded to RULES_FILE
    host_ip: str
    host_port: int

    @property
    def url(self) -> str:
        return f"http://{self.host_ip}:{self.host_port}"


@dataclass(frozen=True)
class MonitoringPlan:
    scope: str
    exporters: tuple[ExporterPlan, ...]
    exporter_files: Callable[[Credentials], str]  # the same for every member
    prometheus: PrometheusPlan


def plan_monitoring(settings: Settings) -> MonitoringPlan:
    scope = settings.cluster.scope
    monitoring = settings.monitoring
    paths = [conventions.POSTGRES_EXPORTER_USER_PATH, conventions.POSTGRES_EXPORTER_PASSWORD_PATH]
    exporters = tuple(
        ExporterPlan(
            member=m.name,
            write_command=render.member_write_command(m.name, EXPORTER_TIMEOUT_S, files_only=True),
            remove_command=render.member_remove_command(m.name, paths),
        )
        for g in settings.groups
        for m in g.members
    )
    prometheus = PrometheusPlan(
        container_name=f"{scope}-prometheus",
        address=str(settings.service_address("prometheus")),
        volume=volume_plan(settings, f"{scope}-prometheus-data", conventions.ROLE_PROMETHEUS),
        command=tuple(prometheus_command(settings)),
        config=render.to_yaml(prometheus_config(settings)),
        rules=render.to_yaml(alert_rules(settings)),
        host_ip=monitoring.host_ip,
        host_port=monitoring.host_port,
    )
    return MonitoringPlan(
        scope=scope,
        exporters=exporters,
        exporter_files=partial(exporter_files, settings),
        prometheus=prometheus,
    )
