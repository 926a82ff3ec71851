"""The observability services' plan: fluentd, cadvisor and adminer, each optional."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .. import conventions
from ..config import ServiceSettings, Settings
from .volumes import VolumePlan, volume_plan

FLUENTD_PORT = 24224
FLUENTD_LOG_DIR = "/fluentd/log"  # on the fluentd volume
ADMINER_PORT = 8080


@dataclass(frozen=True)
class ServicePlan:
    """A pinned upstream image published on a host address."""

    container_name: str
    image: str
    host_ip: str
    host_port: int

    @property
    def host_address(self) -> str:
        return f"{self.host_ip}:{self.host_port}"


@dataclass(frozen=True)
class FluentdPlan:
    service: ServicePlan
    volume: VolumePlan


@dataclass(frozen=True)
class CadvisorPlan:
    service: ServicePlan
    # Where Prometheus scrapes it, when monitoring is on: an internal network of their own.
    metrics_network: Optional[str]


@dataclass(frozen=True)
class AdminerPlan:
    service: ServicePlan
    address: str  # on the cluster network
    default_server: str


@dataclass(frozen=True)
class ObservabilityPlan:
    scope: str
    fluentd: Optional[FluentdPlan]
    cadvisor: Optional[CadvisorPlan]
    adminer: Optional[AdminerPlan]


def plan_observability(settings: Settings) -> ObservabilityPlan:
    obs = settings.observability
    scope = settings.cluster.scope

    def service(role: str, config: ServiceSettings) -> ServicePlan:
        return ServicePlan(f"{scope}-{role}", config.image, config.host_ip, config.host_port)

    fluentd = cadvisor = adminer = None
    if obs.active("fluentd"):
        volume = volume_plan(settings, f"{scope}-fluentd-data", conventions.ROLE_FLUENTD)
        fluentd = FluentdPlan(service("fluentd", obs.fluentd), volume)
    if obs.active("cadvisor"):
        metrics = f"{scope}-metrics" if settings.monitoring.enabled else None
        cadvisor = CadvisorPlan(service("cadvisor", obs.cadvisor), metrics)
    if obs.active("adminer"):
        adminer = AdminerPlan(
            service("adminer", obs.adminer),
            address=str(settings.adminer_address),
            # Adminer takes one server: the VIP, or else the first coordinator member.
            default_server=settings.coordinator_hosts[0],
        )
    return ObservabilityPlan(scope, fluentd, cadvisor, adminer)
