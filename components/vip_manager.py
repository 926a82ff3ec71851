"""VipManager: gives the leader of one group a virtual IP, with one vip-manager sidecar in the
network namespace of each member."""

from __future__ import annotations

from typing import Optional, Sequence

import pulumi
import pulumi_docker as docker

from . import render
from .container_options import ContainerOptions
from .labels import docker_labels
from .patroni_citus_group import PatroniCitusGroup
from .settings import Settings


class VipManager(pulumi.ComponentResource):
    """Each sidecar holds the VIP while the DCS leader key names its member."""

    address: pulumi.Output[str]

    def __init__(self, name: str, settings: Settings, group: PatroniCitusGroup,
                 image: pulumi.Input[str], *, container_options: ContainerOptions,
                 depends_on: Sequence[pulumi.Resource] = (),
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("patroni-citus:index:VipManager", name, None, opts)
        scope = settings.cluster.scope
        self.containers: list[docker.Container] = []
        for member, member_container, member_volume in zip(group.group.members, group.containers,
                                                           group.volumes):
            sidecar_name = f"{member.name}-vip"
            container = docker.Container(
                f"{name}-{member.index + 1}",
                name=sidecar_name,
                image=image,
                command=render.vip_manager_command(settings, member),
                # Joined by name, not id: a member re-created under the same name (a Pulumi
                # replacement) is found again when the sidecar restarts.
                network_mode=member_container.name.apply(lambda n: f"container:{n}"),
                # Docker retries a sidecar's restart only once, and that fails while its member
                # is down. The member stamps each start into its volume; the sidecar, which can
                # read it here, waits for a new stamp before it exits to be restarted.
                volumes=[docker.ContainerVolumeArgs(
                    volume_name=member_volume.name, container_path=render.PATRONI_DATA_MOUNT,
                    read_only=True)],
                # Only the sidecar may change addresses; the member itself gets no capability.
                user="root",
                capabilities=docker.ContainerCapabilitiesArgs(adds=["NET_ADMIN", "NET_RAW"]),
                labels=docker_labels(scope, "vip-manager", member=member.name,
                                     group=member.group, vip=settings.vip.address),
                healthcheck=container_options.healthcheck(
                    render.vip_manager_healthcheck(settings)),
                # When its member dies the sidecar's namespace dies too; once the member is
                # back the entrypoint exits and this policy restarts it into the new namespace.
                restart="unless-stopped",
                # vip-manager removes the VIP cleanly only on SIGINT.
                stop_signal="SIGINT",
                stop_timeout=10,
                **container_options.logging(sidecar_name),
                opts=pulumi.ResourceOptions(parent=self,
                                            depends_on=[member_container, *depends_on,
                                                        *container_options.depends_on],
                                            delete_before_replace=True))
            self.containers.append(container)
        self.address = pulumi.Output.from_input(str(settings.vip.address))
        self.register_outputs({"address": self.address})
