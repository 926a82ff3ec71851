"""Every rule that relates config keys to each other, listed in `CROSS_RULES` (over the values as
read, each run once its section is read) and `SETTINGS_RULES` (over the built settings, once
every value passes). A value's own rule is in its row of `schema`."""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from typing import Any, Callable, Optional, TypeVar

from . import addressing, checks, versions
from .hosts import is_loopback, pins, place, spread
from .model import EndpointSettings, NetworkSettings, Settings
from .postgres import BACKUP_MANAGED, PARAMETER_NAME, parameter_problem
from .reader import Values, config_key
from .schema import DEFAULT_MEMBER_RANGE, DEFAULT_SUBNET, OBSERVABILITY_DEFAULTS

T = TypeVar("T")
CrossRule = Callable[[Values], None]
SettingsRule = Callable[[Settings, Values], None]

# What pgBackRest's --target takes for --type=time and PostgreSQL for recovery_target_time; a
# zone is required so the point does not depend on the server's TimeZone.
_TIMESTAMP = re.compile(
    r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}(:?\d{2})?)$"
)
# citus_create_restore_point and pg_create_restore_point take names shorter than 64 bytes.
_RESTORE_POINT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$")
_UNIX = re.compile(r"^unix:///[^\s]*$")
_TCP = re.compile(r"^tcp://[A-Za-z0-9.-]{1,253}:[0-9]{1,5}$")
_SSH = re.compile(r"^ssh://([A-Za-z0-9._-]{1,64}@)?[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$")


def _parse(kind: Callable[[str], T], text: Optional[str], fallback: T) -> T:
    try:
        return kind(text) if text is not None else fallback
    except ValueError:
        return fallback  # already reported by the key's own rule


def network(v: Values) -> NetworkSettings:
    """The network as read, each bad value replaced by its default so later rules can run."""
    subnet = _parse(ipaddress.IPv4Network, v["network.subnet"], DEFAULT_SUBNET)
    return NetworkSettings(
        name=v["network.name"],
        subnet=subnet,
        gateway=_parse(ipaddress.IPv4Address, v["network.gateway"], subnet.network_address + 1),
        member_range=_parse(ipaddress.IPv4Network, v["network.memberRange"], DEFAULT_MEMBER_RANGE),
    )


def _network_layout(v: Values) -> None:
    net = network(v)
    if not net.member_range.subnet_of(net.subnet):
        v.fail(
            "network.memberRange",
            v["network.memberRange"],
            f"must lie inside network.subnet {net.subnet}",
        )
    if net.gateway not in net.subnet or net.gateway in (
        net.subnet.network_address,
        net.subnet.broadcast_address,
    ):
        v.fail(
            "network.gateway",
            str(net.gateway),
            f"must be a host address inside network.subnet {net.subnet}",
        )
    elif net.gateway in net.member_range:
        v.fail(
            "network.memberRange",
            v["network.memberRange"],
            f"must not contain the gateway {net.gateway}; members take addresses from the "
            "whole range",
        )


def _image_versions(v: Values) -> None:
    """The upstream flavour's versions must fit each other; the debian flavour has one each."""
    if v["image.flavour"] == "debian":
        return
    line, package = v["image.citusVersion"], v["image.citusPackageVersion"]
    if package and versions.version_form(package) == "line":
        v.fail(
            "image.citusPackageVersion",
            package,
            "must be a release (14.0.1) or an exact Debian version (14.0.1.citus-1); "
            "the line is image.citusVersion",
        )
    elif (
        package
        and versions.version_form(package)
        and not (versions.upstream_release(package) or "").startswith(line + ".")
    ):
        v.fail(
            "image.citusPackageVersion",
            package,
            f"must be a release of the Citus line image.citusVersion ({line})",
        )
    patroni, major = v["image.patroniVersion"], v["image.postgresMajor"]
    floor = versions.patroni_floor(major)
    if patroni and versions.version_form(patroni) and not versions.line_allows(patroni, floor):
        v.fail(
            "image.patroniVersion",
            patroni,
            f"PostgreSQL {major} with this program needs Patroni {floor} or newer",
        )
    if v["image.localDebs"]:
        v.fail("image.localDebs", v["image.localDebs"], "applies to the debian flavour only")


