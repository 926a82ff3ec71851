"""PatroniCitusGroup: one Patroni cluster (a Citus coordinator or worker group, or a plain
Patroni cluster when Citus is off)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from .. import conventions
from ..config import Group, Member, Settings
from ..plan import render
from .container_options import ContainerOptions
from .data_volume import data_volume
from .engines import Engines


@dataclass(frozen=True)
class DeployedMember:
    """One member of a group with the resources that run it: callers take what they use from
    one record instead of zipping parallel lists."""

    spec: Member  # the address plan's entry: name, group, index, address
    container: docker.Container
    volume: docker.Volume
    ready: command.local.Command  # done once the member is healthy

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def address(self) -> str:
        return str(self.spec.address)


# Bounds the wait for Patroni to register a joining worker group, and each drain step.
MEMBERSHIP_TIMEOUT_S = 300
# Bounds each wait of a rolling change: a member's turn, its health, a restart, a switchover.
ROLLOUT_TIMEOUT_S = 600


class PatroniCitusGroup(pulumi.ComponentResource):
    """The members of one group and what changes them without an outage. Per member: a turn
    (waits, before a replacement, until no other member is down and hands leadership off),
    the container with its data volume, its config (files written into the running container
    and reloaded: local settings and passwords never replace it) and its readiness (healthy
    before the next member's turn; leadership handed off before it goes). Per group: the
    dynamic configuration kept as declared in the DCS, with restarts rolled when a setting
    needs one; for a Citus worker group also its membership (joined on create, drained before
    its containers are destroyed)."""

    members: pulumi.Output[list[dict[str, Any]]]
    deployed_members: tuple[DeployedMember, ...]

    def __init__(
        self,
        name: str,
        settings: Settings,
        group: Group,
        network: docker.Network,
        engines: Engines,
        credentials: pulumi.Output[render.Credentials],
        *,
        container_options: ContainerOptions,
        depends_on: Sequence[pulumi.Resource] = (),
        coordinator: Sequence[DeployedMember] = (),
        backup_repository: Optional[pulumi.Input[str]] = None,
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("patroni-citus:index:PatroniCitusGroup", name, None, opts)
        scope = settings.cluster.scope
        limits = settings.patroni.resources
        run_env = render.engines_environment(settings)
        plans = [_ContainerPlan.of(settings, group, m, container_options) for m in group.members]

        def revision_of(plan: _ContainerPlan) -> pulumi.Output[str]:
            image = engines.image_of(plan.member.name)
            return image.apply(lambda ref: render.revision(ref, plan.spec))

        revisions = {plan.member.name: revision_of(plan) for plan in plans}
        deployed: list[DeployedMember] = []
        for plan in plans:
            member = plan.member
            child = f"{name}-{member.index + 1}"
            provider = engines.provider_of(member.name)
            volume = data_volume(
                f"{child}-data",
                plan.volume_name,
                settings,
                conventions.ROLE_PATRONI,
                parent=self,
                member=member.name,
                host=settings.hosts.label_of(member.name),
                provider=provider,
            )
            revision = revisions[member.name]

            def turn_command(current: dict[str, str], m: Member = member) -> str:
                return render.turn_command(settings, m, dict(current), ROLLOUT_TIMEOUT_S)

            turn = command.local.Command(
                f"{child}-turn",
                create=pulumi.Output.all(**revisions).apply(turn_command),
                # Replaced, so run again, whenever the container is about to be replaced.
                triggers=[revision],
                environment=run_env,
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
            )
            container = container_options.container(
                child,
                parent=self,
                scope=scope,
                role=conventions.ROLE_PATRONI,
                name=member.name,
                image=engines.image_of(member.name),
                healthcheck=conventions.PATRONI_HEALTHCHECK,
                labels={**plan.labels, "revision": revision},
                provider=provider,
                depends_on=[*depends_on, turn],
                hostname=member.name,
                command=plan.spec["command"],
                networks_advanced=[
                    docker.ContainerNetworksAdvancedArgs(
                        name=network.name, ipv4_address=str(member.address)
                    )
                ],
                volumes=[
                    docker.ContainerVolumeArgs(
                        volume_name=volume.name, container_path=conventions.PATRONI_DATA_MOUNT
                    ),
                    *self._repository_mount(plan, backup_repository),
                ],
                stop_timeout=plan.spec["stop_timeout"],
                destroy_grace_seconds=plan.spec["stop_timeout"],
                memory=limits.memory_mb or None,
                cpus=limits.cpus,
                shm_size=limits.shm_size_mb,
            )

            # Passwords reach the member only in these files, never through environment
            # variables, labels or command lines, and stay secret in the state.
            def files_of(c: render.Credentials, m: Member = member) -> str:
                return render.member_files(settings, group, m, c)

            files: pulumi.Output[str] = pulumi.Output.secret(credentials.apply(files_of))
            config = command.local.Command(
                f"{child}-config",
                create=render.member_write_command(member.name, ROLLOUT_TIMEOUT_S),
                stdin=files,
                # A new container gets its files again; a changed file is rewritten in place.
                triggers=[container.id],
                environment=run_env,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[container]),
            )
            wait_ready, hand_off = render.ready_commands(settings, group, member, ROLLOUT_TIMEOUT_S)
            ready = command.local.Command(
                f"{child}-ready",
                create=wait_ready,
                delete=hand_off,
                triggers=[container.id],
                environment=run_env,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[config]),
            )
            deployed.append(DeployedMember(member, container, volume, ready))
        self.deployed_members = tuple(deployed)
        ready_members = [m.ready for m in deployed]
        self.dynamic_config = command.local.Command(
            f"{name}-dynamic-config",
            create=render.group_config_command(settings, group, ROLLOUT_TIMEOUT_S),
            environment=run_env,
            opts=pulumi.ResourceOptions(parent=self, depends_on=ready_members),
        )
        if group.role == "worker":
            join, drain = render.citus_membership_commands(
                settings, group, [m.name for m in coordinator], MEMBERSHIP_TIMEOUT_S
            )
            # Depends on the group's and the coordinator's members, so it is deleted (the
            # group drained) while they still run, and a failed drain keeps them.
            self.membership: Optional[command.local.Command] = command.local.Command(
                f"{name}-membership",
                create=join,
                delete=drain,
                environment=run_env,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[*ready_members, *(m.ready for m in coordinator)],
                ),
            )
        else:
            self.membership = None
        self.members = pulumi.Output.from_input(
            [{"name": m.name, "address": m.address} for m in self.deployed_members]
        )
        self.register_outputs({"members": self.members})

    @staticmethod
    def _repository_mount(
        plan: _ContainerPlan, repository: Optional[pulumi.Input[str]]
    ) -> list[docker.ContainerVolumeArgs]:
        """pgBackRest's repository (patroni_citus/resources/backups.py), shared by every member: whichever
        leads archives WAL and takes backups into it, a new replica restores from it."""
        if "backup_repository" not in plan.spec:
            return []
        if repository is None:
            raise ValueError("backups are on: pass the repository volume's name")
        return [
            docker.ContainerVolumeArgs(
                volume_name=repository, container_path=conventions.PGBACKREST_REPO_MOUNT
            )
        ]


@dataclass(frozen=True)
class _ContainerPlan:
    """A member container's arguments as plain data: what its revision hashes (with the
    image) and what the container is built from, so the two cannot drift apart."""

    member: Member
    volume_name: str
    labels: dict[str, object]
    spec: dict[str, Any]

    @classmethod
    def of(
        cls, settings: Settings, group: Group, member: Member, options: ContainerOptions
    ) -> _ContainerPlan:
        limits = settings.patroni.resources
        labels: dict[str, object] = {
            "member": member.name,
            "group": group.number,
            "data_path": conventions.PATRONI_DATA_MOUNT,
        }
        host = settings.hosts.label_of(member.name)
        if host is not None:
            # Only then: the labels are part of the revision, which one engine keeps as it was.
            labels["host"] = host
        volume_name = f"{member.name}-data"
        spec: dict[str, Any] = {
            "command": ["patroni"],
            "labels": labels,
            "network": settings.network.name,
            "address": str(member.address),
            "volume": volume_name,
            "healthcheck": list(conventions.PATRONI_HEALTHCHECK),
            # Patroni stops PostgreSQL with a fast shutdown on SIGTERM; give it time.
            "stop_timeout": 60,
            # Memory is not here: pulumi-docker changes it in place (docker update).
            "limits": [limits.cpus, limits.shm_size_mb],
            "shared": options.fingerprint(),
        }
        if settings.backups.enabled:
            # Only then: the revision of a member without backups stays what it was.
            spec["backup_repository"] = settings.backups.repository_volume
        return cls(member, volume_name, labels, spec)
