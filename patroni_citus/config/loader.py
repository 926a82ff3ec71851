"""Validates a stack's config and builds the frozen settings, reporting every problem at once.

`load_settings` takes any mapping (the Pulumi adapter is `patroni_citus.config.stack`), so every rule
is testable without Pulumi. Each problem names the key, the value (redacted where the key or
its section is secret) and the rule.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from typing import Any, Callable, Mapping, Optional, TypeVar

from .. import conventions
from . import addressing, checks, versions
from .addressing import MAX_ETCD_MEMBERS, MAX_GROUP_MEMBERS, MAX_WORKER_GROUPS
from .hosts import is_loopback, place, read_engines
from .model import (
    ETCD_APIS,
    FLAVOURS,
    CitusSettings,
    ClusterSettings,
    CrashWatcherSettings,
    EngineSettings,
    EtcdSettings,
    HostSettings,
    ImageSettings,
    MonitoringSettings,
    NetworkSettings,
    ObservabilitySettings,
    Passwords,
    PatroniSettings,
    PoolerSettings,
    ResourceLimits,
    ServiceSettings,
    Settings,
    VipSettings,
)
from .postgres import BACKUP_MANAGED, PARAMETER_NAME, parameter_problem
from .reader import SECRET_SHOWN, Reader, SettingsError, config_key, shown
from .services import read_backups, read_endpoints, read_monitoring, read_pooler

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
MAX_NESTING = 16
MAX_MEMORY_MB = 1024 * 1024

SECTIONS = (
    "cluster",
    "network",
    "etcd",
    "citus",
    "patroni",
    "vip",
    "image",
    "volumes",
    "observability",
    "engine",
    "crashWatcher",
    "endpoints",
    "pooler",
    "monitoring",
    "backups",
    "hosts",
)
PASSWORD_KEYS = {
    "superuserPassword": "superuser",
    "replicationPassword": "replication",
    "restApiPassword": "rest_api",
    # Generated when unset, like the others: the pooler's application role, the role PgBouncer
    # runs auth_query as, and the exporters' monitoring role.
    "applicationPassword": "application",
    "poolerAuthPassword": "pooler_auth",
    "monitoringPassword": "monitoring",
}

# Pinned upstream images; the integration suite points these keys at local stand-ins.
OBSERVABILITY_DEFAULTS = {
    "cadvisor": ("gcr.io/cadvisor/cadvisor:v0.49.1", 8080, True),
    "fluentd": ("fluent/fluentd:v1.17.0-debian-1.1", 24224, True),
    "adminer": ("adminer:4.8.1", 8081, False),
}

T = TypeVar("T")


class Unreadable:
    """A config value the Pulumi adapter could not decode (invalid or absurdly nested JSON)."""

    def __init__(self, reason: str):
        self.reason = reason


def load_settings(
    config: Mapping[str, Any],
    secrets: Mapping[str, Any],
    plaintext: frozenset[str] = frozenset(),
    secret_sections: frozenset[str] = frozenset(),
) -> Settings:
    """Validates the stack config and returns frozen settings, or raises SettingsError listing
    every problem found. `config` maps top-level keys (without the project prefix) to values;
    `secrets` maps password keys to their decrypted values (or None); `plaintext` names the
    password keys stored without encryption; `secret_sections` the other keys stored
    encrypted."""
    problems: list[str] = []
    config = _top_level(config, secret_sections, problems)

    def reader(section: str) -> Reader:
        return Reader(section, config.get(section), problems, section in secret_sections)

    cluster = _read_cluster(reader("cluster"))
    network = _read_network(reader("network"), cluster.scope)
    image = _read_image(reader("image"))
    etcd = _read_etcd(reader("etcd"), cluster.scope)
    citus = _read_citus(reader("citus"))
    patroni = _read_patroni(reader("patroni"), citus.enabled)
    vip = _read_vip(reader("vip"), network)
    volumes = reader("volumes")
    retain = volumes.value("retainOnDelete", True, bool)
    volumes.finish()
    passwords = _read_passwords(secrets, plaintext, problems)
    observability = _read_observability(reader("observability"))
    engine = _read_engine(reader("engine"))
    crash_watcher = _read_crash_watcher(reader("crashWatcher"))
    endpoints = read_endpoints(reader("endpoints"))
    pooler = read_pooler(reader("pooler"), endpoints)
    monitoring = read_monitoring(reader("monitoring"))
    backups = read_backups(reader("backups"), cluster.scope, citus)
    engines, swarm_manager, pins = read_engines(reader("hosts"))
    if len(engines) > 1:
        endpoints = dataclasses.replace(endpoints, one_per_host=True)
    if backups.enabled:
        _check_backup_parameters(patroni, problems)

    if not problems:
        _check_cross_rules(network, image, etcd, citus, patroni, vip, problems)
        _check_roles(patroni, pooler, monitoring, problems)
    if problems:
        raise SettingsError(problems)
    settings = Settings(
        cluster,
        network,
        etcd,
        citus,
        patroni,
        vip,
        image,
        passwords,
        retain,
        observability,
        engine,
        crash_watcher,
        endpoints,
        pooler,
        monitoring,
        backups,
        HostSettings(engines, swarm_manager),
    )
    _check_addresses(settings, problems)
    if engines:
        settings = _placed(settings, config, pins, problems)
    if problems:
        raise SettingsError(problems)
    return settings


def _top_level(
    config: Mapping[str, Any], secret_sections: frozenset[str], problems: list[str]
) -> dict[str, Any]:
    known: dict[str, Any] = {}
    for key in sorted(config, key=str):
        value = config[key]
        if isinstance(value, Unreadable):
            problems.append(f"{config_key(key)}: {value.reason}")
        elif key not in SECTIONS:
            section, dot, _ = str(key).partition(".")
            hint = (
                f"; to set a nested value use `pulumi config set --path {key} VALUE`"
                if dot and section in SECTIONS
                else " (see README, 'Configuration')"
            )
            problems.append(f"{config_key(str(key))}: unknown key{hint}")
        elif not checks.depth(value, MAX_NESTING):
            problems.append(f"{config_key(key)}: nested more than {MAX_NESTING} levels deep")
        else:
            if key in secret_sections:
                problems.append(
                    f"{config_key(key)} = {SECRET_SHOWN}: is stored as a secret; only "
                    f"{', '.join(PASSWORD_KEYS)} may be: the program does not keep other "
                    "values encrypted (outputs, labels, commands)"
                )
            known[key] = value
    return known


def _read_cluster(r: Reader) -> ClusterSettings:
    scope = r.value("scope", "citus", str, checks.scope_name)
    namespace = r.value(
        "namespace",
        "/service",
        str,
        checks.matches(
            re.compile(r"^/?[A-Za-z0-9_-]{1,64}/?$"), "one path segment such as /service"
        ),
    )
    r.finish()
    return ClusterSettings(scope=scope, namespace="/" + namespace.strip("/") + "/")


def _parse(kind: Callable[[str], T], text: Optional[str], fallback: T) -> T:
    try:
        return kind(text) if text is not None else fallback
    except ValueError:
        return fallback  # already reported by the reader


def _read_network(r: Reader, scope: str) -> NetworkSettings:
    name = r.value("name", f"{scope}-net", str, checks.network_name)
    subnet_text = r.value("subnet", "172.30.0.0/16", str, checks.subnet)
    range_text = r.value("memberRange", "172.30.1.0/24", str, checks.member_range)
    gateway_text = r.value("gateway", None, str, checks.address)
    r.finish()
    subnet = _parse(ipaddress.IPv4Network, subnet_text, ipaddress.IPv4Network("172.30.0.0/16"))
    member_range = _parse(ipaddress.IPv4Network, range_text, ipaddress.IPv4Network("172.30.1.0/24"))
    gateway = _parse(ipaddress.IPv4Address, gateway_text, subnet.network_address + 1)
    if not member_range.subnet_of(subnet):
        r.fail("memberRange", range_text, f"must lie inside network.subnet {subnet}")
    if gateway not in subnet or gateway in (subnet.network_address, subnet.broadcast_address):
        r.fail("gateway", str(gateway), f"must be a host address inside network.subnet {subnet}")
    elif gateway in member_range:
        r.fail(
            "memberRange",
            range_text,
            f"must not contain the gateway {gateway}; members take addresses from the whole range",
        )
    return NetworkSettings(name=name, subnet=subnet, gateway=gateway, member_range=member_range)


def _read_image(r: Reader) -> ImageSettings:
    name = r.value("name", "patroni-citus:local", str, checks.image_reference)
    flavour = r.value("flavour", "upstream", str, checks.one_of(*FLAVOURS))
    base_image = r.value("baseImage", "debian:bookworm-slim", str, checks.image_reference)
    local_debs = r.value("localDebs", False, bool)
    if flavour == "debian":
        image = _read_debian_image(r, name, base_image, local_debs)
    else:
        image = _read_upstream_image(r, name, base_image, local_debs)
    r.finish()
    return image


def _read_upstream_image(r: Reader, name: str, base_image: str, local_debs: bool) -> ImageSettings:
    major = r.value(
        "postgresMajor",
        versions.DEFAULT_POSTGRES_MAJOR,
        int,
        lambda v: (
            None
            if v in versions.POSTGRES_MAJORS
            else f"must be one of {', '.join(map(str, versions.POSTGRES_MAJORS))} "
            "(majors the PostgreSQL project still supports)"
        ),
    )
    citus_line = r.value(
        "citusVersion",
        versions.DEFAULT_CITUS_LINE,
        str,
        lambda v: (
            None
            if v in versions.CITUS_LINES
            else f"must be a Citus package line: {', '.join(versions.CITUS_LINES)}"
        ),
    )
    citus_package = r.value("citusPackageVersion", None, str, checks.version)
    if citus_package and versions.version_form(citus_package) == "line":
        r.fail(
            "citusPackageVersion",
            citus_package,
            "must be a release (14.0.1) or an exact Debian version (14.0.1.citus-1); "
            "the line is image.citusVersion",
        )
    elif (
        citus_package
        and versions.version_form(citus_package)
        and not (versions.upstream_release(citus_package) or "").startswith(citus_line + ".")
    ):
        r.fail(
            "citusPackageVersion",
            citus_package,
            f"must be a release of the Citus line image.citusVersion ({citus_line})",
        )
    patroni = r.value("patroniVersion", None, str, checks.version)
    floor = versions.patroni_floor(major)
    if patroni and versions.version_form(patroni) and not versions.line_allows(patroni, floor):
        r.fail(
            "patroniVersion",
            patroni,
            f"PostgreSQL {major} with this program needs Patroni {floor} or newer",
        )
    vip_manager = r.value("vipManagerVersion", None, str, checks.version)
    if (
        vip_manager
        and versions.version_form(vip_manager)
        and not versions.line_allows(vip_manager, versions.VIP_MANAGER_V3_FLOOR)
    ):
        r.fail(
            "vipManagerVersion",
            vip_manager,
            "the upstream flavour installs the PostgreSQL project's vip-manager2 (2.0 and "
            "newer, etcd v3 API); vip-manager 1.x is Debian's: use image.flavour debian",
        )
    if local_debs:
        r.fail("localDebs", local_debs, "applies to the debian flavour only")
    return ImageSettings(
        name,
        base_image,
        "upstream",
        major,
        citus_line,
        citus_package,
        patroni,
        vip_manager,
        local_debs,
    )


def _read_debian_image(r: Reader, name: str, base_image: str, local_debs: bool) -> ImageSettings:
    major = r.value("postgresMajor", versions.DEBIAN_POSTGRES_MAJOR, int)
    if major != versions.DEBIAN_POSTGRES_MAJOR:
        r.fail(
            "postgresMajor",
            major,
            f"the debian flavour has only PostgreSQL {versions.DEBIAN_POSTGRES_MAJOR} (bookworm)",
        )
    vip_manager = r.value("vipManagerVersion", versions.DEBIAN_VIP_MANAGER_VERSION, str)
    if vip_manager != versions.DEBIAN_VIP_MANAGER_VERSION:
        r.fail(
            "vipManagerVersion",
            vip_manager,
            f"the debian flavour has only vip-manager {versions.DEBIAN_VIP_MANAGER_VERSION}",
        )
    from_debs = "Citus comes from images/patroni/debs/ (image.localDebs)"
    r.refuse("citusVersion", f"does not apply to the debian flavour: {from_debs}")
    r.refuse("citusPackageVersion", f"does not apply to the debian flavour: {from_debs}")
    r.refuse(
        "patroniVersion",
        "does not apply to the debian flavour: Patroni is trixie's "
        f"{versions.DEBIAN_PATRONI_LINE} line",
    )
    return ImageSettings(name, base_image, "debian", major, "", None, None, vip_manager, local_debs)


def _read_etcd(r: Reader, scope: str) -> EtcdSettings:
    def odd_quorum(v: int) -> Optional[str]:
        if v < 3 or v > MAX_ETCD_MEMBERS:
            return f"must be an odd number between 3 and {MAX_ETCD_MEMBERS}"
        if v % 2 == 0:
            return (
                "must be odd: an even count tolerates no more failures than the odd count "
                "below it and makes a split vote possible"
            )
        return None

    members = r.value("members", 3, int, odd_quorum)
    api = r.value("apiVersion", "v3", str, checks.one_of(*ETCD_APIS))
    image = r.value("image", None, str, checks.image_reference)
    token = r.value(
        "clusterToken",
        f"{scope}-etcd",
        str,
        checks.matches(re.compile(r"^[A-Za-z0-9_.-]{1,64}$"), "a short token"),
    )
    retention = r.value(
        "autoCompactionRetention",
        "1",
        str,
        checks.matches(re.compile(r"^\d{1,6}[hm]?$"), "hours (e.g. 1) or a duration such as 30m"),
    )
    r.finish()
    tag = checks.image_tag(image) if image else None
    if api == "v2" and tag and versions.version_key(tag)[:2] >= (3, 6):
        r.fail(
            "image",
            image,
            "etcd 3.6 removed the v2 API that etcd.apiVersion v2 needs; "
            "use an etcd 3.5 image or etcd.apiVersion v3",
        )
    return EtcdSettings(members, api, image, token, retention)  # type: ignore[arg-type]


def _read_citus(r: Reader) -> CitusSettings:
    group_keys = (
        "database",
        "coordinatorMembers",
        "workerGroups",
        "membersPerGroup",
        "rebalanceOnJoin",
    )
    given = {key: r.raw[key] for key in group_keys if key in r.raw}
    enabled = r.value("enabled", True, bool)
    database = r.value("database", "citus", str, checks.pg_database)
    coordinator = r.value("coordinatorMembers", 2, int, checks.between(1, MAX_GROUP_MEMBERS))
    workers = r.value("workerGroups", 2, int, checks.between(0, MAX_WORKER_GROUPS))
    per_group = r.value("membersPerGroup", 2, int, checks.between(1, MAX_GROUP_MEMBERS))
    rebalance = r.value("rebalanceOnJoin", False, bool)
    r.finish()
    if not enabled:
        for key, value in given.items():
            r.fail(
                key,
                value,
                "does not apply with citus.enabled false (the single group is patroni.members)",
            )
    return CitusSettings(enabled, database, coordinator, workers, per_group, rebalance)


def _read_patroni(r: Reader, citus_enabled: bool) -> PatroniSettings:
    members_set = r.has("members")
    members = r.value("members", 2, int, checks.between(1, MAX_GROUP_MEMBERS))
    if citus_enabled and members_set:
        r.fail(
            "members",
            members,
            "does not apply with Citus on: set citus.coordinatorMembers and citus.membersPerGroup",
        )
    timing_problems = len(r.problems)
    ttl = r.value("ttl", 30, int, checks.between(20, 3600))
    loop_wait = r.value("loopWait", 10, int, checks.between(1, 3600))
    retry_timeout = r.value("retryTimeout", 10, int, checks.between(3, 3600))
    lag = r.value("maximumLagOnFailover", 1048576, int, checks.between(0, 2**40))
    synchronous = r.value("synchronousMode", True, bool)
    failsafe = r.value("failsafeMode", False, bool)
    parameters: dict[str, Any] = r.value("parameters", {}, dict)
    for key, value in parameters.items():
        if not PARAMETER_NAME.fullmatch(str(key)):
            r.fail(f"parameters.{str(key)[:60]}", value, "must be a PostgreSQL setting name")
            continue
        rule = parameter_problem(str(key), value, synchronous)
        if rule:
            r.fail(f"parameters.{key}", value, rule)
    resources = _read_resources(r.section_reader("resources"))
    superuser = r.value("superuser", "postgres", str, checks.pg_role)
    replication = r.value("replicationUser", "replicator", str, checks.pg_role)
    rest_user = r.value(
        "restApiUser",
        "patroni",
        str,
        checks.matches(re.compile(r"^[A-Za-z0-9_.-]{1,63}$"), "a user name"),
    )
    r.finish()
    if superuser == replication:
        r.fail("replicationUser", replication, "must differ from patroni.superuser")
    # The combined rule only means something once each value passes on its own.
    timing_valid = len(r.problems) == timing_problems
    if timing_valid and loop_wait + 2 * retry_timeout > ttl:
        r.fail(
            "ttl",
            ttl,
            f"Patroni needs loop_wait + 2*retry_timeout <= ttl "
            f"({loop_wait} + 2*{retry_timeout} = {loop_wait + 2 * retry_timeout})",
        )
    return PatroniSettings(
        members,
        ttl,
        loop_wait,
        retry_timeout,
        lag,
        synchronous,
        failsafe,
        dict(parameters),
        resources,
        superuser,
        replication,
        rest_user,
    )


def _read_resources(r: Reader) -> ResourceLimits:
    before = len(r.problems)
    memory = r.value(
        "memoryMb",
        1024,
        int,
        lambda v: (
            None
            if v == 0 or 256 <= v <= MAX_MEMORY_MB
            else f"must be 0 (no limit) or from 256 to {MAX_MEMORY_MB}"
        ),
    )
    cpus = r.value("cpus", None, str, checks.cpus)
    shm = r.value("shmSizeMb", 256, int, checks.between(64, 65536))
    r.finish()
    if len(r.problems) == before and memory and shm >= memory:
        r.fail(
            "shmSizeMb",
            shm,
            f"must be below patroni.resources.memoryMb ({memory}): "
            "/dev/shm counts against the container's memory limit",
        )
    return ResourceLimits(memory, cpus, shm)


def _read_vip(r: Reader, network: NetworkSettings) -> VipSettings:
    enabled = r.value("enabled", False, bool)
    address_text = r.value("address", None, str, checks.address)
    netmask_set = r.has("netmask")
    netmask = r.value("netmask", network.subnet.prefixlen, int, checks.between(1, 32))
    interface = r.value("interface", "eth0", str, checks.interface)
    group = r.value("group", 0, int, checks.between(0, MAX_WORKER_GROUPS))
    interval = r.value("intervalMs", 1000, int, checks.between(100, 60000))
    r.finish()
    address = _parse(ipaddress.IPv4Address, address_text, None) if address_text else None
    if enabled and address is None:
        r.fail("address", address_text, "is required when vip.enabled is true")
    if address is not None:
        if address not in network.subnet:
            r.fail("address", str(address), f"must lie inside network.subnet {network.subnet}")
        elif address in network.member_range:
            r.fail(
                "address",
                str(address),
                f"must lie outside network.memberRange {network.member_range}, "
                "or a member could be given the same address",
            )
        elif address in (
            network.subnet.network_address,
            network.subnet.broadcast_address,
            network.gateway,
        ):
            r.fail("address", str(address), "must not be the network, broadcast or gateway address")
    if (enabled or netmask_set) and netmask != network.subnet.prefixlen:
        r.fail(
            "netmask",
            netmask,
            f"must equal the prefix length of network.subnet ({network.subnet.prefixlen})",
        )
    return VipSettings(enabled, address, netmask, interface, group, interval)


def _password_problem(value: Any) -> Optional[str]:
    if not isinstance(value, str):
        return "must be a string (set it without --path)"
    if len(value) < MIN_PASSWORD_LENGTH:
        return f"must be at least {MIN_PASSWORD_LENGTH} characters"
    if len(value) > MAX_PASSWORD_LENGTH:
        return f"must be at most {MAX_PASSWORD_LENGTH} characters"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "must not contain control characters (a newline would split .pgpass)"
    if not value.strip() or value != value.strip():
        return "must not be blank or start or end with white space"
    return None


def _read_passwords(
    secrets: Mapping[str, Any], plaintext: frozenset[str], problems: list[str]
) -> Passwords:
    values: dict[str, Optional[str]] = {}
    for key, attr in PASSWORD_KEYS.items():
        value = secrets.get(key)
        rule = _password_problem(value) if value is not None else None
        if key in plaintext:
            problems.append(
                f"{config_key(key)} = [not shown]: is stored in plain text in the "
                f"stack file; set it with `pulumi config set --secret {key}`"
            )
        elif rule:
            # Never echo a secret: name the key and the rule only.
            problems.append(f"{config_key(key)} = {SECRET_SHOWN}: {rule}")
        values[attr] = value if rule is None else None
    return Passwords(**values)


def _read_observability(r: Reader) -> ObservabilitySettings:
    enabled = r.value("enabled", False, bool)
    allow_public = r.value("allowPublicPorts", False, bool)
    services = {}
    for service, (image, port, on) in OBSERVABILITY_DEFAULTS.items():
        s = r.section_reader(service)
        host_ip = s.value("hostIp", "127.0.0.1", str, checks.address)
        if host_ip != "127.0.0.1" and not allow_public:
            s.fail(
                "hostIp",
                host_ip,
                "publishes beyond loopback; set "
                "observability.allowPublicPorts to true if that is intended",
            )
        services[service] = ServiceSettings(
            enabled=s.value("enabled", on, bool),
            image=s.value("image", image, str, checks.image_reference),
            host_ip=host_ip,
            host_port=s.value("hostPort", port, int, checks.between(1, 65535)),
        )
        s.finish()
    r.finish()
    ports = [(v.host_ip, v.host_port) for v in services.values() if v.enabled]
    for service, value in services.items():
        if value.enabled and ports.count((value.host_ip, value.host_port)) > 1:
            r.fail(f"{service}.hostPort", value.host_port, "is published by another service too")
    return ObservabilitySettings(enabled, **services)


def _read_engine(r: Reader) -> EngineSettings:
    socket = r.value("socket", conventions.HOST_ENGINE_SOCKETS[0], str, checks.absolute_path)
    r.finish()
    return EngineSettings(socket)


def _read_crash_watcher(r: Reader) -> CrashWatcherSettings:
    # Off unless asked for: it needs the engine proxy, which holds the engine's socket.
    enabled = r.value("enabled", False, bool)
    r.finish()
    return CrashWatcherSettings(enabled)


def _check_cross_rules(
    network: NetworkSettings,
    image: ImageSettings,
    etcd: EtcdSettings,
    citus: CitusSettings,
    patroni: PatroniSettings,
    vip: VipSettings,
    problems: list[str],
) -> None:
    if vip.enabled and not image.vip_manager_speaks_etcd_v3 and etcd.api != "v2":
        problems.append(
            f"{config_key('etcd.apiVersion')} = {etcd.api!r}: vip-manager "
            f"{image.vip_manager_version} speaks only the etcd v2 API; set etcd.apiVersion to "
            "v2 or use the upstream flavour"
        )
    if vip.enabled and image.vip_manager_speaks_etcd_v3 and etcd.api != "v3":
        problems.append(
            f"{config_key('etcd.apiVersion')} = {etcd.api!r}: the upstream flavour's "
            "vip-manager (2.0 and newer) reads the leader key through the etcd v3 API only, "
            "which cannot see keys Patroni writes through v2; set etcd.apiVersion to v3"
        )
    supported = versions.CITUS_LINES.get(image.citus_version, ())
    if citus.enabled and image.flavour == "upstream" and image.postgres_major not in supported:
        problems.append(
            f"{config_key('image.citusVersion')} = {image.citus_version!r}: Citus "
            f"{image.citus_version} builds against PostgreSQL {', '.join(map(str, supported))}, "
            f"not image.postgresMajor {image.postgres_major}; packagecloud has no "
            f"{versions.citus_package(image.postgres_major, image.citus_version)}"
        )
    if citus.enabled and image.flavour == "debian" and not image.local_debs:
        problems.append(
            f"{config_key('citus.enabled')} = True: Debian's archive has no Citus package; "
            "put postgresql-15-citus .deb files in images/patroni/debs/ and set "
            "image.localDebs to true, or set citus.enabled to false"
        )
    sizes = addressing.group_sizes(citus, patroni.members)
    if vip.enabled and vip.group >= len(sizes):
        problems.append(
            f"{config_key('vip.group')} = {vip.group}: no such group "
            f"(groups are 0..{len(sizes) - 1})"
        )
    needed = addressing.slots_needed(sizes)
    available = network.member_range.num_addresses - 2
    if needed > available:
        problems.append(
            f"{config_key('network.memberRange')} = '{network.member_range}': too small for "
            f"{len(sizes)} group(s): needs {needed} addresses (16 per group after 16 for etcd)"
        )


def _check_backup_parameters(patroni: PatroniSettings, problems: list[str]) -> None:
    """With backups on, the program owns WAL archiving (patroni_citus/plan/backups.py)."""
    for name, value in patroni.parameters.items():
        if name in BACKUP_MANAGED:
            problems.append(
                f"{config_key(f'patroni.parameters.{name}')} = {shown(value)}: is managed: "
                f"{BACKUP_MANAGED[name]}"
            )


def _check_roles(
    patroni: PatroniSettings,
    pooler: PoolerSettings,
    monitoring: MonitoringSettings,
    problems: list[str],
) -> None:
    """Every role the program creates has one purpose: a shared name would mix privileges."""
    roles = [
        ("patroni.superuser", patroni.superuser),
        ("patroni.replicationUser", patroni.replication_user),
        ("pooler.user", pooler.user),
        ("pooler.authUser", pooler.auth_user),
        ("monitoring.user", monitoring.user),
    ]
    seen: dict[str, str] = {}
    for key, role in roles:
        if role in seen:
            problems.append(f"{config_key(key)} = {role!r}: is already {config_key(seen[role])}")
        seen.setdefault(role, key)


def _check_addresses(settings: Settings, problems: list[str]) -> None:
    """Defence in depth: no two things on the network may share an address."""
    owners: dict[ipaddress.IPv4Address, str] = {settings.network.gateway: "the gateway"}
    services = [("haproxy", settings.endpoints.enabled, settings.endpoints.instances)]
    services.append(("pgbouncer", settings.pooler.enabled, settings.endpoints.instances))
    services.append(("prometheus", settings.monitoring.enabled, 1))
    for role, enabled, instances in services:
        for instance in range(instances if enabled else 0):
            # The member-range check (16 slots per group, 16 for etcd) keeps these inside it.
            owners[settings.service_address(role, instance)] = f"{role} {instance + 1}"
    if settings.observability.active("adminer"):
        owners[settings.adminer_address] = "adminer"
    if settings.crash_watcher.enabled:
        owners[settings.crash_watcher_address] = "the crash watcher"
    if settings.vip.address is not None:
        owners.setdefault(settings.vip.address, "the VIP")
    members = list(settings.etcd_members) + [m for g in settings.groups for m in g.members]
    for member in members:
        if member.address in owners:
            problems.append(
                f"{config_key('network.memberRange')} = '{settings.network.member_range}': "
                f"{member.name} would get {member.address}, already used by "
                f"{owners[member.address]}"
            )
        owners.setdefault(member.address, member.name)


# What runs on several engines; everything else still needs one engine (README, "Several
# hosts"): a VIP cannot move between hosts, the backup repository and the exporters share a
# host with their members, the crash watcher and cadvisor read one engine's events.
_ONE_ENGINE_ONLY: dict[str, Callable[[Settings], bool]] = {
    "vip.enabled": lambda s: s.vip.enabled,
    "backups.enabled": lambda s: s.backups.enabled,
    "pooler.enabled": lambda s: s.pooler.enabled,
    "monitoring.enabled": lambda s: s.monitoring.enabled,
    "observability.enabled": lambda s: s.observability.enabled,
    "crashWatcher.enabled": lambda s: s.crash_watcher.enabled,
}


def _placed(
    settings: Settings, config: Mapping[str, Any], pins: dict[str, str], problems: list[str]
) -> Settings:
    """Settings with every container placed on an engine, or problems with the hosts."""
    engines = settings.hosts.engines
    spread = [[m.name for m in settings.etcd_members]]
    spread += [[m.name for m in g.members] for g in settings.groups]
    if len(engines) > 1:
        _check_several_engines(settings, config, problems)
        spread.append(
            [settings.service_name("haproxy", i) for i in range(settings.endpoints.instances)]
        )
    placed = {name for group in spread for name in group}
    for container in sorted(set(pins) - placed):
        problems.append(
            f"{config_key('hosts.pin.' + container)}: no such container; pins name etcd "
            f"members, Patroni members{' or HAProxy instances' if len(engines) > 1 else ''} "
            f"({', '.join(sorted(placed)[:4])}, ...)"
        )
    placement = place([e.name for e in engines], spread, pins)
    haproxy_hosts = [placement[c] for c in spread[-1]] if len(engines) > 1 else []
    if len(set(haproxy_hosts)) < len(haproxy_hosts):
        problems.append(
            f"{config_key('endpoints.instances')} = {settings.endpoints.instances}: with several "
            "engines each HAProxy instance needs an engine of its own (they publish the same "
            f"ports on their host); there are {len(engines)} and hosts.pin may not share one"
        )
    if problems:
        raise SettingsError(problems)
    return dataclasses.replace(
        settings, hosts=dataclasses.replace(settings.hosts, placement=placement)
    )


def _check_several_engines(
    settings: Settings, config: Mapping[str, Any], problems: list[str]
) -> None:
    for key, enabled in _ONE_ENGINE_ONLY.items():
        if enabled(settings):
            problems.append(
                f"{config_key(key)} = true: not available with several hosts.engines "
                "(README, 'Several hosts')"
            )
    if not settings.endpoints.enabled:
        problems.append(
            f"{config_key('endpoints.enabled')}: must be true with several hosts.engines: "
            "clients outside the overlay network reach the coordinator through HAProxy"
        )
    endpoints_config = config.get("endpoints")
    if isinstance(endpoints_config, Mapping) and "hostIp" in endpoints_config:
        problems.append(
            f"{config_key('endpoints.hostIp')}: does not apply with several hosts.engines: "
            "each instance publishes on its engine's address"
        )
    local = [e.name for e in settings.hosts.engines if e.endpoint is None]
    if len(local) > 1:
        problems.append(
            f"{config_key('hosts.engines')}: {', '.join(local)} all omit endpoint, so name "
            "the same engine; give each its engine's endpoint"
        )
    for index, engine in enumerate(settings.hosts.engines):
        if is_loopback(engine.address):
            problems.append(
                f"{config_key(f'hosts.engines[{index}].address')} = {engine.address!r}: "
                "with several engines, set the address clients reach this host at"
            )
