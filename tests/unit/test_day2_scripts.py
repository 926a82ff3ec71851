"""The pure decisions of the day-2 scripts (scripts/rollout.py, scripts/member_config.py and
the image's pc-replication-passfile): who may be replaced when, what PATCH /config sends, which
member takes over, and the SCRAM verifiers and quoting that reach PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import sys
from pathlib import Path

import pytest

from policies import conventions
from tests.imagetools import load_image_tool

ROOT = Path(__file__).resolve().parents[2]
# The scripts import each other by plain name, as `python3 scripts/x.py` runs them.
sys.path.insert(0, str(ROOT / "scripts"))

import citus_group  # noqa: E402
import member_config  # noqa: E402
import rollout  # noqa: E402
from patroni_api import MemberView, candidate  # noqa: E402


def view(*members: tuple[str, str, str, int | None]) -> dict[str, MemberView]:
    return {
        name: MemberView(name, role, state, lag, pending_restart=False, nofailover=False)
        for name, role, state, lag in members
    }


HEALTHY = view(
    ("pg-1", "leader", "running", None),
    ("pg-2", "sync_standby", "streaming", 0),
    ("pg-3", "replica", "streaming", 0),
)
NEW = {"pg-1": "new", "pg-2": "new", "pg-3": "new"}
MAX_LAG = 1 << 20


def test_the_revision_label_is_the_shared_convention():
    assert rollout.REVISION_LABEL == conventions.LABEL_REVISION


def test_replicas_go_first_one_at_a_time_in_order():
    running = {"pg-1": "old", "pg-2": "old", "pg-3": "old"}
    assert rollout.may_go("pg-2", HEALTHY, running, NEW, MAX_LAG)[0]
    go, why = rollout.may_go("pg-3", HEALTHY, running, NEW, MAX_LAG)
    assert not go and "one at a time" in why
    go, why = rollout.may_go("pg-1", HEALTHY, running, NEW, MAX_LAG)
    assert not go and "leader goes last" in why


def test_the_leader_goes_once_every_other_member_is_current():
    running = {"pg-1": "old", "pg-2": "new", "pg-3": "new"}
    assert rollout.may_go("pg-1", HEALTHY, running, NEW, MAX_LAG)[0]


def test_nobody_goes_while_another_member_is_down_or_behind():
    running = {"pg-1": "old", "pg-2": "new", "pg-3": "old"}
    catching_up = view(
        ("pg-1", "leader", "running", None),
        ("pg-2", "replica", "streaming", 5 * MAX_LAG),
        ("pg-3", "replica", "streaming", 0),
    )
    go, why = rollout.may_go("pg-3", catching_up, running, NEW, MAX_LAG)
    assert not go and "pg-2" in why
    # A member whose container is gone (being replaced) is not running: nobody else goes.
    starting = view(("pg-1", "leader", "running", None), ("pg-3", "replica", "streaming", 0))
    running = {"pg-1": "old", "pg-2": "new", "pg-3": "old"}
    assert not rollout.may_go("pg-3", starting, running, NEW, MAX_LAG)[0]


def test_members_without_a_container_do_not_block_a_roll():
    running = {"pg-1": "old", "pg-2": "old", "pg-3": None}  # pg-3 is being added
    two = view(("pg-1", "leader", "running", None), ("pg-2", "replica", "streaming", 0))
    assert rollout.may_go("pg-2", two, running, NEW, MAX_LAG)[0]


def test_handoff_prefers_a_synchronous_standby_then_the_least_lag():
    assert candidate(HEALTHY, "pg-1", MAX_LAG).name == "pg-2"
    asynchronous = view(
        ("pg-1", "leader", "running", None),
        ("pg-2", "replica", "streaming", 900),
        ("pg-3", "replica", "streaming", 10),
    )
    assert candidate(asynchronous, "pg-1", MAX_LAG).name == "pg-3"
    lagging = view(
        ("pg-1", "leader", "running", None), ("pg-2", "replica", "streaming", MAX_LAG + 1)
    )
    assert candidate(lagging, "pg-1", MAX_LAG) is None


def test_config_patch_sets_what_differs_and_removes_undeclared_parameters():
    current = {
        "ttl": 30,
        "loop_wait": 10,
        "slots": {"keep": {"type": "physical"}},  # added outside the stack: left alone
        "postgresql": {"use_slots": True, "parameters": {"work_mem": "4MB", "old": "1"}},
    }
    desired = {
        "ttl": 30,
        "loop_wait": 5,
        "postgresql": {
            "use_slots": True,
            "parameters": {"work_mem": "8MB", "max_connections": 200},
        },
    }
    assert rollout.config_patch(current, desired) == {
        "loop_wait": 5,
        "postgresql": {"parameters": {"work_mem": "8MB", "max_connections": 200, "old": None}},
    }
    assert rollout.config_patch(desired, desired) == {}
    # Patroni may hand numbers back as strings: equal values are no change.
    as_strings = {**desired, "postgresql": {"use_slots": True, "parameters": {
        "work_mem": "8MB", "max_connections": "200"}}}  # fmt: skip
    assert rollout.config_patch(as_strings, desired) == {}


def test_scram_verifier_matches_postgresqls_construction():
    salt = bytes(range(16))
    verifier = member_config.scram_verifier("s3cret", salt, 4096)
    scheme, rest = verifier.split("$", 1)
    params, keys = rest.split("$")
    stored, server = (base64.b64decode(k) for k in keys.split(":"))
    salted = hashlib.pbkdf2_hmac("sha256", b"s3cret", salt, 4096)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    assert scheme == "SCRAM-SHA-256" and params == f"4096:{base64.b64encode(salt).decode()}"
    assert stored == hashlib.sha256(client_key).digest()
    assert server == hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    assert member_config.verifies(verifier, "s3cret")
    assert not member_config.verifies(verifier, "other")
    assert not member_config.verifies("md5abc", "s3cret")
    assert not member_config.verifies("", "s3cret")


@pytest.mark.parametrize(
    ("value", "quoted"),
    [("plain", "'plain'"), ("it's", "'it\\'s'"), ("back\\slash", "'back\\\\slash'")],
)
def test_conninfo_values_are_quoted_as_libpq_reads_them(value, quoted):
    assert member_config.conninfo_value(value) == quoted


def test_sql_literals_and_identifiers_are_quoted():
    assert member_config.sql_literal("o'neil") == "'o''neil'"
    assert member_config.quote_ident('we"ird') == '"we""ird"'


def test_the_passfile_fix_splits_on_unescaped_colons_only():
    tool = load_image_tool("pc-replication-passfile")
    assert tool.split_fields("h:5432:*:repl:pa\\:ss:word") == [
        "h",
        "5432",
        "*",
        "repl",
        "pa\\:ss:word",
    ]
    assert tool.split_fields("h\\:x:5432:*:repl:pw") == ["h\\:x", "5432", "*", "repl", "pw"]
    assert tool.escape("a:b\\c") == "a\\:b\\\\c"


def test_a_removed_groups_demotion_transaction_is_found_by_its_addresses_only():
    sql = citus_group.end_demotion_transactions(["172.27.1.65", "172.27.1.66"])
    assert "application_name = 'Patroni citus'" in sql and "idle in transaction" in sql
    pattern = re.compile(sql.split("$pattern$")[1])
    # Patroni's statements for the stopping leader and its replica (PostgreSQL's ~ reads
    # this pattern as Python's re does).
    assert pattern.search(
        "SELECT pg_catalog.citus_update_node(138, '172.27.1.66-demoted', 5432, true, 5000)"
    )
    assert pattern.search(
        "SELECT pg_catalog.citus_add_node('172.27.1.65', 5432, 3, 'secondary', 'default')"
    )
    # Another group's address that merely starts the same way is left alone.
    assert not pattern.search("SELECT pg_catalog.citus_update_node(7, '172.27.1.6-demoted', 5432)")
    assert not pattern.search("SELECT pg_catalog.citus_update_node(7, '172.27.1.650', 5432)")
