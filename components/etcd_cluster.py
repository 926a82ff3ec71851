"""EtcdCluster: the DCS that Patroni and vip-manager share."""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from policies import conventions

from . import render
from .container_options import ContainerOptions
from .data_volume import data_volume
from .settings import Settings

# Bounds the wait for a (re)created member to serve.
READY_TIMEOUT_S = 300


class EtcdCluster(pulumi.ComponentResource):
    """N etcd members with static addresses and one named volume each. Each member waits
    until the one before it serves, so a change that replaces them (an image upgrade) takes
    one member down at a time and the cluster keeps its quorum."""

    client_endpoints: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        settings: Settings,
        network: docker.Network,
        image: pulumi.Input[str],
        *,
        container_options: ContainerOptions,
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("patroni-citus:index:EtcdCluster", name, None, opts)
        scope = settings.cluster.scope
        self.containers: list[docker.Container] = []
        self.ready: list[command.local.Command] = []
        for member in settings.etcd_members:
            child = f"{name}-{member.index + 1}"
            volume = data_volume(
                f"{child}-data",
                f"{member.name}-data",
                settings,
                conventions.ROLE_ETCD,
                parent=self,
                member=member.name,
            )
            container = container_options.container(
                child,
                parent=self,
                scope=scope,
                role=conventions.ROLE_ETCD,
                name=member.name,
                image=image,
                healthcheck=conventions.ETCD_HEALTHCHECK,
                labels={"member": member.name, "data_path": conventions.ETCD_DATA_MOUNT},
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
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[container]),
                )
            )
        self.client_endpoints = pulumi.Output.from_input(render.etcd_client_urls(settings))
        self.register_outputs({"client_endpoints": self.client_endpoints})
