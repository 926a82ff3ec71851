"""What every long-running container of the deployment shares, written once: restart policy,
healthcheck timing, labels, the NET_RAW drop, delete-before-replace and, when observability is
on, the logging driver and the wait for fluentd."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import pulumi
import pulumi_docker as docker

from .. import conventions
from .labels import docker_labels


@dataclass(frozen=True)
class ContainerOptions:
    log_driver: Optional[str] = None
    log_opts: Mapping[str, str] = field(default_factory=dict)
    health_interval: str = "5s"
    health_timeout: str = "3s"
    health_retries: int = 3
    health_start_period: str = "30s"
    # Resources every cluster container waits for (fluentd, when logs go there).
    depends_on: tuple[pulumi.Resource, ...] = ()

    def container(
        self,
        resource_name: str,
        *,
        parent: pulumi.Resource,
        scope: str,
        role: conventions.Role,
        name: str,
        image: pulumi.Input[str],
        healthcheck: Sequence[str],
        labels: Optional[Mapping[str, object]] = None,
        capabilities: Optional[docker.ContainerCapabilitiesArgs] = None,
        locked_down: bool = False,
        writable_root: bool = False,
        depends_on: Sequence[pulumi.Resource] = (),
        provider: Optional[pulumi.ProviderResource] = None,
        **args: Any,
    ) -> docker.Container:
        """A docker.Container named `name` with the shared arguments; `labels` takes
        docker_labels' short names (member=, group=, ...), `args` the container's own
        (command, volumes, networks, ...); `provider` the engine it runs on, when not the
        default or inherited one. `locked_down` is for a container that needs no
        capability: every capability dropped, no-new-privileges and a read-only root
        filesystem, unless `writable_root` (uploads, which Docker refuses on a read-only root,
        or files that must survive a restart)."""
        if writable_root and not locked_down:
            raise ValueError(f"{resource_name}: writable_root applies to a locked-down container")
        if locked_down:
            if capabilities is not None:
                raise ValueError(f"{resource_name}: a locked-down container takes no capabilities")
            capabilities = docker.ContainerCapabilitiesArgs(drops=["ALL"])
            args.update(security_opts=["no-new-privileges:true"])
            if not writable_root:
                args.update(read_only=True)
        return docker.Container(
            resource_name,
            name=name,
            image=image,
            labels=docker_labels(scope, role, **(labels or {})),
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=list(healthcheck),
                interval=self.health_interval,
                timeout=self.health_timeout,
                retries=self.health_retries,
                start_period=self.health_start_period,
            ),
            restart="unless-stopped",
            # Docker grants NET_RAW by default; only vip-manager sidecars need it (they pass
            # their own capabilities).
            capabilities=capabilities or docker.ContainerCapabilitiesArgs(drops=["NET_RAW"]),
            **self._logging(name),
            **args,
            # Fixed container names: the old container must go before its replacement starts.
            opts=pulumi.ResourceOptions(
                parent=parent,
                depends_on=[*depends_on, *self.depends_on],
                delete_before_replace=True,
                provider=provider,
            ),
        )

    def fingerprint(self) -> dict[str, Any]:
        """The shared arguments as plain data, for a container's revision hash."""
        return {
            "log_driver": self.log_driver,
            "log_opts": dict(self.log_opts),
            "health": [
                self.health_interval,
                self.health_timeout,
                self.health_retries,
                self.health_start_period,
            ],
        }

    def _logging(self, container_name: str) -> dict[str, Any]:
        """Keyword arguments for docker.Container: empty when logs stay with Docker's default."""
        if self.log_driver is None:
            return {}
        return {"log_driver": self.log_driver, "log_opts": {**self.log_opts, "tag": container_name}}


def published_port(internal: int, host_ip: str, external: int) -> docker.ContainerPortArgs:
    """A container's TCP port published on the host at `host_ip:external`."""
    return docker.ContainerPortArgs(
        internal=internal, external=external, ip=host_ip, protocol="tcp"
    )
