"""Monitoring: Prometheus with the cluster's alert rules, and the PostgreSQL exporter's
credentials in every member (the exporter itself runs beside Patroni, images/patroni/pc-exporter)."""

from __future__ import annotations

from typing import Optional, Sequence

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from .. import conventions
from ..config import Settings
from ..plan import monitoring as render_monitoring
from ..plan import render
from .container_options import ContainerOptions, published_port
from .data_volume import data_volume
from .patroni_citus_group import DeployedMember

# Bounds the writing of a member's exporter credentials (the member is ready by then).
EXPORTER_TIMEOUT_S = 120


class Monitoring(pulumi.ComponentResource):
    """Per member, the exporter's credentials written into the running container (secret stdin,
    mode 0600) once the monitoring role exists: after the service roles, so on a password
    rotation the role changes first. One Prometheus from the project image on the cluster
    network (and on cadvisor's metrics network when there is one), as its own user without
    capabilities, its data on a retained volume."""

    url: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        settings: Settings,
        network: docker.Network,
        image: pulumi.Input[str],
        credentials: pulumi.Output[render.Credentials],
        members: Sequence[DeployedMember],
        service_roles: command.local.Command,
        *,
        container_options: ContainerOptions,
        metrics_network: Optional[docker.Network] = None,
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("patroni-citus:index:Monitoring", name, None, opts)
        monitoring = settings.monitoring
        scope = settings.cluster.scope

        files: pulumi.Output[str] = pulumi.Output.secret(
            credentials.apply(lambda c: render_monitoring.exporter_files(settings, c))
        )
        paths = [
            conventions.POSTGRES_EXPORTER_USER_PATH,
            conventions.POSTGRES_EXPORTER_PASSWORD_PATH,
        ]
        self.exporters = [
            command.local.Command(
                f"{name}-{member.name}-exporter",
                create=render.member_write_command(
                    member.name, EXPORTER_TIMEOUT_S, files_only=True
                ),
                # Monitoring switched off: pc-exporter stops the exporter once they are gone.
                delete=render.member_remove_command(member.name, paths),
                stdin=files,
                # A new container gets the files again.
                triggers=[member.container.id],
                environment=render.engines_environment(settings),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[service_roles, member.ready]),
            )
            for member in members
        ]

        child = f"{name}-prometheus"
        volume = data_volume(
            f"{child}-data",
            f"{scope}-prometheus-data",
            settings,
            conventions.ROLE_PROMETHEUS,
            parent=self,
        )
        networks = [
            docker.ContainerNetworksAdvancedArgs(
                name=network.name, ipv4_address=str(settings.service_address("prometheus"))
            )
        ]
        if metrics_network is not None:
            networks.append(docker.ContainerNetworksAdvancedArgs(name=metrics_network.name))
        port = conventions.PROMETHEUS_PORT
        self.container = container_options.container(
            child,
            parent=self,
            scope=scope,
            role=conventions.ROLE_PROMETHEUS,
            name=f"{scope}-prometheus",
            image=image,
            healthcheck=conventions.http_healthcheck(f"http://127.0.0.1:{port}/-/ready"),
            # A writable root: pulumi-docker extracts uploads at `/` (terraform-provider-docker
            # CopyToContainer), which Docker refuses on a read-only root filesystem.
            locked_down=True,
            writable_root=True,
            user=f"{conventions.PROMETHEUS_UID}:{conventions.PROMETHEUS_GID}",
            command=render_monitoring.prometheus_command(settings),
            labels={"data_path": conventions.PROMETHEUS_DATA_MOUNT},
            # The configuration changes by replacing the container (an upload changes it):
            # no --web.enable-lifecycle, and the data volume keeps the history.
            uploads=[
                docker.ContainerUploadArgs(
                    file=render_monitoring.CONFIG_FILE,
                    content=render.to_yaml(render_monitoring.prometheus_config(settings)),
                ),
                docker.ContainerUploadArgs(
                    file=render_monitoring.RULES_FILE,
                    content=render.to_yaml(render_monitoring.alert_rules(settings)),
                ),
            ],
            volumes=[
                docker.ContainerVolumeArgs(
                    volume_name=volume.name, container_path=conventions.PROMETHEUS_DATA_MOUNT
                ),
            ],
            networks_advanced=networks,
            ports=[published_port(port, monitoring.host_ip, monitoring.host_port)],
        )
        self.url = pulumi.Output.from_input(f"http://{monitoring.host_ip}:{monitoring.host_port}")
        self.register_outputs({"url": self.url})