def _etcd_image_api(v: Values) -> None:
    image = v["etcd.image"]
    tag = checks.image_tag(image) if image else None
    if v["etcd.apiVersion"] == "v2" and tag and versions.version_key(tag)[:2] >= (3, 6):
        v.fail(
            "etcd.image",
            image,
            "etcd 3.6 removed the v2 API that etcd.apiVersion v2 needs; "
            "use an etcd 3.5 image or etcd.apiVersion v3",
        )


_CITUS_GROUP_KEYS = (
    "citus.database",
    "citus.coordinatorMembers",
    "citus.workerGroups",
    "citus.membersPerGroup",
    "citus.rebalanceOnJoin",
)


def _citus_off(v: Values) -> None:
    if v["citus.enabled"]:
        return
    for path in _CITUS_GROUP_KEYS:
        if path in v.given:
            v.fail(
                path,
                v.given[path],
                "does not apply with citus.enabled false (the single group is patroni.members)",
            )


def _patroni_members(v: Values) -> None:
    if v["citus.enabled"] and "patroni.members" in v.given:
        v.fail(
            "patroni.members",
            v["patroni.members"],
            "does not apply with Citus on: set citus.coordinatorMembers and citus.membersPerGroup",
        )


def _postgres_parameters(v: Values) -> None:
    parameters: dict[Any, Any] = v["patroni.parameters"]
    for name, value in parameters.items():
        if not PARAMETER_NAME.fullmatch(str(name)):
            v.fail(
                f"patroni.parameters.{str(name)[:60]}", value, "must be a PostgreSQL setting name"
            )
            continue
        rule = parameter_problem(str(name), value, v["patroni.synchronousMode"])
        if rule:
            v.fail(f"patroni.parameters.{name}", value, rule)


def _shm_below_memory(v: Values) -> None:
    memory, shm = v["patroni.resources.memoryMb"], v["patroni.resources.shmSizeMb"]
    # The combined rule only means something once the section's values pass on their own.
    if v.section_valid("patroni.resources") and memory and shm >= memory:
        v.fail(
            "patroni.resources.shmSizeMb",
            shm,
            f"must be below patroni.resources.memoryMb ({memory}): "
            "/dev/shm counts against the container's memory limit",
        )


def _distinct_patroni_users(v: Values) -> None:
    if v["patroni.superuser"] == v["patroni.replicationUser"]:
        v.fail(
            "patroni.replicationUser",
            v["patroni.replicationUser"],
            "must differ from patroni.superuser",
        )


def _patroni_timing(v: Values) -> None:
    ttl, loop_wait, retry = v["patroni.ttl"], v["patroni.loopWait"], v["patroni.retryTimeout"]
    # As above; a patroni.members refused with Citus on says nothing about timing.
    valid = v.section_valid("patroni", "patroni.members")
    if valid and loop_wait + 2 * retry > ttl:
        v.fail(
            "patroni.ttl",
            ttl,
            f"Patroni needs loop_wait + 2*retry_timeout <= ttl "
            f"({loop_wait} + 2*{retry} = {loop_wait + 2 * retry})",
        )


def _vip_address(v: Values) -> None:
    net = network(v)
    text = v["vip.address"]
    address = _parse(ipaddress.IPv4Address, text, None) if text else None
    if v["vip.enabled"] and address is None:
        v.fail("vip.address", text, "is required when vip.enabled is true")
    problem = _vip_placement(address, net) if address is not None else None
    if problem:
        v.fail("vip.address", str(address), problem)
    netmask = v["vip.netmask"]
    if (v["vip.enabled"] or "vip.netmask" in v.given) and netmask != net.subnet.prefixlen:
        v.fail(
            "vip.netmask",
            netmask,
            f"must equal the prefix length of network.subnet ({net.subnet.prefixlen})",
        )


def _vip_placement(address: ipaddress.IPv4Address, net: NetworkSettings) -> Optional[str]:
    if address not in net.subnet:
        return f"must lie inside network.subnet {net.subnet}"
    if address in net.member_range:
        return (
            f"must lie outside network.memberRange {net.member_range}, "
            "or a member could be given the same address"
        )
    if address in (net.subnet.network_address, net.subnet.broadcast_address, net.gateway):
        return "must not be the network, broadcast or gateway address"
    return None


