"""The conventions the program, the image, the policy pack and the tests share (documented in
docs/conventions.md): label keys, role names, ports, paths inside the image, healthchecks.

It lives in the pack and imports nothing but the standard library: the Pulumi CLI runs the pack
from policies/ alone (only that directory is on its sys.path, and `pulumi policy publish` ships
only that directory), so the pack cannot import the program's patroni_citus/ (nor pulumi_docker,
which its virtualenv lacks). The program and the tests import it as `policies.conventions`;
policies/__init__.py imports nothing, so that loads no policy machinery.
"""

from __future__ import annotations

from typing import Literal, Mapping, Tuple

# --------------------------------------------------------------------------------------------
# Labels (pulumi-docker `labels: [{label, value}]`); the pack identifies resources by them.
# --------------------------------------------------------------------------------------------

LABEL_PREFIX = "patroni-citus"
LABEL_CLUSTER = f"{LABEL_PREFIX}.cluster"
LABEL_ROLE = f"{LABEL_PREFIX}.role"
LABEL_GROUP = f"{LABEL_PREFIX}.group"
LABEL_MEMBER = f"{LABEL_PREFIX}.member"
LABEL_DATA_PATH = f"{LABEL_PREFIX}.data-path"
LABEL_MEMBER_RANGE = f"{LABEL_PREFIX}.member-range"
LABEL_VIP = f"{LABEL_PREFIX}.vip"
# retainOnDelete never reaches a policy (pulumi-policy 1.21 / the analyzer protocol only
# carry protect, ignoreChanges, deleteBeforeReplace, aliases, customTimeouts,
# additionalSecretOutputs and parent), so the component mirrors it in this volume label.
LABEL_RETAIN = f"{LABEL_PREFIX}.retain"
# A hash of what a container's replacement would change: the rollout tells current containers
# from pending ones by it (scripts/rollout.py).
LABEL_REVISION = f"{LABEL_PREFIX}.revision"
# With several engines: the engine (hosts.engines[].name) a container or volume is placed on.
LABEL_HOST = f"{LABEL_PREFIX}.host"

# The values of LABEL_ROLE.
Role = Literal[
    "etcd",
    "patroni",
    "vip-manager",
    "cadvisor",
    "fluentd",
    "adminer",
    "engine-proxy",
    "crash-watcher",
    "haproxy",
    "pgbouncer",
    "prometheus",
    "backup-exporter",
]
ROLE_ETCD: Role = "etcd"
ROLE_PATRONI: Role = "patroni"
ROLE_VIP_MANAGER: Role = "vip-manager"
ROLE_CADVISOR: Role = "cadvisor"
ROLE_FLUENTD: Role = "fluentd"
ROLE_ADMINER: Role = "adminer"
# The only container that may mount the engine's API socket: it passes on read-only requests.
ROLE_ENGINE_PROXY: Role = "engine-proxy"
ROLE_CRASH_WATCHER: Role = "crash-watcher"
# The service layer (docs/endpoints.md, docs/observability.md, docs/operations.md).
ROLE_HAPROXY: Role = "haproxy"
ROLE_PGBOUNCER: Role = "pgbouncer"
ROLE_PROMETHEUS: Role = "prometheus"
ROLE_BACKUP_EXPORTER: Role = "backup-exporter"
# Roles whose containers keep their state in a data volume at DATA_PATHS[role]: the backup
# exporter's is pgBackRest's repository (every member mounts it too), retained like the others.
DATA_ROLES: Tuple[Role, ...] = (ROLE_ETCD, ROLE_PATRONI, ROLE_BACKUP_EXPORTER)

# --------------------------------------------------------------------------------------------
# Ports
# --------------------------------------------------------------------------------------------

POSTGRES_PORT = 5432
REST_API_PORT = 8008  # Patroni's REST API, also its /metrics
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
ENGINE_PROXY_PORT = 2375  # the engine proxy's read-only Docker API, on its own network
HAPROXY_READ_WRITE_PORT = 5000
HAPROXY_READ_ONLY_PORT = 5001
HAPROXY_METRICS_PORT = 8404  # HAProxy's built-in Prometheus exporter
PGBOUNCER_PORT = 6432
PROMETHEUS_PORT = 9090
POSTGRES_EXPORTER_PORT = 9187  # the PostgreSQL exporter beside Patroni in each member
PGBACKREST_EXPORTER_PORT = 9854
CADVISOR_PORT = 8080  # cadvisor's web UI and /metrics

# --------------------------------------------------------------------------------------------
# Paths inside the image (images/patroni/Dockerfile and pc-entrypoint create and use them)
# --------------------------------------------------------------------------------------------

