"""Docker labels the components set; the policy pack identifies resources by them
(see docs/conventions.md)."""

from __future__ import annotations

from typing import Optional

PREFIX = "patroni-citus"
CLUSTER = f"{PREFIX}.cluster"
ROLE = f"{PREFIX}.role"
GROUP = f"{PREFIX}.group"
MEMBER = f"{PREFIX}.member"
DATA_PATH = f"{PREFIX}.data-path"
MEMBER_RANGE = f"{PREFIX}.member-range"
VIP = f"{PREFIX}.vip"
# Mirrors retainOnDelete, which policy packs cannot see.
RETAIN = f"{PREFIX}.retain"


def docker_labels(scope: str, role: Optional[str] = None, **extra: object) -> list[dict[str, str]]:
    """Labels in pulumi-docker's list form, `[{label, value}]`, sorted for stable diffs.
    `extra` takes MEMBER/GROUP/... by their short names: member=, group=, data_path=;
    booleans are written in lowercase."""
    names = {"member": MEMBER, "group": GROUP, "data_path": DATA_PATH,
             "member_range": MEMBER_RANGE, "vip": VIP, "retain": RETAIN}
    values = {CLUSTER: scope}
    if role is not None:
        values[ROLE] = role
    for key, value in extra.items():
        values[names[key]] = str(value).lower() if isinstance(value, bool) else str(value)
    return [{"label": k, "value": v} for k, v in sorted(values.items())]
