"""The Observability component under mocks: containers, mounts, ports, uploads, logging."""

import pytest

from policies import conventions
from tests.programrun import run_stack, stack_config

CONTAINER = "docker:index/container:Container"
CLUSTER_ROLES = (conventions.ROLE_ETCD, conventions.ROLE_PATRONI, conventions.ROLE_VIP_MANAGER)


def with_observability(stack, **observability):
    config = stack_config(stack)
    config["patroni-citus:observability"] = {"enabled": True, **observability}
    return run_stack(stack, config=config)


@pytest.fixture(scope="module")
def on():
    return with_observability("dev", adminer={"enabled": True})


def test_services_and_their_ports(on):
    by_role = {c.role: c for c in on.of_type(CONTAINER)}
    cadvisor, fluentd, adminer = (
        by_role[conventions.ROLE_CADVISOR],
        by_role[conventions.ROLE_FLUENTD],
        by_role[conventions.ROLE_ADMINER],
    )
    assert cadvisor.inputs["ports"] == [
        {"internal": 8080.0, "external": 8080.0, "ip": "127.0.0.1", "protocol": "tcp"}
    ]
    assert fluentd.inputs["ports"][0]["external"] == 24224.0
    assert fluentd.inputs["ports"][0]["ip"] == "127.0.0.1"
    assert adminer.inputs["ports"][0]["external"] == 8081.0
    mounts = {m["target"]: m for m in cadvisor.inputs["mounts"]}
    # Neither `/` nor `/var/run`: both hold the engine socket. The engine proxy answers.
    assert set(mounts) == {"/sys", "/var/lib/docker", "/rootfs/var/lib/docker"}
    assert all(m["readOnly"] and m["type"] == "bind" for m in mounts.values())
    assert "--docker=tcp://citus-engine-proxy:2375" in cadvisor.inputs["command"]
    assert cadvisor.inputs["networksAdvanced"] == [{"name": "citus-engine"}]
    proxy = by_role[conventions.ROLE_ENGINE_PROXY]
    assert proxy.urn in cadvisor.options["dependencies"]
    assert cadvisor.inputs["capabilities"] == {"drops": ["NET_RAW"]}
    assert not cadvisor.inputs.get("privileged")


def test_fluentd_config_is_uploaded_and_logs_persist(on):
    fluentd = next(c for c in on.of_type(CONTAINER) if c.role == conventions.ROLE_FLUENTD)
    (upload,) = fluentd.inputs["uploads"]
    assert upload["file"] == "/fluentd/etc/fluent.conf"
    assert "@type forward" in upload["content"] and "${tag}" in upload["content"]
    assert fluentd.inputs["volumes"] == [
        {"volumeName": "citus-fluentd-data", "containerPath": "/fluentd/log"}
    ]


def test_every_cluster_container_logs_to_fluentd_asynchronously(on):
    fluentd = next(c for c in on.of_type(CONTAINER) if c.role == conventions.ROLE_FLUENTD)
    cluster = [c for c in on.of_type(CONTAINER) if c.role in CLUSTER_ROLES]
    assert len(cluster) == 11
    for c in cluster:
        assert c.inputs["logDriver"] == "fluentd"
        assert c.inputs["logOpts"] == {
            "fluentd-address": "tcp://127.0.0.1:24224",
            "fluentd-async": "true",
            "tag": c.inputs["name"],
        }
        assert fluentd.urn in c.options["dependencies"], c.name


def test_adminer_points_at_the_vip_from_a_static_address(on):
    adminer = next(c for c in on.of_type(CONTAINER) if c.role == conventions.ROLE_ADMINER)
    assert adminer.inputs["envs"] == ["ADMINER_DEFAULT_SERVER=172.30.254.254"]
    assert adminer.inputs["networksAdvanced"] == [
        {"name": "citus-net", "ipv4Address": "172.30.1.254"}
    ]


def test_outputs_when_on(on):
    assert on.outputs["cadvisorUrl"] == "http://127.0.0.1:8080"
    assert on.outputs["fluentdAddress"] == "127.0.0.1:24224"
    assert on.outputs["adminerUrl"] == "http://127.0.0.1:8081"
    targets = on.outputs["prometheusTargets"]
    patroni = [t for t in targets if t["labels"]["job"] == "patroni"]
    assert patroni[0] == {
        "targets": [f"172.30.1.17:{conventions.REST_API_PORT}"],
        "labels": {
            "job": "patroni",
            "cluster": "citus",
            "citus_group": "0",
            "member": "citus-coord-1",
        },
    }
    assert len(patroni) == 6
    etcd = [t["targets"] for t in targets if t["labels"]["job"] == "etcd"]
    assert etcd == [[f"172.30.1.{i}:{conventions.ETCD_CLIENT_PORT}"] for i in (1, 2, 3)]
    # cadvisor is reachable only from the stack's own Prometheus (off here).
    assert [t["labels"]["job"] for t in targets] == ["patroni"] * 6 + ["etcd"] * 3


def test_nothing_when_off():
    off = run_stack("dev")
    roles = {c.role for c in off.of_type(CONTAINER)}
    assert roles == {*CLUSTER_ROLES, conventions.ROLE_ENGINE_PROXY, conventions.ROLE_CRASH_WATCHER}
    assert not any("logDriver" in c.inputs for c in off.of_type(CONTAINER))
    assert off.outputs["cadvisorUrl"] is None and off.outputs["adminerUrl"] is None
    assert off.outputs["fluentdAddress"] is None
    assert {t["labels"]["job"] for t in off.outputs["prometheusTargets"]} == {"patroni", "etcd"}
    assert off.outputs["prometheusUrl"] is None


def test_public_ports_need_an_explicit_opt_in():
    from patroni_citus.config import SettingsError, load_settings

    with pytest.raises(SettingsError) as info:
        load_settings({"observability": {"enabled": True, "cadvisor": {"hostIp": "0.0.0.0"}}}, {})
    assert info.value.problems == [
        "patroni-citus:observability.cadvisor.hostIp = '0.0.0.0': publishes beyond loopback; "
        "set observability.allowPublicPorts to true if that is intended"
    ]
    load_settings(
        {
            "observability": {
                "enabled": True,
                "allowPublicPorts": True,
                "cadvisor": {"hostIp": "0.0.0.0"},
            }
        },
        {},
    )
