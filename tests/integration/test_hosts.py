"""The `offline-hosts` stack across three real Docker engines joined in a Swarm
(tests/integration/hosts.py): placement, the loss of a whole host and a partitioned host,
while a writer commits numbered rows through the `coordinator` output (HAProxy on every
host)."""

from __future__ import annotations

import json
import threading
import time
from typing import Iterator, Optional

import pytest

from policies import conventions
from tests.integration.cluster import Cluster, Writer, deployed, record_figures, wait_until
from tests.integration.conftest import BASE_IMAGE
from tests.integration.hosts import STACK, SwarmHosts

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def hosts(docker_client) -> Iterator[SwarmHosts]:
    test_hosts = SwarmHosts(docker_client, BASE_IMAGE)
    seconds = test_hosts.create()
    record_figures("offline-hosts: 3 engines", swarm_ready_s=round(seconds, 1))
    yield test_hosts
    test_hosts.remove()


class Placed:
    """The deployed stack seen through each member's own engine (the overlay is not routable
    from the test machine; the engines are)."""

    def __init__(self, cluster: Cluster, hosts: SwarmHosts):
        self.cluster = cluster
        self.hosts = hosts
        self.members = [m.name for m in cluster.settings.groups[0].members]

    def host_of(self, container: str) -> str:
        host = self.cluster.settings.hosts.host_of(container)
        assert host is not None
        return host

    def view(self, skip: tuple[str, ...] = ()) -> list[dict]:
        """Patroni's view of the group (patronictl list) from the first member that answers."""
        for member in self.members:
            if self.host_of(member) in skip:
                continue
            code, out = self.hosts.docker(
                self.host_of(member), "exec", member,
                "patronictl", "-c", conventions.PATRONI_CONFIG_PATH, "list", "-f", "json",
            )  # fmt: skip
            if code == 0:
                return list(json.loads(out))
        raise AssertionError("no member answers patronictl list")

    def leader(self, skip: tuple[str, ...] = ()) -> Optional[str]:
        leaders = [
            m["Member"]
            for m in self.view(skip)
            if m["Role"] == "Leader" and m["State"] == "running"
        ]
        return leaders[0] if len(leaders) == 1 else None

    def healthy(self) -> bool:
        view = self.view()
        roles = sorted(m["Role"] for m in view)
        streaming = [m for m in view if m["Role"] != "Leader" and m["State"] == "streaming"]
        return (
            len(view) == len(self.members)
            and roles.count("Leader") == 1
            and len(streaming) == len(self.members) - 1
            and "Sync Standby" in roles
        )

    def start_stragglers(self, host: str, grace: float = 30) -> list[str]:
        """Containers of `host` that its engine did not bring back within `grace` seconds
        after a power loss, started as an operator would (Docker 20.10 sometimes fails to
        re-attach a container to an overlay at engine start and does not retry it)."""
        placed = [c for c, h in self.cluster.settings.hosts.placement.items() if h == host]
        client = self.hosts.client(host)

        def stopped() -> list[str]:
            return [c for c in placed if client.containers.get(c).status != "running"]

        deadline = time.monotonic() + grace
        while stopped() and time.monotonic() < deadline:
            time.sleep(1)
        stragglers = stopped()
        for name in stragglers:
            client.containers.get(name).start()
        return stragglers

    def writable(self, member: str) -> bool:
        """Whether the member accepts writes, asked on its own engine."""
        code, out = self.hosts.docker(
            self.host_of(member), "exec", member,
            "psql", "-XtAc", "SELECT NOT pg_is_in_recovery()", "-U", "postgres",
            timeout=5,
        )  # fmt: skip
        return code == 0 and out == "t"


@pytest.fixture(scope="module")
def placed(hosts, docker_client) -> Iterator[Placed]:
    with deployed(STACK, docker_client, healthy=lambda c: Placed(c, hosts).healthy()) as cluster:
        try:
            yield Placed(cluster, hosts)
        finally:
            for host in hosts.hosts:  # a failed drill may leave one down or cut off
                if hosts.is_cut(host.name):
                    hosts.partition(host.name, cut=False)
                if not hosts.is_running(host.name):
                    hosts.start(host.name)


