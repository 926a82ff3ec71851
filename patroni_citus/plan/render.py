"""Pure rendering of what runs inside the containers: Patroni YAML, etcd flags, vip-manager
flags. No Pulumi here: every function maps settings to plain data. Ports and paths come from
the shared conventions (policies/conventions.py)."""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import dataclass, field
from typing import Any, Optional

import yaml

from .. import conventions
from ..config import Group, Member, Settings, versions
from . import backups as render_backups
from . import connections as render_connections


@dataclass(frozen=True)
class Credentials:
    """Decrypted passwords, only ever handled inside an Output.apply of secret outputs."""

    superuser: str = field(repr=False)
    replication: str = field(repr=False)
    rest_api: str = field(repr=False)
    # The service layer's roles: empty when the service that uses the role is off.
    application: str = field(default="", repr=False)
    pooler_auth: str = field(default="", repr=False)
    monitoring: str = field(default="", repr=False)


def image_build_args(settings: Settings) -> dict[str, str]:
    """The build arguments of the image's target stage (images/patroni/Dockerfile), exactly the
    ARGs that stage declares: pins become apt version patterns here, once, and the stage's
    `pc-packages` script turns them into package names and checks what apt installed."""
    image = settings.image
    if image.flavour == "debian":
        # The debian stage takes its versions from bookworm and trixie: nothing to choose.
        return {"BASE_IMAGE": image.base_image}
    citus_on = settings.citus.enabled
    # An exact package pin when one is given, else the newest release of the line.
    citus = (
        versions.apt_pin(image.citus_package_version, revision_separator=".citus-")
        if image.citus_package_version
        else versions.apt_pin(image.citus_version)
    )
    return {
        "BASE_IMAGE": image.base_image,
        "PG_MAJOR": str(image.postgres_major),
        # Empty without Citus: the image then carries no Citus package at all.
        "CITUS_VERSION": image.citus_version if citus_on else "",
        "CITUS_PACKAGE_VERSION": citus.pattern if citus_on else "",
        "PATRONI_VERSION": versions.apt_pin(image.patroni_version).pattern,
        "PATRONI_MIN_VERSION": versions.patroni_floor(image.postgres_major),
        "VIP_MANAGER_VERSION": versions.apt_pin(image.vip_manager_version).pattern,
        "VIP_MANAGER_MIN_VERSION": versions.VIP_MANAGER_V3_FLOOR,
    }


def etcd_client_urls(settings: Settings) -> list[str]:
    return [f"http://{m.address}:{conventions.ETCD_CLIENT_PORT}" for m in settings.etcd_members]


def etcd_command(settings: Settings, member: Member) -> list[str]:
    """etcd's flags for one member. Flags only: etcd refuses a setting given both as an
    ETCD_* variable and as a flag, so the environment stays clean."""
    initial_cluster = ",".join(
        f"{m.name}=http://{m.address}:{conventions.ETCD_PEER_PORT}" for m in settings.etcd_members
    )
    command = [
        "etcd",
        f"--name={member.name}",
        f"--data-dir={conventions.ETCD_DATA_DIR}",
        f"--listen-peer-urls=http://0.0.0.0:{conventions.ETCD_PEER_PORT}",
        f"--listen-client-urls=http://0.0.0.0:{conventions.ETCD_CLIENT_PORT}",
        f"--initial-advertise-peer-urls=http://{member.address}:{conventions.ETCD_PEER_PORT}",
        f"--advertise-client-urls=http://{member.address}:{conventions.ETCD_CLIENT_PORT}",
        f"--initial-cluster={initial_cluster}",
        "--initial-cluster-state=new",
        f"--initial-cluster-token={settings.etcd.cluster_token}",
        "--auto-compaction-mode=periodic",
        f"--auto-compaction-retention={settings.etcd.auto_compaction_retention}",
    ]
    if settings.etcd.api == "v2":
        # vip-manager 1.x and Patroni's `etcd:` client use the v2 API, off by default in etcd 3.4+.
        command.append("--enable-v2=true")
    return command


