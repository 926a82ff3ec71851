"""EtcdCluster: the DCS that Patroni and vip-manager share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Optional

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from .. import conventions
from ..plan.etcd import EtcdMemberPlan, EtcdPlan
from .container_options import ContainerOptions
from .data_volume import data_volume
from .engines import Engines


@dataclass(frozen=True)
class EtcdClusterArgs:
    plan: EtcdPlan
    network: docker.Network
    image_of: Callable[[str], pulumi.Input[str]]  # a member's image, by container name
    engines: Engines
    container_options: ContainerOptions
    # How the local commands reach the engines (ClusterPlan.run_env).
    run_env: Optional[Mapping[str, str]]


class EtcdCluster(pulumi.ComponentResource):
    """N etcd members with static addresses and one named volume each. Each member waits
    until the one before it serves, so a change that replaces them (an image upgrade) takes
    one member down at a time and the cluster keeps its quorum. With several engines each
    member runs on the engine its placement names, next to its volume."""

    client_endpoints: pulumi.Output[list[str]]

    def __init__(
        self, name: str, args: EtcdClusterArgs, opts: Optional[pulumi.ResourceOptions] = None
    ):
        super().__init__("patroni-citus:index:EtcdCluster", name, None, opts)
        self.containers: list[docker.Container] = []
        self.ready: list[command.local.Command] = []
        for member in args.plan.members:
            container = self._container(f"{name}-{member.number}", member, args)
            self.containers.append(container)
            self.ready.append(
                command.local.Command(
                    f"{name}-{member.number}-ready",
                    create=member.ready_command,
                    triggers=[container.id],
                    environment=args.run_env,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[container]),
                )
            )
        self.client_endpoints = pulumi.Output.from_input(list(args.plan.client_urls))
        self.register_outputs({"client_endpoints": self.client_endpoints})

    def _container(
        self, child: str, member: EtcdMemberPlan, args: EtcdClusterArgs
    ) -> docker.Container:
        provider = args.engines.provider_of(member.name)
        volume = data_volume(f"{child}-data", member.volume, parent=self, provider=provider)
        return args.container_options.container(
            child,
            parent=self,
            scope=args.plan.scope,
            role=conventions.ROLE_ETCD,
            name=member.name,
            image=args.image_of(member.name),
            healthcheck=conventions.ETCD_HEALTHCHECK,
            labels={
                "member": member.name,
                "data_path": conventions.ETCD_DATA_MOUNT,
                "host": member.host,
            },
            provider=provider,
            depends_on=self.ready[-1:],
            hostname=member.name,
            command=list(member.command),
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(
                    name=args.network.name, ipv4_address=member.address
                )
            ],
            volumes=[
                docker.ContainerVolumeArgs(
                    volume_name=volume.name, container_path=conventions.ETCD_DATA_MOUNT
                )
            ],
        )
