"""The `hosts` section: the Docker engines a stack deploys to, and the placement of every
container on them (pure: the loader validates, components only look placements up)."""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from typing import Any, Mapping, Optional, Sequence

from . import checks
from .model import DockerHost
from .reader import Reader, config_key

MAX_ENGINES = 16
_ENGINE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")
_UNIX = re.compile(r"^unix:///[^\s]*$")
_TCP = re.compile(r"^tcp://[A-Za-z0-9.-]{1,253}:[0-9]{1,5}$")
_SSH = re.compile(r"^ssh://([A-Za-z0-9._-]{1,64}@)?[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$")


def read_engines(r: Reader) -> tuple[tuple[DockerHost, ...], Optional[str], dict[str, str]]:
    """Engines, the Swarm manager and the pins, as configured; every problem recorded."""
    raw = r.raw.pop("engines", None)
    engines: list[DockerHost] = []
    if raw is not None and (not isinstance(raw, list) or not raw or len(raw) > MAX_ENGINES):
        r.fail("engines", raw, f"must be a list of 1 to {MAX_ENGINES} engines")
        raw = None
    for index, item in enumerate(raw or []):
        engine = Reader(f"{r.section}.engines[{index}]", item, r.problems)
        if isinstance(item, Mapping):
            engines.append(_read_engine(engine))
    names = [e.name for e in engines]
    for name, count in Counter(names).items():
        if count > 1:
            r.fail("engines", name, "names an engine more than once")
    manager = r.value("swarmManager", None, str)
    if len(engines) > 1 and manager is None:
        r.problems.append(
            f"{config_key('hosts.swarmManager')}: is required with several engines: the "
            "overlay network they share is created through a Swarm manager"
        )
    elif manager is not None and manager not in names:
        r.fail("swarmManager", manager, f"must name one of hosts.engines ({', '.join(names)})")
    elif manager is not None and len(engines) < 2:
        r.fail("swarmManager", manager, "applies only with several engines")
    pins_reader = r.section_reader("pin")
    pins: dict[str, str] = {}
    for container in sorted(pins_reader.raw, key=str):
        host = pins_reader.value(str(container), "", str)
        if host not in names:
            pins_reader.fail(
                str(container), host, f"must name one of hosts.engines ({', '.join(names)})"
            )
        else:
            pins[str(container)] = host
    r.finish()
    return tuple(engines), manager, pins


def _read_engine(r: Reader) -> DockerHost:
    name = r.value("name", "", str)
    if not _ENGINE_NAME.match(name):
        r.fail("name", name, "must be 1 to 31 lowercase letters, digits or '-'")
    endpoint = r.value("endpoint", None, str)
    cert_path = r.value("certPath", None, str, checks.absolute_path)
    ssh_opts: list[Any] = r.value("sshOpts", [], list)
    address = r.value("address", "127.0.0.1", str, checks.address)
    r.finish()
    if endpoint is not None:
        _check_endpoint(r, endpoint, cert_path, ssh_opts)
    elif cert_path is not None or ssh_opts:
        r.fail("endpoint", None, "is required with certPath or sshOpts")
    if not all(isinstance(o, str) for o in ssh_opts):
        r.fail("sshOpts", ssh_opts, "must be a list of strings (ssh options)")
    return DockerHost(name, endpoint, cert_path, tuple(map(str, ssh_opts)), address)


def _check_endpoint(
    r: Reader, endpoint: str, cert_path: Optional[str], ssh_opts: Sequence[Any]
) -> None:
    if _TCP.match(endpoint):
        if cert_path is None:
            r.fail(
                "endpoint",
                endpoint,
                "an engine API over TCP without TLS is root on that host for anyone who "
                "reaches the port: set certPath (a directory with ca.pem, cert.pem, key.pem)",
            )
    elif _SSH.match(endpoint) or _UNIX.match(endpoint):
        if cert_path is not None:
            r.fail("certPath", cert_path, "applies only to a tcp:// endpoint")
    else:
        r.fail(
            "endpoint",
            endpoint,
            "must be unix:///PATH, tcp://HOST:PORT (with certPath) or ssh://[USER@]HOST[:PORT]",
        )
    if ssh_opts and not endpoint.startswith("ssh://"):
        r.fail("sshOpts", list(ssh_opts), "applies only to an ssh:// endpoint")


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
