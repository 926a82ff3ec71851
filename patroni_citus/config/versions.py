"""What the package repositories can install, as data: PostgreSQL majors, Citus package lines,
the Patroni floor per PostgreSQL major, vip-manager lines, and how a version given in stack
config becomes an apt version pin. Pure: used by the settings rules, the image build
arguments and the tests.

Sources (read 2026-11-22): each Citus tag's `configure.ac` (the majors it builds against),
Patroni's `docs/releases.rst`, vip-manager's tags and `vipconfig/config.go`, and the apt
repositories' documented layouts (apt.postgresql.org keeps only the newest version of a
package; packagecloud's Citus packages are named `postgresql-<major>-citus-<line>`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

# PostgreSQL majors the upstream flavour offers: supported by the PostgreSQL project (14 left
# support in November 2026) and by a Patroni release.
POSTGRES_MAJORS = (15, 16, 17, 18)
DEFAULT_POSTGRES_MAJOR = 18

# Citus package line -> PostgreSQL majors it builds against (its configure.ac).
CITUS_LINES: dict[str, tuple[int, ...]] = {
    "12.1": (14, 15, 16),
    "13.0": (15, 16, 17),  # 13.0.0 also took 14; 13.0.1+ dropped it
    "13.1": (15, 16, 17),
    "13.2": (15, 16, 17),
    "14.0": (16, 17, 18),
}
DEFAULT_CITUS_LINE = "14.0"

# The oldest Patroni this program's configuration needs (Patroni 4's validation rules, the
# citus and failsafe sections), and the first release that knows each PostgreSQL major.
PATRONI_FLOOR = "4.0.0"
PATRONI_FLOOR_FOR_MAJOR = {18: "4.0.7"}  # "Add support for PostgreSQL 18" (4.0.7)

# vip-manager 2.0 moved to the etcd v3 API. The PostgreSQL project's package `vip-manager2`
# carries 2.x and newer; Debian's `vip-manager` in bookworm and trixie is 1.0.2.
VIP_MANAGER_V3_FLOOR = "2.0.0"

# The debian flavour: bookworm's archive plus Patroni from trixie.
DEBIAN_POSTGRES_MAJOR = 15
DEBIAN_PATRONI_LINE = "4.0"
DEBIAN_VIP_MANAGER_VERSION = "1.0.2"

# A version as stack config may give it: a line ("4", "4.1"), a release ("4.1.4") or an exact
# Debian package version ("4.1.4-1.pgdg120+1", "14.0.0.citus-1").
# Version numbers have at most 6 digits per part: nothing longer is a version, and int()
# must never see a number of thousands of digits.
_LINE = re.compile(r"^\d{1,6}(\.\d{1,6})?$")
_RELEASE = re.compile(r"^\d{1,6}\.\d{1,6}\.\d{1,6}$")
_DEBIAN_VERSION = re.compile(r"^(\d{1,6}:)?\d{1,6}(\.\d{1,6})*[.~+-][A-Za-z0-9.+~-]*[A-Za-z0-9+~]$")


@dataclass(frozen=True)
class Pin:
    """An apt version pin for one package: `pattern` is what follows `=` in
    `apt-get install name=pattern` (apt matches `*` globs), empty for the newest."""

    pattern: str
    release: Optional[str]  # the upstream release the pin names, when it names one


def version_form(text: str) -> Optional[str]:
    """'line', 'release' or 'exact' for a valid version text, None otherwise."""
    if _LINE.fullmatch(text):
        return "line"
    if _RELEASE.fullmatch(text):
        return "release"
    if _DEBIAN_VERSION.fullmatch(text) and len(text) <= 64:
        return "exact"
    return None


def apt_pin(text: Optional[str], revision_separator: str = "-") -> Pin:
    """The apt pin for a version given in config. A line takes its newest release, a release
    any Debian revision of it (`-` for most packages, `.citus-` for Citus'), an exact version
    exactly that."""
    if not text:
        return Pin("", None)
    form = version_form(text)
    if form == "line":
        return Pin(f"{text}.*", None)
    if form == "release":
        return Pin(f"{text}{revision_separator}*", text)
    if form == "exact":
        return Pin(text, upstream_release(text))
    raise ValueError(f"not a version: {text!r}")


def upstream_release(debian_version: str) -> Optional[str]:
    match = re.match(r"^(?:\d+:)?(\d+\.\d+\.\d+)", debian_version)
    return match.group(1) if match else None


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d{1,6}", version)[:3])


def line_allows(line_or_release: str, floor: str) -> bool:
    """Whether some release of a line (or the release itself) is at or above `floor`: a line
    like '4' may still reach 4.0.7, '4.0.6' may not."""
    parts = version_key(line_or_release)
    floor_parts = version_key(floor)
    # The newest release of a line starts with the line's own parts and can be anything after.
    return parts >= floor_parts[: len(parts)] if len(parts) < 3 else parts >= floor_parts


def patroni_floor(postgres_major: int) -> str:
    return PATRONI_FLOOR_FOR_MAJOR.get(postgres_major, PATRONI_FLOOR)


def citus_package(postgres_major: int, line: str) -> str:
    return f"postgresql-{postgres_major}-citus-{line}"
