"""The whole stack's plan: every feature's record, once, from the validated settings. The
resources declare what it says; a feature that is off has no record (None)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Mapping, Optional, TypeVar

from ..config import HostSettings, Passwords, Settings
from . import endpoints, monitoring, render
from .backups import BackupsPlan, plan_backups
from .endpoints import EndpointsPlan, PoolerPlan, plan_endpoints, plan_pooler
from .engine_proxy import CrashWatcherPlan, EngineProxyPlan, plan_crash_watcher, plan_engine_proxy
from .etcd import EtcdPlan, plan_etcd
from .members import GroupPlan, plan_groups
from .monitoring import MonitoringPlan, plan_monitoring
from .observability import ObservabilityPlan, plan_observability
from .render import Credentials
from .vip import VipPlan, plan_vip

LEADERS_TIMEOUT_S = 300
PASSWORDS_TIMEOUT_S = 300
OVERLAY_RELEASE_TIMEOUT_S = 120

Plan = TypeVar("Plan")


@dataclass(frozen=True)
class EnginesPlan:
    """The engines (none configured: the default one) and the image built on each."""

    hosts: HostSettings
    image_name: str
    image_target: str  # the Dockerfile stage: the image flavour
    build_args: Mapping[str, str]


@dataclass(frozen=True)
class NetworkPlan:
    name: str
    # Several engines share an overlay network of their Swarm; attachable, so the program's
    # plain containers (not Swarm services) join it with fixed addresses.
    overlay: bool
    subnet: str
    gateway: str
    labels: Mapping[str, object]
    # With a Swarm: deleted after every container, before the network (docs, several hosts).
    release_command: Optional[str]
    release_environment: Optional[Mapping[str, str]]


@dataclass(frozen=True)
class CredentialsPlan:
    """Passwords supplied as secrets (None: generated) and which service roles exist."""

    supplied: Passwords
    pooled: bool
    monitored: bool
    # Before every member: a new password must be the role's before a standby reconnects.
    set_command: str


@dataclass(frozen=True)
class ServiceRolesPlan:
    """The roles the service layer logs in as: created once every member is ready, changed
    before anything that uses a role is reconfigured."""

    command: str
    roles: Callable[[Credentials], dict[str, dict[str, Any]]]


@dataclass(frozen=True)
class ClusterOutputs:
    vip: Optional[str]
    coordinator: Mapping[str, Any]
    dcs: Mapping[str, Any]  # what an operator's tool needs to read the state from etcd
    citus: bool
    members: Mapping[str, Any]
    prometheus_targets: list[dict[str, Any]]


@dataclass(frozen=True)
class ClusterPlan:
    scope: str
    run_env: Optional[Mapping[str, str]]  # how local commands reach the engines
    engines: EnginesPlan
    network: NetworkPlan
    credentials: CredentialsPlan
    etcd: EtcdPlan
    groups: tuple[GroupPlan, ...]
    observability: ObservabilityPlan
    group_leaders_command: str
    outputs: ClusterOutputs
    # Optional features: None when off.
    engine_proxy: Optional[EngineProxyPlan]
    backups: Optional[BackupsPlan]
    vip: Optional[VipPlan]
    crash_watcher: Optional[CrashWatcherPlan]
    service_roles: Optional[ServiceRolesPlan]
    endpoints: Optional[EndpointsPlan]
    pooler: Optional[PoolerPlan]
    monitoring: Optional[MonitoringPlan]


def plan_cluster(settings: Settings) -> ClusterPlan:
    def when(enabled: bool, plan: Callable[[Settings], Plan]) -> Optional[Plan]:
        return plan(settings) if enabled else None

    services_on = settings.pooler.enabled or settings.monitoring.enabled
    return ClusterPlan(
        scope=settings.cluster.scope,
        run_env=render.engines_environment(settings),
        engines=_engines(settings),
        network=_network(settings),
        credentials=CredentialsPlan(
            supplied=settings.passwords,
            pooled=settings.pooler.enabled,
            monitored=settings.monitoring.enabled,
            set_command=render.passwords_command(settings, PASSWORDS_TIMEOUT_S),
        ),
        etcd=plan_etcd(settings),
        groups=plan_groups(settings),
        observability=plan_observability(settings),
        group_leaders_command=render.group_leaders_command(
            settings, [m.name for m in settings.groups[0].members], LEADERS_TIMEOUT_S
        ),
        outputs=_outputs(settings),
        engine_proxy=when(settings.engine_proxy_needed, plan_engine_proxy),
        backups=when(settings.backups.enabled, plan_backups),
        vip=when(settings.vip.enabled, plan_vip),
        crash_watcher=when(settings.crash_watcher.enabled, plan_crash_watcher),
        service_roles=when(services_on, _service_roles),
        endpoints=when(settings.endpoints.enabled, plan_endpoints),
        pooler=when(settings.pooler.enabled, plan_pooler),
        monitoring=when(settings.monitoring.enabled, plan_monitoring),
    )


def _engines(settings: Settings) -> EnginesPlan:
    return EnginesPlan(
        hosts=settings.hosts,
        image_name=settings.image.name,
        image_target=settings.image.flavour,
        build_args=render.image_build_args(settings),
    )


def _network(settings: Settings) -> NetworkPlan:
    labels: dict[str, object] = {"member_range": settings.network.member_range}
    if settings.vip.enabled:
        labels["vip"] = settings.vip.address
    manager = settings.hosts.manager
    return NetworkPlan(
        name=settings.network.name,
        overlay=settings.hosts.several,
        subnet=str(settings.network.subnet),
        gateway=str(settings.network.gateway),
        labels=labels,
        release_command=(
            render.overlay_release_command(settings, OVERLAY_RELEASE_TIMEOUT_S)
            if manager is not None
            else None
        ),
        release_environment=manager.cli_environment() if manager is not None else None,
    )


def _service_roles(settings: Settings) -> ServiceRolesPlan:
    return ServiceRolesPlan(
        command=render.service_roles_command(settings, PASSWORDS_TIMEOUT_S),
        roles=partial(render.service_roles, settings),
    )


def _outputs(settings: Settings) -> ClusterOutputs:
    return ClusterOutputs(
        vip=str(settings.vip.address) if settings.vip.enabled else None,
        coordinator=endpoints.coordinator_outputs(settings),
        dcs={
            "api": settings.etcd.api,
            "prefix": settings.dcs_prefix,
            "leaderKeys": {str(g.number): settings.leader_key(g.number) for g in settings.groups},
        },
        citus=settings.citus.enabled,
        members={
            str(g.number): [{"name": m.name, "address": str(m.address)} for m in g.members]
            for g in settings.groups
        },
        prometheus_targets=monitoring.prometheus_targets(settings),
    )
