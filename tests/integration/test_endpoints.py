"""The endpoints (HAProxy) and the pooler (PgBouncer) on the real engine, on `offline-vip`
(three members, a VIP): writes through the read-write port survive a leader crash and a
switchover with nothing acknowledged lost, compared with the VIP in the same run; the
read-only port never hands a session to the primary; 200 clients share a pool of 10."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

import psycopg
import pytest

from patroni_citus.plan.endpoints import DETECTION_BOUND_S
from tests.integration.cluster import (
    Cluster,
    PrimaryWatch,
    Writer,
    deployed,
    record_figures,
    wait_until,
)
from tests.programrun import stack_config

pytestmark = pytest.mark.integration
STACK = "offline-vip"
LABEL = f"{STACK} + endpoints"
POOL_SIZE = 10
CLIENTS = 200
# How long one PrimaryWatch sample's query may take beyond its sleep interval.
PROMOTION_SAMPLE_SLACK_S = 0.5
# Host ports of their own: other clusters on this engine may publish the defaults.
READ_WRITE_PORT, READ_ONLY_PORT, POOLER_PORT = 15000, 15001, 16432


def endpoints_config() -> dict:
    config = stack_config(STACK)
    config["patroni-citus:cluster"] = {"scope": "i12ep"}
    config["patroni-citus:network"] = {
        "name": "i12ep-net",
        "subnet": "172.26.0.0/16",
        "memberRange": "172.26.1.0/24",
    }
    config["patroni-citus:vip"] = {
        **config["patroni-citus:vip"],
        "address": "172.26.254.254",
        "netmask": 16,
    }
    config["patroni-citus:image"] = {
        **config["patroni-citus:image"],
        "name": "patroni-citus:i12-endpoints",
    }
    config["patroni-citus:endpoints"] = {
        "enabled": True,
        "readWritePort": READ_WRITE_PORT,
        "readOnlyPort": READ_ONLY_PORT,
    }
    config["patroni-citus:pooler"] = {"enabled": True, "port": POOLER_PORT, "poolSize": POOL_SIZE}
    return config


def hosts(endpoint: dict) -> list[tuple[str, int]]:
    """The (host, port) pairs of a libpq host-list output."""
    return list(zip(endpoint["host"].split(","), (int(p) for p in endpoint["port"].split(","))))


def endpoint(cluster: Cluster, kind: str) -> list[tuple[str, int]]:
    return hosts(cluster.run.outputs["endpoints"][kind])


def member_behind(cluster: Cluster, host: str, port: int) -> tuple[bool, str]:
    """(in recovery, member) of a new session through host:port."""
    with cluster.connect(host, target_session_attrs="any", port=port) as conn:
        in_recovery, name = conn.execute(
            "SELECT pg_is_in_recovery(), pg_read_file('/etc/hostname')"
        ).fetchone()
    return in_recovery, name.strip()


def routed(cluster: Cluster) -> bool:
    """Every read-write port reaches the leader and every read-only port a replica."""
    leader = cluster.leader()
    rw = [member_behind(cluster, h, p) for h, p in endpoint(cluster, "readWrite")]
    ro = [member_behind(cluster, h, p) for h, p in endpoint(cluster, "readOnly")]
    return all(r == (False, leader) for r in rw) and all(
        in_recovery and name != leader for in_recovery, name in ro
    )


@pytest.fixture(scope="module")
def cluster(docker_client):
    with deployed(STACK, docker_client, endpoints_config(), ready=routed, label=LABEL) as running:
        yield running


@pytest.fixture
def healthy(cluster):
    wait_until("a healthy cluster before the drill", cluster.healthy, 120)
    wait_until("the endpoints routing to the current roles", lambda: routed(cluster), 60)
    return cluster


def test_outputs_name_every_instance_and_the_containers_are_locked_down(healthy):
    outputs = healthy.run.outputs
    assert endpoint(healthy, "readWrite") == [
        ("127.0.0.1", READ_WRITE_PORT),
        ("127.0.0.1", READ_WRITE_PORT + 10),
    ]
    assert endpoint(healthy, "readOnly") == [
        ("127.0.0.1", READ_ONLY_PORT),
        ("127.0.0.1", READ_ONLY_PORT + 10),
    ]
    assert hosts(outputs["pooler"]) == [("127.0.0.1", POOLER_PORT), ("127.0.0.1", POOLER_PORT + 10)]
    assert outputs["pooler"]["user"] == "app"
    scope = healthy.scope
    for i in (1, 2):
        haproxy = healthy.container(f"{scope}-haproxy-{i}").attrs
        assert haproxy["Config"]["User"] == "nobody"
        assert haproxy["HostConfig"]["ReadonlyRootfs"] is True
        assert haproxy["HostConfig"]["CapDrop"] == ["ALL"]
        pgbouncer = healthy.container(f"{scope}-pgbouncer-{i}")
        assert pgbouncer.attrs["Config"]["User"] == "postgres"
        assert pgbouncer.attrs["HostConfig"]["CapDrop"] == ["ALL"]
        # The password is only in the auth_file: mode 0600, the auth role alone in it.
        listing = pgbouncer.exec_run(["stat", "-c", "%a %U", "/etc/pc-pgbouncer/userlist.txt"])
        assert listing.output.decode().split() == ["600", "postgres"]
        names = pgbouncer.exec_run(["cut", "-d", " ", "-f", "1", "/etc/pc-pgbouncer/userlist.txt"])
        assert names.output.decode().split() == ['"pgbouncer"']
        env = " ".join(pgbouncer.attrs["Config"]["Env"] or [])
        assert healthy.run.outputs["applicationPassword"] not in env


def test_each_endpoints_connection_string_reaches_the_role_it_names(healthy):
    """The read-write and read-only connection strings, given a user and password, reach the
    primary and a replica through HAProxy; the pooler's, given the application password,
    reaches the primary through PgBouncer."""
    outputs = healthy.run.outputs
    superuser = {"user": outputs["coordinator"]["user"], "password": healthy.password}
    for role, in_recovery in (("readWrite", False), ("readOnly", True)):
        with psycopg.connect(outputs["endpoints"][role]["connectionString"], **superuser) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is in_recovery
    pooled = outputs["pooler"]["connectionString"]
    with psycopg.connect(pooled, password=outputs["applicationPassword"]) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False


def two_writers(cluster: Cluster) -> tuple[Writer, Writer]:
    """One writer through the first HAProxy instance's read-write port, one through the VIP."""
    host, port = endpoint(cluster, "readWrite")[0]
    via_haproxy = Writer(cluster, host=host, port=port, table="drill_haproxy")
    via_vip = Writer(cluster, host=cluster.run.outputs["vip"], table="drill_vip")
    return via_haproxy, via_vip


