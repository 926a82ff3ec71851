"""Pooler: PgBouncer in transaction pooling in front of the read-write endpoint, one instance
per HAProxy instance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from .. import conventions
from ..plan import render
from ..plan.endpoints import PgBouncerPlan, PoolerPlan
from .container_options import ContainerOptions, published_port


@dataclass(frozen=True)
class PoolerArgs:
    plan: PoolerPlan
    network: docker.Network
    image: pulumi.Input[str]
    credentials: pulumi.Output[render.Credentials]
    haproxy: Sequence[docker.Container]  # instance i's upstream
    # Its files name the service roles: on a rotation the roles change first.
    service_roles: pulumi.Resource
    container_options: ContainerOptions
    # How the local commands reach the engines (ClusterPlan.run_env).
    run_env: Optional[Mapping[str, str]]


class Pooler(pulumi.ComponentResource):
    """Per instance: the PgBouncer container, pointed at its own HAProxy instance's read-write
    port, and its config command, which writes the auth_file (the auth_query role's password,
    from the secret) and the ini into the running container as the postgres user (mode 0600)
    and reloads PgBouncer. The command runs after the service roles command, so on a rotation
    the role has its new password before PgBouncer's file names it."""

    endpoint: pulumi.Output[dict[str, Any]]

    def __init__(self, name: str, args: PoolerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("patroni-citus:index:Pooler", name, None, opts)
        self.containers: list[docker.Container] = []
        for i, (instance, upstream) in enumerate(zip(args.plan.instances, args.haproxy)):
            child = f"{name}-{i + 1}"
            container = self._pgbouncer(child, instance, upstream, args)
            files: pulumi.Output[str] = pulumi.Output.secret(args.credentials.apply(instance.files))
            command.local.Command(
                f"{child}-config",
                create=instance.write_command,
                stdin=files,
                # A new container gets its files again; a changed file is rewritten in place.
                triggers=[container.id],
                environment=args.run_env,
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[container, args.service_roles]
                ),
            )
            self.containers.append(container)
        self.endpoint = pulumi.Output.from_input(dict(args.plan.endpoint))
        self.register_outputs({"endpoint": self.endpoint})

    def _pgbouncer(
        self,
        child: str,
        instance: PgBouncerPlan,
        upstream: docker.Container,
        args: PoolerArgs,
    ) -> docker.Container:
        return args.container_options.container(
            child,
            parent=self,
            scope=args.plan.scope,
            role=conventions.ROLE_PGBOUNCER,
            name=instance.container_name,
            image=args.image,
            # The admin console answers without a server: healthy means PgBouncer serves,
            # whatever the state of the database behind it. As the auth role (a stats user):
            # PgBouncer 1.18 exits on an unknown user there (put_in_order).
            healthcheck=[
                "CMD",
                "pg_isready",
                "-q",
                "-h",
                "127.0.0.1",
                "-p",
                str(conventions.PGBOUNCER_PORT),
                "-d",
                "pgbouncer",
                "-U",
                args.plan.auth_user,
            ],
            command=["pgbouncer"],
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(
                    name=args.network.name, ipv4_address=instance.address
                )
            ],
            ports=[published_port(conventions.PGBOUNCER_PORT, instance.host_ip, instance.port)],
            # The auth_file must outlive a restart of the container (a tmpfs would come back
            # empty, and nothing would write it again), and Docker copies nothing onto a
            # read-only root: the root stays writable, everything else locked.
            user="postgres",
            locked_down=True,
            writable_root=True,
            depends_on=[upstream],
        )
