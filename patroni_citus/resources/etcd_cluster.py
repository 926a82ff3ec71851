"""EtcdCluster: the DCS that Patroni and vip-manager share."""

from __future__ import annotations

from typing import Callable, Optional

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from .. import conventions
from ..config import Settings
from ..plan import render
from .container_options import ContainerOptions
from .data_volume import data_volume
from .engines import Engines

# Bounds the wait for a (re)created member to serve.
READY_TIMEOUT_S = 300


class EtcdCluster(pulumi.ComponentResource):
    """N etcd members with static addresses and one named volume each. Each member waits
    until the one before it serves, so a change that replaces them (an image upgrade) takes
    one member down at a time and the cluster keeps its quorum. With several engines each
    member runs on the engine its placement names, next to its volume."""

    client_endpoints: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        settings: Settings,
        network: docker.Network,
        image_of: Callable[[str], pulumi.Input[str]],
        engines: Engines,
        *,
        container_options: ContainerOptions,
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("patroni-citus:index:EtcdCluster", name, None, opts)
        scope = settings.cluster.scope
        run_env = render.engines_environment(settings)
        self.containers: list[docker.Container] = []
        self.ready: list[command.local.Command] = []
        for member in settings.etcd_members:
            child = f"{name}-{member.index + 1}"
            host = settings.hosts.label_of(member.name)
            provider = engines.provider_of(member.name)
            volume = data_volume(
                f"{child}-data",
                f"{member.name}-data",
                settings,
                conventions.ROLE_ETCD,
                parent=self,
                member=member.name,
                host=host,
                provider=provider,
            )
            container = container_options.container(
                child,
                parent=self,
                scope=scope,
                role=conventions.ROLE_ETCD,
                name=member.name,
                image=image_of(member.name),
                healthcheck=conventions.ETCD_HEALTHCHECK,
                labels={
                    "member": member.name,
                    "data_path": conventions.ETCD_DATA_MOUNT,
                    "host": host,
                },
                provider=provider,
                depends_on=self.ready[-1:],
                hostname=member.name,
                command=render.etcd_command(settings, member),
                networks_advanced=[
                    docker.ContainerNetworksAdvancedArgs(
                        name=network.name, ipv4_address=str(member.address)
                    )
                ],
                volumes=[
                    docker.ContainerVolumeArgs(
                        volume_name=volume.name, container_path=conventions.ETCD_DATA_MOUNT
                    )
                ],
            )
            self.containers.append(container)
            self.ready.append(
                command.local.Command(
                    f"{child}-ready",
                    create=render.etcd_ready_command(settings, member, READY_TIMEOUT_S),
                    triggers=[container.id],
                    environment=run_env,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[container]),
                )
            )
        self.client_endpoints = pulumi.Output.from_input(render.etcd_client_urls(settings))
        self.register_outputs({"client_endpoints": self.client_endpoints})
