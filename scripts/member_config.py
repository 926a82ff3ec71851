#!/usr/bin/env python3
"""A member's configuration files and the cluster's passwords, changed in place.

write --container C      write the files given on stdin (JSON [[path, content], ...], in
                         order) into the running container as the postgres user (mode 0600),
                         then make Patroni reload. Run by each member's config resource, on
                         create (the container waits for its configuration) and on every
                         change: local settings never replace the container.
                         With --files-only, nothing else: files that Patroni does not
                         read (the PostgreSQL exporter's credentials).
remove --container C PATH...
                         remove files written with --files-only (their reader stops);
                         nothing to do when the container does not run
service-write --container C
                         write the files given on stdin (as write does) into a service's
                         running container (PgBouncer), then make it reload (SIGHUP)
passwords --groups JSON  set the superuser's and the replication user's passwords (from
                         PC_SUPERUSER_PASSWORD / PC_REPLICATION_PASSWORD) on the leader of
                         every group that exists, before the members' files change: standbys
                         keep streaming on the connections they have and reconnect with the
                         new password once their files name it. Only a salted SCRAM verifier
                         reaches the server, never the password. A role that already has the
                         password is left alone, so a new cluster (which bootstraps with
                         these passwords) is untouched.
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import hmac
import json
import os
import shlex
import sys
import unicodedata
from typing import Optional

from patroni_api import (
    StepError,
    cluster_view,
    container_state,
    docker,
    is_running,
    leader_of,
    log,
    retrying,
    run_step,
)

SCRAM_ITERATIONS = 4096  # PostgreSQL's default scram_iterations


def write_files(container: str, timeout: float) -> list[tuple[str, str]]:
    """Writes the files given on stdin into the container, each replaced atomically."""
    files = [(str(path), str(content)) for path, content in json.load(sys.stdin)]
    for path, content in files:
        quoted = shlex.quote(path)
        script = f"umask 077 && cat > {quoted}.new && mv -f {quoted}.new {quoted}"
        argv = ("exec", "-i", "-u", "postgres", container, "sh", "-c", script)
        retrying(
            f"writing {path} into {container}",
            functools.partial(docker, *argv, on=container, stdin=content),
            timeout,
        )
    return files


def write(args: argparse.Namespace) -> None:
    files = write_files(args.container, args.timeout)
    if args.files_only:
        log(f"{args.container}: wrote {', '.join(path for path, _ in files)}")
        return
    if docker("exec", args.container, "pc-entrypoint", "reload", on=args.container) == "reloading":
        # Patroni applies a SIGHUP before its next HA loop: done once its REST API takes the
        # credentials the new file names (an authenticated request, itself a harmless reload).
        retrying(
            f"{args.container} to apply its new configuration",
            functools.partial(
                docker, "exec", args.container, "pc-rest", "POST", "/reload", on=args.container
            ),
            args.timeout,
        )
    # Patroni up to 4.0.7 keeps the old replication password in the passfile of a streaming
    # standby's primary_conninfo after a reload (patroni#3507, fixed in 4.0.8): the standby
    # would fail at its next reconnect. Give the passfile the configured password, as 4.0.8
    # does itself.
    docker("exec", args.container, "pc-replication-passfile", on=args.container)
    log(f"{args.container}: wrote {', '.join(path for path, _ in files)} and reloaded")


def service_write(args: argparse.Namespace) -> None:
    files = write_files(args.container, args.timeout)
    # Before PgBouncer runs, its entrypoint waits for the files and this reload does nothing.
    docker("exec", args.container, "pc-entrypoint", "reload", on=args.container)
    log(f"{args.container}: wrote {', '.join(path for path, _ in files)} and reloaded")


def remove(args: argparse.Namespace) -> None:
    # A container that no longer runs cannot be entered; a replaced one is gone with its files.
    if not is_running(args.container):
        log(f"{args.container}: not running, nothing removed")
        return
    docker(
        "exec", "-u", "postgres", args.container, "rm", "-f", "--", *args.paths, on=args.container
    )
    log(f"{args.container}: removed {', '.join(args.paths)}")


def scram_verifier(password: str, salt: bytes, iterations: int = SCRAM_ITERATIONS) -> str:
    """PostgreSQL's SCRAM-SHA-256 verifier of a password (RFC 5803 form, as pg_authid keeps
    it). NFKC stands in for SASLprep, which it equals for the passwords the stack generates."""
    salted = hashlib.pbkdf2_hmac(
        "sha256", unicodedata.normalize("NFKC", password).encode(), salt, iterations
    )
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def verifies(verifier: str, password: str) -> bool:
    """Whether a stored SCRAM verifier was made from `password`."""
    try:
        scheme, rest = verifier.split("$", 1)
        params, _keys = rest.split("$", 1)
        iterations, salt = params.split(":", 1)
        if scheme != "SCRAM-SHA-256":
            return False
        made = scram_verifier(password, base64.b64decode(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(made, verifier)


def conninfo_value(value: str) -> str:
    """A libpq connection-string value, quoted as libpq parses it."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def psql(container: str, superuser: str, database: str, sql: str) -> str:
    # The superuser's password comes from the container's ~/.pgpass; the SQL from stdin, so
    # nothing secret is on a command line.
    return docker("exec", "-i", container, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-tA",
                  "-U", superuser, "-d", database, "-f", "-", on=container,
                  stdin=sql)  # fmt: skip


