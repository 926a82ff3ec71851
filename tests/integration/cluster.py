"""A deployed stack on the real engine, and the probes the scenarios use.

`deploy(stack)` runs the Pulumi program for the stack under `DockerEngine`, so every resource
it registers is created for real and the stack outputs (groupLeaders included) are real.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, Optional

import docker
import psycopg

from patroni_citus.config import Settings, load_settings
from pcctl import drill, outputs, probe
from policies import conventions
from tests.integration.engine import DockerEngine, Record
from tests.programrun import PROJECT_DIR, ProgramRun, run_stack, stack_config

CLUSTER_LABEL = conventions.LABEL_CLUSTER


def wait_until(
    what: str, predicate: Callable[[], object], timeout: float, interval: float = 0.5
) -> object:
    """Polls until predicate returns a truthy value; raises naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    last_error: Optional[BaseException] = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - probes fail while the cluster settles
            last_error = exc
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout:.0f}s waiting for {what}"
        + (f" (last error: {last_error})" if last_error else "")
    )


def remove_leftovers(client: docker.DockerClient, scope: str) -> None:
    """Removes what an interrupted earlier run of the same stack left behind."""
    for container in client.containers.list(
        all=True, filters={"label": f"{CLUSTER_LABEL}={scope}"}
    ):
        container.remove(force=True)
    for network in client.networks.list(filters={"label": f"{CLUSTER_LABEL}={scope}"}):
        network.remove()
    for volume in client.volumes.list(filters={"label": f"{CLUSTER_LABEL}={scope}"}):
        volume.remove(force=True)


