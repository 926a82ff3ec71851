"""The typed settings model: frozen dataclasses that components take. Built and validated
only by `patroni_citus.config.loader`."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Optional

from . import addressing
from .addressing import Group, Member

Flavour = Literal["upstream", "debian"]
EtcdApi = Literal["v3", "v2"]
MAX_SERVICE_INSTANCES = 4
FLAVOURS: tuple[Flavour, ...] = ("upstream", "debian")
ETCD_APIS: tuple[EtcdApi, ...] = ("v3", "v2")


@dataclass(frozen=True)
class ClusterSettings:
    scope: str
    namespace: str  # always with leading and trailing slash, as Patroni writes it: "/service/"


@dataclass(frozen=True)
class NetworkSettings:
    name: str
    subnet: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address
    member_range: ipaddress.IPv4Network


@dataclass(frozen=True)
class EtcdSettings:
    members: int
    api: EtcdApi
    image: Optional[str]  # a pinned upstream etcd image; None runs etcd from the project image
    cluster_token: str
    auto_compaction_retention: str  # hours, etcd's --auto-compaction-retention


@dataclass(frozen=True)
class CitusSettings:
    enabled: bool
    database: str
    coordinator_members: int
    worker_groups: int
    members_per_group: int
    # Move shards onto a worker group when it joins a live cluster (blocks writes per shard
    # while it moves); draining a group before it is removed always happens.
    rebalance_on_join: bool = False


@dataclass(frozen=True)
class ResourceLimits:
    memory_mb: int  # 0 = no limit
    cpus: Optional[str]  # docker --cpus, e.g. "1.5"; None = no limit
    shm_size_mb: int


@dataclass(frozen=True)
class PatroniSettings:
    members: int  # members of the single group when Citus is off
    ttl: int
    loop_wait: int
    retry_timeout: int
    maximum_lag_on_failover: int
    synchronous_mode: bool
    failsafe_mode: bool
    parameters: Mapping[str, Any]
    resources: ResourceLimits
    superuser: str
    replication_user: str
    rest_api_user: str


@dataclass(frozen=True)
class ConnectionBounds:
    """How long any connection in the stack waits on a peer that stopped answering. A
    partitioned or powered-off member sends no reset, so without these a session hangs for
    TCP's retransmission timeout (minutes) while Patroni has long failed over.

    Derived from Patroni's timing (ConnectionBounds.of): a dead peer is given up within
    `dead_peer_s`, at least 4 s (four retransmissions of a lost packet on a healthy network)
    or two Patroni loops, at most half the TTL, so it is gone before Patroni's new leader
    is; connection attempts are retried at least as often as Patroni acts."""

    dead_peer_s: int
    keepalives_idle_s: int
    keepalives_interval_s: int
    keepalives_count: int
    connect_timeout_s: int

    @classmethod
    def of(cls, ttl: int, loop_wait: int) -> ConnectionBounds:
        dead_peer = min(max(4, 2 * loop_wait), ttl // 2)
        return cls(
            dead_peer_s=dead_peer,
            # idle + count * interval <= dead_peer: an idle dead peer is found in time too.
            keepalives_idle_s=dead_peer // 2,
            keepalives_interval_s=max(1, dead_peer // 4),
            keepalives_count=2,
            # libpq waits at least 2 s whatever it is given.
            connect_timeout_s=max(2, dead_peer // 2),
        )

    @property
    def tcp_user_timeout_ms(self) -> int:
        """How long sent data may stay unacknowledged before the connection is dropped."""
        return self.dead_peer_s * 1000


@dataclass(frozen=True)
class VipSettings:
    enabled: bool
    address: Optional[ipaddress.IPv4Address]
    netmask: int
    interface: str
    group: int
    interval_ms: int


@dataclass(frozen=True)
class ImageSettings:
    name: str
    base_image: str
    flavour: Flavour
    postgres_major: int
    citus_version: str  # the Citus package line, e.g. "14.0"
    # Versions as given in config (a line, a release or an exact Debian version); None takes
    # the newest the repository has.
    citus_package_version: Optional[str]
    patroni_version: Optional[str]
    vip_manager_version: Optional[str]
    local_debs: bool

    @property
    def vip_manager_speaks_etcd_v3(self) -> bool:
        """Debian's vip-manager 1.0.2 reads the etcd v2 API; the upstream flavour's
        vip-manager2 (2.0 and newer) only the v3 API."""
        return self.flavour == "upstream"


@dataclass(frozen=True)
class ServiceSettings:
    """One observability service: a pinned image published on a host address."""

    enabled: bool
    image: str
    host_ip: str
    host_port: int


@dataclass(frozen=True)
class ObservabilitySettings:
    enabled: bool
    cadvisor: ServiceSettings
    fluentd: ServiceSettings
    adminer: ServiceSettings

    def active(self, service: str) -> bool:
        return self.enabled and getattr(self, service).enabled


@dataclass(frozen=True)
class EngineSettings:
    # The host path of the Docker engine's API socket. Root-equivalent: only the engine proxy
    # mounts it, and passes on nothing but the read-only requests its clients need.
    socket: str


@dataclass(frozen=True)
class CrashWatcherSettings:
    # Release a dead leader's key when the engine reports its container died
    # (docs/failover-and-partitions.md, "Crash failover").
    enabled: bool


@dataclass(frozen=True)
class EndpointSettings:
    """HAProxy instances routing by Patroni's REST health checks: a read-write port to the
    leader of group 0 (the coordinator with Citus) and a read-only port to its replicas."""

    enabled: bool
    instances: int
    host_ip: str
    # Instance i publishes its ports at these plus i * PORT_STRIDE on host_ip.
    read_write_port: int
    read_only_port: int
    max_replica_lag_bytes: int  # a replica further behind leaves the read-only pool
    # With several hosts each instance runs on its own host, so all publish the same ports.
    one_per_host: bool = False

    PORT_STRIDE = 10

    def host_ports(self, instance: int) -> tuple[int, int]:
        offset = 0 if self.one_per_host else instance * self.PORT_STRIDE
        return self.read_write_port + offset, self.read_only_port + offset


@dataclass(frozen=True)
class PoolerSettings:
    """PgBouncer in transaction pooling in front of each endpoint instance's read-write port.
    Clients log in as `user` (or any other non-superuser login role): PgBouncer looks their
    SCRAM verifiers up with auth_query as a dedicated role."""

    enabled: bool
    host_ip: str
    port: int  # instance i publishes at port + i * EndpointSettings.PORT_STRIDE
    pool_size: int  # server connections per database and user
    max_client_connections: int
    user: str  # the application role the program creates for pooled clients
    auth_user: str  # the role PgBouncer runs auth_query as


@dataclass(frozen=True)
class MonitoringSettings:
    """Prometheus with a PostgreSQL exporter beside every member and the alert rules of
    patroni_citus/plan/monitoring.py."""

    enabled: bool
    host_ip: str
    host_port: int
    scrape_interval_s: int
    retention: str  # Prometheus' --storage.tsdb.retention.time, e.g. "15d"
    # Alert thresholds.
    max_replication_lag_bytes: int
    disk_usage_ratio: float
    user: str  # the monitoring role the exporters log in as (pg_monitor)


RestoreType = Literal["latest", "time", "name", "immediate"]
RESTORE_TYPES: tuple[RestoreType, ...] = ("latest", "time", "name", "immediate")


@dataclass(frozen=True)
class RestoreSettings:
    """Bootstrap a new cluster from another cluster's backups (Patroni custom bootstrap)."""

    source: str  # the scope of the cluster whose stanzas are restored
    type: RestoreType
    target: Optional[str]  # a timestamp with time zone (time) or a restore point (name)


