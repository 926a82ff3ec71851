"""Rendering of the endpoints and the pooler is pure: HAProxy's configuration, PgBouncer's files
and the libpq host lists, from settings."""

import json

from patroni_citus.config import load_settings
from patroni_citus.plan import endpoints as r
from patroni_citus.plan import render
from policies import conventions

CREDENTIALS = render.Credentials(
    superuser="su-secret-123456",
    replication="repl-secret-123",
    rest_api="rest-secret-1234",
    application="app-secret-12345",
    pooler_auth='pool"er-secret-1',
)


def settings(**overrides):
    config = {
        "citus": {"enabled": True, "database": "test", "workerGroups": 1},
        "endpoints": {"enabled": True},
        "pooler": {"enabled": True},
    }
    config.update(overrides)
    return load_settings(config, {})


def section(text: str, header: str) -> list[str]:
    """The lines of one HAProxy section, without its header and indentation."""
    lines = text.splitlines()
    start = lines.index(header) + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith(" ")), len(lines))
    return [line.strip() for line in lines[start:end]]


def test_read_write_routes_to_the_coordinator_primary_only():
    s = settings()
    rw = section(r.haproxy_config(s), "listen read-write")
    assert f"bind :{conventions.HAPROXY_READ_WRITE_PORT}" in rw
    assert "http-check send meth HEAD uri /primary" in rw
    assert "http-check expect status 200" in rw
    servers = [line for line in rw if line.startswith("server ")]
    # Group 0 (the coordinator) only: never a worker.
    assert servers == [
        f"server {m.name} {m.address}:5432 check port 8008" for m in s.groups[0].members
    ]
    assert all("work" not in line for line in servers)
    assert (
        "default-server inter 1s fastinter 500ms downinter 500ms fall 2 rise 1 "
        "on-marked-down shutdown-sessions"
    ) in rw


def test_read_only_routes_to_replicas_within_the_lag_and_never_to_the_leader():
    s = settings(endpoints={"enabled": True, "maxReplicaLagBytes": 1000})
    ro = section(r.haproxy_config(s), "listen read-only")
    assert f"bind :{conventions.HAPROXY_READ_ONLY_PORT}" in ro
    assert "balance roundrobin" in ro
    assert "http-check send meth HEAD uri /replica?lag=1000" in ro
    # No fallback to the leader.
    assert not any("backup" in line for line in ro)
    assert (
        "default-server inter 1s fastinter 500ms downinter 500ms fall 2 rise 2 "
        "on-marked-down shutdown-sessions"
    ) in ro
    assert len([line for line in ro if line.startswith("server ")]) == 2


def test_metrics_frontend_and_timeouts():
    text = r.haproxy_config(settings())
    stats = section(text, "frontend stats")
    assert f"bind :{conventions.HAPROXY_METRICS_PORT}" in stats
    assert "http-request use-service prometheus-exporter if { path /metrics }" in stats
    assert "monitor-uri /healthz" in stats
    defaults = section(text, "defaults")
    assert {"mode tcp", "timeout client 30m", "timeout server 30m", "timeout check 5s"} <= set(
        defaults
    )
    # Idle sessions may last, silent peers may not (ttl 30, loop_wait 10: 7 + 2 * 3 s).
    assert {
        "option clitcpka",
        "option srvtcpka",
        "clitcpka-idle 7s",
        "clitcpka-intvl 3s",
        "clitcpka-cnt 2",
        "srvtcpka-idle 7s",
        "srvtcpka-intvl 3s",
        "srvtcpka-cnt 2",
    } <= set(defaults)


def test_endpoint_outputs_list_every_instance():
    s = settings(endpoints={"enabled": True, "instances": 3, "readWritePort": 7000})
    rw = r.endpoint_outputs(s, read_only=False)
    assert rw["host"] == "127.0.0.1,127.0.0.1,127.0.0.1"
    assert rw["port"] == "7000,7010,7020"
    assert rw["database"] == "test"
    assert rw["network"] == {
        "host": ",".join(str(s.service_address("haproxy", i)) for i in range(3)),
        "port": "5000,5000,5000",
    }
    ro = r.endpoint_outputs(s, read_only=True)
    assert ro["port"] == "5001,5011,5021"
    assert ro["network"]["port"] == "5001,5001,5001"


def test_pooler_outputs_and_the_plain_database():
    s = settings(citus={"enabled": False}, pooler={"enabled": True, "port": 7432})
    out = r.pooler_outputs(s)
    assert (out["host"], out["port"], out["user"]) == ("127.0.0.1,127.0.0.1", "7432,7442", "app")
    assert out["database"] == "postgres"
    assert out["network"]["port"] == "6432,6432"


def test_pgbouncer_ini_points_at_its_own_haproxy():
    s = settings(pooler={"enabled": True, "poolSize": 7, "maxClientConnections": 300})
    for i in range(2):
        ini = r.pgbouncer_ini(s, i).splitlines()
        haproxy = s.service_address("haproxy", i)
        assert f"* = host={haproxy} port={conventions.HAPROXY_READ_WRITE_PORT}" in ini
        assert {
            "pool_mode = transaction",
            "auth_type = scram-sha-256",
            "auth_user = pgbouncer",
            f"auth_file = {conventions.PGBOUNCER_AUTH_FILE}",
            "auth_query = SELECT uname, phash FROM pgbouncer.user_lookup($1)",
            "default_pool_size = 7",
            "max_client_conn = 300",
            "server_login_retry = 1",
            "stats_users = pgbouncer",
            # The connection bounds at Patroni's default timing (ttl 30, loop_wait 10).
            "server_connect_timeout = 7",
            "tcp_keepalive = 1",
            "tcp_keepidle = 7",
            "tcp_keepintvl = 3",
            "tcp_keepcnt = 2",
            "tcp_user_timeout = 15000",
        } <= set(ini)


def test_pooler_files_hold_the_auth_role_alone_and_the_ini_last():
    s = settings()
    files = json.loads(r.pooler_files(s, 0, CREDENTIALS))
    assert [path for path, _ in files] == [
        conventions.PGBOUNCER_AUTH_FILE,
        conventions.PGBOUNCER_CONFIG_PATH,
    ]
    # PgBouncer's quoting: a double quote doubled.
    assert files[0][1] == '"pgbouncer" "pool""er-secret-1"\n'
    assert CREDENTIALS.application not in r.pooler_files(s, 0, CREDENTIALS)
    assert CREDENTIALS.pooler_auth not in files[1][1]


def test_pooler_write_command_names_no_secret():
    command = r.pooler_write_command("citus-pgbouncer-1", 300)
    assert command == (
        "python3 scripts/member_config.py --timeout 300 service-write --container citus-pgbouncer-1"
    )