@dataclass
class Cluster:
    stack: str
    engine: DockerEngine
    run: ProgramRun
    client: docker.DockerClient
    deploy_seconds: float
    settings: Settings  # the stack's validated settings, as the program read them
    config: dict = field(default_factory=dict)  # the stack config the last run applied
    secrets: dict = field(default_factory=dict)  # secret config of the last run: kept by later runs
    # A rotated password that clients already know while the update applying it runs.
    next_password: Optional[str] = None
    # Group -> its leader key (the stack's dcs.leaderKeys) for every group any run of this
    # stack declared: a removed group's key is still looked for, to see that it is gone.
    leader_keys: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.leader_keys.update(self.run.outputs["dcs"]["leaderKeys"])

    @property
    def scope(self) -> str:
        return self.settings.cluster.scope

    @property
    def password(self) -> str:
        return self.run.outputs["coordinatorPassword"]

    @property
    def members(self) -> dict[str, str]:
        """Member name -> address, every group."""
        return {
            m["name"]: m["address"] for group in self.run.outputs["members"].values() for m in group
        }

    def group_members(self, group: str = "0") -> dict[str, str]:
        return {m["name"]: m["address"] for m in self.run.outputs["members"][group]}

    # --- Patroni and etcd -----------------------------------------------------------------

    def rest(self, member: str, path: str, timeout: float = 2.0) -> dict:
        url = f"http://{self.members[member]}:{conventions.REST_API_PORT}{path}"
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read() or b"{}")

    def cluster_view(self, group: str = "0") -> list[dict]:
        """Patroni's /cluster from the first member that answers."""
        for name in self.group_members(group):
            try:
                return self.rest(name, "/cluster")["members"]
            except OSError:
                continue
        raise AssertionError("no member answers /cluster")

    def leader(self, group: str = "0") -> Optional[str]:
        """The running leader according to Patroni."""
        leaders = [
            m["name"]
            for m in self.cluster_view(group)
            if m["role"] == "leader" and m["state"] == "running"
        ]
        return leaders[0] if len(leaders) == 1 else None

    def healthy(self, group: str = "0") -> bool:
        """One running leader, every other member streaming, a synchronous standby."""
        view = self.cluster_view(group)
        roles = sorted(m["role"] for m in view)
        expected = len(self.group_members(group))
        streaming = [m for m in view if m["role"] != "leader" and m["state"] == "streaming"]
        return (
            len(view) == expected
            and roles.count("leader") == 1
            and len(streaming) == expected - 1
            and "sync_standby" in roles
        )

    def etcd_leader_keys(self) -> dict[str, str]:
        """Leader name per group whose leader key is set, read from etcd itself (v3 gRPC or
        the v2 HTTP API) in one read of the stack's keys."""
        etcd_host = str(self.settings.etcd_members[0].address)
        prefix = self.settings.dcs_prefix
        if self.settings.etcd.api == "v2":
            url = (
                f"http://{etcd_host}:{conventions.ETCD_CLIENT_PORT}/v2/keys{prefix}?recursive=true"
            )
            with urllib.request.urlopen(url, timeout=2) as response:
                tree = json.loads(response.read())["node"]
            found = {node["key"]: node["value"] for node in _v2_leaves(tree)}
        else:
            import etcd3

            client = etcd3.client(host=etcd_host, port=conventions.ETCD_CLIENT_PORT, timeout=3)
            try:
                found = {
                    meta.key.decode(): value.decode()
                    for value, meta in client.get_prefix(prefix + "/")
                }
            finally:
                client.close()
        return {group: found[key] for group, key in self.leader_keys.items() if key in found}

    # --- SQL ------------------------------------------------------------------------------

    def connect(
        self,
        host: Optional[str] = None,
        target_session_attrs: str = "read-write",
        port: Optional[int] = None,
    ) -> psycopg.Connection:
        """A superuser session; `port` (default PostgreSQL's) reaches e.g. an HAProxy port."""
        passwords = [self.password, self.next_password] if self.next_password else [self.password]
        for password in passwords[:-1]:
            try:
                return self._connect(host, target_session_attrs, password, port)
            except psycopg.OperationalError as exc:
                if "password authentication failed" not in str(exc):
                    raise
        return self._connect(host, target_session_attrs, passwords[-1], port)

    def _connect(
        self,
        host: Optional[str],
        target_session_attrs: str,
        password: str,
        port: Optional[int] = None,
    ) -> psycopg.Connection:
        stack = outputs.parse(self.run.outputs, f"stack {self.stack}")
        return probe.connect(stack, host, target_session_attrs, port=port, password=password)

    def members_not_running(self, expected: Mapping[str, object]) -> dict[str, dict[str, str]]:
        """The members whose running value of a parameter in `expected` differs from it, with
        what they run. pg_settings.setting is in each parameter's base unit (ms, s), as the
        program renders them."""
        rendered = {name: str(value) for name, value in expected.items()}
        differing = {}
        for member, address in self.members.items():
            with self.connect(address, target_session_attrs="any") as conn:
                rows = conn.execute(
                    "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", (list(expected),)
                ).fetchall()
            if dict(rows) != rendered:
                differing[member] = dict(rows)
        return differing

    def vip_member(self) -> str:
        """The member answering on the VIP, by its hostname (read through PostgreSQL)."""
        with self.connect(self.run.outputs["vip"], target_session_attrs="any") as conn:
            return conn.execute("SELECT pg_read_file('/etc/hostname')").fetchone()[0].strip()

    def switchover(self, group: str, old: str, candidate: str) -> float:
        """A planned switchover through patronictl in the old leader; returns when asked."""
        command = ["patronictl", "-c", conventions.PATRONI_CONFIG_PATH, "switchover"]
        if self.settings.citus.enabled:
            command += ["--group", group]
        command += ["--leader", old, "--candidate", candidate, "--force"]
        asked_at = time.monotonic()
        result = self.container(old).exec_run(command)
        assert result.exit_code == 0, result.output.decode()
        return asked_at

    def sync_standby(self, group: str = "0") -> str:
        return next(m["name"] for m in self.cluster_view(group) if m["role"] == "sync_standby")

    def update(self, config: dict, secrets: Optional[dict[str, str]] = None) -> list[Record]:
        """`pulumi up` again with `config` (and `secrets`, as `pulumi config set --secret`;
        later runs keep them):
        unchanged resources stay, changed ones are updated or replaced as their providers do,
        new ones are created, and those no longer declared (and the old instances of
        create-before-delete replacements) are deleted at the end
        (DockerEngine.begin_update/finish_update). Returns what the end deleted or dropped."""
        if secrets is not None:
            self.secrets = secrets
        self.engine.begin_update()
        self.run = run_stack(self.stack, self.engine, config=config, secrets=self.secrets)
        self.leader_keys.update(self.run.outputs["dcs"]["leaderKeys"])
        self.settings = _settings(config)
        return self.engine.finish_update()

    def container(self, name: str):
        return self.client.containers.get(name)

    # --- Faults ---------------------------------------------------------------------------

    def crash(self, member: str) -> float:
        """Kills a member's container (SIGKILL, like a crash) and returns when."""
        self.container(member).kill()
        return time.monotonic()

    @property
    def network(self):
        return self.client.networks.get(self.run.named(f"{self.scope}-net").inputs["name"])

    def partition(self, member: str) -> float:
        """Cuts a member off the cluster network, alive, so that its peers' packets go
        unanswered (no RST, as with a failed switch port); returns when."""
        self.network.disconnect(member, force=True)
        return time.monotonic()

    def heal(self, member: str) -> None:
        """Connects a partitioned member again, at its own address."""
        self.network.connect(member, ipv4_address=self.members[member])

    def vip_holders(self) -> list[str]:
        """The members whose network namespace carries the VIP (their vip-manager sidecar
        shares it), asked of the kernel rather than through the VIP."""
        vip = self.run.outputs["vip"]
        holders = []
        for member in self.members:
            result = self.container(member).exec_run(["ip", "-4", "-o", "addr", "show"])
            if f" {vip}/" in result.output.decode():
                holders.append(member)
        return holders

    def new_leader(self, old: str, group: str = "0") -> str:
        """Waits for a running leader other than `old`."""
        return wait_until(
            "a new leader", lambda: (name := self.leader(group)) not in (None, old) and name, 90
        )

    def restart(self, member: str) -> None:
        """Starts a crashed member again: restart policies do not apply after `docker kill`."""
        container = self.container(member)
        container.reload()
        if container.status != "running":
            container.start()

    # --- The crash watcher ------------------------------------------------------------------

    @property
    def crash_watcher(self):
        return self.container(f"{self.scope}-crash-watcher")

    def set_crash_watcher(self, on: bool) -> None:
        """Starts or stops the crash watcher (stopped, it is the TTL path of today)."""
        watcher = self.crash_watcher
        if on:
            watcher.reload()
            if watcher.status != "running":
                watcher.start()
            wait_until("the crash watcher ready", lambda: self._watcher_ready(), 30)
        else:
            watcher.stop(timeout=2)

    @contextlib.contextmanager
    def crash_watcher_switched(self, on: bool) -> Iterator[None]:
        """The watcher on or off for a drill, and on again after it."""
        self.set_crash_watcher(on)
        try:
            yield
        finally:
            self.set_crash_watcher(True)

    def _watcher_ready(self) -> bool:
        return self.crash_watcher.exec_run(["pc-crash-watch", "healthcheck"]).exit_code == 0

    def watcher_log(self, since: float) -> list[str]:
        """The watcher's log lines since a wall-clock time (time.time())."""
        text = self.crash_watcher.logs(since=int(since) - 1).decode()
        return [line for line in text.splitlines() if line.strip()]

    def released(self, since: float) -> list[str]:
        return [line for line in self.watcher_log(since) if "released " in line]


