"""PatroniCitusGroup: one Patroni cluster (a Citus coordinator or worker group, or a plain
Patroni cluster when Citus is off)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from policies import conventions

from . import render
from .container_options import ContainerOptions
from .data_volume import data_volume
from .settings import Group, Member, Settings


@dataclass(frozen=True)
class DeployedMember:
    """One member of a group with the resources that run it: callers take what they use from
    one record instead of zipping parallel lists."""

    spec: Member  # the address plan's entry: name, group, index, address
    container: docker.Container
    volume: docker.Volume

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def address(self) -> str:
        return str(self.spec.address)


# Bounds the wait for Patroni to register a joining worker group, and each drain step.
MEMBERSHIP_TIMEOUT_S = 300


class PatroniCitusGroup(pulumi.ComponentResource):
    """The members of one group: container, static address, data volume, uploaded config; for a
    Citus worker group also its membership in the cluster (joined on create, drained before
    its containers are destroyed)."""

    members: pulumi.Output[list[dict[str, Any]]]
    deployed_members: tuple[DeployedMember, ...]

    def __init__(
        self,
        name: str,
        settings: Settings,
        group: Group,
        network: docker.Network,
        image: pulumi.Input[str],
        credentials: pulumi.Output[render.Credentials],
        *,
        container_options: ContainerOptions,
        depends_on: Sequence[pulumi.Resource] = (),
        coordinator: Sequence[DeployedMember] = (),
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("patroni-citus:index:PatroniCitusGroup", name, None, opts)
        scope = settings.cluster.scope
        limits = settings.patroni.resources
        deployed: list[DeployedMember] = []
        for member in group.members:
            child = f"{name}-{member.index + 1}"
            volume = data_volume(
                f"{child}-data",
                f"{member.name}-data",
                settings,
                conventions.ROLE_PATRONI,
                parent=self,
                member=member.name,
            )

            # Passwords reach the member only inside these uploaded files, never through
            # environment variables or labels, and stay secret in the state.
            def patroni_yaml_of(c: render.Credentials, m: Member = member) -> str:
                return render.to_yaml(render.patroni_config(settings, group, m, c))

            patroni_yaml = credentials.apply(patroni_yaml_of)
            uploads = [_postgres_secret(conventions.PATRONI_CONFIG_PATH, patroni_yaml)]
            if settings.citus.enabled:
                uploads.append(
                    _postgres_secret(
                        conventions.PGPASS_PATH,
                        credentials.apply(lambda c: render.pgpass(settings, c)),
                    )
                )
            container = container_options.container(
                child,
                parent=self,
                scope=scope,
                role=conventions.ROLE_PATRONI,
                name=member.name,
                image=image,
                healthcheck=conventions.PATRONI_HEALTHCHECK,
                labels={
                    "member": member.name,
                    "group": group.number,
                    "data_path": conventions.PATRONI_DATA_MOUNT,
                },
                depends_on=depends_on,
                hostname=member.name,
                command=["patroni"],
                networks_advanced=[
                    docker.ContainerNetworksAdvancedArgs(
                        name=network.name, ipv4_address=str(member.address)
                    )
                ],
                volumes=[
                    docker.ContainerVolumeArgs(
                        volume_name=volume.name, container_path=conventions.PATRONI_DATA_MOUNT
                    )
                ],
                uploads=uploads,
                # Patroni stops PostgreSQL with a fast shutdown on SIGTERM; give it time.
                stop_timeout=60,
                destroy_grace_seconds=60,
                memory=limits.memory_mb or None,
                cpus=limits.cpus,
                shm_size=limits.shm_size_mb,
            )
            deployed.append(DeployedMember(member, container, volume))
        self.deployed_members = tuple(deployed)
        if group.role == "worker":
            join, drain = render.citus_membership_commands(
                settings, group, [m.name for m in coordinator], MEMBERSHIP_TIMEOUT_S
            )
            # Depends on the group's and the coordinator's containers, so it is deleted (the
            # group drained) while they still run, and a failed drain keeps them.
            self.membership: Optional[command.local.Command] = command.local.Command(
                f"{name}-membership",
                create=join,
                delete=drain,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[
                        *(m.container for m in deployed),
                        *(m.container for m in coordinator),
                    ],
                ),
            )
        else:
            self.membership = None
        self.members = pulumi.Output.from_input(
            [{"name": m.name, "address": m.address} for m in self.deployed_members]
        )
        self.register_outputs({"members": self.members})


def _postgres_secret(path: str, content: pulumi.Output[str]) -> docker.ContainerUploadArgs:
    """A file only the postgres user can read, kept secret in the state."""
    return docker.ContainerUploadArgs(
        file=path,
        content=pulumi.Output.secret(content),
        owner=conventions.POSTGRES_UID,
        group=conventions.POSTGRES_UID,
        permissions="0600",
    )
