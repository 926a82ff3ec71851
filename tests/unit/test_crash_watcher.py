"""The crash watcher without an engine: when it releases a leader key (pc-crash-watch's pure
decision), how it is configured, and the shape the program gives it and the engine proxy."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pytest

from patroni_citus.config import SettingsError, load_settings
from patroni_citus.plan import render
from policies import conventions
from tests.imagetools import load_image_tool
from tests.programrun import run_stack

watch = load_image_tool("pc-crash-watch")
CONTAINER = "docker:index/container:Container"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class FakeDcs:
    keys: dict[str, watch.Held]
    deleted: list[str] = field(default_factory=list)
    # A write that lands between the watcher's read and its delete (a restarted member).
    write_after_read: Optional[watch.Held] = None

    def read(self, key: str) -> Optional[watch.Held]:
        held = self.keys.get(key)
        if self.write_after_read is not None:
            self.keys[key] = self.write_after_read
        return held

    def delete_if_unchanged(self, key: str, held: watch.Held) -> bool:
        if self.keys.get(key) != held:
            return False
        del self.keys[key]
        self.deleted.append(key)
        return True


@dataclass
class FakeEngine:
    states: dict[str, str]

    def state(self, member: str) -> Optional[str]:
        return self.states.get(member)


def config(citus: bool = False) -> watch.Config:
    return watch.Config.from_environment(
        {
            "PC_SCOPE": "offline",
            "PC_DCS_PREFIX": "/service/offline",
            "PC_CITUS": str(citus).lower(),
            "PC_ETCD_API": "v3",
            "PC_ETCD_ENDPOINTS": "http://172.28.1.1:2379, http://172.28.1.2:2379",
            "PC_ENGINE_URL": "http://offline-engine-proxy:2375",
        }
    )


def test_a_dead_leader_s_key_is_released():
    dcs = FakeDcs({"/service/offline/leader": watch.Held("offline-1", 42)})
    outcome = watch.release(config(), dcs, FakeEngine({"offline-1": "exited"}), "offline-1", "0")
    assert dcs.deleted == ["/service/offline/leader"]
    assert outcome.startswith("released /service/offline/leader held by dead offline-1")


def test_citus_groups_have_their_own_keys():
    dcs = FakeDcs(
        {
            "/service/offline/0/leader": watch.Held("coord-1", 7),
            "/service/offline/2/leader": watch.Held("work2-1", 9),
        }
    )
    watch.release(config(citus=True), dcs, FakeEngine({"work2-1": "dead"}), "work2-1", "2")
    assert dcs.deleted == ["/service/offline/2/leader"]


@pytest.mark.parametrize("state", ["running", "paused", "restarting", "created", None])
def test_a_member_not_dead_now_keeps_its_key(state):
    """Paused is frozen, not dead; running/restarting may have renewed it; absent from this
    engine may run elsewhere: all are left to Patroni's TTL."""
    dcs = FakeDcs({"/service/offline/leader": watch.Held("offline-1", 42)})
    engine = FakeEngine({} if state is None else {"offline-1": state})
    outcome = watch.release(config(), dcs, engine, "offline-1", "0")
    assert dcs.deleted == [] and "left to Patroni's TTL" in outcome


def test_a_key_naming_another_member_is_left_alone():
    dcs = FakeDcs({"/service/offline/leader": watch.Held("offline-2", 50)})
    watch.release(config(), dcs, FakeEngine({"offline-1": "exited"}), "offline-1", "0")
    assert dcs.deleted == [] and "/service/offline/leader" in dcs.keys


def test_a_key_rewritten_after_the_read_is_left_alone():
    """The member restarted and its Patroni renewed the key between the read and the delete:
    the comparison on the revision fails."""
    dcs = FakeDcs(
        {"/service/offline/leader": watch.Held("offline-1", 42)},
        write_after_read=watch.Held("offline-1", 43),
    )
    outcome = watch.release(config(), dcs, FakeEngine({"offline-1": "exited"}), "offline-1", "0")
    assert dcs.deleted == [] and "changed since it was read" in outcome


def test_configuration_errors_name_the_variable():
    with pytest.raises(SystemExit, match="PC_ENGINE_URL"):
        watch.Config.from_environment(
            {"PC_SCOPE": "s", "PC_DCS_PREFIX": "/service/s", "PC_ETCD_ENDPOINTS": "http://e:2379"}
        )
    assert config().etcd_endpoints == ("http://172.28.1.1:2379", "http://172.28.1.2:2379")