def drill_figures(writers: dict[str, Writer], since: float, old: str) -> dict:
    figures: dict = {}
    for name, writer in writers.items():
        first = wait_until(
            f"a write through {name} on the new leader",
            lambda w=writer: w.first_ack_after(since, old),
            90,
        )
        figures[f"{name}_no_write_s"] = round(first - since, 1)
    return figures


def test_writes_through_haproxy_survive_a_leader_crash_compared_with_the_vip(healthy):
    old = healthy.leader()
    via_haproxy, via_vip = two_writers(healthy)
    writers = {"haproxy": via_haproxy.start(), "vip": via_vip.start()}
    with PrimaryWatch(healthy, healthy.group_members()) as primaries:
        wait_until(
            "rows through both", lambda: min(len(w.acked) for w in writers.values()) > 50, 30
        )
        killed_at = healthy.crash(old)
        figures = drill_figures(writers, killed_at, old)
        time.sleep(2)
        for writer in writers.values():
            writer.stop()
        healthy.restart(old)
        wait_until(f"{old} back in the group", healthy.healthy, 120)
    for name, writer in writers.items():
        figures[f"{name}_rows_acked"] = len(writer.acked)
        figures[f"{name}_rows_lost"] = len(writer.lost())
    figures["two_writable"] = len(primaries.overlaps())
    record_figures(f"{LABEL}: leader crash", **figures)
    assert figures["haproxy_rows_lost"] == 0 and figures["vip_rows_lost"] == 0
    assert figures["two_writable"] == 0


def test_writes_through_haproxy_survive_a_switchover_compared_with_the_vip(healthy):
    old, candidate = healthy.leader(), healthy.sync_standby()
    via_haproxy, via_vip = two_writers(healthy)
    writers = {"haproxy": via_haproxy.start(), "vip": via_vip.start()}
    wait_until("rows through both", lambda: min(len(w.acked) for w in writers.values()) > 20, 30)
    asked_at = healthy.switchover("0", old, candidate)
    figures = drill_figures(writers, asked_at, old)
    time.sleep(2)
    for writer in writers.values():
        writer.stop()
    for name, writer in writers.items():
        figures[f"{name}_rows_acked"] = len(writer.acked)
        figures[f"{name}_rows_lost"] = len(writer.lost())
    record_figures(f"{LABEL}: switchover", **figures)
    assert figures["haproxy_rows_lost"] == 0 and figures["vip_rows_lost"] == 0
    wait_until("the old leader streaming again", healthy.healthy, 120)


