"""EngineProxy: the only container that mounts the Docker engine's API socket. It passes on
the read-only requests its clients need (images/patroni/engine-proxy.cfg) and refuses every
other one, so the crash watcher and cadvisor never hold root-equivalent access themselves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_docker as docker

from .. import conventions
from ..plan.engine_proxy import EngineProxyPlan
from .container_options import ContainerOptions
from .labels import docker_labels

PROXY_CONFIG_PATH = "/etc/pc-engine-proxy/haproxy.cfg"  # in the image: its root is read-only
# Like the observability services: up before the cluster's containers, never logging to
# fluentd (which may not run yet).
PROXY_OPTIONS = ContainerOptions()


@dataclass(frozen=True)
class EngineProxyArgs:
    plan: EngineProxyPlan
    image: pulumi.Input[str]
    # Docker picks the proxy network's pool itself: created after the cluster's network, it
    # can never take the cluster's configured subnet first.
    cluster_network: docker.Network


class EngineProxy(pulumi.ComponentResource):
    """The proxy and the network its clients reach it on; it publishes no port."""

    address: pulumi.Output[str]
    network_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: EngineProxyArgs, opts: Optional[pulumi.ResourceOptions] = None
    ):
        super().__init__("patroni-citus:index:EngineProxy", name, None, opts)
        plan = args.plan
        scope = plan.scope
        # A plain bridge rather than an internal one: cadvisor joins it and publishes its
        # port from it. Nothing outside it reaches the proxy, which publishes none.
        self.network = docker.Network(
            f"{name}-net",
            name=plan.network_name,
            driver="bridge",
            labels=docker_labels(scope, None),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.cluster_network]),
        )
        self.container = PROXY_OPTIONS.container(
            f"{name}-proxy",
            parent=self,
            scope=scope,
            role=conventions.ROLE_ENGINE_PROXY,
            name=plan.container_name,
            image=args.image,
            healthcheck=conventions.http_healthcheck(
                f"http://127.0.0.1:{conventions.ENGINE_PROXY_PORT}/_ping"
            ),
            command=["haproxy", "-db", "-f", PROXY_CONFIG_PATH],
            # Read-only or not, a mounted socket accepts every API call: the proxy's rules
            # are what limit its clients.
            mounts=[
                docker.ContainerMountArgs(
                    type="bind",
                    source=plan.socket,
                    target=conventions.ENGINE_SOCKET_PATH,
                )
            ],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=self.network.name)],
            # The socket belongs to root (mode 0660). As root HAProxy needs no capability: it
            # owns the socket, binds a port above 1024 and writes nothing.
            user="root",
            locked_down=True,
        )
        self.address = pulumi.Output.from_input(plan.address)
        self.network_name = self.network.name
        self.register_outputs({"address": self.address, "network_name": self.network_name})
