"""The virtual IP's plan: one vip-manager sidecar per member of the group it fronts."""

from __future__ import annotations

from dataclasses import dataclass

from .. import conventions
from ..config import Settings
from . import render


@dataclass(frozen=True)
class SidecarPlan:
    member: str
    number: int  # 1-based, in resource names
    group: int
    name: str
    command: tuple[str, ...]


@dataclass(frozen=True)
class VipPlan:
    scope: str
    group: int  # the group whose leader holds the address
    address: str
    healthcheck: tuple[str, ...]
    sidecars: tuple[SidecarPlan, ...]


def plan_vip(settings: Settings) -> VipPlan:
    vip = settings.vip
    return VipPlan(
        scope=settings.cluster.scope,
        group=vip.group,
        address=str(vip.address),
        healthcheck=tuple(conventions.vip_manager_healthcheck(vip.interface)),
        sidecars=tuple(
            SidecarPlan(
                member=m.name,
                number=m.index + 1,
                group=m.group,
                name=f"{m.name}-vip",
                command=tuple(render.vip_manager_command(settings, m)),
            )
            for m in settings.groups[vip.group].members
        ),
    )
