#!/usr/bin/env python3
"""The service layer's database roles, kept as declared on every group's leader.

ensure --groups JSON    create each role of PC_SERVICE_ROLES (JSON {role: {"password": ...,
                        "member_of": [...], "authinfo": bool}}, from the environment, never
                        the command line)
                        that does not exist, and set the password of one whose stored
                        verifier does not match; only a salted SCRAM verifier reaches the
                        server. With --lookup-function ROLE, also (re)creates PgBouncer's
                        auth_query function, executable by ROLE only, in every database of
                        group 0 and in template1 (PgBouncer 1.18 runs auth_query in the
                        client's database). Runs after the members are ready, and before
                        anything that logs in as these roles is (re)configured.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from typing import Any

from member_config import conninfo_value, psql, quote_ident, scram_verifier, sql_literal, verifies
from patroni_api import StepError, cluster_view, leader_of, log, retrying, run_step

# SECURITY DEFINER, so PgBouncer's role never reads pg_authid itself. Superusers and
# replication roles are never served (as in Crunchy's PGO): a pooler compromise must not
# hand out their verifiers. Schema-qualified, with a fixed search_path (CVE-2025-12819).
LOOKUP_FUNCTION = """
CREATE SCHEMA IF NOT EXISTS pgbouncer;
REVOKE ALL ON SCHEMA pgbouncer FROM PUBLIC;
CREATE OR REPLACE FUNCTION pgbouncer.user_lookup(i_username text, OUT uname text, OUT phash text)
RETURNS record AS $$
BEGIN
    SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE rolpassword END
    FROM pg_catalog.pg_authid
    WHERE rolname = i_username AND rolcanlogin AND NOT rolsuper AND NOT rolreplication
      AND rolname <> {auth_role}
    INTO uname, phash;
    RETURN;
END;
$$ LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION pgbouncer.user_lookup(text) FROM PUBLIC;
GRANT USAGE ON SCHEMA pgbouncer TO {auth_ident};
GRANT EXECUTE ON FUNCTION pgbouncer.user_lookup(text) TO {auth_ident};
"""


def _leader(members: list[str]) -> str:
    leader = leader_of(cluster_view(members))
    if leader is None:
        raise StepError("no running leader")
    return leader.name


def ensure_roles(
    leader: str, superuser: str, database: str, roles: dict[str, dict[str, Any]]
) -> None:
    names = ", ".join(sql_literal(r) for r in roles)
    stored = psql(leader, superuser, database,
                  f"SELECT rolname, coalesce(rolpassword, '') FROM pg_catalog.pg_authid "
                  f"WHERE rolname IN ({names});")  # fmt: skip
    current = dict(line.split("|", 1) for line in stored.splitlines() if "|" in line)
    citus = "citus" in psql(leader, superuser, database,
                            "SELECT extname FROM pg_catalog.pg_extension;")  # fmt: skip
    # Each Patroni group owns its roles, as with the cluster's own (member_config.py).
    statements = ["BEGIN;", "SET LOCAL citus.enable_ddl_propagation TO off;"]
    changed = []
    for role, spec in roles.items():
        ident = quote_ident(role)
        if role not in current:
            verifier = scram_verifier(spec["password"], os.urandom(16))
            statements.append(f"CREATE ROLE {ident} LOGIN PASSWORD '{verifier}';")
            changed.append(f"{role} created")
        elif not verifies(current[role], spec["password"]):
            verifier = scram_verifier(spec["password"], os.urandom(16))
            statements.append(f"ALTER ROLE {ident} PASSWORD '{verifier}';")
            changed.append(f"{role} new password")
        statements += [f"GRANT {quote_ident(g)} TO {ident};" for g in spec.get("member_of", [])]
        if citus and spec.get("authinfo"):
            # Citus logs into other nodes as the client's role: with SCRAM everywhere it needs
            # the role's password in pg_dist_authinfo (each node keeps its own copy).
            authinfo = sql_literal("password=" + conninfo_value(spec["password"]))
            statements += [
                f"DELETE FROM pg_catalog.pg_dist_authinfo WHERE rolename = {sql_literal(role)} "
                "AND nodeid = 0;",
                "INSERT INTO pg_catalog.pg_dist_authinfo (nodeid, rolename, authinfo) "
                f"VALUES (0, {sql_literal(role)}, {authinfo});",
            ]
    statements.append("COMMIT;")
    if not citus:
        # Without Citus the setting does not exist; a SET LOCAL of it would fail.
        statements.remove("SET LOCAL citus.enable_ddl_propagation TO off;")
    psql(leader, superuser, database, "\n".join(statements))
    log(f"{leader}: roles {', '.join(changed) if changed else 'already current'}")


def install_lookup(leader: str, superuser: str, auth_role: str) -> None:
    databases = psql(leader, superuser, "postgres",
                     "SELECT datname FROM pg_catalog.pg_database "
                     "WHERE datallowconn ORDER BY datname;").split()  # fmt: skip
    sql = LOOKUP_FUNCTION.format(
        auth_role=sql_literal(auth_role), auth_ident=quote_ident(auth_role)
    )
    for database in databases:
        citus = "citus" in psql(leader, superuser, database,
                                "SELECT extname FROM pg_catalog.pg_extension;")  # fmt: skip
        # The function is local to each node: a coordinator must not push it to workers.
        prefix = "SET citus.enable_ddl_propagation TO off;\n" if citus else ""
        psql(leader, superuser, database, f"BEGIN;\n{prefix}{sql}COMMIT;")
    log(f"{leader}: auth_query function in {', '.join(databases)}")


def ensure(args: argparse.Namespace) -> None:
    groups: list[list[str]] = json.loads(args.groups)
    roles: dict[str, dict[str, Any]] = json.loads(os.environ["PC_SERVICE_ROLES"])
    database = args.database or "postgres"
    for index, members in enumerate(groups):
        leader = retrying(f"the leader of {', '.join(members)}",
                          functools.partial(_leader, members), args.timeout)  # fmt: skip
        ensure_roles(leader, args.superuser, database, roles)
        if index == 0 and args.lookup_function:
            install_lookup(leader, args.superuser, args.lookup_function)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--timeout", type=float, default=300.0)
    steps = parser.add_subparsers(dest="step", required=True)
    step = steps.add_parser("ensure")
    step.add_argument("--groups", required=True, help="JSON [[members of group 0], ...]")
    step.add_argument("--superuser", required=True)
    step.add_argument("--database", default="", help="where to connect (Citus: its database)")
    step.add_argument("--lookup-function", default="",
                      help="the role PgBouncer runs auth_query as")  # fmt: skip
    step.set_defaults(run=ensure)
    return run_step(parser.parse_args(), "service_roles")


if __name__ == "__main__":
    sys.exit(main())
