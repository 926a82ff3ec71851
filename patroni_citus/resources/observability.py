"""Observability: cadvisor metrics, a fluentd log pipeline for every cluster container, and
the optional adminer SQL console."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pulumi
import pulumi_docker as docker

from .. import conventions
from ..plan.observability import (
    ADMINER_PORT,
    FLUENTD_LOG_DIR,
    FLUENTD_PORT,
    AdminerPlan,
    CadvisorPlan,
    FluentdPlan,
    ObservabilityPlan,
    ServicePlan,
)
from .container_options import ContainerOptions, published_port
from .data_volume import data_volume
from .engine_proxy import EngineProxy
from .labels import docker_labels

FLUENTD_CONF = Path(__file__).resolve().parents[2] / "images" / "fluentd" / "fluent.conf"
# The services' own options: the default healthcheck timing, never fluentd logging.
SERVICE_OPTIONS = ContainerOptions()


@dataclass(frozen=True)
class ObservabilityArgs:
    plan: ObservabilityPlan
    network: docker.Network
    engine: Optional[EngineProxy]  # cadvisor reads the engine through it


class Observability(pulumi.ComponentResource):
    """Declared before the cluster's containers: they log to its fluentd."""

    cadvisor_url: pulumi.Output[Optional[str]]
    fluentd_address: pulumi.Output[Optional[str]]
    adminer_url: pulumi.Output[Optional[str]]

    def __init__(
        self, name: str, args: ObservabilityArgs, opts: Optional[pulumi.ResourceOptions] = None
    ):
        super().__init__("patroni-citus:index:Observability", name, None, opts)
        plan = args.plan
        self.containers: list[docker.Container] = []
        # What the cluster's containers share; logging changes it when fluentd is on.
        self.container_options = ContainerOptions()
        cadvisor_url = fluentd_address = adminer_url = None

        if plan.fluentd is not None:
            fluentd = self._fluentd(name, plan.scope, plan.fluentd)
            fluentd_address = plan.fluentd.service.host_address
            # The logging driver runs in the daemon and reaches fluentd on the host's
            # published port. Async: a fluentd outage must never stop a database container.
            self.container_options = ContainerOptions(
                log_driver="fluentd",
                log_opts={"fluentd-address": f"tcp://{fluentd_address}", "fluentd-async": "true"},
                depends_on=(fluentd,),
            )
        # Where Prometheus scrapes cadvisor. Its own internal network, not the cluster's
        # (cadvisor would reach etcd, which takes writes without authentication) nor the
        # engine's (Prometheus would reach the engine proxy): each gains only the other.
        self.metrics_network: Optional[docker.Network] = None
        if plan.cadvisor is not None:
            assert args.engine is not None  # planned whenever cadvisor is on
            if plan.cadvisor.metrics_network is not None:
                self.metrics_network = docker.Network(
                    f"{name}-metrics",
                    name=plan.cadvisor.metrics_network,
                    driver="bridge",
                    internal=True,
                    labels=docker_labels(plan.scope, None),
                    # A pool Docker picks: after the cluster's network, never over its subnet.
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[args.network]),
                )
            self._cadvisor(name, plan.scope, plan.cadvisor, args.engine)
            cadvisor_url = f"http://{plan.cadvisor.service.host_address}"
        if plan.adminer is not None:
            self._adminer(name, plan.scope, plan.adminer, args.network)
            adminer_url = f"http://{plan.adminer.service.host_address}"

        self.cadvisor_url = pulumi.Output.from_input(cadvisor_url)
        self.fluentd_address = pulumi.Output.from_input(fluentd_address)
        self.adminer_url = pulumi.Output.from_input(adminer_url)
        self.register_outputs(
            {
                "cadvisor_url": self.cadvisor_url,
                "fluentd_address": self.fluentd_address,
                "adminer_url": self.adminer_url,
            }
        )

    def _image(self, name: str, reference: str) -> pulumi.Output[str]:
        return docker.RemoteImage(
            f"{name}-image",
            name=reference,
            keep_locally=True,
            opts=pulumi.ResourceOptions(parent=self),
        ).image_id

    def _container(self, resource_name: str, **args: Any) -> docker.Container:
        container = SERVICE_OPTIONS.container(resource_name, parent=self, **args)
        self.containers.append(container)
        return container

    def _fluentd(self, name: str, scope: str, plan: FluentdPlan) -> docker.Container:
        child = f"{name}-fluentd"
        volume = data_volume(f"{child}-data", plan.volume, parent=self)
        return self._container(
            child,
            scope=scope,
            role=conventions.ROLE_FLUENTD,
            name=plan.service.container_name,
            image=self._image(child, plan.service.image),
            healthcheck=[
                "CMD",
                "ruby",
                "-rnet/http",
                "-e",
                "exit Net::HTTP.get_response(URI('http://127.0.0.1:24220/api/plugins.json'))"
                ".is_a?(Net::HTTPSuccess)",
            ],
            labels={"data_path": FLUENTD_LOG_DIR},
            uploads=[
                docker.ContainerUploadArgs(
                    file="/fluentd/etc/fluent.conf", content=FLUENTD_CONF.read_text()
                )
            ],
            volumes=[
                docker.ContainerVolumeArgs(volume_name=volume.name, container_path=FLUENTD_LOG_DIR)
            ],
            ports=[_published(FLUENTD_PORT, plan.service)],
        )

    def _cadvisor(
        self, name: str, scope: str, plan: CadvisorPlan, engine: EngineProxy
    ) -> docker.Container:
        child = f"{name}-cadvisor"
        # Not the usual `/` and `/var/run`: both hold the engine socket. cadvisor asks the
        # engine proxy instead, and finds container layers under /rootfs/var/lib/docker.
        read_only = [
            ("/sys", "/sys"),
            ("/var/lib/docker", "/var/lib/docker"),
            ("/var/lib/docker", "/rootfs/var/lib/docker"),
        ]
        networks = [engine.network_name]
        if self.metrics_network is not None:
            networks.append(self.metrics_network.name)
        return self._container(
            child,
            scope=scope,
            role=conventions.ROLE_CADVISOR,
            name=plan.service.container_name,
            image=self._image(child, plan.service.image),
            healthcheck=[
                "CMD",
                "wget",
                "--quiet",
                "--tries=1",
                "--spider",
                f"http://127.0.0.1:{conventions.CADVISOR_PORT}/healthz",
            ],
            command=[
                "--docker_only=true",
                "--housekeeping_interval=10s",
                pulumi.Output.concat("--docker=tcp://", engine.address),
            ],
            mounts=[
                docker.ContainerMountArgs(type="bind", source=source, target=target, read_only=True)
                for source, target in read_only
            ],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=n) for n in networks],
            ports=[_published(conventions.CADVISOR_PORT, plan.service)],
            # cadvisor registers its Docker factory once, at start: the proxy must be up.
            depends_on=[engine.container],
        )

    def _adminer(
        self, name: str, scope: str, plan: AdminerPlan, network: docker.Network
    ) -> docker.Container:
        child = f"{name}-adminer"
        return self._container(
            child,
            scope=scope,
            role=conventions.ROLE_ADMINER,
            name=plan.service.container_name,
            image=self._image(child, plan.service.image),
            healthcheck=[
                "CMD",
                "php",
                "-r",
                f"exit(@file_get_contents('http://127.0.0.1:{ADMINER_PORT}') === false ? 1 : 0);",
            ],
            envs=[f"ADMINER_DEFAULT_SERVER={plan.default_server}"],
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(name=network.name, ipv4_address=plan.address)
            ],
            ports=[_published(ADMINER_PORT, plan.service)],
        )


def _published(internal: int, service: ServicePlan) -> docker.ContainerPortArgs:
    """A service's port published on the host address and port its settings name."""
    return published_port(internal, service.host_ip, service.host_port)
