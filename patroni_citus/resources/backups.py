"""Backups: pgBackRest's repository volume and the exporter of its backups' ages. What runs in
the members (archiving, the schedule, the restore bootstrap) is rendered by
patroni_citus/plan/backups.py; the members mount the repository (PatroniCitusGroup)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_docker as docker

from .. import conventions
from ..plan.backups import EXPORTER_COLLECT_INTERVAL_S, BackupsPlan
from .container_options import ContainerOptions
from .labels import docker_labels


@dataclass(frozen=True)
class BackupsArgs:
    plan: BackupsPlan
    network: docker.Network
    image: pulumi.Input[str]
    container_options: ContainerOptions


class Backups(pulumi.ComponentResource):
    """The repository volume, always retained: it is the copy that outlives the cluster, so
    neither `pulumi destroy` nor volumes.retainOnDelete false deletes it (remove it by hand
    with `docker volume rm` once no cluster needs its backups). A restored cluster declares no
    volume: backups.repositoryVolume names the source's, which its members mount, and it
    archives there to its own stanzas. The exporter reads the repository read-only and serves
    `pgbackrest_backup_since_last_completion_seconds` and the other pgBackRest metrics on
    <scope>-backup-exporter:9854 of the cluster network."""

    repository: pulumi.Output[str]
    exporter_address: pulumi.Output[str]

    def __init__(self, name: str, args: BackupsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("patroni-citus:index:Backups", name, None, opts)
        plan = args.plan
        scope = plan.scope
        repository: pulumi.Input[str] = plan.repository_volume
        self.volume: Optional[docker.Volume] = None
        if plan.creates_repository:
            self.volume = docker.Volume(
                f"{name}-repository",
                name=plan.repository_volume,
                labels=docker_labels(scope, conventions.ROLE_BACKUP_EXPORTER, retain=True),
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
            )
            repository = self.volume.name
        self.repository = pulumi.Output.from_input(repository)

        port = conventions.PGBACKREST_EXPORTER_PORT
        self.exporter = args.container_options.container(
            f"{name}-exporter",
            parent=self,
            scope=scope,
            role=conventions.ROLE_BACKUP_EXPORTER,
            name=plan.exporter_name,
            image=args.image,
            healthcheck=conventions.http_healthcheck(f"http://127.0.0.1:{port}/"),
            labels={"data_path": conventions.PGBACKREST_REPO_MOUNT},
            command=[
                "prometheus-pgbackrest-exporter",
                f"--web.listen-address=:{port}",
                f"--collect.interval={EXPORTER_COLLECT_INTERVAL_S}",
                # Only this cluster's stanzas: a restored cluster shares the repository.
                *(f"--backrest.stanza-include={stanza}" for stanza in plan.stanzas),
                # No configuration file: pgbackrest info takes these from the environment.
                "--backrest.config=/dev/null",
            ],
            envs=[
                f"PGBACKREST_REPO1_PATH={conventions.PGBACKREST_REPO_MOUNT}",
                "PGBACKREST_LOG_LEVEL_FILE=off",
                "PGBACKREST_LOG_LEVEL_CONSOLE=warn",
            ],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network.name)],
            volumes=[
                docker.ContainerVolumeArgs(
                    volume_name=repository,
                    container_path=conventions.PGBACKREST_REPO_MOUNT,
                    read_only=True,
                )
            ],
            user="postgres",
            locked_down=True,
        )
        self.exporter_address = pulumi.Output.from_input(plan.exporter_address)
        self.register_outputs(
            {"repository": self.repository, "exporter_address": self.exporter_address}
        )
