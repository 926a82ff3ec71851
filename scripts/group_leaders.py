#!/usr/bin/env python3
"""Prints {"<group>": "<leader>"} for a Patroni (Citus) cluster once every group has a
running leader, asking `patronictl` inside the member containers through the Docker CLI.

Run by the stack's `groupLeaders` command after the cluster is created; standard library only,
so it runs with any python3 next to the Docker CLI."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from patroni_api import engine_environment


def leaders_from(listing: list[dict[str, Any]]) -> dict[str, str]:
    """Maps group number to leader name from `patronictl list -f json` output."""
    leaders: dict[str, str] = {}
    for member in listing:
        if member.get("Role") in ("Leader", "Standby Leader") and member.get("State") == "running":
            leaders[str(member.get("Group", 0))] = member["Member"]
    return leaders


def ask(container: str, config: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["docker", "exec", container, "patronictl", "-c", config, "list", "-f", "json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env=engine_environment(container),
    ).stdout
    listing: list[dict[str, Any]] = json.loads(out)
    return listing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--groups", required=True, help="comma-separated group numbers")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait")
    parser.add_argument("--config", default="/etc/patroni/patroni.yml")
    parser.add_argument("containers", nargs="+", help="member containers to ask, in order")
    args = parser.parse_args()
    wanted = set(args.groups.split(","))
    deadline = time.monotonic() + args.timeout
    last = "no answer yet"
    while True:
        for container in args.containers:
            try:
                leaders = leaders_from(ask(container, args.config))
            except (subprocess.SubprocessError, ValueError, KeyError) as exc:
                last = f"{container}: {exc}"
                continue
            if wanted <= set(leaders):
                print(json.dumps({g: leaders[g] for g in sorted(wanted, key=int)}))
                return 0
            last = f"leaders so far {leaders}"
            break
        if time.monotonic() > deadline:
            print(
                f"groups {sorted(wanted)} have no running leader after {args.timeout:.0f}s; "
                f"last: {last}",
                file=sys.stderr,
            )
            return 1
        time.sleep(2)


if __name__ == "__main__":
    sys.exit(main())
