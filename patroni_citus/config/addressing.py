"""The address plan: every member's name and fixed address, from the scope, the member range
and the group sizes. Fixed slots keep every member's address stable when groups or members
are added: etcd takes slots 0..15, group g takes slots 16*(g+1) .. 16*(g+1)+15."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .model import CitusSettings

SLOTS_PER_BLOCK = 16
MAX_ETCD_MEMBERS = 15
MAX_GROUP_MEMBERS = SLOTS_PER_BLOCK
MAX_WORKER_GROUPS = 12

GroupRole = Literal["coordinator", "worker", "cluster"]


@dataclass(frozen=True)
class Member:
    name: str  # Patroni member name = container name = hostname
    group: int  # -1 for etcd members
    index: int
    address: ipaddress.IPv4Address


@dataclass(frozen=True)
class Group:
    number: int
    role: GroupRole  # "cluster" when Citus is off
    label: str  # short name used in member and resource names: coord, work1, pg
    members: tuple[Member, ...]


@dataclass(frozen=True)
class GroupSize:
    number: int
    role: GroupRole
    label: str
    members: int


def group_sizes(citus: CitusSettings, plain_members: int) -> tuple[GroupSize, ...]:
    if not citus.enabled:
        return (GroupSize(0, "cluster", "pg", plain_members),)
    coordinator = GroupSize(0, "coordinator", "coord", citus.coordinator_members)
    workers = tuple(
        GroupSize(g, "worker", f"work{g}", citus.members_per_group)
        for g in range(1, citus.worker_groups + 1)
    )
    return (coordinator, *workers)


def slot(member_range: ipaddress.IPv4Network, index: int) -> ipaddress.IPv4Address:
    return member_range.network_address + 1 + index


def slots_needed(sizes: tuple[GroupSize, ...]) -> int:
    return SLOTS_PER_BLOCK * len(sizes) + max(size.members for size in sizes)


def etcd_members(scope: str, member_range: ipaddress.IPv4Network, count: int) -> tuple[Member, ...]:
    return tuple(
        Member(f"{scope}-etcd-{i + 1}", -1, i, slot(member_range, i)) for i in range(count)
    )


def groups(
    scope: str, member_range: ipaddress.IPv4Network, sizes: tuple[GroupSize, ...]
) -> tuple[Group, ...]:
    def group(size: GroupSize) -> Group:
        base = SLOTS_PER_BLOCK * (size.number + 1)
        return Group(
            size.number,
            size.role,
            size.label,
            tuple(
                Member(
                    f"{scope}-{size.label}-{i + 1}", size.number, i, slot(member_range, base + i)
                )
                for i in range(size.members)
            ),
        )

    return tuple(group(size) for size in sizes)
