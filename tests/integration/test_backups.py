"""Backups and point-in-time recovery on a real engine (pgBackRest 2.45, Patroni 4.0.7): the
drill of issue 12. A writer commits numbered rows into the `offline` stack with backups on;
the first full backup comes from the schedule; a switchover moves the leader, and WAL
archiving and the schedule follow it; the clock is read at T; more rows; `DELETE` without
`WHERE`. The source is destroyed (its repository stays), and a new cluster restored from the
repository to T on its own network holds exactly the rows committed before T, then archives
to its own stanza."""

from __future__ import annotations

import json
import time

import docker
import pytest

from tests.integration.cluster import (
    Cluster,
    Writer,
    deploy,
    record_figures,
    remove_leftovers,
    wait_until,
    whole_cluster_destroy,
)
from tests.programrun import stack_config

pytestmark = pytest.mark.integration
STACK = "offline"
SOURCE, RESTORED = "i12bk", "i12rs"
REPOSITORY = f"{SOURCE}-backups"
IMAGE = "patroni-citus:i12-backups"
BACKUPS = {"fullInterval": "1h", "incrementalInterval": "1m", "retentionFull": 2}


def config(scope: str, subnet: str, member_range: str, backups: dict) -> dict:
    config = stack_config(STACK)
    config["patroni-citus:cluster"] = {"scope": scope}
    config["patroni-citus:network"] = {
        "name": f"{scope}-net",
        "subnet": subnet,
        "memberRange": member_range,
    }
    config["patroni-citus:patroni"] = {**config["patroni-citus:patroni"], "members": 2}
    config["patroni-citus:image"] = {**config["patroni-citus:image"], "name": IMAGE}
    config["patroni-citus:backups"] = {"enabled": True, **BACKUPS, **backups}
    # The repository is retained whatever this says; the data volumes go with the stack.
    config["patroni-citus:volumes"] = {"retainOnDelete": False}
    return config


def pgbackrest(cluster: Cluster, member: str, *argv: str) -> str:
    result = cluster.container(member).exec_run(["pgbackrest", *argv])
    assert result.exit_code == 0, result.output.decode()
    return result.output.decode()


def stanza_info(cluster: Cluster, member: str, stanza: str) -> dict:
    (info,) = json.loads(pgbackrest(cluster, member, f"--stanza={stanza}", "--output=json", "info"))
    return info


def backups(cluster: Cluster, stanza: str) -> list[dict]:
    leader = cluster.leader()
    return stanza_info(cluster, leader, stanza)["backup"] if leader else []


def archiver(cluster: Cluster, member: str) -> tuple:
    with cluster.connect(cluster.members[member], target_session_attrs="any") as conn:
        return conn.execute(
            "SELECT archived_count, last_archived_wal, failed_count, last_failed_wal "
            "FROM pg_stat_archiver"
        ).fetchone()


def destroy(cluster: Cluster) -> list[str]:
    """`pulumi destroy`: every resource deleted as its provider does, retainOnDelete ones only
    dropped from the state. Returns what was left in Docker."""
    with whole_cluster_destroy():
        cluster.engine.begin_update()
        done = cluster.engine.finish_update()
    return [r.docker_name for r in done if r.options.retain_on_delete]


@pytest.fixture
def repository(docker_client):
    """The shared repository is retained by design: removed here once the drill is over."""
    yield REPOSITORY
    for scope in (SOURCE, RESTORED):
        remove_leftovers(docker_client, scope)
    try:
        docker_client.volumes.get(REPOSITORY).remove(force=True)
    except docker.errors.NotFound:
        pass