@dataclass(frozen=True)
class BackupSettings:
    """pgBackRest: WAL archived by whichever member leads, a repository on its own retained
    volume, full and incremental backups taken by the leader on a schedule."""

    enabled: bool
    repository_volume: str
    full_interval_s: int
    incremental_interval_s: int
    retention_full: int  # full backups kept (with the WAL they need)
    restore: Optional[RestoreSettings]

    def stanza(self, scope: str, group: int, citus: bool) -> str:
        """One stanza per Patroni cluster: per Citus group, since each has its own WAL."""
        return f"{scope}-g{group}" if citus else scope


@dataclass(frozen=True)
class DockerHost:
    """One Docker engine the stack deploys to."""

    name: str
    # The engine's API as pulumi-docker's provider `host` takes it (unix://, tcp:// with TLS,
    # ssh://); None is the engine of the machine running Pulumi (DOCKER_HOST or the socket).
    endpoint: Optional[str]
    cert_path: Optional[str]  # ca.pem, cert.pem and key.pem for a tcp:// endpoint
    ssh_opts: tuple[str, ...]
    # Where clients reach the ports published on this host.
    address: str

    def cli_environment(self) -> dict[str, str]:
        """The Docker CLI's environment for this engine (the day-2 scripts' `docker exec`)."""
        env: dict[str, str] = {}
        if self.endpoint is not None:
            env["DOCKER_HOST"] = self.endpoint
        if self.cert_path is not None:
            env.update(DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=self.cert_path)
        return env


