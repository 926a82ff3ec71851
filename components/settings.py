"""Typed stack settings: read once from stack config, validated, frozen.

Components take these dataclasses and never read config themselves. `load_settings` accepts
any mapping-like source (the real `pulumi.Config` adapter lives in `components.config`), so
every rule here is testable without Pulumi.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping, Optional

from . import versions

# Fixed address slots inside the member range keep every member's address stable when groups
# or members are added: etcd takes slots 0..15, group g takes slots 16*(g+1) .. 16*(g+1)+15.
SLOTS_PER_BLOCK = 16
MAX_ETCD_MEMBERS = 15
MAX_GROUP_MEMBERS = SLOTS_PER_BLOCK
MIN_PASSWORD_LENGTH = 12

FLAVOURS = ("upstream", "debian")
ETCD_APIS = ("v3", "v2")
Flavour = Literal["upstream", "debian"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")
_IFACE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_PG_ROLE = _DB_NAME
_PARAMETER = re.compile(r"^[a-z_][a-z0-9_.]*$")


class SettingsError(ValueError):
    """Every invalid config value, each naming the key, the value and the rule."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid stack configuration:\n  - " + "\n  - ".join(problems))


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
    api: str  # "v3" or "v2"
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
class Passwords:
    """Passwords supplied as config secrets; None means 'generate one'."""

    superuser: Optional[str] = field(default=None, repr=False)
    replication: Optional[str] = field(default=None, repr=False)
    rest_api: Optional[str] = field(default=None, repr=False)


@dataclass(frozen=True)
class Member:
    name: str  # Patroni member name = container name = hostname
    group: int
    index: int
    address: ipaddress.IPv4Address


@dataclass(frozen=True)
class Group:
    number: int
    role: str  # "coordinator", "worker" or "cluster" (Citus off)
    label: str  # short name used in member and resource names: coord, work1, pg
    members: tuple[Member, ...]


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

    @property
    def coordinator_hosts(self) -> tuple[str, ...]:
        """Where clients reach the coordinator: the VIP when it fronts group 0, otherwise every
        coordinator member (libpq picks the primary with target_session_attrs)."""
        if self.vip.enabled and self.vip.group == 0:
            return (str(self.vip.address),)
        return tuple(str(m.address) for m in self.groups[0].members)

    @property
    def adminer_address(self) -> ipaddress.IPv4Address:
        """The last host of the member range, far from the member slots."""
        return self.network.member_range.broadcast_address - 1

    @property
    def etcd_members(self) -> tuple[Member, ...]:
        return tuple(
            Member(f"{self.cluster.scope}-etcd-{i + 1}", -1, i, _slot(self.network.member_range, i))
            for i in range(self.etcd.members)
        )

    @property
    def groups(self) -> tuple[Group, ...]:
        if not self.citus.enabled:
            return (self._group(0, "cluster", "pg", self.patroni.members),)
        coordinator = self._group(0, "coordinator", "coord", self.citus.coordinator_members)
        workers = tuple(
            self._group(g, "worker", f"work{g}", self.citus.members_per_group)
            for g in range(1, self.citus.worker_groups + 1)
        )
        return (coordinator, *workers)

    def _group(self, number: int, role: str, label: str, count: int) -> Group:
        base = SLOTS_PER_BLOCK * (number + 1)
        members = tuple(
            Member(f"{self.cluster.scope}-{label}-{i + 1}", number, i,
                   _slot(self.network.member_range, base + i))
            for i in range(count)
        )
        return Group(number, role, label, members)

    @property
    def dcs_prefix(self) -> str:
        """The key prefix Patroni writes under: '/service/citus'."""
        return f"{self.cluster.namespace}{self.cluster.scope}"

    def leader_key(self, group: int) -> str:
        """The DCS key holding a group's leader name (Citus groups live one level deeper)."""
        if self.citus.enabled:
            return f"{self.dcs_prefix}/{group}/leader"
        return f"{self.dcs_prefix}/leader"


