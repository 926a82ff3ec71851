"""The cluster's status assembled from what each source reported, and the checks that compare
them (Patroni, the leader keys in etcd, pg_dist_node, the VIP). Pure: the probes are elsewhere."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, Optional, Union

from tabulate import tabulate

from pcctl.outputs import StackOutputs
from pcctl.probe import LEADER_ROLES, DistNode, PatroniView

HEALTHY_STATES = ("running", "streaming")


@dataclass(frozen=True)
class MemberStatus:
    name: str
    address: str
    role: Optional[str]  # None: the member is not registered in the DCS (down, or never up)
    state: Optional[str]
    timeline: Optional[int]
    lag_bytes: Optional[int]  # behind the leader; None for the leader or when unknown
    pending_restart: bool


@dataclass(frozen=True)
class GroupStatus:
    group: str
    members: tuple[MemberStatus, ...]
    leader: Optional[str]  # Patroni's running leader
    sync_standbys: tuple[str, ...]
    leader_key: str
    dcs_leader: Optional[str]  # the leader key's value in etcd
    dist_primary: Optional[str]  # pg_dist_node's primary for the group: a member, or its address
    reported_by: Optional[str]  # the member whose GET /cluster this is
    error: Optional[str]  # why there is no view of the group


@dataclass(frozen=True)
class ClusterStatus:
    dcs_api: str
    dcs_error: Optional[str]
    citus: bool
    dist_error: Optional[str]
    vip: Optional[str]
    vip_holder: Optional[str]
    vip_error: Optional[str]
    groups: tuple[GroupStatus, ...]
    problems: tuple[str, ...]

    @property
    def healthy(self) -> bool:
        return not self.problems


def assemble(
    outputs: StackOutputs,
    views: Mapping[str, Union[PatroniView, Exception]],
    dcs_leaders: Union[Mapping[str, Optional[str]], Exception],
    dist: Union[tuple[DistNode, ...], Exception, None],
    vip_holder: Union[str, Exception, None],
) -> ClusterStatus:
    """One status from the probes' answers (an exception stands for a source that failed)."""
    problems: list[str] = []
    groups = []
    for group in outputs.groups:
        view = views.get(group)
        members = _members(outputs, group, view if isinstance(view, PatroniView) else None)
        running_leaders = [
            m.name for m in members if m.role in LEADER_ROLES and m.state == "running"
        ]
        leader = running_leaders[0] if len(running_leaders) == 1 else None
        dcs_leader = None if isinstance(dcs_leaders, Exception) else dcs_leaders.get(group)
        dist_primary = _dist_primary(outputs, group, dist)
        status = GroupStatus(
            group=group,
            members=members,
            leader=leader,
            sync_standbys=tuple(m.name for m in members if m.role == "sync_standby"),
            leader_key=outputs.leader_keys[group],
            dcs_leader=dcs_leader,
            dist_primary=dist_primary,
            reported_by=view.reported_by if isinstance(view, PatroniView) else None,
            error=str(view) if isinstance(view, Exception) else None,
        )
        groups.append(status)
        problems += _group_problems(status, dcs_ok=not isinstance(dcs_leaders, Exception),
                                    dist_ok=isinstance(dist, tuple))  # fmt: skip
    if isinstance(dcs_leaders, Exception):
        problems.append(f"etcd: {dcs_leaders}")
    if isinstance(dist, Exception):
        problems.append(str(dist))
    holder = vip_holder if isinstance(vip_holder, str) else None
    if isinstance(vip_holder, Exception):
        problems.append(str(vip_holder))
    coordinator_leader = groups[0].leader if groups else None
    if holder is not None and holder != coordinator_leader:
        problems.append(
            f"the VIP {outputs.vip} answers on {holder}, the coordinator's leader is "
            f"{coordinator_leader or 'nobody'}"
        )
    return ClusterStatus(
        dcs_api=outputs.dcs_api,
        dcs_error=str(dcs_leaders) if isinstance(dcs_leaders, Exception) else None,
        citus=outputs.citus,
        dist_error=str(dist) if isinstance(dist, Exception) else None,
        vip=outputs.vip,
        vip_holder=holder,
        vip_error=str(vip_holder) if isinstance(vip_holder, Exception) else None,
        groups=tuple(groups),
        problems=tuple(problems),
    )


