#!/usr/bin/env python3
"""Rolling changes to one Patroni group, run by the group's commands (`command.local.Command`)
so that `pulumi up` never takes more than one member of a group down at a time:

  turn   --member M ...   before M's container is replaced: wait until it is M's turn, then
                          hand leadership off M. Replicas go first, one at a time, each once
                          every other member is healthy; the leader goes last, after a
                          switchover. Exits at once when M's container is already current
                          (or does not exist yet).
  ready  --member M ...   after M's container is (re)created: wait until M is healthy (a
                          running leader, or a replica streaming within the lag limit).
  handoff --member M ...  before M's container is deleted: switch over when M leads and
                          another member can take over. Never fails: it only saves a failover.
  etcd-ready --member M    after etcd member M's container is (re)created: wait until it serves
                          a linearizable read, once a quorum of the members' containers
                          runs (while a new cluster forms, its first members cannot).
  config --desired JSON   make the group's dynamic configuration (Patroni's DCS /config) what
                          the stack declares, through PATCH /config; then restart the members
                          whose settings need it: replicas first, then a switchover, then the
                          former leader. No member is restarted for reload-only settings.

A container's revision label (patroni-citus.revision) is the hash of everything its
replacement would change; a member whose running container carries another revision than the
stack declares is "pending"."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Optional

from patroni_api import (
    MemberView,
    StepError,
    cluster_view,
    container_state,
    describe,
    docker,
    is_running,
    leader_of,
    log,
    rest,
    retrying,
    run_step,
    switchover,
    wait_for,
)

REVISION_LABEL = "patroni-citus.revision"


def running_revision(member: str) -> Optional[str]:
    """The revision of the member's running container; None when it has none running."""
    state = container_state(member)
    if state is None or not state["State"]["Running"]:
        return None
    labels: dict[str, str] = state["Config"].get("Labels") or {}
    return labels.get(REVISION_LABEL, "")


def turn(args: argparse.Namespace) -> None:
    revisions: dict[str, str] = json.loads(args.revisions)
    member, members = args.member, list(revisions)
    current = running_revision(member)
    if current is None or current == revisions[member]:
        log(f"{member}: nothing to roll")
        return
    log(f"{member}: waiting for its turn (revision {current} -> {revisions[member]})")
    status = ""

    def my_turn() -> bool:
        nonlocal status
        view = cluster_view(members)
        running = {m: running_revision(m) for m in members}
        go, status = may_go(member, view, running, revisions, args.max_lag)
        return go

    wait_for(f"{member}'s turn to be replaced", my_turn, args.timeout, 1.0, lambda: status)
    hand_off(member, members, args)


def may_go(
    member: str,
    view: dict[str, MemberView],
    running: dict[str, Optional[str]],
    revisions: dict[str, str],
    max_lag: int,
) -> tuple[bool, str]:
    """Whether `member`'s container may be replaced now, and why not. `running` maps each
    member to its running container's revision (None: no container runs). Every other member
    that has a container must be healthy, so two are never down at once; pending replicas go
    first, in the group's order; the leader goes last, so the group switches over once."""
    others = [m for m in running if m != member and running[m] is not None]
    unhealthy = [m for m in others if m not in view or not view[m].healthy(max_lag)]
    if unhealthy:
        return False, f"waiting for {', '.join(unhealthy)} to be healthy; {describe(view)}"
    pending = [m for m in running if running[m] not in (None, revisions[m])]
    me = view.get(member)
    if me is not None and me.is_leader:
        waiting = [m for m in pending if m != member]
        return not waiting, f"the leader goes last; still pending: {', '.join(waiting)}"
    replicas = [m for m in pending if not (m in view and view[m].is_leader)]
    if replicas and replicas[0] == member:
        return True, ""
    return False, f"replicas go one at a time, in order: {', '.join(replicas)}"


def handoff(args: argparse.Namespace) -> None:
    hand_off(args.member, args.members.split(","), args)


def hand_off(member: str, members: list[str], args: argparse.Namespace) -> None:
    """Leadership off `member` when it leads and someone can take over; never raises."""
    try:
        leader = leader_of(cluster_view(members))
        if leader is None or leader.name != member:
            return
        if switchover(members, member, args.max_lag, args.timeout) is None:
            log(f"{member} leads and no other member can take over: it goes down leading")
    except StepError as exc:
        log(f"{member}: no switchover ({exc}); Patroni fails over instead")


def ready(args: argparse.Namespace) -> None:
    status = wait_until_healthy(args.member, args.members.split(","), args)
    log(f"{args.member}: healthy ({status})")


def etcd_ready(args: argparse.Namespace) -> None:
    members = args.members.split(",")
    quorum = len(members) // 2 + 1

    def serving() -> bool:
        if not is_running(args.member):
            return False
        if sum(is_running(m) for m in members) < quorum:
            return True  # a forming cluster: the next member's creation is what it waits for
        docker(
            "exec", args.member, "pc-entrypoint", "healthcheck", "etcd", on=args.member, timeout=30
        )
        return True

    wait_for(f"etcd member {args.member} to serve", serving, args.timeout)
    log(f"etcd member {args.member} serves")


