"""The Monitoring component under mocks: Prometheus' container, its uploads and networks, and
the exporters' credential commands."""

import pytest
import yaml

from policies import conventions
from tests.programrun import run_stack, stack_config

CONTAINER = "docker:index/container:Container"
COMMAND = "command:local:Command"
NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"


def with_monitoring(stack, **sections):
    config = stack_config(stack)
    config["patroni-citus:monitoring"] = {"enabled": True, "hostPort": 19090}
    for key, value in sections.items():
        config[f"patroni-citus:{key}"] = value
    return run_stack(stack, config=config)


@pytest.fixture(scope="module")
def on():
    return with_monitoring("dev", observability={"enabled": True})


def prometheus(run):
    (container,) = [c for c in run.of_type(CONTAINER) if c.role == conventions.ROLE_PROMETHEUS]
    return container


def test_prometheus_container(on):
    c = prometheus(on)
    assert c.inputs["name"] == "citus-prometheus"
    assert c.inputs["user"] == "998:998"
    assert c.inputs["capabilities"] == {"drops": ["ALL"]}
    assert c.inputs["securityOpts"] == ["no-new-privileges:true"]
    assert c.inputs["command"][0] == "prometheus"
    assert c.inputs["ports"] == [
        {"internal": 9090.0, "external": 19090.0, "ip": "127.0.0.1", "protocol": "tcp"}
    ]
    assert c.inputs["volumes"] == [
        {"volumeName": "citus-prometheus-data", "containerPath": "/var/lib/prometheus"}
    ]
    assert c.inputs["healthcheck"]["tests"][-1] == "http://127.0.0.1:9090/-/ready"
    assert on.outputs["prometheusUrl"] == "http://127.0.0.1:19090"
    (volume,) = [v for v in on.of_type(VOLUME) if v.inputs["name"] == "citus-prometheus-data"]
    assert volume.options["retainOnDelete"]  # metrics history is data, like the members'


def test_uploads_are_the_rendered_config_and_rules(on):
    uploads = {u["file"]: u["content"] for u in prometheus(on).inputs["uploads"]}
    config = yaml.safe_load(uploads["/etc/pc-prometheus/prometheus.yml"])
    assert config["rule_files"] == ["/etc/pc-prometheus/alerts.yml"]
    assert [j["job_name"] for j in config["scrape_configs"]] == [
        "patroni",
        "postgres",
        "etcd",
        "cadvisor",
    ]
    alerts = yaml.safe_load(uploads["/etc/pc-prometheus/alerts.yml"])
    assert "DiskFilling" in {r["alert"] for g in alerts["groups"] for r in g["rules"]}


def test_cadvisor_and_prometheus_share_an_internal_network_only_with_each_other(on):
    (metrics,) = [n for n in on.of_type(NETWORK) if n.inputs["name"] == "citus-metrics"]
    assert metrics.inputs["internal"] is True
    by_role = {c.role: c for c in on.of_type(CONTAINER)}
    on_metrics = [
        r
        for r, c in by_role.items()
        if {"name": "citus-metrics"} in c.inputs.get("networksAdvanced", [])
    ]
    assert sorted(on_metrics) == [conventions.ROLE_CADVISOR, conventions.ROLE_PROMETHEUS]
    assert prometheus(on).inputs["networksAdvanced"][0] == {
        "name": "citus-net",
        "ipv4Address": "172.30.1.244",
    }


def test_each_member_gets_the_exporter_credentials_after_the_roles(on):
    exporters = [c for c in on.of_type(COMMAND) if c.name.endswith("-exporter")]
    members = [c for c in on.of_type(CONTAINER) if c.role == conventions.ROLE_PATRONI]
    assert len(exporters) == len(members) == 6
    roles = on.named("citus-service-roles")
    for command in exporters:
        member = command.name[len("citus-monitoring-") : -len("-exporter")]
        assert command.inputs["create"].endswith(f"write --container {member} --files-only")
        assert command.inputs["delete"].startswith("python3 scripts/member_config.py remove")
        assert roles.urn in command.options["dependencies"]
        ready = on.named(f"{next(c.name for c in members if c.inputs['name'] == member)}-ready")
        assert ready.urn in command.options["dependencies"]
        assert "mon" not in command.inputs["create"]  # no secret on the command line


def test_nothing_when_off():
    off = run_stack("dev")
    assert not [c for c in off.of_type(CONTAINER) if c.role == conventions.ROLE_PROMETHEUS]
    assert not [c for c in off.of_type(COMMAND) if c.name.endswith("-exporter")]
    assert not [n for n in off.of_type(NETWORK) if n.inputs["name"] == "citus-metrics"]
    assert off.outputs["prometheusUrl"] is None
