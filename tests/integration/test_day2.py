"""Day-2 drills on the `offline-vip` stack with groups of two (the seed's shape): each change is
a second program run applied as an update (`Cluster.update`, pulumi-docker's and
pulumi-command's semantics), while one writer commits through the leader (libpq host list)
and one through the VIP. Recorded per change: containers replaced, leader changes, the longest
time without an acknowledged write per writer, rows lost, and the fewest members running."""

from __future__ import annotations

import copy
import io
import tarfile
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator, Optional

import psycopg
import pytest
import yaml

from policies import conventions
from tests.integration.cluster import Cluster, Writer, deployed, record_figures, wait_until
from tests.programrun import PROJECT, stack_config

pytestmark = pytest.mark.integration
STACK = "offline-vip"
CONTAINER = "docker:index/container:Container"
UPGRADED_BASE = "local/debian:bookworm-day2"


def base_config() -> dict:
    config = copy.deepcopy(stack_config(STACK))
    config[f"{PROJECT}:patroni"]["members"] = 2
    return config


@pytest.fixture(scope="module")
def cluster(docker_client) -> Iterator[Cluster]:
    with deployed(STACK, docker_client, base_config(), label=f"{STACK} day-2") as running:
        running.config = base_config()  # drills build on what the last run applied
        yield running


@pytest.fixture
def healthy(cluster):
    wait_until("a healthy cluster before the drill", cluster.healthy, 120)
    return cluster


@dataclass
class Watch:
    """Samples, every 0.2 s, who leads and how many of the group's members run."""

    cluster: Cluster
    leaders: list[str] = field(default_factory=list)
    fewest_running: int = 99
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: Optional[threading.Thread] = None

    def start(self) -> Watch:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        labels = [
            f"{conventions.LABEL_CLUSTER}={self.cluster.scope}",
            f"{conventions.LABEL_ROLE}={conventions.ROLE_PATRONI}",
        ]
        while not self._stop.is_set():
            running = self.cluster.client.containers.list(filters={"label": labels})
            self.fewest_running = min(self.fewest_running, len(running))
            try:
                leader = self.cluster.leader()
            except Exception:  # noqa: BLE001 - nobody answers while members restart
                leader = None
            if leader and (not self.leaders or self.leaders[-1] != leader):
                self.leaders.append(leader)
            time.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    @property
    def leader_changes(self) -> int:
        return max(len(self.leaders) - 1, 0)


def container_ids(cluster: Cluster) -> dict[str, str]:
    return {
        c.name: c.id
        for c in cluster.client.containers.list(
            all=True, filters={"label": f"{conventions.LABEL_CLUSTER}={cluster.scope}"}
        )
    }


def apply_change(cluster: Cluster, scenario: str, config: dict, **update) -> dict:
    """Applies `config` as `pulumi up` would while both writers run; records and returns the
    figures; asserts no acknowledged row is lost and never more than one member is down."""
    before = container_ids(cluster)
    group_size = len(cluster.group_members())
    through_leader = Writer(cluster, table="day2").start()
    through_vip = Writer(cluster, host=cluster.run.outputs["vip"], table="day2_vip").start()
    wait_until("rows before the change", lambda: len(through_vip.acked) > 20, 30)
    watch = Watch(cluster).start()
    started = time.monotonic()
    cluster.update(config, **update)
    took = time.monotonic() - started
    wait_until("a healthy cluster after the change", cluster.healthy, 120)
    time.sleep(2)
    for writer in (through_leader, through_vip):
        writer.stop()
    watch.stop()
    cluster.config = config
    after = container_ids(cluster)
    figures = {
        "update_s": round(took, 1),
        "containers_replaced": sorted(
            n for n, i in before.items() if after.get(n) not in (None, i)
        ),
        "leader_changes": watch.leader_changes,
        "no_ack_s_leader": round(through_leader.longest_gap(), 1),
        "no_ack_s_vip": round(through_vip.longest_gap(), 1),
        "rows_acked": len(through_leader.acked) + len(through_vip.acked),
        "rows_lost": len(through_leader.lost()) + len(through_vip.lost()),
        "fewest_members_running": watch.fewest_running,
    }
    record_figures(f"{STACK}: {scenario}", **figures)
    assert figures["rows_lost"] == 0
    assert watch.fewest_running >= min(group_size, len(cluster.group_members())) - 1
    return figures


def show_everywhere(cluster: Cluster, parameter: str) -> set[str]:
    values = set()
    for address in cluster.group_members().values():
        with cluster.connect(address, target_session_attrs="any") as conn:
            values.add(conn.execute(f"SHOW {parameter}").fetchone()[0])
    return values


def with_patroni(config: dict, **changes) -> dict:
    changed = copy.deepcopy(config)
    changed[f"{PROJECT}:patroni"].update(changes)
    return changed


def with_parameters(config: dict, **parameters) -> dict:
    current = dict(config[f"{PROJECT}:patroni"].get("parameters") or {})
    return with_patroni(config, parameters={**current, **parameters})


