"""CrashWatcher: releases a dead leader's key the moment the engine reports its container
died (images/patroni/pc-crash-watch; README, "Crash failover")."""

from __future__ import annotations

from typing import Optional, Sequence

import pulumi
import pulumi_docker as docker

from .. import conventions
from ..config import Settings
from ..plan import render
from .container_options import ContainerOptions
from .engine_proxy import EngineProxy


class CrashWatcher(pulumi.ComponentResource):
    """One stateless watcher: it reads the engine through the proxy and etcd on the cluster
    network, and runs as nobody without capabilities on a read-only filesystem."""

    container_name: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        settings: Settings,
        network: docker.Network,
        engine: EngineProxy,
        image: pulumi.Input[str],
        *,
        container_options: ContainerOptions,
        depends_on: Sequence[pulumi.Resource] = (),
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("patroni-citus:index:CrashWatcher", name, None, opts)
        scope = settings.cluster.scope
        self.container = container_options.container(
            f"{name}-watcher",
            parent=self,
            scope=scope,
            role=conventions.ROLE_CRASH_WATCHER,
            name=f"{scope}-crash-watcher",
            image=image,
            healthcheck=["CMD", "pc-crash-watch", "healthcheck"],
            command=["pc-crash-watch"],
            envs=render.crash_watcher_environment(settings),
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(
                    name=network.name, ipv4_address=str(settings.crash_watcher_address)
                ),
                docker.ContainerNetworksAdvancedArgs(name=engine.network_name),
            ],
            user="nobody",
            locked_down=True,
            depends_on=[engine.container, *depends_on],
        )
        self.container_name = self.container.name
        self.register_outputs({"container_name": self.container_name})
