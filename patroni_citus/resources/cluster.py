"""PatroniCitusCluster: the whole deployment of one stack, composed from the other components.

Its constructor is the table of contents: one line per feature, in the order the features
depend on each other, each switched on by its plan; the body of each is its own component."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

import pulumi
import pulumi_command as command
import pulumi_docker as docker
import pulumi_random as random

from ..plan import render
from ..plan.backups import BackupsPlan
from ..plan.cluster import ClusterPlan, CredentialsPlan, NetworkPlan, ServiceRolesPlan
from ..plan.endpoints import EndpointsPlan, PoolerPlan
from ..plan.engine_proxy import CrashWatcherPlan, EngineProxyPlan
from ..plan.monitoring import MonitoringPlan
from ..plan.vip import VipPlan
from .backups import Backups, BackupsArgs
from .container_options import ContainerOptions
from .crash_watcher import CrashWatcher, CrashWatcherArgs
from .endpoints import Endpoints, EndpointsArgs
from .engine_proxy import EngineProxy, EngineProxyArgs
from .engines import Engines
from .etcd_cluster import EtcdCluster, EtcdClusterArgs
from .labels import docker_labels
from .monitoring import Monitoring, MonitoringArgs
from .observability import Observability, ObservabilityArgs
from .patroni_citus_group import DeployedMember, PatroniCitusGroup, PatroniCitusGroupArgs
from .pooler import Pooler, PoolerArgs
from .vip_manager import VipManager, VipManagerArgs


@dataclass(frozen=True)
class PatroniCitusClusterArgs:
    plan: ClusterPlan  # patroni_citus.plan.plan_cluster(settings)


class PatroniCitusCluster(pulumi.ComponentResource):
    """Image, network, passwords, etcd, every Patroni group, the VIP, the service layer, and
    the leaders probe."""

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
        self,
        name: str,
        args: PatroniCitusClusterArgs,
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("patroni-citus:index:PatroniCitusCluster", name, None, opts)
        plan = args.plan
        self._name = name
        self._plan = plan
        self._engines = Engines(name, plan.engines, parent=self)
        # A one-engine stack's children all go to its engine; with several, each container
        # names its engine's provider.
        self._child = pulumi.ResourceOptions(parent=self, providers=self._engines.inherited)

        self._network = self._cluster_network(plan.network)
        self._credentials = self._passwords(plan.credentials)
        engine = self._engine_proxy(plan.engine_proxy) if plan.engine_proxy else None
        # Before every other container: with fluentd on, they log to it.
        self.observability = self._observability(engine)
        self._options = self._container_options(plan.network)
        etcd = self._etcd()
        set_passwords = self._set_passwords(etcd)
        self.backups = self._backups(plan.backups) if plan.backups else None
        groups = self._groups([*etcd.containers, *etcd.ready, set_passwords])
        deployed = [m for g in groups for m in g.deployed_members]
        vip = self._vip(plan.vip, groups, etcd) if plan.vip else None
        if plan.crash_watcher:
            self._crash_watcher(plan.crash_watcher, engine, etcd)
        roles = self._service_roles(plan.service_roles, deployed) if plan.service_roles else None
        self.service_roles = roles
        endpoints = self._endpoints(plan.endpoints) if plan.endpoints else None
        pooler = self._pooler(plan.pooler, endpoints, roles) if plan.pooler else None
        self.monitoring = (
            self._monitoring(plan.monitoring, deployed, roles) if plan.monitoring else None
        )
        probe = self._group_leaders(deployed, vip.containers if vip else [])

        self._outputs(etcd, probe, endpoints, pooler)

    # --- the features, in the order above --------------------------------------------------

    def _cluster_network(self, plan: NetworkPlan) -> docker.Network:
        return docker.Network(
            f"{self._name}-net",
            name=plan.name,
            driver="overlay" if plan.overlay else "bridge",
            attachable=True if plan.overlay else None,
            ipam_configs=[docker.NetworkIpamConfigArgs(subnet=plan.subnet, gateway=plan.gateway)],
            labels=docker_labels(self._plan.scope, None, **plan.labels),
            opts=pulumi.ResourceOptions.merge(
                self._child, pulumi.ResourceOptions(provider=self._engines.network_provider)
            ),
        )

    def _passwords(self, plan: CredentialsPlan) -> pulumi.Output[render.Credentials]:
        """Every password: the supplied secret, or one generated and kept in the state."""

        def password(key: str, supplied: Optional[str], used: bool = True) -> pulumi.Output[str]:
            if not used:
                return pulumi.Output.from_input("")
            if supplied is not None:
                return pulumi.Output.secret(supplied)
            return random.RandomPassword(
                f"{self._name}-{key}-password", length=32, special=False, opts=self._child
            ).result

        given = plan.supplied
        return pulumi.Output.all(
            password("superuser", given.superuser),
            password("replication", given.replication),
            password("rest-api", given.rest_api),
            password("application", given.application, plan.pooled),
            password("pooler-auth", given.pooler_auth, plan.pooled),
            password("monitoring", given.monitoring, plan.monitored),
        ).apply(lambda values: render.Credentials(*values))

    def _engine_proxy(self, plan: EngineProxyPlan) -> EngineProxy:
        return EngineProxy(
            f"{self._name}-engine",
            EngineProxyArgs(plan, self._engines.only_image, self._network),
            opts=self._child,
        )

    def _observability(self, engine: Optional[EngineProxy]) -> Observability:
        return Observability(
            f"{self._name}-observability",
            ObservabilityArgs(self._plan.observability, self._network, engine),
            opts=self._child,
        )

    def _container_options(self, network: NetworkPlan) -> ContainerOptions:
        """What every cluster container shares; with a Swarm, also the wait for the overlay
        network's release command, so it is deleted after every container."""
        options = self.observability.container_options
        if network.release_command is None:
            return options
        release = command.local.Command(
            f"{self._name}-net-release",
            create="true",
            delete=network.release_command,
            environment=network.release_environment,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self._network]),
        )
        return replace(options, depends_on=(*options.depends_on, release))

    def _etcd(self) -> EtcdCluster:
        return EtcdCluster(
            f"{self._name}-etcd",
            EtcdClusterArgs(
                self._plan.etcd,
                self._network,
                self._etcd_images(),
                self._engines,
                self._options,
                self._plan.run_env,
            ),
            opts=self._child,
        )

    def _etcd_images(self) -> Callable[[str], pulumi.Input[str]]:
        """Each etcd member's image: the project image of its engine, or etcd.image pulled
        onto every engine that runs a member."""
        reference = self._plan.etcd.image
        engines = self._engines
        if reference is None:
            return engines.image_of
        pulled: dict[Optional[str], pulumi.Output[str]] = {}
        for member in self._plan.etcd.members:
            host = engines.host_of(member.name)
            if host not in pulled:
                pulled[host] = docker.RemoteImage(
                    f"{self._name}-etcd-image"
                    if not engines.several
                    else f"{self._name}-etcd-image-{host}",
                    name=reference,
                    keep_locally=True,
                    opts=pulumi.ResourceOptions.merge(
                        self._child, pulumi.ResourceOptions(provider=engines.provider(host))
                    ),
                ).image_id
        return lambda container: pulled[engines.host_of(container)]

    def _set_passwords(self, etcd: EtcdCluster) -> command.local.Command:
        """Before every member (so on the first `up` before any container exists, and on a
        rotation before any member's files change): a new password must be the role's before
        a standby reconnects with it (scripts/member_config.py passwords)."""
        run_env = self._plan.run_env

        def environment(c: render.Credentials) -> dict[str, str]:
            return {
                **(run_env or {}),
                "PC_SUPERUSER_PASSWORD": c.superuser,
                "PC_REPLICATION_PASSWORD": c.replication,
            }

        secret_env: pulumi.Output[dict[str, str]] = pulumi.Output.secret(
            self._credentials.apply(environment)
        )
        return command.local.Command(
            f"{self._name}-passwords",
            create=self._plan.credentials.set_command,
            environment=secret_env,
            opts=pulumi.ResourceOptions(parent=self, depends_on=etcd.ready),
        )

    def _backups(self, plan: BackupsPlan) -> Backups:
        """Before the members, which mount its repository."""
        return Backups(
            f"{self._name}-backups",
            BackupsArgs(plan, self._network, self._engines.only_image, self._options),
            opts=self._child,
        )

    def _groups(self, depends_on: list[pulumi.Resource]) -> list[PatroniCitusGroup]:
        """One group after the other: a rolling change never waits on more members at once
        than `pulumi up --parallel` (4 x CPUs by default) can run."""
        repository = self.backups.repository if self.backups is not None else None
        groups: list[PatroniCitusGroup] = []
        for plan in self._plan.groups:
            before = [m.ready for m in groups[-1].deployed_members] if groups else []
            groups.append(
                PatroniCitusGroup(
                    f"{self._name}-{plan.label}",
                    PatroniCitusGroupArgs(
                        plan,
                        self._network,
                        self._engines,
                        self._credentials,
                        self._options,
                        self._plan.run_env,
                        depends_on=[*depends_on, *before],
                        coordinator=groups[0].deployed_members if groups else (),
                        backup_repository=repository,
                    ),
                    opts=self._child,
                )
            )
        return groups

    def _vip(self, plan: VipPlan, groups: list[PatroniCitusGroup], etcd: EtcdCluster) -> VipManager:
        return VipManager(
            f"{self._name}-vip",
            VipManagerArgs(
                plan,
                groups[plan.group].deployed_members,
                self._engines.only_image,
                self._options,
                depends_on=etcd.containers,
            ),
            opts=self._child,
        )

    def _crash_watcher(
        self, plan: CrashWatcherPlan, engine: Optional[EngineProxy], etcd: EtcdCluster
    ) -> CrashWatcher:
        assert engine is not None  # planned whenever the crash watcher is
        return CrashWatcher(
            f"{self._name}-crash-watcher",
            CrashWatcherArgs(
                plan,
                self._network,
                engine,
                self._engines.only_image,
                self._options,
                depends_on=etcd.containers,
            ),
            opts=self._child,
        )

    def _service_roles(
        self, plan: ServiceRolesPlan, deployed: list[DeployedMember]
    ) -> command.local.Command:
        """What the service layer logs in as: created once every member is ready, changed
        before anything that uses a role is reconfigured."""
        run_env = self._plan.run_env

        def environment(c: render.Credentials) -> dict[str, str]:
            return {**(run_env or {}), "PC_SERVICE_ROLES": json.dumps(plan.roles(c))}

        secret_env: pulumi.Output[dict[str, str]] = pulumi.Output.secret(
            self._credentials.apply(environment)
        )
        return command.local.Command(
            f"{self._name}-service-roles",
            create=plan.command,
            environment=secret_env,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[m.ready for m in deployed]),
        )

    def _endpoints(self, plan: EndpointsPlan) -> Endpoints:
        return Endpoints(
            f"{self._name}-endpoints",
            EndpointsArgs(plan, self._network, self._engines, self._options),
            opts=self._child,
        )

    def _pooler(
        self,
        plan: PoolerPlan,
        endpoints: Optional[Endpoints],
        roles: Optional[command.local.Command],
    ) -> Pooler:
        # The settings refuse a pooler without endpoints; roles are planned whenever it is on.
        assert endpoints is not None and roles is not None
        return Pooler(
            f"{self._name}-pooler",
            PoolerArgs(
                plan,
                self._network,
                self._engines.only_image,
                self._credentials,
                endpoints.containers,
                roles,
                self._options,
                self._plan.run_env,
            ),
            opts=self._child,
        )

    def _monitoring(
        self,
        plan: MonitoringPlan,
        deployed: list[DeployedMember],
        roles: Optional[command.local.Command],
    ) -> Monitoring:
        assert roles is not None  # planned whenever monitoring is
        return Monitoring(
            f"{self._name}-monitoring",
            MonitoringArgs(
                plan,
                self._network,
                self._engines.only_image,
                self._credentials,
                deployed,
                roles,
                self._options,
                self._plan.run_env,
                metrics_network=self.observability.metrics_network,
            ),
            opts=self._child,
        )

    def _group_leaders(
        self, deployed: list[DeployedMember], sidecars: list[docker.Container]
    ) -> command.local.Command:
        """The probe behind the `groupLeaders` output, asked again whenever a member is
        replaced."""
        return command.local.Command(
            f"{self._name}-group-leaders",
            create=self._plan.group_leaders_command,
            triggers=[m.container.id for m in deployed],
            environment=self._plan.run_env,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[*(m.ready for m in deployed), *sidecars]
            ),
        )

    def _outputs(
        self,
        etcd: EtcdCluster,
        probe: command.local.Command,
        endpoints: Optional[Endpoints],
        pooler: Optional[Pooler],
    ) -> None:
        planned = self._plan.outputs
        credentials = self._credentials
        self.vip = pulumi.Output.from_input(planned.vip)
        self.coordinator = pulumi.Output.from_input(dict(planned.coordinator))
        self.coordinator_password = pulumi.Output.secret(credentials.apply(lambda c: c.superuser))
        self.etcd_endpoints = etcd.client_endpoints
        self.dcs = pulumi.Output.from_input(dict(planned.dcs))
        self.citus = pulumi.Output.from_input(planned.citus)
        self.members = pulumi.Output.from_input(dict(planned.members))
        self.group_leaders = probe.stdout.apply(json.loads)
        self.prometheus_targets = pulumi.Output.from_input(planned.prometheus_targets)
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
