#!/usr/bin/env python3
"""pc-crash-watch: releases a dead Patroni leader's key the moment the engine reports that its
container died, so the synchronous standby takes over in seconds instead of after the TTL.

Why it is safe (docs/failover-and-partitions.md, "Crash failover"):
- It acts only on the engine's word that the container is dead: a `die` event, or, on start,
  a container listed as exited or dead. When a PID namespace's init exits, the kernel kills
  and reaps every other process in it before the exit is reported, so no PostgreSQL process
  of that member is left to accept a write. A partition, a paused container or a slow member
  is never dead, so Patroni's TTL still governs them.
- The key is deleted only if it still names the dead member *and* is unchanged since it was
  read (etcd v3: a transaction comparing value and mod_revision; v2: prevValue and
  prevIndex), and the engine was asked between the read and the delete whether the container
  runs again. A member restarted meanwhile rewrites or renews its key, so the comparison fails.
- It never writes a leader: Patroni's own race (and synchronous mode's rule that only the
  synchronous standby may take over) decides who leads.
- Missed events are harmless: every (re)connection to the engine starts with a resync from
  the engine's current state, and a key it does not release expires with its TTL as before.

Configuration (environment; the CrashWatcher component sets it):
  PC_SCOPE           the cluster's scope: containers labelled patroni-citus.cluster=SCOPE
  PC_DCS_PREFIX      where Patroni's keys live, e.g. /service/offline
  PC_CITUS           "true" when every group's keys live under PREFIX/GROUP
  PC_ETCD_API        v3 or v2
  PC_ETCD_ENDPOINTS  comma-separated http://host:port
  PC_ENGINE_URL      the engine proxy's read-only Docker API, http://host:port
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Protocol

# Copies of the program's contracts, which the image cannot import: the labels and role of
# policies/conventions.py, and the leader-key layout (Config.leader_key). Each is tied to its
# source by tests/unit/test_image_contracts.py.
LABEL_CLUSTER = "patroni-citus.cluster"
LABEL_ROLE = "patroni-citus.role"
LABEL_MEMBER = "patroni-citus.member"
LABEL_GROUP = "patroni-citus.group"
ROLE_PATRONI = "patroni"
# Where the healthcheck looks: present while an event stream is open and resynchronised.
READY_FILE = "/dev/shm/pc-crash-watch.ready"
# Docker states in which no process of the container exists. Not "paused" (frozen, alive)
# and not "restarting"/"running"/"created"/"removing" (processes may run or start).
DEAD_STATES = frozenset({"exited", "dead"})
REQUEST_TIMEOUT_S = 2.0
RECONNECT_DELAY_S = 0.5


def log(message: str) -> None:
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
    print(f"{stamp} pc-crash-watch: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Config:
    scope: str
    dcs_prefix: str
    citus: bool
    etcd_api: str
    etcd_endpoints: tuple[str, ...]
    engine_url: str

    @classmethod
    def from_environment(cls, env: dict[str, str]) -> Config:
        missing = [
            k
            for k in ("PC_SCOPE", "PC_DCS_PREFIX", "PC_ETCD_ENDPOINTS", "PC_ENGINE_URL")
            if not env.get(k)
        ]
        if missing:
            raise SystemExit(f"pc-crash-watch: {', '.join(missing)} not set")
        api = env.get("PC_ETCD_API", "v3")
        if api not in ("v3", "v2"):
            raise SystemExit(f"pc-crash-watch: PC_ETCD_API={api!r}: must be v3 or v2")
        return cls(
            scope=env["PC_SCOPE"],
            dcs_prefix=env["PC_DCS_PREFIX"].rstrip("/"),
            citus=env.get("PC_CITUS", "false").lower() == "true",
            etcd_api=api,
            etcd_endpoints=tuple(
                e.strip().rstrip("/") for e in env["PC_ETCD_ENDPOINTS"].split(",") if e.strip()
            ),
            engine_url=env["PC_ENGINE_URL"].rstrip("/"),
        )

    def leader_key(self, group: str) -> str:
        """The key naming a group's leader, as Patroni writes it (Settings.leader_key)."""
        return f"{self.dcs_prefix}/{group}/leader" if self.citus else f"{self.dcs_prefix}/leader"

    @property
    def label_filters(self) -> list[str]:
        """The engine's filters for this cluster's Patroni containers."""
        return [f"{LABEL_CLUSTER}={self.scope}", f"{LABEL_ROLE}={ROLE_PATRONI}"]


