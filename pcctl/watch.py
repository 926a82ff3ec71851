"""Leader changes from the stream of leader-key writes: Patroni rewrites its key on every HA
loop (etcd v2) and a watch restarted on another endpoint repeats the current values, so only a
different value is a change."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Iterable, Iterator, Optional

from pcctl.dcs import LeaderEvent


@dataclass(frozen=True)
class LeaderChange:
    at: datetime
    group: str
    leader: Optional[str]  # None: the key is gone, the group has no leader
    previous: Optional[str]
    initial: bool  # the value when the watch started, not a change


def leader_changes(
    events: Iterable[LeaderEvent], groups: Iterable[str], now: Callable[[], datetime]
) -> Iterator[LeaderChange]:
    """The first value of every group, then each change of it."""
    pending = set(groups)
    current: dict[str, Optional[str]] = {}
    for group, leader in events:
        if group in pending:
            pending.discard(group)
            current[group] = leader
            yield LeaderChange(now(), group, leader, None, initial=True)
        elif current.get(group) != leader:
            previous, current[group] = current.get(group), leader
            yield LeaderChange(now(), group, leader, previous, initial=False)


def render_line(change: LeaderChange) -> str:
    stamp = change.at.isoformat(timespec="milliseconds")
    leader = change.leader or "(none)"
    if change.initial:
        return f"{stamp}  group {change.group}  leader {leader}"
    return f"{stamp}  group {change.group}  leader {change.previous or '(none)'} -> {leader}"


def render_json(change: LeaderChange) -> str:
    return json.dumps(
        {
            "at": change.at.isoformat(timespec="milliseconds"),
            "group": change.group,
            "leader": change.leader,
            "previous": change.previous,
            "initial": change.initial,
        }
    )
