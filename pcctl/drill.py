"""Failover drills on a deployed stack: a writer commits numbered rows through the coordinator
while a group's leader is killed (`docker kill`, like a crash) or handed over (`patronictl
switchover`); the figures are the seconds until a write is acknowledged again and the
acknowledged rows the cluster lost."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Optional

import docker
import psycopg

from pcctl import probe
from pcctl.outputs import StackOutputs
from policies import conventions

DrillKind = Literal["crash", "switchover"]
DRILL_TABLE = "pcctl_drill"
# Under Citus every transaction inserts this many rows into a distributed table: with the
# default 32 shards it touches every worker group, so a worker group's failover stops it.
CITUS_BATCH = 16


class DrillError(RuntimeError):
    """The drill cannot start or the cluster did not recover in time; the message says why."""


Progress = Callable[[str], None]
Ack = tuple[int, float, str]  # row id, time.monotonic() of the acknowledgement, member


@dataclass
class Writer:
    """Commits numbered rows continuously over sessions from `connect`, recording which were
    acknowledged and by which member. With `batch` > 1 every transaction inserts that many
    rows; into a `distributed` (Citus) table they span shards on every worker group."""

    connect: Callable[[], psycopg.Connection[Any]]
    table: str = DRILL_TABLE
    batch: int = 1
    distributed: bool = False
    acked: list[Ack] = field(default_factory=list)
    # (begun, acknowledged, member) per acknowledged transaction, time.monotonic()
    commits: list[tuple[float, float, str]] = field(default_factory=list)
    errors: int = 0
    recovered_transactions: int = 0  # prepared on a worker, committed by the count's recovery
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: Optional[threading.Thread] = None

    def __post_init__(self) -> None:
        with self.connect() as conn:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} (id bigint PRIMARY KEY, "
                "at timestamptz NOT NULL DEFAULT now())"
            )
            if (
                self.distributed
                and not conn.execute(
                    "SELECT 1 FROM pg_dist_partition WHERE logicalrelid = %s::regclass",
                    (self.table,),
                ).fetchone()
            ):
                conn.execute("SELECT create_distributed_table(%s, 'id')", (self.table,))
            row = conn.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {self.table}").fetchone()
            assert row is not None
            self._next: int = row[0]

    def start(self) -> Writer:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        conn: Optional[psycopg.Connection[Any]] = None
        insert = f"INSERT INTO {self.table} (id) VALUES " + ",".join(["(%s)"] * self.batch)
        while not self._stop.is_set():
            ids = list(range(self._next, self._next + self.batch))
            begun_at = time.monotonic()
            try:
                if conn is None:
                    conn = self.connect()
                with conn.transaction():
                    conn.execute(insert, ids)
                    # The hostname names the member even when the session goes through the VIP.
                    row = conn.execute("SELECT pg_read_file('/etc/hostname')").fetchone()
                acked_at = time.monotonic()
                member = str(row[0]).strip() if row else "?"
                self.acked.extend((i, acked_at, member) for i in ids)
                self.commits.append((begun_at, acked_at, member))
                time.sleep(0.02)
            except psycopg.Error:
                self.errors += 1
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.2)
            # A failed batch may or may not have been committed: it was never acknowledged,
            # so it is neither counted nor reused.
            self._next += self.batch
        if conn is not None:
            conn.close()

    def first_ack_after(self, moment: float, not_member: Optional[str] = None) -> Optional[float]:
        for _, at, member in self.acked:
            if at > moment and member != not_member:
                return at
        return None

    def first_begun_after(self, moment: float, not_member: Optional[str] = None) -> Optional[float]:
        """When the first transaction begun after `moment` was acknowledged: unlike
        first_ack_after, a commit that was in flight at that moment does not count."""
        return next(
            (at for begun, at, member in self.commits if begun > moment and member != not_member),
            None,
        )

    def longest_gap(self, since: Optional[float] = None) -> float:
        """The longest time between two consecutive acknowledged transactions; with `since`,
        only from the last one acknowledged before that moment on."""
        times = sorted({at for _, at, _ in self.acked})
        if since is not None:
            before = [t for t in times if t <= since]
            times = before[-1:] + [t for t in times if t > since]
        return max((b - a for a, b in zip(times, times[1:])), default=0.0)

    def lost(self, timeout: float = 60.0) -> list[int]:
        """Acknowledged ids missing on the current primary (asked until one answers).

        A distributed transaction is acknowledged once the coordinator has committed it; a
        worker that failed over before its COMMIT PREPARED keeps the rows prepared (they are
        on its synchronous standby) until Citus' recovery commits them, which its maintenance
        daemon does every citus.recover_2pc_interval. The count runs that recovery first, so
        it sees what Citus guarantees rather than racing the daemon (a failed COMMIT PREPARED
        is only a warning to the coordinator: FinishRemoteTransactionCommit in Citus'
        remote_transaction.c)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.connect() as conn:
                    if self.distributed:
                        row = conn.execute("SELECT recover_prepared_transactions()").fetchone()
                        self.recovered_transactions += int(row[0]) if row else 0
                    present = {r[0] for r in conn.execute(f"SELECT id FROM {self.table}")}
                return [i for i, _, _ in self.acked if i not in present]
            except psycopg.Error as exc:
                if time.monotonic() > deadline:
                    raise DrillError(f"no primary to count the rows on: {exc}") from None
                time.sleep(0.5)


@dataclass(frozen=True)
class DrillReport:
    kind: DrillKind
    group: str
    old_leader: str
    new_leader: str
    # How long writes stopped: the longest time between two acknowledged transactions from
    # the last one before the fault on. After a crash that is the time to the first write
    # after it; during a switchover the old leader still commits until it demotes.
    failover_s: float
    recovered_s: float  # the fault -> the group healthy again, every member back
    rows_acked: int
    rows_lost: int
    write_errors: int
    recovered_2pc: int  # Citus: worker transactions left prepared, committed before the count


