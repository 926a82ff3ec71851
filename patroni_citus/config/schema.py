"""Every stack config key as data: its path, type, default, value rule and one line of
documentation. The loader reads the config by walking this table, and docs/configuration.md is
printed from it (`python -m patroni_citus.config.reference`), so a new key is one new row.

A row's rule sees its own value only; rules relating several keys are functions in `rules`.
Rows are read in table order, a section's subsections where their first row stands.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

from .. import conventions
from . import checks, versions
from .addressing import MAX_GROUP_MEMBERS, MAX_WORKER_GROUPS
from .model import ETCD_APIS, FLAVOURS, MAX_SERVICE_INSTANCES, RESTORE_TYPES, EndpointSettings
from .reader import Check, Values

Kind = Union[type, tuple[type, ...]]


@dataclass(frozen=True)
class Derived:
    """A default computed from keys read before it."""

    shown: str  # as the reference shows it, e.g. "<scope>-net"
    of: Callable[[Values], Any]


@dataclass(frozen=True)
class Applies:
    """The configurations a row applies in. Elsewhere a value set for it is refused with
    `refusal`, unless another row of the same path applies there instead (refusal None)."""

    shown: str  # as the reference shows it, e.g. "upstream flavour"
    test: Callable[[Values], bool]
    refusal: Optional[str] = None


@dataclass(frozen=True)
class Key:
    path: str  # `section.name`; `[]` marks a list of objects, `*` any name in a map
    kind: Kind
    default: Any  # a value, a Derived, or None: unset
    doc: str
    rule: Optional[Check] = None
    secret: bool = False
    when: Optional[Applies] = None
    unset: str = "unset"  # how the reference shows a default of None or ""

    @property
    def section(self) -> str:
        return self.path.rpartition(".")[0]

    @property
    def name(self) -> str:
        return self.path.rpartition(".")[2]


# Pinned upstream images; the integration suite points these keys at local stand-ins.
OBSERVABILITY_DEFAULTS = {
    "cadvisor": ("gcr.io/cadvisor/cadvisor:v0.49.1", 8080, True),
    "fluentd": ("fluent/fluentd:v1.17.0-debian-1.1", 24224, True),
    "adminer": ("adminer:4.8.1", 8081, False),
}
DEFAULT_SUBNET = ipaddress.IPv4Network("172.30.0.0/16")
DEFAULT_MEMBER_RANGE = ipaddress.IPv4Network("172.30.1.0/24")
MAX_ENGINES = 16
# A subsection read only when it is set: its keys describe something to do, not a setting.
OPTIONAL_SECTIONS = frozenset({"backups.restore"})
# A list of objects: at most this many items, named so in the rule.
LISTS = {"hosts.engines": (MAX_ENGINES, "engines")}

UPSTREAM = "upstream flavour"
DEBIAN = "debian flavour"
_FROM_DEBS = (
    "does not apply to the debian flavour: Citus comes from images/patroni/debs/ (image.localDebs)"
)


def _upstream(refusal: Optional[str]) -> Applies:
    return Applies(UPSTREAM, lambda v: v["image.flavour"] != "debian", refusal)


_DEBIAN_ONLY = Applies(DEBIAN, lambda v: v["image.flavour"] == "debian")


def _scoped(suffix: str) -> Derived:
    return Derived(f"`<scope>{suffix}`", lambda v: f"{v['cluster.scope']}{suffix}")


def _subnet_prefix(v: Values) -> int:
    try:
        return ipaddress.IPv4Network(v["network.subnet"]).prefixlen
    except ValueError:
        return DEFAULT_SUBNET.prefixlen  # a bad subnet is refused by its own rule


_PORT = checks.between(1, 65535)
# Instance i publishes at port + stride * i: the highest instance's ports must still exist.
_BASE_PORT = checks.between(1, 65535 - EndpointSettings.PORT_STRIDE * MAX_SERVICE_INSTANCES)
_BYTES = checks.between(0, 2**40)
_LOOPBACK = "127.0.0.1"
_HOST_IP = "host address the port is published on; anything but loopback needs allowPublicPorts"
_PUBLIC = "allow a hostIp other than 127.0.0.1"


def _observability(service: str) -> tuple[Key, ...]:
    image, port, enabled = OBSERVABILITY_DEFAULTS[service]
    section = f"observability.{service}"
    return (
        Key(f"{section}.enabled", bool, enabled, f"run {service} (with observability.enabled)"),
        Key(f"{section}.image", str, image, "pinned image", checks.image_reference),
        Key(f"{section}.hostIp", str, _LOOPBACK, _HOST_IP, checks.address),
        Key(f"{section}.hostPort", int, port, "host port", _PORT),
    )


KEYS: tuple[Key, ...] = (
    Key(
        "cluster.scope",
        str,
        "citus",
        "Patroni scope; prefixes every container, volume and member name: lowercase letters, "
        "digits, '-', at most 31",
        checks.scope_name,
    ),
    Key(
        "cluster.namespace",
        str,
        "/service",
        "DCS namespace: one path segment",
        checks.matches(
            re.compile(r"^/?[A-Za-z0-9_-]{1,64}/?$"), "one path segment such as /service"
        ),
    ),
    Key(
        "network.name",
        str,
        _scoped("-net"),
        "Docker network name, at most 63 characters; not one of Docker's predefined bridge, host, "
        "none",
        checks.network_name,
    ),
    Key(
        "network.subnet",
        str,
        str(DEFAULT_SUBNET),
        "bridge subnet (CIDR): inside a private range (10/8, 172.16/12, 192.168/16), a /16 to /28 "
        "(larger ones overlap Docker's own pools)",
        checks.subnet,
    ),
    Key(
        "network.memberRange",
        str,
        str(DEFAULT_MEMBER_RANGE),
        "members take fixed slots here: etcd slots 0-15, group g slots 16·(g+1)…; must lie in the "
        "subnet and be large enough",
        checks.member_range,
    ),
    Key(
        "network.gateway",
        str,
        None,
        "must be inside the subnet, outside memberRange",
        checks.address,
        unset="first host of the subnet",
    ),
    Key(
        "image.name",
        str,
        "patroni-citus:local",
        "local tag of the built image (pinned, no latest)",
        checks.image_reference,
    ),
    Key(
        "image.flavour",
        str,
        "upstream",
        "upstream (PostgreSQL project + Citus repositories) or debian (Debian archive only)",
        checks.one_of(*FLAVOURS),
    ),
    Key(
        "image.baseImage", str, "debian:bookworm-slim", "pinned base image", checks.image_reference
    ),
    Key(
        "image.localDebs",
        bool,
        False,
        "debian flavour only: install .deb files from images/patroni/debs/ (e.g. Citus)",
    ),
    Key(
        "image.postgresMajor",
        int,
        versions.DEFAULT_POSTGRES_MAJOR,
        "PostgreSQL major: 15-18",
        checks.postgres_major,
        when=_upstream(None),
    ),
    Key(
        "image.postgresMajor",
        int,
        versions.DEBIAN_POSTGRES_MAJOR,
        "PostgreSQL major: 15 only (bookworm)",
        checks.debian_postgres_major,
        when=_DEBIAN_ONLY,
    ),
    Key(
        "image.citusVersion",
        str,
        versions.DEFAULT_CITUS_LINE,
        "the Citus package line (`postgresql-<major>-citus-<line>`): 12.1 (PostgreSQL 14-16), "
        "13.0/13.1/13.2 (15-17), 14.0 (16-18); must support postgresMajor when Citus is on",
        checks.citus_line,
        when=_upstream(_FROM_DEBS),
    ),
    Key(
        "image.citusPackageVersion",
        str,
        None,
        "a release of the line (14.0.1) or an exact package version (14.0.1.citus-1)",
        checks.version,
        when=_upstream(_FROM_DEBS),
        unset="newest of the line",
    ),
    Key(
        "image.patroniVersion",
        str,
        None,
        "a line (4, 4.1), a release (4.1.4) or an exact package version (4.1.4-1.pgdg120+1); at "
        "least 4.0.0, and 4.0.7 for PostgreSQL 18",
        checks.version,
        when=_upstream(
            "does not apply to the debian flavour: Patroni is trixie's "
            f"{versions.DEBIAN_PATRONI_LINE} line"
        ),
        unset="newest",
    ),
    Key(
        "image.vipManagerVersion",
        str,
        None,
        "same forms, 2.0 or newer (vip-manager2, etcd v3 API: needs etcd.apiVersion v3 with the "
        "VIP on)",
        checks.vip_manager2,
        when=_upstream(None),
        unset="newest",
    ),
    Key(
        "image.vipManagerVersion",
        str,
        versions.DEBIAN_VIP_MANAGER_VERSION,
        "1.0.2 only (etcd v2 API: needs etcd.apiVersion v2 with the VIP on)",
        checks.debian_vip_manager,
        when=_DEBIAN_ONLY,
    ),
    Key("etcd.members", int, 3, "odd, 3-15", checks.odd_quorum),
    Key(
        "etcd.apiVersion",
        str,
        "v3",
        "v3 or v2; v2 enables etcd's v2 API and Patroni's etcd: client (needed by vip-manager 1.x)",
        checks.one_of(*ETCD_APIS),
    ),
    Key(
        "etcd.image",
        str,
        None,
        "a pinned upstream etcd image, e.g. quay.io/coreos/etcd:v3.5.16: Docker's reference "
        "grammar, no latest; with apiVersion v2, older than 3.6 (3.6 removed the v2 API)",
        checks.image_reference,
        unset="project image",
    ),
    Key(
        "etcd.clusterToken",
        str,
        _scoped("-etcd"),
        "initial cluster token",
        checks.matches(re.compile(r"^[A-Za-z0-9_.-]{1,64}$"), "a short token"),
    ),
    Key(
        "etcd.autoCompactionRetention",
        str,
        "1",
        "hours (periodic compaction), or a duration such as 30m",
        checks.matches(re.compile(r"^\d{1,6}[hm]?$"), "hours (e.g. 1) or a duration such as 30m"),
    ),
    Key(
        "citus.enabled",
        bool,
        True,
        "off: one plain Patroni cluster of patroni.members; the other citus.* keys are then "
        "refused (they would do nothing)",
    ),
    Key(
        "citus.database",
        str,
        "citus",
        "Citus database: a lowercase identifier, not template0/template1 nor a pg_hba keyword",
        checks.pg_database,
    ),
    Key(
        "citus.coordinatorMembers",
        int,
        2,
        "members of the coordinator group, 1-16",
        checks.between(1, MAX_GROUP_MEMBERS),
    ),
    Key("citus.workerGroups", int, 2, "worker groups, 0-12", checks.between(0, MAX_WORKER_GROUPS)),
    Key(
        "citus.membersPerGroup",
        int,
        2,
        "members of each worker group, 1-16",
        checks.between(1, MAX_GROUP_MEMBERS),
    ),
    Key(
        "citus.rebalanceOnJoin",
        bool,
        False,
        "move shards onto a worker group when it joins a live cluster (writes to a shard block "
        "while it moves)",
    ),
    Key(
        "patroni.members",
        int,
        2,
        "members of the single group when Citus is off, 1-16; refused with Citus on",
        checks.between(1, MAX_GROUP_MEMBERS),
    ),
    Key(
        "patroni.ttl",
        int,
        30,
        "leader key TTL, 20-3600; loopWait + 2·retryTimeout <= ttl; with loopWait also every "
        "connection's bound on a dead peer",
        checks.between(20, 3600),
    ),
    Key(
        "patroni.loopWait",
        int,
        10,
        "seconds between Patroni's loops, 1-3600",
        checks.between(1, 3600),
    ),
    Key(
        "patroni.retryTimeout",
        int,
        10,
        "DCS and PostgreSQL retry timeout, 3-3600",
        checks.between(3, 3600),
    ),
    Key(
        "patroni.maximumLagOnFailover",
        int,
        1048576,
        "bytes a replica may lag and still be promoted",
        _BYTES,
    ),
    Key("patroni.synchronousMode", bool, True, "no acknowledged commit is lost on failover"),
    Key(
        "patroni.failsafeMode",
        bool,
        False,
        "keep the primary when the DCS is down but all members answer",
    ),
    Key(
        "patroni.parameters",
        dict,
        {},
        "PostgreSQL settings (bootstrap DCS config); settings the program or Patroni manage are "
        "refused with the reason, common ones type-checked (patroni_citus/config/postgres.py)",
    ),
    Key(
        "patroni.resources.memoryMb",
        int,
        1024,
        "memory limit: 0 = unlimited, else 256 to 1048576",
        checks.memory_mb,
    ),
    Key(
        "patroni.resources.cpus",
        str,
        None,
        'docker --cpus, 0.01 to 1024, e.g. "1.5" or 1.5',
        checks.cpus,
    ),
    Key(
        "patroni.resources.shmSizeMb",
        int,
        256,
        "/dev/shm size, 64-65536, below memoryMb when that is set (it counts against the limit)",
        checks.between(64, 65536),
    ),
    Key(
        "patroni.superuser",
        str,
        "postgres",
        "superuser role: a lowercase identifier, not pg_*, public, none, current_user, "
        "current_role, session_user nor a pg_hba keyword",
        checks.pg_role,
    ),
    Key(
        "patroni.replicationUser",
        str,
        "replicator",
        "replication role, same rules; not the superuser",
        checks.pg_role,
    ),
    Key(
        "patroni.restApiUser",
        str,
        "patroni",
        "Patroni REST API user",
        checks.matches(re.compile(r"^[A-Za-z0-9_.-]{1,63}$"), "a user name"),
    ),
    Key("vip.enabled", bool, False, "vip-manager sidecars on the members of vip.group"),
    Key(
        "vip.address",
        str,
        None,
        "required when enabled; inside the subnet, outside memberRange, not the gateway",
        checks.address,
    ),
    Key(
        "vip.netmask",
        int,
        Derived("subnet prefix", _subnet_prefix),
        "must equal the subnet's prefix length (checked when the VIP is on or the key is set)",
        checks.between(1, 32),
    ),
    Key(
        "vip.interface",
        str,
        "eth0",
        "interface inside the member's namespace: at most 15 of letters, digits, '_', '.', '-'; "
        "not . or ..",
        checks.interface,
    ),
    Key(
        "vip.group",
        int,
        0,
        "the group whose leader holds the VIP",
        checks.between(0, MAX_WORKER_GROUPS),
    ),
    Key(
        "vip.intervalMs",
        int,
        1000,
        "how often vip-manager 1.0.2 reads the leader key (2.3 and newer watch it instead), "
        "100-60000",
        checks.between(100, 60000),
    ),
    Key(
        "volumes.retainOnDelete",
        bool,
        True,
        "keep data volumes in Docker when the stack is destroyed (also labelled "
        "patroni-citus.retain)",
    ),
    Key(
        "observability.enabled",
        bool,
        False,
        "the Observability component: cadvisor, fluentd, adminer",
    ),
    Key("observability.allowPublicPorts", bool, False, _PUBLIC),
    *_observability("cadvisor"),
    *_observability("fluentd"),
    *_observability("adminer"),
    Key(
        "engine.socket",
        str,
        conventions.HOST_ENGINE_SOCKETS[0],
        "host path of the Docker engine's API socket, mounted only into the engine proxy "
        "(absolute; for a rootless engine e.g. /run/user/1000/docker.sock)",
        checks.absolute_path,
    ),
    Key(
        "crashWatcher.enabled",
        bool,
        False,
        "release a crashed leader's key at once; off by default because it needs the engine "
        "proxy, which holds the engine's socket",
    ),
    Key(
        "endpoints.enabled",
        bool,
        False,
        "HAProxy endpoints: a read-write port to the leader of group 0, a read-only port to its "
        "replicas",
    ),
    Key("endpoints.allowPublicPorts", bool, False, _PUBLIC),
    # Two by default: one HAProxy is a single point of failure; clients list both.
    Key(
        "endpoints.instances",
        int,
        2,
        "HAProxy containers, 1-4",
        checks.between(1, MAX_SERVICE_INSTANCES),
    ),
    Key("endpoints.hostIp", str, _LOOPBACK, _HOST_IP, checks.address),
    Key(
        "endpoints.readWritePort",
        int,
        5000,
        "host port of instance 1; instance i publishes at port + 10·(i-1); no two may collide",
        _BASE_PORT,
    ),
    Key(
        "endpoints.readOnlyPort", int, 5001, "host port of instance 1, as readWritePort", _BASE_PORT
    ),
    Key(
        "endpoints.maxReplicaLagBytes",
        int,
        16 * 1024 * 1024,
        "a replica further behind the leader leaves the read-only pool (Patroni's /replica?lag=)",
        _BYTES,
    ),
    Key(
        "pooler.enabled",
        bool,
        False,
        "PgBouncer in front of each HAProxy instance's read-write port; needs endpoints.enabled",
    ),
    Key("pooler.allowPublicPorts", bool, False, _PUBLIC),
    Key("pooler.hostIp", str, _LOOPBACK, _HOST_IP, checks.address),
    Key(
        "pooler.port",
        int,
        6432,
        "instance i publishes at port + 10·(i-1); must not collide with an endpoints port",
        _BASE_PORT,
    ),
    Key(
        "pooler.poolSize",
        int,
        20,
        "server connections per database and user, 1-10000",
        checks.between(1, 10_000),
    ),
    Key(
        "pooler.maxClientConnections",
        int,
        1000,
        "client connections per instance, 1-100000",
        checks.between(1, 100_000),
    ),
    Key(
        "pooler.user",
        str,
        "app",
        "the application role the program creates for pooled clients; distinct from every other "
        "role",
        checks.pg_role,
    ),
    Key(
        "pooler.authUser",
        str,
        "pgbouncer",
        "the role PgBouncer runs auth_query as; distinct from every other role",
        checks.pg_role,
    ),
    Key("monitoring.enabled", bool, False, "Prometheus and the PostgreSQL exporters"),
    Key("monitoring.allowPublicPorts", bool, False, _PUBLIC),
    Key("monitoring.hostIp", str, _LOOPBACK, _HOST_IP, checks.address),
    Key("monitoring.hostPort", int, 9090, "where Prometheus is published", _PORT),
    Key(
        "monitoring.scrapeInterval",
        str,
        "15s",
        "a duration (s, m, h, d); alert for: durations are multiples of it",
        checks.duration(1),
    ),
    Key(
        "monitoring.retention",
        str,
        "15d",
        "Prometheus' --storage.tsdb.retention.time (h, d, w, y)",
        checks.matches(
            re.compile(r"^[1-9][0-9]{0,4}(h|d|w|y)$"), "a whole number followed by h, d, w or y"
        ),
    ),
    Key(
        "monitoring.maxReplicationLagBytes",
        int,
        16 * 1024 * 1024,
        "alert threshold",
        checks.between(1, 2**40),
    ),
    Key(
        "monitoring.diskUsageRatio",
        (float, int),
        0.85,
        "alert threshold, between 0 and 1",
        checks.ratio,
    ),
    Key(
        "monitoring.user",
        str,
        "monitor",
        "the role the exporters log in as (member of pg_monitor)",
        checks.pg_role,
    ),
    Key(
        "backups.enabled",
        bool,
        False,
        "pgBackRest archiving and scheduled backups; with it on, patroni.parameters also refuses "
        "archive_mode, archive_command, archive_library and archive_timeout",
    ),
    Key(
        "backups.repositoryVolume",
        str,
        _scoped("-backups"),
        "the repository's named volume, always kept when the stack is destroyed; a restore stack "
        "names its source's",
        checks.volume_name,
    ),
    Key("backups.fullInterval", str, "7d", "a duration, at least 60s", checks.duration(60)),
    Key(
        "backups.incrementalInterval",
        str,
        "1d",
        "a duration, at least 60s, not longer than fullInterval",
        checks.duration(60),
    ),
    Key(
        "backups.retentionFull",
        int,
        2,
        "full backups kept, with the WAL they need",
        checks.between(1, 100),
    ),
    # "" rather than None: a restore without a source is refused by the rule and as missing.
    Key(
        "backups.restore.source",
        str,
        "",
        "bootstrap this cluster from the backups of the cluster with this scope (not this one's)",
        checks.scope_name,
        unset="required",
    ),
    Key(
        "backups.restore.type",
        str,
        "latest",
        "latest, immediate, time (refused with Citus) or name",
        checks.one_of(*RESTORE_TYPES),
    ),
    Key(
        "backups.restore.target",
        (str,),
        None,
        "type time: a timestamp with a time zone; type name: a restore point",
    ),
    # Checked by rules._engines whatever was given, null included: a name is required.
    Key(
        "hosts.engines[].name",
        str,
        "",
        "1 to 31 lowercase letters, digits or '-'",
        unset="required",
    ),
    Key(
        "hosts.engines[].endpoint",
        str,
        None,
        "the engine's API: unix:///PATH, tcp://HOST:PORT (with certPath) or "
        "ssh://[USER@]HOST[:PORT]",
        unset="this machine's engine",
    ),
    Key(
        "hosts.engines[].certPath",
        str,
        None,
        "directory with ca.pem, cert.pem and key.pem for a tcp:// endpoint",
        checks.absolute_path,
    ),
    Key("hosts.engines[].sshOpts", list, [], "ssh options for an ssh:// endpoint"),
    Key(
        "hosts.engines[].address",
        str,
        _LOOPBACK,
        "where clients reach the ports published on this host",
        checks.address,
    ),
    Key(
        "hosts.swarmManager",
        str,
        None,
        "the engine the overlay network is created through; required with several engines",
    ),
    Key(
        "hosts.pin.*", str, "", "`hosts.pin.CONTAINER`: the engine (by name) the container runs on"
    ),
    # Top-level keys, each stored as a config secret; unset, a password is generated.
    *(
        Key(
            f"{role}Password",
            str,
            None,
            f"{what}; 12-1024 characters, no control characters, not blank, no leading or "
            "trailing white space",
            checks.password,
            secret=True,
            unset="generated",
        )
        for role, what in (
            ("superuser", "the superuser's password"),
            ("replication", "the replication role's password"),
            ("restApi", "the Patroni REST API's password"),
            ("application", "pooler.user's password"),
            ("poolerAuth", "pooler.authUser's password"),
            ("monitoring", "monitoring.user's password"),
        )
    ),
)

SECTIONS = tuple(dict.fromkeys(k.path.split(".")[0] for k in KEYS if k.section))
PASSWORDS = tuple(k for k in KEYS if k.secret)
# Password key -> Passwords field: restApiPassword -> rest_api.
PASSWORD_KEYS = {
    k.path: re.sub(r"(?<!^)(?=[A-Z])", "_", k.path[: -len("Password")]).lower() for k in PASSWORDS
}


def general(path: str) -> str:
    """A path as the table spells it: `hosts.engines[2]` is `hosts.engines[]`."""
    return re.sub(r"\[\d+\]", "[]", path)


def rows(section: str) -> tuple[Key, ...]:
    """The rows under a section and its subsections, in table order."""
    return tuple(k for k in KEYS if k.path.startswith(general(section) + "."))
