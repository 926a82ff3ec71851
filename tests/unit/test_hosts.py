"""Several Docker engines: the `hosts` settings, the placement and what the program registers
for them (mocks); the real engines are in tests/integration/test_hosts.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from patroni_citus.config import SettingsError, load_settings
from patroni_citus.config.hosts import place
from patroni_citus.plan import render
from policies import conventions
from policies import rules as R
from tests.programrun import PROJECT, run_stack

CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
NETWORK = "docker:index/network:Network"
IMAGE = "docker:index/image:Image"
COMMAND = "command:local:Command"
PROVIDER = "pulumi:providers:docker"
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def engines(n: int = 3, **extra: Any) -> dict[str, Any]:
    return {
        "swarmManager": "h1",
        "engines": [
            {
                "name": f"h{i}",
                "endpoint": f"tcp://10.9.0.{i}:2376",
                "certPath": f"/etc/pc/tls/h{i}",
                "address": f"10.9.0.{i}",
            }
            for i in range(1, n + 1)
        ],
        **extra,
    }


def config(citus: bool = False, **sections: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "cluster": {"scope": "mh"},
        "network": {"name": "mh-net", "subnet": "10.80.0.0/16", "memberRange": "10.80.1.0/24"},
        "citus": {"enabled": True, "workerGroups": 2, "coordinatorMembers": 2}
        if citus
        else {"enabled": False},
        "patroni": {
            "ttl": 20,
            "loopWait": 2,
            "retryTimeout": 5,
            **({} if citus else {"members": 3}),
        },
        "image": {
            "flavour": "debian",
            "baseImage": "local/debian:bookworm",
            "name": "pc:mh",
            "localDebs": citus,
        },
        "endpoints": {"enabled": True, "instances": 3},
        "hosts": engines(),
    }
    base.update(sections)
    return base


def problems(cfg: dict[str, Any]) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load_settings(cfg, {})
    return caught.value.problems


# --- settings -----------------------------------------------------------------------------


def test_without_hosts_everything_stays_on_the_default_engine():
    cfg = config()
    del cfg["hosts"]
    settings = load_settings(cfg, {})
    assert settings.hosts.engines == ()
    assert settings.hosts.host_of("mh-pg-1") is None
    assert render.engines_environment(settings) is None
    assert settings.endpoints.host_ports(1) == (5010, 5011)


def test_members_etcd_and_haproxy_spread_one_per_engine():
    settings = load_settings(config(), {})
    where = settings.hosts.placement
    for names in (
        [m.name for m in settings.etcd_members],
        [m.name for m in settings.groups[0].members],
        [settings.service_name("haproxy", i) for i in range(3)],
    ):
        assert sorted(where[n] for n in names) == ["h1", "h2", "h3"]
    # Each instance on its own engine publishes the same ports on that engine's address.
    assert settings.endpoints.host_ports(2) == (5000, 5001)
    assert sorted(settings.coordinator_hosts) == ["10.9.0.1", "10.9.0.2", "10.9.0.3"]


def test_citus_groups_start_on_different_engines():
    settings = load_settings(config(citus=True), {})
    where = settings.hosts.placement
    firsts = {where[g.members[0].name] for g in settings.groups}
    assert len(firsts) == 3
    for group in settings.groups:
        hosts = [where[m.name] for m in group.members]
        assert len(set(hosts)) == len(hosts)


def test_pins_are_kept_and_the_rest_of_the_group_avoids_them():
    settings = load_settings(config(hosts=engines(pin={"mh-pg-2": "h1"})), {})
    where = settings.hosts.placement
    assert where["mh-pg-2"] == "h1"
    assert sorted(where[f"mh-pg-{i}"] for i in (1, 2, 3)) == ["h1", "h2", "h3"]


def test_placement_is_a_pure_rotation_without_pins():
    assert place(["a", "b"], [["x1", "x2", "x3"], ["y1", "y2"]], {}) == {
        "x1": "a",
        "x2": "b",
        "x3": "a",
        "y1": "b",
        "y2": "a",
    }


def test_host_problems_name_their_keys():
    found = problems(
        config(
            hosts={
                "engines": [
                    {"name": "H1", "endpoint": "tcp://10.9.0.1:2375"},
                    {"name": "h2", "endpoint": "http://10.9.0.2", "certPath": "/x"},
                    {"name": "h3", "endpoint": "ssh://ops@h3", "sshOpts": ["-p", "2222"]},
                ],
                "pin": {"mh-pg-1": "h9"},
            }
        )
    )
    text = "\n".join(found)
    assert "patroni-citus:hosts.engines[0].name = 'H1'" in text
    assert (
        "patroni-citus:hosts.engines[0].endpoint = 'tcp://10.9.0.1:2375': an engine API over TCP without TLS"
        in text
    )
    assert "patroni-citus:hosts.engines[1].endpoint = 'http://x'" not in text
    assert "patroni-citus:hosts.engines[1].endpoint = 'http://10.9.0.2': must be unix://" in text
    assert "patroni-citus:hosts.swarmManager: is required with several engines" in text
    assert "patroni-citus:hosts.pin.mh-pg-1 = 'h9': must name one of hosts.engines" in text


def test_what_needs_one_engine_is_refused_with_several():
    found = problems(
        config(
            vip={"enabled": True, "address": "10.80.254.254"},
            etcd={"apiVersion": "v2"},
            crashWatcher={"enabled": True},
            endpoints={"enabled": False},
        )
    )
    assert any(p.startswith("patroni-citus:vip.enabled = true: not available") for p in found)
    assert any(p.startswith("patroni-citus:crashWatcher.enabled = true") for p in found)
    assert any(p.startswith("patroni-citus:endpoints.enabled: must be true") for p in found)


def test_engines_need_addresses_and_one_haproxy_each():
    cfg = config(
        endpoints={"enabled": True, "instances": 2, "hostIp": "10.9.0.1", "allowPublicPorts": True}
    )
    cfg["hosts"]["engines"][1]["address"] = "127.0.0.1"
    cfg["hosts"]["pin"] = {"mh-haproxy-1": "h3", "mh-haproxy-2": "h3", "nobody": "h1"}
    text = "\n".join(problems(cfg))
    assert "patroni-citus:endpoints.hostIp: does not apply" in text
    assert "patroni-citus:hosts.engines[1].address = '127.0.0.1'" in text
    assert "patroni-citus:hosts.pin.nobody: no such container" in text


def test_two_haproxy_instances_on_one_engine_are_refused():
    cfg = config(endpoints={"enabled": True, "instances": 2})
    cfg["hosts"]["pin"] = {"mh-haproxy-1": "h3", "mh-haproxy-2": "h3"}
    assert any("each HAProxy instance needs an engine of its own" in p for p in problems(cfg))


def test_one_engine_takes_every_container_and_the_cli_environment():
    cfg = config(hosts={"engines": [{"name": "remote", "endpoint": "ssh://ops@db1"}]})
    settings = load_settings(cfg, {})
    assert settings.hosts.host_of("mh-anything") == "remote"
    assert settings.hosts.label_of("mh-pg-1") is None
    assert render.engines_environment(settings) == {"DOCKER_HOST": "ssh://ops@db1"}


def test_several_engines_map_each_container_to_its_engine_for_the_scripts():
    settings = load_settings(config(), {})
    env = render.engines_environment(settings)
    assert env is not None
    engines_map = json.loads(env["PC_ENGINES"])
    host = settings.hosts.placement["mh-pg-1"]
    assert engines_map["mh-pg-1"] == {
        "DOCKER_HOST": f"tcp://10.9.0.{host[1]}:2376",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": f"/etc/pc/tls/{host}",
    }


def test_the_scripts_run_the_docker_cli_on_the_containers_engine():
    probe = (
        "import json, patroni_api;"
        "print(json.dumps([patroni_api.engine_environment(c) and"
        " patroni_api.engine_environment(c).get('DOCKER_HOST') for c in ('a', 'b')]))"
    )
    env = {"PC_ENGINES": json.dumps({"a": {"DOCKER_HOST": "tcp://h1:2376"}}), "PATH": "/usr/bin"}
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=SCRIPTS, env=env, capture_output=True, text=True
    )
    assert json.loads(out.stdout) == ["tcp://h1:2376", None]


# --- the program ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def several():
    cfg = config(citus=True, etcd={"image": "quay.io/coreos/etcd:v3.5.16"})
    return run_stack("mh", config={f"{PROJECT}:{k}": v for k, v in cfg.items()})


def provider_name(resource: Any) -> str:
    return resource.options["provider"].split("::")[-2].rsplit("$", 1)[-1].split("::")[-1]


def test_one_provider_and_one_image_per_engine(several):
    providers = {r.name: r.inputs for r in several.of_type(PROVIDER)}
    assert providers == {
        f"mh-h{i}": {"host": f"tcp://10.9.0.{i}:2376", "certPath": f"/etc/pc/tls/h{i}"}
        for i in (1, 2, 3)
    }
    images = several.of_type(IMAGE)
    assert sorted(r.name for r in images) == ["mh-image-h1", "mh-image-h2", "mh-image-h3"]
    for image in images:
        assert image.options["provider"].startswith(several.named(f"mh-{image.name[-2:]}").urn)


def test_the_overlay_network_is_created_through_the_swarm_manager(several):
    (network,) = several.of_type(NETWORK)
    assert network.inputs["driver"] == "overlay" and network.inputs["attachable"] is True
    assert network.options["provider"].startswith(several.named("mh-h1").urn)


def test_each_container_and_volume_goes_to_its_engine_with_its_image(several):
    by_urn = {r.urn: r for r in several.resources}
    placed = [r for r in several.resources if r.type in (CONTAINER, VOLUME)]
    assert len(placed) == 3 + 3 + 6 * 2 + 3  # etcd, etcd volumes, members and volumes, haproxy
    for r in placed:
        host = r.labels[conventions.LABEL_HOST]
        provider = by_urn[r.options["provider"].rsplit("::", 1)[0]]
        assert provider.name == f"mh-{host}", r.name
        if r.type == CONTAINER and r.role == conventions.ROLE_PATRONI:
            image = several.named(f"mh-image-{host}")
            assert r.inputs["image"] == image.outputs["repoDigest"]


def test_commands_reach_containers_through_their_engines(several):
    commands = [r for r in several.of_type(COMMAND) if "scripts/" in r.inputs["create"]]
    assert commands
    for command in commands:
        env = command.inputs["environment"]
        assert "mh-coord-1" in json.loads(env.get("PC_ENGINES", "{}")) or "value" in str(env)


def test_clients_get_the_haproxy_instances_on_their_hosts(several):
    coordinator = several.outputs["coordinator"]
    assert sorted(coordinator["host"].split(",")) == ["10.9.0.1", "10.9.0.2", "10.9.0.3"]
    assert coordinator["port"] == 5000
    haproxy = [r for r in several.of_type(CONTAINER) if r.role == conventions.ROLE_HAPROXY]
    for r in haproxy:
        host = r.labels[conventions.LABEL_HOST]
        assert {p["ip"] for p in r.inputs["ports"]} == {f"10.9.0.{host[1]}"}


def resources_of(run: Any) -> list[R.Resource]:
    return [
        R.Resource(type=r.type, name=r.name, urn=r.urn, props=r.inputs)
        for r in run.resources
        if r.custom
    ]


def test_the_spread_passes_the_policy_and_a_crowding_pin_fails_it(several):
    assert R.check_spread_across_hosts(resources_of(several), {}) == []
    cfg = config(citus=True, hosts=engines(pin={"mh-etcd-1": "h2", "mh-etcd-3": "h2"}))
    crowded = run_stack("mh", config={f"{PROJECT}:{k}": v for k, v in cfg.items()})
    (violation,) = R.check_spread_across_hosts(resources_of(crowded), {})
    assert violation.message.startswith('etcd of cluster "mh" has')
    assert "losing that host loses etcd's quorum" in violation.message
