"""Patroni's leader keys, read and watched in etcd itself: the v3 API through python-etcd3,
the v2 API through etcd's HTTP interface (what Debian's vip-manager 1.0.2 needs)."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Iterator, Optional

from pcctl.outputs import StackOutputs

# python-etcd3's generated protobuf modules load only with protobuf's pure-Python
# implementation, which must be chosen before protobuf is first imported.
os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")

import etcd3  # noqa: E402

# A watch on a member that dies silently (no RST) would wait forever without keepalives; etcd
# closes connections that ping more often than every 5 s (--grpc-keepalive-min-time).
GRPC_OPTIONS = [("grpc.keepalive_time_ms", 10000), ("grpc.keepalive_timeout_ms", 5000)]
# etcd v2 sends nothing while no key changes: a long poll is asked again after this.
V2_POLL_SECONDS = 30.0

LeaderEvent = tuple[str, Optional[str]]  # group, leader name (None: the key is gone)


class DcsError(RuntimeError):
    """No etcd endpoint answers."""


def _host_port(endpoint: str) -> tuple[str, int]:
    url = urllib.parse.urlsplit(endpoint)
    if not url.hostname or not url.port:
        raise DcsError(f"etcd endpoint {endpoint!r} has no host:port")
    return url.hostname, url.port


def _first_answer(outputs: StackOutputs, call: Callable[[str], Any]) -> Any:
    errors = []
    for endpoint in outputs.etcd_endpoints:
        try:
            return call(endpoint)
        except (OSError, etcd3.exceptions.Etcd3Exception, ValueError) as exc:
            errors.append(f"{endpoint}: {exc}")
    raise DcsError("no etcd endpoint answers: " + "; ".join(errors))


def _groups_by_key(outputs: StackOutputs) -> dict[str, str]:
    return {key: group for group, key in outputs.leader_keys.items()}


def leaders(outputs: StackOutputs) -> dict[str, Optional[str]]:
    """Every group's leader key value (None when the key is absent)."""
    if outputs.dcs_api == "v3":
        return dict(_first_answer(outputs, lambda e: _v3_leaders(outputs, e)))
    return dict(_first_answer(outputs, lambda e: _v2_state(outputs, e)[0]))


def watch(
    outputs: StackOutputs, on_error: Callable[[str], None] = lambda _: None
) -> Iterator[LeaderEvent]:
    """Every write to a leader key, as an etcd watch streams it, starting with the current
    values; a broken watch (told to `on_error`) moves to the next endpoint and starts again
    with the values then. Runs until the caller stops iterating."""
    _quiet_closed_watch_threads()
    endpoints = list(outputs.etcd_endpoints)
    failures = 0
    while True:
        endpoint = endpoints[failures % len(endpoints)]
        try:
            if outputs.dcs_api == "v3":
                yield from _v3_watch(outputs, endpoint)
            else:
                yield from _v2_watch(outputs, endpoint)
        except (OSError, etcd3.exceptions.Etcd3Exception, ValueError) as exc:
            on_error(f"watch on {endpoint} broke ({exc.__class__.__name__}: {exc})")
            failures += 1
            if failures % len(endpoints) == 0:
                time.sleep(1.0)  # every endpoint failed in turn: etcd is down, not a member


def _quiet_closed_watch_threads() -> None:
    """python-etcd3's watch thread outlives its client: once the client is closed it dies on
    the closed channel with a traceback (kragniz/python-etcd3#997, unfixed in 0.12). Closing
    the client of a broken watch is what pcctl means to do, so that end is not printed."""
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if not (
            args.thread is not None
            and args.thread.name.startswith("etcd3_watch_")
            and isinstance(args.exc_value, ValueError)
            and "Channel closed" in str(args.exc_value)
        ):
            previous(args)

    threading.excepthook = hook


def _v3_client(endpoint: str) -> Any:
    host, port = _host_port(endpoint)
    return etcd3.client(host=host, port=port, timeout=3, grpc_options=GRPC_OPTIONS)


def _v3_state(outputs: StackOutputs, client: Any) -> tuple[dict[str, Optional[str]], int]:
    """The leader values and the revision they were read at, in one range read."""
    by_key = _groups_by_key(outputs)
    current = client.get_prefix_response(outputs.dcs_prefix + "/")
    values: dict[str, Optional[str]] = {g: None for g in outputs.leader_keys}
    for kv in current.kvs:
        if kv.key.decode() in by_key:
            values[by_key[kv.key.decode()]] = kv.value.decode()
    return values, int(current.header.revision)


def _v3_leaders(outputs: StackOutputs, endpoint: str) -> dict[str, Optional[str]]:
    client = _v3_client(endpoint)
    try:
        return _v3_state(outputs, client)[0]
    finally:
        client.close()


def _v3_watch(outputs: StackOutputs, endpoint: str) -> Iterator[LeaderEvent]:
    by_key = _groups_by_key(outputs)
    client = _v3_client(endpoint)
    try:
        # The watch starts right after the revision the current values were read at, so no
        # change between the read and the watch is missed.
        values, revision = _v3_state(outputs, client)
        yield from values.items()
        events, cancel = client.watch_prefix(outputs.dcs_prefix + "/", start_revision=revision + 1)
        try:
            for event in events:
                key = event.key.decode()
                if key not in by_key:
                    continue
                if isinstance(event, etcd3.events.DeleteEvent):
                    yield by_key[key], None
                else:
                    yield by_key[key], event.value.decode()
        finally:
            cancel()
    finally:
        client.close()


def _v2_get(endpoint: str, path: str, timeout: float, **query: str) -> tuple[Any, int]:
    url = f"{endpoint}/v2/keys{path}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read()), int(response.headers.get("X-Etcd-Index", 0))
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read() or b"{}")
        if exc.code == 404 and body.get("errorCode") == 100:  # key not found
            return None, int(exc.headers.get("X-Etcd-Index", 0))
        raise ValueError(f"etcd v2 {path}: {body.get('message', exc)}") from None


def _v2_state(outputs: StackOutputs, endpoint: str) -> tuple[dict[str, Optional[str]], int]:
    """The leader values and the etcd index they were read at."""
    tree, index = _v2_get(endpoint, outputs.dcs_prefix, 3, recursive="true")
    by_key = _groups_by_key(outputs)
    values: dict[str, Optional[str]] = {g: None for g in outputs.leader_keys}
    pending = [tree["node"]] if tree else []
    while pending:
        node = pending.pop()
        pending.extend(node.get("nodes", []))
        if node.get("key") in by_key:
            values[by_key[node["key"]]] = node.get("value")
    return values, index


def _v2_watch(outputs: StackOutputs, endpoint: str) -> Iterator[LeaderEvent]:
    by_key = _groups_by_key(outputs)
    values, index = _v2_state(outputs, endpoint)
    yield from values.items()
    while True:
        try:
            answer, _ = _v2_get(
                endpoint,
                outputs.dcs_prefix,
                V2_POLL_SECONDS,
                wait="true",
                recursive="true",
                waitIndex=str(index + 1),
            )
        except (socket.timeout, TimeoutError):
            continue  # nothing changed: ask again from the same index
        except ValueError as exc:
            if "cleared" not in str(exc):
                raise
            # The index fell out of etcd's 1000-event window: read the values again.
            values, index = _v2_state(outputs, endpoint)
            yield from values.items()
            continue
        node = answer["node"]
        index = node["modifiedIndex"]
        if node["key"] in by_key:
            gone = answer["action"] in ("delete", "expire", "compareAndDelete")
            yield by_key[node["key"]], None if gone else node.get("value")
