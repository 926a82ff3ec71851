#!/usr/bin/env python3
"""pc-replication-passfile: give the replication user's lines of Patroni's passfile
(postgresql.pgpass) the password /etc/patroni/patroni.yml names.

Patroni up to 4.0.7 keeps the old password there after a reload while a standby streams
(patroni#3507, fixed in 4.0.8), so the standby would fail at its next reconnect; the member's
config resource runs this after every reload. A no-op when the passfile is already right."""

from __future__ import annotations

import os
import sys

import yaml

# A copy of policies/conventions.py's PATRONI_CONFIG_PATH, which the image cannot import; tied
# to it by tests/unit/test_image_contracts.py.
PATRONI_CONFIG = "/etc/patroni/patroni.yml"


def split_fields(line: str) -> list[str]:
    """A .pgpass line's fields: ':' separates them unless escaped with a backslash."""
    fields: list[str] = []
    current, escaped = "", False
    for char in line:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            current += char
            escaped = True
        elif char == ":" and len(fields) < 4:
            fields.append(current)
            current = ""
        else:
            current += char
    return fields + [current]


def escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(":", "\\:")


def main() -> int:
    with open(os.environ.get("PATRONI_CONFIG", PATRONI_CONFIG), encoding="utf-8") as f:
        postgresql = (yaml.safe_load(f) or {}).get("postgresql") or {}
    path = postgresql.get("pgpass")
    replication = (postgresql.get("authentication") or {}).get("replication") or {}
    if not path or not replication or not os.path.exists(path):
        return 0
    user, password = escape(str(replication["username"])), escape(str(replication["password"]))
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    fixed = []
    for line in lines:
        fields = split_fields(line)
        if len(fields) == 5 and fields[3] == user:
            line = ":".join(fields[:4] + [password])
        fixed.append(line)
    if fixed != lines:
        with open(path + ".new", "w", encoding="utf-8") as f:
            f.write("\n".join(fixed) + "\n")
        os.chmod(path + ".new", 0o600)
        os.replace(path + ".new", path)
        print(f"pc-replication-passfile: updated {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