@dataclass(frozen=True)
class Session:
    started: float  # before the connection was opened
    in_recovery: bool  # what its first query reported
    member: str
    answered: float  # after its first query returned


def sample_read_only(cluster: Cluster, stop: threading.Event, out: list, errors: list) -> None:
    """Opens new sessions through the read-only ports, one after the other, alternating
    between the instances, and records what each one's first query saw."""
    targets = endpoint(cluster, "readOnly")
    i = 0
    while not stop.is_set():
        host, port = targets[i % len(targets)]
        i += 1
        started = time.monotonic()
        try:
            in_recovery, member = member_behind(cluster, host, port)
            out.append(Session(started, in_recovery, member, time.monotonic()))
        except psycopg.Error:
            errors.append(started)  # e.g. no replica in the pool for a moment
            time.sleep(0.05)


def sample_standby_only(cluster: Cluster, stop: threading.Event, out: list) -> None:
    """Like sample_read_only, with the whole read-only host list and libpq's
    target_session_attrs=standby: libpq itself refuses a server out of recovery."""
    ro = cluster.run.outputs["endpoints"]["readOnly"]
    while not stop.is_set():
        started = time.monotonic()
        try:
            with psycopg.connect(
                host=ro["host"],
                port=ro["port"],
                dbname=ro["database"],
                user=cluster.run.outputs["coordinator"]["user"],
                password=cluster.password,
                target_session_attrs="standby",
                connect_timeout=3,
                autocommit=True,
            ) as conn:
                in_recovery, name = conn.execute(
                    "SELECT pg_is_in_recovery(), pg_read_file('/etc/hostname')"
                ).fetchone()
            out.append(Session(started, in_recovery, name.strip(), time.monotonic()))
        except psycopg.Error:
            time.sleep(0.05)


def test_the_read_only_port_never_routes_to_the_primary(healthy):
    """Every session through the read-only port must find its server in recovery at its first
    query. The one exception, by construction of polling health checks: a replica promoted
    while in the pool stays there until HAProxy has asked it again (DETECTION_BOUND_S), so a
    session opened in that window reaches the new primary. Those are counted and must all lie
    inside the window; the member that led before the switchover is never reached while it
    leads."""
    old, candidate = healthy.leader(), healthy.sync_standby()
    sessions: list[Session] = []
    errors: list[float] = []
    stop = threading.Event()
    standby_sessions: list[Session] = []
    samplers = [
        threading.Thread(target=sample_read_only, args=(healthy, stop, sessions, errors))
        for _ in range(3)
    ]
    samplers.append(
        threading.Thread(target=sample_standby_only, args=(healthy, stop, standby_sessions))
    )
    with PrimaryWatch(healthy, healthy.group_members()) as primaries:
        for thread in samplers:
            thread.start()
        time.sleep(5)
        before = len(sessions)
        asked_at = healthy.switchover("0", old, candidate)
        wait_until("the old leader streaming again", healthy.healthy, 120)
        time.sleep(5)
        stop.set()
        for thread in samplers:
            thread.join(timeout=30)
    promoted_at = min(start for start, _ in primaries.intervals[candidate] if start > asked_at)
    on_primary = [s for s in sessions if not s.in_recovery]
    outside_window = [
        s
        for s in on_primary
        if s.member != candidate
        or not promoted_at - 0.2 <= s.started <= promoted_at + DETECTION_BOUND_S
    ]
    # libpq checks target_session_attrs once, while connecting: a session whose server was
    # promoted between that check and its first query is the only legitimate way to see a
    # primary. The promotion lies between the watch's last read-only sample of the candidate
    # and promoted_at, so such a session was opened before promoted_at and answered after
    # that previous sample.
    promoted_after = promoted_at - primaries.interval - PROMOTION_SAMPLE_SLACK_S
    standby_on_primary = [s for s in standby_sessions if not s.in_recovery]
    standby_not_promoted_under_it = [
        s
        for s in standby_on_primary
        if s.member != candidate or not (s.started <= promoted_at and s.answered >= promoted_after)
    ]
    record_figures(
        f"{LABEL}: read-only port during a switchover",
        sessions=len(sessions),
        sessions_before_switchover=before,
        on_the_primary=len(on_primary),
        on_the_primary_outside_detection_window=len(outside_window),
        refused=len(errors),
        members_seen=sorted({s.member for s in sessions}),
        standby_sessions=len(standby_sessions),
        standby_sessions_on_the_primary=len(standby_on_primary),
        standby_sessions_on_the_primary_not_promoted_under_them=len(standby_not_promoted_under_it),
    )
    assert before > 20 and len(sessions) > before
    # With target_session_attrs=standby no session connects to a primary.
    assert standby_sessions and standby_not_promoted_under_it == [], standby_not_promoted_under_it
    assert outside_window == [], outside_window
    assert not any(s.member == old and not s.in_recovery for s in sessions)