# --- the DCS --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Held:
    """A leader key as read: the member it names and the revision it was read at."""

    member: str
    revision: int


class Dcs(Protocol):
    def read(self, key: str) -> Optional[Held]: ...
    def delete_if_unchanged(self, key: str, held: Held) -> bool: ...


class EtcdError(Exception):
    pass


def _request(
    endpoints: tuple[str, ...], method: str, path: str, body: Optional[bytes] = None
) -> tuple[int, bytes]:
    """The first endpoint that answers; HTTP errors are answers (the status is returned)."""
    last: Optional[Exception] = None
    for endpoint in endpoints:
        request = urllib.request.Request(endpoint + path, data=body, method=method)
        if body is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except (OSError, http.client.HTTPException) as error:
            last = error
    raise EtcdError(f"no etcd endpoint answered {method} {path}: {last}")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class EtcdV3:
    """Through etcd's JSON gateway, as Patroni's etcd3 client does."""

    def __init__(self, endpoints: tuple[str, ...]):
        self.endpoints = endpoints

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        status, body = _request(self.endpoints, "POST", path, json.dumps(payload).encode())
        if status != 200:
            raise EtcdError(f"POST {path}: HTTP {status}: {body[:200]!r}")
        answer: dict[str, Any] = json.loads(body)
        return answer

    def read(self, key: str) -> Optional[Held]:
        kvs = self._post("/v3/kv/range", {"key": _b64(key)}).get("kvs") or []
        if not kvs:
            return None
        return Held(base64.b64decode(kvs[0].get("value", "")).decode(), int(kvs[0]["mod_revision"]))

    def delete_if_unchanged(self, key: str, held: Held) -> bool:
        k = _b64(key)
        answer = self._post(
            "/v3/kv/txn",
            {
                "compare": [
                    {"key": k, "target": "VALUE", "result": "EQUAL", "value": _b64(held.member)},
                    {
                        "key": k,
                        "target": "MOD",
                        "result": "EQUAL",
                        "mod_revision": str(held.revision),
                    },
                ],
                "success": [{"request_delete_range": {"key": k}}],
            },
        )
        return bool(answer.get("succeeded"))  # proto3 JSON leaves out a false field


class EtcdV2:
    def __init__(self, endpoints: tuple[str, ...]):
        self.endpoints = endpoints

    def read(self, key: str) -> Optional[Held]:
        status, body = _request(self.endpoints, "GET", "/v2/keys" + urllib.parse.quote(key))
        if status == 404:
            return None
        if status != 200:
            raise EtcdError(f"GET {key}: HTTP {status}: {body[:200]!r}")
        node = json.loads(body)["node"]
        return Held(node.get("value", ""), int(node["modifiedIndex"]))

    def delete_if_unchanged(self, key: str, held: Held) -> bool:
        query = urllib.parse.urlencode({"prevValue": held.member, "prevIndex": held.revision})
        status, body = _request(
            self.endpoints, "DELETE", f"/v2/keys{urllib.parse.quote(key)}?{query}"
        )
        if status in (404, 412):  # gone already, or changed: not ours to delete
            return False
        if status != 200:
            raise EtcdError(f"DELETE {key}: HTTP {status}: {body[:200]!r}")
        return True


# --- the engine -----------------------------------------------------------------------------


class EngineError(Exception):
    pass


class Engine:
    """The read-only Docker API the engine proxy passes on: container list and events."""

    def __init__(self, url: str, label_filters: list[str]):
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname or "localhost", parsed.port or 2375
        self.label_filters = label_filters

    def _connection(self, timeout: Optional[float]) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _get(self, path: str, filters: dict[str, list[str]]) -> Any:
        connection = self._connection(REQUEST_TIMEOUT_S)
        try:
            connection.request("GET", f"{path}?{_filters(filters)}&all=1")
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                raise EngineError(f"GET {path}: HTTP {response.status}: {body[:200]!r}")
            return json.loads(body)
        except (OSError, http.client.HTTPException) as error:
            raise EngineError(f"GET {path}: {error}") from error
        finally:
            connection.close()

    def members(self) -> list[dict[str, Any]]:
        """The cluster's Patroni containers with their labels and state."""
        found: list[dict[str, Any]] = self._get("/containers/json", {"label": self.label_filters})
        return found

    def state(self, member: str) -> Optional[str]:
        found = self._get(
            "/containers/json", {"label": [*self.label_filters, f"{LABEL_MEMBER}={member}"]}
        )
        return found[0]["State"] if found else None

    def deaths(self) -> Iterator[Optional[dict[str, Any]]]:
        """Opens the event stream, yields None once it is open, then every `die` of the
        cluster's Patroni containers. Ends (raises) when the stream breaks."""
        connection = self._connection(None)  # an idle stream is normal
        try:
            connection.request(
                "GET",
                "/events?"
                + _filters({"type": ["container"], "event": ["die"], "label": self.label_filters}),
            )
            response = connection.getresponse()
            if response.status != 200:
                raise EngineError(f"GET /events: HTTP {response.status}")
            yield None
            while True:
                line = response.readline()
                if not line:
                    raise EngineError("the event stream ended")
                if line.strip():
                    yield json.loads(line)
        except (OSError, http.client.HTTPException) as error:
            raise EngineError(f"event stream: {error}") from error
        finally:
            connection.close()


