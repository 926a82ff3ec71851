"""Named data volumes of the cluster's stateful containers, as plain records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .. import conventions
from ..config import Settings


@dataclass(frozen=True)
class VolumePlan:
    """A volume kept in Docker when the stack is destroyed unless volumes.retainOnDelete is
    false; its `retain` label mirrors that option, which policy packs cannot see. With several
    engines it lives on its member's host."""

    name: str
    scope: str
    role: conventions.Role
    retain: bool
    member: Optional[str] = None
    host: Optional[str] = None


def volume_plan(
    settings: Settings,
    name: str,
    role: conventions.Role,
    member: Optional[str] = None,
    host: Optional[str] = None,
) -> VolumePlan:
    return VolumePlan(name, settings.cluster.scope, role, settings.retain_volumes, member, host)