def _slot(member_range: ipaddress.IPv4Network, slot: int) -> ipaddress.IPv4Address:
    return member_range.network_address + 1 + slot


def _slots_needed(groups: int, largest_group: int) -> int:
    return SLOTS_PER_BLOCK * groups + largest_group


# --------------------------------------------------------------------------------------------
# Reading and validating


class _Reader:
    """Reads one structured config object, recording problems instead of raising."""

    def __init__(self, section: str, raw: Any, problems: list[str]):
        self.section = section
        self.problems = problems
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            self.fail("", raw, "must be an object")
            raw = {}
        self.raw = dict(raw)

    def key(self, name: str) -> str:
        return f"patroni-citus:{self.section}.{name}" if name else f"patroni-citus:{self.section}"

    def fail(self, name: str, value: Any, rule: str) -> None:
        self.problems.append(f"{self.key(name)} = {value!r}: {rule}")

    def has(self, name: str) -> bool:
        return name in self.raw

    def value(self, name: str, default: Any, kind: type | tuple[type, ...],
              check: Optional[Callable[[Any], Optional[str]]] = None) -> Any:
        value = self.raw.pop(name, default)
        if value is None:
            return default
        # YAML and the Pulumi CLI hand numbers and booleans over as strings when set with
        # `pulumi config set`; accept those spellings for typed keys.
        value = _coerce(value, kind)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.fail(name, value, f"must be {_kind_name(kind)}")
            return default
        if check is not None:
            rule = check(value)
            if rule:
                self.fail(name, value, rule)
        return value

    def finish(self) -> None:
        for name in sorted(self.raw):
            self.fail(name, self.raw[name], "unknown key (see README, 'Configuration')")


def _coerce(value: Any, kind: Any) -> Any:
    if isinstance(value, str) and kind is int and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    if isinstance(value, str) and kind is bool and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


def _kind_name(kind: Any) -> str:
    names = {int: "an integer", bool: "true or false", str: "a string", dict: "an object"}
    if isinstance(kind, tuple):
        return " or ".join(names.get(k, k.__name__) for k in kind)
    return names.get(kind, kind.__name__)


def _between(low: int, high: int) -> Callable[[int], Optional[str]]:
    return lambda v: None if low <= v <= high else f"must be between {low} and {high}"


def _matches(pattern: re.Pattern[str], what: str) -> Callable[[str], Optional[str]]:
    return lambda v: None if pattern.fullmatch(v) else f"must be {what}"


def _one_of(*choices: str) -> Callable[[str], Optional[str]]:
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}"


def _network(value: str) -> Optional[str]:
    try:
        ipaddress.IPv4Network(value)
    except ValueError:
        return "must be an IPv4 network in CIDR form with no host bits set, e.g. 172.30.0.0/16"
    return None


def _address(value: str) -> Optional[str]:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return "must be an IPv4 address, e.g. 172.30.254.254"
    return None


def _image_reference(value: str) -> Optional[str]:
    if "@sha256:" in value:
        return None
    tag = value.rsplit("/", 1)[-1].partition(":")[2]
    if not tag:
        return "must be pinned with a tag or digest (e.g. quay.io/coreos/etcd:v3.5.16)"
    if tag == "latest":
        return "must be pinned: 'latest' changes under you; use a version tag or digest"
    return None