def healthy_leader(outputs: StackOutputs, group: str) -> tuple[str, str]:
    """The group's leader and the member a switchover hands over to (its synchronous standby
    when there is one); refuses a group that is not healthy."""
    view = probe.patroni_view(outputs, group)
    declared = {m.name for m in outputs.group_members(group)}
    reported = {m["name"]: m for m in view.members}
    leaders = view.running_leaders()
    replicas = [n for n, m in reported.items() if n not in leaders and m["state"] == "streaming"]
    if len(leaders) != 1 or set(leaders + replicas) != declared or not replicas:
        described = ", ".join(
            f"{n}: {m.get('role')}/{m.get('state')}" for n, m in sorted(reported.items())
        )
        raise DrillError(
            f"group {group} is not healthy ({described or 'no member registered'}; declared: "
            f"{', '.join(sorted(declared))}): a drill starts from a healthy group"
        )
    sync = [n for n in replicas if reported[n].get("role") == "sync_standby"]
    return leaders[0], sorted(sync or replicas)[0]


def group_healthy(outputs: StackOutputs, group: str) -> bool:
    try:
        healthy_leader(outputs, group)
    except (DrillError, probe.ProbeError):
        return False
    return True


def wait(what: str, check: Callable[[], Any], timeout: float, progress: Progress,
         since: float) -> Any:  # fmt: skip
    """Asks `check` until it returns something truthy, telling `progress` every second."""
    deadline = time.monotonic() + timeout
    said = 0.0
    while True:
        value = check()
        if value:
            return value
        now = time.monotonic()
        if now > deadline:
            raise DrillError(f"timed out after {timeout:.0f} s waiting for {what}")
        if now - said >= 1.0:
            progress(f"{now - since:6.1f} s  waiting for {what}")
            said = now
        time.sleep(0.05)


def run(
    outputs: StackOutputs,
    kind: DrillKind,
    group: str,
    progress: Progress,
    engine: docker.DockerClient,
    keep_table: bool = False,
) -> DrillReport:
    if group not in outputs.groups:
        raise DrillError(f"no group {group}: the stack has groups {', '.join(outputs.groups)}")
    progress(f"asking Patroni whether group {group} is healthy")
    old, candidate = healthy_leader(outputs, group)
    progress(f"creating {DRILL_TABLE} if needed and starting the writer")
    writer = Writer(
        lambda: probe.connect(outputs),
        batch=CITUS_BATCH if outputs.citus else 1,
        distributed=outputs.citus,
    ).start()
    killed = False
    try:
        started = time.monotonic()
        wait("rows acknowledged before the fault", lambda: len(writer.acked) >= 20, 30,
             progress, started)  # fmt: skip
        fault_at = time.monotonic()
        if kind == "crash":
            progress(f"killing {old}, the leader of group {group}")
            engine.containers.get(old).kill()
            killed = True
        else:
            progress(f"switchover of group {group}: {old} -> {candidate}")
            _switchover(engine, outputs, group, old, candidate)
        # The coordinator's new leader names itself in the rows; a worker's is behind it.
        not_member = old if group == "0" else None
        wait(
            "a write acknowledged after the fault",
            lambda: writer.first_ack_after(fault_at, not_member),
            120,
            lambda line: progress(f"{line} ({writer.errors} failed attempts)"),
            fault_at,
        )
        progress(f"{time.monotonic() - fault_at:6.1f} s  writes acknowledged again")
        new = wait("a new leader", lambda: _new_leader(outputs, group, old), 60, progress,
                   fault_at)  # fmt: skip
        if killed:
            _start_again(engine, old)
        wait(f"group {group} healthy with {old} back", lambda: group_healthy(outputs, group),
             180, progress, fault_at)  # fmt: skip
        recovered = time.monotonic()
        time.sleep(2)
    finally:
        writer.stop()
        if killed:
            _start_again(engine, old)
    lost = writer.lost()
    if not keep_table:
        with probe.connect(outputs) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {DRILL_TABLE}")
    return DrillReport(
        kind=kind,
        group=group,
        old_leader=old,
        new_leader=new,
        failover_s=round(writer.longest_gap(since=fault_at), 1),
        recovered_s=round(recovered - fault_at, 1),
        rows_acked=len(writer.acked),
        rows_lost=len(lost),
        write_errors=writer.errors,
        recovered_2pc=writer.recovered_transactions,
    )


def _start_again(engine: docker.DockerClient, name: str) -> None:
    """A restart policy does not bring back a container killed on purpose: the drill does."""
    container = engine.containers.get(name)
    if container.status != "running":
        container.start()


def _new_leader(outputs: StackOutputs, group: str, old: str) -> Optional[str]:
    try:
        leaders = probe.patroni_view(outputs, group).running_leaders()
    except probe.ProbeError:
        return None
    return leaders[0] if leaders and leaders[0] != old else None


def _switchover(
    engine: docker.DockerClient, outputs: StackOutputs, group: str, old: str, candidate: str
) -> None:
    """patronictl inside the leader: it has the REST API's credentials, the operator need not."""
    command = ["patronictl", "-c", conventions.PATRONI_CONFIG_PATH, "switchover"]
    if outputs.citus:
        command += ["--group", group]
    command += ["--leader", old, "--candidate", candidate, "--force"]
    exit_code, output = engine.containers.get(old).exec_run(command)
    if exit_code != 0:
        said = output.decode().strip() if isinstance(output, bytes) else ""
        raise DrillError(f"patronictl switchover: {said}")
