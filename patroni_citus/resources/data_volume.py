"""Named data volumes of the cluster's stateful containers."""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_docker as docker

from .. import conventions
from ..config import Settings
from .labels import docker_labels


def data_volume(
    resource_name: str,
    docker_name: str,
    settings: Settings,
    role: conventions.Role,
    parent: pulumi.Resource,
    member: Optional[str] = None,
    host: Optional[str] = None,
    provider: Optional[pulumi.ProviderResource] = None,
) -> docker.Volume:
    """A volume kept in Docker when the stack is destroyed unless volumes.retainOnDelete is
    false. Its `retain` label mirrors that option, which policy packs cannot see. With several
    engines it lives on its member's (`host`, through `provider`)."""
    return docker.Volume(
        resource_name,
        name=docker_name,
        labels=docker_labels(
            settings.cluster.scope, role, retain=settings.retain_volumes, member=member, host=host
        ),
        opts=pulumi.ResourceOptions(
            parent=parent, retain_on_delete=settings.retain_volumes, provider=provider
        ),
    )
