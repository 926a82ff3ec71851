"""The VIP path on the `offline-vip` stack (etcd v2 API + Debian's vip-manager 1.0.2): the
VIP follows the leader on a crash and on a planned switchover, with no acknowledged row lost."""

from __future__ import annotations

import time

import pytest

from tests.integration import operator_cli
from tests.integration.cluster import (
    Writer,
    crash_drill,
    deployed,
    partition_drill,
    record_figures,
    wait_until,
)

pytestmark = pytest.mark.integration
STACK = "offline-vip"


@pytest.fixture(scope="module")
def cluster(docker_client):
    with deployed(STACK, docker_client, ready=lambda c: vip_member(c) == c.leader()) as running:
        yield running


@pytest.fixture
def healthy(cluster):
    wait_until("a healthy cluster before the drill", cluster.healthy, 120)
    wait_until("the VIP on the leader", lambda: vip_member(cluster) == cluster.leader(), 60)
    return cluster


def vip_member(cluster) -> str:
    return cluster.vip_member()


def sidecar(cluster, member: str):
    return cluster.container(f"{member}-vip")


def test_vip_answers_on_the_leader_and_outputs_match(healthy):
    assert healthy.run.outputs["coordinator"]["host"] == healthy.run.outputs["vip"]
    assert healthy.etcd_leader_keys() == healthy.run.outputs["groupLeaders"]
    assert vip_member(healthy) == healthy.etcd_leader_keys()["0"]
    for member in healthy.members:
        assert sidecar(healthy, member).status == "running"


@pytest.mark.parametrize("watcher", ["on", "off"])
def test_vip_moves_on_leader_crash_without_losing_rows(healthy, watcher):
    old = healthy.leader()
    with healthy.crash_watcher_switched(watcher == "on"):
        figures = crash_drill(
            healthy, writer=Writer(healthy, host=healthy.run.outputs["vip"]), vip=True
        )
    record_figures(f"{STACK}: leader crash, watcher {watcher}", **figures)
    assert figures["rows_lost"] == 0 and figures["two_writable"] == 0
    # Its sidecar died with the old namespace and must come back into the new one by itself.
    wait_until(
        f"the sidecar of {old} running again",
        lambda: (
            sidecar(healthy, old).status == "running"
            and sidecar(healthy, old).exec_run(["test", "-e", "/sys/class/net/eth0"]).exit_code == 0
        ),
        90,
    )


def test_vip_follows_a_planned_switchover(healthy):
    old = healthy.leader()
    candidate = healthy.sync_standby()
    writer = Writer(healthy, host=healthy.run.outputs["vip"]).start()
    wait_until("rows through the VIP", lambda: len(writer.acked) > 20, 30)
    asked_at = healthy.switchover("0", old, candidate)
    wait_until("the VIP on the candidate", lambda: vip_member(healthy) == candidate, 60)
    moved_s = time.monotonic() - asked_at
    time.sleep(2)
    writer.stop()
    lost = writer.lost()
    record_figures(
        f"{STACK}: switchover",
        vip_moved_s=round(moved_s, 1),
        rows_acked=len(writer.acked),
        rows_lost=len(lost),
    )
    assert lost == []
    wait_until("the old leader streaming again", healthy.healthy, 120)


def test_a_partitioned_leader_hands_over_the_vip_and_never_holds_it_again(healthy):
    """The leader is cut off, alive, while a writer commits through the VIP: the new leader
    takes the VIP and the writes within about the TTL, and once the old leader is back only
    the leader holds the VIP."""
    figures = partition_drill(healthy, Writer(healthy, host=healthy.run.outputs["vip"]), vip=True)
    record_figures(f"{STACK}: partition", **figures)
    assert figures["rows_lost"] == 0 and figures["most_writable_at_once"] == 1
    assert figures["vip_holders_after_heal"] == 1


# --- The operator CLI (python -m pcctl) on this stack -----------------------------------------


def test_pcctl_status_names_the_vip_holder_and_reads_etcd_v2(healthy, tmp_path):
    code, found = operator_cli.status(operator_cli.outputs_file(healthy, tmp_path))
    view = {m["name"]: m for m in healthy.cluster_view()}
    assert code == 0 and found["healthy"] is True, found["problems"]
    assert found["dcs_api"] == "v2"
    (group,) = found["groups"]
    assert {m["name"]: (m["role"], m["state"]) for m in group["members"]} == {
        name: (m["role"], m["state"]) for name, m in view.items()
    }
    assert found["vip_holder"] == vip_member(healthy) == group["leader"] == group["dcs_leader"]
    assert group["dcs_leader"] == healthy.etcd_leader_keys()["0"]


def test_pcctl_watch_prints_a_switchover_within_a_second_of_etcd_v2(healthy, tmp_path):
    operator_cli.watch_a_switchover(
        healthy, operator_cli.outputs_file(healthy, tmp_path), f"{STACK}: pcctl watch, etcd v2"
    )
    wait_until("the VIP on the new leader", lambda: vip_member(healthy) == healthy.leader(), 60)