def _loopback_unless_allowed(section: str) -> CrossRule:
    """A port published beyond loopback is a decision the config must state."""
    switch = f"{section.split('.')[0]}.allowPublicPorts"

    def rule(v: Values) -> None:
        host_ip = v[f"{section}.hostIp"]
        if host_ip != "127.0.0.1" and not v[switch]:
            v.fail(
                f"{section}.hostIp",
                host_ip,
                f"publishes beyond loopback; set {switch} to true if that is intended",
            )

    return rule


def _observability_ports(v: Values) -> None:
    published = {
        service: (v[f"observability.{service}.hostIp"], v[f"observability.{service}.hostPort"])
        for service in OBSERVABILITY_DEFAULTS
        if v[f"observability.{service}.enabled"]
    }
    ports = list(published.values())
    for service, port in published.items():
        if ports.count(port) > 1:
            v.fail(
                f"observability.{service}.hostPort", port[1], "is published by another service too"
            )


def published_ports(bases: set[int], instances: int) -> list[int]:
    """The host ports published from these bases by every instance."""
    return [b + EndpointSettings.PORT_STRIDE * i for b in bases for i in range(instances)]


def _endpoint_ports(v: Values) -> None:
    read_write, read_only = v["endpoints.readWritePort"], v["endpoints.readOnlyPort"]
    instances = v["endpoints.instances"]
    ports = published_ports({read_write, read_only}, instances)
    if v["endpoints.enabled"] and len(set(ports)) < len(ports):
        v.fail(
            "endpoints.readOnlyPort",
            read_only,
            f"collides with readWritePort {read_write} for one of the {instances} instances "
            f"(instance i publishes at port + {EndpointSettings.PORT_STRIDE} * i)",
        )


def _pooler_needs_endpoints(v: Values) -> None:
    if v["pooler.enabled"] and not v["endpoints.enabled"]:
        v.fail(
            "pooler.enabled",
            v["pooler.enabled"],
            "needs endpoints.enabled: PgBouncer pools the read-write port",
        )
    if v["pooler.user"] == v["pooler.authUser"]:
        v.fail("pooler.authUser", v["pooler.authUser"], "must differ from pooler.user")


def _pooler_port(v: Values) -> None:
    shared = v["pooler.hostIp"] == v["endpoints.hostIp"]
    if v["pooler.enabled"] and v["endpoints.enabled"] and shared:
        instances = v["endpoints.instances"]
        bases = {v["endpoints.readWritePort"], v["endpoints.readOnlyPort"]}
        port = v["pooler.port"]
        if set(published_ports(bases, instances)) & set(published_ports({port}, instances)):
            v.fail("pooler.port", port, "collides with an endpoints port on the same hostIp")


def _backup_schedule(v: Values) -> None:
    if "backups.restore.type" in v and not v["backups.enabled"]:
        v.fail(
            "backups.enabled",
            v["backups.enabled"],
            "must be true to restore: the restored cluster archives too",
        )
    full = v["backups.fullInterval"]
    full_s = checks.seconds(full) or 0
    incremental_s = checks.seconds(v["backups.incrementalInterval"]) or 0
    if full_s and incremental_s > full_s:
        v.fail(
            "backups.incrementalInterval",
            v["backups.incrementalInterval"],
            f"must not be longer than fullInterval {full}",
        )


