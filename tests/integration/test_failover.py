"""Failure drills on the `offline` stack (etcd v3 API, no VIP): the program's own resources,
created on a real Docker engine, attacked while a writer commits through the leader."""

from __future__ import annotations

import time

import pytest

from policies import conventions
from tests.integration.cluster import Writer, deployed, record_figures, wait_until

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


def test_leader_crash_fails_over_without_losing_acknowledged_rows(healthy):
    old = healthy.leader()
    writer = Writer(healthy).start()
    wait_until("rows before the crash", lambda: len(writer.acked) > 50, 30)
    killed_at = healthy.crash(old)
    new = healthy.new_leader(old)
    first = wait_until(
        "a write acknowledged by the new leader",
        lambda: writer.first_ack_after(killed_at, not_member=old),
        60,
    )
    time.sleep(2)
    writer.stop()
    lost = writer.lost()
    record_figures(
        f"{STACK}: leader crash",
        failover_s=round(first - killed_at, 1),
        rows_acked=len(writer.acked),
        rows_lost=len(lost),
        new_leader=new,
    )
    assert lost == []
    healthy.restart(old)
    wait_until(f"{old} to rejoin as a replica", healthy.healthy, 120)
    assert healthy.leader() == new


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
    old = healthy.leader()
    address = healthy.members[old]
    network = healthy.client.networks.get(healthy.run.named(f"{healthy.scope}-net").inputs["name"])
    writer = Writer(healthy).start()
    wait_until("rows before the partition", lambda: len(writer.acked) > 50, 30)
    cut_at = time.monotonic()
    network.disconnect(old, force=True)
    try:
        new = healthy.new_leader(old)
        isolated = healthy.container(old)

        def isolated_is_read_only() -> bool:
            result = isolated.exec_run(
                [
                    "psql",
                    "-h",
                    "/var/run/postgresql",
                    "-U",
                    "postgres",
                    "-Atc",
                    "SELECT pg_is_in_recovery()",
                ],
                environment={"PGPASSWORD": healthy.password},
            )
            return result.exit_code != 0 or result.output.decode().strip() == "t"

        # Patroni demotes a leader that cannot renew its lock within ttl.
        wait_until("the isolated primary to stop accepting writes", isolated_is_read_only, 60)
        demoted_s = time.monotonic() - cut_at
        first = wait_until(
            "writes on the new leader", lambda: writer.first_ack_after(cut_at, not_member=old), 60
        )
        writable = []
        for name, ip in healthy.members.items():
            if name == old:
                continue
            with healthy.connect(ip, target_session_attrs="any") as conn:
                if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                    writable.append(name)
        assert writable == [new]
    finally:
        network.connect(old, ipv4_address=address)
        writer.stop()
    lost = writer.lost()
    record_figures(
        f"{STACK}: partition",
        isolated_read_only_after_s=round(demoted_s, 1),
        failover_s=round(first - cut_at, 1),
        rows_acked=len(writer.acked),
        rows_lost=len(lost),
    )
    assert lost == []
    wait_until(f"{old} to rejoin after the partition", healthy.healthy, 120)