def deploy(stack: str, client: docker.DockerClient, config: Optional[dict] = None) -> Cluster:
    """Deploys the stack's program; `config` replaces its stack file's config."""
    config = stack_config(stack) if config is None else config
    settings = _settings(config)
    remove_leftovers(client, settings.cluster.scope)
    engine = DockerEngine(str(PROJECT_DIR))
    started = time.monotonic()
    try:
        run = run_stack(stack, engine, config=config)
    except BaseException:
        with whole_cluster_destroy():
            engine.teardown()
        raise
    return Cluster(stack, engine, run, client, time.monotonic() - started, settings)


def _settings(config: dict) -> Settings:
    return load_settings({key.split(":", 1)[1]: value for key, value in config.items()}, {})


@contextlib.contextmanager
def whole_cluster_destroy() -> Iterator[None]:
    """Tearing everything down is `PATRONI_CITUS_DRAIN=skip pulumi destroy`: no worker group
    is drained when the whole cluster goes (scripts/citus_group.py)."""
    before = os.environ.get("PATRONI_CITUS_DRAIN")
    os.environ["PATRONI_CITUS_DRAIN"] = "skip"
    try:
        yield
    finally:
        if before is None:
            del os.environ["PATRONI_CITUS_DRAIN"]
        else:
            os.environ["PATRONI_CITUS_DRAIN"] = before


@contextlib.contextmanager
def deployed(
    stack: str,
    client: docker.DockerClient,
    config: Optional[dict] = None,
    ready: Optional[Callable[[Cluster], bool]] = None,
    label: Optional[str] = None,
    healthy: Optional[Callable[[Cluster], bool]] = None,
) -> Iterator[Cluster]:
    """Deploys the stack, waits until it is healthy (`healthy`, default Cluster.healthy, and
    `ready`), records the time it took under `label` (default: the stack), and tears
    everything down afterwards."""
    started = time.monotonic()
    cluster = deploy(stack, client, config)
    try:
        is_healthy = healthy or Cluster.healthy
        wait_until("a healthy cluster", lambda: is_healthy(cluster), 180)
        if ready is not None:
            wait_until("the cluster to be ready", lambda: ready(cluster), 60)
        record_figures(
            f"{label or stack}: up",
            time_to_healthy_s=round(time.monotonic() - started, 1),
            of_which_program_run_s=round(cluster.deploy_seconds, 1),
        )
        yield cluster
    finally:
        with whole_cluster_destroy():
            cluster.engine.teardown()


