"""PatroniCitusCluster: the whole deployment of one stack, composed from the other components."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable, Optional

import pulumi
import pulumi_command as command
import pulumi_docker as docker
import pulumi_random as random

from ..config import Settings
from ..plan import endpoints as render_endpoints
from ..plan import monitoring as render_monitoring
from ..plan import render
from .backups import Backups
from .crash_watcher import CrashWatcher
from .endpoints import Endpoints
from .engine_proxy import EngineProxy
from .engines import Engines
from .etcd_cluster import EtcdCluster
from .labels import docker_labels
from .monitoring import Monitoring
from .observability import Observability
from .patroni_citus_group import PatroniCitusGroup
from .pooler import Pooler
from .vip_manager import VipManager

LEADERS_TIMEOUT_S = 300
PASSWORDS_TIMEOUT_S = 300
OVERLAY_RELEASE_TIMEOUT_S = 120


class PatroniCitusCluster(pulumi.ComponentResource):
    """Image, network, passwords, etcd, every Patroni group, the VIP, and the leaders probe."""

    vip: pulumi.Output[Optional[str]]
    coordinator: pulumi.Output[dict[str, Any]]
    coordinator_password: pulumi.Output[str]
    etcd_endpoints: pulumi.Output[list[str]]
    dcs: pulumi.Output[dict[str, Any]]
    citus: pulumi.Output[bool]
    members: pulumi.Output[dict[str, Any]]
    group_leaders: pulumi.Output[dict[str, Any]]
    observability: Observability
    prometheus_targets: pulumi.Output[list[dict[str, Any]]]
    endpoints: pulumi.Output[Optional[dict[str, Any]]]
    pooler: pulumi.Output[Optional[dict[str, Any]]]
    application_password: pulumi.Output[Optional[str]]
    prometheus_url: pulumi.Output[Optional[str]]

    def __init__(
        self, name: str, settings: Settings, opts: Optional[pulumi.ResourceOptions] = None
    ):
        super().__init__("patroni-citus:index:PatroniCitusCluster", name, None, opts)
        scope = settings.cluster.scope

        engines = Engines(name, settings, parent=self)
        # A one-engine stack's children all go to its engine; with several, each container
        # names its engine's provider.
        child = pulumi.ResourceOptions(parent=self, providers=engines.inherited)
        run_env = render.engines_environment(settings)

        network_labels: dict[str, object] = {"member_range": settings.network.member_range}
        if settings.vip.enabled:
            network_labels["vip"] = settings.vip.address
        network = docker.Network(
            f"{name}-net",
            name=settings.network.name,
            # Several engines share an overlay network of their Swarm; attachable, so the
            # program's plain containers (not Swarm services) join it with fixed addresses.
            driver="overlay" if engines.several else "bridge",
            attachable=True if engines.several else None,
            ipam_configs=[
                docker.NetworkIpamConfigArgs(
                    subnet=str(settings.network.subnet), gateway=str(settings.network.gateway)
                )
            ],
            labels=docker_labels(scope, None, **network_labels),
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(provider=engines.network_provider)
            ),
        )

        credentials = self._credentials(name, settings, child)

        engine: Optional[EngineProxy] = None
        if settings.engine_proxy_needed:
            engine = EngineProxy(
                f"{name}-engine", settings, engines.only_image, network, opts=child
            )

        # Declared before every other container: with observability on, they log to fluentd.
        self.observability = Observability(
            f"{name}-observability", settings, network, engine, opts=child
        )
        container_options = self.observability.container_options
        manager = settings.hosts.manager
        if manager is not None:
            # Deleted after every container, before the network (README, "Several hosts").
            release = command.local.Command(
                f"{name}-net-release",
                create="true",
                delete=render.overlay_release_command(settings, OVERLAY_RELEASE_TIMEOUT_S),
                environment=manager.cli_environment(),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[network]),
            )
            container_options = dataclasses.replace(
                container_options, depends_on=(*container_options.depends_on, release)
            )

        etcd = EtcdCluster(
            f"{name}-etcd",
            settings,
            network,
            self._etcd_images(name, settings, engines, child),
            engines,
            container_options=container_options,
            opts=child,
        )

        # Before every member (so on the first `up` before any container exists, and on a
        # rotation before any member's files change): a new password must be the role's
        # before a standby reconnects with it (scripts/member_config.py passwords).
        def password_environment(c: render.Credentials) -> dict[str, str]:
            return {
                **(run_env or {}),
                "PC_SUPERUSER_PASSWORD": c.superuser,
                "PC_REPLICATION_PASSWORD": c.replication,
            }

        environment: pulumi.Output[dict[str, str]] = pulumi.Output.secret(
            credentials.apply(password_environment)
        )
        passwords = command.local.Command(
            f"{name}-passwords",
            create=render.passwords_command(settings, PASSWORDS_TIMEOUT_S),
            environment=environment,
            opts=pulumi.ResourceOptions(parent=self, depends_on=etcd.ready),
        )

        # Before the members, which mount its repository.
        self.backups: Optional[Backups] = None
        if settings.backups.enabled:
            self.backups = Backups(
                f"{name}-backups",
                settings,
                network,
                engines.only_image,
                container_options=container_options,
                opts=child,
            )
        repository = self.backups.repository if self.backups is not None else None

        groups: list[PatroniCitusGroup] = []
        for group in settings.groups:
            # One group after the other: a rolling change never waits on more members at once
            # than `pulumi up --parallel` (4 x CPUs by default) can run.
            before = [m.ready for m in groups[-1].deployed_members] if groups else []
            groups.append(
                PatroniCitusGroup(
                    f"{name}-{group.label}",
                    settings,
                    group,
                    network,
                    engines,
                    credentials,
                    container_options=container_options,
                    depends_on=[*etcd.containers, *etcd.ready, passwords, *before],
                    coordinator=groups[0].deployed_members if groups else (),
                    backup_repository=repository,
                    opts=child,
                )
            )

        sidecars: list[docker.Container] = []
        if settings.vip.enabled:
            vip = VipManager(
                f"{name}-vip",
                settings,
                groups[settings.vip.group].deployed_members,
                engines.only_image,
                container_options=container_options,
                depends_on=etcd.containers,
                opts=child,
            )
            sidecars = vip.containers

        if settings.crash_watcher.enabled:
            assert engine is not None  # settings.engine_proxy_needed
            CrashWatcher(
                f"{name}-crash-watcher",
                settings,
                network,
                engine,
                engines.only_image,
                container_options=container_options,
                depends_on=etcd.containers,
                opts=child,
            )

        deployed = [m for g in groups for m in g.deployed_members]
        # What the service layer logs in as: created once every member is ready, changed
        # before anything that uses a role is reconfigured.
        self.service_roles: Optional[command.local.Command] = None
        if settings.pooler.enabled or settings.monitoring.enabled:

            def roles_environment(c: render.Credentials) -> dict[str, str]:
                roles = json.dumps(render.service_roles(settings, c))
                return {**(run_env or {}), "PC_SERVICE_ROLES": roles}

            roles_env: pulumi.Output[dict[str, str]] = pulumi.Output.secret(
                credentials.apply(roles_environment)
            )
            self.service_roles = command.local.Command(
                f"{name}-service-roles",
                create=render.service_roles_command(settings, PASSWORDS_TIMEOUT_S),
                environment=roles_env,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[m.ready for m in deployed]),
            )
        endpoints: Optional[Endpoints] = None
        if settings.endpoints.enabled:
            endpoints = Endpoints(
                f"{name}-endpoints",
                settings,
                network,
                engines,
                container_options=container_options,
                opts=child,
            )
        pooler: Optional[Pooler] = None
        if settings.pooler.enabled:
            # The settings refuse a pooler without endpoints; roles exist whenever it is on.
            assert endpoints is not None and self.service_roles is not None
            pooler = Pooler(
                f"{name}-pooler",
                settings,
                network,
                engines.only_image,
                credentials,
                endpoints.containers,
                self.service_roles,
                container_options=container_options,
                opts=child,
            )
        self.monitoring: Optional[Monitoring] = None
        if settings.monitoring.enabled:
            assert self.service_roles is not None  # created with monitoring on
            self.monitoring = Monitoring(
                f"{name}-monitoring",
                settings,
                network,
                engines.only_image,
                credentials,
                deployed,
                self.service_roles,
                container_options=container_options,
                metrics_network=self.observability.metrics_network,
                opts=child,
            )
        patroni_containers = [m.container for m in deployed]
        probe = command.local.Command(
            f"{name}-group-leaders",
            create=render.group_leaders_command(
                settings, [m.name for m in groups[0].deployed_members], LEADERS_TIMEOUT_S
            ),
            # Asked again whenever a member is replaced.
            triggers=[c.id for c in patroni_containers],
            environment=run_env,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[*(m.ready for m in deployed), *sidecars]
            ),
        )

        self.vip = pulumi.Output.from_input(
            str(settings.vip.address) if settings.vip.enabled else None
        )
        self.coordinator = pulumi.Output.from_input(render_endpoints.coordinator_outputs(settings))
        self.coordinator_password = pulumi.Output.secret(credentials.apply(lambda c: c.superuser))
        self.etcd_endpoints = etcd.client_endpoints
        # What an operator's tool needs to read the cluster's state from etcd itself.
        self.dcs = pulumi.Output.from_input(
            {
                "api": settings.etcd.api,
                "prefix": settings.dcs_prefix,
                "leaderKeys": {
                    str(g.number): settings.leader_key(g.number) for g in settings.groups
                },
            }
        )
        self.citus = pulumi.Output.from_input(settings.citus.enabled)
        self.members = pulumi.Output.from_input(
            {
                str(g.number): [{"name": m.name, "address": str(m.address)} for m in g.members]
                for g in settings.groups
            }
        )
        self.group_leaders = probe.stdout.apply(json.loads)
        self.prometheus_targets = pulumi.Output.from_input(
            render_monitoring.prometheus_targets(settings)
        )
        self.prometheus_url = (
            self.monitoring.url if self.monitoring else pulumi.Output.from_input(None)
        )
        self.endpoints = (
            pulumi.Output.all(endpoints.read_write, endpoints.read_only).apply(
                lambda rw_ro: {"readWrite": rw_ro[0], "readOnly": rw_ro[1]}
            )
            if endpoints is not None
            else pulumi.Output.from_input(None)
        )
        self.pooler = pooler.endpoint if pooler is not None else pulumi.Output.from_input(None)
        # The pooled clients' role's password; null when the pooler is off.
        self.application_password = pulumi.Output.secret(
            credentials.apply(lambda c: c.application or None)
        )
        self.register_outputs(
            {
                "endpoints": self.endpoints,
                "pooler": self.pooler,
                "application_password": self.application_password,
                "vip": self.vip,
                "coordinator": self.coordinator,
                "coordinator_password": self.coordinator_password,
                "etcd_endpoints": self.etcd_endpoints,
                "dcs": self.dcs,
                "citus": self.citus,
                "members": self.members,
                "group_leaders": self.group_leaders,
                "prometheus_targets": self.prometheus_targets,
                "prometheus_url": self.prometheus_url,
            }
        )

    @staticmethod
    def _etcd_images(
        name: str, settings: Settings, engines: Engines, opts: pulumi.ResourceOptions
    ) -> Callable[[str], pulumi.Input[str]]:
        """Each etcd member's image: the project image of its engine, or etcd.image pulled
        onto every engine that runs a member."""
        if settings.etcd.image is None:
            return engines.image_of
        pulled: dict[Optional[str], pulumi.Output[str]] = {}
        for member in settings.etcd_members:
            host = engines.host_of(member.name)
            if host not in pulled:
                pulled[host] = docker.RemoteImage(
                    f"{name}-etcd-image" if not engines.several else f"{name}-etcd-image-{host}",
                    name=settings.etcd.image,
                    keep_locally=True,
                    opts=pulumi.ResourceOptions.merge(
                        opts, pulumi.ResourceOptions(provider=engines.provider(host))
                    ),
                ).image_id
        return lambda container: pulled[engines.host_of(container)]

    @staticmethod
    def _credentials(
        name: str, settings: Settings, opts: pulumi.ResourceOptions
    ) -> pulumi.Output[render.Credentials]:
        def password(key: str, supplied: Optional[str]) -> pulumi.Output[str]:
            if supplied is not None:
                return pulumi.Output.secret(supplied)
            return random.RandomPassword(
                f"{name}-{key}-password", length=32, special=False, opts=opts
            ).result

        def service_password(key: str, supplied: Optional[str], used: bool) -> pulumi.Output[str]:
            return password(key, supplied) if used else pulumi.Output.from_input("")

        passwords = settings.passwords
        pooled = settings.pooler.enabled
        return pulumi.Output.all(
            password("superuser", passwords.superuser),
            password("replication", passwords.replication),
            password("rest-api", passwords.rest_api),
            service_password("application", passwords.application, pooled),
            service_password("pooler-auth", passwords.pooler_auth, pooled),
            service_password("monitoring", passwords.monitoring, settings.monitoring.enabled),
        ).apply(lambda values: render.Credentials(*values))
