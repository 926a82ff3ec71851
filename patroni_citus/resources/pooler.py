"""Pooler: PgBouncer in transaction pooling in front of the read-write endpoint, one instance
per HAProxy instance."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from .. import conventions
from ..config import Settings
from ..plan import endpoints as render_endpoints
from ..plan import render
from .container_options import ContainerOptions, published_port

WRITE_TIMEOUT_S = 300


class Pooler(pulumi.ComponentResource):
    """Per instance: the PgBouncer container, pointed at its own HAProxy instance's read-write
    port, and its config command, which writes the auth_file (the auth_query role's password,
    from the secret) and the ini into the running container as the postgres user (mode 0600)
    and reloads PgBouncer. The command runs after the service roles command, so on a rotation
    the role has its new password before PgBouncer's file names it."""

    endpoint: pulumi.Output[dict[str, Any]]

    def __init__(
        self,
        name: str,
        settings: Settings,
        network: docker.Network,
        image: pulumi.Input[str],
        credentials: pulumi.Output[render.Credentials],
        haproxy: Sequence[docker.Container],
        service_roles: pulumi.Resource,
        *,
        container_options: ContainerOptions,
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("patroni-citus:index:Pooler", name, None, opts)
        scope = settings.cluster.scope
        p = settings.pooler
        self.containers: list[docker.Container] = []
        for i, upstream in enumerate(haproxy):
            child = f"{name}-{i + 1}"
            container_name = settings.service_name("pgbouncer", i)
            container = container_options.container(
                child,
                parent=self,
                scope=scope,
                role=conventions.ROLE_PGBOUNCER,
                name=container_name,
                image=image,
                # The admin console answers without a server: healthy means PgBouncer serves,
                # whatever the state of the database behind it. As the auth role (a stats
                # user): PgBouncer 1.18 exits on an unknown user there (put_in_order).
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
                    p.auth_user,
                ],
                command=["pgbouncer"],
                networks_advanced=[
                    docker.ContainerNetworksAdvancedArgs(
                        name=network.name,
                        ipv4_address=str(settings.service_address("pgbouncer", i)),
                    )
                ],
                ports=[
                    published_port(
                        conventions.PGBOUNCER_PORT,
                        p.host_ip,
                        render_endpoints.pooler_port(settings, i),
                    )
                ],
                # The auth_file must outlive a restart of the container (a tmpfs would come
                # back empty, and nothing would write it again), and Docker copies nothing
                # onto a read-only root: the root stays writable, everything else locked.
                user="postgres",
                locked_down=True,
                writable_root=True,
                depends_on=[upstream],
            )

            def files_of(c: render.Credentials, instance: int = i) -> str:
                return render_endpoints.pooler_files(settings, instance, c)

            files: pulumi.Output[str] = pulumi.Output.secret(credentials.apply(files_of))
            command.local.Command(
                f"{child}-config",
                create=render_endpoints.pooler_write_command(container_name, WRITE_TIMEOUT_S),
                stdin=files,
                # A new container gets its files again; a changed file is rewritten in place.
                triggers=[container.id],
                environment=render.engines_environment(settings),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[container, service_roles]),
            )
            self.containers.append(container)
        self.endpoint = pulumi.Output.from_input(render_endpoints.pooler_outputs(settings))
        self.register_outputs({"endpoint": self.endpoint})
