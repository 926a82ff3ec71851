"""PatroniCitusGroup: one Patroni cluster (a Citus coordinator or worker group, or a plain
Patroni cluster when Citus is off)."""

from __future__ import annotations

from typing import Optional, Sequence

import pulumi
import pulumi_docker as docker

from . import render
from .container_options import ContainerOptions
from .data_volume import data_volume
from .labels import docker_labels
from .settings import Group, Settings


class PatroniCitusGroup(pulumi.ComponentResource):
    """The members of one group: container, static address, data volume, uploaded config."""

    members: pulumi.Output[list[dict]]

    def __init__(self, name: str, settings: Settings, group: Group, network: docker.Network,
                 image: pulumi.Input[str], credentials: pulumi.Output[render.Credentials], *,
                 container_options: ContainerOptions, depends_on: Sequence[pulumi.Resource] = (),
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("patroni-citus:index:PatroniCitusGroup", name, None, opts)
        scope = settings.cluster.scope
        limits = settings.patroni.resources
        self.group = group
        self.containers: list[docker.Container] = []
        self.volumes: list[docker.Volume] = []
        for member in group.members:
            child = f"{name}-{member.index + 1}"
            volume = data_volume(f"{child}-data", f"{member.name}-data", settings, "patroni",
                                 parent=self, member=member.name)
            # Passwords reach the member only inside these uploaded files, never through
            # environment variables or labels, and stay secret in the state.
            patroni_yaml = credentials.apply(lambda c, m=member: render.to_yaml(
                render.patroni_config(settings, group, m, c)))
            uploads = [docker.ContainerUploadArgs(
                file=render.PATRONI_CONFIG_PATH, content=pulumi.Output.secret(patroni_yaml),
                owner=render.POSTGRES_UID, group=render.POSTGRES_UID, permissions="0600")]
            if settings.citus.enabled:
                uploads.append(docker.ContainerUploadArgs(
                    file=render.PGPASS_PATH,
                    content=pulumi.Output.secret(credentials.apply(
                        lambda c: render.pgpass(settings, c))),
                    owner=render.POSTGRES_UID, group=render.POSTGRES_UID, permissions="0600"))
            container = docker.Container(
                child,
                name=member.name,
                hostname=member.name,
                image=image,
                command=["patroni"],
                networks_advanced=[docker.ContainerNetworksAdvancedArgs(
                    name=network.name, ipv4_address=str(member.address))],
                volumes=[docker.ContainerVolumeArgs(
                    volume_name=volume.name, container_path=render.PATRONI_DATA_MOUNT)],
                uploads=uploads,
                labels=docker_labels(scope, "patroni", member=member.name, group=group.number,
                                     data_path=render.PATRONI_DATA_MOUNT),
                healthcheck=container_options.healthcheck(render.patroni_healthcheck()),
                restart="unless-stopped",
                capabilities=ContainerOptions.no_raw_sockets(),
                # Patroni stops PostgreSQL with a fast shutdown on SIGTERM; give it time.
                stop_timeout=60,
                destroy_grace_seconds=60,
                memory=limits.memory_mb or None,
                cpus=limits.cpus,
                shm_size=limits.shm_size_mb,
                **container_options.logging(member.name),
                opts=pulumi.ResourceOptions(parent=self,
                                            depends_on=[*depends_on,
                                                        *container_options.depends_on],
                                            delete_before_replace=True))
            self.containers.append(container)
            self.volumes.append(volume)
        self.members = pulumi.Output.from_input(
            [{"name": m.name, "address": str(m.address)} for m in group.members])
        self.register_outputs({"members": self.members})
