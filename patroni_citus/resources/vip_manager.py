"""VipManager: gives the leader of one group a virtual IP, with one vip-manager sidecar in the
network namespace of each member."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_docker as docker

from .. import conventions
from ..plan.vip import SidecarPlan, VipPlan
from .container_options import ContainerOptions
from .patroni_citus_group import DeployedMember


@dataclass(frozen=True)
class VipManagerArgs:
    plan: VipPlan
    members: Sequence[DeployedMember]  # of the group the VIP fronts
    image: pulumi.Input[str]
    container_options: ContainerOptions
    depends_on: Sequence[pulumi.Resource] = ()


class VipManager(pulumi.ComponentResource):
    """Each sidecar holds the VIP while the DCS leader key names its member."""

    address: pulumi.Output[str]

    def __init__(
        self, name: str, args: VipManagerArgs, opts: Optional[pulumi.ResourceOptions] = None
    ):
        super().__init__("patroni-citus:index:VipManager", name, None, opts)
        members = {m.name: m for m in args.members}
        self.containers = [
            self._sidecar(f"{name}-{s.number}", s, members[s.member], args)
            for s in args.plan.sidecars
        ]
        self.address = pulumi.Output.from_input(args.plan.address)
        self.register_outputs({"address": self.address})

    def _sidecar(
        self, child: str, sidecar: SidecarPlan, member: DeployedMember, args: VipManagerArgs
    ) -> docker.Container:
        # When its member dies the sidecar's namespace dies too; once the member is back the
        # entrypoint exits and the shared restart policy starts it in the new namespace.
        return args.container_options.container(
            child,
            parent=self,
            scope=args.plan.scope,
            role=conventions.ROLE_VIP_MANAGER,
            name=sidecar.name,
            image=args.image,
            healthcheck=args.plan.healthcheck,
            labels={"member": sidecar.member, "group": sidecar.group, "vip": args.plan.address},
            # Only the sidecar may change addresses; the member itself gets no capability.
            capabilities=docker.ContainerCapabilitiesArgs(adds=["NET_ADMIN", "NET_RAW"]),
            # It joins its member's namespace, so it starts after its member.
            depends_on=[member.container, *args.depends_on],
            command=list(sidecar.command),
            # Joined by name, not id: a member re-created under the same name (a Pulumi
            # replacement) is found again when the sidecar restarts.
            network_mode=member.container.name.apply(lambda n: f"container:{n}"),
            # Docker retries a sidecar's restart only once, and that fails while its member is
            # down. The member stamps each start into its volume; the sidecar, which can read
            # it here, waits for a new stamp before it exits to be restarted.
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
