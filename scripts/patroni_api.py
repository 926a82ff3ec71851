"""What the day-2 scripts (member_config.py, rollout.py) share: the Docker CLI, Patroni's REST
API reached through `docker exec <member> pc-rest` (so the cluster network need not be routable
from the machine running Pulumi), and the group's health as Patroni's GET /cluster reports it.

Standard library only: these run with any python3 next to the Docker CLI."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, TypeVar

T = TypeVar("T")


class StepError(RuntimeError):
    """A step that cannot go on; the message says what to look at."""


def run_step(args: argparse.Namespace, program: str) -> int:
    """Runs the chosen subcommand (`args.run`); a StepError is one line on stderr and exit 1."""
    try:
        args.run(args)
    except StepError as exc:
        print(f"{program} {args.step}: {exc}", file=sys.stderr)
        return 1
    return 0


def log(message: str) -> None:
    """Progress goes to stderr, which `pulumi up` shows; stdout stays for results."""
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def engine_environment(container: str) -> Optional[dict[str, str]]:
    """The Docker CLI's environment for the engine that runs `container`: with several hosts
    the program maps each container to its engine's DOCKER_HOST (and TLS) in PC_ENGINES;
    None inherits this process's environment (one engine)."""
    engines: dict[str, dict[str, str]] = json.loads(os.environ.get("PC_ENGINES") or "{}")
    extra = engines.get(container)
    return None if extra is None else {**os.environ, **extra}


def docker(*argv: str, on: str, stdin: Optional[str] = None, timeout: float = 120) -> str:
    """Runs one docker CLI command about container `on`, on that container's engine; a
    failure is a StepError naming it, never a traceback."""
    try:
        result = subprocess.run(["docker", *argv], input=stdin, capture_output=True, text=True,
                                timeout=timeout, env=engine_environment(on))  # fmt: skip
    except subprocess.TimeoutExpired:
        raise StepError(f"docker {' '.join(argv[:4])} ...: no answer in {timeout:.0f}s") from None
    if result.returncode != 0:
        raise StepError(f"docker {' '.join(argv[:4])} ...: {result.stderr.strip()}")
    return result.stdout.strip()


def container_state(name: str) -> Optional[dict[str, Any]]:
    """`docker inspect` of a container, or None when there is no such container."""
    result = subprocess.run(["docker", "inspect", "--type", "container", name],
                            capture_output=True, text=True, timeout=60,
                            env=engine_environment(name))  # fmt: skip
    if result.returncode != 0:
        if "no such" in result.stderr.lower():
            return None
        raise StepError(f"docker inspect {name}: {result.stderr.strip()}")
    found: list[dict[str, Any]] = json.loads(result.stdout)
    return found[0] if found else None


def is_running(name: str) -> bool:
    state = container_state(name)
    return bool(state and state["State"]["Running"])


def rest(member: str, method: str, path: str, body: Any = None, *, timeout: float = 90) -> Any:
    """One REST call made inside `member` to its own API; returns the parsed JSON answer, or
    the text when it is not JSON."""
    argv = ["exec", member, "pc-rest", method, path]
    if body is not None:
        argv.append(json.dumps(body))
    text = docker(*argv, "--timeout", str(timeout), on=member, timeout=timeout + 30)
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


