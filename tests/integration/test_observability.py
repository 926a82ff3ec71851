"""Observability on a real engine: cadvisor sees the cluster, Patroni serves metrics, and the
cluster runs and fails over with the fluentd logging driver while no fluentd is listening."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from policies import conventions
from tests.integration.cluster import deployed, record_figures, wait_until
from tests.programrun import stack_config

pytestmark = pytest.mark.integration
STACK = "offline"
STANDINS = Path(__file__).resolve().parent / "standins"
CADVISOR_IMAGE = "local/cadvisor:bullseye"
NO_FLUENTD_IMAGE = "local/no-fluentd:1"
CADVISOR_PORT = 18080
FLUENTD_PORT = 24224
LABEL = f"{STACK} + observability"


@pytest.fixture(scope="module")
def cluster(docker_client):
    # Upstream images cannot be pulled here: build local stand-ins and point the config at them.
    for image, folder in ((CADVISOR_IMAGE, "cadvisor"), (NO_FLUENTD_IMAGE, "no-fluentd")):
        docker_client.images.build(path=str(STANDINS / folder), tag=image, rm=True)
    config = stack_config(STACK)
    config["patroni-citus:observability"] = {
        "enabled": True,
        "cadvisor": {"image": CADVISOR_IMAGE, "hostPort": CADVISOR_PORT},
        "fluentd": {"image": NO_FLUENTD_IMAGE, "hostPort": FLUENTD_PORT},
        "adminer": {"enabled": False},
    }
    with deployed(STACK, docker_client, config, label=LABEL) as running:
        yield running


def test_cluster_comes_up_and_fails_over_with_fluentd_down(cluster):
    # `deployed` already waited for a healthy cluster: it came up with fluentd down.
    for name in [*cluster.members, *(m.name for m in cluster.settings.etcd_members)]:
        log_config = cluster.container(name).attrs["HostConfig"]["LogConfig"]
        assert log_config["Type"] == "fluentd"
        assert log_config["Config"]["fluentd-async"] == "true"
        assert log_config["Config"]["tag"] == name
    old = cluster.leader()
    killed_at = cluster.crash(old)
    new = cluster.new_leader(old)
    record_figures(
        f"{LABEL}: fluentd down", failover_s=round(time.monotonic() - killed_at, 1), new_leader=new
    )
    cluster.restart(old)
    wait_until(f"{old} to rejoin", cluster.healthy, 120)


def test_cadvisor_lists_the_cluster_with_memory(cluster):
    url = cluster.run.outputs["cadvisorUrl"]
    assert url == f"http://127.0.0.1:{CADVISOR_PORT}"
    names = set(cluster.members) | {m.name for m in cluster.settings.etcd_members}

    def memory_by_name() -> dict:
        with urllib.request.urlopen(f"{url}/api/v1.3/docker/", timeout=5) as response:
            containers = json.loads(response.read())
        found = {}
        for info in containers.values():
            for alias in info.get("aliases", []):
                if alias in names and info.get("stats"):
                    found[alias] = info["stats"][-1]["memory"]["usage"]
        return found if set(found) == names else None

    memory = wait_until("cadvisor to report every member", memory_by_name, 90)
    assert all(usage > 0 for usage in memory.values())
    record_figures(
        f"{LABEL}: cadvisor", memory_mib={k: round(v / 2**20) for k, v in sorted(memory.items())}
    )


def test_every_patroni_member_serves_prometheus_metrics(cluster):
    patroni_targets = [
        t["targets"][0]
        for t in cluster.run.outputs["prometheusTargets"]
        if t["labels"]["job"] == "patroni"
    ]
    assert sorted(patroni_targets) == sorted(
        f"{ip}:{conventions.REST_API_PORT}" for ip in cluster.members.values()
    )
    for target in patroni_targets:
        with urllib.request.urlopen(f"http://{target}/metrics", timeout=5) as response:
            body = response.read().decode()
        assert "patroni_postgres_running" in body and "patroni_primary" in body, target
