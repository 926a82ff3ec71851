"""What every long-running container of the cluster shares: healthcheck timing and, when
observability is on, the logging driver."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

import pulumi
import pulumi_docker as docker


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

    def healthcheck(self, test: list[str]) -> docker.ContainerHealthcheckArgs:
        return docker.ContainerHealthcheckArgs(
            tests=test, interval=self.health_interval, timeout=self.health_timeout,
            retries=self.health_retries, start_period=self.health_start_period)

    @staticmethod
    def no_raw_sockets() -> docker.ContainerCapabilitiesArgs:
        """Docker grants NET_RAW by default; only vip-manager sidecars need it."""
        return docker.ContainerCapabilitiesArgs(drops=["NET_RAW"])

    def logging(self, container_name: str) -> dict:
        """Keyword arguments for docker.Container: empty when logs stay with Docker's default."""
        if self.log_driver is None:
            return {}
        return {"log_driver": self.log_driver,
                "log_opts": {**self.log_opts, "tag": container_name}}
