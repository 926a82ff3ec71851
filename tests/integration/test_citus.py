"""Citus mode on a real engine: the `offline-citus` stack (coordinator of 2, 2 worker groups of
2, etcd v2 + Debian's vip-manager 1.0.2) forms a Citus cluster, and writers inserting
multi-shard batches through the VIP lose no acknowledged row through crashes and switchovers
of worker and coordinator leaders.

Debian has no Citus package and Citus' repository is not reachable from our CI machines, so
these drills need a package you supply (built for the debian flavour's PostgreSQL 15): put it
in images/patroni/debs/ (git-ignored) or name it, or a directory of .deb files, in
PATRONI_CITUS_DEBS. Without one every drill here is skipped, saying why; nothing else in the
suite skips.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable, Optional

import pytest

from patroni_citus.plan import connections as render_connections
from tests.integration import operator_cli
from tests.integration.cluster import (
    Cluster,
    PrimaryWatch,
    Writer,
    deployed,
    record_figures,
    wait_until,
)
from tests.programrun import PROJECT, PROJECT_DIR, stack_config

pytestmark = pytest.mark.integration
STACK = "offline-citus"
DEBS_DIR = PROJECT_DIR / "images" / "patroni" / "debs"
PACKAGES_ENV = "PATRONI_CITUS_DEBS"
BATCH = 16  # rows per transaction: 16 ids over 32 shards touch both worker groups
TABLE = "drill_dist"


def supplied_packages() -> list[Path]:
    given = os.environ.get(PACKAGES_ENV)
    if given:
        path = Path(given)
        files = sorted(path.glob("*.deb")) if path.is_dir() else [path]
        if not files or not all(f.is_file() for f in files):
            pytest.fail(f"{PACKAGES_ENV}={given}: no .deb file there", pytrace=False)
        return files
    return sorted(DEBS_DIR.glob("*.deb"))


@pytest.fixture(scope="module")
def citus_packages():
    files = supplied_packages()
    if not any(f.name.startswith("postgresql-15-citus") for f in files):
        pytest.skip(
            "no Citus package for PostgreSQL 15 supplied (Debian has none and Citus' "
            "repository is not reachable here): put postgresql-15-citus-*.deb in "
            f"images/patroni/debs/ or set {PACKAGES_ENV}"
        )
    # The image installs what the build context's debs/ holds: copy a package named by the
    # variable there for this module, and take it away again so that the other stacks'
    # images are built as CI builds them.
    copied = []
    for package in files:
        target = DEBS_DIR / package.name
        if not target.exists():
            shutil.copy2(package, target)
            copied.append(target)
    yield files
    for target in copied:
        target.unlink(missing_ok=True)


def groups(cluster: Cluster) -> list[str]:
    return sorted(cluster.run.outputs["members"], key=int)


def all_healthy(cluster: Cluster) -> bool:
    return all(cluster.healthy(group) for group in groups(cluster))


def dist_nodes(cluster: Cluster) -> list[tuple[int, str, str]]:
    with cluster.connect(cluster.run.outputs["vip"]) as conn:
        return conn.execute(
            "SELECT groupid, nodename, noderole::text FROM pg_dist_node WHERE isactive "
            "ORDER BY groupid, noderole, nodename"
        ).fetchall()


def registered(cluster: Cluster) -> bool:
    """pg_dist_node names every group's Patroni leader as its one primary."""
    nodes = dist_nodes(cluster)
    for group in groups(cluster):
        leader = cluster.leader(group)
        primaries = [name for g, name, role in nodes if g == int(group) and role == "primary"]
        if leader is None or primaries != [cluster.members[leader]]:
            return False
    return True


def secondaries_registered(cluster: Cluster) -> bool:
    """Patroni registers every worker group's replicas as secondaries."""
    nodes = dist_nodes(cluster)
    for group in groups(cluster)[1:]:
        leader = cluster.leader(group)
        replicas = sorted(a for m, a in cluster.group_members(group).items() if m != leader)
        found = sorted(n for g, n, role in nodes if g == int(group) and role == "secondary")
        if found != replicas:
            return False
    return True


def vip_on_coordinator_leader(cluster: Cluster) -> bool:
    return cluster.vip_member() == cluster.leader("0")


