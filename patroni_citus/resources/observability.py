"""Observability: cadvisor metrics, a fluentd log pipeline for every cluster container, and
the optional adminer SQL console."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pulumi
import pulumi_docker as docker

from .. import conventions
from ..config import ServiceSettings, Settings
from .container_options import ContainerOptions, published_port
from .data_volume import data_volume
from .engine_proxy import EngineProxy
from .labels import docker_labels

FLUENTD_CONF = Path(__file__).resolve().parents[2] / "images" / "fluentd" / "fluent.conf"
FLUENTD_PORT = 24224
FLUENTD_LOG_DIR = "/fluentd/log"  # on the fluentd volume
ADMINER_PORT = 8080
# The services' own options: the default healthcheck timing, never fluentd logging.
SERVICE_OPTIONS = ContainerOptions()


class Observability(pulumi.ComponentResource):
    """Declared before the cluster's containers: they log to its fluentd."""

    cadvisor_url: pulumi.Output[Optional[str]]
    fluentd_address: pulumi.Output[Optional[str]]
    adminer_url: pulumi.Output[Optional[str]]

    def __init__(
        self,
        name: str,
        settings: Settings,
        network: docker.Network,
        engine: Optional[EngineProxy],
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("patroni-citus:index:Observability", name, None, opts)
        obs = settings.observability
        self.containers: list[docker.Container] = []
        # What the cluster's containers share; logging changes it when fluentd is on.
        self.container_options = ContainerOptions()
        cadvisor_url = fluentd_address = adminer_url = None

        if obs.active("fluentd"):
            fluentd = self._fluentd(name, settings)
            fluentd_address = f"{obs.fluentd.host_ip}:{obs.fluentd.host_port}"
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
        if obs.active("cadvisor"):
            assert engine is not None  # settings.engine_proxy_needed
            if settings.monitoring.enabled:
                self.metrics_network = docker.Network(
                    f"{name}-metrics",
                    name=f"{settings.cluster.scope}-metrics",
                    driver="bridge",
                    internal=True,
                    labels=docker_labels(settings.cluster.scope, None),
                    # A pool Docker picks: after the cluster's network, never over its subnet.
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[network]),
                )
            self._cadvisor(name, settings, engine, self.metrics_network)
            cadvisor_url = f"http://{obs.cadvisor.host_ip}:{obs.cadvisor.host_port}"
        if obs.active("adminer"):
            self._adminer(name, settings, network)
            adminer_url = f"http://{obs.adminer.host_ip}:{obs.adminer.host_port}"

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

    def _fluentd(self, name: str, settings: Settings) -> docker.Container:
        service = settings.observability.fluentd
        scope = settings.cluster.scope
        child = f"{name}-fluentd"
        volume = data_volume(
            f"{child}-data",
            f"{scope}-fluentd-data",
            settings,
            conventions.ROLE_FLUENTD,
            parent=self,
        )
        return self._container(
            child,
            scope=scope,
            role=conventions.ROLE_FLUENTD,
            name=f"{scope}-fluentd",
            image=self._image(child, service.image),
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
            ports=[_published(FLUENTD_PORT, service)],
        )

    def _cadvisor(
        self,
        name: str,
        settings: Settings,
        engine: EngineProxy,
        metrics_network: Optional[docker.Network],
    ) -> docker.Container:
        service = settings.observability.cadvisor
        scope = settings.cluster.scope
        child = f"{name}-cadvisor"
        # Not the usual `/` and `/var/run`: both hold the engine socket. cadvisor asks the
        # engine proxy instead, and finds container layers under /rootfs/var/lib/docker.
        read_only = [
            ("/sys", "/sys"),
            ("/var/lib/docker", "/var/lib/docker"),
            ("/var/lib/docker", "/rootfs/var/lib/docker"),
        ]
        return self._container(
            child,
            scope=scope,
            role=conventions.ROLE_CADVISOR,
            name=f"{scope}-cadvisor",
            image=self._image(child, service.image),
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
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(name=network)
                for network in (
                    engine.network_name,
                    *([metrics_network.name] if metrics_network is not None else []),
                )
            ],
            ports=[_published(conventions.CADVISOR_PORT, service)],
            # cadvisor registers its Docker factory once, at start: the proxy must be up.
            depends_on=[engine.container],
        )

    def _adminer(self, name: str, settings: Settings, network: docker.Network) -> docker.Container:
        service = settings.observability.adminer
        scope = settings.cluster.scope
        child = f"{name}-adminer"
        return self._container(
            child,
            scope=scope,
            role=conventions.ROLE_ADMINER,
            name=f"{scope}-adminer",
            image=self._image(child, service.image),
            healthcheck=[
                "CMD",
                "php",
                "-r",
                f"exit(@file_get_contents('http://127.0.0.1:{ADMINER_PORT}') === false ? 1 : 0);",
            ],
            # Adminer takes one server: the VIP, or else the first coordinator member.
            envs=[f"ADMINER_DEFAULT_SERVER={settings.coordinator_hosts[0]}"],
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(
                    name=network.name, ipv4_address=str(settings.adminer_address)
                )
            ],
            ports=[_published(ADMINER_PORT, service)],
        )


def _published(internal: int, service: ServiceSettings) -> docker.ContainerPortArgs:
    """A service's port published on the host address and port its settings name."""
    return published_port(internal, service.host_ip, service.host_port)
