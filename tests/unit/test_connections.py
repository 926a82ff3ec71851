"""The connection bounds: derived from Patroni's timing, rendered for PostgreSQL, Citus and the
clients (stack outputs), without mocks."""

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from patroni_citus.config import ConnectionBounds, load_settings
from patroni_citus.plan import connections as render_connections
from patroni_citus.plan import endpoints as render_endpoints
from patroni_citus.plan import render

# What citus.node_conninfo may hold (Citus' allowedConninfoKeywords, shared_library_init.c);
# anything else fails its check hook and PostgreSQL refuses the whole configuration.
CITUS_CONNINFO_KEYWORDS = {
    "connect_timeout",
    "host",
    "keepalives",
    "keepalives_count",
    "keepalives_idle",
    "keepalives_interval",
    "sslcert",
    "sslcompression",
    "sslcrl",
    "sslkey",
    "sslmode",
    "sslrootcert",
    "tcp_user_timeout",
}


def settings(**config):
    base = {
        "citus": {"enabled": True, "database": "app", "workerGroups": 2},
        "patroni": {"ttl": 20, "loopWait": 2, "retryTimeout": 5},
    }
    base.update(config)
    return load_settings(base, {})


def dcs_parameters(s):
    return render.dynamic_config(s, s.groups[0])["postgresql"]["parameters"]


def test_the_test_stacks_timing_gives_up_on_a_dead_peer_within_4_s():
    bounds = ConnectionBounds.of(ttl=20, loop_wait=2)
    assert bounds == ConnectionBounds(
        dead_peer_s=4,
        keepalives_idle_s=2,
        keepalives_interval_s=1,
        keepalives_count=2,
        connect_timeout_s=2,
    )
    assert bounds.tcp_user_timeout_ms == 4000


def test_patronis_defaults_scale_the_bounds_with_the_loop():
    # ttl 30, loop_wait 10: Patroni itself takes up to ttl + loop_wait to fail over.
    bounds = ConnectionBounds.of(ttl=30, loop_wait=10)
    assert (bounds.dead_peer_s, bounds.connect_timeout_s) == (15, 7)


@given(ttl=st.integers(20, 3600), loop_wait=st.integers(1, 3600))
def test_a_dead_peer_is_always_given_up_well_before_the_ttl(ttl, loop_wait):
    bounds = ConnectionBounds.of(ttl, loop_wait)
    assert 4 <= bounds.dead_peer_s <= ttl // 2
    # An idle dead peer is found by keepalives within the same bound.
    idle_detection = (
        bounds.keepalives_idle_s + bounds.keepalives_count * bounds.keepalives_interval_s
    )
    assert 1 <= bounds.keepalives_interval_s and idle_detection <= bounds.dead_peer_s
    assert 2 <= bounds.connect_timeout_s <= bounds.dead_peer_s


def test_every_member_bounds_its_clients_and_citus_its_inter_node_connections():
    parameters = dcs_parameters(settings())
    server = render_connections.server_parameters(ConnectionBounds.of(20, 2))
    assert {k: parameters[k] for k in server} == {
        "tcp_keepalives_idle": 2,
        "tcp_keepalives_interval": 1,
        "tcp_keepalives_count": 2,
        "tcp_user_timeout": 4000,
        "client_connection_check_interval": 4000,
    }
    assert parameters["citus.node_connection_timeout"] == 2000
    conninfo = psycopg.conninfo.conninfo_to_dict(parameters["citus.node_conninfo"])
    assert conninfo == {
        # Citus' own default for SSL builds is kept: node_conninfo replaces it whole.
        "sslmode": "require",
        "keepalives": "1",
        "keepalives_idle": "2",
        "keepalives_interval": "1",
        "keepalives_count": "2",
        "tcp_user_timeout": "4000",
    }
    assert set(conninfo) <= CITUS_CONNINFO_KEYWORDS


def test_without_citus_no_citus_setting_is_rendered():
    parameters = dcs_parameters(settings(citus={"enabled": False}))
    assert parameters["tcp_user_timeout"] == 4000
    assert not [k for k in parameters if k.startswith("citus.")]


def test_patroni_parameters_given_in_config_win_over_the_derived_ones():
    s = settings(
        patroni={
            "ttl": 20,
            "loopWait": 2,
            "retryTimeout": 5,
            "parameters": {"tcp_user_timeout": 10000, "citus.node_connection_timeout": 5000},
        }
    )
    parameters = dcs_parameters(s)
    assert parameters["tcp_user_timeout"] == 10000
    assert parameters["citus.node_connection_timeout"] == 5000
    assert parameters["tcp_keepalives_idle"] == 2


@pytest.mark.parametrize(
    "value, quoted",
    [
        ("plain", "plain"),
        ("", "''"),
        ("two words", "'two words'"),
        ("it's", "'it\\'s'"),
        ("back\\slash", "'back\\\\slash'"),
    ],
)
def test_conninfo_quotes_values_as_libpq_reads_them(value, quoted):
    text = render_connections.conninfo({"application_name": value})
    assert text == f"application_name={quoted}"
    assert psycopg.conninfo.conninfo_to_dict(text) == {"application_name": value}


def test_the_coordinator_output_is_a_ready_connection_string():
    s = settings(vip={"enabled": True, "address": "172.30.254.254"})
    coordinator = render_endpoints.coordinator_outputs(s)
    assert psycopg.conninfo.conninfo_to_dict(coordinator["connectionString"]) == {
        "host": "172.30.254.254",
        "port": "5432",
        "dbname": "app",
        "user": "postgres",
        **{k: str(v) for k, v in coordinator["parameters"].items()},
    }
    assert coordinator["parameters"]["target_session_attrs"] == "read-write"
    assert "password" not in coordinator["connectionString"]


def test_the_service_endpoints_carry_their_own_session_attributes():
    s = settings(
        endpoints={"enabled": True, "instances": 2},
        pooler={"enabled": True},
    )
    read_write = render_endpoints.endpoint_outputs(s, read_only=False)
    read_only = render_endpoints.endpoint_outputs(s, read_only=True)
    pooled = render_endpoints.pooler_outputs(s)
    # libpq checks the server behind HAProxy too: a member promoted or demoted before
    # HAProxy has asked it again is refused instead of used for the wrong role.
    assert read_write["parameters"]["target_session_attrs"] == "read-write"
    assert read_only["parameters"]["target_session_attrs"] == "standby"
    for endpoint in (read_write, read_only, pooled):
        parsed = psycopg.conninfo.conninfo_to_dict(endpoint["connectionString"])
        assert parsed["host"] == endpoint["host"] and parsed["port"] == endpoint["port"]
        assert parsed["tcp_user_timeout"] == "4000"
    assert "user" not in psycopg.conninfo.conninfo_to_dict(read_write["connectionString"])
    assert psycopg.conninfo.conninfo_to_dict(pooled["connectionString"])["user"] == pooled["user"]
