"""Monitoring: Prometheus with the cluster's alert rules, and the PostgreSQL exporter's
credentials in every member (the exporter itself runs beside Patroni, images/patroni/pc-exporter)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from .. import conventions
from ..plan import render
from ..plan.monitoring import CONFIG_FILE, RULES_FILE, MonitoringPlan, PrometheusPlan
from .container_options import ContainerOptions, published_port
from .data_volume import data_volume
from .patroni_citus_group import DeployedMember


@dataclass(frozen=True)
class MonitoringArgs:
    plan: MonitoringPlan
    network: docker.Network
    image: pulumi.Input[str]
    credentials: pulumi.Output[render.Credentials]
    members: Sequence[DeployedMember]
    # The monitoring role exists (and has its new password) before an exporter uses it.
    service_roles: command.local.Command
    container_options: ContainerOptions
    # How the local commands reach the engines (ClusterPlan.run_env).
    run_env: Optional[Mapping[str, str]]
    # cadvisor's internal network, when there is one: Prometheus scrapes it there.
    metrics_network: Optional[docker.Network] = None


class Monitoring(pulumi.ComponentResource):
    """Per member, the exporter's credentials written into the running container (secret stdin,
    mode 0600) once the monitoring role exists: after the service roles, so on a password
    rotation the role changes first. One Prometheus from the project image on the cluster
    network (and on cadvisor's metrics network when there is one), as its own user without
    capabilities, its data on a retained volume."""

    url: pulumi.Output[str]

    def __init__(
        self, name: str, args: MonitoringArgs, opts: Optional[pulumi.ResourceOptions] = None
    ):
        super().__init__("patroni-citus:index:Monitoring", name, None, opts)
        plan = args.plan
        files: pulumi.Output[str] = pulumi.Output.secret(
            args.credentials.apply(plan.exporter_files)
        )
        members = {m.name: m for m in args.members}
        self.exporters = [
            command.local.Command(
                f"{name}-{exporter.member}-exporter",
                create=exporter.write_command,
                delete=exporter.remove_command,
                stdin=files,
                # A new container gets the files again.
                triggers=[members[exporter.member].container.id],
                environment=args.run_env,
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[args.service_roles, members[exporter.member].ready]
                ),
            )
            for exporter in plan.exporters
        ]
        self.container = self._prometheus(f"{name}-prometheus", plan.prometheus, args)
        self.url = pulumi.Output.from_input(plan.prometheus.url)
        self.register_outputs({"url": self.url})

    def _prometheus(
        self, child: str, prometheus: PrometheusPlan, args: MonitoringArgs
    ) -> docker.Container:
        volume = data_volume(f"{child}-data", prometheus.volume, parent=self)
        networks = [
            docker.ContainerNetworksAdvancedArgs(
                name=args.network.name, ipv4_address=prometheus.address
            )
        ]
        if args.metrics_network is not None:
            networks.append(docker.ContainerNetworksAdvancedArgs(name=args.metrics_network.name))
        port = conventions.PROMETHEUS_PORT
        return args.container_options.container(
            child,
            parent=self,
            scope=args.plan.scope,
            role=conventions.ROLE_PROMETHEUS,
            name=prometheus.container_name,
            image=args.image,
            healthcheck=conventions.http_healthcheck(f"http://127.0.0.1:{port}/-/ready"),
            # A writable root: pulumi-docker extracts uploads at `/` (terraform-provider-docker
            # CopyToContainer), which Docker refuses on a read-only root filesystem.
            locked_down=True,
            writable_root=True,
            user=f"{conventions.PROMETHEUS_UID}:{conventions.PROMETHEUS_GID}",
            command=list(prometheus.command),
            labels={"data_path": conventions.PROMETHEUS_DATA_MOUNT},
            # The configuration changes by replacing the container (an upload changes it): no
            # --web.enable-lifecycle, and the data volume keeps the history.
            uploads=[
                docker.ContainerUploadArgs(file=CONFIG_FILE, content=prometheus.config),
                docker.ContainerUploadArgs(file=RULES_FILE, content=prometheus.rules),
            ],
            volumes=[
                docker.ContainerVolumeArgs(
                    volume_name=volume.name, container_path=conventions.PROMETHEUS_DATA_MOUNT
                ),
            ],
            networks_advanced=networks,
            ports=[published_port(port, prometheus.host_ip, prometheus.host_port)],
        )
