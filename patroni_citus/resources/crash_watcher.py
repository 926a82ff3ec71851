"""CrashWatcher: releases a dead leader's key the moment the engine reports its container
died (images/patroni/pc_crash_watch.py; docs/failover-and-partitions.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_docker as docker

from .. import conventions
from ..plan.engine_proxy import CrashWatcherPlan
from .container_options import ContainerOptions
from .engine_proxy import EngineProxy


@dataclass(frozen=True)
class CrashWatcherArgs:
    plan: CrashWatcherPlan
    network: docker.Network
    engine: EngineProxy
    image: pulumi.Input[str]
    container_options: ContainerOptions
    depends_on: Sequence[pulumi.Resource] = ()


class CrashWatcher(pulumi.ComponentResource):
    """One stateless watcher: it reads the engine through the proxy and etcd on the cluster
    network, and runs as nobody without capabilities on a read-only filesystem."""

    container_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: CrashWatcherArgs, opts: Optional[pulumi.ResourceOptions] = None
    ):
        super().__init__("patroni-citus:index:CrashWatcher", name, None, opts)
        plan = args.plan
        self.container = args.container_options.container(
            f"{name}-watcher",
            parent=self,
            scope=plan.scope,
            role=conventions.ROLE_CRASH_WATCHER,
            name=plan.container_name,
            image=args.image,
            healthcheck=["CMD", "pc-crash-watch", "healthcheck"],
            command=["pc-crash-watch"],
            envs=list(plan.environment),
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(
                    name=args.network.name, ipv4_address=plan.address
                ),
                docker.ContainerNetworksAdvancedArgs(name=args.engine.network_name),
            ],
            user="nobody",
            locked_down=True,
            depends_on=[args.engine.container, *args.depends_on],
        )
        self.container_name = self.container.name
        self.register_outputs({"container_name": self.container_name})