def load_settings(config: Mapping[str, Any], secrets: Mapping[str, Optional[str]],
                  plaintext: frozenset[str] = frozenset()) -> Settings:
    """Validates the stack config and returns frozen settings, or raises SettingsError listing
    every problem found. `config` maps top-level keys (without the project prefix) to values;
    `secrets` maps password keys to their decrypted values (or None); `plaintext` names the
    password keys that were stored without encryption."""
    problems: list[str] = []

    known = {"cluster", "network", "etcd", "citus", "patroni", "vip", "image", "volumes",
             "observability"}
    for key in sorted(set(config) - known):
        problems.append(f"patroni-citus:{key}: unknown key (see README, 'Configuration')")

    cluster = _read_cluster(_Reader("cluster", config.get("cluster"), problems))
    network = _read_network(_Reader("network", config.get("network"), problems), cluster.scope)
    image = _read_image(_Reader("image", config.get("image"), problems))
    etcd = _read_etcd(_Reader("etcd", config.get("etcd"), problems), cluster.scope)
    citus = _read_citus(_Reader("citus", config.get("citus"), problems))
    patroni = _read_patroni(_Reader("patroni", config.get("patroni"), problems))
    vip = _read_vip(_Reader("vip", config.get("vip"), problems), network)
    volumes = _Reader("volumes", config.get("volumes"), problems)
    retain = volumes.value("retainOnDelete", True, bool)
    volumes.finish()
    passwords = _read_passwords(secrets, plaintext, problems)
    observability = _read_observability(
        _Reader("observability", config.get("observability"), problems))

    if not problems:
        _check_cross_rules(network, image, etcd, citus, patroni, vip, problems)
    if problems:
        raise SettingsError(problems)
    settings = Settings(cluster, network, etcd, citus, patroni, vip, image, passwords, retain,
                        observability)
    _check_addresses(settings, problems)
    if problems:
        raise SettingsError(problems)
    return settings


def _read_cluster(r: _Reader) -> ClusterSettings:
    scope = r.value("scope", "citus", str,
                    _matches(_NAME, "lowercase letters, digits and '-', at most 31 characters"))
    namespace = r.value("namespace", "/service", str,
                        _matches(re.compile(r"^/?[A-Za-z0-9_-]+/?$"),
                                 "one path segment such as /service"))
    r.finish()
    return ClusterSettings(scope=scope, namespace="/" + namespace.strip("/") + "/")