@pytest.fixture(scope="module")
def cluster(citus_packages, docker_client):
    with deployed(
        STACK,
        docker_client,
        ready=lambda c: all_healthy(c) and registered(c) and vip_on_coordinator_leader(c),
    ) as running:
        yield running


@pytest.fixture
def healthy(cluster):
    wait_until("every group healthy before the drill", lambda: all_healthy(cluster), 180)
    wait_until("pg_dist_node naming every leader", lambda: registered(cluster), 60)
    wait_until("the VIP on the coordinator leader", lambda: vip_on_coordinator_leader(cluster), 60)
    return cluster


def test_formation(healthy):
    leaders = {group: healthy.leader(group) for group in groups(healthy)}
    assert healthy.run.outputs["groupLeaders"] == leaders
    assert healthy.etcd_leader_keys() == leaders
    wait_until("replicas registered as secondaries", lambda: secondaries_registered(healthy), 60)
    writer = Writer(
        healthy, host=healthy.run.outputs["vip"], table=TABLE, batch=BATCH, distributed=True
    )
    with healthy.connect(healthy.run.outputs["vip"]) as conn:
        placements = conn.execute(
            "SELECT DISTINCT p.groupid FROM pg_dist_placement p JOIN pg_dist_shard s "
            "USING (shardid) WHERE s.logicalrelid = %s::regclass ORDER BY 1",
            (writer.table,),
        ).fetchall()
    assert [g for (g,) in placements] == [int(g) for g in groups(healthy)[1:]]
    nodes = dist_nodes(healthy)
    record_figures(
        f"{STACK}: formation",
        primaries=sum(1 for _, _, role in nodes if role == "primary"),
        secondaries=sum(1 for _, _, role in nodes if role == "secondary"),
        shard_groups=len(placements),
    )


def test_every_node_bounds_its_inter_node_connections(healthy):
    """Citus runs with the connection settings derived from ttl/loop_wait on every member, and
    its connections to the workers use them (sslmode=require included)."""
    expected = render_connections.citus_parameters(healthy.settings.connection_bounds)
    assert healthy.members_not_running(expected) == {}
    with healthy.connect(healthy.run.outputs["vip"]) as conn:
        # Every worker answers over a connection opened with node_conninfo.
        answers = conn.execute("SELECT success FROM run_command_on_workers('SELECT 1')").fetchall()
    assert answers and all(ok for (ok,) in answers)


def drill(
    cluster: Cluster,
    name: str,
    group: str,
    fault: Callable[[str], float],
    recover: Optional[Callable[[str], None]] = None,
    isolated: bool = False,
) -> None:
    """Runs one failover of `group`'s leader under a multi-shard writer through the VIP, then
    brings the old leader back (`recover`; by default starts it again). An `isolated` old
    leader (cut off the network) is watched from inside its container."""
    old = cluster.leader(group)
    assert old is not None
    writer = Writer(
        cluster, host=cluster.run.outputs["vip"], table=TABLE, batch=BATCH, distributed=True
    ).start()
    inside = frozenset({old}) if isolated else frozenset()
    with PrimaryWatch(cluster, cluster.group_members(group), inside=inside) as primaries:
        wait_until("batches through the VIP", lambda: len(writer.acked) > 10 * BATCH, 30)
        at = fault(old)
        new = cluster.new_leader(old, group)
        # A coordinator's new leader names itself in the rows; a worker's is behind the
        # coordinator.
        not_member = old if group == "0" else None
        # A commit in flight at the event may still be acknowledged (its COMMIT PREPARED
        # fails on the lost worker, the decision is on the coordinator): writes are back
        # once a batch begun after the event is.
        first = wait_until(
            "an acknowledged batch begun after the event",
            lambda: writer.first_begun_after(at, not_member=not_member),
            120,
        )
        first_ack = writer.first_ack_after(at, not_member=not_member)
        wait_until("pg_dist_node naming every leader", lambda: registered(cluster), 60)
        wait_until(
            "the VIP on the coordinator leader", lambda: vip_on_coordinator_leader(cluster), 60
        )
        time.sleep(2)
        writer.stop()
    lost = writer.lost()
    record_figures(
        f"{STACK}: {name}",
        first_write_s=round(first - at, 1),
        first_ack_s=round((first_ack or first) - at, 1),
        longest_gap_s=round(writer.longest_gap(), 1),
        errors=writer.errors,
        rows_acked=len(writer.acked),
        rows_lost=len(lost),
        recovered_2pc=writer.recovered_transactions,
        two_writable=len(primaries.overlaps()),
        most_writable_at_once=primaries.most_writable_at_once(),
    )
    assert lost == [] and primaries.overlaps() == []
    assert new != old
    (recover or cluster.restart)(old)
    wait_until(f"{old} back and every group healthy", lambda: all_healthy(cluster), 180)
    wait_until("pg_dist_node naming every leader", lambda: registered(cluster), 60)
    wait_until("the VIP on the coordinator leader", lambda: vip_on_coordinator_leader(cluster), 60)