ETCD_DATA_MOUNT = "/var/lib/etcd"
ETCD_DATA_DIR = f"{ETCD_DATA_MOUNT}/data"
PATRONI_DATA_MOUNT = "/var/lib/postgresql/data"  # a parent of PGDATA, never PGDATA itself
PGDATA = f"{PATRONI_DATA_MOUNT}/pgdata"
# pc-entrypoint stamps each Patroni start here; a vip-manager sidecar mounts the member's
# volume read-only to see it.
MEMBER_STAMP_PATH = f"{PATRONI_DATA_MOUNT}/.pc-member-started"
PATRONI_CONFIG_PATH = "/etc/patroni/patroni.yml"
PGPASS_PATH = "/var/lib/postgresql/.pgpass"  # libpq's default for the postgres user
PG_SOCKET_DIR = "/var/run/postgresql"
# Where the engine proxy sees the host's engine socket (bind-mounted from engine.socket).
ENGINE_SOCKET_PATH = "/var/run/docker.sock"
# The engine socket's usual host paths (/var/run is a symlink to /run on current distributions,
# so both spellings): engine.socket defaults to the first, the policy pack looks for both.
HOST_ENGINE_SOCKETS: Tuple[str, ...] = ("/var/run/docker.sock", "/run/docker.sock")
# pgBackRest's repository volume, mounted in every member and in the backup exporter.
PGBACKREST_REPO_MOUNT = "/var/lib/pgbackrest"
# pgBackRest's default configuration file and the backup schedule of pc-backup, written with
# the member's files when backups are on (no secrets in either).
PGBACKREST_CONFIG_PATH = "/etc/pgbackrest/pgbackrest.conf"
PGBACKREST_SCHEDULE_PATH = "/etc/pgbackrest/pc-backup.json"
# HAProxy (the endpoints) writes its rendered configuration, given in PC_HAPROXY_CONFIG (it
# holds no secret), here at every start: a tmpfs, as its root filesystem is read-only.
HAPROXY_RUN_DIR = "/run/pc-haproxy"
HAPROXY_CONFIG_PATH = f"{HAPROXY_RUN_DIR}/haproxy.cfg"
# PgBouncer's files, written into the running container by its config command as the postgres
# user (mode 0600): the auth_file holds the auth_query role's password.
PGBOUNCER_CONFIG_DIR = "/etc/pc-pgbouncer"
PGBOUNCER_CONFIG_PATH = f"{PGBOUNCER_CONFIG_DIR}/pgbouncer.ini"
PGBOUNCER_AUTH_FILE = f"{PGBOUNCER_CONFIG_DIR}/userlist.txt"
POSTGRES_UID = "999"  # fixed in the image so uploads can be owned by postgres
# The PostgreSQL exporter's credentials in each member, written by its exporter resource
# (postgres, mode 0600); pc-exporter runs the exporter while they exist.
POSTGRES_EXPORTER_USER_PATH = "/etc/patroni/postgres-exporter.user"
POSTGRES_EXPORTER_PASSWORD_PATH = "/etc/patroni/postgres-exporter.pass"
# Prometheus runs as Debian's `prometheus` user, pinned in the image (like postgres) so that its
# retained data volume keeps a stable owner across rebuilds.
PROMETHEUS_UID = "998"
PROMETHEUS_GID = "998"
PROMETHEUS_DATA_MOUNT = "/var/lib/prometheus"  # its data volume; owned by prometheus in the image
DATA_PATHS: Mapping[Role, str] = {
    ROLE_ETCD: ETCD_DATA_MOUNT,
    ROLE_PATRONI: PATRONI_DATA_MOUNT,
    ROLE_BACKUP_EXPORTER: PGBACKREST_REPO_MOUNT,
}


def postgres_bin_dir(major: int) -> str:
    return f"/usr/lib/postgresql/{major}/bin"


# --------------------------------------------------------------------------------------------
# Healthchecks (Docker `healthcheck.tests`)
# --------------------------------------------------------------------------------------------

ETCD_HEALTHCHECK: Tuple[str, ...] = (
    "CMD",
    "etcdctl",
    f"--endpoints=http://127.0.0.1:{ETCD_CLIENT_PORT}",
    "endpoint",
    "health",
)


def http_healthcheck(url: str) -> Tuple[str, ...]:
    """Healthy while `url` answers with a 2xx status (curl is in the project image)."""
    return ("CMD", "curl", "-fsS", "-o", "/dev/null", url)


# /liveness answers 200 while the Patroni loop runs, even on a replica or while PostgreSQL
# restarts; /health would mark a member unhealthy during a normal rewind or restart.
PATRONI_HEALTHCHECK: Tuple[str, ...] = http_healthcheck(
    f"http://127.0.0.1:{REST_API_PORT}/liveness"
)


def vip_manager_healthcheck(interface: str) -> Tuple[str, ...]:
    # The sidecar is healthy while it still shares a live namespace with its member.
    return ("CMD", "test", "-e", f"/sys/class/net/{interface}")