def test_the_program_configures_the_watcher_it_runs():
    settings = load_settings(
        {
            "cluster": {"scope": "offline"},
            "etcd": {"apiVersion": "v2"},
            "citus": {"enabled": False},
        },
        {},
    )
    parsed = watch.Config.from_environment(
        dict(line.split("=", 1) for line in render.crash_watcher_environment(settings))
    )
    assert parsed.etcd_api == "v2" and len(parsed.etcd_endpoints) == 3
    assert parsed.engine_url == f"http://{render.engine_proxy_address(settings)}"


def test_the_engine_proxy_passes_on_only_reads():
    cfg = (ROOT / "images/patroni/engine-proxy.cfg").read_text()
    assert "http-request deny deny_status 403 unless read_only allowed_path" in cfg
    assert "acl read_only method GET HEAD" in cfg
    assert f"bind :{conventions.ENGINE_PROXY_PORT}" in cfg
    assert f"server engine {conventions.ENGINE_SOCKET_PATH}" in cfg
    (allowed,) = re.findall(r"path_reg \^\(/v\[0-9\]\+\\.\[0-9\]\+\)\?/\((.*)\)\$", cfg)
    assert allowed.split("|") == [
        "_ping",
        "version",
        "info",
        "events",
        "containers/json",
        "containers/[A-Za-z0-9_.-]+/json",
    ]
    assert (
        "COPY engine-proxy.cfg /etc/pc-engine-proxy/haproxy.cfg"
        in (ROOT / "images/patroni/Dockerfile").read_text()
    )


def test_engine_settings_are_checked():
    with pytest.raises(SettingsError) as info:
        load_settings({"engine": {"socket": "docker.sock"}, "crashWatcher": {"enable": True}}, {})
    assert info.value.problems == [
        "patroni-citus:engine.socket = 'docker.sock': must be an absolute host path without "
        "'..', e.g. /var/run/docker.sock",
        "patroni-citus:crashWatcher.enable = True: unknown key (see docs/configuration.md)",
    ]
    assert not load_settings({}, {}).crash_watcher.enabled  # the engine socket is opt-in


@pytest.fixture(scope="module")
def offline():
    return run_stack("offline")


def by_role(run, role):
    return [
        c
        for c in run.of_type(CONTAINER)
        if {i["label"]: i["value"] for i in c.inputs["labels"]}[conventions.LABEL_ROLE] == role
    ]


def test_only_the_engine_proxy_mounts_the_socket(offline):
    (proxy,) = by_role(offline, conventions.ROLE_ENGINE_PROXY)
    assert proxy.inputs["mounts"] == [
        {"type": "bind", "source": "/var/run/docker.sock", "target": "/var/run/docker.sock"}
    ]
    assert proxy.inputs["networksAdvanced"] == [{"name": "offline-engine"}]
    assert "ports" not in proxy.inputs
    for c in offline.of_type(CONTAINER):
        if c is not proxy:
            assert not c.inputs.get("mounts"), c.name


def test_the_watcher_reads_through_the_proxy_as_nobody(offline):
    (watcher,) = by_role(offline, conventions.ROLE_CRASH_WATCHER)
    assert watcher.inputs["user"] == "nobody" and watcher.inputs["command"] == ["pc-crash-watch"]
    assert watcher.inputs["networksAdvanced"] == [
        {"name": "offline-net", "ipv4Address": "172.28.1.253"},
        {"name": "offline-engine"},
    ]
    assert "PC_ENGINE_URL=http://offline-engine-proxy:2375" in watcher.inputs["envs"]
    depends = {offline.by_urn(u).name for u in watcher.options["dependencies"]}
    assert {"offline-engine-proxy", "offline-etcd-1"} <= depends


def test_no_watcher_and_no_proxy_when_off():
    from tests.programrun import stack_config

    config = stack_config("offline")
    config["patroni-citus:crashWatcher"] = {"enabled": False}
    run = run_stack("offline", config=config)
    assert not by_role(run, conventions.ROLE_CRASH_WATCHER)
    assert not by_role(run, conventions.ROLE_ENGINE_PROXY)
