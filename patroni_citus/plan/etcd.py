"""The etcd cluster's plan: one record per member."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .. import conventions
from ..config import Settings
from . import render
from .volumes import VolumePlan, volume_plan

# Bounds the wait for a (re)created member to serve.
READY_TIMEOUT_S = 300


@dataclass(frozen=True)
class EtcdMemberPlan:
    name: str
    number: int  # 1-based, in resource names
    address: str
    host: Optional[str]  # the host label, with several engines
    volume: VolumePlan
    command: tuple[str, ...]
    ready_command: str


@dataclass(frozen=True)
class EtcdPlan:
    scope: str
    members: tuple[EtcdMemberPlan, ...]
    client_urls: tuple[str, ...]
    image: Optional[str]  # etcd.image pulled onto the engines; None: the project image


def plan_etcd(settings: Settings) -> EtcdPlan:
    members = []
    for member in settings.etcd_members:
        host = settings.hosts.label_of(member.name)
        members.append(
            EtcdMemberPlan(
                name=member.name,
                number=member.index + 1,
                address=str(member.address),
                host=host,
                volume=volume_plan(
                    settings, f"{member.name}-data", conventions.ROLE_ETCD, member.name, host
                ),
                command=tuple(render.etcd_command(settings, member)),
                ready_command=render.etcd_ready_command(settings, member, READY_TIMEOUT_S),
            )
        )
    return EtcdPlan(
        scope=settings.cluster.scope,
        members=tuple(members),
        client_urls=tuple(render.etcd_client_urls(settings)),
        image=settings.etcd.image,
    )
