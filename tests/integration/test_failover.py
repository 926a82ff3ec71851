"""Failure drills on the `offline` stack (etcd v3 API, no VIP): the program's own resources,
created on a real Docker engine, attacked while a writer commits through the leader."""

from __future__ import annotations

import json
import time

import psycopg
import pytest

from patroni_citus.plan import connections as render_connections
from policies import conventions
from tests.integration import operator_cli
from tests.integration.cluster import (
    PrimaryWatch,
    Writer,
    crash_drill,
    deployed,
    partition_drill,
    record_figures,
    wait_until,
)

pytestmark = pytest.mark.integration
STACK = "offline"


@pytest.fixture(scope="module")
def cluster(docker_client):
    with deployed(STACK, docker_client) as running:
        yield running


@pytest.fixture
def healthy(cluster):
    """Every drill starts from, and must leave, a healthy cluster."""
    wait_until("a healthy cluster before the drill", cluster.healthy, 120)
    return cluster


def test_up_one_leader_per_group_matching_the_output(healthy):
    keys = healthy.etcd_leader_keys()
    assert set(keys) == {"0"}
    assert healthy.run.outputs["groupLeaders"] == keys
    assert healthy.leader() == keys["0"]
    view = healthy.cluster_view()
    assert sorted(m["role"] for m in view) == ["leader", "replica", "sync_standby"]


def test_every_member_and_the_coordinator_output_carry_the_connection_bounds(healthy):
    """PostgreSQL on every member runs with the bounds derived from ttl/loop_wait, and the
    coordinator output's connection string, given only the password, opens a session that
    uses them."""
    expected = render_connections.server_parameters(healthy.settings.connection_bounds)
    assert healthy.members_not_running(expected) == {}
    coordinator = healthy.run.outputs["coordinator"]
    with psycopg.connect(coordinator["connectionString"], password=healthy.password) as conn:
        used = conn.info.get_parameters()
        assert not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
    assert {k: str(v) for k, v in coordinator["parameters"].items()}.items() <= used.items()


@pytest.mark.parametrize("watcher", ["on", "off"])
def test_leader_crash_fails_over_without_losing_acknowledged_rows(healthy, watcher):
    """With the crash watcher the dead leader's key goes at once; without it, with the TTL."""
    with healthy.crash_watcher_switched(watcher == "on"):
        figures = crash_drill(healthy)
    record_figures(f"{STACK}: leader crash, watcher {watcher}", **figures)
    assert figures["rows_lost"] == 0 and figures["two_writable"] == 0


def test_crash_then_immediate_start_rejoins_as_a_replica(healthy):
    """The engine restarts a dead member at once (here: `docker start` right after the kill):
    whoever wins the leader race, never two writable primaries, and the member rejoins."""
    figures = crash_drill(healthy, restart_at_once=True)
    record_figures(f"{STACK}: crash + immediate start", **figures)
    assert figures["rows_lost"] == 0 and figures["two_writable"] == 0


def test_watcher_killed_during_a_crash_resynchronises_on_start(healthy):
    """The watcher is dead when the leader dies; started again, it finds the dead leader from
    the engine's current state and releases its key then."""
    healthy.crash_watcher.kill()
    since = time.time()
    figures = crash_drill(healthy, during=lambda: healthy.set_crash_watcher(True))
    resynced = [line for line in healthy.released(since) if "resync:" in line]
    record_figures(f"{STACK}: crash while the watcher is down", **figures)
    assert len(resynced) == 1, healthy.watcher_log(since)
    assert figures["rows_lost"] == 0 and figures["two_writable"] == 0


def test_leader_and_sync_standby_crashing_together_wait_for_them(healthy):
    """Synchronous mode still decides: the asynchronous replica left may not take over (it may
    miss acknowledged commits), so no primary until a crashed one is back; nothing lost."""
    leader, standby = healthy.leader(), healthy.sync_standby()
    (survivor,) = [m for m in healthy.members if m not in (leader, standby)]
    writer = Writer(healthy).start()
    since = time.time()
    with PrimaryWatch(healthy, healthy.members) as primaries:
        wait_until("rows before the crash", lambda: len(writer.acked) > 50, 30)
        killed_at = time.monotonic()
        healthy.container(standby).kill()
        healthy.crash(leader)
        time.sleep(10)  # well past the watcher's release: the survivor must stay a replica
        survivor_primary = [i for i in primaries.intervals[survivor] if i[1] > killed_at]
        assert survivor_primary == []
        healthy.restart(standby)
        healthy.restart(leader)
        first = wait_until(
            "a write after the restart", lambda: writer.first_ack_after(killed_at + 10), 120
        )
        wait_until("both back", healthy.healthy, 120)
        writer.stop()
    lost = writer.lost()
    record_figures(
        f"{STACK}: leader + sync standby crash",
        released_keys=len(healthy.released(since)),
        first_write_after_restart_s=round(first - killed_at - 10, 1),
        rows_acked=len(writer.acked),
        rows_lost=len(lost),
        two_writable=len(primaries.overlaps()),
    )
    assert lost == [] and primaries.overlaps() == []