def pg_hba(settings: Settings) -> list[str]:
    subnet = str(settings.network.subnet)
    replication = settings.patroni.replication_user
    return [
        "local   all          all                         scram-sha-256",
        "host    all          all          127.0.0.1/32   scram-sha-256",
        # Patroni reads the timeline over a local replication connection when the leader is gone.
        f"host    replication  {replication}  127.0.0.1/32   scram-sha-256",
        f"host    replication  {replication}  {subnet}  scram-sha-256",
        f"host    all          all          {subnet}  scram-sha-256",
    ]


def patroni_config(
    settings: Settings, group: Group, member: Member, credentials: Credentials
) -> dict[str, Any]:
    """Patroni's configuration for one member, as a dict ready for YAML."""
    p = settings.patroni
    dcs_hosts = [f"{m.address}:{conventions.ETCD_CLIENT_PORT}" for m in settings.etcd_members]
    dcs_section = "etcd3" if settings.etcd.api == "v3" else "etcd"
    config: dict[str, Any] = {
        "scope": settings.cluster.scope,
        "namespace": settings.cluster.namespace,
        "name": member.name,
        "restapi": {
            "listen": f"0.0.0.0:{conventions.REST_API_PORT}",
            "connect_address": f"{member.address}:{conventions.REST_API_PORT}",
            "authentication": {"username": p.rest_api_user, "password": credentials.rest_api},
        },
        dcs_section: {"hosts": dcs_hosts},
    }
    if settings.citus.enabled:
        config["citus"] = {"group": group.number, "database": settings.citus.database}
    # Seeds a new cluster's DCS configuration; Patroni ignores it once the cluster exists, so
    # each group's config resource keeps the DCS copy as declared (rollout.py config).
    config["bootstrap"] = {
        "dcs": dynamic_config(settings, group),
        "initdb": [{"encoding": "UTF8"}, "data-checksums"],
    }
    backups = settings.backups.enabled
    config["postgresql"] = {
        "listen": f"0.0.0.0:{conventions.POSTGRES_PORT}",
        "connect_address": f"{member.address}:{conventions.POSTGRES_PORT}",
        "data_dir": conventions.PGDATA,
        "bin_dir": conventions.postgres_bin_dir(settings.image.postgres_major),
        "pgpass": "/tmp/pgpass",
        "authentication": {
            "superuser": {"username": p.superuser, "password": credentials.superuser},
            "replication": {"username": p.replication_user, "password": credentials.replication},
        },
        "pg_hba": pg_hba(settings),
        # Without a fast checkpoint a new replica waits for the next scheduled one (minutes).
        "basebackup": [{"checkpoint": "fast"}],
        "create_replica_methods": ["basebackup"],
        "parameters": {"unix_socket_directories": conventions.PG_SOCKET_DIR},
    }
    if backups:
        config["postgresql"].update(render_backups.replica_methods(settings, group))
        # The first leader creates the stanza at once, so its first WAL is archived.
        config["bootstrap"]["post_bootstrap"] = render_backups.POST_BOOTSTRAP
        if settings.backups.restore is not None:
            config["bootstrap"].update(render_backups.restore_bootstrap(settings, group))
    config["tags"] = {
        "nofailover": False,
        "noloadbalance": False,
        "clonefrom": False,
        "nosync": False,
    }
    return config


