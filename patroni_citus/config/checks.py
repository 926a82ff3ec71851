"""Reusable value rules: each returns None when the value passes, else the rule it breaks."""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Optional

from . import versions
from .addressing import MAX_ETCD_MEMBERS
from .reader import Check

# Docker's reference grammar (distribution/reference): lowercase path components, an optional
# registry host with port, a tag of at most 128 characters, a sha256 digest of 64 hex digits.
_DOMAIN = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])(?:\.(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]))*(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REFERENCE = re.compile(
    rf"^(?P<name>(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)

PRIVATE_NETWORKS = tuple(
    ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)
MIN_SUBNET_PREFIX = 16
MAX_SUBNET_PREFIX = 28
DOCKER_RESERVED_NETWORKS = ("bridge", "host", "none")

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")
_PG_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# pg_hba keywords: a role or database with one of these names would widen a pg_hba line.
PG_HBA_KEYWORDS = ("all", "sameuser", "samerole", "samegroup", "replication")
PG_RESERVED_ROLES = ("public", "none", "current_user", "current_role", "session_user")
PG_TEMPLATE_DATABASES = ("template0", "template1")


def between(low: int, high: int) -> Check:
    return lambda v: None if low <= v <= high else f"must be between {low} and {high}"


def matches(pattern: re.Pattern[str], what: str) -> Check:
    return lambda v: None if pattern.fullmatch(v) else f"must be {what}"


def one_of(*choices: str) -> Check:
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}"


def scope_name(value: str) -> Optional[str]:
    return (
        None
        if _NAME.fullmatch(value)
        else "must be lowercase letters, digits and '-', at most 31 characters"
    )


def image_reference(value: str) -> Optional[str]:
    match = _REFERENCE.fullmatch(value)
    if match is None or len(match.group("name")) > 255:
        return (
            "must be a Docker image reference: lowercase repository path, optional "
            "registry, :tag and/or @sha256:<64 hex digits>, no spaces"
        )
    tag, digest = match.group("tag"), match.group("digest")
    if not tag and not digest:
        return "must be pinned with a tag or digest (e.g. quay.io/coreos/etcd:v3.5.16)"
    if tag == "latest" and not digest:
        return "must be pinned: 'latest' changes under you; use a version tag or digest"
    return None


def image_tag(value: str) -> Optional[str]:
    match = _REFERENCE.fullmatch(value)
    return match.group("tag") if match else None


def network_name(value: str) -> Optional[str]:
    if value in DOCKER_RESERVED_NETWORKS:
        return f"is one of Docker's predefined networks ({', '.join(DOCKER_RESERVED_NETWORKS)})"
    if not re.fullmatch(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$", value):
        return "must be a Docker network name (letters, digits, '_', '.', '-'; at most 63)"
    return None


_VOLUME_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,62}$")


def volume_name(value: str) -> Optional[str]:
    # Docker's rule for volume names, with a length a person can read.
    return (
        None
        if _VOLUME_NAME.fullmatch(value)
        else "must be a Docker volume name: letters, digits and _.-, 2 to 63 characters"
    )


def subnet(value: str) -> Optional[str]:
    try:
        network = ipaddress.IPv4Network(value)
    except ValueError:
        return "must be an IPv4 network in CIDR form with no host bits set, e.g. 172.30.0.0/16"
    if not any(network.subnet_of(p) for p in PRIVATE_NETWORKS):
        return (
            "must lie in a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16): "
            "loopback, link-local, multicast and public addresses are not for a bridge"
        )
    if not MIN_SUBNET_PREFIX <= network.prefixlen <= MAX_SUBNET_PREFIX:
        return (
            f"must be a /{MIN_SUBNET_PREFIX} to /{MAX_SUBNET_PREFIX}: a larger network "
            "overlaps Docker's own address pools"
        )
    return None


def member_range(value: str) -> Optional[str]:
    try:
        ipaddress.IPv4Network(value)
    except ValueError:
        return "must be an IPv4 network in CIDR form with no host bits set, e.g. 172.30.1.0/24"
    return None


def address(value: str) -> Optional[str]:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return "must be an IPv4 address, e.g. 172.30.254.254"
    return None


def absolute_path(value: str) -> Optional[str]:
    if not value.startswith("/") or "\0" in value or "/../" in f"{value}/":
        return "must be an absolute host path without '..', e.g. /var/run/docker.sock"
    return None


def interface(value: str) -> Optional[str]:
    if value in (".", "..") or not re.fullmatch(r"^[A-Za-z0-9_.-]{1,15}$", value):
        return "must be a network interface name (at most 15 of letters, digits, '_', '.', '-')"
    return None


def pg_role(value: str) -> Optional[str]:
    if not _PG_IDENTIFIER.fullmatch(value):
        return "must be a lowercase PostgreSQL identifier"
    if value.startswith("pg_"):
        return "must not start with pg_ (reserved for PostgreSQL's predefined roles)"
    if value in PG_RESERVED_ROLES or value in PG_HBA_KEYWORDS:
        return "is a name PostgreSQL or pg_hba.conf reserves"
    return None


def pg_database(value: str) -> Optional[str]:
    if not _PG_IDENTIFIER.fullmatch(value):
        return "must be a lowercase PostgreSQL identifier"
    if value in PG_TEMPLATE_DATABASES or value in PG_HBA_KEYWORDS:
        return "is a name PostgreSQL or pg_hba.conf reserves"
    return None


def version(value: str) -> Optional[str]:
    if versions.version_form(value) is None:
        return (
            "must be a version line (4.1), a release (4.1.4) or an exact Debian package "
            "version (4.1.4-1.pgdg120+1)"
        )
    return None


def cpus(value: str) -> Optional[str]:
    if not re.fullmatch(r"^\d{1,4}(\.\d{1,3})?$", value) or not 0.01 <= float(value) <= 1024:
        return "must be a number of CPUs from 0.01 to 1024, e.g. 1.5"
    return None


MAX_MEMORY_MB = 1024 * 1024


def memory_mb(value: int) -> Optional[str]:
    if value == 0 or 256 <= value <= MAX_MEMORY_MB:
        return None
    return f"must be 0 (no limit) or from 256 to {MAX_MEMORY_MB}"


def odd_quorum(value: int) -> Optional[str]:
    if value < 3 or value > MAX_ETCD_MEMBERS:
        return f"must be an odd number between 3 and {MAX_ETCD_MEMBERS}"
    if value % 2 == 0:
        return (
            "must be odd: an even count tolerates no more failures than the odd count "
            "below it and makes a split vote possible"
        )
    return None


def postgres_major(value: int) -> Optional[str]:
    if value in versions.POSTGRES_MAJORS:
        return None
    return (
        f"must be one of {', '.join(map(str, versions.POSTGRES_MAJORS))} "
        "(majors the PostgreSQL project still supports)"
    )


def citus_line(value: str) -> Optional[str]:
    if value in versions.CITUS_LINES:
        return None
    return f"must be a Citus package line: {', '.join(versions.CITUS_LINES)}"


def vip_manager2(value: str) -> Optional[str]:
    """The upstream flavour installs the PostgreSQL project's vip-manager2."""
    rule = version(value)
    if rule is None and not versions.line_allows(value, versions.VIP_MANAGER_V3_FLOOR):
        return (
            "the upstream flavour installs the PostgreSQL project's vip-manager2 (2.0 and "
            "newer, etcd v3 API); vip-manager 1.x is Debian's: use image.flavour debian"
        )
    return rule


def debian_postgres_major(value: int) -> Optional[str]:
    if value == versions.DEBIAN_POSTGRES_MAJOR:
        return None
    return f"the debian flavour has only PostgreSQL {versions.DEBIAN_POSTGRES_MAJOR} (bookworm)"


def debian_vip_manager(value: str) -> Optional[str]:
    if value == versions.DEBIAN_VIP_MANAGER_VERSION:
        return None
    return f"the debian flavour has only vip-manager {versions.DEBIAN_VIP_MANAGER_VERSION}"


_ENGINE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")


def engine_name(value: str) -> Optional[str]:
    if _ENGINE_NAME.match(value):
        return None
    return "must be 1 to 31 lowercase letters, digits or '-'"


_DURATION = re.compile(r"^([1-9][0-9]{0,5})(s|m|h|d)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(text: str) -> Optional[int]:
    """'90s', '15m', '6h', '7d' in seconds; None when the text is not such a duration."""
    match = _DURATION.fullmatch(text)
    return int(match.group(1)) * _SECONDS[match.group(2)] if match else None


def duration(low_s: int) -> Check:
    def rule(value: str) -> Optional[str]:
        parsed = seconds(value)
        if parsed is None:
            return "must be a duration: a whole number followed by s, m, h or d (e.g. '6h')"
        return None if parsed >= low_s else f"must be at least {low_s} seconds"

    return rule


def ratio(value: float) -> Optional[str]:
    return None if 0 < value < 1 else "must be between 0 and 1 (exclusive)"


MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024


def password(value: Any) -> Optional[str]:
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


def depth(value: Any, limit: int) -> bool:
    """Whether a JSON-like value nests no deeper than `limit`, without recursion."""
    stack = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if level > limit:
            return False
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend((v, level + 1) for v in item)
    return True
