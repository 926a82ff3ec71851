"""Endpoints: HAProxy instances routing by Patroni's REST health checks, a read-write port to
the leader of group 0 (the Citus coordinator) and a read-only port to its replicas."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import pulumi
import pulumi_docker as docker

from .. import conventions
from ..plan.endpoints import EndpointsPlan, HaproxyPlan
from .container_options import ContainerOptions, published_port
from .engines import Engines


@dataclass(frozen=True)
class EndpointsArgs:
    plan: EndpointsPlan
    network: docker.Network
    engines: Engines
    container_options: ContainerOptions
    depends_on: Sequence[pulumi.Resource] = ()


class Endpoints(pulumi.ComponentResource):
    """`endpoints.instances` HAProxy containers at fixed addresses on the cluster network, each
    publishing its read-write and read-only ports on its host (with several engines, one
    instance per engine, on the engine's address). Two by default: one would be a single
    point of failure; clients list every instance (libpq host lists)."""

    read_write: pulumi.Output[dict[str, Any]]
    read_only: pulumi.Output[dict[str, Any]]

    def __init__(
        self, name: str, args: EndpointsArgs, opts: Optional[pulumi.ResourceOptions] = None
    ):
        super().__init__("patroni-citus:index:Endpoints", name, None, opts)
        self.containers = [
            self._haproxy(f"{name}-{i + 1}", instance, args)
            for i, instance in enumerate(args.plan.instances)
        ]
        self.read_write = pulumi.Output.from_input(dict(args.plan.read_write))
        self.read_only = pulumi.Output.from_input(dict(args.plan.read_only))
        self.register_outputs({"read_write": self.read_write, "read_only": self.read_only})

    def _haproxy(self, child: str, instance: HaproxyPlan, args: EndpointsArgs) -> docker.Container:
        name = instance.container_name
        return args.container_options.container(
            child,
            parent=self,
            scope=args.plan.scope,
            role=conventions.ROLE_HAPROXY,
            name=name,
            image=args.engines.image_of(name),
            provider=args.engines.provider_of(name),
            labels={"host": instance.host},
            healthcheck=conventions.http_healthcheck(
                f"http://127.0.0.1:{conventions.HAPROXY_METRICS_PORT}/healthz"
            ),
            # The configuration holds no secret; the entrypoint writes it to the tmpfs (Docker
            # copies no upload onto a read-only root). A change replaces the container, as a
            # changed upload would.
            command=["endpoints"],
            envs=[f"PC_HAPROXY_CONFIG={args.plan.config}"],
            tmpfs={conventions.HAPROXY_RUN_DIR: "uid=65534,gid=65534,mode=0700,size=1m"},
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(
                    name=args.network.name, ipv4_address=instance.address
                )
            ],
            ports=[
                published_port(
                    conventions.HAPROXY_READ_WRITE_PORT, instance.host_ip, instance.read_write_port
                ),
                published_port(
                    conventions.HAPROXY_READ_ONLY_PORT, instance.host_ip, instance.read_only_port
                ),
            ],
            # Binds ports above 1024 and writes only its tmpfs.
            user="nobody",
            locked_down=True,
            depends_on=args.depends_on,
        )