def _restore(v: Values) -> None:
    if "backups.restore.type" not in v:
        return
    source, kind = v["backups.restore.source"], v["backups.restore.type"]
    target = v["backups.restore.target"]
    if not source:
        v.fail(
            "backups.restore.source",
            source,
            "is required: the scope of the cluster whose backups to restore",
        )
    elif source == v["cluster.scope"]:
        v.fail(
            "backups.restore.source",
            source,
            "must differ from cluster.scope: the restored cluster archives to its own stanza "
            "(it keeps the source's system identifier, and its timelines would clash)",
        )
    if kind in ("time", "name") and target is None:
        v.fail("backups.restore.target", target, f"is required with type {kind}")
    if kind in ("latest", "immediate") and target is not None:
        v.fail("backups.restore.target", target, f"does not apply to type {kind}")
    if kind == "time" and target is not None and not _TIMESTAMP.fullmatch(target):
        v.fail(
            "backups.restore.target",
            target,
            "must be a timestamp with a time zone, e.g. '2026-11-22 08:35:14.012+00'",
        )
    if kind == "name" and target is not None and not _RESTORE_POINT.fullmatch(target):
        v.fail(
            "backups.restore.target",
            target,
            "must be a restore point name (letters, digits, _.:-, < 64)",
        )
    if kind == "time" and v["citus.enabled"]:
        v.fail(
            "backups.restore.type",
            kind,
            "is not consistent across Citus groups (clocks and two-phase commits differ per "
            "group); restore to a Citus restore point with type name",
        )


def _backup_parameters(v: Values) -> None:
    """With backups on, the program owns WAL archiving (patroni_citus/plan/backups.py)."""
    if not v["backups.enabled"]:
        return
    for name, value in v["patroni.parameters"].items():
        if name in BACKUP_MANAGED:
            v.fail(f"patroni.parameters.{name}", value, f"is managed: {BACKUP_MANAGED[name]}")


def _engines(v: Values) -> None:
    for engine in v.get("hosts.engines", ()):
        name_rule = checks.engine_name(v[f"{engine}.name"])
        if name_rule:
            v.fail(f"{engine}.name", v[f"{engine}.name"], name_rule)
        endpoint, cert_path = v[f"{engine}.endpoint"], v[f"{engine}.certPath"]
        ssh_opts = v[f"{engine}.sshOpts"]
        if endpoint is None:
            if cert_path is not None or ssh_opts:
                v.fail(f"{engine}.endpoint", None, "is required with certPath or sshOpts")
        elif _TCP.match(endpoint):
            if cert_path is None:
                v.fail(
                    f"{engine}.endpoint",
                    endpoint,
                    "an engine API over TCP without TLS is root on that host for anyone who "
                    "reaches the port: set certPath (a directory with ca.pem, cert.pem, key.pem)",
                )
        elif _SSH.match(endpoint) or _UNIX.match(endpoint):
            if cert_path is not None:
                v.fail(f"{engine}.certPath", cert_path, "applies only to a tcp:// endpoint")
        else:
            v.fail(
                f"{engine}.endpoint",
                endpoint,
                "must be unix:///PATH, tcp://HOST:PORT (with certPath) or ssh://[USER@]HOST[:PORT]",
            )
        if endpoint is not None and ssh_opts and not endpoint.startswith("ssh://"):
            v.fail(f"{engine}.sshOpts", list(ssh_opts), "applies only to an ssh:// endpoint")
        if not all(isinstance(o, str) for o in ssh_opts):
            v.fail(f"{engine}.sshOpts", ssh_opts, "must be a list of strings (ssh options)")


def _engine_names(v: Values) -> None:
    names = [v[f"{engine}.name"] for engine in v.get("hosts.engines", ())]
    for name, count in Counter(names).items():
        if count > 1:
            v.fail("hosts.engines", name, "names an engine more than once")
    manager = v["hosts.swarmManager"]
    if len(names) > 1 and manager is None:
        v.report(
            "hosts.swarmManager",
            "is required with several engines: the overlay network they share is created "
            "through a Swarm manager",
        )
    elif manager is not None and manager not in names:
        v.fail(
            "hosts.swarmManager", manager, f"must name one of hosts.engines ({', '.join(names)})"
        )
    elif manager is not None and len(names) < 2:
        v.fail("hosts.swarmManager", manager, "applies only with several engines")
    for pin in v.get("hosts.pin", ()):
        if v[pin] not in names:
            v.fail(pin, v[pin], f"must name one of hosts.engines ({', '.join(names)})")


