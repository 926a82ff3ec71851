"""python -m pcctl: status, leader watch and failover drills for a deployed stack."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from dataclasses import asdict
from datetime import datetime
from typing import Callable, Optional, Sequence, TypeVar

import docker

from pcctl import dcs, drill, outputs, probe, status, watch

T = TypeVar("T")

EXIT_OK = 0
EXIT_ERROR = 1  # the stack's outputs or the cluster cannot be read
EXIT_USAGE = 2  # argparse's own
EXIT_FINDINGS = 3  # status found problems; a drill lost acknowledged rows


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m pcctl",
        description="Live status, leader watch and failover drills for a deployed "
        "patroni-citus stack. Run it where the cluster network is reachable (the Docker "
        "host); drills also need the Docker engine (DOCKER_HOST as for the docker CLI).",
    )
    source = top.add_mutually_exclusive_group()
    source.add_argument(
        "-s", "--stack", help="the stack whose outputs to read with the Pulumi CLI "
        "(default: the selected stack)"
    )  # fmt: skip
    source.add_argument(
        "--outputs",
        metavar="FILE",
        help="a file written by `pulumi stack output --json --show-secrets` (no Pulumi CLI needed)",
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    show = commands.add_parser(
        "status",
        help="every group and member now, the leader keys in etcd, pg_dist_node and the VIP",
    )
    show.add_argument("--json", action="store_true", help="print JSON instead of tables")
    show.set_defaults(run=run_status)

    follow = commands.add_parser(
        "watch", help="stream leader changes of every group from an etcd watch until interrupted"
    )
    follow.add_argument("--json", action="store_true", help="one JSON object per line")
    follow.set_defaults(run=run_watch)

    fault = commands.add_parser(
        "drill", help="fail a group's leader over under a writer and report the figures"
    )
    fault.add_argument("kind", choices=["crash", "switchover"],
                       help="crash: docker kill the leader; switchover: a planned handover")  # fmt: skip
    fault.add_argument(
        "--group", required=True, type=group_number, help="the group (0: coordinator)"
    )
    fault.add_argument("--json", action="store_true", help="print the figures as JSON")
    fault.add_argument("--keep-table", action="store_true",
                       help=f"keep the {drill.DRILL_TABLE} table the writer filled")  # fmt: skip
    fault.set_defaults(run=run_drill)
    return top


def group_number(text: str) -> str:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(
            f"a group is a number (0 for the coordinator), not {text!r}"
        )
    return str(int(text))


def load(args: argparse.Namespace) -> outputs.StackOutputs:
    if args.outputs:
        return outputs.from_file(args.outputs)
    return outputs.from_pulumi(args.stack)


def run_status(args: argparse.Namespace, stack: outputs.StackOutputs) -> int:
    views = probe.patroni_views(stack)
    leaders: dict[str, Optional[str]] | Exception
    try:
        leaders = dcs.leaders(stack)
    except dcs.DcsError as exc:
        leaders = exc
    if all(isinstance(v, Exception) for v in views.values()) and isinstance(leaders, Exception):
        raise probe.ProbeError(
            "cannot reach the cluster: no Patroni member and no etcd endpoint answers "
            f"({leaders}); pcctl must run where the cluster network is routable"
        )
    dist = _attempt(probe.dist_nodes, stack) if stack.citus else None
    holder = _attempt(probe.vip_holder, stack) if stack.vip else None
    found = status.assemble(stack, views, leaders, dist, holder)
    if args.json:
        print(json.dumps(status.to_json(found), indent=2))
    else:
        print(status.render_table(found))
    return EXIT_OK if found.healthy else EXIT_FINDINGS


def _attempt(
    probe_call: Callable[[outputs.StackOutputs], T], stack: outputs.StackOutputs
) -> T | probe.ProbeError:
    """A source that does not answer becomes a problem in the status, not an error."""
    try:
        return probe_call(stack)
    except probe.ProbeError as exc:
        return exc


def run_watch(args: argparse.Namespace, stack: outputs.StackOutputs) -> int:
    dcs.leaders(stack)  # fails clearly when no etcd endpoint answers
    # "Until interrupted" holds even where SIGINT was inherited as ignored (a job started in
    # the background by a script), and a supervisor's SIGTERM ends it the same way.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    render = watch.render_json if args.json else watch.render_line
    events = dcs.watch(stack, on_error=lambda why: print(f"pcctl watch: {why}", file=sys.stderr))
    try:
        for change in watch.leader_changes(
            events, stack.groups, lambda: datetime.now().astimezone()
        ):
            print(render(change), flush=True)
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def run_drill(args: argparse.Namespace, stack: outputs.StackOutputs) -> int:
    def progress(line: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {line}", file=sys.stderr, flush=True)

    try:
        engine = docker.from_env()
        engine.ping()
    except docker.errors.DockerException as exc:
        raise drill.DrillError(f"a drill needs the cluster's Docker engine: {exc}") from None
    report = drill.run(stack, args.kind, args.group, progress, engine, args.keep_table)
    if args.json:
        print(json.dumps(asdict(report), indent=2))
    else:
        for key, value in asdict(report).items():
            print(f"{key.replace('_', ' '):<22} {value}")
    return EXIT_OK if report.rows_lost == 0 else EXIT_FINDINGS


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parser().parse_args(argv)
    try:
        stack = load(args)
        code: int = args.run(args, stack)
        return code
    except (
        outputs.OutputsError,
        probe.ProbeError,
        dcs.DcsError,
        drill.DrillError,
        docker.errors.DockerException,
    ) as exc:
        print(f"pcctl {args.command}: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