def test_every_member_runs_on_its_placed_engine_over_one_overlay(placed):
    settings = placed.cluster.settings
    for host in placed.hosts.hosts:
        running = {
            c.name
            for c in placed.hosts.client(host.name).containers.list(
                filters={"label": f"{conventions.LABEL_CLUSTER}={settings.cluster.scope}"}
            )
        }
        expected = {c for c, h in settings.hosts.placement.items() if h == host.name}
        assert running == expected
        # one etcd member, one Patroni member and one HAProxy per host
        assert sorted(n.split("-")[1] for n in running) == ["etcd", "haproxy", "pg"]
    network = placed.hosts.client("h1").networks.get(settings.network.name)
    assert network.attrs["Driver"] == "overlay" and network.attrs["Attachable"]
    member = placed.members[0]
    inspected = placed.hosts.client(placed.host_of(member)).containers.get(member)
    address = inspected.attrs["NetworkSettings"]["Networks"][settings.network.name]
    assert address["IPAMConfig"]["IPv4Address"] == placed.cluster.members[member]


class Writable:
    """Samples, every half second, which members accept writes (each asked on its engine)."""

    def __init__(self, placed: Placed):
        self.placed = placed
        self.samples: list[list[str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Writable:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            answers: dict[str, bool] = {}
            threads = [
                threading.Thread(target=self._ask, args=(answers, m)) for m in self.placed.members
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.samples.append(sorted(m for m, w in answers.items() if w))
            time.sleep(0.5)

    def _ask(self, answers: dict[str, bool], member: str) -> None:
        answers[member] = self.placed.writable(member)

    @property
    def most_at_once(self) -> int:
        return max((len(s) for s in self.samples), default=0)


def test_losing_the_leaders_host_fails_over_and_it_rejoins(placed):
    old = wait_until("a leader", placed.leader, 60)
    lost_host = placed.host_of(old)
    writer = Writer(placed.cluster, table="host_loss").start()
    wait_until("rows before the loss", lambda: len(writer.acked) > 50, 30)
    killed_at = time.monotonic()
    placed.hosts.kill(lost_host)
    first = wait_until(
        "a write acknowledged after the host loss",
        lambda: writer.first_ack_after(killed_at, old),
        120,
    )
    new = wait_until("a new leader", lambda: placed.leader(skip=(lost_host,)), 60)
    time.sleep(2)
    writer.stop()
    powered_on = time.monotonic()
    engine_s = placed.hosts.start(lost_host)
    restarted = placed.start_stragglers(lost_host)
    wait_until(f"{lost_host}'s members back in the group", placed.healthy, 240)
    rejoined_s = time.monotonic() - powered_on
    lost = writer.lost()
    record_figures(
        f"{STACK}: host loss",
        failover_s=round(first - killed_at, 1),
        longest_gap_s=round(writer.longest_gap(killed_at), 1),
        rows_acked=len(writer.acked),
        rows_lost=len(lost),
        engine_back_s=round(engine_s, 1),
        started_by_hand=len(restarted),
        rejoined_s=round(rejoined_s, 1),
    )
    assert new != old and placed.host_of(new) != lost_host
    assert lost == []


def test_a_partitioned_leaders_host_leaves_exactly_one_writable_primary(placed):
    old = wait_until("a leader", placed.leader, 60)
    cut_host = placed.host_of(old)
    writer = Writer(placed.cluster, table="host_partition").start()
    wait_until("rows before the partition", lambda: len(writer.acked) > 50, 30)
    with Writable(placed) as writable:
        cut_at = time.monotonic()
        placed.hosts.partition(cut_host)
        try:
            first = wait_until(
                "a write acknowledged on another member after the partition",
                lambda: writer.first_ack_after(cut_at, old),
                120,
            )
            new = wait_until("a new leader", lambda: placed.leader(skip=(cut_host,)), 60)
            # The cut-off leader demotes itself once it cannot renew its key.
            wait_until(f"{old} read-only", lambda: not placed.writable(old), 60)
            time.sleep(2)
        finally:
            placed.hosts.partition(cut_host, cut=False)
        healed_at = time.monotonic()
        wait_until(f"{old} back as a replica", placed.healthy, 240)
        rejoined_s = time.monotonic() - healed_at
    writer.stop()
    lost = writer.lost()
    record_figures(
        f"{STACK}: partition",
        failover_s=round(first - cut_at, 1),
        rows_acked=len(writer.acked),
        rows_lost=len(lost),
        writable_samples=len(writable.samples),
        most_writable_at_once=writable.most_at_once,
        rejoined_s=round(rejoined_s, 1),
    )
    assert new != old
    assert writable.most_at_once <= 1
    assert lost == []