# (section, rule): each rule runs as soon as its section is read, in this order.
CROSS_RULES: tuple[tuple[str, CrossRule], ...] = (
    ("network", _network_layout),
    ("image", _image_versions),
    ("etcd", _etcd_image_api),
    ("citus", _citus_off),
    ("patroni", _patroni_members),
    ("patroni", _postgres_parameters),
    ("patroni", _shm_below_memory),
    ("patroni", _distinct_patroni_users),
    ("patroni", _patroni_timing),
    ("vip", _vip_address),
    *(
        ("observability", _loopback_unless_allowed(f"observability.{service}"))
        for service in OBSERVABILITY_DEFAULTS
    ),
    ("observability", _observability_ports),
    ("endpoints", _loopback_unless_allowed("endpoints")),
    ("endpoints", _endpoint_ports),
    ("pooler", _loopback_unless_allowed("pooler")),
    ("pooler", _pooler_needs_endpoints),
    ("pooler", _pooler_port),
    ("monitoring", _loopback_unless_allowed("monitoring")),
    ("backups", _backup_schedule),
    ("backups", _restore),
    ("backups", _backup_parameters),
    ("hosts", _engines),
    ("hosts", _engine_names),
)


def _vip_manager_api(s: Settings, v: Values) -> None:
    if s.vip.enabled and not s.image.vip_manager_speaks_etcd_v3 and s.etcd.api != "v2":
        v.fail(
            "etcd.apiVersion",
            s.etcd.api,
            f"vip-manager {s.image.vip_manager_version} speaks only the etcd v2 API; set "
            "etcd.apiVersion to v2 or use the upstream flavour",
        )
    if s.vip.enabled and s.image.vip_manager_speaks_etcd_v3 and s.etcd.api != "v3":
        v.fail(
            "etcd.apiVersion",
            s.etcd.api,
            "the upstream flavour's vip-manager (2.0 and newer) reads the leader key through "
            "the etcd v3 API only, which cannot see keys Patroni writes through v2; set "
            "etcd.apiVersion to v3",
        )


def _citus_packages(s: Settings, v: Values) -> None:
    image = s.image
    supported = versions.CITUS_LINES.get(image.citus_version, ())
    if s.citus.enabled and image.flavour == "upstream" and image.postgres_major not in supported:
        v.fail(
            "image.citusVersion",
            image.citus_version,
            f"Citus {image.citus_version} builds against PostgreSQL "
            f"{', '.join(map(str, supported))}, not image.postgresMajor {image.postgres_major}; "
            "packagecloud has no "
            f"{versions.citus_package(image.postgres_major, image.citus_version)}",
        )
    if s.citus.enabled and image.flavour == "debian" and not image.local_debs:
        v.fail(
            "citus.enabled",
            True,
            "Debian's archive has no Citus package; put postgresql-15-citus .deb files in "
            "images/patroni/debs/ and set image.localDebs to true, or set citus.enabled to false",
        )


def _group_slots(s: Settings, v: Values) -> None:
    sizes = addressing.group_sizes(s.citus, s.patroni.members)
    if s.vip.enabled and s.vip.group >= len(sizes):
        v.fail("vip.group", s.vip.group, f"no such group (groups are 0..{len(sizes) - 1})")
    needed = addressing.slots_needed(sizes)
    if needed > s.network.member_range.num_addresses - 2:
        v.fail(
            "network.memberRange",
            str(s.network.member_range),
            f"too small for {len(sizes)} group(s): needs {needed} addresses (16 per group "
            "after 16 for etcd)",
        )


def _distinct_roles(s: Settings, v: Values) -> None:
    """Every role the program creates has one purpose: a shared name would mix privileges."""
    roles = [
        ("patroni.superuser", s.patroni.superuser),
        ("patroni.replicationUser", s.patroni.replication_user),
        ("pooler.user", s.pooler.user),
        ("pooler.authUser", s.pooler.auth_user),
        ("monitoring.user", s.monitoring.user),
    ]
    seen: dict[str, str] = {}
    for key, role in roles:
        if role in seen:
            v.fail(key, role, f"is already {config_key(seen[role])}")
        seen.setdefault(role, key)