def retrying(what: str, action: Callable[[], T], timeout: float, interval: float = 1.0) -> T:
    """Repeats `action` until it returns without a StepError: credentials being rewritten and
    members restarting fail a call or two."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return action()
        except StepError as exc:
            if time.monotonic() > deadline:
                raise StepError(f"{what}: {exc}") from None
        time.sleep(interval)


@dataclass(frozen=True)
class MemberView:
    """One member as GET /cluster reports it."""

    name: str
    role: str  # leader, standby_leader, sync_standby, replica, ...
    state: str  # running, streaming, starting, stopped, ...
    lag: Optional[int]  # bytes behind the leader; None when unknown or for the leader
    pending_restart: bool
    nofailover: bool

    @property
    def is_leader(self) -> bool:
        return self.role in ("leader", "standby_leader")

    def healthy(self, max_lag: int) -> bool:
        """A running leader, or a replica streaming from it within `max_lag` bytes."""
        if self.is_leader:
            return self.state == "running"
        return self.state == "streaming" and self.lag is not None and self.lag <= max_lag


def cluster_view(members: Sequence[str]) -> dict[str, MemberView]:
    """The group as the first member that answers reports it (GET /cluster reads the DCS)."""
    last = "no member container runs"
    for member in members:
        if not is_running(member):
            continue
        try:
            answer = rest(member, "GET", "/cluster", timeout=10)
        except StepError as exc:
            last = str(exc)
            continue
        view: dict[str, MemberView] = {}
        for entry in answer.get("members", []):
            lag = entry.get("lag")
            view[entry["name"]] = MemberView(
                name=entry["name"],
                role=entry.get("role", ""),
                state=entry.get("state", ""),
                lag=lag if isinstance(lag, int) else None,
                pending_restart=bool(entry.get("pending_restart")),
                nofailover=bool((entry.get("tags") or {}).get("nofailover")),
            )
        return view
    raise StepError(f"no member of {', '.join(members)} answers GET /cluster: {last}")


def leader_of(view: dict[str, MemberView]) -> Optional[MemberView]:
    return next((m for m in view.values() if m.is_leader and m.state == "running"), None)


def candidate(view: dict[str, MemberView], leader: str, max_lag: int) -> Optional[MemberView]:
    """The member to hand leadership to: a synchronous (or quorum) standby when there is one
    (Patroni refuses any other in synchronous mode), else the healthy replica least behind."""
    healthy = [m for m in view.values()
               if m.name != leader and not m.nofailover and m.healthy(max_lag)]  # fmt: skip
    sync = [m for m in healthy if m.role in ("sync_standby", "quorum_standby")]
    pool = sync or healthy
    return min(pool, key=lambda m: (m.lag or 0, m.name)) if pool else None


def switchover(members: Sequence[str], leader: str, max_lag: int, timeout: float) -> Optional[str]:
    """Moves leadership off `leader` to a healthy member and waits until that member leads;
    returns its name, or None when no member can take over. Patroni refuses (412) a candidate
    that is not yet the synchronous standby again, e.g. a replica that has just restarted:
    asked again until it is."""

    def ask() -> Optional[str]:
        view = cluster_view(members)
        current = leader_of(view)
        if current is not None and current.name != leader:
            return current.name  # an earlier request that answered late did it
        target = candidate(view, leader, max_lag)
        if target is None:
            return None
        log(f"switchover {leader} -> {target.name}")
        # POST /switchover answers once the switchover is done (or failed).
        rest(leader, "POST", "/switchover", {"leader": leader, "candidate": target.name},
             timeout=timeout)  # fmt: skip
        return target.name

    new = retrying(f"a switchover from {leader}", ask, timeout, interval=2.0)
    if new is None:
        return None

    def led_by_new() -> bool:
        current = leader_of(cluster_view(members))
        return current is not None and current.name == new

    wait_for(f"{new} to lead", led_by_new, timeout)
    return new


def wait_for(what: str, predicate: Callable[[], bool], timeout: float, interval: float = 1.0,
             status: Callable[[], str] = lambda: "") -> None:  # fmt: skip
    """Polls `predicate` (StepErrors count as not yet) until true, else a StepError naming
    `what` and, when given, the last `status`."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            if predicate():
                return
        except StepError as exc:
            last = str(exc)
        if time.monotonic() > deadline:
            detail = status() or last
            raise StepError(f"timed out after {timeout:.0f}s waiting for {what}"
                            + (f" ({detail})" if detail else ""))  # fmt: skip
        time.sleep(interval)


def describe(view: dict[str, MemberView]) -> str:
    return ", ".join(
        f"{m.name}: {m.role}/{m.state}" + (f" lag {m.lag}" if m.lag else "")
        for m in sorted(view.values(), key=lambda m: m.name)
    )
