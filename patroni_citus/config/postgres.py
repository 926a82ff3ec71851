"""Rules for `patroni.parameters`: the settings the program or Patroni manage are refused with
the reason, common settings are type-checked, and no value may break postgresql.conf."""

from __future__ import annotations

import re
from typing import Any, Callable, Optional

PARAMETER_NAME = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")

# Managed: setting them would silently break what the program relies on.
MANAGED: dict[str, str] = {
    "listen_addresses": "Patroni sets it from postgresql.listen (every member listens on 0.0.0.0)",
    "port": "clients, pg_hba, healthchecks and Citus use 5432",
    "unix_socket_directories": "the image and Patroni use /var/run/postgresql",
    "data_directory": "Patroni manages PGDATA",
    "config_file": "Patroni writes postgresql.conf",
    "hba_file": "Patroni writes pg_hba.conf from the program's rules",
    "ident_file": "Patroni writes pg_ident.conf",
    "password_encryption": "pg_hba requires scram-sha-256, which the program sets",
    "wal_log_hints": "the program turns it on for pg_rewind (use_pg_rewind)",
    "cluster_name": "Patroni sets it to the member name",
    "hot_standby": "Patroni requires it on",
    "synchronous_standby_names": "Patroni manages it (patroni.synchronousMode)",
    "primary_conninfo": "Patroni manages replication",
    "primary_slot_name": "Patroni manages replication slots",
    "restore_command": "Patroni manages recovery",
    "recovery_target_timeline": "Patroni manages recovery",
}

# Managed only with backups.enabled: pgBackRest archives every group's WAL to its stanza.
BACKUP_MANAGED: dict[str, str] = {
    "archive_mode": "backups.enabled archives WAL with pgBackRest (on, never always)",
    "archive_command": "backups.enabled archives WAL to the group's pgBackRest stanza",
    "archive_library": "backups.enabled archives WAL with archive_command (pgBackRest)",
    "archive_timeout": "backups.enabled sets it to 60s, the most WAL a lost volume can lose",
}

MAX_VALUE_LENGTH = 1024
_MEMORY = re.compile(r"^\d{1,12}\s*(B|kB|MB|GB|TB)?$")
_DURATION = re.compile(r"^\d{1,12}\s*(us|ms|s|min|h|d)?$")
_BOOLEANS = ("on", "off", "true", "false", "yes", "no", "1", "0")


def _integer(low: int, high: int) -> Callable[[Any], Optional[str]]:
    def check(value: Any) -> Optional[str]:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            return f"must be an integer from {low} to {high}"
        text = str(value).strip()
        if not re.fullmatch(r"-?\d{1,12}", text) or not low <= int(text) <= high:
            return f"must be an integer from {low} to {high}"
        return None

    return check


def _pattern(pattern: re.Pattern[str], what: str) -> Callable[[Any], Optional[str]]:
    def check(value: Any) -> Optional[str]:
        if isinstance(value, bool) or not pattern.fullmatch(str(value).strip()):
            return f"must be {what}"
        return None

    return check


def _choice(*choices: str) -> Callable[[Any], Optional[str]]:
    def check(value: Any) -> Optional[str]:
        text = str(value).lower() if not isinstance(value, bool) else ("on" if value else "off")
        return None if text in choices else f"must be one of {', '.join(choices)}"

    return check


_memory = _pattern(_MEMORY, "a size such as 256MB (units B, kB, MB, GB, TB)")
_duration = _pattern(_DURATION, "a duration such as 30s (units us, ms, s, min, h, d)")
_boolean = _choice(*_BOOLEANS)

# Common settings, type-checked; others pass through as they are (PostgreSQL then decides).
TYPED: dict[str, Callable[[Any], Optional[str]]] = {
    "max_connections": _integer(1, 262143),
    "superuser_reserved_connections": _integer(0, 262143),
    "max_worker_processes": _integer(0, 262143),
    "max_parallel_workers": _integer(0, 1024),
    "max_parallel_workers_per_gather": _integer(0, 1024),
    "max_wal_senders": _integer(1, 262143),
    "max_replication_slots": _integer(1, 262143),
    "max_locks_per_transaction": _integer(10, 2147483647),
    "max_prepared_transactions": _integer(0, 262143),
    "shared_buffers": _memory,
    "effective_cache_size": _memory,
    "work_mem": _memory,
    "maintenance_work_mem": _memory,
    "wal_buffers": _pattern(re.compile(r"^(-1|\d{1,12}\s*(B|kB|MB|GB|TB)?)$"), "-1 or a size"),
    "wal_keep_size": _memory,
    "max_wal_size": _memory,
    "min_wal_size": _memory,
    "checkpoint_timeout": _duration,
    "statement_timeout": _duration,
    "idle_in_transaction_session_timeout": _duration,
    "tcp_keepalives_idle": _integer(0, 2147483647),
    "tcp_keepalives_interval": _integer(0, 2147483647),
    "tcp_keepalives_count": _integer(0, 2147483647),
    "wal_level": _choice("replica", "logical"),
    "synchronous_commit": _choice("on", "remote_apply", "remote_write", "local", "off"),
    "fsync": _choice("on", "true", "yes", "1"),
    "full_page_writes": _choice("on", "true", "yes", "1"),
    "archive_mode": _choice("on", "off", "always"),
    "logging_collector": _boolean,
    "log_checkpoints": _boolean,
    "log_connections": _boolean,
    "log_disconnections": _boolean,
    "log_min_duration_statement": _pattern(
        re.compile(r"^(-1|\d{1,12}\s*(us|ms|s|min|h|d)?)$"), "-1 or a duration"
    ),
}


def parameter_problem(name: str, value: Any, synchronous_mode: bool) -> Optional[str]:
    """The rule a PostgreSQL setting breaks, or None."""
    if name in MANAGED:
        return f"is managed: {MANAGED[name]}"
    if not isinstance(value, (str, int, float, bool)):
        return "must be a string, number or boolean"
    text = str(value)
    if (
        len(text) > MAX_VALUE_LENGTH
        or any(c in text for c in "'\\")
        or any(ord(c) < 32 or ord(c) == 127 for c in text)
    ):
        return (
            f"must be at most {MAX_VALUE_LENGTH} characters without quotes, backslashes "
            "or control characters (they would break postgresql.conf)"
        )
    check = TYPED.get(name)
    rule = check(value) if check is not None else None
    if rule:
        return rule
    if name == "synchronous_commit" and synchronous_mode and text.lower() in ("local", "off"):
        return (
            "must be on, remote_apply or remote_write with patroni.synchronousMode: "
            "local or off acknowledge commits a failover may lose"
        )
    return None