def _distinct_addresses(s: Settings, v: Values) -> None:
    """Defence in depth: no two things on the network may share an address."""
    owners: dict[ipaddress.IPv4Address, str] = {s.network.gateway: "the gateway"}
    services = [("haproxy", s.endpoints.enabled, s.endpoints.instances)]
    services.append(("pgbouncer", s.pooler.enabled, s.endpoints.instances))
    services.append(("prometheus", s.monitoring.enabled, 1))
    for role, enabled, instances in services:
        for instance in range(instances if enabled else 0):
            # The member-range check (16 slots per group, 16 for etcd) keeps these inside it.
            owners[s.service_address(role, instance)] = f"{role} {instance + 1}"
    if s.observability.active("adminer"):
        owners[s.adminer_address] = "adminer"
    if s.crash_watcher.enabled:
        owners[s.crash_watcher_address] = "the crash watcher"
    if s.vip.address is not None:
        owners.setdefault(s.vip.address, "the VIP")
    members = list(s.etcd_members) + [m for g in s.groups for m in g.members]
    for member in members:
        if member.address in owners:
            v.fail(
                "network.memberRange",
                str(s.network.member_range),
                f"{member.name} would get {member.address}, already used by "
                f"{owners[member.address]}",
            )
        owners.setdefault(member.address, member.name)


# What runs on several engines; everything else still needs one engine (docs/several-hosts.md):
# a VIP cannot move between hosts, the backup repository and the exporters share a
# host with their members, the crash watcher and cadvisor read one engine's events.
_ONE_ENGINE_ONLY: dict[str, Callable[[Settings], bool]] = {
    "vip.enabled": lambda s: s.vip.enabled,
    "backups.enabled": lambda s: s.backups.enabled,
    "pooler.enabled": lambda s: s.pooler.enabled,
    "monitoring.enabled": lambda s: s.monitoring.enabled,
    "observability.enabled": lambda s: s.observability.enabled,
    "crashWatcher.enabled": lambda s: s.crash_watcher.enabled,
}


def _several_engines(s: Settings, v: Values) -> None:
    if not s.hosts.several:
        return
    for key, enabled in _ONE_ENGINE_ONLY.items():
        if enabled(s):
            v.problems.append(
                f"{config_key(key)} = true: not available with several hosts.engines "
                "(docs/several-hosts.md)"
            )
    if not s.endpoints.enabled:
        v.report(
            "endpoints.enabled",
            "must be true with several hosts.engines: clients outside the overlay network "
            "reach the coordinator through HAProxy",
        )
    if "endpoints.hostIp" in v.given:
        v.report(
            "endpoints.hostIp",
            "does not apply with several hosts.engines: each instance publishes on its "
            "engine's address",
        )
    local = [e.name for e in s.hosts.engines if e.endpoint is None]
    if len(local) > 1:
        v.report(
            "hosts.engines",
            f"{', '.join(local)} all omit endpoint, so name the same engine; give each its "
            "engine's endpoint",
        )
    for index, engine in enumerate(s.hosts.engines):
        if is_loopback(engine.address):
            v.fail(
                f"hosts.engines[{index}].address",
                engine.address,
                "with several engines, set the address clients reach this host at",
            )


def _placement(s: Settings, v: Values) -> None:
    if not s.hosts.engines:
        return
    groups, pinned = spread(s), pins(v)
    placed = {name for group in groups for name in group}
    for container in sorted(set(pinned) - placed):
        v.report(
            f"hosts.pin.{container}",
            "no such container; pins name etcd members, Patroni members"
            f"{' or HAProxy instances' if s.hosts.several else ''} "
            f"({', '.join(sorted(placed)[:4])}, ...)",
        )
    if not s.hosts.several:
        return
    placement = place([e.name for e in s.hosts.engines], groups, pinned)
    haproxy_hosts = [placement[c] for c in groups[-1]]
    if len(set(haproxy_hosts)) < len(haproxy_hosts):
        v.fail(
            "endpoints.instances",
            s.endpoints.instances,
            "with several engines each HAProxy instance needs an engine of its own (they "
            f"publish the same ports on their host); there are {len(s.hosts.engines)} and "
            "hosts.pin may not share one",
        )


# Stages over the built settings: a stage runs only when every one before it found nothing,
# so a problem is not reported again in other words.
SETTINGS_RULES: tuple[tuple[SettingsRule, ...], ...] = (
    (_vip_manager_api, _citus_packages, _group_slots, _distinct_roles),
    (_distinct_addresses, _several_engines, _placement),
)
