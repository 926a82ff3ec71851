"""Endpoints: HAProxy instances routing by Patroni's REST health checks, a read-write port to
the leader of group 0 (the Citus coordinator) and a read-only port to its replicas."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import pulumi
import pulumi_docker as docker

from .. import conventions
from ..config import Settings
from ..plan import endpoints as render_endpoints
from .container_options import ContainerOptions, published_port
from .engines import Engines


class Endpoints(pulumi.ComponentResource):
    """`settings.endpoints.instances` HAProxy containers at fixed addresses on the cluster
    network, each publishing its read-write and read-only ports on its host (with several
    engines, one instance per engine, on the engine's address). Two by default:
    one would be a single point of failure; clients list every instance (libpq host lists)."""

    read_write: pulumi.Output[dict[str, Any]]
    read_only: pulumi.Output[dict[str, Any]]

    def __init__(
        self,
        name: str,
        settings: Settings,
        network: docker.Network,
        engines: Engines,
        *,
        container_options: ContainerOptions,
        depends_on: Sequence[pulumi.Resource] = (),
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("patroni-citus:index:Endpoints", name, None, opts)
        scope = settings.cluster.scope
        e = settings.endpoints
        config = render_endpoints.haproxy_config(settings)
        self.containers: list[docker.Container] = []
        for i in range(e.instances):
            read_write, read_only = e.host_ports(i)
            container_name = settings.service_name("haproxy", i)
            host_ip = settings.endpoint_host_ip(i)
            self.containers.append(
                container_options.container(
                    f"{name}-{i + 1}",
                    parent=self,
                    scope=scope,
                    role=conventions.ROLE_HAPROXY,
                    name=container_name,
                    image=engines.image_of(container_name),
                    provider=engines.provider_of(container_name),
                    labels={"host": settings.hosts.label_of(container_name)},
                    healthcheck=conventions.http_healthcheck(
                        f"http://127.0.0.1:{conventions.HAPROXY_METRICS_PORT}/healthz"
                    ),
                    # The configuration holds no secret; the entrypoint writes it to the tmpfs
                    # (Docker copies no upload onto a read-only root). A change replaces the
                    # container, as a changed upload would.
                    command=["endpoints"],
                    envs=[f"PC_HAPROXY_CONFIG={config}"],
                    tmpfs={conventions.HAPROXY_RUN_DIR: "uid=65534,gid=65534,mode=0700,size=1m"},
                    networks_advanced=[
                        docker.ContainerNetworksAdvancedArgs(
                            name=network.name,
                            ipv4_address=str(settings.service_address("haproxy", i)),
                        )
                    ],
                    ports=[
                        published_port(conventions.HAPROXY_READ_WRITE_PORT, host_ip, read_write),
                        published_port(conventions.HAPROXY_READ_ONLY_PORT, host_ip, read_only),
                    ],
                    # Binds ports above 1024 and writes only its tmpfs.
                    user="nobody",
                    locked_down=True,
                    depends_on=depends_on,
                )
            )
        self.read_write = pulumi.Output.from_input(
            render_endpoints.endpoint_outputs(settings, read_only=False)
        )
        self.read_only = pulumi.Output.from_input(
            render_endpoints.endpoint_outputs(settings, read_only=True)
        )
        self.register_outputs({"read_write": self.read_write, "read_only": self.read_only})
