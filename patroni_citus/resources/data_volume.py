"""Named data volumes of the cluster's stateful containers."""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_docker as docker

from ..plan.volumes import VolumePlan
from .labels import docker_labels


def data_volume(
    resource_name: str,
    plan: VolumePlan,
    parent: pulumi.Resource,
    provider: Optional[pulumi.ProviderResource] = None,
) -> docker.Volume:
    """The volume `plan` describes, retained on delete as it says; with several engines on
    its member's engine (`provider`)."""
    return docker.Volume(
        resource_name,
        name=plan.name,
        labels=docker_labels(
            plan.scope, plan.role, retain=plan.retain, member=plan.member, host=plan.host
        ),
        opts=pulumi.ResourceOptions(parent=parent, retain_on_delete=plan.retain, provider=provider),
    )