def _filters(filters: dict[str, list[str]]) -> str:
    return "filters=" + urllib.parse.quote(json.dumps(filters))


# --- the decision ---------------------------------------------------------------------------


class States(Protocol):
    def state(self, member: str) -> Optional[str]: ...


def release(config: Config, dcs: Dcs, engine: States, member: str, group: str) -> str:
    """Releases `member`'s leader key if it holds one and its container is dead now; returns
    what happened, for the log."""
    key = config.leader_key(group)
    held = dcs.read(key)
    if held is None:
        return f"{key} is free"
    if held.member != member:
        return f"{key} names {held.member}, not {member}"
    # Asked after the read: a member running again by now has renewed or rewritten its key
    # (or will), and a key written after the read fails the comparison below.
    state = engine.state(member)
    if state not in DEAD_STATES:
        return f"{member} is {state or 'gone from this engine'}: left to Patroni's TTL"
    if dcs.delete_if_unchanged(key, held):
        return f"released {key} held by dead {member} (revision {held.revision})"
    return f"{key} changed since it was read: left alone"


def resync(config: Config, dcs: Dcs, engine: Engine) -> None:
    for container in engine.members():
        labels = container.get("Labels") or {}
        if container.get("State") in DEAD_STATES and labels.get(LABEL_MEMBER):
            member, group = labels[LABEL_MEMBER], labels.get(LABEL_GROUP, "0")
            log(
                f"resync: {member} is {container['State']}: "
                + release(config, dcs, engine, member, group)
            )


def on_death(config: Config, dcs: Dcs, engine: Engine, event: dict[str, Any]) -> None:
    attributes = event.get("Actor", {}).get("Attributes", {})
    member = attributes.get(LABEL_MEMBER)
    if not member:
        return
    started = time.monotonic()
    outcome = release(config, dcs, engine, member, attributes.get(LABEL_GROUP, "0"))
    log(
        f"{member} died (exit code {attributes.get('exitCode', '?')}): {outcome} "
        f"[{(time.monotonic() - started) * 1000:.0f} ms]"
    )


def _ready(on: bool) -> None:
    if on:
        with open(READY_FILE, "w") as f:
            f.write(str(os.getpid()))
    elif os.path.exists(READY_FILE):
        os.unlink(READY_FILE)


def watch(config: Config) -> None:
    dcs: Dcs = (
        EtcdV3(config.etcd_endpoints) if config.etcd_api == "v3" else EtcdV2(config.etcd_endpoints)
    )
    engine = Engine(config.engine_url, config.label_filters)
    log(
        f"watching {config.scope}'s Patroni containers through {config.engine_url}; "
        f"leader keys under {config.dcs_prefix} (etcd {config.etcd_api})"
    )
    while True:
        try:
            for event in engine.deaths():
                if event is None:
                    # The stream is open before the resync reads the state: a death in
                    # between is both seen by the resync and queued on the stream.
                    resync(config, dcs, engine)
                    _ready(True)
                    log("event stream open, resynchronised")
                else:
                    on_death(config, dcs, engine, event)
        except (EngineError, EtcdError, ValueError, KeyError) as error:
            _ready(False)
            log(f"{error}; reconnecting")
            time.sleep(RECONNECT_DELAY_S)


def main(argv: list[str]) -> int:
    if argv[1:] == ["healthcheck"]:
        return 0 if os.path.exists(READY_FILE) else 1
    if argv[1:]:
        print(__doc__, file=sys.stderr)
        return 2
    _ready(False)
    watch(Config.from_environment(dict(os.environ)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
