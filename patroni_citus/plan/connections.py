"""Pure rendering of the connection bounds (settings.ConnectionBounds) for every side of a
connection: PostgreSQL's server settings, Citus' inter-node connections, and the libpq
parameters and connection strings the stack outputs give clients. No Pulumi here.

A partitioned peer sends no reset: without a bound, whoever waits on it waits for TCP's
retransmission timeout (15 minutes on Linux), whatever Patroni has done meanwhile."""

from __future__ import annotations

from typing import Any, Mapping, Optional

from ..config import ConnectionBounds

# Citus' default for builds with SSL, which every Citus and Debian PostgreSQL package is:
# node_conninfo replaces the default as a whole, so it is kept here.
CITUS_SSLMODE = "require"


def libpq_bounds(bounds: ConnectionBounds) -> dict[str, int]:
    """libpq's keywords for the bounds (libpq 12+): a connection attempt, a request whose data
    goes unacknowledged and an idle session each give up on a dead server in time."""
    return {"connect_timeout": bounds.connect_timeout_s, **_libpq_tcp_bounds(bounds)}


def _libpq_tcp_bounds(bounds: ConnectionBounds) -> dict[str, int]:
    """The bounds on an established connection, as libpq keywords."""
    return {
        "keepalives": 1,
        "keepalives_idle": bounds.keepalives_idle_s,
        "keepalives_interval": bounds.keepalives_interval_s,
        "keepalives_count": bounds.keepalives_count,
        "tcp_user_timeout": bounds.tcp_user_timeout_ms,
    }


def server_parameters(bounds: ConnectionBounds) -> dict[str, int]:
    """PostgreSQL's side: a backend whose client stopped answering (an application, a Citus
    coordinator, a replica's walreceiver) ends within the bound and releases its locks, instead
    of holding them for a client that is gone."""
    return {
        "tcp_keepalives_idle": bounds.keepalives_idle_s,
        "tcp_keepalives_interval": bounds.keepalives_interval_s,
        "tcp_keepalives_count": bounds.keepalives_count,
        "tcp_user_timeout": bounds.tcp_user_timeout_ms,
        # A backend busy with a long statement notices the loss without trying to answer.
        "client_connection_check_interval": bounds.dead_peer_s * 1000,
    }


def citus_parameters(bounds: ConnectionBounds) -> dict[str, Any]:
    """Citus' connections from one node to another. The coordinator commits a distributed
    transaction with interrupts held (COMMIT PREPARED on every worker), so neither a cancel nor
    citus_update_node's forced lock release can end a commit waiting on a partitioned worker:
    only its connection's own bound does. Measured without it: 65 s to the first write after
    a worker leader's partition at ttl 20."""
    return {
        # Connection attempts are bounded by Citus' own setting below.
        "citus.node_conninfo": conninfo({"sslmode": CITUS_SSLMODE, **_libpq_tcp_bounds(bounds)}),
        "citus.node_connection_timeout": bounds.connect_timeout_s * 1000,
    }


def client_parameters(bounds: ConnectionBounds, target_session_attrs: str) -> dict[str, Any]:
    """What a client of an endpoint passes to libpq, as keyword: value."""
    return {"target_session_attrs": target_session_attrs, **libpq_bounds(bounds)}


def connection_string(
    host: str,
    port: str,
    database: str,
    parameters: Mapping[str, Any],
    user: Optional[str] = None,
) -> str:
    """A libpq keyword/value connection string (psql, psycopg, libpq's PQconnectdb); the
    password stays out, for PGPASSWORD or ~/.pgpass."""
    keywords: dict[str, Any] = {"host": host, "port": port, "dbname": database}
    if user is not None:
        keywords["user"] = user
    return conninfo({**keywords, **parameters})


def conninfo(keywords: Mapping[str, Any]) -> str:
    return " ".join(f"{key}={_quoted(str(value))}" for key, value in keywords.items())


def _quoted(value: str) -> str:
    """libpq's quoting: a value that is empty or holds a space, a quote or a backslash goes
    in single quotes, with quotes and backslashes escaped."""
    if value and not any(c in value for c in " '\\"):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
