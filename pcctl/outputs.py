"""The deployed stack as pcctl sees it: the outputs `pulumi stack output --json --show-secrets`
prints, read from the Pulumi CLI or from a file of that JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Optional

PROJECT_DIR = Path(__file__).resolve().parent.parent


class OutputsError(RuntimeError):
    """The stack outputs cannot be read or are not a patroni-citus stack's."""


@dataclass(frozen=True)
class Member:
    group: str
    name: str  # also the container's name and hostname
    address: str


@dataclass(frozen=True)
class Coordinator:
    """Where clients connect (a libpq host list: the VIP or every coordinator member)."""

    host: str
    port: int
    database: str
    user: str
    password: str
    # libpq keywords the stack derives from its timing: fail fast on a dead server.
    parameters: Mapping[str, Any]


@dataclass(frozen=True)
class StackOutputs:
    members: tuple[Member, ...]
    etcd_endpoints: tuple[str, ...]
    dcs_api: Literal["v2", "v3"]
    dcs_prefix: str
    leader_keys: Mapping[str, str]  # group -> the etcd key holding its leader's name
    citus: bool
    vip: Optional[str]
    coordinator: Coordinator

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(sorted({m.group for m in self.members}, key=int))

    def group_members(self, group: str) -> tuple[Member, ...]:
        return tuple(m for m in self.members if m.group == group)

    def member_named(self, name: str) -> Optional[Member]:
        return next((m for m in self.members if m.name == name), None)

    def member_at(self, address: str) -> Optional[Member]:
        return next((m for m in self.members if m.address == address), None)


def parse(document: Any, source: str) -> StackOutputs:
    """The outputs pcctl needs, each checked; an error names the missing or malformed key."""

    def missing(key: str) -> OutputsError:
        return OutputsError(
            f"{source}: output `{key}` is missing (a stack of an older version of the program? "
            "run `pulumi up` first)"
        )

    def item(parent: Any, key: str, kind: type, path: str, optional: bool = False) -> Any:
        if not isinstance(parent, dict) or key not in parent:
            raise missing(path)
        value = parent[key]
        if value is None and optional:
            return None
        if not isinstance(value, kind):
            raise OutputsError(f"{source}: output `{path}` should be a {kind.__name__}")
        return value

    if not isinstance(document, dict):
        raise OutputsError(f"{source}: expected a JSON object of stack outputs")
    members = tuple(
        Member(
            group=group,
            name=item(m, "name", str, f"members.{group}[{i}].name"),
            address=item(m, "address", str, f"members.{group}[{i}].address"),
        )
        for group, listed in item(document, "members", dict, "members").items()
        for i, m in enumerate(listed)
    )
    dcs = item(document, "dcs", dict, "dcs")
    api = item(dcs, "api", str, "dcs.api")
    if api not in ("v2", "v3"):
        raise OutputsError(f"{source}: output `dcs.api` is {api!r}, not v2 or v3")
    coordinator = item(document, "coordinator", dict, "coordinator")
    password = item(document, "coordinatorPassword", str, "coordinatorPassword")
    if password == "[secret]":
        raise OutputsError(
            f"{source}: `coordinatorPassword` is masked: write the file with "
            "`pulumi stack output --json --show-secrets`"
        )
    return StackOutputs(
        members=members,
        etcd_endpoints=tuple(item(document, "etcdEndpoints", list, "etcdEndpoints")),
        dcs_api=api,
        dcs_prefix=item(dcs, "prefix", str, "dcs.prefix"),
        leader_keys=dict(item(dcs, "leaderKeys", dict, "dcs.leaderKeys")),
        citus=item(document, "citus", bool, "citus"),
        vip=item(document, "vip", str, "vip", optional=True),
        coordinator=Coordinator(
            host=item(coordinator, "host", str, "coordinator.host"),
            port=item(coordinator, "port", int, "coordinator.port"),
            database=item(coordinator, "database", str, "coordinator.database"),
            user=item(coordinator, "user", str, "coordinator.user"),
            password=password,
            parameters=dict(item(coordinator, "parameters", dict, "coordinator.parameters")),
        ),
    )


def from_file(path: str) -> StackOutputs:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise OutputsError(f"cannot read the outputs file {path}: {exc.strerror}") from None
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise OutputsError(f"{path} is not JSON: {exc}") from None
    return parse(document, path)


def from_pulumi(stack: Optional[str], project_dir: Path = PROJECT_DIR) -> StackOutputs:
    """Asks the Pulumi CLI for the stack's outputs, secrets in clear (kept in memory only)."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise OutputsError(
            "the Pulumi CLI is not on PATH: pass --outputs FILE, a file written by "
            "`pulumi stack output --json --show-secrets`"
        )
    argv = [pulumi, "stack", "output", "--json", "--show-secrets", "--non-interactive"]
    if stack:
        argv += ["--stack", stack]
    try:
        result = subprocess.run(
            argv, cwd=project_dir, capture_output=True, text=True, timeout=120, check=False
        )
    except subprocess.TimeoutExpired:
        raise OutputsError("`pulumi stack output` did not answer in 120 s") from None
    if result.returncode != 0:
        raise OutputsError(f"`pulumi stack output` failed: {result.stderr.strip()}")
    source = f"stack {stack}" if stack else "the selected stack"
    try:
        document = json.loads(result.stdout)
    except ValueError as exc:
        raise OutputsError(f"`pulumi stack output` printed no JSON: {exc}") from None
    return parse(document, source)