@pytest.mark.parametrize("watcher", ["on", "off"])
def test_worker_leader_crash(healthy, watcher):
    with healthy.crash_watcher_switched(watcher == "on"):
        drill(healthy, f"worker leader crash, watcher {watcher}", "1", healthy.crash)


def test_worker_switchover(healthy):
    drill(
        healthy,
        "worker switchover",
        "2",
        lambda old: healthy.switchover("2", old, healthy.sync_standby("2")),
    )


@pytest.mark.parametrize("watcher", ["on", "off"])
def test_coordinator_leader_crash(healthy, watcher):
    with healthy.crash_watcher_switched(watcher == "on"):
        drill(healthy, f"coordinator leader crash, watcher {watcher}", "0", healthy.crash)


def test_coordinator_switchover(healthy):
    drill(
        healthy,
        "coordinator switchover",
        "0",
        lambda old: healthy.switchover("0", old, healthy.sync_standby("0")),
    )


def test_worker_leader_partition(healthy):
    """The worker leader stays alive but unreachable: the coordinator must give up on its
    connections to it and write to the new leader within about the TTL."""
    drill(healthy, "worker leader partition", "1", healthy.partition, healthy.heal, isolated=True)


def test_coordinator_leader_partition(healthy):
    drill(
        healthy,
        "coordinator leader partition",
        "0",
        healthy.partition,
        healthy.heal,
        isolated=True,
    )


def placements_by_group(cluster: Cluster) -> dict[int, int]:
    with cluster.connect(cluster.run.outputs["vip"]) as conn:
        rows = conn.execute(
            "SELECT groupid, count(*) FROM pg_dist_placement GROUP BY groupid ORDER BY 1"
        ).fetchall()
    return {group: count for group, count in rows}


def row_count(cluster: Cluster) -> int:
    with cluster.connect(cluster.run.outputs["vip"]) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0])


def test_scale_out_then_in(healthy):
    """A second `pulumi up` with one more worker group registers it and (the stack asks for
    it) rebalances shards onto it; a third without it drains the group before its containers
    go. Rows and counts are unchanged throughout."""
    base = stack_config(STACK)
    grown = copy.deepcopy(base)
    grown[f"{PROJECT}:citus"]["workerGroups"] = 3
    Writer(healthy, host=healthy.run.outputs["vip"], table=TABLE, distributed=True)
    with healthy.connect(healthy.run.outputs["vip"]) as conn:
        conn.execute(
            f"INSERT INTO {TABLE} (id) SELECT g FROM generate_series("
            f"(SELECT coalesce(max(id), 0) + 1 FROM {TABLE}), "
            f"(SELECT coalesce(max(id), 0) + 5000 FROM {TABLE})) g"
        )
    rows = row_count(healthy)

    started = time.monotonic()
    healthy.update(grown)
    out_s = time.monotonic() - started
    wait_until("the new group healthy", lambda: healthy.healthy("3"), 120)
    wait_until("pg_dist_node naming every leader", lambda: registered(healthy), 60)
    moved = placements_by_group(healthy).get(3, 0)
    assert moved > 0, placements_by_group(healthy)
    assert row_count(healthy) == rows

    started = time.monotonic()
    gone = healthy.update(base)
    in_s = time.monotonic() - started
    assert {r.name for r in gone if r.typ == "docker:index/container:Container"} == {
        "offcitus-work3-1",
        "offcitus-work3-2",
    }
    assert 3 not in placements_by_group(healthy)
    assert all(group != 3 for group, _, _ in dist_nodes(healthy))
    assert "3" not in healthy.etcd_leader_keys()
    assert row_count(healthy) == rows
    wait_until("every group healthy", lambda: all_healthy(healthy), 120)
    # Nothing of the removed group keeps pg_dist_node locked: a new distributed table, which
    # reads the node list under a lock, is created at once.
    with healthy.connect(healthy.run.outputs["vip"]) as conn:
        conn.execute("SET lock_timeout = '10s'")
        conn.execute("CREATE TABLE scale_probe (id bigint PRIMARY KEY)")
        conn.execute("SELECT create_distributed_table('scale_probe', 'id')")
        conn.execute("DROP TABLE scale_probe")
    record_figures(
        f"{STACK}: scale out and in",
        scale_out_s=round(out_s, 1),
        placements_moved_on=moved,
        scale_in_s=round(in_s, 1),
        rows=rows,
        rows_lost=rows - row_count(healthy),
    )