def config_patch(current: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """The PATCH /config body that turns `current` into `desired`. PostgreSQL parameters are
    the stack's alone: one no longer declared is removed (set to null, which Patroni's PATCH
    deletes). Other keys someone added outside the stack are left alone."""
    patch: dict[str, Any] = {}
    for key, value in desired.items():
        if key == "postgresql":
            section = config_patch(current.get("postgresql") or {}, value)
            if section:
                patch["postgresql"] = section
        elif key == "parameters":
            now = current.get("parameters") or {}
            changed = {k: v for k, v in value.items() if str(now.get(k)) != str(v)}
            changed.update({k: None for k in now if k not in value})
            if changed:
                patch["parameters"] = changed
        elif current.get(key) != value:
            patch[key] = value
    return patch


def configure(args: argparse.Namespace) -> None:
    members = args.members.split(",")
    desired: dict[str, Any] = json.loads(args.desired)
    view = cluster_view(members)
    leader = leader_of(view)
    if leader is None:
        raise StepError(f"the group has no running leader ({describe(view)})")
    current = rest(leader.name, "GET", "/config")
    patch = config_patch(current, desired)
    if patch:
        log(f"PATCH /config {json.dumps(patch, sort_keys=True)}")
        retrying("PATCH /config", lambda: rest(leader.name, "PATCH", "/config", patch), 30)
        # Every member applies the new configuration on its next HA loop (loop_wait seconds,
        # old or new value): a reload for most parameters, `pending_restart` for the others.
        loop_wait = max(int(current.get("loop_wait", 10)), int(desired.get("loop_wait", 10)))
        time.sleep(2 * loop_wait + 1)
    else:
        log("dynamic configuration already as declared")
    restart_pending(members, args)
    print(json.dumps({"patch": patch}, sort_keys=True))


def restart_pending(members: list[str], args: argparse.Namespace) -> None:
    """Restarts members with pending_restart: replicas one at a time, each healthy again before
    the next; then the leader is switched over (its demotion restarts it) and, if it is still
    pending, restarted as a replica."""
    view = cluster_view(members)
    pending = [m for m in view.values() if m.pending_restart]
    if not pending:
        return
    log(f"pending restart: {', '.join(m.name for m in pending)}")
    for replica in (m for m in pending if not m.is_leader):
        restart(replica, members, args)
    leader = leader_of(cluster_view(members))
    if leader is None or not leader.pending_restart:
        return
    if switchover(members, leader.name, args.max_lag, args.timeout) is None:
        log(f"{leader.name} is the only member that can lead: restarting it in place")
        restart(leader, members, args)
        return
    wait_until_healthy(leader.name, members, args)
    former = cluster_view(members).get(leader.name)
    if former is not None and former.pending_restart:
        restart(former, members, args)


def restart(member: MemberView, members: list[str], args: argparse.Namespace) -> None:
    log(f"restarting {member.name}")
    retrying(
        f"POST /restart on {member.name}",
        lambda: rest(
            member.name, "POST", "/restart", {"restart_pending": True}, timeout=args.timeout
        ),  # fmt: skip
        30,
    )
    wait_until_healthy(member.name, members, args)


def wait_until_healthy(member: str, members: list[str], args: argparse.Namespace) -> str:
    """Waits until `member` is healthy; returns the group as it was then."""
    status = ""

    def healthy() -> bool:
        nonlocal status
        view = cluster_view(members)
        status = describe(view)
        return member in view and view[member].healthy(args.max_lag)

    wait_for(f"{member} to be healthy", healthy, args.timeout, 1.0, lambda: status)
    return status


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds for each wait")
    parser.add_argument("--max-lag", type=int, default=1048576,
                        help="bytes a healthy replica may be behind (maximum_lag_on_failover)")  # fmt: skip
    steps = parser.add_subparsers(dest="step", required=True)
    step = steps.add_parser("turn")
    step.add_argument("--member", required=True)
    step.add_argument("--revisions", required=True, help='JSON {"member": "revision", ...}')
    step.set_defaults(run=turn)
    for name, run in (("ready", ready), ("handoff", handoff), ("etcd-ready", etcd_ready)):
        step = steps.add_parser(name)
        step.add_argument("--member", required=True)
        step.add_argument("--members", required=True, help="the group's members, comma-separated")
        step.set_defaults(run=run)
    step = steps.add_parser("config")
    step.add_argument("--members", required=True)
    step.add_argument("--desired", required=True, help="the dynamic configuration, as JSON")
    step.set_defaults(run=configure)
    return run_step(parser.parse_args(), "rollout")


if __name__ == "__main__":
    sys.exit(main())
