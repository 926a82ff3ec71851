"""Pure rendering of the service layer's client side: HAProxy's configuration (the read-write
and read-only endpoints), PgBouncer's ini and auth_file, and the libpq host lists the stack
outputs name. No Pulumi here."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Mapping, Optional, Sequence

from .. import conventions
from ..config import Settings
from . import connections as render_connections
from .render import MEMBER_CONFIG, Credentials

# How fast HAProxy follows Patroni: an UP server is checked every second, a changing or DOWN
# one every half second, and two failed answers in a row take it out. Patroni's own example
# (inter 3s, fall 3) kept routing to a demoted leader for ~4.3 s after a switchover here;
# these timings left it within ~0.7 s (research notes, B).
CHECK_TIMING = "inter 1s fastinter 500ms downinter 500ms fall 2"
# One 200 from /primary puts a member in the read-write pool: Patroni answers it only while
# the member holds the leader lock, so it cannot be a fluke. A replica joins the read-only
# pool after two.
READ_WRITE_RISE, READ_ONLY_RISE = 1, 2
# The longest a member that answers stays in a pool after its health answer changed: asked
# again after `inter`, then after `fastinter` for the second failed answer (`fall 2`), plus a
# second for the answers themselves.
DETECTION_BOUND_S = 1.0 + 0.5 + 1.0
# HAProxy sizes its tables from the file descriptor limit when maxconn is unset, and a
# container's limit is often a million: a fixed bound keeps its memory small.
HAPROXY_MAXCONN = 4096


def haproxy_config(settings: Settings) -> str:
    """HAProxy's configuration: the read-write port to the leader of group 0 (Patroni's
    /primary; with Citus, group 0 is the coordinator), the read-only port to its replicas
    within the lag limit (/replica?lag=), never to the leader, and a metrics/stats frontend."""
    members = settings.groups[0].members
    rest = conventions.REST_API_PORT
    servers = [
        f"    server {m.name} {m.address}:{conventions.POSTGRES_PORT} check port {rest}"
        for m in members
    ]
    lag = settings.endpoints.max_replica_lag_bytes
    bounds = settings.connection_bounds
    lines = [
        "global",
        f"    maxconn {HAPROXY_MAXCONN}",
        "    log stdout format raw local0",
        "",
        "defaults",
        "    mode tcp",
        "    log global",
        "    option tcplog",
        # Only failed or aborted sessions and server state changes reach the log.
        "    option dontlog-normal",
        f"    maxconn {HAPROXY_MAXCONN}",
        # Patroni's haproxy.cfg: sessions may idle for long (pools keep them), checks are short.
        "    retries 2",
        "    timeout connect 4s",
        "    timeout client 30m",
        "    timeout server 30m",
        "    timeout check 5s",
        # Sessions may idle for half an hour, but a silent peer is dropped within the stack's
        # connection bounds: a dead client does not keep its server session, nor a server
        # HAProxy has not marked down yet its client.
        "    option clitcpka",
        "    option srvtcpka",
        *(
            f"    {side}tcpka-{key} {value}"
            for side in ("cli", "srv")
            for key, value in (
                ("idle", f"{bounds.keepalives_idle_s}s"),
                ("intvl", f"{bounds.keepalives_interval_s}s"),
                ("cnt", bounds.keepalives_count),
            )
        ),
        "",
        "frontend stats",
        "    mode http",
        f"    bind :{conventions.HAPROXY_METRICS_PORT}",
        "    monitor-uri /healthz",
        "    http-request use-service prometheus-exporter if { path /metrics }",
        "    stats enable",
        "    stats uri /stats",
        "    stats refresh 5s",
        "",
        "listen read-write",
        f"    bind :{conventions.HAPROXY_READ_WRITE_PORT}",
        "    option httpchk",
        # HEAD: Patroni answers with the status line only.
        "    http-check send meth HEAD uri /primary",
        "    http-check expect status 200",
        # Sessions on a member that stopped being the primary are cut, so clients reconnect
        # to the new one instead of writing into a read-only (or dead) server.
        f"    default-server {CHECK_TIMING} rise {READ_WRITE_RISE} on-marked-down shutdown-sessions",
        *servers,
        "",
        "listen read-only",
        f"    bind :{conventions.HAPROXY_READ_ONLY_PORT}",
        "    balance roundrobin",
        "    option httpchk",
        # /replica answers 503 on the leader: no `backup` line to it either, the read-only
        # port never routes to the leader (with every replica down it refuses connections).
        f"    http-check send meth HEAD uri /replica?lag={lag}",
        "    http-check expect status 200",
        f"    default-server {CHECK_TIMING} rise {READ_ONLY_RISE} on-marked-down shutdown-sessions",
        *servers,
    ]
    return "\n".join(lines) + "\n"


def libpq_hosts(hosts: Sequence[str], ports: Sequence[int]) -> dict[str, str]:
    """A libpq multi-host target: {"host": "a,b", "port": "p,q"}, as psql, psycopg and JDBC
    (host:port pairs) take it."""
    return {"host": ",".join(hosts), "port": ",".join(str(p) for p in ports)}


def database(settings: Settings) -> str:
    return settings.citus.database if settings.citus.enabled else "postgres"


def with_client_parameters(
    settings: Settings,
    endpoint: dict[str, Any],
    target_session_attrs: str,
    user: Optional[str] = None,
) -> dict[str, Any]:
    """An endpoint's output plus the libpq parameters that let its clients fail fast on a dead
    server, and all of it as one connection string (libpq 14+ for target_session_attrs
    standby; the password is never in it)."""
    parameters = render_connections.client_parameters(
        settings.connection_bounds, target_session_attrs
    )
    return {
        **endpoint,
        "parameters": parameters,
        "connectionString": render_connections.connection_string(
            endpoint["host"], str(endpoint["port"]), endpoint["database"], parameters, user
        ),
    }


def coordinator_outputs(settings: Settings) -> dict[str, Any]:
    """Where clients connect, as one libpq host list (the VIP, every coordinator member, or
    with several engines the HAProxy instances' read-write port on their hosts)."""
    port = settings.endpoints.read_write_port if settings.hosts.several else None
    user = settings.patroni.superuser
    coordinator = {
        "host": ",".join(settings.coordinator_hosts),
        "port": port or conventions.POSTGRES_PORT,
        "database": database(settings),
        "user": user,
        "targetSessionAttrs": "read-write",
    }
    return with_client_parameters(settings, coordinator, "read-write", user)


def endpoint_outputs(settings: Settings, read_only: bool) -> dict[str, Any]:
    """One endpoint (read-write or read-only) across every HAProxy instance: the published
    host ports, and the addresses on the cluster network (for containers there)."""
    e = settings.endpoints
    index = 1 if read_only else 0
    internal = (
        conventions.HAPROXY_READ_ONLY_PORT if read_only else conventions.HAPROXY_READ_WRITE_PORT
    )
    instances = range(e.instances)
    endpoint = {
        **libpq_hosts(
            [settings.endpoint_host_ip(i) for i in instances],
            [e.host_ports(i)[index] for i in instances],
        ),
        "database": database(settings),
        # With several instances, spread new sessions over them (libpq 16+, psycopg 3.2+).
        "loadBalanceHosts": "random",
        "network": libpq_hosts(
            [str(settings.service_address("haproxy", i)) for i in instances],
            [internal for _ in instances],
        ),
    }
    # libpq checks the server too: a replica promoted before HAProxy has asked it again is
    # refused rather than written to (read-write) or read as a replica (read-only).
    return with_client_parameters(settings, endpoint, "standby" if read_only else "read-write")


def pooler_port(settings: Settings, instance: int) -> int:
    return settings.pooler.port + instance * settings.endpoints.PORT_STRIDE


def pooler_outputs(settings: Settings) -> dict[str, Any]:
    """The pooled read-write endpoint across every PgBouncer instance."""
    p = settings.pooler
    instances = range(settings.endpoints.instances)
    endpoint = {
        **libpq_hosts(
            [p.host_ip for _ in instances], [pooler_port(settings, i) for i in instances]
        ),
        "database": database(settings),
        "user": p.user,
        "loadBalanceHosts": "random",
        "network": libpq_hosts(
            [str(settings.service_address("pgbouncer", i)) for i in instances],
            [conventions.PGBOUNCER_PORT for _ in instances],
        ),
    }
    return with_client_parameters(settings, endpoint, "read-write", p.user)


def pgbouncer_ini(settings: Settings, instance: int) -> str:
    """PgBouncer's ini for instance i: transaction pooling in front of HAProxy instance i's
    read-write port. One HAProxy each rather than a host list: PgBouncer 1.18 uses a host list
    round robin without skipping an unreachable host (doc/config.md, "host"), so a list would
    fail every other connection while one HAProxy is down; clients list the PgBouncers."""
    p = settings.pooler
    bounds = settings.connection_bounds
    haproxy = settings.service_address("haproxy", instance)
    lines = [
        "[databases]",
        # Any database, under the client's name, through this instance's HAProxy.
        f"* = host={haproxy} port={conventions.HAPROXY_READ_WRITE_PORT}",
        "",
        "[pgbouncer]",
        "listen_addr = 0.0.0.0",
        f"listen_port = {conventions.PGBOUNCER_PORT}",
        # TCP only: nothing in the container connects over a socket.
        "unix_socket_dir =",
        "pool_mode = transaction",
        f"default_pool_size = {p.pool_size}",
        f"max_client_conn = {p.max_client_connections}",
        # Client and server authentication both SCRAM: PgBouncer passes the client's SCRAM
        # proof on to PostgreSQL (1.14+) without ever holding the client's password. Only the
        # auth_query role's password is in the auth_file.
        "auth_type = scram-sha-256",
        f"auth_file = {conventions.PGBOUNCER_AUTH_FILE}",
        f"auth_user = {p.auth_user}",
        # Schema-qualified, to a SECURITY DEFINER function with a fixed search_path
        # (scripts/service_roles.py; CVE-2025-12819).
        "auth_query = SELECT uname, phash FROM pgbouncer.user_lookup($1)",
        # Failover: after a failed server login PgBouncer refuses new clients for this long
        # (15 s by default); HAProxy has a new primary within seconds.
        "server_login_retry = 1",
        # The stack's connection bounds on both sides: a silent client or HAProxy is dropped
        # instead of holding a pool slot or a client for minutes.
        f"server_connect_timeout = {bounds.connect_timeout_s}",
        "tcp_keepalive = 1",
        f"tcp_keepidle = {bounds.keepalives_idle_s}",
        f"tcp_keepintvl = {bounds.keepalives_interval_s}",
        f"tcp_keepcnt = {bounds.keepalives_count}",
        f"tcp_user_timeout = {bounds.tcp_user_timeout_ms}",
        # JDBC sends it at startup; harmless to ignore.
        "ignore_startup_parameters = extra_float_digits",
        "log_connections = 0",
        "log_disconnections = 0",
        # SHOW POOLS/STATS for the auth role. It also keeps the healthcheck's admin-console
        # probe off 1.18's crash on an unknown user there (put_in_order, fixed in 1.24).
        f"stats_users = {p.auth_user}",
    ]
    return "\n".join(lines) + "\n"


def pgbouncer_auth_file(settings: Settings, credentials: Credentials) -> str:
    """The auth_file: only the auth_query role, with its password in plain text. PgBouncer
    1.18 cannot log in to the server with a SCRAM verifier here when the client did not use
    SCRAM against this very entry (research notes, C), so the password itself it is."""

    def quoted(text: str) -> str:
        return '"' + text.replace('"', '""') + '"'

    return f"{quoted(settings.pooler.auth_user)} {quoted(credentials.pooler_auth)}\n"


def pooler_files(settings: Settings, instance: int, credentials: Credentials) -> str:
    """What a PgBouncer instance's config resource writes into its container, in order: the
    auth_file, then the ini PgBouncer waits for."""
    files = [
        (conventions.PGBOUNCER_AUTH_FILE, pgbouncer_auth_file(settings, credentials)),
        (conventions.PGBOUNCER_CONFIG_PATH, pgbouncer_ini(settings, instance)),
    ]
    return json.dumps(files)


def pooler_write_command(container: str, timeout_s: int) -> str:
    return shlex.join([*MEMBER_CONFIG, "--timeout", str(timeout_s), "service-write",
                       "--container", container])  # fmt: skip


# --- the service layer's plan ----------------------------------------------------------------

# Bounds writing a PgBouncer instance's files.
POOLER_WRITE_TIMEOUT_S = 300


@dataclass(frozen=True)
class HaproxyPlan:
    container_name: str
    address: str  # on the cluster network
    host_ip: str  # where its ports are published
    read_write_port: int
    read_only_port: int
    host: Optional[str]  # the host label, with several engines


@dataclass(frozen=True)
class EndpointsPlan:
    scope: str
    config: str  # HAProxy's configuration, the same for every instance
    instances: tuple[HaproxyPlan, ...]
    read_write: Mapping[str, Any]  # the outputs
    read_only: Mapping[str, Any]


@dataclass(frozen=True)
class PgBouncerPlan:
    container_name: str
    address: str
    host_ip: str
    port: int
    write_command: str
    files: Callable[[Credentials], str]  # the auth_file holds a password: known at deploy


@dataclass(frozen=True)
class PoolerPlan:
    scope: str
    auth_user: str  # the healthcheck logs in as it
    instances: tuple[PgBouncerPlan, ...]  # instance i in front of HAProxy instance i
    endpoint: Mapping[str, Any]  # the output


def plan_endpoints(settings: Settings) -> EndpointsPlan:
    e = settings.endpoints
    instances = []
    for i in range(e.instances):
        name = settings.service_name("haproxy", i)
        read_write, read_only = e.host_ports(i)
        instances.append(
            HaproxyPlan(
                container_name=name,
                address=str(settings.service_address("haproxy", i)),
                host_ip=settings.endpoint_host_ip(i),
                read_write_port=read_write,
                read_only_port=read_only,
                host=settings.hosts.label_of(name),
            )
        )
    return EndpointsPlan(
        scope=settings.cluster.scope,
        config=haproxy_config(settings),
        instances=tuple(instances),
        read_write=endpoint_outputs(settings, read_only=False),
        read_only=endpoint_outputs(settings, read_only=True),
    )


def plan_pooler(settings: Settings) -> PoolerPlan:
    instances = []
    for i in range(settings.endpoints.instances):
        name = settings.service_name("pgbouncer", i)
        instances.append(
            PgBouncerPlan(
                container_name=name,
                address=str(settings.service_address("pgbouncer", i)),
                host_ip=settings.pooler.host_ip,
                port=pooler_port(settings, i),
                write_command=pooler_write_command(name, POOLER_WRITE_TIMEOUT_S),
                files=partial(pooler_files, settings, i),
            )
        )
    return PoolerPlan(
        scope=settings.cluster.scope,
        auth_user=settings.pooler.auth_user,
        instances=tuple(instances),
        endpoint=pooler_outputs(settings),
    )
