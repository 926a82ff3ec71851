"""What the cluster says about itself right now: Patroni's GET /cluster per group, Citus'
pg_dist_node on the coordinator and the member answering on the VIP."""

from __future__ import annotations

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Optional

import psycopg

from pcctl.outputs import StackOutputs
from policies import conventions

REST_TIMEOUT_SECONDS = 2.0


class ProbeError(RuntimeError):
    """A part of the cluster that does not answer; the message says which and why."""


LEADER_ROLES = ("leader", "standby_leader")


@dataclass(frozen=True)
class PatroniView:
    """A group as one of its members' GET /cluster reports it (Patroni reads it from etcd)."""

    group: str
    reported_by: str
    members: tuple[dict[str, Any], ...]

    def running_leaders(self) -> list[str]:
        return [
            m["name"]
            for m in self.members
            if m.get("role") in LEADER_ROLES and m.get("state") == "running"
        ]


@dataclass(frozen=True)
class DistNode:
    group: int
    host: str
    port: int
    role: str  # primary, secondary
    active: bool


def connect(
    outputs: StackOutputs,
    host: Optional[str] = None,
    target_session_attrs: str = "read-write",
    port: Optional[int] = None,
    password: Optional[str] = None,
) -> psycopg.Connection[Any]:
    """A session as the stack's superuser; by default the coordinator's primary. `port`
    reaches e.g. an HAProxy port; `password` one the outputs do not hold yet (a rotation).
    The stack's own client parameters bound every wait on a dead server."""
    c = outputs.coordinator
    return psycopg.connect(
        host=host or c.host,
        port=port or c.port,
        dbname=c.database,
        user=c.user,
        password=password or c.password,
        autocommit=True,
        application_name="pcctl",
        **{**c.parameters, "target_session_attrs": target_session_attrs},
    )


def rest(address: str, path: str) -> Any:
    url = f"http://{address}:{conventions.REST_API_PORT}{path}"
    with urllib.request.urlopen(url, timeout=REST_TIMEOUT_SECONDS) as response:
        return json.loads(response.read() or b"{}")


def patroni_view(outputs: StackOutputs, group: str) -> PatroniView:
    """GET /cluster from the first member of the group that answers (GET needs no credentials)."""
    errors = []
    for member in outputs.group_members(group):
        try:
            answer = rest(member.address, "/cluster")
        except (OSError, ValueError) as exc:
            errors.append(f"{member.name}: {exc}")
            continue
        return PatroniView(group, member.name, tuple(answer.get("members", [])))
    raise ProbeError(f"no member of group {group} answers GET /cluster: " + "; ".join(errors))


def patroni_views(outputs: StackOutputs) -> dict[str, PatroniView | ProbeError]:
    """Every group's view, asked in parallel: an unreachable member costs its timeout once."""

    def ask(group: str) -> PatroniView | ProbeError:
        try:
            return patroni_view(outputs, group)
        except ProbeError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=max(1, len(outputs.groups))) as pool:
        return dict(zip(outputs.groups, pool.map(ask, outputs.groups)))


def dist_nodes(outputs: StackOutputs) -> tuple[DistNode, ...]:
    """pg_dist_node as the coordinator's primary has it."""
    try:
        with connect(outputs) as conn:
            rows = conn.execute(
                "SELECT groupid, nodename, nodeport, noderole::text, isactive FROM pg_dist_node "
                "ORDER BY groupid, noderole, nodename"
            ).fetchall()
    except psycopg.Error as exc:
        raise ProbeError(f"pg_dist_node: the coordinator does not answer: {exc}") from None
    return tuple(DistNode(*row) for row in rows)


def vip_holder(outputs: StackOutputs) -> str:
    """The member answering on the VIP, by its hostname (the member's name)."""
    assert outputs.vip is not None
    try:
        with connect(outputs, outputs.vip, target_session_attrs="any") as conn:
            row = conn.execute("SELECT pg_read_file('/etc/hostname')").fetchone()
    except psycopg.Error as exc:
        raise ProbeError(f"nothing answers on the VIP {outputs.vip}: {exc}") from None
    assert row is not None
    return str(row[0]).strip()
