"""Monitoring on a real engine: Prometheus scrapes every target (the PostgreSQL exporter beside
each member logged in as the monitoring role), and each drill's alert fires while its fault
lasts and resolves after it. Scrapes every 2 s, so the alerts' `for:` are seconds."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from typing import Callable, Optional

import pytest

from policies import conventions
from tests.integration.cluster import Cluster, deployed, record_figures, wait_until
from tests.programrun import stack_config

pytestmark = pytest.mark.integration
STACK = "offline"
SCRAPE_S = 2
PROMETHEUS_PORT = 19190
CADVISOR_IMAGE = "local/cadvisor:bullseye"  # test_observability's stand-in
LAG_BYTES = 1024 * 1024
LABEL = f"{STACK} + monitoring"


def monitoring_config() -> dict:
    config = stack_config(STACK)
    config.update(
        {
            "patroni-citus:cluster": {"scope": "i12mon"},
            "patroni-citus:network": {
                "name": "i12mon-net",
                "subnet": "172.25.0.0/16",
                "memberRange": "172.25.1.0/24",
            },
            "patroni-citus:image": {
                **config["patroni-citus:image"],
                "name": "patroni-citus:i12-monitoring",
            },
            "patroni-citus:monitoring": {
                "enabled": True,
                "scrapeInterval": f"{SCRAPE_S}s",
                "hostPort": PROMETHEUS_PORT,
                "maxReplicationLagBytes": LAG_BYTES,
            },
            # Every scrape job for real: HAProxy's exporter and pgBackRest's join the others.
            "patroni-citus:endpoints": {
                "enabled": True,
                "readWritePort": 15100,
                "readOnlyPort": 15101,
            },
            "patroni-citus:backups": {"enabled": True},
            # cadvisor, scraped over its own network; fluentd is test_observability's.
            "patroni-citus:observability": {
                "enabled": True,
                "cadvisor": {"image": CADVISOR_IMAGE, "hostPort": 18180},
                "fluentd": {"enabled": False},
            },
        }
    )
    return config


@pytest.fixture(scope="module")
def cluster(docker_client):
    from tests.integration.test_observability import STANDINS

    docker_client.images.build(path=str(STANDINS / "cadvisor"), tag=CADVISOR_IMAGE, rm=True)
    try:
        with deployed(STACK, docker_client, monitoring_config(), label=LABEL) as running:
            yield running
    finally:
        # The backup repository outlives its stack by design; this one is the drill's.
        for volume in docker_client.volumes.list(filters={"name": "i12mon-backups"}):
            volume.remove(force=True)


def api(cluster: Cluster, path: str, **query: str) -> dict:
    url = cluster.run.outputs["prometheusUrl"] + path
    if query:
        url += "?" + urllib.parse.urlencode(query)
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]


def firing(cluster: Cluster, alert: str) -> list[dict]:
    """The labels of each firing instance of `alert`."""
    return [
        a["labels"]
        for a in api(cluster, "/api/v1/alerts")["alerts"]
        if a["labels"]["alertname"] == alert and a["state"] == "firing"
    ]


def drill(
    cluster: Cluster,
    name: str,
    fault: Callable[[], None],
    repair: Callable[[], None],
    expected: dict[str, Callable[[list[dict]], bool]],
    timeout: float = 60,
) -> None:
    """Causes a fault, waits until every expected alert fires (its predicate accepts the
    firing instances), repairs it, waits until they have all resolved; records the times."""
    started = time.monotonic()
    fault()
    fired = {}
    try:
        for alert, accept in expected.items():
            wait_until(
                f"{alert} to fire", lambda a=alert, ok=accept: ok(firing(cluster, a)), timeout
            )
            fired[alert] = round(time.monotonic() - started, 1)
    finally:
        repaired = time.monotonic()
        repair()
    for alert in expected:
        wait_until(f"{alert} to resolve", lambda a=alert: not firing(cluster, a), 120)
    record_figures(
        f"{LABEL}: {name}",
        **{f"{alert}_fired_s": s for alert, s in fired.items()},
        resolved_s=round(time.monotonic() - repaired, 1),
    )


def quiet(cluster: Cluster) -> bool:
    return not [a for a in api(cluster, "/api/v1/alerts")["alerts"] if a["state"] == "firing"]


def test_every_target_is_up_and_every_exporter_logged_in(cluster):
    assert cluster.run.outputs["prometheusUrl"] == f"http://127.0.0.1:{PROMETHEUS_PORT}"
    members = set(cluster.members)
    expected = (
        {("patroni", m) for m in members}
        | {("postgres", m) for m in members}
        | {("etcd", m.name) for m in cluster.settings.etcd_members}
        | {("cadvisor", None), ("pgbackrest", None)}
        | {("haproxy", None)}
    )

    def all_up() -> Optional[set]:
        targets = api(cluster, "/api/v1/targets")["activeTargets"]
        up = {
            (t["labels"]["job"], t["labels"].get("member")) for t in targets if t["health"] == "up"
        }
        return up if up == expected else None

    started = time.monotonic()
    wait_until("every target up", all_up, 120)
    up_s = round(time.monotonic() - started, 1)

    def logged_in() -> bool:
        samples = api(cluster, "/api/v1/query", query="pg_up")["result"]
        return {s["metric"]["member"] for s in samples if s["value"][1] == "1"} == members

    wait_until("pg_up 1 from every member's exporter", logged_in, 60)
    wait_until("no alert firing at rest", lambda: quiet(cluster), 90)
    record_figures(f"{LABEL}: targets", targets=len(expected), all_up_after_s=up_s)


def test_a_killed_leader_is_a_member_down(cluster):
    old = cluster.leader()

    def kill() -> None:
        cluster.crash(old)

    def down(alerts: list[dict]) -> bool:
        return any(a["member"] == old for a in alerts)

    drill(cluster, "leader killed", kill, lambda: cluster.restart(old), {"PatroniMemberDown": down})
    wait_until("the group healthy again", cluster.healthy, 120)


def test_a_group_without_any_running_member_has_no_leader(cluster):
    # Every member frozen (docker pause): none answers, so none reports itself primary.
    # Shorter than the leader key's TTL, so the leader resumes as it was.
    members = [cluster.container(m) for m in cluster.members]

    def freeze() -> None:
        for c in members:
            c.pause()

    def thaw() -> None:
        for c in members:
            c.unpause()

    def group0(alerts: list[dict]) -> bool:
        return any(a["citus_group"] == "0" for a in alerts)

    def every_member(alerts: list[dict]) -> bool:
        return {a["member"] for a in alerts} == set(cluster.members)

    drill(
        cluster,
        "every member frozen",
        freeze,
        thaw,
        {"PatroniNoLeader": group0, "PatroniMemberDown": every_member},
    )
    wait_until("the group healthy again", cluster.healthy, 120)


def test_etcd_without_quorum(cluster):
    stopped = [cluster.container(m.name) for m in cluster.settings.etcd_members[1:]]

    def stop() -> None:
        for c in stopped:
            c.stop(timeout=2)

    def start() -> None:
        for c in stopped:
            c.start()

    def two_down(alerts: list[dict]) -> bool:
        return {a["member"] for a in alerts} == {c.name for c in stopped}

    drill(
        cluster,
        "etcd quorum lost",
        stop,
        start,
        {"EtcdNoQuorum": bool, "EtcdMemberDown": two_down},
    )
    wait_until("the group healthy again", cluster.healthy, 120)


def test_a_paused_replica_lags_and_is_reported_stopped(cluster):
    # Patroni resumes a paused replay on its next loop (PostgreSQL 14+) unless the cluster is
    # in maintenance mode: an operator's pause, forgotten, is what this alert is for.
    leader = cluster.leader()
    replica = next(m["name"] for m in cluster.cluster_view() if m["role"] == "replica")
    address = cluster.members[replica]
    with cluster.connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS lag_drill (id bigint, pad text)")

    def patronictl(*args: str) -> None:
        command = ["patronictl", "-c", conventions.PATRONI_CONFIG_PATH, *args, "--wait"]
        result = cluster.container(leader).exec_run(command)
        assert result.exit_code == 0, result.output.decode()

    def pause() -> None:
        patronictl("pause")
        with cluster.connect(address, target_session_attrs="any") as conn:
            conn.execute("SELECT pg_wal_replay_pause()")
        # About 4 MiB of WAL, well past the 1 MiB threshold.
        with cluster.connect() as conn:
            conn.execute(
                "INSERT INTO lag_drill SELECT g, repeat('x', 200) FROM generate_series(1, 15000) g"
            )

    def resume() -> None:
        with cluster.connect(address, target_session_attrs="any") as conn:
            conn.execute("SELECT pg_wal_replay_resume()")
        patronictl("resume")

    def this_replica(alerts: list[dict]) -> bool:
        return any(a["member"] == replica for a in alerts)

    drill(
        cluster,
        "replica replay paused",
        pause,
        resume,
        {"PostgresReplicationStopped": this_replica, "PatroniReplicationLag": this_replica},
    )


def test_a_rotated_monitoring_password_restarts_every_exporter(cluster):
    ids = {m: cluster.container(m).id for m in cluster.members}
    since = time.time()
    started = time.monotonic()
    cluster.update(monitoring_config(), secrets={"monitoringPassword": "rotated-monitoring-1"})
    updated_s = round(time.monotonic() - started, 1)
    assert {m: cluster.container(m).id for m in cluster.members} == ids  # none replaced

    def restarted(member: str) -> bool:
        log = cluster.container(member).logs(since=int(since) - 1).decode()
        return "credentials changed: restarting the exporter" in log

    for member in cluster.members:
        wait_until(f"{member}'s exporter restarted", lambda m=member: restarted(m), 10)
    time.sleep(2 * SCRAPE_S)  # past the last scrape of the old exporters

    def logged_in() -> bool:
        samples = api(cluster, "/api/v1/query", query="pg_up")["result"]
        return {s["metric"]["member"] for s in samples if s["value"][1] == "1"} == set(
            cluster.members
        )

    wait_until("pg_up 1 again from every exporter", logged_in, 30)
    assert not firing(cluster, "PostgresExporterCannotConnect")
    record_figures(f"{LABEL}: monitoring password rotated", pulumi_up_s=updated_s)