@dataclass(frozen=True)
class HostSettings:
    """Where containers run: one engine (no `hosts` config, as before), or several engines
    joined in a Docker Swarm sharing an attachable overlay network."""

    engines: tuple[DockerHost, ...]  # empty: the default engine only
    swarm_manager: Optional[str]  # the engine the overlay network is created through
    # Container name -> engine name, for every container the stack places.
    placement: Mapping[str, str] = field(default_factory=dict)

    @property
    def several(self) -> bool:
        return len(self.engines) > 1

    def engine(self, name: str) -> DockerHost:
        return next(e for e in self.engines if e.name == name)

    @property
    def manager(self) -> Optional[DockerHost]:
        """The Swarm manager's engine (several engines only)."""
        return self.engine(self.swarm_manager) if self.swarm_manager is not None else None

    def label_of(self, container: str) -> Optional[str]:
        """The host label of a container or its volume: set only with several engines."""
        return self.placement.get(container) if self.several else None

    def host_of(self, container: str) -> Optional[str]:
        """The engine a container runs on; None for the default engine."""
        if len(self.engines) == 1:
            return self.engines[0].name
        return self.placement.get(container) if self.engines else None


@dataclass(frozen=True)
class Passwords:
    """Passwords supplied as config secrets; None means 'generate one'."""

    superuser: Optional[str] = field(default=None, repr=False)
    replication: Optional[str] = field(default=None, repr=False)
    rest_api: Optional[str] = field(default=None, repr=False)
    application: Optional[str] = field(default=None, repr=False)
    pooler_auth: Optional[str] = field(default=None, repr=False)
    monitoring: Optional[str] = field(default=None, repr=False)


@dataclass(frozen=True)
class Settings:
    cluster: ClusterSettings
    network: NetworkSettings
    etcd: EtcdSettings
    citus: CitusSettings
    patroni: PatroniSettings
    vip: VipSettings
    image: ImageSettings
    passwords: Passwords
    retain_volumes: bool
    observability: ObservabilitySettings
    engine: EngineSettings
    crash_watcher: CrashWatcherSettings
    endpoints: EndpointSettings
    pooler: PoolerSettings
    monitoring: MonitoringSettings
    backups: BackupSettings
    hosts: HostSettings

    @property
    def connection_bounds(self) -> ConnectionBounds:
        return ConnectionBounds.of(self.patroni.ttl, self.patroni.loop_wait)

    @property
    def engine_proxy_needed(self) -> bool:
        """The proxy serves the engine's read-only API to the crash watcher and cadvisor."""
        return self.crash_watcher.enabled or self.observability.active("cadvisor")

    @property
    def crash_watcher_address(self) -> ipaddress.IPv4Address:
        """Next to adminer's, far from the member slots."""
        return self.network.member_range.broadcast_address - 2

    def service_address(self, role: str, instance: int = 0) -> ipaddress.IPv4Address:
        """Service containers sit at the top of the member range, below adminer and the crash
        watcher, far from the member slots."""
        top = self.network.member_range.broadcast_address
        base = {"haproxy": 3, "pgbouncer": 3 + MAX_SERVICE_INSTANCES, "prometheus": 11}[role]
        return top - base - instance

    @property
    def coordinator_hosts(self) -> tuple[str, ...]:
        """Where clients reach the coordinator: the VIP when it fronts group 0, otherwise every
        coordinator member (libpq picks the primary with target_session_attrs)."""
        if self.vip.enabled and self.vip.group == 0:
            return (str(self.vip.address),)
        if self.hosts.several:
            # The overlay is not routable from outside: clients go through the HAProxy
            # instances, each published on its own host.
            return tuple(self.endpoint_host_ip(i) for i in range(self.endpoints.instances))
        return tuple(str(m.address) for m in self.groups[0].members)

    def endpoint_host_ip(self, instance: int) -> str:
        """Where HAProxy instance i publishes its ports: its host's address with several
        hosts, endpoints.hostIp otherwise."""
        if self.hosts.several:
            host = self.hosts.host_of(self.service_name("haproxy", instance))
            assert host is not None  # every service container is placed
            return self.hosts.engine(host).address
        return self.endpoints.host_ip

    def service_name(self, role: str, instance: int = 0) -> str:
        return f"{self.cluster.scope}-{role}-{instance + 1}"

    @property
    def adminer_address(self) -> ipaddress.IPv4Address:
        """The last host of the member range, far from the member slots."""
        return self.network.member_range.broadcast_address - 1

    @property
    def etcd_members(self) -> tuple[Member, ...]:
        return addressing.etcd_members(
            self.cluster.scope, self.network.member_range, self.etcd.members
        )

    @property
    def groups(self) -> tuple[Group, ...]:
        return addressing.groups(
            self.cluster.scope,
            self.network.member_range,
            addressing.group_sizes(self.citus, self.patroni.members),
        )

    @property
    def dcs_prefix(self) -> str:
        """The key prefix Patroni writes under: '/service/citus'."""
        return f"{self.cluster.namespace}{self.cluster.scope}"

    def leader_key(self, group: int) -> str:
        """The DCS key holding a group's leader name (Citus groups live one level deeper)."""
        if self.citus.enabled:
            return f"{self.dcs_prefix}/{group}/leader"
        return f"{self.dcs_prefix}/leader"