def pgbench(cluster: Cluster, runner: str, password: str, *argv: str) -> tuple[int, str]:
    result = cluster.container(runner).exec_run(
        ["pgbench", *argv], environment={"PGPASSWORD": password}
    )
    return result.exit_code, result.output.decode(errors="replace")


def tps(output: str) -> float:
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", output)
    assert match, output
    return float(match.group(1))


def processed(output: str) -> int:
    match = re.search(r"number of transactions actually processed: (\d+)", output)
    assert match, output
    return int(match.group(1))


def test_two_hundred_clients_share_a_small_pool(healthy):
    leader = healthy.leader()
    leader_address = healthy.members[leader]
    runner = next(m for m in healthy.members if m != leader)
    pooler = healthy.run.outputs["pooler"]
    bouncer = pooler["network"]["host"].split(",")[0]
    app, app_password = pooler["user"], healthy.run.outputs["applicationPassword"]
    superuser = healthy.run.outputs["coordinator"]["user"]
    code, out = pgbench(healthy, runner, healthy.password,
                        "-i", "-q", "-s", "10", "-h", leader_address, "-U", superuser, "postgres")  # fmt: skip
    assert code == 0, out
    with healthy.connect(leader_address) as conn:
        conn.execute(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON pgbench_accounts, pgbench_branches, "
            f"pgbench_tellers, pgbench_history TO {app}"
        )

    # Server connections of the application role, sampled on the leader during each run.
    peak = {"app": 0}
    stop = threading.Event()

    def watch_server_connections() -> None:
        with healthy.connect(leader_address) as conn:
            while not stop.is_set():
                (count,) = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (app,)
                ).fetchone()
                peak["app"] = max(peak["app"], count)
                time.sleep(0.1)

    per_client = 30
    watcher = threading.Thread(target=watch_server_connections, daemon=True)
    watcher.start()
    try:
        code, pooled = pgbench(healthy, runner, app_password,
                               "-n", "-c", str(CLIENTS), "-j", "4", "-t", str(per_client),
                               "-h", bouncer, "-p", "6432", "-U", app, "postgres")  # fmt: skip
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert code == 0, pooled
    # Every client ran all its transactions: all 200 were served.
    assert processed(pooled) == CLIENTS * per_client, pooled
    pooled_server_peak = peak["app"]
    assert 0 < pooled_server_peak <= POOL_SIZE

    direct_clients = 20
    code, direct = pgbench(healthy, runner, app_password,
                           "-n", "-c", str(direct_clients), "-j", "4",
                           "-t", str(CLIENTS * per_client // direct_clients),
                           "-h", leader_address, "-p", "5432", "-U", app, "postgres")  # fmt: skip
    assert code == 0, direct
    # The same 200 clients straight to the leader: more than its max_connections.
    code_200, direct_200 = pgbench(healthy, runner, app_password,
                                   "-n", "-c", str(CLIENTS), "-j", "4", "-t", "1",
                                   "-h", leader_address, "-p", "5432", "-U", app, "postgres")  # fmt: skip
    record_figures(
        f"{LABEL}: pgbench",
        pooled_clients=CLIENTS,
        pool_size=POOL_SIZE,
        pooled_tps=tps(pooled),
        pooled_server_connections_peak=pooled_server_peak,
        direct_clients=direct_clients,
        direct_tps=tps(direct),
        direct_200_clients_exit_code=code_200,
        direct_200_clients_error=next(
            (
                line.strip()
                for line in direct_200.splitlines()
                if "FATAL" in line or "error" in line
            ),
            "",
        )[:160],
    )