def _members(
    outputs: StackOutputs, group: str, view: Optional[PatroniView]
) -> tuple[MemberStatus, ...]:
    """The declared members, each with what Patroni reports for it (nothing when absent)."""
    reported = {m.get("name"): m for m in (view.members if view else ())}
    found = []
    for member in outputs.group_members(group):
        entry = reported.get(member.name, {})
        lag = entry.get("lag")
        timeline = entry.get("timeline")
        found.append(
            MemberStatus(
                name=member.name,
                address=member.address,
                role=entry.get("role"),
                state=entry.get("state"),
                timeline=timeline if isinstance(timeline, int) else None,
                lag_bytes=lag if isinstance(lag, int) else None,
                pending_restart=bool(entry.get("pending_restart")),
            )
        )
    return tuple(found)


def _dist_primary(
    outputs: StackOutputs, group: str, dist: Union[tuple[DistNode, ...], Exception, None]
) -> Optional[str]:
    if not isinstance(dist, tuple):
        return None
    primaries = [n for n in dist if n.group == int(group) and n.role == "primary" and n.active]
    if len(primaries) != 1:
        return None
    member = outputs.member_at(primaries[0].host)
    return member.name if member else primaries[0].host


def _group_problems(status: GroupStatus, dcs_ok: bool, dist_ok: bool) -> list[str]:
    where = f"group {status.group}"
    if status.error is not None:
        return [f"{where}: {status.error}"]
    problems = []
    if status.leader is None:
        problems.append(f"{where}: no running leader")
    for member in status.members:
        if member.role is None:
            problems.append(f"{where}: {member.name} is not registered in the DCS")
        elif member.state not in HEALTHY_STATES:
            problems.append(f"{where}: {member.name} is {member.state}")
    if dcs_ok and status.dcs_leader != status.leader:
        problems.append(
            f"{where}: the leader key {status.leader_key} names "
            f"{status.dcs_leader or 'nobody'}, Patroni's running leader is "
            f"{status.leader or 'nobody'}"
        )
    if dist_ok and status.dist_primary != status.leader:
        problems.append(
            f"{where}: pg_dist_node's primary is {status.dist_primary or 'none'}, the leader is "
            f"{status.leader or 'nobody'}"
        )
    return problems


def to_json(status: ClusterStatus) -> dict[str, Any]:
    return {"healthy": status.healthy, **asdict(status)}


def _lag(lag_bytes: Optional[int]) -> str:
    if lag_bytes is None:
        return ""
    size = float(lag_bytes)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def render_table(status: ClusterStatus) -> str:
    """The status for a terminal: every member, then every group's leader by each source."""
    member_rows = [
        [
            group.group,
            m.name,
            m.address,
            (m.role or "-").replace("_", " "),
            m.state or ("unknown" if group.error else "not in the DCS"),
            "" if m.timeline is None else m.timeline,
            _lag(m.lag_bytes),
            "yes" if m.pending_restart else "",
        ]
        for group in status.groups
        for m in group.members
    ]
    headers = ["group", "member", "address", "role", "state", "TL", "lag", "pending restart"]
    parts = [tabulate(member_rows, headers=headers, tablefmt="simple", disable_numparse=True)]

    leader_headers = [
        "group",
        "leader (Patroni)",
        "sync standby",
        f"leader key (etcd {status.dcs_api})",
    ]
    if status.citus:
        leader_headers.append("pg_dist_node primary")
    leader_rows = []
    for group in status.groups:
        row = [
            group.group,
            group.leader or "-",
            ", ".join(group.sync_standbys) or "-",
            "?" if status.dcs_error else group.dcs_leader or "-",
        ]
        if status.citus:
            row.append("?" if status.dist_error else group.dist_primary or "-")
        leader_rows.append(row)
    parts.append(
        tabulate(leader_rows, headers=leader_headers, tablefmt="simple", disable_numparse=True)
    )

    if status.vip is not None:
        holder = status.vip_holder or "nobody answers"
        parts.append(f"VIP {status.vip}: {holder}")
    if status.problems:
        parts.append("problems:\n" + "\n".join(f"  - {p}" for p in status.problems))
    else:
        parts.append("healthy: every source agrees")
    return "\n\n".join(parts)
