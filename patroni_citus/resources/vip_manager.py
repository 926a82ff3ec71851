"""VipManager: gives the leader of one group a virtual IP, with one vip-manager sidecar in the
network namespace of each member."""

from __future__ import annotations

from typing import Optional, Sequence

import pulumi
import pulumi_docker as docker

from .. import conventions
from ..config import Settings
from ..plan import render
from .container_options import ContainerOptions
from .patroni_citus_group import DeployedMember


class VipManager(pulumi.ComponentResource):
    """Each sidecar holds the VIP while the DCS leader key names its member."""

    address: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        settings: Settings,
        members: Sequence[DeployedMember],
        image: pulumi.Input[str],
        *,
        container_options: ContainerOptions,
        depends_on: Sequence[pulumi.Resource] = (),
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("patroni-citus:index:VipManager", name, None, opts)
        scope = settings.cluster.scope
        self.containers: list[docker.Container] = []
        for member in members:
            sidecar_name = f"{member.name}-vip"
            # When its member dies the sidecar's namespace dies too; once the member is back
            # the entrypoint exits and the shared restart policy starts it in the new namespace.
            container = container_options.container(
                f"{name}-{member.spec.index + 1}",
                parent=self,
                scope=scope,
                role=conventions.ROLE_VIP_MANAGER,
                name=sidecar_name,
                image=image,
                healthcheck=conventions.vip_manager_healthcheck(settings.vip.interface),
                labels={
                    "member": member.name,
                    "group": member.spec.group,
                    "vip": settings.vip.address,
                },
                # Only the sidecar may change addresses; the member itself gets no capability.
                capabilities=docker.ContainerCapabilitiesArgs(adds=["NET_ADMIN", "NET_RAW"]),
                # It joins its member's namespace, so it starts after its member.
                depends_on=[member.container, *depends_on],
                command=render.vip_manager_command(settings, member.spec),
                # Joined by name, not id: a member re-created under the same name (a Pulumi
                # replacement) is found again when the sidecar restarts.
                network_mode=member.container.name.apply(lambda n: f"container:{n}"),
                # Docker retries a sidecar's restart only once, and that fails while its member
                # is down. The member stamps each start into its volume; the sidecar, which can
                # read it here, waits for a new stamp before it exits to be restarted.
                volumes=[
                    docker.ContainerVolumeArgs(
                        volume_name=member.volume.name,
                        container_path=conventions.PATRONI_DATA_MOUNT,
                        read_only=True,
                    )
                ],
                # Changing addresses needs root with NET_ADMIN/NET_RAW (the capabilities above).
                user="root",
                # vip-manager removes the VIP cleanly only on SIGINT.
                stop_signal="SIGINT",
                stop_timeout=10,
            )
            self.containers.append(container)
        self.address = pulumi.Output.from_input(str(settings.vip.address))
        self.register_outputs({"address": self.address})