def test_a_reloadable_parameter_reaches_every_member_without_a_restart(healthy):
    figures = apply_change(healthy, "reloadable parameter", with_parameters(healthy.config,
                           work_mem="8MB"))  # fmt: skip
    assert figures["containers_replaced"] == [] and figures["leader_changes"] == 0
    assert show_everywhere(healthy, "work_mem") == {"8MB"}
    leader = healthy.leader()
    assert healthy.rest(leader, "/config")["postgresql"]["parameters"]["work_mem"] == "8MB"


def test_loop_wait_reaches_the_dcs_without_a_restart(healthy):
    figures = apply_change(healthy, "loop_wait", with_patroni(healthy.config, loopWait=3))
    assert figures["containers_replaced"] == [] and figures["leader_changes"] == 0
    assert healthy.rest(healthy.leader(), "/config")["loop_wait"] == 3


def test_a_restart_requiring_parameter_rolls_with_one_switchover(healthy):
    figures = apply_change(healthy, "restart-requiring parameter",
                           with_parameters(healthy.config, max_connections=150))  # fmt: skip
    assert figures["containers_replaced"] == []
    assert figures["leader_changes"] <= 1
    assert show_everywhere(healthy, "max_connections") == {"150"}
    assert not any(m.get("pending_restart") for m in healthy.cluster_view())


def rest_credentials(cluster: Cluster, member: str) -> tuple[str, str]:
    config = cluster.container(member).exec_run(["cat", conventions.PATRONI_CONFIG_PATH]).output
    auth = yaml.safe_load(config)["restapi"]["authentication"]
    return auth["username"], auth["password"]


def rest_status(cluster: Cluster, member: str, user: str, password: str) -> int:
    """The HTTP status of an authenticated POST /reload, asked from inside the member."""
    result = cluster.container(member).exec_run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", f"{user}:{password}",
         "-X", "POST", f"http://127.0.0.1:{conventions.REST_API_PORT}/reload"]
    )  # fmt: skip
    return int(result.output.decode())


def test_password_rotation_keeps_replication_and_retires_the_old_passwords(healthy):
    old = healthy.password
    rest_user, old_rest = rest_credentials(healthy, healthy.leader())
    new = {
        "superuserPassword": "rotated-superuser-1",
        "replicationPassword": "rotated-replication-1",
        "restApiPassword": "rotated-rest-api-1",
    }
    healthy.next_password = new["superuserPassword"]  # clients learn it out of band
    figures = apply_change(healthy, "password rotation", healthy.config, secrets=new)
    assert figures["containers_replaced"] == []
    assert healthy.password == new["superuserPassword"]
    for address in healthy.group_members().values():
        with healthy.connect(address, target_session_attrs="any") as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(host=address, user="postgres", password=old, dbname="postgres",
                            connect_timeout=3).close()  # fmt: skip
    leader = healthy.leader()
    for member in healthy.group_members():
        assert rest_status(healthy, member, rest_user, new["restApiPassword"]) == 202
        assert rest_status(healthy, member, rest_user, old_rest) == 401
    # Streaming with the new replication password, also after a reconnect.
    replica = next(m for m in healthy.group_members() if m != leader)
    with healthy.connect(healthy.members[leader], target_session_attrs="any") as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_replication")
    wait_until("the replica streaming again", healthy.healthy, 60)
    assert replica in {m["name"] for m in healthy.cluster_view() if m["state"] == "streaming"}


def upgraded_base(cluster: Cluster) -> str:
    """A new base image: the old one plus one file, so the rebuilt image really differs."""
    client = cluster.client
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        marker = b"day-2 upgrade drill\n"
        info = tarfile.TarInfo("etc/pc-upgrade-marker")
        info.size = len(marker)
        tar.addfile(info, io.BytesIO(marker))
    base = client.images.get("local/debian:bookworm")
    container = client.containers.create(base.id, command=["true"])
    try:
        container.put_archive("/", archive.getvalue())
        container.commit(*UPGRADED_BASE.split(":"))
    finally:
        container.remove()
    return UPGRADED_BASE


def test_an_image_upgrade_rolls_one_member_at_a_time(healthy):
    config = copy.deepcopy(healthy.config)
    config[f"{PROJECT}:image"]["baseImage"] = upgraded_base(healthy)
    figures = apply_change(healthy, "image upgrade", config)
    patroni = set(healthy.group_members())
    assert patroni <= set(figures["containers_replaced"])
    assert figures["leader_changes"] <= 1
    for member in patroni:
        result = healthy.container(member).exec_run(["cat", "/etc/pc-upgrade-marker"])
        assert result.exit_code == 0


def test_members_are_added_and_removed(healthy):
    grown = with_patroni(healthy.config, members=3)
    figures = apply_change(healthy, "members 2 -> 3", grown)
    assert figures["containers_replaced"] == [] and len(healthy.group_members()) == 3
    shrunk = with_patroni(healthy.config, members=2)
    leaving = sorted(healthy.group_members())[-1]
    led = healthy.leader() == leaving
    figures = apply_change(healthy, "members 3 -> 2", shrunk)
    assert leaving not in container_ids(healthy)
    assert figures["containers_replaced"] == []
    # A leading member hands off first (its readiness command's delete): one switchover.
    assert healthy.leader() != leaving and figures["leader_changes"] == (1 if led else 0)
