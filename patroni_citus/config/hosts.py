"""The placement of every container on the Docker engines of the `hosts` section (pure: the
loader places, components only look placements up)."""

from __future__ import annotations

import ipaddress
from collections import Counter
from typing import Mapping, Sequence

from .model import Settings
from .reader import Values


def spread(settings: Settings) -> list[list[str]]:
    """The containers to place, in groups whose members should not share an engine: the etcd
    members, each group's members and, with several engines, the HAProxy instances."""
    groups = [[m.name for m in settings.etcd_members]]
    groups += [[m.name for m in g.members] for g in settings.groups]
    if settings.hosts.several:
        instances = range(settings.endpoints.instances)
        groups.append([settings.service_name("haproxy", i) for i in instances])
    return groups


def pins(values: Values) -> dict[str, str]:
    """hosts.pin as read: container name -> engine name."""
    return {path[len("hosts.pin.") :]: values[path] for path in values.get("hosts.pin", ())}


def place(
    engines: Sequence[str],
    groups: Sequence[Sequence[str]],
    pins: Mapping[str, str],
) -> dict[str, str]:
    """Each container's engine. `groups` lists containers that should not share an engine
    (etcd members; the members of one Patroni group; the HAProxy instances), in order. Pinned
    containers go where they are pinned; the others of their group go, in order, to the
    engine with the fewest of the group, ties broken by rotating from the group's own
    starting engine, so groups start on different engines and load spreads."""
    placement: dict[str, str] = {}
    for number, group in enumerate(groups):
        used: Counter[str] = Counter(pins[c] for c in group if c in pins)
        for index, container in enumerate(group):
            if container in pins:
                placement[container] = pins[container]
                continue
            start = (number + index) % len(engines)
            rotation = list(engines[start:]) + list(engines[:start])
            host = min(rotation, key=lambda e: (used[e], rotation.index(e)))
            used[host] += 1
            placement[container] = host
    return placement


def is_loopback(address: str) -> bool:
    return ipaddress.IPv4Address(address).is_loopback