def dynamic_config(settings: Settings, group: Group) -> dict[str, Any]:
    """Patroni's dynamic configuration, shared by every member of a group through the DCS."""
    p = settings.patroni
    # Each group archives to its own stanza; patroni.parameters cannot set these (loader).
    archiving = (
        render_backups.archive_parameters(settings, group) if settings.backups.enabled else {}
    )
    bounds = settings.connection_bounds
    # Derived from ttl and loop_wait; patroni.parameters may set any of them otherwise.
    connection_bounds = {
        **render_connections.server_parameters(bounds),
        **(render_connections.citus_parameters(bounds) if settings.citus.enabled else {}),
    }
    return {
        "ttl": p.ttl,
        "loop_wait": p.loop_wait,
        "retry_timeout": p.retry_timeout,
        "maximum_lag_on_failover": p.maximum_lag_on_failover,
        "synchronous_mode": p.synchronous_mode,
        "failsafe_mode": p.failsafe_mode,
        "postgresql": {
            "use_pg_rewind": True,
            "use_slots": True,
            "parameters": {
                "password_encryption": "scram-sha-256",
                "wal_log_hints": "on",
                **connection_bounds,
                **dict(p.parameters),
                **archiving,
            },
        },
    }


def member_files(settings: Settings, group: Group, member: Member, credentials: Credentials) -> str:
    """What a member's config resource writes into its container, in order (scripts/
    member_config.py write): ~/.pgpass first, so it is there when Patroni starts; with backups
    pgBackRest's configuration and pc-backup's schedule before Patroni's, which uses them."""
    files = [(conventions.PGPASS_PATH, pgpass(settings, credentials))]
    if settings.backups.enabled:
        files += [
            (conventions.PGBACKREST_CONFIG_PATH, render_backups.pgbackrest_conf(settings, group)),
            (conventions.PGBACKREST_SCHEDULE_PATH, render_backups.schedule_file(settings, group)),
        ]
    files.append(
        (
            conventions.PATRONI_CONFIG_PATH,
            to_yaml(patroni_config(settings, group, member, credentials)),
        )
    )
    return json.dumps(files)


def revision(image: str, spec: dict[str, Any]) -> str:
    """A short hash of everything a container's replacement would change (its image and
    arguments): the rollout scripts tell current containers from pending ones by it."""
    document = json.dumps({"image": image, "spec": spec}, sort_keys=True, default=str)
    return hashlib.sha256(document.encode()).hexdigest()[:16]