class Writer(drill.Writer):
    """The operator CLI's writer (pcctl's drills use it too), committing through `host` and
    `port` of a deployed test cluster (default: the coordinator output, PostgreSQL's port)."""

    def __init__(
        self,
        cluster: Cluster,
        host: Optional[str] = None,
        table: str = "drill",
        port: Optional[int] = None,
        batch: int = 1,
        distributed: bool = False,
    ):
        super().__init__(
            lambda: cluster.connect(host, port=port),
            table=table,
            batch=batch,
            distributed=distributed,
        )


class Unanswered(Exception):
    """A member asked from inside its container gave no answer (stopped, starting)."""


class PrimaryWatch:
    """Asks every member, each from its own thread over its own connection, whether it accepts
    writes, and keeps each member's writable intervals (first to last writable answer in a
    row). Two members' intervals overlapping means two writable primaries at once. Members in
    `inside` (e.g. one cut off the network) are asked from within their container, over
    PostgreSQL's local socket."""

    def __init__(
        self,
        cluster: Cluster,
        members: dict[str, str],
        interval: float = 0.1,
        inside: frozenset[str] = frozenset(),
    ):
        self.cluster = cluster
        self.members = members
        self.interval = interval
        self.inside = inside
        self.intervals: dict[str, list[list[float]]] = {m: [] for m in members}
        self.samples = 0
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=(m, ip), daemon=True)
            for m, ip in members.items()
        ]

    def __enter__(self) -> PrimaryWatch:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _loop(self, member: str, ip: str) -> None:
        conn = None
        open_interval: Optional[list[float]] = None
        while not self._stop.is_set():
            try:
                if member in self.inside:
                    writable = self._writable_inside(member)
                else:
                    if conn is None:
                        conn = self.cluster.connect(ip, target_session_attrs="any")
                    writable = not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
                at = time.monotonic()
                self.samples += 1
                if writable:
                    if open_interval is None:
                        open_interval = [at, at]
                        self.intervals[member].append(open_interval)
                    open_interval[1] = at
                else:
                    open_interval = None
            except (psycopg.Error, Unanswered):
                open_interval = None
                if conn is not None:
                    conn.close()
                conn = None
            time.sleep(self.interval)
        if conn is not None:
            conn.close()

    def _writable_inside(self, member: str) -> bool:
        try:
            result = self.cluster.container(member).exec_run(
                ["psql", "-h", conventions.PG_SOCKET_DIR, "-U",
                 self.cluster.settings.patroni.superuser, "-Atc", "SELECT pg_is_in_recovery()"],
                environment={"PGPASSWORD": self.cluster.password},
            )  # fmt: skip
        except docker.errors.DockerException as exc:  # e.g. the container is not running
            raise Unanswered(str(exc)) from exc
        answer = result.output.decode().strip()
        if result.exit_code != 0 or answer not in ("t", "f"):
            raise Unanswered(answer)
        return answer == "f"

    def last_writable(self, member: str) -> Optional[float]:
        return max((end for _, end in self.intervals[member]), default=None)

    def most_writable_at_once(self) -> int:
        """The most members whose writable intervals cover one moment."""
        edges = [
            (moment, step)
            for spans in self.intervals.values()
            for start, end in spans
            for moment, step in ((start, 1), (end, -1))
        ]
        most = current = 0
        # An interval that starts where another ends counts as overlapping it.
        for _, step in sorted(edges, key=lambda e: (e[0], -e[1])):
            current += step
            most = max(most, current)
        return most

    def overlaps(self) -> list[tuple[str, str]]:
        """Pairs of members that answered writable during overlapping intervals."""
        found = []
        names = sorted(self.intervals)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                for a0, a1 in self.intervals[a]:
                    for b0, b1 in self.intervals[b]:
                        if a0 <= b1 and b0 <= a1:
                            found.append((a, b))
        return found