def rotate_group(members: list[str], roles: dict[str, str], superuser: str,
                 citus_database: str, timeout: float) -> Optional[str]:  # fmt: skip
    """Sets the roles' passwords on the group's leader; returns the leader's name, or None
    when the group has no container yet (a new group bootstraps with the new passwords)."""
    if all(container_state(m) is None for m in members):
        return None
    database = citus_database or "postgres"
    leader = retrying(
        f"the leader of {', '.join(members)}",
        lambda: _leader_name(members),
        timeout,
    )
    names = ", ".join(sql_literal(r) for r in roles)
    stored = psql(leader, superuser, database,
                  f"SELECT rolname, coalesce(rolpassword, '') FROM pg_authid "
                  f"WHERE rolname IN ({names});")  # fmt: skip
    current = dict(line.split("|", 1) for line in stored.splitlines() if "|" in line)
    changing = [role for role, password in roles.items()
                if not verifies(current.get(role, ""), password)]  # fmt: skip
    if not changing:
        log(f"{leader}: passwords already current")
        return leader
    # Each Patroni group owns its roles: the coordinator must not push its change to workers.
    statements = (
        ["BEGIN;", "SET LOCAL citus.enable_alter_role_propagation TO off;"]
        if citus_database
        else ["BEGIN;"]
    )
    statements += [
        f"ALTER ROLE {quote_ident(role)} PASSWORD '{scram_verifier(roles[role], os.urandom(16))}';"
        for role in changing
    ]
    if citus_database and superuser in changing:
        # Citus connects between nodes with the password Patroni put in pg_dist_authinfo at
        # bootstrap (each node keeps its own copy); it must follow the role's.
        authinfo = sql_literal("password=" + conninfo_value(roles[superuser]))
        statements.append(
            f"UPDATE pg_catalog.pg_dist_authinfo SET authinfo = {authinfo} "
            f"WHERE rolename = {sql_literal(superuser)} AND authinfo LIKE 'password=%';"
        )
    statements.append("COMMIT;")
    psql(leader, superuser, database, "\n".join(statements))
    log(f"{leader}: new password for {', '.join(changing)}")
    return leader


def _leader_name(members: list[str]) -> str:
    leader = leader_of(cluster_view(members))
    if leader is None:
        raise StepError("no running leader")
    return leader.name


def passwords(args: argparse.Namespace) -> None:
    groups: list[list[str]] = json.loads(args.groups)
    roles = {
        args.superuser: os.environ["PC_SUPERUSER_PASSWORD"],
        args.replication: os.environ["PC_REPLICATION_PASSWORD"],
    }
    # Workers before the coordinator: the coordinator's connections to them keep working
    # until its own files change.
    for members in reversed(groups):
        rotate_group(members, roles, args.superuser, args.citus_database, args.timeout)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--timeout", type=float, default=300.0)
    steps = parser.add_subparsers(dest="step", required=True)
    step = steps.add_parser("write")
    step.add_argument("--container", required=True)
    step.add_argument("--files-only", action="store_true",
                      help="only write the files: Patroni does not read them")  # fmt: skip
    step.set_defaults(run=write)
    step = steps.add_parser("service-write")
    step.add_argument("--container", required=True)
    step.set_defaults(run=service_write)
    step = steps.add_parser("remove")
    step.add_argument("--container", required=True)
    step.add_argument("paths", nargs="+")
    step.set_defaults(run=remove)
    step = steps.add_parser("passwords")
    step.add_argument("--groups", required=True, help="JSON [[members of group 0], ...]")
    step.add_argument("--superuser", required=True)
    step.add_argument("--replication", required=True)
    step.add_argument("--citus-database", default="",
                      help="with Citus: the database whose pg_dist_authinfo to update")  # fmt: skip
    step.set_defaults(run=passwords)
    return run_step(parser.parse_args(), "member_config")


if __name__ == "__main__":
    sys.exit(main())
