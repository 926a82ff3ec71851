"""A Patroni group's plan: per member its container's arguments, files and day-2 commands;
per group its dynamic configuration and, for a Citus worker group, its membership."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Mapping, Optional

from .. import conventions
from ..config import Group, Member, ResourceLimits, Settings
from . import render
from .render import Credentials
from .volumes import VolumePlan, volume_plan

# Bounds the wait for Patroni to register a joining worker group, and each drain step.
MEMBERSHIP_TIMEOUT_S = 300
# Bounds each wait of a rolling change: a member's turn, its health, a restart, a switchover.
ROLLOUT_TIMEOUT_S = 600
# Patroni stops PostgreSQL with a fast shutdown on SIGTERM; give it time.
STOP_TIMEOUT_S = 60


@dataclass(frozen=True)
class MemberPlan:
    """One member's container as plain data. `spec` is what its revision hashes (with the
    image and the shared container options), so the revision and the container built from
    the same record cannot drift apart. Its files and its turn depend on values known only at
    deploy time (the passwords, every member's revision): functions of those values."""

    member: Member
    volume: VolumePlan
    labels: Mapping[str, object]
    spec: Mapping[str, Any]
    write_command: str
    ready_command: str
    hand_off_command: str
    files: Callable[[Credentials], str]
    turn_command: Callable[[Mapping[str, str]], str]

    @property
    def name(self) -> str:
        return self.member.name

    @property
    def mounts_backups(self) -> bool:
        return "backup_repository" in self.spec


@dataclass(frozen=True)
class GroupPlan:
    scope: str
    label: str  # in resource names: coord, work1, ...
    number: int
    members: tuple[MemberPlan, ...]
    limits: ResourceLimits
    dynamic_config_command: str
    # A worker group's join and drain commands; None for the coordinator or without Citus.
    membership: Optional[tuple[str, str]]


def plan_groups(settings: Settings) -> tuple[GroupPlan, ...]:
    coordinators = [m.name for m in settings.groups[0].members]
    return tuple(plan_group(settings, group, coordinators) for group in settings.groups)


def plan_group(settings: Settings, group: Group, coordinators: list[str]) -> GroupPlan:
    membership = None
    if group.role == "worker":
        membership = render.citus_membership_commands(
            settings, group, coordinators, MEMBERSHIP_TIMEOUT_S
        )
    return GroupPlan(
        scope=settings.cluster.scope,
        label=group.label,
        number=group.number,
        members=tuple(_member_plan(settings, group, m) for m in group.members),
        limits=settings.patroni.resources,
        dynamic_config_command=render.group_config_command(settings, group, ROLLOUT_TIMEOUT_S),
        membership=membership,
    )


def _member_plan(settings: Settings, group: Group, member: Member) -> MemberPlan:
    limits = settings.patroni.resources
    host = settings.hosts.label_of(member.name)
    labels: dict[str, object] = {
        "member": member.name,
        "group": group.number,
        "data_path": conventions.PATRONI_DATA_MOUNT,
    }
    if host is not None:
        # Only then: the labels are part of the revision, which one engine keeps as it was.
        labels["host"] = host
    volume = volume_plan(
        settings, f"{member.name}-data", conventions.ROLE_PATRONI, member.name, host
    )
    spec: dict[str, Any] = {
        "command": ["patroni"],
        "labels": labels,
        "network": settings.network.name,
        "address": str(member.address),
        "volume": volume.name,
        "healthcheck": list(conventions.PATRONI_HEALTHCHECK),
        "stop_timeout": STOP_TIMEOUT_S,
        # Memory is not here: pulumi-docker changes it in place (docker update).
        "limits": [limits.cpus, limits.shm_size_mb],
    }
    if settings.backups.enabled:
        # Only then: the revision of a member without backups stays what it was.
        spec["backup_repository"] = settings.backups.repository_volume
    ready, hand_off = render.ready_commands(settings, group, member, ROLLOUT_TIMEOUT_S)
    return MemberPlan(
        member=member,
        volume=volume,
        labels=labels,
        spec=spec,
        write_command=render.member_write_command(member.name, ROLLOUT_TIMEOUT_S),
        ready_command=ready,
        hand_off_command=hand_off,
        files=partial(render.member_files, settings, group, member),
        turn_command=partial(_turn_command, settings, member),
    )


def _turn_command(settings: Settings, member: Member, revisions: Mapping[str, str]) -> str:
    return render.turn_command(settings, member, dict(revisions), ROLLOUT_TIMEOUT_S)