def _read_network(r: _Reader, scope: str) -> NetworkSettings:
    name = r.value("name", f"{scope}-net", str,
                   _matches(re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"), "a Docker network name"))
    subnet_text = r.value("subnet", "172.30.0.0/16", str, _network)
    range_text = r.value("memberRange", "172.30.1.0/24", str, _network)
    gateway_text = r.value("gateway", None, str, _address)
    r.finish()
    subnet = _parse(ipaddress.IPv4Network, subnet_text, ipaddress.IPv4Network("172.30.0.0/16"))
    member_range = _parse(ipaddress.IPv4Network, range_text, ipaddress.IPv4Network("172.30.1.0/24"))
    gateway = (_parse(ipaddress.IPv4Address, gateway_text, subnet.network_address + 1)
               if gateway_text else subnet.network_address + 1)
    if not member_range.subnet_of(subnet):
        r.fail("memberRange", range_text, f"must lie inside network.subnet {subnet}")
    if gateway not in subnet or gateway in (subnet.network_address, subnet.broadcast_address):
        r.fail("gateway", str(gateway), f"must be a host address inside network.subnet {subnet}")
    elif gateway in member_range:
        r.fail("memberRange", range_text,
               f"must not contain the gateway {gateway}; members take addresses from the whole range")
    return NetworkSettings(name=name, subnet=subnet, gateway=gateway, member_range=member_range)


def _parse(kind: Callable[[str], Any], text: str, fallback: Any) -> Any:
    try:
        return kind(text)
    except ValueError:
        return fallback  # already reported by the reader


def _version(value: str) -> Optional[str]:
    if versions.version_form(value) is None:
        return ("must be a version line (4.1), a release (4.1.4) or an exact Debian package "
                "version (4.1.4-1.pgdg120+1)")
    return None


def _read_image(r: _Reader) -> ImageSettings:
    name = r.value("name", "patroni-citus:local", str, _image_reference)
    flavour = r.value("flavour", "upstream", str, _one_of(*FLAVOURS))
    base_image = r.value("baseImage", "debian:bookworm-slim", str, _image_reference)
    local_debs = r.value("localDebs", False, bool)
    if flavour == "debian":
        image = _read_debian_image(r, name, base_image, local_debs)
    else:
        image = _read_upstream_image(r, name, base_image, local_debs)
    r.finish()
    return image


def _read_upstream_image(r: _Reader, name: str, base_image: str, local_debs: bool) -> ImageSettings:
    major = r.value("postgresMajor", versions.DEFAULT_POSTGRES_MAJOR, int,
                    lambda v: None if v in versions.POSTGRES_MAJORS else
                    f"must be one of {', '.join(map(str, versions.POSTGRES_MAJORS))} "
                    "(majors the PostgreSQL project still supports)")
    citus_line = r.value("citusVersion", versions.DEFAULT_CITUS_LINE, str,
                         lambda v: None if v in versions.CITUS_LINES else
                         f"must be a Citus package line: {', '.join(versions.CITUS_LINES)}")
    citus_package = r.value("citusPackageVersion", None, str, _version)
    if citus_package and versions.version_form(citus_package) == "line":
        r.fail("citusPackageVersion", citus_package,
               "must be a release (14.0.1) or an exact Debian version (14.0.1.citus-1); "
               "the line is image.citusVersion")
    elif citus_package and not (versions.upstream_release(citus_package) or "").startswith(
            citus_line + "."):
        r.fail("citusPackageVersion", citus_package,
               f"must be a release of the Citus line image.citusVersion ({citus_line})")
    patroni = r.value("patroniVersion", None, str, _version)
    floor = versions.patroni_floor(major)
    if patroni and versions.version_form(patroni) and not versions.line_allows(patroni, floor):
        r.fail("patroniVersion", patroni,
               f"PostgreSQL {major} with this program needs Patroni {floor} or newer")
    vip_manager = r.value("vipManagerVersion", None, str, _version)
    if vip_manager and versions.version_form(vip_manager) and not versions.line_allows(
            vip_manager, versions.VIP_MANAGER_V3_FLOOR):
        r.fail("vipManagerVersion", vip_manager,
               "the upstream flavour installs the PostgreSQL project's vip-manager2 (2.0 and "
               "newer, etcd v3 API); vip-manager 1.x is Debian's: use image.flavour debian")
    if local_debs:
        r.fail("localDebs", local_debs, "applies to the debian flavour only")
    return ImageSettings(name, base_image, "upstream", major, citus_line, citus_package,
                         patroni, vip_manager, local_debs)


def _read_debian_image(r: _Reader, name: str, base_image: str, local_debs: bool) -> ImageSettings:
    major = r.value("postgresMajor", versions.DEBIAN_POSTGRES_MAJOR, int)
    if major != versions.DEBIAN_POSTGRES_MAJOR:
        r.fail("postgresMajor", major, "the debian flavour has only PostgreSQL "
               f"{versions.DEBIAN_POSTGRES_MAJOR} (bookworm)")
    vip_manager = r.value("vipManagerVersion", versions.DEBIAN_VIP_MANAGER_VERSION, str)
    if vip_manager != versions.DEBIAN_VIP_MANAGER_VERSION:
        r.fail("vipManagerVersion", vip_manager, "the debian flavour has only vip-manager "
               f"{versions.DEBIAN_VIP_MANAGER_VERSION}")
    for key, rule in (("citusVersion", "Citus comes from images/patroni/debs/ (image.localDebs)"),
                      ("citusPackageVersion", "Citus comes from images/patroni/debs/ "
                                              "(image.localDebs)"),
                      ("patroniVersion", f"Patroni is trixie's {versions.DEBIAN_PATRONI_LINE} line")):
        if r.has(key):
            r.fail(key, r.raw.pop(key), f"does not apply to the debian flavour: {rule}")
    return ImageSettings(name, base_image, "debian", major, "", None, None, vip_manager,
                         local_debs)


def _read_etcd(r: _Reader, scope: str) -> EtcdSettings:
    def odd_quorum(v: int) -> Optional[str]:
        if v < 3 or v > MAX_ETCD_MEMBERS:
            return f"must be an odd number between 3 and {MAX_ETCD_MEMBERS}"
        if v % 2 == 0:
            return ("must be odd: an even count tolerates no more failures than the odd count "
                    "below it and makes a split vote possible")
        return None

    members = r.value("members", 3, int, odd_quorum)
    api = r.value("apiVersion", "v3", str, _one_of(*ETCD_APIS))
    image = r.value("image", None, str, _image_reference)
    token = r.value("clusterToken", f"{scope}-etcd", str,
                    _matches(re.compile(r"^[A-Za-z0-9_.-]{1,64}$"), "a short token"))
    retention = r.value("autoCompactionRetention", "1", str,
                        _matches(re.compile(r"^\d+[hm]?$"), "hours (e.g. 1) or a duration such as 30m"))
    r.finish()
    return EtcdSettings(members, api, image, token, retention)


def _read_citus(r: _Reader) -> CitusSettings:
    enabled = r.value("enabled", True, bool)
    database = r.value("database", "citus", str,
                       _matches(_DB_NAME, "a lowercase PostgreSQL identifier"))
    coordinator = r.value("coordinatorMembers", 2, int, _between(1, MAX_GROUP_MEMBERS))
    workers_set = r.has("workerGroups")
    workers = r.value("workerGroups", 2, int, _between(0, 12))
    per_group = r.value("membersPerGroup", 2, int, _between(1, MAX_GROUP_MEMBERS))
    r.finish()
    if not enabled and workers_set and workers > 0:
        r.fail("workerGroups", workers,
               "worker groups need Citus: set citus.enabled to true or remove citus.workerGroups")
    return CitusSettings(enabled, database, coordinator, workers, per_group)


def _read_patroni(r: _Reader) -> PatroniSettings:
    members = r.value("members", 2, int, _between(1, MAX_GROUP_MEMBERS))
    timing_problems = len(r.problems)
    ttl = r.value("ttl", 30, int, _between(20, 3600))
    loop_wait = r.value("loopWait", 10, int, _between(1, 3600))
    retry_timeout = r.value("retryTimeout", 10, int, _between(3, 3600))
    lag = r.value("maximumLagOnFailover", 1048576, int, _between(0, 2**40))
    synchronous = r.value("synchronousMode", True, bool)
    failsafe = r.value("failsafeMode", False, bool)
    parameters = r.value("parameters", {}, dict)
    for key, value in parameters.items():
        if not _PARAMETER.fullmatch(str(key)):
            r.fail(f"parameters.{key}", value, "must be a PostgreSQL setting name")
        elif not isinstance(value, (str, int, float, bool)):
            r.fail(f"parameters.{key}", value, "must be a string, number or boolean")
    resources = _read_resources(_Reader("patroni.resources", r.raw.pop("resources", None), r.problems))
    superuser = r.value("superuser", "postgres", str, _matches(_PG_ROLE, "a PostgreSQL role name"))
    replication = r.value("replicationUser", "replicator", str,
                          _matches(_PG_ROLE, "a PostgreSQL role name"))
    rest_user = r.value("restApiUser", "patroni", str,
                        _matches(re.compile(r"^[A-Za-z0-9_.-]{1,63}$"), "a user name"))
    r.finish()
    if superuser == replication:
        r.fail("replicationUser", replication, "must differ from patroni.superuser")
    # The combined rule only means something once each value passes on its own.
    timing_valid = len(r.problems) == timing_problems
    if timing_valid and loop_wait + 2 * retry_timeout > ttl:
        r.fail("ttl", ttl, f"Patroni needs loop_wait + 2*retry_timeout <= ttl "
                           f"({loop_wait} + 2*{retry_timeout} = {loop_wait + 2 * retry_timeout})")
    return PatroniSettings(members, ttl, loop_wait, retry_timeout, lag, synchronous, failsafe,
                           dict(parameters), resources, superuser, replication, rest_user)


def _read_resources(r: _Reader) -> ResourceLimits:
    memory = r.value("memoryMb", 1024, int,
                     lambda v: None if v == 0 or v >= 256 else "must be 0 (no limit) or at least 256")
    cpus = r.value("cpus", None, str, _matches(re.compile(r"^\d+(\.\d+)?$"), "a number such as 1.5"))
    shm = r.value("shmSizeMb", 256, int, _between(64, 65536))
    r.finish()
    return ResourceLimits(memory, cpus, shm)


def _read_vip(r: _Reader, network: NetworkSettings) -> VipSettings:
    enabled = r.value("enabled", False, bool)
    address_text = r.value("address", None, str, _address)
    netmask = r.value("netmask", network.subnet.prefixlen, int, _between(1, 32))
    interface = r.value("interface", "eth0", str, _matches(_IFACE, "a network interface name"))
    group = r.value("group", 0, int, _between(0, 12))
    interval = r.value("intervalMs", 1000, int, _between(100, 60000))
    r.finish()
    address = _parse(ipaddress.IPv4Address, address_text, None) if address_text else None
    if enabled and address is None:
        r.fail("address", address_text, "is required when vip.enabled is true")
    if address is not None:
        if address not in network.subnet:
            r.fail("address", str(address), f"must lie inside network.subnet {network.subnet}")
        elif address in network.member_range:
            r.fail("address", str(address),
                   f"must lie outside network.memberRange {network.member_range}, "
                   "or a member could be given the same address")
        elif address in (network.subnet.network_address, network.subnet.broadcast_address,
                         network.gateway):
            r.fail("address", str(address), "must not be the network, broadcast or gateway address")
    if netmask != network.subnet.prefixlen:
        r.fail("netmask", netmask,
               f"must equal the prefix length of network.subnet ({network.subnet.prefixlen})")
    return VipSettings(enabled, address, netmask, interface, group, interval)


PASSWORD_KEYS = {"superuserPassword": "superuser", "replicationPassword": "replication",
                 "restApiPassword": "rest_api"}


def _read_passwords(secrets: Mapping[str, Optional[str]], plaintext: frozenset[str],
                    problems: list[str]) -> Passwords:
    values = {}
    for key, attr in PASSWORD_KEYS.items():
        value = secrets.get(key)
        if key in plaintext:
            problems.append(f"patroni-citus:{key} = [not shown]: is stored in plain text in the "
                            f"stack file; set it with `pulumi config set --secret {key}`")
        elif value is not None and len(value) < MIN_PASSWORD_LENGTH:
            # Never echo a secret: name the key and the rule only.
            problems.append(f"patroni-citus:{key} = [secret]: must be at least "
                            f"{MIN_PASSWORD_LENGTH} characters")
        values[attr] = value
    return Passwords(**values)


# Pinned upstream images; the integration suite points these keys at local stand-ins.
OBSERVABILITY_DEFAULTS = {
    "cadvisor": ("gcr.io/cadvisor/cadvisor:v0.49.1", 8080, True),
    "fluentd": ("fluent/fluentd:v1.17.0-debian-1.1", 24224, True),
    "adminer": ("adminer:4.8.1", 8081, False),
}


def _read_observability(r: _Reader) -> ObservabilitySettings:
    enabled = r.value("enabled", False, bool)
    allow_public = r.value("allowPublicPorts", False, bool)
    services = {}
    for service, (image, port, on) in OBSERVABILITY_DEFAULTS.items():
        s = _Reader(f"observability.{service}", r.raw.pop(service, None), r.problems)
        host_ip = s.value("hostIp", "127.0.0.1", str, _address)
        if host_ip != "127.0.0.1" and not allow_public:
            s.fail("hostIp", host_ip, "publishes beyond loopback; set "
                   "observability.allowPublicPorts to true if that is intended")
        services[service] = ServiceSettings(
            enabled=s.value("enabled", on, bool),
            image=s.value("image", image, str, _image_reference),
            host_ip=host_ip,
            host_port=s.value("hostPort", port, int, _between(1, 65535)))
        s.finish()
    r.finish()
    ports = [(v.host_ip, v.host_port) for v in services.values() if v.enabled]
    for service, value in services.items():
        if value.enabled and ports.count((value.host_ip, value.host_port)) > 1:
            r.fail(f"{service}.hostPort", value.host_port, "is published by another service too")
    return ObservabilitySettings(enabled, **services)


def _check_cross_rules(network: NetworkSettings, image: ImageSettings, etcd: EtcdSettings,
                       citus: CitusSettings, patroni: PatroniSettings, vip: VipSettings,
                       problems: list[str]) -> None:
    if vip.enabled and not image.vip_manager_speaks_etcd_v3 and etcd.api != "v2":
        problems.append(
            f"patroni-citus:etcd.apiVersion = {etcd.api!r}: vip-manager {image.vip_manager_version} "
            "speaks only the etcd v2 API; set etcd.apiVersion to v2 or use the upstream flavour")
    if vip.enabled and image.vip_manager_speaks_etcd_v3 and etcd.api != "v3":
        problems.append(
            f"patroni-citus:etcd.apiVersion = {etcd.api!r}: the upstream flavour's vip-manager "
            "(2.0 and newer) reads the leader key through the etcd v3 API only, which cannot "
            "see keys Patroni writes through v2; set etcd.apiVersion to v3")
    supported = versions.CITUS_LINES.get(image.citus_version, ())
    if citus.enabled and image.flavour == "upstream" and image.postgres_major not in supported:
        problems.append(
            f"patroni-citus:image.citusVersion = {image.citus_version!r}: Citus "
            f"{image.citus_version} builds against PostgreSQL {', '.join(map(str, supported))}, "
            f"not image.postgresMajor {image.postgres_major}; packagecloud has no "
            f"{versions.citus_package(image.postgres_major, image.citus_version)}")
    if citus.enabled and image.flavour == "debian" and not image.local_debs:
        problems.append(
            "patroni-citus:citus.enabled = True: Debian's archive has no Citus package; put "
            "postgresql-15-citus .deb files in images/patroni/debs/ and set image.localDebs to "
            "true, or set citus.enabled to false")
    groups = citus.worker_groups + 1 if citus.enabled else 1
    if vip.enabled and vip.group >= groups:
        problems.append(f"patroni-citus:vip.group = {vip.group}: no such group "
                        f"(groups are 0..{groups - 1})")
    largest = max(citus.coordinator_members, citus.members_per_group) if citus.enabled \
        else patroni.members
    needed = _slots_needed(groups, largest)
    available = network.member_range.num_addresses - 2
    if needed > available:
        problems.append(
            f"patroni-citus:network.memberRange = '{network.member_range}': too small for "
            f"{groups} group(s): needs {needed} addresses (16 per group after 16 for etcd)")


def _check_addresses(settings: Settings, problems: list[str]) -> None:
    """Defence in depth: no two things on the network may share an address."""
    owners: dict[ipaddress.IPv4Address, str] = {settings.network.gateway: "the gateway"}
    if settings.observability.active("adminer"):
        owners[settings.adminer_address] = "adminer"
    if settings.vip.address is not None:
        owners.setdefault(settings.vip.address, "the VIP")
    members = list(settings.etcd_members) + [m for g in settings.groups for m in g.members]
    for member in members:
        if member.address in owners:
            problems.append(f"patroni-citus:network.memberRange = '{settings.network.member_range}':"
                            f" {member.name} would get {member.address}, already used by "
                            f"{owners[member.address]}")
        owners.setdefault(member.address, member.name)
