"""The Endpoints and Pooler components under mocks: containers, addresses, published ports,
lock-down, the config commands and their order after the service roles, and the outputs."""

import json

import pytest

from patroni_citus.plan import endpoints as render_endpoints
from policies import conventions
from tests.programrun import run_stack, stack_config

CONTAINER = "docker:index/container:Container"
COMMAND = "command:local:Command"


def by_role(run, role):
    found = [c for c in run.of_type(CONTAINER) if c.role == role]
    return sorted(found, key=lambda c: c.inputs["name"])


@pytest.fixture(scope="module")
def run():
    config = stack_config("dev")
    config["patroni-citus:endpoints"] = {"enabled": True}
    config["patroni-citus:pooler"] = {"enabled": True, "poolSize": 5}
    return run_stack("dev", config=config)


def test_two_haproxy_instances_locked_down_with_their_ports(run):
    haproxy = by_role(run, conventions.ROLE_HAPROXY)
    assert [c.inputs["name"] for c in haproxy] == ["citus-haproxy-1", "citus-haproxy-2"]
    for i, c in enumerate(haproxy):
        assert c.inputs["networksAdvanced"] == [
            {"name": "citus-net", "ipv4Address": f"172.30.1.{252 - i}"}
        ]
        assert c.inputs["ports"] == [
            {"internal": 5000.0, "external": 5000.0 + 10 * i, "ip": "127.0.0.1", "protocol": "tcp"},
            {"internal": 5001.0, "external": 5001.0 + 10 * i, "ip": "127.0.0.1", "protocol": "tcp"},
        ]
        assert c.inputs["user"] == "nobody"
        assert c.inputs["readOnly"] is True
        assert c.inputs["capabilities"] == {"drops": ["ALL"]}
        assert c.inputs["securityOpts"] == ["no-new-privileges:true"]
        assert c.inputs["tmpfs"] == {
            conventions.HAPROXY_RUN_DIR: "uid=65534,gid=65534,mode=0700,size=1m"
        }
        assert c.inputs["command"] == ["endpoints"]
        (env,) = c.inputs["envs"]
        assert env.startswith("PC_HAPROXY_CONFIG=global\n")
        assert "uri /primary" in env and "citus-coord-1 172.30.1.17:5432" in env
        assert c.inputs["healthcheck"]["tests"][-1] == "http://127.0.0.1:8404/healthz"


def test_one_pgbouncer_per_haproxy_written_after_the_service_roles(run):
    pgbouncers = by_role(run, conventions.ROLE_PGBOUNCER)
    haproxy = by_role(run, conventions.ROLE_HAPROXY)
    roles = run.named("citus-service-roles")
    assert [c.inputs["name"] for c in pgbouncers] == ["citus-pgbouncer-1", "citus-pgbouncer-2"]
    for i, c in enumerate(pgbouncers):
        assert c.inputs["networksAdvanced"][0]["ipv4Address"] == f"172.30.1.{248 - i}"
        assert c.inputs["ports"] == [
            {"internal": 6432.0, "external": 6432.0 + 10 * i, "ip": "127.0.0.1", "protocol": "tcp"}
        ]
        assert c.inputs["user"] == "postgres"
        assert c.inputs["capabilities"] == {"drops": ["ALL"]}
        assert c.inputs["command"] == ["pgbouncer"]
        assert "envs" not in c.inputs and "uploads" not in c.inputs
        assert haproxy[i].urn in c.options["dependencies"]
        config = run.named(f"citus-pooler-{i + 1}-config")
        assert config.inputs["create"] == render_endpoints.pooler_write_command(
            f"citus-pgbouncer-{i + 1}", 300
        )
        assert {c.urn, roles.urn} <= set(config.options["dependencies"])
        files = dict(json.loads(config.inputs["stdin"]))
        # The auth role's password in the auth_file, never the application's.
        auth_file = files[conventions.PGBOUNCER_AUTH_FILE]
        assert auth_file == '"pgbouncer" "mock-password-citus-pooler-auth-password"\n'
        assert "mock-password-citus-application-password" not in config.inputs["stdin"]
        ini = files[conventions.PGBOUNCER_CONFIG_PATH]
        assert f"* = host=172.30.1.{252 - i} port=5000" in ini
        assert "default_pool_size = 5" in ini


def test_outputs(run):
    outputs = run.outputs
    assert outputs["endpoints"]["readWrite"]["port"] == "5000,5010"
    assert outputs["endpoints"]["readOnly"]["port"] == "5001,5011"
    assert outputs["endpoints"]["readWrite"]["database"] == "test"
    assert outputs["pooler"]["port"] == "6432,6442"
    assert outputs["applicationPassword"] == "mock-password-citus-application-password"
    assert "applicationPassword" in run.secret_outputs


def test_secrets_stay_out_of_container_inputs(run):
    for c in [*by_role(run, conventions.ROLE_HAPROXY), *by_role(run, conventions.ROLE_PGBOUNCER)]:
        assert "mock-password" not in repr(c.inputs)
