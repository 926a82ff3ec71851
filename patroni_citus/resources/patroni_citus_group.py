"""PatroniCitusGroup: one Patroni cluster (a Citus coordinator or worker group, or a plain
Patroni cluster when Citus is off)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from .. import conventions
from ..config import Member
from ..plan import render
from ..plan.members import GroupPlan, MemberPlan
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


@dataclass(frozen=True)
class PatroniCitusGroupArgs:
    plan: GroupPlan
    network: docker.Network
    engines: Engines
    credentials: pulumi.Output[render.Credentials]
    container_options: ContainerOptions
    # How the local commands reach the engines (ClusterPlan.run_env).
    run_env: Optional[Mapping[str, str]]
    depends_on: Sequence[pulumi.Resource] = ()
    # A worker group's membership waits for the coordinator's members.
    coordinator: Sequence[DeployedMember] = ()
    # pgBackRest's repository volume, when backups are on.
    backup_repository: Optional[pulumi.Input[str]] = None


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
        self, name: str, args: PatroniCitusGroupArgs, opts: Optional[pulumi.ResourceOptions] = None
    ):
        super().__init__("patroni-citus:index:PatroniCitusGroup", name, None, opts)
        plan = args.plan
        shared = args.container_options.fingerprint()

        def revision_of(member: MemberPlan) -> pulumi.Output[str]:
            spec = {**member.spec, "shared": shared}
            return args.engines.image_of(member.name).apply(lambda ref: render.revision(ref, spec))

        revisions = {m.name: revision_of(m) for m in plan.members}
        self.deployed_members = tuple(
            self._member(f"{name}-{m.member.index + 1}", m, revisions, args) for m in plan.members
        )
        ready_members = [m.ready for m in self.deployed_members]
        self.dynamic_config = command.local.Command(
            f"{name}-dynamic-config",
            create=plan.dynamic_config_command,
            environment=args.run_env,
            opts=pulumi.ResourceOptions(parent=self, depends_on=ready_members),
        )
        self.membership: Optional[command.local.Command] = None
        if plan.membership is not None:
            join, drain = plan.membership
            # Depends on the group's and the coordinator's members, so it is deleted (the
            # group drained) while they still run, and a failed drain keeps them.
            self.membership = command.local.Command(
                f"{name}-membership",
                create=join,
                delete=drain,
                environment=args.run_env,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[*ready_members, *(m.ready for m in args.coordinator)],
                ),
            )
        self.members = pulumi.Output.from_input(
            [{"name": m.name, "address": m.address} for m in self.deployed_members]
        )
        self.register_outputs({"members": self.members})

    def _member(
        self,
        child: str,
        member: MemberPlan,
        revisions: dict[str, pulumi.Output[str]],
        args: PatroniCitusGroupArgs,
    ) -> DeployedMember:
        run_env = args.run_env
        provider = args.engines.provider_of(member.name)
        volume = data_volume(f"{child}-data", member.volume, parent=self, provider=provider)
        turn = command.local.Command(
            f"{child}-turn",
            create=pulumi.Output.all(**revisions).apply(member.turn_command),
            # Replaced, so run again, whenever the container is about to be replaced.
            triggers=[revisions[member.name]],
            environment=run_env,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        container = self._container(child, member, volume, revisions[member.name], turn, args)
        # Passwords reach the member only in these files, never through environment
        # variables, labels or command lines, and stay secret in the state.
        files: pulumi.Output[str] = pulumi.Output.secret(args.credentials.apply(member.files))
        config = command.local.Command(
            f"{child}-config",
            create=member.write_command,
            stdin=files,
            # A new container gets its files again; a changed file is rewritten in place.
            triggers=[container.id],
            environment=run_env,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[container]),
        )
        ready = command.local.Command(
            f"{child}-ready",
            create=member.ready_command,
            delete=member.hand_off_command,
            triggers=[container.id],
            environment=run_env,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[config]),
        )
        return DeployedMember(member.member, container, volume, ready)

    def _container(
        self,
        child: str,
        member: MemberPlan,
        volume: docker.Volume,
        revision: pulumi.Output[str],
        turn: command.local.Command,
        args: PatroniCitusGroupArgs,
    ) -> docker.Container:
        limits = args.plan.limits
        stop_timeout = member.spec["stop_timeout"]
        return args.container_options.container(
            child,
            parent=self,
            scope=args.plan.scope,
            role=conventions.ROLE_PATRONI,
            name=member.name,
            image=args.engines.image_of(member.name),
            healthcheck=conventions.PATRONI_HEALTHCHECK,
            labels={**member.labels, "revision": revision},
            provider=args.engines.provider_of(member.name),
            depends_on=[*args.depends_on, turn],
            hostname=member.name,
            command=member.spec["command"],
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(
                    name=args.network.name, ipv4_address=member.spec["address"]
                )
            ],
            volumes=[
                docker.ContainerVolumeArgs(
                    volume_name=volume.name, container_path=conventions.PATRONI_DATA_MOUNT
                ),
                *self._repository_mount(member, args.backup_repository),
            ],
            stop_timeout=stop_timeout,
            destroy_grace_seconds=stop_timeout,
            memory=limits.memory_mb or None,
            cpus=limits.cpus,
            shm_size=limits.shm_size_mb,
        )

    @staticmethod
    def _repository_mount(
        member: MemberPlan, repository: Optional[pulumi.Input[str]]
    ) -> list[docker.ContainerVolumeArgs]:
        """pgBackRest's repository (resources/backups.py), shared by every member: whichever
        leads archives WAL and takes backups into it, a new replica restores from it."""
        if not member.mounts_backups:
            return []
        if repository is None:
            raise ValueError("backups are on: pass the repository volume's name")
        return [
            docker.ContainerVolumeArgs(
                volume_name=repository, container_path=conventions.PGBACKREST_REPO_MOUNT
            )
        ]
