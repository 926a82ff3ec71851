"""A Citus worker group joining or leaving the cluster, run by the group's membership resource
(a `command.local.Command`: `join` on create, `drain` on delete) through `docker exec`, like
the `groupLeaders` probe. SQL runs in the coordinator leader's container as the superuser,
whose password the container's ~/.pgpass holds.

  join  --group N [--rebalance] ...   wait until Patroni registered the group's primary in
                                      pg_dist_node; with --rebalance move shards onto it
  drain --group N --members a,b ...   move every shard off the group, stop its members, drop
                                      its nodes from pg_dist_node and its state from the DCS;
                                      refuses (exit 1, nothing removed) when shards remain or
                                      no other worker group could take them

A whole-cluster `pulumi destroy` has nowhere to move the shards: run it with
PATRONI_CITUS_DRAIN=skip (the data volumes are retained unless volumes.retainOnDelete is false).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from typing import Callable, Optional

from patroni_api import StepError, docker

# Shards move with writes to them blocked for the move: no logical replication needed.
TRANSFER_MODE = "block_writes"
SKIP_VARIABLE = "PATRONI_CITUS_DRAIN"


def psql(container: str, args: argparse.Namespace, sql: str) -> str:
    # The server ends a statement that runs too long, so a stuck step fails with its reason.
    options = f"PGOPTIONS=-c statement_timeout={args.timeout}s"
    try:
        return docker("exec", "-e", options, container, "psql", "-X", "-v",
                      "ON_ERROR_STOP=1", "-tA", "-U", args.superuser, "-d", args.database,
                      "-c", sql, on=container, timeout=args.timeout + 30)  # fmt: skip
    except StepError as exc:
        raise StepError(f"{container}: {sql!r} failed: {exc}") from None


def coordinator_leader(args: argparse.Namespace) -> str:
    coordinators: list[str] = args.coordinators
    for container in coordinators:
        try:
            if psql(container, args, "SELECT NOT pg_is_in_recovery()") == "t":
                return container
        except StepError:
            continue
    raise StepError(f"no coordinator leader among {', '.join(coordinators)}")


def wait(what: str, probe: Callable[[], object], timeout: float) -> object:
    deadline = time.monotonic() + timeout
    last: Optional[BaseException] = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except StepError as exc:
            last = exc
        time.sleep(1)
    raise StepError(
        f"timed out after {timeout:.0f}s waiting for {what}" + (f" ({last})" if last else "")
    )


def nodes(leader: str, args: argparse.Namespace) -> list[tuple[str, int, str]]:
    rows = psql(
        leader,
        args,
        "SELECT nodename, nodeport, noderole FROM pg_dist_node "
        f"WHERE groupid = {args.group} ORDER BY noderole",
    )
    return [
        (host, int(port), role)
        for host, port, role in (line.split("|") for line in rows.splitlines() if line)
    ]


def placements(leader: str, args: argparse.Namespace) -> int:
    return int(
        psql(leader, args, f"SELECT count(*) FROM pg_dist_placement WHERE groupid = {args.group}")
    )


def join(args: argparse.Namespace) -> dict[str, object]:
    def registered() -> Optional[str]:
        leader = coordinator_leader(args)
        primary = [n for n in nodes(leader, args) if n[2] == "primary"]
        return leader if primary else None

    leader = str(wait(f"worker group {args.group} in pg_dist_node", registered, args.timeout))
    if args.rebalance:
        psql(
            leader, args, f"SELECT rebalance_table_shards(shard_transfer_mode => '{TRANSFER_MODE}')"
        )
    return {"group": args.group, "placements": placements(leader, args)}


def end_demotion_transactions(hosts: list[str]) -> str:
    """SQL ending the transaction Patroni's Citus handler keeps open on the coordinator after
    the removed group's leader stopped. A stopping worker leader tells the coordinator
    `before_demote`; the handler opens a transaction on pg_dist_node for it and ends it when
    the group promotes again, or at its deadline (ttl), which Patroni 4.0 checks only when
    another task arrives (CitusHandler.run). A group removed for good never promotes, so the
    transaction would hold pg_dist_node's lock, and metadata locks on every worker, until some
    other group changes: create_distributed_table waited on it for good. The handler's next
    task rolls back on a new connection. Only a session whose statement names one of the
    group's addresses, quoted as Patroni writes them, is ended."""
    addresses = "|".join(re.escape(host) for host in hosts)
    return (
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE application_name = 'Patroni citus' AND state = 'idle in transaction' "
        f"AND query ~ $pattern$'({addresses})(-demoted)?'$pattern$"
    )


