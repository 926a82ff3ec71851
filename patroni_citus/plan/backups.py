"""Pure rendering of backups and point-in-time recovery with pgBackRest: pgbackrest.conf, the
schedule pc-backup reads (images/patroni/pc_backup.py) and the pieces of Patroni's configuration
that archive WAL, build replicas from the repository and bootstrap a restored cluster. No
Pulumi here; patroni_citus/plan/render.py merges these into each member's files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

from .. import conventions
from ..config import Group, RestoreSettings, Settings

PGBACKREST = "/usr/bin/pgbackrest"
# WAL of an idle primary still reaches the repository within this: the recovery point a lost
# volume leaves behind is at most this old.
ARCHIVE_TIMEOUT = "60s"
# Locks on the repository volume, not in each container's /tmp: an expire run by one member
# then waits for a backup another member is taking instead of deleting it (research 2c).
LOCK_PATH = f"{conventions.PGBACKREST_REPO_MOUNT}/lock"
# Processes per backup or restore (compression and transfer in parallel).
PROCESS_MAX = 2
# How often pc-backup asks whether it leads and whether a backup is due.
CHECK_INTERVAL_S = 15
# Patroni runs it once a new cluster is up (it appends a connection string pc-backup ignores).
POST_BOOTSTRAP = "pc-backup stanza-create"


def own_stanza(settings: Settings, group: Group) -> str:
    return settings.backups.stanza(settings.cluster.scope, group.number, settings.citus.enabled)


def source_stanza(settings: Settings, group: Group, restore: RestoreSettings) -> str:
    """The stanza a restored group reads: the source cluster's stanza of the same group."""
    return settings.backups.stanza(restore.source, group.number, settings.citus.enabled)


def pgbackrest_conf(settings: Settings, group: Group) -> str:
    """pgbackrest.conf of one member: the repository on the shared volume, this group's stanza
    and, when the cluster is restored, the source's stanza (read once, at bootstrap)."""
    backups = settings.backups
    lines = [
        "[global]",
        f"repo1-path={conventions.PGBACKREST_REPO_MOUNT}",
        f"repo1-retention-full={backups.retention_full}",
        f"lock-path={LOCK_PATH}",
        f"process-max={PROCESS_MAX}",
        "compress-type=zst",
        "start-fast=y",
        "delta=y",
        # Logs go to the container's output (pc-backup) or PostgreSQL's log (archive-push).
        "log-level-file=off",
        "log-level-console=warn",
    ]
    stanzas = [own_stanza(settings, group)]
    if backups.restore is not None:
        stanzas.append(source_stanza(settings, group, backups.restore))
    for stanza in stanzas:
        lines += [
            "",
            f"[{stanza}]",
            f"pg1-path={conventions.PGDATA}",
            f"pg1-socket-path={conventions.PG_SOCKET_DIR}",
            f"pg1-port={conventions.POSTGRES_PORT}",
            f"pg1-user={settings.patroni.superuser}",
        ]
    return "\n".join(lines) + "\n"


def schedule(settings: Settings, group: Group) -> dict[str, Any]:
    """What pc-backup reads: the stanza its leader backs up, the intervals and, on a Citus
    coordinator, the database where it creates a restore point after each backup."""
    backups = settings.backups
    restore_point_database: Optional[str] = None
    if settings.citus.enabled and group.number == 0:
        restore_point_database = settings.citus.database
    return {
        "stanza": own_stanza(settings, group),
        "full_interval_s": backups.full_interval_s,
        "incremental_interval_s": backups.incremental_interval_s,
        "check_interval_s": CHECK_INTERVAL_S,
        "superuser": settings.patroni.superuser,
        "restore_point_database": restore_point_database,
    }


def schedule_file(settings: Settings, group: Group) -> str:
    return json.dumps(schedule(settings, group), indent=2, sort_keys=True) + "\n"


def archive_parameters(settings: Settings, group: Group) -> dict[str, str]:
    """PostgreSQL settings of a group that archives. `on`, not `always`: only the primary
    archives (pgBackRest refuses `always`: two members would push the same segments)."""
    stanza = own_stanza(settings, group)
    return {
        "archive_mode": "on",
        "archive_command": f"{PGBACKREST} --stanza={stanza} archive-push %p",
        "archive_timeout": ARCHIVE_TIMEOUT,
    }


def restore_command(settings: Settings, group: Group) -> str:
    stanza = own_stanza(settings, group)
    return f'{PGBACKREST} --stanza={stanza} archive-get %f "%p"'


def replica_methods(settings: Settings, group: Group) -> dict[str, Any]:
    """Patroni's `postgresql` keys for replicas: built from the newest backup (then catching up
    from the archive and streaming), or with pg_basebackup while the group has no backup."""
    stanza = own_stanza(settings, group)
    return {
        "create_replica_methods": ["pgbackrest", "basebackup"],
        "pgbackrest": {
            "command": f"{PGBACKREST} --stanza={stanza} --delta restore",
            "keep_data": True,
            "no_params": True,
        },
        "recovery_conf": {"restore_command": restore_command(settings, group)},
    }


def restore_bootstrap(settings: Settings, group: Group) -> dict[str, Any]:
    """Patroni's `bootstrap` keys of a restored cluster (custom bootstrap, Patroni 4.0.7):
    pgBackRest restores the source stanza's backup set for the target and writes the recovery
    settings, which Patroni keeps; PostgreSQL recovers and promotes, and post_bootstrap
    creates the cluster's own stanza so archiving starts at once. Patroni passes every other
    key of the method to the command as --key=value."""
    restore = settings.backups.restore
    assert restore is not None
    method: dict[str, Any] = {
        "command": f"{PGBACKREST} --stanza={source_stanza(settings, group, restore)} restore",
        # pgBackRest refuses Patroni's --scope and --datadir.
        "no_params": True,
        "keep_existing_recovery_conf": True,
    }
    if restore.type == "latest":
        # pgBackRest's default type replays all the archived WAL, then promotes.
        method["type"] = "default"
    else:
        method["type"] = restore.type
        if restore.target is not None:
            method["target"] = restore.target
        # pgBackRest's default is to pause; Patroni waits for the end of recovery.
        method["target-action"] = "promote"
    return {"method": "pitr", "pitr": method}


# --- the Backups component's plan ------------------------------------------------------------

# The exporter runs `pgbackrest info` this often (seconds): the age it reports is at most this
# stale, far below any backup interval (at least 60 s).
EXPORTER_COLLECT_INTERVAL_S = 30


@dataclass(frozen=True)
class BackupsPlan:
    scope: str
    repository_volume: str
    # A restored cluster declares no volume: it mounts its source's repository.
    creates_repository: bool
    stanzas: tuple[str, ...]  # only this cluster's: a restored cluster shares the repository
    exporter_name: str

    @property
    def exporter_address(self) -> str:
        return f"{self.exporter_name}:{conventions.PGBACKREST_EXPORTER_PORT}"


def plan_backups(settings: Settings) -> BackupsPlan:
    scope = settings.cluster.scope
    backups = settings.backups
    return BackupsPlan(
        scope=scope,
        repository_volume=backups.repository_volume,
        creates_repository=backups.restore is None,
        stanzas=tuple(own_stanza(settings, group) for group in settings.groups),
        exporter_name=f"{scope}-backup-exporter",
    )