def test_etcd_faults_follow_failsafe_mode(healthy):
    """failsafe_mode is off in this stack: one etcd member down changes nothing; two down
    (no quorum) demote the primary; quorum back, writes resume with nothing lost."""
    etcd = [healthy.container(m.name) for m in healthy.settings.etcd_members]
    leader = healthy.leader()
    writer = Writer(healthy).start()
    try:
        etcd[0].stop(timeout=1)
        before = len(writer.acked)
        time.sleep(8)
        during_one_down = len(writer.acked) - before
        assert during_one_down > 50 and healthy.leader() == leader
        etcd[1].stop(timeout=1)
        lost_quorum_at = time.monotonic()
        wait_until(
            "the primary to stop taking writes",
            lambda: writer.acked and time.monotonic() - writer.acked[-1][1] > 3,
            60,
        )
        demoted_s = writer.acked[-1][1] - lost_quorum_at
        for member in etcd[:2]:
            member.start()
        back_at = time.monotonic()
        wait_until("writes after quorum returns", lambda: writer.first_ack_after(back_at), 90)
        recovered_s = writer.first_ack_after(back_at) - back_at
    finally:
        for member in etcd:
            member.reload()
            if member.status != "running":
                member.start()
        writer.stop()
    lost = writer.lost()
    record_figures(
        f"{STACK}: etcd faults",
        rows_during_one_down=during_one_down,
        writes_stopped_after_quorum_loss_s=round(max(demoted_s, 0), 1),
        writes_back_after_quorum_s=round(recovered_s, 1),
        rows_acked=len(writer.acked),
        rows_lost=len(lost),
    )
    assert lost == []


def test_replacement_keeps_the_data_volume_and_rejoins(healthy):
    replica = next(name for name in healthy.members if name != healthy.leader())
    volume = healthy.client.volumes.get(f"{replica}-data")
    marker_path = f"{conventions.PATRONI_DATA_MOUNT}/marker"  # on the member's volume
    healthy.container(replica).exec_run(["sh", "-c", f"echo before-replacement > {marker_path}"])
    healthy.engine.remove_container(replica)
    healthy.engine.recreate_container(replica)
    # Then, as in a Pulumi replacement, the member's config command (triggered by the
    # container's id) writes its files into the new container.
    healthy.engine.rerun_command(f"{replica}-config")
    marker = healthy.container(replica).exec_run(["cat", marker_path])
    assert marker.output.decode().strip() == "before-replacement"
    assert healthy.client.volumes.get(f"{replica}-data").id == volume.id
    started = time.monotonic()
    wait_until(f"{replica} to rejoin", healthy.healthy, 120)
    record_figures(f"{STACK}: replacement", rejoin_s=round(time.monotonic() - started, 1))


def test_network_partition_leaves_exactly_one_writable_primary(healthy):
    """The leader is cut off, alive: the writer (the coordinator output's host list and client
    parameters) is on the new leader within about the TTL, and the isolated leader stops
    accepting writes before another member starts."""
    since = time.time()
    figures = partition_drill(healthy, Writer(healthy))
    # The partitioned leader never died: the watcher leaves it to the TTL.
    assert healthy.released(since) == []
    record_figures(f"{STACK}: partition", watcher_released=0, **figures)
    assert figures["rows_lost"] == 0 and figures["most_writable_at_once"] == 1


# --- The operator CLI (python -m pcctl) on this stack -----------------------------------------


def test_pcctl_status_matches_patroni_and_etcd(healthy, tmp_path):
    code, found = operator_cli.status(operator_cli.outputs_file(healthy, tmp_path))
    view = {m["name"]: m for m in healthy.cluster_view()}
    keys = healthy.etcd_leader_keys()
    assert code == 0 and found["healthy"] is True, found["problems"]
    (group,) = found["groups"]
    assert {m["name"]: (m["role"], m["state"], m["timeline"]) for m in group["members"]} == {
        name: (m["role"], m["state"], m["timeline"]) for name, m in view.items()
    }
    assert group["leader"] == keys["0"] == group["dcs_leader"]
    assert group["sync_standbys"] == [healthy.sync_standby()]


def test_pcctl_watch_prints_a_switchover_within_a_second_of_etcd(healthy, tmp_path):
    operator_cli.watch_a_switchover(
        healthy, operator_cli.outputs_file(healthy, tmp_path), f"{STACK}: pcctl watch, etcd v3"
    )


def test_pcctl_drill_crash_agrees_with_the_suite_drill(healthy, tmp_path):
    """The CLI's crash drill and the suite's, one after the other on the same cluster: the
    same failover regime (the crash watcher's, not the TTL's) and nothing lost by either."""
    outputs = operator_cli.outputs_file(healthy, tmp_path)
    old = healthy.leader()
    done = operator_cli.pcctl(outputs, "drill", "crash", "--group", "0", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert "waiting for a write acknowledged after the fault" in done.stderr  # the progress
    wait_until("a healthy cluster after the CLI's drill", healthy.healthy, 120)
    suite = crash_drill(healthy)
    record_figures(
        f"{STACK}: pcctl drill crash vs the suite's",
        pcctl_failover_s=report["failover_s"],
        suite_failover_s=suite["failover_s"],
        pcctl_rows_acked=report["rows_acked"],
        pcctl_rows_lost=report["rows_lost"],
    )
    assert report["old_leader"] == old and report["new_leader"] != old
    assert report["rows_lost"] == 0 and suite["rows_lost"] == 0
    assert report["rows_acked"] > 20
    assert abs(report["failover_s"] - suite["failover_s"]) <= max(2.0, suite["failover_s"] / 2)
    with healthy.connect() as conn:  # the drill cleans up after itself
        assert conn.execute("SELECT to_regclass('pcctl_drill')").fetchone()[0] is None