def test_point_in_time_recovery_drill(docker_client, repository):
    drill_started = time.monotonic()
    source = deploy(STACK, docker_client, config(SOURCE, "172.24.0.0/16", "172.24.1.0/24", {}))
    try:
        wait_until("a healthy source", source.healthy, 180)
        writer = Writer(source).start()
        # The schedule's first full backup (pc-backup on the leader; the stanza exists since
        # post_bootstrap).
        (full,) = wait_until("the first full backup", lambda: backups(source, SOURCE), 120)
        assert full["type"] == "full"
        backup_s = full["timestamp"]["stop"] - full["timestamp"]["start"]

        # A switchover while the writer commits: archiving and the schedule follow the leader.
        old = source.leader()
        candidate = source.sync_standby()
        source.switchover("0", old, candidate)
        new = source.new_leader(old)
        wait_until("the old leader back as a replica", source.healthy, 120)
        with source.connect(source.members[new]) as conn:
            conn.execute("SELECT pg_switch_wal()")
        before = archiver(source, new)
        # pgbackrest check switches WAL and waits until that segment is in the repository.
        pgbackrest(source, new, f"--stanza={SOURCE}", "check")
        after = archiver(source, new)
        assert after[0] > before[0] and after[2] == 0, (before, after)
        incremental = wait_until(
            "an incremental backup by the new leader",
            lambda: [b for b in backups(source, SOURCE) if b["type"] == "incr"],
            120,
        )[0]
        # The exporter sees the repository (read-only) and reports the backup's age.
        exporter = source.container(f"{SOURCE}-backup-exporter")
        metrics = wait_until(
            "the exporter's backup age",
            lambda: (
                (
                    out := exporter.exec_run(
                        ["curl", "-fsS", "http://127.0.0.1:9854/metrics"]
                    ).output.decode()
                )
                and f'stanza="{SOURCE}"' in out
                and out
            ),
            60,
        )
        age = [
            line
            for line in metrics.splitlines()
            if line.startswith("pgbackrest_backup_since_last_completion_seconds")
            and f'stanza="{SOURCE}"' in line
        ]
        assert age, metrics

        # T: nothing commits while the clock is read, so every row committed before T is
        # acknowledged or was seen on the primary at T.
        writer.stop()
        with source.connect() as conn:
            at_t = {r[0] for r in conn.execute("SELECT id FROM drill")}
            target = conn.execute(
                "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', "
                "'YYYY-MM-DD HH24:MI:SS.US') || '+00'"
            ).fetchone()[0]
        acked_before = {i for i, _, _ in writer.acked}
        assert acked_before <= at_t
        time.sleep(1)
        later = Writer(source).start()
        wait_until("rows after T", lambda: len(later.acked) > 20, 30)
        later.stop()
        with source.connect() as conn:
            deleted = conn.execute("DELETE FROM drill").rowcount
            conn.execute("SELECT pg_switch_wal()")
        pgbackrest(source, source.leader(), f"--stanza={SOURCE}", "check")
    finally:
        left = destroy(source)
        source.engine.teardown()
    # Only the repository outlives the stack (volumes.retainOnDelete is false here).
    assert left == [REPOSITORY]
    docker_client.volumes.get(REPOSITORY)

    restore = {
        "repositoryVolume": REPOSITORY,
        "restore": {"source": SOURCE, "type": "time", "target": target},
    }
    started = time.monotonic()
    restored = deploy(
        STACK, docker_client, config(RESTORED, "172.23.0.0/16", "172.23.1.0/24", restore)
    )
    try:
        conn = wait_until("the restored leader writable", lambda: restored.connect(), 180)
        restore_s = time.monotonic() - started
        with conn:
            present = {r[0] for r in conn.execute("SELECT id FROM drill")}
            conn.execute("INSERT INTO drill (id) VALUES (-1)")
        missing = sorted(at_t - present)
        extra = sorted(present - at_t)
        assert not missing and not extra, (missing[:10], extra[:10])
        assert acked_before <= present
        assert not present & {i for i, _, _ in later.acked}
        # The restored cluster archives to its own stanza, in the same repository.
        wait_until("a healthy restored cluster", restored.healthy, 120)
        leader = restored.leader()
        pgbackrest(restored, leader, f"--stanza={RESTORED}", "check")
        info = stanza_info(restored, leader, RESTORED)
        assert info["archive"] and info["archive"][0]["max"], info
        assert (
            info["db"][0]["system-id"]
            == stanza_info(restored, leader, SOURCE)["db"][0]["system-id"]
        )
    finally:
        destroy(restored)
        restored.engine.teardown()

    record_figures(
        "backups: PITR drill",
        first_full_backup_s=round(backup_s, 1),
        incremental_backup_s=round(
            incremental["timestamp"]["stop"] - incremental["timestamp"]["start"], 1
        ),
        restore_s=round(restore_s, 1),
        rows_checked=len(at_t),
        rows_acked_before_t=len(acked_before),
        rows_after_t_absent=len(later.acked),
        rows_deleted=deleted,
        switchover=f"{old}->{new}",
        drill_s=round(time.monotonic() - drill_started, 1),
    )