def to_yaml(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


def pgpass(settings: Settings, credentials: Credentials) -> str:
    """The postgres user's ~/.pgpass: Citus connects between nodes as the superuser with
    libpq, and the day-2 scripts run psql in the members, both finding the password here."""
    password = credentials.superuser.replace("\\", "\\\\").replace(":", "\\:")
    return f"*:{conventions.POSTGRES_PORT}:*:{settings.patroni.superuser}:{password}\n"


def vip_manager_command(settings: Settings, member: Member) -> list[str]:
    """vip-manager's flags for the sidecar of one member: names that 1.0.2 and 5.x both take
    (5.0 removed the old aliases). `--interval` is 1.0.2's polling period of the leader key;
    since 2.3 the etcd checker watches the key instead, and 5.x uses the interval only to
    bound the read that re-syncs after a lost watch."""
    vip = settings.vip
    return [
        "vip-manager",
        f"--ip={vip.address}",
        f"--netmask={vip.netmask}",
        f"--interface={vip.interface}",
        f"--trigger-key={settings.leader_key(member.group)}",
        f"--trigger-value={member.name}",
        "--dcs-type=etcd",
        f"--dcs-endpoints={','.join(etcd_client_urls(settings))}",
        f"--interval={vip.interval_ms}",
    ]


def citus_membership_commands(
    settings: Settings, group: Group, coordinators: list[str], timeout_s: int
) -> tuple[str, str]:
    """The create and delete commands of a worker group's membership resource
    (scripts/citus_group.py): join waits for Patroni to register the group in pg_dist_node and,
    with citus.rebalanceOnJoin, moves shards onto it; drain moves every shard off the group
    and unregisters it before its containers are destroyed, or fails and leaves it in place."""
    common = [
        "--group", str(group.number),
        "--database", settings.citus.database,
        "--superuser", settings.patroni.superuser,
        "--scope", settings.cluster.scope,
        "--config", conventions.PATRONI_CONFIG_PATH,
        "--timeout", str(timeout_s),
    ]  # fmt: skip
    script = ["python3", "scripts/citus_group.py"]
    rebalance = ["--rebalance"] if settings.citus.rebalance_on_join else []
    members = ",".join(m.name for m in group.members)
    return (
        shlex.join([*script, "join", *common, *rebalance, *coordinators]),
        shlex.join([*script, "drain", *common, "--members", members, *coordinators]),
    )


def group_leaders_command(settings: Settings, containers: list[str], timeout_s: int) -> str:
    """The shell command behind the `groupLeaders` output: it prints {"<group>": "<leader>"}
    once every group has a running leader, asking Patroni through `docker exec`, which works
    wherever the Docker CLI reaches the engine, even when the cluster network is not routable
    from the machine running Pulumi."""
    groups = ",".join(str(g.number) for g in settings.groups)
    return shlex.join(
        [
            "python3",
            "scripts/group_leaders.py",
            "--groups",
            groups,
            "--timeout",
            str(timeout_s),
            "--config",
            conventions.PATRONI_CONFIG_PATH,
            *containers,
        ]
    )


# --- day-2 commands (scripts/member_config.py, scripts/rollout.py) ---------------------------

ROLLOUT = ["python3", "scripts/rollout.py"]
MEMBER_CONFIG = ["python3", "scripts/member_config.py"]


def _rollout(settings: Settings, timeout_s: int, *argv: str) -> str:
    max_lag = str(settings.patroni.maximum_lag_on_failover)
    return shlex.join([*ROLLOUT, "--timeout", str(timeout_s), "--max-lag", max_lag, *argv])


def member_write_command(container: str, timeout_s: int, files_only: bool = False) -> str:
    """Writes the files on stdin into the member; then Patroni reloads unless `files_only`."""
    argv = [*MEMBER_CONFIG, "--timeout", str(timeout_s), "write", "--container", container]
    return shlex.join([*argv, "--files-only"] if files_only else argv)


def member_remove_command(container: str, paths: list[str]) -> str:
    return shlex.join([*MEMBER_CONFIG, "remove", "--container", container, *paths])


def turn_command(settings: Settings, member: Member, revisions: dict[str, str],
                 timeout_s: int) -> str:  # fmt: skip
    """Run before `member`'s container is replaced: waits for its turn in the group's roll."""
    document = json.dumps(revisions, sort_keys=False)
    return _rollout(settings, timeout_s, "turn", "--member", member.name, "--revisions", document)


def ready_commands(settings: Settings, group: Group, member: Member,
                   timeout_s: int) -> tuple[str, str]:  # fmt: skip
    """The create and delete commands of a member's readiness resource: wait until it is
    healthy; before it goes, hand its leadership off."""
    members = ",".join(m.name for m in group.members)
    return (
        _rollout(settings, timeout_s, "ready", "--member", member.name, "--members", members),
        _rollout(settings, timeout_s, "handoff", "--member", member.name, "--members", members),
    )


def engines_environment(settings: Settings) -> Optional[dict[str, str]]:
    """The environment local commands need to reach the containers they `docker exec` into:
    none with the default engine; the engine's DOCKER_HOST (and TLS) with one configured
    engine; with several, each container's in PC_ENGINES (scripts/patroni_api.py)."""
    hosts = settings.hosts
    if not hosts.engines:
        return None
    if not hosts.several:
        return hosts.engines[0].cli_environment()
    engines = {
        container: hosts.engine(host).cli_environment()
        for container, host in sorted(hosts.placement.items())
    }
    return {"PC_ENGINES": json.dumps(engines, sort_keys=True)}


def overlay_release_command(settings: Settings, timeout_s: int) -> str:
    """Removes the overlay network once Swarm lets it go: its containers are gone, but the
    manager drops their attachment tasks a moment later, and until then the provider's delete
    fails ("in use by task"; it retries only "has active endpoints")."""
    name = shlex.quote(settings.network.name)
    tries = max(1, timeout_s // 2)
    return (
        f"i=0; while docker network inspect {name} >/dev/null 2>&1; do "
        f"docker network rm {name} >/dev/null 2>&1 && exit 0; i=$((i + 1)); "
        f'if [ "$i" -ge {tries} ]; then echo "network {name} still in use after {timeout_s}s" >&2; '
        "exit 1; fi; sleep 2; done"
    )


def etcd_ready_command(settings: Settings, member: Member, timeout_s: int) -> str:
    members = ",".join(m.name for m in settings.etcd_members)
    return _rollout(settings, timeout_s, "etcd-ready", "--member", member.name, "--members",
                    members)  # fmt: skip


def group_config_command(settings: Settings, group: Group, timeout_s: int) -> str:
    members = ",".join(m.name for m in group.members)
    desired = json.dumps(dynamic_config(settings, group), sort_keys=True)
    return _rollout(settings, timeout_s, "config", "--members", members, "--desired", desired)


def passwords_command(settings: Settings, timeout_s: int) -> str:
    """Sets the database roles' passwords on every group's leader before the members' files
    change; the passwords come from the environment (PC_SUPERUSER_PASSWORD,
    PC_REPLICATION_PASSWORD), never the command line."""
    groups = json.dumps([[m.name for m in g.members] for g in settings.groups])
    argv = [*MEMBER_CONFIG, "--timeout", str(timeout_s), "passwords", "--groups", groups,
            "--superuser", settings.patroni.superuser,
            "--replication", settings.patroni.replication_user]  # fmt: skip
    if settings.citus.enabled:
        argv += ["--citus-database", settings.citus.database]
    return shlex.join(argv)


SERVICE_ROLES = ["python3", "scripts/service_roles.py"]


def service_roles(settings: Settings, credentials: Credentials) -> dict[str, dict[str, Any]]:
    """The roles the enabled services log in as (scripts/service_roles.py, PC_SERVICE_ROLES)."""
    roles: dict[str, dict[str, Any]] = {}
    if settings.pooler.enabled:
        roles[settings.pooler.user] = {"password": credentials.application, "authinfo": True}
        roles[settings.pooler.auth_user] = {"password": credentials.pooler_auth}
    if settings.monitoring.enabled:
        roles[settings.monitoring.user] = {
            "password": credentials.monitoring,
            "member_of": ["pg_monitor"],
        }
    return roles


def service_roles_command(settings: Settings, timeout_s: int) -> str:
    """Creates the service roles (and PgBouncer's auth_query function) on every group's
    leader once the members are ready; the passwords come from PC_SERVICE_ROLES."""
    groups = json.dumps([[m.name for m in g.members] for g in settings.groups])
    argv = [*SERVICE_ROLES, "--timeout", str(timeout_s), "ensure", "--groups", groups,
            "--superuser", settings.patroni.superuser]  # fmt: skip
    if settings.citus.enabled:
        argv += ["--database", settings.citus.database]
    if settings.pooler.enabled:
        argv += ["--lookup-function", settings.pooler.auth_user]
    return shlex.join(argv)


def engine_proxy_address(settings: Settings) -> str:
    """Where the proxy's clients reach it (host:port): by container name on the engine
    network. The watcher speaks HTTP to it, cadvisor's Docker client `tcp://`."""
    return f"{settings.cluster.scope}-engine-proxy:{conventions.ENGINE_PROXY_PORT}"


def crash_watcher_environment(settings: Settings) -> list[str]:
    """pc-crash-watch's configuration (images/patroni/pc_crash_watch.py)."""
    endpoints = ",".join(etcd_client_urls(settings))
    return [
        f"PC_SCOPE={settings.cluster.scope}",
        f"PC_DCS_PREFIX={settings.dcs_prefix}",
        f"PC_CITUS={str(settings.citus.enabled).lower()}",
        f"PC_ETCD_API={settings.etcd.api}",
        f"PC_ETCD_ENDPOINTS={endpoints}",
        f"PC_ENGINE_URL=http://{engine_proxy_address(settings)}",
    ]