def test_password_rotation_keeps_distributed_writes_going(healthy):
    """New superuser and replication passwords on every group (and in pg_dist_authinfo, which
    Citus connects between nodes with), no container replaced, no acknowledged row lost."""
    new = {
        "superuserPassword": "citus-rotated-superuser-1",
        "replicationPassword": "citus-rotated-replication-1",
        "restApiPassword": "citus-rotated-rest-api-1",
    }
    before = {c.name: c.id for c in healthy.client.containers.list()}
    writer = Writer(
        healthy, host=healthy.run.outputs["vip"], table=TABLE, batch=BATCH, distributed=True
    )
    healthy.next_password = new["superuserPassword"]
    writer.start()
    wait_until("batches through the VIP", lambda: len(writer.acked) > 10 * BATCH, 30)
    started = time.monotonic()
    healthy.update(healthy.config or stack_config(STACK), secrets=new)
    took = time.monotonic() - started
    # New connections from the coordinator to every worker use the new password.
    with healthy.connect(healthy.run.outputs["vip"]) as conn:
        conn.execute("SELECT citus_check_cluster_node_health()")
        healthy_nodes = conn.execute(
            "SELECT bool_and(result) FROM citus_check_cluster_node_health()"
        ).fetchone()[0]
    time.sleep(2)
    writer.stop()
    lost = writer.lost()
    after = {c.name: c.id for c in healthy.client.containers.list()}
    record_figures(
        f"{STACK}: password rotation",
        update_s=round(took, 1),
        containers_replaced=sorted(n for n in before if after.get(n) != before[n]),
        longest_gap_s=round(writer.longest_gap(), 1),
        errors=writer.errors,
        rows_acked=len(writer.acked),
        rows_lost=len(lost),
    )
    assert healthy_nodes is True
    assert lost == [] and before == after
    wait_until("every group healthy", lambda: all_healthy(healthy), 120)


# --- The operator CLI (python -m pcctl) on this stack -----------------------------------------


def test_pcctl_status_agrees_with_pg_dist_node_and_the_vip(healthy, tmp_path):
    code, found = operator_cli.status(operator_cli.outputs_file(healthy, tmp_path))
    assert code == 0 and found["healthy"] is True, found["problems"]
    assert [g["group"] for g in found["groups"]] == groups(healthy)
    for group in found["groups"]:
        leader = healthy.leader(group["group"])
        assert group["leader"] == group["dcs_leader"] == group["dist_primary"] == leader
    assert found["vip_holder"] == healthy.leader("0")


def test_pcctl_drill_switchover_of_a_worker_group(healthy, tmp_path):
    old = healthy.leader("1")
    outputs = operator_cli.outputs_file(healthy, tmp_path)
    done = operator_cli.pcctl(outputs, "drill", "switchover", "--group", "1", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    record_figures(
        f"{STACK}: pcctl drill switchover --group 1",
        **{k: report[k] for k in ("failover_s", "rows_acked", "rows_lost")},
    )
    assert report["old_leader"] == old and report["new_leader"] == healthy.leader("1") != old
    assert report["rows_lost"] == 0 and report["rows_acked"] % BATCH == 0
    assert report["failover_s"] > 0  # the old leader's demotion stops the writes for a while
    wait_until("pg_dist_node naming the new leader", lambda: registered(healthy), 60)