def crash_drill(
    cluster: Cluster,
    group: str = "0",
    writer: Optional[Writer] = None,
    restart_at_once: bool = False,
    during: Optional[Callable[[], None]] = None,
    vip: bool = False,
) -> dict:
    """Kills the group's leader while `writer` (default: one through the coordinator output)
    commits and every member is asked whether it accepts writes; `during` runs right after
    the kill. Returns the figures once the group is healthy again with every member back."""
    old = cluster.leader(group)
    assert old is not None
    writer = (writer or Writer(cluster)).start()
    with PrimaryWatch(cluster, cluster.group_members(group)) as primaries:
        wait_until("rows before the crash", lambda: len(writer.acked) > 50, 30)
        killed_at = cluster.crash(old)
        if restart_at_once:
            cluster.restart(old)
        if during is not None:
            during()
        # After an immediate start the old leader may win the race again.
        first = wait_until(
            "a write acknowledged after the crash",
            lambda: writer.first_ack_after(killed_at, None if restart_at_once else old),
            90,
        )
        new = wait_until("a leader", lambda: cluster.leader(group), 60)
        vip_moved_s = None
        if vip:
            wait_until("the VIP on the new leader", lambda: cluster.vip_member() == new, 60)
            vip_moved_s = round(time.monotonic() - killed_at, 1)
        time.sleep(2)
        writer.stop()
        cluster.restart(old)
        wait_until(f"{old} back in the group", lambda: cluster.healthy(group), 120)
    lost = writer.lost()
    figures = {"failover_s": round(first - killed_at, 1)}
    if vip_moved_s is not None:
        figures["vip_moved_s"] = vip_moved_s
    return {
        **figures,
        "new_leader": new,
        "rows_acked": len(writer.acked),
        "rows_lost": len(lost),
        "writable_samples": primaries.samples,
        "two_writable": len(primaries.overlaps()),
    }


def partition_drill(cluster: Cluster, writer: Writer, vip: bool = False) -> dict:
    """Cuts the leader of group 0 off the cluster network, alive, while `writer` commits, and
    watches every member, the isolated one from inside its container. Heals the partition once
    a transaction begun after the cut was acknowledged by another member, and returns the
    figures when the old leader is a replica again (with `vip`, the only VIP holder being the
    leader)."""
    old = cluster.leader()
    assert old is not None
    writer.start()
    with PrimaryWatch(cluster, cluster.group_members(), inside=frozenset({old})) as primaries:
        wait_until("rows before the partition", lambda: len(writer.acked) > 50, 30)
        cut_at = cluster.partition(old)
        try:
            first = wait_until(
                "a write begun after the partition, on another member",
                lambda: writer.first_begun_after(cut_at, not_member=old),
                90,
            )
            new = cluster.new_leader(old)
            vip_moved_s = None
            if vip:
                wait_until("the VIP on the new leader", lambda: cluster.vip_member() == new, 60)
                vip_moved_s = round(time.monotonic() - cut_at, 1)
        finally:
            cluster.heal(old)
        healed_at = time.monotonic()
        time.sleep(2)
        writer.stop()
        wait_until(f"{old} back as a replica", cluster.healthy, 120)
        rejoined_s = time.monotonic() - healed_at
    figures: dict = {"failover_s": round(first - cut_at, 1)}
    if vip:
        wait_until("the leader the only VIP holder", lambda: cluster.vip_holders() == [new], 60)
        figures["vip_moved_s"] = vip_moved_s
        figures["vip_holders_after_heal"] = len(cluster.vip_holders())
    last_writable = primaries.last_writable(old)
    lost = writer.lost()
    return {
        **figures,
        "first_ack_s": round((writer.first_ack_after(cut_at, old) or first) - cut_at, 1),
        "isolated_writable_until_s": (
            round(last_writable - cut_at, 1) if last_writable is not None else None
        ),
        "new_leader": new,
        "rows_acked": len(writer.acked),
        "rows_lost": len(lost),
        "writable_samples": primaries.samples,
        "most_writable_at_once": primaries.most_writable_at_once(),
        "rejoined_s": round(rejoined_s, 1),
    }


def _v2_leaves(node: dict) -> Iterator[dict]:
    for child in node.get("nodes", []):
        if child.get("dir"):
            yield from _v2_leaves(child)
        else:
            yield child


FIGURES: dict[str, dict] = {}


def record_figures(scenario: str, **figures) -> None:
    FIGURES.setdefault(scenario, {}).update(figures)
    print(f"\n[{scenario}] " + ", ".join(f"{k}={v}" for k, v in figures.items()))