def drain(args: argparse.Namespace) -> dict[str, object]:
    if os.environ.get(SKIP_VARIABLE) == "skip":
        return {"group": args.group, "drain": f"skipped ({SKIP_VARIABLE}=skip)"}
    leader = coordinator_leader(args)
    registered = nodes(leader, args)
    if not registered:
        return {"group": args.group, "drain": "not registered: nothing to drain"}
    others = int(
        psql(
            leader,
            args,
            "SELECT count(*) FROM pg_dist_node WHERE noderole = "
            f"'primary' AND shouldhaveshards AND groupid NOT IN (0, {args.group})",
        )
    )
    if not others and placements(leader, args):
        raise StepError(
            f"worker group {args.group} is the last one holding shards: they have "
            f"nowhere to go, so it is not removed. To destroy the whole cluster, "
            f"run with {SKIP_VARIABLE}=skip"
        )
    primaries = [(host, port) for host, port, role in registered if role == "primary"]
    for host, port in primaries:
        psql(
            leader,
            args,
            f"SELECT citus_drain_node('{host}', {port}, shard_transfer_mode => '{TRANSFER_MODE}')",
        )
    remaining = placements(leader, args)
    if remaining:
        raise StepError(
            f"worker group {args.group} still holds {remaining} shard placements "
            "after draining; it is not removed"
        )
    # Unregister the group while its nodes still answer (Citus syncs the removal to every node
    # holding metadata, the removed one included), primary first, then stop its members at
    # once: a cleanly stopped Patroni releases its leader key, after which the coordinator no
    # longer registers the group. If it did so in between, say how to finish by hand.
    for host, port, _ in registered:
        psql(leader, args, f"SELECT citus_remove_node('{host}', {port})")
    for member in args.members:
        docker("stop", "-t", "60", member, on=member, timeout=args.timeout + 30)
    time.sleep(5)
    psql(leader, args, end_demotion_transactions([host for host, _, _ in registered]))
    if nodes(leader, args):
        raise StepError(
            f"Patroni registered worker group {args.group} again while it was stopping; its "
            f"shards are drained. Start its members again (docker start "
            f"{' '.join(args.members)}) and run pulumi up again to retry: its nodes must answer "
            "while they are removed from pg_dist_node"
        )
    answers = f"{args.scope}\nYes I am aware\n"
    docker("exec", "-i", leader, "patronictl", "-c", args.config, "remove", args.scope,
           "--group", str(args.group), on=leader, stdin=answers,
           timeout=args.timeout + 30)  # fmt: skip
    return {"group": args.group, "removed": [f"{h}:{p}" for h, p, _ in registered]}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["join", "drain"])
    parser.add_argument("--group", type=int, required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--superuser", required=True)
    parser.add_argument("--scope", required=True)
    parser.add_argument("--config", required=True, help="patroni.yml in the containers")
    parser.add_argument("--members", default="", help="the group's containers (drain)")
    parser.add_argument("--rebalance", action="store_true")
    parser.add_argument("--timeout", type=int, default=300)
    parser.add_argument("coordinators", nargs="+", help="the coordinator group's containers")
    args = parser.parse_args()
    args.members = [m for m in args.members.split(",") if m]
    try:
        result = join(args) if args.action == "join" else drain(args)
    except StepError as exc:
        print(f"citus_group {args.action} --group {args.group}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
